"""Which web pages may use the server from a browser: the ``Origin`` check and the CORS answers, sans-I/O.

Browsers send ``Origin`` with every cross-origin request and every WebSocket handshake, and let any page
send a "simple" cross-origin POST (``text/plain``) without asking first. Without a check, any page open on
the machine could hang up or accept calls on a key-less loopback server, or open sessions. The policy:

- a request without ``Origin`` is not a browser acting for a page (curl, the SDKs): allowed;
- the server's own pages (its own ``scheme://host:port``, and the loopback names of it when bound to
  loopback) and the origins given to ``allow_origins`` (``--allow-origin``; ``*`` allows any page) are
  allowed, and their responses carry ``Access-Control-Allow-Origin`` for that origin;
- every other origin is refused with 403 before any handler runs, preflights (``OPTIONS``) included.

On loopback, own origins are compared with the server's configured address, never with the request's ``Host``
header, so a DNS-rebinding page (``http://evil.example:8765`` resolving to 127.0.0.1) is not taken for the
server. Bound elsewhere (which requires a key), a page whose origin is the ``Host`` it was served from is the
server's own too: its names there (a hostname, a public address) are not known in advance.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["ALLOWED_HEADERS", "ALLOWED_METHODS", "OriginPolicy", "normalize_origin"]

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, OpenAI-Beta, OpenAI-Organization, OpenAI-Project"
EXPOSED_HEADERS = "Location"  # the WebRTC answer names its call there
PREFLIGHT_MAX_AGE_S = 600
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` lowercased, default ports dropped (``*`` and ``null`` kept as they are)."""
    origin = origin.strip()
    if origin in ("*", "null"):
        return origin
    parts = urlsplit(origin)
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"not an origin (bad port): {origin!r}") from None
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme.lower())
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme.lower()}://{host}{suffix}"


class OriginPolicy:
    """The allowed origins of one server; ``base_url`` (its own origin) is set once it listens."""

    def __init__(self, allowed: Iterable[str] = (), *, loopback: bool = True) -> None:
        self.allowed = frozenset(normalize_origin(o) for o in allowed)
        self.loopback = loopback
        self._own: frozenset[str] = frozenset()
        self._scheme = ""

    def set_base_url(self, base_url: str) -> None:
        """The server listens at ``base_url``: its pages (and, on loopback, its other loopback names)."""
        own = {normalize_origin(base_url)}
        parts = urlsplit(base_url)
        self._scheme = parts.scheme
        if self.loopback and parts.port is not None:
            own.update(normalize_origin(f"{parts.scheme}://{name}:{parts.port}") for name in _LOOPBACK_NAMES)
        self._own = frozenset(own)

    def allows(self, origin: str | None, host: str | None = None) -> bool:
        """Whether a request carrying ``origin`` (None: no ``Origin`` header) and ``Host`` may go on."""
        if origin is None:
            return True
        if "*" in self.allowed:
            return True
        try:
            normalized = normalize_origin(origin)
        except ValueError:
            return False
        if normalized in self._own or normalized in self.allowed:
            return True
        if self.loopback or not host or not self._scheme:
            return False
        try:
            return normalized == normalize_origin(f"{self._scheme}://{host}")
        except ValueError:
            return False

    def response_headers(self, origin: str) -> dict[str, str]:
        """CORS headers of an allowed cross-origin response."""
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED_HEADERS,
            "Vary": "Origin",
        }

    def preflight_headers(self, origin: str) -> dict[str, str]:
        """The answer to an allowed ``OPTIONS`` preflight."""
        return {
            **self.response_headers(origin),
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        }
