"""The GA session config: the service's defaults, legacy (beta) normalisation, and validated merging.

A session config is a plain dict in the GA shape of ``REALTIME_PROTOCOL.md`` section 4. Clients send
partial configs in ``session.update``, sometimes in the legacy beta shape (flat ``voice``,
``input_audio_format: "pcm16"``, ``modalities``, camelCase keys from JS code): ``normalize_session`` maps
them onto the GA shape, and ``merge_session`` applies one onto the current config, validating each field and
raising ``RequestRefused`` (``invalid_value``) with the dotted ``param`` the service names (``session.audio.output.speed``).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol import codec

__all__ = [
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
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


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


def _expect(cond: bool, param: str, message: str) -> None:
    if not cond:
        raise invalid_value(param, message)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _merge_turn_detection(current: Any, value: Any, p: str) -> Any:
    if value is None:
        return None
    _expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    kind = value.get("type", current.get("type") if isinstance(current, dict) else "server_vad")
    _expect(
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
            _expect(
                _number(v) and 0.0 <= v <= 1.0,
                f"{p}.threshold",
                f"Invalid '{p}.threshold': expected a number between 0 and 1, got {v!r}.",
            )
            v = float(v)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            _expect(
                _integer(v) and 0 <= v <= 10_000,
                f"{p}.{key}",
                f"Invalid '{p}.{key}': expected an integer between 0 and 10000, got {v!r}.",
            )
        elif key == "idle_timeout_ms":
            _expect(
                v is None or (_integer(v) and 0 < v <= 3_600_000),
                f"{p}.idle_timeout_ms",
                f"Invalid '{p}.idle_timeout_ms': expected a positive integer or null, got {v!r}.",
            )
        elif key in ("create_response", "interrupt_response"):
            _expect(isinstance(v, bool), f"{p}.{key}", f"Invalid type for '{p}.{key}': expected a boolean.")
        elif key == "model_version":
            # a backend VAD model's name (the Agents SDK sends it); the embedded server has one VAD
            _expect(
                isinstance(v, str) and 0 < len(v) <= 64,
                f"{p}.model_version",
                f"Invalid type for '{p}.model_version': expected a string.",
            )
        elif key == "eagerness":
            _expect(
                v in ("low", "medium", "high", "auto"),
                f"{p}.eagerness",
                f"Invalid value: '{v}'. Supported values are: 'low', 'medium', 'high' and 'auto'.",
            )
        base[key] = v
    return base


def _merge_optional_object(value: Any, p: str, required: tuple[str, ...] = ()) -> Any:
    if value is None:
        return None
    _expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    for key in required:
        _expect(key in value, f"{p}.{key}", f"Missing required parameter: '{p}.{key}'.")
    return copy.deepcopy(value)


def _merge_audio(current: dict[str, Any], value: Any) -> dict[str, Any]:
    _expect(isinstance(value, dict), "session.audio", "Invalid type for 'session.audio': expected an object.")
    audio = copy.deepcopy(current)
    for side, fields in value.items():
        p = f"session.audio.{side}"
        _expect(side in ("input", "output"), p, f"Unknown parameter: '{p}'.")
        _expect(isinstance(fields, dict), p, f"Invalid type for '{p}': expected an object.")
        node = audio.setdefault(side, {})
        for key, v in fields.items():
            if v is None and key in ("format", "voice", "speed"):
                continue  # not set: keep the current value
            q = f"{p}.{key}"
            if key == "format":
                node["format"] = normalize_format(v, q)
            elif side == "input" and key == "turn_detection":
                node["turn_detection"] = _merge_turn_detection(node.get("turn_detection"), v, q)
            elif side == "input" and key == "transcription":
                node["transcription"] = _check_transcription(v, q)
            elif side == "input" and key == "noise_reduction":
                node["noise_reduction"] = _check_noise_reduction(v, q)
            elif side == "output" and key == "voice":
                ok = (isinstance(v, str) and v in VOICES) or (
                    isinstance(v, dict) and isinstance(v.get("id"), str)
                )
                _expect(
                    ok,
                    q,
                    f"Invalid value: '{v}'. Supported values are: {', '.join(repr(x) for x in VOICES)}.",
                )
                node["voice"] = v
            elif side == "output" and key == "speed":
                _expect(
                    _number(v) and 0.25 <= v <= 1.5,
                    q,
                    f"Invalid '{q}': expected a number between 0.25 and 1.5, got {v!r}.",
                )
                node["speed"] = float(v)
            else:
                raise invalid_value(q, f"Unknown parameter: '{q}'.")
    return audio


TRANSCRIPTION_DELAYS = ("minimal", "low", "medium", "high", "xhigh")
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")
_MAX_KEYWORDS = 100


def _string_list(value: Any, p: str, most: int) -> list[str]:
    _expect(
        isinstance(value, list) and len(value) <= most and all(isinstance(v, str) and v for v in value),
        p,
        f"Invalid '{p}': expected an array of at most {most} non-empty strings.",
    )
    return list(value)


def _check_transcription(value: Any, p: str) -> dict[str, Any] | None:
    """``audio.input.transcription``: ``model``, ``language`` or ``languages``, ``prompt``, ``keywords``
    (words to listen for) and ``delay`` (how long the transcriber may wait for context)."""
    if value is None:
        return None
    _expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    out: dict[str, Any] = {}
    for key, v in value.items():
        q = f"{p}.{key}"
        if v is None:
            continue
        if key in ("model", "language", "prompt"):
            _expect(isinstance(v, str), q, f"Invalid type for '{q}': expected a string.")
            out[key] = v
        elif key == "languages":
            out[key] = _string_list(v, q, 16)
        elif key == "keywords":
            out[key] = _string_list(v, q, _MAX_KEYWORDS)
        elif key == "delay":
            _expect(
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


def _check_noise_reduction(value: Any, p: str) -> dict[str, Any] | None:
    """``audio.input.noise_reduction``: ``type`` (``near_field``: a headset; ``far_field``: a room
    microphone) and an optional ``strength`` between 0 and 1."""
    if value is None:
        return None
    _expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    out: dict[str, Any] = {}
    for key, v in value.items():
        q = f"{p}.{key}"
        if v is None:
            continue
        if key == "type":
            _expect(
                v in ("near_field", "far_field"),
                q,
                f"Invalid value: '{v}'. Supported values are: 'near_field' and 'far_field'.",
            )
        elif key == "strength":
            _expect(
                _number(v) and 0.0 <= v <= 1.0,
                q,
                f"Invalid '{q}': expected a number between 0 and 1, got {v!r}.",
            )
            v = float(v)
        else:
            raise invalid_value(q, f"Unknown parameter: '{q}'.")
        out[key] = v
    _expect("type" in out, f"{p}.type", f"Missing required parameter: '{p}.type'.")
    return out


def _check_truncation(value: Any, p: str) -> Any:
    """``truncation``: ``"auto"``, ``"disabled"`` or ``{"type": "retention_ratio", "retention_ratio": r,
    "token_limits": {"post_instructions": n}}`` (see ``rtlayer.server.core.truncation``)."""
    if value in ("auto", "disabled"):
        return value
    _expect(
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
            _expect(
                _number(v) and 0.0 <= v <= 1.0,
                q,
                f"Invalid '{q}': expected a number between 0 and 1, got {v!r}.",
            )
            out[key] = float(v)
        elif key == "token_limits":
            _expect(isinstance(v, dict), q, f"Invalid type for '{q}': expected an object.")
            limits: dict[str, Any] = {}
            for name, n in v.items():
                r = f"{q}.{name}"
                _expect(name == "post_instructions", r, f"Unknown parameter: '{r}'.")
                if n is not None:
                    _expect(
                        _integer(n) and n > 0, r, f"Invalid '{r}': expected a positive integer, got {n!r}."
                    )
                    limits[name] = n
            out[key] = limits
        else:
            raise invalid_value(q, f"Unknown parameter: '{q}'.")
    _expect(
        "retention_ratio" in out,
        f"{p}.retention_ratio",
        f"Missing required parameter: '{p}.retention_ratio'.",
    )
    return out


def _check_reasoning(value: Any, p: str) -> dict[str, Any] | None:
    """``reasoning``: ``{"effort": ...}`` for the reasoning models (``gpt-realtime-2``)."""
    if value is None:
        return None
    _expect(isinstance(value, dict), p, f"Invalid type for '{p}': expected an object or null.")
    out: dict[str, Any] = {}
    for key, v in value.items():
        q = f"{p}.{key}"
        if v is None:
            continue
        _expect(key == "effort", q, f"Unknown parameter: '{q}'.")
        _expect(
            v in REASONING_EFFORTS,
            q,
            f"Invalid value: '{v}'. Supported values are: "
            + ", ".join(repr(e) for e in REASONING_EFFORTS)
            + ".",
        )
        out[key] = v
    return out


def _check_tools(value: Any) -> list[Any]:
    _expect(isinstance(value, list), "session.tools", "Invalid type for 'session.tools': expected an array.")
    for i, tool in enumerate(value):
        p = f"session.tools[{i}]"
        _expect(isinstance(tool, dict), p, f"Invalid type for '{p}': expected an object.")
        kind = tool.get("type", "function")
        _expect(
            kind in ("function", "mcp"),
            f"{p}.type",
            f"Invalid value: '{kind}'. Supported values are: 'function' and 'mcp'.",
        )
        if kind == "function":
            _expect(
                isinstance(tool.get("name"), str) and bool(tool.get("name")),
                f"{p}.name",
                f"Missing required parameter: '{p}.name'.",
            )
    return copy.deepcopy(value)


def _check_tool_choice(value: Any, param: str) -> Any:
    if isinstance(value, str):
        _expect(
            value in ("auto", "none", "required"),
            param,
            f"Invalid value: '{value}'. Supported values are: 'auto', 'none' and 'required'.",
        )
        return value
    _expect(
        isinstance(value, dict) and value.get("type") in ("function", "mcp"),
        param,
        f"Invalid '{param}': expected 'auto', 'none', 'required' or a function/mcp choice.",
    )
    return copy.deepcopy(value)


def check_max_output_tokens(value: Any, param: str) -> Any:
    """``max_output_tokens`` is an integer 1..4096 or ``"inf"``."""
    _expect(
        value == "inf" or (_integer(value) and 1 <= value <= 4096),
        param,
        f"Invalid '{param}': expected an integer between 1 and 4096 or 'inf', got {value!r}.",
    )
    return value


def check_output_modalities(value: Any, param: str) -> list[str]:
    """``output_modalities`` is ``["audio"]`` or ``["text"]``."""
    _expect(
        isinstance(value, list) and len(value) == 1 and value[0] in ("audio", "text"),
        param,
        f"Invalid '{param}': expected ['audio'] or ['text'], got {value!r}.",
    )
    return list(value)


def merge_session(current: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """The config after applying ``partial`` (any accepted shape) to ``current``; ``current`` is not changed.

    Raises ``RequestRefused`` for the first bad field, naming it; on error nothing is applied.
    """
    _expect(isinstance(partial, dict), "session", "Invalid type for 'session': expected an object.")
    try:
        codec.check_depth(partial, codec.MAX_DEPTH, "session")
    except codec.TooDeep as exc:  # every later step (and every event that carries it) would fail on it
        where = ".".join(exc.path.split(".")[:2])
        raise RequestRefused("invalid_value", f"Invalid '{where}': {exc}.", where) from None
    update = normalize_session(partial)
    new = copy.deepcopy(current)
    for key, value in update.items():
        if value is None and key not in _NULLABLE:
            continue  # not set: keep the current value
        p = f"session.{key}"
        if key == "type":
            _expect(
                value == "realtime",
                p,
                f"Invalid value: '{value}'. This server supports sessions of type 'realtime'.",
            )
        elif key == "model":
            _expect(isinstance(value, str) and bool(value), p, f"Invalid type for '{p}': expected a string.")
            new["model"] = value
        elif key == "output_modalities":
            new[key] = check_output_modalities(value, p)
        elif key == "instructions":
            _expect(isinstance(value, str), p, f"Invalid type for '{p}': expected a string.")
            new[key] = value
        elif key == "tools":
            new[key] = _check_tools(value)
        elif key == "tool_choice":
            new[key] = _check_tool_choice(value, p)
        elif key == "max_output_tokens":
            new[key] = check_max_output_tokens(value, p)
        elif key == "tracing":
            _expect(
                value is None or value == "auto" or isinstance(value, dict),
                p,
                f"Invalid '{p}': expected 'auto', an object or null.",
            )
            new[key] = copy.deepcopy(value)
        elif key == "truncation":
            new[key] = _check_truncation(value, p)
        elif key == "prompt":
            new[key] = _merge_optional_object(value, p, required=("id",))
        elif key == "include":
            _expect(
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
            _expect(isinstance(value, bool), p, f"Invalid type for '{p}': expected a boolean.")
            new[key] = value
        elif key == "reasoning":
            new[key] = _check_reasoning(value, p)
        else:
            raise invalid_value(p, f"Unknown parameter: '{p}'.")
    return new
