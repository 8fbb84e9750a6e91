"""lnd's onion payload size formula (pure, no network)."""

from __future__ import annotations

from lightning import onion
from lightning.types import KEYSEND_PREIMAGE_RECORD


def test_bigsize_and_truncated_lengths() -> None:
    assert [onion.bigsize_len(v) for v in (0, 0xFC, 0xFD, 0xFFFF, 0x10000, 2**32 - 1, 2**32)] == [
        1,
        1,
        3,
        3,
        5,
        5,
        9,
    ]
    assert [onion.truncated_len(v) for v in (0, 1, 255, 256, 950_000, 2**24)] == [0, 1, 1, 2, 3, 4]


def test_hop_sizes_match_lnd_md() -> None:
    # Intermediate hop: amt + cltv + scid + length + hmac = 52-54 bytes.
    assert onion.HopPayload(1_000, 950_000, next_chan_id=1).size() == 52
    assert onion.HopPayload(100_000, 950_000, next_chan_id=1).size() == 53
    assert onion.HopPayload(2**32, 950_000, next_chan_id=1).size() == 55
    # Final keysend hop with no extra data: 84-86 bytes.
    final = onion.HopPayload(1_000, 950_000, custom_records={KEYSEND_PREIMAGE_RECORD: 32})
    assert final.size() == 84


def test_max_record_table_of_lnd_md() -> None:
    # LND.md's table assumes 3-byte forwarded amounts (53 bytes per extra hop).
    table = {1: 1206, 2: 1153, 3: 1100, 4: 1047, 5: 994, 6: 941, 7: 888}
    for hops, size in table.items():
        assert onion.max_record_size(hops, forward_amt_msat=100_000) == size


def test_fits_respects_budget_and_hop_count() -> None:
    hop = onion.HopPayload(1_000, 950_000, next_chan_id=1)
    assert onion.fits([hop] * 25)
    assert not onion.fits([hop] * 26)  # 26 * 52 = 1352 > 1300
