"""Fuzz targets for rtlayer_native: every public function and class, used as a careless or hostile
caller could use it.

Inputs are random sizes (empty, odd, frame-sized, up to 200 KB), random contents and every shape of
argument Python can pass: bytes, bytearray, read-only and writable memoryviews, slices, non-contiguous
views, casts, ``array.array``, numpy arrays (1-D, 2-D, Fortran order, strided, read-only, 0-d, other
dtypes), objects exporting a buffer that calls back into the object under test (Python 3.12+), and
things that are not buffers at all; numbers at and past the C limits; objects made without
``__init__``; sequences of calls in any order; and the same object shared by threads.

What rtlayer_native documents (its package docstring, "Errors"), and so what these targets allow:
``TypeError`` (not a bytes-like object, or a wrong argument type), ``BufferError`` and ``ValueError``
(a buffer that is not C-contiguous; a length or an argument out of range), ``OverflowError`` (a number
past a C integer), ``RuntimeError`` (an object without ``__init__``, an overlapping call on a stream
object, a closed pacer), ``KeyError`` (a pacer stream that is not open), ``OSError`` (a socket the
pacer cannot duplicate) and ``MemoryError`` (a capacity no allocator grants). Beyond "no other error",
the targets check what the output must be: lengths, the ring and the framer against a Python model,
chunking invariance of the resampler and the transcoder, the G.711 round trip.
"""

from __future__ import annotations

import array
import functools
import math
import random
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from fuzz_runner import target

import rtlayer_native as rn

BUFFER_ERRORS: tuple[type[BaseException], ...] = (TypeError, ValueError, BufferError)
ARGUMENT_ERRORS: tuple[type[BaseException], ...] = (TypeError, ValueError, OverflowError)
STREAM_ERRORS: tuple[type[BaseException], ...] = (*ARGUMENT_ERRORS, BufferError)
NATIVE_ERRORS = (*BUFFER_ERRORS, OverflowError, RuntimeError, KeyError, OSError, MemoryError)
THREAD_TIMEOUT_S = 20.0
NOT_INITIALISED = "is not initialised"


# --- inputs -------------------------------------------------------------------------------------------
def size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.3:
        return rng.randrange(8)
    if r < 0.6:
        return rng.choice((160, 320, 480, 640, 960, 1920, 3840)) + rng.choice((0, 0, 0, 1, 2, 3))
    if r < 0.98:
        return rng.randrange(4096)
    return rng.randrange(4096, 200_000)


class CallbackBuffer:
    """Exports ``raw`` through ``__buffer__`` (Python 3.12+), calling ``hook`` first: the exporter may
    run any Python code, including a call on the very object that is taking the buffer."""

    def __init__(self, raw: bytes, hook: Callable[[], object] | None) -> None:
        self.raw = raw
        self.hook = hook

    def __buffer__(self, flags: int) -> memoryview:
        if self.hook is not None:
            hook, self.hook = self.hook, None  # once: no endless recursion
            hook()
        return memoryview(self.raw)


def not_a_buffer(rng: random.Random) -> Any:
    return rng.choice(["text", "", None, 5, -1, 1.5, math.nan, [1, 2], {}, object(), (b"ab",), True])


