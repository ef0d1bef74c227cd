"""Where to connect and how to authenticate, shared by the socket-like transports.

Matches the official SDKs: ``Authorization: Bearer KEY`` by default; custom ``headers`` replace it entirely
(Azure's ``api-key``, a gateway's own token); browsers' subprotocol form (``realtime`` and
``openai-insecure-api-key.KEY``) on request; ``OPENAI_API_KEY`` when a URL is given without a key. Keys are
kept out of every log record and exception text (``SecretRedactor``).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiKey",
    "SecretRedactor",
    "auth_for",
    "realtime_url",
    "resolve_api_key",
]

DEFAULT_BASE_URL = "wss://api.openai.com/v1/realtime"

ApiKey = str | Callable[[], str | Awaitable[str]]

_BEARER = re.compile(r"(?i)(bearer\s+|openai-insecure-api-key\.|api-key:\s*)([A-Za-z0-9._\-]{4,})")


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


def realtime_url(url: str | None, model: str | None, call_id: str | None) -> str:
    """The socket URL: ``url`` as given (``call_id``/``model`` added to its query when missing), or the
    service's default with ``?model=`` (or ``?call_id=`` to attach to a SIP or WebRTC call)."""
    base = url or DEFAULT_BASE_URL
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if call_id is not None:
        query.setdefault("call_id", call_id)
    elif model is not None and "call_id" not in query:
        query.setdefault("model", model)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


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


def env_api_key() -> str | None:
    return os.environ.get("OPENAI_API_KEY") or None


class SecretRedactor(logging.Filter):
    """Rewrites log records so that no key (the ones it was told, and any bearer-looking token) shows.

    Attached to the logger handed to ``websockets``, whose debug log prints the handshake headers.
    """

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
