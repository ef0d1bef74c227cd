"""The UAS dialog state machine, sans-I/O: time is an argument, the wire is bytes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rtlayer.server.sip.dialog import T1, T2, CallState, UasDialog
from rtlayer.server.sip.message import SipRequest, SipResponse, build_response, header_param, parse_message

FIXTURES = Path(__file__).parent / "sip_fixtures"
PEER = ("127.0.0.1", 40002)  # where the INVITE really came from (differs from its Via: rport)


def _invite() -> SipRequest:
    msg = parse_message((FIXTURES / "invite_pcma_30ms.sip").read_bytes())
    assert isinstance(msg, SipRequest)
    return msg


def _dialog(ring_timeout: float = 60.0) -> UasDialog:
    return UasDialog(
        _invite(), PEER, local_contact="sip:rtlayer@127.0.0.1:5070", now=0.0, ring_timeout=ring_timeout
    )


def _sent(d: UasDialog) -> list[SipRequest | SipResponse]:
    out = []
    for data, addr in d.datagrams_to_send():
        assert addr == PEER  # always back to the packet's source
        out.append(parse_message(data))
    return out


def _in_dialog(d: UasDialog, method: str, cseq: int) -> SipRequest:
    """A request from the caller inside the dialog (with our To tag)."""
    inv = d.invite
    return SipRequest(
        method=method,
        uri="sip:rtlayer@127.0.0.1:5070",
        headers=[
            ("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-x;rport"),
            ("From", inv.get("From") or ""),
            ("To", f"{inv.get('To')};tag={d.local_tag}"),
            ("Call-ID", inv.call_id),
            ("CSeq", f"{cseq} {method}"),
        ],
    )


def _state(d: UasDialog) -> CallState:
    """The dialog's state, read afresh (a plain ``d.state`` after an earlier assert is narrowed by mypy)."""
    return d.state


def _status(msgs: list[SipRequest | SipResponse]) -> list[int | str]:
    return [m.status if isinstance(m, SipResponse) else m.method for m in msgs]


def test_accept_resend_until_ack_then_remote_bye() -> None:
    d = _dialog()
    trying, ringing = _sent(d)
    assert _status([trying, ringing]) == [100, 180]
    # 180 opens the early dialog with the tag the 200 OK will carry; 100 carries none
    assert header_param(ringing.get("To") or "", "tag") == d.local_tag
    assert header_param(trying.get("To") or "", "tag") is None
    assert d.accept(b"v=0\r\n", now=1.0)
    (ok,) = _sent(d)
    assert isinstance(ok, SipResponse) and ok.status == 200 and ok.body == b"v=0\r\n"
    assert header_param(ok.get("To") or "", "tag") == d.local_tag
    assert "rport=40002" in ok.get_all("Via")[0] and len(ok.get_all("Via")) == 2
    # Timer G: resent at T1, then 2*T1, capped at T2
    times = []
    now = 1.0
    for _ in range(5):
        timer = d.get_timer()
        assert timer is not None
        now = timer
        d.handle_timer(now)
        assert _status(_sent(d)) == [200]
        times.append(round(now - 1.0, 3))
    assert times == [T1, 3 * T1, 7 * T1, 7 * T1 + T2, 7 * T1 + 2 * T2]
    d.receive_request(_in_dialog(d, "ACK", 1), PEER, now)
    assert d.state is CallState.CONFIRMED and d.get_timer() is None
    assert [e.kind for e in d.events()] == ["answered", "confirmed"]
    d.receive_request(_in_dialog(d, "BYE", 2), PEER, now + 1)
    assert _status(_sent(d)) == [200]
    assert _state(d) is CallState.ENDED and d.events()[0].reason == "remote_hangup"


def test_invite_retransmission_gets_the_same_answer() -> None:
    d = _dialog()
    d.receive_request(_invite(), PEER, 0.1)
    assert _status(_sent(d)) == [100, 180, 180]
    d.accept(b"sdp", 0.2)
    first = d.datagrams_to_send()[0][0]
    d.receive_request(_invite(), PEER, 0.3)
    assert d.datagrams_to_send()[0][0] == first


def test_reject_603_waits_for_ack() -> None:
    d = _dialog()
    _sent(d)
    assert d.reject(603, 0.5)
    assert _status(_sent(d)) == [603]
    assert [(e.kind, e.status) for e in d.events()] == [("ended", 603)]
    d.handle_timer(1.0)
    assert _status(_sent(d)) == [603]
    d.receive_request(_in_dialog(d, "ACK", 1), PEER, 1.1)
    assert d.state is CallState.ENDED and d.get_timer() is None
    assert not d.accept(b"late", 2.0)  # a decision after the end is refused, not sent


