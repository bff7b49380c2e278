"""Template filters for message text: `{% load message_text %}`."""

import re

from django import template

from chat import markup
from chat.models import Message

register = template.Library()


AVATAR_HUES = 12  # chat.css has a colour for each: .avatar.hue-0 … .hue-11


@register.filter
def hue(user_id: int) -> int:
    """The colour of a user's avatar: fixed per user, from their id."""
    return (user_id * 7) % AVATAR_HUES


@register.filter
def initials(username: str) -> str:
    """One or two letters for an avatar: the first letter, and the first after a separator if any
    ("ada.lovelace": "AL"; "bob": "B")."""
    words = [word for word in re.split(r"[._\-\s]+", username) if word]
    letters = [word[0] for word in words[:2]] or [username[:1]]
    return "".join(letters).upper()


@register.filter
def formatted(message: Message) -> markup.Formatted:
    """The message's text as the parts of its formatting, URLs and mentions (chat/markup.py), by the people it
    was saved as mentioning; the template renders and escapes them."""
    people = {str(name).lower(): str(name) for _, name in (getattr(message, "mentioned", None) or [])}
    return markup.formatted(message.body, mentioned=people)
