"""Days as the reader lives them: which messages start a new day in the reader's time zone."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from django.utils import timezone

from chat.models import Message

# Consecutive messages of one author this close together read as one run: the name is shown once.
RUN_GAP = timedelta(minutes=5)


@dataclass(frozen=True)
class Entry:
    """A message as a list shows it: with the day it starts (None: same day as the one above it), and
    whether it continues a run of its author's messages (then the list shows no name above it)."""

    message: Message
    day: date | None
    continues: bool = False


def local_day(when: datetime, zone: tzinfo | None = None) -> date:
    return timezone.localtime(when, zone).date()


def entries(
    messages: list[Message],
    *,
    previous: datetime | None = None,
    previous_author: int | None = None,
    zone: tzinfo | None = None,
) -> list[Entry]:
    """`messages` in order, each marked with its day if it is the first of that day, and whether it
    continues its author's run (same author as the message above, within RUN_GAP, on the same day).

    `previous`, `previous_author`: the time and author of the message shown just above the first one
    (None: nothing is, so the first message opens its day and its run). `zone`: the reader's (default:
    the active time zone).
    """
    result = []
    shown = local_day(previous, zone) if previous else None
    above = (previous, previous_author)
    for message in messages:
        day = local_day(message.created, zone)
        opens_day = day != shown
        continues = continues_run(message, above=above) and not opens_day
        result.append(Entry(message=message, day=day if opens_day else None, continues=continues))
        shown, above = day, (message.created, message.author_id)
    return result


def continues_run(message: Message, *, above: tuple[datetime | None, int | None]) -> bool:
    when, author = above
    return when is not None and author == message.author_id and message.created - when <= RUN_GAP


def day_label(day: date, today: date) -> str:
    """'Today', 'Yesterday', or the date in full: 'Tue 24 Nov 2026'."""
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return f"{day:%a} {day.day} {day:%b %Y}"
