"""``openai-agents`` (``RealtimeRunner``) against the embedded server, over a real socket.

The Agents SDK validates every server event strictly and reports a failure only as a log line
("Failed to validate server event"), so each test also fails on that log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession, RealtimeSessionEvent
from helpers import EmittedEvents, chunks, eventually, load_wav, silence

from rtlayer.server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder

pytestmark = pytest.mark.timeout(40)


@pytest.fixture(autouse=True)
def no_validation_failures(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    caplog.set_level(logging.ERROR, logger="openai.agents")
    yield  # type: ignore[misc]
    failures = [r.getMessage() for r in caplog.records if "Failed to validate server event" in r.getMessage()]
    assert not failures, failures


async def start(server: RealtimeServer, agent: RealtimeAgent[Any]) -> RealtimeSession:
    runner = RealtimeRunner(agent)
    return await runner.run(model_config={"url": server.ws_url + "?model=gpt-realtime", "api_key": "x"})


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


def assistant_texts(session: RealtimeSession) -> list[str]:
    """Transcripts/texts of the assistant messages in the session's history."""
    texts = []
    for item in session._history:  # the SDK's own view of the conversation
        if getattr(item, "role", None) == "assistant":
            for part in item.content:
                text = getattr(part, "transcript", None) or getattr(part, "text", None)
                if text:
                    texts.append(text)
    return texts


async def test_a_text_message_is_answered(server: RealtimeServer) -> None:
    agent: RealtimeAgent[Any] = RealtimeAgent(name="echo", instructions="Repeat the user.")
    async with await start(server, agent) as session:
        await session.send_message("good morning")
        events = await events_until(session, "agent_end")
        assert any(e.type == "audio" for e in events)
        # The SDK's history catches up with the final transcript just after agent_end.
        await eventually(lambda: any("good morning" in t for t in assistant_texts(session)))


async def test_an_audio_turn_is_answered(server: RealtimeServer, server_events: EmittedEvents) -> None:
    pcm, _ = load_wav("joke_24k")
    agent: RealtimeAgent[Any] = RealtimeAgent(name="echo", instructions="Repeat the user.")
    async with await start(server, agent) as session:
        for chunk in chunks(pcm + silence(800), chunk_ms=20):
            await session.send_audio(chunk)
        events = await events_until(session, "agent_end")
    audio = b"".join(e.audio.data for e in events if e.type == "audio")  # type: ignore[union-attr]
    assert server_events.of_type("input_audio_buffer.speech_stopped")
    assert len(audio) / 48 > 500  # the echo of a ~1 s utterance


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
            await eventually(lambda: any("sunny in Paris today" in t for t in assistant_texts(session)))
            texts = assistant_texts(session)
    assert calls == ["Paris"]
    tool_end = next(e for e in events if e.type == "tool_end")
    assert tool_end.output == "sunny in Paris"  # type: ignore[union-attr]
    assert any("sunny in Paris today" in t for t in texts)
    outputs = [
        e["item"]
        for e in server_events.of_type("conversation.item.added")
        if e["item"]["type"] == "function_call_output"
    ]
    assert outputs and outputs[0]["output"] == "sunny in Paris"


async def test_interrupt_during_an_answer_ends_in_an_accepted_truncate(server_events: EmittedEvents) -> None:
    agent: RealtimeAgent[Any] = RealtimeAgent(name="echo", instructions="Repeat the user.")
    # Real-time pacing: the answer is still arriving when the app interrupts.
    async with RealtimeServer(audio_pacing=1.0) as server:
        async with await start(server, agent) as session:
            await session.send_message(
                "this is a fairly long sentence so that the spoken answer takes a while"
            )
            seen_audio = 0
            async with asyncio.timeout(10):
                async for event in session:
                    assert event.type != "error", event
                    if event.type == "audio":
                        seen_audio += 1
                        if seen_audio == 3:
                            await session.interrupt()
                            break
            await eventually(lambda: server_events.of_type("conversation.item.truncated"))
    truncated = server_events.of_type("conversation.item.truncated")
    assert len(truncated) == 1
    assert not server_events.of_type("error")  # the truncate was accepted
    # The SDK truncates at what was played (wall time since the first delta, capped at what arrived),
    # well before the end of the answer, which was still streaming at real-time pace.
    delivered = [
        e
        for e in server_events.of_type("response.output_audio.delta")
        if e["item_id"] == truncated[0]["item_id"]
    ]
    delivered_ms = sum(len(e["delta"]) * 3 // 4 for e in delivered) / 48
    assert 0 <= truncated[0]["audio_end_ms"] < delivered_ms
