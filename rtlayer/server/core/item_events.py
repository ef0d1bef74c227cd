"""The conversation item events of the client: create, retrieve, delete, truncate. Sans-I/O functions.

An unknown item is answered as the service answers it: ``item_retrieve_invalid_item_id`` /
``item_delete_invalid_item_id`` with "Error retrieving (deleting) item: the item with id 'X' does not exist."
and no ``param`` (what a suite run against both the service and its own server asserts, and what clients such
as pipecat match on).

Each takes the session's ``Conversation`` and the client event and returns the server events that answer it,
or raises ``RequestRefused`` with the service's code and ``param`` (the session turns it into an ``error``
event that echoes the client's ``event_id``).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from rtlayer.audio import PCM16_24K, AudioConverter, AudioFormat
from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.items import normalize_client_item
from rtlayer.server.core.conversation import Conversation

__all__ = [
    "copy_item",
    "create_item",
    "delete_item",
    "retrieve_item",
    "truncate",
    "truncate_item",
]


def copy_item(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of an item deep enough that later changes to the stored one do not leak into sent events."""
    out = dict(item)
    if isinstance(out.get("content"), list):
        out["content"] = [dict(c) for c in out["content"]]
    return out


def _take_audio(item: dict[str, Any], input_format: AudioFormat) -> bytes:
    """Decode (and remove) the base64 ``audio`` of input_audio parts: kept aside as PCM16 24 kHz, never echoed."""
    pcm = b""
    for i, part in enumerate(item.get("content") or []):
        audio = part.pop("audio", None) if part.get("type") == "input_audio" else None
        if audio is None:
            continue
        try:
            pcm += AudioConverter(input_format, PCM16_24K).convert(base64.b64decode(audio, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise RequestRefused(
                "invalid_value", f"Invalid 'item.content[{i}].audio': {exc}.", f"item.content[{i}].audio"
            ) from None
    return pcm


def create_item(conv: Conversation, event: dict[str, Any], input_format: AudioFormat) -> list[dict[str, Any]]:
    """``conversation.item.create``: insert after ``previous_item_id`` (``"root"``: first; none: last)."""
    prev = event.get("previous_item_id")
    if prev is not None and prev != "root" and prev not in conv:
        raise RequestRefused(
            "invalid_value", f"Previous item with id '{prev}' does not exist.", "previous_item_id"
        )
    item = normalize_client_item(event["item"])
    if item["id"] in conv:
        raise RequestRefused("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id")
    pcm = _take_audio(item, input_format)
    nbytes = conv.item_bytes(item)
    if not conv.fits(nbytes + len(pcm)):
        raise RequestRefused(
            "invalid_value",
            f"Item too large: {nbytes + len(pcm)} bytes (with its audio as PCM16 24 kHz), "
            f"over this session's conversation limit of {conv.max_bytes} bytes.",
            "item",
        )
    previous = conv.add(item, None if prev == "root" else prev, append=prev is None, nbytes=nbytes)
    if pcm:
        conv.keep_user_audio(item["id"], pcm)
    return [
        {"type": "conversation.item.added", "previous_item_id": previous, "item": copy_item(item)},
        {"type": "conversation.item.done", "previous_item_id": previous, "item": copy_item(item)},
    ]


def retrieve_item(conv: Conversation, item_id: str, input_format: AudioFormat) -> dict[str, Any]:
    """``conversation.item.retrieve``: the item, with its kept user audio as base64 in the session's input
    format (what the client sent: G.711 stays G.711), so a client can replay or re-send it as is."""
    item = conv.get(item_id)
    if item is None:
        raise RequestRefused(
            "item_retrieve_invalid_item_id",
            f"Error retrieving item: the item with id '{item_id}' does not exist.",
            None,  # the service names no param here (its code already says which field)
        )
    out = copy_item(item)
    record = conv.audio.get(item_id)
    if record is not None and record.pcm16_24k is not None and out.get("content"):
        audio = AudioConverter(PCM16_24K, input_format, quality="high").convert(record.pcm16_24k)
        out["content"][0]["audio"] = base64.b64encode(audio).decode()
    return {"type": "conversation.item.retrieved", "item": out}


def delete_item(conv: Conversation, item_id: str) -> dict[str, Any]:
    """``conversation.item.delete``."""
    if not conv.delete(item_id):
        raise RequestRefused(
            "item_delete_invalid_item_id",
            f"Error deleting item: the item with id '{item_id}' does not exist.",
            None,  # the service names no param here (its code already says which field)
        )
    return {"type": "conversation.item.deleted", "item_id": item_id}


def truncate_item(conv: Conversation, item_id: str, content_index: int, audio_end_ms: int) -> dict[str, Any]:
    """``conversation.item.truncate``, checked against the audio's real length (bytes in its format)."""
    item = conv.get(item_id)
    record = conv.audio.get(item_id)
    if item is None or item.get("role") != "assistant" or record is None:
        raise RequestRefused(
            "item_truncate_invalid_item_id",
            f"Error truncating item: the item with id '{item_id}' "
            "does not exist or is not an assistant message with audio.",
            "item_id",
        )
    if content_index != 0:
        raise RequestRefused(
            "invalid_value",
            f"Invalid 'content_index': {content_index}. The item has one content part (0).",
            "content_index",
        )
    duration = record.duration_ms
    if audio_end_ms < 0 or audio_end_ms > math.ceil(duration):
        raise RequestRefused(
            "invalid_value",
            f"Audio content of {duration:.0f}ms is shorter than the requested "
            f"truncation point of {audio_end_ms}ms.",
            "audio_end_ms",
        )
    return truncate(conv, item, audio_end_ms)


def truncate(conv: Conversation, item: dict[str, Any], end_ms: int) -> dict[str, Any]:
    """Cut an assistant item's audio (and, in proportion, its transcript: the model's memory should hold only
    what was heard) at ``end_ms``; returns ``conversation.item.truncated``."""
    record = conv.audio[item["id"]]
    duration = record.duration_ms
    record.nbytes = min(record.nbytes, record.fmt.bytes_for_ms(end_ms))
    record.truncated_ms = end_ms
    content = item.get("content") or []
    if content and isinstance(content[0].get("transcript"), str) and duration > 0:
        words = content[0]["transcript"].split(" ")
        keep = math.floor(len(words) * min(1.0, end_ms / duration))
        content[0]["transcript"] = " ".join(words[:keep])
    return {
        "type": "conversation.item.truncated",
        "item_id": item["id"],
        "content_index": 0,
        "audio_end_ms": int(end_ms),
    }
