"""The Calls API routes for SIP calls: ``POST /v1/realtime/calls/{call_id}/accept|reject|refer``.

``/hangup`` is the server's generic route (``rtlayer.server.app``): it finds the call in the registry
and calls its ``hangup``, which sends BYE. Refusals (``RequestRefused``, raised here
and by the front's decisions) leave in the service's JSON shape (``{"error": {"message", ...}}``) with the
HTTP status that says what went wrong: 404 for an unknown call, 409 for a call already answered or ended,
400 for a bad body.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.session_config import default_session, merge_session
from rtlayer.server.http import STATE_KEY, read_json, require_key
from rtlayer.server.sip.call import SipCall
from rtlayer.server.sip.front import SipFront, front_of
from rtlayer.server.state import ServerState

__all__ = ["setup"]


_REJECT_MIN, _REJECT_MAX = 400, 699

logger = logging.getLogger("rtlayer.server.sip")
_LEGACY_FORMATS = {"g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma", "pcm16": "audio/pcm"}


def _overridden_formats(body: dict[str, Any], negotiated: str) -> list[str]:
    """The audio formats in an accept body that differ from the codec SIP negotiated, as
    ``"path=value"`` strings (GA ``audio.{input,output}.format`` and the legacy ``*_audio_format``)."""
    found: list[str] = []
    audio = body.get("audio")
    for side in ("input", "output"):
        part = audio.get(side) if isinstance(audio, dict) else None
        fmt = part.get("format") if isinstance(part, dict) else None
        kind = fmt.get("type") if isinstance(fmt, dict) else fmt
        if kind is not None and kind != negotiated:
            found.append(f"audio.{side}.format={kind}")
        legacy = body.get(f"{side}_audio_format")
        if legacy is not None and _LEGACY_FORMATS.get(str(legacy), str(legacy)) != negotiated:
            found.append(f"{side}_audio_format={legacy}")
    return found


def _sip_call(request: web.Request) -> tuple[SipCall, SipFront]:
    call_id = request.match_info["call_id"]
    state = request.app[STATE_KEY]
    call = state.calls.get(call_id)
    front = front_of(state)
    if call is None or front is None:  # (no front: a SIP call that outlived it, the server is stopping)
        raise RequestRefused("call_not_found", f"Call '{call_id}' not found.", "call_id", status=404)
    if not isinstance(call, SipCall):
        raise RequestRefused(
            "not_sip", f"Call '{call_id}' is not a SIP call; only SIP calls are accepted over REST."
        )
    return call, front


async def _decision(request: web.Request) -> tuple[SipCall, SipFront, dict[str, Any]]:
    """What every decision route checks first, in order: the key, the call, the JSON body."""
    require_key(request)
    call, front = _sip_call(request)
    return call, front, await read_json(request)


async def accept(request: web.Request) -> web.Response:
    """Answer the call with the body as its session config (GA shape, ``type: realtime``)."""
    call, front, body = await _decision(request)
    body.setdefault("type", "realtime")
    try:
        merge_session(default_session(), body)  # validate now: a bad config is the app's 400
    except RequestRefused as exc:
        raise RequestRefused("invalid_value", exc.message, exc.param) from None
    negotiated = f"audio/{call.answer.codec}"
    overridden = _overridden_formats(body, negotiated)
    if overridden:
        # the phone's codec was fixed by the SDP answer; the service answers the call anyway, so do
        # we, but say so: an app that expected PCM 24 kHz on this call would otherwise never know
        logger.warning(
            "SIP call %s: ignoring %s in the accept body: the call's audio is %s, as SIP negotiated",
            call.id,
            ", ".join(overridden),
            negotiated,
        )
    await front.accept_call(call.id, body)
    return web.json_response({}, status=200)


async def reject(request: web.Request) -> web.Response:
    """Decline the call with ``status_code`` (default 603 Decline)."""
    call, front, body = await _decision(request)
    status = body.get("status_code", 603)
    if status is None:
        status = 603
    if isinstance(status, bool) or not isinstance(status, int) or not _REJECT_MIN <= status <= _REJECT_MAX:
        raise RequestRefused(
            "invalid_value",
            f"Invalid 'status_code': expected a SIP error status between {_REJECT_MIN} and {_REJECT_MAX}.",
            "status_code",
        )
    front.reject_call(call.id, status)
    return web.json_response({}, status=200)


async def refer(request: web.Request) -> web.Response:
    """Transfer the call to ``target_uri`` (``sip:`` or ``tel:``)."""
    call, front, body = await _decision(request)
    target = body.get("target_uri")
    if (
        not isinstance(target, str)
        or not target.startswith(("sip:", "sips:", "tel:"))
        or any(ch in target for ch in "<>\r\n ")
    ):
        raise RequestRefused(
            "invalid_value", "Invalid 'target_uri': expected a sip:, sips: or tel: URI.", "target_uri"
        )
    front.refer_call(call.id, target)
    return web.json_response({}, status=200)


def setup(app: web.Application, state: ServerState) -> None:
    """Install the accept/reject/refer routes (the front itself starts with the server)."""
    app.router.add_post("/v1/realtime/calls/{call_id}/accept", accept)
    app.router.add_post("/v1/realtime/calls/{call_id}/reject", reject)
    app.router.add_post("/v1/realtime/calls/{call_id}/refer", refer)
