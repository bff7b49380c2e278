"""A lobby socket is sent what changed in its lists, and what it is sent turns the list it shows into the new one,
whatever the change (chat/realtime/lobby_changes.py, templates/chat/oob/_lobby_changes.html)."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from chat import fragments
from chat.models import Room
from chat.realtime import lobby_changes
from chat.realtime.lobby import Entry
from chat.selectors import LobbyRoom
from tests.support.lobby_page import LobbyPage

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
READER = 1


def entry(room_id: int, *, minute: int = 0, here: int = 0, unread: int = 0, mentions: int = 0, kind=Room.PUBLIC):
    members = frozenset({READER, 2}) if kind != Room.PUBLIC else frozenset()
    room = LobbyRoom(
        room_id,
        f"room-{room_id}",
        START + timedelta(minutes=minute),
        "ada",
        f"message {minute} in {room_id}",
        kind=kind,
        members=members,
        member_names=((READER, "me"), (2, f"friend-{room_id}")) if kind == Room.DIRECT else (),
    )
    title = room.partner(READER) if kind == Room.DIRECT else room.name
    return Entry(room=room, here=here, unread=unread, title=title, mentions=mentions)


def apply(shown: list[Entry], change: lobby_changes.ListChange | None, new: list[Entry]) -> list[Entry]:
    """What a page shows after the change, as the frame's swaps apply it (None: the new list whole)."""
    if change is None:
        return list(new)
    by_id = {e.room.id: e for e in change.replaced}
    kept = [by_id.get(e.room.id, e) for e in shown if e.room.id not in change.removed]
    return list(change.top) + kept


def test_a_new_message_moves_one_room_to_the_top_and_nothing_else():
    shown = [entry(n, minute=10 - n) for n in range(1, 11)]
    new = [entry(7, minute=11)] + [e for e in shown if e.room.id != 7]

    change = lobby_changes.list_change(shown, new)

    assert change == lobby_changes.ListChange(removed=(7,), top=(new[0],), replaced=())


def test_people_coming_replace_one_item_in_place():
    shown = [entry(n, minute=10 - n) for n in range(1, 6)]
    new = [entry(n, minute=10 - n, here=3 if n == 2 else 0) for n in range(1, 6)]

    assert lobby_changes.list_change(shown, new) == lobby_changes.ListChange(replaced=(new[1],))
    assert lobby_changes.list_change(new, new) == lobby_changes.ListChange()
    assert not lobby_changes.list_change(new, new)


def test_a_list_empty_before_or_after_or_mostly_changed_is_sent_whole():
    shown = [entry(n, minute=10 - n) for n in range(1, 5)]
    assert lobby_changes.list_change([], shown) is None
    assert lobby_changes.list_change(shown, []) is None
    assert lobby_changes.list_change([], []) == lobby_changes.ListChange()
    reversed_ = [entry(n, minute=20 + n) for n in range(1, 5)][::-1]
    assert lobby_changes.list_change(shown, reversed_) is None


@pytest.mark.parametrize("seed", range(300))
def test_whatever_the_change_applying_it_gives_the_new_list(seed):
    rng = random.Random(seed)
    shown = [
        entry(n, minute=rng.randrange(100), here=rng.randrange(3))
        for n in rng.sample(range(1, 40), rng.randrange(0, 20))
    ]
    new = []
    for old in shown:
        if rng.random() < 0.1:
            continue  # left the list (deleted, no longer readable, fell off its end)
        new.append(
            entry(old.room.id, minute=old.room.last_activity.minute, here=rng.randrange(3))
            if rng.random() < 0.2
            else old
        )
    for room_id in rng.sample(range(40, 60), rng.randrange(0, 3)):
        new.insert(rng.randrange(len(new) + 1), entry(room_id, minute=rng.randrange(100)))  # new rooms
    for _ in range(rng.randrange(0, 4)):  # rooms with a new message move up
        if new:
            moved = new.pop(rng.randrange(len(new)))
            new.insert(rng.randrange(len(new) + 1), moved)

    change = lobby_changes.list_change(shown, new)

    assert apply(shown, change, new) == new
    if change is not None:
        assert len(change.top) + len(change.replaced) <= len(new) // 2


def page_after(frames: list[str]) -> LobbyPage:
    page = LobbyPage()
    for frame in frames:
        assert page.apply(frame)
    return page


@pytest.mark.parametrize("seed", range(40))
def test_the_frame_turns_the_page_into_what_a_whole_list_shows(seed, settings):
    """Through the templates: a page shown the old list whole, then sent the change, holds exactly the items a
    page sent the new list whole holds (rooms, direct conversations, the tab's title)."""
    rng = random.Random(seed)

    def lists() -> tuple[Entry, ...]:
        rooms = [
            entry(
                n, minute=rng.randrange(50), here=rng.randrange(2), unread=rng.randrange(2), mentions=rng.randrange(2)
            )
            for n in rng.sample(range(1, 30), rng.randrange(1, 12))
        ]
        direct = [
            entry(n, minute=rng.randrange(50), kind=Room.DIRECT, unread=rng.randrange(2))
            for n in rng.sample(range(30, 40), rng.randrange(0, 4))
        ]
        return tuple(sorted(rooms + direct, key=lambda e: e.room.last_activity, reverse=True))

    shown = lists()
    new = tuple(e for e in shown if rng.random() < 0.9)
    new = tuple(sorted(new[:3], key=lambda e: -e.room.id)) + new[3:] if rng.random() < 0.5 else new
    new = tuple(entry(e.room.id, minute=99, kind=e.room.kind, here=2) if rng.random() < 0.15 else e for e in new)

    frames = [fragments.lobby_rooms(shown, zone_name="UTC", signed_in=True)]
    if new != shown:  # the lobby sends nothing to a socket whose lists did not change
        frames.append(fragments.lobby_changes(lobby_changes.change(shown, new), new, zone_name="UTC", signed_in=True))
    whole_then_change = page_after(frames)
    whole = page_after([fragments.lobby_rooms(new, zone_name="UTC", signed_in=True)])

    assert whole_then_change.lists == whole.lists
    assert whole_then_change.title == whole.title


def test_a_change_of_one_room_is_a_fraction_of_the_whole_list():
    shown = tuple(entry(n, minute=60 - n) for n in range(1, 51))
    new = (entry(20, minute=61), *(e for e in shown if e.room.id != 20))

    frame = fragments.lobby_changes(lobby_changes.change(shown, new), new, zone_name="UTC", signed_in=True)
    whole = fragments.lobby_rooms(new, zone_name="UTC", signed_in=True)

    assert frame.count('class="room-entry') == 1
    assert len(frame) < len(whole) / 20
    assert "page-title" not in frame  # the mention total did not change
