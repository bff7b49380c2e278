from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat import views
from chat.forms import LoginForm

# Only the account pages that work without mail: no password reset (there is no mail set up).
urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/settings/", views.account_settings, name="account-settings"),
    path("accounts/me.css", views.viewer_css, name="viewer-css"),
    # Django's log-in view, throttled, with a form that puts the focus on its first error.
    path("accounts/login/", views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
