"""``FetchUpgradeTransport``: the Realtime WebSocket opened by an HTTP client's upgrade request.

Some runtimes can only open a WebSocket through their HTTP client (Cloudflare Workers' ``fetch()``), and
many networks only let traffic out through an HTTP proxy with its own credentials and TLS roots. This
transport performs the upgrade as an ordinary HTTP request (``Connection: Upgrade``, ``Upgrade:
websocket``, ``Sec-WebSocket-Protocol: realtime``, the bearer key) through a pluggable *fetch*
(``HttpxFetch`` over httpx by default: proxies, proxy environment variables and TLS come from there),
checks the 101 answer (``Sec-WebSocket-Accept``, the subprotocol), and speaks WebSocket on the upgraded
stream with websockets' sans-I/O protocol (``UpgradedConnection``). Everything else, the session state,
events, reconnection and keepalive, is ``BaseRealtimeTransport``'s: only ``_open`` differs from
``WebSocketTransport``.

A refusal raises ``HandshakeError("Failed to upgrade websocket: <status> <body>")`` with the server's
body (its JSON error included), like the JS SDK's ``CloudflareRealtimeTransportLayer``; a proxy that
refuses the tunnel raises ``ProxyError`` with its status (403: the proxy forbids the target); missing or
wrong proxy credentials read "Proxy authentication failed (...)" first, whether the proxy answered the
standard 407 or, like tinyproxy 1.11 for a wrong password, 401; a certificate the client does not trust
raises ``ConnectError`` naming the verification failure.

Through a proxy, use ``wss://``: httpx then opens a CONNECT tunnel and the proxy sees only the target's
host and port. A ``ws://`` target is forwarded as a plain GET instead, which proxies break (they drop
the hop-by-hop ``Upgrade`` header) and which would show them the ``Authorization`` header.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from websockets.utils import accept_key

from ..exceptions import HandshakeError, ProxyError
from ..transport import WireConnection
from ._base import BaseRealtimeTransport, Handshake
from ._connect import quote_body
from ._httpx_fetch import Fetch, HttpxFetch, UpgradeResponse, proxy_auth_failed
from ._upgraded import DEFAULT_MAX_SIZE, ByteStream, UpgradedConnection

__all__ = [
    "ByteStream",
    "Fetch",
    "FetchUpgradeTransport",
    "HttpxFetch",
    "UpgradeResponse",
    "UpgradedConnection",
    "upgrade_websocket",
]


def _upgrade_headers(headers: Mapping[str, str], key: str, subprotocols: Sequence[str]) -> dict[str, str]:
    request = {k: v for k, v in headers.items() if k.lower() not in _HANDSHAKE_HEADERS}
    request["Connection"] = "Upgrade"
    request["Upgrade"] = "websocket"
    request["Sec-WebSocket-Key"] = key
    request["Sec-WebSocket-Version"] = "13"
    if subprotocols:
        request["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
    return request


_HANDSHAKE_HEADERS = frozenset(
    {"connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"}
)


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").strip()


async def _refuse(response: UpgradeResponse, reason: str) -> HandshakeError:
    if response.stream is not None:
        with contextlib.suppress(Exception):
            await response.stream.aclose()
    return HandshakeError(f"Failed to upgrade websocket: {reason}", status=response.status, body="")


async def upgrade_websocket(
    url: str,
    headers: Mapping[str, str],
    *,
    fetch: Fetch,
    subprotocols: Sequence[str] = (),
    max_size: int | None = DEFAULT_MAX_SIZE,
    max_queue: int = 256,
    decode_text: bool = True,
) -> UpgradedConnection:
    """Open a WebSocket to ``url`` through ``fetch`` and return it as a ``WireConnection``.

    ``headers`` are the request's own headers (``Authorization`` and so on); the upgrade headers are
    added here. Raises ``HandshakeError`` for any answer but a valid 101, ``ProxyError`` for a forwarding
    proxy's own 407, and whatever the fetch raises for network failures (``ConnectError`` and subclasses,
    ``ProxyError`` when a proxy refuses the CONNECT tunnel).
    """
    key = base64.b64encode(os.urandom(16)).decode()
    response = await fetch(url, _upgrade_headers(headers, key, subprotocols))
    if response.status != 101 or response.stream is None:
        if response.stream is not None:
            with contextlib.suppress(Exception):
                await response.stream.aclose()
        body = _body_text(response.body)
        if response.status == 407:
            # A forwarding proxy (plain http:// target) answers 407 itself instead of refusing CONNECT.
            raise ProxyError(
                f"{proxy_auth_failed(407)}: the proxy refused the request: "
                f"407 {response.reason or 'Proxy Authentication Required'}",
                status=407,
            )
        hint = ""
        if response.status == 426:
            hint = " (if this went through a forward proxy for a ws:// URL: proxies drop Upgrade, use wss://)"
        raise HandshakeError(
            f"Failed to upgrade websocket: {response.status} {quote_body(body)}".rstrip() + hint,
            status=response.status,
            body=body,
        )
    answer = response.headers
    if answer.get("upgrade", "").lower() != "websocket":
        raise await _refuse(response, f"101 without 'Upgrade: websocket' ({answer.get('upgrade')!r})")
    if "upgrade" not in [t.strip().lower() for t in answer.get("connection", "").split(",")]:
        raise await _refuse(response, "101 without 'Connection: Upgrade'")
    if answer.get("sec-websocket-accept") != accept_key(key):
        raise await _refuse(response, "101 with a wrong Sec-WebSocket-Accept (not a WebSocket server?)")
    subprotocol = answer.get("sec-websocket-protocol")
    if subprotocol is not None and subprotocol not in subprotocols:
        raise await _refuse(response, f"101 selecting subprotocol {subprotocol!r}, which was not offered")
    return UpgradedConnection(
        response.stream,
        url,
        subprotocol=subprotocol,
        max_size=max_size,
        max_queue=max_queue,
        decode_text=decode_text,
    )


class FetchUpgradeTransport(BaseRealtimeTransport):
    """The Realtime transport over an HTTP client's WebSocket upgrade.

    ```python
    transport = FetchUpgradeTransport(proxy="http://user:pass@proxy.corp:3128", verify=corp_ssl_context)
    await transport.connect(url="wss://api.openai.com/v1/realtime", api_key=key)
    ```

    Choose how the upgrade request is made with one of: ``fetch`` (any ``async (url, headers) ->
    UpgradeResponse``), ``client`` (an app's own ``httpx.AsyncClient``, never closed here), or the
    options of the default httpx fetch: ``proxy``, ``verify`` (an ``ssl.SSLContext``, a CA bundle path
    or a bool), ``trust_env`` (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``). ``max_size`` bounds one
    incoming message. Every other option, and the whole event contract, is ``BaseRealtimeTransport``'s.
    """

    def __init__(
        self,
        *,
        fetch: Fetch | None = None,
        client: httpx.AsyncClient | None = None,
        proxy: str | httpx.Proxy | None = None,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
        max_size: int | None = DEFAULT_MAX_SIZE,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if fetch is not None and (client is not None or proxy is not None or verify is not True):
            raise ValueError("give either fetch= or the httpx options (client, proxy, verify), not both")
        self.fetch: Fetch = (
            fetch
            if fetch is not None
            else HttpxFetch(client, proxy=proxy, verify=verify, trust_env=trust_env)
        )
        self.max_size = max_size

    async def _open(self, request: Handshake, timeout: float) -> WireConnection:  # noqa: ASYNC109
        # (the base class bounds the whole call with ``timeout``)
        url, headers, subprotocols = request
        # Like the JS SDK's Cloudflare transport, offer "realtime" when the auth needs no subprotocol.
        # Text frames stay bytes: the receive loop's JSON parser (orjson) checks UTF-8 while parsing.
        return await upgrade_websocket(
            url,
            headers,
            fetch=self.fetch,
            subprotocols=subprotocols or ["realtime"],
            max_size=self.max_size,
            decode_text=False,
        )
