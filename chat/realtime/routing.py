from django.urls import re_path

from chat.realtime import consumers, lobby
from chat.realtime.handshake import SocketAuthMiddleware

# Any name reaches the consumer, which refuses a bad one with a close code the
# browser does not retry (a routing failure would look like a network error).
# Auth sits inside the routing, so the scope copy each socket keeps is its own (see SocketAuthMiddleware).
websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>[^/]+)/$", SocketAuthMiddleware(consumers.ChatConsumer.as_asgi())),
    re_path(r"^ws/lobby/$", SocketAuthMiddleware(lobby.LobbyConsumer.as_asgi())),
]
