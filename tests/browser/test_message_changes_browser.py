"""Edit and delete in real browsers: live between two users, without JavaScript, on a page that
was offline when it happened, and behind a "⋯" button on a touch screen."""

import pytest
from playwright.sync_api import expect

from tests.support.axe import violations
from tests.support.live import LIVE, log_in, message, open_room, send, sign_up, unique, users_in_room

pytestmark = pytest.mark.browser

RECONNECT = 20_000


def test_an_edit_and_a_delete_show_live_for_the_other_user(new_page, daphne_server):
    ada, bob = users_in_room(new_page, unique("edits"), daphne_server, daphne_server)
    send(ada, "teh quick fox")
    expect(message(bob, "teh quick fox")).to_have_count(1, timeout=LIVE)

    # Bob sees no controls on Ada's message; Ada sees hers.
    expect(message(bob, "teh quick fox").get_by_role("link", name="Edit")).to_be_hidden()
    mine = message(ada, "teh quick fox")
    mine.get_by_role("link", name="Edit").click()
    editor = ada.locator("li.message.editing textarea")
    expect(editor).to_be_focused()
    editor.fill("the quick fox")
    ada.get_by_role("button", name="Save").click()
    # The keyboard stays on the message, not dropped to the page's body.
    expect(message(ada, "the quick fox")).to_be_focused()

    expect(message(bob, "the quick fox")).to_have_count(1, timeout=LIVE)
    expect(message(bob, "the quick fox").locator(".edited")).to_contain_text("edited")
    expect(message(ada, "the quick fox")).to_have_count(1)

    # Delete: a confirmation step in HTML, then gone for everyone, a note left in its place.
    message(ada, "the quick fox").get_by_text("Delete", exact=True).first.click()
    ada.get_by_role("button", name="Delete").click()
    expect(ada.locator("li.message:has(.removed)")).to_be_focused()
    expect(bob.locator("li.message:has(.removed)")).to_have_count(1, timeout=LIVE)
    expect(bob.get_by_text("the quick fox")).to_have_count(0)
    expect(ada.get_by_text("This message was deleted.")).to_have_count(1)


def test_cancel_returns_to_the_message_unchanged(new_page, daphne_server):
    [ada] = users_in_room(new_page, unique("cancel"), daphne_server)
    send(ada, "keep me")

    message(ada, "keep me").get_by_role("link", name="Edit").click()
    ada.locator("li.message.editing textarea").fill("changed my mind")
    ada.get_by_role("link", name="Cancel").click()

    expect(message(ada, "keep me")).to_have_count(1)
    expect(ada.locator("li.message.editing")).to_have_count(0)


def test_without_javascript_edit_and_delete_are_pages(new_page, daphne_server):
    room = unique("nojs-edit")
    name = unique("ada")
    daphne_server.create_users(name)
    page = new_page(java_script_enabled=False)
    log_in(page, name)
    page.goto(f"/chat/{room}/")
    page.fill("#compose-message", "frist")
    page.get_by_role("button", name="Send").click()

    message(page, "frist").get_by_role("link", name="Edit").click()
    page.get_by_label("Message", exact=True).fill("first")
    page.get_by_role("button", name="Save").click()
    expect(message(page, "first")).to_have_count(1)
    expect(page.get_by_text("Your message was edited.")).to_be_visible()

    message(page, "first").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete for everyone").click()
    expect(page.get_by_text("This message was deleted.")).to_have_count(1)
    expect(page.get_by_text("first", exact=True)).to_have_count(0)


