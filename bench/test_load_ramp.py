"""``rtlayer load --ramp`` against the embedded server: latency rises where the server's own benchmark says.

One server core takes more streams than one generator core drives on a 2-core machine, so the server is held
to a fraction of a core (a cgroup's CPU quota, ``--cpu-percent``, 10 ms periods so that a throttled server
stalls for at most a few milliseconds at a time), and both measurements run under the same limit:

1. the server's capacity, by the server's own benchmark (``bench/test_server_streams.py``: N streams at
   real-time pace, the step "keeps up" while the p99 ``speech_stopped`` lag stays under 100 ms and every
   turn is answered), raised step by step until it stops keeping up;
2. ``rtlayer load`` (the Python API, one generator process pinned to the other CPU) against ``rtlayer serve
   --audio-pacing 1`` (the benchmark's pacing) in the same cgroup, ramping callers from 0 to well past that
   capacity (twice the first step that fell behind); ``speech_stopped_lag`` and ``first_audio`` are read per
   window of the ramp beside the number of callers then active.

The figure: the active callers at which the load run's ``speech_stopped_lag`` p90 first rises 100 ms above
its value at the start of the ramp (the benchmark's 100 ms budget, above the VAD's own silence wait, which
``rtlayer load`` counts and the benchmark does not), beside the benchmark's capacity. The generator's own
CPU and late frames are printed too: a rise the generator caused would not count.

Run it (root, a writable cgroup v1 ``cpu`` controller or a cgroup v2 with ``cpu`` enabled; about 6 minutes):

- ``python bench/test_load_ramp.py [CPU_PERCENT]`` (default 25);
- ``RTLAYER_BENCH_FULL=1 python -m pytest bench/test_load_ramp.py -s`` (skipped otherwise: too long for CI).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import test_server_streams as server_bench  # noqa: E402  (the server's own benchmark, reused as is)

from rtlayer.load import LoadConfig, Summary, run_load  # noqa: E402

PERIOD_US = 10_000
WINDOW_S = 3.0
RISE_MS = 100.0
STEP_SECONDS = 10.0
STEP = 10
#: the benchmark's steps under the limit (it stops at the first that falls behind)
STEPS = tuple(range(2 * STEP, 400, STEP))


# -- the CPU limit ---------------------------------------------------------------------------------------


class CpuLimit:
    """A cgroup that holds its processes to ``percent`` % of one CPU (cgroup v2 ``cpu.max``, or v1
    ``cpu.cfs_quota_us``); removed on exit (its processes are moved back to the root group first)."""

    V2 = Path("/sys/fs/cgroup")
    V1 = Path("/sys/fs/cgroup/cpu")

    def __init__(self, percent: float) -> None:
        self.percent = percent
        name = f"rtlayer-load-ramp-{os.getpid()}"
        if "cpu" in _read(self.V2 / "cgroup.controllers").split():
            self.root, self.v2 = self.V2, True
        else:
            self.root, self.v2 = self.V1, False
        self.path = self.root / name

    @classmethod
    def available(cls) -> bool:
        if os.geteuid() != 0:
            return False
        if "cpu" in _read(cls.V2 / "cgroup.controllers").split():
            return os.access(cls.V2, os.W_OK)
        return (cls.V1 / "cpu.cfs_quota_us").exists() and os.access(cls.V1, os.W_OK)

    def __enter__(self) -> CpuLimit:
        self.path.mkdir()
        quota = int(PERIOD_US * self.percent / 100)
        if self.v2:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        return self

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def __exit__(self, *exc: object) -> None:
        for pid in _read(self.path / "cgroup.procs").split():
            try:
                (self.root / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # it ended meanwhile
        for _ in range(50):  # bounded: a group empties as soon as its last process is reaped
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# -- 1. the server's capacity under the limit, by its own benchmark --------------------------------------


def capacity(limit: CpuLimit, steps: tuple[int, ...]) -> tuple[int | None, int | None]:
    """The server benchmark's sweep with its server in the cgroup: the most streams that kept up, and the
    first step that did not."""
    results = server_bench.sweep(steps, STEP_SECONDS, on_server_start=limit.add, with_anchor=False)
    kept = [r.streams for r in results if r.kept_up and not r.client_bound]
    failed = [r.streams for r in results if not r.kept_up]
    return (max(kept) if kept else None), (min(failed) if failed else None)


# -- 2. the ramp -----------------------------------------------------------------------------------------


@dataclass
class Window:
    start_s: float
    active: int
    stopped: Summary
    first_audio: Summary
    generator_cpu: float


def start_server(limit: CpuLimit, cpu: int) -> tuple[subprocess.Popen[bytes], str]:
    server = subprocess.Popen(
        [
            sys.executable, "-m", "rtlayer.cli", "serve", "--port", "0", "--audio-pacing", "1",
            "--max-sessions", "5000", "--max-connections", "10000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )  # fmt: skip
    limit.add(server.pid)
    assert server.stdout is not None
    line = server.stdout.readline().decode()
    port = line.split("http://127.0.0.1:")[1].split()[0]
    threading.Thread(target=server.stdout.read, daemon=True).start()  # a full pipe must never block it
    return server, f"ws://127.0.0.1:{port}/v1/realtime"


def ramp(limit: CpuLimit, sessions: int, seconds: float) -> tuple[list[Window], dict[str, Any]]:
    """``sessions`` callers arriving evenly over ``seconds``, then 5 s at the top; figures per window."""
    cpus = sorted(os.sched_getaffinity(0))
    server, url = start_server(limit, cpus[-1])
    try:
        os.sched_setaffinity(0, {cpus[0]})  # the generator: this process, on the other CPU
        config = LoadConfig(url=url, sessions=sessions, ramp=sessions / seconds, duration=seconds + 5.0)
        result = asyncio.run(run_load(config))
    finally:
        os.sched_setaffinity(0, set(cpus))
        server.terminate()
        server.wait(10)
    samples = result.generator.samples
    stopped = dict(result.figures.timeline("speech_stopped_lag", WINDOW_S))
    first = dict(result.figures.timeline("first_audio", WINDOW_S))
    windows = []
    for start in sorted(stopped):
        inside = [s for s in samples if start <= s.at < start + WINDOW_S] or samples[-1:]
        windows.append(
            Window(
                start,
                max(s.active_sessions for s in inside),
                stopped[start],
                first.get(start, Summary.of([])),
                max(s.cpu_percent for s in inside),
            )
        )
    generator = {
        "saturated": result.generator.saturation(),
        "late_frames": result.generator.late_frames,
        "frames": result.generator.frames,
        "errors": dict(result.figures.error_counts()),
    }
    return windows, generator


def rise_point(windows: list[Window]) -> Window | None:
    """The first window whose speech_stopped p90 is RISE_MS above the ramp's first full window's."""
    base = next((w for w in windows if w.stopped.count >= 3), None)
    if base is None:
        return None
    return next((w for w in windows if w.stopped.p90 >= base.stopped.p90 + RISE_MS), None)


def measure(percent: float) -> dict[str, Any]:
    with CpuLimit(percent) as limit:
        print(f"server held to {percent:g} % of one CPU ({limit.path})", flush=True)
        most, failed = capacity(limit, STEPS)
        print(f"server benchmark under the limit: {most} streams keep up, {failed} do not", flush=True)
        # Well past the capacity: twice the first step that fell behind.
        top = 2 * (failed or (most or 20) + STEP)
        windows, generator = ramp(limit, top, seconds=top / 3.0)
    print(" window  active  speech_stopped p50/p90  first_audio p50/p90  generator CPU")
    for w in windows:
        print(
            f"{w.start_s:6.0f}s  {w.active:6d}  {w.stopped.p50:7.0f} {w.stopped.p90:7.0f} ms"
            f"      {w.first_audio.p50:7.0f} {w.first_audio.p90:7.0f} ms    {w.generator_cpu:4.0f} %"
        )
    rise = rise_point(windows)
    summary = {
        "cpu_percent": percent,
        "benchmark_capacity": most,
        "benchmark_first_failing": failed,
        "ramp_top": top,
        "latency_rises_at_active": rise.active if rise is not None else None,
        "generator": generator,
    }
    print(json.dumps(summary, indent=2), flush=True)
    return summary


@pytest.mark.timeout(600)
@pytest.mark.skipif(not os.environ.get("RTLAYER_BENCH_FULL"), reason="about 6 minutes: RTLAYER_BENCH_FULL=1")
@pytest.mark.skipif(not CpuLimit.available(), reason="needs a writable cgroup cpu controller (root)")
def test_the_ramp_shows_latency_rising_at_the_benchmarks_capacity() -> None:
    summary = measure(25.0)
    assert summary["benchmark_capacity"], summary
    assert not summary["generator"]["saturated"], summary
    rises = summary["latency_rises_at_active"]
    assert rises is not None, summary
    # Between the benchmark's last step that kept up and its first that did not, give or take a step (the
    # ramp's windows are about as coarse: callers arrive at a third of the top number a second).
    kept, failed = summary["benchmark_capacity"], summary["benchmark_first_failing"] or 10**6
    assert kept - STEP <= rises <= failed + STEP, summary


if __name__ == "__main__":
    measure(float(sys.argv[1]) if len(sys.argv) > 1 else 25.0)
