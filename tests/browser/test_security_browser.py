"""In Chromium: a tab whose session ends shows it is signed out, and no page violates the CSP."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.live import message, open_room, send, sign_up, unique

pytestmark = pytest.mark.browser


def test_logging_out_in_another_tab_signs_the_room_tab_out(new_page, daphne_server):
    room_tab = new_page()
    sign_up(room_tab, unique("leaver"))
    room = unique("leaving")
    socket = open_room(room_tab, room)
    closes = []
    socket.on("close", lambda ws: closes.append(ws))
    reconnects = []
    room_tab.on("websocket", lambda ws: reconnects.append(ws))
    other_tab = room_tab.context.new_page()  # same browser, same session

    other_tab.goto("/")
    other_tab.get_by_role("button", name="Log out").click()

    expect(room_tab.locator("#compose-errors")).to_contain_text("You have been signed out.", timeout=2_000)
    expect(room_tab.get_by_role("button", name="Send")).to_be_disabled()
    expect(room_tab.locator("header.site").get_by_role("link", name="Log in")).to_be_visible()
    expect(room_tab.locator("header.site")).not_to_contain_text("Signed in as")
    room_tab.wait_for_timeout(1_500)
    # Closed for good: htmx does not reconnect after a 4000-4999 code.
    assert closes and socket.is_closed()
    assert reconnects == []
    link = room_tab.get_by_role("link", name="Log in again")
    assert re.search(rf"next=/chat/{room}/$", link.get_attribute("href"))


def test_no_page_violates_the_content_security_policy_and_the_live_room_still_works(new_page, daphne_server):
    violations: list[str] = []
    page, peer = new_page(), new_page()
    for each in (page, peer):
        each.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        each.on("pageerror", lambda error: violations.append(str(error)))
    room = unique("strict")

    for path in ("/", "/accounts/login/", "/accounts/signup/", f"/chat/{room}/", "/accounts/password_change/"):
        response = page.goto(path)
        assert "'unsafe" not in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
    sign_up(page, unique("strict"))
    page.goto("/")
    sign_up(peer, unique("peer"))
    open_room(page, room)
    open_room(peer, room)
    page.fill("#compose-message", "Within the policy")
    page.get_by_role("button", name="Send").click()
    expect(peer.locator("#messages .body", has_text="Within the policy")).to_have_count(1, timeout=2_000)
    expect(page.locator("#compose-message")).to_have_value("")
    page.goto("/accounts/password_change/")
    page.wait_for_load_state("networkidle")

    assert violations == [], violations


def test_after_signing_out_elsewhere_the_page_offers_nothing_that_needs_a_session_and_keeps_the_draft(
    new_page, daphne_server
):
    room_tab = new_page()
    sign_up(room_tab, unique("drafter"))
    room = unique("draft")
    open_room(room_tab, room)
    send(room_tab, "another of mine")
    send(room_tab, "my own words")
    expect(message(room_tab, "another of mine").get_by_role("link", name="Edit")).to_be_visible()
    mine = message(room_tab, "my own words")
    expect(mine.get_by_role("link", name="Edit")).to_be_visible()
    mine.get_by_role("link", name="Edit").click()  # an edit left open across the sign-out
    editor = room_tab.locator("li.message.editing textarea")
    expect(editor).to_be_visible()
    room_tab.fill("#compose-message", "half a thought")

    other_tab = room_tab.context.new_page()
    other_tab.goto("/")
    other_tab.get_by_role("button", name="Log out").click()

    expect(room_tab.locator("#compose-errors")).to_contain_text("You have been signed out.", timeout=2_000)
    expect(room_tab.locator("#compose-message")).to_have_value("half a thought")
    expect(room_tab.get_by_role("button", name="Send")).to_be_disabled()
    expect(room_tab.locator("#presence")).not_to_contain_text("Here now")
    # The open edit's Save finds the session gone: a short note, never the log-in page inside the list.
    room_tab.get_by_role("button", name="Save").click()
    note = room_tab.locator("#page-note")
    expect(note).to_contain_text("You have been signed out.")
    expect(room_tab.locator("#messages form#login-form, #messages input[name=password]")).to_have_count(0)
    expect(room_tab.locator("#messages header.site, main main")).to_have_count(0)
    assert re.search(rf"next=/chat/{room}/$", note.get_by_role("link", name="Log in again").get_attribute("href"))
    # The other message's controls went with the reader's stylesheet.
    expect(message(room_tab, "another of mine").get_by_role("link", name="Edit")).to_be_hidden()
