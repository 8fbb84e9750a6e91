"""The forum's URLs plus `/bench/bare`: a view that does no work (the floor to compare with).

`ColdPages` makes a request cold on demand: with the header `X-Bench-Cold: 1` every page
version changes first, as after a publish, so the page is rendered again (its post cards, keyed
by event, stay cached, as they do after a real publish).
"""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


class ColdPages:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.headers.get("X-Bench-Cold") == "1":
            from forum.services.versions import versions_reset_now

            versions_reset_now()
        return self.get_response(request)


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare", bare),
    path("", include("config.urls")),
]
