"""The GA session config: the service's defaults, legacy (beta) normalisation, and validated merging.

A session config is a plain dict in the GA shape of ``REALTIME_PROTOCOL.md`` section 4. Clients send
partial configs in ``session.update``, sometimes in the legacy beta shape (flat ``voice``,
``input_audio_format: "pcm16"``, ``modalities``, camelCase keys from JS code): ``normalize_session`` maps
them onto the GA shape, and ``merge_session`` applies one onto the current config, validating each field (the
checkers are in ``session_fields.py``) and raising ``RequestRefused`` (``invalid_value``) with the dotted
``param`` the service names (``session.audio.output.speed``).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.codec import MAX_DEPTH, TooDeep, check_depth
from rtlayer.protocol.session_fields import (
    SEMANTIC_VAD_DEFAULTS,
    SERVER_VAD_DEFAULTS,
    check_max_output_tokens,
    check_noise_reduction,
    check_output_modalities,
    check_reasoning,
    check_tool_choice,
    check_tools,
    check_transcription,
    check_truncation,
    expect,
    invalid_value,
    is_number,
    merge_optional_object,
    merge_turn_detection,
)

__all__ = [
    "ACCEPTED_WITHOUT_EFFECT",
    "DEFAULT_INSTRUCTIONS",
    "SEMANTIC_VAD_DEFAULTS",
    "SERVER_VAD_DEFAULTS",
    "UNSUPPORTED_SESSION_FIELDS",
    "VOICES",
    "default_session",
    "format_from_session",
    "invalid_value",
    "merge_session",
    "normalize_format",
    "normalize_session",
    "without_formats",
]

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_LEGACY_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "audio/pcm": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "audio/pcmu": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
    "audio/pcma": {"type": "audio/pcma"},
}
# Legacy flat keys -> GA path.
_FLAT_KEYS: dict[str, tuple[str, ...]] = {
    "input_audio_format": ("audio", "input", "format"),
    "output_audio_format": ("audio", "output", "format"),
    "turn_detection": ("audio", "input", "turn_detection"),
    "input_audio_transcription": ("audio", "input", "transcription"),
    "input_audio_noise_reduction": ("audio", "input", "noise_reduction"),
    "voice": ("audio", "output", "voice"),
    "speed": ("audio", "output", "speed"),
    "max_response_output_tokens": ("max_output_tokens",),
}
# Beta keys the GA session no longer has; accepted and ignored so old clients keep working.
_DROPPED_KEYS = frozenset({"temperature", "object", "id", "expires_at", "client_secret"})
# Fields where null is a value (off / none); elsewhere null means "not set".
_NULLABLE = frozenset({"tracing", "prompt", "include", "reasoning"})
#: Session fields of ``openai.types.realtime`` the embedded server refuses, on purpose, and why (none today:
#: every field is accepted, and validated; see tests/test_protocol_coverage.py).
UNSUPPORTED_SESSION_FIELDS: dict[str, str] = {}
_NO_ASR = "the embedded server has no speech recognizer: a responder's transcribe() gets the audio only"
#: Session fields the embedded server accepts, validates and reports back, but that change nothing it does,
#: and why (tests/test_protocol_coverage.py keeps this list true to ``openai.types.realtime``; docs/server.md
#: says it to users).
ACCEPTED_WITHOUT_EFFECT: dict[str, str] = {
    "audio.input.transcription.model": _NO_ASR,
    "audio.input.transcription.language": _NO_ASR,
    "audio.input.transcription.languages": _NO_ASR,
    "audio.input.transcription.prompt": _NO_ASR,
    "audio.input.transcription.keywords": _NO_ASR,
    "audio.input.transcription.delay": (
        "it trades latency for the recognizer's accuracy; without a recognizer a wait would only fake a latency"
        " the service does not document"
    ),
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def default_session(model: str = "gpt-realtime") -> dict[str, Any]:
    """The config a new session starts with, as the service reports it in ``session.created``."""
    return {
        "type": "realtime",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
        },
        "include": None,
    }


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


def _snake_keys(obj: dict[str, Any], depth: int) -> dict[str, Any]:
    """camelCase -> snake_case for config keys, ``depth`` levels deep (tool schemas are left alone)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        k = _snake(key) if isinstance(key, str) else key
        if depth > 1 and isinstance(value, dict) and k not in ("metadata", "parameters", "tracing", "prompt"):
            value = _snake_keys(value, depth - 1)
        out[k] = value
    return out


