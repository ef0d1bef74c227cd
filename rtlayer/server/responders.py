"""Responders: what answers in the embedded server. A small protocol so users can plug in their own model.

A responder is an object with ``respond(request) -> AsyncIterator[ResponsePart]``: it reads the conversation in
the ``ResponseRequest`` and yields parts, which the ``ServerSession`` turns into protocol events:

- ``TextPart(text)``: output text (``output_modalities: ["text"]``) or the audio transcript (``["audio"]``);
- ``AudioPart(pcm16_24k)``: output audio, PCM16 24 kHz mono (the session converts to the session's format);
  ignored for text-only responses;
- ``FunctionCallPart(name, arguments, call_id=None)``: a function call item.

Optionally ``async transcribe(pcm16_24k) -> str | None`` transcribes committed user audio (only used when the
session configures ``audio.input.transcription``).

The parts, the request and the ``Responder`` protocol are defined in ``rtlayer.server.core.parts`` (the
session core reads them and imports nothing of this module) and exported from here, where users look.

Two responders ship: ``EchoResponder`` (the default; no model, it says back what it got) and
``ScriptedResponder`` (rules from a dict or JSON file, for deterministic tests of tool flows).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rtlayer_native
from rtlayer.protocol.items import item_text
from rtlayer.server import fair
from rtlayer.server.core.parts import (
    AudioPart,
    FunctionCallPart,
    Responder,
    ResponderInfo,
    ResponsePart,
    ResponseRequest,
    TextPart,
    responder_info,
)
from rtlayer.server.speech import synthesize

__all__ = [
    "AudioPart",
    "EchoResponder",
    "FunctionCallPart",
    "Responder",
    "ResponderInfo",
    "ResponsePart",
    "ResponseRequest",
    "ScriptedResponder",
    "TextPart",
    "responder_info",
    "speak",
]

CHUNK_BYTES = 4800  # 100 ms of PCM16 24 kHz per AudioPart: small enough to interrupt, few enough events


def _last_turn(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The item the answer is about: the last user message or function output."""
    return next(
        (
            item
            for item in reversed(items)
            if item.get("type") == "function_call_output"
            or (item.get("type") == "message" and item.get("role") == "user")
        ),
        None,
    )


def _is_audio_turn(item: dict[str, Any] | None) -> bool:
    return item is not None and any(p.get("type") == "input_audio" for p in item.get("content") or [])


