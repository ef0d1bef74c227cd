"""``ClientShell``: what every transport does the same way around its medium, written once.

A transport (WebSocket, fetch-upgrade, WebRTC, SIP) only says how to reach its endpoint (``_endpoint``),
how to open a session there (``_open_session``) and how to let go of what it opened (``_release``).
Everything else is here, so that every transport behaves the same:

- **the connect preamble**: one connection at a time (a second ``connect()`` raises
  ``LocalProtocolError`` on every transport); the key (argument, constructor option, a function that
  fetches one, ``OPENAI_API_KEY``); where to connect, by one rule (``_connect``): no URL and no key ->
  the embedded server (started in-process with ``responder``, stopped at ``close()``), a key and no URL
  -> the hosted service, a URL -> that server; the INFO log line that says which; ``url`` and
  ``embedded_server`` afterwards;
- **status**: ``status`` and the ``connection_change`` events;
- **tasks**: what the transport spawns is tracked and cancelled at ``close()``;
- **closing**: ``close()`` is idempotent, never raises for what the peer did, and always ends in
  ``disconnected`` with no task left;
- ``async with transport`` (typed as the transport itself) and ``async for event in transport``;
- ``ReconnectBudget``, the reconnection policy of the transports that reconnect (sans-I/O).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypedDict, Unpack

from ..exceptions import LocalProtocolError
from ..transport import ConnectionChangeEvent, EventEmitter, EventStream, TransportStatus
from ._connect import (
    HOSTED_BASE_URL,
    ApiKey,
    SecretRedactor,
    env_api_key,
    resolve_api_key,
    safe_url,
)
from ._session_methods import SessionMethods

if TYPE_CHECKING:
    from ..audio import PlaybackTracker
    from ..server import RealtimeServer
    from ..server.responders import Responder

__all__ = ["ClientShell", "ReconnectBudget", "ShellOptions", "Target"]

logger = logging.getLogger("rtlayer.transports")


class ShellOptions(TypedDict, total=False):
    """The options every transport takes (keyword arguments of each transport's constructor).

    ``url``: the server (any form ``_connect`` reads); none: the rule decides. ``api_key``: a key, or a
    (sync or async) function that fetches one (an ephemeral key); none: ``OPENAI_API_KEY``, if set.
    ``model``: the model asked for (default ``gpt-realtime``). ``responder``: what the implicit embedded
    server answers with (a ``ScriptedResponder``, your own ``Responder``; default the echo).
    ``headers``: request headers; for the socket transports they replace the default auth, as in the
    official SDKs. ``playback_tracker``: the app's playback position, for truncation at what was heard.
    ``connect_timeout``: seconds ``connect()`` may take in all (default 10).
    """

    url: str | None
    api_key: ApiKey | None
    model: str
    responder: Responder | None
    headers: Mapping[str, str] | None
    playback_tracker: PlaybackTracker | None
    connect_timeout: float


@dataclass(frozen=True, slots=True)
class Target:
    """Where ``connect()`` goes: the server's URL as given (or the embedded server's, or the hosted
    service's), the key to present, and which branch of the rule chose it (for the log line)."""

    base: str
    key: str | None
    why: str


class ClientShell(SessionMethods, EventEmitter):
    """The shared client shell (see the module docstring); transports subclass it."""

    hosted_url: str = HOSTED_BASE_URL
    """Where a transport given a key and no URL connects (a gateway in front of the service may be set here,
    on the class or on one transport)."""

    def __init__(self, **options: Unpack[ShellOptions]) -> None:
        super().__init__()
        url = options.get("url")
        headers = options.get("headers")
        self.url: str | None = url
        """Before ``connect()``: the URL given, if any. After: the endpoint the transport connected to
        (the embedded server's, the hosted service's or the given server's)."""
        self.embedded_server: RealtimeServer | None = None
        """The embedded server this transport started (no URL and no key), until ``close()``."""
        self.responder = options.get("responder")
        """What the implicit embedded server answers with (its default, an echo, when None)."""
        self.model = options.get("model", "gpt-realtime")
        self.headers = dict(headers) if headers is not None else None
        self.tracker = options.get("playback_tracker")
        self.connect_timeout = options.get("connect_timeout", 10.0)
        self._url_option = url
        self._api_key = options.get("api_key")
        self._redactor = SecretRedactor()
        self._status = TransportStatus.DISCONNECTED
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.last_reason: str | None = None
        """Why the last connection ended (the peer's close code, a keepalive or send timeout, ...); None after
        an ordinary ``close()``."""

    # -- the contract ----------------------------------------------------------------------------------------

    @property
    def status(self) -> TransportStatus:
        return self._status

    async def connect(
        self,
        url: str | None = None,
        api_key: ApiKey | None = None,
        model: str | None = None,
        call_id: str | None = None,
        initial_session_config: Mapping[str, Any] | None = None,
    ) -> None:
        """Connect (see the module docstring for where) and wait until the session exists."""
        if self._status is not TransportStatus.DISCONNECTED:
            raise LocalProtocolError(f"connect() while {self._status.value}: close() first")
        self._check_connect(call_id, initial_session_config or {})
        self._closing = False
        self.model = model or self.model
        self._set_status(TransportStatus.CONNECTING)
        try:
            target = await self._resolve_target(url, api_key, call_id)
            endpoint = self._endpoint(target.base, call_id)
            self.url = endpoint
            logger.info("%s: connecting to %s (%s)", type(self).__name__, safe_url(endpoint), target.why)
            await self._open_session(endpoint, target.key, call_id, initial_session_config or {})
        except BaseException:
            await self._shutdown("connect failed")
            raise

    async def close(self) -> None:
        """Closes everything this transport opened. Idempotent (safe before ``connect`` too), never raises
        for what the peer did, and always ends in ``disconnected``."""
        await self._shutdown(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __aiter__(self) -> EventStream[dict[str, Any]]:
        """``async for event in transport``: every raw server event, until the transport closes (the same
        stream as ``events()``)."""
        stream: EventStream[dict[str, Any]] = self.events()
        return stream

    # -- for transports --------------------------------------------------------------------------------------

    def _check_connect(self, call_id: str | None, config: Mapping[str, Any]) -> None:
        """Refuses (raising ``LocalProtocolError``) what this medium cannot do, before anything starts."""

    def _endpoint(self, base: str, call_id: str | None) -> str:
        """The endpoint this medium needs on the server at ``base`` (raises ``InvalidURL``)."""
        raise NotImplementedError

    async def _open_session(
        self, endpoint: str, key: str | None, call_id: str | None, config: Mapping[str, Any]
    ) -> None:
        """Opens the medium and waits for the session; sets ``connected`` when it is there."""
        raise NotImplementedError

    async def _release(self, reason: str | None) -> None:
        """Lets go of what the medium opened (a socket, a peer connection); must not wait unboundedly."""

    def _has_open_medium(self) -> bool:
        """Whether the medium still holds something that ``close()`` must release."""
        return False

    def _set_status(self, status: TransportStatus, attempt: int = 0, reason: str | None = None) -> None:
        if status is self._status and status is not TransportStatus.RECONNECTING:
            return
        self._status = status
        self.emit("connection_change", ConnectionChangeEvent(status, attempt, reason))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _shutdown(self, reason: str | None) -> None:
        """The one way down, for ``close()``, a failed ``connect()`` and a connection the peer ended."""
        if (
            self._status is TransportStatus.DISCONNECTED
            and not self._tasks
            and self.embedded_server is None
            and not self._has_open_medium()
        ):
            self.close_listeners()
            return
        self._closing = True
        self.last_reason = reason
        try:
            self._set_status(TransportStatus.DISCONNECTING, reason=reason)
            try:
                await self._release(reason)
            except Exception:  # what the peer did never escapes close()
                logger.debug("releasing the connection failed", exc_info=True)
            current = asyncio.current_task()
            tasks = [t for t in self._tasks if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._drain_listener_tasks()
            await self._stop_embedded_server()
        finally:
            self._set_status(TransportStatus.DISCONNECTED, reason=reason)
            self.close_listeners()

    # -- internals -------------------------------------------------------------------------------------------

    async def _resolve_target(self, url: str | None, api_key: ApiKey | None, call_id: str | None) -> Target:
        key = await resolve_api_key(api_key if api_key is not None else self._api_key)
        url = url or self._url_option
        if url is None and key is None and call_id is None and env_api_key() is None:
            server = await self._start_embedded_server()
            return Target(server.url, None, "the embedded server: no URL and no key given")
        key = key or env_api_key()
        if key:
            self._redactor.secrets.add(key)
        if url is None:
            return Target(self.hosted_url, key, "the hosted service: a key and no URL given")
        return Target(url, key, "the URL given")

    async def _start_embedded_server(self) -> RealtimeServer:
        # Imported here: only the no-URL default needs the server; transports do not depend on it otherwise.
        from ..server import RealtimeServer

        server = RealtimeServer(responder=self.responder)
        await server.start()
        self.embedded_server = server
        return server

    async def _stop_embedded_server(self) -> None:
        if self.embedded_server is not None:
            server, self.embedded_server = self.embedded_server, None
            with contextlib.suppress(Exception):
                await server.close()


class ReconnectBudget:
    """How many reconnection attempts are left, and how long to wait before the next (sans-I/O).

    Every failure counts: an attempt whose connection could not be opened, and a connection that opened and
    then dropped before it had stayed up ``healthy_after`` seconds (a server that accepts and then fails
    every connection must not be reconnected to forever). A connection that stayed up that long refills the
    budget. Waits grow exponentially from ``backoff[0]`` to ``backoff[1]`` seconds, with jitter (x0.5-1).
    """

    def __init__(self, attempts: int, backoff: tuple[float, float], healthy_after: float = 30.0) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.healthy_after = healthy_after
        self.used = 0
        self._up_since: float | None = None

    def connected(self, now: float) -> None:
        """A connection is open (and its session exists)."""
        self._up_since = now

    def lost(self, now: float) -> None:
        """The open connection dropped: it refills the budget if it had been up long enough."""
        if self._up_since is not None and now - self._up_since >= self.healthy_after:
            self.used = 0
        self._up_since = None

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt (which it counts), or None once the budget is spent."""
        if self.used >= self.attempts:
            return None
        self.used += 1
        base, cap = self.backoff
        return float(min(cap, base * 2 ** (self.used - 1)) * random.uniform(0.5, 1.0))
