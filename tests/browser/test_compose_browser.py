"""The composer in a real browser: a person typing quickly never hits a limit, and a text refused
for speed comes back on its own, never glued to the next one; several lines; formatting as it shows."""

import pytest
from playwright.sync_api import expect

from tests.support.axe import violations
from tests.support.live import LIVE, bodies, message, open_room, sign_up, unique

pytestmark = pytest.mark.browser


def type_and_enter(page, text: str, delay: float) -> None:
    page.locator("#compose-message").press_sequentially(text, delay=delay)
    page.keyboard.press("Enter")


def test_quick_typing_sends_every_message_on_its_own(new_page, daphne_server):
    page = new_page()
    sign_up(page, unique("quick"))
    open_room(page, unique("burst"))

    texts = [f"burst{i}" for i in range(1, 11)]
    for text in texts:  # about two messages a second, typing at 80 ms a key: a very fast person
        type_and_enter(page, text, delay=80)
        expect(page.locator("#compose-message")).to_have_value("", timeout=LIVE)

    expect(message(page, texts[-1])).to_have_count(1, timeout=LIVE)
    assert bodies(page).all_inner_texts() == texts
    expect(page.locator("#compose-errors")).to_be_empty()
    expect(page.locator("#unsent .unsent-item")).to_have_count(0)


def test_a_text_refused_for_speed_comes_back_on_its_own_and_sends_again(new_page, daphne_server):
    page = new_page()
    sign_up(page, unique("hammer"))
    open_room(page, unique("flood"))

    texts = [f"flood{i}" for i in range(1, 31)]
    for text in texts:  # faster than any person: the socket's allowance runs out
        type_and_enter(page, text, delay=5)
        # Sent or refused, the input is emptied for the next text (what is typed before the answer
        # arrives, a few milliseconds, would go with the old input: no person is that quick).
        expect(page.locator("#compose-message")).to_have_value("", timeout=LIVE)

    refused = page.locator("#unsent .unsent-item")
    expect(refused.first).to_be_visible(timeout=LIVE)
    page.wait_for_timeout(500)
    sent = bodies(page).all_inner_texts()
    handed_back = refused.locator(".unsent-text").all_inner_texts()
    # Nothing glued together: every message is one of the texts, each text went one way or the other.
    assert all(body in texts for body in sent), [b for b in sent if b not in texts]
    assert set(sent) | set(handed_back) <= set(texts)
    assert handed_back and not set(sent) & set(handed_back)
    expect(page.locator("#compose-message")).to_have_value("")
    expect(refused.first.locator(".unsent-reason")).to_contain_text("too fast")

    # A moment later "Send again" posts it, and it leaves the list; the draft in the input stays.
    page.wait_for_timeout(1500)
    page.fill("#compose-message", "a draft")
    first = handed_back[0]
    refused.first.get_by_role("button", name="Send again").click()
    expect(message(page, first)).to_have_count(1, timeout=LIVE)
    expect(refused.filter(has_text=first)).to_have_count(0)
    expect(page.locator("#compose-message")).to_have_value("a draft")


def test_without_javascript_send_again_is_a_plain_form_too(new_page, daphne_server):
    """The "Send again" form only comes over the socket, but it is a real form: it must post plainly."""
    page = new_page()
    sign_up(page, unique("plain"))
    room = unique("plain")
    open_room(page, room)
    for i in range(30):
        type_and_enter(page, f"plain{i}", delay=5)
        expect(page.locator("#compose-message")).to_have_value("", timeout=LIVE)
    refused = page.locator("#unsent .unsent-item").first
    expect(refused).to_be_visible(timeout=LIVE)
    text = refused.locator(".unsent-text").inner_text()
    form = refused.locator("form")
    assert form.get_attribute("method") == "post" and form.get_attribute("action") == f"/chat/{room}/"
    assert refused.locator("input[name=csrfmiddlewaretoken]").count() == 1
    page.wait_for_timeout(1500)
    # As a browser without htmx would: submit the form's own fields to its action.
    fields = {i.get_attribute("name"): i.get_attribute("value") for i in form.locator("input").all()}
    answer = page.request.post(f"/chat/{room}/", form=fields, headers={"Origin": daphne_server.url})
    assert answer.ok
    page.reload()
    expect(message(page, text)).to_have_count(1)


def test_several_lines_keep_their_breaks_and_enter_makes_a_new_line(new_page, daphne_server):
    page = new_page()
    sign_up(page, unique("poet"))
    open_room(page, unique("verse"))

    page.get_by_role("checkbox", name="Several lines").check()
    lines = page.get_by_label("Message, several lines")
    expect(lines).to_be_visible()
    expect(page.locator("#compose-message")).to_be_hidden()
    lines.click()
    page.keyboard.type("def hello():")
    page.keyboard.press("Enter")  # a new line, not a send
    page.keyboard.type("    return 1")
    expect(page.locator("li.message")).to_have_count(0)
    page.get_by_role("button", name="Send").click()

    sent = page.locator("li.message .body")
    expect(sent).to_have_count(1, timeout=LIVE)
    assert sent.inner_text() == "def hello():\n    return 1"
    expect(lines).to_have_value("")
    # Back to one line: Enter sends again.
    page.get_by_role("checkbox", name="Several lines").uncheck()
    type_and_enter(page, "short one", delay=10)
    expect(message(page, "short one")).to_have_count(1, timeout=LIVE)


def test_without_javascript_several_lines_post_as_a_plain_form(new_page, daphne_server):
    page = new_page(java_script_enabled=False)
    sign_up(page, unique("plainpoet"))
    room = unique("plainverse")
    page.goto(f"/chat/{room}/")
    page.get_by_role("checkbox", name="Several lines").check()
    page.get_by_label("Message, several lines").fill("first line\nsecond line")
    page.get_by_role("button", name="Send").click()

    page.wait_for_url(f"**/chat/{room}/")
    assert page.locator("li.message .body").inner_text() == "first line\nsecond line"


def test_formatting_shows_as_formatted_and_is_accessible(new_page, daphne_server):
    page = new_page()
    sign_up(page, unique("writer"))
    open_room(page, unique("formats"))

    page.get_by_role("checkbox", name="Several lines").check()
    page.get_by_label("Message, several lines").fill(
        "**Plan** for _today_:\n- run `make test`\n- read [the docs](https://example.com/docs)\n\n"
        "> quoted\n\n```\nif a < b:\n    go()\n```\nsee https://example.com/a_b_ as is"
    )
    page.get_by_role("button", name="Send").click()

    body = page.locator("li.message .body")
    expect(body).to_have_count(1, timeout=LIVE)
    expect(body.locator("strong")).to_have_text("Plan")
    expect(body.locator("em")).to_have_text("today")
    expect(body.locator("ul > li")).to_have_count(2)
    expect(body.locator("li code")).to_have_text("make test")
    docs = body.get_by_role("link", name="the docs")
    expect(docs).to_have_attribute("href", "https://example.com/docs")
    expect(docs).to_have_attribute("target", "_blank")
    expect(body.locator("blockquote")).to_have_text("quoted")
    assert body.locator("pre code").inner_text() == "if a < b:\n    go()"
    expect(body.get_by_role("link", name="https://example.com/a_b_")).to_have_count(1)  # a bare URL as typed
    # The same after a reload (rendered from the database, not the live frame), and without violations.
    page.reload()
    expect(page.locator("li.message .body strong")).to_have_text("Plan")
    assert violations(page) == []
