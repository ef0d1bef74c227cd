"""The typed events of the transport contract: ``TransportStatus`` and the convenience events.

Each is a small frozen dataclass derived from raw server events (which stay dicts, and go to ``*``
untouched): ``connection_change``, ``error``, ``audio``, ``audio_done``, ``audio_interrupted``,
``audio_transcript_delta``, ``output_text_delta``, ``turn_started``, ``turn_done``, ``function_call``,
``item_update``, ``item_deleted`` and ``usage_update``. ``rtlayer.transport`` re-exports every name here:
import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "TRANSPORT_EVENT_NAMES",
    "AudioDoneEvent",
    "AudioEvent",
    "AudioInterruptedEvent",
    "ConnectionChangeEvent",
    "DtmfEvent",
    "ErrorEvent",
    "FunctionCallEvent",
    "InputAudioTimeoutEvent",
    "ItemDeletedEvent",
    "ItemUpdateEvent",
    "OutputTextDeltaEvent",
    "TranscriptDeltaEvent",
    "TransportStatus",
    "TurnDoneEvent",
    "TurnStartedEvent",
    "Usage",
]


class TransportStatus(StrEnum):
    """Where a transport's connection stands. ``reconnecting`` is rtlayer's own: the anchors never reconnect."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"


# ---------------------------------------------------------------------------------------------------------
# Typed events (convenience views derived from raw server events; the raw dict always goes to ``*`` too)


@dataclass(frozen=True, slots=True)
class ConnectionChangeEvent:
    """``connection_change``: the transport's status changed."""

    status: TransportStatus
    #: reconnection attempt number (1, 2, ...) while ``reconnecting``; 0 otherwise
    attempt: int = 0
    #: why, when there is something to say (the close code and reason of a dropped connection, ...)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """``error``: a server ``error`` event, or a local failure (bad frame, listener crash, lost connection)."""

    message: str
    #: the server's ``error.code`` (``conversation_already_has_active_response``...), or a local code
    code: str | None = None
    #: the server's ``error.type`` (``invalid_request_error``...), or ``"transport_error"`` for local ones
    type: str = "transport_error"
    #: the config field at fault, when the server names one
    param: str | None = None
    #: the client event that caused it, when the server echoes its ``event_id``
    event_id: str | None = None
    #: the raw server event, when it came from the server
    raw: dict[str, Any] | None = None
    #: the exception, when a local failure raised one
    exception: BaseException | None = None


@dataclass(frozen=True, slots=True)
class AudioEvent:
    """``audio``: decoded output audio, in the format (and frame size) the app asked for."""

    data: bytes
    response_id: str
    item_id: str
    content_index: int = 0


@dataclass(frozen=True, slots=True)
class AudioDoneEvent:
    """``audio_done``: the server sent all the audio of this item (it may still be playing)."""

    response_id: str
    item_id: str
    content_index: int = 0


@dataclass(frozen=True, slots=True)
class AudioInterruptedEvent:
    """``audio_interrupted``: stop playback now and drop queued audio."""

    item_id: str | None
    content_index: int = 0
    #: what the item was truncated to (ms the user heard), or None when nothing was truncated
    audio_end_ms: int | None = None
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptDeltaEvent:
    """``audio_transcript_delta``: a piece of the transcript of the spoken answer."""

    delta: str
    item_id: str
    response_id: str


@dataclass(frozen=True, slots=True)
class OutputTextDeltaEvent:
    """``output_text_delta``: a piece of a text answer."""

    delta: str
    item_id: str
    response_id: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response (``usage_update``)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_token_details: Mapping[str, Any] = field(default_factory=dict)
    output_token_details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TurnStartedEvent:
    """``turn_started``: the server created a response."""

    response_id: str
    #: the raw ``response`` object of ``response.created``
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TurnDoneEvent:
    """``turn_done``: a response ended (``status`` completed, cancelled, failed or incomplete)."""

    response_id: str
    status: str
    #: the raw ``response`` object of ``response.done`` (``output`` holds the items)
    response: dict[str, Any]
    usage: Usage


@dataclass(frozen=True, slots=True)
class FunctionCallEvent:
    """``function_call``: the model wants a tool run; answer with ``send_function_call_output``."""

    name: str
    call_id: str
    arguments: str
    item_id: str
    response_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True)
class ItemUpdateEvent:
    """``item_update``: a conversation item was added, changed, completed or retrieved."""

    item_id: str
    type: str
    status: str | None
    #: the raw item, as the server sent it
    item: dict[str, Any]
    role: str | None = None
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True)
class ItemDeletedEvent:
    """``item_deleted``: an item left the conversation."""

    item_id: str


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """``dtmf``: the caller pressed a key, on a SIP call (``input_audio_buffer.dtmf_event_received``) or a
    provider's media stream (``MediaStreamTransport``)."""

    #: "0"-"9", "*", "#" or "A"-"D"
    digit: str
    #: how long the key was held, when the provider says (media streams)
    duration_ms: int | None = None
    #: when the service received it, Unix seconds (SIP)
    received_at: int | None = None


@dataclass(frozen=True, slots=True)
class InputAudioTimeoutEvent:
    """``input_audio_timeout``: the user said nothing for ``idle_timeout_ms`` after the last answer
    (``input_audio_buffer.timeout_triggered``); the service answers unless ``create_response`` is off."""

    item_id: str
    audio_start_ms: int
    audio_end_ms: int


#: The convenience event names every transport emits (besides ``*`` and each server event type).
TRANSPORT_EVENT_NAMES = (
    "connection_change",
    "error",
    "audio",
    "audio_done",
    "audio_interrupted",
    "audio_transcript_delta",
    "output_text_delta",
    "turn_started",
    "turn_done",
    "function_call",
    "item_update",
    "item_deleted",
    "usage_update",
    "dtmf",
    "input_audio_timeout",
)
