"""Template filters for days in the reader's time zone."""

from datetime import date

from django import template
from django.utils import timezone

from chat import days

register = template.Library()


@register.filter
def day_label(day: date) -> str:
    """'Today', 'Yesterday' or 'Tue 24 Nov 2026', relative to today in the active time zone."""
    return days.day_label(day, timezone.localdate())
