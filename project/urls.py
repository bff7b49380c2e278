from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat import views
from chat.forms import LoginForm

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/settings/", views.account_settings, name="account-settings"),
    path("accounts/me.css", views.viewer_css, name="viewer-css"),
    # Django's log-in view with a form that puts the focus on its first error.
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
