"""Fuzz targets for what a client reads from the network and from disk, for ``fuzz_runner``.

- ``client.session``: a ``ClientSession`` fed a run of hostile server events (anything ``codec.loads`` can
  return: no lone surrogates, no integer past 64 bits) (known and unknown types, every
  field of a random JSON type, audio deltas of random base64, items and responses of any shape) through
  ``receive_event`` and the transports' audio fast path ``receive_audio_delta``: nothing raises, whatever
  the server sends (a wrong-typed event becomes an ``error`` event, and the session carries on), and what the
  session sends back serialises;
- ``wav.read``: ``read_wav`` on random bytes, and on real WAV files with mutated headers and data, raises
  only ``ValueError`` (``InvalidAudioError`` is one).
"""

from __future__ import annotations

import base64
import io
import os
import random
import tempfile
import wave
from typing import Any

from fuzz_runner import hostile, target

from rtlayer.audio import AudioFormat
from rtlayer.client.session import ClientSession
from rtlayer.protocol import codec
from rtlayer.protocol.events import SERVER_EVENT_TYPES
from rtlayer.wav import read_wav

_KEYS = [
    "type", "event_id", "response_id", "item_id", "content_index", "output_index", "delta", "audio",
    "transcript", "text", "item", "response", "session", "error", "audio_end_ms", "audio_start_ms",
    "previous_item_id", "call_id", "name", "arguments", "status", "output", "usage", "content", "role",
    "input_tokens", "format", "rate", "code", "message", "param", "event", "part",
]  # fmt: skip
_TYPES = sorted(SERVER_EVENT_TYPES)


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 2**31, 2**63, 2**64 - 1, -(2**63), rng.randrange(-1000, 100000)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, 1e29, float(rng.randrange(100))])
    if kind == 4:
        return rng.choice(["", "zero", "many", "item_1", "resp_1", "call_1", "é" * 3, "AAAA", "A"])
    if kind == 5:
        return base64.b64encode(rng.randbytes(rng.randrange(0, 64))).decode()[: rng.randrange(0, 90)]
    if kind == 6:
        return rng.choice(_TYPES)
    if kind == 7:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return _event(rng, depth + 1)


def _event(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = {key: _value(rng, depth) for key in rng.sample(_KEYS, rng.randrange(0, 8))}
    if depth == 0 and rng.random() < 0.9:
        event["type"] = rng.choice(_TYPES) if rng.random() < 0.9 else _value(rng, 1)
    return event


@target("client.session", ())
def client_session(rng: random.Random) -> None:
    sent: list[dict[str, Any]] = []
    formats = [None, AudioFormat("pcm16", 24000), AudioFormat("pcm16", 16000), AudioFormat.g711("pcmu")]
    session = ClientSession(
        input_format=rng.choice(formats),
        output_format=rng.choice(formats),
        output_frame_ms=rng.choice([None, 20]),
        emit=lambda name, payload: None,
        send=sent.append,
        retrieve_items=rng.random() < 0.5,
    )
    now = 0.0
    for _ in range(rng.randrange(1, 30)):
        now += rng.random()
        if rng.random() < 0.2:
            session.receive_audio_delta(
                str(_value(rng)), str(_value(rng)), _value(rng), _value(rng) if rng.random() < 0.3 else
                base64.b64encode(rng.randbytes(rng.randrange(0, 200))).decode(), now,
            )  # fmt: skip
        else:
            session.receive_event(_event(rng), now)
        if rng.random() < 0.05:
            session.interrupt(now)
    for event in sent:
        codec.dumps(event)


def _wav(rng: random.Random) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(rng.choice([1, 2]))
        w.setsampwidth(rng.choice([1, 2, 3]))
        w.setframerate(rng.choice([8000, 16000, 24000, 44100, 48000, 11025, 1]))
        w.writeframes(rng.randbytes(rng.randrange(0, 400)))
    return out.getvalue()


_WAV_TOKENS = [
    b"RIFF",
    b"WAVE",
    b"fmt ",
    b"data",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x03\x00",
    b"ID3",
]


@target("wav.read", (ValueError,))
def wav_read(rng: random.Random) -> None:
    data = hostile(rng, [_wav(rng) for _ in range(3)], _WAV_TOKENS, 400)
    fd, path = tempfile.mkstemp(suffix=".wav")
    try:
        os.write(fd, data)
        os.close(fd)
        pcm, rate = read_wav(path)
        assert len(pcm) % 2 == 0 and rate > 0
    finally:
        os.unlink(path)