def buffer(rng: random.Random, n: int, hook: Callable[[], object] | None = None) -> Any:
    # Any: passing what the signature does not allow is the point
    """About ``n`` bytes in one of the shapes a caller may pass, or (rarely) something else."""
    raw = rng.randbytes(n) if rng.random() < 0.8 else bytes([rng.randrange(256)]) * n
    even = raw[: n - n % 2]
    k = rng.randrange(100)
    if k < 30:
        return raw
    if k < 38:
        return bytearray(raw)
    if k < 44:
        return memoryview(raw)  # read-only
    if k < 49:
        a = rng.randrange(n + 1)
        return memoryview(bytearray(raw))[a : rng.randrange(a, n + 1)]
    if k < 53:
        return memoryview(raw)[:: rng.choice((2, 3, -1))]  # strided: not contiguous beyond 1 item
    if k < 56:
        return memoryview(even).cast("h")
    if k < 59:
        return array.array("h", even)
    if k < 61:
        return array.array("d", raw[: n - n % 8])
    arr = np.frombuffer(even, "<i2").copy()
    if k < 68:
        return arr
    if k < 71:
        return arr[: arr.size - arr.size % 2].reshape(-1, 2) if arr.size >= 2 else arr
    if k < 74:
        return np.asfortranarray(arr[: arr.size - arr.size % 6].reshape(-1, 3).T) if arr.size >= 6 else arr
    if k < 77:
        return arr[:: rng.choice((2, 3))]
    if k < 79:
        return arr.astype(rng.choice((np.float32, np.float64, np.int8, np.int32, np.bool_, np.uint16)))
    if k < 81:
        arr.setflags(write=False)
        return arr
    if k < 82:
        return np.int16(rng.randrange(-32768, 32768))  # 0-d
    if k < 83:
        return np.array([None, 1, "x"], dtype=object)
    if k < 90:
        return CallbackBuffer(raw, hook)
    return not_a_buffer(rng)


def nbytes(data: object) -> int:
    if isinstance(data, CallbackBuffer):
        return len(data.raw)
    return memoryview(data).nbytes  # type: ignore[arg-type]


def contents(data: object) -> bytes:
    if isinstance(data, CallbackBuffer):
        return data.raw
    return memoryview(data).tobytes()  # type: ignore[arg-type]


# Each refused: not positive, past a C int and a Py_ssize_t, or not an int. (Huge valid sizes are left
# out on purpose: a 2 GB ring is what its caller asked for, and this machine is shared.)
EXTREMES = (0, -1, -(2**63) - 1, 2**63, 2**70, -(2**70), 1.5, math.inf, math.nan, "8000", None)


def number(rng: random.Random, typical: Callable[[], object], *more: object) -> Any:
    """Mostly ``typical()``; sometimes one of ``EXTREMES`` or ``more``."""
    if rng.random() < 0.92:
        return typical()
    return rng.choice((*EXTREMES, *more))


def expect(errors: tuple[type[BaseException], ...], call: Callable[..., object], *args: object) -> Any:
    """``call(*args)``, or None when it raised one of ``errors``."""
    try:
        return call(*args)
    except errors:
        return None


def must_refuse_as_uninitialised(calls: list[Callable[[], object]]) -> None:
    for call in calls:
        try:
            call()
        except RuntimeError as error:
            assert NOT_INITIALISED in str(error), error
        except BUFFER_ERRORS:
            pass  # the argument was refused first
        else:
            raise AssertionError("an object without __init__ did not refuse a call")


def run_threads(bodies: list[Callable[[], object]], allowed: tuple[type[BaseException], ...]) -> None:
    """Runs each body in its own thread; any error outside ``allowed``, or a thread that never ends, fails."""
    errors: list[BaseException] = []

    def guarded(body: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except allowed:
                pass
            except BaseException as error:
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(body), daemon=True) for body in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(THREAD_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), f"a thread did not finish in {THREAD_TIMEOUT_S} s"
    if errors:
        raise errors[0]


# --- G.711 and the PCM helpers ------------------------------------------------------------------------
ENCODERS = {rn.ulaw_encode: rn.ulaw_decode, rn.alaw_encode: rn.alaw_decode}
DECODERS = {rn.ulaw_decode: rn.ulaw_encode, rn.alaw_decode: rn.alaw_encode}


