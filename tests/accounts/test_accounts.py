"""Accounts: ASCII usernames only, no password reset pages (no mail is set up), password change works."""

import pytest
from django.contrib.auth.models import User


@pytest.mark.parametrize("name", ["\u0430dmin", "adm\u0131n", "admin\u200b", "e\u0301mile", "a b"])
def test_sign_up_refuses_usernames_outside_ascii_letters_digits_and_symbols(client, db, name):
    form = {"username": name, "password1": "a-long-passphrase", "password2": "a-long-passphrase"}

    response = client.post("/accounts/signup/", form)

    assert response.status_code == 200
    assert "English letters, digits and @ . + - _ only" in response.text
    assert not User.objects.exists()


def test_sign_up_accepts_the_ascii_symbols(client, db):
    form = {"username": "ann.lee+chat@x-y_z", "password1": "a-long-passphrase", "password2": "a-long-passphrase"}

    assert client.post("/accounts/signup/", form).status_code == 302
    assert User.objects.filter(username="ann.lee+chat@x-y_z").exists()


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/done/",
    ],
)
def test_there_are_no_password_reset_pages(client, db, path):
    assert client.get(path).status_code == 404
    assert client.post(path, {"email": "someone@example.com"}).status_code in {403, 404}


def test_a_password_change_works(client, alice):
    client.force_login(alice)

    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "correct-horse-battery",
            "new_password1": "another-long-pass",
            "new_password2": "another-long-pass",
        },
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("another-long-pass")


def test_every_page_carries_the_strict_content_security_policy(client, db):
    for path in ("/", "/chat/somewhere/", "/accounts/login/", "/accounts/signup/", "/nowhere/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy, path
        assert "unsafe" not in policy, path


def test_pages_configure_htmx_for_the_policy(client, db):
    page = client.get("/chat/somewhere/").text

    config = '{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'
    assert f"<meta name=\"htmx-config\" content='{config}'>" in page
