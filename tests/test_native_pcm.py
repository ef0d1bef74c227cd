"""PCM16 helpers in rtlayer_native, checked against a slow, obvious numpy reference (same tests)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtlayer_native as rn


def _i16(data: bytes) -> np.ndarray:
    if len(data) % 2:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {len(data)}")
    return np.frombuffer(data, "<i2").astype(np.float64)


def _round_sat(v: np.ndarray) -> bytes:
    return np.clip(np.floor(v + 0.5), -32768, 32767).astype("<i2").tobytes()


def ref_pcm16_to_float32(pcm16: bytes) -> bytes:
    return (_i16(pcm16) / 32768).astype("<f4").tobytes()


def ref_float32_to_pcm16(f32: bytes) -> bytes:
    v = np.nan_to_num(np.frombuffer(f32, "<f4").astype(np.float64), nan=0.0)
    return _round_sat(np.clip(v, -1.0, 1.0) * 32768)


def ref_apply_gain(pcm16: bytes, gain: float) -> bytes:
    return _round_sat(_i16(pcm16) * gain)


def ref_rms(pcm16: bytes) -> float:
    x = _i16(pcm16)
    return float(np.sqrt(np.mean(x * x)) / 32768) if len(x) else 0.0


def ref_peak(pcm16: bytes) -> float:
    x = _i16(pcm16)
    return float(np.max(np.abs(x)) / 32768) if len(x) else 0.0


def _db(v: float) -> float:
    return 20 * math.log10(v) if v > 0 else -math.inf


def ref_stereo_to_mono(pcm16: bytes) -> bytes:
    x = np.frombuffer(pcm16, "<i2").astype(np.int32).reshape(-1, 2)
    return ((x[:, 0] + x[:, 1]) >> 1).astype("<i2").tobytes()


def ref_mono_to_stereo(pcm16: bytes) -> bytes:
    return np.repeat(np.frombuffer(pcm16, "<i2"), 2).tobytes()


class Pcm(NamedTuple):
    pcm16_to_float32: Callable[[bytes], bytes]
    float32_to_pcm16: Callable[[bytes], bytes]
    apply_gain: Callable[[bytes, float], bytes]
    rms: Callable[[bytes], float]
    peak: Callable[[bytes], float]
    rms_dbfs: Callable[[bytes], float]
    peak_dbfs: Callable[[bytes], float]
    stereo_to_mono: Callable[[bytes], bytes]
    mono_to_stereo: Callable[[bytes], bytes]


IMPLEMENTATIONS = {
    "native": Pcm(
        rn.pcm16_to_float32,
        rn.float32_to_pcm16,
        rn.apply_gain,
        rn.rms,
        rn.peak,
        rn.rms_dbfs,
        rn.peak_dbfs,
        rn.stereo_to_mono,
        rn.mono_to_stereo,
    ),
    "reference": Pcm(
        ref_pcm16_to_float32,
        ref_float32_to_pcm16,
        ref_apply_gain,
        ref_rms,
        ref_peak,
        lambda b: _db(ref_rms(b)),
        lambda b: _db(ref_peak(b)),
        ref_stereo_to_mono,
        ref_mono_to_stereo,
    ),
}

ALL_LINEAR = np.arange(-32768, 32768, dtype="<i2").tobytes()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def pcm(request: pytest.FixtureRequest) -> Pcm:
    return IMPLEMENTATIONS[request.param]


def test_int16_float32_round_trip_is_exact_for_every_value(pcm: Pcm) -> None:
    f32 = pcm.pcm16_to_float32(ALL_LINEAR)
    assert np.frombuffer(f32, "<f4")[[0, 32768, -1]].tolist() == [-1.0, 0.0, 32767 / 32768]
    assert pcm.float32_to_pcm16(f32) == ALL_LINEAR


def test_float32_is_clipped_to_minus_one_one_and_nan_is_silence(pcm: Pcm) -> None:
    f32 = np.array([1.0, 1.5, -1.0, -7.0, 0.5, np.nan, 1e-6, -0.25], "<f4").tobytes()
    assert np.frombuffer(pcm.float32_to_pcm16(f32), "<i2").tolist() == [
        32767,
        32767,
        -32768,
        -32768,
        16384,
        0,
        0,
        -8192,
    ]


def test_gain_saturates_instead_of_wrapping(pcm: Pcm) -> None:
    x = array("h", [1000, -1000, 20000, -20000, 3]).tobytes()
    assert array("h", pcm.apply_gain(x, 2.0)).tolist() == [2000, -2000, 32767, -32768, 6]
    assert array("h", pcm.apply_gain(x, 0.5)).tolist() == [500, -500, 10000, -10000, 2]
    assert pcm.apply_gain(ALL_LINEAR, 1.0) == ALL_LINEAR


def test_levels_of_known_signals(pcm: Pcm) -> None:
    square = array("h", [16384, -16384] * 100).tobytes()
    assert pcm.rms(square) == pytest.approx(0.5)
    assert pcm.peak(square) == pytest.approx(0.5)
    assert pcm.rms_dbfs(square) == pytest.approx(-6.0206, abs=1e-3)
    assert pcm.peak_dbfs(array("h", [0, -32768]).tobytes()) == 0.0
    sine = np.round(16384 * np.sin(np.arange(48000) * 2 * np.pi * 997 / 48000)).astype("<i2").tobytes()
    assert pcm.rms_dbfs(sine) == pytest.approx(-6.0206 - 3.0103, abs=0.01)


def test_silence_and_empty_are_minus_infinity_dbfs(pcm: Pcm) -> None:
    for data in (b"", bytes(320)):
        assert pcm.rms(data) == 0.0
        assert pcm.peak(data) == 0.0
        assert pcm.rms_dbfs(data) == -math.inf
        assert pcm.peak_dbfs(data) == -math.inf


def test_stereo_mono(pcm: Pcm) -> None:
    stereo = array("h", [100, 300, -5, -6, 32767, 32767, -32768, -32768]).tobytes()
    assert array("h", pcm.stereo_to_mono(stereo)).tolist() == [200, -6, 32767, -32768]
    mono = array("h", [1, -2, 3]).tobytes()
    assert array("h", pcm.mono_to_stereo(mono)).tolist() == [1, 1, -2, -2, 3, 3]
    assert pcm.stereo_to_mono(pcm.mono_to_stereo(ALL_LINEAR)) == ALL_LINEAR


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.floats(min_value=-8, max_value=8))
def test_native_equals_reference_on_random_input(data: bytes, gain: float) -> None:
    native, ref = IMPLEMENTATIONS["native"], IMPLEMENTATIONS["reference"]
    if len(data) % 2:
        message = f"even number of bytes, got {len(data)}"
        for fn in (rn.rms, rn.peak, rn.rms_dbfs, rn.peak_dbfs, rn.pcm16_to_float32, rn.stereo_to_mono):
            with pytest.raises(ValueError, match=message):
                fn(data)
        with pytest.raises(ValueError, match=message):
            rn.apply_gain(data, gain)
        return
    assert native.apply_gain(data, gain) == ref.apply_gain(data, gain)
    assert native.pcm16_to_float32(data) == ref.pcm16_to_float32(data)
    assert native.rms(data) == pytest.approx(ref.rms(data), rel=1e-12)
    assert native.peak(data) == ref.peak(data)
    assert native.mono_to_stereo(data) == ref.mono_to_stereo(data)
    if len(data) % 4 == 0:
        assert native.stereo_to_mono(data) == ref.stereo_to_mono(data)
    else:
        with pytest.raises(ValueError, match="multiple of 4 bytes"):
            rn.stereo_to_mono(data)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="multiple of 4 bytes"):
        rn.float32_to_pcm16(b"\x00" * 6)
    with pytest.raises(ValueError, match="NaN"):
        rn.apply_gain(b"\x00\x00", math.nan)
    with pytest.raises(TypeError):
        rn.rms(None)  # type: ignore[arg-type]
