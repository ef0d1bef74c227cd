"""Bad input on both sides of a WebRTC call: clear errors, nothing hangs, no peer connection left open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from helpers import Recorder, ToneResponder, open_peer_connections

from rtlayer._ice import host_policy
from rtlayer.exceptions import ConnectError, ConnectTimeout, HandshakeError, UnsupportedOperation
from rtlayer.server import webrtc as webrtc_front
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.webrtc import front_of
from rtlayer.transport import TransportStatus
from rtlayer.transports.webrtc import WebRTCTransport

pytestmark = pytest.mark.timeout(20)

ROOT = Path(__file__).resolve().parents[1]
BROKEN_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio nine UDP/TLS/RTP/SAVPF x\r\n"


async def test_broken_offers_get_the_servers_message_and_leave_no_peer(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        cases = [
            ({"Content-Type": "application/sdp"}, b"hello", 400, "must start with 'v=0'"),
            ({"Content-Type": "application/sdp"}, b"", 400, "the SDP offer is empty"),
            ({"Content-Type": "application/sdp"}, BROKEN_SDP.encode(), 400, "invalid SDP offer"),
            ({"Content-Type": "text/plain"}, b"v=0", 415, "unsupported Content-Type"),
        ]
        for headers, body, status, message in cases:
            response = await http.post("/v1/realtime/calls", headers=headers, content=body)
            assert response.status_code == status
            assert message in response.json()["error"]["message"]
        no_sdp = await http.post("/v1/realtime/calls", files={"session": (None, "{}", "application/json")})
        assert no_sdp.status_code == 400 and "'sdp' part" in no_sdp.json()["error"]["message"]
        bad_session = await http.post(
            "/v1/realtime/calls",
            files={
                "sdp": (None, "v=0\r\nm=audio 9 x 0\r\n", "application/sdp"),
                "session": (None, "{", None),
            },
        )
        assert "not valid JSON" in bad_session.json()["error"]["message"]
    front = front_of(server.state)
    assert front is not None and not front.peers and not front.calls
    assert not open_peer_connections()


async def test_wrong_key_fails_connect_with_the_servers_message():
    async with RealtimeServer(api_key="sk-right") as server:
        transport = WebRTCTransport(api_key="sk-wrong")
        with pytest.raises(HandshakeError) as caught:
            await transport.connect(url=server.url)
        assert caught.value.status == 401
        assert "Incorrect API key provided." in str(caught.value)
        assert "sk-wrong" not in str(caught.value)  # keys never appear in messages
        expired = WebRTCTransport(api_key="ek_not_issued")
        with pytest.raises(HandshakeError, match="Incorrect API key"):
            await expired.connect(url=server.url)
        assert transport.status is TransportStatus.DISCONNECTED and transport.peer is None
    assert not open_peer_connections()


async def test_unknown_call_id(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        response = await http.post("/v1/realtime/calls/rtc_nope/hangup")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Call 'rtc_nope' not found."
    with pytest.raises(websockets.InvalidStatus) as caught:
        async with websockets.connect(f"{server.ws_url}?call_id=rtc_nope", open_timeout=5):
            pass
    assert caught.value.response.status_code == 404
    with pytest.raises(UnsupportedOperation, match="sideband"):
        await WebRTCTransport().connect(url=server.url, call_id="rtc_nope")


async def test_bad_data_channel_messages_get_error_events_and_the_call_goes_on():
    async with RealtimeServer(responder=ToneResponder(300)) as server:
        transport = WebRTCTransport()
        rec = Recorder(transport, ("*", "audio"))
        await transport.connect(url=server.url)
        assert transport.peer is not None
        assert transport.peer.send("this is not JSON {")
        transport.peer.channel.send(b"\x00\x01binary")
        await rec.wait_for(lambda: rec.count("error") == 2)
        messages = [e["error"]["message"] for e in rec.events["*"] if e["type"] == "error"]
        assert any("binary data channel messages are not supported" in m for m in messages)
        transport.send_message("still there?")
        await rec.wait_for(lambda: rec.count("response.done") == 1)
        assert transport.status is TransportStatus.CONNECTED
        await transport.close()
        await rec.wait_for(lambda: not server.state.calls, within=5)  # the server saw the peer leave
        assert not open_peer_connections()


@contextlib.asynccontextmanager
async def deaf_signalling_server(answer: str = "real") -> AsyncIterator[str]:
    """Answers offers like a server would, then closes its peer: ICE checks go unanswered."""
    peers: list[RTCPeerConnection] = []

    async def calls(request: web.Request) -> web.Response:
        if answer == "garbage":
            return web.Response(status=201, text="v=0\r\nnonsense\r\n", headers={"Location": "/x/rtc_1"})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        with host_policy("loopback_only"):
            await pc.setLocalDescription(await pc.createAnswer())
        assert pc.localDescription is not None
        sdp = pc.localDescription.sdp
        await pc.close()
        return web.Response(status=201, text=sdp, headers={"Location": "/v1/realtime/calls/rtc_deaf"})

    app = web.Application()
    app.router.add_post("/v1/realtime/calls", calls)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        for pc in peers:
            await pc.close()


async def test_ice_that_never_connects_becomes_a_connect_timeout():
    async with deaf_signalling_server() as url:
        transport = WebRTCTransport(connect_timeout=1.5)
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as caught:
            await transport.connect(url=url)
        assert time.monotonic() - started < 1.5 + 5  # the timeout, not aioice's 30 s of checks
        assert "not established within 1.5 s" in str(caught.value) and "ICE" in str(caught.value)
        assert transport.status is TransportStatus.DISCONNECTED and transport.peer is None
    async with deaf_signalling_server("garbage") as url:
        with pytest.raises(ConnectError, match="SDP answer could not be used"):
            await WebRTCTransport(connect_timeout=3).connect(url=url)
    assert not open_peer_connections()


async def test_a_caller_that_never_connects_is_hung_up(server, monkeypatch):
    monkeypatch.setattr(webrtc_front, "CONNECT_DEADLINE_S", 0.5)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("oai-events")
    with host_policy("loopback_only"):
        await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        response = await http.post(
            "/v1/realtime/calls", headers={"Content-Type": "application/sdp"}, content=pc.localDescription.sdp
        )
    assert response.status_code == 201  # ... and the caller never applies the answer
    call_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert call_id in server.state.calls
    for _ in range(100):  # at most 2 s
        if call_id not in server.state.calls:
            break
        await asyncio.sleep(0.02)
    assert call_id not in server.state.calls and not front_of(server.state).peers
    assert not server.state.runners  # its session is closed too
    await pc.close()


async def test_connection_state_changes_grace_and_failure(server):
    """aiortc has no "disconnected" state and reports "failed" only after 30 s of consent-check
    failures, so this drives the transport's state callback with what the peer connection would say."""
    transport = WebRTCTransport(disconnected_grace=0.2)
    rec = Recorder(transport, ("*", "audio", "error"))
    await transport.connect(url=server.url)
    assert transport.peer is not None
    on_state = transport.peer._on_state
    on_state("disconnected")  # back within the grace period: nothing happens
    on_state("connected")
    await asyncio.sleep(0.3)
    assert transport.status is TransportStatus.CONNECTED and not rec.events["error"]
    on_state("disconnected")  # stays away: an error, then the transport closes
    await rec.wait_for(lambda: transport.status is TransportStatus.DISCONNECTED, within=2)
    assert [e.code for e in rec.events["error"]] == ["disconnected"]

    failing = WebRTCTransport()
    rec = Recorder(failing, ("*", "audio", "error"))
    await failing.connect(url=server.url)
    assert failing.peer is not None
    failing.peer._on_state("failed")
    await rec.wait_for(lambda: failing.status is TransportStatus.DISCONNECTED, within=2)
    assert [e.code for e in rec.events["error"]] == ["connection_failed"]
    await rec.wait_for(lambda: not server.state.calls, within=5)
    assert not open_peer_connections()


