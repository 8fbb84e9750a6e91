"""Forum state.

The ledger (`LedgerEntry`) is the source of truth: one append-only row per settled invoice the
forum's node reports (and one per outgoing refund or tip forward). Everything else — events,
threads, posts, authors' counters, rejections — is derived from it by reconciliation and can be
rebuilt (`manage.py rebuild_from_node`). Moderation decisions (`Ban`, `ModerationAction`, the
hidden/locked/pinned flags) are the only state that does not come from the node.

Amounts are integers in msat; hashes, ids and pubkeys are lowercase hex.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ListenerCursor(models.Model):
    """How far the listener has read a node's invoice stream, plus the one-listener lease."""

    node_pubkey = models.CharField(max_length=66, unique=True)
    add_index = models.BigIntegerField(default=0)
    settle_index = models.BigIntegerField(default=0)
    # A lease, not a pid file: a listener holds it while its heartbeat is fresh.
    lease_holder = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.node_pubkey[:12]} add={self.add_index} settle={self.settle_index}"


class LedgerEntry(models.Model):
    """One settled payment, in or out, or (hold mode) a cancelled attempt that cost nothing.

    Append-only; only `reconcile_*` bookkeeping changes. Cancelled rows have `status`
    cancelled, no settle index, and `settled_at` holds the time the attempt was turned away.
    """

    class Direction(models.TextChoices):
        IN = "in", "received"
        OUT = "out", "sent"

    class ReconcileState(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "reconciled"
        ERROR = "error", "error (will retry)"

    class Purpose(models.TextChoices):
        MESSAGE = "message", "forum message"  # incoming keysend with forum records
        PART = "part", "message part"
        TOPUP = "topup", "top-up"
        TIP = "tip", "tip"
        OTHER = "other", "other payment"  # incoming without forum records (donation, invoice)
        REFUND = "refund", "refund"  # outgoing
        TIP_FORWARD = "tip_forward", "tip forward"  # outgoing
        # Incoming keysend funding a pubkey's relay balance (record `credit`).
        CREDIT = "credit", "balance credit"
        # An EVENT sent to the relay, paid from its author's balance: no Lightning payment, so
        # no node invoice. `amount_msat` is what the balance paid, written when the reconciler
        # judges it (0 when refused); `settle_index` is the listener cursor's when it was
        # charged, so it sorts after every payment recorded before it (docs/relay.md).
        SPEND = "spend", "paid from balance"

    class Status(models.TextChoices):
        SETTLED = "settled", "settled"  # the money moved: revenue (in) or spent (out)
        # Hold mode turned the payment away: the node cancelled it and the payer kept the sats.
        # Kept so moderators see the attempt; never revenue, never reconciled.
        CANCELLED = "cancelled", "cancelled, not charged"

    payment_hash = models.CharField(max_length=64, unique=True)
    node_pubkey = models.CharField(max_length=66)
    direction = models.CharField(max_length=3, choices=Direction.choices, default=Direction.IN)
    purpose = models.CharField(max_length=12, choices=Purpose.choices, default=Purpose.OTHER)
    amount_msat = models.BigIntegerField()
    fee_msat = models.BigIntegerField(default=0)  # routing fee paid, outgoing only
    add_index = models.BigIntegerField(null=True, blank=True)
    settle_index = models.BigIntegerField(null=True, blank=True, db_index=True)
    settled_at = models.DateTimeField(db_index=True)
    is_keysend = models.BooleanField(default=False)
    # Every custom record as {"<type>": "<hex value>"}, exactly as the node reported it.
    custom_records = models.JSONField(default=dict, blank=True)
    # Derived at write time so reconciliation can order an author's messages without decoding.
    pubkey = models.CharField(max_length=64, blank=True, default="")
    event_id = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.SETTLED)
    reconcile_state = models.CharField(
        max_length=8, choices=ReconcileState.choices, default=ReconcileState.PENDING
    )
    reconcile_attempts = models.PositiveIntegerField(default=0)
    reconcile_error = models.TextField(blank=True, default="")
    reconciled_at = models.DateTimeField(null=True, blank=True)
    # Outgoing rows: what they pay back or forward, and to whom.
    counterparty = models.CharField(max_length=66, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["settle_index", "id"]
        # Every row is written once by the listener and once more when reconciled, so each
        # index costs twice per payment: only the ones a query uses (no LIKE twins, none on
        # the two-valued state columns; partial indexes find the few rows not done).
        indexes = [
            models.Index(fields=["pubkey", "settle_index"]),
            models.Index(fields=["event_id"], name="ledger_event_id"),
            # The reconcile batches claim pending rows in settle order: only those, in order,
            # whatever the size of the ledger behind them.
            models.Index(
                fields=["settle_index", "id"],
                condition=Q(reconcile_state="pending"),
                name="ledger_pending_in_order",
            ),
            models.Index(fields=["id"], condition=Q(reconcile_state="error"), name="ledger_error"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.amount_msat} msat {self.payment_hash[:12]}"


class BoardQuerySet(models.QuerySet):
    def listed(self) -> BoardQuerySet:
        # A private room (it has a password) is never listed, whatever its is_listed says.
        return self.filter(is_listed=True, destroyed_at__isnull=True, password_verifier="")


# The board settings a moderator may change, and what the audit log records before/after (so
# the log is a price history: `forum.ingest.lookups.board_settings_at`).
BOARD_EDITABLE_FIELDS = (
    "title",
    "description",
    "thread_price_msat",
    "reply_price_msat",
    "escalation_window_seconds",
    "escalation_factor",
    "max_content_length",
    "position",
    "is_listed",
    "allow_deletions",
)


class Board(models.Model):
    """A place to post, with its own prices. Private rooms are unlisted boards with a password."""

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    thread_price_msat = models.BigIntegerField(default=10_000)
    reply_price_msat = models.BigIntegerField(default=1_000)
    # Price = base x factor ^ (author's posts on this board within the window before settle time).
    escalation_window_seconds = models.PositiveIntegerField(default=600)
    escalation_factor = models.PositiveIntegerField(default=2)
    max_content_length = models.PositiveIntegerField(default=20_000)  # characters
    position = models.IntegerField(default=0)
    is_listed = models.BooleanField(default=True)
    # NIP-09: may authors retract their own posts here (kind 5)? Off: refused with a reason.
    allow_deletions = models.BooleanField(default=True)
    # Private rooms (rented by keysend; destroyed at expiry).
    password_verifier = models.CharField(max_length=300, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)
    thread_count = models.PositiveIntegerField(default=0)
    post_count = models.PositiveIntegerField(default=0)  # threads + replies, published and visible
    last_activity_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BoardQuerySet.as_manager()

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.slug


class Author(models.Model):
    """Anyone whose signed event reached the forum's ledger."""

    pubkey = models.CharField(max_length=64, unique=True)
    alias = models.CharField(max_length=64, blank=True, default="")
    first_seen_at = models.DateTimeField(default=timezone.now)
    thread_count = models.PositiveIntegerField(default=0)
    reply_count = models.PositiveIntegerField(default=0)
    spent_msat = models.BigIntegerField(default=0)  # everything this author paid for messages
    # The newest published kind 0 profile (by created_at, ties by lowest id): see
    # `forum.ingest.kinds`. Its fields are copied here so every page shows them without a join.
    # Indexed: the relay serves a kind 0 only while an author's row names it (one probe each).
    profile_ref = models.CharField(max_length=64, blank=True, default="", db_index=True)
    profile_created_at = models.BigIntegerField(null=True, blank=True)
    profile_name = models.CharField(max_length=64, blank=True, default="")
    profile_about = models.TextField(blank=True, default="")
    profile_picture = models.CharField(max_length=500, blank=True, default="")
    profile_nip05 = models.CharField(max_length=200, blank=True, default="")
    profile_lud16 = models.CharField(max_length=200, blank=True, default="")
    # NIP-05: the identifier last found to name this key (checked in the background).
    nip05_verified = models.CharField(max_length=200, blank=True, default="")
    nip05_checked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    nip05_error = models.CharField(max_length=300, blank=True, default="")
    # A name a moderator assigned under the forum's own domain (`/.well-known/nostr.json`).
    nip05_local = models.CharField(max_length=64, blank=True, default="", db_index=True)

    PROFILE_FIELDS = (
        "profile_ref",
        "profile_created_at",
        "profile_name",
        "profile_about",
        "profile_picture",
        "profile_nip05",
        "profile_lud16",
        "nip05_verified",
        "nip05_checked_at",
        "nip05_error",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["nip05_local"],
                condition=~Q(nip05_local=""),
                name="author_nip05_local_unique",
            )
        ]

    def __str__(self) -> str:
        return self.pubkey[:16]


class Event(models.Model):
    """A signed Nostr event the forum has received (whole or assembled from parts)."""

    class State(models.TextChoices):
        PENDING = "pending", "waiting (parts, parent or top-up)"
        PUBLISHED = "published", "published"
        REJECTED = "rejected", "rejected"

    event_id = models.CharField(max_length=64, unique=True)
    pubkey = models.CharField(max_length=64)
    kind = models.PositiveIntegerField()
    created_at = models.BigIntegerField()  # the event's own unix timestamp
    raw_json = models.TextField()  # canonical signed JSON, served verbatim for verification
    board = models.ForeignKey(
        Board, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # Why it is waiting, while PENDING: "parts", "parent", "underpaid".
    waiting_for = models.CharField(max_length=12, blank=True, default="")
    paid_msat = models.BigIntegerField(default=0)  # sum of ledger entries for this event
    price_msat = models.BigIntegerField(default=0)  # what it had to pay, fixed at its settle time
    # The settle time/index of the payment that delivered the (complete) event: pricing order.
    settled_at = models.DateTimeField(null=True, blank=True)
    settle_index = models.BigIntegerField(null=True, blank=True)
    ln_node = models.CharField(max_length=66, blank=True, default="")  # refunds/tips go here
    received_at = models.DateTimeField(default=timezone.now)
    # A reply's NIP-22 root (thread) and parent event ids, so orphans are found when they arrive.
    root_ref = models.CharField(max_length=64, blank=True, default="")
    parent_ref = models.CharField(max_length=64, blank=True, default="")
    # When the event passed every check and was paid in full (its own settle, or the top-up's):
    # escalation counts these, by settle index, so the verdict never depends on task order.
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_settle_index = models.BigIntegerField(null=True, blank=True)
    # An edit (kind 1010): the id of the thread or reply it replaces (see `forum.ingest.kinds`).
    target_ref = models.CharField(max_length=64, blank=True, default="")
    # Retracted by its author: the kind 5 deletion (NIP-09) that did it, and its settle time.
    deleted_by_ref = models.CharField(max_length=64, blank=True, default="")
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # No LIKE twins (ids are matched whole) and no pubkey-only index (the first below
        # serves it): every event row is inserted by a batch and updated as its state moves.
        indexes = [
            models.Index(fields=["pubkey", "board", "accepted_settle_index"]),
            models.Index(fields=["state"], name="event_state"),
            models.Index(fields=["root_ref"], name="event_root_ref"),
            models.Index(fields=["parent_ref"], name="event_parent_ref"),
            models.Index(fields=["target_ref"], name="event_target_ref"),
            models.Index(fields=["deleted_by_ref"], name="event_deleted_by_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.event_id[:12]} {self.state}"


class Thread(models.Model):
    """A published kind-11 event: the opening post of a thread."""

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="thread")
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="threads")
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="threads")
    title = models.CharField(max_length=300)
    content = models.TextField()
    settled_at = models.DateTimeField()  # settle time of the payment that published it
    published_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(db_index=True)
    reply_count = models.PositiveIntegerField(default=0)  # visible replies
    sats_msat = models.BigIntegerField(default=0)  # paid for the thread + its replies + tips
    is_hidden = models.BooleanField(default=False)
    is_locked = models.BooleanField(default=False)
    is_pinned = models.BooleanField(default=False)
    # The newest edit (kind 1010) shown instead of the signed original: see `Post`.
    edited_ref = models.CharField(max_length=64, blank=True, default="")
    edited_created_at = models.BigIntegerField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    # The "Hot" rank (`forum.ranking.hot_score`): kept up to date when a reply or a tip lands.
    hot = models.FloatField(default=0.0)

    class Meta:
        indexes = [
            models.Index(fields=["board", "is_hidden", "-last_activity_at"]),
            models.Index(fields=["author", "board", "settled_at"]),
            models.Index(fields=["board", "is_hidden", "-hot"], name="thread_board_hot"),
            models.Index(fields=["-hot"], name="thread_hot"),
            models.Index(fields=["settled_at"], name="thread_settled"),
            # The few hidden threads, for "a reply not in a hidden thread" (search).
            models.Index(fields=["id"], condition=Q(is_hidden=True), name="thread_hidden"),
        ]

    def __str__(self) -> str:
        return self.title


class Post(models.Model):
    """A published kind-1111 reply in a thread."""

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="post")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="posts")
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="posts")
    content = models.TextField()
    number = models.PositiveIntegerField()  # 1, 2, 3 ... within the thread, in publish order
    settled_at = models.DateTimeField()
    published_at = models.DateTimeField(default=timezone.now)
    sats_msat = models.BigIntegerField(default=0)
    is_hidden = models.BooleanField(default=False)
    # The newest edit (kind 1010, by created_at then id) whose content is shown; the original
    # and every edit stay as signed events (`/e/<id>/history`).
    edited_ref = models.CharField(max_length=64, blank=True, default="")
    edited_created_at = models.BigIntegerField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["thread", "number"]
        constraints = [
            models.UniqueConstraint(fields=["thread", "number"], name="post_number_unique")
        ]
        indexes = [models.Index(fields=["author", "board", "settled_at"])]

    def __str__(self) -> str:
        return f"#{self.number} in {self.thread_id}"


