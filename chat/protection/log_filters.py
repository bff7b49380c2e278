"""Logging filters (wired in project/settings.py LOGGING)."""

import logging
import time


class OncePerMinute(logging.Filter):
    """Let a repeated record through once a minute.

    channels-redis' pub/sub reader logs a full traceback every second while
    Redis is unreachable; one a minute says the same without flooding the log.
    """

    interval = 60.0

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.last_seen: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last_seen.get(key, -self.interval) < self.interval:
            return False
        self.last_seen[key] = now
        return True
