"""Client events built from app calls, as the JS SDK's ``OpenAIRealtimeBase`` builds them: pure functions.

``ClientSession`` sends what these return; keeping them apart keeps the state machine short and lets an app
(or another transport) build the same events without a session.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..protocol.session_config import normalize_session
from ..transport_events import FunctionCallEvent

__all__ = [
    "function_call_item",
    "function_call_output_event",
    "mcp_approval_event",
    "reset_history_events",
    "session_update_event",
    "user_message_event",
]

logger = logging.getLogger("rtlayer.client")

# Legacy format names -> GA format objects (what the JS SDK maps them to).
_LEGACY_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
    "audio/pcmu": {"type": "audio/pcmu"},
    "audio/pcma": {"type": "audio/pcma"},
}


def session_update_event(config: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """``session.update`` for a partial config in GA or legacy (flat, camelCase) shape, mapped to GA."""
    if not isinstance(config, Mapping):
        raise TypeError(
            f"a session config is a mapping (a dict of session fields), got {type(config).__name__}"
        )
    session = normalize_session(dict(config))
    session["type"] = "realtime"
    audio = session.get("audio")
    for direction in ("input", "output"):
        part = audio.get(direction) if isinstance(audio, dict) else None
        fmt = part.get("format") if isinstance(part, dict) else None
        if isinstance(part, dict) and isinstance(fmt, str) and fmt in _LEGACY_FORMATS:
            part["format"] = dict(_LEGACY_FORMATS[fmt])
    if model is not None and "model" not in session:
        session["model"] = model
    return {"type": "session.update", "session": session}


def user_message_event(
    message: str | Mapping[str, Any], other_event_data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``conversation.item.create`` of a user message: a text, or an item whose ``input_image`` parts may
    say ``image`` (the JS SDK's spelling) for ``image_url``."""
    if isinstance(message, str):
        content: list[Any] = [{"type": "input_text", "text": message}]
    else:
        parts = message.get("content", []) if isinstance(message, Mapping) else None
        if not isinstance(parts, list):
            raise TypeError(
                "a message is a text (str) or a message item (a dict with a 'content' list), got "
                + (type(message).__name__ if parts is None else f"'content' of type {type(parts).__name__}")
            )
        content = []
        for part in parts:
            if isinstance(part, Mapping) and part.get("type") == "input_image" and "image" in part:
                content.append({"type": "input_image", "image_url": part["image"]})
            else:
                content.append(part)
    event: dict[str, Any] = {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": content},
    }
    event.update(other_event_data or {})
    return event


def function_call_output_event(call: FunctionCallEvent, output: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call.call_id, "output": output},
    }


def function_call_item(call: FunctionCallEvent, output: str) -> dict[str, Any]:
    """The completed call as an item (what ``item_update`` reports once the output is sent)."""
    return {
        "id": call.item_id,
        "type": "function_call",
        "status": "completed",
        "name": call.name,
        "call_id": call.call_id,
        "arguments": call.arguments,
        "output": output,
    }


def mcp_approval_event(approval_request_id: str, approved: bool, reason: str | None = None) -> dict[str, Any]:
    """The answer to an ``mcp_approval_request`` item."""
    item: dict[str, Any] = {
        "type": "mcp_approval_response",
        "approval_request_id": approval_request_id,
        "approve": approved,
    }
    if reason is not None:
        item["reason"] = reason
    return {"type": "conversation.item.create", "previous_item_id": approval_request_id, "item": item}


def reset_history_events(
    old_history: list[dict[str, Any]], new_history: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Deletes for what went or changed, then creates for what came or changed (items matched by ``id``;
    only messages can be re-created, as in the JS SDK)."""
    old = {i["id"]: i for i in old_history if isinstance(i, dict) and "id" in i}
    new = {i["id"]: i for i in new_history if isinstance(i, dict) and "id" in i}
    changed = [k for k in new if k in old and new[k] != old[k]]
    events: list[dict[str, Any]] = [
        {"type": "conversation.item.delete", "item_id": item_id}
        for item_id in [k for k in old if k not in new] + changed
    ]
    for item_id in [k for k in new if k not in old] + changed:
        item = new[item_id]
        if item.get("type") != "message":
            logger.warning("reset_history: %s items cannot be re-created; skipped", item.get("type"))
            continue
        entry: dict[str, Any] = {k: item[k] for k in ("id", "type", "role", "content") if k in item}
        if item.get("role") != "system" and "status" in item:
            entry["status"] = item["status"]
        events.append({"type": "conversation.item.create", "item": entry})
    return events
