"""gRPC servicers that make one simulated node look like lnd on the wire.

Subclasses of the generated ``Lightning``, ``Router`` and ``Invoices``
servicers: they validate requests with lnd's error texts and status codes,
call ``Network`` and translate its records to lnd's messages. The macaroon
check is a server interceptor, as lnd's is.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from lightning.rpc import (
    invoices_pb2,
    invoices_pb2_grpc,
    lightning_pb2,
    lightning_pb2_grpc,
    router_pb2_grpc,
)
from lightning.simnet import auth, bolt11
from lightning.simnet.network import (
    CANCELED,
    DEFAULT_FINAL_CLTV_DELTA,
    FAILED,
    IN_FLIGHT,
    SETTLED,
    SUCCEEDED,
    InvoiceRecord,
    Network,
    PaymentRecord,
    PaymentRequest,
    SimnetError,
)
from lightning.types import CUSTOM_RECORD_MIN, KEYSEND_PREIMAGE_RECORD

LND_VERSION = "0.21.2-beta commit=simnet"
MAX_MEMO_SIZE = 1024  # lnd invoices.MaxMemoSize
_ZERO_PREIMAGE = "0" * 64

# Feature bits simnet nodes advertise (lnwire names as lnd prints them).
_NODE_FEATURES = {
    1: "data-loss-protect",
    5: "upfront-shutdown-script",
    7: "gossip-queries",
    9: "tlv-onion",
    13: "static-remote-key",
    14: "payment-addr",
    17: "multi-path-payments",
}
_KEYSEND_FEATURE = (55, "keysend")
_INVOICE_FEATURES = {9: "tlv-onion", 14: "payment-addr", 17: "multi-path-payments"}


def _abort(context: grpc.ServicerContext, err: SimnetError) -> Any:
    context.abort(getattr(grpc.StatusCode, err.code), err.message)


def _features(bits: dict[int, str]) -> dict[int, lightning_pb2.Feature]:
    return {
        bit: lightning_pb2.Feature(name=name, is_required=bit % 2 == 0, is_known=True)
        for bit, name in bits.items()
    }


# -- record -> message --------------------------------------------------------


def invoice_message(inv: InvoiceRecord) -> lightning_pb2.Invoice:
    msg = lightning_pb2.Invoice(
        memo=inv.memo,
        r_preimage=bytes.fromhex(inv.preimage) if inv.preimage else b"",
        r_hash=bytes.fromhex(inv.payment_hash),
        value=inv.value_msat // 1000,
        value_msat=inv.value_msat,
        settled=inv.state == SETTLED,
        creation_date=inv.creation_date,
        settle_date=inv.settle_date,
        payment_request=inv.payment_request,
        expiry=inv.expiry,
        cltv_expiry=inv.cltv_expiry,
        add_index=inv.add_index,
        settle_index=inv.settle_index,
        # lnd fills the deprecated amt_paid with msat (invoicesrpc/utils.go).
        amt_paid=inv.amt_paid_msat,
        amt_paid_sat=inv.amt_paid_msat // 1000,
        amt_paid_msat=inv.amt_paid_msat,
        state=inv.state,
        is_keysend=inv.is_keysend,
        payment_addr=bytes.fromhex(inv.payment_addr),
    )
    if not inv.is_keysend:
        for bit, feature in _features(_INVOICE_FEATURES).items():
            msg.features[bit].CopyFrom(feature)
    for h in inv.htlcs:
        msg.htlcs.append(
            lightning_pb2.InvoiceHTLC(
                chan_id=h["chan_id"],
                htlc_index=h["htlc_index"],
                amt_msat=h["amt_msat"],
                accept_height=h["accept_height"],
                accept_time=h["accept_time"],
                resolve_time=h["resolve_time"],
                expiry_height=h["expiry_height"],
                state=h["state"],
                custom_records={int(t): bytes.fromhex(v) for t, v in h["custom_records"].items()},
                mpp_total_amt_msat=h["mpp_total_amt_msat"],
            )
        )
    return msg


def payment_message(rec: PaymentRecord) -> lightning_pb2.Payment:
    msg = lightning_pb2.Payment(
        payment_hash=rec.payment_hash,
        value=rec.value_msat // 1000,
        creation_date=rec.creation_time_ns // 1_000_000_000,
        fee=rec.fee_msat // 1000,
        # lnd sends an all-zero preimage until the payment succeeds.
        payment_preimage=rec.preimage or _ZERO_PREIMAGE,
        value_sat=rec.value_msat // 1000,
        value_msat=rec.value_msat,
        payment_request=rec.payment_request,
        status=rec.status,
        fee_sat=rec.fee_msat // 1000,
        fee_msat=rec.fee_msat,
        creation_time_ns=rec.creation_time_ns,
        payment_index=rec.payment_index,
        failure_reason=rec.failure_reason,
    )
    for attempt in rec.htlcs:
        route = attempt["route"]
        hops = [
            lightning_pb2.Hop(
                chan_id=h["chan_id"],
                amt_to_forward=h["amt_to_forward_msat"] // 1000,
                fee=h["fee_msat"] // 1000,
                expiry=h["expiry"],
                amt_to_forward_msat=h["amt_to_forward_msat"],
                fee_msat=h["fee_msat"],
                pub_key=h["pub_key"],
                tlv_payload=True,
                custom_records={int(t): bytes.fromhex(v) for t, v in h["custom_records"].items()},
            )
            for h in route["hops"]
        ]
        failure = None
        if "failure_code" in attempt:
            failure = lightning_pb2.Failure(
                code=attempt["failure_code"],
                failure_source_index=attempt["failure_source_index"],
            )
        msg.htlcs.append(
            lightning_pb2.HTLCAttempt(
                attempt_id=attempt["attempt_id"],
                status=attempt["status"],
                route=lightning_pb2.Route(
                    total_time_lock=route["total_time_lock"],
                    total_fees=route["total_fees_msat"] // 1000,
                    total_amt=route["total_amt_msat"] // 1000,
                    hops=hops,
                    total_fees_msat=route["total_fees_msat"],
                    total_amt_msat=route["total_amt_msat"],
                ),
                attempt_time_ns=attempt["attempt_time_ns"],
                resolve_time_ns=attempt["resolve_time_ns"],
                failure=failure,
                preimage=bytes.fromhex(attempt.get("preimage", "")),
            )
        )
    return msg


def _hash_hex(raw: bytes) -> str:
    if len(raw) != 32:
        # lntypes.MakeHash
        raise SimnetError(f"invalid hash length of {len(raw)}, want 32")
    return raw.hex()


def _unmarshall_amt(sat: int, msat: int) -> int:
    # lnrpc.UnmarshallAmt
    if sat and msat:
        raise SimnetError("sat and msat arguments are mutually exclusive")
    return sat * 1000 if sat else msat


# -- auth -----------------------------------------------------------------------


class MacaroonInterceptor(grpc.ServerInterceptor):
    """Refuses calls without exactly one valid macaroon, with lnd's texts (UNKNOWN)."""

    def __init__(self, root_key: bytes) -> None:
        self._root_key = root_key

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        error = auth.check_metadata(tuple(handler_call_details.invocation_metadata), self._root_key)
        if error is None or handler is None:
            return handler

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNKNOWN, error)

        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(deny, **codec)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(deny, **codec)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(deny, **codec)
        return grpc.stream_stream_rpc_method_handler(deny, **codec)