@pytest.mark.parametrize("signalling", ["multipart", "sdp"])
async def test_an_invalid_initial_config_fails_connect_with_the_servers_message(server, signalling):
    transport = WebRTCTransport(signalling=signalling)
    with pytest.raises(ConnectError, match=r"Invalid 'session.audio.output.speed'"):
        await transport.connect(url=server.url, initial_session_config={"audio": {"output": {"speed": 99}}})
    assert transport.status is TransportStatus.DISCONNECTED and transport.peer is None
    for _ in range(100):  # the server sees the peer leave (sdp form: the call was placed first)
        if not server.state.calls:
            break
        await asyncio.sleep(0.02)
    assert not server.state.calls and not open_peer_connections()


async def test_a_server_message_that_is_not_json_is_an_error_event_and_the_call_goes_on():
    """A peer that sends garbage on the data channel before a valid ``session.created``."""
    peers: list[RTCPeerConnection] = []

    async def calls(request: web.Request) -> web.Response:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            channel.send("this is not JSON {")
            channel.send("[1, 2]")
            channel.send(json.dumps({"type": "session.created", "event_id": "event_1", "session": {}}))

        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        with host_policy("loopback_only"):
            await pc.setLocalDescription(await pc.createAnswer())
        assert pc.localDescription is not None
        return web.Response(status=201, text=pc.localDescription.sdp, headers={"Location": "/x/rtc_odd"})

    app = web.Application()
    app.router.add_post("/v1/realtime/calls", calls)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        transport = WebRTCTransport(connect_timeout=5)
        rec = Recorder(transport, ("*", "audio", "error"))
        await transport.connect(url=f"http://127.0.0.1:{runner.addresses[0][1]}")
        assert transport.status is TransportStatus.CONNECTED and transport.call_id == "rtc_odd"
        assert [e.code for e in rec.events["error"]] == ["invalid_json", "invalid_event"]
        assert rec.types() == ["session.created"]
        await transport.close()
    finally:
        await runner.cleanup()
        for pc in peers:
            await pc.close()
    assert not open_peer_connections()


