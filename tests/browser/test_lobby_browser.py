"""End to end: the live lobby and unread counts between real Chromium pages, and presence across two
daphne processes behind Redis when one is killed."""

import time

import pytest
from playwright.sync_api import expect

from tests.support.live import (
    LOBBY_LIVE,
    log_in,
    message,
    open_room,
    redis_server_running,
    seed_messages,
    send,
    unique,
    users_in_room,
)

pytestmark = pytest.mark.browser

LIVE = LOBBY_LIVE


def entry(page, room):
    return page.locator("#rooms li.room-entry", has=page.locator(f'a[href="/chat/{room}/"]'))


def open_lobby(page, timeout: float = 5.0):
    """The lobby page, once its socket has brought its first list (it may have changed since the load)."""
    received = []

    def watch(ws):
        if ws.url.endswith("/ws/lobby/"):
            ws.on("framereceived", lambda payload: received.append(payload))

    page.on("websocket", watch)
    try:
        page.goto("/")
        deadline = time.monotonic() + timeout
        while not received:
            assert time.monotonic() < deadline, "the lobby socket sent nothing"
            page.wait_for_timeout(20)
    finally:
        page.remove_listener("websocket", watch)


def test_the_lobby_follows_new_rooms_posts_people_and_unread_counts_live(new_page, daphne_server):
    first, second = unique("first"), unique("second")
    ada, bea = users_in_room(new_page, first, daphne_server, daphne_server)
    send(ada, "hello from ada")
    bea.goto("/")  # bea leaves the room, having read it
    open_lobby(bea)
    expect(entry(bea, first).locator(".preview")).to_contain_text("hello from ada")
    expect(entry(bea, first).locator(".here")).to_have_text("1 here", timeout=LIVE)
    expect(entry(bea, first).locator(".unread")).to_have_count(0)

    open_room(ada, second)
    send(ada, "a second room")
    expect(bea.locator("#rooms li.room-entry a").first).to_have_text(second, timeout=LIVE)
    expect(entry(bea, second).locator(".preview")).to_contain_text("a second room")

    open_room(ada, first)
    send(ada, "one")
    send(ada, "two")
    expect(bea.locator("#rooms li.room-entry a").first).to_have_text(first, timeout=LIVE)
    expect(entry(bea, first).locator(".unread")).to_have_text("2 new", timeout=LIVE)
    expect(entry(bea, second).locator(".unread")).to_have_count(0)  # never opened: nothing to count

    # Bea opens the room in another tab: the divider marks where she left off; the lobby tab clears.
    tab = bea.context.new_page()
    open_room(tab, first)
    expect(tab.locator("#messages > li")).to_contain_text(["hello from ada", "New messages", "one", "two"])
    expect(entry(bea, first).locator(".unread")).to_have_count(0, timeout=LIVE)
    # While it is open, new messages never count.
    send(ada, "three")
    expect(message(tab, "three")).to_have_count(1, timeout=LIVE)
    bea.wait_for_timeout(2_500)
    expect(entry(bea, first).locator(".unread")).to_have_count(0)
    # The post itself reaches the lobby within a gap (its tab was just sent the cleared count).
    expect(entry(bea, first).locator(".preview")).to_contain_text("three", timeout=LIVE)
    expect(entry(bea, first).locator(".unread")).to_have_count(0)

    assert_reads_as_loaded(bea)


def assert_reads_as_loaded(lobby) -> None:
    """The live lists read exactly as the lobby freshly loaded does: same items, same order, same texts."""
    fresh = lobby.context.new_page()
    fresh.goto("/")
    for items in ("#rooms li.room-entry", "#direct li.room-entry"):
        expect(lobby.locator(items)).to_have_count(fresh.locator(items).count())
        assert lobby.locator(items).all_inner_texts() == fresh.locator(items).all_inner_texts()
        ids = "items => items.map(item => item.id)"
        assert lobby.locator(items).evaluate_all(ids) == fresh.locator(items).evaluate_all(ids)
    fresh.close()


