"""Times in the reader's zone: the signed-in user's choice, UTC for everyone else."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from chat import fragments, selectors


class TimeZoneMiddleware:
    """Activates the user's time zone for the request, and keeps it in the session too: the room
    socket a page opens reads it from there without a query of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone_name = selectors.user_time_zone(user=request.user)
        if request.user.is_authenticated and request.session.get("time_zone") != zone_name:
            request.session["time_zone"] = zone_name
        with timezone.override(fragments.zone(zone_name)):
            return self.get_response(request)
