"""Days as the reader lives them: which messages start a new day in the reader's time zone."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from django.utils import timezone

from chat.models import Message


@dataclass(frozen=True)
class Entry:
    """A message as a list shows it: with the day it starts (None: same day as the one above it)."""

    message: Message
    day: date | None


def local_day(when: datetime, zone: tzinfo | None = None) -> date:
    return timezone.localtime(when, zone).date()


def entries(messages: list[Message], *, previous: datetime | None = None, zone: tzinfo | None = None) -> list[Entry]:
    """`messages` in order, each marked with its day if it is the first of that day.

    `previous`: the time of the message shown just above the first one (None: nothing is, so the
    first message always opens its day). `zone`: the reader's (default: the active time zone).
    """
    result = []
    shown = local_day(previous, zone) if previous else None
    for message in messages:
        day = local_day(message.created, zone)
        result.append(Entry(message=message, day=day if day != shown else None))
        shown = day
    return result


def day_label(day: date, today: date) -> str:
    """'Today', 'Yesterday', or the date in full: 'Tue 24 Nov 2026'."""
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return f"{day:%a} {day.day} {day:%b %Y}"
