"""`/i/<pubkey>.svg`: an author's identicon (forum.identicon), generated here, cached for ever
by browsers and proxies (it is a pure function of the key)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from forum.identicon import identicon_svg


@require_GET
def identicon(request: HttpRequest, pubkey: str) -> HttpResponse:
    response = HttpResponse(identicon_svg(pubkey.lower()), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
