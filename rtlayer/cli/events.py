"""``rtlayer events``: a thin client of raw events, for scripts and for poking at a server.

Each line of standard input is one client event as JSON (blank lines are skipped; a line that is not a JSON
object is reported on standard error and skipped). Every server event is printed to standard output as one
JSON line, untouched. At the end of the input it waits until no response is running or requested and the
server has been quiet for ``--quiet-ms``, then closes. With no ``--url`` the embedded server runs in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from ..exceptions import RtlayerError
from ..protocol.codec import dumps
from ._args import non_negative_int, positive_seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help="the server: http(s)://host[:port][/v1], ws(s)://.../v1/realtime or host:port "
        "(default: the embedded server; with a key and no URL, the hosted service)",
    )
    parser.add_argument("--api-key", default=None, help="key for --url (default: $OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument(
        "--quiet-ms", type=non_negative_int, default=300, help="server silence that ends the run at EOF"
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=60.0, help="longest wait after the end of input (s)"
    )


async def _read_lines(stream: TextIO) -> Any:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, stream.readline)
        if not line:
            return
        yield line


async def events(args: argparse.Namespace, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    from ..transports import WebSocketTransport

    loop = asyncio.get_running_loop()
    last_event = loop.time()
    transport = WebSocketTransport()

    def on_event(event: dict[str, Any]) -> None:
        nonlocal last_event
        last_event = loop.time()
        stdout.write(dumps(event) + "\n")
        stdout.flush()

    transport.on("*", on_event)
    try:
        await transport.connect(url=args.url, api_key=args.api_key, model=args.model)
        async for line in _read_lines(stdin):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as exc:
                print(f"rtlayer events: skipped a line that is not JSON ({exc})", file=sys.stderr)
                continue
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                print(
                    "rtlayer events: skipped a line that is not an event object with a type", file=sys.stderr
                )
                continue
            transport.send_event(event)
        session, quiet = transport.session, args.quiet_ms / 1000
        deadline = loop.time() + args.timeout
        while loop.time() < deadline:
            busy = session.active_response_id is not None or session.sequencer.control != "free"
            if not busy and not session.sequencer.queued and loop.time() - last_event >= quiet:
                break
            await asyncio.sleep(0.02)
    except RtlayerError as exc:
        print(f"rtlayer events: {exc}", file=sys.stderr)
        return 2
    finally:
        await transport.close()
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(events(args))
