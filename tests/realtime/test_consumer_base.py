"""The room consumer's base (chat/realtime/consumer_base.py): Channels' AsyncWebsocketConsumer methods it
copies without their `aclose_old_connections()` hop."""

import hashlib
import importlib.metadata
import inspect

import pytest
from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from chat.realtime.consumer_base import PooledDatabaseWebsocketConsumer


@pytest.mark.parametrize(
    ("upstream", "digest"),
    [
        pytest.param(AsyncConsumer.dispatch, "39f34e7d4fb0f655", id="AsyncConsumer.dispatch"),
        pytest.param(
            AsyncWebsocketConsumer.websocket_disconnect,
            "10f38aa55fd51ff5",
            id="AsyncWebsocketConsumer.websocket_disconnect",
        ),
    ],
)
def test_the_channels_methods_the_base_copies_are_the_version_they_were_copied_from(upstream, digest):
    """Canary, checked against channels 4.3.2: the base copies `dispatch` and `websocket_disconnect`,
    leaving out only their `aclose_old_connections()`. A change upstream fails here: re-check the copy
    in chat/realtime/consumer_base.py, then update the digest."""
    source = inspect.getsource(upstream)

    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
        f"{upstream.__qualname__} is not channels 4.3.2's (installed: {importlib.metadata.version('channels')}): "
        "re-check chat/realtime/consumer_base.py"
    )
    ours = inspect.getsource(getattr(PooledDatabaseWebsocketConsumer, upstream.__name__))
    assert "aclose_old_connections" in source and "aclose_old_connections" not in ours
