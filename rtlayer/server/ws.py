"""The WebSocket front: ``GET /v1/realtime`` (new sessions and ``?call_id=`` sideband sockets).

Authentication follows the service: ``Authorization: Bearer KEY`` from servers, or, from browsers that
cannot set headers, the subprotocols ``realtime`` + ``openai-insecure-api-key.KEY`` (the answer then
names ``realtime``, or the browser drops the socket). ``ek_`` keys work in both places and open a
session with the config they were minted with. A refused handshake is an HTTP status with the
service's JSON error body. ``OpenAI-Beta`` is accepted and ignored.

Once open, every text frame goes to the session; a binary frame is answered with an ``error`` event
and the socket carries on; a message over the size limit closes that socket only (1009; a message of
exactly the limit is accepted). A reader that falls ``max_queued_bytes`` behind is closed (1008).

A sideband socket (``?call_id=``) acts on someone's call, so it needs the server's key (as the service
needs the app's), or an ``ek_`` key that opened that very call: any other ``ek_`` key is refused (403).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from rtlayer.exceptions import RequestRefused
from rtlayer.server.http import STATE_KEY, require_key
from rtlayer.server.state import Call, ServerState

if TYPE_CHECKING:
    from rtlayer.server.runner import SessionRunner

__all__ = ["WebSocketSink", "realtime_websocket"]

logger = logging.getLogger("rtlayer.server")

_BACKGROUND: set[asyncio.Task[None]] = set()  # closing tasks, referenced until they finish
_SLOW_CLOSE_S = 1.0  # how long a slow reader's close may take before its connection is aborted
_SLICE_S = 0.001  # a socket's frames are handled for this long at most before the loop runs the others


class WebSocketSink:
    """Queues serialized events for one socket and writes them in order from one task.

    The runner calls the sink synchronously; the writer task absorbs the socket's back-pressure. A client
    that stops reading is cut off once more than ``limit`` bytes of events wait for it: the queue is freed,
    the socket closed with 1008 (and its transport aborted if the close cannot get through), and what was
    dropped is counted in the session's stats and ``state.counters.sinks_dropped``.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        state: ServerState,
        runner: SessionRunner | None = None,
        abort: Callable[[], None] | None = None,
    ) -> None:
        self.ws = ws
        self.state = state
        self.runner = runner
        self.limit = state.limits.max_queued_bytes
        self.dropped = False
        self.queued_bytes = 0
        self.events_queued = 0
        self._abort = abort
        self._queue: deque[tuple[str, int]] = deque()
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._write())

    def __call__(self, text: str) -> None:
        size = sys.getsizeof(text)
        if self.dropped:
            self._count(1, size)
            return
        self.events_queued += 1
        if self.queued_bytes + size > self.limit:
            self._cut_off(size)
            return
        self._queue.append((text, size))
        self.queued_bytes += size
        self._wakeup.set()

    def _count(self, events: int, nbytes: int, cut_off: bool = False) -> None:
        if self.runner is not None:
            self.runner.count_dropped(events, nbytes, cut_off=cut_off)

    def _cut_off(self, size: int) -> None:
        self.dropped = True
        self.state.counters.sinks_dropped += 1
        self._count(len(self._queue) + 1, self.queued_bytes + size, cut_off=True)
        self._queue.clear()
        self.queued_bytes = 0
        logger.warning("closing a WebSocket that fell %d bytes behind", self.limit)
        self._task.cancel()
        task = asyncio.get_running_loop().create_task(self._close_slow_reader())
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    async def _close_slow_reader(self) -> None:
        """1008 if the close frame gets through at once; a reader that does not read it is aborted."""
        try:
            await asyncio.wait_for(
                self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow reading events"),
                _SLOW_CLOSE_S,
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if self._abort is not None:
                self._abort()

    async def _write(self) -> None:
        queue, ws = self._queue, self.ws
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                slice_end = loop.time() + _SLICE_S
                while queue:
                    if ws.closed:
                        queue.clear()
                        self.queued_bytes = 0
                        return
                    text, size = queue.popleft()
                    self.queued_bytes -= size
                    await ws.send_str(text)  # suspends only when the socket's buffer is full
                    if loop.time() > slice_end:  # megabytes queued go out in slices, not in one go
                        await asyncio.sleep(0)
                        slice_end = loop.time() + _SLICE_S
                if self._stopping:
                    return
        except (ConnectionError, RuntimeError):
            queue.clear()  # the peer went away; the reader side notices and cleans up
            self.queued_bytes = 0

    async def drain_and_stop(self, grace: float = 2.0) -> None:
        """Let queued events go out (for at most ``grace`` seconds), then stop the writer."""
        self._stopping = True
        self._wakeup.set()
        await asyncio.wait({self._task}, timeout=grace)
        self._task.cancel()
        self._queue.clear()
        self.queued_bytes = 0


async def realtime_websocket(request: web.Request) -> web.StreamResponse:
    """``GET /v1/realtime?model=M`` opens a session; ``?call_id=rtc_...`` attaches to a call."""
    state = request.app[STATE_KEY]
    key = require_key(request, allow_ephemeral=True)
    if state.connections >= state.limits.max_connections:
        state.counters.connections_refused += 1
        raise RequestRefused("rate_limit_exceeded", "Too many connections to this server.", status=429)
    call_id = request.query.get("call_id")
    runner: SessionRunner | None = None
    call: Call | None = None
    if call_id:
        if not state.may_attach(key, call_id):
            raise RequestRefused(
                "insufficient_permissions",
                "An ephemeral key can only attach to the call it opened: "
                "a sideband socket needs the server's API key.",
                "call_id",
                status=403,
            )
        call = state.calls.get(call_id)
        if call is None:
            raise RequestRefused("call_not_found", f"Call '{call_id}' not found.", "call_id", status=404)
        runner = call.runner
        if runner is None or runner.closed:
            raise RequestRefused(
                "call_not_active",
                f"Call '{call_id}' has not been accepted or has ended.",
                "call_id",
                status=409,
            )
    elif len(state.runners) >= state.limits.max_sessions:
        state.counters.connections_refused += 1
        raise RequestRefused(
            "rate_limit_exceeded", "Too many concurrent sessions on this server.", status=429
        )
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise RequestRefused("websocket_required", "This endpoint only accepts WebSocket upgrades.")

    ws = web.WebSocketResponse(
        protocols=("realtime",),
        max_msg_size=state.limits.max_message_bytes + 1,  # aiohttp refuses at its limit: ours is inclusive
        autoping=True,
        heartbeat=None,
        compress=False,
    )
    await ws.prepare(request)
    state.connections += 1
    try:
        if runner is None:
            config: dict[str, Any] | None = None
            if key and key.startswith("ek_"):
                secret = state.client_secret(key)
                config = dict(secret.session) if secret is not None else None
            try:
                runner = state.create_runner(model=request.query.get("model"), config=config)
            except (
                ValueError
            ) as exc:  # the session limit, or a session config the core refuses (an ek_ key's)
                if isinstance(exc, RequestRefused) and exc.status == 429:
                    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"session limit reached")
                else:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=str(exc)[:120].encode())
                return ws
            try:
                await _serve(ws, runner, state, owner=True, abort=_aborter(request))
            finally:
                runner.close()  # whatever happened in _serve: the session never outlives its socket
        else:
            await _serve(ws, runner, state, owner=False, call=call, abort=_aborter(request))
    finally:
        state.connections -= 1
    return ws


