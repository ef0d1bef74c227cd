"""Fuzz the RTCP compound parser: :class:`RtcpError` only. See ``sip_fuzzing`` for the run."""

from __future__ import annotations

import struct

from sip_fuzzing import Mutator, fuzz

from rtlayer.server.sip.rtcp import RtcpError, parse_rtcp


def _rr(blocks: int) -> bytes:
    block = struct.pack("!IB3sIIII", 0xBEEF, 12, (5).to_bytes(3, "big"), 70_000, 30, 0, 0)
    return struct.pack("!BBHI", 0x80 | blocks, 201, 1 + 6 * blocks, 0xCAFE) + block * blocks


SDES = struct.pack("!BBHI", 0x81, 202, 4, 0xCAFE) + b"\x01\x08rtlayer1\x00\x00"
SR = struct.pack("!BBHI", 0x81, 200, 12, 7) + b"\x00" * 20 + _rr(1)[8:]
BYE = struct.pack("!BBHI", 0xA1, 203, 2, 7) + b"\x00\x00\x00\x04"
SEEDS = [_rr(0), _rr(1) + SDES, _rr(3) + SDES + BYE, SR + SDES, SR + BYE]


def test_the_rtcp_parser_takes_any_bytes() -> None:
    result = fuzz("rtcp", parse_rtcp, iter(Mutator(SEEDS, seed=3550)), RtcpError)
    assert not result.failures, result.failures
    assert result.inputs > 1000
