"""``python -m lightning.pay`` and ``python -m lightning.simnet`` as a newcomer runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning import pay
from lightning.simnet import SimNet

ROOT = Path(__file__).resolve().parents[2]


def test_parse_data_like_lncli() -> None:
    assert pay.parse_data("3438382=0a21ff,65537=") == {3438382: b"\x0a\x21\xff", 65537: b""}
    with pytest.raises(ValueError, match="invalid data format"):
        pay.parse_data("65537")
    with pytest.raises(ValueError, match="invalid data format"):
        pay.parse_data("65537=zz")


def test_pay_keysend_with_lndconnect(simnet: SimNet, capsys: pytest.CaptureFixture[str]) -> None:
    forum = simnet.nodes["forum"]
    code = pay.main(
        [
            "--lndconnect",
            simnet.nodes["bob"].lndconnect_uri(),
            "--keysend",
            "--dest",
            forum.pubkey,
            "--amt",
            "21",
            "--data",
            "34349334=68656c6c6f,65537=0a21ff",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["status"] == "SUCCEEDED" and result["value_msat"] == 21_000
    assert result["route_length"] == 2
    with forum.client() as client:
        invoice = client.lookup_invoice(result["payment_hash"])
    assert invoice.custom_records[34349334] == b"hello"
    assert invoice.custom_records[65537] == b"\x0a\x21\xff"


def test_pay_with_cert_and_macaroon_paths_subprocess(simnet: SimNet) -> None:
    alice = simnet.nodes["alice"]
    args = [
        sys.executable,
        "-m",
        "lightning.pay",
        "--rpcserver",
        alice.grpc_address,
        "--tlscertpath",
        str(alice.tls_cert_path),
        "--macaroonpath",
        str(alice.macaroon_path),
        "--keysend",
        "--dest",
        simnet.nodes["forum"].pubkey,
        "--amt",
        "1",
    ]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "SUCCEEDED"
    # A refused record type is an RPC-side usage error: exit 2, lnd's text.
    done = subprocess.run(
        [*args, "--data", "100=00"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "no custom records with types below 65536 allowed" in done.stderr


def test_pay_failure_exits_1(simnet: SimNet, capsys: pytest.CaptureFixture[str]) -> None:
    code = pay.main(
        [
            "--lndconnect",
            simnet.nodes["alice"].lndconnect_uri(),
            "--keysend",
            "--dest",
            simnet.nodes["router1"].pubkey,
            "--amt",
            "1",
        ]
    )
    assert code == 1
    assert json.loads(capsys.readouterr().out)["failure_reason"] == (
        "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
    )


def test_simnet_command_prints_nodes_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning.simnet", "--data-dir", str(tmp_path / "net")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in range(5)]
        assert [line[0] for line in lines] == ["forum", "router1", "router2", "alice", "bob"]
        for _name, pubkey, address, uri in lines:
            assert len(pubkey) == 66 and address.startswith("127.0.0.1:")
            assert uri.startswith(f"lndconnect://{address}?cert=") and "&macaroon=" in uri
        bob_uri, forum_pubkey = lines[4][3], lines[0][1]
        code = pay.main(
            ["--lndconnect", bob_uri, "--keysend", "--dest", forum_pubkey, "--amt", "5"]
        )
        assert code == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_watch_prints_keysend_with_records(simnet: SimNet, tmp_path: Path) -> None:
    forum = simnet.nodes["forum"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning.watch", "--lndconnect", forum.lndconnect_uri()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        with simnet.nodes["alice"].client() as alice:
            # The watcher subscribes with no backlog: pay until it has seen one.
            for _ in range(50):
                alice.keysend(forum.pubkey, 1_000, {34349334: "gm ☀".encode()})
                if simnet.network._subscriptions:
                    break
                time.sleep(0.1)
            alice.keysend(forum.pubkey, 1_000, {34349334: "gm ☀".encode()})
        events = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert [e["state"] for e in events] == ["OPEN", "SETTLED"]
        assert events[1]["custom_records"]["34349334"]["utf8"] == "gm ☀"
        assert events[1]["is_keysend"] and events[1]["amt_paid_msat"] == 1_000
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_second_simnet_on_same_dir_is_refused(simnet: SimNet, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="another simnet is already serving"):
        SimNet.start(tmp_path / "simnet")
