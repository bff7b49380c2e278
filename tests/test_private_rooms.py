"""Private rooms and direct messages: members only, on every path.

The authorization matrix: every path, times every role (owner, member, former member, other user, staff,
anonymous). To anyone not a member, a private room answers exactly as a room that does not exist.
"""

import json
import re
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from chat import selectors, services
from chat.models import Membership, Message, Room
from tests.support.in_process import message_frame, open_socket, post_message, receive_all

MEMBERS = {"owner", "member"}
ROLES = ["owner", "member", "former", "other", "staff", "anonymous"]
HIDDEN = "the-secret-plan"


@pytest.fixture
def cast(db) -> dict[str, User | None]:
    users = {role: User.objects.create_user(role, password="correct-horse-battery") for role in ROLES[:-1]}
    users["staff"].is_staff = users["staff"].is_superuser = True
    users["staff"].save()
    users["anonymous"] = None
    return users


@pytest.fixture
def private_room(cast) -> Room:
    room = services.room_create(name="plans", creator=cast["owner"], private=True)
    services.member_add(room=room, by=cast["owner"], username="member")
    services.member_add(room=room, by=cast["owner"], username="former")
    services.member_remove(room=room, by=cast["owner"], user=cast["former"])
    post_message(room, cast["owner"], HIDDEN)
    return room


