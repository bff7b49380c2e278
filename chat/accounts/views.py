"""Account pages: sign-up, the throttled log-in, settings, and the signed-in reader's own stylesheet."""

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from chat import selectors, services
from chat.accounts.forms import SignupForm, TimeZoneForm
from chat.protection import limits
from chat.views import HtmxHttpRequest


@require_http_methods(["GET", "POST"])
def signup(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST" and not limits.hit("signups_per_ip", limits.request_ip(request)):
        return too_many_attempts(request, "Too many sign-ups from your network. Try again in an hour.")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, f"Welcome, {user.get_username()}.")
        return redirect(safe_next(request) or "chat:lobby")
    return render(request, "registration/signup.html", {"form": form, "next": safe_next(request)})


class LoginView(auth_views.LoginView):
    """Django's log-in page, throttled: after too many failed attempts for an account, or from one
    address, it answers 429 without checking the password (which also spares the CPU its hashing)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username, ip = request.POST.get("username", ""), limits.request_ip(request)
        if limits.reached("login_failures_per_account", username) or limits.reached("login_failures_per_ip", ip):
            return too_many_attempts(request, "Too many failed log-ins. Wait 15 minutes, then try again.")
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        limits.hit("login_failures_per_account", self.request.POST.get("username", ""))
        limits.hit("login_failures_per_ip", limits.request_ip(self.request))
        return super().form_invalid(form)


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
    rendered once for everyone): Edit and Delete on their own, Delete and Remove user on all for staff."""
    response = render(request, "accounts/viewer.css", {"viewer": request.user}, content_type="text/css")
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ["Cookie"])
    return response
