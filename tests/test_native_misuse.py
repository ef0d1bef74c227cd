"""Whatever Python does with a native object, the process survives and the error says what went wrong.

- An object whose ``__init__`` did not run (``Cls.__new__(Cls)``, or a subclass whose ``__init__``
  skips ``super().__init__()``) raises ``RuntimeError`` at its first use: it used to divide by zero
  (``Resampler``, ``AudioRing``), write through NULL (``Transcoder``) or allocate without end
  (``Framer.push``).
- One ``Resampler`` or ``Transcoder`` used by two threads at once: the overlapping call is refused with
  ``RuntimeError`` and changes nothing (it used to crash the process in 6 runs of 9).
- ``AudioRing``, ``Framer`` and ``Pacer`` shared by threads, re-initialised or closed from another
  thread, keep working.

Cases that crashed run in a child process, so that a crash fails the test instead of ending pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import rtlayer_native as rn

ROOT = Path(__file__).resolve().parents[1]
NOT_INITIALISED = "is not initialised: its __init__ did not run"
IN_USE = "is in use by another call"


def run_child(code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter; a crash or a hang is a failure of the caller's test."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import rtlayer_native as n\n" + textwrap.dedent(code)],
            cwd=ROOT,  # this checkout's rtlayer_native, not an installed copy
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s:\n{code}")
    assert done.returncode >= 0, f"killed by signal {-done.returncode}:\n{code}\n{done.stderr[-2000:]}"
    return done


def assert_raises_in_child(code: str, error: str, message: str) -> None:
    done = run_child(code)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    assert done.returncode == 1 and last.startswith(f"{error}: ") and message in last, done.stderr[-2000:]


UNINITIALISED = {
    "Resampler.process": "n.Resampler.__new__(n.Resampler).process(b'\\0\\0')",
    "Resampler.flush": "n.Resampler.__new__(n.Resampler).flush()",
    "Resampler.reset": "n.Resampler.__new__(n.Resampler).reset()",
    "Resampler subclass": "class R(n.Resampler):\n    def __init__(self): pass\nR().process(bytes(4))",
    "Transcoder.process": "n.Transcoder.__new__(n.Transcoder).process(b'\\0\\0')",
    "Transcoder.latency_ms": "n.Transcoder.__new__(n.Transcoder).latency_ms",
    "Transcoder.reset": "n.Transcoder.__new__(n.Transcoder).reset()",
    "AudioRing.write": "n.AudioRing.__new__(n.AudioRing).write(b'x')",
    "AudioRing.read": "n.AudioRing.__new__(n.AudioRing).read(5)",
    "AudioRing subclass": "class R(n.AudioRing):\n    def __init__(self, *a): pass\nR(10).write(b'abc')",
    # The hang of shared/repro/native_framer_hang.py: push looped, appending empty frames forever.
    "Framer.push": "n.Framer.__new__(n.Framer).push(b'abc')",
    "Framer.push one empty frame": "n.Framer.__new__(n.Framer).push(b'')",
    "Framer.flush": "n.Framer.__new__(n.Framer).flush()",
}


@pytest.mark.parametrize("case", sorted(UNINITIALISED))
def test_an_object_without_init_raises_a_clear_error(case: str) -> None:
    assert_raises_in_child(UNINITIALISED[case], "RuntimeError", NOT_INITIALISED)


def test_uninitialised_objects_still_report_their_state() -> None:
    # Reading attributes and len() is harmless: zeros, as __cinit__ leaves them.
    ring = rn.AudioRing.__new__(rn.AudioRing)
    assert len(ring) == 0 and ring.capacity == 0 and ring.dropped == 0
    assert rn.Resampler.__new__(rn.Resampler).latency_ms == 0.0


def test_a_pacer_made_with_new_is_a_usable_pacer() -> None:
    # Pacer sets itself up in __cinit__ (defaults when no arguments): there is no half-made Pacer.
    pacer = rn.Pacer.__new__(rn.Pacer)
    try:
        assert pacer.stats()["queued"] == 0 and not pacer.running
    finally:
        pacer.close()


def _big_call_and_bystander(
    make: Callable[[], tuple[Callable[[bytes], bytes], Callable[[], object]]], data: bytes
) -> tuple[bytes | None, list[RuntimeError]]:
    """Runs ``process(data)`` (long, without the GIL) in a thread while this one keeps calling ``reset``, on a
    fresh object from ``make()`` (its ``(process, reset)``); returns the thread's result and the errors the
    bystander's calls raised. A busy machine may run the whole call before this thread gets the CPU again:
    then (no overlap) it tries again, at most five times."""
    result: list[bytes] = []
    refused: list[RuntimeError] = []
    for _ in range(5):
        process, reset = make()
        result.clear()
        worker = threading.Thread(target=lambda: result.append(process(data)))  # noqa: B023
        worker.start()
        for _ in range(10_000_000):  # bounded: ends when the worker does
            if not worker.is_alive():
                break
            try:
                reset()
            except RuntimeError as error:
                refused.append(error)
        worker.join(60)
        if refused:
            break
    return (result[0] if result else None), refused


def _noise(rate: int, seconds: float) -> bytes:
    return np.random.default_rng(7).integers(-9000, 9000, int(rate * seconds)).astype("<i2").tobytes()


@pytest.mark.timeout(60)
def test_a_call_overlapping_a_resampler_call_is_refused_and_changes_nothing() -> None:
    data = _noise(48000, 20.0)  # about 0.1 s of work without the GIL

    def make() -> tuple[Callable[[bytes], bytes], Callable[[], object]]:
        shared = rn.Resampler(48000, 8000, quality="high")
        return shared.process, shared.reset

    out, refused = _big_call_and_bystander(make, data)
    assert refused, "the bystander never overlapped the big call"
    assert all(IN_USE in str(e) and "Resampler" in str(e) for e in refused)
    assert out == rn.Resampler(48000, 8000, quality="high").process(data)  # as if alone


@pytest.mark.timeout(60)
def test_a_call_overlapping_a_transcoder_call_is_refused_and_changes_nothing() -> None:
    data = rn.ulaw_encode(_noise(8000, 60.0))

    def make() -> tuple[Callable[[bytes], bytes], Callable[[], object]]:
        shared = rn.Transcoder("pcmu", 8000, "pcm16", 48000, "high")
        return shared.process, shared.flush

    out, refused = _big_call_and_bystander(make, data)
    assert refused and all(IN_USE in str(e) and "Transcoder" in str(e) for e in refused)
    assert out == rn.Transcoder("pcmu", 8000, "pcm16", 48000, "high").process(data)


@pytest.mark.timeout(60)
def test_reinitialising_a_resampler_during_a_call_is_refused() -> None:
    data = _noise(48000, 20.0)

    def make() -> tuple[Callable[[bytes], bytes], Callable[[], object]]:
        shared = rn.Resampler(48000, 8000, quality="high")
        return shared.process, lambda: rn.Resampler.__init__(shared, 8000, 48000, 8)

    out, refused = _big_call_and_bystander(make, data)
    assert refused and out == rn.Resampler(48000, 8000, quality="high").process(data)


# The thread cases of shared/repro/native_cases.py that crashed, and their siblings: each must survive,
# every error raised being the refusal.
THREADED = {
    "Resampler process/reset": """
        r = n.Resampler(8000, 48000, 8, 'high'); big = bytes(16 * 8000 * 4); small = bytes(16)
        def a():
            for _ in range(30): r.process(big)
        def b():
            for _ in range(3000): r.process(small); r.reset()
    """,
    "Resampler process/flush": """
        r = n.Resampler(44100, 16000, 2); big = bytes(4 * 44100 * 2)
        def a():
            for _ in range(40): r.process(big)
        def b():
            for _ in range(4000): r.flush(); r.process(bytes(4 * 50))
    """,
    "Transcoder process/flush": """
        t = n.Transcoder('pcm16', 48000, 'pcmu', 8000, 'high'); big = bytes(2 * 48000 * 5)
        def a():
            for _ in range(40): t.process(big)
        def b():
            for _ in range(4000): t.flush(); t.process(bytes(96))
    """,
    "Transcoder process/__init__": """
        t = n.Transcoder('pcm16', 48000, 'pcmu', 8000, 'high'); big = bytes(2 * 48000 * 5)
        def a():
            for _ in range(40): t.process(big)
        def b():
            for _ in range(400): t.__init__('pcmu', 8000, 'pcm16', 24000)
    """,
}


@pytest.mark.parametrize("case", sorted(THREADED))
@pytest.mark.timeout(90)
def test_one_stream_object_in_two_threads_never_crashes(case: str) -> None:
    done = run_child(
        THREADED[case]
        + """
        import threading
        refused = []
        def guard(f):
            def run():
                try:
                    f()
                except RuntimeError as e:
                    refused.append(str(e))
            return run
        ts = [threading.Thread(target=guard(f)) for f in (a, b)]
        [t.start() for t in ts]; [t.join() for t in ts]
        assert all('is in use by another call' in e for e in refused), refused
        print('survived')
        """,
        timeout=80,
    )
    assert done.returncode == 0 and done.stdout.strip() == "survived", done.stderr[-2000:]


@pytest.mark.timeout(60)
def test_a_ring_and_a_framer_shared_by_threads_and_reinitialised_keep_their_invariants() -> None:
    done = run_child(
        """
        import threading
        ring = n.AudioRing(1 << 16)
        framer = n.Framer(320)
        def writer():
            for _ in range(3000):
                ring.write(bytes(1 << 12)); ring.read(1 << 11); ring.peek(100)
        def framer_user():
            for _ in range(3000):
                for frame in framer.push(bytes(1000)):
                    assert len(frame) in (320, 160), len(frame)
        def reinit():
            for i in range(3000):
                ring.__init__(1 << (4 + i % 12)); framer.__init__(320 if i % 2 else 160)
        ts = [threading.Thread(target=f) for f in (writer, writer, framer_user, reinit)]
        [t.start() for t in ts]; [t.join() for t in ts]
        assert len(ring) <= ring.capacity and framer.pending < framer.frame_bytes
        print('ok')
        """
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.timeout(60)
def test_a_pacer_closed_from_several_threads_while_others_use_it() -> None:
    done = run_child(
        """
        import socket, threading, time
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(('127.0.0.1', 0))
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for round in range(30):
            p = n.Pacer(max_packets=64, max_streams=8); p.start()
            sid = p.open_stream(tx.fileno(), '127.0.0.1', rx.getsockname()[1])
            def user():
                for i in range(200):
                    try:
                        p.enqueue(sid, n.monotonic_ns() + 1000 * i, b'x' * 20)
                        if i % 7 == 0:
                            p.close_stream(sid)
                    except (KeyError, RuntimeError):
                        return
            ts = [threading.Thread(target=f) for f in (user, p.close, p.close, user)]
            [t.start() for t in ts]; [t.join() for t in ts]
            p.close()
            assert not p.running
        print('ok')
        """
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize(
    "code",
    [
        "n.AudioRing(2**62)",
        "n.Framer(2**62)",
        "n.Pacer(max_packets=2**31 - 1, packet_size=2**31 - 1)",
    ],
)
def test_a_capacity_no_allocator_grants_is_a_memory_error(code: str) -> None:
    assert_raises_in_child(code, "MemoryError", "cannot allocate")


@pytest.mark.parametrize(
    "code",
    ["n.AudioRing(2**70)", "n.Framer(2**63)", "n.Resampler(2**70, 8000)", "n.Pacer(max_packets=2**31)"],
)
def test_a_number_past_a_c_integer_is_an_overflow_error(code: str) -> None:
    assert_raises_in_child(code, "OverflowError", "")


def test_a_pacer_refuses_a_host_with_a_nul() -> None:
    pacer = rn.Pacer(max_packets=4, max_streams=2)
    try:
        with pytest.raises(ValueError, match="not a numeric IP address"):
            pacer.open_stream(0, "127.0.0.1\x00evil", 9)
    finally:
        pacer.close()
