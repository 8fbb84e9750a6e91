"""Websocket URL map."""

from django.urls import re_path

from forum.consumers import LiveConsumer
from forum.relay.consumer import RelayConsumer

websocket_urlpatterns = [
    re_path(
        r"^ws/(?P<scope>board|thread|status|feed|inbox)/(?P<key>[0-9A-Za-z_-]{1,80})/$",
        LiveConsumer.as_asgi(),
    ),
]

# Served without the origin check (see config/asgi.py): Nostr clients connect from anywhere.
relay_websocket_urlpatterns = [re_path(r"^relay/?$", RelayConsumer.as_asgi())]