def test_app_hangup_sends_bye_and_ends_on_its_answer() -> None:
    d = _dialog()
    d.accept(b"sdp", 0.0)
    d.receive_request(_in_dialog(d, "ACK", 1), PEER, 0.1)
    _sent(d)
    d.events()
    assert d.hangup(1.0)
    (bye,) = _sent(d)
    assert isinstance(bye, SipRequest) and bye.method == "BYE"
    assert bye.uri == "sip:sipp@127.0.0.1:5061"  # the caller's Contact
    assert header_param(bye.get("From") or "", "tag") == d.local_tag
    assert header_param(bye.get("To") or "", "tag") == "1SIPpTag001"
    d.handle_timer(1.0 + T1)  # Timer E resends the BYE
    assert _status(_sent(d)) == ["BYE"]
    ok = SipResponse(headers=list(bye.headers), status=200, reason="OK")
    d.receive_response(ok, 1.6)
    assert d.state is CallState.ENDED
    assert [(e.kind, e.reason) for e in d.events()] == [("ended", "local_hangup")]


def test_cancel_while_ringing() -> None:
    d = _dialog()
    _sent(d)
    cancel = _invite()
    cancel.method = "CANCEL"
    cancel.set("CSeq", "1 CANCEL")
    cancel.body = b""
    d.receive_request(cancel, PEER, 0.5)
    out = _sent(d)
    assert _status(out) == [200, 487]
    assert out[0].cseq == (1, "CANCEL") and out[1].cseq == (1, "INVITE")
    assert d.events()[0].reason == "cancelled"


def test_never_accepted_times_out_with_408() -> None:
    d = _dialog(ring_timeout=5.0)
    _sent(d)
    assert d.get_timer() == 5.0
    d.handle_timer(5.0)
    assert _status(_sent(d)) == [408]
    assert d.events()[0].reason == "timeout"
    d.handle_timer(5.0 + 64 * T1)  # no ACK ever: gives up without more sends
    assert _sent(d) == [] and d.state is CallState.ENDED and d.get_timer() is None


def test_refer_before_answer_redirects_and_after_answer_sends_refer() -> None:
    d = _dialog()
    _sent(d)
    d.refer("tel:+14155550123", 0.1)
    (redirect,) = _sent(d)
    assert isinstance(redirect, SipResponse) and redirect.status == 302
    assert redirect.get("Contact") == "<tel:+14155550123>"

    d = _dialog()
    d.accept(b"sdp", 0.0)
    d.receive_request(_in_dialog(d, "ACK", 1), PEER, 0.1)
    _sent(d)
    d.refer("sip:agent@127.0.0.1", 1.0)
    (refer,) = _sent(d)
    assert isinstance(refer, SipRequest) and refer.method == "REFER"
    assert refer.get("Refer-To") == "<sip:agent@127.0.0.1>"
    notify = _in_dialog(d, "NOTIFY", 2)
    notify.body = b"SIP/2.0 200 OK\r\n"
    d.receive_request(notify, PEER, 1.5)
    assert _status(_sent(d)) == [200, "BYE"]


def test_options_and_unknown_methods_in_dialog() -> None:
    d = _dialog()
    _sent(d)
    d.receive_request(_in_dialog(d, "OPTIONS", 2), PEER, 0.1)
    d.receive_request(_in_dialog(d, "SUBSCRIBE", 3), PEER, 0.1)
    d.receive_request(_in_dialog(d, "BYE", 4), PEER, 0.1)  # BYE before an answer: no such dialog yet
    assert _status(_sent(d)) == [200, 405, 481]


