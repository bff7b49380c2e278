"""Project settings plus one bench-only knob: the Redis connection pool size.

Used only when `python -m tests.bench --redis-max-connections N` is given, to
measure which pool size the product should configure; the product's own
CHANNEL_LAYERS stay untouched.
"""

import os

from project.settings import *  # noqa: F403
from project.settings import CHANNEL_LAYERS, REDIS_URL

if REDIS_URL and os.environ.get("BENCH_REDIS_MAX_CONNECTIONS"):
    # channels_redis passes a host dict's other keys to redis-py's ConnectionPool.from_url().
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
        {"address": REDIS_URL, "max_connections": int(os.environ["BENCH_REDIS_MAX_CONNECTIONS"])}
    ]
