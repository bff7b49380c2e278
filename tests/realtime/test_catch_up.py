"""Never lose a message, in a real browser: a page whose server went down catches up on reconnect."""

import pytest
from playwright.sync_api import expect

from tests.support.live import message, send, unique, users_in_room

pytestmark = pytest.mark.browser

RECONNECT = 20_000  # ms: htmx retries with jittered back-off (1 s, 2 s, 4 s, … at most)


@pytest.fixture
def two_processes(live_server_factory):
    """Two daphne processes on one database (no shared channel layer: only the database links them)."""
    first = live_server_factory()
    second = live_server_factory(DATABASE_URL=first.env["DATABASE_URL"])
    yield first, second
    for server in (first, second):
        if not server.running:
            server.start()


def test_a_page_whose_server_was_down_shows_what_was_posted_meanwhile_once(two_processes, new_page):
    first, second = two_processes
    ada_page, grace_page = users_in_room(new_page, unique("blip"), first, second)
    send(ada_page, "before the outage")
    ada_page.evaluate("window.notReloaded = true")  # gone if the page reloads

    first.stop(graceful=False)  # ada's server crashes: her socket closes with 1006
    send(grace_page, "posted while ada was offline")
    first.start()

    expect(message(ada_page, "posted while ada was offline")).to_have_count(1, timeout=RECONNECT)
    ada_page.wait_for_timeout(500)
    texts = ada_page.locator("#messages li.message .body").all_inner_texts()
    assert texts == ["before the outage", "posted while ada was offline"]
    assert ada_page.evaluate("window.notReloaded") is True


def test_a_message_sent_while_disconnected_is_delivered_once_after_reconnect(two_processes, new_page):
    first, second = two_processes
    ada_page, grace_page = users_in_room(new_page, unique("queued"), first, first)

    first.stop(graceful=False)
    # htmx queues what is sent while the socket is down and sends it once it is open again.
    ada_page.fill("#compose-message", "typed during the outage")
    ada_page.get_by_role("button", name="Send").click()
    first.start()

    for page in (ada_page, grace_page):
        expect(message(page, "typed during the outage")).to_have_count(1, timeout=RECONNECT)
    expect(ada_page.locator("#compose-message")).to_have_value("")
    grace_page.wait_for_timeout(500)
    expect(message(grace_page, "typed during the outage")).to_have_count(1)
    assert second.manage("shell", "-c", COUNT % "typed during the outage").split()[-1] == "1"


COUNT = "from chat.models import Message; print(Message.objects.filter(body=%r).count())"
