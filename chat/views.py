"""Pages: lobby, room and sign-up. Every action is a plain form, so all of it works without JavaScript."""

from uuid import uuid4

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.middleware import HtmxDetails

from . import selectors, services
from .forms import RoomForm, SignupForm
from .models import room_name_validator


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
def lobby(request: HtmxHttpRequest) -> HttpResponse:
    # The form is a GET form: with a room name it redirects there, without one it is just the page.
    form = RoomForm(request.GET) if "room" in request.GET else RoomForm()
    if form.is_bound and form.is_valid():
        return redirect("chat:room", room_name=form.cleaned_data["room"])
    status = 400 if form.is_bound else 200
    return render(request, "chat/lobby.html", {"form": form, "rooms": selectors.room_list_recent()}, status=status)


@require_http_methods(["GET", "POST"])
def room(request: HtmxHttpRequest, room_name: str) -> HttpResponse:
    try:
        room_name_validator(room_name)
    except ValidationError as error:
        raise Http404(error.message) from None
    room = services.room_get_or_create(name=room_name)
    errors: list[str] = []
    body = ""
    if request.method == "POST":
        try:
            posted = services.message_post(room=room, author=request.user, data=request.POST)
        except ValidationError as error:
            errors, body = error.messages, request.POST.get("message", "")
        else:
            if posted.created:
                services.message_broadcast_on_commit(posted=posted)
            return redirect("chat:room", room_name=room.name)
    history = selectors.room_history(room=room)
    context = {
        "room": room,
        "history": history,
        "last_id": history[-1].pk if history else 0,
        "errors": errors,
        "body": body,
        # Each rendered form gets its own token: submitting it twice stores one message.
        "token": uuid4(),
    }
    return render(request, "chat/room.html", context, status=400 if errors else 200)


@require_http_methods(["GET", "POST"])
def signup(request: HtmxHttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, f"Welcome, {user.get_username()}.")
        return redirect(safe_next(request) or "chat:lobby")
    return render(request, "registration/signup.html", {"form": form, "next": safe_next(request)})


def safe_next(request: HttpRequest) -> str:
    """The `next` page to return to, if it is on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""
