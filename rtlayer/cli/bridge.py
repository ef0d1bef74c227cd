"""``rtlayer bridge --provider twilio``: a ready media-stream bridge server for phone calls.

The provider (or ``rtlayer phone``) connects to ``ws://HOST:PORT/PATH``; each call is bridged by a
``MediaStreamTransport`` to the model at ``--url`` (default: an embedded server started in-process, with
``--responder``). ``GET /healthz`` answers ``ok``; ``GET /metrics`` is Prometheus text: active calls, calls,
frames in and out, input dropped, barge-ins, truncation error, provider problems by kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ..transports.media_stream import DIALECTS, AiohttpSocket, MediaStreamTransport
from ._args import LOG_LEVELS, port
from ._heap import freeze_startup_heap

logger = logging.getLogger("rtlayer.bridge")

_TRANSPORTS = ("websocket", "fetch-upgrade", "webrtc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, choices=sorted(DIALECTS), help="who calls the endpoint")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument("--path", default="/media-stream", help="the media-stream WebSocket path")
    parser.add_argument("--url", default=None, help="the model: ws(s)://.../v1/realtime (default: embedded)")
    parser.add_argument("--api-key", default=None, help="key for --url (default: $OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--transport", default="websocket", choices=_TRANSPORTS, help="to the model")
    parser.add_argument("--responder", default="echo", help="embedded server: echo or scripted:RULES.json")
    parser.add_argument("--instructions", default=None, help="the model's instructions")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="default info")


class BridgeMetrics:
    """A Prometheus collector over the live calls plus the totals of the finished ones."""

    def __init__(self) -> None:
        self.active: set[MediaStreamTransport] = set()
        self.finished: dict[str, float] = {}
        self.problems: Counter[str] = Counter()
        self.calls = 0

    def call_ended(self, transport: MediaStreamTransport) -> None:
        self.active.discard(transport)
        for name, value in _figures(transport).items():
            self.finished[name] = self.finished.get(name, 0.0) + value
        self.problems.update(transport.problems)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield GaugeMetricFamily(
            "rtlayer_bridge_active_calls", "calls being bridged now", value=len(self.active)
        )
        yield CounterMetricFamily("rtlayer_bridge_calls", "calls accepted", value=self.calls)
        totals = dict(self.finished)
        problems = Counter(self.problems)
        for transport in self.active:
            for name, value in _figures(transport).items():
                totals[name] = totals.get(name, 0.0) + value
            problems.update(transport.problems)
        for name, help_text in _HELP.items():
            yield CounterMetricFamily(f"rtlayer_bridge_{name}", help_text, value=totals.get(name, 0.0))
        family = CounterMetricFamily(
            "rtlayer_bridge_provider_problems", "bad provider frames, by kind", labels=["kind"]
        )
        for kind, count in sorted(problems.items()):
            family.add_metric([kind], count)
        yield family


_HELP = {
    "frames_in": "provider media frames received",
    "frames_out": "audio frames sent to the provider",
    "dropped_input_bytes": "caller audio dropped (buffer full before the model was ready, or model gone)",
    "interruptions": "barge-ins (provider clear + truncate)",
    "truncation_error_ms": "audio heard but not in a truncate (providers that confirm a clear)",
    "format_pins": "session updates whose audio format was kept at the provider's",
}


def _figures(transport: MediaStreamTransport) -> dict[str, float]:
    return {name: float(getattr(transport, name)) for name in _HELP}


class BridgeServer:
    """The aiohttp app: the media-stream endpoint, ``/healthz`` and ``/metrics``."""

    def __init__(self, args: argparse.Namespace, model_url: str | None) -> None:
        self.args = args
        self.model_url = model_url
        #: the port it listens on, once started
        self.port = 0
        self.metrics = BridgeMetrics()
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry()
        self.registry.register(self.metrics)  # type: ignore[arg-type, unused-ignore]  # older stubs: no Collector

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(self.args.path, self.media_stream)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def metrics_page(self, request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def media_stream(self, request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate: base64 audio barely compresses, and zlib on ~150 frames per call-second
        # both ways costs more CPU than the rest of the socket path (the embedded server does the same).
        ws = web.WebSocketResponse(max_msg_size=1 << 20, compress=False)
        await ws.prepare(request)
        transport = MediaStreamTransport(
            AiohttpSocket(ws),
            self.args.provider,
            url=self.model_url,
            api_key=self.args.api_key,
            model=self.args.model,
            model_transport=_model_transport(self.args.transport),
        )
        self.metrics.calls += 1
        self.metrics.active.add(transport)
        transport.on(
            "call_start", lambda call: logger.info("call %s started (%s)", call.call_id, call.format)
        )
        transport.on("dtmf", lambda e: logger.info("dtmf %s", e.digit))
        session = {"instructions": self.args.instructions} if self.args.instructions else None
        try:
            await transport.connect(initial_session_config=session)
            await transport.wait_closed()
        except Exception as exc:
            logger.warning("call failed: %s", exc)
        finally:
            await transport.close()
            self.metrics.call_ended(transport)
            call = transport.call
            logger.info(
                "call %s ended: %d frames in, %d out, %d barge-ins",
                call.call_id if call else "?",
                transport.frames_in,
                transport.frames_out,
                transport.interruptions,
            )
        return ws


def _model_transport(name: str) -> Any:
    if name == "fetch-upgrade":
        from ..transports.fetch_upgrade import FetchUpgradeTransport

        return FetchUpgradeTransport
    if name == "webrtc":
        from ..transports.webrtc import WebRTCTransport

        return WebRTCTransport
    return None  # the WebSocket transport


@contextlib.asynccontextmanager
async def running_bridge(args: argparse.Namespace) -> Any:
    """The bridge (and the embedded server when there is no ``--url``), started; yields the BridgeServer."""
    _model_transport(args.transport)  # refuse a bad choice before binding anything
    embedded = None
    model_url = args.url
    if model_url is None:
        from ..server.realtime_server import RealtimeServer
        from .serve import make_responder

        embedded = RealtimeServer(responder=make_responder(args.responder))
        await embedded.start()
        model_url = embedded.ws_url
    bridge = BridgeServer(args, model_url)
    runner = web.AppRunner(bridge.app(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port, reuse_address=True)
        await site.start()
        bridge.port = int(runner.addresses[0][1])
        yield bridge
    finally:
        await runner.cleanup()
        if embedded is not None:
            await embedded.close()


async def serve(args: argparse.Namespace) -> None:
    async with running_bridge(args) as bridge:
        freeze_startup_heap()  # only run() calls serve(): the command owns its process
        port = bridge.port
        print(
            f"rtlayer bridge: {args.provider} media streams on ws://{args.host}:{port}{args.path}\n"
            f"  model        {bridge.model_url.split('?')[0]} ({args.transport})\n"
            f"  health       http://{args.host}:{port}/healthz   metrics http://{args.host}:{port}/metrics",
            file=sys.stderr,
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        asyncio.run(serve(args))
    except ValueError as exc:
        print(f"rtlayer bridge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rtlayer bridge: {exc}", file=sys.stderr)
        return 1
    return 0
