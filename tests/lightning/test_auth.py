"""TLS and macaroon handling, failing the way lnd fails."""

from __future__ import annotations

import pytest

from lightning import lndconnect
from lightning.client import LightningClient
from lightning.simnet import MACAROON_SUBPATH, SimNet
from lightning.types import LightningAuthError, LightningUnavailable


def test_files_where_lnd_keeps_them(simnet: SimNet, tmp_path) -> None:
    node_dir = tmp_path / "simnet" / "alice"
    assert (node_dir / "tls.cert").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert (node_dir / "tls.key").exists()
    macaroon = node_dir / "data/chain/bitcoin/regtest/admin.macaroon"
    assert macaroon == node_dir / MACAROON_SUBPATH == simnet.nodes["alice"].macaroon_path
    assert macaroon.read_bytes()[0] == 2  # macaroon v2 binary format


def test_missing_macaroon(simnet: SimNet) -> None:
    node = simnet.nodes["forum"]
    with LightningClient(
        node.grpc_address, tls_cert=node.tls_cert_path.read_bytes(), macaroon=None
    ) as client:
        with pytest.raises(LightningAuthError, match="expected 1 macaroon, got 0") as exc_info:
            client.get_info()
        assert exc_info.value.code == "UNKNOWN"
        with pytest.raises(LightningAuthError, match="expected 1 macaroon, got 0"):
            next(client.subscribe_invoices())
        with pytest.raises(LightningAuthError):
            client.keysend(simnet.nodes["alice"].pubkey, 1_000, {})


def test_wrong_macaroon(simnet: SimNet) -> None:
    forum, alice = simnet.nodes["forum"], simnet.nodes["alice"]
    with (
        LightningClient(
            forum.grpc_address,
            tls_cert=forum.tls_cert_path.read_bytes(),
            macaroon=alice.macaroon_path.read_bytes(),
        ) as client,
        pytest.raises(
            LightningAuthError,
            match="verification failed: signature mismatch after caveat verification",
        ),
    ):
        client.get_info()


def test_garbage_macaroon(simnet: SimNet) -> None:
    forum = simnet.nodes["forum"]
    with (
        LightningClient(
            forum.grpc_address,
            tls_cert=forum.tls_cert_path.read_bytes(),
            macaroon=b"not a macaroon",
        ) as client,
        pytest.raises(LightningAuthError, match="macaroon"),
    ):
        client.list_channels()


def test_wrong_tls_certificate(simnet: SimNet) -> None:
    forum, alice = simnet.nodes["forum"], simnet.nodes["alice"]
    with (
        LightningClient(
            forum.grpc_address,
            tls_cert=alice.tls_cert_path.read_bytes(),
            macaroon=forum.macaroon_path.read_bytes(),
            timeout=3,
        ) as client,
        pytest.raises(LightningUnavailable),
    ):
        client.get_info()


def test_lndconnect_roundtrip(simnet: SimNet) -> None:
    node = simnet.nodes["bob"]
    uri = node.lndconnect_uri()
    assert uri.startswith(f"lndconnect://{node.grpc_address}?cert=")
    parsed = lndconnect.parse(uri)
    assert parsed.host == node.grpc_address
    assert parsed.macaroon == node.macaroon_path.read_bytes()
    assert lndconnect.pem_to_der(parsed.tls_cert or b"") == lndconnect.pem_to_der(
        node.tls_cert_path.read_bytes()
    )
    # Without a cert (CA-signed nodes) and without a port (lnd's default).
    bare = lndconnect.parse("lndconnect://node.example?macaroon=AgEDbG5k")
    assert (bare.host, bare.tls_cert, bare.macaroon) == (
        "node.example:10009",
        None,
        b"\x02\x01\x03lnd",
    )


def test_invoice_events_raise_auth_errors_instead_of_retrying(simnet: SimNet) -> None:
    forum = simnet.nodes["forum"]
    with (
        LightningClient(
            forum.grpc_address, tls_cert=forum.tls_cert_path.read_bytes(), macaroon=None
        ) as client,
        pytest.raises(LightningAuthError),
    ):
        next(client.invoice_events(add_index=0, settle_index=0))
