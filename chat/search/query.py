"""What the user typed, parsed into terms: words, "quoted phrases" and -excluded words or phrases.

A word is a run of letters and digits (any script); everything else (operators, brackets, SQL, NUL,
lone surrogates) only separates words, so no character the user types reaches a database's query syntax:
each backend builds its own query from these words, quoting each one.
"""

import re
import unicodedata
from dataclasses import dataclass

MIN_LENGTH = 2
MAX_LENGTH = 200
MAX_TERMS = 16  # more terms than this are dropped (each one is an index lookup)
MAX_WORD_LENGTH = 64  # longer runs are cut (no index holds useful terms that long)

TOO_SHORT = f"Type at least {MIN_LENGTH} characters to search."
TOO_LONG = f"A search is at most {MAX_LENGTH} characters."
NO_WORDS = "Search for at least one word (letters or digits) that is not excluded."

# Letters and digits of any script (`\w` without the underscore, which both indexes take for a separator).
WORD = re.compile(r"[^\W_]+")
# A quoted phrase (an unbalanced quote runs to the end), or a run of anything but whitespace and quotes.
TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')


class QueryError(ValueError):
    """The text is not a search we can run; the message says why, for the user."""


@dataclass(frozen=True)
class Term:
    """One word (a phrase of one), or a phrase of several words in that order; `exclude`: must not match."""

    words: tuple[str, ...]
    exclude: bool = False

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]

    @property
    def included(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if not term.exclude)

    @property
    def excluded(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.exclude)


def clean(text: str) -> str:
    """The text without NULs and lone surrogates (which no database and no UTF-8 encoder take)."""
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\0", " ")
    return unicodedata.normalize("NFC", text)


def words_of(text: str) -> tuple[str, ...]:
    return tuple(word[:MAX_WORD_LENGTH].lower() for word in WORD.findall(text))


def query_parse(text: str) -> Query:
    """Parse the user's text; QueryError (with a message for them) if it is too short, too long or has no word."""
    text = clean(text).strip()
    if len(text) < MIN_LENGTH:
        raise QueryError(TOO_SHORT)
    if len(text) > MAX_LENGTH:
        raise QueryError(TOO_LONG)
    terms: list[Term] = []
    for match in TOKEN.finditer(text):
        quoted_minus, quoted, bare_minus, bare = match.groups()
        if quoted is not None:
            exclude, words = bool(quoted_minus), words_of(quoted)
            found = [Term(words, exclude)] if words else []
        else:
            # A bare token like `foo-bar` or `a.b` holds several words: each is a term of its own.
            exclude, words = bool(bare_minus), words_of(bare)
            found = [Term((word,), exclude) for word in words]
        for term in found:
            if term not in terms:
                terms.append(term)
    terms = terms[:MAX_TERMS]
    if not any(not term.exclude for term in terms):
        raise QueryError(NO_WORDS)
    return Query(tuple(terms))
