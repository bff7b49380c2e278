"""The pages without JavaScript: lobby, room, posting (POST → redirect → GET), sign-up."""

import re
from uuid import uuid4

import pytest
from django.contrib.auth.models import User

from chat.models import Message, Room
from tests.support.in_process import post_message


def test_the_lobby_form_redirects_to_the_room(client):
    response = client.get("/", {"room": "general"})

    assert response.status_code == 302
    assert response["Location"] == "/chat/general/"


@pytest.mark.parametrize("name", ["has space", "semi;colon", "x" * 65, "ünïcode", "<b>"])
def test_a_bad_room_name_shows_an_error_on_the_lobby_and_creates_nothing(client, db, name):
    response = client.get("/", {"room": name})

    assert response.status_code == 400
    assert "A room name is 1 to 64 letters, digits, hyphens, underscores or dots" in response.text or (
        "at most 64 characters" in response.text
    )
    assert not Room.objects.exists()


def test_an_empty_room_name_asks_for_one(client, db):
    response = client.get("/", {"room": ""})

    assert response.status_code == 400
    assert "Type a room name." in response.text


def test_the_lobby_lists_rooms_with_messages_as_links(client, alice):
    post_message(Room.objects.create(name="first"), alice, "hi")
    Room.objects.create(name="only-visited")

    response = client.get("/")

    assert '<a href="/chat/first/">first</a>' in response.text
    assert "only-visited" not in response.text


def test_a_bad_room_url_is_not_found_and_creates_nothing(client, db):
    assert client.get("/chat/bad%20name/").status_code == 404
    assert not Room.objects.exists()


def test_posting_without_javascript_saves_and_redirects_back(client, alice):
    client.force_login(alice)

    response = client.post("/chat/general/", {"message": "hello, no JS", "token": str(uuid4())})

    assert response.status_code == 302
    assert response["Location"] == "/chat/general/"
    page = client.get("/chat/general/").text
    assert "hello, no JS" in page
    assert Message.objects.get().author == alice


def test_a_double_submit_of_the_same_form_stores_one_message(client, alice):
    client.force_login(alice)
    token = str(uuid4())

    first = client.post("/chat/general/", {"message": "once", "token": token})
    second = client.post("/chat/general/", {"message": "once", "token": token})

    assert first.status_code == second.status_code == 302
    assert Message.objects.count() == 1


@pytest.mark.parametrize(("text", "error"), [("   ", "Type a message first."), ("z" * 2001, "at most 2000 characters")])
def test_a_bad_body_shows_the_error_and_keeps_the_text(client, alice, text, error):
    client.force_login(alice)

    response = client.post("/chat/general/", {"message": text, "token": str(uuid4())})

    assert response.status_code == 400
    assert error in response.text
    assert not Message.objects.exists()
    if text.strip():
        assert f'value="{text}"' in response.text


def test_anonymous_readers_see_the_room_but_cannot_post(client, room, alice):
    post_message(room, alice, "visible to all")

    page = client.get(f"/chat/{room.name}/").text
    response = client.post(f"/chat/{room.name}/", {"message": "sneaky", "token": str(uuid4())})

    assert "visible to all" in page
    assert "Log in to chat" in page
    assert 'id="compose"' not in page
    assert response.status_code == 400
    assert not Message.objects.filter(body="sneaky").exists()


def test_history_is_shown_oldest_first(client, room, alice):
    for i in range(3):
        post_message(room, alice, f"message number {i}")

    page = client.get(f"/chat/{room.name}/").text

    assert re.findall(r"message number (\d)", page) == ["0", "1", "2"]
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT', page)


def test_each_page_gets_a_fresh_form_token(client, alice):
    client.force_login(alice)

    tokens = {re.search(r'name="token" value="([^"]+)"', client.get("/chat/general/").text)[1] for _ in range(2)}

    assert len(tokens) == 2


def test_the_page_tells_the_socket_where_it_is(client, room, alice):
    message = post_message(room, alice, "last")

    page = client.get(f"/chat/{room.name}/").text

    assert f'id="sync-after" name="after" value="{message.seq}"' in page


def test_sign_up_logs_in_and_returns_to_the_room(client, db):
    response = client.post(
        "/accounts/signup/?next=/chat/general/",
        {
            "username": "carol",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
            "next": "/chat/general/",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/chat/general/"
    assert 'id="compose"' in client.get("/chat/general/").text


def test_sign_up_never_redirects_off_site(client, db):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "dave",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
            "next": "https://evil.example/",
        },
    )

    assert response["Location"] == "/"


def test_log_in_and_log_out(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert "Signed in as" in client.get("/").text

    assert client.post("/accounts/logout/").status_code == 302
    assert "Log in" in client.get("/").text
    assert User.objects.count() == 1


def test_the_lobby_leads_with_the_rooms(client, alice, room):
    post_message(room, alice, "hello")
    client.force_login(alice)
    page = client.get("/").content.decode()

    assert page.index("<h1>Rooms</h1>") < page.index(room.name) < page.index("Go to a room by its name")
    assert 'href="/rooms/new/">New room</a>' in page
    assert ">Today " in page