async def speak(text: str, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
    """The parts of saying ``text``: words as transcript, spread over 100 ms chunks of synthesized speech."""
    if not request.wants_audio:
        for i, word in enumerate(_words(text)):
            yield TextPart(word if i == 0 else " " + word)
        return
    words = text.split(" ")
    pcm = await fair.run_blocking(synthesize, text, request.speed, request.voice)
    async for part in _interleave(words, pcm):
        yield part


def _words(text: str) -> Iterator[str]:
    """``text.split(" ")``, one word at a time: a 2 MB text is never a million strings at once."""
    start = 0
    while (end := text.find(" ", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


async def _interleave(words: list[str], pcm: bytes) -> AsyncIterator[ResponsePart]:
    # Each chunk is cut when it is sent, never all up front: many answers in progress at once (out-of-band
    # responses) would otherwise each hold a second copy of their whole audio.
    n_chunks = max(1, -(-len(pcm) // CHUNK_BYTES))
    next_word = 0
    for c in range(n_chunks):
        chunk = pcm[c * CHUNK_BYTES : (c + 1) * CHUNK_BYTES]
        # Words are spread evenly over the audio so transcript and audio advance together.
        until = -(-(c + 1) * len(words) // n_chunks)  # ceil: text leads its audio, as on the service
        if until > next_word:
            yield TextPart(
                " ".join(words[next_word:until]) if next_word == 0 else " " + " ".join(words[next_word:until])
            )
            next_word = until
        if chunk:
            yield AudioPart(chunk)


def change_speed(pcm16_24k: bytes, speed: float) -> bytes:
    """Play ``pcm16_24k`` faster or slower (pitch changes too, like a tape) by resampling between the pair of
    supported rates whose ratio is nearest ``speed``; 1.0 (and anything within 5% of it) is returned as is."""
    if abs(speed - 1.0) < 0.05 or not pcm16_24k:
        return pcm16_24k
    rates = (8000, 16000, 24000, 44100, 48000)
    src, dst = min(((a, b) for a in rates for b in rates if a != b), key=lambda p: abs(p[0] / p[1] - speed))
    resampler = rtlayer_native.Resampler(src, dst)
    return resampler.process(pcm16_24k) + resampler.flush()


def describe_audio(pcm16_24k: bytes) -> str:
    """An honest description of audio with no speech recognition: its duration."""
    return f"[speech {len(pcm16_24k) / 48000:.1f} s]"


class EchoResponder:
    """The default responder: no model; it says back what it got.

    An audio turn is answered with the user's own audio (at the session's voice speed) and a transcript that
    describes it; a text turn with the same text, spoken with espeak-ng when installed; a function output with
    "The function returned: ..."; anything else with a greeting.
    """

    greeting = "Hello from the rtlayer echo responder."

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        turn = _last_turn(request.items)
        if _is_audio_turn(turn) and request.user_audio:
            description = describe_audio(request.user_audio)
            if not request.wants_audio:
                yield TextPart(f"You said: {description}")
                return
            pcm = change_speed(request.user_audio, request.speed)
            async for part in _interleave(["Echo:", description], pcm):
                yield part
            return
        if turn is None:
            text = self.greeting
        elif turn.get("type") == "function_call_output":
            text = f"The function returned: {item_text(turn)}"
        else:
            text = item_text(turn) or self.greeting
        async for part in speak(text, request):
            yield part

    async def transcribe(self, pcm16_24k: bytes) -> str | None:
        """No ASR here: the "transcript" says how long the audio was, e.g. ``[speech 1.8 s]``."""
        return describe_audio(pcm16_24k)


@dataclass(frozen=True, slots=True)
class _Rule:
    text_contains: tuple[str, ...] = ()
    text_matches: re.Pattern[str] | None = None
    audio: bool = False
    always: bool = False
    after_function_output: bool | str = False
    say: str | None = None
    calls: tuple[FunctionCallPart, ...] = ()


def _parse_action(raw: Mapping[str, Any], where: str) -> tuple[str | None, tuple[FunctionCallPart, ...]]:
    say = raw.get("say")
    if say is not None and not isinstance(say, str):
        raise ValueError(f"{where}.say must be a string")
    calls_raw = raw.get("call", raw.get("calls", []))
    calls_list = [calls_raw] if isinstance(calls_raw, Mapping) else calls_raw
    if not isinstance(calls_list, list):
        raise ValueError(f"{where}.call must be an object or a list of objects")
    calls = []
    for i, c in enumerate(calls_list):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
            raise ValueError(f"{where}.call[{i}] needs a 'name'")
        args = c.get("arguments", {})
        if not isinstance(args, (str, Mapping)):
            raise ValueError(f"{where}.call[{i}].arguments must be an object or JSON text")
        calls.append(
            FunctionCallPart(c["name"], args if isinstance(args, str) else dict(args), c.get("call_id"))
        )
    if say is None and not calls:
        raise ValueError(f"{where} needs 'say' or 'call'")
    return say, tuple(calls)


class ScriptedResponder:
    """Answers by rules, deterministically; for tests and demos of tool flows.

    Rules (JSON)::

        {"rules": [
            {"when": {"text_contains": "weather"}, "call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"after_function_output": "get_weather", "say": "It is sunny in Paris."},
            {"when": {"audio": true}, "say": "I heard you."}
         ],
         "default": {"say": "Sorry, I have no rule for that."}}

    ``when`` takes ``text_contains`` (a string or a list, case-insensitive, any matches), ``text_matches`` (a
    regular expression), ``audio: true`` (an audio turn; its transcript, if any, is also matched as text) or
    ``always: true``. ``after_function_output`` is ``true`` or the function's name. A rule does ``say``, ``call``
    (one object or a list) or both (speech first). The first matching rule wins, then ``default``.
    """

    def __init__(self, rules: Mapping[str, Any]) -> None:
        if not isinstance(rules, Mapping) or not isinstance(rules.get("rules", []), list):
            raise ValueError("scripted rules must be an object with a 'rules' list")
        self._rules: list[_Rule] = []
        for i, raw in enumerate(rules.get("rules", [])):
            where = f"rules[{i}]"
            if not isinstance(raw, Mapping):
                raise ValueError(f"{where} must be an object")
            when = raw.get("when", {})
            if not isinstance(when, Mapping):
                raise ValueError(f"{where}.when must be an object")
            contains = when.get("text_contains", ())
            contains = (contains,) if isinstance(contains, str) else tuple(contains)
            pattern = when.get("text_matches")
            after = raw.get("after_function_output", False)
            if not (contains or pattern or when.get("audio") or when.get("always") or after):
                raise ValueError(f"{where} needs a 'when' condition or 'after_function_output'")
            say, calls = _parse_action(raw, where)
            self._rules.append(
                _Rule(
                    text_contains=tuple(c.lower() for c in contains),
                    text_matches=re.compile(pattern, re.IGNORECASE) if pattern else None,
                    audio=bool(when.get("audio")),
                    always=bool(when.get("always")),
                    after_function_output=after,
                    say=say,
                    calls=calls,
                )
            )
        default = rules.get("default", {"say": "Sorry, I have no rule for that."})
        self._default = _parse_action(default, "default")

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedResponder:
        """Rules from a JSON file."""
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def _match(
        self, turn: dict[str, Any] | None, items: list[dict[str, Any]]
    ) -> tuple[str | None, tuple[FunctionCallPart, ...]]:
        if turn is not None and turn.get("type") == "function_call_output":
            name = next(
                (
                    i.get("name")
                    for i in items
                    if i.get("type") == "function_call" and i.get("call_id") == turn.get("call_id")
                ),
                None,
            )
            for rule in self._rules:
                if rule.after_function_output is True or (
                    rule.after_function_output and rule.after_function_output == name
                ):
                    return rule.say, rule.calls
            return self._default
        text = item_text(turn).lower() if turn else ""
        audio = _is_audio_turn(turn)
        for rule in self._rules:
            if rule.after_function_output:
                continue
            if (
                rule.always
                or (rule.audio and audio)
                or (text and any(c in text for c in rule.text_contains))
                or (text and rule.text_matches is not None and rule.text_matches.search(text))
            ):
                return rule.say, rule.calls
        return self._default

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        say, calls = self._match(_last_turn(request.items), request.items)
        if say:
            async for part in speak(say, request):
                yield part
        for call in calls:
            yield call
