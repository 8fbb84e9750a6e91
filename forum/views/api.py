"""JSON API for clients and the composer: the quote, a message's status, invoices for posts.
Thin adapters."""

from __future__ import annotations

import re

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from forum.selectors.status import message_status, status_unknown
from forum.services import balance as balances
from forum.services import invoices
from forum.services.quote import QuoteError, quote_for
from forum.views.jsonbody import BadBody, json_object, refusal

_KEY = re.compile(r"[0-9a-fA-F]{64}")


@require_GET
def quote(request: HttpRequest) -> JsonResponse:
    try:
        body = quote_for(
            board_slug=request.GET.get("board", ""),
            pubkey=request.GET.get("pubkey", ""),
            kind=request.GET.get("kind"),
        )
    except QuoteError as exc:
        return JsonResponse({"error": exc.message, "field": exc.field}, status=exc.status)
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"  # prices move with every accepted post
    return response


@require_GET
def balance(request: HttpRequest) -> JsonResponse:
    """A pubkey's relay balance, the ledger rows behind it, and how to fund it (docs/relay.md)."""
    try:
        pubkey = balances.pubkey_parse(request.GET.get("pubkey", ""))
    except balances.BalanceError as exc:
        return JsonResponse({"error": str(exc), "field": "pubkey"}, status=400)
    response = JsonResponse(balances.balance_report(pubkey))
    response["Cache-Control"] = "no-store"  # every charge and credit moves it
    response["Access-Control-Allow-Origin"] = "*"  # Nostr clients on other origins ask too
    return response


@require_GET
def status(request: HttpRequest, key: str) -> JsonResponse:
    if _KEY.fullmatch(key) is None:
        return JsonResponse({"error": "expected an event id or payment hash (64 hex)"}, status=400)
    body = message_status(key=key)
    if body is None:
        # Not (yet) paid: a composer keeps polling; the shape stays the same.
        response = JsonResponse(status_unknown(key.lower()), status=404)
    else:
        response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    return response


# A signed event with the largest content any board allows, with room to spare.
MAX_INVOICE_BODY_BYTES = 256 * 1024


@csrf_exempt  # no cookie or session is used: any client (forum.client, a script) may ask
@require_POST
def invoice(request: HttpRequest) -> JsonResponse:
    """`{event}` -> a BOLT11 invoice for posting it, or `{error, reason}` saying why not."""
    try:
        body = json_object(request, max_bytes=MAX_INVOICE_BODY_BYTES)
        if "event" not in body:
            raise BadBody("expected {event: <the signed event>}")
        # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
        issued = invoices.invoice_for_post(
            event=body["event"], client_ip=request.META.get("REMOTE_ADDR", "")
        )
    except BadBody as exc:
        return exc.response()
    except invoices.InvoiceError as exc:
        return refusal(exc)
    response = JsonResponse(issued.as_dict(), status=200 if issued.reused else 201)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_POST
def balance_invoice(request: HttpRequest) -> JsonResponse:
    """`{pubkey, amount_sats}` -> a BOLT11 invoice that funds the pubkey's relay balance."""
    try:
        body = json_object(request, max_bytes=4096)
        pubkey = balances.pubkey_parse(str(body.get("pubkey", "")))
        issued = balances.credit_invoice(
            pubkey=pubkey,
            amount_sats=body.get("amount_sats"),
            client_ip=request.META.get("REMOTE_ADDR", ""),
        )
    except BadBody as exc:
        return exc.response()
    except balances.BalanceError as exc:
        status = 429 if str(exc).startswith("rate-limited") else 400
        return JsonResponse({"error": str(exc)}, status=status)
    except invoices.InvoiceError as exc:
        return refusal(exc)
    response = JsonResponse(issued, status=201)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def invoice_qr(request: HttpRequest, payment_hash: str) -> HttpResponse:
    """An issued invoice as an SVG QR code (`lightning:` URI), for the composer's image."""
    svg = invoices.invoice_qr_svg(payment_hash) if _KEY.fullmatch(payment_hash) else None
    if svg is None:
        raise Http404("no such invoice")
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=600"
    return response
