"""AudioRing and Framer, checked against small pure-Python references (same tests for both)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtlayer_native as rn


class RefRing:
    """The obvious bytearray version of AudioRing."""

    def __init__(self, capacity: int, overflow: str = "drop_oldest") -> None:
        self.capacity, self.overflow, self.dropped, self.buf = capacity, overflow, 0, bytearray()

    def __len__(self) -> int:
        return len(self.buf)

    def write(self, data: bytes) -> int:
        free = self.capacity - len(self.buf)
        if len(data) > free and self.overflow == "reject":
            self.dropped += len(data) - free
            data = data[:free]
        self.buf += data
        excess = len(self.buf) - self.capacity
        if excess > 0:
            self.dropped += excess
            del self.buf[:excess]
        return len(data) if self.overflow == "reject" else min(len(data), self.capacity)

    def peek(self, n: int) -> bytes:
        return bytes(self.buf[:n])

    def read(self, n: int) -> bytes:
        out = self.peek(n)
        del self.buf[:n]
        return out

    def discard(self, n: int) -> int:
        return len(self.read(n))

    def clear(self) -> None:
        self.buf.clear()


class RefFramer:
    def __init__(self, frame_bytes: int, pad_last: bool = False) -> None:
        self.frame_bytes, self.pad_last, self.buf = frame_bytes, pad_last, bytearray()

    @property
    def pending(self) -> int:
        return len(self.buf)

    def push(self, data: bytes) -> list[bytes]:
        self.buf += data
        n = len(self.buf) // self.frame_bytes * self.frame_bytes
        frames = [bytes(self.buf[i : i + self.frame_bytes]) for i in range(0, n, self.frame_bytes)]
        del self.buf[:n]
        return frames

    def flush(self) -> bytes | None:
        if not self.buf:
            return None
        out = bytes(self.buf).ljust(self.frame_bytes, b"\x00") if self.pad_last else bytes(self.buf)
        self.buf.clear()
        return out

    def reset(self) -> None:
        self.buf.clear()


RINGS: dict[str, Any] = {"native": rn.AudioRing, "reference": RefRing}
FRAMERS: dict[str, Any] = {"native": rn.Framer, "reference": RefFramer}


@pytest.fixture(params=sorted(RINGS))
def ring_cls(request: pytest.FixtureRequest) -> Any:
    return RINGS[request.param]


@pytest.fixture(params=sorted(FRAMERS))
def framer_cls(request: pytest.FixtureRequest) -> Any:
    return FRAMERS[request.param]


def test_ring_fifo_order_and_wraparound(ring_cls: Any) -> None:
    ring = ring_cls(8)
    assert ring.write(b"abcdef") == 6
    assert ring.read(4) == b"abcd"
    assert ring.write(b"ghijk") == 5  # wraps around the end of the storage
    assert len(ring) == 7
    assert ring.peek(100) == b"efghijk"
    assert ring.discard(2) == 2
    assert ring.read(100) == b"ghijk"
    assert ring.read(1) == b""
    assert ring.dropped == 0


def test_ring_drop_oldest_keeps_the_newest_and_counts_the_rest(ring_cls: Any) -> None:
    ring = ring_cls(8, "drop_oldest")
    ring.write(b"abcdef")
    assert ring.write(b"1234") == 4
    assert ring.dropped == 2
    assert ring.peek(8) == b"cdef1234"
    assert ring.write(b"ABCDEFGHIJ") == 8  # larger than the ring: only its last 8 bytes survive
    assert ring.read(8) == b"CDEFGHIJ"
    assert ring.dropped == 2 + 8 + 2


def test_ring_reject_keeps_the_oldest_and_counts_what_it_refused(ring_cls: Any) -> None:
    ring = ring_cls(8, "reject")
    ring.write(b"abcdef")
    assert ring.write(b"1234") == 2
    assert ring.dropped == 2
    assert ring.read(8) == b"abcdef12"
    ring.clear()
    assert len(ring) == 0


def test_ring_bad_arguments() -> None:
    with pytest.raises(ValueError, match="capacity must be a positive"):
        rn.AudioRing(0)
    with pytest.raises(ValueError, match="overflow must be one of"):
        rn.AudioRing(10, "block")
    ring = rn.AudioRing(10)
    with pytest.raises(ValueError, match="n must be >= 0"):
        ring.read(-1)
    assert ring.capacity == 10 and ring.overflow == "drop_oldest"


_ring_ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(max_size=40)),
        st.tuples(st.sampled_from(["read", "peek", "discard"]), st.integers(0, 40)),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 33), overflow=st.sampled_from(["drop_oldest", "reject"]), ops=_ring_ops)
def test_ring_native_equals_reference(capacity: int, overflow: str, ops: list[tuple[str, Any]]) -> None:
    native, ref = rn.AudioRing(capacity, overflow), RefRing(capacity, overflow)
    for name, arg in ops:
        if name == "clear":
            native.clear()
            ref.clear()
        else:
            assert getattr(native, name)(arg) == getattr(ref, name)(arg)
        assert len(native) == len(ref)
        assert native.dropped == ref.dropped


def test_framer_exact_frames_and_remainder(framer_cls: Any) -> None:
    framer = framer_cls(4)
    assert framer.push(b"abcdefghij") == [b"abcd", b"efgh"]
    assert framer.pending == 2
    assert framer.push(b"k") == []
    assert framer.push(b"lmnop") == [b"ijkl", b"mnop"]
    assert framer.push(b"") == []
    assert framer.flush() is None
    assert framer.push(bytearray(b"xyz")) == []
    assert framer.flush() == b"xyz"
    assert framer.pending == 0


def test_framer_pads_the_last_frame_with_silence(framer_cls: Any) -> None:
    framer = framer_cls(320, pad_last=True)
    assert framer.push(bytes(range(100))) == []
    last = framer.flush()
    assert last == bytes(range(100)) + bytes(220)
    framer.push(b"ab")
    framer.reset()
    assert framer.flush() is None


def test_framer_hands_whole_frames_through() -> None:
    frame = bytes(640)
    assert rn.Framer(640).push(frame)[0] is frame  # no copy in the common case
    with pytest.raises(ValueError, match="frame_bytes must be positive"):
        rn.Framer(0)


@settings(max_examples=150, deadline=None)
@given(frame=st.integers(1, 17), pad=st.booleans(), chunks=st.lists(st.binary(max_size=50), max_size=20))
def test_framer_native_equals_reference(frame: int, pad: bool, chunks: list[bytes]) -> None:
    native, ref = rn.Framer(frame, pad), RefFramer(frame, pad)
    for chunk in chunks:
        assert native.push(chunk) == ref.push(chunk)
        assert native.pending == ref.pending
    assert native.flush() == ref.flush()
