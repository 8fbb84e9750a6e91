"""Fixtures that run simnet in a temporary directory over real TLS gRPC sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lightning.client import LightningClient
from lightning.simnet import SimNet

StartSimnet = Callable[..., SimNet]


@pytest.fixture
def start_simnet(tmp_path: Path) -> Iterator[StartSimnet]:
    """Start (or restart) simnets; every one still running is stopped at teardown."""
    started: list[SimNet] = []

    def start(data_dir: Path | None = None, **kw: Any) -> SimNet:
        net = SimNet.start(data_dir or tmp_path / "simnet", **kw)
        started.append(net)
        return net

    yield start
    for net in started:
        net.stop(grace=0)


@pytest.fixture
def simnet(start_simnet: StartSimnet) -> SimNet:
    """The default topology: forum, router1, router2, alice, bob."""
    return start_simnet()


@pytest.fixture
def clients(simnet: SimNet) -> Iterator[dict[str, LightningClient]]:
    """One client per simnet node, by node name."""
    opened = {name: node.client() for name, node in simnet.nodes.items()}
    yield opened
    for client in opened.values():
        client.close()
