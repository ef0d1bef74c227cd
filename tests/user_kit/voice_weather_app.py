"""A user's voice app, as the kit's tests treat it: it answers weather questions with a tool.

It knows nothing of tests: it connects wherever it is told, declares its tool, runs it when the model
calls it, and reports the transcript of the final answer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rtlayer import FunctionCallEvent, RealtimeTransportLayer, WebSocketTransport

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CONFIG = {"instructions": "You are a weather line.", "tools": [WEATHER_TOOL], "output_modalities": ["text"]}


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "sky": "sunny"})


class WeatherApp:
    """One conversation with the weather line."""

    def __init__(self, transport: RealtimeTransportLayer | None = None) -> None:
        self.transport = transport or WebSocketTransport()
        self.answers: asyncio.Queue[str] = asyncio.Queue()
        self.transport.on("function_call", self._on_call)
        self.transport.on("response.output_text.done", lambda e: self.answers.put_nowait(e["text"]))

    async def start(self, url: str, api_key: str) -> None:
        await self.transport.connect(url=url, api_key=api_key, initial_session_config=CONFIG)

    async def ask(self, question: str, within: float = 10.0) -> str:
        self.transport.send_message(question)
        return await asyncio.wait_for(self.answers.get(), within)

    def _on_call(self, call: FunctionCallEvent) -> None:
        if call.name == "get_weather":
            args: dict[str, Any] = json.loads(call.arguments or "{}")
            self.transport.send_function_call_output(call, get_weather(**args))

    async def close(self) -> None:
        await self.transport.close()
