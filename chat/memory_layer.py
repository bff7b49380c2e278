"""The in-memory channel layer (one process, no Redis), without its per-call full sweep.

Channels' InMemoryChannelLayer runs `_clean_expired()` on every `receive()` and
every `group_send()`: a walk over every channel and every group member of the
process. With N sockets in a room, one broadcast wakes N receives, so delivering
one message cost O(N²): profiled at 1,000 sockets, that sweep was most of the
server's CPU. Here it runs at most once per CLEAN_INTERVAL seconds; messages
expire after `expiry` (60 s by default), so they are dropped at most that much later.
"""

import time

from channels.layers import InMemoryChannelLayer

CLEAN_INTERVAL = 1.0


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    _last_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_clean >= CLEAN_INTERVAL:
            self._last_clean = now
            super()._clean_expired()
