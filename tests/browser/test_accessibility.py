"""Accessibility: zero WCAG 2.1 A/AA violations (axe-core) on every page, errors announced and focused
without script, a skip link to the message box, and a focus ring that stands out everywhere."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests.support.axe import violations
from tests.support.live import PASSWORD, log_in, open_room, seed_messages, unique

# The message box's limit (chat.models.MESSAGE_BODY_MAX_LENGTH) plus one.
OVERSIZED = "x" * 2001

browser = pytest.mark.browser


@pytest.fixture(scope="module")
def seeded(shared_daphne) -> Iterator[dict[str, str]]:
    """A room of 120 messages (some with links) and a user to sign in with, in the shared server."""
    room, name = unique("a11y"), unique("reader")
    shared_daphne.create_users(name)
    seed_messages(shared_daphne, room, name, 120, body="Message {n}, see https://example.com/{n}.")
    yield {"room": room, "user": name}


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


def focused_id(page: Page) -> str:
    return page.evaluate("() => document.activeElement && document.activeElement.id")


# Pages -------------------------------------------------------------------------------------------


@browser
@pytest.mark.parametrize("path", ["/", "/?room=no+spaces+please", "/accounts/login/", "/accounts/signup/"])
def test_pages_without_a_room_have_no_violations(page, daphne_server, path):
    page.goto(path)

    assert violations(page) == []


@browser
def test_the_lobby_with_an_error_announces_it_and_focuses_the_field(page, daphne_server):
    page.goto("/?room=no+spaces+please")

    expect(page.get_by_role("alert")).to_contain_text("A room name is 1 to 64")
    assert focused_id(page) == "id_room"
    expect(page.locator("#id_room")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_room")).to_have_attribute("aria-describedby", "room-errors")


@browser
def test_a_room_read_anonymously_has_no_violations(page, daphne_server, seeded):
    open_room(page, seeded["room"])

    expect(page.get_by_role("log", name=re.compile(seeded["room"]))).to_be_visible()
    assert violations(page) == []


@browser
def test_a_room_signed_in_has_no_violations(page, daphne_server, seeded):
    log_in(page, seeded["user"])
    open_room(page, seeded["room"])

    expect(page.locator("#compose-message")).to_be_focused()
    assert violations(page) == []


@browser
@pytest.mark.parametrize("text", ["", "   ", OVERSIZED], ids=["empty", "blank", "oversized"])
def test_a_room_with_a_compose_error_has_no_violations(page, daphne_server, seeded, text):
    log_in(page, seeded["user"])
    open_room(page, seeded["room"])
    # The no-JavaScript path: a native form submission (form.submit() bypasses htmx and the browser's
    # own checks, as an old browser or a hand-made request would).
    page.locator("#compose-message").evaluate("(input, text) => { input.value = text; }", text)
    with page.expect_navigation():
        page.locator("#compose").evaluate("(form) => form.submit()")

    expect(page.get_by_role("alert")).to_contain_text(re.compile("Type a message first|at most 2000 characters"))
    assert violations(page) == []


@browser
def test_an_older_page_has_no_violations(page, daphne_server, seeded):
    open_room(page, seeded["room"])
    first = page.locator("#messages li.message").first.get_attribute("id")
    assert first and first.startswith("message-")

    page.goto(f"/chat/{seeded['room']}/?before={first.removeprefix('message-')}")

    expect(page.locator("#messages li.message").first).to_be_attached()
    assert violations(page) == []


@browser
def test_a_failed_log_in_is_announced_and_focused_without_script(new_page, daphne_server):
    page = new_page(java_script_enabled=False)
    page.goto("/accounts/login/")
    page.fill("#id_username", "nobody-at-all")
    page.fill("#id_password", "wrong password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")
    assert focused_id(page) == "id_username"
    expect(page.locator("#id_username")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_username")).to_have_attribute("aria-describedby", "form-errors")


@browser
def test_a_failed_log_in_page_has_no_violations(page, daphne_server):
    page.goto("/accounts/login/")
    page.fill("#id_username", "nobody-at-all")
    page.fill("#id_password", "wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()

    assert violations(page) == []


@browser
def test_a_failed_sign_up_focuses_the_first_field_in_error_without_script(new_page, daphne_server):
    page = new_page(java_script_enabled=False)
    page.goto("/accounts/signup/")
    page.fill("#id_username", unique("new"))
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD + "-typo")
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_role("alert")).to_contain_text("The two password fields didn\u2019t match.")
    assert focused_id(page) == "id_password2"
    expect(page.locator("#id_password2")).to_have_attribute("aria-invalid", "true")
    described = page.locator("#id_password2").get_attribute("aria-describedby") or ""
    assert "id_password2_error" in described.split()
    expect(page.locator("#id_username")).not_to_have_attribute("aria-invalid", "true")


@browser
def test_a_failed_sign_up_page_has_no_violations(page, daphne_server, seeded):
    page.goto("/accounts/signup/")
    page.fill("#id_username", seeded["user"])  # taken
    page.fill("#id_password1", "short")
    page.fill("#id_password2", "short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert").first).to_be_visible()

    assert focused_id(page) == "id_username"
    assert violations(page) == []


@browser
def test_the_settings_page_has_no_violations(page, daphne_server, seeded):
    log_in(page, seeded["user"])
    page.goto("/accounts/settings/")

    expect(page.get_by_label("Time zone")).to_be_visible()
    assert violations(page) == []


@browser
def test_the_new_room_members_and_direct_message_pages_have_no_violations(page, daphne_server, seeded):
    log_in(page, seeded["user"])
    room = unique("private")
    page.goto("/rooms/new/")
    assert violations(page) == []
    page.fill("#id_name", room)
    page.get_by_label("Private").check()
    page.get_by_role("button", name="Create the room").click()
    page.wait_for_url(f"/chat/{room}/")
    assert violations(page) == []
    page.goto(f"/chat/{room}/members/")
    page.fill("#id_username", unique("nobody"))
    page.get_by_role("button", name="Add").click()  # an unknown name: the error shows in place
    expect(page.locator("#id_username_error")).to_be_visible()
    assert violations(page) == []
    page.goto(f"/dm/{seeded['user']}/")
    expect(page.locator("h1")).to_have_text("Notes to self")
    assert violations(page) == []


# Keyboard ----------------------------------------------------------------------------------------


@browser
def test_the_skip_link_shows_on_focus_and_goes_to_the_message_box(page, daphne_server, seeded):
    log_in(page, seeded["user"])
    open_room(page, seeded["room"])
    skip = page.get_by_role("link", name="Skip to the message box")
    hidden = skip.bounding_box()
    assert hidden is not None and hidden["y"] + hidden["height"] <= 0  # off screen until focused

    # It is the first stop in the tab order: just before the site header's first link.
    page.locator(".brand").focus()
    page.keyboard.press("Shift+Tab")

    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0 and box["x"] >= 0
    page.keyboard.press("Enter")
    expect(page.locator("#compose-message")).to_be_focused()


def rgb(color: str) -> tuple[float, float, float]:
    red, green, blue = (int(part) for part in re.findall(r"\d+", color)[:3])
    return red, green, blue


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""

    def luminance(color: str) -> float:
        channels = [c / 255 for c in rgb(color)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


RING = """() => {
    const element = document.activeElement;
    const style = getComputedStyle(element);
    // The ring is drawn outside the element (outline-offset), on whatever its parents paint.
    let parent = element.parentElement, behind = 'rgb(255, 255, 255)';
    for (; parent; parent = parent.parentElement) {
        const color = getComputedStyle(parent).backgroundColor;
        if (color !== 'transparent' && !color.startsWith('rgba(0, 0, 0, 0')) { behind = color; break; }
    }
    return {
        element: element.tagName + ' ' + (element.id || element.textContent.trim().slice(0, 40)),
        style: style.outlineStyle, width: parseFloat(style.outlineWidth), offset: parseFloat(style.outlineOffset),
        color: style.outlineColor, behind: behind,
    };
}"""


def rings(page: Page, tabs: int) -> list[dict[str, Any]]:
    """The focus ring of each element reached by pressing Tab, from the first one of the page."""
    found = []
    page.locator(".brand").focus()
    page.keyboard.press("Shift+Tab")  # the skip link, where there is one
    for _ in range(tabs):
        if page.evaluate("() => document.activeElement !== document.body"):
            found.append(page.evaluate(RING))
        page.keyboard.press("Tab")
    return found


@browser
def test_the_focus_ring_has_3_to_1_contrast_wherever_it_appears(page, daphne_server, seeded):
    log_in(page, seeded["user"])
    page.goto("/")
    seen = rings(page, 8)  # brand, search box and button, log out, room field, Enter (a blue button), room links
    open_room(page, seeded["room"])
    # skip link, brand, the header's search, log out, lobby link, the room's search, links in messages (on white)
    seen += rings(page, 12)
    page.locator("#compose-message").focus()
    page.keyboard.press("Tab")  # Send
    seen.append(page.evaluate(RING))

    assert len({ring["element"] for ring in seen}) >= 10, seen
    for ring in seen:
        assert ring["style"] != "none" and ring["width"] >= 2, ring
        assert ring["offset"] >= 1, ring
        assert contrast(ring["color"], ring["behind"]) >= 3, ring


# The markup behind it (no browser) -------------------------------------------------------------


def test_a_failed_log_in_marks_and_focuses_the_username_only(client, db):
    response = client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})

    html = response.text
    assert re.search(r'<div id="form-errors" class="errors" role="alert"><p>Please enter a correct', html)
    assert html.count("autofocus") == 1
    username = re.search(r"<input [^>]*id=\"id_username\"[^>]*>", html).group()
    assert "autofocus" in username and 'aria-invalid="true"' in username
    assert 'aria-describedby="form-errors"' in username


def test_a_sign_up_error_focuses_the_first_field_in_error(client, db):
    User.objects.create_user("taken", password=PASSWORD)

    response = client.post("/accounts/signup/", {"username": "taken", "password1": "a", "password2": "b"})

    html = response.text
    assert html.count("autofocus") == 1
    username = re.search(r"<input [^>]*id=\"id_username\"[^>]*>", html).group()
    assert "autofocus" in username and 'aria-invalid="true"' in username
    assert "id_username_error" in re.search(r'aria-describedby="([^"]*)"', username).group(1).split()
    assert re.search(r'<div id="id_username_error" class="errors" role="alert"><p>A user with that username', html)
    password2 = re.search(r"<input [^>]*id=\"id_password2\"[^>]*>", html).group()
    assert 'aria-invalid="true"' in password2 and "autofocus" not in password2


def test_an_untouched_log_in_form_focuses_the_username_and_marks_nothing(client, db):
    html = client.get("/accounts/login/").text

    assert html.count("autofocus") == 1
    assert "aria-invalid" not in html and 'role="alert"' not in html
