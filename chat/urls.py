from django.urls import path

from chat import views
from chat.search import views as search_views

app_name = "chat"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("search/", search_views.search, name="search"),
    path("rooms/new/", views.room_new, name="room-new"),
    path("dm/<str:username>/", views.direct, name="direct"),
    path("mentions/", views.mentions, name="mentions"),
    path("mentions/<int:message_pk>/seen/", views.mention_seen, name="mention-seen"),
    path("chat/<str:room_name>/", views.room, name="room"),
    path("chat/<str:room_name>/messages/<int:pk>/", views.message, name="message"),
    path("chat/<str:room_name>/messages/<int:pk>/edit/", views.message_edit, name="message-edit"),
    path("chat/<str:room_name>/messages/<int:pk>/delete/", views.message_delete, name="message-delete"),
    path("chat/<str:room_name>/members/", views.members, name="members"),
    path("chat/<str:room_name>/members/<str:username>/remove/", views.member_remove, name="member-remove"),
    path("chat/<str:room_name>/members/<str:username>/owner/", views.member_owner, name="member-owner"),
    path("chat/<str:room_name>/users/<str:username>/deactivate/", views.user_deactivate, name="user-deactivate"),
]
