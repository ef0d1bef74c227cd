"""``server_vad``'s ``idle_timeout_ms``, sans-I/O: when the idle prompt is due and which input it covers.

The service applies the timeout "after the last model response's audio has finished playing, i.e. the
``response.done`` time plus audio playback duration"; ``input_audio_buffer.timeout_triggered`` then reports
the input received since playback ended (``audio_start_ms``) up to the trigger (``audio_end_ms``), a span
about as long as the timeout. Never armed while the user speaks: the end of their turn answers them anyway.
Before any answer it counts from when the timeout was configured (a caller who never speaks is prompted too).
"""

from __future__ import annotations

from typing import Any

__all__ = ["IdleTimer"]


class IdleTimer:
    """The idle deadline (Unix seconds) of one session, and where playback ended on its input audio clock."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self._playback_end_ms = 0.0

    def arm(
        self,
        turn_detection: dict[str, Any] | None,
        now: float,
        *,
        playback_s: float,
        input_ms: float,
        speaking: bool,
    ) -> None:
        """Start the wait once ``playback_s`` of answer audio has played (``server_vad`` with a timeout only).

        ``input_ms`` is the input audio clock now; if the client streams its microphone in real time,
        playback ends ``playback_s`` later on that clock too.
        """
        td = turn_detection
        timeout = td.get("idle_timeout_ms") if td is not None and td.get("type") == "server_vad" else None
        if not timeout or speaking:
            self.deadline = None
            return
        self.deadline = now + playback_s + timeout / 1000.0
        self._playback_end_ms = input_ms + playback_s * 1000.0

    def stop(self) -> None:
        self.deadline = None

    def due(self, now: float) -> bool:
        """True once, when the deadline has passed (the timer is then stopped)."""
        if self.deadline is None or now < self.deadline:
            return False
        self.deadline = None
        return True

    def segment(self, buffer_start_ms: float, input_ms: float) -> tuple[int, int]:
        """``(audio_start_ms, audio_end_ms)`` of ``timeout_triggered``: the input after playback, within
        what the buffer still holds."""
        end = int(input_ms)
        return int(min(end, max(buffer_start_ms, self._playback_end_ms))), end
