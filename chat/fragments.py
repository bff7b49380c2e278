"""Every piece of HTML the server pushes over a socket, rendered from templates.

The socket protocol (what the browser sends, what it gets back) is documented in
docs/protocol.md; each public function here renders one of the frames it lists.

A message is rendered once per process and time zone, never once per recipient:
rendered items are kept in a small LRU keyed by (message, seq, time, zone, author's name), which every
socket of the process shares, for live messages and catch-up alike.
"""

import zoneinfo
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any
from uuid import uuid4

from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from chat import days
from chat.models import DEFAULT_TIME_ZONE, Message


class RenderCache:
    """Least recently used rendered fragments, by key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple, SafeString] = OrderedDict()

    def get(self, key: tuple, render: Callable[[], str]) -> SafeString:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        html = self.items[key] = mark_safe(render())  # our own template's output
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return html

    def clear(self) -> None:
        self.items.clear()


rendered = RenderCache(4096)


def zone(name: str) -> zoneinfo.ZoneInfo:
    """A reader's zone by name; anything unknown reads in UTC."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(DEFAULT_TIME_ZONE)


def render_in(zone_name: str, template: str, context: dict[str, Any]) -> str:
    with timezone.override(zone(zone_name)):
        return render_to_string(template, context)


def timeline_items(entries: Iterable[days.Entry], *, room_name: str, zone_name: str) -> list[SafeString]:
    """Day separators and message items, each message rendered once per process and zone."""
    items = []
    for entry in entries:
        if entry.day is not None:
            items.append(
                mark_safe(render_in(zone_name, "chat/_day.html", {"day": entry.day, "message": entry.message}))
            )
        message, continues = entry.message, entry.continues
        items.append(rendered_message(message, room_name=room_name, zone_name=zone_name, continues=continues))
    return items


def rendered_message(
    message: Message, *, room_name: str, zone_name: str, continues: bool = False, oob: bool = False
) -> SafeString:
    """A message's item, rendered once per process and zone for each way it is shown: in a run or not, and
    appended or out of band (in place of the copy a page shows)."""
    key = (
        "oob" if oob else "message",
        message.pk,
        message.seq,
        message.created.isoformat(),
        zone_name,
        author_name(message),
        continues,
    )
    context = {"message": message, "room_name": room_name, "continues": continues, "oob": oob}
    return rendered.get(key, lambda: render_in(zone_name, "chat/_message.html", context))


def author_name(message: Message) -> str:
    """Part of every rendered message's key: a renamed author's messages render anew (the seq stays)."""
    return message.author.get_username()


def message_from_event(event: dict[str, Any]) -> Message:
    """The message a group event describes, rebuilt for templates without a query."""

    def when(name: str) -> datetime | None:
        return datetime.fromisoformat(event[name]) if event.get(name) else None

    author = get_user_model()(pk=event["author_id"], username=event["author"])
    message = Message(
        pk=event["id"],
        seq=event["seq"],
        posted_seq=event["posted_seq"],
        author_id=author.pk,
        body=event["body"],
        created=when("created"),
        edited=when("edited"),
        deleted=when("deleted"),
        mentioned=event.get("mentioned") or [],
    )
    message.author = author
    return message


def message_appended(*, event: dict[str, Any], zone_name: str) -> str:
    """A change for every member of the room: a new message appended (after its day, if it opens one), an
    edited or deleted one replaced where the page shows it; the cursor moves to its seq."""

    def render() -> str:
        message = message_from_event(event)
        room_name = event["room"]
        if event.get("kind", "post") != "post":
            return changes_applied(
                room_name=room_name, replaced=[message], appended=[], cursor=message.seq, zone_name=zone_name
            )
        previous = datetime.fromisoformat(event["previous"]) if event.get("previous") else None
        entries = days.entries(
            [message], previous=previous, previous_author=event.get("previous_author"), zone=zone(zone_name)
        )
        return changes_applied(
            room_name=room_name, replaced=[], appended=entries, cursor=message.seq, zone_name=zone_name
        )

    return rendered.get(("appended", event["id"], event["seq"], event["created"], zone_name, event["author"]), render)


