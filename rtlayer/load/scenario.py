"""What each simulated caller says and does: a scenario, read from a JSON or TOML file.

A scenario is a list of turns that every caller plays in order, looping until the run ends::

    {
      "session": {"instructions": "Be brief."},          # the initial session config (optional)
      "answer_timeout_ms": 15000,                          # a turn with no answer by then is an error
      "pause_jitter_ms": 300,                              # natural pauses vary by up to this much
      "turns": [
        {"name": "greeting", "audio": "hello.wav", "pause_ms": 800},
        {"name": "barge-in", "audio": "question.wav", "interrupt_after_ms": 400},
        {"name": "weather", "text": "What is the weather?", "expect_tool": "get_weather",
         "tool_output": "{\\"sky\\": \\"clear\\"}"}
      ]
    }

Each turn speaks a WAV (``audio``, any PCM16 WAV; paths are relative to the scenario file) or sends a text
message (``text``). After the answer has been heard in full, the caller stays silent for ``pause_ms`` (plus
up to ``pause_jitter_ms``, drawn from the caller's seeded generator) before the next turn. A turn with
``interrupt_after_ms`` barges in once that much of the answer was heard, and checks that the model was
truncated there. A turn with ``expect_tool`` expects a call of that tool, answers it with ``tool_output``
and waits for the answer that follows. With no file, :func:`default_scenario` speaks a short sentence.

This module does no I/O besides reading the files it is given; :class:`ScenarioError` is the only error it
raises.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rtlayer_native

from ..audio import AudioConverter, AudioFormat
from ..exceptions import LocalProtocolError
from ..wav import read_wav

__all__ = [
    "CALLER_FORMAT",
    "VOICE_DBFS",
    "Scenario",
    "ScenarioError",
    "Turn",
    "default_scenario",
    "load_scenario",
    "voiced_end_ms",
]

#: a frame louder than this is voice (server_vad's default threshold, 0.5, gates at -30 dBFS)
VOICE_DBFS = -45.0
#: what callers send and receive: PCM16 at 24 kHz, the Realtime default, so no conversion runs per frame
CALLER_FORMAT = AudioFormat("pcm16", 24000)
_DEFAULT_SPEECH = Path(__file__).with_name("speech_24k.wav")
_TURN_KEYS = frozenset(
    {"name", "audio", "text", "pause_ms", "interrupt_after_ms", "expect_tool", "tool_output"}
)
_SCENARIO_KEYS = frozenset({"session", "turns", "answer_timeout_ms", "pause_jitter_ms"})


class ScenarioError(LocalProtocolError, ValueError):
    """A scenario file that cannot be used; the message names the file, the turn and the field."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One thing a caller says, and how it behaves while the answer plays."""

    name: str
    #: the caller's speech, PCM16 24 kHz mono (None for a text turn)
    speech: bytes | None = None
    #: where the voice in ``speech`` ends (its trailing silence excluded): the turn's end is measured from here
    speech_end_ms: int = 0
    #: a text message instead of speech
    text: str | None = None
    #: silence after the answer was heard in full, before the next turn
    pause_ms: int = 800
    #: barge in once this many milliseconds of the answer were heard (None: listen to the end)
    interrupt_after_ms: int | None = None
    #: the tool the model is expected to call in this turn
    expect_tool: str | None = None
    #: what the caller answers that tool call with
    tool_output: str = "{}"

    @property
    def speech_ms(self) -> int:
        return 0 if self.speech is None else int(CALLER_FORMAT.duration_ms(len(self.speech)))


@dataclass(frozen=True, slots=True)
class Scenario:
    """The turns every caller plays in a loop, and the session they open."""

    turns: tuple[Turn, ...]
    session: Mapping[str, Any] = field(default_factory=dict)
    answer_timeout_ms: int = 15_000
    pause_jitter_ms: int = 300


def default_scenario() -> Scenario:
    """One spoken sentence (1.1 s), answered and heard in full, then a pause: the plainest caller."""
    speech, _ = read_wav(str(_DEFAULT_SPEECH))
    return Scenario(turns=(Turn(name="sentence", speech=speech, speech_end_ms=voiced_end_ms(speech)),))