class MessagePart(models.Model):
    """One part of a multipart event, kept until the set is complete (then joined) or expires."""

    ledger_entry = models.OneToOneField(LedgerEntry, on_delete=models.CASCADE, related_name="part")
    event_id = models.CharField(max_length=64, db_index=True)
    index = models.PositiveIntegerField()
    count = models.PositiveIntegerField()
    data = models.BinaryField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event_id", "index"], name="part_index_unique")
        ]

    def __str__(self) -> str:
        return f"part {self.index + 1}/{self.count} of {self.event_id[:12]}"


class Rejection(models.Model):
    """Paid but not published, with a machine reason and a sentence for people. Never dropped."""

    class Reason(models.TextChoices):
        MALFORMED = "malformed", "malformed"
        BAD_ID = "bad_id", "bad id"
        BAD_SIGNATURE = "bad_signature", "bad signature"
        UNSUPPORTED_KIND = "unsupported_kind", "unsupported kind"
        UNKNOWN_BOARD = "unknown_board", "unknown board"
        TOO_LARGE = "too_large", "too large"
        UNDERPAID = "underpaid", "underpaid"
        DUPLICATE = "duplicate", "duplicate"
        ORPHAN_TIMEOUT = "orphan_timeout", "parent never arrived"
        INCOMPLETE_PARTS = "incomplete_parts", "incomplete parts"
        BANNED = "banned", "banned"
        THREAD_LOCKED = "thread_locked", "thread locked"
        UNKNOWN_TARGET = "unknown_target", "unknown event for top-up/tip"
        HOLD_EXPIRED = "hold_expired", "held past the hold time"
        UNSUPPORTED_VERSION = "unsupported_version", "unsupported protocol version"
        BAD_CREATED_AT = "bad_created_at", "created_at out of range"
        TARGET_HIDDEN = "target_hidden", "hidden by a moderator"
        INSUFFICIENT_BALANCE = "insufficient_balance", "balance too low"
        NOT_AUTHOR = "not_author", "not the author's event"
        DELETIONS_OFF = "deletions_off", "deletions not allowed"

    reason = models.CharField(max_length=20, choices=Reason.choices, db_index=True)
    message = models.CharField(max_length=500)  # NIP-01 style "prefix: human text"
    amount_msat = models.BigIntegerField(default=0)
    ledger_entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="rejections"
    )
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.CASCADE, related_name="rejections"
    )
    # The event id as announced or computed (hex), even when no Event row could be made.
    event_ref = models.CharField(max_length=64, blank=True, default="", db_index=True)
    pubkey = models.CharField(max_length=64, blank=True, default="", db_index=True)
    board = models.ForeignKey(
        Board, null=True, blank=True, on_delete=models.SET_NULL, related_name="rejections"
    )
    # Set once when refunded; the outgoing ledger row is the record of the money moving back.
    refund_entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunded_rejection",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set when the rejection stopped standing: an underpaid event completed by a top-up, or
    # late parts completing a set. Resolved rejections keep their row but are not refundable.
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class BanQuerySet(models.QuerySet):
    def active(self, at=None) -> BanQuerySet:
        at = at or timezone.now()
        return self.filter(lifted_at__isnull=True, created_at__lte=at).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=at)
        )


