"""Tips paid by invoice: the Tip button's invoices, LNURL-pay (LUD-06), Lightning Addresses
(LUD-16) and NIP-57 zaps.

Every author has a Lightning Address on the forum, `<npub>@<forum host>`, and every public
post a pay endpoint of its own. Both answer the LUD-06 first step (`pay_info`) and, at the
callback, an ordinary invoice (AddInvoice, not a hold invoice: a tip for a visible post has
nothing to refuse once paid, and if the post is hidden meanwhile the tip is kept as a rejection
like a keysend tip) issued through `forum.services.invoices.intent_issue` with the `tip`
records of `forum.protocol`. The settled invoice's ledger row carries those records, so the tip
goes through the one pipeline: ledger -> reconcile -> `verdict.target_decide` -> the thread's
sats and the author's forward, exactly like a keysend tip.

A Lightning Address sends its sats to the author's newest public post (thread or reply): a tip
here always belongs to a post, and that is where readers see it. A zap request (kind 9734)
that comes with the callback is checked by `forum.zaps` (NIP-57 appendix D) and here: its `p`
tag must be the author served by that endpoint, its `e` tag (when present) a public post by
that author. The invoice's description hash then commits to the zap request instead of the
metadata, and the zap receipt is signed when the tip is reconciled
(`forum.ingest.tips.zap_receipt_prepare`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q

from forum import nostr, protocol, zaps
from forum.ingest import verdict
from forum.ingest.lookups import LiveLookups
from forum.ingest.rejections import rejection_message
from forum.models import Author, Event, InvoiceIntent
from forum.relay_key import relay_pubkey
from forum.services import identity, invoices
from forum.services.moderation import throttle

POST_KINDS = (nostr.KIND_THREAD, nostr.KIND_REPLY)


class TipError(invoices.InvoiceError):
    """No tip invoice: `reason` for programs, `message` for people, `status` for HTTP."""

    def __init__(self, message: str, *, reason: str, status: int = 400, retry_after: int = 0):
        super().__init__(message, reason=reason, status=status, retry_after=retry_after)


@dataclass(frozen=True)
class PayTarget:
    """What a pay endpoint pays: a post (`event_id`) by `pubkey`; `name` for an address."""

    event_id: str
    pubkey: str
    title: str
    name: str = ""  # the Lightning Address's name (an npub), "" for a post's own endpoint

    @property
    def npub(self) -> str:
        return nostr.npub_encode(self.pubkey)


def amount_bounds() -> tuple[int, int]:
    low = max(int(getattr(settings, "TIP_MIN_MSAT", 1000)), 1000)
    return low, max(int(getattr(settings, "TIP_MAX_MSAT", 10**9)), low)


def _public_posts() -> Any:
    """Published posts on listed boards (never a private room's), not hidden."""
    return Event.objects.filter(
        Q(kind=nostr.KIND_THREAD, thread__is_hidden=False)
        | Q(kind=nostr.KIND_REPLY, post__is_hidden=False, post__thread__is_hidden=False),
        state=Event.State.PUBLISHED,
        board__is_listed=True,
        board__destroyed_at__isnull=True,
        board__password_verifier="",
    )


def _title(event: Event) -> str:
    if event.kind == nostr.KIND_THREAD:
        thread = getattr(event, "thread", None)
        title = getattr(thread, "title", "") or ""
        return f'the thread "{title[:60]}"' if title else "a thread"
    return "a reply"


def _tippable(event_id: str) -> Event:
    """The post if the tip verdict would take a tip for it now, else `TipError`."""
    decided = verdict.target_decide(protocol.TipMessage(event_id), lookups=LiveLookups())
    event = decided.existing
    if decided.action != verdict.Action.ACCEPT or event is None or event.kind not in POST_KINDS:
        finding = decided.finding
        message = (
            rejection_message(finding.reason, event_id=event_id, **finding.context)
            if finding is not None
            else "invalid: only threads and replies take tips"
        )
        raise TipError(message, reason=finding.reason if finding else "unknown_target", status=404)
    if not _public_posts().filter(pk=event.pk).exists():
        raise TipError(
            "invalid: this post has no public pay endpoint (a private room's post takes tips"
            " by keysend only: `forum.client tip`)",
            reason="not_public",
            status=404,
        )
    return event


def post_target(event_id: str) -> PayTarget:
    event_id = event_id.lower()
    if len(event_id) != 64 or any(c not in "0123456789abcdef" for c in event_id):
        raise TipError("invalid: a post is named by its 64-character hex event id", reason="bad_id")
    event = _tippable(event_id)
    return PayTarget(event_id=event.event_id, pubkey=event.pubkey, title=_title(event))


def author_pubkey(name: str) -> str:
    """The author a Lightning Address name stands for: an npub, or the name a moderator gave
    the author on this forum (the NIP-05 `name@<forum host>`); `TipError` when none."""
    name = name.strip().lower()
    if name.startswith("npub1"):
        try:
            return nostr.npub_decode(name)
        except nostr.EventError:
            pass
    elif name:
        local = Author.objects.filter(nip05_local=name).values_list("pubkey", flat=True).first()
        if local:
            return local
    raise TipError(
        f"invalid: {name[:80]!r} is not an author here (addresses are npub1…@ this forum)",
        reason="unknown_name",
        status=404,
    )


def author_target(name: str, *, event_id: str = "") -> PayTarget:
    """An author's address: their post `event_id` (a zap's `e` tag) or their newest one."""
    pubkey = author_pubkey(name)
    if event_id:
        target = post_target(event_id)
        if target.pubkey != pubkey:
            raise TipError(
                "invalid: the zapped post (e tag) is not by the author of this address",
                reason="foreign_e_tag",
            )
        return PayTarget(target.event_id, pubkey, target.title, name=name)
    newest = (
        _public_posts()
        .filter(pubkey=pubkey)
        .select_related("thread")
        .order_by("-accepted_at", "-id")
        .first()
    )
    if newest is None:
        raise TipError(
            "invalid: this author has no public post here yet, so nothing to send sats to",
            reason="no_posts",
            status=404,
        )
    return PayTarget(newest.event_id, pubkey, "the author's posts", name=name)


def metadata_for(target: PayTarget, *, host: str) -> str:
    """LUD-06 metadata, the same bytes at the first step and the callback (they are hashed)."""
    if target.name:
        return zaps.lnurl_metadata(
            text=f"Sats for {target.npub[:16]}… on {host}", identifier=f"{target.name}@{host}"
        )
    return zaps.lnurl_metadata(text=f"Tip for {target.title} ({target.event_id[:12]}) on {host}")


def pay_info(target: PayTarget, *, callback: str, host: str) -> dict[str, Any]:
    """The LUD-06 first answer (`payRequest`), with NIP-57's `allowsNostr` and `nostrPubkey`."""
    low, high = amount_bounds()
    return {
        "tag": "payRequest",
        "callback": callback,
        "minSendable": low,
        "maxSendable": high,
        "metadata": metadata_for(target, host=host),
        "allowsNostr": True,
        "nostrPubkey": relay_pubkey(),
    }


def _throttle(client: str) -> None:
    limit = int(getattr(settings, "TIP_INVOICE_MAX_PER_CLIENT", 30))
    window = int(getattr(settings, "INVOICE_RATE_WINDOW_SECONDS", 600))
    counter = throttle.attempt_counter()
    key = throttle.counter_key("tip-invoice-client", client)
    count = counter.add(key, 1, window_seconds=window)
    if count.total > limit:
        counter.add(key, -1, window_seconds=window)
        raise TipError(
            f"rate-limited: too many tip invoices asked for from your address ({limit} in"
            f" {window // 60} minutes). Pay one of them, or try again in"
            f" {count.retry_after} seconds.",
            reason="rate_limited",
            status=429,
            retry_after=count.retry_after,
        )


def _check_amount(amount_msat: int) -> None:
    low, high = amount_bounds()
    if not low <= amount_msat <= high:
        raise TipError(
            f"invalid: a tip here is between {low // 1000} and {high // 1000} sats"
            f" ({low} and {high} msat), not {amount_msat} msat",
            reason="bad_amount",
        )


def zap_request_check(text: str, *, target: PayTarget, amount_msat: int) -> zaps.ZapRequest:
    """NIP-57 appendix D (`forum.zaps`), then what only the forum knows: the `p` tag is the
    author this endpoint serves, the `e` tag (if any) is the post it pays."""
    try:
        request = zaps.zap_request_parse(text, amount_msat=amount_msat)
    except zaps.ZapRequestError as exc:
        raise TipError(f"invalid: {exc.text}", reason=exc.code) from None
    if request.recipient != target.pubkey:
        raise TipError(
            "invalid: the zap request's p tag is not the author this address or post belongs to",
            reason="foreign_p_tag",
        )
    if request.event_id and request.event_id != target.event_id:
        raise TipError(
            "invalid: the zap request's e tag names another post than this endpoint pays",
            reason="foreign_e_tag",
        )
    return request


def tip_invoice(
    *,
    target: PayTarget,
    amount_msat: int,
    client_ip: str,
    host: str = "",
    zap_request: str = "",
    memo: str = "",
) -> InvoiceIntent:
    """Issue the invoice for a tip of `amount_msat` to `target` (a post still tippable).

    LNURL (`host` given): the description hash commits to the metadata, or for a zap to the
    zap request. The Tip button (`memo`): a readable memo instead.
    """
    _check_amount(amount_msat)
    if zap_request and not host:
        raise TipError("invalid: zaps are asked for at an LNURL callback", reason="bad_request")
    request = (
        zap_request_check(zap_request, target=target, amount_msat=amount_msat)
        if zap_request
        else None
    )
    _tippable(target.event_id)  # still visible and published right now
    client = throttle.address_bucket(client_ip)[:64]
    _throttle(client)
    description_hash: bytes | None = None
    if request is not None:
        description_hash = zaps.description_hash(request.text)
        memo = ""
    elif host:
        description_hash = zaps.description_hash(metadata_for(target, host=host))
        memo = ""
    try:
        return invoices.intent_issue(
            purpose=InvoiceIntent.Purpose.TIP,
            preimage_key=f"tip:{target.event_id}:{secrets.token_hex(16)}",
            hold_invoice=False,
            event_id=target.event_id,
            records=protocol.encode_tip(target.event_id),
            amount_msat=amount_msat,
            memo=memo[: invoices.MAX_MEMO_CHARS],
            pubkey=request.sender if request is not None else "",
            payload={"zap_request": request.text} if request is not None else {},
            client=client,
            description_hash=description_hash,
        )
    except invoices.InvoiceError as exc:
        raise TipError(exc.message, reason="node_unavailable", status=exc.status) from None


def tip_memo(target: PayTarget, *, host: str) -> str:
    return f"Tip for {target.title} ({target.event_id[:12]}) on {host}"


def tip_keysend_plan(*, target: PayTarget, amount_msat: int) -> dict[str, Any]:
    """The Tip button's keysend (a WebLN wallet, or `lncli` from one's own node): the forum's
    node and the `tip` record naming the post. No invoice: the node keeps no record for it."""
    _check_amount(amount_msat)
    try:
        destination = identity.forum_node_pubkey()
    except Exception as exc:  # the node is down: say so rather than a 500
        raise TipError(
            f"error: the forum's Lightning node cannot be reached now ({exc})",
            reason="node_unavailable",
            status=503,
        ) from None
    records = protocol.encode_tip(target.event_id)
    amount_sat = -(-amount_msat // 1000)
    lncli = (
        f"lncli sendpayment --keysend --dest {destination} --amt {amount_sat}"
        f" --data {protocol.lncli_data(records)}"
    )
    return {
        "event_id": target.event_id,
        "destination": destination,
        "amount_sat": amount_sat,
        "custom_records": protocol.to_webln(records),
        "lncli": lncli,
    }
