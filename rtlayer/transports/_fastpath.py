"""Reads an audio delta frame without building its JSON object.

A ``response.output_audio.delta`` frame is a flat object of short strings, two small integers and one long
base64 string. When no listener wants the raw dict, the transport takes the four fields it needs with
``str.find`` (C speed, no allocation of the other fields) and hands the base64 to ``binascii``. Anything
unexpected (escapes, a missing field, nesting) returns ``None`` and the frame takes the normal JSON path, so
this can only be faster, never different.
"""

from __future__ import annotations

__all__ = ["slice_audio_delta"]


def _string_field(text: str, key: str) -> str | None:
    start = text.find(key)
    if start < 0:
        return None
    start += len(key)
    end = text.find('"', start)
    if end < 0:
        return None
    value = text[start:end]
    return None if "\\" in value else value


def slice_audio_delta(text: str) -> tuple[str, str, int, str] | None:
    """``(response_id, item_id, content_index, base64)`` of a delta frame, or ``None`` to parse it fully."""
    if text.count("{") != 1:
        return None  # nested objects: not the flat shape this reader knows
    delta = _string_field(text, '"delta":"')
    item_id = _string_field(text, '"item_id":"')
    response_id = _string_field(text, '"response_id":"')
    if delta is None or item_id is None or response_id is None:
        return None
    start = text.find('"content_index":')
    content_index = 0
    if start >= 0:
        start += 16
        end = start
        while end < len(text) and text[end] in "0123456789 ":
            end += 1
        try:
            content_index = int(text[start:end])
        except ValueError:
            return None
    return response_id, item_id, content_index, delta
