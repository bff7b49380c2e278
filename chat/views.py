"""Pages: lobby, room (and its older history), a new room, a private room's members, direct messages,
editing and deleting messages, removing a user.

Every action is a plain form, so all of it works without JavaScript.
"""

from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import uuid4

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.middleware import HtmxDetails

from chat import days, fragments, selectors, services
from chat.forms import DeactivateForm, MemberForm, NewRoomForm, RoomForm
from chat.models import Message, Room, room_name_validator
from chat.protection import limits
from chat.realtime import lobby as lobby_list
from chat.realtime import presence_store, unread


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
def lobby(request: HtmxHttpRequest) -> HttpResponse:
    # The form is a GET form: with a room name it redirects there, without one it is just the page.
    form = RoomForm(request.GET) if "room" in request.GET else RoomForm()
    if form.is_bound and form.is_valid():
        return redirect("chat:room", room_name=form.cleaned_data["room"])
    status = 400 if form.is_bound else 200
    context = {
        "form": form,
        **fragments.lobby_lists(lobby_list.page_entries(user=request.user)),
        **notices_context(request),
    }
    return render(request, "chat/lobby.html", context, status=status)


@require_http_methods(["GET", "POST"])
def room(request: HtmxHttpRequest, room_name: str) -> HttpResponse:
    """The room: its newest page, live. `?before=<id>` / `?after=<id>`: a page of older history (not live);
    the same with htmx: just the batch, for the scroller's older-history sentinel. `?around=<id>`: the page
    centred on that message (a link to a message in its place: mentions, search)."""
    try:
        room_name_validator(room_name)
    except ValidationError as error:
        raise Http404(error.message) from None
    # Room names are case-insensitive: any other spelling goes to the room's own (a GET; a no-JS post is
    # stored in the room it names all the same).
    spelling = selectors.room_name_canonical(name=room_name, user=request.user)
    if spelling != room_name and request.method == "GET":
        query = f"?{request.GET.urlencode()}" if request.GET else ""
        return redirect(reverse("chat:room", args=[spelling]) + query)
    # An unknown public room is shown empty and stored by its first message, not by a visit; a room the
    # reader may not read answers 404, as one that does not exist.
    room = selectors.room_for_reader(name=spelling, user=request.user)
    if room is None:
        raise Http404("There is no such room.")
    return room_page(request, room)


def room_page(request: HtmxHttpRequest, room: Room) -> HttpResponse:
    before, after = message_id(request.GET.get("before")), message_id(request.GET.get("after"))
    around = message_id(request.GET.get("around"))
    if room.pk is None and (before is not None or after is not None or around is not None):
        raise Http404("There is no such room.")
    if request.method == "GET" and request.htmx and before is not None:
        return vary_on_htmx(older_batch(request, room, before=before, after=after))
    errors: list[str] = []
    body = ""
    status = 200
    if request.method == "POST":
        try:
            posted = services.message_post(
                room=room, author=request.user, data=request.POST, ip=limits.request_ip(request)
            )
        except ValidationError as error:
            errors, body = error.messages, request.POST.get("message", "")
            status = 429 if isinstance(error, limits.RateLimited) else 400
        else:
            room = posted.message.room
            if posted.created:
                services.message_broadcast_on_commit(posted=posted)
            return redirect("chat:room", room_name=room.name)
        before = after = None
    if around is not None and request.method == "GET":
        page = selectors.room_page_around(room=room, pk=around)
        if page is None:
            raise Http404("There is no such message in this room.")
        if request.user.is_authenticated:  # a mention's notice leads here: it has been seen
            services.mention_seen(user=request.user, message_id=around)
    else:
        around = None
        page = selectors.room_page(room=room, before=before, after=after)
    historic = before is not None or after is not None or around is not None
    context = {
        "room": room,
        "room_name": room.name,
        "title": room_title(room, request.user),
        "page": page,
        "entries": days.entries(page.messages),
        "historic": historic,
        "current": around,  # the message a link pointed at: marked on its page
        # The newest page marks the room read; the divider goes above the first message new to the reader.
        "unread_from": None if historic else unread.page_opened(user=request.user, room=room, messages=page.messages),
        # The page's position in the room's stream: a reconnecting socket sends it back.
        "cursor": page.messages[-1].seq if page.messages else 0,
        "zone_name": timezone.get_current_timezone_name(),
        "presence": view.with_reader(request.user).context() if (view := presence_store.view_now(room.name)) else None,
        "errors": errors,
        "body": body,
        # Each rendered form gets its own token: submitting it twice stores one message.
        "token": uuid4(),
    }
    if not historic:  # a live page: after its read mark moved, so this room's mentions are read
        context.update(notices_context(request, outside=room.name))
    return vary_on_htmx(render(request, "chat/room.html", context, status=status))


