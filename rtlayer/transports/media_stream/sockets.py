"""The provider's WebSocket, whatever server accepted it: a three-method adapter protocol and three adapters.

``MediaStreamTransport`` only needs to receive a text or binary message (None once the socket closed), send
text or bytes, and close. The adapters wrap the server libraries apps use for this: aiohttp
(``web.WebSocketResponse``), Starlette/FastAPI (``starlette.websockets.WebSocket``) and ``websockets``
(``ServerConnection``). None of them imports its library at module import time.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol, runtime_checkable

__all__ = ["AiohttpSocket", "ProviderSocket", "StarletteSocket", "WebsocketsSocket", "adapt_socket"]


@runtime_checkable
class ProviderSocket(Protocol):
    """The provider's side of a media stream, as the bridge uses it."""

    async def receive(self) -> str | bytes | None:
        """The next message; None once the socket is closed (never raises for a close)."""
        ...

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000) -> None: ...


class WebsocketsSocket:
    """A ``websockets`` server connection (``websockets.asyncio.server.ServerConnection``)."""

    def __init__(self, conn: Any) -> None:
        from websockets.exceptions import ConnectionClosed  # here, not per message (see AiohttpSocket)

        self.conn = conn
        self._closed = ConnectionClosed

    async def receive(self) -> str | bytes | None:
        try:
            message: str | bytes = await self.conn.recv()
        except self._closed:
            return None
        return message

    async def send_text(self, text: str) -> None:
        await self.conn.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.conn.send(data)

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(Exception):
            await self.conn.close(code)


class AiohttpSocket:
    """An aiohttp ``web.WebSocketResponse`` (already prepared by the handler)."""

    def __init__(self, ws: Any) -> None:
        from aiohttp import WSMsgType  # here, not per message: an import statement costs on the hot path

        self.ws = ws
        self._text, self._binary = WSMsgType.TEXT, WSMsgType.BINARY
        self._control = (WSMsgType.PING, WSMsgType.PONG)

    async def receive(self) -> str | bytes | None:
        while True:
            msg = await self.ws.receive()
            kind = msg.type
            if kind is self._text:
                text: str = msg.data
                return text
            if kind is self._binary:
                data: bytes = msg.data
                return data
            if kind in self._control:
                continue
            return None  # CLOSE, CLOSING, CLOSED, ERROR

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code)


class StarletteSocket:
    """A Starlette (or FastAPI) ``WebSocket``, already accepted by the endpoint."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def receive(self) -> str | bytes | None:
        try:
            message = await self.ws.receive()
        except RuntimeError:  # receive after the disconnect message was taken
            return None
        if message.get("type") != "websocket.receive":
            return None
        if message.get("text") is not None:
            text: str = message["text"]
            return text
        data: bytes = message.get("bytes") or b""
        return data

    async def send_text(self, text: str) -> None:
        await self.ws.send_text(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code)


def adapt_socket(socket: Any) -> ProviderSocket:
    """``socket`` as a ``ProviderSocket``: adapters and objects that already fit pass through; an aiohttp,
    Starlette or ``websockets`` socket is wrapped by its adapter."""
    # The libraries first: Starlette's WebSocket has methods of the same names with other meanings.
    module = type(socket).__module__
    if module.startswith("aiohttp"):
        return AiohttpSocket(socket)
    if module.startswith(("starlette", "fastapi")):
        return StarletteSocket(socket)
    if module.startswith("websockets"):
        return WebsocketsSocket(socket)
    if isinstance(socket, ProviderSocket):
        return socket
    raise TypeError(
        f"cannot use a {type(socket).__name__} as the provider's socket: pass an aiohttp, Starlette or "
        "websockets socket, or an object with receive/send_text/send_bytes/close"
    )
