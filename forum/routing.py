"""Websocket URL map."""

from django.urls import re_path

from forum.consumers import LiveConsumer

websocket_urlpatterns = [
    re_path(
        r"^ws/(?P<scope>board|thread|status)/(?P<key>[0-9A-Za-z_-]{1,80})/$", LiveConsumer.as_asgi()
    ),
]
