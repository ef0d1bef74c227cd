"""aiortc client <-> embedded server over loopback: real peers, real ICE/DTLS/SCTP/RTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from helpers import Recorder, ToneResponder, open_peer_connections, tone

import rtlayer_native
from rtlayer._ice import host_policy
from rtlayer._rtc_audio import PacedAudioTrack, PcmFrameQueue
from rtlayer.audio import PCM16_16K, PCMU, PlaybackTracker
from rtlayer.exceptions import InvalidAudioError, UnsupportedOperation
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder
from rtlayer.server.webrtc import front_of
from rtlayer.transport import AudioInterruptedEvent, RealtimeTransportLayer, TransportStatus
from rtlayer.transports.webrtc import WebRTCTransport

pytestmark = pytest.mark.timeout(30)

# One user turn for the whole WAV: its longest inner pause is 140 ms.
LONG_TURNS = {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}


async def test_spoken_turn_gets_an_answer_the_app_receives(server, load_wav, server_events):
    pcm, rate = load_wav("hello_24k")
    transport = WebRTCTransport()
    rec = Recorder(transport, ("*", "audio"))
    await transport.connect(url=server.url, initial_session_config=LONG_TURNS)
    assert transport.status is TransportStatus.CONNECTED
    assert transport.call_id is not None and transport.call_id.startswith("rtc_")
    call = front_of(server.state).calls[transport.call_id]

    await transport.send_audio(pcm)
    await transport.send_audio(bytes(rate * 2))  # 1 s of silence ends the turn
    await rec.wait_for(lambda: rec.count("output_audio_buffer.stopped") >= 1, within=15)
    await rec.wait_for(lambda: not transport.gate.playing, within=2)

    # The server heard the WAV: its loud part, at its level (Opus round trip, 48 kHz mono).
    assert rec.count("input_audio_buffer.speech_started") == 1
    loud_ms = sum(20 for i in range(0, len(pcm), 960) if rtlayer_native.rms_dbfs(pcm[i : i + 960]) > -50)
    assert abs(call.input.loud_ms - loud_ms) <= 200, (call.input.loud_ms, loud_ms)
    wav_rms = rtlayer_native.rms(pcm)
    heard_rms = (call.input.energy / max(1, call.input.loud_frames * 960)) ** 0.5
    assert 0.5 * wav_rms < heard_rms < 2 * wav_rms

    # The answer's audio reached the app, tagged with the response and its item, and it is not silence.
    done = next(e for e in rec.events["*"] if e["type"] == "response.done")["response"]
    item_id = done["output"][0]["id"]
    answer = [a for a in rec.events["audio"] if a.response_id == done["id"]]
    assert answer and all(a.item_id == item_id for a in answer)
    sent_ms = call.track.audio_frames_sent * 20
    assert abs(rec.audio_ms(done["id"]) - sent_ms) <= 60, (rec.audio_ms(done["id"]), sent_ms)
    assert rtlayer_native.rms_dbfs(b"".join(a.data for a in answer)) > -40
    assert all(len(a.data) == 960 for a in answer)  # 20 ms of PCM16 24 kHz each

    await transport.close()
    assert transport.status is TransportStatus.DISCONNECTED
    await rec.wait_for(lambda: not server.state.calls, within=5)
    assert not front_of(server.state).peers
    assert "output_audio_buffer.started" in server_events.types()


@pytest.mark.parametrize("realtime", [False, True], ids=["answer-generated", "answer-streaming"])
async def test_interrupt_stops_the_answer_where_the_app_was(realtime):
    responder = ToneResponder(3000, realtime=realtime)
    async with RealtimeServer(responder=responder) as server:
        transport = WebRTCTransport()
        rec = Recorder(transport, ("*", "audio", "audio_interrupted"))
        await transport.connect(url=server.url)
        transport.send_message("play me a tone")
        await rec.wait_for(lambda: rec.audio_ms() >= 400)
        transport.interrupt()
        received_at_interrupt = rec.audio_ms()
        await rec.wait_for(lambda: rec.count("output_audio_buffer.cleared") == 1)
        await rec.wait_for(lambda: rec.count("response.done") == 1)

        interrupted = rec.events["audio_interrupted"]
        assert len(interrupted) == 1 and isinstance(interrupted[0], AudioInterruptedEvent)
        assert interrupted[0].audio_end_ms == pytest.approx(received_at_interrupt, abs=1)
        assert rec.audio_ms() == received_at_interrupt  # nothing after the interruption
        # A response still streaming is cancelled; one generated already (faster than real time) is
        # "completed" and only its playback stops. Either way the server's track sends no more of it,
        # and the server truncated the item at what it had played, which is about what the app got.
        done = next(e for e in rec.events["*"] if e["type"] == "response.done")["response"]
        assert done["status"] == ("cancelled" if realtime else "completed")
        truncated = [e for e in rec.events["*"] if e["type"] == "conversation.item.truncated"]
        assert truncated and abs(truncated[0]["audio_end_ms"] - received_at_interrupt) <= 200
        call = front_of(server.state).calls[transport.call_id or ""]
        sent = call.track.audio_frames_sent
        await asyncio.sleep(0.2)
        assert call.track.audio_frames_sent == sent
        await transport.close()
    assert not open_peer_connections()


async def test_mute_sends_silence_and_unmute_speaks_again(server, load_wav):
    pcm, _ = load_wav("hello_24k")
    transport = WebRTCTransport()
    rec = Recorder(transport, ("*", "audio"))
    await transport.connect(url=server.url, initial_session_config=LONG_TURNS)
    call = front_of(server.state).calls[transport.call_id or ""]
    with pytest.raises(InvalidAudioError, match="even number of bytes"):
        await transport.send_audio(b"\x00\x00\x00")
    transport.mute(True)
    assert transport.muted is True
    await transport.send_audio(pcm)
    frames_before = call.input.frames
    await rec.wait_for(lambda: call.input.frames >= frames_before + 40)  # 800 ms of track time
    assert call.input.loud_frames == 0
    assert rec.count("input_audio_buffer.speech_started") == 0

    transport.mute(False)
    await transport.send_audio(pcm)
    await rec.wait_for(lambda: rec.count("input_audio_buffer.speech_started") == 1)
    assert call.input.loud_frames > 0
    await transport.close()


async def test_sideband_socket_and_hangup_by_call_id():
    async with RealtimeServer(responder=ToneResponder(300)) as server:
        transport = WebRTCTransport()
        rec = Recorder(transport, ("*", "audio", "error"))
        changes: list[TransportStatus] = []
        transport.on("connection_change", lambda e: changes.append(e.status))
        await transport.connect(url=server.url)
        call_id = transport.call_id

        async with websockets.connect(f"{server.ws_url}?call_id={call_id}", open_timeout=5) as sideband:
            transport.send_message("hello from the data channel")
            seen: list[str] = []
            while "response.done" not in seen:
                seen.append(json.loads(await sideband.recv())["type"])
            assert "conversation.item.added" in seen and "response.created" in seen
            # The sideband can drive the call too: its event reaches the same session.
            await sideband.send(json.dumps({"type": "response.create"}))
            await rec.wait_for(lambda: rec.count("response.done") == 2)

        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            response = await http.post(f"/v1/realtime/calls/{call_id}/hangup")
        assert response.status_code == 200
        await rec.wait_for(lambda: transport.status is TransportStatus.DISCONNECTED, within=10)
        assert changes[-1] is TransportStatus.DISCONNECTED
        assert rec.events["error"] == []  # a hangup is an orderly end, unlike a lost path
        assert call_id not in server.state.calls and not front_of(server.state).peers
        await transport.close()
        assert not open_peer_connections()


async def test_multipart_offer_with_an_ephemeral_key():
    async with RealtimeServer(api_key="sk-real") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            minted = await http.post(
                "/v1/realtime/client_secrets",
                headers={"Authorization": "Bearer sk-real"},
                json={
                    "session": {
                        "type": "realtime",
                        "instructions": "from the key",
                        "audio": {"output": {"speed": 1.2}},
                    }
                },
            )
        key = minted.json()["value"]
        transport = WebRTCTransport(signalling="multipart", api_key=key)
        rec = Recorder(transport, ("*", "audio"))
        await transport.connect(url=server.url + "/v1", initial_session_config={"voice": "cedar"})
        created = next(e for e in rec.events["*"] if e["type"] == "session.created")["session"]
        assert created["instructions"] == "from the key"
        assert created["audio"]["output"]["voice"] == "cedar"  # the request's session on top of the key's
        assert created["audio"]["output"]["speed"] == 1.2
        await transport.close()


class ToneTrack(MediaStreamTrack):
    """The app's own microphone track: a 440 Hz tone, 20 ms frames at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue = PcmFrameQueue(24000)
        self.queue.push(tone(10_000))
        self.inner = PacedAudioTrack(self.queue.pull)

    async def recv(self) -> Any:
        return await self.inner.recv()


