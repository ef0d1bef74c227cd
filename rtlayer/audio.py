"""Audio formats of the Realtime protocol, and streaming conversion between them.

The protocol knows three formats: PCM16 (signed 16-bit little-endian, mono; 24 kHz on the wire) and G.711
mu-law and A-law (8 kHz). Apps often want something else (16 kHz from a microphone, 48 kHz to a speaker),
so every transport converts at its edge. All sample work is done by :mod:`rtlayer_native`; this module only
names formats, does the arithmetic of durations, and picks the native object that converts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import rtlayer_native

from .exceptions import InvalidAudioError

__all__ = [
    "PCM16_16K",
    "PCM16_24K",
    "PCM16_48K",
    "PCMA",
    "PCMU",
    "SUPPORTED_RATES",
    "AudioConverter",
    "AudioFormat",
    "Codec",
    "PlaybackTracker",
]

Codec = Literal["pcm16", "pcmu", "pcma"]

#: The rates :class:`rtlayer_native.Resampler` converts between.
SUPPORTED_RATES = (8000, 16000, 24000, 44100, 48000)

_G711_RATE = 8000

# Session-config names, GA first, then the legacy (beta) spellings the service and SDKs still accept.
_SESSION_TYPES: dict[str, Codec] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "pcmu",
    "audio/pcma": "pcma",
    "pcm16": "pcm16",
    "g711_ulaw": "pcmu",
    "g711_alaw": "pcma",
}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A mono audio format: ``codec`` and sample ``rate`` in Hz.

    G.711 formats are always 8 kHz; PCM16 takes any of :data:`SUPPORTED_RATES`.
    """

    codec: Codec = "pcm16"
    rate: int = 24000

    def __post_init__(self) -> None:
        if self.codec not in ("pcm16", "pcmu", "pcma"):
            raise InvalidAudioError(f"unknown codec {self.codec!r}: expected 'pcm16', 'pcmu' or 'pcma'")
        if self.codec != "pcm16" and self.rate != _G711_RATE:
            raise InvalidAudioError(f"{self.codec} is always 8000 Hz, got rate {self.rate}")
        if self.rate not in SUPPORTED_RATES:
            raise InvalidAudioError(f"unsupported sample rate {self.rate}: expected one of {SUPPORTED_RATES}")

    @classmethod
    def g711(cls, codec: Literal["pcmu", "pcma"]) -> AudioFormat:
        return cls(codec, _G711_RATE)

    @classmethod
    def from_session(cls, value: Mapping[str, Any] | str | None) -> AudioFormat:
        """Reads a session-config format: ``{"type": "audio/pcm", "rate": 24000}``, ``"audio/pcmu"``,
        or a legacy name (``"pcm16"``, ``"g711_ulaw"``, ``"g711_alaw"``). ``None`` is the default PCM16 24 kHz.
        """
        if value is None:
            return PCM16_24K
        if isinstance(value, str):
            type_name, rate = value, None
        elif isinstance(value, Mapping):
            type_name, rate = value.get("type", "audio/pcm"), value.get("rate")
        else:
            raise InvalidAudioError(f"audio format must be an object or a string, got {type(value).__name__}")
        codec = _SESSION_TYPES.get(type_name) if isinstance(type_name, str) else None
        if codec is None:
            raise InvalidAudioError(f"unknown audio format type {type_name!r}")
        if codec != "pcm16":
            return cls(codec, _G711_RATE)
        if rate is None:
            return PCM16_24K
        if not isinstance(rate, int) or isinstance(rate, bool):
            raise InvalidAudioError(f"audio format rate must be an integer, got {rate!r}")
        return cls("pcm16", rate)

    def to_session(self) -> dict[str, Any]:
        """The GA session-config shape of this format."""
        if self.codec == "pcm16":
            return {"type": "audio/pcm", "rate": self.rate}
        return {"type": f"audio/{self.codec}"}

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.codec == "pcm16" else 1

    @property
    def bytes_per_ms(self) -> float:
        return self.rate * self.bytes_per_sample / 1000.0

    def duration_ms(self, nbytes: int) -> float:
        """How long ``nbytes`` of this format play, in milliseconds."""
        return nbytes * 1000.0 / (self.rate * self.bytes_per_sample)

    def bytes_for_ms(self, ms: float) -> int:
        """The byte count of ``ms`` milliseconds, rounded down to whole samples."""
        return int(ms * self.rate / 1000.0) * self.bytes_per_sample

    def __str__(self) -> str:
        return f"pcm16@{self.rate}" if self.codec == "pcm16" else self.codec


PCM16_24K = AudioFormat("pcm16", 24000)
PCM16_16K = AudioFormat("pcm16", 16000)
PCM16_48K = AudioFormat("pcm16", 48000)
PCMU = AudioFormat("pcmu", _G711_RATE)
PCMA = AudioFormat("pcma", _G711_RATE)


