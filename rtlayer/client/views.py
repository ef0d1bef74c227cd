"""The convenience events that are plain views of one server event (no session state involved).

``ClientSession`` emits, after the raw event itself, the typed event listed here for its type: the
transcript and text deltas, ``item_update`` for the three item events, ``function_call`` for a completed
function-call output item, ``item_deleted``, ``dtmf`` and ``input_audio_timeout``. Server events are read
defensively: a missing field or a string field of another type becomes a string; a number that is not one
(``usage.input_tokens: "many"``) raises ``ValueError``, which ``ClientSession`` reports as an ``error``
event naming the event (the connection carries on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..transport_events import (
    DtmfEvent,
    FunctionCallEvent,
    InputAudioTimeoutEvent,
    ItemDeletedEvent,
    ItemUpdateEvent,
    OutputTextDeltaEvent,
    TranscriptDeltaEvent,
    Usage,
)

__all__ = ["VIEWS", "usage_of"]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def usage_of(response: dict[str, Any]) -> Usage:
    """The token counts of a ``response.done``'s ``response`` object."""
    raw = _obj(response.get("usage"))
    inp, out = int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0)
    return Usage(
        inp, out, inp + out, raw.get("input_token_details") or {}, raw.get("output_token_details") or {}
    )


def _transcript_delta(event: dict[str, Any]) -> TranscriptDeltaEvent:
    return TranscriptDeltaEvent(
        str(event.get("delta", "")), str(event.get("item_id", "")), str(event.get("response_id", ""))
    )


def _text_delta(event: dict[str, Any]) -> OutputTextDeltaEvent:
    return OutputTextDeltaEvent(
        str(event.get("delta", "")), str(event.get("item_id", "")), str(event.get("response_id", ""))
    )


def _item_update(event: dict[str, Any]) -> ItemUpdateEvent | None:
    item = event.get("item")
    if not isinstance(item, dict):
        return None
    status = item.get("status")
    if status is None:
        status = "in_progress" if event.get("type") == "conversation.item.added" else "completed"
    return ItemUpdateEvent(
        str(item.get("id", "")),
        str(item.get("type", "")),
        status,
        item,
        item.get("role"),
        event.get("previous_item_id"),
    )


def _function_call(event: dict[str, Any]) -> FunctionCallEvent | None:
    item = event.get("item")
    if not (
        isinstance(item, dict) and item.get("type") == "function_call" and item.get("status") == "completed"
    ):
        return None
    return FunctionCallEvent(
        str(item.get("name") or ""),
        str(item.get("call_id") or ""),
        str(item.get("arguments") or ""),
        str(item.get("id", "")),
        str(event.get("response_id", "")),
    )


def _item_deleted(event: dict[str, Any]) -> ItemDeletedEvent:
    return ItemDeletedEvent(str(event.get("item_id", "")))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dtmf(event: dict[str, Any]) -> DtmfEvent | None:
    digit = event.get("event")
    if not isinstance(digit, str) or not digit:
        return None
    return DtmfEvent(digit, received_at=_int(event.get("received_at")))


def _input_audio_timeout(event: dict[str, Any]) -> InputAudioTimeoutEvent:
    return InputAudioTimeoutEvent(
        str(event.get("item_id", "")), _int(event.get("audio_start_ms")), _int(event.get("audio_end_ms"))
    )


#: server event type -> (the convenience event's name, its builder; a builder may return None: nothing to emit)
VIEWS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "response.output_audio_transcript.delta": ("audio_transcript_delta", _transcript_delta),
    "response.output_text.delta": ("output_text_delta", _text_delta),
    "conversation.item.added": ("item_update", _item_update),
    "conversation.item.done": ("item_update", _item_update),
    "conversation.item.retrieved": ("item_update", _item_update),
    "response.output_item.done": ("function_call", _function_call),
    "conversation.item.deleted": ("item_deleted", _item_deleted),
    "input_audio_buffer.dtmf_event_received": ("dtmf", _dtmf),
    "input_audio_buffer.timeout_triggered": ("input_audio_timeout", _input_audio_timeout),
}
