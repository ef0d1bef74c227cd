"""``WebSocketTransport``: the Realtime protocol over a WebSocket, on the ``websockets`` asyncio client.

```python
async with WebSocketTransport() as transport:            # no URL, no key: the embedded server
    transport.on("audio", lambda e: play(e.data))
    await transport.connect()
    transport.send_message("Hello")
```

Everything but opening the socket lives in ``BaseRealtimeTransport``: this module maps the handshake's
failures onto rtlayer's exceptions (``HandshakeError`` with the server's own message, ``ConnectTimeout``,
``ConnectError``) and turns off the library's own pings (the base class keeps the connection alive the same
way on every transport).

It also writes audio without waiting when the socket can take it (``send_audio_nowait``): a bridge that
forwards a caller's frames as they arrive (``MediaStreamTransport``) sends each in the provider's reader,
without a coroutine, a timeout handle or a context manager per frame, and falls back to ``send_audio`` (which
waits, with ``send_timeout``) as soon as the socket's write buffer holds ``WRITE_BUFFER_LIMIT``, so what
waits in memory stays bounded.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeGuard, cast

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.protocol import State
from websockets.typing import Subprotocol

from ..exceptions import ConnectError, HandshakeError, InvalidURL
from ..transport import TransportStatus, WireConnection
from ._base import BaseRealtimeTransport, Handshake
from ._connect import connect_failure, safe_url, server_message

__all__ = ["WRITE_BUFFER_LIMIT", "WebSocketTransport"]

#: the protocol's limit for one event is 15 MiB; leave room for the JSON around the base64
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: bytes waiting in the socket's write buffer past which a write waits (``send_audio``) instead of going now
WRITE_BUFFER_LIMIT = 64 * 1024


class WebSocketTransport(BaseRealtimeTransport):
    """The WebSocket transport; see ``BaseRealtimeTransport`` for the options and the contract."""

    async def _open(self, request: Handshake, timeout: float) -> WireConnection:  # noqa: ASYNC109
        url, headers, subprotocols = request
        try:
            conn = await ws_connect(
                url,
                additional_headers=headers,
                subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
                open_timeout=timeout,
                ping_interval=None,
                close_timeout=2.0,
                max_size=MAX_MESSAGE_BYTES,
                logger=self._wire_logger,
            )
        except InvalidStatus as exc:
            response = exc.response
            status = response.status_code
            body = bytes(response.body or b"").decode("utf-8", "replace")
            raise HandshakeError(
                "the server refused the WebSocket: HTTP "
                f"{status}: {self._redactor.redact(server_message(status, body))}",
                status=status,
                body=self._redactor.redact(body),
            ) from None
        except InvalidURI as exc:
            raise InvalidURL(f"not a WebSocket URL: {safe_url(url)} ({exc.msg})") from None
        except InvalidHandshake as exc:
            raise ConnectError(f"WebSocket handshake failed: {self._redactor.redact(str(exc))}") from None
        except OSError as exc:
            raise connect_failure(exc, url) from None
        return cast(WireConnection, conn)

    def send_audio_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        """Writes the ``input_audio_buffer.append`` of ``data`` (the app's ``input_format``, converted and
        muted like ``send_audio``) to the socket now; False, with nothing sent, when it would have to wait:
        not connected, events queued ahead of it, or ``WRITE_BUFFER_LIMIT`` already waiting in the socket's
        buffer. The caller then awaits ``send_audio``, which waits for the socket with ``send_timeout``."""
        conn = self._conn
        if self._status is not TransportStatus.CONNECTED or self._out or not self._writable(conn):
            return False
        self._write_nowait(conn, self.session.encode_audio(data).encode())
        return True

    @staticmethod
    def _writable(conn: WireConnection | None) -> TypeGuard[ClientConnection]:
        """Whether a frame written to ``conn`` now goes straight to its socket (open, not closing, and less
        than ``WRITE_BUFFER_LIMIT`` waiting there)."""
        if not isinstance(conn, ClientConnection):
            return False
        socket = conn.transport
        return (
            conn.protocol.state is State.OPEN
            and not socket.is_closing()
            and socket.get_write_buffer_size() <= WRITE_BUFFER_LIMIT
        )

    @staticmethod
    def _write_nowait(conn: ClientConnection, text: bytes) -> None:
        """One text frame of UTF-8 ``text`` through the connection's sans-I/O protocol to its socket (what
        ``conn.send`` does, without its coroutine and drain: ``_writable`` said the socket takes it)."""
        protocol, socket = conn.protocol, conn.transport
        protocol.send_text(text)
        for data in protocol.data_to_send():
            if data:
                socket.write(data)

    def _close_code(self, conn: WireConnection) -> int | None:
        if isinstance(conn, ClientConnection):
            # ``ClientConnection.close_code`` only exists from websockets 15; its sans-I/O protocol has it on
            # every supported version.
            return conn.protocol.close_code
        return conn.close_code

    def _receiver(self, conn: WireConnection) -> Callable[[], Awaitable[str | bytes]]:
        if isinstance(conn, ClientConnection):
            # Text frames as bytes: orjson validates UTF-8 while parsing, so websockets need not decode first.
            return functools.partial(conn.recv, decode=False)
        return conn.recv


_ = websockets  # the dependency this transport is built on
