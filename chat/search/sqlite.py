"""Search on SQLite: an FTS5 table, chat_message_fts, over the messages' bodies (external content: it holds
the index, not a second copy of the text), kept in step by triggers on chat_message (migration 0009).

The MATCH expression is built from the parsed words only: each term an FTS5 string ("…", the words joined
by spaces: a phrase), so no operator, column filter, prefix `*`, `^` or NEAR the user types reaches FTS5.
Ranked by bm25() (lower is better), snippets by snippet() with private-use markers.
"""

from django.db import connection
from django.db.models import QuerySet

from chat.models import Room
from chat.search.query import Query
from chat.search.snippets import MARK_END, MARK_START, SNIPPET_WORDS

TABLE = "chat_message_fts"
# Porter stemming over unicode61 (letters and digits of any script, diacritics folded).
TOKENIZE = "porter unicode61 remove_diacritics 2"


def fts_string(words: tuple[str, ...]) -> str:
    # Words are letters and digits only (query.py): no double quote to escape; a phrase is a string of several.
    return '"' + " ".join(words) + '"'


def match_text(query: Query) -> str:
    """The FTS5 expression: every included term, AND, then each excluded one after NOT (FTS5's NOT is binary)."""
    expression = " AND ".join(fts_string(term.words) for term in query.included)
    for term in query.excluded:
        expression = f"({expression}) NOT {fts_string(term.words)}"
    return expression


def ranked_ids(query: Query, rooms: QuerySet[Room], *, offset: int, limit: int) -> list[int]:
    """Ids of the matching messages (not deleted) of these rooms, best first (bm25), then newest first."""
    rooms_sql, rooms_params = rooms.values("id").query.sql_with_params()
    sql = f"""
        SELECT m.id FROM {TABLE} JOIN chat_message m ON m.id = {TABLE}.rowid
        WHERE {TABLE} MATCH %s AND m.deleted IS NULL AND m.room_id IN ({rooms_sql})
        ORDER BY bm25({TABLE}), m.id DESC LIMIT %s OFFSET %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [match_text(query), *rooms_params, limit, offset])
        return [row[0] for row in cursor.fetchall()]


def snippets(query: Query, ids: list[int]) -> dict[int, str]:
    """id → the best passage of each message, its matched words between MARK_START and MARK_END."""
    if not ids:
        return {}
    marks = ", ".join(["%s"] * len(ids))
    sql = f"""
        SELECT rowid, snippet({TABLE}, 0, %s, %s, '…', %s) FROM {TABLE}
        WHERE {TABLE} MATCH %s AND rowid IN ({marks})
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [MARK_START, MARK_END, SNIPPET_WORDS, match_text(query), *ids])
        return dict(cursor.fetchall())
