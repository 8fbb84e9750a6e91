"""The committed stubs match the .proto files, and the .proto files match lnd's wire facts."""

from __future__ import annotations

from pathlib import Path

from lightning.rpc import generate, invoices_pb2, lightning_pb2, router_pb2


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    fresh = {p.name: p.read_text() for p in generate.generate(tmp_path)}
    committed = {p.name: p.read_text() for p in generate.generated_files(generate.RPC_DIR)}
    assert sorted(fresh) == sorted(committed), "generated file set changed"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stubs drifted from .proto, run `python -m lightning.rpc.generate`: {stale}"


def _number(message: type, field: str) -> int:
    return message.DESCRIPTOR.fields_by_name[field].number


def test_lnd_field_numbers() -> None:
    # Spot checks of the facts in shared/LND.md that are easy to get wrong.
    assert _number(lightning_pb2.ListChannelsResponse, "channels") == 11
    assert _number(lightning_pb2.Invoice, "value_msat") == 23
    assert _number(lightning_pb2.Invoice, "is_keysend") == 25
    assert _number(lightning_pb2.Invoice, "amt_paid_msat") == 20
    assert _number(lightning_pb2.InvoiceHTLC, "custom_records") == 9
    assert _number(lightning_pb2.ListInvoiceRequest, "index_offset") == 4
    assert _number(lightning_pb2.ListInvoiceResponse, "first_index_offset") == 3
    assert _number(lightning_pb2.AddInvoiceResponse, "add_index") == 16
    assert _number(lightning_pb2.GetInfoResponse, "identity_pubkey") == 1
    assert _number(lightning_pb2.GetInfoResponse, "version") == 14
    assert _number(lightning_pb2.Payment, "failure_reason") == 16
    assert _number(lightning_pb2.HTLCAttempt, "attempt_id") == 7
    assert _number(lightning_pb2.MPPRecord, "payment_addr") == 11
    assert _number(router_pb2.SendPaymentRequest, "dest_custom_records") == 11
    assert _number(router_pb2.SendPaymentRequest, "fee_limit_msat") == 13
    assert _number(router_pb2.SendPaymentRequest, "outgoing_chan_ids") == 19
    assert "outgoing_chan_id" not in router_pb2.SendPaymentRequest.DESCRIPTOR.fields_by_name
    assert _number(invoices_pb2.SubscribeSingleInvoiceRequest, "r_hash") == 2
    assert lightning_pb2.PaymentFailureReason.Value("FAILURE_REASON_INSUFFICIENT_BALANCE") == 5
    assert lightning_pb2.Payment.PaymentStatus.Value("INITIATED") == 4
    assert lightning_pb2.FeatureBit.Value("TLV_ONION_OPT") == 9


def test_service_paths() -> None:
    def methods(module: object, service: str) -> set[str]:
        desc = module.DESCRIPTOR.services_by_name[service]  # type: ignore[attr-defined]
        return {f"/{desc.full_name}/{m.name}" for m in desc.methods}

    assert {
        "/lnrpc.Lightning/GetInfo",
        "/lnrpc.Lightning/AddInvoice",
        "/lnrpc.Lightning/LookupInvoice",
        "/lnrpc.Lightning/ListInvoices",
        "/lnrpc.Lightning/SubscribeInvoices",
        "/lnrpc.Lightning/ListChannels",
        "/lnrpc.Lightning/ListPayments",
    } <= methods(lightning_pb2, "Lightning")
    assert {
        "/routerrpc.Router/SendPaymentV2",
        "/routerrpc.Router/TrackPaymentV2",
    } == methods(router_pb2, "Router")
    assert {
        "/invoicesrpc.Invoices/SubscribeSingleInvoice",
        "/invoicesrpc.Invoices/CancelInvoice",
        "/invoicesrpc.Invoices/AddHoldInvoice",
        "/invoicesrpc.Invoices/SettleInvoice",
        "/invoicesrpc.Invoices/LookupInvoiceV2",
    } == methods(invoices_pb2, "Invoices")


def test_only_client_and_simnet_import_stubs() -> None:
    package = Path(generate.__file__).resolve().parent.parent
    offenders = []
    for path in package.rglob("*.py"):
        rel = path.relative_to(package)
        if rel.parts[0] in ("rpc", "simnet") or rel.name == "client.py":
            continue
        if "_pb2" in path.read_text():
            offenders.append(str(rel))
    assert not offenders


def test_lightning_does_not_import_django() -> None:
    package = Path(generate.__file__).resolve().parent.parent
    for path in package.rglob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path
