"""A crashed listener is replaced at once on PostgreSQL, not when its lease lapses.

A standby listener waits on the node's advisory lock, which the server releases as soon as the
killed listener's connection goes; the standby then takes the lease over. The lease is set to
30 s here, so a takeover that waited for it would take 20 s or more. The same holds in hold
mode, where the reviewer that settles held payments runs inside the listener's session.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from forum import nostr, protocol
from forum.ingest import listener
from forum.models import Event, LedgerEntry, ListenerCursor
from forum.services import node
from tests.conftest import ROOT, need

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LEASE_SECONDS = 30


def start_listener(env: dict, log: Path, holder: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-u", "manage.py", "listen", "--holder", holder],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def held_simnet(tmp_path):
    """A network of its own whose forum node holds keysends (lnd --keysend-hold-time)."""
    from lightning.simnet import SimNet

    topology = json.loads((ROOT / "lightning/simnet/topology.json").read_text())
    net = SimNet.start(tmp_path / "held", topology=topology)
    node.write_simnet_nodes(net, tmp_path / "held")
    # One settled invoice first, so the listener streams (add events reach the reviewer).
    with net.nodes["alice"].client() as alice:
        assert alice.keysend(net.nodes["forum"].pubkey, 1_000, {}).succeeded
    net.network.set_keysend_hold("forum", 60)
    ListenerCursor.objects.create(
        node_pubkey=net.nodes["forum"].pubkey, add_index=1, settle_index=1
    )
    try:
        yield net
    finally:
        net.stop()


@pytest.mark.parametrize("hold_mode", [False, True], ids=["settle", "hold"])
def test_a_standby_listener_takes_over_a_killed_one_at_once(
    request, forum_node, board, subprocess_env, tmp_path, hold_mode
):
    need(connection.vendor == "postgresql", "listener subprocesses need PostgreSQL")
    env = dict(subprocess_env)
    env.pop("REDIS_URL")  # the listener reconciles in-process (eager): no worker needed
    env["LISTENER_LEASE_SECONDS"] = str(LEASE_SECONDS)
    if hold_mode:
        net = request.getfixturevalue("held_simnet")
        env.update(HOLD_MODE="1", HOLD_SECONDS="60", SIMNET_DATA_DIR=str(tmp_path / "held"))
        forum_pubkey = net.nodes["forum"].pubkey
        alice = net.nodes["alice"].client()
    else:
        env.update(HOLD_MODE="0", SIMNET_DATA_DIR=str(settings.SIMNET_DATA_DIR))
        forum_node.cursor_to_now()
        forum_pubkey = forum_node.pubkey
        alice = forum_node.sender("alice")

    def pay(i: int) -> tuple[nostr.Event, threading.Thread]:
        key = nostr.generate_secret_key()
        event = nostr.thread_event(key, board="general", title=f"t{i}", content=f"c{i}")
        # In hold mode the keysend returns only once a reviewer settles it.
        sender = threading.Thread(
            target=alice.keysend, args=(forum_pubkey, 10_000, protocol.encode_event(event))
        )
        sender.start()
        return event, sender

    def published(event: nostr.Event) -> bool:
        return Event.objects.filter(event_id=event.id, state="published").exists()

    logs = {name: tmp_path / f"{name}.log" for name in ("first", "second")}
    first = start_listener(env, logs["first"], "first")
    second = None
    try:
        warm, sender = pay(0)
        wait_for(lambda: published(warm), 60, f"the first listener\n{logs['first'].read_text()}")
        sender.join(30)
        second = start_listener(env, logs["second"], "second")
        wait_for(lambda: b"listening for" in logs["second"].read_bytes(), 30, "the standby")
        time.sleep(2)  # the standby is up and waiting
        assert ListenerCursor.objects.get(node_pubkey=forum_pubkey).lease_holder == "first"

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()
        after, sender = pay(1)
        wait_for(lambda: published(after), 60, f"the standby\n{logs['second'].read_text()}")
        took = time.monotonic() - killed_at
        sender.join(30)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
        if hold_mode:
            alice.close()
    print(f"takeover ({'hold' if hold_mode else 'settle'} mode): published {took:.1f} s after kill")
    assert took < 10, f"{took:.1f} s: the standby waited for the {LEASE_SECONDS} s lease"
    entry = LedgerEntry.objects.get(event_id=after.id)
    assert entry.status == "settled"
    assert ListenerCursor.objects.get(node_pubkey=forum_pubkey).settle_index == entry.settle_index
    assert listener.lease_acquire(node_pubkey=forum_pubkey, holder="third", seconds=1)  # released
