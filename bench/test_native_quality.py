"""Keeps bench/quality_table.py working (smoke and timed runs alike): one pair, two resamplers.

The full table is ``python -m bench.quality_table``; the figures it prints for rtlayer are the ones
the tests hold it to (tests/test_native_resample.py), so they are checked here too.
"""

from __future__ import annotations

import quality_table as qt


def test_quality_table_row_for_16k_24k() -> None:
    ours = qt.measure("rtlayer conversational", 24000, 16000)
    assert max(ours.delay_down) <= 2.5 and max(ours.delay_up) <= 2.5
    assert ours.sinad >= 80 and ours.stopband >= 75 and abs(ours.passband) <= 1
    soxr_hq = qt.measure("soxr HQ", 24000, 16000)
    assert soxr_hq.delay_down[0] > ours.delay_down[0]  # soxr holds back whole blocks
    table = qt.markdown([ours, soxr_hq])
    assert table.count("\n") == 3 and "| 24k <-> 16k | soxr HQ |" in table
