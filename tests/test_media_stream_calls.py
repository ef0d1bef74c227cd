"""Phone calls over every provider's media stream: the provider simulator against the bridge, real sockets.

The embedded server is the model (its echo responder answers a spoken turn with the caller's own audio),
``MediaStreamTransport`` bridges it on a `websockets` server, and ``PhoneSimulator`` is the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from helpers import EmittedEvents, eventually
from media_stream_helpers import SENTENCE_MS, hello_sentence, websockets_bridge

import rtlayer_native
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.testing.phone import CallInfo, PhoneSimulator, provider_side

PROVIDERS = ["twilio", "telnyx", "plivo", "exotel", "vonage"]


@pytest.mark.parametrize("when", ["after_audio_done", "while_audio_streams"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_spoken_turn_is_answered_and_heard_then_a_barge_in_stops_it_and_truncates_at_what_played(
    provider: str, when: str, server_events: EmittedEvents
) -> None:
    speech = hello_sentence()
    # The model's answer arrives at once (barge-in after response.output_audio.done) or at real time.
    pacing = 0.0 if when == "after_audio_done" else 1.0
    async with (
        RealtimeServer(audio_pacing=pacing) as server,
        websockets_bridge(provider, server.ws_url) as app,
    ):
        async with PhoneSimulator(provider, app.url, custom={"customer": "42"}) as phone:
            phone.say(speech, 24000)
            answer = await phone.wait_for_answer_end(1, within=10)
            # Heard: about as long as what was said (the echo), and not silence.
            assert SENTENCE_MS - 100 <= answer.played_ms <= SENTENCE_MS + 400
            assert rtlayer_native.rms_dbfs(bytes(answer.pcm16)) > -40

            phone.press("7")
            phone.say(speech, 24000)
            # Real-time audio: talk over it early, before the model has sent all of it.
            second = await phone.wait_answer(2, min_played_ms=200 if pacing == 0 else 40, within=10)
            phone.say(speech, 24000)  # the caller talks over the answer
            await phone.wait_for(lambda: phone.clears, within=5)
            clear = phone.clears[0]
            truncated = await _truncated(server_events)
            assert truncated["audio_end_ms"] == clear.played_ms
            # The second response had sent all its audio (completed) or was cut short by the barge-in.
            await phone.wait_for(lambda: len(server_events.of_type("response.done")) >= 2, within=3)
            status = server_events.of_type("response.done")[1]["response"]["status"]
            assert status == ("completed" if when == "after_audio_done" else "cancelled")
            assert second.cleared and clear.discarded_ms > 0, phone.format_timeline()
            # Nothing of the cancelled answer plays after the clear: the next audio is the next answer.
            await phone.wait_for(lambda: phone.now_ms > clear.at_ms + 300, within=2)
            assert len(phone.answers) == 2 or phone.answers[2].started_ms >= clear.at_ms + 300
        await asyncio.wait_for(app.done.wait(), 5)

    transport = app.transports[0]
    assert app.first_model_event_had_call == [True]
    assert transport.call is not None and transport.call.custom_parameters["customer"] == "42"
    assert app.dtmf == ["7"]
    assert transport.interruptions == 1
    assert phone.problems == []
    # Paced: the provider never held more than the bridge's cap (300 ms) ahead of what it played.
    assert 0 < phone.max_queued_ms <= 300
    assert not transport.problems
    assert app.errors == []


async def test_over_webrtc_to_the_model_a_barge_in_truncates_at_what_the_caller_heard(
    server_events: EmittedEvents,
) -> None:
    """The model reached over WebRTC (``rtlayer bridge --transport webrtc``): its audio arrives at real time
    on an RTP track and the server cuts an interrupted item at what it streamed; the caller, behind the
    provider's buffer, heard less, and the bridge's truncate says how much."""
    from rtlayer.transports.webrtc import WebRTCTransport

    speech = hello_sentence()
    async with (
        RealtimeServer() as server,
        websockets_bridge("twilio", server.ws_url, model_transport=WebRTCTransport) as app,
    ):
        async with PhoneSimulator("twilio", app.url) as phone:
            phone.say(speech, 24000)
            answer = await phone.wait_for_answer_end(1, within=10)
            assert SENTENCE_MS - 100 <= answer.played_ms <= SENTENCE_MS + 400
            assert rtlayer_native.rms_dbfs(bytes(answer.pcm16)) > -40
            phone.say(speech, 24000)
            second = await phone.wait_answer(2, min_played_ms=200, within=10)
            phone.say(speech, 24000)  # the caller talks over the answer
            await phone.wait_for(lambda: phone.clears, within=5)
            clear = phone.clears[0]
            await eventually(lambda: len(server_events.of_type("response.done")) >= 2, within=3)
            item_id = server_events.of_type("response.done")[1]["response"]["output"][0]["id"]

            def cuts() -> list[int]:
                return [
                    e["audio_end_ms"]
                    for e in server_events.of_type("conversation.item.truncated")
                    if e["item_id"] == item_id
                ]

            await eventually(lambda: clear.played_ms in cuts(), within=3)
            assert min(cuts()) == clear.played_ms, cuts()  # the server's own cut, if any, was later
            assert second.cleared and clear.discarded_ms > 0, phone.format_timeline()
        await asyncio.wait_for(app.done.wait(), 5)
    transport = app.transports[0]
    assert transport.interruptions == 1 and not transport.problems and phone.problems == []
    assert app.errors == []


async def _truncated(events: EmittedEvents) -> dict[str, Any]:
    await eventually(lambda: events.of_type("conversation.item.truncated"), within=3)
    return events.of_type("conversation.item.truncated")[0]


async def test_a_provider_that_echoes_no_mark_gets_the_answer_at_real_time_up_to_the_cap() -> None:
    # The model sends its whole answer at once, and no acknowledgement comes: only the real-time schedule (the
    # pacer's timer) releases frames: the lead at once, then one per 20 ms until the provider holds
    # max_ahead_ms; echoing the marks releases the rest.
    from websockets.asyncio.client import connect

    async with (
        RealtimeServer(audio_pacing=0) as server,
        websockets_bridge("twilio", server.ws_url, lead_ms=80, max_ahead_ms=300) as app,
    ):
        async with connect(app.url, compression=None) as provider:
            for frame in provider_side("twilio").opening(CallInfo()):
                await provider.send(frame)
            await eventually(lambda: app.transports and app.transports[0].status.value == "connected")
            app.transports[0].send_event({"type": "response.create"})  # the echo responder's greeting
            loop = asyncio.get_running_loop()
            media: list[float] = []
            marks: list[str] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.5):
                    while True:
                        event = json.loads(await provider.recv())
                        if event["event"] == "media":
                            media.append(loop.time())
                        elif event["event"] == "mark":
                            marks.append(event["mark"]["name"])
            assert len(media) == 15, media  # 300 ms held, nothing acknowledged
            assert media[-1] - media[0] >= 0.18  # frames 5-15 left one per 20 ms, not at once
            for name in marks:
                await provider.send(json.dumps({"event": "mark", "streamSid": CallInfo().stream_id,
                                                "mark": {"name": name}}))  # fmt: skip
            async with asyncio.timeout(5):
                while len(media) < 30:
                    if json.loads(await provider.recv())["event"] == "media":
                        media.append(loop.time())