async def _serve(
    ws: web.WebSocketResponse,
    runner: SessionRunner,
    state: ServerState,
    *,
    owner: bool,
    call: Call | None = None,
    abort: Callable[[], None] | None = None,
) -> None:
    """Pump one socket: frames in, events out, until either side ends.

    A sideband socket (``call`` given) first learns the session it joined: a call that kept its early
    events (a SIP call's ``replay_backlog``) hands them to its first control socket, ``session.created``
    first; any other sideband socket is greeted with a ``session.created`` of the session as it is now.
    """
    loop = asyncio.get_running_loop()
    sink = WebSocketSink(ws, state, runner, abort)
    detach = runner.add_sink(sink)

    def on_session_end(_runner: SessionRunner) -> None:
        if not ws.closed:
            task = loop.create_task(_close_after_drain(ws, sink))
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    forget_close = runner.on_close(on_session_end)
    idle = _IdleWatch(ws, runner, state.limits.idle_timeout_s)
    try:
        if owner:
            runner.start()  # session.created, and the expiry timer armed
        if call is not None:
            replay = getattr(call, "replay_backlog", None)
            if callable(replay):
                replay()  # into the call's first control socket (the sink after the call's own backlog sink)
            if sink.events_queued == 0:  # not that first socket (its backlog starts with session.created)
                runner.greet(sink)
        # The slice is timed with time.monotonic itself, not loop.time() (a method call around it): this
        # loop runs once per frame, fifty times a second per stream. Only differences of it are used.
        clock, text = time.monotonic, WSMsgType.TEXT
        receive, receive_text = ws.receive, runner.receive_text
        slice_end = clock() + _SLICE_S
        while not ws.closed:
            before = clock()
            msg = await receive()
            now = clock()
            if now - before > _SLICE_S / 4:
                # The receive waited for the network: the loop ran the other sessions meanwhile.
                slice_end = now + _SLICE_S
            elif now > slice_end:
                # Frames already buffered come back without a pause: a client sending thousands of
                # events in one burst must not keep the loop from the other sessions.
                await asyncio.sleep(0)
                slice_end = clock() + _SLICE_S
            if msg.type is text:
                receive_text(msg.data)  # also marks the runner active (the idle watch reads it)
                continue
            idle.touch()
            if msg.type is WSMsgType.BINARY:
                state.counters.binary_frames += 1
                runner.refuse(
                    RequestRefused(
                        "invalid_message_type",
                        "Binary WebSocket frames are not supported: send each event as a JSON text frame.",
                    )
                )
            elif msg.type is WSMsgType.ERROR:
                if getattr(msg.data, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                    state.counters.oversized_messages += 1
                    logger.info(
                        "closed a socket of %s: message over %d bytes",
                        runner.id,
                        state.limits.max_message_bytes,
                    )
                break
            else:  # CLOSE, CLOSING, CLOSED
                break
    finally:
        idle.cancel()
        detach()
        forget_close()
        if owner:
            runner.close()
        await sink.drain_and_stop(grace=0.2)
        if not ws.closed:
            await ws.close()


def _aborter(request: web.Request) -> Callable[[], None]:
    """Drop the request's connection at once (a reader that does not even read its close frame)."""

    def abort() -> None:
        transport = request.transport
        if transport is not None:  # closing is not enough: a close waits for a buffer nobody reads
            transport.abort()

    return abort


async def _close_after_drain(ws: web.WebSocketResponse, sink: WebSocketSink) -> None:
    """The session ended (expiry, hangup): let its last events out, then close the socket."""
    await sink.drain_and_stop()
    if not ws.closed:
        await ws.close(code=WSCloseCode.OK, message=b"session ended")


class _IdleWatch:
    """Closes a socket after ``timeout`` seconds with no client frame and no server event."""

    def __init__(self, ws: web.WebSocketResponse, runner: SessionRunner, timeout: float | None) -> None:
        self.ws = ws
        self.runner = runner
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.last_frame = self.loop.time()
        self._handle: asyncio.TimerHandle | None = None
        if timeout is not None:
            self._handle = self.loop.call_later(timeout, self._check)

    def touch(self) -> None:
        self.last_frame = self.loop.time()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        assert self.timeout is not None
        last = max(self.last_frame, self.runner.last_activity)
        remaining = last + self.timeout - self.loop.time()
        if remaining > 0:
            self._handle = self.loop.call_later(remaining, self._check)
            return
        self._handle = None
        logger.info("closing idle socket of %s after %.0f s", self.runner.id, self.timeout)
        self.loop.create_task(self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle timeout"))
