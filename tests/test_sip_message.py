"""SIP messages and SDP, sans-I/O, from wire fixtures in tests/sip_fixtures/."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rtlayer.server.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    build_response,
    header_param,
    parse_message,
    uri_of,
)
from rtlayer.server.sip.sdp import SdpError, build_answer, negotiate, parse_offer

FIXTURES = Path(__file__).parent / "sip_fixtures"
_FIXTURE = (FIXTURES / "invite_pcma_30ms.sip").read_bytes()


def _invite(name: str = "invite_pcma_30ms.sip") -> SipRequest:
    msg = parse_message((FIXTURES / name).read_bytes())
    assert isinstance(msg, SipRequest)
    return msg


def test_parse_invite_fixture() -> None:
    inv = _invite()
    assert (inv.method, inv.uri) == ("INVITE", "sip:service@127.0.0.1:5070")
    assert inv.call_id == "1-4242@127.0.0.1"
    assert inv.cseq == (1, "INVITE")
    assert len(inv.get_all("Via")) == 2
    assert header_param(inv.get("From") or "", "tag") == "1SIPpTag001"
    assert uri_of(inv.get("Contact") or "") == "sip:sipp@127.0.0.1:5061"
    assert inv.body.startswith(b"v=0\r\n") and inv.body.endswith(b"a=ptime:30\r\n")


def test_compact_forms_folding_and_bare_lf() -> None:
    inv = _invite("invite_compact.sip")
    assert inv.call_id == "compact-1"
    assert inv.get("Subject") == "one two"
    assert inv.get("Content-Type") == "application/sdp"
    assert parse_offer(inv.body).port == 7000


def test_round_trip_is_stable() -> None:
    inv = _invite()
    again = parse_message(inv.to_bytes())
    assert isinstance(again, SipRequest)
    assert again.headers == inv.headers and again.body == inv.body


def test_response_copies_every_via_in_order_and_stamps_the_top() -> None:
    inv = _invite()
    resp = build_response(inv, 200, "OK", source=("127.0.0.1", 40001), to_tag="abc")
    wire = parse_message(resp.to_bytes())
    assert isinstance(wire, SipResponse) and wire.status == 200
    vias = wire.get_all("Via")
    assert vias[0] == "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0;rport=40001;received=127.0.0.1"
    assert vias[1] == "SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKproxy1"
    assert header_param(wire.get("To") or "", "tag") == "abc"
    assert wire.get("CSeq") == "1 INVITE" and wire.call_id == inv.call_id
    # a 100 Trying never carries a To tag
    trying = build_response(inv, 100, "Trying", to_tag="abc")
    assert header_param(trying.get("To") or "", "tag") is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff garbage\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\n\r\n",  # no mandatory headers
        b"HELLO\r\nVia: x\r\n\r\n",
        b"SIP/2.0 2000 OK\r\nVia: a\r\nFrom: a\r\nTo: a\r\nCall-ID: a\r\nCSeq: 1 BYE\r\n\r\n",
        b"BYE sip:x SIP/2.0\r\nVia: a\r\nFrom: a\r\nTo: a\r\nCall-ID: a\r\nCSeq: one BYE\r\n\r\n",
        b"BYE sip:x SIP/2.0\r\nVia: a\r\nFrom: a\r\nTo: a\r\nCall-ID: a\r\nCSeq: 1 BYE\r\nContent-Length: 99\r\n\r\nx",
        b"BYE sip:x SIP/2.0\r\nVia a\r\n\r\n",
        b"BYE sip:x SIP/2.0\r\nVia: a",
    ],
)
def test_malformed_messages_raise_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(data)


def test_sdp_offer_answer_pcma_30ms_with_dtmf() -> None:
    offer = parse_offer(_invite().body)
    assert (offer.address, offer.port, offer.payload_types, offer.ptime) == (
        "127.0.0.1",
        6000,
        (8, 0, 101),
        30,
    )
    ans = negotiate(offer)
    assert (ans.codec, ans.payload_type, ans.ptime, ans.telephone_event) == ("pcma", 8, 30, 101)
    assert ans.frame_bytes == 240
    text = build_answer(ans, "127.0.0.1", 30000, 42, offer.direction).decode()
    assert "m=audio 30000 RTP/AVP 8 101\r\n" in text
    assert "a=rtpmap:8 PCMA/8000" in text and "a=rtpmap:101 telephone-event/8000" in text
    assert "a=ptime:30" in text and "a=sendrecv" in text
    # our answer parses as an offer would: the peer can read it
    back = parse_offer(text)
    assert (back.port, back.payload_types) == (30000, (8, 101))


def test_sdp_prefers_offerer_order_and_defaults_ptime() -> None:
    offer = parse_offer("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 18 0 8\r\na=ptime:10\r\n")
    ans = negotiate(offer)
    assert (ans.codec, ans.payload_type, ans.ptime, ans.telephone_event) == ("pcmu", 0, 20, None)
    assert negotiate(offer, codecs=("pcma",)).codec == "pcma"


def test_sdp_refusals() -> None:
    with pytest.raises(SdpError, match="no common codec"):
        negotiate(parse_offer("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 18 9\r\n"))
    with pytest.raises(SdpError, match="no audio"):
        parse_offer("v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 4000 RTP/AVP 96\r\n")
    with pytest.raises(SdpError, match="connection address"):
        parse_offer("v=0\r\nm=audio 4000 RTP/AVP 0\r\n")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600)
    | st.builds(lambda cut, junk: _FIXTURE[:cut] + junk, st.integers(0, 700), st.binary(max_size=40))
)
@example(data=_FIXTURE[:386] + b"\n\n")  # no Content-Length at all
def test_parser_never_raises_anything_but_parse_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    # whatever parses serializes and parses back to the same thing; serializing always states the
    # body's true Content-Length, which a datagram may leave out (RFC 3261 18.3: then the body ends with it)
    again = parse_message(msg.to_bytes())

    def without_length(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, v) for k, v in headers if k != "Content-Length"]

    assert without_length(again.headers) == without_length(msg.headers) and again.body == msg.body
    assert again.get("Content-Length") == str(len(msg.body))


_SDP_LINES = st.sampled_from(
    ["v=0", "c=IN IP4 127.0.0.1", "c=IN", "m=audio 4000 RTP/AVP 0 8 101", "m=audio x RTP/AVP 0", "m=video 1 RTP/AVP 96",
     "m=audio 70000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/x", "a=rtpmap:101 telephone-event/8000",
     "a=rtpmap:", "a=ptime:30", "a=ptime:abc", "a=sendonly", "m=audio 4000 RTP/AVP"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_SDP_LINES | st.text(max_size=30), max_size=12))
def test_sdp_parser_never_raises_anything_but_sdp_error(lines: list[str]) -> None:
    try:
        negotiate(parse_offer("\r\n".join(lines)))
    except SdpError:
        pass