def notices_context(request: HttpRequest, *, outside: str | None = None) -> dict[str, Any]:
    """A live page's mention notices (those of the room it shows are read by opening it), and where
    dismissing one without JavaScript comes back to."""
    return {
        "notices": selectors.mention_notices(user=request.user, outside=outside),
        "mention_total": selectors.mention_total(user=request.user),
        "next": request.get_full_path(),
    }


def older_batch(request: HttpRequest, room: Room, *, before: int, after: int | None) -> HttpResponse:
    """The 50 messages before `before` (and after `after`, filling a gap), to go in place of the sentinel."""
    page = selectors.room_page(room=room, before=before, after=after)
    gap = None
    previous = None
    if after is not None:
        shown_above = selectors.message_in_room(room=room, pk=after) if after else None
        if page.has_older and page.messages:
            missed = selectors.room_count_between(room=room, after=after, before=page.first_id)
            gap = {"missed": missed, "before": page.first_id, "after": after}
        elif shown_above is not None:
            previous = shown_above  # the batch closes the gap: its first day (and run) may continue that one
    below = selectors.message_in_room(room=room, pk=before)
    same_day = (
        below is not None
        and page.messages
        and days.local_day(page.messages[-1].created) == days.local_day(below.created)
    )
    context = {
        "room_name": room.name,
        "page": page,
        "entries": days.entries(
            page.messages,
            previous=previous.created if previous else None,
            previous_author=previous.author_id if previous else None,
        ),
        "gap": gap,
        "between": after is not None,
        "drop_day_of": below.pk if same_day else None,
    }
    return render(request, "chat/_older_page.html", context)


def message_id(value: str | None) -> int | None:
    """A message id from the query string; anything else counts as absent."""
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 <= number < 2**63 else None  # what a database id can be


def vary_on_htmx(response: HttpResponse) -> HttpResponse:
    # The same URL answers with a page or with a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


# Edit and delete, with htmx in place and as plain pages without JavaScript.


def room_or_404(request: HttpRequest, room_name: str) -> Room:
    """A stored room the reader may read; anything else answers 404 (staff powers stop at a closed room's door)."""
    room = Room.objects.filter(name=room_name).first()
    if room is None or not selectors.room_readable(room=room, user=request.user):
        raise Http404("There is no such room.")
    return room


def room_title(room: Room, reader: Any) -> str:
    """What the page calls the room: its name, or for a direct conversation the other person."""
    if room.kind != Room.DIRECT or room.pk is None:
        return room.name
    partner = selectors.direct_partner(room=room, reader=reader)
    return "Notes to self" if partner == reader.get_username() else f"Direct messages with {partner}"


def message_url(room: Room, pk: int) -> str:
    """The room at a message: the live page if it is among the newest, else the page of history ending with it."""
    url = reverse("chat:room", args=[room.name])
    if selectors.room_newer_than(room=room, pk=pk, limit=selectors.PAGE_LENGTH) >= selectors.PAGE_LENGTH:
        url += f"?before={pk + 1}"
    return f"{url}#message-{pk}"


def message_item(request: HttpRequest, room: Room, pk: int, *, error: str = "", status: int = 200) -> HttpResponse:
    """The message as it is now, for the one who asked (htmx swaps it in place), with an error if any. It
    takes the focus the swap took away (from Save, Delete or Cancel): a keyboard user stays on it."""
    message = Message.objects.select_related("author").filter(room=room, pk=pk).first()
    continues = False
    if message is not None:  # it keeps its place in its author's run
        above = selectors.message_previous(room=room, before=pk)
        if above is not None:
            continues = days.entries([message], previous=above.created, previous_author=above.author_id)[0].continues
    context = {"message": message, "room_name": room.name, "error": error, "pk": pk, "focus": True}
    context["continues"] = continues
    return render(request, "chat/_message_answer.html", context, status=status)


def refused(request: HtmxHttpRequest, room: Room, pk: int, error: str, status: int) -> HttpResponse:
    """403/404: a clear page, or with htmx the message back in place with the reason."""
    if request.htmx:
        return message_item(request, room, pk, error=error)  # htmx swaps only 2xx answers
    return render(request, "chat/refused.html", {"room": room, "error": error}, status=status)


@require_GET
def message(request: HtmxHttpRequest, room_name: str, pk: int) -> HttpResponse:
    """One message: with htmx, its item (cancelling an edit); without, the room at that message."""
    room = room_or_404(request, room_name)
    if request.htmx:
        return message_item(request, room, pk)
    return redirect(message_url(room, pk))