@target("native.g711", documented=BUFFER_ERRORS)
def g711(rng: random.Random) -> None:
    fn = rng.choice([*ENCODERS, *DECODERS])
    data = buffer(rng, size(rng))
    out = fn(data)
    n = nbytes(data)
    if fn in ENCODERS:
        assert n % 2 == 0 and len(out) == n // 2
        return
    assert len(out) == 2 * n
    # Every code survives decode-then-encode, but mu-law's -0 (0x7F), which comes back as +0 (0xFF).
    again = DECODERS[fn](out)
    expected = contents(data)
    if fn is rn.ulaw_decode:
        expected = expected.replace(b"\x7f", b"\xff")
    assert again == expected


PCM_OUTPUT_BYTES: dict[Callable[..., object], Callable[[int], int]] = {
    rn.pcm16_to_float32: lambda n: 2 * n,
    rn.float32_to_pcm16: lambda n: n // 2,
    rn.apply_gain: lambda n: n,
    rn.stereo_to_mono: lambda n: n // 2,
    rn.mono_to_stereo: lambda n: 2 * n,
}
LEVELS: tuple[Callable[..., object], ...] = (rn.rms, rn.peak, rn.rms_dbfs, rn.peak_dbfs)


@target("native.pcm", documented=BUFFER_ERRORS)
def pcm(rng: random.Random) -> None:
    fn: Callable[..., object] = rng.choice([*PCM_OUTPUT_BYTES, *LEVELS])
    data = buffer(rng, size(rng))
    out = fn(data, number(rng, lambda: rng.uniform(-4, 4))) if fn is rn.apply_gain else fn(data)
    if fn in PCM_OUTPUT_BYTES:
        assert isinstance(out, bytes) and len(out) == PCM_OUTPUT_BYTES[fn](nbytes(data))
    elif fn in (rn.rms, rn.peak):
        assert isinstance(out, float) and 0.0 <= out <= 1.0
    else:
        assert isinstance(out, float) and (out <= 0.0 or out == -math.inf)


# --- Resampler and Transcoder -------------------------------------------------------------------------
def signal_chunks(rng: random.Random, unit: int) -> tuple[bytes, list[Any]]:
    """A random signal of whole ``unit``-byte frames and its split into chunks of random shapes."""
    whole = rng.randbytes(unit * rng.randrange(0, 3000))
    chunks: list[Any] = []
    at = 0
    while at < len(whole):
        step = unit * rng.choice((1, 2, 3, 7, 80, 160, 441, 1000))
        piece = whole[at : at + step]
        chunks.append(rng.choice((bytes, bytearray, memoryview))(piece))
        at += step
    return whole, chunks


def resampler_args(rng: random.Random) -> tuple[Any, ...]:
    return (
        number(rng, lambda: rng.choice(rn.SUPPORTED_RATES), 2**31 - 1, 2**31, 11025),
        number(rng, lambda: rng.choice(rn.SUPPORTED_RATES), 2**31 - 1, 2**31, 11025),
        number(rng, lambda: rng.choice((1, 1, 1, 2, 3, 8)), 9, 2**31 - 1),
        rng.choice((*rn.QUALITIES * 8, "ultra", None)),
    )


def stream_calls(
    rng: random.Random, obj: rn.Resampler | rn.Transcoder, unit: int
) -> list[Callable[[], object]]:
    def process() -> object:
        frames = size(rng) // unit
        return obj.process(buffer(rng, frames * unit + rng.choice((0, 0, 0, 0, 1)), hook=lambda: obj.reset()))

    return [process, process, process, obj.flush, obj.reset, lambda: repr(obj), lambda: obj.latency_ms]


def drive(rng: random.Random, calls: list[Callable[[], object]], misuse_allowed: bool) -> None:
    """A random sequence of calls; a RuntimeError is allowed only where misuse was arranged."""
    for _ in range(rng.randrange(1, 12)):
        try:
            rng.choice(calls)()
        except RuntimeError as error:
            if not misuse_allowed or NOT_INITIALISED in str(error):
                raise AssertionError(f"unexpected refusal: {error}") from error
        except STREAM_ERRORS:
            pass


class SkipsInitResampler(rn.Resampler):
    def __init__(self, *args: object) -> None:
        pass


