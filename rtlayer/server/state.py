"""What the whole embedded server shares: its configuration, keys, limits, live sessions and calls.

Every front (the WebSocket, WebRTC and SIP fronts and the REST endpoints) receives the one
``ServerState`` of its server and goes through it to check a key, open a session (``create_runner``,
which enforces the session limit), or find a call by id. Nothing here does I/O. The runners it opens
never import this module: each one it opens is given ``observe`` (the server's event observers) and
tells it of its end through ``on_close`` (``forget_runner``).

Ephemeral keys (``ek_...``) are issued by ``POST /v1/realtime/client_secrets``: each carries the
session config it was minted with (applied to the session it opens) and an expiry in Unix time.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rtlayer.exceptions import RequestRefused
from rtlayer.server.core.conversation import DEFAULT_MAX_BYTES as DEFAULT_MAX_CONVERSATION_BYTES
from rtlayer.server.core.input_audio import MAX_BUFFER_BYTES
from rtlayer.server.core.session import ServerSession
from rtlayer.server.origins import OriginPolicy
from rtlayer.server.responders import EchoResponder, Responder, responder_info
from rtlayer.server.runner import EventObserver, SessionRunner, wall_now

if TYPE_CHECKING:
    from rtlayer.audio import AudioFormat

__all__ = [
    "DEFAULT_AUDIO_PACING",
    "Call",
    "CallRegistry",
    "ClientSecret",
    "EventObserver",
    "ServerLimits",
    "ServerState",
    "is_loopback_host",
]

logger = logging.getLogger("rtlayer.server")

DEFAULT_AUDIO_PACING = 4.0
"""WebSocket answer audio goes out at 4x real time by default: like the service, faster than playback
(a client must buffer and truncate at what it played), yet slow enough that an answer is still arriving
when a client interrupts it. ``RealtimeServer`` and ``rtlayer serve`` share this default."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds that keep one misbehaving client from hurting the others."""

    max_sessions: int = 1000
    """Concurrent sessions (every front counts); a new one past this is refused with 429."""
    max_connections: int = 2000
    """Concurrent WebSocket connections, sideband sockets included."""
    max_message_bytes: int = 15 * 1024 * 1024
    """Largest client message, inclusive: a message of exactly this size is accepted, a larger one closes that
    connection with 1009 (message too big); HTTP bodies past it get 413."""
    idle_timeout_s: float | None = 900.0
    """A connection with no client frame and no server event for this long is closed (None: never)."""
    max_queued_bytes: int = 16 * 1024 * 1024
    """Serialized events waiting for one slow reader (a socket or a data channel), in bytes of memory; past
    this the reader is cut off (a WebSocket closed with 1008) and its queue freed, counted in the session's
    stats, rather than the server's memory growing without bound."""
    max_conversation_bytes: int = DEFAULT_MAX_CONVERSATION_BYTES
    """One session's conversation: items (their size in memory) plus the user audio kept. Past it the oldest items are
    dropped (counted); one item larger than all of it is refused with an ``error`` (``invalid_value``)."""
    max_input_buffer_bytes: int = MAX_BUFFER_BYTES
    """One session's input audio buffer (PCM16 24 kHz; default 5 minutes); the oldest audio past it is
    dropped and counted."""
    session_expiry_s: float | None = None
    """Session lifetime passed to the session core (None: its own default, 60 minutes)."""


@dataclass(slots=True)
class ClientSecret:
    """An ephemeral ``ek_`` key and the session config it opens."""

    value: str
    expires_at: int
    session: dict[str, Any]
    call_ids: set[str] = field(default_factory=set)
    """Calls this key opened (``POST /v1/realtime/calls``): the only ones its sideband sockets may join."""


class Call(Protocol):
    """A call (WebRTC or SIP) registered under its ``rtc_...`` id.

    ``runner`` is None while a SIP call waits to be accepted. ``hangup`` ends the call (sends BYE,
    closes the peer connection) and must be safe to call twice.
    """

    @property
    def id(self) -> str: ...

    @property
    def runner(self) -> SessionRunner | None: ...

    async def hangup(self) -> None: ...


class CallRegistry:
    """The server's live calls by id, so ``?call_id=`` sockets and ``/calls/{id}/...`` find them."""

    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}

    def add(self, call: Call) -> None:
        self._calls[call.id] = call

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def remove(self, call_id: str) -> Call | None:
        return self._calls.pop(call_id, None)

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._calls.values()))

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls


@dataclass(slots=True)
class _Counters:
    sessions_opened: int = 0
    connections_refused: int = 0
    sinks_dropped: int = 0
    binary_frames: int = 0
    oversized_messages: int = 0
    origins_refused: int = 0


