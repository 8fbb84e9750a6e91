"""The demo wallet's HTTP side (DEMO_MODE only): a WebLN `keysend` and `sendPayment` backed by
simnet's `alice`.

static/forum/demo-wallet.js installs a `window.webln` whose `keysend()` POSTs here; this view
pays for real over gRPC from the demo user's simnet node to the forum node. It is a dev tool:
404 unless DEMO_MODE is on, and CSRF-protected like any other POST (the page sends the token).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from forum.services import demo
from forum.views.jsonbody import MAX_MSAT, BadBody, json_object, whole_number

# A keysend's custom records fit in one onion: a few kB of JSON at most.
MAX_BODY_BYTES = 64 * 1024


def _require_demo() -> None:
    if not settings.DEMO_MODE:
        raise Http404("demo mode is off")


@require_POST
def keysend(request: HttpRequest) -> JsonResponse:
    _require_demo()
    try:
        body = json_object(request, max_bytes=MAX_BODY_BYTES)
        destination = str(body["destination"])
        amount_sat = whole_number(
            body.get("amount"), name="amount", minimum=1, maximum=MAX_MSAT // 1000
        )
        records = body.get("customRecords") or {}
        if not isinstance(records, dict):
            raise TypeError("customRecords must be an object")
        custom_records = {int(k): str(v) for k, v in records.items()}
    except BadBody as exc:
        return exc.response()
    except (ValueError, KeyError, TypeError) as exc:
        return JsonResponse({"error": f"bad request: {exc}"}, status=400)
    return _paid(
        lambda: demo.demo_keysend(
            destination=destination, amount_sat=amount_sat, custom_records=custom_records
        )
    )


@require_POST
def pay_invoice(request: HttpRequest) -> JsonResponse:
    """WebLN `sendPayment(paymentRequest)`: pay one of the forum's invoices from `alice`."""
    _require_demo()
    try:
        body = json_object(request, max_bytes=MAX_BODY_BYTES)
        payment_request = str(body["paymentRequest"])
    except BadBody as exc:
        return exc.response()
    except (KeyError, TypeError) as exc:
        return JsonResponse({"error": f"bad request: {exc}"}, status=400)
    return _paid(lambda: demo.demo_pay_invoice(payment_request=payment_request))


def _paid(pay: Callable[[], demo.DemoPayment]) -> JsonResponse:
    """WebLN's answer to a payment (`preimage`, `payment_hash`), or `{error}` saying why not."""
    try:
        result = pay()
    except demo.DemoWalletError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"preimage": result.preimage, "payment_hash": result.payment_hash})


@require_GET
def wallet(request: HttpRequest) -> JsonResponse:
    """The demo wallet's identity and spendable balance, for the label in the page."""
    _require_demo()
    try:
        info = demo.demo_wallet_info()
    except demo.DemoWalletError as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    return JsonResponse(
        {"pubkey": info.pubkey, "alias": info.alias, "balance_sat": info.balance_sat}
    )
