"""A user's agents app tested with rtlayer.testing, the app running on the Agents SDK's own WebSocket model:
the kit tests any Realtime client, not only rtlayer's. Only public APIs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner

from rtlayer.testing import BackgroundServer, EventLog, FunctionCallPart, Rule, ScriptedResponder

pytestmark = pytest.mark.timeout(30)

SCRIPT = ScriptedResponder(
    [
        Rule(
            words=("weather",),
            calls=(FunctionCallPart("get_weather", {"city": "Paris"}),),
            require_tools=True,
            instructions_contain="weather line",
        ),
        Rule(after_tool="get_weather", say="It is sunny in Paris."),
    ],
    default="I cannot help with that.",
)
calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    calls.append(city)
    return f"Sunny in {city}."


async def ask(server: BackgroundServer, agent: RealtimeAgent[Any], question: str) -> tuple[str, EventLog]:
    """The app's one exchange: the answer's text, and the raw server events the session saw."""
    log = EventLog()
    runner = RealtimeRunner(agent)
    session = await runner.run(
        model_config={
            "url": server.ws_url + "?model=gpt-realtime",
            "api_key": "test",
            "initial_model_settings": {"output_modalities": ["text"]},
        }
    )
    async with session, asyncio.timeout(15):
        await session.send_message(question)
        async for event in session:
            if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                log.append(dict(event.data.data))
                if event.data.data.get("type") == "response.output_text.done":
                    text = str(event.data.data["text"])
                    if "sunny" in text.lower() or "cannot" in text.lower():
                        return text, log
    raise AssertionError("the session ended without an answer")


async def test_the_agent_calls_its_tool_and_answers(
    realtime_server_factory: Callable[..., BackgroundServer],
) -> None:
    server = realtime_server_factory(SCRIPT)
    agent: RealtimeAgent[Any] = RealtimeAgent(
        name="weather", instructions="You are a weather line.", tools=[get_weather]
    )
    calls.clear()
    answer, log = await ask(server, agent, "How is the weather?")
    assert answer == "It is sunny in Paris."
    assert calls == ["Paris"]  # the SDK ran the app's tool with the model's arguments
    assert [
        e["item"]["name"]
        for e in log.of_type("response.output_item.done")
        if e["item"]["type"] == "function_call"
    ] == ["get_weather"]


async def test_an_agent_without_the_tool_is_not_asked_to_call_it(
    realtime_server_factory: Callable[..., BackgroundServer],
) -> None:
    server = realtime_server_factory(SCRIPT)
    agent: RealtimeAgent[Any] = RealtimeAgent(name="chat", instructions="You are a weather line.")
    calls.clear()
    answer, _ = await ask(server, agent, "How is the weather?")
    assert answer == "I cannot help with that." and calls == []