async def test_a_server_killed_mid_call_fails_the_connection_over_real_sockets(monkeypatch):
    """The server process dies without a word (SIGKILL: no hangup, no DTLS close): aioice's consent
    checks (RFC 7675) stop being answered, ICE fails, and the transport reports it and closes.

    aioice checks consent every 5 s and gives up after 6 misses (30 s); the test shortens those two
    third-party constants so the same path runs in a couple of seconds."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtlayer.cli", "serve", "--port", "0",
        stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
    )  # fmt: skip
    transport = WebRTCTransport(connect_timeout=10)
    rec = Recorder(transport, ("*", "audio", "error"))
    changes: list[str] = []
    transport.on("connection_change", lambda change: changes.append(change.status.value))
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(15):
            line = ""
            while "listening on " not in line:
                line = (await proc.stderr.readline()).decode()
                assert line, "rtlayer serve exited early"
        url = line.split("listening on ")[1].split()[0]
        await transport.connect(url=url)
        assert transport.status is TransportStatus.CONNECTED
        proc.kill()
        await proc.wait()
        await rec.wait_for(lambda: transport.status is TransportStatus.DISCONNECTED, within=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await transport.close()
    # an error the app can act on, not the quiet end of a hangup
    assert [e.code for e in rec.events["error"]] == ["connection_failed"]
    assert changes == ["connecting", "connected", "disconnecting", "disconnected"]
    assert not open_peer_connections()


@pytest.mark.parametrize(
    ("host", "allow_loopback", "offers_loopback"),
    [
        ("127.0.0.1", None, True),  # the server is on this machine: loopback, with no flag
        ("[::ffff:127.0.0.1]", None, False),  # a server that does not look local: off by default
        ("[::ffff:127.0.0.1]", True, True),  # the option turns it on for any server
        ("127.0.0.1", False, False),  # and off for any server
    ],
)
async def test_loopback_candidates_are_offered_only_when_allowed(host, allow_loopback, offers_loopback):
    """What the posted SDP offer carries. ``[::ffff:127.0.0.1]`` reaches the same loopback listener but,
    not being a loopback address by name, stands for a remote server."""
    offers: list[str] = []

    async def calls(request: web.Request) -> web.Response:
        offers.append(await request.text())
        return web.json_response({"error": {"message": "offer recorded"}}, status=403)

    app = web.Application()
    app.router.add_post("/v1/realtime/calls", calls)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        transport = WebRTCTransport(allow_loopback=allow_loopback, connect_timeout=5)
        with pytest.raises(HandshakeError, match="offer recorded"):
            await transport.connect(url=f"http://{host}:{port}", api_key="k")
    finally:
        await runner.cleanup()
    (offer,) = offers
    candidates = [line for line in offer.splitlines() if line.startswith("a=candidate:")]
    assert any(" 127.0.0.1 " in c for c in candidates) is offers_loopback, candidates
    assert not open_peer_connections()


CALLER = """
import asyncio, sys
from rtlayer.transports.webrtc import WebRTCTransport

async def main() -> None:
    transport = WebRTCTransport()
    await transport.connect(url=sys.argv[1])
    print(transport.call_id, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_caller_killed_mid_call_is_hung_up_over_real_sockets(monkeypatch):
    """The caller's process dies without a word: the server's consent checks go unanswered, its peer
    connection closes, and the call, its session and its peer are released (consent timing shortened
    as in the test above)."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)
    async with RealtimeServer() as server:
        caller = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CALLER, server.url,
            stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            assert caller.stdout is not None
            call_id = (await asyncio.wait_for(caller.stdout.readline(), 15)).decode().strip()
            assert call_id in server.state.calls
            caller.kill()
            await caller.wait()
            for _ in range(200):  # at most 10 s
                if call_id not in server.state.calls:
                    break
                await asyncio.sleep(0.05)
        finally:
            if caller.returncode is None:
                caller.kill()
                await caller.wait()
        assert call_id not in server.state.calls
        assert not front_of(server.state).peers and not server.state.runners
    assert not open_peer_connections()
