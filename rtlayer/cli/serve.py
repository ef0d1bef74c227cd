"""``rtlayer serve``: the embedded Realtime-compatible server in the foreground.

It logs one readable line per session event (streaming deltas only at ``--log-level debug``), for
example ``sess_AbC  speech_started 1.23 s`` or ``sess_AbC  response.done completed 2.10 s audio``.
API keys are never logged. Ctrl-C or SIGTERM closes every session and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from rtlayer._extras import unavailable
from rtlayer.server.app import WEBRTC_FEATURE
from rtlayer.server.state import DEFAULT_AUDIO_PACING, ServerLimits

from ._args import LOG_LEVELS, non_negative, port, positive_int, positive_seconds, seconds_or_never
from ._heap import freeze_startup_heap

logger = logging.getLogger("rtlayer.serve")

API_KEY_ENV = "RTLAYER_API_KEY"
"""The environment variable the server key is read from when neither flag gives it."""

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
    parser.add_argument("--port", type=port, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--api-key", default=None,
        help=f"key clients must present (required off loopback); better from ${API_KEY_ENV} or "
        "--api-key-file, which other users cannot read in the process list",
    )  # fmt: skip
    parser.add_argument(
        "--api-key-file", default=None, metavar="PATH",
        help="read the key from this file (its first line)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-origin", action="append", default=[], metavar="ORIGIN",
        help="a web page (https://app.example:8443, or *) that may use the server from a browser besides "
        "the server's own page; repeatable. Every other Origin is refused with 403",
    )  # fmt: skip
    parser.add_argument("--responder", default="echo", help="echo (default) or scripted:RULES.json")
    parser.add_argument("--sip-port", type=port, default=None, help="also answer SIP calls on this UDP port")
    parser.add_argument("--webhook-url", default=None, help="where incoming SIP calls are announced")
    parser.add_argument("--webhook-secret", default=None, help="whsec_... secret that signs the webhooks")
    parser.add_argument("--certfile", default=None, help="TLS certificate (serves https and wss)")
    parser.add_argument("--keyfile", default=None, help="TLS private key")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="default info")
    parser.add_argument(
        "--audio-pacing",
        type=non_negative,
        default=DEFAULT_AUDIO_PACING,
        help="send WebSocket answer audio at this multiple of real time "
        f"(default {DEFAULT_AUDIO_PACING:g}, like the service: faster than playback; 0 = as fast as produced)",
    )
    limits = ServerLimits()
    parser.add_argument(
        "--max-sessions", type=positive_int, default=limits.max_sessions,
        help=f"concurrent sessions; more are refused with 429 (default {limits.max_sessions})",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=positive_int, default=limits.max_connections,
        help=f"concurrent WebSocket connections, sideband included (default {limits.max_connections})",
    )  # fmt: skip
    parser.add_argument(
        "--idle-timeout", type=seconds_or_never, default=limits.idle_timeout_s, metavar="SECONDS",
        help=f"close a socket silent both ways this long (default {limits.idle_timeout_s:g}; 0 = never)",
    )  # fmt: skip
    parser.add_argument(
        "--session-expiry", type=positive_seconds, default=3600.0, metavar="SECONDS",
        help="a session's lifetime, after which it ends with session_expired (default 3600, the service's)",
    )  # fmt: skip
    parser.add_argument(
        "--max-message-bytes", type=positive_int, default=limits.max_message_bytes,
        help="largest client message, inclusive; larger closes that socket with 1009 "
        f"(default {limits.max_message_bytes})",
    )  # fmt: skip
    parser.add_argument(
        "--max-conversation-bytes", type=positive_int, default=limits.max_conversation_bytes,
        help="per session: conversation items plus kept user audio; the oldest items past it are "
        "dropped, an item larger than all of it refused with an error event "
        f"(default {limits.max_conversation_bytes})",
    )  # fmt: skip
    parser.add_argument(
        "--max-queued-bytes", type=positive_int, default=limits.max_queued_bytes,
        help="per socket: events waiting for a client that reads too slowly; past it the socket is closed "
        f"with 1008 (default {limits.max_queued_bytes})",
    )  # fmt: skip
    parser.add_argument(
        "--max-input-buffer-bytes", type=positive_int, default=limits.max_input_buffer_bytes,
        help="per session: input audio buffer (PCM16 24 kHz); the oldest audio past it is dropped "
        f"(default {limits.max_input_buffer_bytes}, 5 minutes)",
    )  # fmt: skip


def limits_from(args: argparse.Namespace) -> ServerLimits:
    """The server limits the command line asks for."""
    return ServerLimits(
        max_sessions=args.max_sessions,
        max_connections=args.max_connections,
        max_message_bytes=args.max_message_bytes,
        max_conversation_bytes=args.max_conversation_bytes,
        max_queued_bytes=args.max_queued_bytes,
        max_input_buffer_bytes=args.max_input_buffer_bytes,
        idle_timeout_s=args.idle_timeout,
        session_expiry_s=args.session_expiry,
    )


def api_key_from(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> str | None:
    """The server key: ``--api-key``, else ``--api-key-file`` (first line), else ``$RTLAYER_API_KEY``."""
    if args.api_key is not None:
        return str(args.api_key)
    if args.api_key_file is not None:
        try:
            with open(args.api_key_file, encoding="utf-8") as f:
                key = f.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the API key file {args.api_key_file!r}: {exc}") from None
        if not key:
            raise ValueError(f"the API key file {args.api_key_file!r} is empty")
        return key
    return environ.get(API_KEY_ENV) or None


def make_responder(spec: str) -> Any:
    """``echo`` or ``scripted:RULES.json`` -> a responder instance (ValueError for anything else)."""
    from rtlayer.server.responders import EchoResponder, ScriptedResponder

    if spec == "echo":
        return EchoResponder()
    if spec.startswith("scripted:"):
        path = spec[len("scripted:") :]
        try:
            return ScriptedResponder.from_file(path)
        except (OSError, ValueError) as exc:  # json's errors are ValueErrors; say which file they are about
            raise ValueError(f"cannot use the rules file {path!r}: {exc}") from None
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


async def serve(
    args: argparse.Namespace, *, stop: asyncio.Event | None = None, freeze_heap: bool = False
) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM). ``freeze_heap``: once started, freeze what start-up
    built out of the garbage collector's full collections (``rtlayer serve`` in its own process does)."""
    from rtlayer.server.realtime_server import RealtimeServer

    server = RealtimeServer(
        host=args.host,
        port=args.port,
        api_key=api_key_from(args),
        responder=make_responder(args.responder),
        audio_pacing=args.audio_pacing,
        limits=limits_from(args),
        sip_port=args.sip_port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        certfile=args.certfile,
        keyfile=args.keyfile,
        allow_origins=args.allow_origin,
    )
    server.state.add_event_observer(EventLog())
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        if freeze_heap:
            freeze_startup_heap()
        for line in describe(server, args):
            logger.info("%s", line)
        await stop.wait()
        logger.info("rtlayer serve: shutting down (%d sessions open)", len(server.state.runners))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def describe(server: Any, args: argparse.Namespace) -> list[str]:
    """The start-up lines: every URL the server answers on, and the limits it enforces (never the key)."""
    limits = server.state.limits
    keyed = "a key is required" if server.state.requires_key else "any key accepted"
    lines = [
        f"rtlayer serve: listening on {server.url} ({keyed})",
        f"  WebSocket    {server.ws_url}?model=gpt-realtime",
        f'  openai SDK   AsyncOpenAI(base_url="{server.url}/v1").realtime.connect(model="gpt-realtime")',
        f"  keys         POST {server.url}/v1/realtime/client_secrets (ek_ ephemeral keys)",
        f"  health       {server.url}/healthz",
    ]
    if unavailable("webrtc", WEBRTC_FEATURE) is None:  # else the server's start-up warning said why
        lines.append(f"  talk page    {server.url}/ (WebRTC, POST {server.url}/v1/realtime/calls)")
    if server.sip is not None:
        lines.append(f"  SIP on udp {args.host}:{getattr(server.sip, 'port', args.sip_port)}")
    idle = f"closed after {limits.idle_timeout_s:g} s" if limits.idle_timeout_s else "never closed"
    expiry = limits.session_expiry_s or 3600.0
    pace = server.state.audio_pacing
    pacing = f"at {pace:g}x real time" if pace else "as fast as produced"
    lines.append(
        f"  limits       {limits.max_sessions} sessions, {limits.max_connections} connections, "
        f"idle sockets {idle}, sessions expire after {expiry:g} s, "
        f"answer audio {pacing}"
    )
    lines.append(
        f"  per session  {limits.max_conversation_bytes} bytes of conversation, "
        f"{limits.max_input_buffer_bytes} bytes of input audio, "
        f"{limits.max_queued_bytes} bytes queued for a slow reader"
    )
    return lines


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(args, freeze_heap=True))
    except ValueError as exc:  # a refused configuration (e.g. a public host without a key)
        print(f"rtlayer serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the certificate is unreadable, ...
        print(f"rtlayer serve: {exc}", file=sys.stderr)
        return 1
    return 0
