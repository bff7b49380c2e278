"""Socket auth middleware: Channels' cookie, session and auth middleware, with the session and user
loaded on our read pool (who may post, re-checked on every post, is chat/socket_auth.py).

Channels' AuthMiddleware loads them through `database_sync_to_async`, one thread
per process: after a deploy, every tab reconnects at once and each handshake
waited behind all the others. The logic is Channels' own `get_user` (session
hash check included); only the thread it runs on differs (see chat/db.py).
"""

from channels.auth import AuthMiddleware, get_user
from channels.sessions import CookieMiddleware, SessionMiddleware

from . import db

# Channels' get_user is wrapped in database_sync_to_async; .func is the plain function.
_load_user = db.reads(get_user.func)


class PooledAuthMiddleware(AuthMiddleware):
    async def resolve_scope(self, scope) -> None:
        scope["user"]._wrapped = await _load_user(scope)


def PooledAuthMiddlewareStack(inner):  # named like Channels' AuthMiddlewareStack
    return CookieMiddleware(SessionMiddleware(PooledAuthMiddleware(inner)))
