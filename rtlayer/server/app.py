"""The aiohttp application of the embedded server: routes, JSON errors, and the fronts' ``setup`` hooks.

Routes installed here:

- ``GET /v1/realtime`` — the WebSocket front (``rtlayer.server.ws``);
- ``POST /v1/realtime/client_secrets`` — ephemeral ``ek_`` keys (``expires_after.seconds`` 10..7200,
  default 600) carrying the session they open;
- ``POST /v1/realtime/calls/{call_id}/hangup`` — ends any registered call (WebRTC or SIP);
- ``GET /healthz`` — liveness and counts.

The other fronts add theirs through ``setup(app, state)``: ``rtlayer.server.webrtc``
(``POST /v1/realtime/calls``, the talk page at ``/``) and ``rtlayer.server.sip``
(``/v1/realtime/calls/{call_id}/accept|reject|refer``). The WebRTC front needs aiortc, from the
``webrtc`` extra: without it the server starts without that front and logs one line naming the extra.

Browser-reachable routes (all of them, the WebSocket included) check ``Origin`` first
(``rtlayer.server.http.origin_check``): a page that is neither the server's own nor in ``allow_origins``
is refused with 403, its preflight too; allowed cross-origin responses carry the CORS headers.

A route refuses by raising ``RequestRefused``; the app's one middleware (``rtlayer.server.http.json_errors``)
answers with the service's JSON (``{"error": {"message", "type", "code", "param"}}``), aiohttp's own
404/405 included, so that clients can surface the message.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from aiohttp import web

from rtlayer._extras import MissingExtraError, missing_extra
from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.ids import new_id
from rtlayer.protocol.session_config import default_session, merge_session
from rtlayer.server.http import STATE_KEY, json_errors, origin_check, read_json, require_key
from rtlayer.server.state import ServerState
from rtlayer.server.ws import realtime_websocket

__all__ = ["create_app"]

logger = logging.getLogger("rtlayer.server")

_MIN_SECRET_S, _MAX_SECRET_S, _DEFAULT_SECRET_S = 10, 7200, 600

# What the server lacks without the webrtc extra, in the sentence that names it.
WEBRTC_FEATURE = "the WebRTC endpoint (POST /v1/realtime/calls and the talk page)"


async def client_secrets(request: web.Request) -> web.Response:
    """``POST /v1/realtime/client_secrets``: an ``ek_`` key for a browser or other untrusted client."""
    require_key(request)
    body = await read_json(request)
    expires_after = body.get("expires_after") or {}
    if not isinstance(expires_after, dict):
        raise RequestRefused(
            "invalid_type", "Invalid type for 'expires_after': expected an object.", "expires_after"
        )
    anchor = expires_after.get("anchor", "created_at")
    if anchor != "created_at":
        raise RequestRefused(
            "invalid_value",
            f"Invalid value: '{anchor}'. Supported values are: 'created_at'.",
            "expires_after.anchor",
        )
    seconds = expires_after.get("seconds", _DEFAULT_SECRET_S)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not _MIN_SECRET_S <= seconds <= _MAX_SECRET_S
    ):
        raise RequestRefused(
            "invalid_value",
            f"Invalid 'expires_after.seconds': expected an integer between {_MIN_SECRET_S} "
            f"and {_MAX_SECRET_S}.",
            "expires_after.seconds",
        )
    partial = body.get("session") or {"type": "realtime"}
    if not isinstance(partial, dict):
        raise RequestRefused("invalid_type", "Invalid type for 'session': expected an object.", "session")
    session = merge_session(default_session(), partial)  # a bad field is the refusal naming it
    state = request.app[STATE_KEY]
    secret = state.issue_client_secret(partial, seconds)
    # The service describes the session-to-be like a session object; its own expiry starts on connect.
    described = {"type": session["type"], "object": "realtime.session", "id": new_id("sess"), **session}
    described["expires_at"] = 0
    return web.json_response({"value": secret.value, "expires_at": secret.expires_at, "session": described})


async def hangup(request: web.Request) -> web.Response:
    """``POST /v1/realtime/calls/{call_id}/hangup``: end a WebRTC or SIP call."""
    require_key(request)
    call_id = request.match_info["call_id"]
    call = request.app[STATE_KEY].calls.get(call_id)
    if call is None:
        raise RequestRefused("call_not_found", f"Call '{call_id}' not found.", "call_id", status=404)
    await call.hangup()
    return web.json_response({}, status=200)


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response(
        {
            "status": "ok",
            "sessions": len(state.runners),
            "connections": state.connections,
            "calls": len(state.calls),
        }
    )


def create_app(state: ServerState) -> web.Application:
    """The application for ``state``: core routes, then each optional front's ``setup(app, state)``."""
    app = web.Application(
        middlewares=[origin_check, json_errors], client_max_size=state.limits.max_message_bytes
    )
    app[STATE_KEY] = state
    app.router.add_get("/v1/realtime", realtime_websocket)
    app.router.add_post("/v1/realtime/client_secrets", client_secrets)
    app.router.add_post("/v1/realtime/calls/{call_id}/hangup", hangup)
    app.router.add_get("/healthz", healthz)
    webrtc = _webrtc_front()
    if webrtc is not None:
        webrtc.setup(app, state)
    sip = importlib.import_module("rtlayer.server.sip")
    sip.setup(app, state)
    return app


def _webrtc_front() -> Any:
    """The WebRTC front, or None (saying so in one log line) when aiortc, from the ``webrtc`` extra, is not
    installed; any other ImportError is a bug and propagates."""
    try:
        return importlib.import_module("rtlayer.server.webrtc")
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc, "webrtc", WEBRTC_FEATURE)
        if not isinstance(missing, MissingExtraError):
            raise
        logger.info("%s; starting without it", missing)
        return None
