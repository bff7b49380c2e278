"""The session engine (chat/backends/sessions.py): Django's database sessions, with many read in one query."""

import hashlib
import importlib.metadata
import inspect

import pytest
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


@pytest.mark.parametrize(
    ("upstream", "digest"),
    [
        pytest.param(DatabaseSessionStore.load, "89d644d66ff7dc2d", id="db.SessionStore.load"),
        pytest.param(
            DatabaseSessionStore._get_session_from_db, "775c8d22becd60bd", id="db.SessionStore._get_session_from_db"
        ),
    ],
)
def test_the_session_read_that_load_many_repeats_is_djangos_as_checked(upstream, digest):
    """Canary, checked against Django 5.2.19: `SessionStore.load_many` repeats for a batch what the db
    engine's `load` reads (the unexpired row by key, then `decode(session_data)`), and hands it to
    `load`, which SessionBase calls on first use. A change fails here: re-check
    chat/backends/sessions.py, then update the digest."""
    assert hashlib.sha256(inspect.getsource(upstream).encode()).hexdigest()[:16] == digest, (
        f"{upstream.__qualname__} is not Django 5.2.19's (installed: {importlib.metadata.version('django')}): "
        "re-check chat/backends/sessions.py"
    )
    assert "self._session_cache = self.load()" in inspect.getsource(SessionBase._get_session)
