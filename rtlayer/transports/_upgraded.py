"""A WebSocket connection over a byte stream that an HTTP client has already upgraded.

When the upgrade is performed by an HTTP client (httpx, or an app's own "fetch"), what comes back is a
plain byte stream: the handshake is over and WebSocket frames follow. ``UpgradedConnection`` speaks
WebSocket on that stream with ``websockets``' sans-I/O ``ClientProtocol`` (created in the OPEN state):
framing, masking, fragmented messages, pings and pongs, the close handshake and the message size limit
all come from there. This module is only the asyncio shell around it: one reader task that feeds the
protocol and queues messages, writes serialised by a lock (the stream allows one writer at a time),
and flow control (the reader stops reading when ``max_queue`` messages wait, so the peer is slowed
down by TCP instead of messages piling up).

It satisfies the ``WireConnection`` contract of docs/INTERNALS.md section 5: ``send``, ``recv``
(raising ``websockets.ConnectionClosed`` at the end), ``ping``, ``close`` and ``close_code``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable
from typing import Protocol

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["ByteStream", "UpgradedConnection"]

logger = logging.getLogger("rtlayer.transports.fetch_upgrade")

DEFAULT_MAX_SIZE = 16 * 2**20
"""Largest incoming message accepted (bytes); bigger ones close the connection with 1009."""


class ByteStream(Protocol):
    """The upgraded connection as handed over by the HTTP client (httpcore's network stream shape)."""

    def read(self, max_bytes: int, /) -> Awaitable[bytes]:
        """Up to ``max_bytes`` bytes; ``b""`` at the end of the stream."""
        ...

    def write(self, data: bytes, /) -> Awaitable[None]:
        """Write all of ``data``."""
        ...

    def aclose(self) -> Awaitable[None]:
        """Close the stream and release what the HTTP client holds for it."""
        ...


class UpgradedConnection:
    """A client WebSocket (``WireConnection``) over an already-upgraded byte stream.

    ``url`` is only informative (kept for logs and ``repr``); ``subprotocol`` is what the server
    selected in its 101 answer. With ``decode_text=False`` text messages are returned as their UTF-8
    bytes, undecoded and unchecked: for a consumer whose JSON parser validates UTF-8 itself (the
    transports' receive loop), decoding first would be done twice.
    """

    def __init__(
        self,
        stream: ByteStream,
        url: str,
        *,
        subprotocol: str | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_queue: int = 256,
        close_timeout: float = 5.0,
        read_size: int = 2**18,
        decode_text: bool = True,
    ) -> None:
        self._stream = stream
        self.url = url
        self.subprotocol = subprotocol
        self._protocol = ClientProtocol(parse_uri(url), state=State.OPEN, max_size=max_size)
        self._max_queue = max(1, max_queue)
        self._close_timeout = close_timeout
        self._read_size = read_size
        self._decode_text = decode_text
        self._write_lock = asyncio.Lock()
        self._messages: deque[str | bytes] = deque()
        self._recv_waiter: asyncio.Future[None] | None = None
        self._resume_reading: asyncio.Future[None] | None = None
        self._fragments: list[bytes] = []
        self._fragment_is_text = False
        self._pings: dict[bytes, tuple[float, asyncio.Future[float]]] = {}
        self._closed = False
        self._finished = False  # the reader is done: no more messages will come
        self.close_code: int | None = None
        """The close code the server sent (1006 if none); ``None`` while the connection is open."""
        self.latency = 0.0
        """Round-trip time of the last acknowledged ping, in seconds (0.0 before any)."""
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(), name="ws-reader")
        self._reader.add_done_callback(_log_reader_failure)

    # -- WireConnection --------------------------------------------------------------------------

    @property
    def close_reason(self) -> str | None:
        """The close reason the server sent; ``None`` while the connection is open."""
        return self._protocol.close_reason

    async def recv(self) -> str | bytes:
        """The next message: ``str`` for text frames, ``bytes`` for binary ones.

        Raises ``websockets.ConnectionClosedOK`` / ``ConnectionClosedError`` once the connection is
        closed and every message received before has been returned.
        """
        while not self._messages:
            if self._finished:
                raise self._closed_exc()
            if self._recv_waiter is not None:
                raise RuntimeError("recv() is already being awaited by another task")
            waiter = asyncio.get_running_loop().create_future()
            self._recv_waiter = waiter
            try:
                await waiter
            finally:
                self._recv_waiter = None
        message = self._messages.popleft()
        resume = self._resume_reading
        if resume is not None and len(self._messages) <= self._max_queue // 2 and not resume.done():
            resume.set_result(None)
        return message

    async def send(self, message: str | bytes) -> None:
        """Send one message: text for ``str``, binary for bytes."""
        if self._protocol.state is not State.OPEN:
            await self._wait_closed_briefly()
            raise self._closed_exc()
        if isinstance(message, str):
            self._protocol.send_text(message.encode())
        else:
            self._protocol.send_binary(message)
        await self._send_frames()

    async def ping(self, data: bytes | None = None) -> Awaitable[float]:
        """Send a ping; the returned future resolves to the round-trip time in seconds at the pong."""
        if self._protocol.state is not State.OPEN:
            await self._wait_closed_briefly()
            raise self._closed_exc()
        payload = os.urandom(4) if data is None else data
        while payload in self._pings:
            payload = os.urandom(4)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pings[payload] = (time.monotonic(), future)
        self._protocol.send_ping(payload)
        await self._send_frames()
        return future

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake (bounded by ``close_timeout``) and release the stream.

        Idempotent, and never raises for what the peer did (or failed to do): a peer that does not
        answer within ``close_timeout``, or a connection already aborted, ends with the stream released.
        Only the caller's own cancellation propagates (the connection is aborted first).
        """
        try:
            async with asyncio.timeout(self._close_timeout):
                if self._protocol.state is State.OPEN:
                    self._protocol.send_close(code, reason)
                    with contextlib.suppress(Exception):
                        await self._flush()  # under the write lock: bounded by the timeout too
                # Unblock a reader paused by flow control: it must reach the server's close frame and EOF.
                self._resume()
                await asyncio.wait([self._reader])  # never raises the reader's own outcome
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            # The caller gave up waiting (a keepalive timeout, a shutdown): abort, so that the reader
            # ends and recv() reports the connection closed instead of waiting on a dead stream.
            self.abort()
            raise
        if not self._reader.done():
            self.abort()
            await asyncio.wait([self._reader], timeout=self._close_timeout)
        self._finish()  # a reader cancelled before it ever ran has not done it
        await self._teardown()

    def abort(self) -> None:
        """Drop the connection without a closing handshake (the reader closes the stream on its way out)."""
        self._reader.cancel()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side, or aborted)."""
        await asyncio.wait([self._reader])

    # -- internals -------------------------------------------------------------------------------

    def _closed_exc(self) -> ConnectionClosed:
        if self._protocol.state is not State.CLOSED:
            # The reader ended without EOF reaching the protocol (cancelled): close it abnormally.
            self._protocol.receive_eof()
            self.close_code = self._protocol.close_code
        return self._protocol.close_exc

    async def _wait_closed_briefly(self) -> None:
        # A closing connection becomes CLOSED when the server's EOF arrives; wait for that (bounded)
        # so that the raised exception carries the close code.
        if not self._reader.done():
            # asyncio.wait, not the task itself: an aborted (cancelled) reader must not raise into the caller
            await asyncio.wait([self._reader], timeout=self._close_timeout)

    async def _flush(self) -> None:
        # Collect under the lock so that frames reach the stream in the order the protocol made them.
        eof = False
        async with self._write_lock:
            chunks = self._protocol.data_to_send()
            if not chunks:
                return
            if not chunks[-1]:
                # SEND_EOF: a client "sends EOF" once the server has closed TCP; nothing to half-close.
                chunks = [c for c in chunks if c]
                eof = True
            if chunks:
                await self._stream.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if eof:
            await self._teardown()

    async def _send_frames(self) -> None:
        try:
            await self._flush()
        except Exception as exc:
            # The stream broke under us: report it as the connection closing, like websockets does.
            await self._wait_closed_briefly()
            raise self._closed_exc() from exc

    def _resume(self) -> None:
        resume = self._resume_reading
        if resume is not None and not resume.done():
            resume.set_result(None)

    def _wake_receiver(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _read_loop(self) -> None:
        protocol = self._protocol
        try:
            while protocol.state is not State.CLOSED:
                if len(self._messages) >= self._max_queue and protocol.state is State.OPEN:
                    self._resume_reading = asyncio.get_running_loop().create_future()
                    await self._resume_reading
                    self._resume_reading = None
                try:
                    data = await self._stream.read(self._read_size)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    data = b""  # a reset or read error ends the stream like an EOF (close code 1006)
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                events = protocol.events_received()
                if events:
                    self._handle_frames(events)
                with contextlib.suppress(Exception):
                    await self._flush()
        finally:
            self._finish()
            await self._teardown()

    def _finish(self) -> None:
        """The connection is over: no more messages will come (whether the reader ended or never ran)."""
        if self._finished:
            return
        if self._protocol.state is not State.CLOSED:
            self._protocol.receive_eof()
        self.close_code = self._protocol.close_code
        self._finished = True
        self._fail_pings()
        self._wake_receiver()

    def _handle_frames(self, frames: list[Request | Response | Frame]) -> None:
        delivered = False
        for frame in frames:
            if not isinstance(frame, Frame):  # handshake events cannot occur: the handshake is over
                continue
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    delivered |= self._deliver(bytes(frame.data), opcode is Opcode.TEXT)
                else:
                    self._fragments = [bytes(frame.data)]
                    self._fragment_is_text = opcode is Opcode.TEXT
            elif opcode is Opcode.CONT:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    data, self._fragments = b"".join(self._fragments), []
                    delivered |= self._deliver(data, self._fragment_is_text)
            elif opcode is Opcode.PONG:
                self._acknowledge_pings(bytes(frame.data))
            elif opcode is Opcode.CLOSE:
                self._fail_pings()
        if delivered:
            self._wake_receiver()

    def _deliver(self, data: bytes, is_text: bool) -> bool:
        if not is_text or not self._decode_text:
            self._messages.append(data)
            return True
        try:
            self._messages.append(data.decode())
        except UnicodeDecodeError as exc:
            self._protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            return False
        return True

    def _acknowledge_pings(self, payload: bytes) -> None:
        # Like websockets: a pong acknowledges its ping and every ping sent before it.
        if payload not in self._pings:
            return
        now = time.monotonic()
        for key in list(self._pings):
            sent_at, future = self._pings.pop(key)
            if not future.done():
                future.set_result(now - sent_at)
            if key == payload:
                self.latency = now - sent_at
                break

    def _fail_pings(self) -> None:
        if not self._pings:
            return
        pings, self._pings = self._pings, {}
        for _, future in pings.values():
            if not future.done():
                future.set_exception(
                    ConnectionClosedError(self._protocol.close_rcvd, self._protocol.close_sent)
                )
                future.exception()  # mark retrieved: nobody may be awaiting a keepalive ping any more

    async def _teardown(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._stream.aclose()

    def __repr__(self) -> str:
        return f"<UpgradedConnection {self.url} {self._protocol.state.name}>"


def _log_reader_failure(task: asyncio.Task[None]) -> None:
    # Read errors end the connection normally (code 1006); anything else is a bug worth a log line.
    if not task.cancelled() and task.exception() is not None:
        logger.error("WebSocket reader failed", exc_info=task.exception())
