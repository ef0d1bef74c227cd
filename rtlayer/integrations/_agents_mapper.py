"""Transport events -> ``openai-agents`` model events: what ``RtlayerRealtimeModel`` hears, in order.

``EventMapper`` listens to one rtlayer transport (its raw ``*`` events and its typed events) and hands each
``RealtimeModel*Event`` to ``put``, synchronously and in the order the transport emitted them; the model's
delivery task awaits the SDK's listeners. It also keeps what the model's interrupt needs: the response being
generated and the response whose audio plays.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from agents.realtime.model_events import (
    RealtimeConnectionStatus,
    RealtimeModelAudioDoneEvent,
    RealtimeModelAudioEvent,
    RealtimeModelAudioInterruptedEvent,
    RealtimeModelConnectionStatusEvent,
    RealtimeModelEndOfStreamEvent,
    RealtimeModelEvent,
    RealtimeModelInputAudioTimeoutTriggeredEvent,
    RealtimeModelInputAudioTranscriptionCompletedEvent,
    RealtimeModelItemDeletedEvent,
    RealtimeModelOutputTextDeltaEvent,
    RealtimeModelRawServerEvent,
    RealtimeModelToolCallEvent,
    RealtimeModelTranscriptDeltaEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
)

from ..client.session import ClientSession
from ..exceptions import ConnectionClosedError
from ..transport import (
    AudioDoneEvent,
    AudioEvent,
    AudioInterruptedEvent,
    ConnectionChangeEvent,
    DtmfEvent,
    ErrorEvent,
    FunctionCallEvent,
    ItemDeletedEvent,
    ItemUpdateEvent,
    Listener,
    OutputTextDeltaEvent,
    RealtimeTransportLayer,
    TranscriptDeltaEvent,
    TransportStatus,
    TurnDoneEvent,
    TurnStartedEvent,
)
from ._agents_events import error_event, message_item, output_message_item, tool_call_item, usage_event

__all__ = ["EventMapper"]

_STATUS: dict[TransportStatus, RealtimeConnectionStatus] = {
    TransportStatus.CONNECTING: "connecting",
    TransportStatus.RECONNECTING: "connecting",
    TransportStatus.CONNECTED: "connected",
    TransportStatus.DISCONNECTED: "disconnected",
}


class EventMapper:
    """Subscribes to ``transport`` and turns what it emits into the SDK's model events (see the module)."""

    def __init__(self, transport: RealtimeTransportLayer, put: Callable[[RealtimeModelEvent], None]) -> None:
        self.transport = transport
        self._put = put
        self._subscriptions: list[tuple[str, Listener]] = []
        #: set by the model while it closes: the transport's own ``disconnected`` is then not news
        self.closing = False
        #: the response being generated (``turn_started`` .. ``turn_done``)
        self.active_response_id: str | None = None
        #: the response whose audio was last delivered, until an interruption
        self.playing_response_id: str | None = None
        #: the raw dtmf server event just went out (its typed view follows it: not news)
        self._raw_dtmf = False

    def reset(self) -> None:
        self.closing = False
        self.active_response_id = self.playing_response_id = None

    def _put_if(self, event: RealtimeModelEvent | None) -> None:
        if event is not None:
            self._put(event)

    def subscribe(self) -> None:
        handlers: dict[str, Listener] = {
            "*": self._on_raw,
            "audio": self._on_audio,
            "audio_done": self._on_audio_done,
            "audio_interrupted": self._on_audio_interrupted,
            "audio_transcript_delta": self._on_transcript_delta,
            "output_text_delta": self._on_text_delta,
            "item_update": self._on_item_update,
            "item_deleted": self._on_item_deleted,
            "function_call": self._on_function_call,
            "turn_started": self._on_turn_started,
            "turn_done": self._on_turn_done,
            "error": self._on_error,
            "connection_change": self._on_connection_change,
            "dtmf": self._on_dtmf,
        }
        for name, handler in handlers.items():
            self.transport.add_listener(name, handler)
            self._subscriptions.append((name, handler))

    def unsubscribe(self) -> None:
        for name, handler in self._subscriptions:
            self.transport.remove_listener(name, handler)
        self._subscriptions.clear()

    def _on_raw(self, event: dict[str, Any]) -> None:
        self._put(RealtimeModelRawServerEvent(data=event))
        kind = event.get("type")
        self._raw_dtmf = False
        # Most events (every audio delta) need nothing more: one lookup, not a chain of comparisons.
        more = _RAW_HANDLERS.get(kind) if isinstance(kind, str) else None
        if more is not None:
            more(self, event)

    def _on_output_item(self, event: dict[str, Any]) -> None:
        self._put_if(output_message_item(event))

    def _on_input_transcription(self, event: dict[str, Any]) -> None:
        self._put(
            RealtimeModelInputAudioTranscriptionCompletedEvent(
                item_id=str(event.get("item_id", "")), transcript=str(event.get("transcript", ""))
            )
        )

    def _on_input_timeout(self, event: dict[str, Any]) -> None:
        self._put(
            RealtimeModelInputAudioTimeoutTriggeredEvent(
                item_id=str(event.get("item_id", "")),
                audio_start_ms=int(event.get("audio_start_ms") or 0),
                audio_end_ms=int(event.get("audio_end_ms") or 0),
            )
        )

    def _on_raw_dtmf(self, event: dict[str, Any]) -> None:
        self._raw_dtmf = True

    def _on_truncated(self, event: dict[str, Any]) -> None:
        if not isinstance(event.get("item_id"), str):
            return
        # Like the SDK: fetch the truncated item, so history shows what the user actually heard.
        session = getattr(self.transport, "session", None)
        if not (isinstance(session, ClientSession) and session.retrieve_items):
            # A call that just ended (the caller hung up as the answer was cut) has nothing to ask.
            with contextlib.suppress(ConnectionClosedError):
                self.transport.send_event({"type": "conversation.item.retrieve", "item_id": event["item_id"]})

    def _on_audio(self, event: AudioEvent) -> None:
        self.playing_response_id = event.response_id
        self._put(RealtimeModelAudioEvent(event.data, event.response_id, event.item_id, event.content_index))

    def _on_audio_done(self, event: AudioDoneEvent) -> None:
        self._put(RealtimeModelAudioDoneEvent(item_id=event.item_id, content_index=event.content_index))

    def _on_audio_interrupted(self, event: AudioInterruptedEvent) -> None:
        self.playing_response_id = None
        if event.item_id is not None:
            self._put(
                RealtimeModelAudioInterruptedEvent(item_id=event.item_id, content_index=event.content_index)
            )

    def _on_transcript_delta(self, event: TranscriptDeltaEvent) -> None:
        self._put(RealtimeModelTranscriptDeltaEvent(event.item_id, event.delta, event.response_id))

    def _on_text_delta(self, event: OutputTextDeltaEvent) -> None:
        self._put(RealtimeModelOutputTextDeltaEvent(event.item_id, event.delta, event.response_id))

    def _on_item_update(self, event: ItemUpdateEvent) -> None:
        try:
            self._put_if(message_item(event.item, event.status, event.previous_item_id))
        except ValueError as exc:  # pydantic's ValidationError: an item the SDK's models refuse
            self._put(
                error_event(ErrorEvent(f"unusable message item {event.item_id!r}: {exc}", "invalid_item"))
            )

    def _on_item_deleted(self, event: ItemDeletedEvent) -> None:
        self._put(RealtimeModelItemDeletedEvent(item_id=event.item_id))

    def _on_function_call(self, event: FunctionCallEvent) -> None:
        self._put(tool_call_item(event))
        self._put(
            RealtimeModelToolCallEvent(
                name=event.name,
                call_id=event.call_id,
                arguments=event.arguments,
                id=event.item_id,
                previous_item_id=event.previous_item_id,
            )
        )

    def _on_turn_started(self, event: TurnStartedEvent) -> None:
        self.active_response_id = event.response_id
        self._put(RealtimeModelTurnStartedEvent(response_id=event.response_id))

    def _on_turn_done(self, event: TurnDoneEvent) -> None:
        if self.active_response_id == event.response_id:
            self.active_response_id = None
        usage = event.response.get("usage")
        if isinstance(usage, Mapping):
            self._put(usage_event(usage))
        self._put(RealtimeModelTurnEndedEvent(response_id=event.response_id or None))

    def _on_dtmf(self, event: DtmfEvent) -> None:
        """A key pressed on a provider's media stream reaches the session as the raw server event a SIP call
        gives (the SDK has no DTMF event of its own), so an agent app reads digits the same way on both."""
        if self._raw_dtmf:
            self._raw_dtmf = False  # a SIP call: the raw event went out already
            return
        self._put(
            RealtimeModelRawServerEvent(
                data={
                    "type": "input_audio_buffer.dtmf_event_received",
                    "event": event.digit,
                    "received_at": int(time.time()),
                }
            )
        )

    def _on_error(self, event: ErrorEvent) -> None:
        self._put(error_event(event))

    def _on_connection_change(self, event: ConnectionChangeEvent) -> None:
        status = _STATUS.get(event.status)
        if status is not None and status != "disconnected":
            self._put(RealtimeModelConnectionStatusEvent(status=status))
        elif status == "disconnected" and not self.closing:
            self.active_response_id = self.playing_response_id = None
            self._put(RealtimeModelConnectionStatusEvent(status="disconnected"))
            self._put(RealtimeModelEndOfStreamEvent())


#: raw server events that mean more to the SDK than the raw event itself
_RAW_HANDLERS: dict[str, Callable[[EventMapper, dict[str, Any]], None]] = {
    "response.output_item.added": EventMapper._on_output_item,
    "response.output_item.done": EventMapper._on_output_item,
    "conversation.item.input_audio_transcription.completed": EventMapper._on_input_transcription,
    "input_audio_buffer.timeout_triggered": EventMapper._on_input_timeout,
    "input_audio_buffer.dtmf_event_received": EventMapper._on_raw_dtmf,
    "conversation.item.truncated": EventMapper._on_truncated,
}
