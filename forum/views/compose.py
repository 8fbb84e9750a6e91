"""`POST /compose/records`: turn a browser-signed event into the keysend payments to send.

The browser signs (NIP-07 or its own key) but does not encode TLV records itself: the one
encoder is `forum.protocol`, so the page can never drift from what the reconciler decodes.
This endpoint is pure computation (no writes): it verifies the event before anyone pays for
it, splits it into parts when it does not fit one onion, and spreads the amount over the
parts. It answers WebLN `customRecords` and the equivalent `lncli` command for each payment.
"""

from __future__ import annotations

import shlex

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from forum import nostr
from forum.views.jsonbody import MAX_MSAT, BadBody, json_object, whole_number

# A browser wallet's route to the forum node is unknown; size for 3 hops so a typical
# wallet -> LSP -> hub -> forum route still fits (the demo wallet's direct channel has room
# to spare). docs/protocol.md has the table per hop count.
BROWSER_ROUTE_HOPS = 3
MAX_BODY_BYTES = 256 * 1024


def split_amount(total_sat: int, parts: int) -> list[int]:
    """Spread ``total_sat`` over ``parts`` payments, at least 1 sat each (keysend needs > 0)."""
    total_sat = max(total_sat, parts)
    base, extra = divmod(total_sat, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def lncli_command(dest: str, amount_sat: int, records: dict[int, bytes]) -> str:
    from forum import protocol

    args = [
        "lncli",
        "sendpayment",
        "--keysend",
        "--dest",
        dest or "<forum node pubkey>",
        "--amt",
        str(amount_sat),
        "--data",
        protocol.lncli_data(records),
    ]
    return shlex.join(args)


def _plan(event_id: str, payments: list[dict[int, bytes]], amount_msat: int, dest: str) -> dict:
    from forum import protocol

    # WebLN and lncli both pay whole sats; round up so a quote in msat is never underpaid.
    amounts = split_amount(-(-amount_msat // 1000), len(payments))
    return {
        "event_id": event_id,
        "payments": [
            {
                "amount_sat": amount,
                "custom_records": protocol.to_webln(records),
                "lncli": lncli_command(dest, amount, records),
            }
            for amount, records in zip(amounts, payments, strict=True)
        ],
    }


@require_POST
def compose_records(request: HttpRequest) -> JsonResponse:
    """`{event, amount_msat, destination}` -> the payments that deliver the event;
    `{topup: event_id, amount_msat, destination}` -> the payment that tops it up."""
    from forum import protocol

    try:
        body = json_object(request, max_bytes=MAX_BODY_BYTES)
        amount_msat = whole_number(
            body.get("amount_msat", 0), name="amount_msat", minimum=1, maximum=MAX_MSAT
        )
        dest = str(body.get("destination", ""))
        topup = body.get("topup")
        event = None if topup else nostr.parse_event(body["event"], verify=True)
    except BadBody as exc:
        return exc.response()
    except nostr.EventError as exc:
        return JsonResponse({"error": f"{exc.code}: {exc.message}"}, status=400)
    except (KeyError, TypeError):
        return JsonResponse({"error": "expected {event, amount_msat, destination}"}, status=400)
    if topup:
        try:
            records = protocol.encode_topup(str(topup))
        except ValueError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse(_plan(str(topup), [records], amount_msat, dest))
    budget = protocol.onion_budget_for_records(BROWSER_ROUTE_HOPS)
    try:
        payments = protocol.split_event(event, budget=budget)
    except ValueError as exc:
        return JsonResponse({"error": f"too_large: {exc}"}, status=400)
    return JsonResponse(_plan(event.id, payments, amount_msat, dest))
