"""Fuzz targets for what the media-stream bridge reads from a telephony provider, for ``fuzz_runner``.

- ``media.dialect``: one provider's dialect (each of the five, with their formats) given its real opening,
  then a run of up to 40 frames: the provider's own frames (media, mark echoes of names the bridge sent and
  of others, DTMF, stop, clear replies, written by the simulator's side) mutated with JSON's troublemakers,
  random bytes as text or as a binary frame, and objects that are neither. ``receive`` never raises and
  returns only provider events; the bridge's sans-I/O halves fed those events (``InboundAudio.media`` the
  audio, ``OutboundAudio.ack`` the acknowledgements, with frames in flight) never raise and keep their bounds
  (at most ``max_gap_fill_ms`` of silence per chunk, never more than ``max_ahead_ms`` in flight);
- ``media.simulator``: the provider simulator's side (``rtlayer phone``) reading what an app sends, the app's
  own frames (audio, marks, clears, as each dialect writes them) mutated, random bytes, other objects:
  ``parse`` never raises and returns only app messages.
"""

from __future__ import annotations

import random
from typing import Any

from fuzz_runner import mutate, target
from protocol_targets import TOKENS as JSON_TOKENS

from rtlayer.testing.phone.providers import AppAudio, AppClear, AppMark, AppProblem, CallInfo, provider_side
from rtlayer.transports.media_stream import InboundAudio, OutboundAudio, dialect_for
from rtlayer.transports.media_stream.events import (
    CallStart,
    CallStop,
    ClearConfirmed,
    Connected,
    DtmfEvent,
    MediaIn,
    PlaybackAck,
    ProviderProblem,
)

#: JSON's troublemakers (``protocol_targets``), and a provider frame's own
TOKENS = [
    *JSON_TOKENS,
    b"1e400",
    b"\xc2\xb2",  # a digit to str.isdigit, not to int()
    b"[]",
    b"{}",
    b'"=",',
    b'"AA=="',
    b'"event":',
    b'"media":{"payload":',
    b'"mark":{"name":',
    b'"timestamp":',
]

#: (provider, codec, rate) as the simulator's side speaks them
FORMATS = [
    ("twilio", "pcmu", 8000),
    ("telnyx", "pcma", 8000),
    ("telnyx", "pcm16", 16000),
    ("plivo", "pcm16", 8000),
    ("exotel", "pcm16", 8000),
    ("vonage", "pcm16", 16000),
]
EVENTS = (CallStart, CallStop, ClearConfirmed, Connected, DtmfEvent, MediaIn, PlaybackAck, ProviderProblem)


def _frames(rng: random.Random, provider: str, codec: str, rate: int, names: list[str]) -> list[Any]:
    side = provider_side(provider, codec, rate)
    call = CallInfo(custom={"k": "v"})
    pcm = rng.randbytes(rate * 2 // 50 & ~1)
    frames: list[Any] = [side.media(call, pcm, rng.randrange(-100, 10**6)) for _ in range(3)]
    frames += [side.mark_echo(call, rng.choice(names)) for _ in range(3)]
    frames += [side.dtmf(call, rng.choice("0123456789*#")), *side.opening(call)]
    frames += [f for f in (side.stop(call), side.clear_reply(call)) if f is not None]
    return frames


def _hostile(rng: random.Random, seeds: list[Any]) -> Any:
    kind = rng.random()
    if kind < 0.05:
        return rng.choice([None, 7, 1.5, ["a"], {"event": "media"}])  # an adapter handing over something else
    if kind < 0.15:
        return rng.randbytes(rng.randint(0, 700))  # a binary frame
    seed = rng.choice(seeds)
    data = seed.encode() if isinstance(seed, str) else seed
    if kind < 0.3:
        return data if isinstance(seed, bytes) else seed  # the provider's own frame, untouched
    mutated = mutate(rng, data, TOKENS)
    return mutated if isinstance(seed, bytes) and rng.random() < 0.5 else mutated.decode("utf-8", "replace")


@target("media.dialect", ())
def media_dialect(rng: random.Random) -> None:
    provider, codec, rate = rng.choice(FORMATS)
    dialect = dialect_for(provider)
    for frame in provider_side(provider, codec, rate).opening(CallInfo()):
        if rng.random() < 0.9:  # sometimes no start: media before it
            dialect.receive(frame)
    inbound = InboundAudio(dialect.format.audio, max_gap_fill_ms=rng.choice([0.0, 40.0, 1000.0]))
    outbound = OutboundAudio(20, lead_ms=rng.choice([40.0, 80.0]), max_ahead_ms=300.0)
    for _ in range(30):
        outbound.push(b"\xff" * 160, "item_1", 0)
    sent = [frame.mark for frame in outbound.pop_ready(0.0)]
    if rng.random() < 0.3:
        outbound.clear()  # the names in flight are now of an older generation
    names = [*sent, "0.999", "x", "", "1.1", "9" * 50 + ".1"]
    seeds = _frames(rng, provider, codec, rate, names)
    limit = inbound.format.bytes_for_ms(inbound.max_gap_fill_ms)
    now = 0.0
    for _ in range(rng.randrange(1, 40)):
        now += rng.random() * 0.05
        for event in dialect.receive(_hostile(rng, seeds)):
            assert isinstance(event, EVENTS), type(event)
            if isinstance(event, MediaIn):
                chunks = inbound.media(event.audio, event.timestamp_ms, now)
                assert chunks[-1] is event.audio and len(chunks) <= 2
                assert len(chunks) == 1 or len(chunks[0]) <= limit
            elif isinstance(event, PlaybackAck):
                outbound.ack(event.name, now)
                assert 0.0 <= outbound.unacked_ms <= outbound.max_ahead_ms + 1e-6
        inbound.check_stall(now)
        outbound.pop_ready(now)


@target("media.simulator", ())
def media_simulator(rng: random.Random) -> None:
    provider, codec, rate = rng.choice(FORMATS)
    side, dialect = provider_side(provider, codec, rate), dialect_for(provider)
    for frame in side.opening(CallInfo()):
        dialect.receive(frame)
    seeds = [dialect.audio(rng.randbytes(dialect.out_frame_bytes)), dialect.mark("0.1"), dialect.clear()]
    for _ in range(rng.randrange(1, 20)):
        message = _hostile(rng, seeds)
        if not isinstance(message, (str, bytes)):
            continue  # the simulator's socket hands over text or bytes only
        assert isinstance(side.parse(message), (AppAudio, AppMark, AppClear, AppProblem))
