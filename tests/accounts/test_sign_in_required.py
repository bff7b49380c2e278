"""CHAT_PUBLIC_READ=0: every page but what it takes to get in needs a signed-in user (a visitor is sent to log
in, with `next`), and both sockets close a visitor's with 4401 before any frame of a room or the lobby.
With 1, the default, visitors read as before."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from chat.accounts import invitations
from chat.models import Message, Room
from tests.support.in_process import message_frame, post_message, receive_all, session_cookie

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture
def members_only(settings):
    settings.CHAT_PUBLIC_READ = False


@pytest.fixture
def history(room, alice) -> Message:
    return post_message(room, alice, "only for the team")


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pages(room: Room, message: Message) -> list[str]:
    return [
        "/",
        "/?room=general",
        f"/chat/{room.name}/",
        f"/chat/{room.name}/?before={message.pk + 1}",
        f"/chat/{room.name}/?after=0",
        f"/chat/{room.name}/messages/{message.pk}/",
        f"/chat/{room.name}/messages/{message.pk}/edit/",
        "/chat/nothing-here-yet/",
        "/accounts/settings/",
        "/accounts/password_change/",
        "/admin/",
        "/no-such-page/",
    ]


def test_a_visitor_is_sent_to_log_in_from_every_page(client, members_only, room, history):
    for path in pages(room, history):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/?next="), path
        assert "only for the team" not in response.text, path


def test_the_log_in_page_sends_the_visitor_back_where_they_were_going(client, members_only, room, alice):
    response = client.get("/chat/lobby-talk/?before=5")
    assert response["Location"] == "/accounts/login/?next=/chat/lobby-talk/%3Fbefore%3D5"

    signed = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "correct-horse-battery", "next": "/chat/lobby-talk/?before=5"},
    )

    assert signed.status_code == 302 and signed["Location"] == "/chat/lobby-talk/?before=5"


def test_a_visitors_post_is_sent_to_log_in_and_stores_nothing(client, members_only, room, history):
    response = client.post(f"/chat/{room.name}/", {"message": "hello", "token": "00000000-0000-0000-0000-000000000001"})

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Message.objects.count() == 1


def test_getting_in_stays_open_to_visitors(client, members_only, settings, room):
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/signup/").status_code == 200
    # The admin's log-in is the same page (throttled alike), reached without a detour through the gate.
    admin_login = client.get("/admin/login/?next=/admin/", follow=True)
    assert admin_login.status_code == 200 and admin_login.redirect_chain == [("/accounts/login/?next=/admin/", 302)]
    assert client.get("/accounts/me.css").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302  # an expired session's Log out button
    # Static files are served before this middleware (WhiteNoise); a miss still answers as a file would.
    assert client.get("/static/no-such-file.css").status_code == 404
    assert (
        client.post(
            "/accounts/signup/",
            {"username": "carol", "password1": "a-long-passphrase", "password2": "a-long-passphrase"},
        ).status_code
        == 302
    )
    assert client.get(f"/chat/{room.name}/").status_code == 200  # signed in by the sign-up


def test_an_invitation_link_works_for_a_visitor(client, db, members_only, settings):
    settings.CHAT_SIGNUP = "invite"
    _, token = invitations.invitation_create(by=User.objects.create_user("sam", is_staff=True))

    assert client.get(f"/accounts/signup/?invite={token}").status_code == 200
    response = client.post(
        "/accounts/signup/",
        {"username": "carol", "password1": "a-long-passphrase", "password2": "a-long-passphrase", "invite": token},
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_signed_in_users_read_as_before(members_only, room, history, alice, bob):
    client = signed_in(bob)

    for path in (
        "/",
        f"/chat/{room.name}/",
        f"/chat/{room.name}/?before={history.pk + 1}",
        "/accounts/settings/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
    # A message's own URL leads to it in the room, as before.
    assert (
        client.get(f"/chat/{room.name}/messages/{history.pk}/")["Location"]
        == f"/chat/{room.name}/#message-{history.pk}"
    )
    assert "only for the team" in client.get(f"/chat/{room.name}/").text


def test_with_public_read_on_visitors_read_as_before(client, settings, room, history):
    assert settings.CHAT_PUBLIC_READ is True  # the default

    assert client.get("/").status_code == 200
    assert "only for the team" in client.get(f"/chat/{room.name}/").text
    assert client.get(f"/chat/{room.name}/?before={history.pk + 1}").status_code == 200
    assert (
        client.get(f"/chat/{room.name}/messages/{history.pk}/")["Location"]
        == f"/chat/{room.name}/#message-{history.pk}"
    )
    assert client.get("/accounts/settings/")["Location"] == "/accounts/login/?next=/accounts/settings/"


@pytest.fixture
async def open_socket(transactional_db):
    """A socket on the real ASGI app, as a visitor or with a session cookie; disconnected after the test."""
    from project.asgi import application

    opened = []

    async def _open(path: str, user: User | None = None) -> WebsocketCommunicator:
        headers = [*HEADERS]
        if user is not None:
            headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect()
        assert connected  # accepted, so the page hears why it closes (a refused handshake is retried)
        opened.append(communicator)
        return communicator

    yield _open
    for communicator in opened:
        await communicator.disconnect()


async def test_a_visitors_room_socket_is_told_it_is_signed_out_and_closed_before_any_frame(
    open_socket, members_only, room, history
):
    communicator = await open_socket(f"/ws/chat/{room.name}/")

    frame = await communicator.receive_from(timeout=2)
    closed = await communicator.receive_output(timeout=2)

    assert "You have been signed out." in frame and 'id="account" hx-swap-oob="true"' in frame
    assert "only for the team" not in frame and "connection-status" not in frame
    assert closed == {"type": "websocket.close", "code": 4401}
    assert await communicator.receive_nothing(timeout=0.3)


async def test_a_visitors_lobby_socket_is_closed_before_any_frame(open_socket, members_only, room, history):
    communicator = await open_socket("/ws/lobby/")

    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}
    assert await communicator.receive_nothing(timeout=1.5)  # no lobby tick reaches it


async def test_signed_in_sockets_work_as_before(connect, open_socket, members_only, room, history, alice):
    communicator = await connect(room.name, alice)  # the fixture reads the status frame every socket gets
    await communicator.send_to(text_data=message_frame("members only here"))
    assert any("members only here" in frame for frame in await receive_all(communicator))

    lobby = await open_socket("/ws/lobby/", alice)
    assert 'id="rooms"' in await lobby.receive_from(timeout=3)


async def test_with_public_read_on_a_visitors_sockets_read_as_before(connect, open_socket, room, history):
    reader = await connect(room.name, cursor=0)  # the fixture reads the status frame every socket gets
    assert any("only for the team" in frame for frame in await receive_all(reader))

    lobby = await open_socket("/ws/lobby/")
    assert 'id="rooms"' in await lobby.receive_from(timeout=3)
