"""A user's tests of their voice app with rtlayer.testing: only the public API, as in a user's project.

The model is scripted by overriding ``realtime_responder`` (here for this module; in a conftest.py for a
whole folder), with the server's scope so the fixtures agree whatever ``rtlayer_server_scope`` says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from voice_weather_app import CONFIG, WeatherApp

from rtlayer import HandshakeError, WebSocketTransport
from rtlayer.testing import (
    BackgroundServer,
    EventLog,
    FunctionCallPart,
    Rule,
    ScriptedResponder,
    ServerLimits,
    assert_tool_called,
    assert_truncated_at,
    assert_turn_answered,
    server_scope,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope=server_scope)
def realtime_responder() -> ScriptedResponder:
    return ScriptedResponder(
        [
            Rule(
                words=("weather", "forecast"),
                calls=(FunctionCallPart("get_weather", {"city": "Paris"}),),
                require_tools=True,  # a session without the tool is not asked to call it
            ),
            Rule(after_tool="get_weather", say="It is sunny in Paris."),
            Rule(words=("story",), say="Once upon a time there was a very long answer.", delay_ms=400),
        ],
        default="I only know the weather.",
    )


async def test_the_weather_question_calls_the_tool_and_answers(realtime_server: BackgroundServer) -> None:
    app = WeatherApp()
    log = EventLog.of(app.transport)
    await app.start(realtime_server.ws_url, "test-key")
    try:
        assert await app.ask("What is the weather like?") == "It is sunny in Paris."
    finally:
        await app.close()
    assert_tool_called(log, "get_weather", {"city": "Paris"})
    assert_turn_answered(log, transcript_contains="sunny")


async def test_without_the_tool_the_model_does_not_call_it(realtime_server: BackgroundServer) -> None:
    app = WeatherApp()
    log = EventLog.of(app.transport)
    await app.start(realtime_server.ws_url, "test-key")
    try:
        app.transport.update_session_config({"tools": []})
        assert await app.ask("What is the forecast?") == "I only know the weather."
    finally:
        await app.close()
    with pytest.raises(AssertionError, match="calls made: \\[\\]"):
        assert_tool_called(log, "get_weather")


async def test_an_answer_interrupted_before_it_starts(realtime_server: BackgroundServer) -> None:
    """The story rule thinks for 400 ms before speaking: time for the user to barge in."""
    transport = WebSocketTransport()
    log = EventLog.of(transport)
    await transport.connect(url=realtime_server.ws_url, api_key="k", initial_session_config=CONFIG)
    try:
        transport.send_message("Tell me a story")
        await log.wait_for("response.created")
        transport.interrupt()
        done = await log.wait_for("response.done")
    finally:
        await transport.close()
    assert done["response"]["status"] == "cancelled"
    assert not log.of_type("response.output_text.delta")  # nothing was said
    with pytest.raises(AssertionError, match="no completed answer"):
        assert_turn_answered(log)


async def test_an_answer_heard_in_part_is_truncated_where_the_listener_stopped(
    realtime_server_factory: Callable[..., BackgroundServer],
) -> None:
    """An audio session of its own (a factory server with a spoken rule): the app tells the server how much
    of the answer was played, and the helper checks it."""
    server = realtime_server_factory(ScriptedResponder([Rule(always=True, say="A long spoken answer.")]))
    transport = WebSocketTransport()
    log = EventLog.of(transport)
    await transport.connect(url=server.ws_url, api_key="k")
    try:
        transport.send_message("Hello")
        item = (await log.wait_for("response.output_item.added"))["item"]
        await log.wait_for("response.done")
        transport.send_event(
            {
                "type": "conversation.item.truncate",
                "item_id": item["id"],
                "content_index": 0,
                "audio_end_ms": 300,
            }
        )
        await log.wait_for("conversation.item.truncated")
    finally:
        await transport.close()
    assert_truncated_at(log, 300)
    with pytest.raises(AssertionError, match="truncations at: \\[300\\]"):
        assert_truncated_at(log, 900, tolerance_ms=100)


async def test_limits_of_a_server_of_the_tests_own(
    realtime_server_factory: Callable[..., BackgroundServer],
) -> None:
    server = realtime_server_factory(limits=ServerLimits(max_sessions=1))
    first = WebSocketTransport()
    await first.connect(url=server.ws_url, api_key="k")
    second = WebSocketTransport()
    try:
        with pytest.raises(HandshakeError, match="429"):
            await asyncio.wait_for(second.connect(url=server.ws_url, api_key="k"), 10)
    finally:
        await second.close()
        await first.close()
