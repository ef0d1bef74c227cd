"""RTP packetizing, reordering, loss and duplicates, RFC 4733 DTMF, sans-I/O."""

from __future__ import annotations

import random
import struct

import pytest

from rtlayer.server.sip.rtp import (
    RtpError,
    RtpPacket,
    RtpReceiver,
    RtpSender,
    RtpSourceGuard,
    encode_dtmf,
    parse_rtp,
)


def _frames(n: int, size: int = 160) -> list[bytes]:
    return [bytes([i % 251]) * size for i in range(n)]


def _sent(n: int, *, seq0: int = 65530, pt: int = 0) -> list[bytes]:
    sender = RtpSender(pt, ssrc=0x1234)
    sender.sequence, sender.timestamp = seq0, 0xFFFFFF00
    return [sender.packet(f) for f in _frames(n)]


def test_captured_packet_fixture_round_trips() -> None:
    # a PCMU packet as sipp's rtp_stream sends it: V=2, PT 0, marker on the first packet
    wire = bytes.fromhex("8080 0001 000000a0 01020304".replace(" ", "")) + b"\xff" * 160
    pkt = parse_rtp(wire)
    assert (pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.marker) == (
        0,
        1,
        160,
        0x01020304,
        True,
    )
    assert pkt.to_bytes() == wire


def test_sender_sequence_timestamp_marker_and_wrap() -> None:
    packets = [parse_rtp(p) for p in _sent(10)]
    assert [p.sequence for p in packets] == [(65530 + i) & 0xFFFF for i in range(10)]
    assert [p.timestamp for p in packets] == [(0xFFFFFF00 + 160 * i) & 0xFFFFFFFF for i in range(10)]
    assert [p.marker for p in packets] == [True] + [False] * 9
    sender = RtpSender(8, ssrc=1)
    first = parse_rtp(sender.packet(b"\xd5" * 240))
    sender.skip(240)  # a silent frame: no packet, the clock runs on
    second = parse_rtp(sender.packet(b"\xd5" * 240))
    assert second.timestamp == (first.timestamp + 480) & 0xFFFFFFFF
    assert second.sequence == (first.sequence + 1) & 0xFFFF and second.marker


def test_recalled_packets_give_back_their_sequence_numbers_across_the_wrap() -> None:
    # five packets stamped ahead of time, the last three dropped by a clear before they were sent
    sender = RtpSender(0, ssrc=7)
    sender.sequence, sender.timestamp = 65534, 1000
    stamped = [parse_rtp(sender.packet(f)) for f in _frames(5)]
    sender.recall(3)
    assert sender.packets_sent == 2
    sender.skip(160)  # the clock runs on through silence
    after = parse_rtp(sender.packet(b"\xff" * 160))
    assert after.sequence == (stamped[1].sequence + 1) & 0xFFFF == 0  # no gap on the wire
    assert after.timestamp == 1000 + 6 * 160  # the recalled slots and the skipped one passed as time
    assert after.marker  # a new talk spurt
    with pytest.raises(ValueError, match="recall"):
        sender.recall(4)


def test_header_extension_csrc_and_padding() -> None:
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    body = b"\x11" * 160
    wire = bytes([0xB1, 0x00]) + struct.pack("!HII", 5, 800, 9) + b"CSRC" + ext + body + b"\x00\x00\x03"
    pkt = parse_rtp(wire)
    assert pkt.payload == body and pkt.sequence == 5


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80" * 11, b"\x40" + b"\x00" * 20, bytes([0x80, 200]) + b"\x00" * 10, b"\xa0" + b"\x00" * 11],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_rtp(data)


def test_receiver_in_order_across_wrap() -> None:
    rx = RtpReceiver("pcmu", 0)
    for p in _sent(20):
        rx.receive(p)
    assert rx.pop_audio() == b"".join(_frames(20))
    assert (rx.received, rx.lost, rx.duplicates, rx.late) == (20, 0, 0, 0)


def test_receiver_reorders_dedups_and_fills_loss() -> None:
    packets = _sent(30)
    order = list(range(30))
    order[3], order[4] = order[4], order[3]  # swapped pair
    order[10], order[12] = order[12], order[10]  # displaced by two
    del order[order.index(20)]  # lost
    order.insert(7, 6)  # duplicate of 6 right after it
    rx = RtpReceiver("pcmu", 0)
    for i in order:
        rx.receive(packets[i])
    frames = _frames(30)
    expected = [f if i != 20 else b"\xff" * 160 for i, f in enumerate(frames)]
    assert rx.pop_audio() == b"".join(expected)
    assert rx.lost == 1 and rx.duplicates == 1 and rx.reordered == 3  # 3; 11 and 10 (after 12)


