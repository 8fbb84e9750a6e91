"""Site-wide HTTP behaviour that no single view owns: HEAD requests and the page's CSP.

docs/security.md explains the policy and why it leaves Nostr (NIP-07) and WebLN browser
extensions working.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin


class HeadAsGetMiddleware(MiddlewareMixin):
    """Answer HEAD exactly like GET, without the body (RFC 9110, 9.3.2).

    The views declare `@require_GET`, which alone would refuse HEAD with 405. Rather than every
    view listing HEAD, the request reaches the view as GET and the body is dropped here, so the
    status and every header (Content-Length, Content-Type, caching, CSP) are those of the GET.
    Methods other than HEAD pass untouched, so HEAD on a POST-only view is still a 405.
    """

    def process_request(self, request: HttpRequest) -> None:
        if request.method == "HEAD":
            request.method = "GET"

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        # META keeps the method the client sent; request.method is what the views saw.
        if request.META.get("REQUEST_METHOD") != "HEAD":
            return response
        request.method = "HEAD"
        if response.streaming:
            response.streaming_content = []  # the resource is still closed by the handler
        else:
            if not response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
            response.content = b""
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with websockets to the page's own host added to connect-src.

    CSP Level 3 lets 'self' match ws: and wss: on the same host, but browsers that predate that
    rule (older Safari releases among them) need the websocket origin spelled out, and the host
    is only known per request. A host Django refused (DisallowedHost) gets the policy without it.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()  # validated against ALLOWED_HOSTS: no spaces or ';'
        except DisallowedHost:
            return parts
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), f"ws://{host}", f"wss://{host}"]
        parts.update = update
        return parts
