"""rtlayer_native under load: kernels release the GIL, are correct from many threads, and a million
calls leave no memory behind."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import rtlayer_native as rn


def _pcm(rate: int, seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-12000, 12000, int(rate * seconds)).astype("<i2").tobytes()


@pytest.fixture
def long_switch_interval() -> Iterator[None]:
    # With a long switch interval, another thread only runs while the caller has released the GIL.
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.25)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


# Sized so that each call takes several milliseconds: long enough for the spinner to be scheduled.
HUGE_PCM = _pcm(48000, 60.0, 1)
HUGE_ULAW = rn.ulaw_encode(HUGE_PCM)
BIG_PCM = HUGE_PCM[: 48000 * 2 * 5]
BIG_ULAW = HUGE_ULAW[: 8000 * 10]

KERNELS: dict[str, Callable[[], object]] = {
    "ulaw_encode": lambda: rn.ulaw_encode(HUGE_PCM),
    "alaw_decode": lambda: rn.alaw_decode(HUGE_ULAW),
    "apply_gain": lambda: rn.apply_gain(HUGE_PCM, 0.5),
    "rms": lambda: rn.rms(HUGE_PCM),
    "pcm16_to_float32": lambda: rn.pcm16_to_float32(HUGE_PCM),
    "Resampler.process": lambda: rn.Resampler(48000, 8000, quality="high").process(BIG_PCM),
    "Transcoder.process": lambda: rn.Transcoder("pcmu", 8000, "pcm16", 48000).process(BIG_ULAW),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.timeout(60)
def test_kernels_release_the_gil(name: str, long_switch_interval: None) -> None:
    """A worker thread calls the kernel; the main thread, waiting for the GIL, must get it at once.

    The worker calls the kernel back to back for about 0.4 s. With a 250 ms switch interval the
    interpreter forces no switch for 250 ms, so the main thread runs within 100 ms only if the
    kernel released the GIL (the margin is for a loaded machine's scheduler). With audioop, which
    holds it, the main thread waits the 250 ms.
    """
    kernel = KERNELS[name]
    solo = math.inf
    for _ in range(3):  # warm up (filter design, page faults) and time it alone
        t = time.perf_counter()
        kernel()
        solo = min(solo, time.perf_counter() - t)
    reps = max(1, math.ceil(0.4 / solo))
    entered: list[float] = []
    started = threading.Event()

    def work() -> None:
        started.set()
        entered.append(time.perf_counter())
        for _ in range(reps):
            kernel()

    worker = threading.Thread(target=work)
    worker.start()
    started.wait(5)
    main_ran_at = time.perf_counter()
    worker.join(10)
    assert entered
    assert main_ran_at - entered[0] < 0.1, f"main thread waited {main_ran_at - entered[0]:.4f} s"


@pytest.mark.timeout(60)
def test_resamplers_in_parallel_threads_match_sequential_results() -> None:
    jobs = [(24000, 16000, 2), (8000, 48000, 3), (44100, 24000, 4), (16000, 8000, 5)] * 2
    inputs = [_pcm(a, 1.0, seed) for a, _, seed in jobs]

    def run(job: tuple[int, int, int], data: bytes) -> bytes:
        r = rn.Resampler(job[0], job[1])
        step = job[0] // 50 * 2
        out = b"".join(r.process(data[i : i + step]) for i in range(0, len(data), step))
        return out + r.flush() + rn.ulaw_decode(rn.ulaw_encode(data))

    expected = [run(job, data) for job, data in zip(jobs, inputs, strict=True)]
    results: list[bytes | None] = [None] * len(jobs)

    def worker(i: int) -> None:
        results[i] = run(jobs[i], inputs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == expected


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.timeout(120)
def test_a_million_calls_leave_no_memory_behind() -> None:
    pcm24 = _pcm(24000, 0.02, 3)  # 20 ms frames, as a call carries them
    ulaw = rn.ulaw_encode(_pcm(8000, 0.02, 4))
    framer = rn.Framer(320)
    ring = rn.AudioRing(4800)

    def one_round(i: int) -> int:
        # ten calls per round
        down = rn.Resampler(24000, 16000) if i % 1000 == 0 else resampler
        n = len(down.process(pcm24))
        n += len(rn.ulaw_decode(ulaw)) + len(rn.alaw_encode(pcm24)) + len(rn.ulaw_encode(pcm24))
        n += len(decoder.process(ulaw)) + len(encoder.process(pcm24))
        n += len(framer.push(pcm24[:500])) + ring.write(pcm24) + len(ring.read(960))
        n += int(rn.rms(pcm24) > 0)
        return n

    resampler = rn.Resampler(24000, 16000)
    decoder = rn.Transcoder("pcmu", 8000, "pcm16", 24000)
    encoder = rn.Transcoder("pcm16", 24000, "pcmu", 8000)
    for i in range(20_000):  # warm up: allocator pools, caches
        one_round(i)
    before = _rss_bytes()
    for i in range(100_000):  # 1,000,000 calls
        one_round(i)
    grown = _rss_bytes() - before
    # A leak of even 8 bytes a call would show as 8 MB.
    assert grown < 2 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"
