"""Template filters for message text: `{% load message_text %}`."""

from django import template

from chat import linkify

register = template.Library()


@register.filter
def link_segments(body: str) -> list[linkify.Segment]:
    """The body as text and URL segments (see chat/linkify.py); the template renders and escapes them."""
    return linkify.segments(body)
