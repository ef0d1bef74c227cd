"""The fields of a GA session config, one checker each: what the service accepts, and its refusals.

``merge_session`` (``session_config.py``) walks a ``session.update`` and hands each field to its checker
here; a checker returns the value to store or raises the refusal the service would give, with the dotted
``param`` of the field (``session.audio.input.transcription.delay``) and its error code.
"""

from __future__ import annotations

import copy
from typing import Any

from rtlayer.exceptions import RequestRefused

__all__ = [
    "REASONING_EFFORTS",
    "SEMANTIC_VAD_DEFAULTS",
    "SERVER_VAD_DEFAULTS",
    "TRANSCRIPTION_DELAYS",
    "check_max_output_tokens",
    "check_noise_reduction",
    "check_output_modalities",
    "check_reasoning",
    "check_tool_choice",
    "check_tools",
    "check_transcription",
    "check_truncation",
    "expect",
    "invalid_value",
    "is_integer",
    "is_number",
    "merge_optional_object",
    "merge_turn_detection",
]


_CODES_BY_PREFIX = (
    ("Missing required parameter", "missing_required_parameter"),
    ("Invalid type", "invalid_type"),
    ("Unknown parameter", "unknown_parameter"),
)


def invalid_value(param: str, message: str, code: str | None = None) -> RequestRefused:
    """The refusal of a config value the service would refuse; ``param`` is the dotted path of the field.

    ``code`` is the service's error code; by default it follows from the message, which states the kind
    of problem the way the service does ("Missing required parameter: ..." is
    ``missing_required_parameter``, "Invalid type for ..." ``invalid_type``, anything else
    ``invalid_value``), so the many checks need not repeat it.
    """
    code = code or next((c for prefix, c in _CODES_BY_PREFIX if message.startswith(prefix)), "invalid_value")
    return RequestRefused(code, message, param)


SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}


SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}


def expect(cond: bool, param: str, message: str) -> None:
    if not cond:
        raise invalid_value(param, message)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def merge_turn_detection(current: Any, value: Any, p: str) -> Any:
    if value is None:
        return None
    expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    kind = value.get("type", current.get("type") if isinstance(current, dict) else "server_vad")
    expect(
        kind in ("server_vad", "semantic_vad"),
        f"{p}.type",
        f"Invalid value: '{kind}'. Supported values are: 'server_vad' and 'semantic_vad'.",
    )
    defaults = SERVER_VAD_DEFAULTS if kind == "server_vad" else SEMANTIC_VAD_DEFAULTS
    base = dict(current) if isinstance(current, dict) and current.get("type") == kind else dict(defaults)
    for key, v in value.items():
        if v is None and key != "idle_timeout_ms":
            continue  # null means "not set" (SDKs serialise unset fields so): keep the current value
        if key not in defaults and key != "model_version":
            raise invalid_value(f"{p}.{key}", f"Unknown parameter: '{p}.{key}'.")
        if key == "threshold":
            expect(
                is_number(v) and 0.0 <= v <= 1.0,
                f"{p}.threshold",
                f"Invalid '{p}.threshold': expected a number between 0 and 1, got {v!r}.",
            )
            v = float(v)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            expect(
                is_integer(v) and 0 <= v <= 10_000,
                f"{p}.{key}",
                f"Invalid '{p}.{key}': expected an integer between 0 and 10000, got {v!r}.",
            )
        elif key == "idle_timeout_ms":
            expect(
                v is None or (is_integer(v) and 0 < v <= 3_600_000),
                f"{p}.idle_timeout_ms",
                f"Invalid '{p}.idle_timeout_ms': expected a positive integer or null, got {v!r}.",
            )
        elif key in ("create_response", "interrupt_response"):
            expect(isinstance(v, bool), f"{p}.{key}", f"Invalid type for '{p}.{key}': expected a boolean.")
        elif key == "model_version":
            # a backend VAD model's name (the Agents SDK sends it); the embedded server has one VAD
            expect(
                isinstance(v, str) and 0 < len(v) <= 64,
                f"{p}.model_version",
                f"Invalid type for '{p}.model_version': expected a string.",
            )
        elif key == "eagerness":
            expect(
                v in ("low", "medium", "high", "auto"),
                f"{p}.eagerness",
                f"Invalid value: '{v}'. Supported values are: 'low', 'medium', 'high' and 'auto'.",
            )
        base[key] = v
    return base


