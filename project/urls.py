from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("accounts/", include("chat.accounts.urls")),
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