def normalize_format(value: Any, param: str) -> dict[str, Any]:
    """A GA format dict from a GA dict, a GA string or a legacy name; ``RequestRefused`` otherwise."""
    if isinstance(value, str):
        if value in _LEGACY_FORMATS:
            return dict(_LEGACY_FORMATS[value])
        raise invalid_value(
            param, f"Invalid value: '{value}'. Supported values are: 'audio/pcm', 'audio/pcmu', 'audio/pcma'."
        )
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise invalid_value(param, f"Invalid '{param}': expected an object with a 'type'.")
    kind = value["type"]
    if kind not in ("audio/pcm", "audio/pcmu", "audio/pcma", "pcm16", "g711_ulaw", "g711_alaw"):
        raise invalid_value(
            f"{param}.type",
            f"Invalid value: '{kind}'. Supported values are: 'audio/pcm', 'audio/pcmu', 'audio/pcma'.",
        )
    fmt = dict(_LEGACY_FORMATS[kind])
    if fmt["type"] == "audio/pcm":
        rate = value.get("rate", 24000)
        if rate != 24000 or isinstance(rate, bool):
            raise invalid_value(f"{param}.rate", f"Invalid value: {rate!r}. Supported values are: 24000.")
    return fmt


def format_from_session(fmt: dict[str, Any]) -> tuple[str, int]:
    """(codec, rate) of a GA format dict, in rtlayer's names: ``("pcm16", 24000)``, ``("pcmu", 8000)``."""
    kind = fmt.get("type")
    if kind == "audio/pcmu":
        return "pcmu", 8000
    if kind == "audio/pcma":
        return "pcma", 8000
    return "pcm16", int(fmt.get("rate", 24000))


