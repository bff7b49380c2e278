"""ASGI app for the reference consumer, built as the tutorial's mysite/asgi.py builds it.

Same settings as the project (DJANGO_SETTINGS_MODULE, so the same channel layer,
REDIS_URL and CHANNEL_LAYER), same middleware stack; only the routing differs.
Served by: daphne tests.bench.tutorial_asgi:application
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from .tutorial_consumer import ChatConsumer  # noqa: E402

websocket_urlpatterns = [
    re_path(r"ws/chat/(?P<room_name>\w+)/$", ChatConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
