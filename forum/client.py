"""The posting client for node runners: sign with a local key, pay the forum through your lnd.

    python -m forum.client keygen --key-file ~/.forum.key
    python -m forum.client post --board general --title "Hi" --content "..." \\
        --key-file ~/.forum.key --lndconnect 'lndconnect://...' [--forum-url http://host:8000]
    python -m forum.client post --board general --reply-to EVENT_ID --content "..." \\
        --key-file ~/.forum.key --rpcserver host:10009 --tlscertpath tls.cert \\
        --macaroonpath admin.macaroon
    python -m forum.client topup --event-id EVENT_ID --amount-sats 20 --lndconnect ...
    python -m forum.client tip EVENT_ID --amt 21 --lndconnect ...
    python -m forum.client room create --name "Friday" --password-file pw.txt --key-file ...
    python -m forum.client status KEY

It asks the forum for the price and the node (`GET /api/quote`), builds the event, splits it
into parts when it does not fit one onion (`--hops` sizes the budget), pays each part by
keysend with `forum.protocol` records, then follows `GET /api/status/<event id>`. No Django:
it only needs `forum.nostr`, `forum.protocol` and `lightning.client`.
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
from lightning.client import LightningClient
from lightning.types import LightningError

DEFAULT_FORUM_URL = os.environ.get("FORUM_URL", "http://127.0.0.1:8000")
FINAL_STATES = ("published", "rejected")


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
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body)
            except ValueError:
                return exc.code, {"error": body.decode(errors="replace")[:200]}
        except urllib.error.URLError as exc:
            raise ClientError(f"cannot reach the forum at {self.url}: {exc.reason}") from exc

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
        return self._get(f"/api/status/{key}")[1]


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


def deliver(
    lnd: LightningClient,
    *,
    dest: str,
    payments: Sequence[dict[int, bytes]],
    amount_msat: int,
    out=None,
) -> list[str]:
    """Pay every record set by keysend, all at once; returns the payment hashes.

    Raises for the first payment (in order) that failed. Parts go out together because a forum
    in hold mode (docs/hold-mode.md) settles a multipart set only once every part has arrived:
    paying one part after the other would wait out the node's hold time.
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
            raise ClientError(
                f"payment {len(hashes) + 1}/{len(payments)} failed: {payment.failure_reason}"
            )
        hashes.append(payment.payment_hash)
        print(f"paid {amount // 1000} sats, payment hash {payment.payment_hash}", file=out)
    return hashes


def follow(
    forum: Forum, key: str, *, timeout: float, before: str | None = None, out=None
) -> dict[str, Any]:
    """Poll the status until published/rejected/underpaid (or the timeout); print changes.

    `before` is the status message seen before paying: an "underpaid" status still showing
    it is stale (our payment is not reconciled yet), so we keep waiting.
    """
    out = out or sys.stdout
    deadline = time.monotonic() + timeout
    last: tuple | None = None
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = forum.status(key)
        seen = (status.get("state"), status.get("waiting_for"), status.get("message"))
        if seen != last:
            detail = status.get("message") or status.get("waiting_for") or ""
            print(f"status: {status.get('state')} {detail}".rstrip(), file=out)
            last = seen
        underpaid = status.get("state") == "waiting" and status.get("waiting_for") == "underpaid"
        if status.get("state") in FINAL_STATES or (underpaid and status.get("message") != before):
            return status
        time.sleep(0.5)
    return status


def pay_event(
    forum: Forum, args: argparse.Namespace, event: nostr.Event, *, quote: dict[str, Any], label: str
) -> dict[str, Any] | None:
    # The first printed line starts "event <id>:" (after the label) so scripts can pick the id.
    """Pay `event` at the quoted price (or --amount-sats), split to fit the onion, then follow
    it until published or rejected; returns the final status (None with --no-wait)."""
    amount_msat = args.amount_sats * 1000 if args.amount_sats else quote["price_msat"]
    dest = args.dest or quote.get("node_pubkey")
    if not dest:
        raise ClientError("the forum did not say its node pubkey; pass --dest")
    payments = protocol.split_event(event, budget=protocol.onion_budget_for_records(args.hops))
    print(f"{label}event {event.id}: {len(payments)} payment(s), {-(-amount_msat // 1000)} sats")
    with lnd_from_args(args) as lnd:
        deliver(lnd, dest=dest, payments=payments, amount_msat=amount_msat)
    if args.no_wait:
        return None
    return follow(forum, event.id, timeout=args.wait_seconds)


def node_for_event(forum: Forum, args: argparse.Namespace, event_id: str) -> str:
    """--dest, or the forum node that the board of `event_id` is quoted with."""
    if args.dest:
        return args.dest
    board = forum.status(event_id).get("board") or ""
    if not board:
        raise ClientError("unknown event (or its board); pass --dest NODE_PUBKEY")
    return forum.quote(board=board, pubkey="", kind=nostr.KIND_THREAD).get("node_pubkey")


