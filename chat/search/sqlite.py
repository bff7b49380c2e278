"""Search on SQLite: an FTS5 table, chat_message_fts, over the messages' bodies and room ids (external
content: it holds the index, not a second copy of the text), kept in step by triggers on chat_message
(migration 0010).

The MATCH expression is built from the parsed words only: each term an FTS5 string of the body column
(`body : "…"`, the words joined by spaces: a phrase), so no operator, column filter, prefix `*`, `^` or
NEAR the user types reaches FTS5. Ranked by bm25() of the body (lower is better), snippets by snippet()
with private-use markers, over the page's own texts (`snippets`).
"""

from django.db import connection

from chat.models import Room
from chat.search.query import Query
from chat.search.scope import Scope
from chat.search.snippets import MARK_END, MARK_START, MARKERS, SNIPPET_WORDS

TABLE = "chat_message_fts"
PAGE_TABLE = "chat_search_page"  # a temporary table: the texts of the page being shown, for their snippets
NO_MARKERS = str.maketrans(dict.fromkeys(MARKERS))
# Porter stemming over unicode61 (letters and digits of any script, diacritics folded).
TOKENIZE = "porter unicode61 remove_diacritics 2"


def fts_string(words: tuple[str, ...]) -> str:
    """A phrase of the body column. Words are letters and digits only (query.py): no double quote to escape."""
    return 'body : "' + " ".join(words) + '"'


def match_text(query: Query, *, room_id: int | None = None) -> str:
    """The FTS5 expression: every included term, AND, then each excluded one after NOT (FTS5's NOT is binary);
    within one room, AND that room's id (a token of the room_id column)."""
    expression = " AND ".join(fts_string(term.words) for term in query.included)
    for term in query.excluded:
        expression = f"({expression}) NOT {fts_string(term.words)}"
    if room_id is not None:
        expression = f'room_id : "{int(room_id)}" AND ({expression})'
    return expression


def scope_sql(scope: Scope) -> tuple[str, list]:
    """The condition on the message `m` for this scope (SQLite builds the room list once for the IN)."""
    if scope.room_id is not None:
        return "m.room_id = %s", [scope.room_id]
    rooms, params = [], []
    if scope.public:
        rooms.append("SELECT id FROM chat_room WHERE kind = %s")
        params.append(Room.PUBLIC)
    if scope.member_id is not None:
        rooms.append("SELECT room_id FROM chat_membership WHERE user_id = %s")
        params.append(scope.member_id)
    return f"m.room_id IN ({' UNION '.join(rooms) or 'SELECT NULL'})", params


def matching_sql(query: Query, scope: Scope) -> tuple[str, list]:
    """FROM and WHERE of the messages in scope (never a deleted one) that match the query."""
    condition, params = scope_sql(scope)
    sql = f"""FROM {TABLE} JOIN chat_message m ON m.id = {TABLE}.rowid
        WHERE {TABLE} MATCH %s AND m.deleted IS NULL AND {condition}"""
    return sql, [match_text(query, room_id=scope.room_id), *params]


def ranked_ids(query: Query, scope: Scope, *, candidates: int, offset: int, limit: int) -> list[int]:
    """Ids of the newest `candidates` matches, best first (bm25), then newest first: one walk of the index,
    newest first, that stops at the candidates (a word in thousands of messages costs what a rarer one does)."""
    matching, params = matching_sql(query, scope)
    sql = f"""SELECT id FROM (
            SELECT m.id AS id, bm25({TABLE}, 1.0, 0.0) AS score {matching} ORDER BY {TABLE}.rowid DESC LIMIT %s
        ) ORDER BY score, id DESC LIMIT %s OFFSET %s"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, candidates, limit, offset])
        return [row[0] for row in cursor.fetchall()]


def snippets(query: Query, bodies: dict[int, str]) -> dict[int, str]:
    """id → the best passage of each of these messages, its matched words between MARK_START and MARK_END.

    Made in a small temporary FTS5 table of the page's own texts, with the same tokenizer (PAGE_TABLE: one per
    connection, emptied after each use), not by snippet() over the whole index: that looks the query's words
    up in the index once per message, and a frequent word's list is long (a page of a two-word phrase at
    1,000,000 messages: 3.4 ms that way, 0.5 ms this way). Marker characters in a text are dropped first, so a
    message cannot forge a match."""
    if not bodies:
        return {}
    rows = [(pk, body.translate(NO_MARKERS)) for pk, body in bodies.items()]
    with connection.cursor() as cursor:
        table = f"temp.{PAGE_TABLE} USING fts5(body, tokenize = '{TOKENIZE}')"
        cursor.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table}")
        cursor.execute(f"DELETE FROM temp.{PAGE_TABLE}")
        try:
            cursor.executemany(f"INSERT INTO temp.{PAGE_TABLE} (rowid, body) VALUES (%s, %s)", rows)
            cursor.execute(
                f"SELECT rowid, snippet({PAGE_TABLE}, 0, %s, %s, '…', %s) FROM temp.{PAGE_TABLE}"
                f" WHERE {PAGE_TABLE} MATCH %s",
                [MARK_START, MARK_END, SNIPPET_WORDS, match_text(query)],
            )
            return dict(cursor.fetchall())
        finally:
            cursor.execute(f"DELETE FROM temp.{PAGE_TABLE}")
