"""Scale-out over two Redis servers: REDIS_URL lists both, channels-redis shards the pub/sub layer over them.

Two private `redis-server`s on their own ports (never the shared one), two daphne
processes on one database, each listing both servers; rooms picked so that each
shard carries at least one. Every message must reach every page, across processes.
"""

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from channels_redis.utils import _consistent_hash
from playwright.sync_api import expect

from chat.models import room_group_name
from tests.support.live import message, redis_server_running, send, unique, users_in_room

pytestmark = [pytest.mark.browser, pytest.mark.redis]

LIVE = 2_000


@pytest.fixture(scope="module")
def shards() -> Iterator[list[str]]:
    with ExitStack() as stack:
        servers = [stack.enter_context(redis_server_running("the Redis shard tests")) for _ in range(2)]
        yield [server.url for server in servers]


@pytest.fixture(scope="module")
def two_processes_two_shards(live_server_factory, shards):
    urls = ",".join(shards)
    first = live_server_factory(REDIS_URL=urls)
    return first, live_server_factory(REDIS_URL=urls, DATABASE_URL=first.env["DATABASE_URL"])


def room_on_shard(shard: int) -> str:
    """A fresh room whose group channels-redis puts on `shard` (of two), as the servers compute it."""
    while True:
        room = unique(f"shard{shard}")
        if _consistent_hash(room_group_name(room), 2) == shard:
            return room


@pytest.mark.parametrize("shard", [0, 1])
def test_every_message_reaches_every_page_across_processes_on_each_shard(two_processes_two_shards, new_page, shard):
    first, second = two_processes_two_shards
    room = room_on_shard(shard)
    pages = users_in_room(new_page, room, first, second, first, second)

    for index, page in enumerate(pages):
        send(page, f"message {index} in {room}")
    texts = [f"message {index} in {room}" for index in range(len(pages))]
    for page in pages:
        for text in texts:
            expect(message(page, text)).to_have_count(1, timeout=LIVE)
