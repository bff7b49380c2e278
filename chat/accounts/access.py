"""Who may get in at all: who may sign up (CHAT_SIGNUP) and who may read the public rooms (CHAT_PUBLIC_READ).

The pages (chat/accounts/sign_in_required.py), the room socket and the lobby socket ask the same
function, so one setting closes every path at once.
"""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def may_read_public(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """May this reader see the public rooms: anyone with CHAT_PUBLIC_READ=1, signed-in users only with 0."""
    return settings.CHAT_PUBLIC_READ or (user is not None and user.is_authenticated)


def signup_open() -> bool:
    """Can anyone sign up without more ado (CHAT_SIGNUP=open)? Only then do pages link to the sign-up form."""
    return settings.CHAT_SIGNUP == "open"
