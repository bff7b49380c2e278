"""Template filters for message text: `{% load message_text %}`."""

from django import template

from chat import linkify, mentions
from chat.models import Message

register = template.Library()


@register.filter
def link_segments(body: str) -> list[linkify.Segment]:
    """The body as text and URL segments (see chat/linkify.py); the template renders and escapes them."""
    return linkify.segments(body)


@register.filter
def body_segments(message: Message) -> list[mentions.Segment]:
    """The message's text as text, URL and mention segments (chat/mentions.py), by the people it was saved as
    mentioning; the template renders and escapes them."""
    people = {str(name).lower(): str(name) for _, name in (getattr(message, "mentioned", None) or [])}
    return mentions.segments(message.body, mentioned=people)
