"""ASGI entry point: HTTP to Django, websockets to the forum's consumers (served by daphne)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from forum.routing import relay_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402
from forum.wsframes import ServerSendInScope  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                # The Nostr relay is public and read-only, and its clients send no Origin or a
                # foreign one, so it is routed before (around) the origin check.
                *relay_websocket_urlpatterns,
                re_path(
                    r"^",
                    # Outermost, so the live hub can write pre-encoded frames to daphne's socket.
                    ServerSendInScope(
                        AllowedHostsOriginValidator(
                            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
                        )
                    ),
                ),
            ]
        ),
    }
)
