"""The streaming Resampler: chunking invariance, flush/reset/latency, and its quality figures.

The figures of issue 2 are deterministic, so they are tested here: added delay measured with an
impulse (<= 2.5 ms conversational, <= 10 ms high), SINAD of a 24k->16k->24k round trip in 20 ms
chunks of a -6 dBFS 997 Hz tone (>= 80 dB / >= 84 dB), stopband above 1.25x the lower rate's
Nyquist (>= 75 dB / >= 100 dB) and passband flatness up to 0.85x of it (+-1 dB).

``ReferenceResampler`` is the slow, obvious numpy version of the same filter (upsample by L with
zeros, convolve with the prototype, keep every M-th sample, in float64): the kernel-level tests run
against both, so a failure says whether the design or the Cython kernel is at fault.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import pytest
from helpers import tone
from hypothesis import given, settings
from hypothesis import strategies as st

import rtlayer_native as rn

RATES = (8000, 16000, 24000, 44100, 48000)
PAIRS = [(a, b) for a in RATES for b in RATES if a != b]
QUALITY_LIMITS = {  # quality: (max delay ms, min round-trip SINAD dB, min stopband dB)
    "conversational": (2.5, 80.0, 75.0),
    "high": (10.0, 84.0, 100.0),
}


class Stream(Protocol):
    @property
    def latency_ms(self) -> float: ...

    def process(self, pcm16: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class ReferenceResampler:
    """The native filter's prototype, applied the obvious way in float64 over all input so far."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "conversational") -> None:
        native = rn.Resampler(in_rate, out_rate, quality=quality)
        self.L, self.M, n_taps, table = native._prototype()
        branches = np.frombuffer(table, "<f4").astype(np.float64).reshape(self.L, -1)
        k = branches.shape[1]
        h = np.zeros(self.L * k)
        for p in range(self.L):  # undo the branch layout: branch p, tap m is h[p + m * L]
            h[p + np.arange(k) * self.L] = branches[p, ::-1]
        self.h = h[:n_taps]
        self.latency_ms = native.latency_ms
        self.x = np.zeros(0)
        self.done = 0

    def _outputs(self, count: int) -> bytes:
        n = np.arange(self.done, self.done + count)
        t = n * self.M  # each output's time at the prototype rate
        y = np.zeros(count)
        first = np.maximum(0, -((self.h.size - 1 - t) // self.L))  # oldest input under the filter
        for j in range(self.h.size // self.L + 2):
            i = first + j
            k = t - i * self.L
            ok = (k >= 0) & (k < self.h.size) & (i < self.x.size)
            y[ok] += self.h[k[ok]] * self.x[i[ok]]
        self.done += count
        y = np.where(y >= 0, np.floor(y + 0.5), np.ceil(y - 0.5))
        return np.clip(y, -32768, 32767).astype("<i2").tobytes()

    def process(self, pcm16: bytes) -> bytes:
        self.x = np.concatenate([self.x, np.frombuffer(pcm16, "<i2")])
        return self._outputs(-(-self.x.size * self.L // self.M) - self.done)

    def flush(self) -> bytes:
        delay = (self.h.size - 1) // 2
        out = self._outputs(-(-(self.x.size * self.L + delay) // self.M) - self.done)
        self.x, self.done = np.zeros(0), 0
        return out


def make(impl: str, in_rate: int, out_rate: int, quality: str = "conversational") -> Stream:
    if impl == "native":
        return rn.Resampler(in_rate, out_rate, quality=quality)
    return ReferenceResampler(in_rate, out_rate, quality)


# --- measurements --------------------------------------------------------------------------------
def dbfs_tone(rate: int, seconds: float, freq: float, dbfs: float) -> bytes:
    return tone(seconds * 1000, rate=rate, freq=freq, amplitude=10 ** (dbfs / 20))


def run_chunked(stream: Stream, pcm16: bytes, rate: int, chunk_ms: int = 20) -> bytes:
    step = rate * chunk_ms // 1000 * 2
    return b"".join(stream.process(pcm16[i : i + step]) for i in range(0, len(pcm16), step))


def fit_tone(y: np.ndarray, rate: int, freq: float) -> tuple[float, np.ndarray]:
    """Least-squares fit of a sine at ``freq`` plus DC: (amplitude, residual)."""
    n = np.arange(y.size)
    basis = np.stack(
        [np.sin(2 * np.pi * freq * n / rate), np.cos(2 * np.pi * freq * n / rate), np.ones(y.size)], 1
    )
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(coef[0], coef[1])), y - basis @ coef


def sinad_db(y: np.ndarray, rate: int, freq: float) -> float:
    amp, residual = fit_tone(y, rate, freq)
    return 10 * math.log10((amp**2 / 2) / np.mean(residual**2))


def spectrum(y: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectrum (a sine of amplitude A reads A), Kaiser window (sidelobes < -140 dB)."""
    w = np.kaiser(y.size, 20.0)
    amp = 2 * np.abs(np.fft.rfft(y * w)) / w.sum()
    return np.fft.rfftfreq(y.size, 1 / rate), amp


def stopband_db(stream: Stream, in_rate: int, out_rate: int, freq: float) -> float:
    """How far below a -1 dBFS input tone every spurious output component stays, in dB.

    Downsampling: the tone is above 1.25 fn, so all output is alias. Upsampling: the tone is below
    0.75 fn, so its images lie above 1.25 fn; everything but the tone itself is spurious.
    """
    amp_in = 32767 * 10 ** (-1 / 20)
    y = np.frombuffer(run_chunked(stream, dbfs_tone(in_rate, 0.6, freq, -1), in_rate), "<i2").astype(float)
    y = y[out_rate // 20 : out_rate // 20 + out_rate // 2]  # 0.5 s, past the start-up transient
    f, amp = spectrum(y, out_rate)
    if freq < out_rate / 2:
        amp = amp[np.abs(f - freq) > 40]  # the Kaiser main lobe is ~ +-30 Hz wide here
    worst = float(amp.max())
    return math.inf if worst == 0 else 20 * math.log10(amp_in / worst)


def stopband_test_tones(in_rate: int, out_rate: int) -> list[float]:
    fn = min(in_rate, out_rate) / 2
    if out_rate < in_rate:
        # 48k->44.1k has no input frequency above 1.25 fn: the prototype test covers it.
        top = 0.98 * in_rate / 2
        return [float(f) for f in np.linspace(1.25 * fn, top, 5)] if top > 1.25 * fn else []
    return [float(f) for f in np.linspace(0.04 * fn, 0.75 * fn, 5)]


def impulse_delay_ms(stream: Stream, in_rate: int, out_rate: int) -> float:
    x = np.zeros(in_rate // 10, "<i2")
    at = in_rate // 20
    x[at] = 20000
    y = np.frombuffer(stream.process(x.tobytes()) + stream.flush(), "<i2")
    return (int(np.argmax(np.abs(y))) / out_rate - at / in_rate) * 1000


# --- streaming behaviour -------------------------------------------------------------------------
def noise(rate: int, seconds: float, seed: int, channels: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-20000, 20000, int(rate * seconds) * channels).astype("<i2").tobytes()


@settings(max_examples=120, deadline=None)
@given(
    pair=st.sampled_from([*PAIRS, (16000, 16000)]),
    quality=st.sampled_from(rn.QUALITIES),
    channels=st.sampled_from([1, 2]),
    chunks=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=12),
    seed=st.integers(0, 2**16),
)
def test_any_chunking_gives_bit_identical_output(
    pair: tuple[int, int], quality: str, channels: int, chunks: list[int], seed: int
) -> None:
    in_rate, out_rate = pair
    data = noise(in_rate, 0.03, seed, channels)
    whole = rn.Resampler(in_rate, out_rate, channels, quality)
    expected = whole.process(data) + whole.flush()
    pieces = rn.Resampler(in_rate, out_rate, channels, quality)
    out, pos, frame = bytearray(), 0, 2 * channels
    for n in chunks:
        out += pieces.process(data[pos : pos + n * frame])
        pos += n * frame
    out += pieces.process(data[pos:]) + pieces.flush()
    assert bytes(out) == expected


@settings(max_examples=80, deadline=None)
@given(
    channels=st.sampled_from([1, 2]),
    sizes=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=10),
)
def test_bad_lengths_raise_and_leave_the_stream_as_it_was(channels: int, sizes: list[int]) -> None:
    frame = 2 * channels
    good, checked = rn.Resampler(44100, 24000, channels), rn.Resampler(44100, 24000, channels)
    data = noise(44100, 0.05, 5, channels)
    pos = 0
    for n in sizes:
        chunk = data[pos : pos + n]
        if len(chunk) % frame:
            with pytest.raises(ValueError, match=f"got {len(chunk)}"):
                checked.process(chunk)
            continue  # the bad chunk is dropped whole; the stream goes on
        pos += n
        assert checked.process(chunk) == good.process(chunk)
    assert checked.flush() == good.flush()


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_output_length_follows_the_input_and_flush_drains_the_delay(in_rate: int, out_rate: int) -> None:
    r = rn.Resampler(in_rate, out_rate)
    total = 0
    for frames in (1, 37, in_rate // 50, 3):
        total += frames
        r.process(bytes(2 * frames))
    produced = sum(len(r.process(b"")) for _ in range(2))
    assert produced == 0
    r2 = rn.Resampler(in_rate, out_rate)
    out = r2.process(bytes(2 * total))
    assert len(out) // 2 == math.ceil(total * out_rate / in_rate)
    tail = r2.flush()
    delay_samples = r2.latency_ms * out_rate / 1000
    assert len(tail) // 2 == pytest.approx(delay_samples, abs=1.5)
    assert r2.flush() == b""  # flush leaves a fresh object


def test_flush_and_reset_return_to_a_fresh_state() -> None:
    data = noise(24000, 0.05, 7)
    fresh = rn.Resampler(24000, 16000)
    expected = fresh.process(data)
    r = rn.Resampler(24000, 16000)
    r.process(noise(24000, 0.02, 8))
    r.reset()
    assert r.process(data) == expected
    r.flush()
    assert r.process(data) == expected


def test_stereo_is_two_independent_channels() -> None:
    left, right = noise(44100, 0.05, 1), noise(44100, 0.05, 2)
    stereo = np.stack([np.frombuffer(left, "<i2"), np.frombuffer(right, "<i2")], 1).tobytes()
    r = rn.Resampler(44100, 16000, channels=2)
    out = np.frombuffer(r.process(stereo) + r.flush(), "<i2").reshape(-1, 2)
    for ch, mono in enumerate((left, right)):
        m = rn.Resampler(44100, 16000)
        assert out[:, ch].tobytes() == m.process(mono) + m.flush()


def test_equal_rates_pass_through_unchanged() -> None:
    data = noise(24000, 0.02, 3)
    r = rn.Resampler(24000, 24000)
    assert r.process(data) == data
    assert r.latency_ms == 0.0
    assert r.flush() == b""


@pytest.mark.parametrize(
    ("in_rate", "out_rate"), [(8000, 24000), (24000, 16000), (48000, 44100), (44100, 8000)]
)
def test_native_kernel_matches_the_float64_reference(in_rate: int, out_rate: int) -> None:
    data = noise(in_rate, 0.1, 11)
    native, ref = make("native", in_rate, out_rate), make("reference", in_rate, out_rate)
    a = np.frombuffer(run_chunked(native, data, in_rate) + native.flush(), "<i2").astype(int)
    b = np.frombuffer(run_chunked(ref, data, in_rate) + ref.flush(), "<i2").astype(int)
    assert a.size == b.size
    # float32 accumulation vs float64: at most one LSB apart, and rarely.
    assert np.abs(a - b).max() <= 1
    assert np.count_nonzero(a - b) <= a.size // 100


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unsupported input rate 11025"):
        rn.Resampler(11025, 16000)
    with pytest.raises(ValueError, match="unsupported output rate"):
        rn.Resampler(16000, 96000)
    with pytest.raises(ValueError, match="channels must be"):
        rn.Resampler(16000, 8000, channels=0)
    with pytest.raises(ValueError, match="quality must be one of"):
        rn.Resampler(16000, 8000, quality="best")
    r = rn.Resampler(16000, 8000, channels=2)
    with pytest.raises(ValueError, match="PCM16 data must have an even number of bytes, got 5"):
        r.process(b"\x00" * 5)
    with pytest.raises(ValueError, match="multiple of 4 bytes, got 6"):
        r.process(b"\x00" * 6)
    assert r.process(b"\x00" * 8) == b"\x00" * 4  # the session goes on after a bad chunk


# --- quality figures -----------------------------------------------------------------------------
@pytest.mark.parametrize("quality", rn.QUALITIES)
@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_delay_measured_with_an_impulse(in_rate: int, out_rate: int, quality: str) -> None:
    r = rn.Resampler(in_rate, out_rate, quality=quality)
    measured = impulse_delay_ms(r, in_rate, out_rate)
    assert measured <= QUALITY_LIMITS[quality][0]
    assert measured == pytest.approx(r.latency_ms, abs=1000 / out_rate)


@pytest.mark.parametrize("impl", ["native", "reference"])
@pytest.mark.parametrize("quality", rn.QUALITIES)
def test_round_trip_24k_16k_24k_sinad(impl: str, quality: str) -> None:
    down, up = make(impl, 24000, 16000, quality), make(impl, 16000, 24000, quality)
    mid = run_chunked(down, dbfs_tone(24000, 1.0, 997, -6), 24000)
    y = np.frombuffer(run_chunked(up, mid, 16000), "<i2").astype(float)[2400:-2400]
    assert sinad_db(y, 24000, 997) >= QUALITY_LIMITS[quality][1]


# 48000 <-> 44100 has no input frequency above 1.25x the lower Nyquist: nothing to attenuate there.
@pytest.mark.parametrize("quality", rn.QUALITIES)
@pytest.mark.parametrize(("in_rate", "out_rate"), [p for p in PAIRS if stopband_test_tones(*p)])
def test_stopband_above_one_and_a_quarter_nyquist(in_rate: int, out_rate: int, quality: str) -> None:
    limit = QUALITY_LIMITS[quality][2]
    tones = stopband_test_tones(in_rate, out_rate)
    for freq in tones:
        att = stopband_db(rn.Resampler(in_rate, out_rate, quality=quality), in_rate, out_rate, freq)
        assert att >= limit, f"{freq:.0f} Hz: {att:.1f} dB"


@pytest.mark.parametrize("impl", ["native", "reference"])
@pytest.mark.parametrize(("in_rate", "out_rate"), [(24000, 8000), (8000, 24000), (44100, 48000)])
def test_stopband_against_the_reference(impl: str, in_rate: int, out_rate: int) -> None:
    for freq in stopband_test_tones(in_rate, out_rate)[::2]:
        att = stopband_db(make(impl, in_rate, out_rate), in_rate, out_rate, freq)
        assert att >= QUALITY_LIMITS["conversational"][2]


@pytest.mark.parametrize("quality", rn.QUALITIES)
@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_prototype_filter_response(in_rate: int, out_rate: int, quality: str) -> None:
    # The designed filter itself, in float64: below the int16 floor the tone tests cannot see.
    ref = ReferenceResampler(in_rate, out_rate, quality)
    fs = ref.L * in_rate
    fn = min(in_rate, out_rate) / 2
    resp = np.abs(np.fft.rfft(ref.h, 1 << 18 if ref.L < 100 else 1 << 22)) / ref.L
    f = np.linspace(0, fs / 2, resp.size)
    assert 20 * np.log10(resp[f >= 1.25 * fn].max()) <= -QUALITY_LIMITS[quality][2]
    passband = 20 * np.log10(resp[f <= 0.85 * fn])
    assert passband.max() <= 1.0 and passband.min() >= -1.0


@pytest.mark.parametrize("quality", rn.QUALITIES)
@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_passband_within_one_db_up_to_085_nyquist(in_rate: int, out_rate: int, quality: str) -> None:
    fn = min(in_rate, out_rate) / 2
    for freq in np.linspace(0.02 * fn, 0.85 * fn, 6):
        r = rn.Resampler(in_rate, out_rate, quality=quality)
        y = np.frombuffer(run_chunked(r, dbfs_tone(in_rate, 0.2, freq, -6), in_rate), "<i2").astype(float)
        amp, _ = fit_tone(y[out_rate // 50 : -out_rate // 50], out_rate, freq)
        gain_db = 20 * math.log10(amp / (32767 * 10 ** (-6 / 20)))
        assert abs(gain_db) <= 1.0, f"{freq:.0f} Hz: {gain_db:+.2f} dB"
