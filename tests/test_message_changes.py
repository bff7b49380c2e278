"""Edit and delete: permissions on both paths, one ordered stream of changes, live and on catch-up."""

import re

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from chat import services
from chat.models import Message, Room
from tests.support.in_process import post_message, receive_all

HTMX = {"HTTP_HX_REQUEST": "true"}


def edit(room, message, user, text):
    return services.message_edit(room=room, message_id=message.pk, editor=user, data={"message": text})


def delete(room, message, user):
    return services.message_delete(room=room, message_id=message.pk, actor=user)


@pytest.fixture
def staff(db):
    from django.contrib.auth.models import User

    return User.objects.create_user("mod", password="correct-horse-battery", is_staff=True)


# Services


def test_an_edit_and_a_delete_each_take_the_rooms_next_seq(room, alice):
    first = post_message(room, alice, "first")
    post_message(room, alice, "second")

    edited = edit(room, first, alice, "first, fixed")
    deleted = delete(room, first, alice)

    assert edited.message.seq == 3 and deleted.message.seq == 4
    first.refresh_from_db()
    room.refresh_from_db()
    assert room.last_seq == 4
    assert (first.seq, first.posted_seq, first.body) == (4, 1, "")
    assert first.edited is not None and first.deleted is not None
    assert edited.event["kind"] == "edit" and deleted.event["kind"] == "delete"


def test_only_the_author_edits_and_the_same_limits_apply(room, alice, bob, staff):
    message = post_message(room, alice, "mine")

    for other in (bob, staff):  # staff may delete anyone's, not put words in their mouth
        with pytest.raises(PermissionDenied):
            edit(room, message, other, "theirs now")
    with pytest.raises(ValidationError, match="Type a message first"):
        edit(room, message, alice, "\u200b ")
    with pytest.raises(ValidationError, match="at most 2000 characters"):
        edit(room, message, alice, "x" * 2001)
    message.refresh_from_db()
    assert message.body == "mine" and message.seq == 1 and message.edited is None


def test_an_edit_to_the_same_text_changes_nothing(room, alice):
    message = post_message(room, alice, "same")

    assert edit(room, message, alice, "  same ") is None
    message.refresh_from_db()
    assert message.seq == 1 and message.edited is None


def test_the_author_and_staff_delete_others_do_not(room, alice, bob, staff):
    mine, theirs = post_message(room, alice, "mine"), post_message(room, bob, "theirs")

    with pytest.raises(PermissionDenied):
        delete(room, theirs, alice)
    delete(room, mine, alice)
    delete(room, theirs, staff)

    assert Message.objects.filter(deleted__isnull=False).count() == 2


def test_a_deleted_message_cannot_be_edited_or_deleted_again(room, alice):
    message = post_message(room, alice, "gone soon")
    delete(room, message, alice)

    with pytest.raises(services.MessageGone):
        edit(room, message, alice, "too late")
    with pytest.raises(services.MessageGone):
        delete(room, message, alice)
    room.refresh_from_db()
    assert room.last_seq == 2


def test_a_message_of_another_room_is_not_found(room, alice):
    other = Room.objects.create(name="other")
    message = post_message(other, alice, "elsewhere")

    with pytest.raises(services.MessageGone):
        edit(room, message, alice, "sneaky")
    with pytest.raises(services.MessageGone):
        delete(room, message, alice)


def test_anonymous_users_change_nothing(room, alice):
    from django.contrib.auth.models import AnonymousUser

    message = post_message(room, alice, "safe")
    with pytest.raises(PermissionDenied):
        edit(room, message, AnonymousUser(), "x")
    with pytest.raises(PermissionDenied):
        delete(room, message, AnonymousUser())


def test_staff_remove_a_user_and_optionally_all_their_messages(room, alice, bob, staff):
    other = Room.objects.create(name="other")
    spam = [post_message(room, bob, "spam"), post_message(other, bob, "more spam")]
    post_message(room, alice, "not spam")

    with pytest.raises(PermissionDenied):
        services.user_deactivate(user=bob, by=alice, delete_messages=True)
    changes = services.user_deactivate(user=bob, by=staff, delete_messages=True)

    bob.refresh_from_db()
    assert not bob.is_active
    assert sorted(change.message.pk for change in changes) == sorted(m.pk for m in spam)
    assert set(Message.objects.filter(deleted__isnull=False).values_list("body", flat=True)) == {""}
    assert Message.objects.get(body="not spam").deleted is None


