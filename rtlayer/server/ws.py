"""The WebSocket front: ``GET /v1/realtime`` (new sessions and ``?call_id=`` sideband sockets).

Authentication follows the service: ``Authorization: Bearer KEY`` from servers, or, from browsers that
cannot set headers, the subprotocols ``realtime`` + ``openai-insecure-api-key.KEY`` (the answer then
names ``realtime``, or the browser drops the socket). ``ek_`` keys work in both places and open a
session with the config they were minted with. A refused handshake is an HTTP status with the
service's JSON error body. ``OpenAI-Beta`` is accepted and ignored.

Once open, every text frame goes to the session; a binary frame is answered with an ``error`` event
and the socket carries on; a message over the size limit closes that socket only (1009).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
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


class WebSocketSink:
    """Queues serialized events for one socket and writes them in order from one task.

    The runner calls the sink synchronously; the writer task absorbs the socket's back-pressure.
    A client that stops reading is cut off once ``limit`` events are waiting (counted in
    ``state.counters.sinks_dropped``) instead of growing the server's memory.
    """

    def __init__(self, ws: web.WebSocketResponse, state: ServerState) -> None:
        self.ws = ws
        self.state = state
        self.limit = state.limits.max_queued_events
        self.dropped = False
        self._queue: deque[str] = deque()
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._write())

    def __call__(self, text: str) -> None:
        if self.dropped:
            return
        if len(self._queue) >= self.limit:
            self.dropped = True
            self.state.counters.sinks_dropped += 1
            self._queue.clear()
            logger.warning("dropping a WebSocket that fell %d events behind", self.limit)
            self._task.cancel()
            asyncio.get_running_loop().create_task(self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER))
            return
        self._queue.append(text)
        self._wakeup.set()

    async def _write(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while queue:
                    if ws.closed:
                        queue.clear()
                        return
                    await ws.send_str(queue.popleft())
                if self._stopping:
                    return
        except (ConnectionError, RuntimeError):
            queue.clear()  # the peer went away; the reader side notices and cleans up

    async def drain_and_stop(self, grace: float = 2.0) -> None:
        """Let queued events go out (for at most ``grace`` seconds), then stop the writer."""
        self._stopping = True
        self._wakeup.set()
        await asyncio.wait({self._task}, timeout=grace)
        self._task.cancel()


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
        max_msg_size=state.limits.max_message_bytes,
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
            await _serve(ws, runner, state, owner=True)
        else:
            await _serve(ws, runner, state, owner=False, call=call)
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
) -> None:
    """Pump one socket: frames in, events out, until either side ends.

    A sideband socket (``call`` given) first learns the session it joined: a call that kept its early
    events (a SIP call's ``replay_backlog``) hands them to its first control socket, ``session.created``
    first; any other sideband socket is greeted with a ``session.created`` of the session as it is now.
    """
    loop = asyncio.get_running_loop()
    sink = WebSocketSink(ws, state)
    detach = runner.add_sink(sink)
    if call is not None:
        replay = getattr(call, "replay_backlog", None)
        if callable(replay):
            replay()  # into the call's first control socket (the sink after the call's own backlog sink)
        if not callable(replay) or runner.sinks.index(sink) != 1:
            runner.greet(sink)

    def on_session_end(_runner: SessionRunner) -> None:
        if not ws.closed:
            task = loop.create_task(_close_after_drain(ws, sink))
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    forget_close = runner.on_close(on_session_end)
    idle = _IdleWatch(ws, runner, state.limits.idle_timeout_s)
    if owner:
        runner.start()
    try:
        while not ws.closed:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                runner.receive_text(msg.data)  # also marks the runner active (the idle watch reads it)
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
