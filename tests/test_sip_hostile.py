"""Hostile peers against a live SIP front over UDP on 127.0.0.1: what each attack may cost, asserted.

The attacks are the SIP findings of the hardening issue: an RTP sequence leap that used to fill every
"lost" slot with payload-sized silence (1.1 GB and a 6 s stall from three packets), RTP from a
stranger before the caller's first packet, a BYE from anyone who knows the Call-ID, and parser input
that used to end in a traceback and no answer. The stranger sends from 127.0.0.2 (loopback too: on
Linux all of 127.0.0.0/8 is the local host), a host the caller's SDP does not name.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
from collections.abc import AsyncIterator

import pytest
from sip_helpers import Caller, LoopLag, PhoneApp, answered_call, free_udp_port, rss_mb, sip_rig, until

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.sip.call import SipCall
from rtlayer.server.sip.message import SipResponse
from rtlayer.server.sip.rtp import RtpPacket

pytestmark = pytest.mark.timeout(30)

STRANGER = "127.0.0.2"
RSS_BOUND_MB = 40  # the three-packet burst took 1,000 MB before; what a session's audio may take now
LAG_BOUND_S = 0.25  # the burst blocked the loop for 6 s before


@pytest.fixture
async def rig() -> AsyncIterator[tuple[RealtimeServer, PhoneApp]]:
    async with sip_rig() as pair:
        yield pair


def _udp(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def _call(server: RealtimeServer, call_id: str) -> SipCall:
    call = server.state.calls.get(call_id)
    assert isinstance(call, SipCall)
    return call


def _burst(seq0: int, size: int) -> list[bytes]:
    """The issue's three packets: the sequence leaps ~32767 ahead, with ``size``-byte payloads."""
    return [RtpPacket(0, (seq0 + 0x7FFF + k) & 0xFFFF, 0, 7, b"\x55" * size).to_bytes() for k in (0, 1, 3)]


async def test_a_sequence_leap_burst_costs_neither_memory_nor_loop_time(
    rig: tuple[RealtimeServer, PhoneApp],
) -> None:
    server, app = rig
    media = _udp()
    caller, call_id, ours = await answered_call(server, app, media.getsockname()[1])
    call = _call(server, call_id)
    for seq in range(5):
        media.sendto(RtpPacket(0, seq, seq * 160, 7, b"\xff" * 160).to_bytes(), ours)
    await until(lambda: call.stats()["rtp_received"] >= 5, 5, "the caller's first packets")
    gc.collect()
    before = rss_mb()
    async with LoopLag() as lag:
        for seq0, size in ((5, 1400), (5 + 0x7FFF + 4, 65_000)):  # two bursts: the second from 64 KB payloads
            for packet in _burst(seq0, size):
                media.sendto(packet, ours)
                await asyncio.sleep(0.02)  # three 64 KB datagrams at once overflow a default receive buffer
            await asyncio.sleep(0.15)  # the gap in the burst is given up (flush_stale) before the next
        await until(lambda: call.stats()["rtp_resyncs"] >= 2, 5, "both leaps taken as resyncs")
    stats = call.stats()
    growth = rss_mb() - before
    assert growth < RSS_BOUND_MB, f"RSS grew by {growth:.0f} MB"
    assert lag.worst < LAG_BOUND_S, f"the loop was blocked for {lag.worst * 1000:.0f} ms"
    assert stats["rtp_out_of_range"] == 2 and stats["rtp_resyncs"] == 2, sorted(stats.items())
    assert stats["rtp_lost"] == 2 and stats["rtp_concealed_bytes"] <= 2 * 480, stats  # one gap in each burst
    # the caller's RTCP report on our stream is read and kept
    report = struct.pack("!BBHI", 0x81, 201, 7, 7) + struct.pack(
        "!IB3sIIII", call.sender.ssrc, 64, (12).to_bytes(3, "big"), 1000, 5, 0, 0
    )
    media.sendto(report, ours)
    await until(lambda: call.stats()["rtcp_received"] == 1, 5, "the RTCP report")
    assert call.stats()["rtp_lost_by_caller"] == 12
    assert call.runner is not None and not call.runner.closed  # the call goes on
    caller.cseq = 2
    caller.send_raw(caller.request("BYE").to_bytes())
    await caller.expect(200)
    media.close()
    caller.close()


async def test_rtp_from_a_stranger_before_the_callers_first_packet_is_refused_and_counted(
    rig: tuple[RealtimeServer, PhoneApp],
) -> None:
    server, app = rig
    media, stranger, neighbour = _udp(), _udp(STRANGER), _udp()
    caller, call_id, ours = await answered_call(server, app, media.getsockname()[1])
    call = _call(server, call_id)
    for seq in range(20):  # the stranger speaks first, and tries the leap too
        stranger.sendto(RtpPacket(0, seq, seq * 160, 99, b"\x00" * 160).to_bytes(), ours)
    for packet in _burst(20, 1400):
        stranger.sendto(packet, ours)
    # another port of the caller's own host, one packet at a time: never two in sequence, never latches
    for seq in range(0, 10, 2):
        neighbour.sendto(RtpPacket(0, seq, seq * 160, 98, b"\x00" * 160).to_bytes(), ours)
    await until(lambda: call.stats()["rtp_foreign"] >= 28, 5, "the strangers' packets counted")
    assert call.guard.latched is None and call.stats()["rtp_received"] == 0
    assert server.sip.rtp_stats()["rtp_foreign"] == 28
    for seq in range(5):  # then the caller, from the port its SDP names
        media.sendto(RtpPacket(0, seq, seq * 160, 7, b"\xff" * 160).to_bytes(), ours)
    await until(lambda: call.stats()["rtp_received"] == 5, 5, "the caller's packets")
    assert call.guard.latched == media.getsockname()
    caller.cseq = 2
    caller.send_raw(caller.request("BYE").to_bytes())
    await caller.expect(200)
    for sock in (media, stranger, neighbour):
        sock.close()
    caller.close()


