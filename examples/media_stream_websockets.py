"""A phone agent behind a telephony provider's media stream, on a plain ``websockets`` server (Vonage by
default: binary 16 kHz L16 frames, transcoded by the native core).

    python examples/media_stream_websockets.py --port 8080 [--provider twilio|telnyx|plivo|exotel|vonage]
    rtlayer phone --provider vonage ws://127.0.0.1:8080/media-stream tests/data/hello_24k.wav -o heard.wav
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from websockets.asyncio.server import ServerConnection, serve

from rtlayer.transports.media_stream import DIALECTS, MediaStreamTransport

log = logging.getLogger("media_stream_websockets")


async def main(args: argparse.Namespace) -> None:
    done = asyncio.Event()
    calls = 0

    async def media_stream(conn: ServerConnection) -> None:
        nonlocal calls
        transport = MediaStreamTransport(conn, args.provider, url=args.url)
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
                done.set()

    async with serve(media_stream, "127.0.0.1", args.port) as server:
        log.info("listening on ws://127.0.0.1:%d/media-stream", server.sockets[0].getsockname()[1])
        await done.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="vonage", choices=sorted(DIALECTS))
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--url", default=None, help="the model (default: an embedded server per call)")
    parser.add_argument("--calls", type=int, default=0, help="exit after N calls (0: run until stopped)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    asyncio.run(main(parser.parse_args()))
