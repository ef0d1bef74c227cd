"""Checking client events before the session acts on them: types, required fields, field types.

``check_client_event`` returns for a well-formed event and raises ``RequestRefused`` with the code,
message and ``param`` the service uses (``missing_required_parameter``, ``invalid_type``, ``invalid_value``,
``unknown_parameter``),
so the session answers with one ``error`` event and carries on.
"""

from __future__ import annotations

from typing import Any

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.events import CLIENT_EVENT_TYPES

__all__ = ["check_client_event", "without_nulls"]

_STR, _INT, _DICT = "string", "integer", "object"
# type -> ((field, kind, required), ...)
_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "session.update": (("session", _DICT, True),),
    "input_audio_buffer.append": (("audio", _STR, True),),
    "input_audio_buffer.commit": (),
    "input_audio_buffer.clear": (),
    "output_audio_buffer.clear": (("response_id", _STR, False),),
    "conversation.item.create": (("item", _DICT, True), ("previous_item_id", _STR, False)),
    "conversation.item.retrieve": (("item_id", _STR, True),),
    "conversation.item.delete": (("item_id", _STR, True),),
    "conversation.item.truncate": (
        ("item_id", _STR, True),
        ("content_index", _INT, True),
        ("audio_end_ms", _INT, True),
    ),
    "response.create": (("response", _DICT, False),),
    "response.cancel": (("response_id", _STR, False),),
}


# Where null is a value, not "not given": off (turn detection, transcription, noise reduction, tracing),
# none (prompt, include, reasoning, idle timeout). Paths of keys inside the event; "*" is any list index.
_NULL_IS_A_VALUE = frozenset(
    {
        ("session", "tracing"),
        ("session", "prompt"),
        ("session", "include"),
        ("session", "reasoning"),
        ("session", "turn_detection"),
        ("session", "input_audio_transcription"),
        ("session", "input_audio_noise_reduction"),
        ("session", "audio", "input", "turn_detection"),
        ("session", "audio", "input", "turn_detection", "idle_timeout_ms"),
        ("session", "audio", "input", "transcription"),
        ("session", "audio", "input", "noise_reduction"),
    }
)
# Free-form JSON inside an event: a tool's parameter schema may say null on purpose.
_OPAQUE = frozenset({"parameters", "metadata", "variables", "headers"})


def without_nulls(event: Any) -> Any:
    """``event`` with every optional field sent as JSON null removed, as if it were not given.

    ``openai.types.realtime`` declares optional fields ``Optional[...] = None`` and the hosted service
    reads null as "not given"; other SDKs serialise unset fields so (``response.create`` with
    ``"instructions": null``). Where null is a value (``turn_detection: null`` turns detection off) it is
    kept. ``event`` is not changed: a new dict is returned where anything had to go (a flat event without
    nulls comes back as it is).
    """
    if not isinstance(event, dict):
        return event
    for value in event.values():  # most events (every audio append) are flat and null-free: no copy
        if value is None or type(value) is dict or type(value) is list:
            return _strip(event, ())
    return event


def _strip(value: Any, path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        if path and path[-1] in _OPAQUE:
            return value
        out = {}
        for key, item in value.items():
            here = (*path, key)
            if item is None and here not in _NULL_IS_A_VALUE:
                continue
            out[key] = _strip(item, here)
        return out
    if isinstance(value, list):
        return [_strip(item, (*path, "*")) for item in value]
    return value


def _kind_ok(value: Any, kind: str) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, dict)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def check_client_event(event: Any) -> None:
    """Return if ``event`` is a well-formed client event; else raise ``RequestRefused`` saying what is wrong."""
    if not isinstance(event, dict):
        raise RequestRefused("invalid_json", "Expected a JSON object as the event.")
    event_id = event.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise RequestRefused(
            "invalid_type",
            f"Invalid type for 'event_id': expected a string, but got {_type_name(event_id)} instead.",
            "event_id",
        )
    kind = event.get("type")
    if kind is None:
        raise RequestRefused("missing_required_parameter", "Missing required parameter: 'type'.", "type")
    if not isinstance(kind, str):
        raise RequestRefused(
            "invalid_type",
            f"Invalid type for 'type': expected a string, but got {_type_name(kind)} instead.",
            "type",
        )
    if kind not in CLIENT_EVENT_TYPES:
        supported = ", ".join(f"'{t}'" for t in sorted(CLIENT_EVENT_TYPES))
        raise RequestRefused(
            "invalid_value", f"Invalid value: '{kind}'. Supported values are: {supported}.", "type"
        )
    fields = _FIELDS[kind]
    for name in event:
        if name not in ("type", "event_id") and all(name != known for known, _, _ in fields):
            # Like the service: a misspelt field is an error, never silently ignored.
            raise RequestRefused("unknown_parameter", f"Unknown parameter: '{name}'.", name)
    for name, field_kind, required in fields:
        value = event.get(name)
        if value is None:
            if required:
                raise RequestRefused(
                    "missing_required_parameter", f"Missing required parameter: '{name}'.", name
                )
            continue
        if not _kind_ok(value, field_kind):
            raise RequestRefused(
                "invalid_type",
                f"Invalid type for '{name}': expected {'an' if field_kind[0] in 'aeiou' else 'a'} {field_kind}, "
                f"but got {_type_name(value)} instead.",
                name,
            )