def test_a_post_sends_the_lobby_only_its_rooms_item_moved_to_the_top(new_page, daphne_server):
    rooms = [unique(f"older{n}") for n in range(5)]
    names = [unique("user"), unique("user")]
    daphne_server.create_users(*names)
    for room in rooms:  # the first is the oldest: listed below the others
        seed_messages(daphne_server, room, names[0], 1, body=f"seeded in {room}")
    bea = new_page()
    log_in(bea, names[1])
    frames = []
    bea.on("websocket", lambda ws: ws.url.endswith("/ws/lobby/") and ws.on("framereceived", lambda f: frames.append(f)))
    open_lobby(bea)
    assert entry(bea, rooms[0]).count() == 1

    ada = new_page()
    log_in(ada, names[0])
    open_room(ada, rooms[0])
    send(ada, "up you go")
    expect(bea.locator("#rooms li.room-entry a").first).to_have_text(rooms[0], timeout=LIVE)
    expect(entry(bea, rooms[0]).locator(".preview")).to_contain_text("up you go")

    # The frame that moved it held its item only, deleted where it was and put at the top.
    [moved] = [frame for frame in frames[1:] if "up you go" in frame]
    assert 'hx-swap-oob="afterbegin:#rooms"' in moved and 'hx-swap-oob="delete"' in moved
    assert 'id="rooms"' not in moved and moved.count('class="room-entry') == 1
    assert_reads_as_loaded(bea)


def test_the_lobby_without_javascript_as_of_loading(new_page, daphne_server):
    room = unique("plain")
    [ada] = users_in_room(new_page, room, daphne_server)
    send(ada, "for readers without scripts")

    # Joins are written in batches (twice a second), and Ada's own list counts her before hers is
    # written: a reader without scripts sees it on a load after that, so she reloads until it is in.
    plain = new_page(java_script_enabled=False)
    plain.goto("/")
    deadline = time.monotonic() + 5.0
    while not entry(plain, room).locator(".here").count() and time.monotonic() < deadline:
        plain.wait_for_timeout(200)
        plain.reload()

    expect(entry(plain, room).locator(".preview")).to_contain_text("for readers without scripts")
    expect(entry(plain, room).locator(".here")).to_have_text("1 here")
    plain.locator(f'a[href="/chat/{room}/"]').click()
    expect(message(plain, "for readers without scripts")).to_have_count(1)


@pytest.fixture
def two_processes_private_redis(live_server_factory):
    with redis_server_running("the cross-process presence test") as redis:
        first = live_server_factory(REDIS_URL=redis.url)
        second = live_server_factory(REDIS_URL=redis.url, DATABASE_URL=first.env["DATABASE_URL"])
        yield first, second
    second.stop()
    first.stop()
    redis.stop()


@pytest.mark.redis
def test_a_killed_process_users_leave_the_other_processs_lists_within_a_minute(two_processes_private_redis, new_page):
    first, second = two_processes_private_redis
    room = unique("crash")
    names = [unique("user") for _ in range(3)]
    first.create_users(*names)
    pages = []
    for name, server in zip(names, (first, second, second), strict=True):
        page = new_page(base_url=server.url)
        log_in(page, name)
        open_room(page, room)
        pages.append(page)
    stays, *doomed = pages
    expect(stays.locator("#presence .people li")).to_have_text(sorted(names, key=str.casefold), timeout=LIVE)
    send(doomed[0], "from the process about to die")
    expect(message(stays, "from the process about to die")).to_have_count(1, timeout=LIVE)
    # Typing crosses processes too.
    doomed[1].locator("#compose-message").press_sequentially("hm", delay=50)
    expect(stays.locator("#typing")).to_have_text(f"{names[2]} is typing…", timeout=LIVE)

    second.stop(graceful=False)  # kill -9: no disconnect runs, its entries stay in Redis until they expire

    expect(stays.locator("#presence .people li")).to_have_text([names[0]], timeout=60_000)
