"""rtlayer against the protocol as ``openai.types.realtime`` (the installed ``openai``) defines it today.

Every server event type is emitted by the embedded server or listed, with a reason, in
``UNSUPPORTED_SERVER_EVENT_TYPES``; every session field is accepted (a sample value goes through
``merge_session`` and comes back) or listed in ``UNSUPPORTED_SESSION_FIELDS``; an accepted field that
changes nothing the embedded server does is listed in ``ACCEPTED_WITHOUT_EFFECT`` and in docs/server.md. A
newer ``openai`` that adds either fails here until rtlayer decides.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
from helpers import Driver
from openai.types.realtime import RealtimeServerEvent, RealtimeSessionCreateRequest
from pydantic import BaseModel

import rtlayer.server
from rtlayer.protocol.events import SERVER_EVENT_TYPES, UNSUPPORTED_SERVER_EVENT_TYPES
from rtlayer.protocol.session_config import (
    ACCEPTED_WITHOUT_EFFECT,
    UNSUPPORTED_SESSION_FIELDS,
    default_session,
    merge_session,
)

# Objects taken whole (their inner shapes are the tools', prompts' and tracing's own), and a sample each.
WHOLE = {
    "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
    "tool_choice": {"type": "function", "name": "f"},
    "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Paris"}},
    "tracing": {"workflow_name": "w", "group_id": "g", "metadata": {"k": "v"}},
    "audio.input.format": {"type": "audio/pcmu"},
    "audio.output.format": {"type": "audio/pcma"},
    "audio.output.voice": {"id": "voice_custom_1"},
}
SAMPLES: dict[str, Any] = {
    **WHOLE,
    "type": "realtime",
    "model": "gpt-realtime-2.1",
    "instructions": "Be brief.",
    "include": ["item.input_audio_transcription.logprobs"],
    "max_output_tokens": 512,
    "output_modalities": ["text"],
    "parallel_tool_calls": False,
    "reasoning.effort": "low",
    "truncation.type": "retention_ratio",
    "truncation.retention_ratio": 0.5,
    "truncation.token_limits.post_instructions": 2000,
    "audio.output.speed": 1.2,
    "audio.input.noise_reduction.type": "far_field",
    "audio.input.noise_reduction.strength": 0.7,
    "audio.input.transcription.model": "gpt-4o-mini-transcribe-2025-12-15",
    "audio.input.transcription.language": "en",
    "audio.input.transcription.languages": ["en", "fr"],
    "audio.input.transcription.keywords": ["rtlayer", "Cython"],
    "audio.input.transcription.delay": "low",
    "audio.input.transcription.prompt": "Product names.",
    "audio.input.turn_detection.type": "server_vad",
    "audio.input.turn_detection.threshold": 0.6,
    "audio.input.turn_detection.prefix_padding_ms": 200,
    "audio.input.turn_detection.silence_duration_ms": 700,
    "audio.input.turn_detection.idle_timeout_ms": 5000,
    "audio.input.turn_detection.create_response": False,
    "audio.input.turn_detection.interrupt_response": False,
    "audio.input.turn_detection.eagerness": "high",  # semantic_vad's: sent with that type below
}
SEMANTIC_ONLY = {"audio.input.turn_detection.eagerness"}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def session_fields(model: type[BaseModel] = RealtimeSessionCreateRequest, prefix: str = "") -> set[str]:
    """Dotted paths of the session's fields, down to the leaves (objects in ``WHOLE`` are leaves)."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        path = prefix + name
        nested = [] if path in WHOLE else _models_in(field.annotation)
        if nested:
            for sub in nested:  # a union of objects (server_vad | semantic_vad): the fields of each
                paths |= session_fields(sub, path + ".")
        else:
            paths.add(path)
    return paths


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return out


def _get(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for key in path.split("."):
        node = node[key]
    return node


def test_every_session_field_is_supported_or_listed() -> None:
    fields = session_fields()
    new = fields - set(SAMPLES) - set(UNSUPPORTED_SESSION_FIELDS)
    assert not new, f"openai.types.realtime has session fields rtlayer does not know: {sorted(new)}"
    assert not set(SAMPLES) & set(UNSUPPORTED_SESSION_FIELDS)


def test_fields_accepted_without_effect_are_real_accepted_and_documented() -> None:
    """The list names today's fields (none stale), each accepted like any supported field (a sample in
    ``SAMPLES``), and docs/server.md tells users each one has no effect here."""
    assert set(ACCEPTED_WITHOUT_EFFECT) <= session_fields()
    assert set(ACCEPTED_WITHOUT_EFFECT) <= set(SAMPLES)
    docs = (Path(__file__).parents[1] / "docs" / "server.md").read_text()
    assert [path for path in ACCEPTED_WITHOUT_EFFECT if f"`{path}`" not in docs] == []


@pytest.mark.parametrize("path", sorted(SAMPLES))
def test_a_supported_session_field_is_accepted_and_reported(path: str) -> None:
    partial = _nest(path, SAMPLES[path])
    if path.startswith("truncation."):
        partial = {
            "truncation": {
                "type": "retention_ratio",
                "retention_ratio": 0.5,
                **_nest(path, SAMPLES[path])["truncation"],
            }
        }
    if path.startswith("audio.input.noise_reduction."):
        partial["audio"]["input"]["noise_reduction"].setdefault("type", "near_field")
    if path in SEMANTIC_ONLY:
        partial["audio"]["input"]["turn_detection"]["type"] = "semantic_vad"
    merged = merge_session(default_session(), partial)
    assert _get(merged, path) == SAMPLES[path]


def test_turn_detection_model_version_the_agents_sdk_sends_is_accepted() -> None:
    partial = {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "model_version": "v2"}}}}
    assert (
        merge_session(default_session(), partial)["audio"]["input"]["turn_detection"]["model_version"] == "v2"
    )


def server_event_types() -> set[str]:
    members = _models_in(typing.get_args(RealtimeServerEvent)[0])
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def test_every_server_event_type_is_emitted_or_listed() -> None:
    defined = server_event_types()
    assert defined <= SERVER_EVENT_TYPES, sorted(defined - SERVER_EVENT_TYPES)
    source = "\n".join(p.read_text() for p in Path(rtlayer.server.__file__).parent.rglob("*.py"))
    emitted = {t for t in defined if f'"{t}"' in source}
    missing = defined - emitted - set(UNSUPPORTED_SERVER_EVENT_TYPES)
    assert not missing, f"server events neither emitted nor listed as unsupported: {sorted(missing)}"
    stale = emitted & set(UNSUPPORTED_SERVER_EVENT_TYPES)
    assert not stale, f"listed as unsupported but emitted: {sorted(stale)}"


def test_a_session_with_every_supported_field_is_reported_as_the_official_client_reads_it() -> None:
    partial: dict[str, Any] = {}
    for path, value in SAMPLES.items():
        if path in SEMANTIC_ONLY or path == "type":
            continue
        node = partial
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    driver = Driver()
    driver.drain()
    (updated,) = driver.send({"type": "session.update", "session": partial})  # validated by the driver
    assert updated["type"] == "session.updated", updated
    session = updated["session"]
    assert session["truncation"]["retention_ratio"] == 0.5 and session["reasoning"] == {"effort": "low"}
    assert session["audio"]["input"]["transcription"]["keywords"] == ["rtlayer", "Cython"]
    assert session["audio"]["output"]["voice"] == {"id": "voice_custom_1"}
