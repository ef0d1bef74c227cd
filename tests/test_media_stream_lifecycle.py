"""A bridged call's life and its bad input: hang-ups both ways, a format the provider does not speak,
and what a provider should never send (counted, logged once, never the end of the call)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from helpers import eventually
from media_stream_helpers import SENTENCE_MS, hello_sentence, websockets_bridge

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.testing.phone import PhoneSimulator
from rtlayer.transports import WebSocketTransport

PROVIDERS = ["twilio", "telnyx", "plivo", "exotel", "vonage"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_caller_hanging_up_ends_the_model_session(provider: str, server: RealtimeServer) -> None:
    async with websockets_bridge(provider, server.ws_url) as app:
        async with PhoneSimulator(provider, app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
            assert len(server.state.runners) == 1
        await asyncio.wait_for(app.done.wait(), 5)
        await eventually(lambda: not server.state.runners)
    assert phone.closed_by == "caller"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_model_session_ending_closes_the_provider_socket(
    provider: str, server: RealtimeServer
) -> None:
    async with websockets_bridge(provider, server.ws_url) as app:
        async with PhoneSimulator(provider, app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
            for runner in list(server.state.runners.values()):
                runner.close()
            await phone.wait_closed(within=5)
            assert phone.closed_by == "app"
        await asyncio.wait_for(app.done.wait(), 5)


async def test_a_model_session_that_ends_while_the_call_starts_closes_the_call(
    server: RealtimeServer,
) -> None:
    async with websockets_bridge("twilio", server.ws_url) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            await phone.wait_for(
                lambda: server.state.runners
            )  # the model's socket is up, maybe not configured
            for runner in list(server.state.runners.values()):
                runner.close()
            await phone.wait_closed(within=5)
        await asyncio.wait_for(app.done.wait(), 5)
    assert phone.closed_by == "app"


async def test_a_session_update_never_switches_the_model_away_from_the_providers_format(
    server: RealtimeServer,
) -> None:
    async with websockets_bridge("twilio", server.ws_url) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
            transport = app.transports[0]
            # What the JS SDK's handoff does: a session.update with the default PCM formats.
            pcm = {"type": "audio/pcm", "rate": 24000}
            transport.update_session_config({"audio": {"input": {"format": pcm}, "output": {"format": pcm}}})
            transport.send_event(
                {"type": "session.update", "session": {"type": "realtime", "output_audio_format": "pcm16"}}
            )
            phone.say(hello_sentence(), 24000)
            answer = await phone.wait_for_answer_end(1, within=10)
            assert answer.played_ms >= 500
            session = transport.inner.session
            assert (
                str(session.session_output_format) == "pcmu" and str(session.session_input_format) == "pcmu"
            )
            assert transport.format_pins >= 3


async def test_bad_provider_input_is_counted_and_logged_once_per_kind_and_the_call_goes_on(
    server: RealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "rtlayer.transports.media_stream")
    media = json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": "//8="}})
    async with websockets_bridge("twilio", server.ws_url) as app:
        async with PhoneSimulator("twilio", app.url, send_opening=False) as phone:
            await phone.send_raw(media)  # media before start
            await phone.send_raw(media)
            await phone.open()
            for _ in range(3):
                await phone.send_raw(json.dumps({"event": "whatever"}))
            await phone.send_raw(json.dumps({"event": "media", "media": {"payload": "not base64!"}}))
            await phone.send_raw(json.dumps({"event": "mark", "mark": {"name": "nobody-sent-this"}}))
            await phone.send_raw(b"\x00\x01binary")
            await phone.send_raw("{not json")
            await phone.send_raw(json.dumps({"event": "dtmf", "dtmf": {"digit": "xyz"}}))
            phone.say(hello_sentence(), 24000)
            answer = await phone.wait_for_answer_end(1, within=10)
            assert answer.played_ms >= 500
        await asyncio.wait_for(app.done.wait(), 5)
    problems = app.transports[0].problems
    assert problems == {
        "media_before_start": 2,
        "unknown_event": 3,
        "bad_base64": 1,
        "unknown_mark": 1,
        "binary_frame": 1,
        "not_json": 1,
        "bad_dtmf": 1,
    }
    logged = [r.getMessage() for r in caplog.records if "counted in problems" in r.getMessage()]
    assert len(logged) == len(problems)


async def test_vonage_frames_of_the_wrong_size_are_counted_and_the_call_goes_on(
    server: RealtimeServer,
) -> None:
    async with websockets_bridge("vonage", server.ws_url) as app:
        async with PhoneSimulator("vonage", app.url) as phone:
            await phone.send_raw(b"\x00" * 100)
            phone.say(hello_sentence(), 24000)
            await phone.wait_for_answer_end(1, within=10)
    assert app.transports[0].problems == {"bad_frame_size": 1}


async def test_a_stream_that_never_starts_ends_after_the_start_timeout(server: RealtimeServer) -> None:
    async with websockets_bridge("twilio", server.ws_url, start_timeout=0.3) as app:
        async with PhoneSimulator("twilio", app.url, send_opening=False) as phone:
            await phone.wait_closed(within=5)
        await asyncio.wait_for(app.done.wait(), 5)
    assert "no start from the provider" in str(app.errors[0])
    assert not server.state.runners


class _SlowToConnect(WebSocketTransport):
    """The model's socket takes a while (a cold start, a far region): the caller talks meanwhile."""

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.6)
        await super().connect(*args, **kwargs)


