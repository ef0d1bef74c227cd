"""Shared set-up of the benchmarks: run modes, and the ratio table printed at the end of a run.

Run modes (see bench/README.md, "How to run"):

- ``python -m pytest bench/`` runs every benchmark with timings (pytest-benchmark).
- ``python -m pytest bench/ --benchmark-disable -q`` is the smoke mode CI runs: each benchmarked
  function is called once and the tests' correctness asserts run, no timing is taken or asserted.
  Nothing here assumes which benchmarks exist: every ``bench/test_*.py`` is collected as usual.

Ratios: a benchmark that sets ``benchmark.group`` and ``benchmark.extra_info["role"]`` (``"anchor"``
for the reference implementation; any other name for an rtlayer variant) is compared with the anchor
of its group measured in the same run. Optional ``extra_info`` keys: ``"target"`` (the ratio the
issue asks for), ``"items"`` and ``"item"`` (e.g. 4.27 frames a call: also prints time per item) and
``"target_us_per_item"``. At the end of a timed run the table goes to the terminal.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pytest

# One BLAS thread: the anchors and measurements use numpy, whose idle BLAS threads would otherwise
# spin on the second core while the benchmarks run.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us"


def _ratio_rows(benchmarks: list[Any]) -> list[list[str]]:
    groups: dict[str, dict[str, Any]] = defaultdict(dict)
    for bench in benchmarks:
        role = bench.extra_info.get("role") if bench.extra_info else None
        if role and bench.stats and bench.group:
            groups[bench.group][role] = bench
    rows = []
    for group in sorted(groups):
        roles = groups[group]
        anchor = roles.get("anchor")
        for role, bench in sorted(roles.items()):
            if role == "anchor":
                continue
            info = bench.extra_info
            items = info.get("items")
            per_item = target = ""
            if items:
                per = bench.stats.min / items
                per_item = f"{_fmt_us(per)} per {info.get('item', 'item')}"
                target_us = info.get("target_us_per_item")
                if target_us is not None:
                    target = f"<= {target_us} us: {'met' if per * 1e6 <= target_us else 'NOT met'}"
            ratio_text = anchor_min = ""
            if anchor is not None:
                ratio = bench.stats.min / anchor.stats.min
                anchor_min = _fmt_us(anchor.stats.min)
                ratio_text = f"{ratio:.3f}x (median {bench.stats.median / anchor.stats.median:.3f}x)"
                if info.get("target") is not None:
                    target = f"<= {info['target']}x: {'met' if ratio <= info['target'] else 'NOT met'}"
            rows.append(
                [
                    group,
                    role,
                    _fmt_us(bench.stats.min),
                    _fmt_us(bench.stats.median),
                    per_item,
                    anchor_min,
                    ratio_text,
                    target,
                ]
            )
    return rows


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or getattr(session, "disabled", False):
        return
    rows = _ratio_rows(list(session.benchmarks))
    if not rows:
        return
    header = ["group", "variant", "min", "median", "per item (min)", "anchor min", "ratio (min)", "target"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    tr = terminalreporter
    tr.write_sep("=", "rtlayer vs anchor, same run (ratio < 1: rtlayer takes less time)")
    for r in [header, *rows]:
        tr.write_line(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
