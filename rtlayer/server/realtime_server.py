"""``RealtimeServer``: the embedded Realtime-compatible server, in-process.

```python
async with RealtimeServer() as server:           # 127.0.0.1, a free port, the echo responder
    client = openai.AsyncOpenAI(api_key="x", base_url=server.url + "/v1")
    async with client.realtime.connect(model="gpt-realtime") as conn: ...
```

It binds 127.0.0.1 by default; bound to any other address it refuses to start without an API key.
With ``certfile``/``keyfile`` it serves https and wss. The WebRTC front (``rtlayer.server.webrtc``)
installs its routes when present, and ``sip_port`` starts the SIP front (``rtlayer.server.sip``).
"""

from __future__ import annotations

import importlib
import ssl
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

from aiohttp import web

from rtlayer.server.app import create_app
from rtlayer.server.responders import Responder
from rtlayer.server.state import DEFAULT_AUDIO_PACING, ServerLimits, ServerState

__all__ = ["RealtimeServer"]


class _Closable(Protocol):
    async def close(self) -> None: ...


class RealtimeServer:
    """Runs the embedded server on a loop; ``url``/``ws_url`` are valid between start and close."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        responder: Responder | None = None,
        *,
        audio_pacing: float = DEFAULT_AUDIO_PACING,
        limits: ServerLimits | None = None,
        sip_port: int | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        clock: Callable[[], float] = time.time,
        allow_origins: Iterable[str] = (),
    ) -> None:
        """``audio_pacing``: WebSocket answer audio at this multiple of real time (0: as fast as produced).
        ``clock``: Unix seconds, what ephemeral keys expire against (tests move it instead of sleeping).
        ``limits``: per-server and per-session bounds (``ServerLimits``: sessions, message size, and the
        per-session bytes of conversation, queued outbound events and input audio).
        ``allow_origins``: web pages (``https://app.example``, or ``*``) that may use the server from a
        browser besides its own pages; every other ``Origin`` is refused with 403."""
        # ServerState refuses a non-loopback host without a key, before anything is bound.
        self.state = ServerState(
            host=host,
            api_key=api_key,
            responder=responder,
            audio_pacing=audio_pacing,
            limits=limits,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            clock=clock,
            allow_origins=allow_origins,
        )
        if (certfile is None) != (keyfile is None):
            raise ValueError("TLS needs both certfile and keyfile")
        self.host = host
        self.port = port
        self.sip_port = sip_port
        self.certfile = certfile
        self.keyfile = keyfile
        self.sip: Any = None
        """The SIP front (``start_sip_front``'s result) when ``sip_port`` was given."""
        self._runner: web.AppRunner | None = None

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def url(self) -> str:
        """``http(s)://host:port``; append ``/v1`` for an ``openai`` client's ``base_url``."""
        return self.state.base_url

    @property
    def addresses(self) -> list[Any]:
        """The socket addresses it listens on (empty before start and after close)."""
        return list(self._runner.addresses) if self._runner is not None else []

    @property
    def ws_url(self) -> str:
        """``ws(s)://host:port/v1/realtime`` (add ``?model=...``)."""
        return ("wss" if self.tls else "ws") + self.url[self.url.index(":") :] + "/v1/realtime"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("server already started")
        app = create_app(self.state)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        ssl_context: ssl.SSLContext | None = None
        if self.certfile is not None:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.certfile, self.keyfile)
        site = web.TCPSite(runner, self.host, self.port, ssl_context=ssl_context, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        self.port = int(bound[1])
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.state.base_url = f"{'https' if self.tls else 'http'}://{host}:{self.port}"
        if self.sip_port is not None:
            try:
                self.sip = await self._start_sip()
            except BaseException:
                await self.close()
                raise

    async def _start_sip(self) -> _Closable:
        sip = importlib.import_module("rtlayer.server.sip")
        front: _Closable = await sip.start_sip_front(self.state, self.host, self.sip_port)
        return front

    async def close(self) -> None:
        """End every session and call, stop the fronts, release the port. Idempotent."""
        if self.sip is not None:
            sip, self.sip = self.sip, None
            await sip.close()
        for call in list(self.state.calls):
            try:
                await call.hangup()
            except Exception:  # one broken call must not keep the port bound
                pass
        for runner in list(self.state.runners.values()):
            runner.close()
        if self._runner is not None:
            runner_, self._runner = self._runner, None
            await runner_.cleanup()

    async def __aenter__(self) -> RealtimeServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