# -- services -------------------------------------------------------------------


class _NodeService:
    def __init__(self, net: Network, node: str, host: str) -> None:
        self.net = net
        self.node = node
        self.host = host

    @property
    def me(self) -> Any:
        return self.net.nodes[self.node]

    def _add_invoice(
        self,
        request: Any,
        value_msat: int,
        *,
        preimage: bytes | None = None,
        hold_hash: str | None = None,
    ) -> InvoiceRecord:
        """AddInvoice and AddHoldInvoice share memo, expiry and cltv fields and checks."""
        if value_msat < 0:
            raise SimnetError("payments of negative value are not allowed")
        if len(request.memo) > MAX_MEMO_SIZE:
            raise SimnetError(
                f"memo too large: {len(request.memo)} bytes (maxsize={MAX_MEMO_SIZE})"
            )
        description_hash = bytes(getattr(request, "description_hash", b""))
        if description_hash and len(description_hash) != 32:
            raise SimnetError(
                f"invalid description_hash length of {len(description_hash)}, want 32"
            )
        if description_hash and request.memo:
            # lnd's zpay32 refuses an invoice with both a description and its hash.
            raise SimnetError("an invoice has a memo or a description hash, not both")
        privkey = self.me.privkey
        return self.net.add_invoice(
            self.node,
            value_msat=value_msat,
            memo=request.memo,
            expiry=request.expiry,
            preimage=preimage,
            cltv_expiry=request.cltv_expiry,
            make_request=lambda rec: bolt11.encode(rec, privkey, description_hash=description_hash),
            hold_hash=hold_hash,
        )

    def _stream_invoices(
        self,
        backlog: list[InvoiceRecord],
        sub: Any,
        context: grpc.ServicerContext,
    ) -> Iterator[lightning_pb2.Invoice]:
        try:
            for inv in backlog:
                yield invoice_message(inv)
            for inv in sub.events(context.is_active):
                yield invoice_message(inv)
            if context.is_active():
                # The network closed the subscription: simnet is stopping.
                context.abort(grpc.StatusCode.UNAVAILABLE, "simnet is shutting down")
        finally:
            self.net.unsubscribe(sub)


