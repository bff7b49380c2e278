"""Reads: who may read a room, rooms for the lobby, pages of a room's history, what a reconnecting socket missed,
unread counts, mentions (the inbox, the notices, the lobby's counts)."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from chat.id_lists import many
from chat.models import DEFAULT_TIME_ZONE, DIRECT_PREFIX, Membership, Mention, Message, Profile, ReadMark, Room

PAGE_LENGTH = 50
HISTORY_LENGTH = PAGE_LENGTH
AROUND_HALF = 25  # a link to a message opens this many either side of it


@dataclass(frozen=True)
class Page:
    """A run of a room's messages, oldest first, and whether there are more on either side."""

    messages: list[Message]
    has_older: bool
    has_newer: bool

    @property
    def first_id(self) -> int | None:
        return self.messages[0].pk if self.messages else None

    @property
    def last_id(self) -> int | None:
        return self.messages[-1].pk if self.messages else None


def room_list_recent(*, limit: int = 100) -> QuerySet[Room]:
    """Public rooms with at least one message, most recently active first (a visit alone lists nothing)."""
    return Room.objects.filter(last_seq__gt=0, kind=Room.PUBLIC).order_by("-last_activity", "-id")[:limit]


# Who may read a room. A public room: anyone. A private room or a direct conversation: its members
# only; to everyone else (anonymous readers, other users, staff) it does not exist.


def room_readable(*, room: Room, user: AbstractBaseUser | AnonymousUser | None) -> bool:
    if room.is_public:
        return room.pk is not None or not room.name.startswith(DIRECT_PREFIX)
    if room.pk is None or user is None or not user.is_authenticated:
        return False
    return Membership.objects.filter(room=room, user_id=user.pk).exists()


def room_for_reader(*, name: str, user: AbstractBaseUser | AnonymousUser | None) -> Room | None:
    """The room of that name if this reader may read it (an unsaved one for a public name nobody has posted
    in yet), else None: a room they may not read answers exactly as one that does not exist."""
    room = room_get(name=name)
    return room if room_readable(room=room, user=user) else None


def room_name_canonical(*, name: str, user: AbstractBaseUser | AnonymousUser | None) -> str:
    """How a room name is spelt: room names are case-insensitive, so "General" is the room `general`. The
    stored spelling of a room of that name the reader may read, else the name in lower case (what a first
    post will store). A room they may not read is never looked at: its spelling would tell it exists."""
    for room in Room.objects.filter(name__iexact=name):
        if room_readable(room=room, user=user):
            return room.name
    return name.lower()


def room_is_owned_by(*, room: Room, user: AbstractBaseUser) -> bool:
    return user.is_authenticated and Membership.objects.filter(room=room, user_id=user.pk, is_owner=True).exists()


def room_members(*, room: Room) -> list[Membership]:
    """The members of a private room or direct conversation, owners first, then by when they joined."""
    return list(Membership.objects.filter(room=room).select_related("user").order_by("-is_owner", "created", "id"))


def direct_key(*, user_ids: tuple[int, int]) -> str:
    """The key of the direct conversation between two users (the same both ways; one user: notes to self)."""
    low, high = sorted(user_ids)
    return f"{low}:{high}"


def direct_room(*, user: AbstractBaseUser, other: AbstractBaseUser) -> Room | None:
    return Room.objects.filter(direct_key=direct_key(user_ids=(user.pk, other.pk))).first()


def direct_partner(*, room: Room, reader: AbstractBaseUser) -> str:
    """The other person of a direct conversation, as the reader sees it (their own name for notes to self)."""
    names = [m.user.get_username() for m in Membership.objects.filter(room=room).select_related("user")]
    others = [name for name in names if name != reader.get_username()]
    return others[0] if others else reader.get_username()


def room_get(*, name: str) -> Room:
    """The room of that name, or an unsaved one: visiting a room stores nothing (its first post does)."""
    return Room.objects.filter(name=name).first() or Room(name=name)


