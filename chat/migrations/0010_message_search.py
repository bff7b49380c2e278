"""Full-text search indexes for the messages (chat/search/): each database gets its own.

PostgreSQL: a stored generated tsvector column (the 'english' configuration, as chat/search/postgres.py
queries it) and a GIN index on it. Adding the column rewrites the table once, computing every row's vector.

SQLite: an FTS5 table over the bodies and room ids (external content: the index only) with triggers that keep it in step
with every insert, edit and delete, then filled from the existing messages ('rebuild').

Other databases: nothing (search is not offered there).
"""

from django.db import migrations

POSTGRES = [
    "ALTER TABLE chat_message ADD COLUMN search_vector tsvector"
    " GENERATED ALWAYS AS (to_tsvector('english'::regconfig, body)) STORED",
    "CREATE INDEX chat_message_search ON chat_message USING gin (search_vector)",
]
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS chat_message_search",
    "ALTER TABLE chat_message DROP COLUMN IF EXISTS search_vector",
]

SQLITE = [
    # The room's id is indexed too (a token of its own column), so a search within one room is an AND of two
    # lists in the index rather than a check of every match's room.
    "CREATE VIRTUAL TABLE chat_message_fts USING fts5(body, room_id, content='chat_message', content_rowid='id',"
    " tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chat_message_fts_insert AFTER INSERT ON chat_message BEGIN"
    " INSERT INTO chat_message_fts(rowid, body, room_id) VALUES (new.id, new.body, new.room_id); END",
    "CREATE TRIGGER chat_message_fts_delete AFTER DELETE ON chat_message BEGIN"
    " INSERT INTO chat_message_fts(chat_message_fts, rowid, body, room_id)"
    " VALUES ('delete', old.id, old.body, old.room_id); END",
    "CREATE TRIGGER chat_message_fts_update AFTER UPDATE OF body, room_id ON chat_message BEGIN"
    " INSERT INTO chat_message_fts(chat_message_fts, rowid, body, room_id)"
    " VALUES ('delete', old.id, old.body, old.room_id);"
    " INSERT INTO chat_message_fts(rowid, body, room_id) VALUES (new.id, new.body, new.room_id); END",
    "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS chat_message_fts_update",
    "DROP TRIGGER IF EXISTS chat_message_fts_delete",
    "DROP TRIGGER IF EXISTS chat_message_fts_insert",
    "DROP TABLE IF EXISTS chat_message_fts",
]


def statements(forward):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        chosen = {"postgresql": POSTGRES, "sqlite": SQLITE} if forward else {
            "postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE
        }
        for statement in chosen.get(vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0009_mentions"),  # after it: its new column rebuilds chat_message on SQLite, triggers and all
    ]

    operations = [
        migrations.RunPython(statements(True), statements(False), elidable=False),
    ]
