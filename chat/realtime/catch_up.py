"""What a room socket missed, and what each process knows of its rooms' newest seq.

A room is an ordered stream: every message takes the room's next seq. A page holds a
cursor (the seq of the last change it shows) and sends it when its socket opens; it
gets exactly what comes after, appended in order, never a replacement of what it has.

`rooms` remembers, per process, the newest seq each room with a socket here has
reached (from the database at a socket's first catch-up, then from every broadcast).
A sync whose cursor is already there costs no query and sends nothing; while the seq is not
known yet, one read serves every socket of the room that syncs meanwhile (a deploy's reconnect
storm is one query per room and process, not one per socket). Likewise one catch-up serves
every socket of a room asking for the same one at once (same cursor and time zone: after a lost
broadcast or a layer outage, every socket of the room is behind by the same changes).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from chat import days, fragments, selectors
from chat.realtime import db
from chat.realtime.registry import Entry, sockets

# A page that missed more new messages than this gets the latest page and a marker for the rest.
MAX_CATCH_UP = 200
# A page that missed more changes than this (a mass deletion, say) is asked to reload.
MAX_CHANGES = 1000
# Edits and deletes of messages a page may already show are replaced, not skipped: beyond this many, or
# this much text (estimated before anything is rendered), the page is asked to reload instead, so one
# 17-byte sync frame can never make the server build megabytes of frames.
MAX_REPLACED = 200
MAX_REPLACED_BYTES = 2 * 1024 * 1024
# Messages per frame, and bytes of HTML per frame, so no single frame grows with how far behind a page is
# or with what the messages hold (daphne refuses a frame over 1 MiB; an escaped 2,000-character text of
# quotes is about 12 KiB).
FRAME_MESSAGES = 50
FRAME_BYTES = 256 * 1024
# A catch-up's next frame goes once no more than this waits for the peer (chat/protection/backpressure.py
# `drained`): what a socket buffers stays under a frame and a half, whatever the catch-up adds up to.
PACE_BYTES = 64 * 1024


class SharedReads:
    """Database reads under way, each shared by the sockets that ask for the same one while it runs,
    provided it started after the socket joined its room's group: a read from before could miss a
    change whose broadcast also came before the join."""

    def __init__(self) -> None:
        self._running: dict[Hashable, tuple[float, asyncio.Future]] = {}

    async def get(self, key: Hashable, *, joined_at: float, read: Callable[[], Awaitable[Any]]) -> Any:
        started, future = self._running.get(key, (float("-inf"), None))
        if future is None or started < joined_at or future.get_loop() is not asyncio.get_running_loop():
            started, future = time.monotonic(), asyncio.ensure_future(read())
            self._running[key] = (started, future)
            future.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(future)

    def _done(self, key: Hashable, future: asyncio.Future) -> None:
        if self._running.get(key, (0, None))[1] is future:
            del self._running[key]
        if not future.cancelled():
            future.exception()  # retrieved here, so a read nobody awaits any more is not logged as lost


class RoomSeqs:
    """The newest seq seen per room, kept only while this process has a socket in the room, and the
    reads its sockets share."""

    def __init__(self) -> None:
        self._seq: dict[str, int] = {}
        self._reads = SharedReads()

    def joined(self, entry: Entry) -> None:
        pass

    def left(self, entry: Entry) -> None:
        """The room's last socket here closed: its seq is no longer followed."""
        if not sockets.room_size(entry.room):
            self._seq.pop(entry.room, None)

    def advance(self, room: str, seq: int) -> None:
        if sockets.room_size(room) and seq > self._seq.get(room, 0):
            self._seq[room] = seq

    def known(self, room: str) -> int | None:
        """The newest seq of the room this process knows of (None: not known, ask the database)."""
        return self._seq.get(room)

    async def latest(self, room: str, *, joined_at: float) -> int:
        """The room's newest seq for a socket that joined the room's group at `joined_at` (monotonic).
        Known already: no query; else one read shared as `SharedReads` says."""
        known = self.known(room)
        if known is not None:
            return known
        seq = await self._reads.get(
            ("seq", room), joined_at=joined_at, read=lambda: db.reads(selectors.room_seq)(room_name=room)
        )
        self.advance(room, seq)
        return seq

    async def catch_up(
        self, room: str, *, cursor: int, zone_name: str, joined_at: float, at_least: int = 0
    ) -> "CatchUp":
        """What a socket at `cursor` missed (see `catch_up`), one read and render for every socket of the
        room asking for the same at once (its frames are strings: every socket sends the same). `at_least`:
        the seq of a change the socket knows of; a shared read begun before that change was saved lacks it,
        and is read again."""
        key = ("catch-up", room, cursor, zone_name)

        def read() -> Awaitable["CatchUp"]:
            return db.reads(catch_up)(room_name=room, cursor=cursor, zone_name=zone_name)

        result = await self._reads.get(key, joined_at=joined_at, read=read)
        if result.seq < at_least:
            result = await self._reads.get(key, joined_at=time.monotonic(), read=read)
        self.advance(room, result.seq)
        return result

    def forget(self) -> None:
        """The layer failed: broadcasts may have been lost, so nothing known is trusted any more."""
        self._seq.clear()

    def reset(self) -> None:
        self.__init__()


rooms = RoomSeqs()


