"""Watches the channel layer from each server process.

Channels' layers deliver at most once: while Redis is down, broadcasts are
lost (the messages themselves are saved). One task per process sends a probe
through the layer to itself every few seconds. When the layer answers again
after failing (two probes in a row, or a failed broadcast), each socket of this
process is told the newest seq of its room (a `chat.resync` event): a socket
that has shown less catches up from the database, the others do nothing.
The in-memory layer cannot fail this way, so nothing is watched there.
"""

import asyncio
import logging

from channels.layers import InMemoryChannelLayer, get_channel_layer

from chat import selectors
from chat.realtime import catch_up, db

logger = logging.getLogger(__name__)

PROBE_INTERVAL = 2.0
# Generous: a busy process (a burst of joins) answers slowly without the layer being down.
PROBE_TIMEOUT = 5.0
FAILED_PROBES_FOR_OUTAGE = 2

_rooms: dict[str, str] = {}  # channel name → room name, for this process's sockets
_task: asyncio.Task | None = None
_failure_reported = False


def report_failure() -> None:
    """A broadcast or a group join in this process failed: resync its sockets once the layer answers again."""
    global _failure_reported
    _failure_reported = True
    catch_up.rooms.forget()


def watch(channel_name: str, room_name: str) -> None:
    """Register a consumer's channel; starts this process's watcher on first use."""
    global _task
    _rooms[channel_name] = room_name
    if _task is None or _task.done() or _task.get_loop() is not asyncio.get_running_loop():
        layer = get_channel_layer()
        if not isinstance(layer, InMemoryChannelLayer):
            _task = asyncio.get_running_loop().create_task(_watch(layer))


def unwatch(channel_name: str) -> None:
    _rooms.pop(channel_name, None)


async def probe(layer, channel: str) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await layer.send(channel, {"type": "probe"})
            await layer.receive(channel)
    except Exception:
        return False
    return True


async def resync(layer) -> None:
    """Tell every socket of this process its room's newest seq (one query per room)."""
    newest = await db.reads(selectors.rooms_newest_seq)(names=set(_rooms.values()))
    for room, seq in newest.items():
        catch_up.rooms.advance(room, seq)
    for channel, room in list(_rooms.items()):
        await layer.send(channel, {"type": "chat.resync", "seq": newest.get(room, 0)})


async def _watch(layer) -> None:
    global _failure_reported
    channel, healthy, failures = None, True, 0
    while _rooms:
        if _failure_reported:
            healthy, _failure_reported = False, False
        try:
            # The default prefix: the list-based layer receives all of a process's channels in one loop.
            channel = channel or await layer.new_channel()
            ok = await probe(layer, channel)
        except Exception:
            ok = False
        failures = 0 if ok else failures + 1
        if healthy and failures >= FAILED_PROBES_FOR_OUTAGE:
            healthy = False
            catch_up.rooms.forget()
            logger.warning("channel layer unreachable: live delivery paused, messages are still saved")
        if ok and not healthy:
            try:
                await resync(layer)
            except Exception as exc:
                logger.warning("resync after the layer came back failed, will retry: %r", exc)
            else:
                healthy = True
                logger.warning("channel layer back: %d sockets checked against the database", len(_rooms))
        await asyncio.sleep(PROBE_INTERVAL)
