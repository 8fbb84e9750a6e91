"""Files browsers ask for at fixed paths, outside any app."""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.http import FileResponse, HttpRequest
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET


@require_GET
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> FileResponse:
    """/favicon.ico: browsers ask for it on pages without an icon link (the raw JSON, the
    moderation console) and log a 404 otherwise. Our icon is an SVG; they take it here too."""
    return FileResponse(open(finders.find("forum/favicon.svg"), "rb"), content_type="image/svg+xml")
