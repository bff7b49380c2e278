"""Watches the channel layer from each server process.

Channels' layers deliver at most once: while Redis is down, broadcasts are
lost (the messages themselves are saved). One task per process sends a probe
through the layer to itself every few seconds; when the layer answers again
after failing, every socket of this process is told to catch up from the
database (a `chat.resync` event, handled like the page's own sync frame).
The in-memory layer cannot fail this way, so nothing is watched there.
"""

import asyncio
import logging

from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

PROBE_INTERVAL = 2.0
PROBE_TIMEOUT = 3.0

_channels: set[str] = set()
_task: asyncio.Task | None = None
_failure_reported = False


def report_failure() -> None:
    """A broadcast from this process failed: resync its sockets once the layer answers again."""
    global _failure_reported
    _failure_reported = True


def watch(channel_name: str) -> None:
    """Register a consumer's channel; starts this process's watcher on first use."""
    global _task
    _channels.add(channel_name)
    if _task is None or _task.done() or _task.get_loop() is not asyncio.get_running_loop():
        layer = get_channel_layer()
        if not isinstance(layer, InMemoryChannelLayer):
            _task = asyncio.get_running_loop().create_task(_watch(layer))


def unwatch(channel_name: str) -> None:
    _channels.discard(channel_name)


async def probe(layer, channel: str) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await layer.send(channel, {"type": "probe"})
            await layer.receive(channel)
    except Exception:
        return False
    return True


async def _watch(layer) -> None:
    global _failure_reported
    channel, healthy = None, True
    while _channels:
        if _failure_reported:
            healthy, _failure_reported = False, False
        try:
            channel = channel or await layer.new_channel("layer-watch.")
            ok = await probe(layer, channel)
        except Exception:
            ok = False
        if not ok and healthy:
            logger.warning("channel layer unreachable: live delivery paused, messages are still saved")
        if ok and not healthy:
            logger.warning("channel layer back: %d sockets catch up from the database", len(_channels))
            for name in list(_channels):
                try:
                    await layer.send(name, {"type": "chat.resync"})
                except Exception:
                    ok = False
                    break
        healthy = ok
        await asyncio.sleep(PROBE_INTERVAL)
