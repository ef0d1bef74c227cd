"""A thin client of raw events: send protocol events as dicts, read every server event as a dict.

    python examples/raw_events.py [--url ws://HOST:PORT/v1/realtime]

Without --url it talks to the embedded server, started in-process.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rtlayer.transports import WebSocketTransport


async def main(url: str | None) -> None:
    transport = WebSocketTransport()
    done = asyncio.Event()

    def on_event(event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "response.output_text.delta":
            print(f"  {kind}: {event['delta']!r}")
        else:
            print(f"  {kind}")
        if kind == "response.done":
            done.set()

    transport.on("*", on_event)  # every server event, untouched
    await transport.connect(url=url, initial_session_config={"output_modalities": ["text"]})
    transport.send_event(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hi there"}],
            },
        }
    )
    transport.send_event({"type": "response.create"})
    await asyncio.wait_for(done.wait(), 10)
    await transport.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    asyncio.run(main(parser.parse_args().url))
