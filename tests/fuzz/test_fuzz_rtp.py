"""Fuzz RTP: the packet parser (:class:`RtpError` only), and a receiver fed hostile streams.

The receiver target is the bound of the hardening issue's finding 1 as a property: whatever sequence
numbers, SSRCs, payload types and payload sizes (up to 64 KB) arrive, in whatever order and timing,
the audio it hands on is never more than the payload bytes it received plus the silence real time
allows (``max_conceal_ms`` of budget, refilled at 8000 bytes a second), and its reorder buffer holds
at most ``depth`` packets. See ``sip_fuzzing`` for the run.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

from sip_fuzzing import Mutator, budget, fuzz

from rtlayer.server.sip.rtp import RtpError, RtpPacket, RtpReceiver, RtpSourceGuard, encode_dtmf, parse_rtp

SEEDS = [
    RtpPacket(0, 1, 160, 42, b"\xff" * 160, marker=True).to_bytes(),
    bytes([0xB1, 0x08])
    + struct.pack("!HII", 5, 800, 9)
    + b"CSRC"
    + struct.pack("!HH", 0xBEDE, 1)
    + b"\x00" * 4
    + b"\xd5" * 240
    + b"\x00\x00\x03",
    encode_dtmf("5", sequence=7, timestamp=8000, ssrc=42, duration=480, end=True),
]


def check_packet(data: bytes) -> None:
    pkt = parse_rtp(data)
    again = parse_rtp(
        RtpPacket(pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.payload).to_bytes()
    )
    assert again.payload == pkt.payload and again.sequence == pkt.sequence


def test_the_rtp_parser_takes_any_bytes() -> None:
    result = fuzz("rtp_packet", check_packet, iter(Mutator(SEEDS, seed=3551)), RtpError)
    assert not result.failures, result.failures
    assert result.inputs > 1000


class HostileStream:
    """Packets for one call, mostly plausible, with leaps, repeats, new SSRCs, odd types, big payloads,
    garbage and strangers; ``check`` feeds one to a guarded receiver and checks the bounds."""

    MAX_CONCEAL_MS = 200

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.mutator = Mutator(SEEDS, seed)
        self.seq = 0
        self.ssrc = 42
        self._new_call()

    def _new_call(self) -> None:
        self.rx = RtpReceiver("pcmu", 0, 101, max_conceal_ms=self.MAX_CONCEAL_MS)
        self.guard = RtpSourceGuard(("127.0.0.1", 4000), [0, 101])
        self.now = 0.0
        self.payload_in = 0
        self.audio_out = 0
        self.packets = 0

    def __iter__(self) -> Iterator[bytes]:
        rng = self.rng
        while True:
            r = rng.random()
            if r < 0.1:
                yield self.mutator.random_bytes(80)
                continue
            if r < 0.2:
                yield self.mutator.mutate(rng.choice(SEEDS))
                continue
            step = rng.choice(
                [1, 1, 1, 1, 2, 3, 0, -1, -2, 5, 50, 0x7FFF, 0x8000, 40_000, rng.randrange(65536)]
            )
            self.seq = (self.seq + step) & 0xFFFF
            if rng.random() < 0.01:
                self.ssrc = rng.getrandbits(32)
            size = rng.choice([160, 160, 160, 240, 1, 1400, 65_000 if rng.random() < 0.05 else 160])
            pt = rng.choice([0, 0, 0, 0, 101, 8, 13])
            payload = b"\x55" * size if pt != 101 else bytes([rng.randrange(20), 0x8A, 0, 160])
            yield RtpPacket(pt, self.seq, rng.getrandbits(32), self.ssrc, payload).to_bytes()

    def check(self, data: bytes) -> None:
        self.packets += 1
        if self.packets > 5000:  # a fresh call now and then, so the budget bound starts from its cap
            self._new_call()
        self.now += self.rng.choice([0.0, 0.0, 0.001, 0.02, 0.02, 0.05, 1.0])
        source = ("127.0.0.1", 5000) if self.rng.random() < 0.95 else ("127.0.0.2", 5000)
        if not self.guard.admit(data, source):
            return
        try:
            pkt = parse_rtp(data)
            if pkt.payload_type == 0:
                self.payload_in += len(pkt.payload)
        except RtpError:
            pass
        self.rx.receive(data, self.now)
        if self.rng.random() < 0.1:
            self.rx.flush_stale(self.now + 0.1)
        self.audio_out += len(self.rx.pop_audio())
        self.rx.pop_digits()
        allowed = self.payload_in + 8 * self.MAX_CONCEAL_MS + int((self.now + 0.1) * 8000) + 8
        assert self.audio_out <= allowed, (self.audio_out, allowed)
        assert self.rx.buffered <= self.rx.depth + 1  # the reorder buffer stays small
        assert self.guard.latched in (None, ("127.0.0.1", 5000))  # a stranger never latches


def test_a_receiver_under_hostile_streams_stays_within_its_bounds() -> None:
    stream = HostileStream(seed=1889)
    result = fuzz("rtp_receiver", stream.check, iter(stream), ())
    assert not result.failures, result.failures
    assert result.inputs > 1000 or budget()[0] < 1000
    assert stream.guard.rejected > 0 or result.inputs < 100  # strangers were seen, and refused
