"""``openai-agents`` (``RealtimeRunner``) over rtlayer transports through ``RtlayerRealtimeModel``.

Real sockets against the embedded server: the WebSocket transport, and the WebRTC transport (which the
Agents Python SDK cannot do natively) on loopback. Every server event is validated by the conftest fixture;
each test also fails on the SDK's "Failed to validate" log, and on any ``error`` session event.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from agents import GuardrailFunctionOutput, function_tool, output_guardrail
from agents.realtime import (
    RealtimeAgent,
    RealtimePlaybackTracker,
    RealtimeRunner,
    RealtimeSession,
    RealtimeSessionEvent,
)
from agents.realtime.config import RealtimeSessionModelSettings
from agents.realtime.model import RealtimeModelListener
from agents.realtime.model_events import RealtimeModelEvent, RealtimeModelExceptionEvent
from agents.realtime.model_inputs import RealtimeModelSendRawMessage, RealtimeModelSendUserInput
from helpers import EmittedEvents, chunks, eventually, load_wav, silence

from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
from rtlayer.server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder
from rtlayer.transports import FetchUpgradeTransport, WebRTCTransport, WebSocketTransport

pytestmark = pytest.mark.timeout(40)

# hello_24k.wav has a 250 ms pause between its sentences: one user turn needs a longer silence.
ONE_TURN: RealtimeSessionModelSettings = {
    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}
}


@pytest.fixture(autouse=True)
def no_validation_failures(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.ERROR, logger="openai.agents")
    yield
    failures = [r.getMessage() for r in caplog.records if "Failed to validate" in r.getMessage()]
    assert not failures, failures


def echo_agent() -> RealtimeAgent[Any]:
    return RealtimeAgent(name="echo", instructions="Repeat the user.")


async def start(
    server: RealtimeServer,
    agent: RealtimeAgent[Any],
    model: RtlayerRealtimeModel | None = None,
    settings: RealtimeSessionModelSettings | None = None,
) -> RealtimeSession:
    """A session of ``agent`` over ``model`` (default: the WebSocket transport) on ``server``."""
    model = model or RtlayerRealtimeModel()
    webrtc = isinstance(model.transport, WebRTCTransport)
    url = server.url if webrtc else server.ws_url + "?model=gpt-realtime"
    runner = RealtimeRunner(agent, model=model)
    return await runner.run(
        model_config={"url": url, "api_key": "x", "initial_model_settings": settings or {}}
    )


async def events_until(
    session: RealtimeSession, done: str, *, limit: float = 15.0, count: int = 1
) -> list[RealtimeSessionEvent]:
    """Session events up to the ``count``-th of type ``done``; any ``error`` event fails the test."""
    seen: list[RealtimeSessionEvent] = []
    async with asyncio.timeout(limit):
        async for event in session:
            seen.append(event)
            assert event.type != "error", event
            if event.type == done:
                count -= 1
                if count == 0:
                    return seen
    raise AssertionError(f"session ended before {done}")


def raw_type(event: RealtimeSessionEvent) -> str | None:
    """The server event type under a ``raw_model_event`` that carries one."""
    if event.type == "raw_model_event" and event.data.type == "raw_server_event":
        return str(event.data.data.get("type"))
    return None


async def until_played_out(session: RealtimeSession, *, limit: float = 15.0) -> list[RealtimeSessionEvent]:
    """WebRTC: the answer is paced out on the track after its ``response.done`` (``agent_end``); its audio
    reaches the agent until the server's ``output_audio_buffer.stopped``."""
    seen: list[RealtimeSessionEvent] = []
    async with asyncio.timeout(limit):
        async for event in session:
            seen.append(event)
            assert event.type != "error", event
            if raw_type(event) == "output_audio_buffer.stopped":
                return seen
    raise AssertionError("session ended before output_audio_buffer.stopped")


def assistant_texts(session: RealtimeSession) -> list[str]:
    """Transcripts/texts of the assistant messages in the session's history (the SDK's own view)."""
    texts = []
    for item in session._history:
        if item.type == "message" and item.role == "assistant":
            for part in item.content:
                text = getattr(part, "transcript", None) or getattr(part, "text", None)
                if text:
                    texts.append(text)
    return texts