def client_of(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def paths(room: Room) -> dict[str, str]:
    message = Message.objects.filter(room=room).first()
    return {
        "room": f"/chat/{room.name}/",
        "older": f"/chat/{room.name}/?before={message.pk + 1}",
        "newer": f"/chat/{room.name}/?after=0",
        "around": f"/chat/{room.name}/?around={message.pk}",
        "members": f"/chat/{room.name}/members/",
        "message": f"/chat/{room.name}/messages/{message.pk}/",
        "edit": f"/chat/{room.name}/messages/{message.pk}/edit/",
        "delete": f"/chat/{room.name}/messages/{message.pk}/delete/",
        "remove-user": f"/chat/{room.name}/users/member/deactivate/",
    }


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_a_private_room_is_404_to_non_members_as_if_it_did_not_exist(cast, private_room, role):
    client = client_of(cast[role])
    answers = {name: client.get(url) for name, url in paths(private_room).items()}
    statuses = {name: answer.status_code for name, answer in answers.items()}

    if role in MEMBERS:
        assert statuses["room"] == statuses["older"] == statuses["newer"] == statuses["around"] == 200
        assert statuses["members"] == 200
        assert HIDDEN in answers["room"].content.decode()
        assert statuses["message"] == 302
        # The owner wrote the message: only they may edit it; staff powers do not apply to a member either.
        assert statuses["edit"] == (200 if role == "owner" else 403)
    else:
        assert set(statuses.values()) == {404}, statuses
        assert not any(HIDDEN in answer.content.decode() for answer in answers.values())
        nowhere = client.get("/chat/no-such-room/messages/1/")
        assert nowhere.status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_a_no_javascript_post_by_a_non_member_is_refused_and_stores_nothing(cast, private_room, role):
    client = client_of(cast[role])
    before = Message.objects.count()
    answer = client.post(f"/chat/{private_room.name}/", {"message": "let me in", "token": str(uuid4())})

    if role in MEMBERS:
        assert answer.status_code == 302 and Message.objects.count() == before + 1
    else:
        assert answer.status_code == 404 and Message.objects.count() == before


@pytest.mark.parametrize("role", ROLES)
def test_the_lobby_lists_a_private_room_to_its_members_only_not_even_its_name(cast, private_room, role):
    page = client_of(cast[role]).get("/").content.decode()
    assert ("plans" in page) == (role in MEMBERS)
    assert (HIDDEN in page) == (role in MEMBERS)


async def room_socket(room_name: str, user: User | None) -> WebsocketCommunicator:
    return await open_socket(f"/ws/chat/{room_name}/", user)


async def frames_until_close(socket: WebsocketCommunicator) -> tuple[list[str], int]:
    """The frames a socket gets until it closes, and its close code."""
    frames = []
    while (output := await socket.receive_output(timeout=2))["type"] != "websocket.close":
        frames.append(output["text"])
    return frames, output["code"]


@pytest.fixture
def private_room_async(transactional_db, cast) -> Room:
    room = services.room_create(name="plans", creator=cast["owner"], private=True)
    services.member_add(room=room, by=cast["owner"], username="member")
    services.member_add(room=room, by=cast["owner"], username="former")
    services.member_remove(room=room, by=cast["owner"], user=cast["former"])
    post_message(room, cast["owner"], HIDDEN)
    return room


@pytest.mark.parametrize("role", ROLES)
async def test_a_non_members_socket_closes_with_4404_before_any_frame_of_the_room(cast, private_room_async, role):
    socket = await room_socket(private_room_async.name, cast[role])
    try:
        if role in MEMBERS:
            assert 'id="connection-status"' in await socket.receive_from()
            await socket.send_to(text_data=json.dumps({"after": "0"}))
            assert any(HIDDEN in frame for frame in await receive_all(socket))
        else:
            assert await socket.receive_output(timeout=2) == {"type": "websocket.close", "code": 4404}
    finally:
        await socket.disconnect()


async def test_a_removed_members_socket_closes_at_once_and_gets_nothing_after(cast, private_room_async):
    member = await room_socket(private_room_async.name, cast["member"])
    owner = await room_socket(private_room_async.name, cast["owner"])
    for socket in (member, owner):
        await socket.receive_from()
        await socket.send_to(text_data=json.dumps({"after": str(private_room_async.last_seq + 1)}))
    await receive_all(member, first=0.3)

    await database_sync_to_async(services.member_remove)(room=private_room_async, by=cast["owner"], user=cast["member"])
    await owner.send_to(text_data=message_frame("after the removal"))

    frames, code = await frames_until_close(member)
    assert code == 4404
    assert "You are no longer a member of this room." in frames[-1]
    assert not any("after the removal" in frame for frame in frames)
    await owner.disconnect()


async def test_a_member_removed_between_posts_cannot_post_on_an_open_socket(cast, private_room_async, monkeypatch):
    # Even without the notice (a layer that lost it), the post's own check refuses it.
    monkeypatch.setattr(services, "room_access_changed_on_commit", lambda **kwargs: None)
    member = await room_socket(private_room_async.name, cast["member"])
    await member.receive_from()
    await database_sync_to_async(services.member_remove)(room=private_room_async, by=cast["owner"], user=cast["member"])
    count = await database_sync_to_async(Message.objects.count)()

    await member.send_to(text_data=message_frame("sneaking one in"))
    frames, code = await frames_until_close(member)

    assert "You are no longer a member of this room." in frames[-1] and code == 4404
    assert await database_sync_to_async(Message.objects.count)() == count


async def test_a_name_that_becomes_a_private_room_closes_the_pages_that_had_it_open_as_public(cast, connect):
    outsider = await connect("plans", cast["other"])
    await database_sync_to_async(services.room_create)(name="plans", creator=cast["owner"], private=True)
    frames, code = await frames_until_close(outsider)
    assert "You are no longer a member of this room." in frames[-1] and code == 4404


# Creating rooms and managing members, without JavaScript.


def test_creating_a_private_room_makes_the_creator_its_owner_and_opens_it(cast):
    client = client_of(cast["owner"])
    answer = client.post("/rooms/new/", {"name": "design", "private": "on"})
    assert answer.status_code == 302 and answer["Location"] == "/chat/design/"
    room = Room.objects.get(name="design")
    assert room.kind == Room.PRIVATE
    assert list(Membership.objects.filter(room=room).values_list("user__username", "is_owner")) == [("owner", True)]
    assert "Private" in client.get("/chat/design/").content.decode()


def test_a_taken_or_reserved_name_gets_a_clear_error(cast):
    client = client_of(cast["owner"])
    client.post("/rooms/new/", {"name": "design"})
    taken = client.post("/rooms/new/", {"name": "design", "private": "on"})
    reserved = client.post("/rooms/new/", {"name": "dm-mine"})
    assert taken.status_code == 400 and "That name is taken" in taken.content.decode()
    assert reserved.status_code == 400 and "kept for direct messages" in reserved.content.decode()
    assert Room.objects.filter(name="design").get().kind == Room.PUBLIC


def test_the_new_room_page_sends_anonymous_readers_to_log_in(db):
    answer = Client().get("/rooms/new/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")


def test_owners_add_and_remove_members_and_members_leave(cast):
    room = services.room_create(name="ops", creator=cast["owner"], private=True)
    owner, member = client_of(cast["owner"]), client_of(cast["member"])

    unknown = owner.post(f"/chat/{room.name}/members/", {"username": "nobody"})
    assert unknown.status_code == 400 and "There is no user called" in unknown.content.decode()
    assert member.get(f"/chat/{room.name}/").status_code == 404

    assert owner.post(f"/chat/{room.name}/members/", {"username": "member"}).status_code == 302
    assert member.get(f"/chat/{room.name}/").status_code == 200
    # A member who is not an owner may not add or remove others.
    assert member.post(f"/chat/{room.name}/members/", {"username": "other"}).status_code == 403
    assert member.post(f"/chat/{room.name}/members/owner/remove/").status_code == 403
    # The last owner cannot leave without handing over.
    stuck = owner.post(f"/chat/{room.name}/members/owner/remove/")
    assert stuck.status_code == 400 and "Make another member an owner" in stuck.content.decode()

    assert owner.post(f"/chat/{room.name}/members/member/owner/").status_code == 302
    assert owner.post(f"/chat/{room.name}/members/owner/remove/").status_code == 302  # left
    assert owner.get(f"/chat/{room.name}/").status_code == 404
    assert member.post(f"/chat/{room.name}/members/member/remove/").status_code == 400  # now the last owner


def test_member_changes_with_htmx_answer_the_members_section_in_place(cast):
    room = services.room_create(name="ops", creator=cast["owner"], private=True)
    owner = client_of(cast["owner"])
    answer = owner.post(f"/chat/{room.name}/members/", {"username": "nobody"}, headers={"HX-Request": "true"})
    page = answer.content.decode()
    assert answer.status_code == 200 and page.lstrip().startswith('<div id="members"')
    assert "There is no user called" in page
    added = owner.post(f"/chat/{room.name}/members/", {"username": "member"}, headers={"HX-Request": "true"})
    assert added.status_code == 200 and ">member<" in added.content.decode()


def test_a_public_room_has_no_member_list(cast):
    post_message(Room.objects.create(name="general"), cast["owner"], "hi")
    assert client_of(cast["owner"]).get("/chat/general/members/").status_code == 404


# Direct messages.


def test_both_people_reach_their_conversation_as_the_others_name_and_nobody_else_can(cast):
    alice, bob = client_of(cast["member"]), client_of(cast["other"])
    page = alice.get("/dm/other/")
    assert page.status_code == 200 and "Direct messages with other" in page.content.decode()
    room = Room.objects.get(kind=Room.DIRECT)
    assert room.name.startswith("dm-") and len(room.name) == 35
    alice.post(f"/chat/{room.name}/", {"message": "just between us", "token": str(uuid4())})

    theirs = bob.get("/dm/member/").content.decode()
    assert "Direct messages with member" in theirs and "just between us" in theirs
    assert Room.objects.filter(kind=Room.DIRECT).count() == 1
    for outsider in (cast["owner"], cast["staff"], None):
        assert client_of(outsider).get(f"/chat/{room.name}/").status_code == 404
        assert "just between us" not in client_of(outsider).get("/").content.decode()
    # The lobby lists it under "Direct messages" by the other person's name.
    lobby = alice.get("/").content.decode()
    assert 'href="/dm/other/"' in lobby and "just between us" in lobby


def test_a_users_own_name_opens_their_notes_to_self(cast):
    page = client_of(cast["member"]).get("/dm/member/")
    assert page.status_code == 200 and "Notes to self" in page.content.decode()
    [room] = Room.objects.filter(kind=Room.DIRECT)
    assert list(room.memberships.values_list("user__username", flat=True)) == ["member"]


def test_direct_conversations_keep_their_two_members(cast):
    room = services.direct_room_get_or_create(user=cast["member"], other=cast["other"])
    answer = client_of(cast["member"]).post(f"/chat/{room.name}/members/", {"username": "owner"})
    assert answer.status_code == 403
    assert sorted(m.user.username for m in selectors.room_members(room=room)) == ["member", "other"]


def test_a_public_room_cannot_take_a_direct_messages_name(cast):
    answer = client_of(cast["member"]).post("/chat/dm-0123/", {"message": "mine now", "token": str(uuid4())})
    assert answer.status_code == 404
    assert not Room.objects.filter(name="dm-0123").exists()


async def lobby_frame(user: User | None) -> str:
    """The first list a lobby socket of this reader gets (the whole list: what its page should show)."""
    socket = await open_socket("/ws/lobby/", user)
    try:
        return await socket.receive_from(timeout=3)
    finally:
        await socket.disconnect()


@pytest.mark.parametrize("role", ROLES)
async def test_the_live_lobby_lists_private_rooms_and_conversations_to_their_members_only(
    cast, private_room_async, role
):
    await database_sync_to_async(services.direct_room_get_or_create)(user=cast["owner"], other=cast["member"])
    direct = await database_sync_to_async(Room.objects.get)(kind=Room.DIRECT)
    await database_sync_to_async(post_message)(direct, cast["member"], "a word in private")

    frame = await lobby_frame(cast[role])

    assert ('href="/chat/plans/"' in frame) == (role in MEMBERS) == (HIDDEN in frame)
    assert ("a word in private" in frame) == (role in MEMBERS)
    if role in MEMBERS:
        partner = "member" if role == "owner" else "owner"
        assert re.search(rf'<ul id="direct".*href="/dm/{partner}/">{partner}</a>', frame, re.S)
        assert 'class="badge">Private' in frame
    assert direct.name not in frame


async def test_logging_out_closes_that_sessions_lobby_socket_and_takes_its_private_lists_away(cast, private_room_async):
    from project.asgi import application

    client = Client()
    await database_sync_to_async(client.force_login)(cast["member"])
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    socket = WebsocketCommunicator(application, "/ws/lobby/", headers=headers)
    assert (await socket.connect())[0]
    assert HIDDEN in await socket.receive_from(timeout=3)

    await database_sync_to_async(client.post)("/accounts/logout/")

    frames, code = await frames_until_close(socket)
    assert code == 4401
    assert "You have been signed out" in frames[-1] and "plans" not in frames[-1]
