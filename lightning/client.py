"""A typed, synchronous lnd gRPC client: the only hand-written user of the stubs.

It speaks lnd's wire protocol (TLS + hex macaroon in the ``macaroon`` metadata
key), so the same code runs against a real lnd and against ``lightning.simnet``.
Results are the frozen dataclasses of ``lightning.types``; gRPC errors become
``LightningError`` subclasses.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc

from lightning import lndconnect
from lightning.rpc import (
    invoices_pb2,
    invoices_pb2_grpc,
    lightning_pb2,
    lightning_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from lightning.types import (
    CUSTOM_RECORD_MIN,
    KEYSEND_PREIMAGE_RECORD,
    Channel,
    Invoice,
    InvoiceHtlc,
    InvoiceNotFound,
    InvoicePage,
    LightningAuthError,
    LightningError,
    LightningRequestError,
    LightningUnavailable,
    NodeInfo,
    Payment,
    PaymentAlreadyExists,
    PaymentNotFound,
    PayReq,
)

# lnrpc.MaxGrpcMsgSize: ListInvoices on a busy node easily exceeds grpc's 4 MiB.
MAX_MESSAGE_SIZE = 200 * 1024 * 1024

# lnwallet.DefaultRoutingFeeLimitForAmount, which lncli uses when no limit is
# given: 100% up to 1000 sat (base fees dominate small payments), then 5%.
_FEE_100_PERCENT_UP_TO_MSAT = 1_000_000
_DEFAULT_FEE_PERCENT = 5

_ZERO_PREIMAGE = "0" * 64
_FINAL_STATUSES = ("SUCCEEDED", "FAILED")
_AUTH_MARKERS = ("macaroon", "verification failed", "permission denied")


def default_fee_limit_msat(amt_msat: int) -> int:
    """lnd's default routing fee limit for an amount (see lncli sendpayment)."""
    if amt_msat <= _FEE_100_PERCENT_UP_TO_MSAT:
        return amt_msat
    return amt_msat * _DEFAULT_FEE_PERCENT // 100


def _translate(
    exc: grpc.RpcError, *, not_found: type[LightningError] = InvoiceNotFound
) -> LightningError:
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    name = code.name if code is not None else ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return LightningUnavailable(details, code=name)
    # A server shutting down cancels its streams; for us that is "gone".
    if code == grpc.StatusCode.CANCELLED:
        return LightningUnavailable(details, code=name)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) or any(
        marker in details.lower() for marker in _AUTH_MARKERS
    ):
        return LightningAuthError(details, code=name)
    if code == grpc.StatusCode.NOT_FOUND:
        return not_found(details, code=name)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return PaymentAlreadyExists(details, code=name)
    return LightningRequestError(details, code=name)


def _hash_bytes(payment_hash: str) -> bytes:
    try:
        raw = bytes.fromhex(payment_hash)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise LightningRequestError("payment hash must be exactly 32 bytes (64 hex characters)")
    return raw


def _invoice(msg: lightning_pb2.Invoice) -> Invoice:
    state_name = lightning_pb2.InvoiceHTLCState.Name
    htlcs = tuple(
        InvoiceHtlc(
            chan_id=h.chan_id,
            htlc_index=h.htlc_index,
            amt_msat=h.amt_msat,
            state=state_name(h.state),
            accept_time=h.accept_time,
            resolve_time=h.resolve_time,
            custom_records=dict(h.custom_records),
        )
        for h in msg.htlcs
    )
    return Invoice(
        payment_hash=msg.r_hash.hex(),
        preimage=msg.r_preimage.hex() if msg.r_preimage else None,
        memo=msg.memo,
        value_msat=msg.value_msat or msg.value * 1000,
        amt_paid_msat=msg.amt_paid_msat,
        state=lightning_pb2.Invoice.InvoiceState.Name(msg.state),
        is_keysend=msg.is_keysend,
        add_index=msg.add_index,
        settle_index=msg.settle_index,
        creation_date=msg.creation_date,
        settle_date=msg.settle_date,
        payment_request=msg.payment_request,
        htlcs=htlcs,
    )


def _payment(msg: lightning_pb2.Payment) -> Payment:
    succeeded = [a for a in msg.htlcs if a.status == lightning_pb2.HTLCAttempt.SUCCEEDED]
    preimage = msg.payment_preimage
    return Payment(
        payment_hash=msg.payment_hash,
        # lnd reports an all-zero preimage until the payment succeeds.
        preimage="" if preimage in ("", _ZERO_PREIMAGE) else preimage,
        value_msat=msg.value_msat,
        fee_msat=msg.fee_msat,
        status=lightning_pb2.Payment.PaymentStatus.Name(msg.status),
        failure_reason=lightning_pb2.PaymentFailureReason.Name(msg.failure_reason),
        route_length=len(succeeded[-1].route.hops) if succeeded else 0,
        payment_index=msg.payment_index,
        creation_time_ns=msg.creation_time_ns,
    )


