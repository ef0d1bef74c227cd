"""WAV files in and out: mono PCM16 with its rate, and clear reasons when a file is not one.

``rtlayer talk``, ``rtlayer load`` and the phone simulator read the caller's speech from WAV files and write
what was heard back to one; this module is the one place that knows how.
"""

from __future__ import annotations

import contextlib
import os
import struct
import wave

import rtlayer_native

from .audio import AudioFormat

__all__ = ["check_writable", "read_wav", "write_wav"]

_MAGIC = (
    (b"ID3", "an MP3 file"),
    (b"\xff\xfb", "an MP3 file"),
    (b"OggS", "an Ogg file"),
    (b"fLaC", "a FLAC file"),
)


def _why_not_wav(path: str, exc: Exception) -> str:
    """The reason a file is not a readable WAV: the wave module's, or, where it has none (an ``EOFError``
    from a file cut short), what the first bytes show."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        head = b""
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if kind is not None:
        return f"it is {kind}"
    if str(exc) == "unknown format: 3":
        return "32-bit float samples; rtlayer reads 16-bit PCM"
    if str(exc):
        return str(exc)
    if not head:
        return "the file is empty"
    if not head.startswith(b"RIFF"):
        return "no RIFF header"
    return "the file ends inside its WAV header"


def read_wav(path: str) -> tuple[bytes, int]:
    """(mono PCM16, rate) of a WAV file; ``ValueError`` with a clear message otherwise."""
    try:
        with wave.open(path, "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, RuntimeError, struct.error) as exc:
        # The wave module's ways of saying "not a WAV": its own error, a file cut short (EOFError), a chunk
        # that points past the end (RuntimeError from its chunk reader's seek), a short header field.
        raise ValueError(f"{path}: not a PCM WAV file ({_why_not_wav(path, exc)})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples; rtlayer reads 16-bit PCM")
    if len(data) % (2 * channels):
        # A file cut short mid-sample: keep the whole frames (PCM16 must have an even byte count).
        data = data[: len(data) - len(data) % (2 * channels)]
    if channels == 2:
        data = rtlayer_native.stereo_to_mono(data)
    elif channels != 1:
        raise ValueError(f"{path}: {channels} channels; expected mono or stereo")
    AudioFormat("pcm16", rate)  # raises InvalidAudioError (a ValueError) for an unsupported rate
    return data, rate


def write_wav(path: str, pcm: bytes, rate: int) -> None:
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


def check_writable(path: str) -> None:
    """``ValueError`` now, before the call, when the answer could not be written at the end: the path is
    opened for writing (and a file this created is removed again), so ``/proc/x.wav``, a read-only
    mount or a full quota are refused here rather than after the call."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder; give a file name for the answer")
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):  # append: an existing file is left as it is until the answer is written
            pass
    except OSError as exc:
        raise ValueError(f"{path}: cannot write it ({exc.strerror or exc})") from None
    if not existed:
        with contextlib.suppress(OSError):
            os.unlink(path)
