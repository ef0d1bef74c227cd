"""Captured wire data, round-tripped: one SIP call, its first RTP packets each way, and the server events
of one full turn (``tests/data/wire/``, captured from the real code paths by ``tests/capture_wire.py``).

As aiortc does with its recorded packets: what really crossed a socket must parse, serialize back to the
same bytes, and drive the sans-I/O cores to the same answers, byte for byte.
"""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import AUDIO_ANSWER_END, event_problems

from rtlayer.client.session import ClientSession
from rtlayer.protocol import codec
from rtlayer.server.sip.dialog import CallState, UasDialog
from rtlayer.server.sip.message import SipRequest, SipResponse, header_param, parse_message
from rtlayer.server.sip.rtp import RtpReceiver, RtpSender, parse_rtp
from rtlayer.server.sip.sdp import negotiate, parse_offer

WIRE = Path(__file__).parent / "data" / "wire"
SIP_CALL = sorted((WIRE / "sip_call").glob("*.sip"))


def _datagram(name: str) -> bytes:
    (path,) = [p for p in SIP_CALL if p.name.endswith(name)]
    return path.read_bytes()


@pytest.mark.parametrize("path", SIP_CALL, ids=lambda p: p.name)
def test_every_sip_datagram_of_the_call_parses_and_serializes_back(path: Path) -> None:
    """What the server sent comes back byte for byte; what sipp sent comes back in the server's canonical
    form (sipp pads ``Content-Length``), which parses to the same message."""
    data = path.read_bytes()
    message = parse_message(data)
    direction, what = path.stem.split("-")[1:3]
    assert (message.method if isinstance(message, SipRequest) else str(message.status)) == what
    canonical = message.to_bytes()
    if direction == "out":
        assert canonical == data
    else:
        again = parse_message(canonical)
        assert (again.to_bytes(), again.headers, again.body) == (canonical, message.headers, message.body)


def test_the_call_is_one_dialog_in_the_order_rfc_3261_gives() -> None:
    messages = [parse_message(p.read_bytes()) for p in SIP_CALL]
    assert len({m.call_id for m in messages}) == 1
    flow = [m.method if isinstance(m, SipRequest) else m.status for m in messages]
    assert flow == ["INVITE", 100, 180, 200, "ACK", "BYE", 200]
    invite = messages[0]
    assert isinstance(invite, SipRequest)
    answer = negotiate(parse_offer(invite.body))
    assert (answer.codec, answer.payload_type, answer.telephone_event, answer.ptime) == ("pcmu", 0, 101, 20)


def test_the_dialog_replayed_answers_the_captured_bytes() -> None:
    """The INVITE, ACK and BYE that arrived, fed to a fresh ``UasDialog``: it sends what the server sent.
    The dialog's To tag is random: the captured one is swapped for it in what arrives, and back in what leaves."""
    invite = parse_message(_datagram("-in-INVITE.sip"))
    ok = parse_message(_datagram("04-out-200.sip"))
    assert isinstance(invite, SipRequest) and isinstance(ok, SipResponse)
    via = invite.get("Via") or ""
    host, port = via.split()[1].split(";")[0].split(":")
    source = (host, int(port))
    captured_tag = header_param(ok.get("To") or "", "tag")
    contact = (ok.get("Contact") or "").strip("<>")
    dialog = UasDialog(invite, source, local_contact=contact, now=0.0)
    assert captured_tag is not None

    def arrived(name: str) -> SipRequest:  # the caller's in-dialog request, naming our tag
        request = parse_message(_datagram(name).replace(captured_tag.encode(), dialog.local_tag.encode()))
        assert isinstance(request, SipRequest)
        return request

    def sent() -> list[bytes]:
        return [
            data.replace(dialog.local_tag.encode(), captured_tag.encode())
            for data, _ in dialog.datagrams_to_send()
        ]

    assert sent() == [_datagram("02-out-100.sip"), _datagram("03-out-180.sip")]
    assert dialog.accept(ok.body, 0.5)
    assert sent() == [_datagram("04-out-200.sip")]
    dialog.receive_request(arrived("05-in-ACK.sip"), source, 0.6)
    assert sent() == [] and dialog.state is CallState.CONFIRMED
    dialog.receive_request(arrived("06-in-BYE.sip"), source, 2.0)
    assert sent() == [_datagram("07-out-200.sip")]
    assert dialog.state is CallState.ENDED


