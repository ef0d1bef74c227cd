"""RTCP (RFC 3550 section 6), sans-I/O: read a compound packet, keep what a call's stats need.

A caller that multiplexes RTCP on its RTP port (RFC 5761) sends sender and receiver reports there;
their report blocks say how much of *our* stream the caller lost, which is the only loss figure of the
outbound direction we can have. :func:`parse_rtcp` checks a compound packet as RFC 3550 appendix A.2
does (version 2, a report first, lengths that add up to the datagram, padding on the last packet
only) and returns its packets; report blocks are decoded, other packet types (SDES, BYE, APP, and the
feedback types of RFC 4585) are returned with their type and raw body. Anything malformed raises
:class:`RtcpError` and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtlayer.exceptions import RtcpError

__all__ = ["ReportBlock", "RtcpError", "RtcpPacket", "is_rtcp", "parse_rtcp"]

SR = 200
RR = 201
_COMMON = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IB3sIIII")
_SENDER_INFO = 20  # NTP timestamp (8), RTP timestamp, packet count, octet count


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """What a receiver says about one source it hears (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: float  # since its previous report, 0.0 to 1.0
    cumulative_lost: int  # since the start; may be negative (duplicates)
    highest_sequence: int  # extended
    jitter: int  # in RTP timestamp units


@dataclass(frozen=True, slots=True)
class RtcpPacket:
    """One packet of a compound: its type, its sender's SSRC, and its report blocks (SR, RR)."""

    packet_type: int
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    body: bytes = b""  # the rest, for the types not decoded here


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on an RTP port is RTCP (RFC 5761 section 4: packet types 192-223)."""
    return len(data) >= 2 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """The packets of one compound RTCP datagram; raises :class:`RtcpError` if it is malformed."""
    if len(data) < 8:
        raise RtcpError("shorter than an RTCP report")
    if data[1] not in (SR, RR) or data[0] & 0x20:
        raise RtcpError("a compound packet starts with a report and has no padding there")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtcpError("truncated packet header")
        first, packet_type, words = _COMMON.unpack_from(data, offset)
        end = offset + 4 * (words + 1)
        if first >> 6 != 2:
            raise RtcpError("not RTCP version 2")
        if end > len(data):
            raise RtcpError("a packet runs past the datagram")
        body_end = end
        if first & 0x20:
            if end != len(data):
                raise RtcpError("padding before the last packet")
            pad = data[end - 1]
            if pad == 0 or pad > end - offset - 4:
                raise RtcpError("bad padding")
            body_end = end - pad
        packets.append(_packet(first & 0x1F, packet_type, data[offset + 4 : body_end]))
        offset = end
    return packets


def _packet(count: int, packet_type: int, body: bytes) -> RtcpPacket:
    if packet_type not in (SR, RR):
        ssrc = struct.unpack_from("!I", body)[0] if len(body) >= 4 else 0
        return RtcpPacket(packet_type, ssrc, body=body)
    start = 4 + (_SENDER_INFO if packet_type == SR else 0)
    if len(body) < start + count * _BLOCK.size:
        raise RtcpError("a report shorter than its report blocks")
    (ssrc,) = struct.unpack_from("!I", body)
    reports = []
    for i in range(count):
        source, fraction, lost, highest, jitter, _lsr, _dlsr = _BLOCK.unpack_from(
            body, start + i * _BLOCK.size
        )
        cumulative = int.from_bytes(lost, "big", signed=True)
        reports.append(ReportBlock(source, fraction / 256, cumulative, highest, jitter))
    return RtcpPacket(packet_type, ssrc, tuple(reports), body[start + count * _BLOCK.size :])