def lnd_from_args(args: argparse.Namespace) -> LightningClient:
    if args.lndconnect:
        return LightningClient.from_lndconnect(args.lndconnect)
    if args.rpcserver:
        return LightningClient.from_files(args.rpcserver, args.tlscertpath, args.macaroonpath)
    raise ClientError("say how to reach your lnd: --lndconnect URI, or --rpcserver with paths")


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
        raise ClientError(f"{path} exists (use --force to replace it)")
    secret = nostr.generate_secret_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    print(
        f"pubkey {nostr.public_key(secret)}\nnpub   {nostr.npub_encode(nostr.public_key(secret))}"
    )
    return 0


def cmd_post(args: argparse.Namespace) -> int:
    forum = Forum(args.forum_url)
    secret = read_key(args.key_file)
    content = Path(args.content_file).read_text() if args.content_file else (args.content or "")
    root, parent = reply_context(forum, args.reply_to) if args.reply_to else (None, None)
    event = build_event(
        secret=secret,
        board=args.board,
        content=content,
        title=args.title,
        root=root,
        parent=parent,
        ln_node=args.ln_node,
    )
    quote = forum.quote(board=args.board, pubkey=event.pubkey, kind=event.kind)
    status = pay_event(forum, args, event, quote=quote, label="")
    return 0 if status is None or status.get("state") == "published" else 2


def cmd_topup(args: argparse.Namespace) -> int:
    forum = Forum(args.forum_url)
    status = forum.status(args.event_id)
    dest = node_for_event(forum, args, args.event_id)
    with lnd_from_args(args) as lnd:
        deliver(
            lnd,
            dest=dest,
            payments=[protocol.encode_topup(args.event_id)],
            amount_msat=args.amount_sats * 1000,
        )
    if args.no_wait:
        return 0
    status = follow(forum, args.event_id, timeout=args.wait_seconds, before=status.get("message"))
    return 0 if status.get("state") == "published" else 2


def cmd_tip(args: argparse.Namespace) -> int:
    """Tip a published post: its sats go up, and its author's node gets the forwarded share."""
    forum = Forum(args.forum_url)
    dest = node_for_event(forum, args, args.event_id)
    with lnd_from_args(args) as lnd:
        deliver(
            lnd,
            dest=dest,
            payments=[protocol.encode_tip(args.event_id)],
            amount_msat=args.amt * 1000,
        )
    return 0


def cmd_room_create(args: argparse.Namespace) -> int:
    """Rent a private room: sign a room-create event (password as a scrypt verifier) and pay it."""
    forum = Forum(args.forum_url)
    secret = read_key(args.key_file)
    password = Path(args.password_file).read_text().strip() if args.password_file else ""
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
    status = pay_event(forum, args, event, quote=quote, label=f"room {slug}: ")
    if status is None:
        return 0
    if status.get("state") != "published":
        return 2
    print(f"open at {forum.url.rstrip('/')}/r/{slug}/ (share the password with your guests)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    print(json.dumps(Forum(args.forum_url).status(args.key), indent=2))
    return 0


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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m forum.client", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="create a signing key file")
    keygen.add_argument("--key-file", required=True)
    keygen.add_argument("--force", action="store_true")
    keygen.set_defaults(func=cmd_keygen)
    post = sub.add_parser("post", help="sign and pay a thread or a reply")
    post.add_argument("--board", required=True)
    post.add_argument("--title", help="thread title (new threads)")
    body = post.add_mutually_exclusive_group(required=True)
    body.add_argument("--content")
    body.add_argument("--content-file")
    post.add_argument("--reply-to", help="event id of the thread or reply to answer")
    post.add_argument("--key-file", required=True, help="hex secret key or nsec")
    post.add_argument("--ln-node", help="your node pubkey, for refunds (the `ln` tag)")
    post.add_argument("--amount-sats", type=int, help="pay this instead of the quoted price")
    post.add_argument("--hops", type=int, default=3, help="route length to size parts for")
    _node_options(post)
    post.set_defaults(func=cmd_post)
    topup = sub.add_parser("topup", help="add sats to an underpaid event")
    topup.add_argument("--event-id", required=True)
    topup.add_argument("--amount-sats", type=int, required=True)
    _node_options(topup)
    topup.set_defaults(func=cmd_topup)
    tip = sub.add_parser("tip", help="tip a published post (its author's node gets a share)")
    tip.add_argument("event_id", help="event id of the thread or reply to tip")
    tip.add_argument("--amt", type=int, required=True, help="sats to send")
    _node_options(tip)
    tip.set_defaults(func=cmd_tip)
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
    except (ClientError, nostr.EventError, LightningError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
