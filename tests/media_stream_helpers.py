"""Helpers for media-stream tests: a bridge app on a real `websockets` server, and test audio."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from rtlayer.transports.media_stream import MediaStreamTransport

DATA = Path(__file__).parent / "data"

#: one turn at the default VAD: the first sentence of hello_24k.wav (0.70 s of speech, then its pause)
SENTENCE_MS = 700


def hello_sentence() -> bytes:
    """The first sentence of hello_24k.wav, PCM16 24 kHz."""
    with wave.open(str(DATA / "hello_24k.wav")) as wav:
        pcm: bytes = wav.readframes(wav.getnframes())
    return pcm[: 24 * 2 * SENTENCE_MS]


@dataclass
class BridgeApp:
    """What the app side saw, per call."""

    url: str
    transports: list[MediaStreamTransport] = field(default_factory=list)
    first_model_event_had_call: list[bool] = field(default_factory=list)
    dtmf: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def websockets_bridge(
    provider: str,
    model_url: str | None,
    *,
    session: Mapping[str, Any] | None = None,
    on_transport: Callable[[MediaStreamTransport], None] | None = None,
    **options: Any,
) -> AsyncIterator[BridgeApp]:
    """A media-stream endpoint on 127.0.0.1 that bridges each call to ``model_url``."""
    app = BridgeApp("")

    async def handler(conn: ServerConnection) -> None:
        transport = MediaStreamTransport(conn, provider, url=model_url, **options)
        app.transports.append(transport)
        transport.on("dtmf", lambda e: app.dtmf.append(e.digit))

        def first(event: Any) -> None:
            if not app.first_model_event_had_call:
                app.first_model_event_had_call.append(transport.call is not None)

        transport.on("*", first)
        if on_transport is not None:
            on_transport(transport)
        try:
            await transport.connect(initial_session_config=session)
            await transport.wait_closed()
        except Exception as exc:
            app.errors.append(exc)
        finally:
            await transport.close()
            app.done.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        app.url = f"ws://127.0.0.1:{port}/media-stream"
        yield app
