"""A phone agent behind a telephony provider's media stream, in an aiohttp app (Twilio by default).

The provider (Twilio's ``<Connect><Stream url="wss://.../media-stream">``) opens a WebSocket to the app;
``MediaStreamTransport`` bridges it to the Realtime model: mu-law passes through untouched, playback is
tracked from the provider's marks, a barge-in clears the provider and truncates the answer at what the
caller heard. The call's metadata is there before the model says anything.

    python examples/media_stream_aiohttp.py --port 8080 [--provider twilio|telnyx|plivo|exotel|vonage]
    rtlayer phone --provider twilio ws://127.0.0.1:8080/media-stream tests/data/hello_24k.wav -o heard.wav

With no ``--url`` each call talks to an embedded server (the echo responder); ``--url wss://api.openai.com/v1/realtime``
with OPENAI_API_KEY set talks to the service.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web

from rtlayer.transports.media_stream import DIALECTS, MediaStreamTransport

log = logging.getLogger("media_stream_aiohttp")


async def media_stream(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    args = request.app["args"]
    transport = MediaStreamTransport(ws, args.provider, url=args.url)
    transport.on("dtmf", lambda e: log.info("caller pressed %s", e.digit))
    transport.on("response.done", lambda e: log.info("answer %s", e["response"]["status"]))
    try:
        await transport.connect(initial_session_config={"instructions": "You answer the phone. Be brief."})
        call = transport.call
        assert call is not None  # connect() returns once the provider's start came
        log.info("call %s started, custom parameters %s", call.call_id, dict(call.custom_parameters))
        await transport.wait_closed()
    finally:
        await transport.close()
        log.info("call ended")
        request.app["calls"].append(transport)
        if len(request.app["calls"]) == args.calls:
            request.app["done"].set()
    return ws


async def main(args: argparse.Namespace) -> None:
    app = web.Application()
    app["args"], app["calls"], app["done"] = args, [], asyncio.Event()
    app.router.add_get("/media-stream", media_stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    log.info("listening on ws://127.0.0.1:%d/media-stream", runner.addresses[0][1])
    try:
        await app["done"].wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="twilio", choices=sorted(DIALECTS))
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--url", default=None, help="the model (default: an embedded server per call)")
    parser.add_argument("--calls", type=int, default=0, help="exit after N calls (0: run until stopped)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    asyncio.run(main(parser.parse_args()))
