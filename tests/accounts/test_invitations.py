"""Invitations (CHAT_SIGNUP=invite): staff make them at /accounts/invites/ and may withdraw an unused one;
each link is unguessable, kept only as a hash, expires, and makes one account, even when two sign-ups
use it at once."""

import re
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from chat.accounts import invitations
from chat.accounts.forms import SignupForm
from chat.models import Invitation

PASSWORD = "a-long-passphrase"


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("sam", password="correct-horse-battery", is_staff=True)


@pytest.fixture(autouse=True)
def invite_only(settings):
    settings.CHAT_SIGNUP = "invite"


def staff_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def link_on(page: str) -> str:
    return re.search(r'value="(http://testserver/accounts/signup/\?invite=[^"]+)"', page).group(1)


def test_staff_make_an_invitation_link_shown_once_and_stored_as_a_hash(staff):
    client = staff_client(staff)

    made = client.post("/accounts/invites/")
    later = client.get("/accounts/invites/")

    assert made.status_code == 200
    link = link_on(made.text)
    token = link.rsplit("=", 1)[1]
    assert len(token) == 32  # secrets.token_urlsafe(24): 192 random bits
    invitation = Invitation.objects.get()
    assert invitation.created_by == staff and invitation.used is None
    assert invitation.token_hash == invitations.token_hash(token) != token
    assert token not in later.text and "Unused" in later.text
    assert Client().get(link.removeprefix("http://testserver")).status_code == 200  # the link leads to the form


def test_each_invitation_gets_its_own_token(staff):
    tokens = {invitations.invitation_create(by=staff)[1] for _ in range(20)}
    assert len(tokens) == 20


def test_an_invitation_expires_after_the_configured_days(staff, settings):
    settings.CHAT_INVITATION_DAYS = 2
    before = timezone.now()

    invitation, token = invitations.invitation_create(by=staff)

    assert before + timedelta(days=2) <= invitation.expires <= timezone.now() + timedelta(days=2)
    Invitation.objects.update(expires=timezone.now() - timedelta(seconds=1))
    with pytest.raises(invitations.InvitationRefused, match="expired"):
        invitations.invitation_check(token=token)


def test_the_page_lists_the_staff_members_own_invitations_with_their_state(staff):
    other_staff = User.objects.create_user("tess", is_staff=True)
    invitations.invitation_create(by=other_staff)
    used, token = invitations.invitation_create(by=staff)
    invitations.invitation_redeem(token=token, form=signup_form("carol"))
    revoked, _ = invitations.invitation_create(by=staff)
    invitations.invitation_revoke(invitation_id=revoked.pk, by=staff)
    expired, _ = invitations.invitation_create(by=staff)
    Invitation.objects.filter(pk=expired.pk).update(expires=timezone.now() - timedelta(minutes=1))
    unused, _ = invitations.invitation_create(by=staff)

    page = staff_client(staff).get("/accounts/invites/").text

    assert page.count('<tr id="invitation-') == 4
    assert "Used by carol" in row(page, used)
    assert "Withdrawn" in row(page, revoked)
    assert "Expired" in row(page, expired)
    assert f'action="/accounts/invites/{unused.pk}/revoke/"' in row(page, unused)
    assert page.count("/revoke/") == 1


def row(page: str, invitation: Invitation) -> str:
    return re.search(rf'<tr id="invitation-{invitation.pk}">.*?</tr>', page, re.S).group(0)


def signup_form(username: str) -> SignupForm:
    form = SignupForm({"username": username, "password1": PASSWORD, "password2": PASSWORD})
    assert form.is_valid(), form.errors
    return form


def test_staff_withdraw_an_unused_invitation_and_its_link_stops_working(staff):
    invitation, token = invitations.invitation_create(by=staff)

    response = staff_client(staff).post(f"/accounts/invites/{invitation.pk}/revoke/")

    assert response.status_code == 302 and response["Location"] == "/accounts/invites/"
    invitation.refresh_from_db()
    assert invitation.revoked is not None
    refused = Client().post(
        f"/accounts/signup/?invite={token}", {"username": "carol", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert refused.status_code == 403 and invitations.REVOKED in refused.text
    assert not User.objects.filter(username="carol").exists()


def test_a_used_or_someone_elses_invitation_cannot_be_withdrawn(staff):
    used, token = invitations.invitation_create(by=staff)
    invitations.invitation_redeem(token=token, form=signup_form("carol"))
    theirs, _ = invitations.invitation_create(by=User.objects.create_user("tess", is_staff=True))
    client = staff_client(staff)

    assert client.post(f"/accounts/invites/{used.pk}/revoke/").status_code == 404
    assert client.post(f"/accounts/invites/{theirs.pk}/revoke/").status_code == 404
    assert client.get(f"/accounts/invites/{theirs.pk}/revoke/").status_code == 405
    assert not Invitation.objects.filter(revoked__isnull=False).exists()


def test_only_staff_reach_the_invitations(staff, alice):
    invitation, _ = invitations.invitation_create(by=staff)
    page, revoke = "/accounts/invites/", f"/accounts/invites/{invitation.pk}/revoke/"
    member = staff_client(alice)

    assert member.get(page).status_code == 404
    assert member.post(page).status_code == 404
    assert member.post(revoke).status_code == 404
    for path in (page, revoke):
        anonymous = Client().post(path)
        assert anonymous.status_code == 302 and anonymous["Location"] == f"/accounts/login/?next={path}"
    assert Invitation.objects.count() == 1 and Invitation.objects.get().revoked is None


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_there_are_no_invitations_to_make_unless_sign_up_is_by_invitation(staff, settings, mode):
    settings.CHAT_SIGNUP = mode
    client = staff_client(staff)

    assert client.get("/accounts/invites/").status_code == 404
    assert client.post("/accounts/invites/").status_code == 404
    assert "Invitations</a>" not in client.get("/").text
    assert not Invitation.objects.exists()


def test_the_header_links_staff_to_their_invitations(staff, alice):
    assert '<a href="/accounts/invites/">Invitations</a>' in staff_client(staff).get("/").text
    assert "/accounts/invites/" not in staff_client(alice).get("/").text


@pytest.mark.django_db(transaction=True)
def test_two_sign_ups_with_one_invitation_at_once_make_one_account():
    """The first redeem holds the invitation while its account is saved; the second starts meanwhile, waits
    for it (PostgreSQL: the row lock; SQLite: the write lock), then finds the invitation used."""
    staff = User.objects.create_user("sam", is_staff=True)
    _, token = invitations.invitation_create(by=staff)
    first_inside, results = threading.Event(), {}
    first_form, second_form = signup_form("carol"), signup_form("dave")
    save = first_form.save

    def slow_save(*args, **kwargs):
        user = save(*args, **kwargs)
        first_inside.set()
        time.sleep(0.5)  # the second sign-up runs into the lock meanwhile
        return user

    first_form.save = slow_save

    def redeem(name: str, form: SignupForm, wait: threading.Event | None) -> None:
        try:
            if wait is not None:
                assert wait.wait(timeout=10)
            results[name] = invitations.invitation_redeem(token=token, form=form).get_username()
        except invitations.InvitationRefused as refused:
            results[name] = str(refused)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=redeem, args=("first", first_form, None)),
        threading.Thread(target=redeem, args=("second", second_form, first_inside)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert results == {"first": "carol", "second": invitations.USED}
    assert set(User.objects.values_list("username", flat=True)) == {"sam", "carol"}
    assert Invitation.objects.get().used_by.get_username() == "carol"
