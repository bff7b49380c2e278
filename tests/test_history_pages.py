"""Older history: plain pages without JavaScript, batches for the scroller's sentinel with htmx,
day separators in the reader's time zone."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from chat.models import MESSAGE_BODY_MAX_LENGTH, Message
from tests.support.in_process import post_message

HTMX = {"HTTP_HX_REQUEST": "true"}


def make_messages(room, author, count):
    return [post_message(room, author, f"m{i}") for i in range(count)]


def shown(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li id="message-(\d+)" class="message\b', html)]


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return found[1].replace("&amp;", "&") if found else None


def test_the_room_opens_with_the_latest_page_and_a_link_to_older_ones(client, room, alice):
    messages = make_messages(room, alice, 120)

    page = client.get(f"/chat/{room.name}/").text

    assert shown(page) == [m.pk for m in messages[70:]]
    assert link(page, "prev") == f"/chat/{room.name}/?before={messages[70].pk}"
    assert link(page, "next") is None
    assert "ws-connect" in page


def test_without_javascript_older_pages_go_back_to_the_first_message_and_forward_again(client, room, alice):
    messages = make_messages(room, alice, 120)
    url, seen = f"/chat/{room.name}/", []

    while url:  # follow "Older messages" to the start
        page = client.get(url).text
        seen = shown(page) + seen
        url = link(page, "prev")
    assert seen == [m.pk for m in messages]
    assert "This is the start of" in page
    assert "ws-connect" not in page  # a page of history is not live
    assert "ws-send" not in page

    forward = client.get(link(page, "next")).text  # "Newer messages"
    assert shown(forward) == [m.pk for m in messages[20:70]]


def test_a_page_before_an_id_shows_the_50_before_it(client, room, alice):
    messages = make_messages(room, alice, 120)

    page = client.get(f"/chat/{room.name}/", {"before": messages[100].pk}).text

    assert shown(page) == [m.pk for m in messages[50:100]]
    assert link(page, "next") == f"/chat/{room.name}/?after={messages[99].pk}"
    assert "Back to the newest messages" in page


@pytest.mark.parametrize("value", ["abc", "-5", "", "1e9", "9" * 40])
def test_a_garbled_page_parameter_shows_the_latest_page(client, room, alice, value):
    messages = make_messages(room, alice, 3)

    response = client.get(f"/chat/{room.name}/", {"before": value})

    assert response.status_code == 200
    assert shown(response.text) == [m.pk for m in messages]


def test_with_htmx_the_sentinel_gets_the_batch_and_the_next_sentinel_in_its_place(client, room, alice):
    messages = make_messages(room, alice, 120)

    response = client.get(f"/chat/{room.name}/", {"before": messages[70].pk}, **HTMX)

    assert "HX-Request" in response["Vary"]
    assert "<html" not in response.text
    assert shown(response.text) == [m.pk for m in messages[20:70]]
    assert f'hx-get="/chat/{room.name}/?before={messages[20].pk}"' in response.text
    assert 'hx-trigger="intersect once"' in response.text
    last = client.get(f"/chat/{room.name}/", {"before": messages[20].pk}, **HTMX).text
    assert shown(last) == [m.pk for m in messages[:20]]
    assert "intersect" not in last and "This is the start of" in last


def test_a_batch_on_the_same_day_as_the_message_below_removes_that_days_separator(client, room, alice):
    messages = make_messages(room, alice, 60)

    page = client.get(f"/chat/{room.name}/").text
    assert f'<li id="day-{messages[10].pk}" class="day">' in page  # the page's first message opens its day

    batch = client.get(f"/chat/{room.name}/", {"before": messages[10].pk}, **HTMX).text
    assert f'<li id="day-{messages[10].pk}" hx-swap-oob="delete">' in batch
    assert f'<li id="day-{messages[0].pk}" class="day">' in batch


def test_a_gap_fills_from_its_newer_end_and_closes_on_the_message_above_it(client, room, alice):
    messages = make_messages(room, alice, 130)
    base = f"/chat/{room.name}/"

    fill = client.get(base, {"before": messages[120].pk, "after": messages[5].pk}, **HTMX).text
    assert shown(fill) == [m.pk for m in messages[70:120]]
    assert "64 messages you missed are above" in fill
    assert f"before={messages[70].pk}&amp;after={messages[5].pk}" in fill

    fill = client.get(base, {"before": messages[20].pk, "after": messages[5].pk}, **HTMX).text
    assert shown(fill) == [m.pk for m in messages[6:20]]
    assert "missed" not in fill and "intersect" not in fill
    assert 'class="day"' not in fill  # same day as the message shown above the gap


def test_days_are_separated_in_the_readers_time_zone(client, room, alice):
    from chat import services

    # 23:30 and 00:30 UTC: two days in UTC, one in Tokyo (08:30 and 09:30 on the 21st).
    late, early = make_messages(room, alice, 2)
    base = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    Message.objects.filter(pk=late.pk).update(created=base)
    Message.objects.filter(pk=early.pk).update(created=base + timedelta(hours=1))

    page = client.get(f"/chat/{room.name}/").text
    assert re.findall(r'class="day"><h2><time datetime="([\d-]+)">([^<]+)<', page) == [
        ("2026-11-20", "Fri 20 Nov 2026"),
        ("2026-11-21", "Sat 21 Nov 2026"),
    ]
    assert "Times in UTC" in page

    client.force_login(alice)
    services.time_zone_set(user=alice, time_zone="Asia/Tokyo")
    page = client.get(f"/chat/{room.name}/").text
    assert re.findall(r'class="day"><h2><time datetime="([\d-]+)"', page) == ["2026-11-21"]
    assert ">08:30</time>" in page and ">09:30</time>" in page
    assert "JST" in page and "Times in Asia/Tokyo" in page


def test_today_and_yesterday_are_named(client, room, alice):
    yesterday, _today = make_messages(room, alice, 2)
    Message.objects.filter(pk=yesterday.pk).update(created=timezone.now() - timedelta(days=1))

    page = client.get(f"/chat/{room.name}/").text

    assert re.findall(r'class="day"><h2><time datetime="[\d-]+">([^<]+)<', page) == ["Yesterday", "Today"]


def test_the_input_limits_what_the_form_accepts(client, alice):
    client.force_login(alice)

    page = client.get("/chat/general/").text

    assert f'maxlength="{MESSAGE_BODY_MAX_LENGTH}"' in page


def test_more_than_50_lines_without_javascript_get_a_clear_error(client, alice):
    from uuid import uuid4

    client.force_login(alice)

    response = client.post("/chat/general/", {"message": "line\n" * 60, "token": str(uuid4())})

    assert response.status_code == 400
    assert "at most 50 lines (this one has 60)" in response.text
    assert not Message.objects.exists()


def test_a_link_to_a_message_opens_its_page_centred_on_it_and_marked(client, room, alice):
    messages = make_messages(room, alice, 120)
    target = messages[60]

    page = client.get(f"/chat/{room.name}/", {"around": target.pk}).text

    assert shown(page) == [m.pk for m in messages[35:86]]  # 25 either side
    assert re.findall(r'<li id="message-(\d+)"[^>]* aria-current="true"', page) == [str(target.pk)]
    assert link(page, "prev") == f"/chat/{room.name}/?before={messages[35].pk}"
    assert link(page, "next") == f"/chat/{room.name}/?after={messages[85].pk}"
    assert "ws-connect" not in page  # a page of history is not live


def test_a_link_to_a_message_near_either_end_shows_what_there_is(client, room, alice):
    messages = make_messages(room, alice, 30)

    first = client.get(f"/chat/{room.name}/", {"around": messages[0].pk}).text
    assert shown(first) == [m.pk for m in messages[:26]]
    assert link(first, "prev") is None and "This is the start of" in first

    last = client.get(f"/chat/{room.name}/", {"around": messages[-1].pk}).text
    assert shown(last) == [m.pk for m in messages[4:]]
    assert link(last, "next") is None


def test_a_link_to_a_message_of_another_room_or_none_is_404(client, room, alice):
    from chat import services

    elsewhere = services.room_create(name="elsewhere", creator=alice, private=False)
    other = post_message(elsewhere, alice, "not here")
    post_message(room, alice, "here")

    assert client.get(f"/chat/{room.name}/", {"around": other.pk}).status_code == 404
    assert client.get(f"/chat/{room.name}/", {"around": other.pk + 1000}).status_code == 404
    assert client.get("/chat/nobody-posted-here/", {"around": other.pk}).status_code == 404
