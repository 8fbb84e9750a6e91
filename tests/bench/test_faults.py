"""CI's short fault schedule: `bench/faults.py` with a few hundred posts while a listener, a
worker's pool process, a worker and the harness's own Redis are killed. Nothing may be lost,
duplicated or left stranded, and the ledger must match the node."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, need

LAST_LINE = re.compile(
    r"faults: (?P<posts>\d+) posts, (?P<faults>\d+) faults, lost (?P<lost>\d+), "
    r"duplicated (?P<duplicated>\d+), stranded (?P<stranded>\d+), max recovery (?P<max>\S+) s"
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_short_fault_schedule_loses_nothing():
    need(
        os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        "the fault harness needs PostgreSQL (DATABASE_URL)",
    )
    need(shutil.which("redis-server") is not None, "the fault harness starts its own redis-server")
    run = subprocess.run(
        [sys.executable, "bench/faults.py", "--posts", "300", "--rate", "10",
         "--faults", "listener,worker-child,worker,redis-restart"],
        cwd=ROOT, capture_output=True, text=True, timeout=840,
    )  # fmt: skip
    report = f"{run.stdout}\n{run.stderr[-3000:]}"
    lines = run.stdout.strip().splitlines()
    found = LAST_LINE.fullmatch(lines[-1]) if lines else None
    assert found, report
    figures = found.groupdict()
    assert int(figures["faults"]) == 4, report
    assert (figures["lost"], figures["duplicated"], figures["stranded"]) == ("0", "0", "0"), report
    assert "ledger == node" in run.stdout, report
    assert run.returncode == 0, report
