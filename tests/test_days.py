"""Days and runs as a list shows them: a day separator where a day starts in the reader's zone, and a
run of one author's messages (within 5 minutes) showing the name once."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from chat import days
from chat.models import Message
from chat.templatetags.message_text import hue, initials

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def message(author: int, minutes: float) -> Message:
    return Message(author_id=author, created=START + timedelta(minutes=minutes))


def marks(entries: list[days.Entry]) -> list[tuple[bool, bool]]:
    return [(entry.day is not None, entry.continues) for entry in entries]


def test_a_run_is_one_authors_messages_each_within_five_minutes_of_the_one_above():
    messages = [message(1, 0), message(1, 1), message(1, 5.5), message(1, 11), message(2, 11.5), message(1, 12)]

    entries = days.entries(messages, zone=UTC)

    assert [entry.continues for entry in entries] == [False, True, True, False, False, False]


def test_the_message_above_a_list_may_start_its_run():
    entries = days.entries([message(1, 3), message(2, 4)], previous=START, previous_author=1, zone=UTC)
    assert [entry.continues for entry in entries] == [True, False]

    other = days.entries([message(1, 3)], previous=START, previous_author=2, zone=UTC)
    assert not other[0].continues


def test_a_new_day_in_the_readers_zone_starts_a_new_run():
    # 22:58 and 23:02 UTC are on two days in Paris (23:58, 00:02).
    late = [Message(author_id=1, created=datetime(2026, 12, 1, 22, 58, tzinfo=UTC))]
    late.append(Message(author_id=1, created=datetime(2026, 12, 1, 23, 2, tzinfo=UTC)))

    assert marks(days.entries(late, zone=UTC)) == [(True, False), (False, True)]
    assert marks(days.entries(late, zone=ZoneInfo("Europe/Paris"))) == [(True, False), (True, False)]


def test_avatars_have_initials_and_a_colour_fixed_per_user():
    assert initials("ada.lovelace") == "AL"
    assert initials("bob") == "B"
    assert initials("grace_b_hopper") == "GB"
    assert initials("-x") == "X"
    assert initials("élodie") == "É"
    assert hue(7) == hue(7) and 0 <= hue(7) < 12
    assert len({hue(pk) for pk in range(1, 13)}) == 12  # neighbours get different colours


def test_a_time_reads_as_the_room_reads_it_in_the_readers_zone(settings):
    from django.utils import timezone

    from chat.templatetags.chat_days import when

    now = timezone.now()
    with timezone.override(ZoneInfo("Pacific/Auckland")):
        local = timezone.localtime(now)
        assert when(now) == f"Today {local:%H:%M}"
        assert when(now - timedelta(days=1)) == f"Yesterday {local:%H:%M}"
        earlier = timezone.localtime(now - timedelta(days=9))
        assert when(now - timedelta(days=9)) == f"{earlier:%a} {earlier.day} {earlier:%b %Y}, {earlier:%H:%M}"
