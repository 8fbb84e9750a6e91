"""Fuzz every parser of what strangers send us, with hypothesis, for many inputs.

    .venv/bin/python bench/fuzz.py [--inputs 100000] [--seed 1]

Drives the properties of `tests/fuzz/properties.py` (the test suite runs the same ones with a
few hundred examples): keysend records (`protocol.decode_records`), multipart sets
(`protocol.join_parts`), event JSON (`nostr.parse_event` with verification, then the forum's
reading of the event), npub strings, relay filters (`parse_filter`) and relay client
messages (the websocket consumer's `receive`, on an empty SQLite database). An input fails
when an exception other than the documented rejection escapes ("escaped") or when a
rejection has no reason code ("without a reason"); failures are counted, not stopped at, and
the first few of each parser are printed. The last line is
``fuzz: N inputs, E escaped exceptions, R rejections without a reason``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Share of the inputs each parser gets (they add up to 1).
WEIGHTS = {
    "records": 0.30,
    "parts": 0.10,
    "event_json": 0.25,
    "npub": 0.05,
    "filters": 0.15,
    "relay_messages": 0.15,
}
# Examples per hypothesis run: bounds the memory hypothesis keeps about one run.
CHUNK = 5_000
SAMPLES_SHOWN = 3


@dataclass
class Tally:
    inputs: int = 0
    escaped: int = 0
    unreasoned: int = 0
    broken: int = 0  # a property's own invariant (e.g. decode(encode(e)) == e) failed
    outcomes: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    @property
    def rejections(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome.startswith("rejected"))


def django_setup(work: Path) -> None:
    """An empty SQLite forum in `work`: the relay's answers read boards and events."""
    os.environ["DATABASE_URL"] = f"sqlite:///{work / 'fuzz.sqlite3'}"
    os.environ["FORUM_DATA_DIR"] = str(work)
    os.environ["SIMNET_DATA_DIR"] = str(work / "simnet")
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def drive(
    name: str, strategy: Any, check: Callable[[Any], str], count: int, seed: int, tally: Tally
) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    from tests.fuzz.properties import Escaped, Unreasoned

    def one(value: Any) -> None:
        tally.inputs += 1
        try:
            outcome = check(value)
        except Escaped as exc:
            tally.escaped += 1
            note = f"escaped: {exc}"
        except Unreasoned as exc:
            tally.unreasoned += 1
            note = f"without a reason: {exc}"
        except AssertionError as exc:
            tally.broken += 1
            note = f"invariant broken: {exc!r:.500}"
        else:
            tally.outcomes[outcome] += 1
            return
        if len(tally.samples) < SAMPLES_SHOWN:
            tally.samples.append(note[:700])

    done = 0
    chunk_seed = seed
    while done < count:
        n = min(CHUNK, count - done)
        before = tally.inputs
        run = settings(
            max_examples=n,
            deadline=None,
            database=None,
            phases=[Phase.generate],  # count failures; shrinking is the test suite's job
            suppress_health_check=list(HealthCheck),
        )(with_seed(chunk_seed)(given(strategy)(one)))
        run()
        ran = tally.inputs - before
        if ran == 0:
            raise SystemExit(f"fuzz: {name} generated no inputs")
        done += ran
        chunk_seed += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="total generated inputs")
    parser.add_argument("--seed", type=int, default=1, help="first hypothesis seed")
    args = parser.parse_args()

    logging.disable(logging.CRITICAL)  # the relay logs failed queries; we count them instead
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        django_setup(Path(tmp))
        from tests.fuzz import properties as p

        relay = p.RelayHarness()
        parsers = {
            "records": (p.records(), p.check_records),
            "parts": (p.part_sets(), p.check_parts),
            "event_json": (p.event_inputs, p.check_event_json),
            "npub": (p.bech32_inputs, p.check_bech32),
            "filters": (p.filter_objects, p.check_filter),
            "relay_messages": (p.client_messages(), relay.check),
        }
        tallies: dict[str, Tally] = {}
        started = time.monotonic()
        for i, (name, (strategy, check)) in enumerate(parsers.items()):
            count = max(1, round(args.inputs * WEIGHTS[name]))
            tally = tallies[name] = Tally()
            t0 = time.monotonic()
            drive(name, strategy, check, count, args.seed + 1000 * i, tally)
            seconds = time.monotonic() - t0
            top = ", ".join(f"{o} {n}" for o, n in tally.outcomes.most_common(4))
            print(
                f"{name}: {tally.inputs} inputs in {seconds:.0f} s, {tally.escaped} escaped,"
                f" {tally.unreasoned} without a reason, {tally.broken} broken invariants;"
                f" {tally.rejections} rejections ({top})"
            )
            for sample in tally.samples:
                print(f"  {sample}")
        relay.close()
    total = sum(t.inputs for t in tallies.values())
    escaped = sum(t.escaped + t.broken for t in tallies.values())
    unreasoned = sum(t.unreasoned for t in tallies.values())
    print(f"total: {time.monotonic() - started:.0f} s, seed {args.seed}")
    print(
        f"fuzz: {total} inputs, {escaped} escaped exceptions, {unreasoned} rejections without a reason"
    )
    return 1 if escaped or unreasoned else 0


if __name__ == "__main__":
    raise SystemExit(main())
