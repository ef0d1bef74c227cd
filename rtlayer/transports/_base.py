"""``BaseRealtimeTransport``: the asyncio machinery every socket-like transport shares.

A concrete transport only says how to open one connection (``_open`` returns a ``WireConnection``).
``ClientShell`` does what every transport shares (where to connect, the embedded server, status, tasks,
closing); this class does what the socket transports share around a sans-I/O ``ClientSession``: the
connect timeout, a write timeout (``send_timeout``), keepalive pings, reconnection with backoff after an
abnormal close within a budget that counts every failure (session config re-sent, each step announced),
audio conversion to and from the app's formats, and the receive fast path for audio deltas.

Two deliberate choices, both visible to the app:

- **The ``session.update`` carries only what the app configured** (plus ``type`` and ``model``): the
  server's own defaults fill the rest, so rtlayer never overrides a default the app did not ask to change
  (the JS SDK merges its own defaults in; pass them in ``initial_session_config`` to get the same).
- **A reconnection restores the configuration, not the conversation.** The server starts a new session
  with an empty conversation; rtlayer re-sends the merged ``session.update`` of everything the app
  configured, first in line, and announces each step (``connection_change``: ``reconnecting`` with the
  attempt number, then ``connected`` with reason ``"reconnected"``). It does not replay items: their ids
  would change, a response that was streaming cannot be resumed, and audio the user already heard must
  not be spoken twice. An app that needs the earlier context rebuilds it on that ``connected`` event
  (``send_message(..., trigger_response=False)`` for each item it kept, or ``reset_history``). Audio sent
  while reconnecting, or still queued when the connection dropped, is dropped (counted in
  ``dropped_audio_bytes``): it would be stale for the new session's turn detection. Other client events wait
  in a bounded queue (at most 256, the oldest dropped and counted in ``dropped_events``).

While connected, ``send_audio`` returns once the socket has taken the audio (and any event queued before
it), so an app streaming over a slow or stalled network is slowed down rather than buffering without bound;
``queued`` says how many messages wait for the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, Unpack

from websockets.exceptions import ConnectionClosed

from ..audio import AudioFormat
from ..client.session import ClientSession
from ..exceptions import ConnectError, ConnectionClosedError, ConnectTimeout
from ..protocol.codec import dumps, loads
from ..transport import ErrorEvent, TransportStatus, WireConnection
from ._connect import RedactingLogger, auth_for, connect_failure, safe_url, websocket_url
from ._shell import ClientShell, ReconnectBudget, ShellOptions

__all__ = ["BaseRealtimeTransport", "Handshake", "WireConnection"]

logger = logging.getLogger("rtlayer.transports")

_DELTA = "response.output_audio.delta"
# Close codes after which reconnecting cannot help (the peer refused us or our data), besides a normal close.
_FINAL_CLOSE_CODES = frozenset({1000, 1002, 1003, 1007, 1008, 1009, 1010})
_MAX_QUEUED_WHILE_RECONNECTING = 256


class Handshake(NamedTuple):
    """The opening request of one connection: where, with which headers and subprotocols (the auth)."""

    url: str
    headers: dict[str, str]
    subprotocols: list[str] | None


#: how ``ClientSession.encode_audio`` starts every append it builds
_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'


class BaseRealtimeTransport(ClientShell):
    """The shared socket shell; subclasses implement ``_open``.

    ``send_timeout`` bounds one write to the socket: a peer that stops reading for that long is presumed
    dead (the ``send_audio`` that waited raises ``ConnectionClosedError``, an ``error`` event with code
    ``send_timeout`` is emitted, and the connection is dropped, then reconnected when ``reconnect``).
    ``max_reconnect_attempts`` counts every failure since the connection was last healthy (up for
    ``reconnect_healthy_after`` seconds), connections that opened and then failed included.
    """

    def __init__(
        self,
        *,
        use_subprotocol_auth: bool = False,
        input_format: AudioFormat | None = None,
        output_format: AudioFormat | None = None,
        output_frame_ms: int | None = None,
        send_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 20.0,
        reconnect: bool = True,
        max_reconnect_attempts: int = 5,
        reconnect_backoff: tuple[float, float] = (0.25, 5.0),
        reconnect_healthy_after: float = 30.0,
        retrieve_items: bool = False,
        **options: Unpack[ShellOptions],
    ) -> None:
        super().__init__(**options)
        self.use_subprotocol_auth = use_subprotocol_auth
        self.send_timeout = send_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_backoff = reconnect_backoff
        self.reconnect_healthy_after = reconnect_healthy_after
        self._wire_logger = RedactingLogger(
            logging.getLogger(f"rtlayer.wire.{type(self).__name__}"), self._redactor
        )
        self.session = ClientSession(
            input_format=input_format,
            output_format=output_format,
            output_frame_ms=output_frame_ms,
            tracker=self.tracker,
            emit=self.emit,
            send=self._send_dict,
            retrieve_items=retrieve_items,
        )
        self._conn: WireConnection | None = None
        self._out: deque[str] = deque()
        self._out_ready = asyncio.Event()
        # Set whenever nothing waits in ``_out`` (or nothing can be sent any more): ``send_audio`` awaits it,
        # so an app streaming audio over a stalled socket is slowed down instead of queueing without bound.
        self._out_drained = asyncio.Event()
        self._out_drained.set()
        self._session_seen = asyncio.Event()
        self._target: Handshake | None = None
        self._desired_config: dict[str, Any] = {}
        self._budget = ReconnectBudget(max_reconnect_attempts, reconnect_backoff, reconnect_healthy_after)
        self._stalled: WireConnection | None = None
        self._presumed_dead: tuple[WireConnection, str] | None = None  # what the transport itself gave up on
        #: counters: what was dropped and why (bounded buffers count what they drop)
        self.dropped_audio_bytes = 0
        self.dropped_events = 0
        self.reconnects = 0

    # -- the contract ----------------------------------------------------------------------------------------

    @property
    def muted(self) -> bool | None:
        return self.session.muted

    @property
    def queued(self) -> int:
        """Messages waiting for the socket (events sent while it was busy, or while reconnecting)."""
        return len(self._out)

    async def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None:
        """App audio (in ``input_format``) -> the session's input format -> ``input_audio_buffer.append``."""
        self._require_open()
        text = self.session.encode_audio(data)
        conn = self._conn
        if self._status is not TransportStatus.CONNECTED or conn is None:
            self.dropped_audio_bytes += len(data)  # reconnecting: stale audio would confuse turn detection
            await asyncio.sleep(0)  # an app streaming in a loop must still let the reconnection (or end) run
        elif self._out:
            # Events wait for the socket: queue behind them, in order, and return once the socket took it all.
            self._queue_text(text)
            await self._out_drained.wait()
            if self._stalled is conn:
                raise ConnectionClosedError(self._stall_message())
        else:
            try:
                async with asyncio.timeout(self.send_timeout):
                    await conn.send(text)
            except ConnectionClosed:
                self.dropped_audio_bytes += len(data)  # the reader sees the end too: reconnects or shuts down
                await asyncio.sleep(0)  # (and must get to run, however fast the app keeps sending)
            except TimeoutError:
                self.dropped_audio_bytes += len(data)
                self._send_stalled(conn)
                raise ConnectionClosedError(self._stall_message()) from None
        if commit:
            self.send_event({"type": "input_audio_buffer.commit"})

    def interrupt(self, cancel_ongoing_response: bool = True) -> None:
        """Stop playback (``audio_interrupted``), cancel the response, truncate at what the user heard."""
        self._require_open()
        self.session.interrupt(asyncio.get_running_loop().time(), cancel_ongoing_response)

    def mute(self, muted: bool) -> None:
        """While muted, ``send_audio`` sends silence of the same length (turn detection keeps its timeline)."""
        self.session.mute(muted)

    # -- for subclasses --------------------------------------------------------------------------------------

    async def _open(self, request: Handshake, timeout: float) -> WireConnection:  # noqa: ASYNC109
        """Opens one connection (raising ``ConnectError`` subclasses); ``timeout`` bounds the handshake."""
        raise NotImplementedError

    def _close_code(self, conn: WireConnection) -> int | None:
        """The close code of a connection that ended (None: no closing handshake happened)."""
        return conn.close_code

    # -- the shell's hooks -----------------------------------------------------------------------------------

    def _endpoint(self, base: str, call_id: str | None) -> str:
        return websocket_url(base, self.model, call_id)

    async def _open_session(
        self, endpoint: str, key: str | None, call_id: str | None, config: Mapping[str, Any]
    ) -> None:
        """Opens the socket, sends the initial ``session.update`` and waits for the session to exist."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        headers, subprotocols = auth_for(endpoint, key, self.headers, self.use_subprotocol_auth)
        self._target = Handshake(endpoint, headers, subprotocols)
        self._desired_config = {}
        self._budget = ReconnectBudget(
            self.max_reconnect_attempts, self.reconnect_backoff, self.reconnect_healthy_after
        )
        update = self.session.session_update(config, None if call_id else self.model)
        self._remember_config(update["session"])
        self._session_seen.clear()
        conn = await self._open_within(deadline)
        self._attach(conn)
        self._set_status(TransportStatus.CONNECTED)
        self._send_dict(update)
        if call_id is None:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._session_seen.wait()
            except TimeoutError:
                raise ConnectTimeout(
                    f"connected, but no session.created within {self.connect_timeout} s"
                ) from None
        self._budget.connected(loop.time())

    def _has_open_medium(self) -> bool:
        return self._conn is not None

    async def _release(self, reason: str | None) -> None:
        conn, self._conn = self._conn, None
        self._out_ready.set()
        self._out_drained.set()  # a send_audio waiting for the socket returns: nothing more will be sent
        try:
            if conn is not None:
                await _close_or_abort(conn, 1000, "", 2.0)
        finally:
            self.session.connection_lost()
            self._out.clear()

    # -- internals -------------------------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._status in (TransportStatus.DISCONNECTED, TransportStatus.DISCONNECTING):
            why = f" ({self.last_reason})" if self.last_reason else ""
            raise ConnectionClosedError(f"the transport is {self._status.value}{why}: call connect() first")

    def _require_session(self) -> ClientSession:
        self._require_open()
        return self.session

    def _remember_config(self, session: dict[str, Any]) -> None:
        """What the app asked for, merged, so that a reconnection restores it."""
        _deep_merge(self._desired_config, copy.deepcopy(session))

    async def _open_within(self, deadline: float) -> WireConnection:
        assert self._target is not None
        url = self._target.url
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise ConnectTimeout(f"no connection within {self.connect_timeout} s")
        try:
            async with asyncio.timeout(remaining):
                return await self._open(self._target, remaining)
        except TimeoutError as exc:
            if isinstance(exc, ConnectError):
                raise
            raise ConnectTimeout(f"no answer from {safe_url(url)} within {self.connect_timeout} s") from None
        except OSError as exc:
            raise connect_failure(exc, url) from None

    def _attach(self, conn: WireConnection) -> None:
        self._conn = conn
        self._spawn(self._reader(conn))
        self._spawn(self._writer(conn))
        if self.ping_interval:
            self._spawn(self._keepalive(conn))

    def _send_dict(self, event: dict[str, Any]) -> None:
        self._queue_text(dumps(event))

    def _queue_text(self, text: str) -> None:
        if self._status is TransportStatus.RECONNECTING and len(self._out) >= _MAX_QUEUED_WHILE_RECONNECTING:
            self._out.popleft()
            self.dropped_events += 1
        self._out.append(text)
        self._out_ready.set()
        self._out_drained.clear()

    def _stall_message(self) -> str:
        return f"the server took nothing for {self.send_timeout:g} s (it stopped reading): connection dropped"

    def _send_stalled(self, conn: WireConnection) -> None:
        """A write made no progress within ``send_timeout``: the peer stopped reading. A half-written frame
        leaves the socket unusable, so drop it; the reader then sees the end and reconnects or shuts down."""
        if self._stalled is conn:
            return
        self._stalled = conn
        self._presumed_dead = (conn, self._stall_message())
        self.emit("error", ErrorEvent(self._stall_message(), "send_timeout"))
        _abort(conn)

    async def _writer(self, conn: WireConnection) -> None:
        while self._conn is conn:
            await self._out_ready.wait()
            self._out_ready.clear()
            while self._out and self._conn is conn:
                text = self._out[0]
                try:
                    async with asyncio.timeout(self.send_timeout):
                        await conn.send(text)
                except ConnectionClosed:
                    return  # kept in the queue: sent after a reconnection
                except TimeoutError:
                    self._send_stalled(conn)
                    return
                if self._out and self._out[0] is text:
                    self._out.popleft()
            if not self._out:
                self._out_drained.set()

    async def _reader(self, conn: WireConnection) -> None:
        session = self.session
        listeners = self._listeners  # read live: the app may add listeners at any time
        recv = self._receiver(conn)
        loop = asyncio.get_running_loop()
        exc: BaseException | None = None
        try:
            while True:
                message = await recv()
                now = loop.time()
                try:
                    event = loads(message)  # str or bytes: the JSON parser checks UTF-8 itself
                except ValueError as err:
                    self._bad_frame(f"a frame that is not JSON ({err})")
                    continue
                if not isinstance(event, dict):
                    self._bad_frame(f"a JSON {type(event).__name__} where an event object was expected")
                    continue
                if (
                    event.get("type") == _DELTA
                    and _DELTA not in listeners
                    and isinstance(event.get("delta"), str)
                ):
                    # Hot path: an audio delta has no view and nobody listens to it by name, so only the
                    # raw ``*`` listeners (an SDK's model) and the audio itself need it.
                    if "*" in listeners:
                        self.emit("*", event)
                    session.receive_audio_delta(
                        event.get("response_id") or "",
                        event.get("item_id") or "",
                        event.get("content_index") or 0,
                        event["delta"],
                        now,
                    )
                    continue
                session.receive_event(event, now)
                if not self._session_seen.is_set() and event.get("type") in (
                    "session.created",
                    "session.updated",
                ):
                    self._session_seen.set()
        except ConnectionClosed as closed:
            exc = closed
        except (
            Exception
        ) as err:  # a bug or a transport failure: report it, then treat it as a lost connection
            logger.exception("receive loop failed")
            self.emit("error", ErrorEvent(f"receive loop failed: {err}", "receive_failed", exception=err))
            exc = err
        if self._conn is conn and not self._closing:
            self._spawn(self._connection_lost(conn, exc))

    def _receiver(self, conn: WireConnection) -> Callable[[], Awaitable[str | bytes]]:
        """How to read one message; a subclass may skip work (e.g. UTF-8 decoding the JSON parser redoes)."""
        return conn.recv

    def _bad_frame(self, what: str) -> None:
        self.emit(
            "error", ErrorEvent(f"the server sent {what}; ignored", "malformed_frame", "transport_error")
        )

    async def _keepalive(self, conn: WireConnection) -> None:
        """A ping every ``ping_interval``; no pong within ``ping_timeout`` of starting it (sending it
        included: a ping stuck behind a blocked write counts too) drops the connection."""
        assert self.ping_interval
        while self._conn is conn:
            await asyncio.sleep(self.ping_interval)
            try:
                async with asyncio.timeout(self.ping_timeout):
                    pong = await conn.ping()
                    await pong
            except ConnectionClosed:
                return
            except TimeoutError:
                why = f"no pong within {self.ping_timeout:g} s: connection presumed dead"
                self._presumed_dead = (conn, why)
                self.emit("error", ErrorEvent(why, "keepalive_timeout"))
                _abort(conn)
                return

    async def _connection_lost(self, conn: WireConnection, exc: BaseException | None) -> None:
        code = self._close_code(conn)
        reason = f"connection closed (code {code})" if code is not None else f"connection lost ({exc!r})"
        if self._presumed_dead is not None and self._presumed_dead[0] is conn:
            reason = f"{reason}: {self._presumed_dead[1]}"
        loop = asyncio.get_running_loop()
        self._budget.lost(loop.time())
        self.session.connection_lost()
        self._conn = None
        self._out_ready.set()  # lets the old writer see it is detached
        self._drop_queued_audio()
        await _close_or_abort(conn, 1011, "", 1.0)  # whatever ended the reader, the socket goes too
        if self.reconnect and code not in _FINAL_CLOSE_CODES and self._target is not None:
            if await self._reconnect(reason):
                return
        await self._shutdown(reason)

    def _drop_queued_audio(self) -> None:
        """Audio still queued when the connection dropped is stale by the time a new session exists (it would
        confuse the new session's turn detection): drop it, count it, and release a waiting ``send_audio``.
        Other queued events stay, to be sent after a reconnection."""
        kept: deque[str] = deque()
        for text in self._out:
            if text.startswith(_APPEND_PREFIX):
                payload = len(text) - len(_APPEND_PREFIX) - 2  # the base64, without the closing '"}'
                self.dropped_audio_bytes += payload * 3 // 4 - text.count("=", -4)
            else:
                kept.append(text)
        self._out = kept
        self._out_drained.set()

    async def _reconnect(self, reason: str) -> bool:
        loop = asyncio.get_running_loop()
        budget = self._budget
        while not self._closing:
            delay = budget.next_delay()
            if delay is None:
                break
            attempt = budget.used
            self._set_status(TransportStatus.RECONNECTING, attempt, reason)
            await asyncio.sleep(delay)
            if self._closing:
                return False
            self._session_seen.clear()
            try:
                conn = await self._open_within(loop.time() + self.connect_timeout)
            except (ConnectError, OSError) as err:
                reason = f"reconnection attempt {attempt} failed: {err}"
                continue
            if self._closing:
                await _close_or_abort(conn, 1000, "", 1.0)
                return False
            # The new server session starts from defaults: restore what the app configured, first in line.
            self._out.appendleft(
                dumps({"type": "session.update", "session": {"type": "realtime", **self._desired_config}})
            )
            self._attach(conn)
            budget.connected(loop.time())
            self.reconnects += 1
            self._set_status(TransportStatus.CONNECTED, attempt, "reconnected")
            self._out_ready.set()
            return True
        if not self._closing:
            self.emit(
                "error",
                ErrorEvent(
                    f"gave up reconnecting after {budget.used} attempts: {reason}", "reconnect_failed"
                ),
            )
        return False


async def _close_or_abort(conn: WireConnection, code: int, reason: str, timeout: float) -> None:  # noqa: ASYNC109
    """The closing handshake within ``timeout``; past it, drop the connection, so that a peer that stopped
    reading (or answering) can neither keep the socket open nor leave a ``send`` waiting on it forever."""
    try:
        async with asyncio.timeout(timeout):
            await conn.close(code, reason)
        return
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # our own caller is being cancelled: let it
        # else a cancellation from inside the connection (its reader was aborted): a peer-side end
    except Exception:
        pass
    _abort(conn)


def _abort(conn: WireConnection) -> None:
    """Drops the connection at once, without a closing handshake (``UpgradedConnection.abort``, or the
    asyncio transport under a ``websockets`` connection)."""
    abort = getattr(conn, "abort", None) or getattr(getattr(conn, "transport", None), "abort", None)
    if abort is not None:
        with contextlib.suppress(Exception):
            abort()


def _deep_merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value
