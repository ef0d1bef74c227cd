"""Plug your own model into the embedded server: a responder is any object with ``respond(request)``, an
async generator of text, audio and function-call parts.

This one answers every turn with the number of words the user typed, in text, and as speech through the
server's ``speak`` helper (espeak-ng when installed) when the session wants audio. Run it, then talk to it
with any client (``rtlayer talk``, the official SDKs, the talk page):

    python examples/custom_responder.py            # one text turn through WebSocketTransport, then exits
    python examples/custom_responder.py --serve    # keeps serving on http://127.0.0.1:8765
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

from rtlayer.protocol.items import item_text
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import ResponsePart, ResponseRequest, TextPart, speak
from rtlayer.transport import TurnDoneEvent
from rtlayer.transports import WebSocketTransport


class WordCounter:
    """Counts the words of the user's last message."""

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        users = [item for item in request.items if item.get("role") == "user"]
        words = len(item_text(users[-1]).split()) if users else 0
        answer = f"You said {words} words."
        if request.wants_audio:
            async for part in speak(answer, request):  # transcript and speech, interleaved
                yield part
        else:
            yield TextPart(answer)


async def one_turn(url: str) -> str:
    transport = WebSocketTransport()
    turns: asyncio.Queue[TurnDoneEvent] = asyncio.Queue()
    transport.on("turn_done", turns.put_nowait)
    await transport.connect(url=url, initial_session_config={"output_modalities": ["text"]})
    transport.send_message("How many words are in this sentence?")
    turn = await asyncio.wait_for(turns.get(), 10)
    await transport.close()
    return str(turn.response["output"][0]["content"][0]["text"])


async def main(serve: bool) -> None:
    async with RealtimeServer(port=8765 if serve else 0, responder=WordCounter()) as server:
        if serve:
            print(f"serving {server.ws_url}; Ctrl-C to stop")
            await asyncio.Event().wait()
        print("answer:", await one_turn(server.ws_url))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true")
    asyncio.run(main(parser.parse_args().serve))
