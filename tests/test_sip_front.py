"""The SIP front against a small scripted caller on UDP: bad input, CANCEL, OPTIONS, codec refusal.

sipp plays the well-behaved caller in ``test_sip_calls.py``; here a few lines of Python play the
badly behaved one, which sipp cannot: garbage datagrams, RTP noise, duplicates, a caller that leaves.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
import websockets
from sip_helpers import Caller, PhoneApp, RtpSink, answered_call, free_udp_port, sip_rig, until

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.sip.message import SipRequest, build_response
from rtlayer.server.sip.rtp import RtpSender, encode_dtmf
from rtlayer.server.sip.sdp import parse_offer
from rtlayer.transports.sip import build_initial_config

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def rig() -> AsyncIterator[tuple[RealtimeServer, PhoneApp]]:
    async with sip_rig() as pair:
        yield pair


async def test_garbage_is_counted_and_other_calls_carry_on(rig: tuple[RealtimeServer, PhoneApp]) -> None:
    server, app = rig
    front = server.sip
    a = Caller(front.port)
    await a.start()
    loop = asyncio.get_running_loop()
    rtp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    a.invite(rtp.get_extra_info("sockname")[1])  # the caller's media port, where its RTP comes from
    assert (await a.expect(100)).get_all("Via")[0].endswith(f"rport={a.port};received=127.0.0.1")
    call = await app.next_call()
    assert app.client is not None
    await app.client.accept(call.call_id, build_initial_config(turn_detection={"type": "server_vad"}))
    ok = await a.expect(200)
    a.send_raw(a.request("ACK", cseq=1).to_bytes())
    rtp_port = parse_offer(ok.body).port

    # SIP garbage on the signalling port
    for junk in (b"\x00\x01\x02", b"INVITE nonsense\r\n\r\n", b"SIP/2.0 999999 What\r\n\r\n", b"x" * 2000):
        a.send_raw(junk)
    # RTP garbage, then real PCMU frames shuffled, with duplicates, then a DTMF digit
    for junk in (b"\x80", b"\x00" * 5, b"\x40" + b"\x01" * 30, bytes([0x80, 200]) + b"\x00" * 30):
        rtp.sendto(junk, ("127.0.0.1", rtp_port))
    sender = RtpSender(0, ssrc=77)
    packets = [sender.packet(b"\xff" * 160) for _ in range(30)]
    order = list(range(30))
    random.Random(3).shuffle(order[5:9])
    for i in [*order, 4, 10]:  # two duplicates
        rtp.sendto(packets[i], ("127.0.0.1", rtp_port))
    rtp.sendto(
        encode_dtmf("7", sequence=999, timestamp=5, ssrc=77, duration=160, end=True), ("127.0.0.1", rtp_port)
    )
    rtp.close()

    # a second call while all that goes on: rejected with the app's status
    b = Caller(front.port)
    await b.start()
    b.invite(free_udp_port())
    second = await app.next_call()
    await app.client.reject(second.call_id, status_code=486)
    await b.expect(486)

    # OPTIONS outside any dialog: what we take
    b.call_id = "options-" + b.call_id
    b.send_raw(b.request("OPTIONS").to_bytes())
    options = await b.expect(200)
    assert "INVITE" in (options.get("Allow") or "")

    # the first call is still up and hangs up cleanly
    for _ in range(250):  # up to 5 s
        if front.rtp_stats().get("rtp_received", 0) >= 30:
            break
        await asyncio.sleep(0.02)
    stats = front.rtp_stats()
    assert stats["rtp_invalid"] == 3 and stats["rtcp_invalid"] == 1 and stats["rtp_duplicates"] == 2
    # DTMF as SIP INFO too (some trunks send it that way)
    for cseq, (kind, body) in enumerate(
        [
            ("application/dtmf-relay", b"Signal=#\r\nDuration=160\r\n"),
            ("application/dtmf", b"9"),
            ("text/plain", b"1"),
        ],
        start=10,
    ):
        info = a.request("INFO", cseq=cseq)
        info.headers.append(("Content-Type", kind))
        info.body = body
        a.send_raw(info.to_bytes())
        await a.expect(200)
    sip_call = next(c for c in front.calls.values() if c.id == call.call_id)
    assert list(sip_call.dtmf_digits) == ["7", "#", "9"]
    assert front.counters.sip_malformed == 4
    a.cseq = 2
    a.send_raw(a.request("BYE").to_bytes())
    await a.expect(200)
    assert call.call_id not in server.state.calls
    a.close()
    b.close()


async def test_cancel_while_ringing_and_resent_invite(rig: tuple[RealtimeServer, PhoneApp]) -> None:
    server, app = rig
    c = Caller(server.sip.port)
    await c.start()
    invite = c.invite(free_udp_port())
    await c.expect(100)
    call = await app.next_call()
    c.send_raw(invite.to_bytes())  # a retransmission: answered again (the latest provisional), no second call
    await c.expect(180)
    assert server.sip.counters.calls_offered == 1
    cancel = c.request("CANCEL")
    cancel.set("Via", invite.get("Via") or "")
    c.send_raw(cancel.to_bytes())
    await c.expect(200)
    await c.expect(487)
    assert call.call_id not in server.state.calls
    assert app.client is not None
    with pytest.raises(Exception, match="not found"):
        await app.client.accept(call.call_id, {"type": "realtime"})
    c.close()


async def test_no_common_codec_is_488_without_webhook(rig: tuple[RealtimeServer, PhoneApp]) -> None:
    server, app = rig
    c = Caller(server.sip.port)
    await c.start()
    c.invite(free_udp_port(), pts="18 9")
    resp = await c.expect(488)
    assert "PCMU or PCMA" in (resp.get("Warning") or "")
    assert server.sip.counters.calls_refused_sdp == 1 and not app.deliveries
    c.close()


async def test_unreachable_webhook_declines_with_480() -> None:
    async with RealtimeServer(
        sip_port=0, webhook_url=f"http://127.0.0.1:{free_udp_port()}/nobody", webhook_secret="s"
    ) as server:
        c = Caller(server.sip.port)
        await c.start()
        c.invite(free_udp_port())
        await c.expect(480)
        assert server.sip.counters.webhooks_failed == 1
        c.close()


async def test_refer_of_an_answered_call_and_hangup_of_a_ringing_one(
    rig: tuple[RealtimeServer, PhoneApp],
) -> None:
    server, app = rig
    oai = openai.AsyncOpenAI(api_key="test-key", base_url=server.url + "/v1", max_retries=0)
    # answered call: /refer sends an in-dialog REFER; the caller's NOTIFY of success ends it with BYE
    c = Caller(server.sip.port)
    await c.start()
    c.invite(free_udp_port())
    call = await app.next_call()
    await oai.realtime.calls.accept(call.call_id, type="realtime")
    await c.expect(200)
    c.send_raw(c.request("ACK", cseq=1).to_bytes())
    await oai.realtime.calls.refer(call.call_id, target_uri="sip:desk@127.0.0.1")
    refer = await c.expect("REFER")
    assert isinstance(refer, SipRequest)
    assert refer.get("Refer-To") == "<sip:desk@127.0.0.1>"
    c.send_raw(build_response(refer, 202, "Accepted").to_bytes())
    notify = c.request("NOTIFY", cseq=2)
    notify.body = b"SIP/2.0 200 OK\r\n"
    notify.headers += [("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")]
    c.send_raw(notify.to_bytes())
    await c.expect(200)
    bye = await c.expect("BYE")
    assert isinstance(bye, SipRequest)
    c.send_raw(build_response(bye, 200, "OK").to_bytes())
    c.close()

    # ringing call: /hangup declines it (480), the official client's hangup works on SIP calls
    d = Caller(server.sip.port)
    await d.start()
    d.invite(free_udp_port())
    ringing = await app.next_call()
    await oai.realtime.calls.hangup(ringing.call_id)
    await d.expect(480)
    with pytest.raises(openai.NotFoundError):
        await oai.realtime.calls.hangup(ringing.call_id)
    d.close()

    # two accepts racing: one session, the other is told the call is taken
    e = Caller(server.sip.port)
    await e.start()
    e.invite(free_udp_port())
    raced = await app.next_call()
    results = await asyncio.gather(
        oai.realtime.calls.accept(raced.call_id, type="realtime"),
        oai.realtime.calls.accept(raced.call_id, type="realtime"),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    (conflict,) = [r for r in results if r is not None]
    assert isinstance(conflict, openai.ConflictError) and "already answered" in str(conflict)
    await e.expect(200)
    e.close()
    await oai.close()


async def test_a_call_over_ipv6_loopback(tmp_path: Path) -> None:
    app = PhoneApp(server_url="")
    await app.start()
    async with RealtimeServer(
        host="::1", sip_port=0, webhook_url=app.url, webhook_secret=app.secret
    ) as server:
        assert app.client is not None
        app.client.base_url = server.url + "/v1"
        c = Caller(server.sip.port, host="::1")
        await c.start()
        c.invite(free_udp_port())
        call = await app.next_call()
        await app.client.accept(call.call_id, build_initial_config())
        ok = await c.expect(200)
        assert parse_offer(ok.body).address == "::1"
        assert (ok.get("Contact") or "").startswith("<sip:rtlayer@[::1]:")
        c.send_raw(c.request("ACK", cseq=1).to_bytes())
        c.cseq = 2
        c.send_raw(c.request("BYE").to_bytes())
        await c.expect(200)
        c.close()
    await app.close()


async def test_rtp_from_a_foreign_port_is_dropped_and_counted(rig: tuple[RealtimeServer, PhoneApp]) -> None:
    server, app = rig
    front = server.sip
    loop = asyncio.get_running_loop()
    sdp_port, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    caller, call_id, ours = await answered_call(server, app, int(sdp_port.get_extra_info("sockname")[1]))
    # the caller sends from another port than its SDP names (as sipp does with -mp): that port latches
    # once two packets in sequence passed probation (the first is dropped and counted)
    media, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    intruder, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    voice, noise = RtpSender(0, ssrc=11), RtpSender(0, ssrc=66)
    for _ in range(10):
        media.sendto(voice.packet(b"\x10" * 160), ours)
    await until(lambda: front.rtp_stats()["rtp_received"] >= 9, 5, "the caller's first packets")
    # an injection from a foreign port while the call's audio goes on
    for _ in range(10):
        intruder.sendto(noise.packet(b"\x20" * 160), ours)
        media.sendto(voice.packet(b"\x10" * 160), ours)
    # and the address the SDP offered is still heard: it is authoritative, and takes the latch over
    for _ in range(5):
        sdp_port.sendto(voice.packet(b"\x10" * 160), ours)
    await until(lambda: front.rtp_stats()["rtp_foreign"] >= 11, 5, "the injected packets counted")
    await until(lambda: front.rtp_stats()["rtp_received"] >= 24, 5, "the caller's audio")
    sip_call = next(c for c in front.calls.values() if c.id == call_id)
    assert sip_call.guard.latched == sdp_port.get_extra_info("sockname")[:2] and sip_call.guard.relatched == 1
    stats = front.rtp_stats()
    assert stats["rtp_foreign"] == 11 and stats["rtp_received"] == 24 and stats["rtp_lost"] == 0, stats
    caller.cseq = 2
    caller.send_raw(caller.request("BYE").to_bytes())
    await caller.expect(200)
    assert front.rtp_stats()["rtp_foreign"] == 11  # kept once the call is over
    for sock in (sdp_port, media, intruder):
        sock.close()
    caller.close()


async def test_symmetric_rtp_answers_to_the_latched_source(rig: tuple[RealtimeServer, PhoneApp]) -> None:
    server, app = rig
    front = server.sip
    front.symmetric_rtp = True  # for calls offered from now on
    sdp_sink, media = RtpSink(), RtpSink()
    await sdp_sink.start()
    await media.start()
    caller, call_id, ours = await answered_call(server, app, sdp_sink.port)
    assert media.transport is not None
    voice = RtpSender(0, ssrc=5)
    for _ in range(5):  # behind a NAT, the caller's packets come from a port its SDP does not name
        media.transport.sendto(voice.packet(b"\xff" * 160), ours)
    await until(lambda: front.rtp_stats()["rtp_received"] >= 4, 5, "the caller's packets (after probation)")
    async with websockets.connect(
        f"{server.ws_url}?call_id={call_id}", additional_headers={"Authorization": "Bearer k"}
    ) as control:
        await control.send(json.dumps({"type": "response.create"}))
        await until(lambda: len(media.packets) >= 20, 10, "the answer's RTP at the latched source")
    assert sdp_sink.packets == []  # nothing went to the SDP's address
    assert {p[1] for p in media.packets} == {0} and {len(p[5]) for p in media.packets} == {160}
    assert front.rtp_stats()["rtp_dropped"] == 0  # the switch happened before any audio was queued
    caller.cseq = 2
    caller.send_raw(caller.request("BYE").to_bytes())
    await caller.expect(200)
    assert front.rtp_stats()["rtp_sent"] >= 20  # counted across the stream switch
    sdp_sink.close()
    media.close()
    caller.close()


async def test_every_control_socket_learns_the_session_even_after_the_first_left(
    rig: tuple[RealtimeServer, PhoneApp],
) -> None:
    server, app = rig
    caller, call_id, _ours = await answered_call(server, app, free_udp_port())
    url = f"{server.ws_url}?call_id={call_id}"
    sessions = []
    for _ in range(3):  # one after the other: the first gets the backlog, the others a greeting
        async with websockets.connect(url, additional_headers={"Authorization": "Bearer k"}) as control:
            first = json.loads(await asyncio.wait_for(control.recv(), 5))
            assert first["type"] == "session.created"
            sessions.append(first["session"]["id"])
        await until(lambda: server.state.connections == 0, 5, "the socket to close")
    assert len(set(sessions)) == 1
    caller.cseq = 2
    caller.send_raw(caller.request("BYE").to_bytes())
    await caller.expect(200)
    caller.close()
