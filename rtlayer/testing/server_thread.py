"""``BackgroundServer``: the embedded server on its own event loop, in a thread.

A test's server should not depend on the test's event loop: a module- or session-scoped server outlives
each test's loop under pytest-asyncio, and synchronous tests (a Flask app that calls a voice backend,
a CLI) have no loop at all. So the server runs on a loop of its own in a daemon thread, and the test
talks to it over loopback like any client. Start and close wait for the server, with a timeout each.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import Responder
from rtlayer.server.state import ServerLimits

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """A ``RealtimeServer`` (same arguments) running in a thread; ``url`` and ``ws_url`` once started.

    ```python
    with BackgroundServer(responder=ScriptedResponder([...])) as server:
        transport = WebSocketTransport()
        await transport.connect(url=server.ws_url, api_key="test")
    ```
    """

    def __init__(
        self, responder: Responder | None = None, *, limits: ServerLimits | None = None, **options: Any
    ) -> None:
        self.server = RealtimeServer(responder=responder, limits=limits, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the REST base (``url + "/v1"`` for the official clients)."""
        return str(self.server.url)

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/v1/realtime``."""
        return str(self.server.ws_url)

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start the thread and the server in it; returns once the server listens."""
        if self._thread is not None:
            raise RuntimeError("BackgroundServer already started")
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # reported to start(), which raises it in the caller
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="rtlayer-test-server", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError(f"the embedded server did not start within {timeout} s")
        if failure:
            self._thread.join(timeout)
            self._thread = None
            raise failure[0]
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Close the server (its sessions end) and stop the thread. Safe to call twice."""
        thread, loop = self._thread, self._loop
        self._thread = self._loop = None
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.close(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
