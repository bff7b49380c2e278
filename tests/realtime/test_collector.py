"""A server process's garbage collector (chat/realtime/collector.py): what start-up loaded is frozen out of its
sight, and the young generation is large."""

import asyncio
import gc
import inspect
import json
import urllib.request

import pytest

from chat.realtime import collector
from tests.bench.loadgen import htmx_frame, ws_connect


@pytest.fixture
def restored_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_install_freezes_what_is_loaded_and_enlarges_the_young_generation(restored_collector):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    collector.install()

    assert gc.get_freeze_count() > 10_000  # Django, the project, the test run: never walked again
    assert gc.get_threshold()[:2] == (collector.GEN0, collector.GEN1)
    # Cycles made after start-up are still collected.
    cycle = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_autobahn_still_resolves_is_closed_with_the_protocol():
    """Canary: the cycle `release_closed_protocols` breaks is autobahn's (checked against 25.x): if this changes,
    re-read WebSocketProtocol's close path before keeping the wrapper."""
    from autobahn.websocket.protocol import WebSocketProtocol

    assert "txaio.resolve(self.is_closed, self)" in inspect.getsource(WebSocketProtocol)


def test_daphne_still_hands_the_connection_over_in_process():
    """Canary: `release_upgraded_handshakes` takes a request whose `transport` is None after `process()` as upgraded
    (checked against daphne 4.2): if this changes, re-read WebRequest.process before keeping the wrapper."""
    from daphne.http_protocol import WebRequest

    source = inspect.getsource(inspect.unwrap(WebRequest.process))
    assert "transport, self.transport = self.transport, None" in source
    assert "yield" not in source.split("# Is it WebSocket? IS IT?!")[1].split("# Boring old HTTP.")[0]


@pytest.mark.slow
def test_sockets_dropped_and_reopened_leave_little_for_a_full_collection(live_server_factory):
    """Against daphne: a socket dropped without a close (as phones do) leaves nothing much in a cycle for a full
    collection: ~43 objects per socket with its protocol, transport, buffers and queue; ~23 with Twisted's HTTP
    channel and daphne's request of the handshake, which pointed at each other; under 1 now."""
    server = live_server_factory(CHAT_BENCH_STATS="1")
    host, port, rounds, dropped = "127.0.0.1", server.port, 5, 60

    def stats(query: str = "") -> dict:
        with urllib.request.urlopen(f"{server.url}/internal/process-stats/{query}") as answer:
            return json.loads(answer.read())

    async def opened(n: int):
        ws = await ws_connect(host, port, f"/ws/chat/cycles{n % 3}/", origin=f"http://{host}:{port}")
        await ws.send_text(htmx_frame({"after": "0"}, "sync", f"http://{host}:{port}/chat/cycles{n % 3}/"))
        return ws

    async def reconnects() -> None:
        pages = [await opened(n) for n in range(dropped)]
        await asyncio.sleep(1)
        await asyncio.to_thread(stats, "?collect=2")
        for _ in range(rounds):
            for ws in pages:
                ws.writer.transport.abort()
            await asyncio.sleep(0.5)
            pages = [await opened(n) for n in range(dropped)]
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # daphne lets go of each application
        assert (await asyncio.to_thread(stats))["sockets"]["room"] == dropped
        freed = (await asyncio.to_thread(stats, "?collect=2"))["freed_now"]
        assert freed < 4 * rounds * dropped, freed
        for ws in pages:
            ws.writer.transport.abort()

    asyncio.run(reconnects())
