"""rtlayer_native: the native audio core of rtlayer (the only code that loops over samples).

All functions take any bytes-like object and return ``bytes``. PCM16 is signed 16-bit
little-endian, interleaved when multi-channel. See docs/INTERNALS.md section 1 for the contract.

Threads and the GIL: the kernels release the GIL only for calls with enough work to pay for it, so that
threads (one per call or session, each with its own ``Resampler``/``Transcoder``) run in parallel on large
buffers while a 20 ms frame, done in a few microseconds, never pays two thread-state switches:

- G.711 encode/decode: buffers of at least 4096 samples;
- ``Resampler.process`` and ``Transcoder.process``: calls of at least 20,000 filter multiply-adds (a 20 ms
  frame at the conversational quality is about 10,000, and keeps it);
- the PCM helpers (``apply_gain``, ``rms``, ``pcm16_to_float32``, ...): every call.

``AudioRing`` and ``Framer`` hold the GIL (they copy a few bytes), which also makes one ring safe to share
between threads. ``tests/test_native_stress.py`` proves the release from several threads on large buffers,
against a call that holds it (``bytes.translate``) as the control.

Misuse from Python never crashes the process. ``Resampler`` and ``Transcoder`` are streams: a call that
overlaps another on the same object (another thread, or a buffer exporter calling back) is refused with
``RuntimeError`` and changes nothing; refusing rather than waiting, because two threads feeding one stream
interleave its audio, a bug to report rather than hide. An object whose ``__init__`` did not run
(``Cls.__new__(Cls)``, a subclass that skips ``super().__init__()``) raises ``RuntimeError`` at first use.

Errors, all the native core raises:

- ``TypeError``: an argument that is not a bytes-like object, or of the wrong type;
- ``BufferError`` or ``ValueError``: a buffer that is not C-contiguous (memoryview, numpy);
- ``ValueError``: a length that is not whole samples or frames, an unsupported rate, codec, quality,
  channel count or policy, a size that is not positive, a NaN gain, a packet of the wrong size, a
  host that is not a numeric IP address;
- ``OverflowError``: a number past the C integer it goes into;
- ``RuntimeError``: an object without ``__init__``, an overlapping call on a stream object, a closed
  ``Pacer``, more streams than ``max_streams``;
- ``KeyError``: a ``Pacer`` stream id that is not open; ``OSError``: a socket the pacer cannot duplicate
  or a thread it cannot start; ``MemoryError``: a capacity the allocator refuses.

``tests/fuzz/native_targets.py`` holds every public function and class to exactly this list.
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
