"""Names that look alike (chat/accounts/lookalikes.py): refused on sign-up and in the admin, with the name
they would be taken for; names that only share letters are not."""

import pytest
from django.contrib.auth.models import User

from chat.accounts.lookalikes import lookalike, skeleton

PASSWORD = "a-long-passphrase"


def sign_up(client, name):
    return client.post("/accounts/signup/", {"username": name, "password1": PASSWORD, "password2": PASSWORD})


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("aIice", "alice"),
        ("alice.", "alice"),
        ("a1ice", "alice"),
        ("b0b", "bob"),
        ("rnary", "mary"),
        ("al_ice", "alice"),
        ("álice", "alice"),
        ("\uff22ob", "bob"),  # fullwidth B
    ],
)
def test_names_nobody_can_tell_apart_share_a_skeleton(one, other):
    assert skeleton(one) == skeleton(other)


@pytest.mark.parametrize(("one", "other"), [("alice", "alicia"), ("ann", "anne"), ("bob", "rob"), ("ian", "lan")])
def test_different_names_do_not(one, other):
    assert skeleton(one) != skeleton(other)


@pytest.mark.parametrize("name", ["aIice", "alice.", "a1ice", "al-ice"])
def test_sign_up_refuses_a_name_that_looks_like_an_existing_one(client, db, name):
    User.objects.create_user("alice", password=PASSWORD)

    response = sign_up(client, name)

    assert response.status_code == 200
    assert f"“{name}” looks too much like “alice”, who is already here" in response.text
    assert not User.objects.filter(username=name).exists()


def test_sign_up_still_takes_names_that_only_share_letters(client, db):
    User.objects.create_user("alice", password=PASSWORD)

    assert sign_up(client, "alicia").status_code == 302
    assert User.objects.filter(username="alicia").exists()


def test_a_name_taken_in_another_case_is_simply_taken(client, db):
    User.objects.create_user("alice", password=PASSWORD)

    response = sign_up(client, "Alice")

    assert "A user with that username already exists." in response.text
    assert "looks too much like" not in response.text


def test_an_accented_admin_made_name_counts(db):
    User.objects.create_user("álice")

    assert lookalike("alice") == "álice"
    assert lookalike("álice") is None  # the same name: taken, not alike


def test_the_admin_refuses_a_lookalike_when_adding_or_renaming(admin_client, db):
    User.objects.create_user("alice", password=PASSWORD)
    bob = User.objects.create_user("bob", password=PASSWORD)

    added = admin_client.post(
        "/admin/auth/user/add/",
        {"username": "aIice", "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert added.status_code == 200 and "looks too much like “alice”" in added.text
    assert not User.objects.filter(username="aIice").exists()

    change = {"username": "alice.", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "is_active": "on"}
    renamed = admin_client.post(f"/admin/auth/user/{bob.pk}/change/", change)
    assert renamed.status_code == 200 and "looks too much like “alice”" in renamed.text
    bob.refresh_from_db()
    assert bob.username == "bob"

    change["username"] = "robert"
    assert admin_client.post(f"/admin/auth/user/{bob.pk}/change/", change).status_code == 302
    bob.refresh_from_db()
    assert bob.username == "robert"
