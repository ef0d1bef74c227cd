"""Where to connect and how to authenticate, written once for every transport.

One rule, for every transport (``connect()`` logs which applied, at INFO): no URL and no key (argument or
``OPENAI_API_KEY``) -> the embedded server, in-process; a key and no URL -> the hosted service
(``HOSTED_BASE_URL``); a URL -> that server, with the key given or ``OPENAI_API_KEY``.

A server's URL may be given in any of the forms users write: ``http(s)://`` or ``ws(s)://``, with or
without the ``/v1`` or ``/v1/realtime`` path (``https://host/v1``, ``ws://host:8765/v1/realtime``), or a
bare ``host:port`` (plain HTTP, or HTTPS on port 443). Each medium derives the endpoint it needs from it
(``websocket_url``, ``calls_url``); a URL that cannot be read raises ``InvalidURL``.

Matches the official SDKs: ``Authorization: Bearer KEY`` by default; custom ``headers`` replace it entirely
(Azure's ``api-key``, a gateway's own token); browsers' subprotocol form (``realtime`` and
``openai-insecure-api-key.KEY``) on request. Keys are kept out of every log record and exception text
(``SecretRedactor``).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from ..exceptions import ConnectError, InvalidURL
from ..protocol import codec

__all__ = [
    "HOSTED_BASE_URL",
    "ApiKey",
    "RedactingLogger",
    "SecretRedactor",
    "auth_for",
    "calls_url",
    "connect_failure",
    "lookup_failure",
    "quote_body",
    "realtime_url",
    "resolve_api_key",
    "safe_url",
    "server_message",
    "websocket_url",
]

HOSTED_BASE_URL = "https://api.openai.com/v1"
"""The hosted service, where a transport given a key and no URL connects."""

MAX_QUOTED = 300
"""Characters of a refusal's body quoted in an exception message (an HTML error page can be 100 KB)."""

ApiKey = str | Callable[[], str | Awaitable[str]]

_BEARER = re.compile(r"(?i)(bearer\s+|openai-insecure-api-key\.|api-key:\s*)([A-Za-z0-9._\-]{4,})")
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


async def resolve_api_key(key: ApiKey | None) -> str | None:
    """A key given as a string, or by a (sync or async) function that fetches one (e.g. an ephemeral key)."""
    if key is None or isinstance(key, str):
        return key
    value = key()
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str):
        raise TypeError(f"the api_key function returned {type(value).__name__}, expected str")
    return value


def env_api_key() -> str | None:
    return os.environ.get("OPENAI_API_KEY") or None


def safe_url(url: str) -> str:
    """The URL without its query and userinfo password (never print what an app may have put there)."""
    parts = urlsplit(url.split("?", 1)[0])
    if parts.password is not None:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
    return parts.geturl()


def server_url(url: str) -> SplitResult:
    """``url`` read as a server's address: scheme (``http`` or ``https``), host, port, path and query.

    ``ws``/``wss`` read as ``http``/``https``; a bare ``host[:port][/path]`` as ``http`` (``https`` on
    port 443). Raises ``InvalidURL`` naming what is wrong.
    """
    text = url.strip()
    if "://" not in text:
        text = "//" + text.lstrip("/")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise InvalidURL(f"bad port in the server URL {safe_url(url)!r}") from None
    if not scheme:
        scheme = "https" if port == 443 else "http"
    elif scheme not in _SCHEMES:
        raise InvalidURL(
            f"unsupported scheme {parts.scheme!r} in the server URL {safe_url(url)!r}: "
            "give http(s)://, ws(s):// or host:port"
        )
    if not parts.hostname:
        raise InvalidURL(f"no host in the server URL {safe_url(url)!r}")
    return parts._replace(scheme=_SCHEMES[scheme])


def _realtime_path(path: str) -> str | None:
    """The ``.../realtime`` path of a server's base path; None for a path that names no known endpoint."""
    path = path.rstrip("/")
    if path.endswith("/realtime/calls"):
        return path[: -len("/calls")]
    if path.endswith("/realtime"):
        return path
    if path.endswith("/v1"):
        return path + "/realtime"
    if not path:
        return "/v1/realtime"
    return None


