"""RTCP compound packets (RFC 3550 section 6, appendix A.2), sans-I/O."""

from __future__ import annotations

import struct

import pytest

from rtlayer.server.sip.rtcp import RR, SR, RtcpError, is_rtcp, parse_rtcp


def _block(ssrc: int, fraction: int, lost: int, highest: int = 70_000, jitter: int = 12) -> bytes:
    return struct.pack(
        "!IB3sIIII", ssrc, fraction, lost.to_bytes(3, "big", signed=True), highest, jitter, 0, 0
    )


def _packet(kind: int, count: int, body: bytes, *, pad: int = 0) -> bytes:
    body += b"\x00" * (pad - 1) + bytes([pad]) if pad else b""
    return struct.pack("!BBH", 0x80 | (0x20 if pad else 0) | count, kind, len(body) // 4) + body


def _sdes(ssrc: int) -> bytes:
    item = b"\x01\x08rtlayer1\x00\x00"  # CNAME, then the end of the list, padded to 32 bits
    return _packet(202, 1, struct.pack("!I", ssrc) + item)


def test_a_receiver_report_with_sdes_says_what_the_caller_lost_of_our_stream() -> None:
    rr = _packet(RR, 2, struct.pack("!I", 0xCAFE) + _block(0xBEEF, 64, 17) + _block(0x1234, 0, -2))
    compound = rr + _sdes(0xCAFE)
    assert is_rtcp(compound)
    report, sdes = parse_rtcp(compound)
    assert (report.packet_type, report.ssrc, sdes.packet_type, sdes.ssrc) == (RR, 0xCAFE, 202, 0xCAFE)
    ours, other = report.reports
    assert (ours.ssrc, ours.fraction_lost, ours.cumulative_lost, ours.highest_sequence) == (
        0xBEEF,
        0.25,
        17,
        70_000,
    )
    assert other.cumulative_lost == -2  # duplicates can make it negative


def test_a_sender_report_skips_its_sender_info_and_may_end_padded() -> None:
    sr = _packet(SR, 1, struct.pack("!I", 7) + b"\x00" * 20 + _block(9, 0, 3))
    bye = _packet(203, 1, struct.pack("!I", 7), pad=4)
    report, goodbye = parse_rtcp(sr + bye)
    assert report.reports[0].cumulative_lost == 3 and goodbye.packet_type == 203 and goodbye.ssrc == 7


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\xc9\x00",  # shorter than a report
        _packet(202, 1, struct.pack("!I", 1)) + b"\x00" * 4,  # starts with SDES, not a report
        _packet(RR, 1, struct.pack("!I", 1)),  # one report block announced, none there
        _packet(RR, 0, struct.pack("!I", 1))[:-1] + b"\x00\x00",  # lengths do not add up
        struct.pack("!BBH", 0x80, RR, 200) + b"\x00" * 8,  # a length past the datagram
        _packet(RR, 0, struct.pack("!I", 1), pad=4) + _sdes(1),  # padding before the last packet
        struct.pack("!BBH", 0xA0, RR, 1) + b"\x00\x00\x00\x09",  # a pad count past the packet
        _packet(RR, 0, struct.pack("!I", 1)) + b"\x40\xca\x00\x00",  # version 1 inside the compound
    ],
)
def test_malformed_compounds_raise_rtcp_error(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_rtcp(data)
