"""Exceptions raised by rtlayer.

The tree::

    RtlayerError
    ├── LocalProtocolError        the app (or this library's caller) did something the protocol forbids
    │   ├── InvalidAudioError     bad PCM (odd length), unsupported format or rate
    │   ├── InvalidURL            a server URL rtlayer cannot read (scheme, host, port, path)
    │   └── UnsupportedOperation  e.g. send_audio on a SIP transport, where audio travels over RTP
    ├── RemoteProtocolError       the peer sent something malformed or unexpected
    ├── ConnectError              the connection could not be established
    │   ├── ConnectTimeout        nothing answered in time (an ICE or TCP hang becomes this)
    │   ├── HandshakeError        the server answered with an HTTP error; ``status`` and ``body`` kept
    │   └── ProxyError            an HTTP proxy refused the tunnel (407, 403, ...)
    ├── ConnectionClosedError     the connection ended while an operation needed it
    └── WebhookVerificationError  a webhook's signature, timestamp or secret did not check out

Errors carry what the peer said: a server's JSON ``error.message`` is in the exception text, never
replaced by a generic one. API keys never appear in any message.
"""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "HandshakeError",
    "InvalidAudioError",
    "InvalidURL",
    "LocalProtocolError",
    "ProxyError",
    "RemoteProtocolError",
    "RtlayerError",
    "UnsupportedOperation",
    "WebhookVerificationError",
]


class RtlayerError(Exception):
    """Base class of every exception rtlayer raises on purpose."""


class LocalProtocolError(RtlayerError):
    """The caller asked for something the protocol or the transport does not allow."""


class InvalidAudioError(LocalProtocolError, ValueError):
    """Audio that cannot be used: odd-length PCM16, an unknown format, an unsupported rate."""


class InvalidURL(LocalProtocolError, ValueError):
    """A server URL that cannot be read: an unknown scheme, no host, a bad port, a path with no endpoint."""


class UnsupportedOperation(LocalProtocolError):
    """The operation exists in the contract but this transport cannot perform it."""


class RemoteProtocolError(RtlayerError):
    """The peer sent something malformed or out of order."""


class ConnectError(RtlayerError):
    """The connection could not be established."""


class ConnectTimeout(ConnectError, TimeoutError):
    """No answer within the connect timeout."""


class HandshakeError(ConnectError):
    """The server refused the connection with an HTTP status; ``body`` holds what it said."""

    def __init__(self, message: str, *, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ProxyError(ConnectError):
    """An HTTP proxy refused to open the tunnel."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosedError(RtlayerError):
    """The connection is closed (or closed during the operation)."""


class WebhookVerificationError(RtlayerError):
    """A webhook failed verification: bad signature, stale timestamp, missing header or bad secret."""
