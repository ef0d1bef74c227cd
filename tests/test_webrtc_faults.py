"""Fault injection: a WebRTC call (aiortc client, embedded server) with 5 % loss and 40 ms +- 20 ms of
jitter on every UDP datagram keeps its audio flowing both ways, ends normally, and counts the loss.

This kernel may lack ``sch_netem`` (see ``impairment.netem_available``), so the impairment is made
in userspace at the sockets themselves: the sending side of every ICE socket of this process (the
client's and the server's) goes through :class:`~impairment.Impairment`, which treats each datagram
once, as netem on the loopback's egress would: STUN, DTLS, SCTP and RTP alike.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aioice.ice import StunProtocol
from helpers import Recorder
from impairment import ImpairedTransport, Impairment

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.webrtc import front_of
from rtlayer.transport import TransportStatus
from rtlayer.transports.webrtc import WebRTCTransport

# Exclusive: the userspace impairment delays each datagram on this process's timers, so a neighbouring test's
# CPU would add its own lag to the modelled 40 +- 20 ms and hold more packets in flight when the call ends (with
# a busy loop on one core: 7 of the caller's last packets instead of at most 3).
pytestmark = [pytest.mark.timeout(30), pytest.mark.exclusive]
LONG_TURNS = {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}


@pytest.fixture
def impairment(monkeypatch: pytest.MonkeyPatch) -> Impairment:
    """Every ICE socket opened during the test sends through one impairment."""
    impaired = Impairment()
    made = StunProtocol.connection_made

    def connection_made(self: StunProtocol, transport: asyncio.BaseTransport) -> None:
        made(self, transport)
        self.transport = ImpairedTransport(self.transport, impaired)  # type: ignore[assignment]

    monkeypatch.setattr(StunProtocol, "connection_made", connection_made)
    return impaired


async def _inbound_lost(pc: Any) -> int:
    report = await pc.getStats()
    return sum(s.packetsLost for s in report.values() if s.type == "inbound-rtp")


async def test_a_webrtc_call_through_a_lossy_jittery_path_keeps_its_audio_and_ends_normally(
    server: RealtimeServer, load_wav: Any, impairment: Impairment
) -> None:
    pcm, rate = load_wav("hello_24k")
    transport = WebRTCTransport()
    rec = Recorder(transport, ("*", "audio"))
    await transport.connect(url=server.url, initial_session_config=LONG_TURNS)
    assert transport.status is TransportStatus.CONNECTED
    await transport.send_audio(pcm)
    await transport.send_audio(bytes(rate * 2))  # 1 s of silence ends the turn
    await rec.wait_for(lambda: rec.count("output_audio_buffer.stopped") >= 1, within=20)
    # the caller was heard, and the answer came back as audio
    assert rec.count("input_audio_buffer.speech_started") >= 1
    assert rec.audio_ms() > 500, rec.audio_ms()
    # the path lost packets, and the client's receiver counted the answer's losses
    assert transport.peer is not None and transport.peer.pc is not None
    assert sum(impairment.dropped.values()) >= 10, impairment.dropped
    assert await _inbound_lost(transport.peer.pc) >= 1
    # The goodbye is one unacknowledged datagram by the protocols' design (DTLS close_notify, SCTP
    # ABORT): lost, it leaves the server to find out by ICE consent expiry, 30 s later. That is WebRTC,
    # not rtlayer; the path is healed for the goodbye so that the test sees the orderly end.
    impairment.active = False
    await transport.close()
    assert transport.status.value == "disconnected"
    front = front_of(server.state)
    assert front is not None
    await rec.wait_for(lambda: not front.calls and not front.peers, within=5)  # the server hung up too
