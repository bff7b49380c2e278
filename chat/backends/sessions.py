"""Django's database sessions, with one addition: the sessions of many sockets read in one query.

`SESSION_ENGINE = "chat.backends.sessions"`. Pages use it exactly as Django's `db` engine (same table, same
format). A reconnect storm's handshakes each need their session: `SessionStore.load_many` reads a
batch of them with one query, and each store then answers from what was read instead of querying
on first use (chat/realtime/handshake.py). `load_many` repeats the read of Django's db engine's `load`:
tests/backends/test_sessions.py fails when that changes.
"""

from collections.abc import Iterable
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone


class SessionStore(DatabaseSessionStore):
    _preloaded: dict[str, Any] | None = None

    def load(self) -> dict[str, Any]:
        if self._preloaded is not None:
            data, self._preloaded = self._preloaded, None
            return data
        return super().load()

    @classmethod
    def load_many(cls, stores: Iterable[Any]) -> None:
        """Read the unexpired sessions of these stores in one query. A store whose session is not found
        is left as it was: its first use queries as usual (and finds it gone)."""
        by_key = {store.session_key: store for store in stores if isinstance(store, cls) and store.session_key}
        if not by_key:
            return
        rows = cls.get_model_class().objects.filter(session_key__in=list(by_key), expire_date__gt=timezone.now())
        for key, data in rows.values_list("session_key", "session_data"):
            store = by_key[key]
            store._preloaded = store.decode(data)