def merge_optional_object(value: Any, p: str, required: tuple[str, ...] = ()) -> Any:
    if value is None:
        return None
    expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    for key in required:
        expect(key in value, f"{p}.{key}", f"Missing required parameter: '{p}.{key}'.")
    return copy.deepcopy(value)


TRANSCRIPTION_DELAYS = ("minimal", "low", "medium", "high", "xhigh")


REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


_MAX_KEYWORDS = 100


def _string_list(value: Any, p: str, most: int) -> list[str]:
    expect(
        isinstance(value, list) and len(value) <= most and all(isinstance(v, str) and v for v in value),
        p,
        f"Invalid '{p}': expected an array of at most {most} non-empty strings.",
    )
    return list(value)


def check_transcription(value: Any, p: str) -> dict[str, Any] | None:
    """``audio.input.transcription``: ``model``, ``language`` or ``languages``, ``prompt``, ``keywords``
    (words to listen for) and ``delay`` (how long the transcriber may wait for context)."""
    if value is None:
        return None
    expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    out: dict[str, Any] = {}
    for key, v in value.items():
        q = f"{p}.{key}"
        if v is None:
            continue
        if key in ("model", "language", "prompt"):
            expect(isinstance(v, str), q, f"Invalid type for '{q}': expected a string.")
            out[key] = v
        elif key == "languages":
            out[key] = _string_list(v, q, 16)
        elif key == "keywords":
            out[key] = _string_list(v, q, _MAX_KEYWORDS)
        elif key == "delay":
            expect(
                v in TRANSCRIPTION_DELAYS,
                q,
                f"Invalid value: '{v}'. Supported values are: "
                + ", ".join(repr(d) for d in TRANSCRIPTION_DELAYS)
                + ".",
            )
            out[key] = v
        else:
            raise invalid_value(q, f"Unknown parameter: '{q}'.")
    return out


def check_noise_reduction(value: Any, p: str) -> dict[str, Any] | None:
    """``audio.input.noise_reduction``: ``type`` (``near_field``: a headset; ``far_field``: a room
    microphone) and an optional ``strength`` between 0 and 1."""
    if value is None:
        return None
    expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    out: dict[str, Any] = {}
    for key, v in value.items():
        q = f"{p}.{key}"
        if v is None:
            continue
        if key == "type":
            expect(
                v in ("near_field", "far_field"),
                q,
                f"Invalid value: '{v}'. Supported values are: 'near_field' and 'far_field'.",
            )
        elif key == "strength":
            expect(
                is_number(v) and 0.0 <= v <= 1.0,
                q,
                f"Invalid '{q}': expected a number between 0 and 1, got {v!r}.",
            )
            v = float(v)
        else:
            raise invalid_value(q, f"Unknown parameter: '{q}'.")
        out[key] = v
    expect("type" in out, f"{p}.type", f"Missing required parameter: '{p}.type'.")
    return out


