"""Fuzz the SDP offer parser and the negotiation behind it: :class:`SdpError` only, which the front
answers with 488. See ``sip_fuzzing`` for the run."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_fuzzing import LONG, Mutator, fuzz

from rtlayer.server.sip.sdp import SdpError, build_answer, negotiate, parse_offer

SEEDS = [
    b"v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
    b"v=0\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\nm=audio 7000/2 RTP/AVP 8 0\r\n"
    b"c=IN IP4 127.0.0.1/127\r\na=ptime:30\r\na=sendonly\r\nm=audio 7002 RTP/AVP 0\r\n",
    b"v=0\nc=IN IP4 192.168.1.20\nm=audio 5004 RTP/AVP 111 9 101\na=rtpmap:111 opus/48000/2\n"
    b"a=rtpmap:9 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=recvonly\n",
]


def check(data: bytes) -> None:
    offer = parse_offer(data)
    answer = negotiate(offer)
    build_answer(answer, "127.0.0.1", 4000, 1, offer.direction)


def test_the_sdp_parser_takes_any_bytes() -> None:
    result = fuzz("sdp", check, iter(Mutator(SEEDS, seed=4566)), SdpError)
    assert not result.failures, result.failures
    assert result.inputs > 1000


@settings(
    max_examples=20_000 if LONG else 200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(st.sampled_from([b"m=audio ", b"a=ptime:", b"a=rtpmap:", b"c=IN IP4 "]), st.text(max_size=40))
def test_any_value_of_a_numeric_line_is_read_or_refused_with_sdp_error(prefix: bytes, value: str) -> None:
    lines = SEEDS[0].split(b"\r\n")
    text = value.encode("utf-8", "surrogatepass")
    data = b"\r\n".join(prefix + text if line.startswith(prefix) else line for line in lines)
    try:
        check(data)
    except SdpError:
        pass