class LightningService(_NodeService, lightning_pb2_grpc.LightningServicer):
    def GetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        me = self.me
        channels = self.net.node_channels(self.node)
        active = [c for c in channels if c.active]
        features = dict(_NODE_FEATURES)
        if me.accept_keysend:
            features[_KEYSEND_FEATURE[0]] = _KEYSEND_FEATURE[1]
        height = self.net.block_height
        return lightning_pb2.GetInfoResponse(
            version=LND_VERSION,
            identity_pubkey=me.pubkey,
            alias=me.alias,
            color=me.color,
            num_active_channels=len(active),
            num_inactive_channels=len(channels) - len(active),
            num_peers=len({c.peer(self.node) for c in channels}),
            block_height=height,
            block_hash=hashlib.sha256(f"simnet-block-{height}".encode()).hexdigest(),
            best_header_timestamp=int(time.time()),
            synced_to_chain=True,
            synced_to_graph=True,
            chains=[lightning_pb2.Chain(chain="bitcoin", network="regtest")],
            uris=[f"{me.pubkey}@{self.host}:{me.port}"],
            features=_features(features),
            wallet_synced=True,
        )

    def ListChannels(self, request: Any, context: grpc.ServicerContext) -> Any:
        out = []
        for c in self.net.node_channels(self.node):
            if (request.active_only and not c.active) or (request.inactive_only and c.active):
                continue
            peer = c.peer(self.node)
            peer_node = self.net.nodes[peer]
            if request.peer and request.peer.hex() != peer_node.pubkey:
                continue
            out.append(
                lightning_pb2.Channel(
                    active=c.active,
                    remote_pubkey=peer_node.pubkey,
                    channel_point=c.channel_point,
                    chan_id=c.chan_id,
                    capacity=c.capacity_msat // 1000,
                    local_balance=c.balance[self.node] // 1000,
                    remote_balance=c.balance[peer] // 1000,
                    unsettled_balance=c.pending // 1000,
                    total_satoshis_sent=c.sent.get(self.node, 0) // 1000,
                    total_satoshis_received=c.sent.get(peer, 0) // 1000,
                    num_updates=c.num_updates,
                    initiator=c.node1 == self.node,
                    chan_status_flags="ChanStatusDefault",
                    peer_alias=peer_node.alias if request.peer_alias_lookup else "",
                )
            )
        return lightning_pb2.ListChannelsResponse(channels=out)

    def AddInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            value_msat = _unmarshall_amt(request.value, request.value_msat)
            preimage = request.r_preimage or None
            if preimage is not None and len(preimage) != 32:
                raise SimnetError(f"invalid preimage length of {len(preimage)}, want 32")
            inv = self._add_invoice(request, value_msat, preimage=preimage)
        except SimnetError as err:
            return _abort(context, err)
        return lightning_pb2.AddInvoiceResponse(
            r_hash=bytes.fromhex(inv.payment_hash),
            payment_request=inv.payment_request,
            add_index=inv.add_index,
            payment_addr=bytes.fromhex(inv.payment_addr),
        )

    def LookupInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            if request.r_hash_str:
                try:
                    raw = bytes.fromhex(request.r_hash_str)
                except ValueError as exc:
                    raise SimnetError(f"unable to decode hash: {exc}") from exc
            else:
                raw = request.r_hash
            if len(raw) != 32:
                raise SimnetError("payment hash must be exactly 32 bytes")
            inv = self.net.lookup_invoice(self.node, payment_hash=raw.hex())
        except SimnetError as err:
            return _abort(context, err)
        return invoice_message(inv)

    def ListInvoices(self, request: Any, context: grpc.ServicerContext) -> Any:
        invoices, first, last = self.net.list_invoices(
            self.node,
            index_offset=request.index_offset,
            # lnd: "If not specified, the latest 100 invoices are returned".
            num_max=request.num_max_invoices or 100,
            reversed_=request.reversed,
            pending_only=request.pending_only,
            date_start=request.creation_date_start,
            date_end=request.creation_date_end,
        )
        return lightning_pb2.ListInvoiceResponse(
            invoices=[invoice_message(i) for i in invoices],
            first_index_offset=first,
            last_index_offset=last,
        )

    def SubscribeInvoices(self, request: Any, context: grpc.ServicerContext) -> Any:
        backlog, sub = self.net.subscribe_invoices(
            self.node, request.add_index, request.settle_index
        )
        yield from self._stream_invoices(backlog, sub, context)

    def DecodePayReq(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            decoded = bolt11.decode(request.pay_req)
        except ValueError as exc:
            return _abort(context, SimnetError(str(exc)))
        return lightning_pb2.PayReq(
            destination=decoded.payee,
            payment_hash=decoded.payment_hash,
            num_satoshis=decoded.amount_msat // 1000,
            timestamp=decoded.timestamp,
            expiry=decoded.expiry,
            description=decoded.description,
            description_hash=decoded.description_hash,
            cltv_expiry=decoded.min_final_cltv_expiry,
            payment_addr=bytes.fromhex(decoded.payment_secret),
            num_msat=decoded.amount_msat,
        )

    def ListPayments(self, request: Any, context: grpc.ServicerContext) -> Any:
        payments, total = self.net.list_payments(
            self.node,
            include_incomplete=request.include_incomplete,
            index_offset=request.index_offset,
            max_payments=request.max_payments or 100,
            reversed_=request.reversed,
        )
        return lightning_pb2.ListPaymentsResponse(
            payments=[payment_message(p) for p in payments],
            first_index_offset=payments[0].payment_index if payments else 0,
            last_index_offset=payments[-1].payment_index if payments else 0,
            total_num_payments=total if request.count_total_payments else 0,
        )


class RouterService(_NodeService, router_pb2_grpc.RouterServicer):
    def _payment_request(self, request: Any) -> PaymentRequest:
        fee_limit = _unmarshall_amt(request.fee_limit_sat, request.fee_limit_msat)
        amt = _unmarshall_amt(request.amt, request.amt_msat)
        records = dict(request.dest_custom_records)
        if any(t < CUSTOM_RECORD_MIN for t in records):
            # record.CustomSet.Validate
            raise SimnetError("no custom records with types below 65536 allowed")
        if KEYSEND_PREIMAGE_RECORD in records and request.max_shard_size_msat:
            raise SimnetError(
                "keysend payments cannot specify a max shard amount - "
                "MPP not supported with keysend payments"
            )
        final_cltv = request.final_cltv_delta or DEFAULT_FINAL_CLTV_DELTA
        if request.payment_request:
            try:
                decoded = bolt11.decode(request.payment_request)
            except ValueError as exc:
                raise SimnetError(f"invalid payment request: {exc}") from exc
            if decoded.amount_msat and amt:
                raise SimnetError(
                    "amount must not be specified when paying a non-zero amount invoice"
                )
            if not decoded.amount_msat and not amt:
                raise SimnetError("amount must be specified when paying a zero amount invoice")
            if decoded.timestamp + decoded.expiry < time.time():
                raise SimnetError("invoice expired")
            return PaymentRequest(
                dest=decoded.payee,
                amt_msat=decoded.amount_msat or amt,
                payment_hash=decoded.payment_hash,
                custom_records=records,
                fee_limit_msat=fee_limit,
                final_cltv_delta=decoded.min_final_cltv_expiry or final_cltv,
                payment_request=request.payment_request,
                outgoing_chan_ids=tuple(request.outgoing_chan_ids),
                timeout_seconds=request.timeout_seconds or 60,
                cancelable=request.cancelable,
            )
        if len(request.dest) != 33:
            raise SimnetError(f"invalid vertex length of {len(request.dest)}, want 33")
        if amt <= 0:
            raise SimnetError("amount must be greater than zero")
        return PaymentRequest(
            dest=request.dest.hex(),
            amt_msat=amt,
            payment_hash=_hash_hex(request.payment_hash),
            custom_records=records,
            fee_limit_msat=fee_limit,
            final_cltv_delta=final_cltv,
            outgoing_chan_ids=tuple(request.outgoing_chan_ids),
            # lnd: 0 means 60 s.
            timeout_seconds=request.timeout_seconds or 60,
            cancelable=request.cancelable,
        )

    def SendPaymentV2(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            req = self._payment_request(request)
            self.net.begin_payment(self.node, req.payment_hash)
        except SimnetError as err:
            return _abort(context, err)
        created = time.time_ns()
        # Run the payment before streaming anything: in lnd a payment goes on
        # when the client drops the stream, and a generator closed at its
        # first yield would otherwise never pay.
        in_flight = self.net.in_flight_record(self.node, req)
        record = self.net.execute_payment(self.node, req, created)
        try:
            if not request.no_inflight_updates:
                yield payment_message(record if record.status == IN_FLIGHT else in_flight)
            yield from self._until_final(record, context, cancelable=req.cancelable)
        except GeneratorExit:
            # grpc closes the generator when the client drops the stream.
            if req.cancelable and record.status == IN_FLIGHT:
                self.net.cancel_payment_loop(self.node, req.payment_hash)
            raise

    def _until_final(
        self, record: PaymentRecord, context: grpc.ServicerContext, *, cancelable: bool = False
    ) -> Any:
        """Wait for a held payment to settle or fail, then send its final state."""
        while record.status not in (SUCCEEDED, FAILED):
            if not context.is_active():
                if cancelable:
                    self.net.cancel_payment_loop(self.node, record.payment_hash)
                return
            self.net.wait_payment_change(0.5)
            try:
                record = self.net.lookup_payment(self.node, record.payment_hash) or record
            except SimnetError as err:
                return _abort(context, err)
        yield payment_message(record)

    def TrackPaymentV2(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            payment_hash = _hash_hex(request.payment_hash)
        except SimnetError as err:
            return _abort(context, err)
        sent_in_flight = False
        while True:
            try:
                record = self.net.lookup_payment(self.node, payment_hash)
            except SimnetError as err:
                return _abort(context, err)
            # A retry of a failed hash is being routed right now.
            routing = self.net.is_in_flight(self.node, payment_hash)
            if record is None and not routing:
                # lnd's ErrPaymentNotInitiated
                return _abort(context, SimnetError("payment isn't initiated", "NOT_FOUND"))
            if record is not None and not routing and record.status in (SUCCEEDED, FAILED):
                yield payment_message(record)
                return
            if not sent_in_flight and not request.no_inflight_updates:
                sent_in_flight = True
                if record is not None and record.status == IN_FLIGHT:
                    yield payment_message(record)
                else:
                    yield lightning_pb2.Payment(
                        payment_hash=payment_hash,
                        payment_preimage=_ZERO_PREIMAGE,
                        status=IN_FLIGHT,
                    )
            if not context.is_active():
                return
            self.net.wait_payment_change(0.5)


class InvoicesService(_NodeService, invoices_pb2_grpc.InvoicesServicer):
    def SubscribeSingleInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            current, sub = self.net.subscribe_single(self.node, _hash_hex(request.r_hash))
        except SimnetError as err:
            return _abort(context, err)
        try:
            yield invoice_message(current)
            if current.state in (SETTLED, CANCELED):
                return
            for inv in sub.events(context.is_active):
                yield invoice_message(inv)
                if inv.state in (SETTLED, CANCELED):
                    return
        finally:
            self.net.unsubscribe(sub)

    def CancelInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self.net.cancel_invoice(self.node, _hash_hex(request.payment_hash))
        except SimnetError as err:
            return _abort(context, err)
        return invoices_pb2.CancelInvoiceResp()

    def LookupInvoiceV2(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            ref = request.WhichOneof("invoice_ref")
            if ref == "payment_hash":
                inv = self.net.lookup_invoice(
                    self.node, payment_hash=_hash_hex(request.payment_hash)
                )
            elif ref == "payment_addr":
                inv = self.net.lookup_invoice(self.node, payment_addr=request.payment_addr.hex())
            else:
                raise SimnetError("unable to locate invoice", "NOT_FOUND")
        except SimnetError as err:
            return _abort(context, err)
        return invoice_message(inv)

    def AddHoldInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            payment_hash = _hash_hex(request.hash)
            value_msat = _unmarshall_amt(request.value, request.value_msat)
            inv = self._add_invoice(request, value_msat, hold_hash=payment_hash)
        except SimnetError as err:
            return _abort(context, err)
        return invoices_pb2.AddHoldInvoiceResp(
            payment_request=inv.payment_request,
            add_index=inv.add_index,
            payment_addr=bytes.fromhex(inv.payment_addr),
        )

    def SettleInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            if len(request.preimage) != 32:
                raise SimnetError(f"invalid preimage length of {len(request.preimage)}, want 32")
            self.net.settle_invoice(self.node, request.preimage)
        except SimnetError as err:
            return _abort(context, err)
        return invoices_pb2.SettleInvoiceResp()


def add_services(server: grpc.Server, net: Network, node: str, host: str) -> None:
    lightning_pb2_grpc.add_LightningServicer_to_server(LightningService(net, node, host), server)
    router_pb2_grpc.add_RouterServicer_to_server(RouterService(net, node, host), server)
    invoices_pb2_grpc.add_InvoicesServicer_to_server(InvoicesService(net, node, host), server)
