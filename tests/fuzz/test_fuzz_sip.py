"""Fuzz the SIP message parser, and the dialog and the front's replies behind it.

``parse_message`` may raise :class:`SipParseError` only; what it accepts must go through a dialog
(requests and responses, matched or not) and through the replies the front builds (400 to a malformed
request, from ``SipParseError.request``) without raising anything. See ``sip_fuzzing`` for the run.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_fuzzing import LONG, Mutator, fuzz

from rtlayer.server.sip.dialog import UasDialog
from rtlayer.server.sip.front import info_dtmf
from rtlayer.server.sip.message import SipParseError, SipRequest, build_response, parse_message

FIXTURES = Path(__file__).parent.parent / "sip_fixtures"
PEER = ("127.0.0.1", 5061)
SDP = (
    b"v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
_HEAD = (
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1;rport\r\nMax-Forwards: 70\r\n"
    "From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>{to_tag}\r\nCall-ID: abc@127.0.0.1\r\n"
    "CSeq: {cseq}\r\nContact: <sip:b@127.0.0.1:5061>\r\n"
)


def _request(method: str, cseq: int, body: bytes = b"", to_tag: str = "", extra: str = "") -> bytes:
    head = _HEAD.format(to_tag=to_tag, cseq=f"{cseq} {method}") + extra
    return f"{method} sip:a@127.0.0.1 SIP/2.0\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


INVITE = _request("INVITE", 1, SDP, extra="Content-Type: application/sdp\r\nRecord-Route: <sip:p;lr>\r\n")
SEEDS = [
    INVITE,
    _request("ACK", 1, to_tag=";tag=T"),
    _request("BYE", 2, to_tag=";tag=T"),
    _request("CANCEL", 1),
    _request("OPTIONS", 3, to_tag=";tag=T"),
    _request(
        "INFO", 4, b"Signal=5\r\nDuration=160\r\n", ";tag=T", "Content-Type: application/dtmf-relay\r\n"
    ),
    _request(
        "NOTIFY", 5, b"SIP/2.0 200 OK\r\n", ";tag=T", "Subscription-State: terminated;reason=noresource\r\n"
    ),
    _request("INVITE", 6, SDP, ";tag=T"),
    b"SIP/2.0 200 OK\r\n"
    + _HEAD.format(to_tag=";tag=2", cseq="2 BYE").encode()
    + b"Content-Length: 0\r\n\r\n",
    b"SIP/2.0 202 Accepted\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\nf: <sip:a@h>;tag=T\r\nt: <sip:b@h>\r\n"
    b"i: abc@127.0.0.1\r\nCSeq: 1 REFER\r\nl: 0\r\n\r\n",
    (FIXTURES / "invite_compact.sip").read_bytes(),
    (FIXTURES / "invite_pcma_30ms.sip").read_bytes(),
]


class DialogUnderFire:
    """A dialog in each state in turn (ringing, then answered), fed whatever parses."""

    def __init__(self) -> None:
        self.inputs = 0
        self.now = 0.0
        self.dialog = self._new()

    def _new(self) -> UasDialog:
        invite = parse_message(INVITE)
        assert isinstance(invite, SipRequest)
        dialog = UasDialog(invite, PEER, local_contact="sip:rtlayer@127.0.0.1:5070", now=self.now)
        if self.inputs % 2000 >= 1000:
            dialog.accept(SDP, self.now)
        return dialog

    def check(self, data: bytes) -> None:
        self.inputs += 1
        self.now += 0.01
        if self.inputs % 1000 == 0:
            self.dialog = self._new()
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            if exc.request is not None:  # what the front answers: 400, built from what was readable
                build_response(exc.request, 400, "Bad Request", source=PEER, to_tag="t").to_bytes()
            raise
        msg.to_bytes()
        d = self.dialog
        if isinstance(msg, SipRequest):
            d.receive_request(msg, PEER, self.now)
            info_dtmf(msg)
        else:
            d.receive_response(msg, self.now)
        d.handle_timer(self.now)
        d.datagrams_to_send()
        d.events()


def test_the_sip_parser_and_dialog_take_any_bytes() -> None:
    target = DialogUnderFire()
    result = fuzz("sip_message", target.check, iter(Mutator(SEEDS, seed=3261)), SipParseError)
    assert not result.failures, result.failures
    assert result.inputs > 1000


@settings(
    max_examples=20_000 if LONG else 200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    st.sampled_from(["Via", "From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Contact"]),
    st.text(max_size=40),
)
def test_any_header_value_is_parsed_or_refused_with_sip_parse_error(name: str, value: str) -> None:
    lines = INVITE.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower().encode() + b":"):
            lines[i] = name.encode() + b": " + value.encode("utf-8", "surrogatepass")
    target = DialogUnderFire()
    try:
        target.check(b"\r\n".join(lines))
    except SipParseError:
        pass
