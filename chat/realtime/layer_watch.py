"""Watches the channel layer from each server process.

Channels' layers deliver at most once: while Redis is down, broadcasts are
lost (the messages themselves are saved). A scheduled job per process sends a
probe through the layer to itself every few seconds. When the layer answers again
after failing (two probes in a row, or a failed broadcast), each socket of this
process is told the newest seq of its room (a `chat.resync` event): a socket
that has shown less catches up from the database, the others do nothing.
The in-memory layer cannot fail this way, so nothing is watched there.

A process whose sockets are quiet (no frame from a page, no message delivered, for QUIET_AFTER seconds)
probes every QUIET_PROBE_INTERVAL instead: while nothing is sent, no broadcast can be lost, and the
first post, typing or delivery makes it probe every PROBE_INTERVAL again. A probe that fails does too.
An idle workspace thus costs Redis one PUBLISH per process every 30 s instead of every 2 s.
"""

import asyncio
import logging
import time

from channels.layers import InMemoryChannelLayer, get_channel_layer

from chat import selectors
from chat.realtime import catch_up, db
from chat.realtime.registry import sockets

logger = logging.getLogger(__name__)

PROBE_INTERVAL = 2.0
QUIET_AFTER = 10.0
QUIET_PROBE_INTERVAL = 30.0
clock = time.monotonic
# Generous: a busy process (a burst of joins) answers slowly without the layer being down.
PROBE_TIMEOUT = 5.0
FAILED_PROBES_FOR_OUTAGE = 2


class LayerWatch:
    """This process's view of the layer's health, probed while it has room sockets."""

    def __init__(self) -> None:
        self.channel: str | None = None
        self.healthy = True
        self.failures = 0
        self.failure_reported = False
        self.busy_at = 0.0  # (monotonic) a page's frame or a delivery, last
        self.probed_at = float("-inf")

    def busy(self) -> None:
        """A socket of this process sent or was delivered something: probe at the busy pace."""
        self.busy_at = clock()

    def report_failure(self) -> None:
        """A broadcast or a group join in this process failed: resync its sockets once the layer answers again."""
        self.failure_reported = True
        catch_up.rooms.forget()

    def active(self) -> bool:
        """Only while there are sockets to resync, and only on a layer that can fail this way."""
        return bool(len(sockets)) and not isinstance(get_channel_layer(), InMemoryChannelLayer)

    def quiet(self, now: float) -> bool:
        """No probe due yet: a healthy, quiet process probes every QUIET_PROBE_INTERVAL only."""
        healthy = self.healthy and not self.failures and not self.failure_reported
        return healthy and now - self.busy_at > QUIET_AFTER and now - self.probed_at < QUIET_PROBE_INTERVAL

    async def tick(self) -> None:
        now = clock()
        if self.quiet(now):
            return
        self.probed_at = now
        layer = get_channel_layer()
        if self.failure_reported:
            self.healthy, self.failure_reported = False, False
        try:
            # The default prefix: the list-based layer receives all of a process's channels in one loop.
            self.channel = self.channel or await layer.new_channel()
            ok = await probe(layer, self.channel)
        except Exception:
            ok = False
        self.failures = 0 if ok else self.failures + 1
        if self.healthy and self.failures >= FAILED_PROBES_FOR_OUTAGE:
            self.healthy = False
            catch_up.rooms.forget()
            logger.warning("channel layer unreachable: live delivery paused, messages are still saved")
        if ok and not self.healthy:
            try:
                await resync(layer)
            except Exception as exc:
                logger.warning("resync after the layer came back failed, will retry: %r", exc)
            else:
                self.healthy = True
                logger.warning("channel layer back: %d sockets checked against the database", len(sockets))

    def reset(self) -> None:
        self.__init__()


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
    newest = await db.reads(selectors.rooms_newest_seq)(names=set(sockets.rooms()))
    for room, seq in newest.items():
        catch_up.rooms.advance(room, seq)
    for entry in sockets:
        await layer.send(entry.channel, {"type": "chat.resync", "seq": newest.get(entry.room, 0)})


watch = LayerWatch()


def report_failure() -> None:
    watch.report_failure()