class ServerState:
    """Configuration and shared registries of one embedded server."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        responder: Responder | None = None,
        audio_pacing: float = DEFAULT_AUDIO_PACING,
        limits: ServerLimits | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], float] = time.time,
        allow_origins: Iterable[str] = (),
    ) -> None:
        """``clock`` (Unix seconds) is what ephemeral keys expire against; tests pass their own.
        ``allow_origins``: web pages (``scheme://host:port``, or ``*``) that may use the server from a
        browser besides its own (``rtlayer.server.origins``)."""
        if api_key is not None and not api_key.strip():
            raise ValueError("the API key is empty (omit it to accept any key on loopback)")
        if api_key is None and not is_loopback_host(host):
            raise ValueError(
                f"refusing to serve on {host!r} without an API key (only loopback may go without)"
            )
        if audio_pacing < 0:
            raise ValueError("audio_pacing must be >= 0 (0 sends audio as fast as it is produced)")
        if responder is None:
            responder = EchoResponder()
        self.host = host
        self.clock = clock
        self._api_key = api_key
        self.responder: Responder = responder
        self.audio_pacing = audio_pacing
        self.limits = limits or ServerLimits()
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.origins = OriginPolicy(allow_origins, loopback=is_loopback_host(host))
        self.calls = CallRegistry()
        self.runners: dict[str, SessionRunner] = {}
        self.connections = 0
        self.counters = _Counters()
        self._base_url = ""
        self._secrets: dict[str, ClientSecret] = {}
        self._observers: list[EventObserver] = []

    @property
    def base_url(self) -> str:
        """``http(s)://host:port`` once the server listens (fronts use it for ``Location`` headers)."""
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = value
        if value:
            self.origins.set_base_url(value)

    # -- keys -------------------------------------------------------------------------------------

    @property
    def requires_key(self) -> bool:
        """Whether a configured key must be presented (without one, loopback accepts any key)."""
        return self._api_key is not None

    def check_key(self, key: str | None, *, allow_ephemeral: bool = True, now: float | None = None) -> bool:
        """True if ``key`` may use the server: the configured key, or a live ``ek_`` key."""
        if key is None or key == "":
            return self._api_key is None
        if allow_ephemeral and key.startswith("ek_"):
            secret = self.client_secret(key, now=now)
            if secret is not None:
                return True
            # An unknown or expired ek_ key is refused even without a configured key: it is a
            # statement that the client expects ephemeral-key checks.
            return False
        if self._api_key is None:
            return True
        return hmac.compare_digest(key.encode(), self._api_key.encode())

    def may_attach(self, key: str | None, call_id: str) -> bool:
        """Whether ``key`` may open a sideband socket on ``call_id``: the server's key, or an ``ek_`` key
        that opened that call (any other ``ek_`` key is scoped to its own session)."""
        if key is not None and key.startswith("ek_"):
            secret = self.client_secret(key)
            return secret is not None and call_id in secret.call_ids
        return self.check_key(key, allow_ephemeral=False)

    def bind_call(self, key: str | None, call_id: str) -> None:
        """Remember that the ``ek_`` key ``key`` (if it is one) opened ``call_id``."""
        if key is not None and key.startswith("ek_"):
            secret = self.client_secret(key)
            if secret is not None:
                secret.call_ids.add(call_id)

    def issue_client_secret(
        self, session: dict[str, Any], seconds: int, *, now: float | None = None
    ) -> ClientSecret:
        """Mint an ``ek_`` key valid for ``seconds`` that opens a session with ``session``."""
        now = self.clock() if now is None else now
        self._purge_secrets(now)
        secret = ClientSecret(
            value="ek_" + secrets.token_urlsafe(24).replace("-", "A").replace("_", "b"),
            expires_at=int(now + seconds),
            session=session,
        )
        self._secrets[secret.value] = secret
        return secret

    def client_secret(self, key: str, *, now: float | None = None) -> ClientSecret | None:
        """The live secret for ``key``, or None if unknown or expired."""
        now = self.clock() if now is None else now
        secret = self._secrets.get(key)
        if secret is None:
            return None
        if secret.expires_at <= now:
            del self._secrets[key]
            return None
        return secret

    def _purge_secrets(self, now: float) -> None:
        for value in [v for v, s in self._secrets.items() if s.expires_at <= now]:
            del self._secrets[value]

    # -- sessions ---------------------------------------------------------------------------------

    def create_runner(
        self,
        *,
        model: str | None = None,
        config: dict[str, Any] | None = None,
        media: AudioFormat | None = None,
        formats_fixed: bool = False,
        audio_pacing: float | None = None,
    ) -> SessionRunner:
        """Open a new session (``session.created`` is queued) and its runner, within the limits.

        ``config`` is a partial session config applied on top of the defaults (an ephemeral key's
        session, or a SIP call's accept payload); ``media`` selects media mode (WebRTC, SIP); ``formats_fixed``
        keeps the config's audio formats whatever a ``session.update`` says (a SIP call's codec). Raises
        ``RequestRefused``: status 429 (``session_limit_reached``) past ``max_sessions``, 400 for a bad config.
        """
        if len(self.runners) >= self.limits.max_sessions:
            self.counters.connections_refused += 1
            raise RequestRefused(
                "session_limit_reached", f"session limit reached ({self.limits.max_sessions})", status=429
            )
        initial = dict(config or {})
        if model and "model" not in initial:
            initial["model"] = model
        extra: dict[str, Any] = {
            "max_conversation_bytes": self.limits.max_conversation_bytes,
            "max_input_buffer_bytes": self.limits.max_input_buffer_bytes,
        }
        if self.limits.session_expiry_s is not None:
            extra["max_duration_s"] = self.limits.session_expiry_s
        session = ServerSession(
            responder_info(self.responder),
            now=wall_now(),
            config=initial or None,
            media=media,
            formats_fixed=formats_fixed,
            **extra,
        )
        runner = SessionRunner(
            session,
            self.responder,
            observe=self.observe,
            audio_pacing=self.audio_pacing if audio_pacing is None else audio_pacing,
        )
        runner.on_close(self.forget_runner)  # the runner tells us it closed; it never imports this module
        self.runners[runner.id] = runner
        self.counters.sessions_opened += 1
        return runner

    def forget_runner(self, runner: SessionRunner) -> None:
        """Called by a runner once it has closed."""
        self.runners.pop(runner.id, None)

    # -- observation ------------------------------------------------------------------------------

    def add_event_observer(self, observer: EventObserver) -> Callable[[], None]:
        """Observe every server event of this server's sessions; returns a function that stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def observe(self, session_id: str, event: dict[str, Any]) -> None:
        """Hand one event to every observer; an observer that raises is logged, never fatal."""
        for observer in self._observers:
            try:
                observer(session_id, event)
            except Exception:
                logger.exception("event observer failed")
