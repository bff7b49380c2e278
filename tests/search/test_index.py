"""The search index itself (migration 0010): it exists on this database, the database keeps it in step with
every write whatever path made it, and a later migration has not dropped it."""

import pytest
from django.db import connection

from chat import services
from chat.models import Message, Room
from tests.support.in_process import post_message

pytestmark = pytest.mark.django_db


def test_the_index_is_there():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'chat_message'")
            triggers = {name for (name,) in cursor.fetchall()}
            assert triggers == {f"chat_message_fts_{kind}" for kind in ("insert", "update", "delete")}
        else:
            cursor.execute(
                "SELECT is_generated FROM information_schema.columns"
                " WHERE table_name = 'chat_message' AND column_name = 'search_vector'"
            )
            assert cursor.fetchone() == ("ALWAYS",)
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'chat_message_search'")
            assert "USING gin (search_vector)" in cursor.fetchone()[0]


def indexed_ids(word: str) -> set[int]:
    """Ids the index itself finds for a word, whatever the room or the message's state."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT rowid FROM chat_message_fts WHERE chat_message_fts MATCH %s", [f'body : "{word}"'])
        else:
            cursor.execute("SELECT id FROM chat_message WHERE search_vector @@ to_tsquery('english', %s)", [word])
        return {row[0] for row in cursor.fetchall()}


def test_every_write_is_followed_whatever_path_made_it(room, alice):
    posted = post_message(room, alice, "apricot")
    [bulk] = Message.objects.bulk_create(
        [Message(room=room, author=alice, body="apricot jam", seq=99, posted_seq=99, token=posted.token.hex[::-1])]
    )
    assert indexed_ids("apricot") == {posted.pk, bulk.pk}
    services.message_edit(room=room, message_id=posted.pk, editor=alice, data={"message": "plum"})
    assert indexed_ids("apricot") == {bulk.pk} and indexed_ids("plum") == {posted.pk}
    services.message_delete(room=room, message_id=posted.pk, actor=alice)
    assert indexed_ids("plum") == set()
    Room.objects.filter(pk=room.pk).delete()  # rows gone for good (a cascade)
    assert indexed_ids("apricot") == set()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # FTS5 checks its index against the table: raises if they differ
            cursor.execute("INSERT INTO chat_message_fts(chat_message_fts) VALUES ('integrity-check')")
