"""Mentions in Chromium: the person mentioned, on another page, gets the notice live, opens it and lands on
the message in its place; the lobby and the tab title count it; dismissing it with htmx removes it for good."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import violations
from tests.support.live import LIVE, LOBBY_LIVE, log_in, open_room, send, unique

pytestmark = pytest.mark.browser


def lobby_open(page) -> None:
    """The lobby, once its socket has sent its first list (the listener of notices follows it then)."""
    received: list[str] = []

    def watch(ws) -> None:
        if ws.url.endswith("/ws/lobby/"):
            ws.on("framereceived", lambda payload: received.append(payload))

    page.on("websocket", watch)
    page.goto("/")
    for _ in range(250):
        if received:
            break
        page.wait_for_timeout(20)
    page.remove_listener("websocket", watch)
    assert received, "the lobby socket sent nothing within 5 s"


def test_a_person_in_another_room_gets_the_notice_opens_it_and_lands_on_the_message(new_page, daphne_server):
    author, reader, room = unique("ann"), unique("ben"), unique("design")
    daphne_server.create_users(author, reader)
    writer, elsewhere, lobby = new_page(), new_page(), new_page()
    log_in(writer, author)
    open_room(writer, room)
    send(writer, "before")
    log_in(elsewhere, reader)
    open_room(elsewhere, unique("other"))
    log_in(lobby, reader)
    lobby_open(lobby)

    send(writer, f"@{reader} could you look at this?")

    notice = elsewhere.locator("#notices .notice a", has_text=f"{author} mentioned you in #{room}")
    expect(notice).to_have_count(1, timeout=LIVE)
    expect(lobby.locator("#notices .notice")).to_have_count(1, timeout=LIVE)
    entry = lobby.locator("#rooms .room-entry", has=lobby.get_by_role("link", name=room, exact=True))
    expect(entry.locator(".mentions")).to_have_text("@1 mention", timeout=LOBBY_LIVE)
    expect(lobby).to_have_title("(1) Lobby · Chat", timeout=LOBBY_LIVE)
    expect(writer.locator("#notices")).to_have_count(1)  # the writer's own page: no notice of their own
    expect(writer.locator("#notices .notice")).to_have_count(0)

    notice.click()

    expect(elsewhere).to_have_url(re.compile(rf"/chat/{room}/\?around=(\d+)#message-\1$"))
    target = elsewhere.locator("li.message[aria-current='true']")
    expect(target.locator(".body")).to_have_text(f"@{reader} could you look at this?")
    expect(target.locator("a.mention")).to_have_attribute("href", f"/dm/{reader}/")
    expect(target).to_be_in_viewport()
    # Seen: the lobby's count and title clear live, and the notice does not come back on a reload.
    expect(entry.locator(".mentions")).to_have_count(0, timeout=LOBBY_LIVE)
    expect(lobby).to_have_title("Lobby · Chat", timeout=LOBBY_LIVE)
    lobby.reload()
    expect(lobby.locator("#notices .notice")).to_have_count(0)
    # The inbox keeps it: linked from the header, accessible.
    lobby.locator("header.site").get_by_role("link", name="Mentions").click()
    expect(lobby.locator(".mention-entry")).to_have_count(1)
    expect(lobby.locator(".mention-entry .body")).to_have_text(f"@{reader} could you look at this?")
    assert violations(lobby) == []


def test_the_mentioned_readers_own_stylesheet_highlights_the_message_for_them_only(new_page, daphne_server):
    author, reader, room = unique("ann"), unique("ben"), unique("design")
    daphne_server.create_users(author, reader)
    writer, watcher = new_page(), new_page()
    log_in(writer, author)
    open_room(writer, room)
    log_in(watcher, reader)
    open_room(watcher, room)

    send(writer, f"@{reader} hello")

    background = "el => getComputedStyle(el).backgroundColor"
    theirs = watcher.locator("#messages li.message", has_text="hello")
    expect(theirs).to_have_count(1, timeout=LIVE)
    assert theirs.evaluate(background) == "rgb(234, 240, 255)"
    assert writer.locator("#messages li.message", has_text="hello").evaluate(background) == "rgba(0, 0, 0, 0)"
    expect(watcher.locator("#notices .notice")).to_have_count(0)  # the room it is in: the highlight is enough


def test_dismissing_a_notice_with_htmx_removes_it_for_good(new_page, daphne_server):
    author, reader, room = unique("ann"), unique("ben"), unique("design")
    daphne_server.create_users(author, reader)
    writer, lobby = new_page(), new_page()
    log_in(writer, author)
    open_room(writer, room)
    log_in(lobby, reader)
    lobby_open(lobby)

    for n in range(5):
        send(writer, f"@{reader} number {n}")

    notices = lobby.locator("#notices .notice")
    expect(notices).to_have_count(5, timeout=LIVE)
    expect(notices.locator("visible=true")).to_have_count(3)  # a small stack; the rest wait their turn
    expect(notices.first).to_contain_text(f"{author} mentioned you in #{room}")
    assert violations(lobby) == []
    with lobby.expect_response(re.compile(r"/mentions/\d+/seen/$")):
        notices.first.get_by_role("button", name="Dismiss").click()
    expect(notices).to_have_count(4)
    expect(notices.locator("visible=true")).to_have_count(3)
    expect(lobby).to_have_url(re.compile(r"/$"))  # stayed on the page

    lobby.reload()
    expect(notices).to_have_count(4)
