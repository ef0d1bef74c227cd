"""``python -m rtlayer_native`` (the self-check a fresh install runs) keeps working and says what it checked."""

from __future__ import annotations

import subprocess
import sys


def test_self_check_runs_and_reports_what_it_verified() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rtlayer_native"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "bit-exact with audioop on all 256 codes and all 65,536 linear values" in out
    # The stdlib module where it still exists (until 3.13), audioop's recorded tables everywhere.
    if sys.version_info < (3, 13):
        assert "checked against the stdlib's audioop and its recorded tables" in out
    else:
        assert "checked against audioop's tables recorded from CPython 3.11" in out
    sinads = [float(line.split("SINAD ")[1].split(" dB")[0]) for line in out.splitlines() if "SINAD" in line]
    assert len(sinads) == 2 and min(sinads) >= 80
    assert "bit-identical to one call" in out
    assert out.rstrip().splitlines()[-1].startswith("ok in")
