"""Rooms nobody can spam: only a signed-in user's first post creates one; visits and anonymous sockets store nothing."""

from uuid import uuid4

import pytest
from channels.db import database_sync_to_async

from chat.models import Message, Room
from tests.support.in_process import message_frame, post_message, receive_all

count_rooms = database_sync_to_async(lambda: Room.objects.count())


def test_visiting_an_unknown_room_shows_an_empty_room_and_stores_nothing(client, db):
    response = client.get("/chat/new.room_1/")

    assert response.status_code == 200
    assert 'ws-connect="/ws/chat/new.room_1/"' in response.text
    assert not Room.objects.exists()


def test_the_first_post_without_javascript_creates_the_room(client, alice):
    client.force_login(alice)

    response = client.post("/chat/fresh/", {"message": "first!", "token": str(uuid4())})

    assert response.status_code == 302
    assert Message.objects.get().room.name == "fresh"


def test_an_anonymous_post_without_javascript_creates_nothing(client, db):
    response = client.post("/chat/fresh/", {"message": "spam", "token": str(uuid4())})

    assert response.status_code == 400
    assert not Room.objects.exists()


@pytest.mark.parametrize("name", [".", "..", "...", "." * 64])
def test_room_names_of_only_dots_are_refused(client, db, name):
    assert client.get("/", {"room": name}).status_code == 400
    assert client.get(f"/chat/{name}/").status_code in {404, 301, 302}  # browsers resolve /chat/../ anyway
    assert not Room.objects.exists()


def test_names_with_dots_and_other_characters_are_fine(client, db):
    assert client.get("/", {"room": ".hidden"})["Location"] == "/chat/.hidden/"
    assert client.get("/chat/v1.2/").status_code == 200


def test_the_lobby_lists_only_rooms_with_messages(client, alice):
    Room.objects.create(name="visited-only")
    post_message(Room.objects.create(name="talked-in"), alice, "hi")

    response = client.get("/")

    assert "talked-in" in response.text
    assert "visited-only" not in response.text


async def test_an_anonymous_socket_creates_no_room(connect):
    anonymous = await connect("nobody-here")

    await anonymous.send_to(text_data=message_frame("let me in"))

    assert "Log in to chat." in await anonymous.receive_from()
    assert await count_rooms() == 0


async def test_a_signed_in_sockets_first_post_creates_the_room(connect, alice):
    sender = await connect("brand-new", alice)
    assert await count_rooms() == 0

    await sender.send_to(text_data=message_frame("first"))
    await sender.send_to(text_data=message_frame("second"))

    assert sum("second" in frame for frame in await receive_all(sender)) == 1
    assert await database_sync_to_async(lambda: list(Room.objects.values_list("name", "last_seq")))() == [
        ("brand-new", 2)
    ]


async def test_a_bad_post_on_an_unknown_room_creates_nothing(connect, alice):
    sender = await connect("brand-new", alice)

    await sender.send_to(text_data=message_frame("   "))

    assert "Type a message first." in await sender.receive_from()
    assert await count_rooms() == 0


# Room names are case-insensitive: "General" is the room `general`, never a second, empty room.


def test_any_spelling_of_a_new_room_goes_to_its_lower_case_name(client, db):
    response = client.get("/chat/General/?before=5")

    assert response.status_code == 302 and response["Location"] == "/chat/general/?before=5"


def test_a_post_under_another_spelling_lands_in_the_one_room(client, alice, bob):
    client.force_login(alice)
    client.post("/chat/general/", {"message": "first", "token": str(uuid4())})
    client.force_login(bob)
    client.post("/chat/GENERAL/", {"message": "second", "token": str(uuid4())})

    assert list(Room.objects.values_list("name", flat=True)) == ["general"]
    assert Message.objects.filter(room__name="general").count() == 2
    assert client.get("/chat/GeNeRaL/")["Location"] == "/chat/general/"
    assert client.get("/?room=General", follow=True).redirect_chain[-1][0] == "/chat/general/"


async def test_a_socket_post_under_another_spelling_lands_in_the_one_room(connect, alice, room):
    socket = await connect(room.name.upper(), alice)
    await socket.send_to(text_data=message_frame("shouted"))
    await receive_all(socket)

    assert await database_sync_to_async(lambda: list(Room.objects.values_list("name", flat=True)))() == [room.name]


def test_a_room_stored_with_capitals_keeps_its_spelling(client, alice):
    post_message(Room.objects.create(name="Design"), alice, "hi")

    assert client.get("/chat/design/")["Location"] == "/chat/Design/"
    assert client.get("/chat/Design/").status_code == 200


def test_a_new_room_is_stored_in_lower_case_and_another_spelling_is_taken(client, alice):
    client.force_login(alice)
    client.post("/rooms/new/", {"name": "Plans"})
    taken = client.post("/rooms/new/", {"name": "PLANS", "private": "on"})

    assert list(Room.objects.values_list("name", flat=True)) == ["plans"]
    assert taken.status_code == 400 and "taken" in taken.text


def test_another_spelling_of_a_private_room_tells_a_non_member_nothing(client, alice, bob):
    from chat import services

    services.room_create(name="secret", creator=alice, private=True)
    client.force_login(bob)

    # The same answer as for the exact name: no redirect to a spelling only a member could know.
    assert client.get("/chat/Secret/")["Location"] == "/chat/secret/"
    assert client.get("/chat/secret/").status_code == 404
