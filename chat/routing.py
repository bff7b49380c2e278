from django.urls import re_path

from . import consumers, lobby

# Any name reaches the consumer, which refuses a bad one with a close code the
# browser does not retry (a routing failure would look like a network error).
websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>[^/]+)/$", consumers.ChatConsumer.as_asgi()),
    re_path(r"^ws/lobby/$", lobby.LobbyConsumer.as_asgi()),
]
