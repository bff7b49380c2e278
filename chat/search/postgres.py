"""Search on PostgreSQL: a stored tsvector column with a GIN index (migration 0010), websearch_to_tsquery
built from the parsed words, ts_rank and ts_headline, all through django.contrib.postgres.search.

One text-search configuration, CONFIG, for the column, the query and the snippets: the three must agree,
or the stemmed words would not meet. Changing it means a migration that regenerates the column.
"""

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVectorField
from django.db.models import Expression, F, Q, QuerySet, Value
from django.db.models.functions import Replace

from chat.models import Membership, Message, Room
from chat.search.query import Query
from chat.search.scope import Scope
from chat.search.snippets import GREATER_THAN, LESS_THAN, MARK_END, MARK_START, MARKERS, SNIPPET_WORDS

CONFIG = "english"
COLUMN = "search_vector"  # GENERATED ALWAYS AS (to_tsvector('english', body)) STORED: see migration 0010


class StoredVector(Expression):
    """The message's stored tsvector: a column the database generates and Django's model does not declare
    (SQLite has no such column)."""

    output_field = SearchVectorField()

    def as_sql(self, compiler, connection):
        table = compiler.quote_name_unless_alias(Message._meta.db_table)
        return f"{table}.{connection.ops.quote_name(COLUMN)}", []


def websearch_text(query: Query) -> str:
    """The query in websearch_to_tsquery's syntax, from the parsed words only: every term quoted (a quoted
    single word is that word; `or` quoted is a word, not the operator), exclusions with a minus."""
    return " ".join(f'{"-" if term.exclude else ""}"{" ".join(term.words)}"' for term in query.terms)


def search_query(query: Query) -> SearchQuery:
    return SearchQuery(websearch_text(query), search_type="websearch", config=CONFIG)


def scope_filter(scope: Scope) -> Q:
    if scope.room_id is not None:
        return Q(room_id=scope.room_id)
    # A join on the room (a hash join after the index scan), not `room_id IN (rooms)`: with that, the planner
    # may run the index scan once per room.
    readable = Q(room__kind=Room.PUBLIC) if scope.public else Q(pk__in=[])
    if scope.member_id is not None:
        readable |= Q(room_id__in=Membership.objects.filter(user_id=scope.member_id).values("room_id"))
    return readable


def matching(query: Query, scope: Scope) -> QuerySet[Message]:
    """The messages in scope (never a deleted one) whose vector matches the query."""
    messages = Message.objects.filter(scope_filter(scope), deleted__isnull=True)
    return messages.alias(vector=StoredVector()).filter(vector=search_query(query))


def ranked_ids(query: Query, scope: Scope, *, candidates: int, offset: int, limit: int) -> list[int]:
    """Ids of the newest `candidates` matches, best first (ts_rank), then newest first: the id of the
    candidates-th newest match first (the GIN index and the primary key, newest first), then the matches from
    there on ranked. (As one query with a subquery, the stored vector would be read against the outer table:
    StoredVector names the table, not the subquery's alias.)"""
    matches = matching(query, scope)
    newest_from = next(iter(matches.order_by("-id").values_list("id", flat=True)[candidates - 1 : candidates]), 0)
    ranked = matches.filter(id__gte=newest_from).annotate(rank=SearchRank(StoredVector(), search_query(query)))
    return list(ranked.order_by("-rank", "-id").values_list("id", flat=True)[offset : offset + limit])


def snippets(query: Query, bodies: dict[int, str]) -> dict[int, str]:
    """id → the best passage of each message, its matched words between MARK_START and MARK_END
    (ts_headline of the plain text: the markers, never HTML; the template escapes the rest)."""
    # Marker characters in a body itself are dropped first (a message cannot forge a match), then < and > are
    # swapped for stand-ins: ts_headline would drop whatever looks like a tag (snippet_parts swaps them back).
    body = F("body")
    for marker in MARKERS:
        body = Replace(body, Value(marker), Value(""))
    body = Replace(Replace(body, Value("<"), Value(LESS_THAN)), Value(">"), Value(GREATER_THAN))
    headline = SearchHeadline(
        body,
        search_query(query),
        config=CONFIG,
        start_sel=MARK_START,
        stop_sel=MARK_END,
        max_words=SNIPPET_WORDS,
        min_words=SNIPPET_WORDS // 2,
    )
    rows = Message.objects.filter(pk__in=list(bodies)).annotate(snippet=headline).values_list("id", "snippet")
    return dict(rows)
