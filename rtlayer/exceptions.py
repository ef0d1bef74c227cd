"""Exceptions raised by rtlayer.

The tree (classes defined elsewhere name their module)::

    RtlayerError
    ├── LocalProtocolError        the app (or this library's caller) did something the protocol forbids
    │   ├── InvalidAudioError     bad PCM (odd length), unsupported format or rate
    │   ├── InvalidURL            a server URL rtlayer cannot read (scheme, host, port, path)
    │   ├── UnsupportedOperation  e.g. send_audio on a SIP transport, where audio travels over RTP
    │   └── ScenarioError         (rtlayer.load.scenario) a load scenario file that cannot be used
    ├── RemoteProtocolError       the peer sent something malformed or unexpected
    │   ├── RequestRefused        a request refused in the Realtime API's terms: ``code``, ``message``,
    │   │                         ``param`` and the HTTP ``status`` (the embedded server's one refusal)
    │   ├── SipParseError         a datagram that is not a SIP message we can use
    │   ├── SdpError              an SDP offer that cannot be answered
    │   ├── RtpError              a datagram that is not an RTP packet we can use
    │   ├── RtcpError             a datagram that is not an RTCP compound packet we can use
    │   └── TooDeep               (rtlayer.protocol.codec) JSON nested deeper than the server accepts
    ├── ConnectError              the connection could not be established
    │   ├── ConnectTimeout        nothing answered in time (an ICE or TCP hang becomes this)
    │   ├── HandshakeError        the server answered with an HTTP error; ``status`` and ``body`` kept
    │   └── ProxyError            an HTTP proxy refused the tunnel (407, 403, ...)
    ├── CallsAPIError             (rtlayer.transports.calls) the Calls API refused; ``status``, ``code``, ``body``
    ├── CallControlError          (rtlayer.transports.media_stream.call_control) a provider's REST API refused
    │                             a hang-up or transfer; ``status``, ``body``
    ├── ConnectionClosedError     the connection ended while an operation needed it
    └── WebhookVerificationError  a webhook's signature, timestamp or secret did not check out

Outside the tree on purpose: ``MissingExtraError`` (rtlayer._extras), an ``ImportError`` raised where an
optional dependency is imported, and ``LoadError`` (rtlayer.load.locust), the form in which Locust counts a
simulated caller's failure. ``tests/test_exceptions.py`` holds this drawing to the classes.

"Remote" is the other end of whoever raises. The embedded server's parsers raise the subclasses of
``RemoteProtocolError`` for what a client or a phone sent, and the server answers them without ending
anything else (an ``error`` event, an HTTP error, a SIP 400/488, a dropped packet). ``RequestRefused`` becomes
the service's ``error`` event (``error_event``) on a session and the service's JSON error body
(``error_body``, with ``status``) on an HTTP route. The parse errors and ``RequestRefused`` are also
``ValueError``s: bad input is a bad value. A client transport does not raise ``RemoteProtocolError`` for a
malformed server frame: the frame is reported as an ``error`` event and the session reads on, as the
service's clients do.

Errors carry what the peer said: a server's JSON ``error.message`` is in the exception text, never
replaced by a generic one. API keys never appear in any message.
"""

from __future__ import annotations

from typing import Any

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
    "RequestRefused",
    "RtcpError",
    "RtlayerError",
    "RtpError",
    "SdpError",
    "SipParseError",
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


class RequestRefused(RemoteProtocolError, ValueError):
    """A request refused in the Realtime API's terms; the text is ``message``.

    ``code`` is the service's error code (``invalid_value``, ``call_not_found``...; None for a bare HTTP
    error such as a 404 of an unknown path), ``param`` the field at
    fault (dotted path) or None, ``status`` the HTTP status a REST route answers with (400 unless said),
    ``type`` the service's error type (from the status unless given: 429 ``rate_limit_error``, 5xx
    ``server_error``, else ``invalid_request_error``).
    """

    def __init__(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.status = status
        if type is None:
            type = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else None
        self.type = type or "invalid_request_error"

    def error(self, event_id: str | None = None) -> dict[str, Any]:
        """The service's error object: ``type``, ``code``, ``message``, ``param``, ``event_id``."""
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": event_id,
        }

    def error_event(self, event_id: str | None = None) -> dict[str, Any]:
        """The ``error`` server event that refuses the client event ``event_id`` (the session adds its id)."""
        return {"type": "error", "error": self.error(event_id)}

    def error_body(self) -> dict[str, Any]:
        """The JSON body of an HTTP refusal: ``{"error": {"message", "type", "code", "param"}}``."""
        error = self.error()
        del error["event_id"]
        return {"error": error}


class SipParseError(RemoteProtocolError, ValueError):
    """The bytes are not a SIP message we can use; the text says why.

    ``request`` is the request as far as it could be read (start line and headers), when it was one:
    enough for the SIP front to answer 400 Bad Request to where it came from. None for anything else.
    """

    def __init__(self, message: str, request: Any = None) -> None:
        super().__init__(message)
        #: the ``rtlayer.server.sip.message.SipRequest`` read so far, or None
        self.request = request


class SdpError(RemoteProtocolError, ValueError):
    """An SDP offer that cannot be answered; the SIP front replies 488 Not Acceptable Here with this text."""


class RtpError(RemoteProtocolError, ValueError):
    """Not an RTP packet we can use."""


class RtcpError(RemoteProtocolError, ValueError):
    """Not an RTCP compound packet we can use."""


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
