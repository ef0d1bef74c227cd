"""Fuzz targets for the wire codec and the server's handling of client events, for ``fuzz_runner``.

- ``protocol.codec``: ``codec.loads`` raises only ``ValueError`` (bad JSON, or ``TooDeep``), and whatever it
  accepts ``codec.dumps`` can send back, unchanged: a value that parses but cannot be serialised once made
  every later event of its session fail;
- ``protocol.client_events``: ``ServerSession.receive_text`` never raises, whatever the frame (a bad one is
  answered with an ``error`` event), and every event the session emits serialises.

Inputs are random bytes (15 %) or one of the seed events below mutated a few times, with JSON's own
troublemakers spliced in (deep nesting, huge numbers, lone surrogates, NaN).
"""

from __future__ import annotations

import json
import random
import time

from fuzz_runner import hostile, target

from rtlayer.protocol import codec
from rtlayer.server.core.session import ServerSession

TOKENS = [
    b"[" * 70,
    b"]" * 70,
    b'{"a":' * 80,
    b"}" * 80,
    b"9" * 5000,
    b"1e999",
    b"NaN",
    b"-0",
    b'"\\ud800"',
    b"null",
    b"true",
    b'""',
    b",",
    b":",
    b"\x00",
    b"\xff",
    b'"type":',
    b'"session":{',
]

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


@target("protocol.codec", (ValueError,))
def protocol_codec(rng: random.Random) -> None:
    value = codec.loads(hostile(rng, SEEDS, TOKENS, 600))
    assert codec.loads(codec.dumps(value)) == value


@target("protocol.client_events", ())
def protocol_client_events(rng: random.Random) -> None:
    # A fresh session fed a short run of frames, so that the state varies from input to input.
    session = ServerSession(now=time.time())
    for _ in range(rng.randint(1, 8)):
        session.receive_text(hostile(rng, SEEDS, TOKENS, 600), time.time())
        session.response_jobs()
        session.transcription_jobs()
        for event in session.events_to_send():
            codec.dumps(event)
