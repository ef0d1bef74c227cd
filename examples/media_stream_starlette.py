"""A phone agent behind a telephony provider's media stream, in a Starlette (or FastAPI) app (Telnyx by
default), served by uvicorn.

The endpoint accepts the provider's WebSocket and hands it to ``MediaStreamTransport``, which bridges it to
the Realtime model. FastAPI is the same: ``@app.websocket("/media-stream")`` with the same body.

    python examples/media_stream_starlette.py --port 8080 [--provider twilio|telnyx|plivo|exotel|vonage]
    rtlayer phone --provider telnyx ws://127.0.0.1:8080/media-stream tests/data/hello_24k.wav -o heard.wav
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from rtlayer.transports.media_stream import DIALECTS, MediaStreamTransport

log = logging.getLogger("media_stream_starlette")


def make_app(args: argparse.Namespace, stop: asyncio.Event) -> Starlette:
    calls = 0

    async def media_stream(ws: WebSocket) -> None:
        nonlocal calls
        await ws.accept()
        transport = MediaStreamTransport(ws, args.provider, url=args.url)
        transport.on("dtmf", lambda e: log.info("caller pressed %s", e.digit))
        transport.on("response.done", lambda e: log.info("answer %s", e["response"]["status"]))
        try:
            await transport.connect(
                initial_session_config={"instructions": "You answer the phone. Be brief."}
            )
            call = transport.call
            assert call is not None
            log.info("call %s started, custom parameters %s", call.call_id, dict(call.custom_parameters))
            await transport.wait_closed()
        finally:
            await transport.close()
            log.info("call ended")
            calls += 1
            if calls == args.calls:
                stop.set()

    return Starlette(routes=[WebSocketRoute("/media-stream", media_stream)])


async def main(args: argparse.Namespace) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)  # listening before we say so (uvicorn serves on this socket)
    stop = asyncio.Event()
    server = uvicorn.Server(uvicorn.Config(make_app(args, stop), log_level="warning", ws="websockets-sansio"))
    log.info("listening on ws://127.0.0.1:%d/media-stream", sock.getsockname()[1])
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    await asyncio.wait([serving, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="telnyx", choices=sorted(DIALECTS))
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--url", default=None, help="the model (default: an embedded server per call)")
    parser.add_argument("--calls", type=int, default=0, help="exit after N calls (0: run until stopped)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    asyncio.run(main(parser.parse_args()))
