"""WebSocketTransport against the embedded server, over real sockets: turns, tools, interruption, mute."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable

import pytest
from helpers import Recorder

from rtlayer.audio import PCM16_16K, PCM16_24K, PCM16_48K, AudioConverter, PlaybackTracker
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder
from rtlayer.transport import (
    AudioEvent,
    AudioInterruptedEvent,
    FunctionCallEvent,
    TransportStatus,
    TurnDoneEvent,
)
from rtlayer.transports import WebSocketTransport

pytestmark = pytest.mark.timeout(30)

LONG_TEXT = (
    "Please repeat this rather long sentence slowly so that there is plenty of audio to interrupt. " * 3
)


@pytest.fixture
async def transport(server: RealtimeServer) -> AsyncIterator[WebSocketTransport]:
    t = WebSocketTransport(url=server.ws_url)
    yield t
    await t.close()


async def test_text_turn(transport: WebSocketTransport) -> None:
    rec = Recorder(transport, ("*", "output_text_delta", "turn_started", "turn_done", "connection_change"))
    await transport.connect(
        initial_session_config={"output_modalities": ["text"], "instructions": "Be brief."}
    )
    assert transport.status is TransportStatus.CONNECTED
    transport.send_message("Hello there")
    done: TurnDoneEvent = await rec.next("turn_done")
    assert done.status == "completed"
    assert "".join(d.delta for d in rec.events["output_text_delta"]) == "Hello there"
    assert transport.session.config["instructions"] == "Be brief."
    assert rec.types()[0] == "session.created"
    await transport.close()
    statuses = [c.status.value for c in rec.events["connection_change"]]
    assert statuses == ["connecting", "connected", "disconnecting", "disconnected"]


async def test_audio_turn_in_the_apps_formats(
    server: RealtimeServer, load_wav: Callable[[str], tuple[bytes, int]]
) -> None:
    """The app speaks 16 kHz and plays 48 kHz in 20 ms frames; the session stays 24 kHz on the wire."""
    pcm24, rate = load_wav("hello_24k")
    assert rate == 24000
    pcm16k = AudioConverter(PCM16_24K, PCM16_16K).convert(pcm24)
    t = WebSocketTransport(
        url=server.ws_url, input_format=PCM16_16K, output_format=PCM16_48K, output_frame_ms=20
    )
    rec = Recorder(t, ("input_audio_buffer.speech_started", "audio", "audio_transcript_delta", "turn_done"))
    try:
        await t.connect(
            initial_session_config={"turn_detection": {"type": "server_vad", "silence_duration_ms": 600}}
        )
        for offset in range(
            0, len(pcm16k), 640
        ):  # 20 ms at 16 kHz, faster than real time (VAD uses audio time)
            await t.send_audio(pcm16k[offset : offset + 640])
        await t.send_audio(b"\x00\x00" * 16000)  # 1 s of silence ends the turn
        done = await rec.next("turn_done")
        assert done.status == "completed"
        assert rec.events["input_audio_buffer.speech_started"]
        frames: list[AudioEvent] = rec.events["audio"]
        assert frames and {len(f.data) for f in frames} == {1920}  # 20 ms at 48 kHz
        assert "".join(d.delta for d in rec.events["audio_transcript_delta"])
        received_ms = t.session.audio_received_ms(frames[0].item_id)
        assert abs(len(frames) * 20 - received_ms) <= 20
    finally:
        await t.close()


async def test_function_call_round_trip() -> None:
    rules = {
        "rules": [
            {
                "when": {"text_contains": "weather"},
                "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
            },
            {"after_function_output": "get_weather", "say": "It is sunny in Paris."},
        ]
    }
    async with RealtimeServer(responder=ScriptedResponder(rules)) as server:
        t = WebSocketTransport(url=server.ws_url)
        rec = Recorder(t, ("function_call", "turn_done", "output_text_delta", "item_update"))
        try:
            await t.connect(initial_session_config={"output_modalities": ["text"]})
            t.send_message("What is the weather like?")
            call: FunctionCallEvent = await rec.next("function_call")
            assert (call.name, call.arguments) == (
                "get_weather",
                '{"city": "Paris"}',
            ) or call.name == "get_weather"
            t.send_function_call_output(call, '{"sky": "sunny"}')
            while "".join(d.delta for d in rec.events["output_text_delta"]) != "It is sunny in Paris.":
                await rec.next("turn_done")
            outputs = [u for u in rec.events["item_update"] if u.item.get("type") == "function_call_output"]
            assert outputs and outputs[0].item["call_id"] == call.call_id
        finally:
            await t.close()


async def test_interrupt_mid_answer_truncates_at_what_was_played(server: RealtimeServer) -> None:
    tracker = PlaybackTracker()
    t = WebSocketTransport(url=server.ws_url, playback_tracker=tracker)
    rec = Recorder(t, ("audio", "audio_interrupted", "conversation.item.truncated", "turn_done"))
    try:
        await t.connect()
        t.send_message(LONG_TEXT)
        first: AudioEvent = await rec.next("audio")
        while len(rec.events["audio"]) < 10:
            await rec.next("audio")
        # The app's player has played 5 of the chunks it received, and 3.5 ms of the next.
        for event in rec.events["audio"][:5]:
            tracker.on_play_bytes(event.item_id, event.content_index, event.data)
        tracker.on_play_ms(first.item_id, 0, 3.5)
        played = tracker.played_ms(first.item_id)
        t.interrupt()
        truncated = await rec.first("conversation.item.truncated")
        assert truncated["item_id"] == first.item_id
        assert truncated["audio_end_ms"] == int(played)
        interrupted: AudioInterruptedEvent = rec.events["audio_interrupted"][0]
        assert interrupted.audio_end_ms == int(played)
        done: TurnDoneEvent = await rec.first("turn_done")
        assert done.status == "cancelled"
    finally:
        await t.close()


async def test_barge_in_after_output_audio_done_while_buffered_audio_plays(server: RealtimeServer) -> None:
    """The JS SDK forgets the item at output_audio.done; here the truncate still lands where playback is."""
    tracker = PlaybackTracker()
    t = WebSocketTransport(url=server.ws_url, playback_tracker=tracker)
    rec = Recorder(
        t, ("audio", "audio_done", "conversation.item.truncated", "turn_done", "audio_interrupted")
    )
    try:
        await t.connect()
        t.send_message("Hello, this answer is buffered by the player.")
        await rec.next("turn_done")  # the server is finished: every delta arrived, output_audio.done too
        assert rec.events["audio_done"]
        item_id = rec.events["audio"][0].item_id
        received = t.session.audio_received_ms(item_id)
        tracker.on_play_ms(item_id, 0, received / 3)  # the speaker is a third of the way through
        t.interrupt()
        truncated = await rec.first("conversation.item.truncated")
        assert truncated["audio_end_ms"] == int(received / 3)
        assert rec.events["audio_interrupted"][0].item_id == item_id
    finally:
        await t.close()


async def test_interrupt_without_tracker_uses_the_playout_clock(server: RealtimeServer) -> None:
    t = WebSocketTransport(url=server.ws_url)
    rec = Recorder(t, ("audio", "conversation.item.truncated"))
    try:
        await t.connect()
        loop = asyncio.get_running_loop()
        asked = loop.time()
        t.send_message(LONG_TEXT)
        first = await rec.next("audio")
        await asyncio.sleep(0.3)
        t.interrupt()
        interrupted = loop.time()
        truncated = await rec.first("conversation.item.truncated")
        # Played in real time from the first chunk's arrival: at least the 0.3 s slept since it arrived, at
        # most the time since the question was asked (bounds by causality, no tolerance on a clock).
        assert truncated["item_id"] == first.item_id
        assert 300 <= truncated["audio_end_ms"] <= (interrupted - asked) * 1000
        assert truncated["audio_end_ms"] <= t.session.audio_received_ms(first.item_id)
    finally:
        await t.close()


async def test_mute_sends_silence(
    server: RealtimeServer, load_wav: Callable[[str], tuple[bytes, int]]
) -> None:
    pcm, _ = load_wav("hello_24k")
    t = WebSocketTransport(url=server.ws_url)
    rec = Recorder(t, ("input_audio_buffer.speech_started", "turn_done", "input_audio_buffer.committed"))
    try:
        await t.connect(
            initial_session_config={"turn_detection": {"type": "server_vad", "silence_duration_ms": 600}}
        )
        t.mute(True)
        assert t.muted is True
        for offset in range(0, len(pcm), 960):
            await t.send_audio(pcm[offset : offset + 960])
        await t.send_audio(b"\x00\x00" * 12000)
        await asyncio.sleep(0.3)
        assert rec.events["input_audio_buffer.speech_started"] == []  # the server heard only silence
        assert t.session.muted_bytes == len(pcm) + 24000
        t.mute(False)
        for offset in range(0, len(pcm), 960):
            await t.send_audio(pcm[offset : offset + 960])
        await t.send_audio(b"\x00\x00" * 24000)
        await rec.next("turn_done")
        assert len(rec.events["input_audio_buffer.speech_started"]) == 1
    finally:
        await t.close()


async def test_raw_events_and_the_async_iterator(server: RealtimeServer) -> None:
    t = WebSocketTransport(url=server.ws_url)
    seen: list[str] = []

    async def consume() -> None:
        async for event in t.events():
            seen.append(event["type"])

    await t.connect(initial_session_config={"output_modalities": ["text"]})
    consumer = asyncio.create_task(consume())
    t.send_event(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        }
    )
    t.send_event({"type": "response.create"})
    t.send_event({"type": "response.create"})  # sequenced: sent only after the first response is done
    done = 0
    while done < 2:
        await asyncio.sleep(0.05)
        done = seen.count("response.done")
    assert "error" not in seen
    await t.close()
    await asyncio.wait_for(consumer, 2)  # the iterator ended with the transport


async def test_embedded_server_when_no_url() -> None:
    t = WebSocketTransport()
    rec = Recorder(t, ("turn_done", "audio"))
    await t.connect()
    assert t.embedded_server is not None
    t.send_message("hi")
    await rec.next("turn_done")
    assert rec.events["audio"]
    await t.close()
    assert t.embedded_server is None
    assert not [task for task in asyncio.all_tasks() if "rtlayer" in repr(task.get_coro())]
    _ = base64  # (kept for symmetry with the other transport tests)


async def test_g711_session_with_pcm_app_formats(
    server: RealtimeServer, load_wav: Callable[[str], tuple[bytes, int]]
) -> None:
    """mu-law on the wire, PCM16 16 kHz in and 24 kHz out in the app: both conversions and the G.711
    truncation arithmetic (8 bytes a millisecond) go through the real server."""
    pcm24, _ = load_wav("hello_24k")
    pcm16k = AudioConverter(PCM16_24K, PCM16_16K).convert(pcm24)
    tracker = PlaybackTracker()
    t = WebSocketTransport(
        url=server.ws_url, input_format=PCM16_16K, output_format=PCM16_24K, playback_tracker=tracker
    )
    rec = Recorder(t, ("audio", "turn_done", "conversation.item.truncated", "session.updated"))
    try:
        await t.connect(
            initial_session_config={
                "input_audio_format": "g711_ulaw",  # legacy flat names, mapped to GA
                "output_audio_format": "g711_ulaw",
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 600},
            }
        )
        updated = await rec.first("session.updated")
        assert updated["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        for offset in range(0, len(pcm16k), 640):
            await t.send_audio(pcm16k[offset : offset + 640])
        await t.send_audio(b"\x00\x00" * 16000)
        done = await rec.first("turn_done")
        assert done.status == "completed"
        audio: list[AudioEvent] = rec.events["audio"]
        item_id = audio[0].item_id
        app_ms = sum(len(a.data) for a in audio) / 48  # PCM16 24 kHz in the app
        wire_ms = t.session.audio_received_ms(item_id)  # mu-law bytes / 8
        assert wire_ms > 1000 and abs(app_ms - wire_ms) < 5
        tracker.on_play_bytes(item_id, 0, 48 * 777)  # the app played 777 ms of its 24 kHz PCM
        t.interrupt()
        truncated = await rec.first("conversation.item.truncated")
        assert truncated["audio_end_ms"] == 777
    finally:
        await t.close()


async def test_history_image_usage_and_config_changes_over_the_wire(transport: WebSocketTransport) -> None:
    """The rest of the contract against the server: messages without a response, ``add_image``,
    ``reset_history`` (``item_deleted`` + re-created items), ``update_session_config`` mid-session and
    ``usage_update`` at the end of a turn."""
    rec = Recorder(
        transport,
        ("item_update", "item_deleted", "usage_update", "turn_done", "session.updated", "output_text_delta"),
    )
    await transport.connect(initial_session_config={"output_modalities": ["text"]})
    transport.send_message("keep me", trigger_response=False)
    transport.send_message("drop me", trigger_response=False)
    pixel = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    transport.add_image(pixel, trigger_response=False)
    while len({u.item_id for u in rec.events["item_update"] if u.status == "completed"}) < 3:
        await rec.next("item_update")
    items = {u.item_id: u.item for u in rec.events["item_update"] if u.status == "completed"}
    (image_id,) = [i for i, item in items.items() if item["content"][0]["type"] == "input_image"]
    history = list(items.values())
    keep = next(i for i in history if i["content"][0].get("text") == "keep me")
    drop = next(i for i in history if i["content"][0].get("text") == "drop me")
    edited = {**keep, "content": [{"type": "input_text", "text": "kept, edited"}]}

    transport.reset_history(history, [edited, items[image_id]])
    while len(rec.events["item_deleted"]) < 2:
        await rec.next("item_deleted")
    assert {d.item_id for d in rec.events["item_deleted"]} == {keep["id"], drop["id"]}

    def texts_of_kept() -> list[str]:
        return [u.item["content"][0]["text"] for u in rec.events["item_update"] if u.item_id == keep["id"]]

    while "kept, edited" not in texts_of_kept():  # re-created with the same id and the new content
        await rec.next("item_update")

    transport.update_session_config({"instructions": "Answer in one word."})
    while rec.events["session.updated"][-1:] == [] or (
        rec.events["session.updated"][-1]["session"].get("instructions") != "Answer in one word."
    ):
        await rec.next("session.updated")
    assert transport.session.config["output_modalities"] == ["text"]  # the rest of the config stays

    transport.send_message("last one")
    done = await rec.next("turn_done")
    assert done.status == "completed"
    assert "".join(d.delta for d in rec.events["output_text_delta"]) == "last one"
    (usage,) = rec.events["usage_update"]
    assert usage == done.usage and usage.total_tokens == usage.input_tokens + usage.output_tokens > 0
