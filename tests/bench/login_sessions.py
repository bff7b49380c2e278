"""A login session made directly in the session store, as Django's `login()` stores it: for the benches'
set-up scripts (run in `manage.py shell` against the servers' database), which sign in hundreds or
thousands of users without as many HTTP log-ins."""

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore


def login_session(user) -> str:
    """A new login session of `user` (with the model backend); its session key, the `sessionid` cookie."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key