def test_receiver_random_shuffles_never_duplicate_or_invent_audio() -> None:
    rng = random.Random(7)
    packets = _sent(200)
    for _ in range(20):
        order = list(range(200))
        for i in range(0, 198, 3):  # local jitter of at most two places
            j = i + rng.randrange(3)
            order[i], order[j] = order[j], order[i]
        rx = RtpReceiver("pcmu", 0, depth=3)
        for i in order:
            rx.receive(packets[i])
        out = rx.pop_audio()
        # a packet that arrives after its slot was played is late, never played twice or out of place
        assert rx.duplicates == 0 and rx.lost == 0
        assert len(out) // 160 + rx.late == 200
        assert out == b"".join(_frames(200)[200 - len(out) // 160 :])


def test_receiver_counts_garbage_and_other_payloads() -> None:
    rx = RtpReceiver("pcma", 8, 101)
    rx.receive(b"not rtp at all")
    rx.receive(RtpPacket(0, 1, 0, 5, b"\x00" * 160).to_bytes())  # PCMU on a PCMA call
    assert (rx.invalid, rx.other_payload, rx.pop_audio()) == (1, 1, b"")


def test_rfc4733_digits_once_per_event() -> None:
    rx = RtpReceiver("pcma", 8, 101)
    seq = 100
    for digit, ts in (("1", 8000), ("#", 9600), ("1", 11200)):
        for dur, end in ((160, False), (320, False), (480, True), (480, True), (480, True)):
            rx.receive(encode_dtmf(digit, sequence=seq, timestamp=ts, ssrc=9, duration=dur, end=end))
            seq += 1
    assert rx.pop_digits() == ["1", "#", "1"]
    assert rx.pop_digits() == []
    assert rx.pop_audio() == b""


def test_a_gap_nothing_fills_is_given_up_after_a_wait() -> None:
    packets = _sent(6)
    rx = RtpReceiver("pcmu", 0, depth=3)
    for i, t in ((0, 0.00), (1, 0.02), (3, 0.06), (4, 0.08)):  # 2 lost, then the caller goes quiet
        rx.receive(packets[i], now=t)
    assert rx.pop_audio() == b"".join(_frames(2))  # 3 and 4 wait for 2
    rx.flush_stale(now=0.10)
    assert rx.pop_audio() == b""  # not yet: 20 ms since the last packet
    rx.flush_stale(now=0.15)
    frames = _frames(5)
    assert rx.pop_audio() == b"\xff" * 160 + frames[3] + frames[4]
    assert rx.lost == 1
    rx.receive(packets[2], now=0.2)  # the lost one, far too late
    assert rx.late == 1 and rx.pop_audio() == b""


def _pkt(seq: int, payload: bytes, *, ssrc: int = 42, pt: int = 0) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, 0, ssrc, payload).to_bytes()


@pytest.mark.parametrize("size", [160, 1400, 65_000])
def test_a_sequence_leap_costs_no_more_than_the_concealment_budget(size: int) -> None:
    """The 3-packet burst of the hardening issue: seq +32767 with big payloads. Before: every 'lost'
    slot was filled with payload-sized silence (1.1 GB at 1400 B, 2 GB at 64 KB)."""
    rx = RtpReceiver("pcmu", 0, max_conceal_ms=200)
    rx.receive(_pkt(1, b"\xff" * 160), now=0.0)
    for k, seq in enumerate((1 + 0x7FFF, 2 + 0x7FFF, 4 + 0x7FFF)):
        rx.receive(_pkt(seq, b"\x55" * size), now=0.02 * (k + 1))
    rx.flush_stale(now=1.0)
    audio = rx.pop_audio()
    # what was received, plus at most the 200 ms budget of silence (1600 bytes)
    assert len(audio) <= 160 + 2 * size + 1600
    assert (rx.out_of_range, rx.resyncs) == (1, 1)  # the leap was confirmed by the packet after it
    assert rx.lost == 1 and rx.concealed == min(size, 480)  # the one gap after the resync


def test_a_lone_leap_is_dropped_and_the_stream_goes_on() -> None:
    rx = RtpReceiver("pcmu", 0)
    frames = _frames(4)
    rx.receive(_pkt(100, frames[0]))
    rx.receive(_pkt(100 + 20_000, b"\x00" * 160))  # a stray, far ahead: nothing confirms it
    rx.receive(_pkt(100 - 5_000, b"\x00" * 160))  # and one far behind
    for i in (1, 2, 3):
        rx.receive(_pkt(100 + i, frames[i]))
    assert rx.pop_audio() == b"".join(frames)
    assert (rx.out_of_range, rx.resyncs, rx.lost, rx.late) == (2, 0, 0, 0)


def test_concealment_refills_with_real_time_only() -> None:
    """A gap is filled with one frame per lost packet while the budget lasts; the budget grows back
    at the real-time rate, so silence is never made faster than time passes."""
    rx = RtpReceiver("pcma", 8, max_conceal_ms=100)  # 800 bytes: five 20 ms frames
    seq, now = 0, 0.0
    rx.receive(_pkt(seq, b"\x01" * 160, pt=8), now=now)

    def burst(seconds_later: float) -> None:
        nonlocal seq, now
        seq += 51  # 50 lost packets
        now += seconds_later
        rx.receive(_pkt(seq, b"\x01" * 160, pt=8), now=now)
        rx.flush_stale(now, max_wait=0.0)

    for _ in range(3):  # 20 ms apart: the budget regains one frame each time
        burst(0.02)
    assert rx.lost == 150
    assert rx.concealed == 800 + 160 + 160
    burst(10.0)  # a long quiet time refills the budget, to its cap only
    assert rx.concealed == 1120 + 800
    assert len(rx.pop_audio()) == 5 * 160 + 1920  # five packets received, and the silence


def test_a_new_ssrc_is_a_resync_not_a_loss() -> None:
    rx = RtpReceiver("pcmu", 0)
    rx.receive(_pkt(10, b"\x01" * 160, ssrc=1))
    rx.receive(_pkt(40_000, b"\x02" * 160, ssrc=2))
    rx.receive(_pkt(40_001, b"\x03" * 160, ssrc=2))
    assert rx.pop_audio() == b"\x01" * 160 + b"\x02" * 160 + b"\x03" * 160
    assert (rx.resyncs, rx.lost, rx.out_of_range) == (1, 0, 0)


def test_the_sdp_address_is_heard_at_once_another_port_of_its_host_after_probation() -> None:
    guard = RtpSourceGuard(("127.0.0.1", 4000), [0, 101])
    voice = RtpSender(0, ssrc=1)
    pcma = RtpSender(8, ssrc=2).packet(b"\xd5" * 160)
    # garbage and a payload type we did not negotiate count for no one's probation
    assert not guard.admit(b"\x00" * 5, ("127.0.0.1", 5000)) and not guard.admit(pcma, ("127.0.0.1", 5000))
    # another port of the SDP's host (sipp's -mp): two packets in sequence, and it latches
    assert not guard.admit(voice.packet(b"\xff" * 160), ("127.0.0.1", 5002))
    assert guard.admit(voice.packet(b"\xff" * 160), ("127.0.0.1", 5002))
    assert guard.latched == ("127.0.0.1", 5002)
    # from then on everyone else is refused, but for the SDP's own address, which takes the latch over
    assert not guard.admit(voice.packet(b"\xff" * 160), ("127.0.0.1", 5000))
    assert not guard.admit(voice.packet(b"\xff" * 160), ("127.0.0.2", 5002))
    assert guard.admit(voice.packet(b"\xff" * 160), ("127.0.0.1", 4000))
    assert guard.latched == ("127.0.0.1", 4000) and guard.relatched == 1
    assert not guard.admit(voice.packet(b"\xff" * 160), ("127.0.0.1", 5002))
    assert guard.rejected == 6
    # addresses compare in one spelling (IPv6 has several)
    v6 = RtpSourceGuard(("0:0::1", 4000), [0])
    assert v6.admit(voice.packet(b"\xff" * 160), ("::1", 4000)) and v6.latched == ("::1", 4000)
    assert not v6.admit(voice.packet(b"\xff" * 160), ("::1", 4004))


def test_before_the_caller_speaks_a_stranger_is_refused_when_the_sdp_address_is_routable() -> None:
    guard = RtpSourceGuard(("127.0.0.1", 4000), [0])
    assert guard.pins_host
    for seq in range(5):  # a stranger first, in perfect sequence: refused, counted
        assert not guard.admit(_pkt(seq, b"\xff" * 160), ("127.0.0.2", 4000))
    assert guard.latched is None and guard.rejected == 5
    assert guard.admit(_pkt(9, b"\xff" * 160), ("127.0.0.1", 4000))  # the caller
    assert guard.latched == ("127.0.0.1", 4000)
    assert not RtpSourceGuard(("2001:db8::1", 4000), [0]).pins_host  # documentation prefix: not global
    # a private SDP address may be a NAT'd caller: a source anywhere may pass probation
    natted = RtpSourceGuard(("192.168.1.20", 4000), [0])
    assert not natted.pins_host
    assert not natted.admit(_pkt(1, b"\xff" * 160), ("127.0.0.2", 7000))
    assert natted.admit(_pkt(2, b"\xff" * 160), ("127.0.0.2", 7000)) and natted.latched == ("127.0.0.2", 7000)
    assert not natted.admit(_pkt(3, b"\xff" * 160), ("127.0.0.3", 7000)) and natted.rejected == 2
