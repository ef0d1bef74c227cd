"""Responders on their own: the echo, the scripted rules, and the speech they use."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import silence, wav

import rtlayer_native
from rtlayer.protocol.items import user_audio_message, user_text_message
from rtlayer.server.core.turn_detection import SpeechStarted, SpeechStopped, TurnDetector
from rtlayer.server.responders import (
    AudioPart,
    EchoResponder,
    FunctionCallPart,
    Responder,
    ResponsePart,
    ResponseRequest,
    Rule,
    ScriptedResponder,
    TextPart,
    responder_info,
)
from rtlayer.server.speech import espeak_path, synthesize, synthetic_speech


async def collect(responder: Responder, request: ResponseRequest) -> list[ResponsePart]:
    return [part async for part in responder.respond(request)]


def text_of(parts: list[ResponsePart]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def audio_of(parts: list[ResponsePart]) -> bytes:
    return b"".join(p.pcm16_24k for p in parts if isinstance(p, AudioPart))


async def test_echo_says_back_an_audio_turn_and_describes_it() -> None:
    speech = wav("joke_24k")
    request = ResponseRequest("resp_1", [user_audio_message("item_1")], user_audio=speech)
    parts = await collect(EchoResponder(), request)
    assert audio_of(parts) == speech
    assert text_of(parts) == "Echo: [speech 1.1 s]"
    assert await EchoResponder().transcribe(speech) == "[speech 1.1 s]"
    assert responder_info(EchoResponder()).can_transcribe


async def test_echo_answers_text_with_the_same_text() -> None:
    request = ResponseRequest("resp_1", [user_text_message("Bonjour à tous")], output_modalities=["text"])
    parts = await collect(EchoResponder(), request)
    assert text_of(parts) == "Bonjour à tous" and audio_of(parts) == b""


async def test_echo_speaks_text_with_interleaved_transcript() -> None:
    request = ResponseRequest("resp_1", [user_text_message("one two three four five six")])
    parts = await collect(EchoResponder(), request)
    assert text_of(parts) == "one two three four five six"
    kinds = [type(p).__name__ for p in parts]
    assert kinds[0] == "TextPart" and kinds.count("AudioPart") >= 5
    assert kinds.index("AudioPart") < len(kinds) - kinds[::-1].index("TextPart")  # text spread over the audio
    assert all(len(p.pcm16_24k) <= 4800 for p in parts if isinstance(p, AudioPart))


async def test_echo_reports_a_function_output() -> None:
    items = [{"type": "function_call_output", "call_id": "c", "output": "42"}]
    parts = await collect(EchoResponder(), ResponseRequest("r", items, output_modalities=["text"]))
    assert text_of(parts) == "The function returned: 42"


def test_espeak_speech_is_24k_speech_level_and_speed_shortens_it() -> None:
    assert espeak_path() is not None, "espeak-ng is missing: run scripts/install-test-deps"
    normal = synthesize("The quick brown fox jumps over the lazy dog.")
    fast = synthesize("The quick brown fox jumps over the lazy dog.", speed=1.5)
    assert 1.5 < len(normal) / 48000 < 4.0
    assert len(fast) < 0.8 * len(normal)
    assert -30 < rtlayer_native.rms_dbfs(normal) < -10


def test_without_espeak_speech_is_synthetic_but_speech_shaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    pcm = synthesize("Hello there, how are you today?")
    assert pcm == synthetic_speech("Hello there, how are you today?")
    assert 1.0 < len(pcm) / 48000 < 4.0 and -28 < rtlayer_native.rms_dbfs(pcm) < -12
    # The server's own VAD hears it as one turn of speech.
    events = TurnDetector({"type": "server_vad", "silence_duration_ms": 500}).feed(pcm + silence(800))
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]


RULES = {
    "rules": [
        {
            "when": {"text_contains": ["weather", "forecast"]},
            "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
        },
        {"when": {"text_matches": r"^hi\b"}, "say": "Hello!"},
        {"when": {"audio": True}, "say": "I heard you."},
        {"after_function_output": "get_weather", "say": "It is sunny in Paris."},
    ],
    "default": {"say": "No rule."},
}


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([user_text_message("What's the WEATHER?")], FunctionCallPart("get_weather", {"city": "Paris"})),
        ([user_text_message("hi there")], "Hello!"),
        ([user_audio_message("item_a")], "I heard you."),
        (
            [
                {"type": "function_call", "name": "get_weather", "call_id": "c1", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "{}"},
            ],
            "It is sunny in Paris.",
        ),
        ([user_text_message("something else")], "No rule."),
    ],
)
async def test_scripted_rules_match_deterministically(
    items: list[dict[str, Any]], expected: object, tmp_path: Path
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES))
    responder = ScriptedResponder.from_file(path)
    parts = await collect(responder, ResponseRequest("r", items, output_modalities=["text"]))
    if isinstance(expected, FunctionCallPart):
        assert parts == [expected]
    else:
        assert text_of(parts) == expected


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"rules": [{"say": "x"}]}, r"rules\[0\] needs a 'when'"),
        ({"rules": [{"when": {"always": True}}]}, r"rules\[0\] needs 'say' or 'call'"),
        (
            {"rules": [{"when": {"always": True}, "call": {"arguments": {}}}]},
            r"rules\[0\].call\[0\] needs a 'name'",
        ),
        ({"rules": "nope"}, "must be an object with a 'rules' list"),
    ],
)
def test_bad_rule_files_are_refused_clearly(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScriptedResponder(rules)


TRANSFER = FunctionCallPart("transfer_to_billing")
SCRIPT = ScriptedResponder(
    [
        Rule(words=("no",), say="Understood, no."),
        Rule(
            matches=r"order (\d+)",
            calls=(FunctionCallPart("lookup_order", {"order_id": "42"}),),
            require_tools=True,
        ),
        Rule(after_tool="lookup_order", calls=(TRANSFER,), require_tools=True),
        Rule(after_tool="lookup_order", say="I cannot transfer you."),
        Rule(always=True, instructions_contain="billing", say="Billing here.", delay_ms=50),
    ],
    default="No rule.",
)
LOOKUP = {"type": "function", "name": "lookup_order"}


@pytest.mark.parametrize(
    ("text", "tools", "instructions", "expected"),
    [
        ("No, thanks", [], "", "Understood, no."),
        ("I know", [], "", "No rule."),  # whole words: "no" is not in "know"
        ("where is order 42?", [LOOKUP], "", FunctionCallPart("lookup_order", {"order_id": "42"})),
        ("where is order 42?", [], "", "No rule."),  # the tool is not the session's: not called
        ("where is order 42?", [], "You handle BILLING.", "Billing here."),
    ],
)
async def test_scripted_rules_from_python(
    text: str, tools: list[dict[str, Any]], instructions: str, expected: object
) -> None:
    request = ResponseRequest(
        "r", [user_text_message(text)], instructions=instructions, tools=tools, output_modalities=["text"]
    )
    parts = await collect(SCRIPT, request)
    assert parts == [expected] if isinstance(expected, FunctionCallPart) else text_of(parts) == expected


async def test_a_rule_calls_the_handoff_only_where_the_tool_exists() -> None:
    items = [
        {"type": "function_call", "name": "lookup_order", "call_id": "c1", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "shipped"},
    ]
    with_tool = ResponseRequest(
        "r", items, tools=[{"type": "function", "name": "transfer_to_billing"}], output_modalities=["text"]
    )
    assert await collect(SCRIPT, with_tool) == [TRANSFER]
    without = ResponseRequest("r", items, output_modalities=["text"])
    assert text_of(await collect(SCRIPT, without)) == "I cannot transfer you."


async def test_a_rule_waits_its_delay_before_the_first_part() -> None:
    request = ResponseRequest(
        "r", [user_text_message("hello")], instructions="billing", output_modalities=["text"]
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    first = await anext(aiter(SCRIPT.respond(request)))
    assert first == TextPart("Billing") and loop.time() - start >= 0.05


def test_the_rules_file_speaks_the_same_rules() -> None:
    responder = ScriptedResponder(
        {
            "rules": [
                {
                    "when": {"words": "no", "instructions_contain": "billing"},
                    "say": "x",
                    "require_tools": True,
                    "delay_ms": 5,
                }
            ]
        }
    )
    assert responder.rules == [
        Rule(words=("no",), instructions_contain="billing", say="x", require_tools=True, delay_ms=5)
    ]
    with pytest.raises(ValueError, match=r"rules\[0\] delay_ms must be"):
        ScriptedResponder({"rules": [{"when": {"always": True}, "say": "x", "delay_ms": -1}]})
    with pytest.raises(ValueError, match=r"rules\[0\] bad regular expression"):
        ScriptedResponder({"rules": [{"when": {"text_matches": "("}, "say": "x"}]})
