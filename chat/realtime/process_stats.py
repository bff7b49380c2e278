"""The sizes of this process's registries and caches, as JSON, for the soak and chaos benches only.

`GET /internal/process-stats/` answers 404 unless `CHAT_BENCH_STATS=1` (off by default; only
tests/bench sets it). It shows counts, never names or contents: how many sockets, rooms, users,
presence members, typists, followed seqs, shared reads, read positions, rendered fragments, layer
channels and groups, scheduled jobs and local limit counters this one process holds, and its garbage
collector's generations (`?collect=2` runs a full collection first and says how many objects it freed). A bench reads it
on every process to see that each stays bounded under load and returns to zero once the sockets close.
"""

import asyncio
import gc
import os
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.locmem import LocMemCache
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from chat import fragments
from chat.realtime import access, catch_up, presence, presence_store, session_notices, typing_notices, unread
from chat.realtime.registry import sockets
from chat.realtime.scheduler import scheduler

SOCKET_COUNTERS = ("limit:sockets_per_user:", "limit:sockets_per_ip:")


def snapshot() -> dict[str, Any]:
    """Counts of everything this process keeps per socket, room or user (read in its event loop)."""
    store = presence_store.backends.made.get("")  # the in-memory store (no REDIS_URL), once a socket made it
    return {
        "pid": os.getpid(),
        "sockets": {
            "room": len(sockets),
            "rooms": len(sockets.rooms()),
            "users": len(sockets._users),
            "lobby": len(sockets.lobby()),
        },
        "presence": {
            "rooms": len(presence.tracker.rooms),
            "to_announce": len(presence.tracker.to_announce),
            "to_add": sum(map(len, list(presence.tracker.to_add.values()))),
            "to_remove": sum(map(len, list(presence.tracker.to_remove.values()))),
            "memory_members": sum(map(len, list(store.rooms.values()))) if store is not None else None,
        },
        "typing": {
            "relayed": len(typing_notices.typists.relayed),
            "typists": sum(map(len, list(typing_notices.typists.typing.values()))),
        },
        "catch_up": {"seqs": len(catch_up.rooms._seq), "reads": len(catch_up.rooms._reads._running)},
        "unread": {"written": len(unread.positions.written), "departed": len(unread.positions.departed)},
        "public_rooms": len(access.public_rooms.names),
        "rendered": len(fragments.rendered.items),
        "session_listeners": sum(listener.sockets for listener in session_notices._listeners.all()),
        "jobs_running": sum(1 for job in scheduler._jobs.values() if job.task is not None and not job.task.done()),
        "layer": layer_sizes(),
        "counters": local_socket_counters(),
        "tasks": running_tasks(),
        "gc": collector_stats(),
    }


def collector_stats() -> dict[str, Any]:
    """The garbage collector's generations: objects waiting in each, collections run and objects they freed."""
    stats = gc.get_stats()
    return {
        "pending": list(gc.get_count()),
        "frozen": gc.get_freeze_count(),
        "collections": [generation["collections"] for generation in stats],
        "collected": [generation["collected"] for generation in stats],
    }


def running_tasks() -> int | None:
    """Tasks of this event loop (None when read from a thread without one)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return None


def layer_sizes() -> dict[str, int]:
    """Channels and group memberships the layer keeps in this process (in-memory or pub/sub)."""
    layer = get_channel_layer()
    loop_layers = list(getattr(layer, "_layers", {}).values()) or [layer]  # pub/sub: one per event loop
    channels = groups = members = 0
    for each in loop_layers:
        channels += len(getattr(each, "channels", {}))
        held = getattr(each, "groups", {})
        groups += len(held)
        members += sum(map(len, list(held.values())))
    return {"channels": channels, "groups": groups, "members": members}


def local_socket_counters() -> dict[str, int] | None:
    """Open-socket counts kept in this process's own cache (none with Redis: the bench reads those there)."""
    local = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(local, LocMemCache):
        return None
    entries = local._cache
    keys = [key for key in list(entries) if any(part in key for part in SOCKET_COUNTERS)]
    values = [local.get(key.split(":", 2)[2]) or 0 for key in keys]  # stored as "<prefix>:<version>:<key>"
    return {"keys": len(keys), "open": sum(values)}


@require_GET
async def process_stats(request: HttpRequest) -> JsonResponse:
    if not settings.CHAT_BENCH_STATS:
        raise Http404
    # ?collect=N: a collection of generations 0 to N first (2: a full one, which stops the process for as long
    # as it takes), and how many objects it freed.
    generation = request.GET.get("collect")
    freed = gc.collect(int(generation)) if generation in ("0", "1", "2") else None
    return JsonResponse({**snapshot(), "freed_now": freed})
