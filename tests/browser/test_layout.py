"""The room's layout in a real browser: one viewport high, the list scrolls inside it, at the newest message."""

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.live import log_in, message, open_room, seed_messages, send, unique

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LIVE = 2_000  # ms


def long_username() -> str:
    """64 characters, one word: nothing to break at but the CSS."""
    name = unique("longname")
    return name + "x" * (64 - len(name))


@pytest.fixture
def busy_room(daphne_server) -> tuple[str, str]:
    """A room of 300 messages, every one by a user with a 64-character name, some of them long."""
    room, author = unique("busy"), long_username()
    daphne_server.create_users(author)
    seed_messages(daphne_server, room, author, 300, body="Message {n}: " + "lorem ipsum " * 12)
    return room, author


def document_overflow(page: Page) -> dict[str, int]:
    """How far the document scrolls in each direction (0 and 0: it does not scroll)."""
    return page.evaluate(
        """() => {
            const root = document.scrollingElement;
            return {x: root.scrollWidth - root.clientWidth, y: root.scrollHeight - root.clientHeight};
        }"""
    )


def in_view(page: Page, selector: str) -> bool:
    """Whether the element is entirely inside the scroller's visible box and the viewport."""
    return page.evaluate(
        """(selector) => {
            const item = document.querySelector(selector).getBoundingClientRect();
            const box = document.querySelector('.scroller').getBoundingClientRect();
            return item.top >= box.top - 1 && item.bottom <= box.bottom + 1
                && item.bottom <= window.innerHeight && item.right <= window.innerWidth;
        }""",
        selector,
    )


def last_message(page: Page) -> str:
    return f"#{page.locator('#messages li.message').last.get_attribute('id')}"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_the_room_fills_the_viewport_and_opens_at_the_newest_message(new_page, busy_room, viewport):
    room, author = busy_room
    page = new_page(viewport=viewport)
    log_in(page, author)
    open_room(page, room)

    assert document_overflow(page) == {"x": 0, "y": 0}
    scroller = page.evaluate(
        "() => { const s = document.querySelector('.scroller');"
        " return {scrolls: s.scrollHeight > s.clientHeight, wide: s.scrollWidth - s.clientWidth}; }"
    )
    assert scroller == {"scrolls": True, "wide": 0}  # the list scrolls, and only vertically
    assert in_view(page, last_message(page))
    # The 64-character name wraps in the header: "Log out" and the message box stay on screen.
    for control in (page.get_by_role("button", name="Log out"), page.locator("#compose-message")):
        box = control.bounding_box()
        assert box is not None
        assert 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"]
        assert 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"]
    # The headers (site, room, time zone, presence) leave the list at least 60 % of the screen, phone too.
    list_height = page.locator(".scroller").bounding_box()["height"]
    assert list_height >= 0.6 * viewport["height"], list_height
    page.screenshot(path=f"test-results/room-{viewport['width']}.png")
    # Sending keeps the page one viewport high and the sender at the newest message.
    send(page, "one more")
    assert in_view(page, last_message(page))
    assert document_overflow(page) == {"x": 0, "y": 0}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_an_anonymous_reader_also_opens_at_the_newest_message(new_page, busy_room, viewport):
    room, _ = busy_room
    page = new_page(viewport=viewport)
    open_room(page, room)

    assert document_overflow(page) == {"x": 0, "y": 0}
    assert in_view(page, last_message(page))


def scroller_offset(page: Page, selector: str) -> float:
    """Where an element is, relative to the top of the scroller's visible box."""
    return page.evaluate(
        "(selector) => document.querySelector(selector).getBoundingClientRect().top"
        " - document.querySelector('.scroller').getBoundingClientRect().top",
        selector,
    )


def reader_and_writer(new_page: Any, room: str, author: str) -> tuple[Page, Page]:
    reader = new_page(viewport=PHONE)
    open_room(reader, room)
    writer = new_page(viewport=DESKTOP)
    log_in(writer, author)
    open_room(writer, room)
    return reader, writer


def test_a_reader_who_scrolled_up_keeps_their_place_when_a_message_arrives(new_page, busy_room):
    room, author = busy_room
    reader, writer = reader_and_writer(new_page, room, author)
    # Scroll up by about two screens and note where one message sits.
    reader.locator(".scroller").evaluate("(s) => s.scrollBy(0, -2 * s.clientHeight)")
    reader.wait_for_timeout(100)
    anchor = "#" + reader.evaluate(
        """() => {
            const box = document.querySelector('.scroller').getBoundingClientRect();
            const middle = (box.top + box.bottom) / 2;
            return [...document.querySelectorAll('#messages li.message')]
                .find((item) => item.getBoundingClientRect().bottom > middle).id;
        }"""
    )
    assert in_view(reader, anchor)
    before = scroller_offset(reader, anchor)

    send(writer, "arrives while the reader is up the page")

    expect(message(reader, "arrives while the reader is up the page")).to_have_count(1, timeout=LIVE)
    reader.wait_for_timeout(100)
    assert abs(scroller_offset(reader, anchor) - before) <= 1
    assert not in_view(reader, last_message(reader))
    reader.screenshot(path="test-results/room-scrolled-up-390.png")


def test_a_reader_at_the_bottom_follows_new_messages(new_page, busy_room):
    room, author = busy_room
    reader, writer = reader_and_writer(new_page, room, author)

    for n in range(3):
        send(writer, f"follow me {n}")
        expect(message(reader, f"follow me {n}")).to_have_count(1, timeout=LIVE)
        reader.wait_for_timeout(100)
        assert in_view(reader, last_message(reader))
    assert document_overflow(reader) == {"x": 0, "y": 0}


def label_lines(button: Any) -> int:
    """How many lines a button's label takes."""
    return button.evaluate(
        "b => { const r = document.createRange(); r.selectNodeContents(b); return r.getClientRects().length; }"
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_buttons_beside_a_field_keep_their_label_on_one_line_and_the_field_its_height(
    new_page, daphne_server, viewport
):
    page = new_page(viewport=viewport)
    daphne_server.create_users(name := unique("rows"))
    log_in(page, name)
    page.goto("/")
    assert label_lines(page.get_by_role("button", name="Enter")) == 1
    assert page.locator("#id_room").bounding_box()["height"] < 48
    open_room(page, unique("rows"))
    assert label_lines(page.get_by_role("button", name="Send")) == 1
    assert page.locator("#compose-message").bounding_box()["height"] < 48


def test_a_run_of_one_line_messages_fits_twice_as_many_as_before(new_page, daphne_server):
    """About 6 one-line messages fitted at 1280x800 before runs and floating controls; now at least 12."""
    room, author = unique("dense"), unique("terse")
    daphne_server.create_users(author)
    seed_messages(daphne_server, room, author, 40, body="ok {n}")
    page = new_page(viewport=DESKTOP)
    page.goto(f"/chat/{room}/")
    expect(message(page, "ok 40")).to_have_count(1)

    shown = page.evaluate(
        """() => { const s = document.querySelector('.scroller').getBoundingClientRect();
                   return [...document.querySelectorAll('li.message')].filter(e => {
                       const r = e.getBoundingClientRect(); return r.top >= s.top && r.bottom <= s.bottom;
                   }).length; }"""
    )
    assert shown >= 12, shown
    # One name for the run, not one per message.
    expect(page.locator("li.message .author").filter(has_text=author).locator("visible=true")).to_have_count(1)
