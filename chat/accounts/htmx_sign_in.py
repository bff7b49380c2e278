"""An htmx request whose session is gone gets a note, never a log-in page inside the page.

htmx follows redirects inside its XMLHttpRequest, so an Edit or Delete clicked after signing out in
another tab would swap the whole log-in page in place of a message. For an htmx request, a redirect
to the log-in page becomes instead: swap nothing in place, and out of band the page's note says the
reader was signed out (with a link to log in again and come back), the reader's stylesheet (their
controls) goes, and the header shows them signed out. Without JavaScript the redirect stands.
"""

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme


class SignedOutHtmxMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.headers.get("HX-Request") != "true" or not is_login_redirect(response):
            return response
        note = HttpResponse(render_to_string("_signed_out_note.html", {"next": page_path(request)}, request=request))
        note["HX-Reswap"] = "none"  # out-of-band parts are still swapped in
        return note


def is_login_redirect(response: HttpResponse) -> bool:
    if response.status_code not in (301, 302, 303, 307, 308):
        return False
    return urlsplit(response.get("Location", "")).path == urlsplit(resolve_url(settings.LOGIN_URL)).path


def page_path(request: HttpRequest) -> str:
    """The page the request came from (htmx says which), to return to after logging in; else the lobby."""
    current = request.headers.get("HX-Current-URL", "")
    if current and url_has_allowed_host_and_scheme(current, allowed_hosts={request.get_host()}):
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return "/"
