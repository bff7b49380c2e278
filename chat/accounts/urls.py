"""The account pages that work without mail: no password reset (there is no mail set up)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from chat.accounts import views
from chat.accounts.forms import LoginForm

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("invites/", views.invites, name="invites"),
    path("invites/<int:pk>/revoke/", views.invite_revoke, name="invite-revoke"),
    path("settings/", views.account_settings, name="account-settings"),
    path("me.css", views.viewer_css, name="viewer-css"),
    # Django's log-in view, throttled, with a form that puts the focus on its first error.
    path("login/", views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]
