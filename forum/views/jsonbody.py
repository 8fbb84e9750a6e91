"""Reading a JSON request body: the one parser every JSON endpoint uses; and the one
`{error, reason}` answer of an endpoint that issues an invoice and was refused one (`refusal`).

A hostile body must get a 400 with a reason, never a 500: `Infinity`, `NaN` and duplicate keys
are refused by `nostr.loads_strict` (the same strict parser that reads signed events), nesting
past Python's recursion limit is refused there too, and `1e400` (which JSON parses as a float
infinity) is refused by `whole_number` before `int()` could overflow.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from forum import nostr
from forum.services.invoices import InvoiceError

# Every bitcoin there will ever be, in msat: no amount a client sends can be larger.
MAX_MSAT = 21_000_000 * 100_000_000 * 1000


class BadBody(ValueError):
    """A request body the endpoint will not use; `response()` is the answer to send."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status

    def response(self) -> JsonResponse:
        return JsonResponse({"error": self.reason}, status=self.status)


def refusal(exc: InvoiceError) -> JsonResponse:
    """`{error, reason}` with the refusal's status, and `Retry-After` when it says when."""
    response = JsonResponse({"error": exc.message, "reason": exc.reason}, status=exc.status)
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def json_object(request: HttpRequest, *, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object, or `BadBody` saying what is wrong with it."""
    if len(request.body) > max_bytes:
        raise BadBody(f"request body too large (limit {max_bytes} bytes)", status=413)
    try:
        body = nostr.loads_strict(request.body)
    except nostr.EventError as exc:
        raise BadBody(f"bad request body: {exc.message}") from None
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    return body


def whole_number(value: Any, *, name: str, minimum: int, maximum: int) -> int:
    """`value` (a JSON integer, an integral float or decimal digits) within the bounds."""
    integral_float = isinstance(value, float) and value.is_integer()  # False for inf and nan
    digits = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 30
    if integral_float or digits:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadBody(f"{name} must be a whole number")
    number = value
    if not minimum <= number <= maximum:
        raise BadBody(f"{name} must be from {minimum} to {maximum}")
    return number
