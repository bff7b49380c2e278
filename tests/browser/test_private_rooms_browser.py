"""In Chromium: private rooms and direct messages, with JavaScript and without."""

import pytest
from playwright.sync_api import expect

from tests.support.live import PASSWORD, log_in, open_room, sign_up, unique

pytestmark = pytest.mark.browser

LIVE = 2_000  # ms: a removal closes the removed member's open page within this


def send(page, text: str) -> None:
    page.fill("#compose-message", text)
    page.get_by_role("button", name="Send").click()


def create_room(page, name: str, *, private: bool) -> None:
    page.goto("/")
    page.get_by_role("link", name="New room").click()
    page.fill("#id_name", name)
    if private:
        page.get_by_label("Private").check()
    page.get_by_role("button", name="Create the room").click()
    page.wait_for_url(f"/chat/{name}/")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_creating_a_private_room_and_adding_a_member(new_page, daphne_server, javascript):
    owner, guest = new_page(java_script_enabled=javascript), new_page(java_script_enabled=javascript)
    owner_name, guest_name, room = unique("owner"), unique("guest"), unique("plans")
    sign_up(owner, owner_name)
    sign_up(guest, guest_name)

    create_room(owner, room, private=True)
    expect(owner.locator("h1")).to_contain_text("Private")
    send(owner, "members only")
    expect(owner.locator("#messages li.message .body", has_text="members only")).to_have_count(1)
    assert guest.goto(f"/chat/{room}/").status == 404
    guest.goto("/")
    expect(guest.locator("#rooms")).not_to_contain_text(room)

    owner.get_by_role("link", name="Members").click()
    owner.fill("#id_username", guest_name)
    owner.get_by_role("button", name="Add").click()
    expect(owner.locator("#members .member", has_text=guest_name)).to_have_count(1)
    if javascript:  # in place, no page load
        assert owner.url.endswith(f"/chat/{room}/members/")

    assert guest.goto(f"/chat/{room}/").status == 200
    expect(guest.locator("#messages")).to_contain_text("members only")
    guest.goto("/")
    expect(guest.locator("#rooms")).to_contain_text(room)


def test_a_member_removed_while_their_page_is_open_is_shown_out_at_once(new_page, daphne_server):
    owner, guest = new_page(), new_page()
    owner_name, guest_name, room = unique("owner"), unique("guest"), unique("ops")
    sign_up(owner, owner_name)
    sign_up(guest, guest_name)
    create_room(owner, room, private=True)
    owner.goto(f"/chat/{room}/members/")
    owner.fill("#id_username", guest_name)
    owner.get_by_role("button", name="Add").click()
    expect(owner.locator("#members .member", has_text=guest_name)).to_have_count(1)
    socket = open_room(guest, room)

    owner.locator("#members .member", has_text=guest_name).get_by_role("button", name="Remove").click()

    expect(guest.locator("#compose-errors")).to_have_text("You are no longer a member of this room.", timeout=LIVE)
    expect(guest.locator("#compose-message")).to_have_count(0)
    guest.wait_for_timeout(300)
    assert socket.is_closed()
    assert guest.reload().status == 404


def test_a_direct_conversation_is_seen_by_its_two_people_only(new_page, daphne_server):
    alice, bob, carol = new_page(), new_page(), new_page(java_script_enabled=False)
    alice_name, bob_name, carol_name, staff_name = unique("alice"), unique("bob"), unique("carol"), unique("staff")
    for page, name in ((alice, alice_name), (bob, bob_name), (carol, carol_name)):
        sign_up(page, name)
    make_staff = "from django.contrib.auth.models import User\n"
    make_staff += f"User.objects.create_superuser({staff_name!r}, password={PASSWORD!r})"
    daphne_server.manage("shell", "-c", make_staff)

    alice.goto(f"/dm/{bob_name}/")
    expect(alice.locator("h1")).to_have_text(f"Direct messages with {bob_name}")
    bob.goto(f"/dm/{alice_name}/")
    expect(bob.locator("h1")).to_have_text(f"Direct messages with {alice_name}")
    send(alice, "just between us")
    expect(bob.locator("#messages")).to_contain_text("just between us", timeout=LIVE)
    socket_url = bob.locator("#room").get_attribute("ws-connect")
    room = socket_url.strip("/").rsplit("/", 1)[-1]
    assert room.startswith("dm-")

    bob.goto("/")
    expect(bob.locator("#direct")).to_contain_text(alice_name)
    expect(bob.locator("#direct")).to_contain_text("just between us")

    staff = new_page()
    log_in(staff, staff_name)
    for outsider in (carol, staff):
        assert outsider.goto(f"/chat/{room}/").status == 404
        outsider.goto("/")
        expect(outsider.locator("main")).not_to_contain_text("just between us")
        expect(outsider.locator("main")).not_to_contain_text(room)


def test_a_direct_message_without_javascript(new_page, daphne_server):
    alice, bob = new_page(java_script_enabled=False), new_page(java_script_enabled=False)
    alice_name, bob_name = unique("alice"), unique("bob")
    sign_up(alice, alice_name)
    sign_up(bob, bob_name)

    alice.goto(f"/dm/{bob_name}/")
    send(alice, "hello without script")
    expect(alice.locator("#messages")).to_contain_text("hello without script")
    bob.goto(f"/dm/{alice_name}/")
    expect(bob.locator("#messages")).to_contain_text("hello without script")
    expect(bob.locator("h1")).to_have_text(f"Direct messages with {alice_name}")
