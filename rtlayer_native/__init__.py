"""rtlayer_native: the native audio core of rtlayer (the only code that loops over samples).

All functions take any bytes-like object and return ``bytes``. PCM16 is signed 16-bit
little-endian, interleaved when multi-channel. See docs/INTERNALS.md section 1 for the contract.
"""

from __future__ import annotations

import sys

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("rtlayer_native supports little-endian hosts only")

from rtlayer_native._g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from rtlayer_native._pacer import Pacer, monotonic_ns
from rtlayer_native._pcm import (
    apply_gain,
    float32_to_pcm16,
    mono_to_stereo,
    pcm16_to_float32,
    peak,
    peak_dbfs,
    rms,
    rms_dbfs,
    stereo_to_mono,
)
from rtlayer_native._resample import QUALITIES, SUPPORTED_RATES, Resampler
from rtlayer_native._ring import AudioRing, Framer
from rtlayer_native._transcode import CODECS, Transcoder

__all__ = [
    "CODECS",
    "QUALITIES",
    "SUPPORTED_RATES",
    "AudioRing",
    "Framer",
    "Pacer",
    "Resampler",
    "Transcoder",
    "alaw_decode",
    "alaw_encode",
    "apply_gain",
    "float32_to_pcm16",
    "mono_to_stereo",
    "monotonic_ns",
    "pcm16_to_float32",
    "peak",
    "peak_dbfs",
    "rms",
    "rms_dbfs",
    "stereo_to_mono",
    "ulaw_decode",
    "ulaw_encode",
]
