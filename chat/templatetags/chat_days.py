"""Template filters for days in the reader's time zone."""

from datetime import date, datetime

from django import template
from django.utils import timezone

from chat import days

register = template.Library()


@register.filter
def when(moment: datetime) -> str:
    """A time as a room reads it, in the active time zone: 'Today 04:49', 'Yesterday 18:02', 'Tue 24 Nov 2026,
    09:10'."""
    local = timezone.localtime(moment)
    label = days.day_label(local.date(), timezone.localdate())
    return f"{label} {local:%H:%M}" if label in ("Today", "Yesterday") else f"{label}, {local:%H:%M}"


@register.filter
def day_label(day: date) -> str:
    """'Today', 'Yesterday' or 'Tue 24 Nov 2026', relative to today in the active time zone."""
    return days.day_label(day, timezone.localdate())
