from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chat.realtime.process_stats import process_stats

urlpatterns = [
    path("accounts/", include("chat.accounts.urls")),
    # Staff log in through the same throttled page as everyone (per account and per address): the admin's
    # own log-in form has no throttle. `next` (the admin page asked for) goes along.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True), name="admin-login"),
    path("admin/", admin.site.urls),
    # Registry sizes for the benches only (404 unless CHAT_BENCH_STATS=1).
    path("internal/process-stats/", process_stats, name="process-stats"),
    path("", include("chat.urls")),
]
