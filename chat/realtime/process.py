"""What a process knows about its sockets, wired in one place.

The registry (chat/realtime/registry.py) owns the process's room and lobby sockets; the scheduler
(chat/realtime/scheduler.py) runs the periodic work. `install()`, called from ChatConfig.ready,
subscribes the concerns that follow the sockets to the registry and registers their jobs; nothing
is wired at import. `reset()` is the one call that forgets everything the process holds (tests).
"""

from chat import fragments
from chat.realtime import (
    access,
    catch_up,
    layer_watch,
    liveness,
    lobby,
    lobby_notices,
    presence,
    presence_store,
    session_notices,
    typing_notices,
    unread,
)
from chat.realtime.registry import sockets
from chat.realtime.scheduler import scheduler


def install() -> None:
    """Subscribe the concerns to the registry and schedule their periodic work (idempotent)."""
    for follower in (catch_up.rooms, presence.tracker, unread.positions, session_notices.follower):
        sockets.follow(follower)
    sockets.follow_lobby(session_notices.lobby_follower)
    sockets.follow_lobby(lobby_notices.follower)
    scheduler.every(presence.TICK, "presence", presence.tracker.tick, active=presence.tracker.active)
    typists = typing_notices.typists
    scheduler.every(typing_notices.TICK, typing_notices.JOB, typists.tick, active=typists.active)
    scheduler.every(unread.FLUSH, unread.JOB, unread.positions.flush, active=unread.positions.active)
    scheduler.every(lobby.TICK, lobby_notices.JOB, lobby.tick, active=lobby.active)
    scheduler.every(liveness.TICK, "liveness", liveness.tick, active=liveness.active)
    scheduler.every(layer_watch.PROBE_INTERVAL, "layer watch", layer_watch.watch.tick, active=layer_watch.watch.active)
    sockets.on_add(scheduler.wake)


def reset() -> None:
    """Forget every socket, job and cached read or render of this process."""
    scheduler.reset()
    session_notices.follower.reset()
    lobby_notices.follower.reset()
    sockets.reset()
    for concern in (catch_up.rooms, presence.tracker, typing_notices.typists, unread.positions, layer_watch.watch):
        concern.reset()
    presence_store.backends.reset()
    access.public_rooms.reset()
    lobby.readings.reset()
    fragments.rendered.clear()
    fragments.lobby_entries.clear()
