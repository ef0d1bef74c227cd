"""Conversation items: constructors in the service's shape, validation of client items, audio arithmetic.

Items are plain dicts (``{"id", "object": "realtime.item", "type", "status", ...}``). The server builds its own
with the constructors here; items a client sends in ``conversation.item.create`` go through
``normalize_client_item``, which fills ``id``/``object``/``status``, maps beta content names onto GA ones and
raises ``RequestRefused`` naming the bad field.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from typing import Any

from rtlayer.protocol.ids import new_id
from rtlayer.protocol.session_config import invalid_value

__all__ = [
    "assistant_message",
    "audio_duration_ms",
    "function_call_item",
    "item_text",
    "normalize_client_item",
    "user_audio_message",
    "user_text_message",
]

_USER_CONTENT = {"input_text", "input_audio", "input_image"}
_ASSISTANT_CONTENT = {"output_text", "output_audio"}
_BETA_CONTENT = {"text": "output_text", "audio": "output_audio"}
_DATA_IMAGE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,")
_IMAGE_DETAIL = ("auto", "low", "high")


def audio_duration_ms(nbytes: int, codec: str = "pcm16", rate: int = 24000) -> float:
    """Duration of ``nbytes`` of audio: PCM16 is 2 bytes a sample, G.711 (8 kHz) 1 byte a sample."""
    bytes_per_sample = 2 if codec == "pcm16" else 1
    rate = 8000 if codec in ("pcmu", "pcma") else rate
    return nbytes / bytes_per_sample / rate * 1000.0


def user_audio_message(item_id: str, transcript: str | None = None) -> dict[str, Any]:
    """The user message an input-audio commit creates (audio itself is not echoed back in events)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


def user_text_message(text: str, item_id: str | None = None) -> dict[str, Any]:
    """A user text message, as a client would create it (used by responders' tests and ``response.input``)."""
    return {
        "id": item_id or new_id("item"),
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def assistant_message(item_id: str, status: str = "in_progress") -> dict[str, Any]:
    """An assistant message with no content yet; parts are appended as the response streams."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [],
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str = "", status: str = "in_progress"
) -> dict[str, Any]:
    """A function call item; it is announced with ``arguments: ""`` and completed after the argument deltas."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": status,
        "name": name,
        "call_id": call_id,
        "arguments": arguments,
    }


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, as the service's "Invalid type" messages say it."""
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def _require_str(obj: dict[str, Any], key: str, param: str) -> str:
    value = obj.get(key)
    if value is None:
        raise invalid_value(f"{param}.{key}", f"Missing required parameter: '{param}.{key}'.")
    if not isinstance(value, str):
        raise invalid_value(
            f"{param}.{key}",
            f"Invalid type for '{param}.{key}': expected a string, but got {_json_type(value)} instead.",
        )
    return value


def _optional_str(obj: dict[str, Any], key: str, param: str) -> None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_value(
            f"{param}.{key}",
            f"Invalid type for '{param}.{key}': expected a string, but got {_json_type(value)} instead.",
        )


def _check_base64(value: str, param: str, what: str) -> None:
    """Refuse text that is not base64 (the service decodes it; a client bug should not pass silently)."""
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(param, f"Invalid '{param}': {what} is not valid base64.") from None


def _check_image(part: dict[str, Any], p: str) -> None:
    """``input_image``: ``image_url`` is a ``data:image/<type>;base64,<bytes>`` URI (the GA service takes the
    image inline, not by reference); ``detail`` is ``auto``, ``low`` or ``high``."""
    url = _require_str(part, "image_url", p)
    param = f"{p}.image_url"
    match = _DATA_IMAGE.match(url)
    if match is None:
        raise invalid_value(
            param,
            f"Invalid '{param}': expected a base64-encoded data URI such as 'data:image/png;base64,...', "
            f"got '{url[:40]}{'...' if len(url) > 40 else ''}'.",
        )
    if not url[match.end() :]:
        raise invalid_value(param, f"Invalid '{param}': the data URI holds no image bytes.")
    _check_base64(url[match.end() :], param, "the data URI's image bytes")
    detail = part.get("detail")
    if detail is not None and detail not in _IMAGE_DETAIL:
        raise invalid_value(
            f"{p}.detail", f"Invalid value: '{detail}'. Supported values are: 'auto', 'low' and 'high'."
        )


