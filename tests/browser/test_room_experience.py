"""A room that reads like a chat, in a real browser: older history by scrolling, connection status,
catch-up that keeps what the page has, times in the reader's zone."""

import time
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.support.live import PASSWORD, log_in, message, open_room, send, unique, users_in_room

pytestmark = pytest.mark.browser

RECONNECT = 70_000  # ms: htmx retries with jittered back-off, at most 64 s apart after a long outage
REVEAL = 50_000  # ms: "Reconnecting…" must show within 45 s of the socket dropping (and its last status frame)

FILL_ROOM = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from chat.models import Message, Room
from uuid import uuid4
author = User.objects.create_user({author!r}, password={password!r})
room = Room.objects.create(name={room!r}, last_seq={count})
start = timezone.now() - timedelta(minutes={count})
Message.objects.bulk_create(
    Message(room=room, author=author, body=f"history {{i}}", seq=i + 1, posted_seq=i + 1, token=uuid4())
    for i in range({count})
)
for i, pk in enumerate(Message.objects.filter(room=room).order_by("id").values_list("id", flat=True)):
    Message.objects.filter(pk=pk).update(created=start + timedelta(minutes=i))
"""


def fill_room(server, room: str, count: int) -> str:
    author = unique("historian")
    server.manage("shell", "-c", FILL_ROOM.format(author=author, password=PASSWORD, room=room, count=count))
    return author


def bodies(page) -> list[str]:
    return page.locator("#earlier li.message .body, #messages li.message .body").all_inner_texts()


def in_view(page, locator) -> bool:
    """Whether the element is inside the scroller's visible area."""
    return page.evaluate(
        """el => { const s = document.querySelector('.scroller').getBoundingClientRect();
                   const r = el.getBoundingClientRect(); return r.bottom > s.top && r.top < s.bottom; }""",
        locator.element_handle(),
    )


def test_a_room_of_300_opens_at_the_newest_and_scrolls_back_to_the_first(new_page, daphne_server):
    room = unique("long")
    fill_room(daphne_server, room, 300)
    page = new_page(viewport={"width": 1280, "height": 800})
    open_room(page, room)

    newest = message(page, "history 299")
    expect(newest).to_have_count(1)
    assert in_view(page, newest)
    assert not in_view(page, message(page, "history 250"))

    scroller = page.locator(".scroller")
    top_body = page.locator("#earlier li.message .body, #messages li.message .body").first
    for _ in range(12):  # each scroll to the top reveals the sentinel, which loads the 50 before
        top_text = top_body.inner_text()
        scroller.evaluate("s => s.scrollTop = -s.scrollHeight")
        if page.locator("#earlier .start").count():
            break
        # A batch comes in (this one's, or one already on its way) above what the reader sees: the
        # message that was on top stays put.
        expect(top_body).not_to_have_text(top_text, timeout=10_000)
        was_on_top = page.locator("li.message", has=page.get_by_text(top_text, exact=True))
        assert in_view(page, was_on_top)
    expect(page.locator("#earlier .start")).to_have_count(1)
    assert bodies(page) == [f"history {i}" for i in range(300)]
    assert page.locator(".day").count() == len(set(page.locator(".day time").all_inner_texts()))  # one per day
    assert page.evaluate("document.documentElement.scrollHeight <= window.innerHeight + 1")


def test_scrolling_back_a_little_loads_one_page_and_keeps_the_readers_place(new_page, daphne_server):
    room = unique("thousand")
    fill_room(daphne_server, room, 1000)
    page = new_page(viewport={"width": 1280, "height": 800})
    open_room(page, room)
    expect(message(page, "history 999")).to_have_count(1)
    batches = []
    page.on("request", lambda request: batches.append(request.url) if "before=" in request.url else None)

    page.locator(".scroller").hover()
    older = page.get_by_role("link", name="Older messages")
    for _ in range(60):  # wheel up, as a reader does, until the older-history link comes into view
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(50)
        if batches:
            break
    expect(page.locator("#earlier li.message")).to_have_count(50)
    page.wait_for_timeout(2000)  # nothing more loads by itself

    assert len(batches) == 1
    expect(page.locator("#earlier li.message")).to_have_count(50)
    assert in_view(page, message(page, "history 950"))  # the reader is where they were
    assert not in_view(page, older)
    page.mouse.wheel(0, -400)  # a little more: still reading the page that came in
    page.wait_for_timeout(500)
    assert len(batches) == 1


