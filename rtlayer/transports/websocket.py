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
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import cast

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from ..exceptions import ConnectError, HandshakeError, InvalidURL
from ..transport import WireConnection
from ._base import BaseRealtimeTransport, Handshake
from ._connect import connect_failure, safe_url, server_message

__all__ = ["WebSocketTransport"]

#: the protocol's limit for one event is 15 MiB; leave room for the JSON around the base64
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


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
