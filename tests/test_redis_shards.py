"""Scale-out over two Redis servers: REDIS_URL lists both, channels-redis shards the pub/sub layer over them.

Two private `redis-server`s on their own ports (never the shared one), two daphne
processes on one database, each listing both servers; rooms picked so that each
shard carries at least one. Every message must reach every page, across processes.
"""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from channels_redis.utils import _consistent_hash
from playwright.sync_api import expect

from chat.models import room_group_name
from tests.livesupport import free_port, unique, users_in_room

from .test_browser import message, send

pytestmark = [pytest.mark.browser, pytest.mark.redis]

LIVE = 2_000


def start_redis() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"redis-server on {port} did not start")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def shards() -> Iterator[list[str]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")  # tests/test_layer_failures.py makes this a CI failure
    started = [start_redis() for _ in range(2)]
    yield [url for _, url in started]
    for process, _ in started:
        process.terminate()
        process.wait(timeout=10)


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
