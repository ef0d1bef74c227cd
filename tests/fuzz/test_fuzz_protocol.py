"""Fuzz the wire codec and the server's handling of client events, in-process (runner: ``sip_fuzzing``).

Two properties, each over mutated frames and over structured random events:

- ``codec.loads`` raises only ``ValueError`` (bad JSON, or ``TooDeep``), and whatever it accepts
  ``codec.dumps`` can send back, unchanged: a value that parses but cannot be serialised once made every
  later event of its session fail.
- ``ServerSession.receive_text`` never raises, whatever the frame: a bad one is answered with an ``error``
  event, and every event the session emits serialises.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_fuzzing import LONG, Mutator, fuzz

from rtlayer.protocol import codec
from rtlayer.protocol.events import CLIENT_EVENT_TYPES
from rtlayer.server.core.session import ServerSession

_B64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
SEEDS = [
    json.dumps(e).encode()
    for e in [
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "x",
                "tools": [
                    {
                        "type": "function",
                        "name": "f",
                        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
                    }
                ],
            },
        },
        {
            "type": "session.update",
            "session": {
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}}
            },
        },
        {"type": "input_audio_buffer.append", "audio": _B64, "event_id": "e1"},
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.clear"},
        {
            "type": "conversation.item.create",
            "previous_item_id": "root",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        },
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c1", "output": "{}"},
        },
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": _B64}]},
        },
        {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 10},
        {"type": "conversation.item.delete", "item_id": "item_1"},
        {"type": "conversation.item.retrieve", "item_id": "item_1"},
        {
            "type": "response.create",
            "response": {
                "output_modalities": ["text"],
                "conversation": "none",
                "metadata": {"k": "v"},
                "input": [],
            },
        },
        {"type": "response.cancel"},
        {"type": "output_audio_buffer.clear"},
    ]
] + [b"[" * 70 + b"]" * 70, b'{"a":' * 80 + b"1" + b"}" * 80]


def check_codec(data: bytes) -> None:
    value = codec.loads(data)
    assert codec.loads(codec.dumps(value)) == value


class SessionTarget:
    """One session fed frame after frame (a fresh one every 500 frames, so the state stays varied)."""

    def __init__(self) -> None:
        self.session = ServerSession(now=time.time())
        self.frames = 0

    def __call__(self, data: bytes) -> None:
        self.frames += 1
        if self.frames % 500 == 0 or self.session.closed:
            self.session = ServerSession(now=time.time())
        session = self.session
        session.receive_text(data, time.time())
        session.response_jobs()
        session.transcription_jobs()
        for event in session.events_to_send():
            codec.dumps(event)


def test_the_codec_takes_any_bytes_and_sends_back_whatever_it_accepts() -> None:
    result = fuzz("codec", check_codec, iter(Mutator(SEEDS, seed=9001)), ValueError)
    assert not result.failures, result.failures
    assert result.inputs > 1000


def test_the_session_answers_any_frame_and_every_event_it_emits_serialises() -> None:
    result = fuzz("client-events", SessionTarget(), iter(Mutator(SEEDS, seed=9002)), ())
    assert not result.failures, result.failures
    assert result.inputs > 500


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
_FIELDS = [
    "session",
    "item",
    "response",
    "audio",
    "item_id",
    "previous_item_id",
    "content_index",
    "audio_end_ms",
    "response_id",
    "event_id",
]


@settings(
    max_examples=5_000 if LONG else 100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    st.sampled_from([*sorted(CLIENT_EVENT_TYPES), "", "nope"]),
    st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), _JSON, max_size=5),
)
def test_any_structured_event_is_answered_never_raised(kind: str, fields: dict[str, Any]) -> None:
    session = ServerSession(now=time.time())
    session.events_to_send()
    session.receive_event({"type": kind, **fields}, time.time())
    for event in session.events_to_send():
        codec.dumps(event)  # every answer (an error naming the field, or the event's effect) can be sent


@settings(max_examples=2_000 if LONG else 50, derandomize=True, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["[", '{"a":']))
def test_any_depth_is_refused_or_round_trips(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + ("1" if opener != "[" else "") + closer * depth
    try:
        value = codec.loads(text)
    except codec.TooDeep:
        assert depth > codec.MAX_DEPTH
        return
    assert depth <= codec.MAX_DEPTH
    assert codec.loads(codec.dumps(value)) == value
