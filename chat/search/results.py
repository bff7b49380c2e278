"""The search selector: a page of the messages matching a query, from the rooms the reader may read only.

Which rooms: the public ones (if the reader may read public rooms at all: CHAT_PUBLIC_READ), and the private
rooms and direct conversations the reader is a member of; with `room`, that one room (the caller checked the
reader may read it). Never a deleted message: its text is erased, so the index no longer holds it, and the
query asks for `deleted IS NULL` besides.
"""

from dataclasses import dataclass
from types import ModuleType

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.urls import reverse

from chat.accounts.access import may_read_public
from chat.models import Message, Room
from chat.search import query as parsing
from chat.search.scope import Scope
from chat.search.snippets import snippet_parts

RESULTS_PER_PAGE = 20
MAX_PAGES = 50  # ranked pages are OFFSET pages: deeper than this, refine the words instead
CANDIDATES = RESULTS_PER_PAGE * MAX_PAGES  # the newest matches that are ranked (see message_search)


@dataclass(frozen=True)
class Result:
    message: Message
    snippet: list[tuple[str, bool]]  # [(text, is_match), ...]: the template marks the matches
    link: str  # the message in its room: the page around it, scrolled to it


@dataclass(frozen=True)
class ResultPage:
    results: list[Result]
    number: int
    has_next: bool


def backend() -> ModuleType | None:
    """The search module for this database, or None where search is not offered."""
    if connection.vendor == "postgresql":
        from chat.search import postgres

        return postgres
    if connection.vendor == "sqlite":
        from chat.search import sqlite

        return sqlite
    return None


def readable_scope(*, user: AbstractBaseUser | AnonymousUser | None) -> Scope:
    """Every room this reader may read: public rooms (unless CHAT_PUBLIC_READ keeps them from visitors), and
    their own private rooms and direct conversations."""
    member_id = user.pk if user is not None and user.is_authenticated else None
    return Scope(public=bool(may_read_public(user)), member_id=member_id)


def message_search(
    *, text: str, user: AbstractBaseUser | AnonymousUser | None, room: Room | None = None, page: int = 1
) -> ResultPage:
    """A page of results for what the user typed, best first, then newest first. QueryError (its message is
    for the user) if the text is no search."""
    query = parsing.query_parse(text)
    search = backend()
    page = min(max(page, 1), MAX_PAGES)
    if room is not None and room.pk is None:  # a public room nobody has posted in yet
        return ResultPage(results=[], number=page, has_next=False)
    scope = Scope(room_id=room.pk) if room is not None else readable_scope(user=user)
    if search is None or scope.empty:
        return ResultPage(results=[], number=page, has_next=False)
    offset = (page - 1) * RESULTS_PER_PAGE
    # A word in thousands of messages: its newest CANDIDATES are ranked, so the first page costs the same in a
    # million messages as in ten thousand (more words narrow it down).
    ids = search.ranked_ids(query, scope, candidates=CANDIDATES, offset=offset, limit=RESULTS_PER_PAGE + 1)
    has_next = len(ids) > RESULTS_PER_PAGE and page < MAX_PAGES
    ids = ids[:RESULTS_PER_PAGE]
    # Deleted since the ranking (a moment ago) or not: never shown.
    messages = Message.objects.filter(pk__in=ids, deleted__isnull=True).select_related("room", "author").in_bulk()
    snippets = search.snippets(query, {pk: message.body for pk, message in messages.items()})
    room_paths: dict[int, str] = {}  # one reverse() per room, not per result
    results = []
    for pk in ids:
        if (message := messages.get(pk)) is None:
            continue
        if (path := room_paths.get(message.room_id)) is None:
            path = room_paths[message.room_id] = reverse("chat:room", args=[message.room.name])
        link = f"{path}?around={pk}#message-{pk}"
        results.append(Result(message=message, snippet=snippet_parts(snippets.get(pk) or message.body), link=link))
    return ResultPage(results=results, number=page, has_next=has_next)
