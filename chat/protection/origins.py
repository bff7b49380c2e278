"""The WebSocket handshake's Origin must be exactly this site: scheme, host and port.

Channels' AllowedHostsOriginValidator compares host names only, so a page served from another
port or scheme of the same host (`http://127.0.0.1:9999`) could open the room socket with the
victim's cookies. Here, as Django's CsrfViewMiddleware does for forms, the Origin must equal
`<scheme>://<Host header>` of the handshake itself (the Host being one of ALLOWED_HOSTS), or be
listed exactly in CSRF_TRUSTED_ORIGINS. Behind a router that terminates TLS the scheme comes
from SECURE_PROXY_SSL_HEADER, the same setting Django trusts for `request.is_secure()`.
Not Channels' OriginValidator: it matches a fixed list of origin patterns, so it cannot require the
handshake's own scheme and Host, and as a coroutine it would hold a frame for each socket's life.
"""

from collections.abc import Awaitable
from typing import Any

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def site_scheme(scope: dict[str, Any]) -> str:
    """http or https, as the browser sees this site."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        value = header(scope, name.removeprefix("HTTP_").lower().replace("_", "-").encode())
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") in {"wss", "https"} else "http"


def allowed_hosts() -> list[str]:
    # As Django's HttpRequest.get_host(): with DEBUG and no ALLOWED_HOSTS, the local names.
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin, host = header(scope, b"origin"), header(scope, b"host")
    if not origin:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    if not host:
        return False
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts()) and origin == f"{site_scheme(scope)}://{host}"


class ExactOriginValidator:
    """ASGI middleware: refuse (HTTP 403) a WebSocket handshake from any other origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        # Not a coroutine of its own: it hands over the inner app's, so it holds no frame while a socket lives.
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return WebsocketDenier()(scope, receive, send)
        return self.application(scope, receive, send)