class Ban(models.Model):
    """A pubkey barred from posting: payments settled while it is active are rejected `banned`."""

    pubkey = models.CharField(max_length=64, db_index=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = BanQuerySet.as_manager()

    def __str__(self) -> str:
        return f"ban {self.pubkey[:12]}"


class ModerationAction(models.Model):
    """Audit log: every moderation action, append-only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)  # kept even if the user is deleted
    action = models.CharField(max_length=40, db_index=True)  # e.g. "post.hide", "author.ban"
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=100)
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_type}:{self.target_id}"


class TipForward(models.Model):
    """One incoming tip whose author named a node: its share goes on by keysend.

    One row per tip (by the tip's payment hash), made in the same transaction that
    applied the tip, so a crash never loses a forward. `payment_hash` is fixed at creation (the
    preimage is derived from the tip's payment hash, see `services.tips`), so however often a
    forward is retried the node pays it at most once.
    """

    class State(models.TextChoices):
        PENDING = "pending", "waiting to be sent"
        SENT = "sent", "forwarded"
        FAILED = "failed", "failed (gave up)"

    # The natural key: the incoming tip's payment hash. The link to its ledger row is for
    # display; `rebuild_from_node` deletes and re-creates incoming rows, and replaying the tip
    # links it again (the forward itself, sent or not, is never planned twice).
    tip_payment_hash = models.CharField(max_length=64, unique=True)
    tip_entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tip_forward",
    )
    tip_amount_msat = models.BigIntegerField(default=0)
    destination = models.CharField(max_length=66)  # the author's node (`Event.ln_node`)
    # Or, when the post names no node, the author's Lightning Address (kind 0 `lud16`): the
    # forward pays an invoice from the address's LNURL server (`services.lnaddress`), and
    # `payment_request`/`payment_hash` are that invoice's, saved before it is paid.
    address = models.CharField(max_length=320, blank=True, default="")
    payment_request = models.TextField(blank=True, default="")
    amount_msat = models.BigIntegerField()  # the tip minus the forum's share
    payment_hash = models.CharField(max_length=64, unique=True)
    state = models.CharField(
        max_length=8, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    forward_entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="forwarded_tip",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"tip forward {self.payment_hash[:12]} {self.state}"


class ThrottleCounter(models.Model):
    """One fixed-window attempt counter, for deployments without Redis
    (`services.moderation.throttle.DatabaseCounter`; with Redis the counters live there)."""

    key = models.CharField(max_length=64, primary_key=True)
    count = models.IntegerField(default=0)
    expires_ms = models.BigIntegerField(db_index=True)  # the window's end, unix milliseconds

    def __str__(self) -> str:
        return f"{self.key} = {self.count}"


class EventTag(models.Model):
    """The relay's tag index: one row per event and single-letter tag with its first value
    (NIP-01 indexes only those). `key` is a digest of (letter, value), so any value fits an
    index entry; `forum.relay.index` writes and reads it."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="relay_tags")
    key = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "event"], name="forum_eventtag_key_event")
        ]

    def __str__(self) -> str:
        return f"{self.key} on {self.event_id}"


