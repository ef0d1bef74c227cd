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
  format; one in a config (an SDK's builder adds ``audio/pcm``) is dropped with one warning, by
  ``build_initial_config`` and ``CallsClient.accept`` too;
- ``connect`` requires a ``call_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..exceptions import LocalProtocolError, UnsupportedOperation
from ..protocol.session_config import without_formats
from ..protocol.webhooks import verify_webhook
from .calls import CallsAPIError, CallsClient, sip_session_config, warn_dropped_formats
from .websocket import WebSocketTransport

__all__ = [
    "CallsAPIError",
    "CallsClient",
    "SIPTransport",
    "build_initial_config",
    "sip_session_config",
    "verify_webhook",
]


def build_initial_config(
    *,
    model: str | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    tools: list[Mapping[str, Any]] | None = None,
    turn_detection: Mapping[str, Any] | None = None,
    transcription: Mapping[str, Any] | None = None,
    output_modalities: list[str] | None = None,
    config: Mapping[str, Any] | Any | None = None,
) -> dict[str, Any]:
    """The body of ``CallsClient.accept``: a GA session of ``type: realtime``.

    ``config`` (GA or legacy shape, or a pydantic model like the Agents SDK's
    ``OpenAIRealtimeSIPModel.build_initial_session_payload(agent)``) is the base; the keyword arguments go
    on top. Audio formats are dropped with one warning (see ``sip_session_config``): SIP fixed them. For a
    config built from an agent, see ``rtlayer.integrations.openai_agents.build_initial_config``.
    """
    session = sip_session_config(config or {}, "build_initial_config")
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

    _warned_formats = False

    def _check_connect(self, call_id: str | None, config: Mapping[str, Any]) -> None:
        if not call_id:
            raise LocalProtocolError(
                "SIPTransport.connect needs the call_id of an accepted call (from the realtime.call.incoming webhook)"
            )

    async def _open_session(
        self, endpoint: str, key: str | None, call_id: str | None, config: Mapping[str, Any]
    ) -> None:
        """Attaches to the accepted call; ``initial_session_config`` (formats dropped) goes as ``session.update``."""
        config = self._without_formats(config, "SIPTransport.connect")
        await super()._open_session(endpoint, key, call_id, config)

    async def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None:
        raise UnsupportedOperation(
            "send_audio is not available on a SIP call: the caller's audio reaches the session over RTP; "
            "use send_message or response.create to steer the conversation"
        )

    def send_event(self, event: Mapping[str, Any]) -> None:
        """Like the WebSocket transport's; a raw ``session.update`` has its audio formats dropped too."""
        if event.get("type") == "session.update" and isinstance(event.get("session"), Mapping):
            event = {**event, "session": self._without_formats(event["session"], "SIPTransport.send_event")}
        super().send_event(event)

    def update_session_config(self, config: Mapping[str, Any]) -> None:
        """Like the WebSocket transport's, with audio formats dropped (one warning per transport)."""
        super().update_session_config(self._without_formats(config, "SIPTransport.update_session_config"))

    def _without_formats(self, config: Mapping[str, Any], where: str) -> dict[str, Any]:
        session, dropped = without_formats(config)
        if dropped and not self._warned_formats:
            # once per transport: an agent's every handoff sends formats again, one warning tells it all
            self._warned_formats = True
            warn_dropped_formats(where, dropped)
        return session