def room_page(
    *, room: Room | int, before: int | None = None, after: int | None = None, limit: int = PAGE_LENGTH
) -> Page:
    """One page of a room by keyset on (room, id), never OFFSET: as fast 500,000 messages back as at the end.

    No bounds: the latest `limit`. `before`: the `limit` just before that id. `after` alone: the `limit` just
    after it. Both: the newest `limit` strictly between them (filling a gap from its newer end).
    """
    if isinstance(room, Room) and room.pk is None:  # a room nobody has posted in yet (see room_get)
        return Page(messages=[], has_older=False, has_newer=False)
    messages = Message.objects.filter(room=room).select_related("author")
    if before is not None:
        messages = messages.filter(id__lt=before)
    if after is not None:
        messages = messages.filter(id__gt=after)
    if after is not None and before is None:
        rows = list(messages.order_by("id")[: limit + 1])
        return Page(messages=rows[:limit], has_older=True, has_newer=len(rows) > limit)
    rows = list(messages.order_by("-id")[: limit + 1])
    return Page(messages=list(reversed(rows[:limit])), has_older=len(rows) > limit, has_newer=before is not None)


def room_page_around(*, room: Room, pk: int, half: int = AROUND_HALF) -> Page | None:
    """The page centred on message `pk` of the room: up to `half` messages either side of it, by keyset.
    None if the room has no such message."""
    if room.pk is None:
        return None
    messages = Message.objects.filter(room=room).select_related("author")
    target = messages.filter(pk=pk).first()
    if target is None:
        return None
    older = list(messages.filter(id__lt=pk).order_by("-id")[: half + 1])
    newer = list(messages.filter(id__gt=pk).order_by("id")[: half + 1])
    return Page(
        messages=[*reversed(older[:half]), target, *newer[:half]],
        has_older=len(older) > half,
        has_newer=len(newer) > half,
    )


def room_history(*, room: Room | int, limit: int = HISTORY_LENGTH) -> list[Message]:
    """The latest `limit` messages of a room, oldest first."""
    return room_page(room=room, limit=limit).messages


def message_in_room(*, room: Room | int, pk: int) -> Message | None:
    """One message of the room, id, seq and time only (where a page's batch meets what it shows)."""
    return Message.objects.filter(room=room, pk=pk).only("id", "seq", "created", "author_id").first()


def room_changes_since(*, room_name: str, seq: int, limit: int) -> list[Message]:
    """Messages whose latest change (post, edit, delete) came after `seq`, in seq order: up to `limit`,
    plus one more if there are more."""
    changes = Message.objects.filter(room__name=room_name, seq__gt=seq).select_related("author").order_by("seq")
    return list(changes[: limit + 1])


def message_previous(*, room: Room | int, before: int) -> Message | None:
    """The message just before id `before` in its room (the one shown above it)."""
    return Message.objects.filter(room=room, id__lt=before).only("id", "created", "author_id").order_by("-id").first()


def room_newer_than(*, room: Room | int, pk: int, limit: int) -> int:
    """How many messages came after message `pk`, counting no further than `limit`."""
    return len(Message.objects.filter(room=room, id__gt=pk).order_by("id").values_list("id", flat=True)[:limit])


def room_count_between(*, room: Room | int, after: int, before: int) -> int:
    """How many messages lie strictly between two ids (a gap a page has not loaded)."""
    return Message.objects.filter(room=room, id__gt=after, id__lt=before).count()


def room_latest(*, room_name: str, limit: int) -> list[Message]:
    """The newest `limit` messages of a room, oldest first (a page too far behind starts again from here)."""
    latest = Message.objects.filter(room__name=room_name).select_related("author").order_by("-seq")[:limit]
    return list(reversed(latest))


def room_seq(*, room_name: str) -> int:
    """The seq of the room's newest message (0: none, or no such room)."""
    return Room.objects.filter(name=room_name).values_list("last_seq", flat=True).first() or 0


def rooms_newest_seq(*, names: set[str]) -> dict[str, int]:
    """The seq of each named room's newest message (rooms without messages are left out)."""
    return dict(Room.objects.filter(name__in=names, last_seq__gt=0).values_list("name", "last_seq"))