# Pages without JavaScript, and htmx in place


def test_without_javascript_an_edit_is_a_page_and_posts_back_to_the_room_at_the_message(client, room, alice):
    message = post_message(room, alice, "typo hre")
    client.force_login(alice)
    url = f"/chat/{room.name}/messages/{message.pk}/edit/"

    page = client.get(url).text
    assert "typo hre</textarea>" in page and "csrfmiddlewaretoken" in page

    response = client.post(url, {"message": "typo here"})
    assert response.status_code == 302
    assert response["Location"] == f"/chat/{room.name}/#message-{message.pk}"
    room_page = client.get(response["Location"]).text
    assert "typo here" in room_page and "(edited" in room_page


def test_an_edit_of_an_old_message_returns_to_the_page_of_history_that_holds_it(client, room, alice):
    messages = [post_message(room, alice, f"m{i}") for i in range(60)]
    client.force_login(alice)

    response = client.post(f"/chat/{room.name}/messages/{messages[3].pk}/edit/", {"message": "m3, edited"})

    assert response["Location"] == f"/chat/{room.name}/?before={messages[3].pk + 1}#message-{messages[3].pk}"
    assert "m3, edited" in client.get(response["Location"]).text


def test_a_bad_edit_shows_the_error_and_keeps_the_text(client, room, alice):
    message = post_message(room, alice, "fine")
    client.force_login(alice)

    response = client.post(f"/chat/{room.name}/messages/{message.pk}/edit/", {"message": "line\n" * 51})

    assert response.status_code == 400
    assert "at most 50 lines" in response.text
    message.refresh_from_db()
    assert message.body == "fine"


def test_without_javascript_delete_is_a_confirm_page_then_a_post(client, room, alice):
    message = post_message(room, alice, "regret")
    client.force_login(alice)
    url = f"/chat/{room.name}/messages/{message.pk}/delete/"

    assert "Delete this message?" in client.get(url).text
    message.refresh_from_db()
    assert message.deleted is None  # the GET changes nothing

    response = client.post(url)
    assert response.status_code == 302
    page = client.get(response["Location"]).text
    assert "This message was deleted." in page and "regret" not in page


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_someone_elses_message_is_refused_with_a_clear_page_and_nothing_changes(client, room, alice, bob, action):
    message = post_message(room, alice, "hands off")
    client.force_login(bob)

    response = client.post(f"/chat/{room.name}/messages/{message.pk}/{action}/", {"message": "mine now"})

    assert response.status_code == 403
    assert f"You can {action} only your own messages." in response.text
    message.refresh_from_db()
    assert message.body == "hands off" and message.seq == 1


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_a_deleted_or_foreign_message_is_not_found(client, room, alice, action):
    other = Room.objects.create(name="other")
    foreign = post_message(other, alice, "elsewhere")
    gone = post_message(room, alice, "gone")
    delete(room, gone, alice)
    client.force_login(alice)

    for message in (foreign, gone):
        response = client.post(f"/chat/{room.name}/messages/{message.pk}/{action}/", {"message": "x"})
        assert response.status_code == 404
    room.refresh_from_db()
    assert room.last_seq == 2


def test_every_form_needs_its_csrf_token(room, alice):
    message = post_message(room, alice, "protected")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    for action in ("edit", "delete"):
        response = client.post(f"/chat/{room.name}/messages/{message.pk}/{action}/", {"message": "forged"})
        assert response.status_code == 403
    message.refresh_from_db()
    assert message.body == "protected" and message.deleted is None


def test_with_htmx_edit_swaps_a_form_in_place_and_saving_returns_the_message(client, room, alice):
    message = post_message(room, alice, "draft")
    client.force_login(alice)
    url = f"/chat/{room.name}/messages/{message.pk}/edit/"

    form = client.get(url, **HTMX).text
    assert form.lstrip().startswith(f'<li id="message-{message.pk}" class="message editing">')
    assert f'hx-post="{url}"' in form and "Cancel" in form

    saved = client.post(url, {"message": "final"}, **HTMX).text
    assert saved.lstrip().startswith(f'<li id="message-{message.pk}"') and "final" in saved and "(edited" in saved
    cancelled = client.get(f"/chat/{room.name}/messages/{message.pk}/", **HTMX).text
    assert "final" in cancelled and "<form" not in cancelled


