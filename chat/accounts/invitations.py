"""Invitations to sign up, when CHAT_SIGNUP=invite: staff make them, a sign-up uses one up.

Each is a link with an unguessable token (`secrets.token_urlsafe(24)`: 192 random bits), usable once,
until it expires (CHAT_INVITATION_DAYS) or its maker revokes it. Only the token's SHA-256 is stored,
so the link is shown once, when it is made. Redeeming locks the invitation's row while the account
is created, so two sign-ups with one link at once make one account.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from chat.models import Invitation

MISSING = "Signing up here needs an invitation: ask a staff member for a link."
UNKNOWN = "This invitation link is not valid: check that it was copied whole, or ask for a new one."
USED = "This invitation has been used already: ask for a new one."
EXPIRED = "This invitation has expired: ask for a new one."
REVOKED = "This invitation was withdrawn: ask for a new one."


class InvitationRefused(Exception):
    """The invitation cannot be used; the message says why, for the person holding the link."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(*, by: AbstractBaseUser) -> tuple[Invitation, str]:
    """A new invitation made by `by`, and its token (the only time the token is known)."""
    token = secrets.token_urlsafe(24)
    expires = timezone.now() + timedelta(days=settings.CHAT_INVITATION_DAYS)
    invitation = Invitation.objects.create(token_hash=token_hash(token), created_by=by, expires=expires)
    return invitation, token


def invitation_revoke(*, invitation_id: int, by: AbstractBaseUser) -> Invitation:
    """Withdraw one of `by`'s own unused invitations (Invitation.DoesNotExist for any other: used, revoked, or
    not theirs)."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(pk=invitation_id, created_by=by, used__isnull=True, revoked__isnull=True)
            .first()
        )
        if invitation is None:
            raise Invitation.DoesNotExist("There is no such unused invitation of yours.")
        invitation.revoked = timezone.now()
        invitation.save(update_fields=["revoked"])
    return invitation


def invitation_check(*, token: str | None) -> Invitation:
    """The usable invitation with this token, or InvitationRefused saying why not (no lock: for showing the form)."""
    return _usable(Invitation.objects.filter(token_hash=token_hash(token)).first() if token else None, token)


def invitation_redeem(*, token: str | None, form: BaseUserCreationForm) -> AbstractBaseUser:
    """Create the account of a valid sign-up form with the invitation `token`, and use the invitation up.

    The invitation's row stays locked until the account is committed: a second sign-up with the same
    token waits, then finds it used and creates nothing. On SQLite, whose transactions here begin
    IMMEDIATE (settings), the write lock taken at the start does the same.
    """
    with transaction.atomic():
        found = Invitation.objects.select_for_update().filter(token_hash=token_hash(token)).first() if token else None
        invitation = _usable(found, token)
        user = form.save()
        invitation.used, invitation.used_by = timezone.now(), user
        invitation.save(update_fields=["used", "used_by"])
    return user


def invitations_made(*, by: AbstractBaseUser) -> QuerySet[Invitation]:
    """`by`'s invitations, newest first, with who used each."""
    return Invitation.objects.filter(created_by=by).select_related("used_by")


def _usable(invitation: Invitation | None, token: str | None) -> Invitation:
    if not token:
        raise InvitationRefused(MISSING)
    if invitation is None:
        raise InvitationRefused(UNKNOWN)
    if invitation.used is not None:
        raise InvitationRefused(USED)
    if invitation.revoked is not None:
        raise InvitationRefused(REVOKED)
    if invitation.expires <= timezone.now():
        raise InvitationRefused(EXPIRED)
    return invitation