async def test_what_the_caller_says_before_the_model_is_ready_is_buffered_and_answered(
    server: RealtimeServer,
) -> None:
    async with websockets_bridge("twilio", server.ws_url, model_transport=_SlowToConnect) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            phone.say(hello_sentence(), 24000)  # said while the model connects
            answer = await phone.wait_for_answer_end(1, within=10)
    assert SENTENCE_MS - 100 <= answer.played_ms <= SENTENCE_MS + 400
    assert app.transports[0].dropped_input_bytes == 0


async def test_the_buffer_before_the_model_is_ready_is_bounded_and_counts_what_it_drops(
    server: RealtimeServer,
) -> None:
    options: dict[str, Any] = {"model_transport": _SlowToConnect, "max_buffered_ms": 200}
    async with websockets_bridge("twilio", server.ws_url, **options) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
    dropped = app.transports[0].dropped_input_bytes
    assert dropped > 0 and dropped % 160 == 0  # whole 20 ms frames of mu-law, the oldest first


async def test_lost_chunks_are_filled_with_silence_from_the_providers_timestamps(
    server: RealtimeServer,
) -> None:
    # 500 ms of silence ends a turn here, so the 200 ms filled in does not end it early
    session = {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}
    async with websockets_bridge("twilio", server.ws_url, session=session) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            phone.say(hello_sentence(), 24000)
            await phone.wait_for(lambda: phone.now_ms >= 200, within=5)
            phone.lose(10)  # 200 ms of the caller's speech never arrives
            answer = await phone.wait_for_answer_end(1, within=10)
    inbound = app.transports[0].inbound
    assert inbound is not None and inbound.gap_filled_ms == 200
    # One turn, the whole sentence (the lost 200 ms came back as silence, at its place in the stream).
    assert len(phone.answers) == 1 and not answer.cleared
    assert answer.played_ms >= SENTENCE_MS


@pytest.mark.parametrize("trailing_silence_ms", [700, 0])
async def test_a_stream_that_stops_mid_speech_gets_trailing_silence_unless_switched_off(
    server: RealtimeServer, trailing_silence_ms: int
) -> None:
    options: dict[str, Any] = {"trailing_silence_ms": trailing_silence_ms}
    async with websockets_bridge("twilio", server.ws_url, **options) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            phone.say(hello_sentence()[: 24 * 2 * 500], 24000)  # 500 ms of speech...
            await phone.wait_for(lambda: phone.now_ms >= 400, within=5)
            phone.stop_media()  # ...and the provider stops sending mid-word
            if trailing_silence_ms:
                await phone.wait_for_answer_end(1, within=10)
            else:
                with pytest.raises(TimeoutError):  # the turn never ends: nothing tells the VAD it did
                    await phone.wait_answer(1, within=2)
    sent = app.transports[0].inbound
    assert sent is not None and sent.trailing_silence_sent_ms == trailing_silence_ms


async def test_without_a_url_or_key_the_bridge_starts_the_embedded_server_like_every_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shared shell's rule: no URL and no key -> the embedded server, reachable on the transport (and
    stopped with the call); ``url`` says where the bridge connected."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    seen: list[tuple[Any, Any]] = []
    async with websockets_bridge("twilio", None) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
            transport = app.transports[0]
            seen.append((transport.embedded_server, transport.url))
        await asyncio.wait_for(app.done.wait(), 5)
    ((embedded, url),) = seen
    assert embedded is not None and url == embedded.url
    assert transport.embedded_server is None  # stopped when the call ended