def _rtp(who: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((WIRE / "rtp").glob(f"{who}-*.bin"))]


@pytest.mark.parametrize("who", ["caller", "server"])
def test_rtp_packets_parse_and_serialize_back_to_their_bytes(who: str) -> None:
    packets = _rtp(who)
    assert len(packets) == 6
    parsed = [parse_rtp(data) for data in packets]
    assert [p.to_bytes() for p in parsed] == packets
    assert {(p.payload_type, len(p.payload), p.ssrc) for p in parsed} == {(0, 160, parsed[0].ssrc)}
    for before, after in itertools.pairwise(parsed):
        assert after.sequence == (before.sequence + 1) & 0xFFFF
        assert after.timestamp == (before.timestamp + 160) & 0xFFFFFFFF


def test_the_server_packets_are_what_its_sender_stamps() -> None:
    """A talk spurt starts with the marker bit, then sequence and timestamp run on: ``RtpSender`` given the
    first packet's numbers rebuilds every captured packet from its payload."""
    packets = _rtp("server")
    first = parse_rtp(packets[0])
    assert first.marker and not any(parse_rtp(p).marker for p in packets[1:])
    sender = RtpSender(0, ssrc=first.ssrc)
    sender.sequence, sender.timestamp = first.sequence, first.timestamp
    assert [sender.packet(parse_rtp(p).payload) for p in packets] == packets


def test_the_caller_packets_play_in_order_through_the_receiver() -> None:
    packets = _rtp("caller")
    receiver = RtpReceiver("pcmu", 0, 101)
    shuffled = [packets[i] for i in (0, 2, 1, 4, 3, 5)]  # two pairs swapped on the way
    for i, data in enumerate(shuffled):
        receiver.receive(data, now=i * 0.02)
    receiver.flush_stale(now=1.0)
    assert receiver.pop_audio() == b"".join(parse_rtp(p).payload for p in packets)
    assert (receiver.received, receiver.reordered, receiver.lost, receiver.invalid) == (6, 2, 0, 0)


TURN = [json.loads(line) for line in (WIRE / "turn_websocket_echo.jsonl").read_text().splitlines()]


def test_the_recorded_turn_is_valid_and_survives_the_codec() -> None:
    assert TURN[0]["type"] == "session.created" and TURN[-1]["type"] == "response.done"
    assert TURN[-1]["response"]["status"] == "completed"
    for event in TURN:
        assert event_problems(event) == [], event
        assert codec.loads(codec.dumps(event)) == event


def test_the_recorded_turn_is_the_services_sequence() -> None:
    """The order of one server-VAD turn and its audio answer (deltas left out: their count is the answer's length)."""
    kinds = [e["type"] for e in TURN if not e["type"].endswith(".delta")]
    assert kinds == [
        "session.created",
        "session.updated",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        *AUDIO_ANSWER_END,
    ]


def test_a_client_session_fed_the_recorded_turn_hears_the_whole_answer() -> None:
    client = ClientSession()
    for i, event in enumerate(TURN):
        client.receive_event(event, now=i * 0.02)
    emitted: dict[str, list[Any]] = {}
    for name, payload in client.emitted():
        emitted.setdefault(name, []).append(payload)
    deltas = b"".join(
        base64.b64decode(e["delta"]) for e in TURN if e["type"] == "response.output_audio.delta"
    )
    assert b"".join(a.data for a in emitted["audio"]) == deltas
    done = next(e for e in TURN if e["type"] == "response.output_audio_transcript.done")
    spoken = "".join(d.delta for d in emitted["audio_transcript_delta"])
    assert spoken == done["transcript"] and spoken
    assert len(emitted["turn_started"]) == len(emitted["turn_done"]) == 1
    sent = {e["type"] for e in client.events_to_send()}
    assert not sent & {"conversation.item.truncate", "response.cancel"}  # a completed answer is left alone
