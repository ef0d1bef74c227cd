"""The bridge's two sans-I/O halves: outbound pacing with playback truth, and inbound conditioning.

``OutboundAudio`` holds the model's audio already cut into provider frames, says when each frame may leave,
names the playback marker sent after it, and turns the provider's acknowledgements into "this much of that
item was heard". Time is an input (``now``, monotonic seconds); nothing here touches a socket.

Pacing. A frame leaves when either

- the provider holds less than ``lead_ms`` of unacknowledged audio (ack-clocked: the provider's own playback
  clocks the stream, so its buffer stays at ``lead_ms`` whatever the network does), or
- the real-time schedule of the current run of audio says it is due (``run_start + (k + 1) * frame - lead_ms``),
  and the provider holds less than ``max_ahead_ms`` (so late acknowledgements never starve the caller, and
  never let the provider's buffer, and so the cost of a barge-in, grow past ``max_ahead_ms``).

The lead adapts to pauses. Whatever stops the audio path for a while (the bridge's loop busy or descheduled,
the provider or the network late) shows as a gap between two acknowledgements longer than the frame played
between them; the provider held ``lead_ms - frame`` when the pause began, so a pause longer than that is an
underrun the caller hears, however much audio is queued here. ``jitter_ms`` is the largest recent excess (it
rises at once and halves every ``JITTER_HALF_LIFE_S``), and the lead in force is ``base_lead_ms + jitter_ms``,
never above ``max_ahead_ms``: on a quiet path the provider holds ``lead_ms``, on a jittery one enough to ride
out the pauses it has shown. Model audio arriving late does not count: the provider keeps acknowledging at real
time while it plays what it has, and a run that plays out ends the measurement.

With the defaults (80 ms lead, 300 ms cap) a barge-in costs at most 300 ms of audio sent and never heard,
and 80-100 ms in the steady state; ``bench/test_media_stream.py`` measures the lead a provider actually sees.

Playback truth. Every frame is followed by a marker named ``"<generation>.<sequence>"``; the provider echoes
it once the frame has played. ``clear()`` (a barge-in) starts a new generation: acknowledgements of an older
generation are the provider returning markers of audio it discarded, and are ignored (counted in
``stale_acks``). A marker nobody sent is counted in ``unknown_acks``.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from ...audio import AudioFormat

__all__ = ["InboundAudio", "OutboundAudio", "SentFrame"]

_SILENCE = {"pcm16": b"\x00", "pcmu": b"\xff", "pcma": b"\xd5"}


class SentFrame(NamedTuple):
    """One frame the shell must send now, then its marker; kept until the provider echoes the marker, and
    returned by ``ack`` then (a tuple: one is made for every frame of every call)."""

    audio: bytes
    mark: str
    item_id: str
    content_index: int
    #: the audio's length (a padded last frame counts what it carries)
    ms: float


class OutboundAudio:
    """Frames waiting for the provider, their pacing, and what the provider has played (see module doc)."""

    #: markers waiting for their echo; past this the provider is not echoing and the oldest are forgotten
    MAX_PENDING_MARKS = 4096
    #: how fast the lead comes back down after a pause raised it (see the module doc)
    JITTER_HALF_LIFE_S = 10.0

    def __init__(self, frame_ms: float, *, lead_ms: float = 80.0, max_ahead_ms: float = 300.0) -> None:
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {frame_ms}")
        self.frame_ms = float(frame_ms)
        # At least two frames ahead: with one, every acknowledgement's delay is a gap the caller hears.
        self.base_lead_ms = max(float(lead_ms), 2 * self.frame_ms)
        self.max_ahead_ms = max(float(max_ahead_ms), self.base_lead_ms)
        #: the lead in force: ``base_lead_ms`` plus the recent pauses' allowance, at most ``max_ahead_ms``
        self.lead_ms = self.base_lead_ms
        #: the largest recent excess of an acknowledgement gap over the audio it confirmed (decaying), in ms
        self.jitter_ms = 0.0
        self._jitter_at = 0.0
        self._last_ack_at: float | None = None
        self.generation = 0
        self._seq = 0
        self._queue: deque[tuple[bytes, str, int, float]] = deque()
        self._pending: dict[str, SentFrame] = {}
        self._mark_prefix = "0."
        self._unacked_ms = 0.0
        self._run_start: float | None = None
        self._run_sent = 0
        #: counters
        self.frames_out = 0
        self.stale_acks = 0
        self.unknown_acks = 0
        self.cleared_frames = 0

    # -- the model's side ------------------------------------------------------------------------------------

    def push(self, frame: bytes, item_id: str, content_index: int, ms: float | None = None) -> None:
        """One frame of an item's audio (the provider's frame size; the last one of an item may be padded)."""
        self._queue.append((frame, item_id, content_index, self.frame_ms if ms is None else ms))

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    @property
    def unacked_ms(self) -> float:
        """Audio the provider holds (sent, not yet acknowledged as played)."""
        return self._unacked_ms

    @property
    def idle(self) -> bool:
        """Nothing queued here and nothing left to play at the provider."""
        return not self._queue and not self._pending

    def next_due(self, now: float) -> float | None:
        """When the next frame may leave (``<= now``: now); None when nothing is queued or it waits for an ack."""
        if not self._queue:
            return None
        if self._unacked_ms + self.frame_ms <= self.lead_ms + 1e-6:
            return now
        if self._unacked_ms + self.frame_ms > self.max_ahead_ms + 1e-6 or self._run_start is None:
            return None  # only an acknowledgement can release it
        # Frame k leaves when the caller would otherwise hold less than lead_ms after it: frames played by
        # then are (t - run_start) / frame_ms, so k is due at run_start + (k + 1) * frame_ms - lead_ms.
        return self._run_start + ((self._run_sent + 1) * self.frame_ms - self.lead_ms) / 1000.0

    def pop_ready(self, now: float) -> list[SentFrame]:
        """The frames that may leave now, each with the marker the shell sends after it (``next_due``'s rules,
        inlined: this runs for every frame of every call)."""
        out: list[SentFrame] = []
        queue, pending, frame_ms = self._queue, self._pending, self.frame_ms
        lead, cap = self.lead_ms + 1e-6, self.max_ahead_ms + 1e-6
        while queue:
            ahead = self._unacked_ms + frame_ms
            if ahead > lead and (
                ahead > cap
                or self._run_start is None
                or self._run_start + ((self._run_sent + 1) * frame_ms - self.lead_ms) / 1000.0 > now
            ):
                break
            frame, item_id, content_index, ms = queue.popleft()
            if not pending:  # the provider's buffer was empty: a new run starts its clock now
                self._run_start, self._run_sent = now, 0
            self._run_sent += 1
            self._seq += 1
            name = self._mark_prefix + str(self._seq)
            if len(pending) >= self.MAX_PENDING_MARKS:
                self._unacked_ms -= pending.pop(next(iter(pending))).ms
            pending[name] = sent = SentFrame(frame, name, item_id, content_index, ms)
            self._unacked_ms += ms
            out.append(sent)
        self.frames_out += len(out)
        return out

    # -- the provider's side ---------------------------------------------------------------------------------

    def ack(self, name: str, now: float | None = None) -> SentFrame | None:
        """A marker echoed: the frame it confirms as heard (its item and ms), or None (stale or unknown,
        counted).

        ``now`` (when the echo was read) feeds the adaptive lead; without it the lead stays where it is."""
        pending = self._pending.pop(name, None)
        if pending is not None:
            unacked = self._unacked_ms - pending.ms
            self._unacked_ms = unacked if unacked > 0.0 else 0.0
            if now is not None:
                self._measure_gap(now, pending.ms)
            return pending
        # Stale: one of our names ("<generation>.<seq>", ASCII digits) from an older generation. A peer's name
        # may hold any digits ("²" is one to isdigit, not to int) and any number of them (past int()'s limit).
        generation, _, seq = name.partition(".")
        if (
            generation.isascii()
            and generation.isdigit()
            and seq.isascii()
            and seq.isdigit()
            and len(generation) <= len(str(self.generation))
            and int(generation) < self.generation
        ):
            self.stale_acks += 1
        else:
            self.unknown_acks += 1
        return None

    def _measure_gap(self, now: float, played_ms: float) -> None:
        """Raises the lead by how much longer than ``played_ms`` this acknowledgement took after the previous
        one (see the module doc); only while the provider still holds audio, so a run that played out (or a
        clear) starts over without a gap."""
        last = self._last_ack_at
        self._last_ack_at = now if self._pending else None
        if last is None:
            return
        jitter = self.jitter_ms
        if jitter:
            jitter *= 0.5 ** ((now - self._jitter_at) / self.JITTER_HALF_LIFE_S)
        excess = (now - last) * 1000.0 - played_ms
        if excess > jitter:
            jitter = excess
        self.jitter_ms, self._jitter_at = jitter, now
        self.lead_ms = min(self.max_ahead_ms, self.base_lead_ms + jitter)

    def clear(self) -> dict[tuple[str, int], float]:
        """A barge-in: drop the queue, forget the markers in flight (a new generation), and return the ms still
        unheard per item (queued or at the provider), in the order they would have played."""
        unheard: dict[tuple[str, int], float] = {}
        for pending in self._pending.values():
            key = (pending.item_id, pending.content_index)
            unheard[key] = unheard.get(key, 0.0) + pending.ms
        for _, item_id, content_index, ms in self._queue:
            unheard[(item_id, content_index)] = unheard.get((item_id, content_index), 0.0) + ms
        self.cleared_frames += len(self._queue)
        self._queue.clear()
        self._pending.clear()
        self._unacked_ms = 0.0
        self._run_start = None
        self._last_ack_at = None
        self.generation += 1
        self._mark_prefix = f"{self.generation}."
        return unheard


class InboundAudio:
    """Caller audio conditioned for the model: timestamp gaps filled with silence (bounded), and silence after
    a stream that stalls, so that the server's turn detection can end a turn the caller was in.

    ``stall_ms`` (500 ms) is longer than any jitter a provider's continuous stream shows, so that a late burst
    is never taken for a stop: a stall of that length gets ``trailing_silence_ms`` (700 ms, more than the
    default 500 ms ``silence_duration_ms`` of server VAD) once; 0 switches it off."""

    def __init__(
        self,
        format: AudioFormat,
        *,
        max_gap_fill_ms: float = 1000.0,
        trailing_silence_ms: float = 700.0,
        stall_ms: float = 500.0,
    ) -> None:
        self.format = format
        self._ms_per_byte = format.duration_ms(1)
        self.max_gap_fill_ms = max_gap_fill_ms
        self.trailing_silence_ms = trailing_silence_ms
        self.stall_ms = stall_ms
        self._next_ts: float | None = None
        self._last_audio: float | None = None
        self._stalled = False
        #: counters (ms)
        self.gap_filled_ms = 0.0
        self.gap_unfilled_ms = 0.0
        self.trailing_silence_sent_ms = 0.0

    def silence(self, ms: float) -> bytes:
        return _SILENCE[self.format.codec] * self.format.bytes_for_ms(ms)

    def media(self, audio: bytes, timestamp_ms: int | None, now: float) -> list[bytes]:
        """One chunk from the provider; returns what to send to the model, silence for a gap first."""
        self._last_audio = now
        self._stalled = False
        if timestamp_ms is None:
            return [audio]
        duration = len(audio) * self._ms_per_byte
        end = timestamp_ms + duration
        expected = self._next_ts
        if expected is None:
            self._next_ts = end
            return [audio]
        if end > expected:
            self._next_ts = end
        gap = timestamp_ms - expected
        if gap >= duration / 2 and gap >= 1.0:  # a lost chunk or more, not a rounding
            fill = min(gap, self.max_gap_fill_ms)
            self.gap_filled_ms += fill
            self.gap_unfilled_ms += gap - fill
            return [self.silence(fill), audio]
        return [audio]

    def check_stall(self, now: float) -> bytes | None:
        """Silence to send once when no audio came for ``stall_ms`` (None otherwise, or when switched off)."""
        if (
            self.trailing_silence_ms <= 0
            or self._stalled
            or self._last_audio is None
            or now - self._last_audio < self.stall_ms / 1000.0
        ):
            return None
        self._stalled = True
        self.trailing_silence_sent_ms += self.trailing_silence_ms
        if self._next_ts is not None:
            # That silence stands for the stream's own time: a stream that resumes is not filled twice.
            self._next_ts += self.trailing_silence_ms
        return self.silence(self.trailing_silence_ms)
