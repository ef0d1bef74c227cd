"""rtlayer_native against the chains voice-agent stacks run today, 20 ms frames, same run.

- fused mu-law 8 kHz -> PCM16 24 kHz (a Twilio call into a Realtime session) against pipecat's
  path: ``audioop.ulaw2lin`` + ``soxr.ResampleStream(8000, 24000, 1, dtype="int16",
  quality="HQ")`` + ``tobytes()``; and PCM16 24 kHz -> mu-law 8 kHz the other way. Target <= 0.25x.
- PCM16 24k -> 16k and 48k -> 24k against ``soxr.ResampleStream`` (HQ, int16). Target <= 0.5x.
- G.711 encode/decode against ``audioop`` (target <= 1x); Framer (target <= 0.5 us a frame).

Each test asserts that what it times is right (lengths, equality with audioop); timings are never
asserted: bench/conftest.py prints the ratios at the end of a timed run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import soxr

import rtlayer_native as rn

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def _speech(rate: int, ms: int = 20, seed: int = 0) -> bytes:
    """A 20 ms frame of a few tones at speech level (content does not change the timings)."""
    rng = np.random.default_rng(seed)
    n = np.arange(rate * ms // 1000)
    y = sum(rng.uniform(1500, 5000) * np.sin(2 * np.pi * rng.uniform(100, 3300) * n / rate) for _ in range(4))
    out: bytes = np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()
    return out


PCM8, PCM16K, PCM24, PCM48 = _speech(8000), _speech(16000), _speech(24000), _speech(48000)
ULAW8, ALAW8 = audioop.lin2ulaw(PCM8, 2), audioop.lin2alaw(PCM8, 2)


def _soxr_stream(in_rate: int, out_rate: int) -> Callable[[bytes], bytes]:
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")

    def run(pcm: bytes) -> bytes:
        out: bytes = stream.resample_chunk(np.frombuffer(pcm, np.int16)).tobytes()
        return out

    return run


def _path(name: str, role: str) -> tuple[Callable[[], bytes], float]:
    """(one 20 ms call of the path, the ratio target) for a role: "anchor", "rtlayer", "rtlayer high"."""
    quality = "high" if role == "rtlayer high" else "conversational"
    if name == "mulaw 8k -> pcm16 24k":
        if role == "anchor":
            up = _soxr_stream(8000, 24000)
            return (lambda: up(audioop.ulaw2lin(ULAW8, 2))), 0.25
        tc = rn.Transcoder("pcmu", 8000, "pcm16", 24000, quality)
        return (lambda: tc.process(ULAW8)), 0.25
    if name == "pcm16 24k -> mulaw 8k":
        if role == "anchor":
            down = _soxr_stream(24000, 8000)
            return (lambda: audioop.lin2ulaw(down(PCM24), 2)), 0.25
        tc = rn.Transcoder("pcm16", 24000, "pcmu", 8000, quality)
        return (lambda: tc.process(PCM24)), 0.25
    in_rate, out_rate, pcm = {
        "pcm16 24k -> 16k": (24000, 16000, PCM24),
        "pcm16 48k -> 24k": (48000, 24000, PCM48),
        "pcm16 16k -> 24k": (16000, 24000, PCM16K),
    }[name]
    if role == "anchor":
        stream = _soxr_stream(in_rate, out_rate)
        return (lambda: stream(pcm)), 0.5
    r = rn.Resampler(in_rate, out_rate, quality=quality)
    return (lambda: r.process(pcm)), 0.5


PATHS = [
    "mulaw 8k -> pcm16 24k",
    "pcm16 24k -> mulaw 8k",
    "pcm16 24k -> 16k",
    "pcm16 48k -> 24k",
    "pcm16 16k -> 24k",
]
OUT_BYTES = {  # one 20 ms frame out
    "mulaw 8k -> pcm16 24k": 960,
    "pcm16 24k -> mulaw 8k": 160,
    "pcm16 24k -> 16k": 640,
    "pcm16 48k -> 24k": 960,
    "pcm16 16k -> 24k": 960,
}
# soxr's streams return output in bursts (HQ 8k->24k: nothing, nothing, 61 ms), so every timed call
# covers 12 frames (240 ms) and the table reports time per 20 ms frame.
FRAMES_PER_CALL = 12


@pytest.mark.parametrize("role", ["anchor", "rtlayer", "rtlayer high"])
@pytest.mark.parametrize("name", PATHS)
def test_stream_path(benchmark: Any, name: str, role: str) -> None:
    call, target = _path(name, role)

    def frames() -> int:
        return sum(len(call()) for _ in range(FRAMES_PER_CALL))

    for _ in range(2):  # past the start-up: soxr holds back its first output
        frames()
    expected = OUT_BYTES[name] * FRAMES_PER_CALL
    out = frames()
    if role == "anchor":
        assert abs(out - expected) <= expected // 2  # bursts: whole blocks early or late
    else:
        assert out == expected  # rtlayer: every call returns exactly its frame's worth
    benchmark.group = name
    benchmark.extra_info.update(role=role, items=FRAMES_PER_CALL, item="20 ms frame")
    if role == "rtlayer":
        benchmark.extra_info["target"] = target
    benchmark(frames)


G711: dict[str, tuple[Callable[..., bytes], tuple[Any, ...], Callable[..., bytes], tuple[Any, ...]]] = {
    "mu-law decode": (rn.ulaw_decode, (ULAW8,), audioop.ulaw2lin, (ULAW8, 2)),
    "mu-law encode": (rn.ulaw_encode, (PCM8,), audioop.lin2ulaw, (PCM8, 2)),
    "A-law decode": (rn.alaw_decode, (ALAW8,), audioop.alaw2lin, (ALAW8, 2)),
    "A-law encode": (rn.alaw_encode, (PCM8,), audioop.lin2alaw, (PCM8, 2)),
}


@pytest.mark.parametrize("role", ["anchor", "rtlayer"])
@pytest.mark.parametrize("name", list(G711))
def test_g711(benchmark: Any, name: str, role: str) -> None:
    ours, ours_args, anchor, anchor_args = G711[name]
    assert ours(*ours_args) == anchor(*anchor_args)  # bit-exact, so the comparison is like for like
    benchmark.group = f"G.711 {name}, 20 ms"
    benchmark.extra_info["role"] = role
    if role == "rtlayer":
        benchmark.extra_info["target"] = 1.0
        benchmark(ours, *ours_args)
    else:
        benchmark(anchor, *anchor_args)


@pytest.mark.parametrize(
    ("case", "chunk", "frame"), [("exact 20 ms frames", 960, 960), ("4 KiB chunks", 4096, 960)]
)
def test_framer(benchmark: Any, case: str, chunk: int, frame: int) -> None:
    framer = rn.Framer(frame)
    data = bytes(chunk)
    frames_per_call = chunk / frame
    produced = sum(len(framer.push(data)) for _ in range(frame))  # `frame` calls: whole frames
    assert produced == chunk
    benchmark.group = f"Framer, {case}"
    benchmark.extra_info.update(role="rtlayer", items=frames_per_call, item="frame", target_us_per_item=0.5)
    benchmark(framer.push, data)