async def test_the_apps_own_track_is_the_microphone(server):
    track = ToneTrack()
    transport = WebRTCTransport(audio_track=track)
    rec = Recorder(transport, ("*", "audio"))
    await transport.connect(url=server.url)
    assert transport.muted is None  # the app owns its track
    with pytest.raises(UnsupportedOperation):
        await transport.send_audio(b"\x00\x00")
    call = front_of(server.state).calls[transport.call_id or ""]
    await rec.wait_for(lambda: call.input.loud_frames >= 10)
    await rec.wait_for(lambda: rec.count("input_audio_buffer.speech_started") == 1)
    await transport.close()
    track.stop()


async def test_the_official_python_client_places_a_call(server):
    """openai-python's ``client.realtime.calls.create`` (multipart) answered by the server's peer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(PacedAudioTrack(lambda _n: None))
    channel = pc.createDataChannel("oai-events")
    first: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    channel.on("message", lambda m: first.done() or first.set_result(m))
    with host_policy("loopback_only"):
        await pc.setLocalDescription(await pc.createOffer())
    client = openai.AsyncOpenAI(api_key="sk-any", base_url=server.url + "/v1")
    answer = await client.realtime.calls.create(
        sdp=pc.localDescription.sdp, session={"type": "realtime", "instructions": "be brief"}
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    created = json.loads(await asyncio.wait_for(first, 5))
    assert created["type"] == "session.created" and created["session"]["instructions"] == "be brief"
    await pc.close()
    await client.close()


async def test_audio_in_the_apps_format_and_interrupt_at_what_its_player_played():
    async with RealtimeServer(responder=ToneResponder(3000)) as server:
        tracker = PlaybackTracker()
        transport = WebRTCTransport(output_format=PCM16_16K, playback_tracker=tracker)
        rec = Recorder(transport, ("*", "audio", "audio_interrupted"))
        await transport.connect(url=server.url)
        transport.send_message("play")
        await rec.wait_for(lambda: len(rec.events["audio"]) >= 15)
        assert {len(a.data) for a in rec.events["audio"]} == {640}  # 20 ms of PCM16 16 kHz
        # The app's player is behind what arrived: it has played 120 ms (6 frames).
        for event in rec.events["audio"][:6]:
            tracker.on_play_bytes(event.item_id, 0, event.data)
        transport.interrupt()
        await rec.wait_for(lambda: rec.count("output_audio_buffer.cleared") == 1)
        assert rec.events["audio_interrupted"][0].audio_end_ms == 120
        # The server cut the item at what it had streamed; the transport's truncate brings it back to 120 ms.
        await rec.wait_for(lambda: 120 in _cuts(rec))
        assert min(_cuts(rec)) == 120
        await transport.close()


def _cuts(rec: Recorder) -> list[int]:
    return [e["audio_end_ms"] for e in rec.events["*"] if e["type"] == "conversation.item.truncated"]


async def test_g711_microphone_audio_is_heard(server, load_wav):
    pcm, rate = load_wav("hello_24k")
    ulaw = rtlayer_native.ulaw_encode(rtlayer_native.Resampler(rate, 8000).process(pcm))
    transport = WebRTCTransport(input_format=PCMU)
    rec = Recorder(transport, ("*", "audio"))
    await transport.connect(url=server.url)
    await transport.send_audio(ulaw)
    await rec.wait_for(lambda: rec.count("input_audio_buffer.speech_started") == 1)
    call = front_of(server.state).calls[transport.call_id or ""]
    await rec.wait_for(lambda: call.input.loud_frames > 20)
    await transport.close()


async def test_a_tool_call_round_trip_over_the_data_channel():
    rules = {
        "rules": [
            {
                "when": {"text_contains": "weather"},
                "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
            },
            {"after_function_output": "get_weather", "say": "Sunny."},
        ]
    }
    async with RealtimeServer(responder=ScriptedResponder(rules)) as server:
        transport = WebRTCTransport()
        assert isinstance(transport, RealtimeTransportLayer)
        rec = Recorder(transport, ("*", "audio", "function_call", "audio_transcript_delta"))
        transport.on(
            "function_call", lambda call: transport.send_function_call_output(call, '{"sky": "clear"}')
        )
        await transport.connect(url=server.url)
        transport.send_message("what is the weather?")
        await rec.wait_for(lambda: rec.count("response.done") == 2)
        call = rec.events["function_call"][0]
        assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
        assert "".join(d.delta for d in rec.events["audio_transcript_delta"]).strip() == "Sunny."
        await transport.close()


async def test_the_talk_page_is_served_at_the_root(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        page = await http.get("/")
        script = await http.get("/static/talk.js")
        missing = await http.get("/static/nope.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/talk.js">' in page.text
    assert script.status_code == 200 and "/v1/realtime/calls" in script.text and "oai-events" in script.text
    assert missing.status_code == 404 and "error" in missing.json()


async def test_no_url_and_no_key_starts_the_embedded_server_for_the_call():
    transport = WebRTCTransport()
    rec = Recorder(transport, ("*", "audio"))
    await transport.connect()
    server = transport.embedded_server
    assert isinstance(server, RealtimeServer)
    assert transport.call_id in server.state.calls
    transport.send_message("hello without a server of my own")
    await rec.wait_for(lambda: rec.count("response.done") == 1, within=10)
    await transport.close()
    assert transport.embedded_server is None
    with pytest.raises(httpx.ConnectError):  # stopped with the call
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(server.url + "/healthz")