class SkipsInitTranscoder(rn.Transcoder):
    def __init__(self, *args: object) -> None:
        pass


@target("native.resampler", documented=ARGUMENT_ERRORS)
def resampler(rng: random.Random) -> None:
    mode = rng.random()
    if mode < 0.05:
        r = rng.choice((lambda: rn.Resampler.__new__(rn.Resampler), SkipsInitResampler))()
        must_refuse_as_uninitialised([lambda: r.process(bytes(4)), r.flush, r.reset])
        return
    if mode < 0.35:  # chunking invariance: any split gives the bytes of one call
        in_rate, out_rate = rng.choice(rn.SUPPORTED_RATES), rng.choice(rn.SUPPORTED_RATES)
        channels, quality = rng.choice((1, 2, 3)), rng.choice(rn.QUALITIES)
        whole, chunks = signal_chunks(rng, 2 * channels)
        one = rn.Resampler(in_rate, out_rate, channels, quality)
        expected = one.process(whole) + one.flush()
        r = rn.Resampler(in_rate, out_rate, channels, quality)
        got = b"".join(r.process(c) for c in chunks) + r.flush()  # type: ignore[arg-type]
        assert got == expected, (in_rate, out_rate, channels, quality, len(whole))
        assert r.flush() == b""
        return
    r = rn.Resampler(*resampler_args(rng))  # type: ignore[arg-type]
    calls = stream_calls(rng, r, 2 * r.channels)
    calls.append(lambda: rn.Resampler.__init__(r, *resampler_args(rng)))  # type: ignore[arg-type]
    calls.append(r._prototype)
    # Misuse arranged: a buffer exporter that calls back into r (Python 3.12+) is refused.
    drive(rng, calls, misuse_allowed=sys.version_info >= (3, 12))


def transcoder_args(rng: random.Random) -> tuple[Any, ...]:
    def codec() -> object:
        return rng.choice((*rn.CODECS * 8, "opus", None))

    def rate(c: object) -> object:
        return (
            8000
            if c in ("pcmu", "pcma") and rng.random() < 0.9
            else number(rng, lambda: rng.choice(rn.SUPPORTED_RATES))
        )

    src, dst = codec(), codec()
    return src, rate(src), dst, rate(dst), rng.choice((*rn.QUALITIES, "x"))


@target("native.transcoder", documented=ARGUMENT_ERRORS)
def transcoder(rng: random.Random) -> None:
    mode = rng.random()
    if mode < 0.05:
        t = rng.choice((lambda: rn.Transcoder.__new__(rn.Transcoder), SkipsInitTranscoder))()
        must_refuse_as_uninitialised([lambda: t.process(bytes(4)), t.flush, t.reset, lambda: t.latency_ms])
        return
    if mode < 0.35:
        src = rng.choice(rn.CODECS)
        dst = rng.choice(rn.CODECS)
        src_rate = 8000 if src != "pcm16" else rng.choice(rn.SUPPORTED_RATES)
        dst_rate = 8000 if dst != "pcm16" else rng.choice(rn.SUPPORTED_RATES)
        whole, chunks = signal_chunks(rng, 2 if src == "pcm16" else 1)
        one = rn.Transcoder(src, src_rate, dst, dst_rate)
        expected = one.process(whole) + one.flush()
        t = rn.Transcoder(src, src_rate, dst, dst_rate)
        assert b"".join(t.process(c) for c in chunks) + t.flush() == expected  # type: ignore[arg-type]
        return
    t = rn.Transcoder(*transcoder_args(rng))  # type: ignore[arg-type]
    calls = stream_calls(rng, t, 2 if t.src_codec == "pcm16" else 1)
    calls.append(lambda: rn.Transcoder.__init__(t, *transcoder_args(rng)))  # type: ignore[arg-type]
    drive(rng, calls, misuse_allowed=sys.version_info >= (3, 12))


