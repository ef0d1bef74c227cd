"""RTP for one G.711 call (RFC 3550, RFC 4733), sans-I/O.

- :func:`parse_rtp` / :class:`RtpPacket`: the fixed header, CSRCs, extension and padding.
- :class:`RtpSender`: sequence numbers, timestamps and the marker bit of what we send. Silence is not
  sent (the timestamp still advances), and the first packet of each talk spurt carries the marker.
- :class:`RtpReceiver`: a small reorder buffer keyed by extended sequence number. Duplicates and
  packets that arrive after their slot was played are dropped and counted; a gap that does not fill
  within ``depth`` packets (or within ``flush_stale``'s wait, when nothing more arrives) is declared
  lost and concealed with G.711 silence so the session's clock and voice detection keep counting
  time. Concealment is bounded by time, never by what a packet claims: each lost packet is filled with
  one frame the size of the last played one (at most ``MAX_FRAME_BYTES``), from a budget that refills
  at the real-time rate up to ``max_conceal_ms`` (a loss longer than that is counted, not filled). A
  sequence number that leaps further than RFC 3550's ``MAX_DROPOUT`` (or back further than
  ``MAX_MISORDER``) is dropped unless the next packet follows it (RFC 3550 appendix A.1): then the
  sender restarted, and the stream resynchronises there as a new talk spurt (``resyncs``), with nothing
  filled in between. So one 3-packet burst can cost at most ``max_conceal_ms`` of silence, whatever its
  sequence numbers and payload sizes. RFC 4733 ``telephone-event`` packets become DTMF digits, one per
  event (an event is identified by its timestamp; its repeated end packets are ignored).
- :class:`RtpSourceGuard`: which source addresses may feed a call (the SDP's address:port, or one
  other source of the SDP's host that passed probation); the rest is dropped and counted.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from rtlayer.exceptions import RtpError

__all__ = [
    "DTMF_EVENTS",
    "RtpError",
    "RtpPacket",
    "RtpReceiver",
    "RtpSender",
    "RtpSourceGuard",
    "encode_dtmf",
    "parse_rtp",
]

_HEADER = struct.Struct("!BBHII")
DTMF_EVENTS = "0123456789*#ABCD"
# G.711 encodings of a zero sample: what a lost packet is filled with.
SILENCE = {"pcmu": 0xFF, "pcma": 0xD5}
G711_BYTES_PER_S = 8000  # one byte per sample at 8 kHz
MAX_FRAME_BYTES = 480  # 60 ms: the longest packet time a lost packet is assumed to have held
MAX_DROPOUT = 3000  # RFC 3550 A.1: a leap ahead this large needs the next packet to confirm it
MAX_MISORDER = 100  # ... and so does a step back this large


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def to_bytes(self) -> bytes:
        head = _HEADER.pack(
            0x80,
            (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
            self.sequence & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc & 0xFFFFFFFF,
        )
        return head + self.payload


def parse_rtp(data: bytes) -> RtpPacket:
    """One RTP packet; raises :class:`RtpError` for anything that is not version-2 RTP."""
    if len(data) < 12:
        raise RtpError("shorter than an RTP header")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError("not RTP version 2")
    pt = b1 & 0x7F
    if 72 <= pt <= 76:
        raise RtpError("an RTCP packet")  # RFC 5761 demultiplexing
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 4 bytes of profile+length, then length words
        if len(data) < offset + 4:
            raise RtpError("truncated header extension")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or pad > end - offset:
            raise RtpError("bad padding")
        end -= pad
    if offset > end:
        raise RtpError("truncated packet")
    return RtpPacket(pt, seq, ts, ssrc, bytes(data[offset:end]), bool(b1 & 0x80))


class RtpSender:
    """Stamps outgoing G.711 frames; one per call direction."""

    def __init__(
        self, payload_type: int, *, ssrc: int | None = None, rng: random.Random | None = None
    ) -> None:
        r = rng or random.Random()
        self.payload_type = payload_type
        self.ssrc = r.getrandbits(32) if ssrc is None else ssrc
        # RFC 3550 5.1: random initial sequence number and timestamp.
        self.sequence = r.getrandbits(16)
        self.timestamp = r.getrandbits(32)
        self._talking = False
        self.packets_sent = 0

    def packet(self, payload: bytes) -> bytes:
        """The next packet carrying ``payload`` (8 kHz G.711: one sample per byte)."""
        pkt = RtpPacket(
            self.payload_type, self.sequence, self.timestamp, self.ssrc, payload, not self._talking
        )
        self._talking = True
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + len(payload)) & 0xFFFFFFFF
        self.packets_sent += 1
        return pkt.to_bytes()

    def recall(self, n: int) -> None:
        """The last ``n`` packets were never sent (a clear dropped them before their time): reuse their
        sequence numbers, so the caller sees no gap, and start the next packet as a new talk spurt.
        The timestamp runs on: their time slots were silence."""
        if not 0 <= n <= self.packets_sent:
            raise ValueError(f"cannot recall {n} of {self.packets_sent} packets")
        self.sequence = (self.sequence - n) & 0xFFFF
        self.packets_sent -= n
        self._talking = False

    def skip(self, samples: int) -> None:
        """A frame time with nothing to send: the clock runs on, the next packet starts a talk spurt."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self._talking = False