def user_time_zone(*, user) -> str:
    """The zone a user reads times in (UTC for anonymous readers and for users who never chose)."""
    if user is None or not user.is_authenticated:
        return DEFAULT_TIME_ZONE
    return Profile.objects.filter(user=user).values_list("time_zone", flat=True).first() or DEFAULT_TIME_ZONE


LOBBY_LENGTH = 50
PREVIEW_LENGTH = 80


@dataclass(frozen=True)
class LobbyRoom:
    """A room as the lobby lists it: its newest message's author, the start of its text and its time; for a
    private room or a direct conversation, its members' ids and (direct) names, to list it to them only."""

    id: int
    name: str
    last_activity: datetime
    last_author: str
    last_body: str
    kind: str = Room.PUBLIC
    members: frozenset[int] = frozenset()
    member_names: tuple[tuple[int, str], ...] = ()

    def visible_to(self, user_id: int | None) -> bool:
        return self.kind == Room.PUBLIC or (user_id is not None and user_id in self.members)

    def partner(self, user_id: int | None) -> str:
        """A direct conversation's other person for this reader (their own name: notes to self)."""
        others = [name for pk, name in self.member_names if pk != user_id]
        mine = [name for pk, name in self.member_names if pk == user_id]
        return (others or mine or [""])[0]

    @property
    def preview(self) -> str:
        body = " ".join(self.last_body.split())
        return body if len(body) <= PREVIEW_LENGTH else body[: PREVIEW_LENGTH - 1].rstrip() + "…"


def lobby_rooms(*, limit: int = LOBBY_LENGTH, user_ids: set[int] = frozenset()) -> list[LobbyRoom]:
    """Rooms with messages (not every name someone visited), most recent first: the public ones, and the private
    rooms and direct conversations of `user_ids` (each listed to its members only: see LobbyRoom.visible_to).
    Three queries whatever the number of readers. The preview is the newest message still there (an edit
    keeps its place, a deleted one is skipped)."""
    last = Message.objects.filter(room=OuterRef("pk"), deleted__isnull=True).order_by("-posted_seq")
    listed = (
        Room.objects.filter(last_seq__gt=0)
        .order_by("-last_activity", "-id")
        .annotate(
            last_author=Subquery(last.values(f"author__{get_user_model().USERNAME_FIELD}")[:1]),
            last_body=Subquery(last.values("body")[:1]),
        )
    )
    columns = ("id", "name", "last_activity", "last_author", "last_body", "kind")
    rows = list(listed.filter(kind=Room.PUBLIC).values_list(*columns)[:limit])
    if user_ids:
        closed = listed.exclude(kind=Room.PUBLIC).filter(memberships__user_id__in=many(user_ids)).distinct()
        rows += list(closed.values_list(*columns)[: limit * max(len(user_ids), 1)])
    members: dict[int, list[tuple[int, str]]] = {}
    closed_ids = [row[0] for row in rows if row[5] != Room.PUBLIC]
    username = f"user__{get_user_model().USERNAME_FIELD}"
    for room_id, user_id, name in Membership.objects.filter(room_id__in=closed_ids).values_list(
        "room_id", "user_id", username
    ):
        members.setdefault(room_id, []).append((user_id, name))
    rows.sort(key=lambda row: (row[2], row[0]), reverse=True)
    return [
        LobbyRoom(
            id,
            name,
            at,
            author or "",
            body or "",
            kind=kind,
            members=frozenset(pk for pk, _ in members.get(id, ())),
            member_names=tuple(members.get(id, ())) if kind == Room.DIRECT else (),
        )
        for id, name, at, author, body, kind in rows
    ]


def unread_counts(*, user_ids: set[int], room_ids: list[int]) -> dict[tuple[int, int], int]:
    """(user id, room id) → messages by others posted after the user's read mark (and not deleted), for rooms
    they have opened. Edits of older messages are not new messages."""
    if not user_ids or not room_ids:
        return {}
    newer = (
        Message.objects.filter(room=OuterRef("room"), posted_seq__gt=OuterRef("seq"), deleted__isnull=True)
        .exclude(author=OuterRef("user"))
        .order_by()
        .values("room")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        ReadMark.objects.filter(user_id__in=many(user_ids), room_id__in=room_ids)
        .annotate(unread=Coalesce(Subquery(newer[:1]), 0))
        .filter(unread__gt=0)
        .values_list("user_id", "room_id", "unread")
    )
    return {(user_id, room_id): unread for user_id, room_id, unread in rows}


