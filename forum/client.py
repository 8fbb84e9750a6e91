"""The posting client for node runners: sign with a local key, pay the forum through your lnd.

Run it with the project's virtualenv, from the project's directory (it needs the packages
`make run` installed there):

    .venv/bin/python -m forum.client keygen --key-file ~/.forum.key
    .venv/bin/python -m forum.client post --board general --title "Hi" --content "..." \\
        --key-file ~/.forum.key --lndconnect 'lndconnect://...' [--forum-url http://host:8000]
    .venv/bin/python -m forum.client post --board general --reply-to EVENT_ID --content "..." \\
        --key-file ~/.forum.key --rpcserver host:10009 --tlscertpath tls.cert \\
        --macaroonpath admin.macaroon
    .venv/bin/python -m forum.client topup --event-id EVENT_ID --amount-sats 20 --lndconnect ...
    .venv/bin/python -m forum.client tip EVENT_ID --amt 21 --lndconnect ...
    .venv/bin/python -m forum.client tip EVENT_ID --amt 21 --invoice   # any wallet: QR
    .venv/bin/python -m forum.client credit --key-file ~/.forum.key --amount-sats 1000 ...
    .venv/bin/python -m forum.client room create --name "Friday" --password-file pw.txt ...
    .venv/bin/python -m forum.client sign --board general --title "Hi" --content "..." \\
        --key-file ~/.forum.key > event.json
    .venv/bin/python -m forum.client status KEY

It asks the forum for the price and the node (`GET /api/quote`), builds the event, splits it
into parts when it does not fit one onion (`--hops` sizes the budget), pays each part by
keysend with `forum.protocol` records, then follows `GET /api/status/<event id>` and prints
the post's address. When the forum turns a payment away (hold mode cancels it, so the node
reports only `FAILURE_REASON_INCORRECT_PAYMENT_DETAILS`), the client asks the forum why and
prints its reason, the price now and what to do. No Django: it only needs `forum.nostr`,
`forum.protocol` and `lightning`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forum import nostr, protocol, room_events
from lightning.cli import client_open, describe_node_error
from lightning.client import LightningClient
from lightning.types import LightningError

DEFAULT_FORUM_URL = os.environ.get("FORUM_URL", "http://127.0.0.1:8000")
FINAL_STATES = ("published", "rejected")
PROG = ".venv/bin/python -m forum.client"


class ClientError(RuntimeError):
    """Something the user must fix; the message says what."""


# --- the forum's HTTP API -----------------------------------------------------------------------


@dataclass
class Forum:
    url: str = DEFAULT_FORUM_URL
    timeout: float = 15.0

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(self.url.rstrip("/") + path + query)
        return self._answer(request, path)

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=data,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        return self._answer(request, path)

    def _answer(self, request: urllib.request.Request, path: str) -> tuple[int, Any]:
        """(HTTP status, JSON body) of `request`; a refusal without JSON becomes `{error}`,
        a success without JSON or no answer at all a `ClientError` saying so."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                code, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            code, raw = exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise ClientError(f"cannot reach the forum at {self.url}: {exc.reason}") from None
        except OSError as exc:  # a timeout or a reset connection mid-answer
            raise ClientError(f"cannot reach the forum at {self.url}: {exc}") from None
        try:
            return code, json.loads(raw)
        except ValueError:
            if code < 400:
                raise ClientError(
                    f"{self.url} did not answer like the forum (no JSON at {path}): "
                    "check --forum-url"
                ) from None
            return code, {"error": raw.decode(errors="replace")[:200]}

    def invoice(self, event: nostr.Event) -> dict[str, Any]:
        """A BOLT11 invoice for posting `event` (the forum checks it first and says why not)."""
        code, body = self._post("/api/invoice", {"event": json.loads(event.to_json())})
        if code not in (200, 201):
            reason = body.get("error", body) if isinstance(body, dict) else body
            raise ClientError(f"no invoice: {reason}. Nothing was paid.")
        return body

    def tip_invoice(self, event_id: str, amount_sats: int) -> dict[str, Any]:
        """A BOLT11 invoice tipping the post `event_id` (`POST /api/tip`)."""
        code, body = self._post("/api/tip", {"event_id": event_id, "amount_sats": amount_sats})
        if code not in (200, 201):
            reason = body.get("error", body) if isinstance(body, dict) else body
            raise ClientError(f"no tip invoice: {reason}. Nothing was paid.")
        return body

    def balance(self, pubkey: str) -> dict[str, Any]:
        """A pubkey's relay balance (`GET /api/balance`), with the node that funds it."""
        code, body = self._get("/api/balance", {"pubkey": pubkey})
        if code != 200:
            raise ClientError(f"balance refused: {body.get('error', body)}")
        return body

    def quote(self, *, board: str, pubkey: str, kind: int) -> dict[str, Any]:
        code, body = self._get("/api/quote", {"board": board, "pubkey": pubkey, "kind": kind})
        if code != 200:
            raise ClientError(f"quote refused: {body.get('error', body)}")
        return body

    def event(self, event_id: str) -> nostr.Event:
        code, body = self._get(f"/e/{event_id}.json")
        if code != 200:
            raise ClientError(f"the forum does not know event {event_id} (HTTP {code})")
        return nostr.parse_event(body, verify=True)

    def status(self, key: str) -> dict[str, Any]:
        """Where `key` (event id or payment hash) stands; state `unknown` before it is paid."""
        body = self._get(f"/api/status/{key}")[1]
        return body if isinstance(body, dict) and "state" in body else {"state": "unknown"}

    def page_url(self, status: dict[str, Any]) -> str:
        """The address of a published post: its thread's page, at the reply's anchor."""
        base = self.url.rstrip("/")
        thread_id = status.get("thread_event_id")
        if not thread_id:
            return f"{base}/e/{status.get('event_id') or status.get('key')}/"
        number = status.get("number") or 0
        return f"{base}/t/{thread_id}/" + (f"#p{number}" if number else "")


