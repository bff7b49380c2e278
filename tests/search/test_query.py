"""Parsing what the user typed, and the query each database gets from it: hostile text never reaches a
query's syntax, and every query built from it runs."""

import random
import re

import pytest
from django.contrib.auth.models import AnonymousUser

from chat.search import postgres, sqlite
from chat.search.query import MAX_TERMS, NO_WORDS, TOO_LONG, TOO_SHORT, QueryError, Term, query_parse
from chat.search.results import message_search
from tests.support.in_process import post_message
from tests.support.search_text import HOSTILE


def test_words_phrases_and_exclusions():
    query = query_parse('Budget "Next Quarter" -draft -"old plan" foo-bar')
    assert query.terms == (
        Term(("budget",)),
        Term(("next", "quarter")),
        Term(("draft",), exclude=True),
        Term(("old", "plan"), exclude=True),
        Term(("foo",)),
        Term(("bar",)),
    )


@pytest.mark.parametrize(("text", "reason"), [("a", TOO_SHORT), ("  a  ", TOO_SHORT), ("x" * 201, TOO_LONG)])
def test_too_short_or_too_long(text, reason):
    with pytest.raises(QueryError, match=reason):
        query_parse(text)


@pytest.mark.parametrize("text", ["-draft", "()", '"" -a', "*^:", "\0*\0^"])
def test_nothing_to_look_for(text):
    with pytest.raises(QueryError, match=re.escape(NO_WORDS)):
        query_parse(text)


def test_terms_are_capped():
    assert len(query_parse(" ".join(f"w{n}" for n in range(40))).terms) == MAX_TERMS


@pytest.mark.parametrize("text", HOSTILE)
def test_built_queries_hold_only_quoted_words(text):
    try:
        query = query_parse(text[:200])
    except QueryError:
        return
    for built in (sqlite.match_text(query), postgres.websearch_text(query)):
        assert "\0" not in built
        built.encode("utf-8")  # no lone surrogate
        # Outside the quoted strings, only our own operators.
        outside = built.split('"')[::2]
        assert all(set(part) <= set(" ()-ANDOT:body") for part in outside), built


def random_text(rng: random.Random) -> str:
    alphabet = "ab \"()-*^:+NEAROTD\0\\'%;,.{}\ud800é中 \t\n"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))


@pytest.mark.django_db
def test_fuzz_every_query_runs_on_the_database(room, alice, caplog):
    post_message(room, alice, 'a b NEAR "quoted" (brackets) end* ^start col:on')
    rng = random.Random(20)
    texts = HOSTILE + [random_text(rng) for _ in range(300)]
    for text in texts:
        try:
            message_search(text=text, user=AnonymousUser())
        except QueryError:
            pass
    assert not [record for record in caplog.records if record.levelname in {"ERROR", "CRITICAL"}]
