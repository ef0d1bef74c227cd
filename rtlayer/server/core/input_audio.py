"""The input audio buffer of a session, with its turn detector, sans-I/O.

PCM16 24 kHz goes in (``feed``); user turns come out: ``TurnStarted`` when VAD hears speech and ``TurnEnded``
(with the turn's audio) when it stops. Positions are on the session's audio clock: milliseconds of input audio
received since the session began, which is what ``audio_start_ms`` / ``audio_end_ms`` mean on the wire.

Bounded: while nobody speaks under VAD only the last ``VAD_IDLE_KEEP_MS`` are kept (enough for prefix padding
and a manual commit); otherwise at most ``max_bytes`` (default ``MAX_BUFFER_BYTES``, 5 minutes), the oldest
audio dropped and counted in ``dropped_bytes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rtlayer.protocol.ids import new_id
from rtlayer.server.core.turn_detection import SpeechStarted, TurnDetector

__all__ = ["MAX_BUFFER_BYTES", "MAX_BUFFER_MS", "VAD_IDLE_KEEP_MS", "InputAudio", "TurnEnded", "TurnStarted"]

MAX_BUFFER_MS = 5 * 60 * 1000
VAD_IDLE_KEEP_MS = 5000
_BYTES_PER_MS = 48  # PCM16 24 kHz mono
MAX_BUFFER_BYTES = MAX_BUFFER_MS * _BYTES_PER_MS
"""The default bound of the buffer (``ServerLimits.max_input_buffer_bytes``): 5 minutes, 14.4 MB."""


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """VAD heard speech; ``audio_start_ms`` includes the prefix padding (never before the buffer's start)."""

    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """VAD heard the end of the turn; ``pcm16_24k`` is the turn's audio, taken out of the buffer."""

    item_id: str
    audio_end_ms: int
    pcm16_24k: bytes


class InputAudio:
    """The input buffer (PCM16 24 kHz) positioned on the audio clock, and the VAD that cuts it into turns."""

    def __init__(self, turn_detection: dict[str, Any] | None, max_bytes: int = MAX_BUFFER_BYTES) -> None:
        self._buf = bytearray()
        self.max_bytes = max(2, max_bytes) & ~1
        self.start_ms = 0.0  # audio clock at the buffer's first byte
        self.audio_ms = 0.0  # audio clock at its end: all input received so far
        self.dropped_bytes = 0
        self.speech_item: str | None = None
        self.vad: TurnDetector | None = None
        self.configure(turn_detection)

    @property
    def buffer_ms(self) -> float:
        return len(self._buf) / _BYTES_PER_MS

    def configure(self, turn_detection: dict[str, Any] | None) -> None:
        """Switch turn detection (``None``: manual turns); a turn in progress is forgotten, the audio kept."""
        self.vad = (
            TurnDetector(turn_detection, start_ms=self.audio_ms) if turn_detection is not None else None
        )
        self.speech_item = None

    def feed(self, pcm: bytes) -> list[TurnStarted | TurnEnded]:
        """Append audio; returns the turn boundaries it completes, in order."""
        self._buf += pcm
        self.audio_ms += len(pcm) / _BYTES_PER_MS
        vad = self.vad
        if vad is None:
            self._bound(self.max_bytes, count_drop=True)
            return []
        out: list[TurnStarted | TurnEnded] = []
        for ev in vad.feed(pcm):
            if isinstance(ev, SpeechStarted):
                start = max(
                    ev.audio_start_ms, math.ceil(self.start_ms)
                )  # padding never reaches into the last turn
                self._drop_before(start)
                self.speech_item = new_id("item")
                out.append(TurnStarted(self.speech_item, start))
            else:
                item_id = self.speech_item or new_id("item")
                self.speech_item = None
                cut = max(0, min(len(self._buf), int((ev.audio_end_ms - self.start_ms) * _BYTES_PER_MS) & ~1))
                turn = bytes(self._buf[:cut])
                del self._buf[:cut]
                self.start_ms = ev.audio_end_ms
                out.append(TurnEnded(item_id, ev.audio_end_ms, turn))
        if vad.speaking:
            self._bound(self.max_bytes, count_drop=True)
        else:
            self._bound(min(self.max_bytes, VAD_IDLE_KEEP_MS * _BYTES_PER_MS), count_drop=False)
        return out

    def take(self) -> tuple[str, bytes]:
        """Everything buffered, as a turn (a manual commit or an idle timeout): (item id, audio); VAD reset."""
        item_id = self.speech_item or new_id("item")
        pcm = bytes(self._buf)
        self.clear()
        return item_id, pcm

    def clear(self) -> None:
        """Empty the buffer and forget any speech in progress."""
        self._buf.clear()
        self.start_ms = self.audio_ms
        if self.vad is not None:
            self.vad.reset()
        self.speech_item = None

    def _drop_before(self, start_ms: float) -> None:
        drop = int((start_ms - self.start_ms) * _BYTES_PER_MS) & ~1
        if drop > 0:
            del self._buf[: min(drop, len(self._buf))]
            self.start_ms = start_ms

    def _bound(self, max_bytes: int, count_drop: bool) -> None:
        excess = len(self._buf) - max_bytes
        if excess > 0:
            del self._buf[:excess]
            self.start_ms += excess / _BYTES_PER_MS
            if count_drop:
                self.dropped_bytes += excess
