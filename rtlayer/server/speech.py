"""Speech for the embedded server's answers: espeak-ng when installed, else a clearly synthetic signal.

``synthesize(text, speed)`` returns PCM16 24 kHz mono. With Debian's ``espeak-ng`` on the PATH (found at run
time, never required) it is real, intelligible speech; without it, a buzz of syllable-shaped pulses that has
the level, rhythm and pitch of speech (so VAD, meters and playback behave as with speech) but is obviously
not speech. ``synthetic_speech`` is that fallback, also used directly by tests that need no synthesizer.

espeak-ng writes 22050 Hz, a rate the native resampler does not take: duplicating each sample
(``mono_to_stereo`` read back as mono) makes it 44100 Hz by sample-and-hold, whose images lie above 11 kHz, and
the 44.1 -> 24 kHz resampler's low-pass removes them. All sample work stays in rtlayer_native.
"""

from __future__ import annotations

import array
import math
import re
import shutil
import struct
import subprocess
import sys

import rtlayer_native

__all__ = ["ESPEAK_TIMEOUT_S", "espeak_path", "parse_wav", "synthesize", "synthetic_speech"]

ESPEAK_TIMEOUT_S = 10.0
_ESPEAK_WPM = 175  # espeak-ng's default rate; speed 1.0
_MAX_TEXT = 4000  # characters spoken per answer; longer text is cut (espeak time grows with it)
# Female-sounding voices of the service get espeak's female variant; the rest its default male voice.
_FEMALE = frozenset({"alloy", "coral", "sage", "shimmer", "marin", "ballad"})


def espeak_path() -> str | None:
    """Where espeak-ng (or espeak) is installed, or None."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


def parse_wav(data: bytes) -> tuple[bytes, int, int]:
    """(PCM16 frames, rate, channels) of a PCM16 WAV, tolerating the bogus sizes a streaming writer leaves."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    pos, rate, channels = 12, 0, 0
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if tag == b"fmt ":
            fmt, channels, rate = struct.unpack_from("<HHI", data, body)
            bits = struct.unpack_from("<H", data, body + 14)[0]
            if fmt != 1 or bits != 16:
                raise ValueError(f"only PCM16 WAV is supported (format {fmt}, {bits} bits)")
        elif tag == b"data":
            end = min(len(data), body + size)
            frames = data[body:end]
            return frames[: len(frames) - len(frames) % (2 * max(channels, 1))], rate, channels
        pos = body + size + (size & 1)
    raise ValueError("WAV file has no data chunk")


def _to_24k(pcm: bytes, rate: int) -> bytes:
    if rate == 22050:
        pcm, rate = rtlayer_native.mono_to_stereo(pcm), 44100  # sample-and-hold to 44.1 kHz, see module doc
    if rate == 24000:
        return pcm
    resampler = rtlayer_native.Resampler(rate, 24000)
    return resampler.process(pcm) + resampler.flush()


def synthesize(
    text: str, speed: float = 1.0, voice: str | None = None, timeout: float = ESPEAK_TIMEOUT_S
) -> bytes:
    """Speech of ``text`` as PCM16 24 kHz mono: espeak-ng if installed and working, else ``synthetic_speech``.

    Blocking (a subprocess): call it in a thread from async code.
    """
    text = text.strip()[:_MAX_TEXT]
    if not text:
        return b""
    exe = espeak_path()
    if exe is not None:
        variant = "en-us+f3" if voice in _FEMALE else "en-us"
        wpm = str(max(80, min(450, round(_ESPEAK_WPM * speed))))
        try:
            # "--" so that text starting with "-" is never read as an option.
            done = subprocess.run(
                [exe, "--stdout", "-v", variant, "-s", wpm, "--", text],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode == 0:
                pcm, rate, channels = parse_wav(done.stdout)
                if channels == 1 and pcm:
                    return _to_24k(pcm, rate)
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            print(f"rtlayer: espeak-ng failed ({exc}); using synthetic speech", file=sys.stderr)
    return synthetic_speech(text, speed)


def _period(f0: float, rate: int = 24000) -> bytes:
    """One period of a glottal-pulse-like wave (a few decaying harmonics): a wavetable, built once per pitch."""
    n = round(rate / f0)
    samples = array.array("h")
    for i in range(n):  # one table of ~200 samples per pitch, cached: not a per-signal sample loop
        t = i / n
        v = sum(math.sin(2 * math.pi * k * t) / k**1.3 for k in range(1, 12)) * math.exp(-3.0 * t)
        samples.append(round(v * 9000))
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


_PITCHES = {f0: _period(f0) for f0 in (110.0, 123.0, 138.0)}
_ENVELOPE = (0.25, 0.6, 0.9, 1.0, 1.0, 0.95, 0.8, 0.6, 0.35, 0.15)  # per 20 ms block of a syllable


def synthetic_speech(text: str, speed: float = 1.0) -> bytes:
    """A speech-shaped buzz for ``text``: one ~200 ms syllable per 3 letters, word gaps, falling intonation.

    About -20 dBFS RMS while "speaking", like espeak-ng's output; clearly not speech to a listener.
    """
    words = re.findall(r"\w+", text) or ["_"]
    block = 960 if speed <= 0 else max(96, round(960 / speed)) & ~1  # bytes of one 20 ms block at speed 1
    gap = bytes(block * 3)
    out = bytearray()
    pitches = list(_PITCHES.values())
    for w, word in enumerate(words):
        for s in range(max(1, len(word) // 3)):
            wave = pitches[(len(words) - w + s) % len(pitches)]
            tone = wave * (block * len(_ENVELOPE) // len(wave) + 1)
            for b, gain in enumerate(_ENVELOPE):
                out += rtlayer_native.apply_gain(tone[b * block : (b + 1) * block], gain)
        out += gap
    return bytes(out)
