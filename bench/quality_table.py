"""Latency and quality of streaming resamplers on 20 ms chunks: rtlayer_native beside soxr.

``python -m bench.quality_table`` prints the Markdown table kept in bench/README.md: for the pairs
8k<->24k, 16k<->24k and 24k<->48k, rtlayer's two qualities and soxr's QQ/LQ/HQ/VHQ
``ResampleStream`` (int16, what pipecat and livekit run), each fed 20 ms chunks:

- delay (ms), per direction: the delay inside the signal (an impulse's peak in the concatenated
  output, against its input time) plus what the stream holds back (input fed minus output returned,
  after each chunk: the mean, and the worst in brackets). This is what a caller waits.
- SINAD (dB): high -> low -> high round trip of a -6 dBFS 997 Hz tone, int16 in and out.
- stopband (dB): the worst attenuation of tones whose alias (down) or image (up) lies above 1.25x
  the lower rate's Nyquist frequency, int16 in and out (a full-scale tone; about 100 dB is the floor
  that int16 output can show).
- filter stopband (dB, rtlayer only): the same bound for the designed filters themselves, from
  their float64 frequency response, free of the int16 floor.
- passband (dB): the gain at 0.85x that Nyquist frequency, the worse of both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import soxr

import rtlayer_native as rn

CHUNK_MS = 20
PAIRS = [(24000, 8000), (24000, 16000), (48000, 24000)]  # (high, low)


class Stream(Protocol):
    def process(self, pcm16: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class SoxrStream:
    """soxr.ResampleStream behind the same two calls as rtlayer_native.Resampler."""

    def __init__(self, in_rate: int, out_rate: int, quality: str) -> None:
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    def process(self, pcm16: bytes) -> bytes:
        out: bytes = self._stream.resample_chunk(np.frombuffer(pcm16, np.int16)).tobytes()
        return out

    def flush(self) -> bytes:
        out: bytes = self._stream.resample_chunk(np.zeros(0, np.int16), last=True).tobytes()
        return out


Factory = Callable[[int, int], Stream]

RESAMPLERS: dict[str, Factory] = {
    "rtlayer conversational": lambda i, o: rn.Resampler(i, o, quality="conversational"),
    "rtlayer high": lambda i, o: rn.Resampler(i, o, quality="high"),
    **{f"soxr {q}": (lambda i, o, q=q: SoxrStream(i, o, q)) for q in ("QQ", "LQ", "HQ", "VHQ")},  # type: ignore[misc]
}


def tone(rate: int, seconds: float, freq: float, dbfs: float) -> bytes:
    n = np.arange(int(rate * seconds))
    y = np.round(32767 * 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * n / rate))
    out: bytes = y.astype("<i2").tobytes()
    return out


def stream_chunks(stream: Stream, pcm16: bytes, in_rate: int, out_rate: int) -> tuple[bytes, list[float]]:
    """Feed 20 ms chunks, then flush: (all output, hold-back in ms after each chunk)."""
    step = in_rate * CHUNK_MS // 1000 * 2
    out, held = bytearray(), []
    for i in range(0, len(pcm16), step):
        out += stream.process(pcm16[i : i + step])
        fed = min(i + step, len(pcm16)) // 2
        held.append((fed / in_rate - len(out) // 2 / out_rate) * 1000)
    return bytes(out) + stream.flush(), held


def delay_ms(factory: Factory, in_rate: int, out_rate: int) -> tuple[float, float]:
    """(mean, worst) delay a caller sees: signal delay plus what the stream holds back.

    The probe is a click band-limited to 0.4x the lower Nyquist frequency (a Hann-windowed sinc),
    so that every resampler passes it whole, even one without an anti-alias filter; its peak is
    located to a fraction of a sample by a parabola through the three largest samples.
    """
    fc = 0.4 * min(in_rate, out_rate) / 2
    at = in_rate // 2 + in_rate // 137  # mid-way, not on a chunk boundary
    half = in_rate // 200  # +-5 ms
    t = np.arange(-half, half + 1) / in_rate
    pulse = np.sinc(2 * fc * t) * np.hanning(t.size)
    x = np.zeros(in_rate)
    x[at - half : at + half + 1] = 30000 * pulse
    out, held = stream_chunks(
        factory(in_rate, out_rate), np.round(x).astype("<i2").tobytes(), in_rate, out_rate
    )
    y = np.frombuffer(out, "<i2").astype(float)
    k = int(np.argmax(y))
    frac = 0.0
    if 0 < k < y.size - 1:
        den = y[k - 1] - 2 * y[k] + y[k + 1]
        frac = 0.5 * (y[k - 1] - y[k + 1]) / den if den else 0.0
    inside = ((k + frac) / out_rate - at / in_rate) * 1000
    steady = held[5:-1]  # past the start-up
    return inside + float(np.mean(steady)), inside + float(np.max(steady))


def sinad_db(factory: Factory, high: int, low: int) -> float:
    mid, _ = stream_chunks(factory(high, low), tone(high, 1.0, 997, -6), high, low)
    back, _ = stream_chunks(factory(low, high), mid, low, high)
    y = np.frombuffer(back, "<i2").astype(float)[high // 10 : high - high // 10]
    n = np.arange(y.size)
    basis = np.stack(
        [np.sin(2 * np.pi * 997 * n / high), np.cos(2 * np.pi * 997 * n / high), np.ones(y.size)], 1
    )
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    residual = y - basis @ coef
    return 10 * math.log10(((coef[0] ** 2 + coef[1] ** 2) / 2) / np.mean(residual**2))


def _spurs(factory: Factory, in_rate: int, out_rate: int, freq: float) -> float:
    """Attenuation (dB) of everything but the tone itself, for a -1 dBFS input tone."""
    out, _ = stream_chunks(factory(in_rate, out_rate), tone(in_rate, 0.7, freq, -1), in_rate, out_rate)
    y = np.frombuffer(out, "<i2").astype(float)[out_rate // 10 : out_rate // 10 + out_rate // 2]
    w = np.kaiser(y.size, 20.0)
    amp = 2 * np.abs(np.fft.rfft(y * w)) / w.sum()
    f = np.fft.rfftfreq(y.size, 1 / out_rate)
    if freq < out_rate / 2:
        amp = amp[np.abs(f - freq) > 40]
    worst = float(amp.max())
    return math.inf if worst == 0 else 20 * math.log10(32767 * 10 ** (-1 / 20) / worst)


def stopband_db(factory: Factory, high: int, low: int) -> float:
    fn = low / 2
    down = (
        [float(f) for f in np.linspace(1.25 * fn, 0.98 * high / 2, 4)] if 0.98 * high / 2 > 1.25 * fn else []
    )
    up = [float(f) for f in np.linspace(0.05 * fn, 0.75 * fn, 4)]
    return min([_spurs(factory, high, low, f) for f in down] + [_spurs(factory, low, high, f) for f in up])


def passband_db(factory: Factory, high: int, low: int) -> float:
    freq = 0.85 * low / 2
    gains = []
    for a, b in ((high, low), (low, high)):
        out, _ = stream_chunks(factory(a, b), tone(a, 0.5, freq, -6), a, b)
        y = np.frombuffer(out, "<i2").astype(float)[b // 10 : b // 10 + b // 4]
        n = np.arange(y.size)
        basis = np.stack([np.sin(2 * np.pi * freq * n / b), np.cos(2 * np.pi * freq * n / b)], 1)
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        gains.append(20 * math.log10(math.hypot(*coef) / (32767 * 10 ** (-6 / 20))))
    return max(gains, key=abs)


def filter_stopband_db(name: str, high: int, low: int) -> float | None:
    """rtlayer only: the worst attenuation above 1.25 fn of the designed filters themselves (float64
    response of the prototype, both directions), below what int16 output can show."""
    if not name.startswith("rtlayer"):
        return None
    quality = name.split()[1]
    worst = math.inf
    for a, b in ((high, low), (low, high)):
        L, _, n_taps, table = rn.Resampler(a, b, quality=quality)._prototype()
        branches = np.frombuffer(table, "<f4").astype(float).reshape(L, -1)
        h = np.zeros(branches.size)
        for p in range(L):
            h[p + np.arange(branches.shape[1]) * L] = branches[p, ::-1]
        resp = np.abs(np.fft.rfft(h[:n_taps] / L, 1 << 18))
        f = np.linspace(0, L * a / 2, resp.size)
        worst = min(worst, float(-20 * np.log10(resp[f >= 1.25 * low / 2].max())))
    return worst


@dataclass(frozen=True, slots=True)
class Row:
    pair: str
    resampler: str
    delay_down: tuple[float, float]
    delay_up: tuple[float, float]
    sinad: float
    stopband: float
    passband: float
    filter_stopband: float | None


def measure(name: str, high: int, low: int) -> Row:
    factory = RESAMPLERS[name]
    return Row(
        pair=f"{high // 1000}k <-> {low // 1000}k",
        resampler=name,
        delay_down=delay_ms(factory, high, low),
        delay_up=delay_ms(factory, low, high),
        sinad=sinad_db(factory, high, low),
        stopband=stopband_db(factory, high, low),
        passband=passband_db(factory, high, low),
        filter_stopband=filter_stopband_db(name, high, low),
    )


def markdown(rows: list[Row]) -> str:
    lines = [
        "| pair | resampler | delay down, ms: mean (worst) | delay up, ms: mean (worst) | round-trip SINAD, dB "
        "| stopband, dB | filter stopband, dB | passband at 0.85 fn, dB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        stop = ">= 120" if r.stopband > 120 else f"{r.stopband:.1f}"
        lines.append(
            f"| {r.pair} | {r.resampler} | {r.delay_down[0]:.2f} ({r.delay_down[1]:.2f}) "
            f"| {r.delay_up[0]:.2f} ({r.delay_up[1]:.2f}) | {r.sinad:.1f} | {stop} "
            f"| {'' if r.filter_stopband is None else f'{r.filter_stopband:.1f}'} | {r.passband:+.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    rows = [measure(name, high, low) for high, low in PAIRS for name in RESAMPLERS]
    print(markdown(rows))


if __name__ == "__main__":
    main()
