"""``python -m rtlayer_native``: a short self-check of the native audio core that says what it verified.

It needs nothing but the extension itself: G.711 against audioop on every code and every linear
value (the stdlib module where it still exists, before Python 3.13; everywhere, the SHA-256 of
audioop's tables recorded from CPython 3.11), a 24k->16k->24k round trip in 20 ms chunks with its
SINAD, each stage's delay measured with an impulse, and chunking invariance.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
import time
import warnings
from array import array

import rtlayer_native as rn

# SHA-256 of audioop's G.711 tables (CPython 3.11, width 2): ulaw2lin and alaw2lin of the 256 codes,
# lin2ulaw and lin2alaw of the 65,536 linear values from -32768 up.
AUDIOOP_SHA256 = {
    "ulaw_decode": "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827",
    "alaw_decode": "e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174",
    "ulaw_encode": "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a",
    "alaw_encode": "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b",
}


def _tone(rate: int, seconds: float, freq: float, dbfs: float) -> bytes:
    amp = 32767.0 * 10 ** (dbfs / 20)
    n = int(rate * seconds)
    return array("h", (round(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))).tobytes()


def sinad_db(pcm16: bytes, rate: int, freq: float) -> float:
    """SINAD of a pure tone: the best-fit sine (plus DC) against everything else, in dB."""
    y = array("h", pcm16)
    w = 2 * math.pi * freq / rate
    # Least squares on [sin, cos, 1]; the tone spans whole cycles often enough that the
    # normal equations are well conditioned.
    s = [math.sin(w * i) for i in range(len(y))]
    c = [math.cos(w * i) for i in range(len(y))]
    rows = [s, c, [1.0] * len(y)]
    ata = [[math.fsum(a * b for a, b in zip(r1, r2, strict=True)) for r2 in rows] for r1 in rows]
    aty = [math.fsum(a * b for a, b in zip(r, y, strict=True)) for r in rows]
    coef = _solve3(ata, aty)
    fit = [coef[0] * a + coef[1] * b + coef[2] for a, b in zip(s, c, strict=True)]
    signal = math.fsum(f * f for f in fit)
    noise = math.fsum((v - f) ** 2 for v, f in zip(y, fit, strict=True))
    return 10 * math.log10(signal / noise)


def _solve3(a: list[list[float]], b: list[float]) -> list[float]:
    m = [[*row, v] for row, v in zip(a, b, strict=True)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(3):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][3] / m[i][i] for i in range(3)]


def impulse_delay_ms(in_rate: int, out_rate: int, quality: str) -> float:
    """Delay a Resampler adds, measured as the position of an impulse's peak at its output."""
    r = rn.Resampler(in_rate, out_rate, quality=quality)
    n = in_rate // 10
    at = n // 2
    x = array("h", [0] * n)
    x[at] = 20000
    y = array("h", r.process(x.tobytes()) + r.flush())
    peak_at = max(range(len(y)), key=lambda i: abs(y[i]))
    return (peak_at / out_rate - at / in_rate) * 1000


def main() -> int:
    t0 = time.perf_counter()
    print("rtlayer_native self-check")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # Python >= 3.13
            audioop = None  # type: ignore[assignment]
    codes = bytes(range(256))
    linear = struct.pack("<65536h", *range(-32768, 32768))
    native = {
        "ulaw_decode": rn.ulaw_decode(codes),
        "alaw_decode": rn.alaw_decode(codes),
        "ulaw_encode": rn.ulaw_encode(linear),
        "alaw_encode": rn.alaw_encode(linear),
    }
    for name, table in native.items():
        assert hashlib.sha256(table).hexdigest() == AUDIOOP_SHA256[name], f"G.711 {name} differs from audioop"
    if audioop is not None:
        assert native["ulaw_decode"] == audioop.ulaw2lin(codes, 2)
        assert native["alaw_decode"] == audioop.alaw2lin(codes, 2)
        assert native["ulaw_encode"] == audioop.lin2ulaw(linear, 2)
        assert native["alaw_encode"] == audioop.lin2alaw(linear, 2)
        against = "the stdlib's audioop and its recorded tables"
    else:
        against = "audioop's tables recorded from CPython 3.11 (no audioop in this Python's stdlib)"
    print(
        "  G.711 mu-law/A-law: bit-exact with audioop on all 256 codes and all 65,536 linear values, "
        f"checked against {against}"
    )

    tone = _tone(24000, 1.0, 997.0, -6.0)
    for quality in rn.QUALITIES:
        down = rn.Resampler(24000, 16000, quality=quality)
        up = rn.Resampler(16000, 24000, quality=quality)
        out = bytearray()
        for i in range(0, len(tone), 960):  # 20 ms of 24 kHz PCM16
            out += up.process(down.process(tone[i : i + 960]))
        settled = bytes(out[2 * 2400 : -2 * 2400])  # skip 100 ms at each end
        sinad = sinad_db(settled, 24000, 997.0)
        d1 = impulse_delay_ms(24000, 16000, quality)
        d2 = impulse_delay_ms(16000, 24000, quality)
        print(
            f"  Resampler {quality:>14}: 24k->16k->24k, 20 ms chunks, -6 dBFS 997 Hz: SINAD {sinad:.1f} dB; "
            f"delay by impulse {d1:.2f} + {d2:.2f} ms (latency_ms {down.latency_ms:.2f} + {up.latency_ms:.2f})"
        )

    one = rn.Resampler(44100, 16000)
    whole = one.process(tone) + one.flush()
    pieces = rn.Resampler(44100, 16000)
    chunked = bytearray()
    for size in (1, 2, 3, 5, 7, 441, 999, 64):
        chunked += pieces.process(tone[: size * 2])
        tone = tone[size * 2 :]
    chunked += pieces.process(tone) + pieces.flush()
    assert bytes(chunked) == whole
    print("  Resampler 44.1k->16k: odd chunk sizes give output bit-identical to one call")

    tc = rn.Transcoder("pcmu", 8000, "pcm16", 24000)
    ulaw = rn.ulaw_encode(_tone(8000, 0.02, 997.0, -6.0))
    pcm = tc.process(ulaw)
    print(f"  Transcoder pcmu 8k -> pcm16 24k: 160 bytes in, {len(pcm)} bytes out, {tc.latency_ms:.2f} ms")
    print(f"ok in {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
