"""The aiohttp application of the embedded server: routes, JSON errors, and the fronts' ``setup`` hooks.

Routes installed here:

- ``GET /v1/realtime`` — the WebSocket front (``rtlayer.server.ws``);
- ``POST /v1/realtime/client_secrets`` — ephemeral ``ek_`` keys (``expires_after.seconds`` 10..7200,
  default 600) carrying the session they open;
- ``POST /v1/realtime/calls/{call_id}/hangup`` — ends any registered call (WebRTC or SIP);
- ``GET /healthz`` — liveness and counts.

The optional fronts add theirs through ``setup(app, state)``: ``rtlayer.server.webrtc``
(``POST /v1/realtime/calls``, the talk page at ``/``) and ``rtlayer.server.sip``
(``/v1/realtime/calls/{call_id}/accept|reject|refer``).

Browser-reachable routes (all of them, the WebSocket included) check ``Origin`` first
(``rtlayer.server.origins``): a page that is neither the server's own nor in ``allow_origins`` is refused
with 403, its preflight too; allowed cross-origin responses carry the CORS headers.

Every HTTP error leaves as the service's JSON (``{"error": {"message", "type", "code", "param"}}``),
including aiohttp's own 404/405, so that clients can surface the message.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rtlayer.protocol import codec
from rtlayer.protocol.ids import new_id
from rtlayer.protocol.session_config import InvalidValue, default_session, merge_session
from rtlayer.server.state import ServerState
from rtlayer.server.ws import STATE_KEY, bearer_key, json_error, realtime_websocket

__all__ = ["STATE_KEY", "create_app", "json_error", "require_key"]

logger = logging.getLogger("rtlayer.server")

_MIN_SECRET_S, _MAX_SECRET_S, _DEFAULT_SECRET_S = 10, 7200, 600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's plain-text HTTP errors into the service's JSON error body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        return json_error(exc.status, exc.reason if exc.text is None else exc.text.strip(), type_=kind)


@web.middleware
async def _origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse pages the server does not know; answer CORS preflights; label allowed cross-origin answers."""
    origin = request.headers.get("Origin")
    if origin is None:
        return await handler(request)  # not a browser acting for a page
    state = request.app[STATE_KEY]
    policy = state.origins
    if not policy.allows(origin):
        state.counters.origins_refused += 1
        return json_error(
            403,
            f"Origin {origin[:100]!r} is not allowed: serve your page from this server, or start it with "
            "--allow-origin (RealtimeServer(allow_origins=...)).",
            code="origin_not_allowed",
        )
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return web.Response(status=204, headers=policy.preflight_headers(origin))
    response = await handler(request)
    if not response.prepared:  # a WebSocket answer has gone already (and needs no CORS headers)
        response.headers.update(policy.response_headers(origin))
    return response


def require_key(request: web.Request, *, allow_ephemeral: bool = False) -> web.Response | None:
    """None if the request's bearer key is good, else the 401 response to return."""
    state = request.app[STATE_KEY]
    key, _ = bearer_key(request)
    if state.check_key(key, allow_ephemeral=allow_ephemeral):
        return None
    if key:
        return json_error(401, "Incorrect API key provided.", code="invalid_api_key")
    return json_error(401, "Missing bearer or basic authentication in header.", code="missing_api_key")


async def _read_json(request: web.Request) -> dict[str, Any] | web.Response:
    if not request.can_read_body:
        return {}
    try:
        body = codec.loads(await request.read() or b"{}")
    except codec.TooDeep as exc:
        return json_error(400, f"Invalid '{exc.param}': {exc}.", code="invalid_value", param=exc.param)
    except ValueError:
        return json_error(400, "We could not parse the JSON body of your request.", code="invalid_json")
    if not isinstance(body, dict):
        return json_error(400, "The request body must be a JSON object.", code="invalid_json")
    return body


async def client_secrets(request: web.Request) -> web.Response:
    """``POST /v1/realtime/client_secrets``: an ``ek_`` key for a browser or other untrusted client."""
    refused = require_key(request)
    if refused is not None:
        return refused
    body = await _read_json(request)
    if isinstance(body, web.Response):
        return body
    expires_after = body.get("expires_after") or {}
    if not isinstance(expires_after, dict):
        return json_error(
            400,
            "Invalid type for 'expires_after': expected an object.",
            code="invalid_type",
            param="expires_after",
        )
    anchor = expires_after.get("anchor", "created_at")
    if anchor != "created_at":
        return json_error(
            400,
            f"Invalid value: '{anchor}'. Supported values are: 'created_at'.",
            code="invalid_value",
            param="expires_after.anchor",
        )
    seconds = expires_after.get("seconds", _DEFAULT_SECRET_S)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not _MIN_SECRET_S <= seconds <= _MAX_SECRET_S
    ):
        return json_error(
            400,
            f"Invalid 'expires_after.seconds': expected an integer between {_MIN_SECRET_S} "
            f"and {_MAX_SECRET_S}.",
            code="invalid_value",
            param="expires_after.seconds",
        )
    partial = body.get("session") or {"type": "realtime"}
    if not isinstance(partial, dict):
        return json_error(
            400, "Invalid type for 'session': expected an object.", code="invalid_type", param="session"
        )
    try:
        session = merge_session(default_session(), partial)
    except InvalidValue as exc:
        return json_error(400, exc.message, code=exc.code, param=exc.param)
    state = request.app[STATE_KEY]
    secret = state.issue_client_secret(partial, seconds)
    # The service describes the session-to-be like a session object; its own expiry starts on connect.
    described = {"type": session["type"], "object": "realtime.session", "id": new_id("sess"), **session}
    described["expires_at"] = 0
    return web.json_response({"value": secret.value, "expires_at": secret.expires_at, "session": described})


async def hangup(request: web.Request) -> web.Response:
    """``POST /v1/realtime/calls/{call_id}/hangup``: end a WebRTC or SIP call."""
    refused = require_key(request)
    if refused is not None:
        return refused
    call_id = request.match_info["call_id"]
    call = request.app[STATE_KEY].calls.get(call_id)
    if call is None:
        return json_error(404, f"Call '{call_id}' not found.", code="call_not_found", param="call_id")
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
        middlewares=[_origin_check, _json_errors], client_max_size=state.limits.max_message_bytes
    )
    app[STATE_KEY] = state
    app.router.add_get("/v1/realtime", realtime_websocket)
    app.router.add_post("/v1/realtime/client_secrets", client_secrets)
    app.router.add_post("/v1/realtime/calls/{call_id}/hangup", hangup)
    app.router.add_get("/healthz", healthz)
    webrtc = _optional_module("rtlayer.server.webrtc")
    if webrtc is not None:
        webrtc.setup(app, state)
    sip = _optional_module("rtlayer.server.sip")
    if sip is not None:
        sip.setup(app, state)
    return app


def _optional_module(name: str) -> Any:
    """Import a front that may not be installed yet; an ImportError *inside* it still propagates."""
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)
