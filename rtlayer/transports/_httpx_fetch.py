"""The "fetch" that performs a WebSocket upgrade as an HTTP request, and its default over httpx.

A fetch is any callable ``async (url, headers) -> UpgradeResponse``: it sends ``GET url`` with the
given headers (the upgrade headers included) and returns the status, the response headers and either
the upgraded byte stream (101) or the error body. That is the whole seam: a runtime that can only
upgrade through its own HTTP client (a Workers-style ``fetch()``, a corporate client with its own
proxy logic) plugs in here.

``HttpxFetch`` is the default. Everything network-related is httpx's: proxies (``proxy=``, HTTP
CONNECT with Basic credentials from the proxy URL's userinfo), ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
``ALL_PROXY`` / ``NO_PROXY`` (``trust_env``), and TLS verification with a given ``ssl.SSLContext``
(``verify=``). httpcore hands the upgraded connection over as the response's ``network_stream``
extension. Its failures become rtlayer's exceptions with the reason kept: ``ProxyError`` (with the
status) when a proxy refuses the tunnel, ``ConnectError`` naming the certificate problem when TLS
verification fails, ``ConnectTimeout`` when nothing answers.

Through a proxy, ``wss://`` (``https://``) targets are tunnelled with CONNECT, which is what proxies
and the WebSocket spec expect; a plain ``ws://`` target is *forwarded* by httpx (absolute-URI GET),
and forward proxies such as tinyproxy drop the hop-by-hop ``Upgrade`` header, so use ``wss://``
through proxies.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..exceptions import ConnectError, ConnectTimeout, InvalidURL, ProxyError
from ._connect import connect_failure
from ._upgraded import ByteStream

__all__ = ["PROXY_AUTH_STATUSES", "Fetch", "HttpxFetch", "UpgradeResponse", "http_url", "proxy_auth_failed"]

MAX_ERROR_BODY = 64 * 1024
"""Bytes of a refusal's body kept for the error message (the rest is not read)."""


@dataclass(frozen=True, slots=True)
class UpgradeResponse:
    """What a fetch returns.

    ``headers`` has lower-case names. ``stream`` is the upgraded connection when ``status`` is 101
    (the caller owns it from then on and closes it); otherwise ``body`` holds what the server said.
    """

    status: int
    headers: Mapping[str, str]
    stream: ByteStream | None = None
    body: bytes = b""
    reason: str = ""


Fetch = Callable[[str, Mapping[str, str]], Awaitable[UpgradeResponse]]
"""``async (url, headers) -> UpgradeResponse``: performs the upgrade request."""


def http_url(url: str) -> str:
    """The HTTP URL of a WebSocket URL: ``ws://`` -> ``http://``, ``wss://`` -> ``https://``."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https"):
        raise InvalidURL(f"not a WebSocket or HTTP URL: {url!r}")
    return urlunsplit((scheme, *parts[1:]))


def redact_url(url: str) -> str:
    """``url`` with any password in its userinfo replaced, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, *parts[2:]))


class _HttpxUpgradedStream:
    """httpcore's upgraded network stream, closing the response (and an owned client) with it."""

    def __init__(self, response: httpx.Response, client: httpx.AsyncClient | None) -> None:
        network_stream = response.extensions["network_stream"]
        self._network_stream = network_stream
        self._response = response
        self._client = client
        # Bound methods straight from httpcore: no extra call layer on the receive path.
        self.read: Callable[[int], Awaitable[bytes]] = network_stream.read
        self.write: Callable[[bytes], Awaitable[None]] = network_stream.write

    async def aclose(self) -> None:
        try:
            await self._network_stream.aclose()
        finally:
            try:
                await self._response.aclose()
            finally:
                if self._client is not None:
                    await self._client.aclose()


@functools.lru_cache(maxsize=4)
def _default_context(env: tuple[str | None, str | None] | None) -> ssl.SSLContext:
    """httpx's default trust store, loaded once per process (and per SSL_CERT_FILE/SSL_CERT_DIR).

    Loading the CA bundle costs ~20 ms of CPU: paying it on every connection and reconnection, as a
    fresh ``httpx.AsyncClient()`` would, is waste. ``env`` is only the cache key.
    """
    return httpx.create_ssl_context(verify=True, trust_env=env is not None)


@functools.lru_cache(maxsize=4)
def _ca_context(path: str) -> ssl.SSLContext:
    """A context trusting the CA bundle file or directory at ``path``."""
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


_STATUS = re.compile(r"^\s*(\d{3})\b")

#: What proxies answer to missing or wrong credentials: 407 is the standard answer, but some (tinyproxy 1.11)
#: answer a wrong password on CONNECT with 401. Both mean the same thing to the user.
PROXY_AUTH_STATUSES = frozenset({401, 407})


