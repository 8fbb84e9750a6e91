"""LNURL-pay (LUD-06), Lightning Addresses (LUD-16), NIP-57 zaps and the Tip button's invoice.
Thin adapters over `forum.services.lnurl`.

- `GET /.well-known/lnurlp/<npub>`: an author's Lightning Address (`npub…@<host>`);
- `GET /lnurlp/e/<event id>`: one post's own pay endpoint (its `LNURL1…` is on the post);
- their callbacks `…/callback?amount=<msat>[&nostr=<zap request>]` answer `{"pr", "routes"}`;
- `POST /api/tip` `{event_id, amount_sats[, method: "keysend"]}`: the Tip button's invoice (a
  readable memo), or the keysend that carries the `tip` record.

LNURL errors are `{"status": "ERROR", "reason": …}` (LUD-06) with a 4xx status; every answer
allows any origin (LUD-01: wallets in browsers fetch it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from forum import zaps
from forum.services import lnurl
from forum.services.invoices import intent_dict
from forum.views.jsonbody import BadBody, json_object, refusal


def _json(body: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "no-store"
    return response


def _error(exc: lnurl.TipError) -> JsonResponse:
    response = _json({"status": "ERROR", "reason": exc.message, "code": exc.reason}, exc.status)
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _amount(request: HttpRequest) -> int:
    value = request.GET.get("amount", "")
    if not value.isdigit() or len(value) > 18:
        raise lnurl.TipError(
            "invalid: amount (in millisatoshis) is missing or not a whole number",
            reason="bad_amount",
        )
    return int(value)


def _callback(request: HttpRequest, target: lnurl.PayTarget) -> JsonResponse:
    amount_msat = _amount(request)
    intent = lnurl.tip_invoice(
        target=target,
        amount_msat=amount_msat,
        client_ip=request.META.get("REMOTE_ADDR", ""),
        host=request.get_host(),
        zap_request=request.GET.get("nostr", ""),
    )
    return _json({"pr": intent.payment_request, "routes": []})


def _pay_info(
    request: HttpRequest, key: str, target_of: Callable[[str], lnurl.PayTarget], callback_url: str
) -> JsonResponse:
    """The LUD-06 first answer for the pay endpoint `key` names (an npub or a post's id)."""
    try:
        target = target_of(key)
    except lnurl.TipError as exc:
        return _error(exc)
    callback = request.build_absolute_uri(reverse(callback_url, args=[key]))
    return _json(lnurl.pay_info(target, callback=callback, host=request.get_host()))


@require_GET
def address(request: HttpRequest, name: str) -> JsonResponse:
    return _pay_info(request, name, lnurl.author_target, "lnurlp-address-callback")


@require_GET
def address_callback(request: HttpRequest, name: str) -> JsonResponse:
    try:
        zap_text = request.GET.get("nostr", "")
        event_id = ""
        if zap_text:
            # The zap's post (e tag) is where the sats go; the full check follows.
            try:
                event_id = zaps.zap_request_parse(zap_text, amount_msat=_amount(request)).event_id
            except zaps.ZapRequestError as exc:
                raise lnurl.TipError(f"invalid: {exc.text}", reason=exc.code) from None
        return _callback(request, lnurl.author_target(name, event_id=event_id))
    except lnurl.TipError as exc:
        return _error(exc)


@require_GET
def post(request: HttpRequest, event_id: str) -> JsonResponse:
    return _pay_info(request, event_id, lnurl.post_target, "lnurlp-post-callback")


@require_GET
def post_callback(request: HttpRequest, event_id: str) -> JsonResponse:
    try:
        return _callback(request, lnurl.post_target(event_id))
    except lnurl.TipError as exc:
        return _error(exc)


@csrf_exempt  # no cookie or session is used: any page or script may ask for a tip invoice
@require_POST
def tip(request: HttpRequest) -> JsonResponse:
    """`{event_id, amount_sats}` -> a tip invoice (payment request, QR, status) or `{error}`;
    with `"method": "keysend"` the keysend to send instead (node, `tip` record, lncli)."""
    try:
        body = json_object(request, max_bytes=4096)
        amount = body.get("amount_sats")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise BadBody("expected {event_id, amount_sats: <whole number of sats>}")
        target = lnurl.post_target(str(body.get("event_id", "")))
        if body.get("method") == "keysend":
            plan = lnurl.tip_keysend_plan(target=target, amount_msat=amount * 1000)
            return JsonResponse({"keysend": plan}, status=200)
        intent = lnurl.tip_invoice(
            target=target,
            amount_msat=amount * 1000,
            client_ip=request.META.get("REMOTE_ADDR", ""),
            memo=lnurl.tip_memo(target, host=request.get_host()),
        )
    except BadBody as exc:
        return exc.response()
    except lnurl.TipError as exc:
        return refusal(exc)
    body = intent_dict(intent)
    body["qr_url"] = reverse("api-invoice-qr", args=[intent.payment_hash])
    body["status_url"] = reverse("api-status", args=[intent.payment_hash])
    response = JsonResponse(body, status=201)
    response["Cache-Control"] = "no-store"
    return response
