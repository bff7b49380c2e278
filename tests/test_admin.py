"""The admin goes through the services: users are removed by deactivation (their messages as tombstones in
each room's stream, broadcast), never deleted behind the pages' backs."""

import pytest
from django.contrib.auth.models import Permission, User
from django.db.models import ProtectedError

from chat.models import Message, Room
from tests.support.in_process import post_message


@pytest.fixture
def root(db) -> User:
    return User.objects.create_superuser("root", password="correct-horse-battery")


@pytest.fixture
def gina(db) -> User:
    return User.objects.create_user("gina", password="correct-horse-battery")


def test_the_admin_offers_no_user_deletion(client, root, gina):
    client.force_login(root)
    assert client.get(f"/admin/auth/user/{gina.pk}/delete/").status_code == 403
    page = client.get("/admin/auth/user/").text
    assert "delete_selected" not in page and "remove_users_and_messages" in page


def test_the_admins_removal_turns_messages_into_tombstones_in_the_stream(client, root, gina):
    room = Room.objects.create(name="general")
    posted = [post_message(room, gina, f"spam {n}") for n in range(3)]
    client.force_login(root)

    answer = client.post(
        "/admin/auth/user/",
        {"action": "remove_users_and_messages", "_selected_action": [gina.pk], "index": 0},
        follow=True,
    )

    assert answer.status_code == 200 and "Gina was removed, 3 messages deleted." in answer.text
    gina.refresh_from_db()
    room.refresh_from_db()
    assert not gina.is_active
    stored = list(Message.objects.filter(pk__in=[m.pk for m in posted]).order_by("pk"))
    assert all(m.deleted is not None and m.body == "" for m in stored)
    assert [m.seq for m in stored] == [4, 5, 6] and room.last_seq == 6  # each a change with the room's next seq


def test_staff_cannot_remove_a_superuser_through_the_admin_either(client, root):
    mod = User.objects.create_user("mod", password="correct-horse-battery", is_staff=True, is_superuser=False)
    mod.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth"))
    client.force_login(mod)
    answer = client.post(
        "/admin/auth/user/", {"action": "remove_users", "_selected_action": [root.pk], "index": 0}, follow=True
    )
    root.refresh_from_db()
    assert root.is_active and "only a superuser removes staff" in answer.text


def test_deleting_a_user_with_messages_is_refused_in_favour_of_deactivation(gina):
    post_message(Room.objects.create(name="general"), gina, "still here")
    with pytest.raises(ProtectedError):
        gina.delete()
    assert Message.objects.filter(body="still here").exists()