# --- AudioRing and Framer, against Python models ------------------------------------------------------
class RingModel:
    def __init__(self, capacity: int, overflow: str) -> None:
        self.capacity, self.reject = capacity, overflow == "reject"
        self.held = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> int:
        free = self.capacity - len(self.held)
        if len(data) > free:
            if self.reject:
                self.dropped += len(data) - free
                data = data[:free]
            else:
                self.held += data
                excess = len(self.held) - self.capacity
                self.dropped += excess
                del self.held[:excess]
                return min(len(data), self.capacity)
        self.held += data
        return len(data)

    def take(self, n: int, remove: bool) -> bytes:
        out = bytes(self.held[:n])
        if remove:
            del self.held[:n]
        return out


def ring_args(rng: random.Random) -> tuple[object, object]:
    capacity = number(rng, lambda: rng.choice((1, 2, 3, 160, 320, 1000, 4096, 65536)))
    return capacity, rng.choice(("drop_oldest",) * 5 + ("reject",) * 4 + ("explode",))


@target("native.ring", documented=(*ARGUMENT_ERRORS, MemoryError))
def ring(rng: random.Random) -> None:
    if rng.random() < 0.05:
        r = rn.AudioRing.__new__(rn.AudioRing)
        must_refuse_as_uninitialised(
            [lambda: r.write(b"x"), lambda: r.read(1), lambda: r.peek(1), lambda: r.discard(1)]
        )
        return
    r = rn.AudioRing(*ring_args(rng))  # type: ignore[arg-type]
    model = RingModel(r.capacity, r.overflow)
    for _ in range(rng.randrange(1, 40)):
        op = rng.randrange(7)
        n = number(rng, lambda: rng.randrange(0, 2 * r.capacity + 2), 2**62)
        if op <= 2:
            data = buffer(rng, size(rng), hook=lambda: r.write(b"hook"))
            hooked = (
                isinstance(data, CallbackBuffer) and data.hook is not None and sys.version_info >= (3, 12)
            )
            written = expect(BUFFER_ERRORS, r.write, data)
            if hooked:
                model.write(b"hook")
            if written is not None:
                assert written == model.write(contents(data))
        elif op == 3:
            got = expect(ARGUMENT_ERRORS, r.read, n)
            if got is not None:
                assert got == model.take(n, True)  # type: ignore[arg-type]
        elif op == 4:
            got = expect(ARGUMENT_ERRORS, r.peek, n)
            if got is not None:
                assert got == model.take(n, False)  # type: ignore[arg-type]
        elif op == 5:
            got = expect(ARGUMENT_ERRORS, r.discard, n)
            if got is not None:
                assert got == len(model.take(n, True))  # type: ignore[arg-type]
        else:
            r.clear()
            model.held.clear()
        assert len(r) == len(model.held) and r.dropped == model.dropped


@target("native.framer", documented=(*ARGUMENT_ERRORS, MemoryError))
def framer(rng: random.Random) -> None:
    if rng.random() < 0.05:
        f = rn.Framer.__new__(rn.Framer)
        must_refuse_as_uninitialised([lambda: f.push(b"abc"), lambda: f.push(b""), f.flush])
        return
    frame_bytes = number(rng, lambda: rng.choice((1, 2, 160, 320, 640, 960, 1000)))
    pad_last = rng.random() < 0.5
    f = rn.Framer(frame_bytes, pad_last)  # type: ignore[arg-type]
    fb = f.frame_bytes
    pending = b""
    for _ in range(rng.randrange(1, 30)):
        if rng.random() < 0.85:
            # The exporter may reset the framer while push takes the buffer (Python 3.12+).
            data = buffer(rng, size(rng), hook=f.reset)
            hooked = isinstance(data, CallbackBuffer) and sys.version_info >= (3, 12)
            frames = expect(BUFFER_ERRORS, f.push, data)
            if hooked:
                pending = b""
            if frames is None:
                continue
            stream = pending + contents(data)
            whole = len(stream) // fb * fb
            assert all(len(fr) == fb for fr in frames) and b"".join(frames) == stream[:whole]  # type: ignore[attr-defined]
            pending = stream[whole:]
        elif rng.random() < 0.7:
            out = f.flush()
            if not pending:
                assert out is None
            else:
                assert out == (pending + bytes(fb - len(pending)) if pad_last else pending)
            pending = b""
        else:
            f.reset()
            pending = b""
        assert f.pending == len(pending)


