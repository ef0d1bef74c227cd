"""Pure conversions between rtlayer's events and the ``openai-agents`` realtime model's types.

Kept apart from ``openai_agents.py`` (the asyncio shell) so that each mapping is a plain function of its
input: an rtlayer raw event dict or typed event in, the Agents SDK's ``RealtimeModel*Event`` out. The shapes
follow what ``agents.realtime.openai_realtime.OpenAIRealtimeWebSocketModel`` produces from the same wire
events (GA content names ``output_text``/``output_audio`` become the SDK's ``text``/``audio``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
from agents.realtime import RealtimePlaybackTracker
from agents.realtime.items import RealtimeMessageItem, RealtimeToolCallItem
from agents.realtime.model_events import (
    RealtimeModelCachedTokensDetails,
    RealtimeModelErrorEvent,
    RealtimeModelInputTokensDetails,
    RealtimeModelItemUpdatedEvent,
    RealtimeModelOutputTokensDetails,
    RealtimeModelUsageEvent,
)
from agents.usage import Usage as AgentsUsage
from openai.types.realtime.realtime_error import RealtimeError

from ..audio import AudioFormat, PlaybackTracker
from ..transport import ErrorEvent, FunctionCallEvent

__all__ = [
    "AgentsTrackerBridge",
    "error_event",
    "message_item",
    "output_message_item",
    "tool_call_item",
    "usage_event",
]

_MESSAGE_ITEM: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeMessageItem)

# Content part types each role may carry in the SDK's item models (anything else is left out: the SDK
# validates items strictly and one unknown part would drop the whole item).
_PARTS_BY_ROLE = {
    "user": frozenset({"input_text", "input_audio", "input_image"}),
    "system": frozenset({"input_text"}),
    "assistant": frozenset({"text", "audio"}),
}
_GA_TO_SDK_PART = {"output_text": "text", "output_audio": "audio"}


def _content(raw: object, role: str) -> list[dict[str, Any]]:
    allowed = _PARTS_BY_ROLE.get(role, frozenset())
    parts: list[dict[str, Any]] = []
    for part in raw if isinstance(raw, list) else []:
        if not isinstance(part, Mapping):
            continue
        converted = dict(part)
        kind = _GA_TO_SDK_PART.get(str(converted.get("type")), converted.get("type"))
        converted["type"] = kind
        if kind in allowed:
            parts.append(converted)
    return parts


def message_item(
    item: Mapping[str, Any], status: str | None, previous_item_id: str | None = None
) -> RealtimeModelItemUpdatedEvent | None:
    """``item_updated`` for a conversation message item (``conversation.item.added``/``done``/``retrieved``);
    None for other item types (function calls are reported through ``function_call`` and tool output)."""
    if item.get("type") != "message":
        return None
    role = str(item.get("role", ""))
    if status not in ("in_progress", "completed", "incomplete"):
        status = "in_progress"
    converted = _MESSAGE_ITEM.validate_python(
        {
            "item_id": str(item.get("id") or ""),
            "previous_item_id": previous_item_id,
            "type": "message",
            "role": role,
            "content": _content(item.get("content"), role),
            "status": status,
        }
    )
    return RealtimeModelItemUpdatedEvent(item=converted)


def output_message_item(event: Mapping[str, Any]) -> RealtimeModelItemUpdatedEvent | None:
    """``item_updated`` for the message item of ``response.output_item.added``/``done`` (in progress while
    the response streams it, completed at its ``done``), as the SDK reports assistant messages."""
    item = event.get("item")
    if not isinstance(item, Mapping) or item.get("type") != "message":
        return None
    status = item.get("status")
    if status not in ("in_progress", "completed", "incomplete"):
        status = "completed" if event.get("type") == "response.output_item.done" else "in_progress"
    converted = dict(item)
    converted.setdefault("role", "assistant")
    return message_item(converted, status)


def tool_call_item(
    call: FunctionCallEvent | None = None,
    *,
    item_id: str = "",
    call_id: str | None = None,
    name: str = "",
    arguments: str = "",
    previous_item_id: str | None = None,
    output: str | None = None,
) -> RealtimeModelItemUpdatedEvent:
    """``item_updated`` for a function call: in progress when the model asks, completed with its output."""
    if call is not None:
        item_id, call_id, name, arguments = call.item_id, call.call_id, call.name, call.arguments
        previous_item_id = call.previous_item_id
    return RealtimeModelItemUpdatedEvent(
        item=RealtimeToolCallItem(
            item_id=item_id,
            previous_item_id=previous_item_id,
            call_id=call_id,
            type="function_call",
            status="in_progress" if output is None else "completed",
            arguments=arguments,
            name=name,
            output=output,
        )
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_event(usage: Mapping[str, Any]) -> RealtimeModelUsageEvent:
    """``usage`` from the ``usage`` object of ``response.done`` (one request's tokens, with details)."""
    input_tokens = _int(usage.get("input_tokens")) or 0
    output_tokens = _int(usage.get("output_tokens")) or 0
    total = _int(usage.get("total_tokens"))
    aggregate = AgentsUsage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total if total is not None else input_tokens + output_tokens,
    )
    inp = usage.get("input_token_details")
    out = usage.get("output_token_details")
    input_details = None
    if isinstance(inp, Mapping):
        aggregate.input_tokens_details.cached_tokens = _int(inp.get("cached_tokens")) or 0
        cached = inp.get("cached_tokens_details")
        input_details = RealtimeModelInputTokensDetails(
            text_tokens=_int(inp.get("text_tokens")),
            audio_tokens=_int(inp.get("audio_tokens")),
            image_tokens=_int(inp.get("image_tokens")),
            cached_tokens=_int(inp.get("cached_tokens")),
            cached_tokens_details=(
                RealtimeModelCachedTokensDetails(
                    text_tokens=_int(cached.get("text_tokens")),
                    audio_tokens=_int(cached.get("audio_tokens")),
                    image_tokens=_int(cached.get("image_tokens")),
                )
                if isinstance(cached, Mapping)
                else None
            ),
        )
    output_details = (
        RealtimeModelOutputTokensDetails(
            text_tokens=_int(out.get("text_tokens")), audio_tokens=_int(out.get("audio_tokens"))
        )
        if isinstance(out, Mapping)
        else None
    )
    return RealtimeModelUsageEvent(
        usage=aggregate, input_tokens_details=input_details, output_tokens_details=output_details
    )