def changes_applied(
    *, room_name: str, replaced: list[Message], appended: list[days.Entry], cursor: int | None, zone_name: str
) -> str:
    """Messages the page may show replaced in place (edited, deleted), new ones appended in order, and the
    cursor moved (None: left where it is, more frames follow)."""
    context = {
        "replaced": [item_oob(message, room_name=room_name, zone_name=zone_name) for message in replaced],
        "items": timeline_items(appended, room_name=room_name, zone_name=zone_name),
        "cursor": cursor,
    }
    return render_in(zone_name, "chat/oob/_appended.html", context)


def item_oob(message: Message, *, room_name: str, zone_name: str) -> SafeString:
    """A message as it is now, to replace the copy a page shows (by its id; a page without it ignores it)."""
    return rendered_message(message, room_name=room_name, zone_name=zone_name, oob=True)


def too_much_changed(*, room_name: str, cursor: int) -> str:
    """For a page that missed more changes than a catch-up carries: a note asking it to reload."""
    return render_to_string("chat/oob/_too_much_changed.html", {"room_name": room_name, "cursor": cursor})


def gap_appended(
    *, room_name: str, entries: list[days.Entry], missed: int, before: int, after: int, cursor: int, zone_name: str
) -> str:
    """For a page too far behind: a marker for the `missed` messages it does not get, then the latest page."""
    context = {
        "room_name": room_name,
        "items": timeline_items(entries, room_name=room_name, zone_name=zone_name),
        "gap": {"missed": missed, "before": before, "after": after},
        "cursor": cursor,
    }
    return render_in(zone_name, "chat/oob/_appended.html", context)


def connection_status() -> str:
    """A fresh status element: its animation shows "Reconnecting…" unless another copy replaces it in time
    (the same HTML each time: the page's element is replaced, so its animation starts over)."""
    return rendered.get(("connection status",), lambda: render_to_string("chat/oob/_connection_status.html"))


def compose_reset() -> str:
    """For the sender as soon as a post is valid: an empty input, a fresh token, no errors."""
    return render_to_string("chat/oob/_compose_reset.html", {"token": uuid4()})


def compose_errors(*, errors: list[str], restore: str | None = None) -> str:
    """For the sender only: why the message was not sent. The typed text stays; `restore` puts a text
    back into the input (a save that failed after the input was already reset)."""
    return render_to_string(
        "chat/oob/_compose_errors.html", {"errors": errors, "restore": restore is not None, "body": restore or ""}
    )


def unsent(
    *,
    room_name: str,
    token: str,
    body: str,
    reason: str,
    replace: bool,
    reset: bool,
    dropped: list[str],
    csrf_token: Any,
) -> str:
    """For the sender only: a post refused for speed, handed back beside an emptied input with a form
    to send it again (`replace`: a "Send again" refused in turn takes its own place; `reset`: the input
    still holds the text). `dropped`: older refused texts that make way."""
    context = {
        "room_name": room_name,
        "token": token,
        "body": body,
        "reason": reason,
        "replace": replace,
        "dropped": dropped,
        "csrf_token": csrf_token if isinstance(csrf_token, str) and csrf_token.isalnum() else "",
        "reset": reset,
    }
    return render_to_string("chat/oob/_unsent.html", context)


def unsent_cleared(*, token: str) -> str:
    """For the sender: a refused text sent again is gone from beside the input."""
    return render_to_string("chat/oob/_unsent_cleared.html", {"token": token})


def signed_out(*, room_name: str, removed: bool = False) -> str:
    """For a socket whose session ended: nothing on the page offers what needs a session any more, the
    draft stays in its box, and the page says why (`removed`: staff removed the account)."""
    return render_to_string("chat/oob/_signed_out.html", {"room_name": room_name, "removed": removed})


def lobby_signed_out() -> str:
    """For a lobby socket whose session ended: its lists and the account links show it."""
    return render_to_string("chat/oob/_lobby_signed_out.html", {"next": "/"})


