"""Account pages: sign-up (open, by invitation or closed), staff's invitations, the throttled log-in, settings,
and the signed-in reader's own stylesheet."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UsernameField
from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import selectors, services
from chat.accounts import invitations
from chat.accounts.forms import SignupForm, TimeZoneForm
from chat.models import Invitation
from chat.protection import limits
from chat.views import HtmxHttpRequest

SIGNUP_CLOSED = "Sign-up is closed: accounts are made by a staff member. Ask one for yours."


@require_http_methods(["GET", "POST"])
def signup(request: HtmxHttpRequest) -> HttpResponse:
    """The sign-up form, as CHAT_SIGNUP allows: to anyone (`open`), to the holder of a usable invitation
    link `?invite=<token>` (`invite`), or to nobody (`closed`). A refusal is a page saying why, and stores nothing."""
    if settings.CHAT_SIGNUP == "closed":
        return signup_refused(request, SIGNUP_CLOSED)
    if request.method == "POST" and not limits.hit("signups_per_ip", limits.request_ip(request)):
        return too_many_attempts(request, "Too many sign-ups from your network. Try again in an hour.")
    invite = (request.POST.get("invite") or request.GET.get("invite")) if settings.CHAT_SIGNUP == "invite" else None
    if settings.CHAT_SIGNUP == "invite":
        try:
            invitations.invitation_check(token=invite)
        except invitations.InvitationRefused as refused:
            return signup_refused(request, str(refused))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if settings.CHAT_SIGNUP == "invite":
            try:
                user = invitations.invitation_redeem(token=invite, form=form)
            except invitations.InvitationRefused as refused:  # used up since the check, by a sign-up at once
                return signup_refused(request, str(refused))
        else:
            user = form.save()
        login(request, user)
        messages.success(request, f"Welcome, {user.get_username()}.")
        return redirect(safe_next(request) or "chat:lobby")
    context = {"form": form, "next": safe_next(request), "invite": invite}
    return render(request, "registration/signup.html", context)


def signup_refused(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "registration/signup_refused.html", {"reason": reason}, status=403)


@login_required
@require_http_methods(["GET", "POST"])
def invites(request: HtmxHttpRequest) -> HttpResponse:
    """Staff, when CHAT_SIGNUP=invite: their invitations, and a button making a new one. The new link is on the
    page that answers the button, once: only a hash of its token is kept."""
    if not request.user.is_staff or settings.CHAT_SIGNUP != "invite":
        raise Http404("There is no such page.")
    link = None
    if request.method == "POST":
        _, token = invitations.invitation_create(by=request.user)
        link = request.build_absolute_uri(f"{reverse('signup')}?invite={token}")
    context = {
        "invitations": invitations.invitations_made(by=request.user),
        "link": link,
        "days": settings.CHAT_INVITATION_DAYS,
        "now": timezone.now(),
    }
    return render(
        request,
        "accounts/invites.html",
        context,
    )


@login_required
@require_POST
def invite_revoke(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Staff: withdraw one of their unused invitations; its link then leads to a refusal."""
    if not request.user.is_staff or settings.CHAT_SIGNUP != "invite":
        raise Http404("There is no such page.")
    try:
        invitations.invitation_revoke(invitation_id=pk, by=request.user)
    except Invitation.DoesNotExist:
        raise Http404("There is no such unused invitation of yours.") from None
    messages.success(request, "The invitation was withdrawn: its link no longer works.")
    return redirect("invites")


class LoginView(auth_views.LoginView):
    """Django's log-in page, throttled: after too many failed attempts for an account, or from one
    address, it answers 429 without checking the password (which also spares the CPU its hashing)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        account, ip = throttled_account(request.POST.get("username", "")), limits.request_ip(request)
        if limits.reached("login_failures_per_account", account) or limits.reached("login_failures_per_ip", ip):
            return too_many_attempts(request, "Too many failed log-ins. Wait 15 minutes, then try again.")
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        limits.hit("login_failures_per_account", throttled_account(self.request.POST.get("username", "")))
        limits.hit("login_failures_per_ip", limits.request_ip(self.request))
        return super().form_invalid(form)


def throttled_account(posted: str) -> str:
    """The account a log-in attempt is counted against: the name as the form reads it (stripped and
    NFKC-normalised, by Django's own UsernameField), case-folded, so `alice\t` or a full-width alice is alice."""
    return UsernameField().to_python(posted).casefold()


def too_many_attempts(request: HttpRequest, reason: str) -> HttpResponse:
    response = render(request, "429.html", {"reason": reason}, status=429)
    response["Retry-After"] = "60"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def account_settings(request: HtmxHttpRequest) -> HttpResponse:
    """The signed-in user's reading preferences: the time zone messages are shown in."""
    current = selectors.user_time_zone(user=request.user)
    form = TimeZoneForm(request.POST or None, initial={"time_zone": current})
    if request.method == "POST" and form.is_valid():
        zone_name = services.time_zone_set(user=request.user, time_zone=form.cleaned_data["time_zone"])
        request.session["time_zone"] = zone_name
        messages.success(request, f"Times are now shown in {zone_name}.")
        return redirect(safe_next(request) or "account-settings")
    status = 400 if form.is_bound else 200
    return render(request, "accounts/settings.html", {"form": form, "next": safe_next(request)}, status=status)


def safe_next(request: HttpRequest) -> str:
    """The `next` page to return to, if it is on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


@require_GET
def viewer_css(request: HttpRequest) -> HttpResponse:
    """The signed-in reader's own stylesheet: it shows the controls they may use on the messages (which are
    rendered once for everyone): Edit and Delete on their own, Delete and Remove user on all for staff.

    It says who the reader is, so only this site's own pages get it: a page of another origin (a sibling
    subdomain too: SameSite=Lax cookies reach it) that links it gets an empty stylesheet. Browsers say who
    asks in Sec-Fetch-Site; a request without it (not a browser's subresource) is not cross-site.
    """
    own_page = request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
    viewer = request.user if own_page else AnonymousUser()
    response = render(request, "accounts/viewer.css", {"viewer": viewer}, content_type="text/css")
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ["Cookie", "Sec-Fetch-Site"])
    return response