def error_event(error: ErrorEvent) -> RealtimeModelErrorEvent:
    """``error`` carrying the same ``RealtimeError`` model the SDK's WebSocket model passes on.

    A server error keeps every field the server sent; a local one (a malformed frame, a lost connection)
    becomes a ``RealtimeError`` of type ``transport_error`` with rtlayer's code, so the session goes on.
    """
    raw = error.raw.get("error") if error.raw is not None else None
    if isinstance(raw, Mapping):
        try:
            return RealtimeModelErrorEvent(error=RealtimeError.model_validate(dict(raw)))
        except pydantic.ValidationError:
            pass
    return RealtimeModelErrorEvent(
        error=RealtimeError(
            type=error.type,
            message=error.message,
            code=error.code,
            param=error.param,
            event_id=error.event_id,
        )
    )


_SDK_FORMAT_NAMES = {"pcm16": "pcm16", "pcmu": "g711_ulaw", "pcma": "g711_alaw"}


class AgentsTrackerBridge(PlaybackTracker):
    """An rtlayer ``PlaybackTracker`` reading the app's ``agents.realtime.RealtimePlaybackTracker``.

    The Agents SDK lets the app report what it played through its own tracker (``playback_tracker`` in the
    model config); rtlayer's transports read an rtlayer tracker when the user barges in. This bridge lets
    the transport truncate at what the app's tracker says was played.
    """

    def __init__(self, tracker: RealtimePlaybackTracker, format: AudioFormat) -> None:
        super().__init__(format)
        self.agents_tracker = tracker
        tracker.set_audio_format(_SDK_FORMAT_NAMES[format.codec])

    def set_audio_format(self, format: AudioFormat) -> None:
        super().set_audio_format(format)
        self.agents_tracker.set_audio_format(_SDK_FORMAT_NAMES[format.codec])

    def played_ms(self, item_id: str, item_content_index: int = 0) -> float:
        state = self.agents_tracker.get_state()
        elapsed = state.get("elapsed_ms")
        if (
            state.get("current_item_id") == item_id
            and (state.get("current_item_content_index") or 0) == item_content_index
            and elapsed is not None
        ):
            return max(0.0, float(elapsed))
        return 0.0

    def on_interrupted(self) -> None:
        super().on_interrupted()
        self.agents_tracker.on_interrupted()
