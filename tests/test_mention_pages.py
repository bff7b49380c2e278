"""Mentions on the pages, without JavaScript: the inbox, the notices of a live page and dismissing them, the
link to a message in its place, the lobby's count, the reader's own highlight."""

import re
from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat import services
from chat.models import Mention, Room


@pytest.fixture
def people(db) -> dict[str, User]:
    return {name: User.objects.create_user(name, password="pw-for-tests") for name in ("ann", "ben", "cy")}


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(room: Room, author: User, text: str):
    return services.message_post(room=room, author=author, data={"message": text, "token": str(uuid4())}).message


def notices(html: str) -> list[str]:
    region = re.search(r'<div id="notices" class="notices" role="status"[^>]*>(.*?)</div>\s*(?:<|$)', html, re.S)
    assert region, "the page has no #notices region"
    return re.findall(r'<a href="([^"]*)">([^<]*)</a>', region.group(1))


def test_the_inbox_asks_anonymous_readers_to_log_in(client):
    response = client.get("/mentions/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/mentions/"


def test_the_inbox_lists_mentions_newest_first_with_room_author_time_text_and_a_link(people):
    design = Room.objects.create(name="design")
    first = post(design, people["ann"], "@ben the <first>")
    second = post(Room.objects.create(name="ops"), people["cy"], "@Ben second")
    post(design, people["ann"], "nothing for ben")

    html = client_of(people["ben"]).get("/mentions/").text

    entries = re.findall(r'<li class="mention-entry" id="mention-(\d+)">(.*?)</li>', html, re.S)
    assert [int(pk) for pk, _ in entries] == [second.pk, first.pk]
    older = entries[1][1]
    assert '<span class="author">ann</span>' in older and "#design" in older
    assert f'<time datetime="{first.created.isoformat()}">' in older
    assert '<a class="mention" href="/dm/ben/">@ben</a> the &lt;first&gt;' in older
    assert f'href="/chat/design/?around={first.pk}#message-{first.pk}"' in older
    assert '<a href="/mentions/">Mentions</a>' in html  # the header links it


def test_the_inbox_pages_by_keyset_with_a_rel_next_link(people, monkeypatch):
    monkeypatch.setattr("chat.selectors.INBOX_LENGTH", 2)
    room = Room.objects.create(name="design")
    ids = [post(room, people["ann"], f"@ben {n}").pk for n in range(3)]
    client = client_of(people["ben"])

    page = client.get("/mentions/").text
    older = re.search(r'<a rel="next" href="([^"]+)">Older mentions</a>', page).group(1)
    assert older == f"/mentions/?before={ids[1]}"
    last = client.get(older).text

    assert re.findall(r'id="mention-(\d+)"', page) == [str(ids[2]), str(ids[1])]
    assert re.findall(r'id="mention-(\d+)"', last) == [str(ids[0])]
    assert 'rel="next"' not in last


def test_a_removed_member_no_longer_sees_the_rooms_mentions_in_the_inbox(people):
    room = services.room_create(name="hush", creator=people["ann"], private=True)
    services.member_add(room=room, by=people["ann"], username="ben")
    post(room, people["ann"], "@ben secret plans")
    client = client_of(people["ben"])
    assert "secret plans" in client.get("/mentions/").text

    services.member_remove(room=room, by=people["ann"], user=people["ben"])

    html = client.get("/mentions/").text
    assert "secret plans" not in html and "hush" not in html


def test_a_live_page_shows_unread_mentions_of_other_rooms_as_notices(people):
    design = Room.objects.create(name="design")
    message = post(design, people["ann"], "@ben have a look")
    client = client_of(people["ben"])

    link = f"/chat/design/?around={message.pk}#message-{message.pk}"
    assert notices(client.get("/").text) == [(link, "ann mentioned you in #design")]
    assert notices(client.get("/chat/elsewhere/").text) == [(link, "ann mentioned you in #design")]
    assert notices(client.get("/chat/design/").text) == []  # the room itself: opening it reads it
    assert notices(client.get("/").text) == []  # and it does not come back


def test_a_direct_message_notice_says_so(people):
    dm = services.direct_room_get_or_create(user=people["ann"], other=people["ben"])
    message = post(dm, people["ann"], "@ben psst")

    [(link, text)] = notices(client_of(people["ben"]).get("/").text)

    assert text == "ann mentioned you in a direct message"
    assert link == f"/chat/{dm.name}/?around={message.pk}#message-{message.pk}"


def test_dismissing_a_notice_without_javascript_goes_back_and_it_stays_dismissed(people):
    message = post(Room.objects.create(name="design"), people["ann"], "@ben hi")
    client = client_of(people["ben"])
    page = client.get("/chat/elsewhere/").text
    form = re.search(r'<form method="post" action="(/mentions/\d+/seen/)".*?</form>', page, re.S)
    assert form.group(1) == f"/mentions/{message.pk}/seen/"
    assert 'name="next" value="/chat/elsewhere/"' in form.group(0) and "csrfmiddlewaretoken" in form.group(0)

    response = client.post(form.group(1), {"next": "/chat/elsewhere/"})

    assert response.status_code == 302 and response["Location"] == "/chat/elsewhere/"
    assert notices(client.get("/chat/elsewhere/").text) == []
    assert Mention.objects.get().seen is not None


def test_dismissing_goes_back_only_to_this_site(people):
    message = post(Room.objects.create(name="design"), people["ann"], "@ben hi")

    response = client_of(people["ben"]).post(f"/mentions/{message.pk}/seen/", {"next": "https://evil.example/"})

    assert response["Location"] == "/mentions/"


def test_dismissing_with_htmx_answers_empty_and_someone_elses_mention_is_404(people):
    message = post(Room.objects.create(name="design"), people["ann"], "@ben hi")

    response = client_of(people["ben"]).post(f"/mentions/{message.pk}/seen/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.content == b""
    assert client_of(people["cy"]).post(f"/mentions/{message.pk}/seen/").status_code == 404
    assert Client().post(f"/mentions/{message.pk}/seen/").status_code == 302  # to log in


def test_opening_the_message_in_its_place_marks_the_mention_seen(people):
    room = Room.objects.create(name="design")
    message = post(room, people["ann"], "@ben look here")
    for n in range(30):
        post(room, people["cy"], f"later {n}")
    client = client_of(people["ben"])

    page = client.get(f"/chat/design/?around={message.pk}")

    assert page.status_code == 200
    assert f'id="message-{message.pk}" class="message by-{people["ann"].pk}"' in page.text
    assert f'<p class="body mentions-{people["ben"].pk}">' in page.text
    assert 'aria-current="true"' in page.text
    assert notices(client.get("/").text) == []


def test_the_lobby_shows_unread_mentions_per_room_until_it_is_opened(people):
    room = Room.objects.create(name="design")
    client = client_of(people["ben"])
    client.get("/chat/design/")
    post(room, people["ann"], "@ben one")
    post(room, people["ann"], "@ben two")
    post(room, people["ann"], "not you")

    entry = re.search(r'<li class="room-entry has-unread" id="lobby-\d+">.*?</li>', client.get("/").text, re.S).group(0)
    assert '<span class="unread">3 new</span>' in entry
    assert '<span class="mentions">@2<span class="visually-hidden"> mentions</span></span>' in entry

    client.get("/chat/design/")
    assert 'class="mentions"' not in client.get("/").text


def test_the_readers_stylesheet_highlights_the_messages_that_mention_them_not_their_own(people):
    ben = people["ben"]
    css = client_of(ben).get("/accounts/me.css").text
    assert f"li.message:not(.by-{ben.pk}):has(> .body.mentions-{ben.pk}) {{" in css
    assert "mentions-" not in Client().get("/accounts/me.css").text


def test_a_live_pages_title_counts_the_readers_unread_mentions(people):
    post(Room.objects.create(name="design"), people["ann"], "@ben one")
    post(Room.objects.create(name="ops"), people["ann"], "@ben two")
    client = client_of(people["ben"])

    assert '<title id="page-title">(2) Lobby · Chat</title>' in client.get("/").text
    assert '<title id="page-title">(1) design · Chat</title>' in client.get("/chat/design/").text  # read by opening
    assert '<title id="page-title">Mentions · Chat</title>' in client.get("/mentions/").text  # not a live page
    assert '<title id="page-title">Lobby · Chat</title>' in client_of(people["cy"]).get("/").text
