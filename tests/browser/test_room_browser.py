"""End to end: real Chromium pages against a real daphne process, with and without JavaScript."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.live import BASE_DIR, LIVE, QUIET, bodies, log_in, message, open_room, send, sign_up, unique

pytestmark = pytest.mark.browser


def test_a_message_sent_in_one_browser_appears_live_in_the_other(new_page, daphne_server):
    room, alice_name = unique("live"), unique("alice")
    alice, bob = new_page(), new_page()
    sign_up(alice, alice_name)
    sign_up(bob, unique("bob"))
    alice_socket = open_room(alice, room)
    open_room(bob, room)
    posts = []
    alice.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    sent = []
    alice_socket.on("framesent", lambda payload: sent.append(payload))

    alice.fill("#compose-message", "Hello Bob, can you see this?")
    alice.get_by_role("button", name="Send").click()

    expect(message(bob, "Hello Bob, can you see this?")).to_have_count(1, timeout=LIVE)
    expect(message(alice, "Hello Bob, can you see this?")).to_have_count(1, timeout=LIVE)
    expect(alice.locator("#compose-message")).to_have_value("")
    expect(message(bob, "Hello Bob, can you see this?").locator(".author")).to_have_text(alice_name)
    # It went over the socket, not by a form post and reload.
    assert any("Hello Bob, can you see this?" in str(frame) for frame in sent)
    assert posts == []
    # Exactly once, also a moment later (no second copy from a catch-up or a double broadcast).
    bob.wait_for_timeout(QUIET)
    expect(message(bob, "Hello Bob, can you see this?")).to_have_count(1)
    expect(message(alice, "Hello Bob, can you see this?")).to_have_count(1)
    expect(bodies(bob)).to_have_count(1)


def test_a_message_never_reaches_another_room(new_page, daphne_server):
    here, elsewhere = unique("here"), unique("elsewhere")
    author, watcher_here, watcher_elsewhere = new_page(), new_page(), new_page()
    sign_up(author, unique("author"))
    open_room(author, here)
    open_room(watcher_here, here)
    open_room(watcher_elsewhere, elsewhere)

    send(author, "Only for this room")

    # The broadcast happened: the other page of the same room has it...
    expect(message(watcher_here, "Only for this room")).to_have_count(1, timeout=LIVE)
    # ...and the page of the other room still has nothing, live or after a reload.
    watcher_elsewhere.wait_for_timeout(QUIET)
    expect(bodies(watcher_elsewhere)).to_have_count(0)
    watcher_elsewhere.reload()
    expect(watcher_elsewhere.locator("#messages")).to_be_visible()
    expect(bodies(watcher_elsewhere)).to_have_count(0)


def test_without_javascript_a_visitor_enters_logs_in_and_posts(new_page, daphne_server):
    room, name = unique("nojs"), unique("plain")
    daphne_server.create_users(name)
    watcher = new_page()
    open_room(watcher, room)
    page = new_page(java_script_enabled=False)

    # Lobby: a plain GET form redirects to the room.
    page.goto("/")
    page.fill("#id_room", room)
    page.get_by_role("button", name="Enter").click()
    page.wait_for_url(f"/chat/{room}/")
    expect(page.locator("#compose")).to_have_count(0)

    # "Log in to chat" leads to the login page and back to the room.
    page.get_by_role("link", name="Log in to chat").click()
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    log_in(page, name, path="")
    page.wait_for_url(f"/chat/{room}/")

    # Send: a real POST, answered with a redirect to the room page, which shows the message.
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.fill("#compose-message", "Posted without JavaScript")
        page.get_by_role("button", name="Send").click()
    assert posted.value.status == 302
    assert posted.value.header_value("location") == f"/chat/{room}/"
    page.wait_for_url(f"/chat/{room}/")
    expect(message(page, "Posted without JavaScript")).to_have_count(1)
    expect(message(page, "Posted without JavaScript").locator(".author")).to_have_text(name)
    expect(page.locator("#compose-message")).to_have_value("")

    # The JavaScript reader in the same room got it live.
    expect(message(watcher, "Posted without JavaScript")).to_have_count(1, timeout=LIVE)


HOSTILE = ["<img src=x onerror=alert(1)>", '<div hx-get="/" hx-trigger="load">']


def test_hostile_text_is_shown_as_text_and_never_runs(new_page, daphne_server):
    room = unique("hostile")
    author, reader = new_page(), new_page()
    sign_up(author, unique("mallory"))
    open_room(author, room)
    open_room(reader, room)
    dialogs, requests = [], []
    for page in (author, reader):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", lambda request: requests.append(request))

    for text in HOSTILE:
        send(author, text)
    for page in (author, reader):
        expect(bodies(page)).to_have_text(HOSTILE, timeout=LIVE)
        expect(page.locator("#messages .body img, #messages .body [hx-get]")).to_have_count(0)
    author.wait_for_timeout(QUIET)

    assert dialogs == []
    # Above all no GET / from an hx-trigger="load" (the browser may still fetch the favicon).
    assert [request.url for request in requests if "/static/" not in request.url] == []

    # The server-rendered history escapes it the same way.
    reader.reload()
    expect(bodies(reader)).to_have_text(HOSTILE)
    expect(reader.locator("#messages .body img, #messages .body [hx-get]")).to_have_count(0)
    reader.wait_for_timeout(QUIET)
    assert dialogs == []


CONVERSATION = [
    ("ada", "Morning! Are we still on for the climbing gym on Saturday?"),
    ("grace", "Yes! 10 o'clock works for me."),
    ("ada", "Great. I'll bring the spare harness."),
    ("grace", "Perfect. Shall we get lunch afterwards?"),
    ("ada", "Sure, the noodle place on the corner?"),
    ("grace", "Deal. See you there!"),
]


def test_a_reload_shows_the_history_in_order(new_page, live_server_factory):
    # A server of its own, so the screenshot (docs/room.png) shows plain names and nothing else.
    server = live_server_factory()
    room = "weekend-plans"
    pages = {
        "ada": new_page(base_url=server.url, viewport={"width": 900, "height": 620}),
        "grace": new_page(base_url=server.url),
    }
    for name, page in pages.items():
        sign_up(page, name)
        open_room(page, room)

    for name, text in CONVERSATION:
        send(pages[name], text)
    expected = [text for _, text in CONVERSATION]
    expect(bodies(pages["grace"])).to_have_text(expected, timeout=LIVE)

    ada = pages["ada"]
    ada.reload()
    expect(bodies(ada)).to_have_text(expected)
    expect(ada.locator("#messages li.message .author")).to_have_text([name for name, _ in CONVERSATION])
    ids = ada.locator("#messages li.message").evaluate_all("items => items.map(item => item.id)")
    numbers = [int(i.removeprefix("message-")) for i in ids]
    assert numbers == sorted(numbers)

    screenshots = BASE_DIR / "test-results"
    screenshots.mkdir(exist_ok=True)
    ada.locator("#compose-message").blur()
    ada.screenshot(path=Path(screenshots, "room.png"))


def test_an_anonymous_reader_sees_messages_live_but_cannot_post(new_page, daphne_server):
    room = unique("readers")
    author, reader = new_page(), new_page()
    sign_up(author, unique("speaker"))
    open_room(author, room)
    open_room(reader, room)

    expect(reader.locator("#compose")).to_have_count(0)
    expect(reader.get_by_role("link", name="Log in to chat")).to_be_visible()

    send(author, "Anyone listening?")
    expect(message(reader, "Anyone listening?")).to_have_count(1, timeout=LIVE)


def inline_code(page: Page) -> list[str]:
    """Script the page carries itself: inline <script> elements and on*/hx-on* handler attributes."""
    return page.evaluate(
        """() => [
            ...[...document.querySelectorAll("script:not([src])")].map(script => script.outerHTML),
            ...[...document.querySelectorAll("*")].flatMap(element => [...element.attributes])
                .filter(attribute => /^(data-)?(hx-)?on/i.test(attribute.name)).map(attribute => attribute.name),
        ]"""
    )


def test_pages_load_only_htmx_and_its_ws_extension_and_log_no_errors(new_page, daphne_server):
    page, peer = new_page(), new_page()
    scripts, errors = [], []
    for each in (page, peer):
        each.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
        each.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        each.on("pageerror", lambda error: errors.append(str(error)))
    room = unique("scripts")

    page.goto("/accounts/signup/")
    assert inline_code(page) == []
    sign_up(page, unique("careful"))
    assert inline_code(page) == []
    page.fill("#id_room", room)
    page.get_by_role("button", name="Enter").click()
    page.wait_for_url(f"/chat/{room}/")
    open_room(page, room)
    open_room(peer, room)
    send(page, "No surprises here")
    expect(message(peer, "No surprises here")).to_have_count(1, timeout=LIVE)
    assert inline_code(page) == []
    assert inline_code(peer) == []

    # Exactly django-htmx's two files, from our own origin, hashed by the manifest storage.
    static = re.escape(f"{daphne_server.url}/static/django_htmx/")
    loaded = sorted(set(scripts))
    assert len(loaded) == 2, loaded
    assert re.fullmatch(static + r"ext/hx-ws-2[.\w]*\.[0-9a-f]{12}\.js", loaded[0]), loaded
    assert re.fullmatch(static + r"htmx-2[.\w]*\.[0-9a-f]{12}\.js", loaded[1]), loaded
    assert errors == []


def test_sign_up_log_in_post_and_log_out_through_the_real_pages(new_page, daphne_server):
    name, room = unique("newcomer"), unique("welcome")
    page = new_page()

    sign_up(page, name)
    expect(page.locator(".flash")).to_have_text(f"Welcome, {name}.")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.locator("header.site")).not_to_contain_text(name)

    log_in(page, name)
    page.wait_for_url("/")
    open_room(page, room)
    send(page, "My first message")
    expect(message(page, "My first message").locator(".author")).to_have_text(name)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("/")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.goto(f"/chat/{room}/")
    expect(page.locator("#compose")).to_have_count(0)
    expect(page.get_by_role("link", name="Log in to chat")).to_be_visible()
    expect(message(page, "My first message")).to_have_count(1)