def _channel(msg: lightning_pb2.Channel) -> Channel:
    return Channel(
        chan_id=msg.chan_id,
        remote_pubkey=msg.remote_pubkey,
        capacity_sat=msg.capacity,
        local_balance_sat=msg.local_balance,
        remote_balance_sat=msg.remote_balance,
        active=msg.active,
        channel_point=msg.channel_point,
    )


class _IndexCursor:
    """Highest index below which every event has been seen, plus seen ones above.

    add and settle indices are dense (1, 2, 3, ...), so after a reconnect we
    resubscribe from the contiguous watermark and drop re-delivered events.
    A start of 0 ("no backlog") is pinned lazily to the first index seen.
    """

    # Seen indices kept above the watermark before old gaps are given up on.
    _MAX_PENDING = 1000

    def __init__(self, start: int) -> None:
        self._mark: int | None = start if start > 0 else None
        self._above: set[int] = set()

    @property
    def pinned(self) -> bool:
        return self._mark is not None

    def seen(self, index: int) -> bool:
        return (self._mark is not None and index <= self._mark) or index in self._above

    def add(self, index: int) -> None:
        if index <= 0 or self.seen(index):
            return
        self._above.add(index)
        if len(self._above) > self._MAX_PENDING:
            # A gap this old is one the stream will never fill (events from
            # before the subscription started): stop waiting for it.
            self._pin()
        self._advance()

    def resume_index(self) -> int:
        if self._mark is None:
            if not self._above:
                return 0
            self._pin()
        self._advance()
        assert self._mark is not None
        return self._mark

    def _pin(self) -> None:
        self._mark = max(self._mark or 0, min(self._above) - 1)

    def _advance(self) -> None:
        if self._mark is None:
            return
        while self._mark + 1 in self._above:
            self._mark += 1
            self._above.discard(self._mark)