def audio_of(events: list[RealtimeSessionEvent]) -> bytes:
    return b"".join(e.audio.data for e in events if e.type == "audio")


async def test_a_text_message_is_answered_and_the_agent_config_reaches_the_server(
    server: RealtimeServer, server_events: EmittedEvents
) -> None:
    async with await start(server, echo_agent(), settings={"voice": "verse"}) as session:
        await session.send_message("good morning")
        events = await events_until(session, "agent_end")
        await asyncio.sleep(0.05)  # let history catch up with the final transcript
        assert any("good morning" in t for t in assistant_texts(session))
    assert len(audio_of(events)) > 0
    updated = server_events.of_type("session.updated")[0]["session"]
    assert updated["instructions"] == "Repeat the user."
    assert updated["audio"]["output"]["voice"] == "verse"
    # What the SDK itself sends by default (its own builder made the config).
    assert updated["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    assert updated["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"


async def test_an_audio_turn_is_answered_with_audio(
    server: RealtimeServer, server_events: EmittedEvents
) -> None:
    pcm, _ = load_wav("hello_24k")
    async with await start(server, echo_agent(), settings=ONE_TURN) as session:
        for chunk in chunks(pcm + silence(800), chunk_ms=20):
            await session.send_audio(chunk)
        events = await events_until(session, "agent_end")
        await asyncio.sleep(0.05)
        history = list(session._history)
    assert len(server_events.of_type("input_audio_buffer.speech_stopped")) == 1
    assert len(audio_of(events)) / 48 > 2500  # the echo of the ~3 s utterance, PCM16 24 kHz
    assert any(e.type == "audio_end" for e in events)
    # The server's input transcription reached the SDK's history (the echo responder describes the audio).
    user = [i for i in history if i.type == "message" and i.role == "user"]
    assert [p.transcript for p in user[0].content if p.type == "input_audio"] == ["[speech 3.4 s]"]


async def test_the_user_barging_in_stops_the_answer(server_events: EmittedEvents) -> None:
    pcm, _ = load_wav("hello_24k")
    async with RealtimeServer(audio_pacing=1.0) as server:  # the answer streams in real time
        async with await start(server, echo_agent(), settings=ONE_TURN) as session:
            await session.send_message("a sentence long enough to be talked over while it is being spoken")
            seen: list[RealtimeSessionEvent] = []
            async with asyncio.timeout(15):
                async for event in session:
                    seen.append(event)
                    assert event.type != "error", event
                    if event.type == "audio" and [e.type for e in seen].count("audio") == 3:
                        for chunk in chunks(pcm + silence(800), chunk_ms=20):
                            await session.send_audio(chunk)  # the user speaks over the answer
                    if [e.type for e in seen].count("agent_end") == 2:
                        break
    assert "audio_interrupted" in [e.type for e in seen]
    truncated = server_events.of_type("conversation.item.truncated")
    assert len(truncated) == 1 and not server_events.of_type("error")
    # The server's turn detection cancelled the answer (interrupt_response), then answered the user.
    assert [d["response"]["status"] for d in server_events.of_type("response.done")] == [
        "cancelled",
        "completed",
    ]


async def test_a_function_tool_is_called_and_its_output_answered(server_events: EmittedEvents) -> None:
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    rules = {
        "rules": [
            {
                "when": {"text_contains": "weather"},
                "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
            },
            {"after_function_output": "get_weather", "say": "It is sunny in Paris today."},
        ]
    }
    agent: RealtimeAgent[Any] = RealtimeAgent(name="weather", instructions="Use tools.", tools=[get_weather])
    async with RealtimeServer(responder=ScriptedResponder(rules)) as server:
        async with await start(server, agent) as session:
            await session.send_message("What is the weather like?")
            events = await events_until(session, "agent_end", count=2)
            await asyncio.sleep(0.05)
            texts = assistant_texts(session)
            history = list(session._history)
    assert calls == ["Paris"]
    tool_end = next(e for e in events if e.type == "tool_end")
    assert tool_end.type == "tool_end" and tool_end.output == "sunny in Paris"
    assert any("sunny in Paris today" in t for t in texts)
    outputs = [
        e["item"]
        for e in server_events.of_type("conversation.item.added")
        if e["item"]["type"] == "function_call_output"
    ]
    assert outputs and outputs[0]["output"] == "sunny in Paris"
    tool_items = [(i.status, i.output) for i in history if i.type == "function_call"]
    assert tool_items == [("completed", "sunny in Paris")]


async def test_interrupt_during_an_answer_ends_in_an_accepted_truncate(server_events: EmittedEvents) -> None:
    # Real-time pacing: the answer is still arriving when the app interrupts.
    async with RealtimeServer(audio_pacing=1.0) as server:
        async with await start(server, echo_agent()) as session:
            await session.send_message(
                "this is a fairly long sentence so that the spoken answer takes a while"
            )
            seen_audio = 0
            interrupted = False
            async with asyncio.timeout(10):
                async for event in session:
                    assert event.type != "error", event
                    if event.type == "audio":
                        seen_audio += 1
                        if seen_audio == 3:
                            await session.interrupt()
                    elif event.type == "audio_interrupted":
                        interrupted = True
                    elif event.type == "agent_end":
                        break
            await asyncio.sleep(0.3)
    assert interrupted
    truncated = server_events.of_type("conversation.item.truncated")
    assert len(truncated) == 1
    assert not server_events.of_type("error")  # the truncate was accepted
    done = server_events.of_type("response.done")
    assert [d["response"]["status"] for d in done] == ["cancelled"]  # interrupt() also stops the answer
    delivered = [
        e
        for e in server_events.of_type("response.output_audio.delta")
        if e["item_id"] == truncated[0]["item_id"]
    ]
    delivered_ms = sum(len(e["delta"]) * 3 // 4 for e in delivered) / 48
    assert 0 <= truncated[0]["audio_end_ms"] < delivered_ms
    # Like the SDK, the truncated item is fetched again so that history shows what was heard.
    assert server_events.of_type("conversation.item.retrieved")


async def test_the_sdk_playback_tracker_decides_where_to_truncate(server_events: EmittedEvents) -> None:
    tracker = RealtimePlaybackTracker()
    async with RealtimeServer(audio_pacing=1.0) as server:
        model = RtlayerRealtimeModel()
        runner = RealtimeRunner(echo_agent(), model=model)
        config = {"url": server.ws_url, "api_key": "x", "playback_tracker": tracker}
        async with await runner.run(model_config=config) as session:  # type: ignore[arg-type]
            await session.send_message("a sentence long enough to be interrupted while it plays")
            async with asyncio.timeout(10):
                async for event in session:
                    assert event.type != "error", event
                    if event.type == "audio":
                        tracker.on_play_ms(
                            event.item_id, event.content_index, 37.0
                        )  # the app's player (capped at what arrived)
                        await session.interrupt()
                        break
            await asyncio.sleep(0.3)
    truncated = server_events.of_type("conversation.item.truncated")
    assert [t["audio_end_ms"] for t in truncated] == [37]
    assert tracker.get_state()["current_item_id"] is None  # told about the interruption


async def test_a_server_error_is_a_session_error_and_the_session_goes_on(server: RealtimeServer) -> None:
    async with await start(server, echo_agent()) as session:
        await session.model.send_event(
            _raw({"type": "conversation.item.delete", "other_data": {"item_id": "item_missing"}})
        )
        errors = []
        async with asyncio.timeout(5):
            async for event in session:
                if event.type == "error":
                    errors.append(event.error)
                    break
        assert errors[0].type == "invalid_request_error" and "item_missing" in errors[0].message
        await session.send_message("still there?")
        await events_until(session, "agent_end")


def _raw(message: dict[str, Any]) -> Any:
    return RealtimeModelSendRawMessage(message=message)  # type: ignore[arg-type]


async def test_text_and_audio_turns_over_webrtc(server_events: EmittedEvents) -> None:
    """The Agents SDK over a WebRTC call: what it cannot do natively in Python."""
    pcm, _ = load_wav("hello_24k")
    rules = {
        "rules": [
            {"when": {"text_contains": "morning"}, "say": "Good morning to you."},
            {"when": {"audio": True}, "say": "I heard you."},
        ]
    }
    async with RealtimeServer(responder=ScriptedResponder(rules)) as server:
        model = RtlayerRealtimeModel(transport=WebRTCTransport())
        async with await start(server, echo_agent(), model, ONE_TURN) as session:
            await session.send_message("good morning")
            text_turn = await until_played_out(session)
            for chunk in chunks(pcm + silence(1000), chunk_ms=100):
                await session.send_audio(chunk)  # queued on the paced microphone track
            audio_turn = await until_played_out(session, limit=20)
            await asyncio.sleep(0.05)
            texts = assistant_texts(session)
            call_id = model.transport.call_id  # type: ignore[attr-defined]
    assert call_id is not None and call_id.startswith("rtc_")
    assert "Good morning to you." in texts and "I heard you." in texts
    # Both answers reached the agent as audio (20 ms frames off the WebRTC track, PCM16 24 kHz).
    assert len(audio_of(text_turn)) / 48 > 300 and len(audio_of(audio_turn)) / 48 > 300
    assert [e.type for e in text_turn + audio_turn].count("agent_end") == 2
    assert len(server_events.of_type("input_audio_buffer.speech_stopped")) == 1
    assert server_events.of_type("output_audio_buffer.started")


async def test_one_model_runs_one_session_after_another(server: RealtimeServer) -> None:
    model = RtlayerRealtimeModel()
    for word in ("first", "second"):
        async with await start(server, echo_agent(), model) as session:
            await session.send_message(f"the {word} session")
            await events_until(session, "agent_end")
            await asyncio.sleep(0.05)
            assert any(f"the {word} session" in t for t in assistant_texts(session))
            # A new server session each time: the history holds this session's turn only.
            assert len([i for i in session._history if i.type == "message"]) == 2


async def test_a_server_going_away_ends_the_session_stream() -> None:
    server = RealtimeServer()
    await server.start()
    try:
        model = RtlayerRealtimeModel(transport=WebSocketTransport(reconnect=False))
        session = await start(server, echo_agent(), model)
        async with session:
            await server.close()
            seen: list[RealtimeSessionEvent] = []
            async with asyncio.timeout(5):
                async for event in session:  # ends: the model reported disconnected + end_of_stream
                    seen.append(event)
            statuses = [
                e.data.status
                for e in seen
                if e.type == "raw_model_event" and e.data.type == "connection_status"
            ]
            assert statuses[-1:] == ["disconnected"]
    finally:
        await server.close()


async def test_over_the_fetch_upgrade_transport(server: RealtimeServer) -> None:
    model = RtlayerRealtimeModel(transport=FetchUpgradeTransport(trust_env=False))
    async with await start(server, echo_agent(), model) as session:
        await session.send_message("through an upgraded HTTP request")
        events = await events_until(session, "agent_end")
        await asyncio.sleep(0.05)
        assert any("through an upgraded HTTP request" in t for t in assistant_texts(session))
    assert audio_of(events)


async def test_an_output_guardrail_stops_the_answer_and_tells_the_model(server_events: EmittedEvents) -> None:
    @output_guardrail
    def no_secrets(context: Any, agent: Any, output: str) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="secret" in output)

    agent: RealtimeAgent[Any] = RealtimeAgent(
        name="echo", instructions="Repeat the user.", output_guardrails=[no_secrets]
    )
    async with RealtimeServer(audio_pacing=1.0) as server:  # the answer is still streaming when it trips
        runner = RealtimeRunner(
            agent, model=RtlayerRealtimeModel(), config={"guardrails_settings": {"debounce_text_length": 10}}
        )
        async with await runner.run(model_config={"url": server.ws_url, "api_key": "x"}) as session:
            await session.send_message("the secret word is swordfish and it must never be said aloud")
            events = await events_until(session, "guardrail_tripped")
            await events_until(session, "agent_end", count=2)  # the cancelled answer, then the feedback's
    assert not any(e.type == "error" for e in events)
    statuses = [d["response"]["status"] for d in server_events.of_type("response.done")]
    assert statuses[0] == "cancelled"
    user_texts = [
        part.get("text")
        for e in server_events.of_type("conversation.item.added")
        if e["item"].get("role") == "user"
        for part in e["item"]["content"]
    ]
    assert "guardrail triggered: no_secrets" in user_texts


async def test_g711_formats_from_the_agent_settings_reach_the_transport(
    server: RealtimeServer, server_events: EmittedEvents
) -> None:
    settings: RealtimeSessionModelSettings = {
        "input_audio_format": "g711_ulaw",
        "output_audio_format": "g711_ulaw",
    }
    async with await start(server, echo_agent(), settings=settings) as session:
        await session.send_message("spoken in mu-law")
        events = await events_until(session, "agent_end")
    output = server_events.of_type("session.updated")[0]["session"]["audio"]["output"]
    assert output["format"] == {"type": "audio/pcmu"}
    # The agent gets the answer as the server sent it: 8 bytes a millisecond.
    sent = b"".join(
        base64.b64decode(e["delta"]) for e in server_events.of_type("response.output_audio.delta")
    )
    assert sent and audio_of(events) == sent


class Failing(RealtimeModelListener):
    async def on_event(self, event: RealtimeModelEvent) -> None:
        if event.type == "turn_started":
            raise RuntimeError("a listener bug")


class Collecting(RealtimeModelListener):
    def __init__(self) -> None:
        self.events: list[RealtimeModelEvent] = []

    async def on_event(self, event: RealtimeModelEvent) -> None:
        self.events.append(event)


async def test_a_failing_listener_is_reported_and_delivery_goes_on(server: RealtimeServer) -> None:
    model = RtlayerRealtimeModel()
    collected = Collecting()
    model.add_listener(collected)
    model.add_listener(Failing())
    await model.connect({"url": server.ws_url, "api_key": "x"})
    try:
        await model.send_event(RealtimeModelSendUserInput(user_input="hello"))
        await eventually(lambda: any(e.type == "turn_ended" for e in collected.events), within=10)
    finally:
        await model.close()
    types = [e.type for e in collected.events]
    failure = next(e for e in collected.events if isinstance(e, RealtimeModelExceptionEvent))
    assert str(failure.exception) == "a listener bug"
    assert types.index("turn_started") < types.index("exception") < types.index("turn_ended")


async def test_an_agent_runs_the_tools_of_a_webrtc_call_from_a_sideband_socket(
    server_events: EmittedEvents,
) -> None:
    """The sideband pattern (the SDK's ``call_id``): a phone or browser holds the call, the agent serves it
    from the app's side over a ``?call_id=`` WebSocket, with its own instructions and tools."""
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    rules = {
        "rules": [
            {
                "when": {"text_contains": "weather"},
                "call": {"name": "get_weather", "arguments": {"city": "Rome"}},
            },
            {"after_function_output": "get_weather", "say": "It is sunny in Rome."},
        ]
    }
    agent: RealtimeAgent[Any] = RealtimeAgent(
        name="desk", instructions="Answer callers.", tools=[get_weather]
    )
    async with RealtimeServer(responder=ScriptedResponder(rules)) as server:
        phone = WebRTCTransport()
        heard: list[bytes] = []
        phone.on("audio", lambda e: heard.append(e.data))
        await phone.connect(url=server.url)
        try:
            assert phone.call_id is not None
            runner = RealtimeRunner(agent, model=RtlayerRealtimeModel())
            config: Any = {"url": server.ws_url, "api_key": "x", "call_id": phone.call_id}
            async with await runner.run(model_config=config) as session:
                await eventually(lambda: bool(server_events.of_type("session.updated")), within=5)
                phone.send_message("what is the weather?")
                await events_until(session, "agent_end", count=2)
                await eventually(lambda: not phone.gate.playing and len(heard) > 25, within=10)
        finally:
            await phone.close()
    assert calls == ["Rome"]
    updated = server_events.of_type("session.updated")[-1]["session"]
    assert updated["instructions"] == "Answer callers."
    assert [t["name"] for t in updated["tools"]] == ["get_weather"]
    said = [e["transcript"] for e in server_events.of_type("response.output_audio_transcript.done")]
    assert said == ["It is sunny in Rome."]


async def test_the_api_key_is_never_logged(server: RealtimeServer, caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-test-never-in-a-log-0123456789"
    caplog.set_level(logging.DEBUG)  # every logger, the socket library's handshake included
    runner = RealtimeRunner(echo_agent(), model=RtlayerRealtimeModel())
    async with await runner.run(model_config={"url": server.ws_url, "api_key": lambda: key}) as session:
        await session.send_message("hello")
        await events_until(session, "agent_end")
    # The handshake was logged (so a leak would show), with its credential redacted.
    assert any("Authorization: Bearer" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if key in r.getMessage()]
