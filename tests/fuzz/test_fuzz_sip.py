"""Fuzzing the SIP front's parsers: SIP messages and the dialog behind them, SDP, RTP packets, a
receiver under hostile streams, RTCP (``sip_targets.py``), each target in its own child process for a
couple of seconds, seeded so that a failure replays (``python -m tests.fuzz sip.message --replay N``).

Any exception other than the component's documented one, a crash, a hang or memory growth fails the
target's test. ``RTLAYER_FUZZ_LONG=1`` runs each for ``RTLAYER_FUZZ_INPUTS`` inputs (default
1,000,000): the night mode (see ``fuzz_runner``). Two structured properties run in-process with
hypothesis beside them: any value of a SIP header, and of an SDP line with numbers.
"""

from __future__ import annotations

import random

import pytest
from fuzz_runner import LONG, check_target, load_targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_targets import INVITE, SDP_SEEDS, dialog, feed

from rtlayer.exceptions import SdpError, SipParseError
from rtlayer.server.sip.sdp import build_answer, negotiate, parse_offer

SIP = sorted(name for name in load_targets() if name.startswith("sip."))
SETTINGS = settings(
    max_examples=20_000 if LONG else 200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_every_parser_of_the_sip_front_has_a_target() -> None:
    assert SIP == ["sip.message", "sip.rtcp", "sip.rtp_packet", "sip.rtp_receiver", "sip.sdp"]


@pytest.mark.parametrize("name", SIP)
@pytest.mark.timeout(None if LONG else 60)
def test_sip_target_finds_nothing(name: str) -> None:
    check_target(name)


@SETTINGS
@given(
    st.sampled_from(["Via", "From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Contact"]),
    st.text(max_size=40),
)
def test_any_header_value_is_parsed_or_refused_with_sip_parse_error(name: str, value: str) -> None:
    lines = INVITE.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower().encode() + b":"):
            lines[i] = name.encode() + b": " + value.encode("utf-8", "surrogatepass")
    try:
        feed(dialog(random.Random(0)), b"\r\n".join(lines), 0.5)
    except SipParseError:
        pass


@SETTINGS
@given(st.sampled_from([b"m=audio ", b"a=ptime:", b"a=rtpmap:", b"c=IN IP4 "]), st.text(max_size=40))
def test_any_value_of_a_numeric_sdp_line_is_read_or_refused_with_sdp_error(prefix: bytes, value: str) -> None:
    lines = SDP_SEEDS[0].split(b"\r\n")
    text = value.encode("utf-8", "surrogatepass")
    data = b"\r\n".join(prefix + text if line.startswith(prefix) else line for line in lines)
    try:
        offer = parse_offer(data)
        build_answer(negotiate(offer), "127.0.0.1", 4000, 1, offer.direction)
    except SdpError:
        pass
