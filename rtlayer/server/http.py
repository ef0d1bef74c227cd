"""What every HTTP front of the embedded server shares: the app's state key, keys, and JSON errors.

The WebSocket front (``ws``), the WebRTC front (``webrtc``), the SIP REST routes (``sip.rest``) and the
core routes (``app``) are siblings; none imports another. What they have in common lives here: where the
application keeps its ``ServerState`` (``STATE_KEY``), how a request presents its key (``bearer_key``) and
is refused without a good one (``require_key``), how a JSON body is read (``read_json``), and the
service's error shape ``{"error": {"message", "type", "code", "param"}}`` (``json_error``), which the
``json_errors`` middleware also gives to aiohttp's own 404/405.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rtlayer.server.state import ServerState

__all__ = ["STATE_KEY", "Handler", "bearer_key", "json_error", "json_errors", "read_json", "require_key"]

STATE_KEY: web.AppKey[ServerState] = web.AppKey("rtlayer_state", ServerState)
"""Where the application keeps its ``ServerState`` (``request.app[STATE_KEY]``)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_KEY_PROTOCOL_PREFIX = "openai-insecure-api-key."


def json_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> web.Response:
    """An HTTP error in the service's shape: ``{"error": {"message", "type", "code", "param"}}``."""
    body = {"error": {"message": message, "type": type_, "code": code, "param": param}}
    return web.json_response(body, status=status)


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


def require_key(request: web.Request, *, allow_ephemeral: bool = False) -> web.Response | None:
    """None if the request's key may use the server, else the 401 response to return."""
    key, _ = bearer_key(request)
    if request.app[STATE_KEY].check_key(key, allow_ephemeral=allow_ephemeral):
        return None
    if key:
        return json_error(401, "Incorrect API key provided.", code="invalid_api_key")
    return json_error(401, "Missing bearer or basic authentication in header.", code="missing_api_key")


async def read_json(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object body (``{}`` when there is none), or the 400 response to return."""
    raw = await request.read() if request.can_read_body else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return json_error(400, "We could not parse the JSON body of your request.", code="invalid_json")
    if not isinstance(body, dict):
        return json_error(400, "The request body must be a JSON object.", code="invalid_json")
    return body


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's plain-text HTTP errors (404, 405, 413...) into the service's JSON error body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        return json_error(exc.status, exc.reason if exc.text is None else exc.text.strip(), type_=kind)
