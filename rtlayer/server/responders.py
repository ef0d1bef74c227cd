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

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rtlayer_native
from rtlayer.protocol.items import item_text
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
from rtlayer.server.fair import run_blocking
from rtlayer.server.speech import synthesize

__all__ = [
    "AudioPart",
    "EchoResponder",
    "FunctionCallPart",
    "Responder",
    "ResponderInfo",
    "ResponsePart",
    "ResponseRequest",
    "Rule",
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
    pcm = await run_blocking(synthesize, text, request.speed, request.voice)
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
class Rule:
    """One rule of a :class:`ScriptedResponder`: when it applies, and what the answer does.

    When (a user turn): ``always``, ``audio`` (an audio turn; its transcript, if any, is also matched as
    text), ``contains`` (substrings, case-insensitive), ``words`` (whole words or phrases, case-insensitive:
    "no" does not match "know") or ``matches`` (a regular expression, case-insensitive); any of them is
    enough. ``after_tool`` instead makes it a rule for the turn after a function output (``True``: any
    function, or the function's name). On top, and all required: ``instructions_contain`` (the session's
    current instructions contain this text: the active agent of an agents app) and ``require_tools``
    (every function the rule calls is among the session's current tools, so an agent that was handed the
    call and lacks the tool is not asked to call it).

    What: ``say`` (spoken, or text in a text session), then ``calls`` (function calls); ``delay_ms`` waits
    before the first part is sent (a model that thinks: gives barge-in tests a window).
    """

    say: str | None = None
    calls: tuple[FunctionCallPart, ...] = ()
    always: bool = False
    audio: bool = False
    contains: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    matches: str | None = None
    after_tool: bool | str = False
    instructions_contain: str | None = None
    require_tools: bool = False
    delay_ms: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _words: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.say is None and not self.calls:
            raise ValueError("Rule needs 'say' or 'call'")
        if not (self.always or self.audio or self.contains or self.words or self.matches or self.after_tool):
            raise ValueError("Rule needs a 'when' condition or 'after_function_output'")
        if (
            isinstance(self.delay_ms, bool)
            or not isinstance(self.delay_ms, int)
            or not 0 <= self.delay_ms <= 60_000
        ):
            raise ValueError(f"Rule: delay_ms must be an integer between 0 and 60000, got {self.delay_ms!r}")
        for name in ("contains", "words"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
        object.__setattr__(self, "contains", tuple(c.lower() for c in self.contains))
        try:
            if self.matches is not None:
                object.__setattr__(self, "_pattern", re.compile(self.matches, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"Rule: bad regular expression {self.matches!r}: {exc}") from None
        if self.words:
            alternatives = "|".join(re.escape(w) for w in self.words)
            object.__setattr__(self, "_words", re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))

    def applies(self, request: ResponseRequest, turn: dict[str, Any] | None, tool: str | None) -> bool:
        """Whether this rule answers ``request``, whose last turn is ``turn`` (``tool``: the function
        whose output it is, if it is one)."""
        if self.instructions_contain is not None and self.instructions_contain.lower() not in (
            request.instructions.lower()
        ):
            return False
        if self.require_tools:
            present = {t.get("name") for t in request.tools}
            if any(call.name not in present for call in self.calls):
                return False
        if turn is not None and turn.get("type") == "function_call_output":
            return self.after_tool is True or (bool(self.after_tool) and self.after_tool == tool)
        if self.after_tool:
            return False
        text = item_text(turn) if turn else ""
        return (
            self.always
            or (self.audio and _is_audio_turn(turn))
            or (bool(text) and any(c in text.lower() for c in self.contains))
            or (bool(text) and self._words is not None and self._words.search(text) is not None)
            or (bool(text) and self._pattern is not None and self._pattern.search(text) is not None)
        )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a string or a list of strings")
    return tuple(value)


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


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object")
    when = raw.get("when", {})
    if not isinstance(when, Mapping):
        raise ValueError(f"{where}.when must be an object")
    say, calls = _parse_action(raw, where)
    instructions = when.get("instructions_contain")
    if instructions is not None and not isinstance(instructions, str):
        raise ValueError(f"{where}.when.instructions_contain must be a string")
    pattern = when.get("text_matches")
    if pattern is not None and not isinstance(pattern, str):
        raise ValueError(f"{where}.when.text_matches must be a string")
    try:
        return Rule(
            say=say,
            calls=calls,
            always=bool(when.get("always")),
            audio=bool(when.get("audio")),
            contains=_strings(when.get("text_contains", []), f"{where}.when.text_contains"),
            words=_strings(when.get("words", []), f"{where}.when.words"),
            matches=pattern,
            after_tool=raw.get("after_function_output", False),
            instructions_contain=instructions,
            require_tools=bool(raw.get("require_tools", False)),
            delay_ms=raw.get("delay_ms", 0),
        )
    except ValueError as exc:
        raise ValueError(f"{where} {str(exc).split(' ', 1)[-1]}") from None  # "Rule ..." -> "rules[i] ..."


class ScriptedResponder:
    """Answers by rules, deterministically; for tests and demos of tool flows.

    Built from Python, with :class:`Rule`::

        ScriptedResponder(
            [
                Rule(words=("weather", "forecast"), calls=(FunctionCallPart("get_weather", {"city": "Paris"}),),
                     require_tools=True),
                Rule(after_tool="get_weather", say="It is sunny in Paris."),
                Rule(audio=True, instructions_contain="billing", say="Billing here.", delay_ms=300),
            ],
            default="Sorry, I have no rule for that.",
        )

    or from a dict or a JSON file (``from_file``) of the same rules::

        {"rules": [
            {"when": {"words": ["weather", "forecast"]}, "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
             "require_tools": true},
            {"after_function_output": "get_weather", "say": "It is sunny in Paris."},
            {"when": {"audio": true, "instructions_contain": "billing"}, "say": "Billing here.", "delay_ms": 300}
         ],
         "default": {"say": "Sorry, I have no rule for that."}}

    ``when`` takes ``always``, ``audio``, ``text_contains``, ``words``, ``text_matches`` and
    ``instructions_contain`` (see :class:`Rule` for what each means). The first rule that applies wins, then
    the default.
    """

    def __init__(self, rules: Mapping[str, Any] | Sequence[Rule], default: str | Rule | None = None) -> None:
        if isinstance(rules, Mapping):
            if not isinstance(rules.get("rules", []), list):
                raise ValueError("scripted rules must be an object with a 'rules' list")
            self.rules = [_parse_rule(raw, f"rules[{i}]") for i, raw in enumerate(rules.get("rules", []))]
            say, calls = _parse_action(rules.get("default", {"say": _NO_RULE}), "default")
            self.default = Rule(say=say, calls=calls, always=True)
        elif (
            isinstance(rules, Sequence)
            and not isinstance(rules, str)
            and all(isinstance(r, Rule) for r in rules)
        ):
            self.rules = list(rules)
            self.default = Rule(say=_NO_RULE, always=True)
        else:
            raise ValueError("scripted rules must be an object with a 'rules' list, or a list of Rule")
        if isinstance(default, str):
            self.default = Rule(say=default, always=True)
        elif isinstance(default, Rule):
            self.default = default

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedResponder:
        """Rules from a JSON file."""
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def match(self, request: ResponseRequest) -> Rule:
        """The rule that answers ``request`` (the default when none applies)."""
        turn = _last_turn(request.items)
        tool = None
        if turn is not None and turn.get("type") == "function_call_output":
            tool = next(
                (
                    i.get("name")
                    for i in request.items
                    if i.get("type") == "function_call" and i.get("call_id") == turn.get("call_id")
                ),
                None,
            )
        return next((rule for rule in self.rules if rule.applies(request, turn, tool)), self.default)

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        rule = self.match(request)
        if rule.delay_ms:
            await asyncio.sleep(rule.delay_ms / 1000)
        if rule.say:
            async for part in speak(rule.say, request):
                yield part
        for call in rule.calls:
            yield call


_NO_RULE = "Sorry, I have no rule for that."
