"""A per-socket token bucket: a flood from one tab gets a clear error, not the room's attention."""

import time


class TokenBucket:
    """`burst` frames at once, then `rate` per second."""

    __slots__ = ("burst", "clock", "rate", "tokens", "updated")  # one per socket: no __dict__

    def __init__(self, *, burst: int, rate: float, clock=time.monotonic) -> None:
        self.burst, self.rate, self.clock = burst, rate, clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