class AudioConverter:
    """Streaming conversion from one :class:`AudioFormat` to another, with state carried across calls.

    It wraps one :class:`rtlayer_native.Transcoder` (or nothing, when both formats are equal), so G.711
    decode/encode and resampling happen in one native pass. ``latency_ms`` is the delay it adds.
    """

    __slots__ = ("_transcoder", "dst", "quality", "src")

    def __init__(self, src: AudioFormat, dst: AudioFormat, quality: str = "conversational") -> None:
        self.src = src
        self.dst = dst
        self.quality = quality
        self._transcoder: rtlayer_native.Transcoder | None = None
        if src != dst:
            self._transcoder = rtlayer_native.Transcoder(src.codec, src.rate, dst.codec, dst.rate, quality)

    @property
    def is_identity(self) -> bool:
        return self._transcoder is None

    @property
    def latency_ms(self) -> float:
        return 0.0 if self._transcoder is None else float(self._transcoder.latency_ms)

    def convert(self, data: bytes | bytearray | memoryview) -> bytes:
        """Converts one chunk; an odd-length PCM16 chunk raises :class:`InvalidAudioError`."""
        if self.src.codec == "pcm16" and len(data) % 2:
            raise InvalidAudioError(f"PCM16 data must have an even number of bytes, got {len(data)}")
        if self._transcoder is None:
            return bytes(data)
        return self._transcoder.process(data)

    def flush(self) -> bytes:
        """Drains what the filters still hold (the tail of the stream); the converter is then reset."""
        return b"" if self._transcoder is None else self._transcoder.flush()

    def reset(self) -> None:
        if self._transcoder is not None:
            self._transcoder.reset()


class PlaybackTracker:
    """What the user has actually heard, fed by the app's player, so that an interruption truncates right.

    The app calls :meth:`on_play_bytes` (bytes in the format of the ``audio`` events it received) or
    :meth:`on_play_ms` as its speaker consumes audio; the transport reads :meth:`played_ms` when the user
    barges in and sends ``conversation.item.truncate`` with that, so the model's memory matches what was heard.
    Method names follow ``agents.realtime.RealtimePlaybackTracker``. Without a tracker, transports use their own
    playout clock (audio assumed played in real time from its arrival).
    """

    __slots__ = ("_format", "_ms_per_byte", "_played", "current_content_index", "current_item_id")

    #: how many items it remembers (an interruption only ever concerns the latest ones)
    MAX_ITEMS = 16

    def __init__(self, format: AudioFormat = PCM16_24K) -> None:
        self._format = format
        self._ms_per_byte = format.duration_ms(1)
        self._played: dict[tuple[str, int], float] = {}
        self.current_item_id: str | None = None
        self.current_content_index: int | None = None

    @property
    def audio_format(self) -> AudioFormat:
        return self._format

    def set_audio_format(self, format: AudioFormat) -> None:
        """The format of the bytes given to :meth:`on_play_bytes` (the transport sets the app's output format)."""
        self._format = format
        self._ms_per_byte = format.duration_ms(1)

    def on_play_bytes(
        self, item_id: str, item_content_index: int, data: bytes | bytearray | memoryview | int
    ) -> None:
        """The player finished playing ``data`` (or that many bytes) of ``item_id``."""
        nbytes = data if isinstance(data, int) else len(data)
        self.on_play_ms(item_id, item_content_index, nbytes * self._ms_per_byte)

    def on_play_ms(self, item_id: str, item_content_index: int, ms: float) -> None:
        """The player finished playing ``ms`` more milliseconds of ``item_id``."""
        if ms < 0:
            raise ValueError(f"played milliseconds must not be negative, got {ms}")
        key = (item_id, item_content_index)
        if key not in self._played and len(self._played) >= self.MAX_ITEMS:
            del self._played[next(iter(self._played))]
        self._played[key] = self._played.get(key, 0.0) + ms
        self.current_item_id = item_id
        self.current_content_index = item_content_index

    def played_ms(self, item_id: str, item_content_index: int = 0) -> float:
        """Milliseconds of ``item_id`` played so far (0.0 for an item the player has not started)."""
        return self._played.get((item_id, item_content_index), 0.0)

    def on_interrupted(self) -> None:
        """Called by the transport when playback is interrupted: the current item is over."""
        self.current_item_id = None
        self.current_content_index = None

    def get_state(self) -> dict[str, Any]:
        """``{"current_item_id", "current_item_content_index", "elapsed_ms"}`` like the Agents SDK's tracker."""
        if self.current_item_id is None or self.current_content_index is None:
            return {"current_item_id": None, "current_item_content_index": None, "elapsed_ms": None}
        return {
            "current_item_id": self.current_item_id,
            "current_item_content_index": self.current_content_index,
            "elapsed_ms": self.played_ms(self.current_item_id, self.current_content_index),
        }