@require_http_methods(["GET", "POST"])
def message_edit(request: HtmxHttpRequest, room_name: str, pk: int) -> HttpResponse:
    room = room_or_404(request, room_name)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        message = services.message_for_edit(room=room, message_id=pk, editor=request.user)
        errors: list[str] = []
        body = message.body
        status = 200
        if request.method == "POST":
            try:
                change = services.message_edit(
                    room=room, message_id=pk, editor=request.user, data=request.POST, ip=limits.request_ip(request)
                )
            except ValidationError as error:
                errors, body = error.messages, request.POST.get("message", "")
                status = 429 if isinstance(error, limits.RateLimited) else 400
            else:
                if change:
                    services.changes_broadcast_on_commit(changes=[change])
                if request.htmx:
                    return message_item(request, room, pk)
                messages.success(request, "Your message was edited.")
                return redirect(message_url(room, pk))
    except services.MessageGone as gone:
        return refused(request, room, pk, str(gone), 404)
    except PermissionDenied as denied:
        return refused(request, room, pk, str(denied), 403)
    context = {"room": room, "message": message, "room_name": room.name, "errors": errors, "body": body}
    if request.htmx:
        return render(request, "chat/_message_edit.html", context)
    return render(request, "chat/message_edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
def message_delete(request: HtmxHttpRequest, room_name: str, pk: int) -> HttpResponse:
    room = room_or_404(request, room_name)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        message = services.message_for_delete(room=room, message_id=pk, actor=request.user)
        if request.method == "POST":
            change = services.message_delete(
                room=room, message_id=pk, actor=request.user, ip=limits.request_ip(request)
            )
            services.changes_broadcast_on_commit(changes=[change])
            if request.htmx:
                return message_item(request, room, pk)
            messages.success(request, "The message was deleted.")
            return redirect(message_url(room, pk))
    except services.MessageGone as gone:
        return refused(request, room, pk, str(gone), 404)
    except PermissionDenied as denied:
        return refused(request, room, pk, str(denied), 403)
    except ValidationError as error:
        return refused(request, room, pk, error.messages[0], 429 if isinstance(error, limits.RateLimited) else 503)
    return render(request, "chat/message_delete.html", {"room": room, "message": message, "room_name": room.name})


@require_http_methods(["GET", "POST"])
def user_deactivate(request: HtmxHttpRequest, room_name: str, username: str) -> HttpResponse:
    """Staff: remove a user (they can no longer log in, post or keep a socket), optionally with all their messages."""
    room = room_or_404(request, room_name)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_staff:
        return render(
            request, "chat/refused.html", {"room": room, "error": "Only staff can remove a user."}, status=403
        )
    target = get_user_model().objects.filter(username=username).first()
    if target is None:
        raise Http404("There is no such user.")
    form = DeactivateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            changes = services.user_deactivate(
                user=target, by=request.user, delete_messages=form.cleaned_data["delete_messages"]
            )
        except PermissionDenied as denied:
            return render(request, "chat/refused.html", {"room": room, "error": str(denied)}, status=403)
        services.changes_broadcast_on_commit(changes=changes)
        deleted = f" and {len(changes)} message{'s' if len(changes) != 1 else ''} deleted" if changes else ""
        messages.success(request, f"{target.get_username()} was removed{deleted}.")
        return redirect("chat:room", room_name=room.name)
    return render(request, "chat/user_deactivate.html", {"room": room, "target": target, "form": form})


# Rooms of a team: a new room (public or private), a private room's members, direct messages.


@login_required
@require_http_methods(["GET", "POST"])
def room_new(request: HtmxHttpRequest) -> HttpResponse:
    form = NewRoomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            room = services.room_create(
                name=form.cleaned_data["name"], creator=request.user, private=form.cleaned_data["private"]
            )
        except ValidationError as error:
            form.add_error("name", error)
        else:
            return redirect("chat:room", room_name=room.name)
    return render(request, "chat/room_new.html", {"form": form}, status=400 if form.errors else 200)


def closed_room_or_404(request: HttpRequest, room_name: str) -> Room:
    """A private room or direct conversation the reader is a member of (public rooms have no member list)."""
    room = room_or_404(request, room_name)
    if room.is_public:
        raise Http404("A public room has no member list.")
    return room


@require_http_methods(["GET", "POST"])
def members(request: HtmxHttpRequest, room_name: str) -> HttpResponse:
    """The members of a private room; its owners add people here (a POST of `username`)."""
    room = closed_room_or_404(request, room_name)
    form = MemberForm(request.POST or None)
    if request.method != "POST":
        return members_answer(request, room, form)
    if not form.is_valid():
        return members_answer(request, room, form, status=400)
    try:
        added = services.member_add(room=room, by=request.user, username=form.cleaned_data["username"])
    except PermissionDenied as denied:
        return members_answer(request, room, form, error=str(denied), status=403)
    except ValidationError as error:
        form.add_error("username", error)
        return members_answer(request, room, form, status=400)
    if request.htmx:
        return members_answer(request, room, MemberForm())
    messages.success(request, f"{added.user.get_username()} is a member now.")
    return redirect("chat:members", room_name=room.name)


def members_answer(
    request: HtmxHttpRequest, room: Room, form: MemberForm, *, error: str = "", status: int = 200
) -> HttpResponse:
    """The members page, or with htmx the members section alone (swapped in place)."""
    context = {
        "room": room,
        "title": room_title(room, request.user),
        "members": selectors.room_members(room=room),
        "is_owner": selectors.room_is_owned_by(room=room, user=request.user),
        "form": form,
        "error": error,
    }
    template = "chat/_members.html" if request.htmx else "chat/members.html"
    # htmx swaps only 2xx answers: an error comes back as the section with its message.
    return render(request, template, context, status=200 if request.htmx else status)


def member_target(username: str) -> Any:
    target = get_user_model().objects.filter(username=username).first()
    if target is None:
        raise Http404("There is no such member.")
    return target


def member_refused(request: HtmxHttpRequest, room: Room, change: Callable[[], Any]) -> HttpResponse | None:
    """Make a change to the members; if it is refused, the members section (or page) with the reason."""
    try:
        change()
    except PermissionDenied as denied:
        return members_answer(request, room, MemberForm(), error=str(denied), status=403)
    except ValidationError as error:
        return members_answer(request, room, MemberForm(), error=error.messages[0], status=400)
    return None


@require_http_methods(["POST"])
def member_remove(request: HtmxHttpRequest, room_name: str, username: str) -> HttpResponse:
    """An owner removes a member, or a member leaves (their own name)."""
    room = closed_room_or_404(request, room_name)
    target = member_target(username)
    if refused := member_refused(
        request, room, partial(services.member_remove, room=room, by=request.user, user=target)
    ):
        return refused
    if target.pk == request.user.pk:
        messages.success(request, f"You left {room.name}.")
        response = redirect("chat:lobby")
        if request.htmx:  # the room is gone for them: the whole page goes to the lobby
            response["HX-Redirect"] = response["Location"]
        return response
    if request.htmx:
        return members_answer(request, room, MemberForm())
    messages.success(request, f"{target.get_username()} is no longer a member.")
    return redirect("chat:members", room_name=room.name)


@require_http_methods(["POST"])
def member_owner(request: HtmxHttpRequest, room_name: str, username: str) -> HttpResponse:
    """An owner makes a member an owner too."""
    room = closed_room_or_404(request, room_name)
    target = member_target(username)
    if refused := member_refused(
        request, room, partial(services.member_make_owner, room=room, by=request.user, user=target)
    ):
        return refused
    if request.htmx:
        return members_answer(request, room, MemberForm())
    messages.success(request, f"{target.get_username()} is an owner now.")
    return redirect("chat:members", room_name=room.name)


@login_required
@require_http_methods(["GET"])
def direct(request: HtmxHttpRequest, username: str) -> HttpResponse:
    """The conversation between the reader and that user (their own name: notes to self): the room page."""
    other = get_user_model().objects.filter(username=username, is_active=True).first()
    if other is None:
        raise Http404("There is no such user.")
    room = services.direct_room_get_or_create(user=request.user, other=other)
    return room_page(request, room)


# Mentions: the inbox, and dismissing a notice.


@login_required
@require_GET
def mentions(request: HtmxHttpRequest) -> HttpResponse:
    """The messages that mention the reader, newest first, in the rooms they can read; `?before=<message id>`:
    the next page (by keyset)."""
    page = selectors.mention_inbox(user=request.user, before=message_id(request.GET.get("before")))
    return render(request, "chat/mentions.html", {"page": page, "zone_name": timezone.get_current_timezone_name()})


@login_required
@require_http_methods(["POST"])
def mention_seen(request: HtmxHttpRequest, message_pk: int) -> HttpResponse:
    """Dismiss the notice of a mention: with htmx, an empty answer (the notice is removed in place); without, back
    to the page it was on (or the inbox)."""
    if not services.mention_seen(user=request.user, message_id=message_pk):
        raise Http404("There is no such mention.")
    if request.htmx:
        return HttpResponse("")
    target = request.POST.get("next", "")
    own_site = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    if not own_site:
        target = reverse("chat:mentions")
    return redirect(target)