def check_truncation(value: Any, p: str) -> Any:
    """``truncation``: ``"auto"``, ``"disabled"`` or ``{"type": "retention_ratio", "retention_ratio": r,
    "token_limits": {"post_instructions": n}}`` (see ``rtlayer.server.core.truncation``)."""
    if value in ("auto", "disabled"):
        return value
    expect(
        isinstance(value, dict) and value.get("type") == "retention_ratio",
        p,
        f"Invalid '{p}': expected 'auto', 'disabled' or a retention_ratio object.",
    )
    out: dict[str, Any] = {"type": "retention_ratio"}
    for key, v in value.items():
        q = f"{p}.{key}"
        if key == "type" or v is None:
            continue
        if key == "retention_ratio":
            expect(
                is_number(v) and 0.0 <= v <= 1.0,
                q,
                f"Invalid '{q}': expected a number between 0 and 1, got {v!r}.",
            )
            out[key] = float(v)
        elif key == "token_limits":
            expect(isinstance(v, dict), q, f"Invalid type for '{q}': expected an object.")
            limits: dict[str, Any] = {}
            for name, n in v.items():
                r = f"{q}.{name}"
                expect(name == "post_instructions", r, f"Unknown parameter: '{r}'.")
                if n is not None:
                    expect(
                        is_integer(n) and n > 0, r, f"Invalid '{r}': expected a positive integer, got {n!r}."
                    )
                    limits[name] = n
            out[key] = limits
        else:
            raise invalid_value(q, f"Unknown parameter: '{q}'.")
    expect(
        "retention_ratio" in out,
        f"{p}.retention_ratio",
        f"Missing required parameter: '{p}.retention_ratio'.",
    )
    return out


def check_reasoning(value: Any, p: str) -> dict[str, Any] | None:
    """``reasoning``: ``{"effort": ...}`` for the reasoning models (``gpt-realtime-2``)."""
    if value is None:
        return None
    expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    out: dict[str, Any] = {}
    for key, v in value.items():
        q = f"{p}.{key}"
        if v is None:
            continue
        expect(key == "effort", q, f"Unknown parameter: '{q}'.")
        expect(
            v in REASONING_EFFORTS,
            q,
            f"Invalid value: '{v}'. Supported values are: "
            + ", ".join(repr(e) for e in REASONING_EFFORTS)
            + ".",
        )
        out[key] = v
    return out


def check_tools(value: Any) -> list[Any]:
    expect(isinstance(value, list), "session.tools", "Invalid type for 'session.tools': expected an array.")
    for i, tool in enumerate(value):
        p = f"session.tools[{i}]"
        expect(isinstance(tool, dict), p, f"Invalid type for '{p}': expected an object.")
        kind = tool.get("type", "function")
        expect(
            kind in ("function", "mcp"),
            f"{p}.type",
            f"Invalid value: '{kind}'. Supported values are: 'function' and 'mcp'.",
        )
        if kind == "function":
            expect(
                isinstance(tool.get("name"), str) and bool(tool.get("name")),
                f"{p}.name",
                f"Missing required parameter: '{p}.name'.",
            )
    return copy.deepcopy(value)


def check_tool_choice(value: Any, param: str) -> Any:
    if isinstance(value, str):
        expect(
            value in ("auto", "none", "required"),
            param,
            f"Invalid value: '{value}'. Supported values are: 'auto', 'none' and 'required'.",
        )
        return value
    expect(
        isinstance(value, dict) and value.get("type") in ("function", "mcp"),
        param,
        f"Invalid '{param}': expected 'auto', 'none', 'required' or a function/mcp choice.",
    )
    return copy.deepcopy(value)


def check_max_output_tokens(value: Any, param: str) -> Any:
    """``max_output_tokens`` is an integer 1..4096 or ``"inf"``."""
    expect(
        value == "inf" or (is_integer(value) and 1 <= value <= 4096),
        param,
        f"Invalid '{param}': expected an integer between 1 and 4096 or 'inf', got {value!r}.",
    )
    return value


def check_output_modalities(value: Any, param: str) -> list[str]:
    """``output_modalities`` is ``["audio"]`` or ``["text"]``."""
    expect(
        isinstance(value, list) and len(value) == 1 and value[0] in ("audio", "text"),
        param,
        f"Invalid '{param}': expected ['audio'] or ['text'], got {value!r}.",
    )
    return list(value)