def test_a_reader_scrolled_well_up_gets_jump_to_newest_which_takes_them_there(new_page, daphne_server):
    room = unique("jump")
    fill_room(daphne_server, room, 120)
    page = new_page(viewport={"width": 1280, "height": 800})
    open_room(page, room)
    jump = page.get_by_role("link", name="Jump to newest")
    expect(jump).to_be_hidden()  # at the newest messages

    scroller = page.locator(".scroller")
    scroller.evaluate("s => s.scrollTop = -100")
    expect(jump).to_be_hidden()  # a little up: still reading the latest
    scroller.evaluate("s => s.scrollTop = -1500")
    expect(jump).to_be_visible()
    assert not in_view(page, message(page, "history 119"))

    jump.click()
    expect(jump).to_be_hidden()
    assert in_view(page, message(page, "history 119"))


def test_without_javascript_older_messages_are_pages_linked_both_ways(new_page, daphne_server):
    room = unique("pages")
    fill_room(daphne_server, room, 120)
    page = new_page(java_script_enabled=False)
    page.goto(f"/chat/{room}/")

    assert bodies(page)[-1] == "history 119"
    page.get_by_role("link", name="Older messages").click()
    assert bodies(page) == [f"history {i}" for i in range(20, 70)]
    page.get_by_role("link", name="Older messages").click()
    assert bodies(page) == [f"history {i}" for i in range(20)]
    expect(page.get_by_text(f"This is the start of {room}.")).to_be_visible()
    page.get_by_role("link", name="Newer messages").click()
    assert bodies(page) == [f"history {i}" for i in range(20, 70)]


def test_a_server_restart_shows_reconnecting_then_what_was_missed_keeping_older_history(live_server_factory, new_page):
    first = live_server_factory()
    second = live_server_factory(DATABASE_URL=first.env["DATABASE_URL"])
    room = unique("restart")
    fill_room(first, room, 80)
    reader, writer = users_in_room(new_page, room, first, second)
    status = reader.locator("#connection-status .reconnecting")
    expect(status).to_be_hidden()
    # Load the older page above, so there is history a list replacement would throw away.
    reader.locator(".scroller").evaluate("s => s.scrollTop = -s.scrollHeight")
    expect(reader.locator("#earlier li.message")).to_have_count(30)
    reader.evaluate("window.notReloaded = true")

    first.stop(graceful=False)
    expect(status).to_be_visible(timeout=REVEAL)
    expect(reader.get_by_role("status")).to_have_text("Reconnecting…")
    send(writer, "while you were away")
    send(writer, "and one more")
    # htmx's next retry that reaches the restarted server: a socket the server talks on (a retry made
    # while daphne was still starting fails, and the one after it may come a minute later).
    answered = []
    reader.on("websocket", lambda ws: ws.on("framereceived", lambda payload: answered.append(ws)))
    first.start()
    deadline = time.monotonic() + RECONNECT / 1000
    while not answered:
        assert time.monotonic() < deadline, f"the page did not reconnect within {RECONNECT} ms"
        reader.wait_for_timeout(50)

    expect(status).to_be_hidden(timeout=5_000)
    expect(message(reader, "and one more")).to_have_count(1, timeout=5_000)
    reader.wait_for_timeout(500)
    assert bodies(reader) == [f"history {i}" for i in range(80)] + ["while you were away", "and one more"]
    assert reader.evaluate("window.notReloaded") is True


def test_times_show_in_the_zone_chosen_in_settings(new_page, daphne_server):
    room = unique("zones")
    name = unique("tokyo")
    daphne_server.create_users(name)
    page = new_page()
    log_in(page, name)
    page.goto("/accounts/settings/")
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Times are now shown in Asia/Tokyo.")).to_be_visible()

    open_room(page, room)
    expect(page.get_by_text("Times in Asia/Tokyo")).to_be_visible()
    send(page, "konnichiwa")
    time = message(page, "konnichiwa").locator("time")
    assert time.get_attribute("title").endswith("JST")
    when = datetime.fromisoformat(time.get_attribute("datetime"))
    assert when.utcoffset() == timedelta(hours=9)  # the machine-readable time carries the zone's offset
    assert time.inner_text() == when.strftime("%H:%M")
    expect(page.locator("#messages .day").first).to_be_visible()
