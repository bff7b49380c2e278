"""Scale-out: two daphne processes behind the machine's real Redis, one user on each, one room."""

import os
import socket
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.support.live import log_in, message, open_room, send, unique, users_in_room

pytestmark = [pytest.mark.browser, pytest.mark.redis]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LIVE = 2_000


@pytest.fixture(scope="module")
def redis_url() -> str:
    address = urlparse(REDIS_URL)
    try:
        socket.create_connection((address.hostname, address.port or 6379), timeout=1).close()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: the scale-out tests must run in CI.")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="module")
def two_processes(live_server_factory, redis_url):
    """Two daphne processes on one database, linked live only through Redis."""
    first = live_server_factory(REDIS_URL=redis_url)
    return first, live_server_factory(REDIS_URL=redis_url, DATABASE_URL=first.env["DATABASE_URL"])


def test_messages_cross_between_two_processes_both_ways_live(two_processes, new_page):
    first, second = two_processes
    ada_page, grace_page = users_in_room(new_page, unique("scale"), first, second)

    send(ada_page, "hello from the first process")
    expect(message(grace_page, "hello from the first process")).to_have_count(1, timeout=LIVE)
    send(grace_page, "and back from the second")
    expect(message(ada_page, "and back from the second")).to_have_count(1, timeout=LIVE)

    ada_page.wait_for_timeout(500)
    for page in (ada_page, grace_page):
        assert page.locator("#messages li.message .body").all_inner_texts() == [
            "hello from the first process",
            "and back from the second",
        ]


def test_a_room_on_another_process_hears_nothing(two_processes, new_page):
    first, second = two_processes
    [ada_page] = users_in_room(new_page, unique("here"), first)
    [watcher] = users_in_room(new_page, unique("there"), second)

    send(ada_page, "only for this room")

    watcher.wait_for_timeout(500)
    expect(watcher.locator("#messages li.message")).to_have_count(0)


def test_a_private_room_on_two_processes_a_removal_on_one_closes_the_page_on_the_other(two_processes, new_page):
    first, second = two_processes
    owner, guest, outsider = new_page(base_url=first.url), new_page(base_url=second.url), new_page(base_url=second.url)
    owner_name, guest_name, room = unique("owner"), unique("guest"), unique("private")
    first.create_users(owner_name, guest_name, unique("outsider"))
    for page, name in ((owner, owner_name), (guest, guest_name)):
        log_in(page, name)
    owner.goto("/rooms/new/")
    owner.fill("#id_name", room)
    owner.get_by_label("Private").check()
    owner.get_by_role("button", name="Create the room").click()
    owner.goto(f"/chat/{room}/members/")
    owner.fill("#id_username", guest_name)
    owner.get_by_role("button", name="Add").click()
    expect(owner.locator("#members .member", has_text=guest_name)).to_have_count(1)
    open_room(guest, room)
    assert outsider.goto(f"/chat/{room}/").status == 404

    owner.goto(f"/chat/{room}/")
    send(owner, "before the removal")
    expect(message(guest, "before the removal")).to_have_count(1, timeout=LIVE)
    owner.goto(f"/chat/{room}/members/")
    owner.locator("#members .member", has_text=guest_name).get_by_role("button", name="Remove").click()

    expect(guest.locator("#compose-errors")).to_have_text("You are no longer a member of this room.", timeout=LIVE)
    owner.goto(f"/chat/{room}/")
    send(owner, "after the removal")
    guest.wait_for_timeout(500)
    expect(message(guest, "after the removal")).to_have_count(0)
    assert guest.reload().status == 404
