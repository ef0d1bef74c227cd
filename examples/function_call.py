"""A function-call round trip: the model asks for a tool, the app runs it and sends the output back.

The embedded server runs here with a scripted responder that calls ``get_weather`` when asked about the
weather and speaks the tool's result afterwards; against a real model, pass --url and define the tool in
the session config the same way.

    python examples/function_call.py [--url ws://HOST:PORT/v1/realtime]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder
from rtlayer.transport import FunctionCallEvent, TurnDoneEvent
from rtlayer.transports import WebSocketTransport

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
RULES = {
    "rules": [
        {
            "when": {"text_contains": "weather"},
            "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
        },
        {"after_function_output": "get_weather", "say": "It is sunny and 21 degrees in Paris."},
    ]
}


def get_weather(city: str) -> dict[str, Any]:
    return {"city": city, "sky": "sunny", "celsius": 21}


async def converse(url: str) -> str:
    transport = WebSocketTransport()
    answers: list[str] = []
    finished = asyncio.Event()

    def on_function_call(call: FunctionCallEvent) -> None:
        arguments = json.loads(call.arguments or "{}")
        print(f"model calls {call.name}({arguments})")
        result = get_weather(**arguments)
        transport.send_function_call_output(call, json.dumps(result))  # and asks for the next response

    def on_turn_done(turn: TurnDoneEvent) -> None:
        for item in turn.response.get("output", []):
            for part in item.get("content", []) or []:
                if part.get("transcript") or part.get("text"):
                    answers.append(part.get("transcript") or part.get("text"))
        if answers:
            finished.set()

    transport.on("function_call", on_function_call)
    transport.on("turn_done", on_turn_done)
    await transport.connect(url=url, initial_session_config={"tools": TOOLS, "output_modalities": ["text"]})
    transport.send_message("What is the weather like in Paris?")
    await asyncio.wait_for(finished.wait(), 10)
    await transport.close()
    return answers[-1]


async def main(url: str | None) -> None:
    if url is not None:
        print("answer:", await converse(url))
        return
    async with RealtimeServer(responder=ScriptedResponder(RULES)) as server:
        print("answer:", await converse(server.ws_url))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    asyncio.run(main(parser.parse_args().url))