_OPS = st.lists(
    st.sampled_from(
        [
            "invite",
            "ack",
            "bye",
            "cancel",
            "options",
            "notify",
            "accept",
            "reject",
            "refer",
            "hangup",
            "tick",
            "bye_ok",
        ]
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_OPS)
def test_any_sequence_of_inputs_keeps_the_dialog_sound(ops: list[str]) -> None:
    """Whatever the caller and the app do, in any order: no exception, every datagram goes to the
    caller, and once time runs on, nothing is left pending unless the call is up."""
    d = _dialog(ring_timeout=30.0)
    now = 0.0
    cseq = 1
    bye_ok = SipResponse(headers=[("CSeq", "1 BYE")], status=200, reason="OK")  # answers nothing sent
    for op in ops:
        now += 0.3
        if op in ("ack", "bye", "options", "notify"):
            cseq += 1
            d.receive_request(_in_dialog(d, op.upper(), cseq), PEER, now)
        elif op == "invite":
            d.receive_request(_invite(), PEER, now)
        elif op == "cancel":
            cancel = _invite()
            cancel.method = "CANCEL"
            cancel.set("CSeq", "1 CANCEL")
            d.receive_request(cancel, PEER, now)
        elif op == "accept":
            d.accept(b"sdp", now)
        elif op == "reject":
            d.reject(486, now)
        elif op == "refer":
            d.refer("sip:x@127.0.0.1", now)
        elif op == "hangup":
            d.hangup(now)
        elif op == "bye_ok":
            d.receive_response(bye_ok, now)
        else:
            d.handle_timer(now + 1.0)
        for msg in _sent(d):  # asserts every datagram goes back to the caller
            if isinstance(msg, SipRequest) and msg.method == "BYE":
                bye_ok = build_response(msg, 200, "OK")
    for _ in range(100):  # let time run on: retransmissions give up, ring timeout fires
        timer = d.get_timer()
        if timer is None:
            break
        d.handle_timer(timer)
        _sent(d)
    assert d.get_timer() is None
    assert d.state in (CallState.ENDED, CallState.CONFIRMED), d.state
    ends = [e for e in d.events() if e.kind == "ended"]
    assert len(ends) <= 1  # the app hears of the end once


def test_record_route_is_echoed_and_becomes_the_route_of_our_requests() -> None:
    invite = _invite()
    invite.headers.insert(1, ("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>"))
    invite.headers.insert(2, ("Record-Route", "<sip:p3.example;lr>"))
    d = UasDialog(invite, PEER, local_contact="sip:rtlayer@127.0.0.1:5070", now=0.0)
    d.accept(b"sdp", 0.0)
    ok = _sent(d)[-1]
    assert ok.get_all("Record-Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>", "<sip:p3.example;lr>"]
    d.receive_request(_in_dialog(d, "ACK", 1), PEER, 0.1)
    d.hangup(1.0)
    (bye,) = _sent(d)
    assert bye.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>", "<sip:p3.example;lr>"]
    assert isinstance(bye, SipRequest) and bye.uri == "sip:sipp@127.0.0.1:5061"


def _foreign(d: UasDialog, method: str, *, from_tag: str | None, to_tag: str | None) -> SipRequest:
    """A request carrying the dialog's Call-ID but tags of someone else's choosing."""
    req = _in_dialog(d, method, 7)
    req.set("From", "<sip:x@127.0.0.1>" + (f";tag={from_tag}" if from_tag else ""))
    req.set("To", "<sip:rtlayer@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""))
    return req


def test_requests_that_do_not_match_the_dialogs_tags_get_481_and_change_nothing() -> None:
    d = _dialog()
    d.accept(b"sdp", 0.0)
    d.receive_request(_in_dialog(d, "ACK", 1), PEER, 0.1)
    _sent(d)
    d.events()
    caller_tag = "1SIPpTag001"
    attempts = [
        _foreign(d, "BYE", from_tag=None, to_tag=None),  # only the Call-ID
        _foreign(d, "BYE", from_tag=caller_tag, to_tag=None),  # the caller's tag, no dialog tag
        _foreign(d, "BYE", from_tag=caller_tag, to_tag="guess"),
        _foreign(d, "BYE", from_tag="other", to_tag=d.local_tag),
        _foreign(d, "INVITE", from_tag=caller_tag, to_tag="guess"),
        _foreign(d, "REFER", from_tag=None, to_tag=None),
    ]
    for req in attempts:
        assert not d.receive_request(req, ("127.0.0.1", 6666), 0.2)
    replies = [(m, a) for m, a in [(parse_message(data), addr) for data, addr in d.datagrams_to_send()]]
    assert [(m.status, a) for m, a in replies if isinstance(m, SipResponse)] == [
        (481, ("127.0.0.1", 6666))
    ] * 6
    # a refusal never tells the stranger the dialog's own tag
    assert all(header_param(m.get("To") or "", "tag") != d.local_tag for m, _ in replies[:3])
    assert not d.receive_request(_foreign(d, "ACK", from_tag=None, to_tag=None), PEER, 0.2)
    assert d.datagrams_to_send() == []  # an ACK is never answered
    assert d.state is CallState.CONFIRMED and d.events() == [] and d.refused == 7
    assert d.receive_request(_in_dialog(d, "BYE", 2), PEER, 0.3)  # the caller's own BYE ends it
    assert _status(_sent(d)) == [200] and _state(d) is CallState.ENDED


def test_a_cancel_must_match_the_invite_transaction() -> None:
    d = _dialog()
    _sent(d)
    stranger = _invite()
    stranger.method = "CANCEL"
    stranger.set("CSeq", "1 CANCEL")
    stranger.set("Via", "SIP/2.0/UDP 127.0.0.1:6666;branch=z9hG4bK-guess")
    assert not d.receive_request(stranger, PEER, 0.1)
    assert d.state is CallState.RINGING
    cancel = _invite()
    cancel.method = "CANCEL"
    cancel.set("CSeq", "1 CANCEL")
    assert d.receive_request(cancel, PEER, 0.2)
    assert _status(_sent(d)) == [481, 200, 487] and _state(d) is CallState.REJECTING


def test_responses_count_only_when_they_answer_what_we_sent() -> None:
    d = _dialog()
    d.accept(b"sdp", 0.0)
    d.receive_request(_in_dialog(d, "ACK", 1), PEER, 0.1)
    d.hangup(1.0)
    (bye,) = [m for m in _sent(d) if isinstance(m, SipRequest)]
    forged = build_response(bye, 200, "OK")
    forged.set("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-forged")
    assert not d.receive_response(forged, 1.1)
    assert d.state is CallState.HANGING_UP
    assert d.receive_response(build_response(bye, 200, "OK"), 1.2)
    assert _state(d) is CallState.ENDED
