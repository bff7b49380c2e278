"""Connection status and stragglers, for every room socket of this process.

One task per process looks at its sockets every couple of seconds:
- a socket that has sent nothing for IDLE_REFRESH seconds gets a fresh
  `#connection-status` (rendered once per tick for all of them); while messages
  flow each message frame carries one, so this costs nothing extra then. The page
  shows "Reconnecting…" when no copy arrives for longer (a CSS animation).
- a socket still behind its room's newest seq (as this process knows it) on two
  ticks in a row missed a broadcast that nothing followed (a layer at capacity):
  it is told to catch up from the database.
"""

import logging
import time

from channels.layers import get_channel_layer

from chat import fragments
from chat.realtime import catch_up
from chat.realtime.registry import sockets

logger = logging.getLogger(__name__)

TICK = 2.5
IDLE_REFRESH = 30.0  # at most 2 frames a minute to an idle socket; the page reveals "Reconnecting…" after 45 s


async def tick() -> None:
    """Refresh idle sockets' status, and tell stragglers to catch up (a scheduled job, every TICK)."""
    now = time.monotonic()
    status = None
    layer = get_channel_layer()
    for entry in sockets:
        socket = entry.socket
        if now - socket.last_sent >= IDLE_REFRESH:
            status = status or fragments.connection_status()
            try:
                await socket.send(text_data=status)
            except Exception:  # closing meanwhile: its disconnect unregisters it
                continue
        known = catch_up.rooms.known(socket.room_name)
        if socket.seq is None or known is None or socket.seq >= known:
            socket.behind_at = None
        elif socket.behind_at != known:
            socket.behind_at = known  # maybe only a broadcast in flight: look again next tick
        else:
            socket.behind_at = None
            try:
                await layer.send(socket.channel_name, {"type": "chat.resync", "seq": known})
            except Exception as exc:  # a full queue or a layer outage: next tick tries again
                logger.info("telling %s to catch up failed: %r", socket.channel_name, exc)


def active() -> bool:
    return bool(len(sockets))
