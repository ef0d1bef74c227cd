"""The GA session config: defaults, legacy normalisation, validated merging."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.realtime import RealtimeSessionCreateRequest

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.session_config import default_session, merge_session, normalize_session


def test_default_session_is_a_valid_ga_session() -> None:
    session = default_session("gpt-realtime")
    RealtimeSessionCreateRequest.model_validate(session)
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def test_legacy_flat_keys_map_onto_the_ga_shape() -> None:
    legacy = {
        "modalities": ["text", "audio"],
        "voice": "verse",
        "input_audio_format": "g711_ulaw",
        "output_audio_format": "pcm16",
        "turn_detection": None,
        "temperature": 0.8,
        "input_audio_transcription": {"model": "whisper-1"},
        "max_response_output_tokens": 200,
    }
    assert normalize_session(legacy) == {
        "output_modalities": ["audio"],
        "max_output_tokens": 200,
        "audio": {
            "input": {"format": "g711_ulaw", "turn_detection": None, "transcription": {"model": "whisper-1"}},
            "output": {"voice": "verse", "format": "pcm16"},
        },
    }
    merged = merge_session(default_session(), legacy)
    assert merged["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert merged["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert merged["audio"]["input"]["turn_detection"] is None
    RealtimeSessionCreateRequest.model_validate(merged)


def test_camel_case_keys_are_accepted_but_tool_schemas_are_left_alone() -> None:
    partial = {
        "outputModalities": ["text"],
        "audio": {"input": {"turnDetection": {"type": "server_vad", "silenceDurationMs": 700}}},
        "tools": [
            {"type": "function", "name": "f", "parameters": {"properties": {"cityName": {"type": "string"}}}}
        ],
    }
    merged = merge_session(default_session(), partial)
    assert merged["output_modalities"] == ["text"]
    assert merged["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 700
    assert "cityName" in merged["tools"][0]["parameters"]["properties"]


def test_merge_keeps_what_the_update_does_not_name() -> None:
    current = merge_session(
        default_session(), {"instructions": "Be kind.", "audio": {"output": {"voice": "cedar"}}}
    )
    updated = merge_session(
        current, {"type": "realtime", "tracing": "auto"}
    )  # what official clients send second
    assert updated["instructions"] == "Be kind." and updated["audio"]["output"]["voice"] == "cedar"
    assert updated["tracing"] == "auto"
    assert current["tracing"] is None  # merge never changes its input


def test_turn_detection_type_change_starts_from_that_types_defaults() -> None:
    merged = merge_session(
        default_session(), {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
    )
    assert merged["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }
    back = merge_session(
        merged, {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}}}
    )
    assert back["audio"]["input"]["turn_detection"]["threshold"] == 0.7
    assert back["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200


BAD: list[tuple[dict[str, Any], str]] = [
    ({"audio": {"output": {"speed": 0.1}}}, "session.audio.output.speed"),
    ({"audio": {"output": {"voice": 3}}}, "session.audio.output.voice"),
    (
        {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        "session.audio.input.format.rate",
    ),
    (
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}},
        "session.audio.input.turn_detection.eagerness",
    ),
    (
        {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": "long"}}}},
        "session.audio.input.turn_detection.silence_duration_ms",
    ),
    ({"audio": {"input": {"noise_reduction": {"type": "loud"}}}}, "session.audio.input.noise_reduction.type"),
    ({"tools": [{"type": "function"}]}, "session.tools[0].name"),
    ({"tool_choice": "sometimes"}, "session.tool_choice"),
    ({"max_output_tokens": 5000}, "session.max_output_tokens"),
    ({"type": "transcription"}, "session.type"),
    ({"favourite_colour": "blue"}, "session.favourite_colour"),
]


@pytest.mark.parametrize(("partial", "param"), BAD, ids=[p for _, p in BAD])
def test_invalid_values_name_the_field(partial: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestRefused) as info:
        merge_session(default_session(), partial)
    assert info.value.param == param and info.value.message


def test_null_means_not_set_except_where_null_is_a_value() -> None:
    current = merge_session(default_session(), {"instructions": "Keep me.", "tracing": "auto"})
    merged = merge_session(
        current,
        {
            "instructions": None,
            "tools": None,
            "tracing": None,
            "audio": {
                "input": {
                    "turn_detection": {"type": "server_vad", "threshold": None, "idle_timeout_ms": None},
                    "transcription": None,
                },
                "output": {"voice": None, "speed": None},
            },
        },
    )
    assert merged["instructions"] == "Keep me." and merged["tools"] == []
    assert merged["tracing"] is None  # null turns tracing off
    assert merged["audio"]["input"]["turn_detection"]["threshold"] == 0.5
    assert merged["audio"]["output"]["voice"] == "marin"