@dataclass
class CatchUp:
    frames: list[str] = field(default_factory=list)
    seq: int = 0  # the page's cursor once the frames are shown


def catch_up(*, room_name: str, cursor: int, zone_name: str) -> CatchUp:
    """The frames that bring a page at `cursor` up to date (runs in a database thread).

    Every change after the cursor, once: messages posted since are appended in the order they were
    posted; messages the page may already show that were edited or deleted since are replaced in place
    (a page that does not have one, because it never loaded that older page, ignores it). The frames of
    replacements move no cursor (a replacement is idempotent); each frame of new messages moves it past the
    messages it appends, the last one to the newest change.
    """
    changes = selectors.room_changes_since(room_name=room_name, seq=cursor, limit=MAX_CHANGES)
    if not changes:
        # Up to date, or a cursor ahead of the room (a page of a room since emptied, a forged frame).
        return CatchUp(seq=min(cursor, selectors.room_seq(room_name=room_name)))
    newest = changes[-1].seq
    if len(changes) > MAX_CHANGES:
        newest = selectors.room_seq(room_name=room_name)
        return CatchUp(frames=[fragments.too_much_changed(room_name=room_name, cursor=newest)], seq=newest)
    zone = fragments.zone(zone_name)
    new = sorted((change for change in changes if change.posted_seq > cursor), key=lambda message: message.pk)
    changed = [change for change in changes if change.posted_seq <= cursor]
    if len(changed) > MAX_REPLACED or sum(replaced_bytes(m) for m in changed) > MAX_REPLACED_BYTES:
        return CatchUp(frames=[fragments.too_much_changed(room_name=room_name, cursor=newest)], seq=newest)
    replaced_chunks = chunks(
        changed, size=lambda m: len(fragments.item_oob(m, room_name=room_name, zone_name=zone_name))
    )
    frames = [
        fragments.changes_applied(
            room_name=room_name,
            replaced=chunk,
            appended=[],
            # With nothing new to append, the last of these frames moves the cursor.
            cursor=newest if not new and last else None,
            zone_name=zone_name,
        )
        for chunk, last in replaced_chunks
    ]
    if len(new) > MAX_CATCH_UP:
        latest = newest_that_fit(new, size=lambda m: message_bytes(m, room_name=room_name, zone_name=zone_name))
        above = selectors.message_previous(room=latest[0].room_id, before=new[0].pk)
        frames.append(
            fragments.gap_appended(
                room_name=room_name,
                entries=days.entries(latest, zone=zone),
                missed=len(new) - len(latest),
                before=latest[0].pk,
                after=above.pk if above else 0,
                cursor=newest,
                zone_name=zone_name,
            )
        )
        return CatchUp(frames=frames, seq=newest)
    if new:
        above = selectors.message_previous(room=new[0].room_id, before=new[0].pk)
        entries = days.entries(
            new,
            previous=above.created if above else None,
            previous_author=above.author_id if above else None,
            zone=zone,
        )

        def size(entry: days.Entry) -> int:
            return message_bytes(entry.message, room_name=room_name, zone_name=zone_name)

        for chunk, last in chunks(entries, size=size):
            frames.append(
                fragments.changes_applied(
                    room_name=room_name,
                    replaced=[],
                    appended=chunk,
                    # Each frame of new messages moves the cursor past what it appends (every edit and delete
                    # before it went in the frames before): a catch-up cut off half way resumes from there,
                    # and appends nothing twice.
                    cursor=newest if last else max(entry.message.posted_seq for entry in chunk),
                    zone_name=zone_name,
                )
            )
    return CatchUp(frames=frames, seq=newest)


def message_bytes(message: Any, *, room_name: str, zone_name: str) -> int:
    """The size of a message's item as a frame carries it (rendered once: the frame reuses the render)."""
    [item] = fragments.timeline_items([days.Entry(message=message, day=None)], room_name=room_name, zone_name=zone_name)
    return len(item.encode())


def chunks(items: list[Any], *, size: Callable[[Any], int]) -> list[tuple[list[Any], bool]]:
    """`items` in runs of at most FRAME_MESSAGES and FRAME_BYTES (a single item over the budget goes alone),
    each with whether it is the last run."""
    runs: list[list[Any]] = []
    run: list[Any] = []
    used = 0
    for item in items:
        cost = size(item)
        if run and (len(run) >= FRAME_MESSAGES or used + cost > FRAME_BYTES):
            runs.append(run)
            run, used = [], 0
        run.append(item)
        used += cost
    if run:
        runs.append(run)
    return [(run, index == len(runs) - 1) for index, run in enumerate(runs)]


def newest_that_fit(messages: list[Any], *, size: Callable[[Any], int]) -> list[Any]:
    """The newest of `messages` that fit one frame (at most FRAME_MESSAGES and FRAME_BYTES, at least one)."""
    kept: list[Any] = []
    used = 0
    for message in reversed(messages):
        cost = size(message)
        if kept and (len(kept) >= FRAME_MESSAGES or used + cost > FRAME_BYTES):
            break
        kept.append(message)
        used += cost
    return kept[::-1]


def replaced_bytes(message: Any) -> int:
    """An upper estimate of a replaced message's item, before rendering it: every character escaped (6 bytes
    for a quote), plus the markup."""
    return 6 * len(message.body) + 2048
