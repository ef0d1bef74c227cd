"""``rtlayer serve``: the embedded Realtime-compatible server in the foreground.

It logs one readable line per session event (streaming deltas only at ``--log-level debug``), for
example ``sess_AbC  speech_started 1.23 s`` or ``sess_AbC  response.done completed 2.10 s audio``.
API keys are never logged. Ctrl-C or SIGTERM closes every session and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import signal
import sys
from typing import Any

logger = logging.getLogger("rtlayer.serve")

_DELTAS = frozenset(
    {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "conversation.item.input_audio_transcription.delta",
        "rate_limits.updated",
    }
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    parser.add_argument("--api-key", default=None, help="key clients must present (required off loopback)")
    parser.add_argument("--responder", default="echo", help="echo (default) or scripted:RULES.json")
    parser.add_argument("--sip-port", type=int, default=None, help="also answer SIP calls on this UDP port")
    parser.add_argument("--webhook-url", default=None, help="where incoming SIP calls are announced")
    parser.add_argument("--webhook-secret", default=None, help="whsec_... secret that signs the webhooks")
    parser.add_argument("--certfile", default=None, help="TLS certificate (serves https and wss)")
    parser.add_argument("--keyfile", default=None, help="TLS private key")
    parser.add_argument("--log-level", default="info", help="debug, info, warning")
    parser.add_argument(
        "--audio-pacing",
        type=float,
        default=1.0,
        help="send WebSocket answer audio at this multiple of real time (default 1; 0 = as fast as produced)",
    )


def make_responder(spec: str) -> Any:
    """``echo`` or ``scripted:RULES.json`` -> a responder instance (ValueError for anything else)."""
    from rtlayer.server.responders import EchoResponder, ScriptedResponder

    if spec == "echo":
        return EchoResponder()
    if spec.startswith("scripted:"):
        return ScriptedResponder.from_file(spec[len("scripted:") :])
    raise ValueError(f"unknown responder {spec!r}: expected 'echo' or 'scripted:RULES.json'")


class EventLog:
    """Formats server events as one short line each; remembers what a line needs (audio per response)."""

    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log
        self._audio_b64: dict[str, int] = {}
        self._bytes_per_s: dict[str, float] = {}

    def __call__(self, session_id: str, event: dict[str, Any]) -> None:
        kind = str(event.get("type"))
        if kind == "response.output_audio.delta":
            rid = str(event.get("response_id"))
            self._audio_b64[rid] = self._audio_b64.get(rid, 0) + len(event.get("delta") or "")
        if kind in _DELTAS:
            if self.log.isEnabledFor(logging.DEBUG):
                self.log.debug("%s  %s", session_id, kind)
            return
        self.log.info("%s  %s", session_id, self.describe(session_id, event))

    def describe(self, session_id: str, event: dict[str, Any]) -> str:
        kind = str(event.get("type"))
        short = kind.removeprefix("input_audio_buffer.")
        if kind in ("session.created", "session.updated"):
            session = event.get("session") or {}
            out = ((session.get("audio") or {}).get("output") or {}).get("format") or {}
            rate = (
                8000.0
                if out.get("type") in ("audio/pcmu", "audio/pcma")
                else 2.0 * float(out.get("rate") or 24000)
            )
            self._bytes_per_s[session_id] = rate
            td = ((session.get("audio") or {}).get("input") or {}).get("turn_detection")
            turns = td.get("type") if isinstance(td, dict) else "manual"
            return f"{kind} {session.get('model')} {out.get('type', 'audio/pcm')} turns={turns}"
        if kind == "input_audio_buffer.speech_started":
            return f"{short} {event.get('audio_start_ms', 0) / 1000:.2f} s"
        if kind == "input_audio_buffer.speech_stopped":
            return f"{short} {event.get('audio_end_ms', 0) / 1000:.2f} s"
        if kind == "response.done":
            response = event.get("response") or {}
            rid = str(response.get("id"))
            b64 = self._audio_b64.pop(rid, 0)
            seconds = b64 * 3 / 4 / self._bytes_per_s.get(session_id, 48000.0)
            reason = ((response.get("status_details") or {}).get("reason")) or ""
            status = f"{response.get('status')} {reason}".strip()
            return f"{kind} {status} {seconds:.2f} s audio"
        if kind == "error":
            error = event.get("error") or {}
            return f"error {error.get('code') or error.get('type')}: {error.get('message')}"
        if kind in (
            "response.output_audio_transcript.done",
            "conversation.item.input_audio_transcription.completed",
        ):
            return f"{kind} {event.get('transcript')!r}"
        if kind == "response.output_text.done":
            return f"{kind} {event.get('text')!r}"
        if kind == "response.function_call_arguments.done":
            return f"{kind} {event.get('name')}({event.get('arguments')})"
        if kind == "conversation.item.truncated":
            return f"{kind} {event.get('item_id')} at {event.get('audio_end_ms')} ms"
        if kind in ("conversation.item.added", "conversation.item.done"):
            item = event.get("item") or {}
            return f"{kind} {item.get('type')} {item.get('role') or item.get('name') or ''}".rstrip()
        return kind


async def serve(args: argparse.Namespace, *, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM)."""
    from rtlayer.server.realtime_server import RealtimeServer

    server = RealtimeServer(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        responder=make_responder(args.responder),
        audio_pacing=args.audio_pacing,
        sip_port=args.sip_port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        certfile=args.certfile,
        keyfile=args.keyfile,
    )
    server.state.add_event_observer(EventLog())
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        keyed = "a key is required" if server.state.requires_key else "any key accepted"
        logger.info("rtlayer serve: listening on %s (WebSocket %s; %s)", server.url, server.ws_url, keyed)
        if importlib.util.find_spec("rtlayer.server.webrtc") is not None:
            logger.info("rtlayer serve: talk page at %s/ (WebRTC)", server.url)
        if server.sip is not None:
            logger.info(
                "rtlayer serve: SIP on udp %s:%s", args.host, getattr(server.sip, "port", args.sip_port)
            )
        await stop.wait()
        logger.info("rtlayer serve: shutting down (%d sessions open)", len(server.state.runners))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(args))
    except ValueError as exc:  # a refused configuration (e.g. a public host without a key)
        print(f"rtlayer serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the certificate is unreadable, ...
        print(f"rtlayer serve: {exc}", file=sys.stderr)
        return 1
    return 0
