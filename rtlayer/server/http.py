"""What every HTTP front of the embedded server shares: the app's state key, keys, and refusals.

The WebSocket front (``ws``), the WebRTC front (``webrtc``), the SIP REST routes (``sip.rest``) and the
core routes (``app``) are siblings; none imports another. What they have in common lives here: where the
application keeps its ``ServerState`` (``STATE_KEY``), how a request presents its key (``bearer_key``) and
is refused without a good one (``require_key``), how a JSON body is read (``read_json``: nesting bounded
by the codec), and which web pages may call at all (``origin_check``, the policy of
``rtlayer.server.origins``).

A route refuses a request by raising ``rtlayer.exceptions.RequestRefused``; the one middleware of the app
(``json_errors``) answers it with its HTTP ``status`` and the service's body
``{"error": {"message", "type", "code", "param"}}``, and gives aiohttp's own errors (404, 405, 413...)
the same shape, so that every client can surface the message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol import codec
from rtlayer.server.state import ServerState

__all__ = [
    "STATE_KEY",
    "Handler",
    "bearer_key",
    "json_errors",
    "origin_check",
    "read_json",
    "refusal_response",
    "require_key",
]

STATE_KEY: web.AppKey[ServerState] = web.AppKey("rtlayer_state", ServerState)
"""Where the application keeps its ``ServerState`` (``request.app[STATE_KEY]``)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_KEY_PROTOCOL_PREFIX = "openai-insecure-api-key."


def refusal_response(refusal: RequestRefused) -> web.Response:
    """The HTTP answer to a refusal: its ``status`` and the service's JSON error body."""
    return web.json_response(refusal.error_body(), status=refusal.status)


def bearer_key(request: web.Request) -> tuple[str | None, bool]:
    """The key a request presents and whether it came as a browser subprotocol.

    Servers send ``Authorization: Bearer KEY``; browsers, which cannot set headers on a WebSocket,
    send the subprotocol ``openai-insecure-api-key.KEY``.
    """
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), False
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(_KEY_PROTOCOL_PREFIX):
            return proto[len(_KEY_PROTOCOL_PREFIX) :], True
    return None, False


def require_key(request: web.Request, *, allow_ephemeral: bool = False) -> str | None:
    """The request's key if it may use the server; else raise the 401 ``RequestRefused``."""
    key, _ = bearer_key(request)
    if request.app[STATE_KEY].check_key(key, allow_ephemeral=allow_ephemeral):
        return key
    if key:
        raise RequestRefused("invalid_api_key", "Incorrect API key provided.", status=401)
    raise RequestRefused("missing_api_key", "Missing bearer or basic authentication in header.", status=401)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when there is none); else raise a 400 ``RequestRefused``."""
    raw = await request.read() if request.can_read_body else b""
    try:
        body = codec.loads(raw or b"{}")
    except codec.TooDeep as exc:
        raise RequestRefused("invalid_value", f"Invalid {exc.what}: {exc}.", exc.param) from None
    except ValueError:
        raise RequestRefused("invalid_json", "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise RequestRefused("invalid_json", "The request body must be a JSON object.")
    return body


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a ``RequestRefused`` (and aiohttp's plain-text HTTP errors) with the service's JSON error."""
    try:
        return await handler(request)
    except RequestRefused as refusal:
        return refusal_response(refusal)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason if exc.text is None else exc.text.strip()
        return refusal_response(RequestRefused(None, message, status=exc.status))


@web.middleware
async def origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse pages the server does not know; answer CORS preflights; label allowed cross-origin answers.

    The outermost middleware: a refused page learns nothing else (not even whether its key was good).
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return await handler(request)  # not a browser acting for a page
    state = request.app[STATE_KEY]
    policy = state.origins
    if not policy.allows(origin, request.host):
        state.counters.origins_refused += 1
        return refusal_response(
            RequestRefused(
                "origin_not_allowed",
                f"Origin {origin[:100]!r} is not allowed: serve your page from this server, or start it "
                "with --allow-origin (RealtimeServer(allow_origins=...)).",
                status=403,
            )
        )
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return web.Response(status=204, headers=policy.preflight_headers(origin))
    response = await handler(request)
    if not response.prepared:  # a WebSocket answer has gone already (and needs no CORS headers)
        response.headers.update(policy.response_headers(origin))
    return response
