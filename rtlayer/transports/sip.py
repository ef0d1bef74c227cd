"""``SIPTransport``: the control socket of a phone call that reached the Realtime service over SIP.

A SIP call's audio travels as G.711 over RTP between the caller and the service; the app only sees
events. So the transport is the WebSocket transport attached with ``?call_id=``:

```python
calls = CallsClient(base_url=..., api_key=...)
await calls.accept(call.call_id, build_initial_config(instructions="You answer the phone."))
transport = SIPTransport()
await transport.connect(url=ws_url, api_key=key, call_id=call.call_id)
transport.on("input_audio_buffer.speech_started", ...)
```

Differences from the WebSocket transport, all on purpose:

- ``send_audio`` raises :class:`~rtlayer.exceptions.UnsupportedOperation`: the caller's audio is on RTP;
- the session's audio formats are what SIP negotiated (PCMU or PCMA): the transport never sends a
  format, and refuses a config that sets one (``build_initial_config`` too) instead of silently
  breaking the call's audio;
- ``connect`` requires a ``call_id``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..exceptions import LocalProtocolError, UnsupportedOperation
from ..protocol.session_config import normalize_session
from ..protocol.webhooks import verify_webhook
from ._connect import ApiKey
from .calls import CallsAPIError, CallsClient
from .websocket import WebSocketTransport

__all__ = [
    "CallsAPIError",
    "CallsClient",
    "SIPTransport",
    "build_initial_config",
    "verify_webhook",
]


def _refuse_formats(session: Mapping[str, Any], where: str) -> None:
    audio = session.get("audio")
    if not isinstance(audio, Mapping):
        return
    for side in ("input", "output"):
        part = audio.get(side)
        if isinstance(part, Mapping) and "format" in part:
            raise LocalProtocolError(
                f"{where}: audio.{side}.format cannot be set on a SIP call: the caller's codec "
                "(PCMU or PCMA) was negotiated over SIP and the service converts for the model"
            )


def build_initial_config(
    *,
    model: str | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    tools: list[Mapping[str, Any]] | None = None,
    turn_detection: Mapping[str, Any] | None = None,
    transcription: Mapping[str, Any] | None = None,
    output_modalities: list[str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of ``CallsClient.accept``: a GA session of ``type: realtime``.

    ``config`` (GA or legacy shape) is the base; the keyword arguments go on top. Audio formats are
    refused (``LocalProtocolError``): SIP already fixed them.
    """
    session: dict[str, Any] = normalize_session(copy.deepcopy(dict(config or {})))
    _refuse_formats(session, "build_initial_config")
    session["type"] = "realtime"
    if model is not None:
        session["model"] = model
    if instructions is not None:
        session["instructions"] = instructions
    if tools is not None:
        session["tools"] = [dict(t) for t in tools]
    if output_modalities is not None:
        session["output_modalities"] = list(output_modalities)
    audio = session.setdefault("audio", {})
    if voice is not None:
        audio.setdefault("output", {})["voice"] = voice
    if turn_detection is not None:
        audio.setdefault("input", {})["turn_detection"] = dict(turn_detection)
    if transcription is not None:
        audio.setdefault("input", {})["transcription"] = dict(transcription)
    if not audio:
        del session["audio"]
    return session


class SIPTransport(WebSocketTransport):
    """The WebSocket transport attached to a SIP call with ``?call_id=``; audio stays on RTP."""

    async def connect(
        self,
        url: str | None = None,
        api_key: ApiKey | None = None,
        model: str | None = None,
        call_id: str | None = None,
        initial_session_config: Mapping[str, Any] | None = None,
    ) -> None:
        """Attach to an accepted call. ``initial_session_config`` (formats refused) is sent as ``session.update``."""
        if not call_id:
            raise LocalProtocolError(
                "SIPTransport.connect needs the call_id of an accepted call (from the realtime.call.incoming webhook)"
            )
        config = dict(initial_session_config or {})
        _refuse_formats(normalize_session(copy.deepcopy(config)), "SIPTransport.connect")
        await super().connect(
            url=url, api_key=api_key, model=model, call_id=call_id, initial_session_config=config
        )

    async def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None:
        raise UnsupportedOperation(
            "send_audio is not available on a SIP call: the caller's audio reaches the session over RTP; "
            "use send_message or response.create to steer the conversation"
        )

    def update_session_config(self, config: Mapping[str, Any]) -> None:
        _refuse_formats(normalize_session(copy.deepcopy(dict(config))), "update_session_config")
        super().update_session_config(config)