def proxy_auth_failed(status: int | None) -> str:
    """The opening of every proxy-credentials error, whichever of 401/407 the proxy chose."""
    return f"Proxy authentication failed ({status} from the proxy: wrong or missing proxy credentials)"


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> ssl: a short chain
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def map_httpx_error(exc: httpx.HTTPError, url: str, proxy: str | None) -> ConnectError:
    """Turn an httpx failure into rtlayer's exception, keeping the reason."""
    url = url.split("?", 1)[0]  # never print what an app may have put in the query
    via = f" through proxy {redact_url(proxy)}" if proxy else ""
    if isinstance(exc, httpx.ProxyError):
        who = f"The proxy {redact_url(proxy)}" if proxy else "The proxy"
        # httpcore: "407 Proxy Authentication Required" when CONNECT is refused.
        match = _STATUS.match(str(exc))
        status = int(match.group(1)) if match else None
        if status in PROXY_AUTH_STATUSES:
            return ProxyError(
                f"{proxy_auth_failed(status)}: {who} refused to open a tunnel to {url}: {exc}", status=status
            )
        return ProxyError(f"{who} refused to open a tunnel to {url}: {exc}", status=status)
    if isinstance(exc, httpx.TimeoutException):
        return ConnectTimeout(f"Timed out connecting to {url}{via}: {exc.__class__.__name__}")
    cause = _ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or cause.reason or str(cause)
        return ConnectError(
            f"TLS certificate verification failed for {url}{via}: {reason} "
            "(pass an ssl.SSLContext that trusts the server's CA)"
        )
    if cause is not None:
        return ConnectError(f"TLS handshake with {url}{via} failed: {cause.reason or cause}")
    return connect_failure(exc, url, via)


class HttpxFetch:
    """The default fetch: one upgrade request through ``httpx.AsyncClient``.

    Give ``client`` to use an app's own configured client (it stays the app's: it is never closed
    here). Otherwise a client is made for each upgrade from ``proxy``, ``verify`` (an
    ``ssl.SSLContext``, a CA bundle path, or a bool), ``trust_env`` (proxy environment variables)
    and ``timeout`` (the handshake's connect/read/write limits), and closed with the connection.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        proxy: str | httpx.Proxy | None = None,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
        timeout: float | None = 10.0,
        max_error_body: int = MAX_ERROR_BODY,
    ) -> None:
        if client is not None and (proxy is not None or verify is not True):
            raise ValueError("configure proxy= and verify= on your own httpx.AsyncClient, not beside it")
        self._client = client
        self._proxy = proxy
        self._verify = verify
        self._trust_env = trust_env
        self._timeout = timeout
        self._max_error_body = max_error_body

    def _ssl_context(self) -> ssl.SSLContext:
        verify = self._verify
        if isinstance(verify, ssl.SSLContext):
            return verify
        if verify is True:
            env = (
                (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if self._trust_env else None
            )
            return _default_context(env)
        if verify is False:
            return httpx.create_ssl_context(verify=False)
        return _ca_context(verify)

    def _proxy_for_messages(self) -> str | None:
        if isinstance(self._proxy, httpx.Proxy):
            return str(self._proxy.url)
        return self._proxy

    async def __call__(self, url: str, headers: Mapping[str, str]) -> UpgradeResponse:
        target = http_url(url)
        owned: httpx.AsyncClient | None = None
        client = self._client
        if client is None:
            owned = client = httpx.AsyncClient(
                proxy=self._proxy,
                verify=self._ssl_context(),
                trust_env=self._trust_env,
                timeout=self._timeout,
                http1=True,
                http2=False,
            )
        try:
            try:
                request = client.build_request("GET", target, headers=dict(headers))
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise map_httpx_error(exc, target, self._proxy_for_messages()) from exc
            if response.http_version in ("HTTP/2", "HTTP/3"):
                await response.aclose()
                # HTTP/2 has no Upgrade (RFC 8441's extended CONNECT is not what Realtime servers speak).
                raise ConnectError(
                    f"The WebSocket upgrade needs HTTP/1.1, but the request to {target.split('?', 1)[0]} went "
                    f"over {response.http_version}: give FetchUpgradeTransport an httpx.AsyncClient(http2=False)"
                )
            response_headers = {k.lower(): v for k, v in response.headers.items()}
            reason = str(response.extensions.get("reason_phrase", b"").decode("latin-1"))
            if response.status_code == 101 and "network_stream" in response.extensions:
                stream = _HttpxUpgradedStream(response, owned)
                owned = None  # the stream closes it now
                return UpgradeResponse(101, response_headers, stream=stream, reason=reason)
            body = await _read_bounded(response, self._max_error_body)
            return UpgradeResponse(response.status_code, response_headers, body=body, reason=reason)
        finally:
            if owned is not None:
                await owned.aclose()


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except httpx.HTTPError:
        pass  # a body cut short still says something; the status is what matters
    finally:
        await response.aclose()
    return b"".join(chunks)[:limit]