def _set_path(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        node = target.get(key)
        if not isinstance(node, dict):
            node = {}
            target[key] = node
        target = node
    target[path[-1]] = value


def normalize_session(partial: dict[str, Any]) -> dict[str, Any]:
    """Map a (possibly legacy, flat or camelCase) partial config onto the GA shape, without validating values."""
    src = _snake_keys(partial, depth=5)
    out: dict[str, Any] = {}
    # GA nested audio first, so that legacy flat keys (if both are sent) do not silently lose to it.
    audio = src.get("audio")
    if isinstance(audio, dict):
        out["audio"] = copy.deepcopy(audio)
    elif "audio" in src:
        out["audio"] = audio  # validated (and refused) by merge_session
    for key, value in src.items():
        if key == "audio" or key in _DROPPED_KEYS:
            continue
        if key == "modalities":
            if isinstance(value, list):
                out["output_modalities"] = ["audio"] if "audio" in value else list(value)
            else:
                out["output_modalities"] = value
        elif key in _FLAT_KEYS:
            _set_path(out, _FLAT_KEYS[key], value)
        else:
            out[key] = value
    mods = out.get("output_modalities")
    if isinstance(mods, list) and len(mods) > 1 and "audio" in mods:
        out["output_modalities"] = ["audio"]  # beta ["text", "audio"]: audio answers carry their transcript
    return out


def without_formats(config: Any) -> tuple[dict[str, Any], list[str]]:
    """``config`` in the GA shape with its audio formats taken out, and what was taken
    (``["audio.input.format=audio/pcm"]``): for a SIP call, whose formats the SDP answer fixed.

    ``config`` is a dict (GA, legacy or camelCase) or a pydantic model with ``model_dump`` (an SDK's
    session request); ``TypeError`` for anything else.
    """
    dump = getattr(config, "model_dump", None)
    raw: Any = dump(mode="json", exclude_none=True) if callable(dump) else config
    if not isinstance(raw, dict):
        if not hasattr(raw, "keys"):
            raise TypeError(f"a session config must be a mapping, got {type(config).__name__}")
        raw = dict(raw)
    session = normalize_session(copy.deepcopy(raw))
    dropped: list[str] = []
    audio = session.get("audio")
    if isinstance(audio, dict):
        for side in ("input", "output"):
            part = audio.get(side)
            if isinstance(part, dict) and "format" in part:
                fmt = part.pop("format")
                dropped.append(f"audio.{side}.format={fmt.get('type') if isinstance(fmt, dict) else fmt}")
                if not part:
                    del audio[side]
        if not audio:
            del session["audio"]
    return session, dropped


def _merge_audio(current: dict[str, Any], value: Any) -> dict[str, Any]:
    expect(isinstance(value, dict), "session.audio", "Invalid type for 'session.audio': expected an object.")
    audio = copy.deepcopy(current)
    for side, fields in value.items():
        p = f"session.audio.{side}"
        expect(side in ("input", "output"), p, f"Unknown parameter: '{p}'.")
        expect(isinstance(fields, dict), p, f"Invalid type for '{p}': expected an object.")
        node = audio.setdefault(side, {})
        for key, v in fields.items():
            if v is None and key in ("format", "voice", "speed"):
                continue  # not set: keep the current value
            q = f"{p}.{key}"
            if key == "format":
                node["format"] = normalize_format(v, q)
            elif side == "input" and key == "turn_detection":
                node["turn_detection"] = merge_turn_detection(node.get("turn_detection"), v, q)
            elif side == "input" and key == "transcription":
                node["transcription"] = check_transcription(v, q)
            elif side == "input" and key == "noise_reduction":
                node["noise_reduction"] = check_noise_reduction(v, q)
            elif side == "output" and key == "voice":
                ok = (isinstance(v, str) and v in VOICES) or (
                    isinstance(v, dict) and isinstance(v.get("id"), str)
                )
                expect(
                    ok,
                    q,
                    f"Invalid value: '{v}'. Supported values are: {', '.join(repr(x) for x in VOICES)}.",
                )
                node["voice"] = v
            elif side == "output" and key == "speed":
                expect(
                    is_number(v) and 0.25 <= v <= 1.5,
                    q,
                    f"Invalid '{q}': expected a number between 0.25 and 1.5, got {v!r}.",
                )
                node["speed"] = float(v)
            else:
                raise invalid_value(q, f"Unknown parameter: '{q}'.")
    return audio


def merge_session(current: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """The config after applying ``partial`` (any accepted shape) to ``current``; ``current`` is not changed.

    Raises ``RequestRefused`` for the first bad field, naming it; on error nothing is applied.
    """
    expect(isinstance(partial, dict), "session", "Invalid type for 'session': expected an object.")
    try:
        check_depth(partial, MAX_DEPTH, "session")
    except TooDeep as exc:  # every later step (and every event that carries it) would fail on it
        where = ".".join(exc.path.split(".")[:2])
        raise RequestRefused("invalid_value", f"Invalid '{where}': {exc}.", where) from None
    update = normalize_session(partial)
    new = copy.deepcopy(current)
    for key, value in update.items():
        if value is None and key not in _NULLABLE:
            continue  # not set: keep the current value
        p = f"session.{key}"
        if key == "type":
            expect(
                value == "realtime",
                p,
                f"Invalid value: '{value}'. This server supports sessions of type 'realtime'.",
            )
        elif key == "model":
            expect(isinstance(value, str) and bool(value), p, f"Invalid type for '{p}': expected a string.")
            new["model"] = value
        elif key == "output_modalities":
            new[key] = check_output_modalities(value, p)
        elif key == "instructions":
            expect(isinstance(value, str), p, f"Invalid type for '{p}': expected a string.")
            new[key] = value
        elif key == "tools":
            new[key] = check_tools(value)
        elif key == "tool_choice":
            new[key] = check_tool_choice(value, p)
        elif key == "max_output_tokens":
            new[key] = check_max_output_tokens(value, p)
        elif key == "tracing":
            expect(
                value is None or value == "auto" or isinstance(value, dict),
                p,
                f"Invalid '{p}': expected 'auto', an object or null.",
            )
            new[key] = copy.deepcopy(value)
        elif key == "truncation":
            new[key] = check_truncation(value, p)
        elif key == "prompt":
            new[key] = merge_optional_object(value, p, required=("id",))
        elif key == "include":
            expect(
                value is None
                or (
                    isinstance(value, list)
                    and all(v == "item.input_audio_transcription.logprobs" for v in value)
                ),
                p,
                f"Invalid '{p}': supported values are: 'item.input_audio_transcription.logprobs'.",
            )
            new[key] = copy.deepcopy(value)
        elif key == "audio":
            new["audio"] = _merge_audio(new["audio"], value)
        elif key in ("parallel_tool_calls",):
            expect(isinstance(value, bool), p, f"Invalid type for '{p}': expected a boolean.")
            new[key] = value
        elif key == "reasoning":
            new[key] = check_reasoning(value, p)
        else:
            raise invalid_value(p, f"Unknown parameter: '{p}'.")
    return new