# --- Pacer: real datagrams, to a socket of this process on loopback only ------------------------------
SINK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
SINK.bind(("127.0.0.1", 0))
SINK.setblocking(False)
SENDER = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
SENDER6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) if socket.has_ipv6 else SENDER


def drain_sink() -> None:
    for _ in range(10_000):
        try:
            SINK.recv(65536)
        except BlockingIOError:
            return


def pacer_calls(rng: random.Random, p: rn.Pacer, sids: list[int]) -> list[Callable[[], object]]:
    def sid() -> Any:
        return rng.choice(sids) if sids and rng.random() < 0.8 else number(rng, lambda: rng.randrange(-2, 10))

    def open_stream() -> None:
        # Loopback only: this process's sink, or addresses refused before anything is sent.
        host = rng.choice(("127.0.0.1", "127.0.0.1", "::1", "localhost", "é", "", "1.2.3", "127.0.0.1\x00x"))
        port = (
            SINK.getsockname()[1] if rng.random() < 0.9 else number(rng, lambda: rng.choice((0, 65536, -1)))
        )
        fd = (
            (SENDER6 if host == "::1" else SENDER).fileno() if rng.random() < 0.9 else rng.choice((-1, 10**6))
        )
        sids.append(p.open_stream(fd, host, port))  # type: ignore[arg-type]

    def enqueue() -> None:
        deadline = number(rng, lambda: rn.monotonic_ns() + rng.randrange(-(10**9), 5 * 10**7))
        stream = sid()
        # The exporter may close the very stream the packet is for (Python 3.12+).
        packet = buffer(
            rng, rng.choice((0, 12, 20, 172, 1500, 1501, 3000)), hook=lambda: p.close_stream(stream)
        )
        ok = p.enqueue(stream, deadline, packet)
        assert ok in (True, False)

    def stats() -> None:
        s = p.stats()
        assert 0 <= s["queued"] <= 10**6 and min(s.values()) >= 0, s

    return [
        open_stream,
        enqueue,
        enqueue,
        enqueue,
        lambda: p.drop(sid()),  # type: ignore[arg-type]
        lambda: p.close_stream(sid()),  # type: ignore[arg-type]
        lambda: p.stream_stats(sid()),  # type: ignore[arg-type]
        lambda: p.queued(sid()),  # type: ignore[arg-type]
        stats,
        p.drain_lateness,
        lambda: p.scheduling,
        p.start,
    ]


PACER_ERRORS = (*ARGUMENT_ERRORS, BufferError, KeyError, OSError, RuntimeError, MemoryError)


@target("native.pacer", documented=PACER_ERRORS)
def pacer(rng: random.Random) -> None:
    p = rn.Pacer(
        max_packets=number(rng, lambda: rng.randrange(1, 65)),  # type: ignore[arg-type]
        max_streams=number(rng, lambda: rng.randrange(1, 9)),  # type: ignore[arg-type]
        packet_size=number(rng, lambda: rng.randrange(12, 2000)),  # type: ignore[arg-type]
        lateness_samples=number(rng, lambda: rng.randrange(1, 64)),  # type: ignore[arg-type]
        slice_us=rng.choice((0, 100)),
    )
    try:
        sids: list[int] = []
        calls = pacer_calls(rng, p, sids)
        for _ in range(rng.randrange(1, 30)):
            expect(PACER_ERRORS, rng.choice(calls))
        if rng.random() < 0.5:
            p.close()
            expect(PACER_ERRORS, rng.choice(calls))  # after close: refused or harmless
    finally:
        p.close()
        drain_sink()


