"""Who may get in at all: who may sign up (CHAT_SIGNUP)."""

from django.conf import settings


def signup_open() -> bool:
    """Can anyone sign up without more ado (CHAT_SIGNUP=open)? Only then do pages link to the sign-up form."""
    return settings.CHAT_SIGNUP == "open"