class InvoiceIntent(models.Model):
    """A BOLT11 invoice the forum issued for a message submitted over HTTP (a post paid by
    invoice, a tip): what the payment stands for, kept with its payment hash.

    A keysend carries its message in the onion; an invoice carries nothing, so the message is
    stored here and `custom_records` holds it as the forum's records (`forum.protocol`). When
    the invoice settles, the ledger writes its row with these records (`forum.ingest.invoices`),
    and the row goes through reconciliation exactly like a keysend's. Rebuilding the forum from
    the node needs these rows besides the node's invoices (docs/protocol.md).
    """

    class Purpose(models.TextChoices):
        POST = "post", "post"  # a signed thread or reply, paid by a hold invoice
        TIP = "tip", "tip"
        CREDIT = "credit", "relay balance credit"  # funds a pubkey's balance (docs/relay.md)

    class State(models.TextChoices):
        OPEN = "open", "waiting for payment"
        SETTLED = "settled", "paid"
        CANCELLED = "cancelled", "refused, not charged"
        EXPIRED = "expired", "expired unpaid"

    payment_hash = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    # Hold invoice: the preimage is HMAC(SECRET_KEY, preimage_key), derived when settling, so
    # no preimage is stored. A plain invoice (empty key): the node keeps its own preimage.
    is_hold = models.BooleanField(default=True)
    preimage_key = models.CharField(max_length=200, blank=True, default="")
    event_id = models.CharField(max_length=64, db_index=True)  # the post, or what a tip names
    pubkey = models.CharField(max_length=64, blank=True, default="", db_index=True)
    event_json = models.TextField(blank=True, default="")  # the signed event, as submitted
    payload = models.JSONField(default=dict, blank=True)  # the issuer's own extras (zaps)
    # The forum records this payment stands for, as {"<type>": "<hex>"} (the ledger's shape).
    custom_records = models.JSONField(default=dict, blank=True)
    amount_msat = models.BigIntegerField()
    payment_request = models.TextField()
    memo = models.CharField(max_length=640, blank=True, default="")
    expires_at = models.DateTimeField(db_index=True)
    client = models.CharField(max_length=64, blank=True, default="")  # address bucket that asked
    state = models.CharField(max_length=9, choices=State.choices, default=State.OPEN, db_index=True)
    reason = models.CharField(max_length=20, blank=True, default="")  # why cancelled
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.purpose} invoice {self.payment_hash[:12]} {self.state}"