class LightningClient:
    """Typed access to one lnd node over gRPC."""

    def __init__(
        self,
        host: str,
        *,
        tls_cert: bytes | None,
        macaroon: bytes | None,
        timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.timeout = timeout
        # No cert: trust the system roots (nodes behind a CA-signed certificate).
        credentials = grpc.ssl_channel_credentials(root_certificates=tls_cert)
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
            ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
            # grpc's default reconnect backoff grows to 120 s; a restarted
            # node should be picked up within a couple of seconds.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        self._channel = grpc.secure_channel(host, credentials, options=options)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("macaroon", macaroon.hex()),) if macaroon else ()
        )
        self._lightning = lightning_pb2_grpc.LightningStub(self._channel)
        self._router = router_pb2_grpc.RouterStub(self._channel)
        self._invoices = invoices_pb2_grpc.InvoicesStub(self._channel)

    # -- construction -------------------------------------------------------

    @classmethod
    def from_files(
        cls,
        host: str,
        tls_cert_path: str | Path | None,
        macaroon_path: str | Path | None,
        **kw: Any,
    ) -> Self:
        """Connect with lnd's files (``tls.cert``, ``admin.macaroon``)."""
        cert = Path(tls_cert_path).read_bytes() if tls_cert_path else None
        mac = Path(macaroon_path).read_bytes() if macaroon_path else None
        return cls(host, tls_cert=cert, macaroon=mac, **kw)

    @classmethod
    def from_lndconnect(cls, uri: str, **kw: Any) -> Self:
        """Connect with an ``lndconnect://`` URI."""
        parsed = lndconnect.parse(uri)
        return cls(parsed.host, tls_cert=parsed.tls_cert, macaroon=parsed.macaroon, **kw)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------

    def _unary(
        self,
        method: Any,
        request: Any,
        *,
        not_found: type[LightningError] = InvoiceNotFound,
    ) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc, not_found=not_found) from exc

    # -- node -----------------------------------------------------------------

    def get_info(self) -> NodeInfo:
        msg = self._unary(self._lightning.GetInfo, lightning_pb2.GetInfoRequest())
        return NodeInfo(
            identity_pubkey=msg.identity_pubkey,
            alias=msg.alias,
            block_height=msg.block_height,
            synced_to_chain=msg.synced_to_chain,
            uris=tuple(msg.uris),
            version=msg.version,
        )

    def list_channels(self) -> tuple[Channel, ...]:
        msg = self._unary(self._lightning.ListChannels, lightning_pb2.ListChannelsRequest())
        return tuple(_channel(c) for c in msg.channels)

    # -- invoices -------------------------------------------------------------

    def add_invoice(
        self,
        *,
        value_msat: int,
        memo: str = "",
        expiry: int = 3600,
        preimage: bytes | None = None,
        description_hash: bytes | None = None,
    ) -> Invoice:
        """A regular invoice; with ``description_hash`` (LNURL-pay, zaps) the payment request
        carries that hash instead of the memo (lnd takes one or the other)."""
        request = lightning_pb2.Invoice(
            memo=memo,
            value_msat=value_msat,
            expiry=expiry,
            r_preimage=preimage or b"",
            description_hash=description_hash or b"",
        )
        msg = self._unary(self._lightning.AddInvoice, request)
        return self.lookup_invoice(msg.r_hash.hex())

    def lookup_invoice(self, payment_hash: str) -> Invoice:
        request = lightning_pb2.PaymentHash(r_hash=_hash_bytes(payment_hash))
        return _invoice(self._unary(self._lightning.LookupInvoice, request))

    def list_invoices(
        self,
        *,
        index_offset: int = 0,
        num_max_invoices: int = 100,
        reversed: bool = False,
        pending_only: bool = False,
    ) -> InvoicePage:
        request = lightning_pb2.ListInvoiceRequest(
            index_offset=index_offset,
            num_max_invoices=num_max_invoices,
            reversed=reversed,
            pending_only=pending_only,
        )
        msg = self._unary(self._lightning.ListInvoices, request)
        return InvoicePage(
            invoices=tuple(_invoice(i) for i in msg.invoices),
            first_index_offset=msg.first_index_offset,
            last_index_offset=msg.last_index_offset,
        )

    def iter_invoices(self, *, index_offset: int = 0, page_size: int = 500) -> Iterator[Invoice]:
        """Every invoice with add_index > index_offset, oldest first, page by page."""
        while True:
            page = self.list_invoices(index_offset=index_offset, num_max_invoices=page_size)
            yield from page.invoices
            if len(page.invoices) < page_size or page.last_index_offset <= index_offset:
                return
            index_offset = page.last_index_offset

    # -- hold invoices (invoicesrpc) ------------------------------------------

    def add_hold_invoice(
        self,
        *,
        payment_hash: str,
        value_msat: int,
        memo: str = "",
        expiry: int = 3600,
        private: bool = False,
        description_hash: bytes | None = None,
    ) -> Invoice:
        """An invoice whose preimage we keep: a payment leaves it ACCEPTED until
        ``settle_invoice`` (or ``cancel_invoice``) releases it. ``private``: lnd adds route
        hints for the node's private channels; ``description_hash`` as in ``add_invoice``."""
        request = invoices_pb2.AddHoldInvoiceRequest(
            hash=_hash_bytes(payment_hash),
            value_msat=value_msat,
            memo=memo,
            expiry=expiry,
            private=private,
            description_hash=description_hash or b"",
        )
        self._unary(self._invoices.AddHoldInvoice, request)
        return self.lookup_invoice(payment_hash)

    def settle_invoice(self, preimage: bytes) -> None:
        """Settle an ACCEPTED hold invoice (or keysend held by --keysend-hold-time)."""
        self._unary(self._invoices.SettleInvoice, invoices_pb2.SettleInvoiceMsg(preimage=preimage))

    def cancel_invoice(self, payment_hash: str) -> None:
        """Cancel an OPEN or ACCEPTED invoice; an accepted payment fails back to its sender."""
        request = invoices_pb2.CancelInvoiceMsg(payment_hash=_hash_bytes(payment_hash))
        self._unary(self._invoices.CancelInvoice, request)

    def subscribe_single_invoice(self, payment_hash: str) -> Iterator[Invoice]:
        """Every state of one invoice, the current one first (ACCEPTED and CANCELED too)."""
        request = invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=_hash_bytes(payment_hash))
        call = self._invoices.SubscribeSingleInvoice(request, metadata=self._metadata)
        return self._iterate_invoices(call, ends_ok=True)

    def subscribe_invoices(self, *, add_index: int = 0, settle_index: int = 0) -> Iterator[Invoice]:
        """One raw SubscribeInvoices stream; raises LightningUnavailable when it drops.

        lnd semantics: an index of 0 replays nothing; otherwise every invoice
        with a strictly greater index is replayed (adds, then settles) before
        live events. Only OPEN (add) and SETTLED events are sent.
        """
        # Opened here, not at the first next(): events after this call are not missed.
        call = self._open_invoice_stream(add_index, settle_index)
        return self._iterate_invoices(call)

    def _open_invoice_stream(self, add_index: int, settle_index: int) -> Any:
        request = lightning_pb2.InvoiceSubscription(add_index=add_index, settle_index=settle_index)
        return self._lightning.SubscribeInvoices(request, metadata=self._metadata)

    @staticmethod
    def _read_invoice_stream(call: Any, *, ends_ok: bool = False) -> Iterator[Invoice]:
        try:
            for msg in call:
                yield _invoice(msg)
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        if not ends_ok:
            # lnd never ends SubscribeInvoices by itself: an end is a drop.
            raise LightningUnavailable("invoice stream ended", code="OK")

    @classmethod
    def _iterate_invoices(cls, call: Any, *, ends_ok: bool = False) -> Iterator[Invoice]:
        try:
            yield from cls._read_invoice_stream(call, ends_ok=ends_ok)
        finally:
            call.cancel()

    def invoice_events(
        self,
        *,
        add_index: int,
        settle_index: int,
        stop: threading.Event | None = None,
        max_backoff: float = 10.0,
    ) -> Iterator[Invoice]:
        """SubscribeInvoices that survives node restarts and network drops.

        Starts like ``subscribe_invoices``; when the stream drops it backs off
        exponentially (up to ``max_backoff`` s) and resubscribes from the
        highest indices below which everything has been seen, dropping events
        it already yielded. Returns when ``stop`` is set. Auth errors and
        request errors are raised, not retried.
        """
        stop = stop or threading.Event()
        adds, settles = _IndexCursor(add_index), _IndexCursor(settle_index)
        initial_delay = delay = 0.1
        while not stop.is_set():
            call = self._open_invoice_stream(adds.resume_index(), settles.resume_index())
            # Cancelling the call is the only way to interrupt a blocked read.
            watcher = threading.Thread(target=_cancel_on, args=(stop, call), daemon=True)
            watcher.start()
            started = time.monotonic()
            try:
                for inv in self._read_invoice_stream(call):
                    delay = initial_delay
                    if inv.state == "SETTLED":
                        duplicate = settles.seen(inv.settle_index)
                        settles.add(inv.settle_index)
                        if adds.pinned:
                            adds.add(inv.add_index)
                    else:
                        duplicate = adds.seen(inv.add_index)
                        adds.add(inv.add_index)
                    if not duplicate:
                        yield inv
            except LightningUnavailable:
                if stop.is_set():
                    return
                if time.monotonic() - started > max_backoff:
                    delay = initial_delay
            finally:
                call.cancel()
            stop.wait(delay)
            delay = min(delay * 2, max_backoff)

    # -- payments -------------------------------------------------------------

    def keysend(
        self,
        dest: str,
        amt_msat: int,
        records: Mapping[int, bytes],
        *,
        fee_limit_msat: int | None = None,
        timeout_seconds: int = 60,
        preimage: bytes | None = None,
    ) -> Payment:
        """Pay ``dest`` spontaneously with ``records`` in the onion; returns the final Payment.

        Like ``lncli sendpayment --keysend``: a random 32-byte preimage goes in
        record 5482373484 and the payment hash is its sha256. Record types
        below 65536 are refused before anything is sent, as lnd refuses them.
        ``fee_limit_msat=None`` uses lnd's default limit; 0 means zero-fee
        routes only.
        """
        try:
            dest_bytes = bytes.fromhex(dest)
        except ValueError:
            dest_bytes = b""
        if len(dest_bytes) != 33:
            raise LightningRequestError("dest must be a 33-byte compressed pubkey in hex")
        if amt_msat <= 0:
            raise LightningRequestError("amount must be greater than zero")
        if any(t < CUSTOM_RECORD_MIN for t in records):
            # lnd's text (record/custom_records.go).
            raise LightningRequestError("no custom records with types below 65536 allowed")
        if KEYSEND_PREIMAGE_RECORD in records:
            raise LightningRequestError(
                f"record {KEYSEND_PREIMAGE_RECORD} is the keysend preimage; pass preimage= instead"
            )
        preimage = preimage if preimage is not None else secrets.token_bytes(32)
        if len(preimage) != 32:
            raise LightningRequestError("preimage must be 32 bytes")
        request = router_pb2.SendPaymentRequest(
            dest=dest_bytes,
            amt_msat=amt_msat,
            payment_hash=hashlib.sha256(preimage).digest(),
            dest_custom_records={**records, KEYSEND_PREIMAGE_RECORD: preimage},
            fee_limit_msat=(
                default_fee_limit_msat(amt_msat) if fee_limit_msat is None else fee_limit_msat
            ),
            timeout_seconds=timeout_seconds,
            # Lets lnd keysend to nodes it has no graph features for (sphinx-relay does the same).
            dest_features=[lightning_pb2.TLV_ONION_OPT],
            no_inflight_updates=True,
        )
        return self._send_payment(request, timeout_seconds)

    def decode_pay_req(self, payment_request: str) -> PayReq:
        """The node's reading of a BOLT 11 payment request (lnd's DecodePayReq)."""
        msg = self._unary(
            self._lightning.DecodePayReq, lightning_pb2.PayReqString(pay_req=payment_request)
        )
        return PayReq(
            destination=msg.destination,
            payment_hash=msg.payment_hash,
            amount_msat=msg.num_msat or msg.num_satoshis * 1000,
            description=msg.description,
            description_hash=msg.description_hash,
            timestamp=msg.timestamp,
            expiry=msg.expiry,
        )

    def pay_invoice(
        self,
        payment_request: str,
        *,
        amt_msat: int = 0,
        fee_limit_msat: int | None = None,
        timeout_seconds: int = 60,
    ) -> Payment:
        """Pay a BOLT 11 payment request; ``amt_msat`` only for zero-amount invoices."""
        request = router_pb2.SendPaymentRequest(
            payment_request=payment_request,
            amt_msat=amt_msat,
            timeout_seconds=timeout_seconds,
            no_inflight_updates=True,
        )
        if fee_limit_msat is not None:
            request.fee_limit_msat = fee_limit_msat
        else:
            # The amount is inside the request; lnd's default needs it, so decode first.
            decoded = self._unary(
                self._lightning.DecodePayReq, lightning_pb2.PayReqString(pay_req=payment_request)
            )
            request.fee_limit_msat = default_fee_limit_msat(decoded.num_msat or amt_msat)
        return self._send_payment(request, timeout_seconds)

    def _send_payment(
        self, request: router_pb2.SendPaymentRequest, timeout_seconds: int
    ) -> Payment:
        # The deadline covers lnd's own payment timeout plus our usual margin.
        stream = self._router.SendPaymentV2(
            request, timeout=timeout_seconds + self.timeout, metadata=self._metadata
        )
        return self._final_payment(stream, request.payment_hash.hex())

    def track_payment(self, payment_hash: str, *, wait: bool = False) -> Payment:
        """The payment's current state, or with ``wait`` its final state."""
        request = router_pb2.TrackPaymentRequest(
            payment_hash=_hash_bytes(payment_hash), no_inflight_updates=False
        )
        stream = self._router.TrackPaymentV2(
            request, timeout=None if wait else self.timeout, metadata=self._metadata
        )
        try:
            if not wait:
                try:
                    return _payment(next(iter(stream)))
                except StopIteration:
                    raise LightningUnavailable("payment stream ended", code="OK") from None
                except grpc.RpcError as exc:
                    raise _translate(exc, not_found=PaymentNotFound) from exc
            return self._final_payment(stream, payment_hash)
        finally:
            stream.cancel()

    def _final_payment(self, stream: Any, payment_hash: str) -> Payment:
        last: Payment | None = None
        try:
            for msg in stream:
                last = _payment(msg)
                if last.status in _FINAL_STATUSES:
                    return last
        except grpc.RpcError as exc:
            raise _translate(exc, not_found=PaymentNotFound) from exc
        finally:
            stream.cancel()
        if last is not None:
            return last
        raise LightningUnavailable(f"payment stream for {payment_hash} ended without a status")

    def list_payments(
        self,
        *,
        include_incomplete: bool = True,
        index_offset: int = 0,
        max_payments: int = 100,
        reversed: bool = False,
    ) -> tuple[Payment, ...]:
        request = lightning_pb2.ListPaymentsRequest(
            include_incomplete=include_incomplete,
            index_offset=index_offset,
            max_payments=max_payments,
            reversed=reversed,
        )
        msg = self._unary(self._lightning.ListPayments, request)
        return tuple(_payment(p) for p in msg.payments)


def _cancel_on(stop: threading.Event, call: Any) -> None:
    # Returns when the stop flag is set or the call finished on its own.
    while not stop.wait(0.5):
        if not call.is_active():
            return
    call.cancel()
