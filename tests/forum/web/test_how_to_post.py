"""The how-to-post page's commands: ones that work here in demo mode, the project's virtualenv
in every example, and what a refused post costs in each mode."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from tests.forum.web import factories as f

pytestmark = pytest.mark.django_db


def _blocks(page: str) -> dict[str, str]:
    return {
        found.group(1): html.unescape(found.group(2))
        for found in re.finditer(r'<code id="(cmd-[a-z]+)">(.*?)</code>', page, re.S)
    }


@pytest.fixture
def boards(db):
    f.board("general", thread_price_msat=21_000)
    f.board("nostr", thread_price_msat=21_500)


def test_demo_mode_commands_use_a_demo_nodes_port_and_files(client, settings, simnet, boards):
    settings.DEMO_MODE = True
    bob = simnet.nodes["bob"]
    page = client.get(reverse("how-to-post")).content.decode()
    blocks = _blocks(page)
    assert set(blocks) == {"cmd-client", "cmd-lncli", "cmd-invoice"}
    for text in blocks.values():
        assert "~/.lnd" not in text and "localhost:10009" not in text
        assert f"--rpcserver {bob.grpc_address}" in text
        assert f"--tlscertpath {bob.tls_cert_path}" in text
        assert f"--macaroonpath {bob.macaroon_path}" in text
    # The lncli example pays with lncli's flags through the project's payer, at the second
    # board's price in whole sats, rounded up (21.5 sats -> 22).
    assert "lightning.pay" in blocks["cmd-lncli"] and "lncli sendpayment" not in blocks["cmd-lncli"]
    assert "--board nostr" in blocks["cmd-lncli"] and "--amt 22 " in blocks["cmd-lncli"]


def test_without_demo_mode_commands_name_lnds_usual_files(client, settings, simnet, boards):
    settings.DEMO_MODE = False
    blocks = _blocks(client.get(reverse("how-to-post")).content.decode())
    assert "--tlscertpath ~/.lnd/tls.cert" in blocks["cmd-client"]
    # Paying by invoice needs no node of one's own: any wallet pays the printed invoice.
    assert "--invoice" in blocks["cmd-invoice"] and "--rpcserver" not in blocks["cmd-invoice"]
    assert "lncli sendpayment --keysend" in blocks["cmd-lncli"]


def test_every_python_command_runs_in_the_projects_virtualenv(client, settings, simnet, boards):
    settings.DEMO_MODE = True
    blocks = _blocks(client.get(reverse("how-to-post")).content.decode())
    commands = [line for text in blocks.values() for line in text.splitlines()]
    python = [line for line in commands if "python" in line]
    assert python and all(".venv/bin/python -m " in line for line in python)
    assert not any(re.search(r"(?<!/bin/)python3? -m", line) for line in commands)


def test_hold_mode_promises_no_top_up(client, settings, simnet, boards):
    settings.HOLD_MODE = True
    page = client.get(reverse("how-to-post")).content.decode()
    # (the records table still lists the top-up record type: settle-mode forums use it)
    assert "forum.client topup" not in page and "top up" not in page.lower()
    assert "nothing is charged" in page
    settings.HOLD_MODE = False
    page = client.get(reverse("how-to-post")).content.decode()
    assert "forum.client topup --event-id" in page and "<strong>Top up</strong>" in page