async def test_a_bye_from_someone_who_knows_only_the_call_id_gets_481_and_the_call_lives(
    rig: tuple[RealtimeServer, PhoneApp],
) -> None:
    server, app = rig
    caller, call_id, _ours = await answered_call(server, app, free_udp_port())
    call = _call(server, call_id)
    await until(lambda: call.dialog.state.value == "confirmed", 5, "the ACK")
    for host in ("127.0.0.1", STRANGER):
        evil = Caller(server.sip.port, host=host, server_host="127.0.0.1")
        await evil.start()
        evil.call_id = caller.call_id  # the Call-ID, but neither tag
        evil.send_raw(evil.request("BYE", cseq=99).to_bytes())
        refusal = await evil.expect(481)
        assert call.dialog.local_tag not in (refusal.get("To") or "")  # nothing learnt from the refusal
        evil.close()
    # a BYE with the caller's From tag but a guessed dialog tag: refused too
    caller.cseq = 3
    guess = caller.request("BYE")
    guess.set("To", "<sip:agent@127.0.0.1>;tag=guessed")
    caller.send_raw(guess.to_bytes())
    await caller.expect(481)
    assert server.sip.counters.sip_unmatched == 3
    assert call.dialog.state.value == "confirmed" and call.runner is not None and not call.runner.closed
    assert call_id in server.state.calls
    caller.cseq = 4
    caller.send_raw(caller.request("BYE").to_bytes())  # the caller's own BYE ends it
    await caller.expect(200)
    assert call_id not in server.state.calls
    caller.close()


async def test_malformed_requests_are_answered_as_sip_says_with_one_log_line_and_no_traceback(
    rig: tuple[RealtimeServer, PhoneApp], caplog: pytest.LogCaptureFixture
) -> None:
    server, _app = rig
    front = server.sip
    caplog.set_level(logging.DEBUG, logger="rtlayer.server.sip")
    phone = Caller(front.port)
    await phone.start()

    def invite(
        sdp_edit: tuple[bytes, bytes] = (b"", b""), head_edit: tuple[bytes, bytes] = (b"", b"")
    ) -> None:
        phone.call_id += "x"
        request = phone.request(
            "INVITE", f"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio {free_udp_port()} RTP/AVP 0\r\n".encode()
        )
        request.body = request.body.replace(*sdp_edit) if sdp_edit[0] else request.body + b"a=ptime:20\r\n"
        wire = request.to_bytes()
        phone.send_raw(wire.replace(*head_edit) if head_edit[0] else wire)

    cases: list[tuple[str, int | None]] = []
    phone.send_raw(
        b"SIP/2.0 20\xc2\xb2 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: q\r\nCSeq: 1 BYE\r\n\r\n"
    )
    cases.append(("a response with a superscript status: dropped", None))
    phone.send_raw(phone.request("OPTIONS").to_bytes().replace(b"CSeq: 1 OPTIONS", b"CSeq: \xc2\xb2 OPTIONS"))
    cases.append(("CSeq: superscript", 400))
    invite(head_edit=(b"Call-ID: " + phone.call_id.encode() + b"x", b"Call-ID: "))
    cases.append(("an INVITE with an empty Call-ID", 400))
    invite(head_edit=(b"Content-Length: ", b"Content-Length: " + b"9" * 5000))
    cases.append(("Content-Length of 5000 digits", 400))
    invite(head_edit=(b"CSeq: 1 INVITE", b"CSeq: 99999999999 INVITE"))
    cases.append(("a CSeq past 2**31", 400))
    invite(sdp_edit=(b"m=audio ", b"m=audio \xc2\xb2"))
    cases.append(("an m= port in superscript", 488))
    for _name, status in cases:
        if status is not None:
            reply = await phone.expect(status)
            assert isinstance(reply, SipResponse)
    await asyncio.sleep(0.2)
    assert phone.inbox.empty()  # the dropped response got nothing back
    assert front.counters.sip_malformed == 5 and front.counters.calls_refused_sdp == 1
    assert front.counters.sip_errors == 0  # no handler failed
    records = [r for r in caplog.records if r.name == "rtlayer.server.sip"]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    malformed = [r.getMessage() for r in records if "malformed SIP message" in r.getMessage()]
    assert 1 <= len(malformed) <= 5 and all("\n" not in line for line in malformed)
    # a ptime in superscript is an attribute we cannot read: ignored, the call rings as usual
    invite(sdp_edit=(b"m=audio", b"a=ptime:2\xc2\xb2\r\nm=audio"))
    await phone.expect(180)
    phone.close()
