"""Who may get in, for templates: `{% signup_open as can_sign_up %}` before a "Sign up" link, `{% may_read user as
can_read %}` before the search box (chat/accounts/access.py).

A tag rather than a context processor: the header is also rendered without a request, in the signed-out frame.
"""

from django import template
from django.conf import settings

from chat.accounts import access

register = template.Library()


@register.simple_tag
def signup_open() -> bool:
    return access.signup_open()


@register.simple_tag
def invitations_on() -> bool:
    """Staff make invitations (CHAT_SIGNUP=invite): the header links them to /accounts/invites/."""
    return settings.CHAT_SIGNUP == "invite"


@register.simple_tag
def may_read(user) -> bool:
    """May this reader read anything at all (with CHAT_PUBLIC_READ=0, a visitor may not: no search box)."""
    return bool(access.may_read_public(user))