# Mentions. A user sees only those in rooms they may still read (a removed member's are also deleted), of
# messages not deleted. Unread: not seen (notice dismissed, message opened) and after their read mark of the room.

NOTICES_SHOWN = 5  # notices a page shows at once (the page's stylesheet hides any beyond, as they arrive)
INBOX_LENGTH = 25


def mentions_readable(*, user_ids: set[int] | frozenset[int]) -> QuerySet[Mention]:
    member = Membership.objects.filter(room=OuterRef("room"), user=OuterRef("user"))
    return Mention.objects.filter(user_id__in=many(user_ids), message__deleted__isnull=True).filter(
        Q(room__kind=Room.PUBLIC) | Exists(member)
    )


def mentions_unread(*, user_ids: set[int] | frozenset[int]) -> QuerySet[Mention]:
    mark = ReadMark.objects.filter(user=OuterRef("user"), room=OuterRef("room")).values("seq")[:1]
    return (
        mentions_readable(user_ids=user_ids)
        .filter(seen__isnull=True)
        .annotate(mark=Subquery(mark))
        .filter(Q(mark__isnull=True) | Q(message__posted_seq__gt=F("mark")))
    )


@dataclass(frozen=True)
class Notice:
    """A mention as its notice shows it: the same for everyone it mentions (see chat/realtime/mention_notices.py)."""

    message: int
    room: str
    author: str
    direct: bool


def mention_notices(*, user: AbstractBaseUser, outside: str | None = None, limit: int = NOTICES_SHOWN) -> list[Notice]:
    """The user's newest unread mentions, for a page's notices (not those of the room the page is in)."""
    if not user.is_authenticated:
        return []
    unread = mentions_unread(user_ids={user.pk})
    if outside:
        unread = unread.exclude(room__name=outside)
    rows = unread.order_by("-message_id").values_list(
        "message_id", "room__name", f"message__author__{get_user_model().USERNAME_FIELD}", "room__kind"
    )[:limit]
    return [Notice(pk, room, author, kind == Room.DIRECT) for pk, room, author, kind in rows]


def mention_total(*, user: AbstractBaseUser) -> int:
    """The user's unread mentions in every room (the count in a live page's title)."""
    return mentions_unread(user_ids={user.pk}).count() if user.is_authenticated else 0


def mention_counts(*, user_ids: set[int], room_ids: list[int]) -> dict[tuple[int, int], int]:
    """(user id, room id) → the user's unread mentions there, in one query for every reader."""
    if not user_ids or not room_ids:
        return {}
    rows = (
        mentions_unread(user_ids=user_ids)
        .filter(room_id__in=room_ids)
        .order_by()
        .values("user_id", "room_id")
        .annotate(n=Count("pk"))
        .values_list("user_id", "room_id", "n")
    )
    return {(user_id, room_id): n for user_id, room_id, n in rows}


@dataclass(frozen=True)
class InboxPage:
    mentions: list[Mention]
    has_older: bool

    @property
    def last_id(self) -> int | None:
        return self.mentions[-1].message_id if self.mentions else None


def mention_inbox(*, user: AbstractBaseUser, before: int | None = None, limit: int | None = None) -> InboxPage:
    """The messages that mention the user, newest first, by keyset on the message id (`before`: older than it)."""
    limit = limit or INBOX_LENGTH
    mentions = mentions_readable(user_ids={user.pk}).select_related("message__author", "room")
    if before is not None:
        mentions = mentions.filter(message_id__lt=before)
    rows = list(mentions.order_by("-message_id")[: limit + 1])
    return InboxPage(mentions=rows[:limit], has_older=len(rows) > limit)
