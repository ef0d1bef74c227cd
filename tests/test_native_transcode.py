"""The fused Transcoder: one pass G.711 8 kHz <-> PCM16 16/24/48 kHz, and PCM16 rate to rate.

Fused must equal the obvious composition (decode then resample; resample then encode) bit for bit,
because the fused path uses the same filter and the same rounding, only without the buffer between.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtlayer_native as rn

ENCODE = {"pcmu": rn.ulaw_encode, "pcma": rn.alaw_encode}
DECODE = {"pcmu": rn.ulaw_decode, "pcma": rn.alaw_decode}


def speechlike(rate: int, seconds: float, seed: int) -> bytes:
    """A few tones with a wandering envelope: a cheap stand-in for a voice."""
    rng = np.random.default_rng(seed)
    n = np.arange(int(rate * seconds))
    y = sum(rng.uniform(1000, 6000) * np.sin(2 * np.pi * rng.uniform(100, 3400) * n / rate) for _ in range(4))
    y *= 0.6 + 0.4 * np.sin(2 * np.pi * 3 * n / rate)
    return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()


def chunked(tc: rn.Transcoder | rn.Resampler, data: bytes, step: int) -> bytes:
    return b"".join(tc.process(data[i : i + step]) for i in range(0, len(data), step)) + tc.flush()


@pytest.mark.parametrize("quality", rn.QUALITIES)
@pytest.mark.parametrize("rate", [16000, 24000, 48000])
@pytest.mark.parametrize("codec", ["pcmu", "pcma"])
def test_g711_to_pcm16_equals_decode_then_resample(codec: str, rate: int, quality: str) -> None:
    g711 = ENCODE[codec](speechlike(8000, 0.5, rate))
    tc = rn.Transcoder(codec, 8000, "pcm16", rate, quality)
    ref = rn.Resampler(8000, rate, quality=quality)
    assert chunked(tc, g711, 160) == chunked(ref, DECODE[codec](g711), 320)
    assert tc.latency_ms == ref.latency_ms


@pytest.mark.parametrize("quality", rn.QUALITIES)
@pytest.mark.parametrize("rate", [16000, 24000, 48000])
@pytest.mark.parametrize("codec", ["pcmu", "pcma"])
def test_pcm16_to_g711_equals_resample_then_encode(codec: str, rate: int, quality: str) -> None:
    pcm = speechlike(rate, 0.5, rate + 1)
    tc = rn.Transcoder("pcm16", rate, codec, 8000, quality)
    ref = rn.Resampler(rate, 8000, quality=quality)
    out = chunked(tc, pcm, rate // 50 * 2)
    assert out == ENCODE[codec](chunked(ref, pcm, rate // 50 * 2))
    assert len(out) >= 4000  # one byte per 8 kHz sample


def test_pcm16_rate_to_rate_and_codec_to_codec() -> None:
    pcm = speechlike(24000, 0.2, 5)
    assert chunked(rn.Transcoder("pcm16", 24000, "pcm16", 16000), pcm, 960) == chunked(
        rn.Resampler(24000, 16000), pcm, 960
    )
    ulaw = rn.ulaw_encode(speechlike(8000, 0.2, 6))
    assert rn.Transcoder("pcmu", 8000, "pcma", 8000).process(ulaw) == rn.alaw_encode(rn.ulaw_decode(ulaw))
    assert rn.Transcoder("pcmu", 8000, "pcm16", 8000).process(ulaw) == rn.ulaw_decode(ulaw)


@settings(max_examples=60, deadline=None)
@given(
    path=st.sampled_from(
        [("pcmu", 8000, "pcm16", 24000), ("pcm16", 24000, "pcma", 8000), ("pcma", 8000, "pcm16", 48000)]
    ),
    chunks=st.lists(st.integers(0, 500), max_size=10),
)
def test_any_chunking_gives_identical_output(path: tuple[str, int, str, int], chunks: list[int]) -> None:
    src, src_rate = path[0], path[1]
    data = speechlike(src_rate, 0.05, 9)
    if src != "pcm16":
        data = ENCODE[src](data)
    sample = 2 if src == "pcm16" else 1
    whole = rn.Transcoder(*path)
    expected = whole.process(data) + whole.flush()
    tc, out, pos = rn.Transcoder(*path), bytearray(), 0
    for n in chunks:
        out += tc.process(data[pos : pos + n * sample])
        pos += n * sample
    assert bytes(out + tc.process(data[pos:]) + tc.flush()) == expected


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="pcmu is always 8000 Hz"):
        rn.Transcoder("pcmu", 16000, "pcm16", 24000)
    with pytest.raises(ValueError, match="dst_codec must be one of"):
        rn.Transcoder("pcm16", 24000, "opus", 48000)
    with pytest.raises(ValueError, match="quality must be one of"):
        rn.Transcoder("pcm16", 24000, "pcmu", 8000, "max")
    tc = rn.Transcoder("pcm16", 24000, "pcmu", 8000)
    with pytest.raises(ValueError, match="even number of bytes, got 3"):
        tc.process(b"abc")
    assert len(tc.process(bytes(960))) == 160  # the stream goes on after a bad chunk
    tc.reset()
    assert tc.flush() == b""
