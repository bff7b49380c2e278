from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("accounts/", include("chat.accounts.urls")),
    # Staff log in through the same throttled page as everyone (per account and per address): the admin's
    # own log-in form has no throttle. `next` (the admin page asked for) goes along.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True), name="admin-login"),
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