def room_closed() -> str:
    """For a socket whose reader may no longer read the room: the compose form says so."""
    return render_to_string("chat/oob/_room_closed.html")


def presence_list(view: Any) -> str:
    """`#presence`: who has the room open (a presence_store.View)."""
    return render_to_string("chat/oob/_presence.html", {"presence": view.context()})


def typing_list(names: tuple[str, ...]) -> str:
    """`#typing`: who is typing in the room, for one reader; rendered once per process for each list."""
    return rendered.get(("typing", names), lambda: render_to_string("chat/oob/_typing.html", {"typing": names}))


def lobby_rooms(entries: tuple[Any, ...], *, zone_name: str, signed_in: bool) -> str:
    """`#rooms` (and a signed-in reader's `#direct`): the lobby's lists, in the reader's time zone."""
    with timezone.override(zone(zone_name)):
        context = {**lobby_lists(entries), "signed_in": signed_in, "mention_total": sum(e.mentions for e in entries)}
        return render_to_string("chat/oob/_lobby_rooms.html", context)


def today(zone_name: str) -> date:
    """The date in a reader's zone (a lobby entry's time reads "Today …" on it)."""
    return timezone.localdate(timezone=zone(zone_name))


def lobby_changes(change: Any, entries: tuple[Any, ...], *, zone_name: str, signed_in: bool) -> str:
    """Out-of-band swaps that turn the lists a lobby page shows into `entries`, by a lobby_changes.Change: the
    items that changed, or a list whole where its change is None."""

    def items(list_change: Any) -> dict[str, Any] | None:
        if list_change is None:
            return None
        top, replaced = [lobby_entry(e) for e in list_change.top], [lobby_entry(e) for e in list_change.replaced]
        return {"removed": list_change.removed, "top": top, "replaced": replaced}

    with timezone.override(zone(zone_name)):
        whole = lobby_lists(entries) if change.rooms is None or change.direct is None else {}
        context = {
            **whole,
            "rooms": items(change.rooms),
            "direct": items(change.direct),
            "signed_in": signed_in,
            "mention_total": change.mention_total,
        }
        return render_to_string("chat/oob/_lobby_changes.html", context)


def lobby_lists(entries: tuple[Any, ...]) -> dict[str, list[SafeString]]:
    """The lobby's two lists, each entry's item rendered in the current time zone: rooms (public, and private
    ones of the reader), and direct conversations."""
    return {
        "room_entries": [lobby_entry(entry) for entry in entries if not entry.direct],
        "direct_entries": [lobby_entry(entry) for entry in entries if entry.direct],
    }


# A lobby entry is the same for every reader who sees the room in the same state (its last message, people
# here, their counts) and zone, on the same day: rendered once per process, not once per reader and tick.
lobby_entries = RenderCache(2048)


def lobby_entry(entry: Any) -> SafeString:
    """One room or conversation of the lobby's lists (a lobby.Entry), in the current time zone."""
    zone_name = timezone.get_current_timezone_name()

    def render() -> str:
        url = (
            reverse("chat:direct", args=[entry.title]) if entry.direct else reverse("chat:room", args=[entry.room.name])
        )
        return render_to_string("chat/_lobby_entry.html", {"entry": entry, "entry_url": url})

    # The day is part of the key: the time reads "Today 04:49", then "Yesterday 04:49".
    return lobby_entries.get((entry, zone_name, timezone.localdate()), render)


def mention_notice(*, event: dict[str, Any]) -> str:
    """A mention notice for the pages of everyone the message mentions: the same frame for all of them."""
    notice = {key: event[key] for key in ("message", "room", "author", "direct")}
    return rendered.get(
        ("notice", event["message"], event["author"]),
        lambda: render_to_string("chat/oob/_mention_notice.html", {"notice": notice}),
    )


def mention_withdrawn(*, message_id: int) -> str:
    """For the pages of the people an edit or a delete no longer mentions: the notice goes, if the page shows it."""
    return render_to_string("chat/oob/_mention_withdrawn.html", {"message_id": message_id})
