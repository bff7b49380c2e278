"""CHAT_SIGNUP: `open` lets anyone sign up, as before; `invite` needs a staff member's invitation link;
`closed` lets nobody. The pages link to the sign-up form only when anyone may use it. Every form is a
plain one: what holds without JavaScript holds with it."""

import pytest
from django.contrib.auth.models import User

from chat.accounts import invitations
from chat.accounts.forms import SignupForm
from chat.models import Invitation

FORM = {"username": "carol", "password1": "a-long-passphrase", "password2": "a-long-passphrase"}


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("sam", password="correct-horse-battery", is_staff=True)


@pytest.fixture
def invite_only(settings):
    settings.CHAT_SIGNUP = "invite"


def invitation_token(staff: User) -> str:
    return invitations.invitation_create(by=staff)[1]


def test_open_sign_up_is_as_before_and_the_pages_link_to_it(client, db):
    assert client.get("/accounts/signup/").status_code == 200
    assert 'href="/accounts/signup/?next=/"' in client.get("/").text
    assert "No account yet?" in client.get("/accounts/login/").text

    response = client.post("/accounts/signup/", FORM)

    assert response.status_code == 302
    assert User.objects.filter(username="carol").exists()
    assert not Invitation.objects.exists()


def test_closed_sign_up_says_so_with_no_form_and_a_post_creates_nothing(client, db, settings):
    settings.CHAT_SIGNUP = "closed"

    page = client.get("/accounts/signup/")
    response = client.post("/accounts/signup/", FORM)

    assert page.status_code == 403
    assert "Sign-up is closed" in page.text
    assert "<form" not in page.text.split("<main>")[1]  # the header's search box is no sign-up form
    assert response.status_code == 403 and "Sign-up is closed" in response.text
    assert not User.objects.exists()


@pytest.mark.parametrize("mode", ["invite", "closed"])
def test_no_page_links_to_sign_up_unless_it_is_open(client, db, settings, mode):
    settings.CHAT_SIGNUP = mode

    for path in ("/", "/chat/general/", "/accounts/login/"):
        page = client.get(path).text
        assert 'href="/accounts/signup/' not in page, path
        assert 'href="/accounts/login/?next=' in page or path == "/accounts/login/", path


@pytest.mark.parametrize("mode", ["invite", "closed"])
def test_the_signed_out_frame_has_no_sign_up_link_unless_it_is_open(settings, mode):
    from chat import fragments

    settings.CHAT_SIGNUP = mode
    assert "Sign up" not in fragments.signed_out(room_name="general")
    settings.CHAT_SIGNUP = "open"
    assert 'href="/accounts/signup/?next=/chat/general/">Sign up' in fragments.signed_out(room_name="general")


def test_an_invitation_link_signs_up_once(client, staff, invite_only):
    token = invitation_token(staff)
    link = f"/accounts/signup/?invite={token}"

    page = client.get(link)
    response = client.post(link, FORM)

    assert page.status_code == 200 and f'name="invite" value="{token}"' in page.text
    assert response.status_code == 302
    carol = User.objects.get(username="carol")
    invitation = Invitation.objects.get()
    assert invitation.used is not None and invitation.used_by == carol
    assert client.session["_auth_user_id"] == str(carol.pk)  # signed in, as an open sign-up is


def test_the_form_carries_the_invitation_in_a_hidden_field(client, staff, invite_only):
    token = invitation_token(staff)

    response = client.post("/accounts/signup/", {**FORM, "invite": token})

    assert response.status_code == 302
    assert User.objects.filter(username="carol").exists()


def test_an_invalid_form_keeps_the_invitation_unused(client, staff, invite_only):
    token = invitation_token(staff)

    response = client.post(f"/accounts/signup/?invite={token}", {**FORM, "password2": "something-else"})

    assert response.status_code == 200
    assert f'name="invite" value="{token}"' in response.text
    assert Invitation.objects.get().used is None
    assert not User.objects.filter(username="carol").exists()


def signup_form(data: dict) -> SignupForm:
    form = SignupForm(data)
    assert form.is_valid(), form.errors
    return form


def used(staff: User) -> str:
    token = invitation_token(staff)
    invitations.invitation_redeem(token=token, form=signup_form({**FORM, "username": "first"}))
    return token


def expired(staff: User) -> str:
    token = invitation_token(staff)
    Invitation.objects.update(expires="2000-01-01T00:00:00Z")
    return token


def revoked(staff: User) -> str:
    token = invitation_token(staff)
    invitations.invitation_revoke(invitation_id=Invitation.objects.get().pk, by=staff)
    return token


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        pytest.param(lambda staff: None, invitations.MISSING, id="missing"),
        pytest.param(lambda staff: "not-a-token-anyone-made", invitations.UNKNOWN, id="unknown"),
        pytest.param(used, invitations.USED, id="used"),
        pytest.param(expired, invitations.EXPIRED, id="expired"),
        pytest.param(revoked, invitations.REVOKED, id="revoked"),
    ],
)
def test_a_sign_up_without_a_usable_invitation_is_refused_and_stores_nothing(client, staff, invite_only, link, reason):
    token = link(staff)
    path = "/accounts/signup/" + (f"?invite={token}" if token else "")
    users_before = set(User.objects.values_list("username", flat=True))

    page = client.get(path)
    response = client.post(path, FORM)

    for answer in (page, response):
        assert answer.status_code == 403
        assert reason in answer.text
        assert 'name="password1"' not in answer.text
    assert set(User.objects.values_list("username", flat=True)) == users_before
    assert "_auth_user_id" not in client.session


def test_an_open_sign_up_ignores_invitations(client, staff):
    token = invitation_token(staff)

    assert client.post(f"/accounts/signup/?invite={token}", FORM).status_code == 302
    assert Invitation.objects.get().used is None


def test_the_sign_up_limit_still_counts_invitation_sign_ups(client, staff, invite_only, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "signups_per_ip": "1/3600"}
    first, second = invitation_token(staff), invitation_token(staff)

    assert client.post(f"/accounts/signup/?invite={first}", FORM).status_code == 302
    client.logout()
    response = client.post(f"/accounts/signup/?invite={second}", {**FORM, "username": "dave"})

    assert response.status_code == 429
    assert not User.objects.filter(username="dave").exists()