class SiteSettings(models.Model):
    """Board-independent prices a moderator sets in the console (one row, pk 1).

    Changes are audited (`site.update` with before/after), and the verdict reads the prices
    in force at a payment's settle time (`forum.ingest.lookups.site_settings_at`), as it does
    for boards.
    """

    profile_price_msat = models.BigIntegerField(default=5_000)  # kind 0
    deletion_price_msat = models.BigIntegerField(default=1_000)  # kind 5 (NIP-09)
    edit_price_msat = models.BigIntegerField(default=2_000)  # kind 1010

    EDITABLE_FIELDS = ("profile_price_msat", "deletion_price_msat", "edit_price_msat")

    def __str__(self) -> str:
        return "site settings"

    @classmethod
    def current(cls) -> SiteSettings:
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class Notification(models.Model):
    """Something a pubkey should hear about, written by the batch that publishes its cause:
    a reply to one of its threads or replies, a mention (a `p` tag or `nostr:npub…` in the
    content), a tip to one of its posts. Never for a private room (`forum.ingest.publish`);
    the inbox reads only what the public pages show (`forum.selectors.inbox`)."""

    class Reason(models.TextChoices):
        REPLY = "reply", "reply"
        MENTION = "mention", "mention"
        TIP = "tip", "tip"

    recipient = models.CharField(max_length=64)  # hex pubkey
    reason = models.CharField(max_length=8, choices=Reason.choices)
    # What caused it, once per recipient: the reply's or mention's event id, a tip's payment hash.
    ref = models.CharField(max_length=64)
    actor = models.CharField(max_length=64, blank=True, default="")  # who replied or mentioned
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="+")
    # The reply that replied or mentioned, or the reply tipped; None: the thread's opening post.
    post = models.ForeignKey(
        Post, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    amount_msat = models.BigIntegerField(default=0)  # a tip's amount
    created_at = models.DateTimeField()  # settle time of the payment behind it

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "ref"], name="notification_once")
        ]
        indexes = [models.Index(fields=["recipient", "-id"], name="notification_inbox")]

    def __str__(self) -> str:
        return f"{self.reason} for {self.recipient[:12]}"


class ZapReceipt(models.Model):
    """A NIP-57 zap receipt (kind 9735): a tip paid by an invoice asked for with a zap request,
    signed by the relay's own key (`forum.relay_key`) and served by `/relay`.

    Written in the transaction that applies the tip (`forum.ingest.tips.zap_receipt_prepare`),
    one per paid invoice. The columns are the receipt's filterable tags (`p`, `e`, `P`).
    """

    payment_hash = models.CharField(max_length=64, unique=True)
    receipt_id = models.CharField(max_length=64, unique=True)
    pubkey = models.CharField(max_length=64)  # the relay key that signed it
    recipient = models.CharField(max_length=64, db_index=True)  # `p`: the post's author
    zapped_event_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    sender = models.CharField(max_length=64, db_index=True)  # `P`: who signed the zap request
    amount_msat = models.BigIntegerField()
    created_at = models.BigIntegerField(db_index=True)  # unix seconds: when it was paid
    raw_json = models.TextField()
    # NIP-57: the receipt also goes to the relays the zap request named (best effort,
    # `forum.services.zap_publish`); when that was done, and what each relay answered.
    relays_sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    relays_result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"zap receipt {self.receipt_id[:12]}"