# --- one object, several threads --------------------------------------------------------------------
@target("native.threads", documented=NATIVE_ERRORS, ci_seconds=2.0)
def threads(rng: random.Random) -> None:
    kind = rng.choice(("resampler", "transcoder", "ring", "framer", "pacer"))
    bodies: list[Callable[[], object]] = []
    check: Callable[[], object] = lambda: None  # noqa: E731
    if kind in ("resampler", "transcoder"):
        obj: object = (
            rn.Resampler(
                rng.choice(rn.SUPPORTED_RATES), rng.choice(rn.SUPPORTED_RATES), rng.choice((1, 2)), "high"
            )
            if kind == "resampler"
            else rn.Transcoder("pcmu", 8000, "pcm16", rng.choice(rn.SUPPORTED_RATES))
        )
        assert isinstance(obj, rn.Resampler | rn.Transcoder)
        unit = 2 * obj.channels if isinstance(obj, rn.Resampler) else 1
        big = bytes(unit * rng.choice((160, 4000, 48000)))

        def stream_ops(o: rn.Resampler | rn.Transcoder, seed: int) -> None:
            r = random.Random(seed)
            for _ in range(r.randrange(1, 20)):
                try:
                    r.choice((lambda: o.process(big), lambda: o.process(big[:unit]), o.flush, o.reset))()
                except RuntimeError as error:  # the refusal, and nothing else
                    assert "is in use by another call" in str(error), error

        bodies = [functools.partial(stream_ops, obj, rng.randrange(2**32)) for _ in range(rng.choice((2, 3)))]
    elif kind == "ring":
        r = rn.AudioRing(rng.choice((1, 100, 4096)), rng.choice(("drop_oldest", "reject")))

        def ring_ops(seed: int) -> None:
            g = random.Random(seed)
            for _ in range(g.randrange(1, 200)):
                op = g.randrange(5)
                if op < 2:
                    r.write(bytes(g.randrange(0, 6000)))
                elif op == 2:
                    assert len(r.read(g.randrange(0, 5000))) <= 4096  # the largest capacity used
                elif op == 3:
                    r.peek(g.randrange(0, 5000))
                else:
                    r.__init__(g.choice((1, 100, 4096)))  # type: ignore[misc]

        bodies = [functools.partial(ring_ops, rng.randrange(2**32)) for _ in range(3)]
        check = lambda: len(r) <= r.capacity  # noqa: E731
    elif kind == "framer":
        f = rn.Framer(rng.choice((1, 160, 320)))

        def framer_ops(seed: int) -> None:
            g = random.Random(seed)
            for _ in range(g.randrange(1, 200)):
                if g.random() < 0.9:
                    for frame in f.push(bytes(g.randrange(0, 3000))):
                        assert len(frame) in (1, 160, 320)
                else:
                    f.__init__(g.choice((1, 160, 320)))  # type: ignore[misc]

        bodies = [functools.partial(framer_ops, rng.randrange(2**32)) for _ in range(2)]
        check = lambda: f.pending < f.frame_bytes  # noqa: E731
    else:
        p = rn.Pacer(max_packets=rng.randrange(1, 64), max_streams=4)
        p.start()
        sids: list[int] = []
        calls = pacer_calls(rng, p, sids)

        def pacer_ops(seed: int) -> None:
            g = random.Random(seed)
            for _ in range(g.randrange(1, 60)):
                expect(PACER_ERRORS, g.choice(calls))

        bodies = [functools.partial(pacer_ops, rng.randrange(2**32)) for _ in range(2)]
        if rng.random() < 0.5:
            bodies.append(p.close)
        check = p.close
    try:
        run_threads(bodies, allowed=())
        assert check() is not False
    finally:
        drain_sink()
