"""The WebRTC front: ``POST /v1/realtime/calls`` answered by an aiortc peer, and the talk page at ``/``.

One call = one aiortc ``RTCPeerConnection`` + one ``SessionRunner`` in media mode (PCM16 48 kHz):

- the caller's audio track (Opus, decoded by aiortc to 48 kHz stereo) is downmixed by
  ``rtlayer_native`` and fed to the session (``receive_media_audio``), so turn detection and
  responses behave exactly as on the WebSocket;
- the answer's audio leaves on our track, one 20 ms frame per tick, pulled from the session's paced
  media buffer (``pull_media_audio``); the session emits ``output_audio_buffer.started/stopped``;
- events travel as JSON text on the caller's ``oai-events`` data channel (queued until it opens);
- the call is registered in ``state.calls`` under its ``rtc_...`` id, so a sideband WebSocket
  (``?call_id=``) attaches and ``POST /v1/realtime/calls/{id}/hangup`` ends it.

The peer gathers 127.0.0.1 as its ICE candidate when the server is bound to loopback (the default),
so loopback-only callers connect with no flag (``rtlayer._ice``). A caller that never completes ICE
is hung up after ``CONNECT_DEADLINE_S``. Refusals (``RequestRefused``) leave as the service's JSON
``{"error": {"message"}}`` (the app's middleware).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from rtlayer._ice import host_policy, policy_for
from rtlayer.audio import PCM16_48K
from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.ids import new_id
from rtlayer.server._webrtc_call import WebRTCCall
from rtlayer.server._webrtc_request import MAX_BODY_BYTES, parse_call_request
from rtlayer.server.http import STATE_KEY, require_key
from rtlayer.server.state import ServerState

__all__ = ["CALLS_KEY", "WebRTCFront", "front_of", "setup"]

logger = logging.getLogger("rtlayer.server.webrtc")

STATIC_DIR = Path(__file__).with_name("static")
_STATIC_FILES = (
    frozenset(p.name for p in STATIC_DIR.iterdir() if p.is_file()) if STATIC_DIR.is_dir() else frozenset()
)
CONNECT_DEADLINE_S = 20.0
"""A call whose ICE has not connected by then is hung up (a caller that vanished after the POST)."""


class WebRTCFront:
    """The live WebRTC calls of one server, and every peer connection it opened (for leak checks)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.calls: dict[str, WebRTCCall] = {}
        self.peers: set[RTCPeerConnection] = set()
        self.calls_created = 0
        self.calls_refused = 0

    async def create_call(
        self, offer_sdp: str, config: dict[str, Any] | None, model: str | None
    ) -> WebRTCCall:
        """Answer ``offer_sdp``; raises ``RequestRefused`` with a message for the caller."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers.add(pc)
        try:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as exc:
                raise RequestRefused("invalid_offer", f"invalid SDP offer: {exc}") from None
            try:
                runner = self.state.create_runner(model=model, config=config, media=PCM16_48K)
            except (
                RequestRefused
            ) as exc:  # the session limit (429) goes as it is; a bad config names its field
                if exc.status == 429:
                    raise
                raise RequestRefused(exc.code, f"invalid session: {exc.message}", exc.param) from None
            except ValueError as exc:
                raise RequestRefused("invalid_value", f"invalid session: {exc}") from None
            call = WebRTCCall(new_id("rtc"), pc, runner, self.state.limits.max_queued_bytes)
            try:
                call.attach_media()
                with host_policy(policy_for(self.state.host, True)):
                    await pc.setLocalDescription(await pc.createAnswer())
                call.start(CONNECT_DEADLINE_S)  # session.created queued, the ICE deadline armed
            except BaseException:
                runner.close()
                raise
        except BaseException:
            # Nothing of a refused call stays: its runner is closed above, its peer here, and it was
            # never registered (registration is the last step).
            await self._close_peer(pc)
            raise
        self.calls[call.id] = call
        self.state.calls.add(call)
        call.on_ended(self._forget)
        self.calls_created += 1
        return call

    def _forget(self, call: WebRTCCall) -> None:
        self.calls.pop(call.id, None)
        if self.state.calls.get(call.id) is call:
            self.state.calls.remove(call.id)
        self.peers.discard(call.pc)

    async def _close_peer(self, pc: RTCPeerConnection) -> None:
        with contextlib.suppress(Exception):
            await pc.close()
        self.peers.discard(pc)

    async def close(self) -> None:
        """Hang up every call (the server is stopping)."""
        for call in list(self.calls.values()):
            await call.hangup()


CALLS_KEY = web.AppKey("rtlayer.webrtc", WebRTCFront)
_FRONTS: weakref.WeakKeyDictionary[ServerState, WebRTCFront] = weakref.WeakKeyDictionary()


def front_of(state: ServerState) -> WebRTCFront | None:
    """The WebRTC front serving ``state`` (its calls and open peer connections), if installed."""
    return _FRONTS.get(state)


async def create_call(request: web.Request) -> web.Response:
    """``POST /v1/realtime/calls``: the SDP offer in, ``201`` + ``Location`` + the SDP answer out."""
    state = request.app[STATE_KEY]
    front = request.app[CALLS_KEY]
    try:
        key = require_key(request, allow_ephemeral=True)
        config: dict[str, Any] = {}
        if key and key.startswith("ek_"):
            secret = state.client_secret(key)
            if secret is not None:
                config.update(secret.session)
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            raise RequestRefused(
                "request_too_large",
                f"Request body too large: an SDP offer (with its session) is at most {MAX_BODY_BYTES} bytes.",
                status=413,
            )
        parsed = parse_call_request(request.headers.get("Content-Type", ""), body)
        if parsed.session:
            config = _deep_merge(config, parsed.session)
        model = request.query.get("model") or _str_or_none(config.get("model"))
        call = await front.create_call(parsed.sdp, config or None, model)
    except RequestRefused:
        front.calls_refused += 1
        raise
    except Exception as exc:  # an offer aiortc cannot answer: say so, never a bare 500
        logger.exception("could not answer a WebRTC offer")
        front.calls_refused += 1
        raise RequestRefused("offer_failed", f"could not answer the SDP offer: {exc}", status=500) from None
    state.bind_call(key, call.id)  # its ek_ key (if one) may now open this call's sideband socket
    assert call.pc.localDescription is not None
    return web.Response(
        status=201,
        text=call.pc.localDescription.sdp,
        content_type="application/sdp",
        headers={"Location": f"/v1/realtime/calls/{call.id}"},
    )


async def talk_page(request: web.Request) -> web.FileResponse:
    """``GET /``: the talk page (plain JavaScript, no build step)."""
    return web.FileResponse(STATIC_DIR / "index.html")


async def static_file(request: web.Request) -> web.StreamResponse:
    """``GET /static/{name}``: the page's own files only (a fixed list: no path is ever resolved)."""
    name = request.match_info["name"]
    if name not in _STATIC_FILES:
        raise RequestRefused("not_found", f"No such file: /static/{name}", status=404)
    return web.FileResponse(STATIC_DIR / name)


async def _on_shutdown(app: web.Application) -> None:
    await app[CALLS_KEY].close()


def setup(app: web.Application, state: ServerState) -> None:
    """Install ``POST /v1/realtime/calls``, ``GET /`` and ``GET /static/{name}`` on the server's app."""
    front = WebRTCFront(state)
    app[CALLS_KEY] = front
    _FRONTS[state] = front
    app.router.add_post("/v1/realtime/calls", create_call)
    app.router.add_get("/", talk_page)
    app.router.add_get("/static/{name}", static_file)
    app.on_shutdown.append(_on_shutdown)


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes (never read past it)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, object by object (an ek_ key's session, then the request's)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