def _normalize_content(role: str, content: Any, param: str) -> list[dict[str, Any]]:
    if content is None:
        raise invalid_value(f"{param}.content", f"Missing required parameter: '{param}.content'.")
    if not isinstance(content, list):
        raise invalid_value(
            f"{param}.content",
            f"Invalid type for '{param}.content': expected an array, but got {_json_type(content)} instead.",
        )
    allowed = (
        _ASSISTANT_CONTENT if role == "assistant" else ({"input_text"} if role == "system" else _USER_CONTENT)
    )
    out: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        p = f"{param}.content[{i}]"
        if not isinstance(part, dict):
            raise invalid_value(
                p, f"Invalid type for '{p}': expected an object, but got {_json_type(part)} instead."
            )
        part = copy.deepcopy(part)
        kind = part.get("type")
        if kind is None:
            raise invalid_value(f"{p}.type", f"Missing required parameter: '{p}.type'.")
        if not isinstance(kind, str):
            raise invalid_value(
                f"{p}.type",
                f"Invalid type for '{p}.type': expected a string, but got {_json_type(kind)} instead.",
            )
        if role == "assistant" and kind in _BETA_CONTENT:
            kind = part["type"] = _BETA_CONTENT[kind]
        if kind not in allowed:
            raise invalid_value(
                f"{p}.type",
                f"Invalid value: '{kind}'. Supported values for role '{role}' are: "
                + ", ".join(f"'{a}'" for a in sorted(allowed))
                + ".",
            )
        if kind in ("input_text", "output_text"):
            _require_str(part, "text", p)
        elif kind == "input_image":
            _check_image(part, p)
        elif kind in ("input_audio", "output_audio"):
            # The audio's base64 is decoded (and checked) where it is converted, by the server; here its type.
            _optional_str(part, "audio", p)
            _optional_str(part, "transcript", p)
            part.setdefault("transcript", None)
        out.append(part)
    return out


def normalize_client_item(raw: Any, param: str = "item") -> dict[str, Any]:
    """Validate an item from ``conversation.item.create`` and complete it in the service's shape."""
    if not isinstance(raw, dict):
        raise invalid_value(param, f"Invalid type for '{param}': expected an object.")
    item: dict[str, Any] = copy.deepcopy(raw)
    kind = item.get("type", "message")
    item_id = item.get("id")
    if item_id is not None and (not isinstance(item_id, str) or not item_id or len(item_id) > 64):
        raise invalid_value(f"{param}.id", f"Invalid '{param}.id': expected a string of 1 to 64 characters.")
    item["id"] = item_id or new_id("item")
    item["object"] = "realtime.item"
    item["type"] = kind
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system"):
            raise invalid_value(
                f"{param}.role",
                f"Invalid value: '{role}'. Supported values are: 'user', 'assistant' and 'system'.",
            )
        item["content"] = _normalize_content(role, item.get("content"), param)
        item["status"] = "completed"
    elif kind == "function_call":
        _require_str(item, "name", param)
        _require_str(item, "call_id", param)
        item.setdefault("arguments", "")
        if not isinstance(item["arguments"], str):
            raise invalid_value(
                f"{param}.arguments", f"Invalid type for '{param}.arguments': expected a string."
            )
        item["status"] = "completed"
    elif kind == "function_call_output":
        _require_str(item, "call_id", param)
        _require_str(item, "output", param)
        item["status"] = "completed"
    elif kind in ("mcp_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response"):
        pass
    else:
        raise invalid_value(
            f"{param}.type",
            f"Invalid value: '{kind}'. Supported values are: 'message', "
            "'function_call', 'function_call_output' and the MCP item types.",
        )
    return item


def item_text(item: dict[str, Any]) -> str:
    """The readable text of an item: message text and transcripts, or a function call's output."""
    if item.get("type") == "function_call_output":
        return str(item.get("output", ""))
    if item.get("type") == "function_call":
        return f"{item.get('name')}({item.get('arguments', '')})"
    texts = []
    for part in item.get("content") or []:
        text = part.get("text") if part.get("text") is not None else part.get("transcript")
        if isinstance(text, str) and text:
            texts.append(text)
    return " ".join(texts)