def test_a_page_that_was_offline_shows_the_edit_and_the_deletion_after_reconnect(live_server_factory, new_page):
    first = live_server_factory()
    second = live_server_factory(DATABASE_URL=first.env["DATABASE_URL"])
    room = unique("offline-edit")
    reader, author = users_in_room(new_page, room, first, second)  # no shared layer: only the database
    send(author, "will be edited")
    send(author, "will be deleted")
    open_room(reader, room)  # the reader's page loads with both
    expect(message(reader, "will be deleted")).to_have_count(1)
    reader.evaluate("window.notReloaded = true")

    first.stop(graceful=False)  # the reader's server is down while the changes happen elsewhere
    message(author, "will be edited").get_by_role("link", name="Edit").click()
    author.locator("li.message.editing textarea").fill("was edited")
    author.get_by_role("button", name="Save").click()
    expect(message(author, "was edited")).to_have_count(1)
    message(author, "will be deleted").get_by_text("Delete", exact=True).first.click()
    author.get_by_role("button", name="Delete").click()
    expect(author.locator("li.message:has(.removed)")).to_have_count(1)
    first.start()

    expect(message(reader, "was edited")).to_have_count(1, timeout=RECONNECT)
    expect(reader.locator("li.message:has(.removed)")).to_have_count(1)
    expect(reader.get_by_text("will be deleted")).to_have_count(0)
    assert reader.locator("#messages li.message").count() == 2
    assert reader.evaluate("window.notReloaded") is True


def test_staff_remove_a_spammer_and_all_their_messages_and_the_spammers_tab_can_no_longer_post(new_page, daphne_server):
    room = unique("moderated")
    spammer_name, moderator_name = unique("spammer"), unique("mod")
    daphne_server.create_users(spammer_name, moderator_name)
    promote = f"from django.contrib.auth.models import User; User.objects.filter(username={moderator_name!r})"
    daphne_server.manage("shell", "-c", promote + ".update(is_staff=True)")
    spammer, moderator, bystander = new_page(), new_page(), new_page()
    log_in(spammer, spammer_name)
    log_in(moderator, moderator_name)
    open_room(spammer, room)
    send(spammer, "cheap pills here")
    send(spammer, "and here")
    open_room(moderator, room)
    open_room(bystander, room)

    message(moderator, "cheap pills here").get_by_role("link", name="Remove user").click()
    moderator.get_by_label("Also delete all their messages, in every room").check()
    moderator.get_by_role("button", name=f"Remove {spammer_name}").click()

    expect(moderator.get_by_text(f"{spammer_name} was removed and 2 messages deleted.")).to_be_visible()
    expect(moderator.locator("li.message:has(.removed)")).to_have_count(2)
    expect(bystander.locator("li.message:has(.removed)")).to_have_count(2, timeout=LIVE)  # live for everyone
    expect(bystander.get_by_text("cheap pills here")).to_have_count(0)
    # The spammer's open tab is told it is signed out, and its socket is closed for good.
    expect(spammer.locator("#compose-errors")).to_have_text(
        "Your account was removed: you can no longer post.", timeout=LIVE
    )
    expect(spammer.get_by_role("button", name="Send")).to_be_disabled()
    expect(spammer.get_by_role("link", name="Edit")).to_have_count(0)
    expect(spammer.get_by_role("link", name="Log in again")).to_have_count(0)
    expect(spammer.locator("#presence")).to_have_text("You are no longer here.")
    spammer.reload()
    expect(spammer.get_by_role("link", name="Log in to chat")).to_be_visible()


TOUCH = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}


def test_on_a_touch_screen_the_controls_sit_behind_a_menu_button(new_page, daphne_server):
    room = unique("touch")
    phone = new_page(**TOUCH)
    sign_up(phone, unique("thumb"))
    open_room(phone, room)
    assert phone.evaluate("matchMedia('(hover: none)').matches")
    send(phone, "tap me")
    other = new_page()
    sign_up(other, unique("other"))
    open_room(other, room)
    send(other, "not yours")
    expect(message(phone, "not yours")).to_have_count(1, timeout=LIVE)

    mine = message(phone, "tap me")
    more = mine.locator("summary[aria-label='Message actions']")
    expect(more).to_be_visible()
    expect(mine.get_by_role("link", name="Edit")).to_be_hidden()  # behind the button until tapped
    expect(message(phone, "not yours").locator("summary[aria-label='Message actions']")).to_be_hidden()
    box = more.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44

    more.tap()
    edit = mine.get_by_role("link", name="Edit")
    expect(edit).to_be_visible()
    assert edit.bounding_box()["height"] >= 44
    assert violations(phone) == []
    edit.tap()
    expect(phone.locator("li.message.editing textarea")).to_be_focused()
