"""The search page: without JavaScript a whole page, with htmx the results alone; notes for what is no search;
never a room the reader may not read; hostile text answers a page, never a 500."""

import re
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat import services
from chat.protection.limits import SEARCHING_TOO_FAST
from chat.search.query import TOO_LONG, TOO_SHORT
from tests.support.in_process import post_message
from tests.support.search_text import HOSTILE

pytestmark = pytest.mark.django_db


def client_of(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_search_box_is_on_every_page(room, alice):
    for path in ["/", f"/chat/{room.name}/", "/accounts/login/", "/search/"]:
        page = client_of().get(path).content.decode()
        form = r'<form role="search" aria-label="Search messages" method="get" action="/search/">'
        assert re.search(form, page), path
    # As you type: on the search page into its results (and the address bar); elsewhere into a preview under the box.
    box = re.compile(r'<input id="site-search-q"[^>]*>', re.S)
    lobby = client_of().get("/").content.decode()
    assert 'hx-target="#search-preview"' in box.search(lobby)[0] and 'id="search-preview"' in lobby
    search = client_of().get("/search/").content.decode()
    assert 'hx-target="#search-results" hx-push-url="true"' in box.search(search)[0]
    assert 'id="search-preview"' not in search


def test_the_preview_is_the_first_page_and_a_link_to_all_results(room, alice):
    for n in range(25):
        post_message(room, alice, f"preview {n}")
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "search-preview"}
    answer = client_of().get("/search/", {"q": "preview"}, **headers).content.decode()
    assert answer.count('class="search-result"') == 20
    assert '<a href="/search/?q=preview">All results</a>' in answer and 'rel="next"' not in answer
    assert "<" not in client_of().get("/search/", {"q": ""}, **headers).content.decode().replace("{#", "")


def test_results_link_to_the_message_in_its_place(room, alice):
    message = post_message(room, alice, "the quarterly <review> & plan")
    page = client_of().get("/search/", {"q": "quarterly"}).content.decode()
    assert f'href="/chat/{room.name}/?around={message.pk}#message-{message.pk}"' in page
    assert "<mark>quarterly</mark> &lt;review&gt; &amp; plan" in page
    assert '<span class="author">alice</span>' in page
    assert "<!doctype html>" in page


def test_times_are_in_the_readers_time_zone(room, alice):
    message = post_message(room, alice, "sunrise standup")
    services.time_zone_set(user=alice, time_zone="Asia/Tokyo")
    page = client_of(alice).get("/search/", {"q": "sunrise"}).content.decode()
    from zoneinfo import ZoneInfo

    local = message.created.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{local:%H:%M}</time>" in page  # shown as Tokyo reads it ('Today 11:55'); the datetime attribute is UTC


def test_htmx_gets_the_results_alone(room, alice):
    post_message(room, alice, "htmx fragments")
    answer = client_of().get("/search/", {"q": "fragments"}, HTTP_HX_REQUEST="true")
    body = answer.content.decode()
    assert answer.status_code == 200 and "<mark>fragments</mark>" in body and "<html" not in body
    assert "HX-Request" in answer["Vary"]
    short = client_of().get("/search/", {"q": "f"}, HTTP_HX_REQUEST="true")
    assert short.status_code == 200 and TOO_SHORT in short.content.decode()


def test_notes(room, alice):
    assert TOO_SHORT in client_of().get("/search/", {"q": "x"}).content.decode()
    long = client_of().get("/search/", {"q": "x" * 201})
    assert long.status_code == 400 and TOO_LONG in long.content.decode()
    assert "No messages match." in client_of().get("/search/", {"q": "nothing here"}).content.decode()
    empty = client_of().get("/search/")
    assert empty.status_code == 200 and "No messages match" not in empty.content.decode()


def test_more_results_link_to_the_next_page(room, alice):
    for n in range(25):
        post_message(room, alice, f"ticket {n}")
    page = client_of().get("/search/", {"q": "ticket", "room": room.name}).content.decode()
    assert f'rel="next" href="/search/?q=ticket&amp;room={room.name}&amp;page=2"' in page
    second = client_of().get("/search/", {"q": "ticket", "room": room.name, "page": "2"}).content.decode()
    assert second.count('class="search-result"') == 5 and 'rel="next"' not in second


def test_a_room_page_searches_that_room(room, alice):
    post_message(room, alice, "hello")
    page = client_of().get(f"/chat/{room.name}/").content.decode()
    assert re.search(
        rf'<form class="room-search"[^>]*action="/search/">\s*<input type="hidden" name="room" '
        rf'value="{room.name}">',
        page,
    )


def test_never_a_room_the_reader_may_not_read(room, alice, bob):
    private = services.room_create(name="plans", creator=alice, private=True)
    post_message(private, alice, "the hidden merger")
    direct = services.direct_room_get_or_create(user=alice, other=alice)
    post_message(direct, alice, "my hidden notes")
    post_message(room, bob, "the hidden treasure")
    for reader in [None, bob]:
        page = client_of(reader).get("/search/", {"q": "hidden"}).content.decode()
        assert "treasure" in page and "merger" not in page and "notes" not in page
        assert "plans" not in page and direct.name not in page
        # room= a closed room answers as a room that does not exist.
        for name in ["plans", direct.name, "no-such-room"]:
            refused = client_of(reader).get("/search/", {"q": "hidden", "room": name})
            assert refused.status_code == 404 and "merger" not in refused.content.decode()
            assert "There is no such room." in refused.content.decode()
    mine = client_of(alice).get("/search/", {"q": "hidden"}).content.decode()
    assert "merger" in mine and "notes" in mine and "treasure" in mine


def test_sign_in_required_sends_visitors_to_log_in(room, alice, settings):
    settings.CHAT_PUBLIC_READ = False
    post_message(room, alice, "members only")
    answer = client_of().get("/search/", {"q": "members"})
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    assert "site-search" not in client_of().get("/accounts/login/").content.decode()  # nothing to search
    assert "<mark>members</mark>" in client_of(alice).get("/search/", {"q": "members"}).content.decode()


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_gets_a_page(room, alice, text, caplog):
    post_message(room, alice, "anything at all")
    # As a browser sends it: UTF-8, percent-encoded (a lone surrogate as the bytes it would take).
    answer = client_of().get("/search/?q=" + quote(text, encoding="utf-8", errors="surrogatepass"))
    assert answer.status_code in {200, 400}
    assert not [record for record in caplog.records if record.levelname in {"ERROR", "CRITICAL"}]


def test_searching_is_rate_limited_per_user_and_address(room, alice, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "searches_per_user": "3/60", "searches_per_ip": "5/60"}
    client = client_of(alice)
    answers = [client.get("/search/", {"q": "word"}) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert SEARCHING_TOO_FAST in answers[-1].content.decode()
    visitor = [client_of().get("/search/", {"q": "word"}).status_code for _ in range(2)]
    assert visitor == [200, 429]  # the address's 5 are used up (alice's 4 requests came from it too)
    assert User.objects.count() == 1