def voiced_end_ms(speech: bytes, frame_ms: int = 20) -> int:
    """Where the voice in ``speech`` ends: the end of its last 20 ms frame above :data:`VOICE_DBFS`."""
    frame = CALLER_FORMAT.bytes_for_ms(frame_ms)
    end = 0
    for index, offset in enumerate(range(0, len(speech), frame)):
        if rtlayer_native.rms_dbfs(speech[offset : offset + frame]) > VOICE_DBFS:
            end = index + 1
    return end * frame_ms


def load_scenario(path: str | Path) -> Scenario:
    """Reads a scenario from a ``.json`` or ``.toml`` file (see the module docstring for its fields)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ScenarioError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'} ({exc})") from None
    return parse_scenario(data, base=path.parent, source=str(path))


def parse_scenario(data: Any, *, base: Path = Path("."), source: str = "scenario") -> Scenario:
    """A :class:`Scenario` from already-parsed data; audio paths are resolved against ``base``."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected an object with a 'turns' list")
    unknown = sorted(set(data) - _SCENARIO_KEYS)
    if unknown:
        raise ScenarioError(f"{source}: unknown field(s) {', '.join(unknown)}")
    turns_data = data.get("turns")
    if not isinstance(turns_data, list) or not turns_data:
        raise ScenarioError(f"{source}: 'turns' must be a non-empty list")
    session = data.get("session", {})
    if not isinstance(session, dict):
        raise ScenarioError(f"{source}: 'session' must be an object (a session config)")
    turns = tuple(_parse_turn(turn, i, base, source) for i, turn in enumerate(turns_data))
    return Scenario(
        turns=turns,
        session=session,
        answer_timeout_ms=_ms(data, "answer_timeout_ms", 15_000, source, minimum=1),
        pause_jitter_ms=_ms(data, "pause_jitter_ms", 300, source),
    )


def _parse_turn(data: Any, index: int, base: Path, source: str) -> Turn:
    where = f"{source}: turn {index + 1}"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected an object")
    unknown = sorted(set(data) - _TURN_KEYS)
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if ("audio" in data) == ("text" in data):
        raise ScenarioError(f"{where}: give exactly one of 'audio' (a WAV file) or 'text'")
    name = data.get("name", f"turn{index + 1}")
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{where}: 'name' must be a non-empty string")
    where = f"{source}: turn {name!r}"
    speech = text = None
    speech_end_ms = 0
    if "audio" in data:
        if not isinstance(data["audio"], str):
            raise ScenarioError(f"{where}: 'audio' must be a WAV file's path")
        speech = _read_speech(base / data["audio"], where)
        speech_end_ms = voiced_end_ms(speech)
        if speech_end_ms == 0:
            raise ScenarioError(f"{where}: {data['audio']} is silent (nothing above {VOICE_DBFS:.0f} dBFS)")
    else:
        text = data["text"]
        if not isinstance(text, str) or not text:
            raise ScenarioError(f"{where}: 'text' must be a non-empty string")
    interrupt = data.get("interrupt_after_ms")
    expect_tool = data.get("expect_tool")
    if expect_tool is not None and not isinstance(expect_tool, str):
        raise ScenarioError(f"{where}: 'expect_tool' must be a tool name")
    tool_output = data.get("tool_output", "{}")
    if not isinstance(tool_output, str):
        tool_output = json.dumps(tool_output)
    return Turn(
        name=name,
        speech=speech,
        speech_end_ms=speech_end_ms,
        text=text,
        pause_ms=_ms(data, "pause_ms", 800, where),
        interrupt_after_ms=None if interrupt is None else _ms(data, "interrupt_after_ms", 0, where),
        expect_tool=expect_tool,
        tool_output=tool_output,
    )


def _read_speech(path: Path, where: str) -> bytes:
    try:
        pcm, rate = read_wav(str(path))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if not pcm:
        raise ScenarioError(f"{where}: {path} holds no audio")
    converter = AudioConverter(AudioFormat("pcm16", rate), CALLER_FORMAT)
    return converter.convert(pcm) + converter.flush()


def _ms(data: Mapping[str, Any], key: str, default: int, where: str, minimum: int = 0) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(f"{where}: '{key}' must be a whole number of milliseconds >= {minimum}")
    return value
