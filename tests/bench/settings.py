"""Project settings plus bench-only knobs: the Redis hosts entry of the channel layer, and a query counter.

Used only with `python -m tests.bench --redis-option NAME=VALUE` (merged into the
product's host entry) or `--redis-plain-url` (the host entry is the bare URL, i.e.
channels-redis and redis-py defaults, as in the Channels tutorial), to measure which
options the product should configure; and by `python -m tests.bench.workspace`, whose servers
count their queries (BENCH_QUERY_COUNT_DIR, tests/bench/query_count.py). The product's own
settings stay untouched.
"""

import json
import os

from project.settings import *  # noqa: F403
from project.settings import CHANNEL_LAYERS, REDIS_URL

if REDIS_URL and "hosts" in CHANNEL_LAYERS["default"].get("CONFIG", {}):
    # channels_redis passes a host dict's other keys to redis-py's ConnectionPool.from_url().
    hosts = []
    for host in CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:  # one per Redis shard
        host = {"address": host} if isinstance(host, str) else dict(host)
        if os.environ.get("BENCH_REDIS_PLAIN_URL") == "1":
            host = {"address": host["address"]}
        host.update(json.loads(os.environ.get("BENCH_REDIS_HOST_OPTIONS") or "{}"))
        hosts.append(host)
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = hosts
    # Shown in the server log, so each run says what it measured.
    shown = hosts[0] if len(hosts) == 1 else hosts
    print(f"bench channel layer: {CHANNEL_LAYERS['default']['BACKEND']} {shown}", flush=True)

if os.environ.get("BENCH_QUERY_COUNT_DIR"):  # tests.bench.workspace: count each server's queries
    from tests.bench import query_count

    query_count.install(os.environ["BENCH_QUERY_COUNT_DIR"])
