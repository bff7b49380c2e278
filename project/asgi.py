"""ASGI entry point: HTTP goes to Django, WebSockets to the chat consumers.

The Django ASGI app is built first so that apps are loaded before the routing
(and with it the models) is imported, as Channels' tutorial does.
"""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.protection import backpressure  # noqa: E402
from chat.protection.origins import ExactOriginValidator  # noqa: E402
from chat.realtime import collector  # noqa: E402
from chat.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ExactOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)

if "daphne.ws_protocol" in sys.modules:  # served by daphne
    backpressure.install()  # bound what a socket may buffer
    collector.install()  # thousands of sockets: collect garbage in big steps, never what start-up loaded