def test_with_htmx_a_refusal_comes_back_in_place_with_the_reason(client, room, alice, bob):
    message = post_message(room, alice, "not yours")
    client.force_login(bob)

    answer = client.post(f"/chat/{room.name}/messages/{message.pk}/delete/", **HTMX)

    assert answer.status_code == 200  # htmx swaps 2xx answers only
    assert 'role="alert"' in answer.text and "You can delete only your own messages." in answer.text
    assert "not yours" in answer.text


def test_the_readers_stylesheet_shows_only_their_controls(client, alice, staff):
    client.force_login(alice)
    mine = client.get("/accounts/me.css")
    assert mine["Content-Type"].startswith("text/css")
    assert f"li.message.by-{alice.pk} .actions .mine" in mine.text
    assert ".staff" not in mine.text.split("*/", 1)[1]

    client.force_login(staff)
    assert "li.message .actions .staff" in client.get("/accounts/me.css").text


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_another_sites_page_linking_the_readers_stylesheet_learns_nothing(client, staff, site):
    """A sibling subdomain's page (SameSite=Lax cookies reach it) read the reader's id and staff flag."""
    client.force_login(staff)
    linked = client.get("/accounts/me.css", headers={"Sec-Fetch-Site": site})
    own = client.get("/accounts/me.css", headers={"Sec-Fetch-Site": "same-origin"})

    assert linked.status_code == 200 and linked["Content-Type"].startswith("text/css")
    assert f"by-{staff.pk}" not in linked.text and ".staff" not in linked.text and staff.username not in linked.text
    assert f"by-{staff.pk}" in own.text and ".staff" in own.text
    assert "Sec-Fetch-Site" in linked["Vary"]


def test_staff_remove_a_user_from_the_room_with_a_plain_form(client, room, bob, staff):
    post_message(room, bob, "buy pills")
    client.force_login(staff)
    url = f"/chat/{room.name}/users/{bob.username}/deactivate/"

    assert "Remove bob?" in client.get(url).text
    response = client.post(url, {"delete_messages": "on"})

    assert response.status_code == 302
    bob.refresh_from_db()
    assert not bob.is_active
    page = client.get(response["Location"]).text
    assert "bob was removed and 1 message deleted." in page
    assert "This message was deleted." in page and "buy pills" not in page


def test_staff_remove_ordinary_users_only_and_only_a_superuser_removes_staff(client, room, staff):
    from django.contrib.auth.models import User

    root = User.objects.create_superuser("root", password="correct-horse-battery")
    other_mod = User.objects.create_user("mod2", password="correct-horse-battery", is_staff=True)
    client.force_login(staff)

    for target in (root, other_mod):
        response = client.post(f"/chat/{room.name}/users/{target.username}/deactivate/", {"delete_messages": "on"})
        assert response.status_code == 403 and "only a superuser removes staff" in response.text
        target.refresh_from_db()
        assert target.is_active
    services.user_deactivate(user=other_mod, by=root, delete_messages=False)
    other_mod.refresh_from_db()
    assert not other_mod.is_active


def test_only_staff_may_remove_a_user(client, room, alice, bob):
    client.force_login(alice)

    response = client.post(f"/chat/{room.name}/users/{bob.username}/deactivate/", {"delete_messages": "on"})

    assert response.status_code == 403
    bob.refresh_from_db()
    assert bob.is_active


# Live, over the socket


def shown(frames: list[str]) -> list[str]:
    return [m for frame in frames for m in re.findall(r'<li id="message-(\d+)"[^>]*>', frame)]


