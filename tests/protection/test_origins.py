"""The room socket accepts only this site's exact origin: scheme, host and port, or a trusted origin."""

import pytest
from channels.testing import WebsocketCommunicator
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from chat.protection import origins


async def handshake(origin: bytes | None, host: bytes | None = b"localhost", *extra: tuple[bytes, bytes]) -> bool:
    from project.asgi import application

    headers = [(name, value) for name, value in ((b"origin", origin), (b"host", host)) if value is not None]
    communicator = WebsocketCommunicator(application, "/ws/chat/general/", headers=[*headers, *extra])
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


REFUSED = {
    "other scheme": (b"https://localhost", b"localhost"),
    "other port": (b"http://localhost:9999", b"localhost"),
    "port the host does not have": (b"http://localhost:8000", b"localhost"),
    "default port spelled out": (b"http://localhost:80", b"localhost"),
    "other allowed host": (b"http://127.0.0.1", b"localhost"),
    "foreign site": (b"http://evil.example", b"localhost"),
    "subdomain": (b"http://evil.localhost", b"localhost"),
    "opaque origin": (b"null", b"localhost"),
    "no origin": (None, b"localhost"),
    "empty origin": (b"", b"localhost"),
    "no host": (b"http://localhost", None),
    "host not allowed": (b"http://evil.example", b"evil.example"),
    "trailing slash": (b"http://localhost/", b"localhost"),
    "path": (b"http://localhost/chat/", b"localhost"),
}


@pytest.mark.parametrize("variant", REFUSED)
async def test_a_handshake_from_any_other_origin_is_refused(transactional_db, variant):
    assert not await handshake(*REFUSED[variant])


async def test_the_sites_own_origin_is_accepted(transactional_db):
    assert await handshake(b"http://localhost", b"localhost")
    assert await handshake(b"http://127.0.0.1:8000", b"127.0.0.1:8000")


async def test_behind_a_tls_router_the_origin_is_https(transactional_db, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    forwarded = (b"x-forwarded-proto", b"https")

    assert await handshake(b"https://localhost", b"localhost", forwarded)
    assert not await handshake(b"http://localhost", b"localhost", forwarded)
    assert not await handshake(b"https://localhost", b"localhost", (b"x-forwarded-proto", b"http"))


async def test_a_trusted_origin_is_accepted_exactly(transactional_db, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com"]

    assert await handshake(b"https://chat.example.com", b"localhost")
    assert not await handshake(b"https://chat.example.com:8443", b"localhost")
    assert not await handshake(b"http://chat.example.com", b"localhost")


@pytest.mark.parametrize("debug", [True, False])
def test_the_allowed_hosts_are_the_ones_django_checks_a_host_against(settings, debug):
    """Canary, checked against Django 5.2.19: origins.allowed_hosts() repeats HttpRequest.get_host()'s
    rule (with DEBUG and no ALLOWED_HOSTS, the local names), so both accept and refuse the same hosts."""
    settings.DEBUG, settings.ALLOWED_HOSTS = debug, []
    for host in ["localhost", "app.localhost", "127.0.0.1", "[::1]", "example.com", "10.0.0.1", "localhost.evil"]:
        request = HttpRequest()
        request.META = {"HTTP_HOST": host, "SERVER_NAME": "unused", "SERVER_PORT": "80"}
        try:
            request.get_host()
            django_allows = True
        except DisallowedHost:
            django_allows = False

        assert validate_host(split_domain_port(host)[0], origins.allowed_hosts()) == django_allows, host
