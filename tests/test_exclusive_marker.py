"""The suite's ``exclusive`` marker (``tests/exclusive.py``): on two xdist workers, a marked test runs alone.

A small suite in a temporary directory runs under ``pytest -n 2``: an exclusive test among tests that
take turns on both workers. Each test writes when it ran; the exclusive one must overlap none of them,
while the others did run two at a time (else the check would prove nothing).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SUITE = """
import json, os, time
import pytest

def ran(name, seconds):
    started = time.monotonic()
    time.sleep(seconds)
    with open(os.environ["RAN"], "a") as log:
        log.write(json.dumps([name, started, time.monotonic()]) + "\\n")

@pytest.mark.parametrize("n", range(4))
def test_before(n):
    ran(f"before{n}", 0.3)

@pytest.mark.exclusive
def test_alone():
    ran("alone", 0.5)

@pytest.mark.parametrize("n", range(4))
def test_after(n):
    ran(f"after{n}", 0.3)
"""


def test_an_exclusive_test_overlaps_no_other_while_the_rest_run_two_at_a_time(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["exclusive"]\n')
    (tmp_path / "test_turns.py").write_text(SUITE)
    log = tmp_path / "ran.jsonl"
    env = {**os.environ, "RAN": str(log), "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "load", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = {name: (start, end) for name, start, end in map(json.loads, log.read_text().splitlines())}
    assert len(runs) == 9
    start, end = runs.pop("alone")
    overlapping = [name for name, (s, e) in runs.items() if s < end and e > start]
    assert overlapping == [], f"ran beside the exclusive test: {overlapping}"
    spans = sorted(runs.values())
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans)), "no two tests ever ran at once"
