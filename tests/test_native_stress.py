"""rtlayer_native under load: kernels release the GIL, are correct from many threads, and a million
calls leave no memory behind."""

from __future__ import annotations

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
    # With a long switch interval, a thread waiting for the GIL only gets it when the holder releases it
    # (or after 250 ms): what another thread manages to do is then a direct measure of GIL release.
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.25)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


# Large buffers on purpose: small calls (a 20 ms frame) keep the GIL, because releasing and re-taking it
# would cost more than their work (see the "Threads and the GIL" paragraph of rtlayer_native's docstring).
HUGE_PCM = _pcm(48000, 20.0, 1)
HUGE_ULAW = rn.ulaw_encode(HUGE_PCM)
BIG_PCM = HUGE_PCM[: 48000 * 2 * 2]
BIG_ULAW = HUGE_ULAW[: 8000 * 4]

KERNELS: dict[str, Callable[[], Callable[..., object]]] = {
    "ulaw_encode": lambda: lambda: rn.ulaw_encode(HUGE_PCM),
    "alaw_decode": lambda: lambda: rn.alaw_decode(HUGE_ULAW),
    "apply_gain": lambda: lambda: rn.apply_gain(HUGE_PCM, 0.5),
    "rms": lambda: lambda: rn.rms(HUGE_PCM),
    "pcm16_to_float32": lambda: lambda: rn.pcm16_to_float32(HUGE_PCM),
    "Resampler.process": lambda: rn.Resampler(48000, 8000, quality="high").process,
    "Transcoder.process": lambda: rn.Transcoder("pcmu", 8000, "pcm16", 48000).process,
}
KERNEL_INPUT = {"Resampler.process": BIG_PCM, "Transcoder.process": BIG_ULAW}

CALLS = 24  # sighting windows per worker thread


def _calls_seen_running(kernels: list[Callable[[], object]], calls: int = CALLS) -> int:
    """Runs each kernel in its own thread for ``calls`` windows of 10 ms; returns how many distinct
    moments the main thread saw every worker inside a window at once.

    Each worker makes its state odd when a window starts and even when it ends. The main thread polls the
    states, giving the GIL back at every poll. A kernel that releases the GIL lets the main thread poll
    while it runs, so nearly every window is seen. One that holds it lets the main thread in only when the
    250 ms switch interval forces a switch: a handful of sightings for the whole run.
    """
    states = [0] * len(kernels)
    seen: set[tuple[int, ...]] = set()

    def work(i: int) -> None:
        kernel = kernels[i]
        for _ in range(calls):
            states[i] += 1
            # One sighting window: the kernel back to back for 10 ms (a large buffer takes under a
            # millisecond, too short for the main thread to be woken and scheduled reliably).
            window_end = time.perf_counter() + 0.01
            for _ in range(10_000):
                kernel()
                if time.perf_counter() >= window_end:
                    break
            states[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(kernels))]
    for worker in workers:
        worker.start()
    for _ in range(10_000_000):  # bounded; ends when the workers do
        snapshot = tuple(states)
        if all(state & 1 for state in snapshot):
            seen.add(snapshot)
        if not any(worker.is_alive() for worker in workers):
            break
        time.sleep(0)  # gives the GIL back, so a worker that needs it never waits for the switch interval
    for worker in workers:
        worker.join(30)
    return len(seen)


def _bind(name: str) -> Callable[[], object]:
    kernel = KERNELS[name]()
    data = KERNEL_INPUT.get(name)
    return kernel if data is None else lambda: kernel(data)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.timeout(60)
def test_kernels_release_the_gil_on_large_buffers(name: str, long_switch_interval: None) -> None:
    assert _calls_seen_running([_bind(name)]) >= CALLS // 2


@pytest.mark.timeout(60)
def test_the_gil_measure_catches_a_kernel_that_holds_it(long_switch_interval: None) -> None:
    """The control: ``bytes.translate`` (a table look-up per byte, like a G.711 kernel, on every Python
    version) holds the GIL, and the same measure sees (almost) none of its calls."""
    table = bytes(range(255, -1, -1))
    assert _calls_seen_running([lambda: HUGE_PCM.translate(table)]) < CALLS // 2


@pytest.mark.timeout(60)
def test_resamplers_in_several_threads_run_at_the_same_time(long_switch_interval: None) -> None:
    """Two threads, each with its own Resampler on large buffers, are seen inside their calls together."""
    assert _calls_seen_running([_bind("Resampler.process"), _bind("Resampler.process")]) >= CALLS // 4


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