# --- building and paying --------------------------------------------------------------------------


def split_amount_msat(total_msat: int, parts: int) -> list[int]:
    """Whole sats per payment (keysend amounts are sats for lncli and WebLN), summing >= total."""
    total_sat = max(-(-total_msat // 1000), parts)
    base, extra = divmod(total_sat, parts)
    return [(base + (1 if i < extra else 0)) * 1000 for i in range(parts)]


def reply_context(forum: Forum, reply_to: str) -> tuple[nostr.Event, nostr.Event | None]:
    """(root thread, parent reply or None) for replying to `reply_to`."""
    target = forum.event(reply_to)
    if target.kind == nostr.KIND_THREAD:
        return target, None
    root_id = nostr.reply_target(target).root_id
    return forum.event(root_id), target


def build_event(
    *,
    secret: str,
    board: str,
    content: str,
    title: str | None,
    root: nostr.Event | None,
    parent: nostr.Event | None,
    ln_node: str | None,
) -> nostr.Event:
    if root is None:
        if not title:
            raise ClientError("a new thread needs --title (or use --reply-to EVENT_ID)")
        return nostr.thread_event(
            secret, board=board, title=title, content=content, ln_node=ln_node
        )
    return nostr.reply_event(
        secret, board=board, root=root, parent=parent, content=content, ln_node=ln_node
    )


class PaymentFailed(ClientError):
    """A keysend did not go through; `payment_hash` names it for the forum's status API."""

    def __init__(self, message: str, *, payment_hash: str, failure_reason: str) -> None:
        super().__init__(message)
        self.payment_hash = payment_hash
        self.failure_reason = failure_reason


# What lnd's failure reasons mean for someone paying the forum (lnd's names).
FAILURE_HELP = {
    "FAILURE_REASON_NO_ROUTE": "your node found no route to the forum's node {dest}: it needs a "
    "channel (direct or through peers) with enough outbound liquidity. A long post also needs "
    "room in the onion on every hop: try --hops with your real route length",
    "FAILURE_REASON_INSUFFICIENT_BALANCE": "your node's channels do not have enough outbound "
    "balance for this payment",
    "FAILURE_REASON_TIMEOUT": "the payment timed out before the forum's node answered: try again",
    "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS": "the forum's node turned the payment away and the "
    "forum has not said why yet; ask it with `status {key}`",
    "FAILURE_REASON_ERROR": "a node on the way failed the payment: try again",
}


def deliver(
    lnd: LightningClient,
    *,
    dest: str,
    payments: Sequence[dict[int, bytes]],
    amount_msat: int,
    out=None,
) -> list[str]:
    """Pay every record set by keysend, all at once; returns the payment hashes.

    Raises `PaymentFailed` for the first payment (in order) that failed. Parts go out together
    because a forum in hold mode (docs/hold-mode.md) settles a multipart set only once every
    part has arrived: paying one part after the other would wait out the node's hold time.
    """
    out = out or sys.stdout
    amounts = split_amount_msat(amount_msat, len(payments))
    with ThreadPoolExecutor(max_workers=max(1, len(payments))) as pool:
        futures = [
            pool.submit(lnd.keysend, dest, amount, records)
            for records, amount in zip(payments, amounts, strict=True)
        ]
        results = [future.result() for future in futures]
    hashes = []
    for payment, amount in zip(results, amounts, strict=True):
        if not payment.succeeded:
            raise PaymentFailed(
                f"payment {len(hashes) + 1}/{len(payments)} failed: {payment.failure_reason}",
                payment_hash=payment.payment_hash,
                failure_reason=payment.failure_reason,
            )
        hashes.append(payment.payment_hash)
        print(f"paid {amount // 1000} sats, payment hash {payment.payment_hash}", file=out)
    return hashes


def follow(
    forum: Forum, key: str, *, timeout: float, before: str | None = None, out=None
) -> dict[str, Any]:
    """Poll the status until published/rejected/underpaid (or the timeout); print changes.

    `before` is the status message seen before paying: an "underpaid" status still showing
    it is stale (our payment is not reconciled yet), so we keep waiting. A status the forum
    does not know yet (`unknown`: the payment is not recorded yet) is not news.
    """
    out = out or sys.stdout
    deadline = time.monotonic() + timeout
    last: tuple | None = None
    status: dict[str, Any] = {"state": "unknown"}
    while time.monotonic() < deadline:
        status = forum.status(key)
        state = status.get("state")
        seen = (state, status.get("waiting_for"), status.get("message"))
        if state in ("paid", "waiting") and seen != last:
            detail = status.get("waiting_for") or ""
            if status.get("waiting_for") == "parts":
                detail = f"parts ({status.get('parts_received')}/{status.get('parts_total')})"
            print(f"status: {state} {detail}".rstrip(), file=out)
            last = seen
        underpaid = state == "waiting" and status.get("waiting_for") == "underpaid"
        if state in FINAL_STATES or (underpaid and status.get("message") != before):
            return status
        time.sleep(0.5)
    print(
        f"status: still {status.get('state')} after {timeout:.0f} s; ask again with `status {key}`",
        file=out,
    )
    return status


def refusal_status(forum: Forum, keys: Sequence[str], *, wait: float = 5.0) -> dict[str, Any]:
    """The forum's verdict on a payment its node turned away (hold mode records the rejection
    before it cancels, so it is normally there at once); state `unknown` if it has none."""
    deadline = time.monotonic() + wait
    while True:
        for key in keys:
            status = forum.status(key)
            if status.get("state") == "rejected":
                return status
        if time.monotonic() >= deadline:
            return {"state": "unknown"}
        time.sleep(0.25)


def _sats(msat: int | None) -> str:
    whole = -(-int(msat or 0) // 1000)
    return f"{whole:,} sat" + ("" if whole == 1 else "s")


def _sentence(status: dict[str, Any]) -> str:
    """The forum's message without its NIP-01 machine prefix ("rate-limited: ...")."""
    message = status.get("message") or status.get("reason") or "no reason given"
    prefix, sep, rest = message.partition(": ")
    return rest if sep and prefix.replace("-", "").isalpha() and prefix.islower() else message


@dataclass(frozen=True)
class Retry:
    """How the command that was refused can be run again (`what to do` lines)."""

    command: str  # "post", "room create", "topup", "tip"
    event_id: str = ""


def report_outcome(
    forum: Forum,
    status: dict[str, Any],
    *,
    retry: Retry,
    quote: dict[str, Any] | None = None,
    out=None,
) -> int:
    """Print where a message ended: its address, or the forum's reason, the price now and what
    to do. Returns the exit code (0 published, 2 not published)."""
    out = out or sys.stdout
    state = status.get("state")
    if state == "published":
        print(f"published: {forum.page_url(status)}", file=out)
        return 0
    reason = status.get("reason") or ""
    charged = status.get("charged") is not False
    if state == "waiting" and reason != "underpaid":
        return 2  # follow() already said what it waits for
    head = "refused" if charged else "refused, nothing charged"
    if state == "waiting":
        head = "not published yet (paid, waiting for a top-up)"
    print(f"{head}: {_sentence(status)}", file=out)
    event_id = status.get("event_id") or retry.event_id
    if reason == "underpaid" and charged:
        # Kept (hold mode off): the event's price is fixed in settle order; the rest completes it.
        price, paid = int(status.get("price_msat") or 0), int(status.get("paid_msat") or 0)
        missing = max(price - paid, 1000)
        print(f"price of this post: {_sats(price)}, paid so far: {_sats(paid)}", file=out)
        print(
            f"what to do: top up the missing {_sats(missing)} with `{PROG} topup --event-id "
            f"{event_id} --amount-sats {-(-missing // 1000)}` and your node's flags",
            file=out,
        )
        return 2
    if reason == "underpaid":
        price = _price_now(forum, status, quote)
        if price is not None:
            print(f"price now: {_sats(price)}", file=out)
        print(
            f"what to do: send it again at the price: the same `{retry.command}` command "
            "without --amount-sats pays the quoted price",
            file=out,
        )
        return 2
    advice = ADVICE.get(reason)
    if advice:
        print(f"what to do: {advice}", file=out)
    if charged and state == "rejected":
        print(
            "the forum kept the payment: its moderators can refund it to the node your event "
            "names (--ln-node)",
            file=out,
        )
    return 2


def _price_now(forum: Forum, status: dict[str, Any], quote: dict[str, Any] | None) -> int | None:
    """The price for the same message now: a fresh quote for its board, kind and author."""
    if quote is None:
        return status.get("price_msat")
    try:
        fresh = forum.quote(board=quote["board"], pubkey=quote["pubkey"], kind=quote["kind"])
    except (ClientError, KeyError):
        return quote.get("price_msat")
    return fresh.get("price_msat")


# What the CLI user can do about each refusal, beyond the forum's own sentence.
ADVICE = {
    "thread_locked": "the thread takes no new replies; start a new thread instead (--title "
    "instead of --reply-to)",
    "too_large": "shorten it (the board's limit is in `GET /api/quote`, `limits`) and send it "
    "again",
    "banned": "nothing: this key may not post here (ask the forum's moderators)",
    "duplicate": "nothing: this exact event is already on the forum",
    "unknown_board": "pick one of the boards listed at /how-to-post/ (--board SLUG)",
    "target_hidden": "nothing: a moderator hid what you are answering",
    "bad_created_at": "check your computer's clock and send it again (it signs a new event)",
    "hold_expired": "send it again; if it keeps happening, tell the forum's operators",
    "orphan_timeout": "send the thread or parent first, then the reply again",
    "incomplete_parts": "send it again; all parts go out at once",
    "invoice_expired": "run the same `post --invoice` command again for a new invoice",
}


def payment_failure_line(exc: PaymentFailed, *, dest: str, key: str) -> str:
    """One line for a payment the forum has no verdict on: what lnd's reason means here."""
    help_text = FAILURE_HELP.get(exc.failure_reason)
    if help_text is None:
        return str(exc)
    return f"{exc} ({help_text.format(dest=dest, key=key)})"


def pay_event(
    forum: Forum,
    args: argparse.Namespace,
    event: nostr.Event,
    *,
    quote: dict[str, Any],
    label: str,
    retry: Retry,
) -> dict[str, Any] | None:
    # The first printed line starts "event <id>:" (after the label) so scripts can pick the id.
    """Pay `event` at the quoted price (or --amount-sats), split to fit the onion, then follow
    it until published or rejected; returns the final status (None with --no-wait).

    A payment the forum's node turns away (hold mode) is not an error but a rejection: the
    forum's status API says why, and that is what is returned."""
    amount_msat = args.amount_sats * 1000 if args.amount_sats else quote["price_msat"]
    dest = args.dest or quote.get("node_pubkey")
    if not dest:
        raise ClientError("the forum did not say its node pubkey; pass --dest")
    payments = protocol.split_event(event, budget=protocol.onion_budget_for_records(args.hops))
    print(f"{label}event {event.id}: {len(payments)} payment(s), {-(-amount_msat // 1000)} sats")
    try:
        with lnd_from_args(args) as lnd:
            hashes = deliver(lnd, dest=dest, payments=payments, amount_msat=amount_msat)
    except PaymentFailed as exc:
        status = refusal_status(forum, [exc.payment_hash, event.id])
        if status.get("state") != "rejected":
            raise ClientError(payment_failure_line(exc, dest=dest, key=event.id)) from None
        return status
    if args.no_wait:
        return None
    # Followed by our own payment, not the event id: an identical event signed in the same
    # second (same id) may carry an earlier, cancelled attempt's rejection.
    return follow(forum, hashes[0], timeout=args.wait_seconds)


def pay_by_invoice(
    forum: Forum, args: argparse.Namespace, event: nostr.Event
) -> dict[str, Any] | None:
    """Ask the forum for the event's invoice, show it (text and a terminal QR code), pay it
    with your lnd when its flags are given, and follow the status by its payment hash."""
    invoice = forum.invoice(event)
    print(
        f"event {event.id}: invoice for {_sats(invoice['amount_msat'])}, payment hash "
        f"{invoice['payment_hash']}"
    )
    print(invoice["payment_request"])
    expires = time.strftime("%H:%M:%S", time.localtime(invoice["expires_at"]))
    if not (args.rpcserver or args.lndconnect):
        try:
            import segno

            segno.make(invoice["lightning_uri"].upper(), error="m").terminal(compact=True)
        except Exception:  # a terminal QR is a nicety; the text above is the invoice
            pass
        print(f"pay it with any Lightning wallet before {expires}; waiting for the payment…")
    else:
        with lnd_from_args(args) as lnd:
            payment = lnd.pay_invoice(invoice["payment_request"])
        if not payment.succeeded:
            status = refusal_status(forum, [invoice["payment_hash"]])
            if status.get("state") != "rejected":
                raise ClientError(f"the invoice was not paid: {payment.failure_reason}")
            return status
        print(f"paid {_sats(payment.value_msat)}, payment hash {payment.payment_hash}")
    if args.no_wait:
        return None
    timeout = args.wait_seconds
    if not (args.rpcserver or args.lndconnect):
        timeout = max(timeout, invoice["expires_at"] - time.time() + 30)
    return follow(forum, invoice["payment_hash"], timeout=timeout)


def check_length(content: str, quote: dict[str, Any]) -> None:
    """Refuse before paying what the board would refuse for its size: the quote carries the
    board's limit, in characters as the forum counts them (Unicode code points)."""
    limit = (quote.get("limits") or {}).get("max_content_length")
    if limit and len(content) > limit:
        raise ClientError(
            f"not sent: the content is {len(content):,} characters, over the limit of "
            f"{limit:,} on board {quote.get('board')}. Shorten it and send it again. "
            "Nothing was paid."
        )


def node_for_event(forum: Forum, args: argparse.Namespace, event_id: str) -> str:
    """--dest, or the forum node that the board of `event_id` is quoted with."""
    if args.dest:
        return args.dest
    board = forum.status(event_id).get("board") or ""
    if not board:
        raise ClientError(
            f"the forum has no published or waiting event {event_id} (nothing to top up or "
            "tip; a payment hold mode cancelled is sent again whole, not topped up); "
            "pass --dest NODE_PUBKEY to pay anyway"
        )
    return forum.quote(board=board, pubkey="", kind=nostr.KIND_THREAD).get("node_pubkey")


def lnd_from_args(args: argparse.Namespace) -> LightningClient:
    if not (args.lndconnect or args.rpcserver):
        raise ClientError("say how to reach your lnd: --lndconnect URI, or --rpcserver with paths")
    return client_open(
        lndconnect=args.lndconnect,
        rpcserver=args.rpcserver,
        tlscertpath=args.tlscertpath,
        macaroonpath=args.macaroonpath,
    )


def read_key(path: str) -> str:
    try:
        secret = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ClientError(f"cannot read the key file: {exc}") from exc
    if secret.startswith("nsec1"):
        secret = nostr.nsec_decode(secret)
    nostr.public_key(secret)  # validates
    return secret


# --- commands --------------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    path = Path(args.key_file).expanduser()
    if path.exists() and not args.force:
        # Running the documented commands twice must not fail, nor replace a key in use.
        secret = read_key(args.key_file)
        print(f"{path} exists: keeping it (--force makes a new key)")
    else:
        secret = nostr.generate_secret_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
    print(
        f"pubkey {nostr.public_key(secret)}\nnpub   {nostr.npub_encode(nostr.public_key(secret))}"
    )
    return 0


def read_content(args: argparse.Namespace) -> str:
    if not args.content_file:
        return args.content or ""
    try:
        return Path(args.content_file).expanduser().read_text()
    except OSError as exc:
        raise ClientError(f"--content-file {args.content_file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ClientError(f"--content-file {args.content_file}: not UTF-8 text") from None


def signed_event(forum: Forum, args: argparse.Namespace) -> nostr.Event:
    """The thread or reply the `post`/`sign` flags describe, signed with --key-file."""
    secret = read_key(args.key_file)
    content = read_content(args)
    root, parent = reply_context(forum, args.reply_to) if args.reply_to else (None, None)
    return build_event(
        secret=secret,
        board=args.board,
        content=content,
        title=args.title,
        root=root,
        parent=parent,
        ln_node=args.ln_node,
    )


def cmd_post(args: argparse.Namespace) -> int:
    forum = Forum(args.forum_url)
    event = signed_event(forum, args)
    quote = forum.quote(board=args.board, pubkey=event.pubkey, kind=event.kind)
    check_length(event.content, quote)
    if args.invoice:
        status = pay_by_invoice(forum, args, event)
    else:
        status = pay_event(forum, args, event, quote=quote, label="", retry=Retry("post"))
    if status is None:
        return 0
    return report_outcome(forum, status, retry=Retry("post", event_id=event.id), quote=quote)


def cmd_sign(args: argparse.Namespace) -> int:
    """Print the signed event as JSON (for `forum.protocol` and lncli, or any other tool)."""
    event = signed_event(Forum(args.forum_url), args)
    print(event.to_json())
    print(f"event {event.id} signed (its status: {PROG} status {event.id})", file=sys.stderr)
    return 0


def cmd_topup(args: argparse.Namespace) -> int:
    forum = Forum(args.forum_url)
    status = forum.status(args.event_id)
    dest = node_for_event(forum, args, args.event_id)
    retry = Retry("topup", event_id=args.event_id)
    try:
        with lnd_from_args(args) as lnd:
            deliver(
                lnd,
                dest=dest,
                payments=[protocol.encode_topup(args.event_id)],
                amount_msat=args.amount_sats * 1000,
            )
    except PaymentFailed as exc:
        refused = refusal_status(forum, [exc.payment_hash])
        if refused.get("state") != "rejected":
            raise ClientError(payment_failure_line(exc, dest=dest, key=args.event_id)) from None
        return report_outcome(forum, refused, retry=retry)
    if args.no_wait:
        return 0
    status = follow(forum, args.event_id, timeout=args.wait_seconds, before=status.get("message"))
    return report_outcome(forum, status, retry=retry)


def tip_by_invoice(forum: Forum, args: argparse.Namespace) -> int:
    """A tip paid by invoice: printed (and a terminal QR code) for any wallet, or paid with
    your lnd when its flags are given; then followed until the forum has it."""
    invoice = forum.tip_invoice(args.event_id, args.amt)
    print(
        f"tip invoice for {_sats(invoice['amount_msat'])}, payment hash {invoice['payment_hash']}"
    )
    print(invoice["payment_request"])
    own_node = bool(args.rpcserver or args.lndconnect)
    if not own_node:
        try:
            import segno

            segno.make(invoice["lightning_uri"].upper(), error="m").terminal(compact=True)
        except Exception:  # a terminal QR is a nicety; the text above is the invoice
            pass
        expires = time.strftime("%H:%M:%S", time.localtime(invoice["expires_at"]))
        print(f"pay it with any Lightning wallet before {expires}; waiting for the payment…")
    else:
        with lnd_from_args(args) as lnd:
            payment = lnd.pay_invoice(invoice["payment_request"])
        if not payment.succeeded:
            raise ClientError(f"the tip invoice was not paid: {payment.failure_reason}")
    if args.no_wait:
        return 0
    timeout = args.wait_seconds
    if not own_node:
        timeout = max(timeout, invoice["expires_at"] - time.time() + 30)
    status = follow(forum, invoice["payment_hash"], timeout=timeout)
    if status.get("state") == "rejected":
        return report_outcome(forum, status, retry=Retry("tip", event_id=args.event_id))
    if status.get("state") not in FINAL_STATES:
        return 1
    print(f"tipped {args.amt} sats to {forum.url.rstrip('/')}/e/{args.event_id}/")
    return 0


def cmd_tip(args: argparse.Namespace) -> int:
    """Tip a published post: its sats go up, and its author's node gets the forwarded share."""
    forum = Forum(args.forum_url)
    if args.invoice:
        return tip_by_invoice(forum, args)
    dest = node_for_event(forum, args, args.event_id)
    try:
        with lnd_from_args(args) as lnd:
            deliver(
                lnd,
                dest=dest,
                payments=[protocol.encode_tip(args.event_id)],
                amount_msat=args.amt * 1000,
            )
    except PaymentFailed as exc:
        refused = refusal_status(forum, [exc.payment_hash])
        if refused.get("state") != "rejected":
            raise ClientError(payment_failure_line(exc, dest=dest, key=exc.payment_hash)) from None
        return report_outcome(forum, refused, retry=Retry("tip", event_id=args.event_id))
    print(f"tipped {args.amt} sats to {forum.url.rstrip('/')}/e/{args.event_id}/")
    return 0


def cmd_credit(args: argparse.Namespace) -> int:
    """Fund a pubkey's relay balance (any Nostr client then posts over /relay, paying from it)."""
    forum = Forum(args.forum_url)
    if args.pubkey:
        try:
            pubkey = nostr.pubkey_parse(args.pubkey)
        except nostr.EventError as exc:
            raise ClientError(f"--pubkey: {exc.message}") from None
    elif args.key_file:
        pubkey = nostr.public_key(read_key(args.key_file))
    else:
        raise ClientError("say whose balance to fund: --pubkey HEX|NPUB or --key-file")
    before = forum.balance(pubkey)
    dest = args.dest or (before.get("fund") or {}).get("node_pubkey")
    if not dest:
        raise ClientError("the forum did not name its node; pass --dest NODE_PUBKEY")
    try:
        with lnd_from_args(args) as lnd:
            deliver(
                lnd,
                dest=dest,
                payments=[protocol.encode_credit(pubkey)],
                amount_msat=args.amount_sats * 1000,
            )
    except PaymentFailed as exc:
        raise ClientError(payment_failure_line(exc, dest=dest, key=exc.payment_hash)) from None
    deadline = time.monotonic() + args.wait_seconds
    after = before
    while after["credited_msat"] < before["credited_msat"] + args.amount_sats * 1000:
        if time.monotonic() >= deadline:
            print(f"paid {args.amount_sats} sats; the forum has not recorded it yet")
            return 0
        time.sleep(0.5)
        after = forum.balance(pubkey)
    print(f"balance: {_sats(after['balance_msat'])} for {pubkey}")
    return 0


def cmd_room_create(args: argparse.Namespace) -> int:
    """Rent a private room: sign a room-create event (password as a scrypt verifier) and pay it."""
    forum = Forum(args.forum_url)
    secret = read_key(args.key_file)
    password = ""
    if args.password_file:
        try:
            password = Path(args.password_file).expanduser().read_text().strip()
        except OSError as exc:
            raise ClientError(f"--password-file {args.password_file}: {exc.strerror}") from None
    password = password or args.password or ""
    if not password:
        raise ClientError("the room needs a password: --password or --password-file")
    slug = args.slug or f"r-{os.urandom(6).hex()}"
    code, quote = forum._get("/rooms/quote")
    if code != 200:
        raise ClientError(f"the forum does not rent rooms (HTTP {code})")
    event = room_events.room_event(
        secret,
        slug=slug,
        name=args.name,
        password=password,
        lifetime_seconds=args.lifetime,
        description=args.description or "",
        ln_node=args.ln_node,
    )
    retry = Retry("room create", event_id=event.id)
    status = pay_event(forum, args, event, quote=quote, label=f"room {slug}: ", retry=retry)
    if status is None:
        return 0
    if status.get("state") != "published":
        return report_outcome(forum, status, retry=retry)
    print(f"open at {forum.url.rstrip('/')}/r/{slug}/ (share the password with your guests)")
    return 0


def _pay_side_event(
    forum: Forum, args: argparse.Namespace, event: nostr.Event, *, command: str, done: str
) -> int:
    """Quote, pay and follow a profile, deletion or edit; print `done` once applied."""
    quote = forum.quote(board="", pubkey=event.pubkey, kind=event.kind)
    retry = Retry(command, event_id=event.id)
    status = pay_event(forum, args, event, quote=quote, label="", retry=retry)
    if status is None:
        return 0
    if status.get("state") == "published":
        print(done)
        return 0
    return report_outcome(forum, status, retry=retry, quote=quote)


def cmd_profile(args: argparse.Namespace) -> int:
    """Sign and pay a kind 0 profile (the newest one signed is the one shown)."""
    forum = Forum(args.forum_url)
    secret = read_key(args.key_file)
    fields = {
        name: value
        for name in ("name", "about", "picture", "nip05", "lud16")
        if (value := getattr(args, name)) is not None
    }
    event = nostr.sign_event(secret, kind=nostr.KIND_PROFILE, tags=[], content=json.dumps(fields))
    npub = nostr.npub_encode(event.pubkey)
    done = f"profile published: {forum.url.rstrip('/')}/a/{npub}/"
    return _pay_side_event(forum, args, event, command="profile", done=done)


def cmd_delete(args: argparse.Namespace) -> int:
    """Sign and pay a kind 5 deletion (NIP-09) of your own threads or replies."""
    forum = Forum(args.forum_url)
    secret = read_key(args.key_file)
    tags = [["e", event_id.lower()] for event_id in args.event_ids]
    event = nostr.sign_event(secret, kind=nostr.KIND_DELETION, tags=tags, content=args.reason or "")
    done = f"deleted: {len(tags)} event(s) no longer shown (the deletion is {event.id})"
    return _pay_side_event(forum, args, event, command="delete", done=done)


def cmd_edit(args: argparse.Namespace) -> int:
    """Sign and pay a kind 1010 edit: the new text of one of your threads or replies."""
    forum = Forum(args.forum_url)
    secret = read_key(args.key_file)
    tags = [["e", args.event_id.lower()]]
    if args.title:
        tags.append(["title", args.title])
    event = nostr.sign_event(secret, kind=nostr.KIND_EDIT, tags=tags, content=read_content(args))
    base = forum.url.rstrip("/")
    done = f"edited: {base}/e/{args.event_id.lower()}/ (every version: {base}/e/{args.event_id.lower()}/history)"
    return _pay_side_event(forum, args, event, command="edit", done=done)


def cmd_status(args: argparse.Namespace) -> int:
    print(json.dumps(Forum(args.forum_url).status(args.key), indent=2))
    return 0


def _kind_payment_options(parser: argparse.ArgumentParser) -> None:
    """What a profile, deletion or edit is signed with and paid by (kinds 0, 5, 1010)."""
    parser.add_argument("--key-file", required=True, help="hex secret key or nsec")
    parser.add_argument("--amount-sats", type=int, help="pay this instead of the price")
    parser.add_argument("--hops", type=int, default=3, help="route length to size parts for")
    _node_options(parser)


def _node_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("your lnd (like lncli)")
    group.add_argument("--lndconnect", help="lndconnect:// URI")
    group.add_argument("--rpcserver", help="host:port of lnd's gRPC")
    group.add_argument("--tlscertpath", help="lnd's tls.cert")
    group.add_argument("--macaroonpath", help="a macaroon that may send payments")
    parser.add_argument("--dest", help="forum node pubkey (default: from the quote)")
    parser.add_argument("--forum-url", default=DEFAULT_FORUM_URL, help="default $FORUM_URL")
    parser.add_argument("--no-wait", action="store_true", help="do not follow the status")
    parser.add_argument("--wait-seconds", type=float, default=60)


def _event_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", required=True)
    parser.add_argument("--title", help="thread title (new threads)")
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--content")
    body.add_argument("--content-file")
    parser.add_argument("--reply-to", help="event id of the thread or reply to answer")
    parser.add_argument("--key-file", required=True, help="hex secret key or nsec")
    parser.add_argument("--ln-node", help="your node pubkey, for refunds (the `ln` tag)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="create a signing key file")
    keygen.add_argument("--key-file", required=True)
    keygen.add_argument("--force", action="store_true")
    keygen.set_defaults(func=cmd_keygen)
    post = sub.add_parser("post", help="sign and pay a thread or a reply")
    _event_options(post)
    post.add_argument("--amount-sats", type=int, help="pay this instead of the quoted price")
    post.add_argument("--hops", type=int, default=3, help="route length to size parts for")
    post.add_argument(
        "--invoice",
        action="store_true",
        help="pay by BOLT11 invoice: printed (and QR) for any wallet, or paid with your lnd "
        "when its flags are given",
    )
    _node_options(post)
    post.set_defaults(func=cmd_post)
    sign = sub.add_parser("sign", help="print a signed thread or reply as JSON (pay it yourself)")
    _event_options(sign)
    sign.add_argument("--forum-url", default=DEFAULT_FORUM_URL, help="default $FORUM_URL")
    sign.set_defaults(func=cmd_sign)
    topup = sub.add_parser(
        "topup",
        help="add sats to an underpaid event the forum kept (settle mode; in hold mode an "
        "underpaid payment is cancelled: send it again instead)",
    )
    topup.add_argument("--event-id", required=True)
    topup.add_argument("--amount-sats", type=int, required=True)
    _node_options(topup)
    topup.set_defaults(func=cmd_topup)
    tip = sub.add_parser("tip", help="tip a published post (its author's node gets a share)")
    tip.add_argument("event_id", help="event id of the thread or reply to tip")
    tip.add_argument("--amt", type=int, required=True, help="sats to send")
    tip.add_argument(
        "--invoice",
        action="store_true",
        help="pay by BOLT11 invoice: printed (and QR) for any wallet, or paid with your lnd "
        "when its flags are given",
    )
    _node_options(tip)
    tip.set_defaults(func=cmd_tip)
    credit = sub.add_parser(
        "credit", help="fund a key's relay balance (posts sent over /relay are paid from it)"
    )
    credit.add_argument("--pubkey", help="hex pubkey or npub to fund (default: --key-file's)")
    credit.add_argument("--key-file", help="fund the key in this file")
    credit.add_argument("--amount-sats", type=int, required=True)
    _node_options(credit)
    credit.set_defaults(func=cmd_credit)
    profile = sub.add_parser("profile", help="sign and pay your profile (kind 0)")
    for name in ("name", "about", "picture", "nip05", "lud16"):
        profile.add_argument(f"--{name}")
    _kind_payment_options(profile)
    profile.set_defaults(func=cmd_profile)
    delete = sub.add_parser("delete", help="delete your own threads or replies (kind 5)")
    delete.add_argument("event_ids", nargs="+", metavar="EVENT_ID")
    delete.add_argument("--reason", help="why (kept in the signed deletion)")
    _kind_payment_options(delete)
    delete.set_defaults(func=cmd_delete)
    edit = sub.add_parser("edit", help="replace the text of your thread or reply (kind 1010)")
    edit.add_argument("event_id", metavar="EVENT_ID")
    edit_body = edit.add_mutually_exclusive_group(required=True)
    edit_body.add_argument("--content")
    edit_body.add_argument("--content-file")
    edit.add_argument("--title", help="a thread's new title")
    _kind_payment_options(edit)
    edit.set_defaults(func=cmd_edit)
    room = sub.add_parser("room", help="private rooms")
    room_sub = room.add_subparsers(dest="room_command", required=True)
    create = room_sub.add_parser("create", help="rent a private, self-destructing room")
    create.add_argument("--name", required=True, help="the room's name (shown inside only)")
    create.add_argument("--slug", help="its URL name, /r/<slug>/ (default: random)")
    secret_group = create.add_mutually_exclusive_group(required=True)
    secret_group.add_argument("--password", help="the room's password (visible in `ps`)")
    secret_group.add_argument("--password-file", help="read the password from this file")
    create.add_argument("--lifetime", type=int, help="seconds until it self-destructs")
    create.add_argument("--description")
    create.add_argument("--key-file", required=True, help="hex secret key or nsec")
    create.add_argument("--ln-node", help="your node pubkey, for refunds (the `ln` tag)")
    create.add_argument("--amount-sats", type=int, help="pay this instead of the room price")
    create.add_argument("--hops", type=int, default=3, help="route length to size parts for")
    _node_options(create)
    create.set_defaults(func=cmd_room_create)
    status = sub.add_parser("status", help="where a message stands")
    status.add_argument("key", help="event id or payment hash")
    status.add_argument("--forum-url", default=DEFAULT_FORUM_URL)
    status.set_defaults(func=cmd_status)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except LightningError as exc:
        where = None if getattr(args, "lndconnect", None) else getattr(args, "rpcserver", None)
        print(f"error: {describe_node_error(exc, rpcserver=where)}", file=sys.stderr)
    except (ClientError, nostr.EventError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:  # a file the command writes or reads (say which, in one line)
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
