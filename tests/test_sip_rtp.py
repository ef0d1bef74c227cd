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