def websocket_url(url: str | None, model: str | None, call_id: str | None) -> str:
    """The Realtime WebSocket endpoint of a server (``HOSTED_BASE_URL`` when None), with ``?model=`` (or
    ``?call_id=`` to attach to a SIP or WebRTC call) added to its query when missing.

    A path that names no known endpoint (a gateway's own route) is kept as given."""
    parts = server_url(url or HOSTED_BASE_URL)
    path = _realtime_path(parts.path)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if call_id is not None:
        query.setdefault("call_id", call_id)
    elif model is not None and "call_id" not in query:
        query.setdefault("model", model)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path if path is None else path, urlencode(query), ""))


realtime_url = websocket_url  # the name the socket transports used first


def calls_url(url: str | None) -> str:
    """The ``/v1/realtime/calls`` endpoint (WebRTC signalling) of a server (``HOSTED_BASE_URL`` when None);
    the query is dropped."""
    parts = server_url(url or HOSTED_BASE_URL)
    path = _realtime_path(parts.path)
    if path is None:
        raise InvalidURL(f"cannot tell the /v1/realtime/calls endpoint from {safe_url(url or '')!r}")
    return urlunsplit((parts.scheme, parts.netloc, path + "/calls", "", ""))


def quote_body(body: str, limit: int = MAX_QUOTED) -> str:
    """A refusal's body as quoted in an exception: whitespace collapsed, tags of an HTML page dropped,
    at most ``limit`` characters (``body`` on the exception keeps what was read)."""
    text = body.strip()
    if text[:1] == "<":
        text = re.sub(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", " ", text, flags=re.S | re.I)
    text = " ".join(text.split())
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


def server_message(status: int, body: str) -> str:
    """The server's own words for a refusal: the ``error.message`` of a JSON body, else the body quoted."""
    try:
        message = codec.loads(body)["error"]["message"]
        if isinstance(message, str) and message:
            return quote_body(message)
    except (ValueError, KeyError, TypeError, IndexError):
        pass
    return quote_body(body) or f"HTTP {status} with an empty body"


def lookup_failure(exc: BaseException) -> socket.gaierror | None:
    """The failed name lookup behind ``exc`` (a library's exception chain), if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(8):  # library -> OSError: a short chain
        if seen is None:
            return None
        if isinstance(seen, socket.gaierror):
            return seen
        # aiohttp keeps the system's error as ``os_error`` rather than as the cause
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "os_error", None)
    return None


def connect_failure(exc: BaseException, url: str, via: str = "") -> ConnectError:
    """A network failure opening ``url`` as rtlayer's ``ConnectError``: a failed name lookup names the
    host; anything else keeps the system's reason."""
    lookup = lookup_failure(exc)
    if lookup is not None:
        host = urlsplit(url).hostname or url
        return ConnectError(
            f"cannot resolve the host {host!r} of {safe_url(url)}{via}: {lookup.strerror or lookup}"
        )
    return ConnectError(f"Could not connect to {safe_url(url)}{via}: {exc or type(exc).__name__}")


def auth_for(
    url: str,
    key: str | None,
    headers: Mapping[str, str] | None,
    use_subprotocols: bool,
) -> tuple[dict[str, str], list[str] | None]:
    """(headers, subprotocols) of the upgrade request."""
    if use_subprotocols:
        protocols = ["realtime"]
        if key:
            protocols.append("openai-insecure-api-key." + key)
        return dict(headers or {}), protocols
    if headers is not None:
        return dict(headers), None  # custom headers replace the default auth, as in openai-agents
    if not key:
        return {}, None  # a local server that asks for no key
    host = urlsplit(url).hostname or ""
    if host.endswith(".openai.azure.com"):
        return {"api-key": key}, None
    return {"Authorization": "Bearer " + key}, None


class SecretRedactor(logging.Filter):
    """Rewrites text (and log records, as a filter) so that no key shows: the ones it was told, and any
    bearer-looking token. ``RedactingLogger`` applies one to everything a transport logs."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return _BEARER.sub(lambda m: m.group(1) + "***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """One transport's view of a shared logger, with that transport's keys redacted from every message.

    Handed to ``websockets``, whose debug log prints the handshake headers. An adapter rather than a filter
    on the shared logger: filters added per transport would pile up there and apply one transport's
    secrets to every other transport's records.
    """

    def __init__(self, logger: logging.Logger, redactor: SecretRedactor) -> None:
        super().__init__(logger, {})
        self.redactor = redactor

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args}"
        kwargs.setdefault("stacklevel", 2)
        self.logger.log(level, self.redactor.redact(text), **kwargs)