async def test_an_edit_and_a_delete_reach_every_member_once(connect, room, alice, bob):
    message = await database_sync_to_async(post_message)(room, alice, "before")
    pages = [await connect(room.name, alice), await connect(room.name, bob), await connect(room.name)]

    change = await database_sync_to_async(edit)(room, message, alice, "reworded")
    await services.change_broadcast(room_name=room.name, event=change.event)
    for page in pages:
        [frame] = await receive_all(page)
        assert f'<li id="message-{message.pk}" class="message by-{alice.pk}" hx-swap-oob="innerHTML">' in frame
        assert "reworded" in frame and "(edited" in frame
        assert "beforeend:#messages" not in frame  # replaced in place, not appended

    change = await database_sync_to_async(delete)(room, message, alice)
    await services.change_broadcast(room_name=room.name, event=change.event)
    await services.change_broadcast(room_name=room.name, event=change.event)  # a duplicate is skipped
    for page in pages:
        [frame] = await receive_all(page)
        assert "This message was deleted." in frame and "reworded" not in frame
        assert f'value="{change.message.seq}"' in frame


async def test_a_page_offline_during_an_edit_and_a_delete_gets_both_on_reconnect(connect, room, alice):
    first, second, third = [await database_sync_to_async(post_message)(room, alice, f"m{i}") for i in range(3)]
    cursor = third.seq  # the page showed all three, then went offline
    await database_sync_to_async(edit)(room, first, alice, "m0, edited while away")
    await database_sync_to_async(delete)(room, second, alice)
    new = await database_sync_to_async(post_message)(room, alice, "m3, new")

    page = await connect(room.name, cursor=cursor)

    frames = await receive_all(page)
    joined = "".join(frames)
    assert joined.count(f'id="message-{first.pk}"') == 1 and "m0, edited while away" in joined
    assert joined.count(f'id="message-{second.pk}"') == 1 and "This message was deleted." in joined
    assert f'id="message-{third.pk}"' not in joined  # unchanged: not sent again
    appended = joined[joined.index("beforeend:#messages") :]
    assert f'id="message-{new.pk}"' in appended and f'id="message-{first.pk}"' not in appended
    assert f'value="{new.seq}" hx-swap-oob="true"' in frames[-1]


async def test_a_new_message_edited_before_the_page_reconnects_is_appended_once_in_post_order(connect, room, alice):
    shown_last = await database_sync_to_async(post_message)(room, alice, "seen")
    a = await database_sync_to_async(post_message)(room, alice, "a")
    b = await database_sync_to_async(post_message)(room, alice, "b")
    await database_sync_to_async(edit)(room, a, alice, "a, edited")

    page = await connect(room.name, cursor=shown_last.seq)

    joined = "".join(await receive_all(page))
    assert shown([joined]) == [str(a.pk), str(b.pk)]
    assert "a, edited" in joined and 'hx-swap-oob="innerHTML"' not in joined  # appended as it is now, not replaced


async def test_a_removed_users_messages_disappear_live_for_everyone(connect, room, alice, bob, staff):
    spam = await database_sync_to_async(post_message)(room, bob, "spam spam")
    reader = await connect(room.name, alice)

    changes = await database_sync_to_async(services.user_deactivate)(user=bob, by=staff, delete_messages=True)
    for change in changes:
        await services.change_broadcast(room_name=change.room_name, event=change.event)

    [frame] = await receive_all(reader)
    assert f'id="message-{spam.pk}"' in frame and "This message was deleted." in frame
    assert "spam spam" not in frame


def test_edits_and_deletes_share_the_posts_limits(client, room, alice, settings):
    """200 edits in 3 s made 200 frames for every reader: a change counts as a post does."""
    messages = [post_message(room, alice, f"draft {n}") for n in range(3)]
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "posts_per_user": "4/3600"}
    client.force_login(alice)
    edit = f"/chat/{room.name}/messages/{messages[0].pk}/edit/"

    for n in range(3):
        assert client.post(edit, {"message": f"take {n}"}).status_code == 302
    assert client.post(f"/chat/{room.name}/messages/{messages[1].pk}/delete/").status_code == 302
    too_fast = client.post(edit, {"message": "take 4"})
    refused_delete = client.post(f"/chat/{room.name}/messages/{messages[2].pk}/delete/")

    assert too_fast.status_code == 429 and "You are posting too fast" in too_fast.text
    assert refused_delete.status_code == 429
    messages[0].refresh_from_db()
    messages[2].refresh_from_db()
    assert messages[0].body == "take 2" and messages[2].deleted is None