def encode_dtmf(
    digit: str, *, sequence: int, timestamp: int, ssrc: int, duration: int, end: bool, pt: int = 101
) -> bytes:
    """One RFC 4733 telephone-event packet (used by tests and by anyone generating DTMF)."""
    event = DTMF_EVENTS.index(digit.upper())
    payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration & 0xFFFF)
    return RtpPacket(pt, sequence, timestamp, ssrc, payload, marker=duration <= 160 and not end).to_bytes()


class RtpReceiver:
    """Reorders, de-duplicates and gap-fills one incoming stream; drained with :meth:`pop_audio`."""

    def __init__(
        self,
        codec: str,
        payload_type: int,
        telephone_event: int | None = None,
        *,
        depth: int = 3,
        max_conceal_ms: int = 200,
    ) -> None:
        self.codec = codec
        self.payload_type = payload_type
        self.telephone_event = telephone_event
        self.depth = depth
        self._buffer: dict[int, bytes] = {}
        self._next: int | None = None  # extended sequence number of the next packet to play
        self._highest = -1
        self._cycles = 0
        self._probation: int | None = None  # RFC 3550 A.1 bad_seq: the number that confirms a leap
        self._last_dtmf_ts: int | None = None
        self._audio: list[bytes] = []
        self._recent_lost: deque[tuple[int, int]] = deque(maxlen=64)  # [start, end) ranges given up
        self._first = 0
        self._last_arrival = 0.0
        self._digits: list[str] = []
        self._ssrc: int | None = None
        self._frame = 160  # bytes a lost packet is filled with: the last played one's size, capped
        self._conceal_cap = max_conceal_ms * G711_BYTES_PER_S // 1000
        self._conceal_budget = self._conceal_cap  # bytes of silence we may still make up
        self._budget_at: float | None = None
        # counters
        self.received = 0
        self.duplicates = 0
        self.late = 0
        self.lost = 0  # packets given up (filled with silence while the budget lasts)
        self.concealed = 0  # bytes of silence made up for them
        self.resyncs = 0  # restarts of the sequence space: a confirmed leap, or a new SSRC
        self.out_of_range = 0  # leaps nothing confirmed, dropped
        self.reordered = 0
        self.invalid = 0
        self.other_payload = 0

    def _extend(self, seq: int) -> int:
        # RFC 3550 appendix A.1: extend the 16-bit sequence number across wraparound.
        if self._highest < 0:
            return seq
        high16 = self._highest & 0xFFFF
        ext = self._cycles + seq
        if seq < high16 and high16 - seq > 0x8000:
            ext += 0x10000
        elif seq > high16 and seq - high16 > 0x8000:
            ext -= 0x10000
        return ext

    def receive(self, data: bytes, now: float = 0.0) -> None:
        """Feed one datagram (``now``: its arrival time); garbage is counted in ``invalid`` and dropped."""
        self._last_arrival = now
        self._refill(now)
        try:
            pkt = parse_rtp(data)
        except RtpError:
            self.invalid += 1
            return
        if pkt.payload_type == self.telephone_event and self.telephone_event is not None:
            self._dtmf(pkt)
            return
        if pkt.payload_type != self.payload_type or not pkt.payload:
            self.other_payload += 1
            return
        if self._ssrc is not None and pkt.ssrc != self._ssrc:
            self._restart()  # a new source (a transfer, a re-INVITE): a new sequence space
        self._ssrc = pkt.ssrc
        ext = self._extend(pkt.sequence)
        if self._highest >= 0 and not -MAX_MISORDER <= ext - self._highest <= MAX_DROPOUT:
            if pkt.sequence != self._probation:
                self._probation = (pkt.sequence + 1) & 0xFFFF
                self.out_of_range += 1
                return
            self._restart()  # two in a row: the sender really restarted its sequence
            ext = pkt.sequence
        self._probation = None
        self.received += 1
        out_of_order = ext < self._highest
        if ext > self._highest:
            self._highest = ext
            self._cycles = ext & ~0xFFFF
        if self._next is None:
            self._next = self._first = ext
        if ext < self._next:
            # already played (a duplicate) or its slot was given up as lost (late)
            if ext < self._first or any(start <= ext < end for start, end in self._recent_lost):
                self.late += 1
            else:
                self.duplicates += 1
            return
        if ext in self._buffer:
            self.duplicates += 1
            return
        self.reordered += out_of_order
        self._buffer[ext] = pkt.payload
        self._drain()

    def flush_stale(self, now: float, max_wait: float = 0.06) -> None:
        """Give up on a gap nothing has filled for ``max_wait`` seconds (a caller that went quiet
        right after a loss, e.g. silence suppression): play what is buffered, counting the losses."""
        self._refill(now)
        if self._buffer and now - self._last_arrival >= max_wait:
            self._drain(force=True)

    def _refill(self, now: float) -> None:
        # the concealment budget grows with real time only: silence is never made faster than it passes
        if self._budget_at is not None and now > self._budget_at:
            gained = round((now - self._budget_at) * G711_BYTES_PER_S)
            self._conceal_budget = min(self._conceal_cap, self._conceal_budget + gained)
        if self._budget_at is None or now > self._budget_at:
            self._budget_at = now

    def _restart(self) -> None:
        """Play what is buffered as it is, then start a new sequence space (a new talk spurt)."""
        self._flush_all()
        self._next = None
        self._recent_lost.clear()
        self._highest = -1
        self._cycles = 0
        self._probation = None
        self.resyncs += 1

    def _drain(self, force: bool = False) -> None:
        assert self._next is not None
        while self._buffer:
            if self._next in self._buffer:
                payload = self._buffer.pop(self._next)
                self._audio.append(payload)
                self._frame = min(len(payload), MAX_FRAME_BYTES)
                self._next += 1
                continue
            if not force and self._highest - self._next < self.depth:
                break
            # the gap did not fill in time: give up on it as a whole, up to the next packet we hold
            # (or, waiting for depth only, up to where depth stops waiting)
            resume = min(self._buffer)
            if not force:
                resume = min(resume, self._highest - self.depth + 1)
            gap = resume - self._next
            self.lost += gap
            self._recent_lost.append((self._next, resume))
            frames = min(gap, self._conceal_budget // self._frame)
            if frames:
                silence = bytes([SILENCE[self.codec]]) * (frames * self._frame)
                self._conceal_budget -= len(silence)
                self.concealed += len(silence)
                self._audio.append(silence)
            self._next = resume

    def _flush_all(self) -> None:
        for key in sorted(self._buffer):
            self._audio.append(self._buffer[key])
        self._buffer.clear()

    def _dtmf(self, pkt: RtpPacket) -> None:
        if len(pkt.payload) < 4:
            self.invalid += 1
            return
        event = pkt.payload[0]
        if event >= len(DTMF_EVENTS):
            self.other_payload += 1  # flash and tones other than digits
            return
        if pkt.timestamp == self._last_dtmf_ts:
            return  # a continuation or a repeated end packet of the same event
        self._last_dtmf_ts = pkt.timestamp
        self._digits.append(DTMF_EVENTS[event])

    @property
    def buffered(self) -> int:
        """Packets held in the reorder buffer (at most ``depth`` or so: a gap is given up past it)."""
        return len(self._buffer)

    def pop_audio(self) -> bytes:
        """G.711 bytes ready in order since the last call."""
        out = b"".join(self._audio)
        self._audio.clear()
        return out

    def pop_digits(self) -> list[str]:
        out = self._digits
        self._digits = []
        return out


Addr = tuple[str, int]


def _same_host(host: str) -> str:
    """``host`` in one canonical spelling (``::1`` and ``0:0::1`` alike); names are kept as they are."""
    try:
        return str(ipaddress.ip_address(host.split("%")[0]))
    except ValueError:
        return host


def _pins_host(host: str) -> bool:
    """Whether an SDP address names the host its RTP must come from: a global or loopback address.
    A private, link-local or unspecified one (or a name) may be a caller behind a NAT that did not
    rewrite its SDP, whose packets come from the NAT's address instead."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return (ip.is_global or ip.is_loopback) and not ip.is_unspecified


class RtpSourceGuard:
    """Which source addresses may send a call's RTP (strict RTP with latching), sans-I/O.

    The address:port the caller's SDP offered is authoritative: its packets are always admitted, and
    the first valid one (version-2 RTP of a negotiated payload type: the codec, telephone-event)
    latches it, displacing any source latched before (counted in ``relatched``). Another source may be
    the caller too (sipp's ``-mp`` sends from another port than it receives on; a NAT maps ports), so
    it may latch, but only after ``probation`` valid packets in sequence from one SSRC (as RFC 3550
    A.1 probation and Asterisk's strict RTP learning do), and only while nothing is latched; its
    packets before that are dropped. Once latched, every other source is refused, which keeps anyone
    who can reach the port from injecting audio.

    Who may even try is narrowed by the SDP's address: when it is a global or loopback address
    (``pins_host``), only a source on that host; a stranger's packets are refused and counted even
    before the caller's first packet. When it is private or unspecified, the caller may be behind a
    NAT that left its SDP unrewritten, and a source anywhere may pass probation (media servers'
    "comedia"): deploy with routable SDP addresses where that matters. Everything refused is counted in
    ``rejected``.
    """

    def __init__(self, offered: Addr, payload_types: Iterable[int], *, probation: int = 2) -> None:
        self.offered = (_same_host(offered[0]), offered[1])
        self.pins_host = _pins_host(self.offered[0])
        self.payload_types = frozenset(payload_types)
        self.probation = probation
        self.latched: Addr | None = None
        self.rejected = 0
        self.relatched = 0
        self._candidate: tuple[Addr, int, int, int] | None = None  # (source, ssrc, next seq, packets)

    def admit(self, data: bytes, source: Addr) -> bool:
        """Whether the datagram ``data`` from ``source`` may reach the call's receiver; may latch."""
        src = (_same_host(source[0]), source[1])
        if src == self.offered:
            if self.latched != src and self._valid(data) is not None:
                self.relatched += self.latched is not None
                self.latched = src
            return True
        if src == self.latched:
            return True
        may_learn = self.latched is None and (not self.pins_host or src[0] == self.offered[0])
        if may_learn and self._learn(data, src):
            self.latched = src
            return True
        self.rejected += 1
        return False

    def _learn(self, data: bytes, src: Addr) -> bool:
        """One more packet of probation for ``src``; True once it has sent ``probation`` in sequence."""
        pkt = self._valid(data)
        if pkt is None:
            return False
        cand = self._candidate
        count = cand[3] + 1 if cand is not None and cand[:3] == (src, pkt.ssrc, pkt.sequence) else 1
        self._candidate = (src, pkt.ssrc, (pkt.sequence + 1) & 0xFFFF, count)
        return count >= self.probation

    def _valid(self, data: bytes) -> RtpPacket | None:
        try:
            pkt = parse_rtp(data)
        except RtpError:
            return None
        return pkt if pkt.payload_type in self.payload_types and pkt.payload else None
