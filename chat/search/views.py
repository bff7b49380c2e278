"""The search page, /search/?q=…[&room=…][&page=…]: a plain GET form without JavaScript; with htmx, the
results alone as the reader types (the box in the site header asks for them: into the search page's results,
or into the preview under the box on any other page)."""

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chat import selectors
from chat.models import Room, room_name_validator
from chat.protection import limits
from chat.search.query import QueryError
from chat.search.results import RESULTS_PER_PAGE, message_search
from chat.views import HtmxHttpRequest, room_title, vary_on_htmx

NO_SUCH_ROOM = "There is no such room."


def page_number(value: str | None) -> int:
    try:
        return max(int(value or "1"), 1)
    except ValueError:
        return 1


def room_to_search(name: str, reader) -> Room | None:
    """The room a `room=` asks for, if it exists and the reader may read it: a closed room answers exactly as
    one that does not exist (and a public name nobody has posted in has nothing to search)."""
    try:
        room_name_validator(name)
    except ValidationError:
        return None
    room = selectors.room_for_reader(name=name, user=reader)
    return room if room is not None and room.pk is not None else None


@require_GET
def search(request: HtmxHttpRequest) -> HttpResponse:
    text = request.GET.get("q", "")
    room_name = request.GET.get("room", "")
    room = room_to_search(room_name, request.user) if room_name else None
    page = None
    note = ""
    status = 200
    if room_name and room is None:
        note, status = NO_SUCH_ROOM, 404
    elif text.strip():
        try:
            limits.search_allowed(user=request.user, ip=limits.request_ip(request))
            page = message_search(text=text, user=request.user, room=room, page=page_number(request.GET.get("page")))
        except limits.RateLimited as limited:
            note, status = limited.messages[0], 429
        except QueryError as error:
            note, status = str(error), 400
    context = {
        "search_text": text,
        "search_room": room,
        "search_live": True,
        "room_title": room_title(room, request.user) if room is not None else "",
        "page": page,
        "first_number": (page.number - 1) * RESULTS_PER_PAGE + 1 if page else 1,
        "note": note,
        # The header box's results under it, on a page other than the search page.
        "preview": request.htmx.target == "search-preview",
    }
    if request.htmx and not request.htmx.history_restore_request:
        # htmx swaps only 2xx answers: a note comes back as the results region, 200.
        return vary_on_htmx(render(request, "chat/_search_results.html", context))
    return vary_on_htmx(render(request, "chat/search.html", context, status=status))
