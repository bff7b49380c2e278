"""Response headers Django does not set itself: a strict Content-Security-Policy.

Django 5.2 has no CSP support of its own and the policy is one fixed string, so a tiny
middleware sets it (a view may set its own). No 'unsafe-inline' or 'unsafe-eval': the pages
load only htmx and its ws extension from our origin, and templates/base.html turns off what
htmx would otherwise need them for (its injected indicator style, eval, script tags).
"""

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware


@sync_and_async_middleware
def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
) -> Callable:
    """Add settings.CHAT_CONTENT_SECURITY_POLICY to every response that has none (sync or async stack alike)."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            response = await get_response(request)
            response.headers.setdefault("Content-Security-Policy", settings.CHAT_CONTENT_SECURITY_POLICY)
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CHAT_CONTENT_SECURITY_POLICY)
        return response

    return middleware
