"""Mentions in message bodies: where `@name` is written, for the service that resolves it and the template that
renders it.

No HTML and no query here. A mention is `@` and a name of the characters a username may hold (letters,
digits, `_ . + -`), not preceded by a letter, digit or one of `. @ / + - `` ` `` (so `bob@example.com`
stays an address), outside any URL (chat/linkify.py finds those first) and outside a `code span` in
backticks. Names match whatever their case. Trailing dots, hyphens and plus signs are tried off one by one
(`@bob.` at the end of a sentence is bob, unless someone is really called `bob.`): the longest spelling
that names someone wins. Which spellings name someone is the caller's to say: the service asks the
database once for every spelling of a message (`spellings`), the template knows the names the message
was saved with (`Message.mentioned`).
"""

import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from chat import linkify

MAX_PEOPLE = 20  # people one message may notify
NAME_MAX_LENGTH = 150  # Django's username
_CANDIDATE = re.compile(rf"(?<![\w.@/+`-])@([\w.+-]{{1,{NAME_MAX_LENGTH}}})")
_CODE = re.compile(r"`[^`\n]*`")
_TRAILING = ".+-"


class Found(NamedTuple):
    start: int  # of the `@`
    end: int
    name: str  # as matched, lower-cased


def _variants(name: str) -> Iterator[str]:
    """`name`, then without its trailing dots, hyphens and plus signs, one at a time (longest first)."""
    while name:
        yield name
        if name[-1] not in _TRAILING:
            return
        name = name[:-1]


def _candidates(text: str) -> Iterator[tuple[int, str]]:
    """(position of the `@`, the name after it) in plain text, skipping code spans."""
    code = [match.span() for match in _CODE.finditer(text)]
    for match in _CANDIDATE.finditer(text):
        if not any(start <= match.start() < end for start, end in code):
            yield match.start(), match.group(1)


def spellings(body: str) -> set[str]:
    """Every lower-cased name that some `@…` of the body could be (what to look up, in one query)."""
    found: set[str] = set()
    for part in linkify.segments(body):
        if part.href is None:
            for _, name in _candidates(part.text):
                found.update(variant.lower() for variant in _variants(name))
    return found


def find(text: str, *, known: Callable[[str], bool]) -> list[Found]:
    """The mentions in a piece of plain text (no URLs in it), by the longest spelling `known` accepts."""
    mentions = []
    for start, name in _candidates(text):
        match = next((variant for variant in _variants(name) if known(variant.lower())), None)
        if match is not None:
            mentions.append(Found(start, start + 1 + len(match), match.lower()))
    return mentions


def names(body: str, *, known: Callable[[str], bool]) -> list[str]:
    """The lower-cased names the body mentions, once each, in order of first mention."""
    seen: dict[str, None] = {}
    for part in linkify.segments(body):
        if part.href is None:
            for mention in find(part.text, known=known):
                seen.setdefault(mention.name, None)
    return list(seen)


class Segment(NamedTuple):
    """A piece of a message body for the template: a URL (`href`), a mention (`mention`: the username), or text."""

    text: str
    href: str | None = None
    mention: str | None = None


def segments(body: str, *, mentioned: dict[str, str]) -> list[Segment]:
    """The body as text, URL and mention segments; `mentioned`: lower-cased name → username, the people the
    message was saved as mentioning. Joined, the segments' texts give `body` back."""
    parts: list[Segment] = []
    for part in linkify.segments(body):
        if part.href is not None or not mentioned:
            parts.append(Segment(part.text, part.href))
            continue
        position = 0
        for mention in find(part.text, known=mentioned.__contains__):
            if mention.start > position:
                parts.append(Segment(part.text[position : mention.start]))
            parts.append(Segment(part.text[mention.start : mention.end], mention=mentioned[mention.name]))
            position = mention.end
        if position < len(part.text):
            parts.append(Segment(part.text[position:]))
    return parts
