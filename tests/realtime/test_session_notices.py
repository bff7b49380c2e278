"""Sockets follow the session: a post re-checks it, and a session that ends closes its sockets.

Closing uses code 4401, which htmx does not retry; the page is first told it is signed out.
"""

import asyncio
from uuid import uuid4

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client

from chat.models import Message, room_group_name
from chat.realtime import session_notices
from chat.realtime.consumers import CLOSE_SIGNED_OUT
from chat.realtime.session_notices import SESSIONS_GROUP
from tests.support.in_process import frames_until, message_frame

count_messages = database_sync_to_async(lambda: Message.objects.count())


def logged_in_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def assert_signed_out(communicator, *, removed: bool = False) -> None:
    """The page is told it is signed out (or its account removed), and offered nothing that needs a
    session, its draft untouched; then the socket closes for good."""
    frame = await communicator.receive_from(timeout=2)
    if 'id="compose-token"' in frame:  # the post's text was valid: the input was reset before the save
        frame = await communicator.receive_from(timeout=2)
    if removed:
        assert "Your account was removed" in frame and "Log in again" not in frame
    else:
        assert "You have been signed out." in frame and "Log in again" in frame
    assert '<div id="viewer-css" hx-swap-oob="delete">' in frame  # their Edit/Delete controls go
    assert '<button id="compose-send" type="submit" disabled hx-swap-oob="true">' in frame
    assert 'id="compose-message"' not in frame  # the draft stays in its box
    assert 'id="presence" class="presence" aria-label="Here now" hx-swap-oob="true"' in frame
    assert 'id="account" hx-swap-oob="true"' in frame and "Log in" in frame
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}


async def test_logging_out_closes_that_sessions_sockets_only(connect, alice):
    client = await database_sync_to_async(logged_in_client)(alice)
    this_tab = await connect("general", client=client)
    same_session = await connect("random", client=client)
    other_browser = await connect("general", alice)

    await database_sync_to_async(client.post)("/accounts/logout/")

    await assert_signed_out(this_tab)
    await assert_signed_out(same_session)
    await other_browser.send_to(text_data=message_frame("still signed in here"))
    assert any("still signed in here" in frame for frame in await frames_until(other_browser, "still signed in here"))


@pytest.mark.parametrize(
    "change, removed",
    [
        pytest.param(lambda user: setattr(user, "is_active", False), True, id="deactivated"),
        pytest.param(lambda user: user.set_password(f"new-{uuid4()}"), False, id="password changed"),
    ],
)
async def test_deactivation_or_a_new_password_closes_every_socket_of_the_user(connect, alice, bob, change, removed):
    first = await connect("general", alice)
    second = await connect("random", alice)
    someone_else = await connect("general", bob)

    def save() -> None:
        user = User.objects.get(pk=alice.pk)
        change(user)
        user.save()

    await database_sync_to_async(save)()

    await assert_signed_out(first, removed=removed)
    await assert_signed_out(second, removed=removed)
    await someone_else.send_to(text_data=message_frame("unaffected"))
    assert any("unaffected" in frame for frame in await frames_until(someone_else, "unaffected"))


@pytest.mark.parametrize(
    "end_session, removed",
    [
        pytest.param(lambda user: Session.objects.all().delete(), False, id="session deleted"),
        pytest.param(
            lambda user: User.objects.filter(pk=user.pk).update(is_active=False), True, id="deactivated by update"
        ),
        pytest.param(
            lambda user: User.objects.filter(pk=user.pk).update(password="changed"), False, id="password by update"
        ),
    ],
)
async def test_a_post_after_the_session_ended_is_refused_even_without_a_signal(connect, alice, end_session, removed):
    socket = await connect("general", alice)
    await socket.send_to(text_data=message_frame("before"))
    assert any("before" in frame for frame in await frames_until(socket, "before"))

    await database_sync_to_async(end_session)(alice)
    await socket.send_to(text_data=message_frame("after"))

    await assert_signed_out(socket, removed=removed)
    assert await count_messages() == 1


