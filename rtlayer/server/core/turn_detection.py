"""Turn detection, sans-I/O: ``server_vad`` and ``semantic_vad`` on the level of the input audio.

Time is the audio itself: the detector counts the samples it is fed (PCM16 24 kHz), so a turn ends after
``silence_duration_ms`` of *received* silence, however fast the audio arrives. Levels come from
``rtlayer_native.rms_dbfs`` on 10 ms frames.

``threshold`` (0..1) maps linearly onto an energy gate from -65 dBFS (0.0) to +5 dBFS (1.0): the default 0.5
is -30 dBFS, so speech at a normal level (espeak-ng output is about -20 dBFS RMS, its voiced frames louder)
opens it, while silence, dither and low room noise (below about -40 dBFS) do not. Onset needs 30 ms of frames
above the gate (a click does not start a turn); once speaking, frames count as voice down to 6 dB below the
gate (hysteresis), so the quiet tail of a word does not end the turn.

``semantic_vad`` has no language model here: its ``eagerness`` only sets how long a pause ends the turn
(low 800 ms, medium and auto 500 ms, high 250 ms), which is how the service describes its effect (low waits
longer for the user to go on, high answers sooner). The service's own "max timeouts" (8, 4 and 2 s) are its
waits when the model judges the user unfinished; with no such judgment here, every pause is taken as the end
of a sentence, and waiting the maximum would make every answer seconds late.

State table::

    state     frame                                   -> state     emits
    silent    voiced, run reaches ONSET_FRAMES        -> speaking  SpeechStarted(onset - prefix_padding_ms)
    silent    voiced, run shorter                     -> silent    -
    silent    quiet                                   -> silent    - (run reset)
    speaking  voice (>= gate - hysteresis)            -> speaking  - (silence count reset)
    speaking  quiet, silence reaches the end wait     -> silent    SpeechStopped(now)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rtlayer_native

__all__ = [
    "EAGERNESS_WAIT_MS",
    "SpeechStarted",
    "SpeechStopped",
    "TurnDetector",
    "VadEvent",
    "threshold_to_dbfs",
]

FRAME_MS = 10
FRAME_BYTES = 480  # 10 ms of PCM16 24 kHz mono
ONSET_FRAMES = 3
HYSTERESIS_DB = 6.0
EAGERNESS_WAIT_MS = {"low": 800, "medium": 500, "high": 250, "auto": 500}


def threshold_to_dbfs(threshold: float) -> float:
    """The energy gate of a VAD threshold: 0.0 -> -65 dBFS, 0.5 -> -30 dBFS, 1.0 -> +5 dBFS (never opens)."""
    return -65.0 + 70.0 * threshold


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech began; ``audio_start_ms`` includes the prefix padding (audio clock of the input stream)."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The turn ended; ``audio_end_ms`` is where the silence wait elapsed (the commit point)."""

    audio_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


class TurnDetector:
    """Feeds on PCM16 24 kHz and reports speech start and stop, in ms of audio fed since the start."""

    def __init__(self, config: dict[str, Any], start_ms: float = 0.0) -> None:
        self.config = dict(config)
        self.semantic = config.get("type") == "semantic_vad"
        threshold = float(config.get("threshold", 0.5)) if not self.semantic else 0.5
        self.gate_db = threshold_to_dbfs(threshold)
        self.prefix_padding_ms = 300 if self.semantic else int(config.get("prefix_padding_ms", 300))
        if self.semantic:
            self.end_wait_ms = EAGERNESS_WAIT_MS.get(str(config.get("eagerness", "auto")), 500)
        else:
            self.end_wait_ms = int(config.get("silence_duration_ms", 200))
        self._framer = rtlayer_native.Framer(FRAME_BYTES)
        self._pos_ms = start_ms  # audio clock: ms of audio fed, at the start of the next frame
        self.speaking = False
        self._run = 0  # consecutive voiced frames while silent
        self._silence_ms = 0
        self.level_dbfs = float("-inf")  # of the last frame, for meters and tests

    @property
    def position_ms(self) -> float:
        """Audio clock at the end of the last complete frame."""
        return self._pos_ms

    def reset(self, position_ms: float | None = None) -> None:
        """Forget any speech in progress (after a clear or a manual commit); optionally move the clock."""
        self._framer.reset()
        if position_ms is not None:
            self._pos_ms = position_ms
        self.speaking = False
        self._run = 0
        self._silence_ms = 0

    def feed(self, pcm16_24k: bytes) -> list[VadEvent]:
        """Feed audio; return the speech events it completes, in order."""
        events: list[VadEvent] = []
        for frame in self._framer.push(pcm16_24k):
            db = rtlayer_native.rms_dbfs(frame)
            self.level_dbfs = db
            frame_start = self._pos_ms
            self._pos_ms += FRAME_MS
            if not self.speaking:
                if db >= self.gate_db:
                    self._run += 1
                    if self._run >= ONSET_FRAMES:
                        onset = frame_start - (ONSET_FRAMES - 1) * FRAME_MS
                        self.speaking = True
                        self._silence_ms = 0
                        events.append(SpeechStarted(max(0, int(onset - self.prefix_padding_ms))))
                else:
                    self._run = 0
            elif db >= self.gate_db - HYSTERESIS_DB:
                self._silence_ms = 0
            else:
                self._silence_ms += FRAME_MS
                if self._silence_ms >= self.end_wait_ms:
                    self.speaking = False
                    self._run = 0
                    events.append(SpeechStopped(int(self._pos_ms)))
        return events
