"""With CHAT_PUBLIC_READ=0, every page needs a signed-in user: a visitor is sent to log in, with `next`.

Open to visitors all the same: what it takes to get in (log-in, sign-up with its invitation link, the
admin's own log-in), log-out (an expired session's Log out button), the reader's stylesheet and the
static files. With CHAT_PUBLIC_READ=1 (the default) it lets every request through untouched.
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from chat.accounts.access import may_read_public

OPEN_TO_VISITORS = ("login", "logout", "signup", "viewer-css", "admin-login", "admin:login")


class SignInRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The setting is read on each request, before the user (whose loading costs a query) is looked at.
        if may_read_public(request.user) or open_to_visitors(request.path):
            return self.get_response(request)
        return redirect_to_login(request.get_full_path())


def open_to_visitors(path: str) -> bool:
    # Django prefixes a relative STATIC_URL with the script prefix ("static/" reads "/static/"), as reverse() does.
    return path.startswith(settings.STATIC_URL) or path in {reverse(name) for name in OPEN_TO_VISITORS}