async def test_a_password_change_on_the_real_page_signs_out_every_open_socket(connect, alice):
    # Django gives the changing browser a new session key (its old one is gone), so its open
    # sockets end too; a reload connects with the new key.
    client = await database_sync_to_async(logged_in_client)(alice)
    this_browser = await connect("general", client=client)
    other_browser = await connect("general", alice)

    response = await database_sync_to_async(client.post)(
        "/accounts/password_change/",
        {
            "old_password": "correct-horse-battery",
            "new_password1": "a-new-passphrase",
            "new_password2": "a-new-passphrase",
        },
    )

    assert response.status_code == 302
    await assert_signed_out(other_browser)
    await assert_signed_out(this_browser)
    reloaded = await connect("general", client=client)
    await reloaded.send_to(text_data=message_frame("after the change"))
    assert any("after the change" in frame for frame in await frames_until(reloaded, "after the change"))


async def test_logging_in_again_elsewhere_closes_nothing(connect, alice):
    socket = await connect("general", alice)

    await database_sync_to_async(Client().login)(username="alice", password="correct-horse-battery")

    assert await socket.receive_nothing(timeout=0.5)
    await socket.send_to(text_data=message_frame("still fine"))
    assert any("still fine" in frame for frame in await frames_until(socket, "still fine"))


@pytest.mark.parametrize(
    "csrf",
    [
        pytest.param("", id="missing"),
        pytest.param("x", id="malformed"),
        pytest.param("a" * 64, id="wrong token"),
        pytest.param("é" * 64, id="non-ascii"),
    ],
)
async def test_a_post_without_a_valid_csrf_token_is_refused_and_the_socket_stays_open(connect, alice, csrf):
    socket = await connect("general", alice)

    await socket.send_to(text_data=message_frame("forged", csrf=csrf))

    assert "This page has expired: reload it to send messages." in await socket.receive_from()
    assert await count_messages() == 0
    await socket.send_to(text_data=message_frame("genuine"))
    assert any("genuine" in frame for frame in await frames_until(socket, "genuine"))


async def test_a_post_from_a_socket_without_a_csrf_cookie_is_refused(connect, alice):
    socket = await connect("general", alice, csrf_cookie=False)

    await socket.send_to(text_data=message_frame("no cookie"))

    assert "This page has expired" in await socket.receive_from()
    assert await count_messages() == 0


async def test_a_staff_removal_closes_the_removed_users_sockets(connect, alice, bob):
    from chat import services

    socket = await connect("general", alice)
    staff = await database_sync_to_async(User.objects.create_user)("staff", password="x", is_staff=True)

    await database_sync_to_async(services.user_deactivate)(user=alice, by=staff, delete_messages=False)

    await assert_signed_out(socket, removed=True)


async def test_a_process_hears_session_notices_on_one_channel_only_while_it_has_signed_in_sockets(connect, alice, bob):
    layer = get_channel_layer()
    pages = [await connect("general", alice), await connect("random", alice), await connect("general", bob)]
    anonymous = await connect("general")

    assert set(layer.groups) == {room_group_name("general"), room_group_name("random"), SESSIONS_GROUP}
    assert len(layer.groups[SESSIONS_GROUP]) == 1  # not one per socket, nor per user
    for page in pages:
        await page.disconnect()
    await asyncio.sleep(0.1)

    assert SESSIONS_GROUP not in layer.groups  # anonymous sockets have no session to follow
    await anonymous.send_to(text_data=message_frame("hello"))
    assert any("Log in to chat" in frame for frame in await frames_until(anonymous, "Log in to chat"))


async def test_a_notice_for_one_user_leaves_other_users_sockets_alone(connect, alice, bob):
    alices, bobs = await connect("general", alice), await connect("general", bob)

    await database_sync_to_async(lambda: User.objects.filter(pk=bob.pk).update(is_active=False))()
    await sync_to_async(session_notices.notify)(bob.pk, {"type": "session.check"})

    await assert_signed_out(bobs, removed=True)
    await alices.send_to(text_data=message_frame("alice is still here"))
    assert any("alice is still here" in frame for frame in await frames_until(alices, "alice is still here"))
