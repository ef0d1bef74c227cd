"""RTP send pacing for every call of a SIP front: frames are pulled a little ahead, a native thread sends them.

Why not send from the asyncio loop: on a loaded machine the loop wakes late (its own work on other
calls, the GIL, the OS scheduler giving the core to another process), and each millisecond of that
lateness used to land on the RTP stream (p99 1.5-7.6 ms at 50 calls under a load of 3-4). So the
loop only *prepares* packets: every ``fill_interval`` it pulls, for each live call, the frames whose
packet time is near enough, stamps them (:class:`RtpSender`) and queues them with their absolute
deadline in :class:`rtlayer_native.Pacer`, whose thread holds no GIL and shares no lock with Python
(a preempted loop thread holding a lock the sender needs was measured to stall it 30-240 ms), sleeps
on ``CLOCK_MONOTONIC`` and sends with ``sendto`` on (a copy of) the call's own socket. The thread asks
for SCHED_FIFO (``realtime_priority``; otherwise a short fair-class slice).

How near is near enough, per call: while the call is silent, ``lookahead`` (40 ms); as soon as a
frame with audio was pulled, ``run_ahead`` (200 ms): the rest of a talk spurt is queued that far ahead,
so a loop that stalls for up to ``run_ahead - fill_interval`` no longer shows on the wire. A loaded
2-core machine was seen stalling the loop for 50-300 ms. Beyond ``lookahead`` a frame is pulled only if
the session has audio for it: a producer a little behind real time is waited for, not turned into a
skipped frame time (a gap inside the answer).

Exactness: a frame pulled ahead already counts as played in the session, so the call registers as
its media output's ``ahead`` consumer (``MediaOutput.PulledAhead``): a clear (``output_audio_buffer.clear``,
barge-in) drops the call's queued packets (one atomic operation decides exactly which ones had
already left), and the session takes exactly those frames back before it computes the truncation; the RTP sender rewinds its sequence
number by as many, so the caller sees no gap, and the next packet starts a talk spurt (marker).
Packets refused by a full native queue, dropped by a clear or by the call's end, and failed sends are
counted (:meth:`stats`); nothing is dropped silently.

Calls keep their own phase (the moment they were accepted, on a 1 ms grid), so their packets spread
over the packet time instead of leaving in one burst per tick; the loop wakes once per fill interval
for all calls.

Prompt answers: while a call is silent its slot is up to ``lookahead`` ahead, and those frame times
were skipped (no packet). When audio reaches an empty output buffer (an answer starts, ``MediaOutput.on_audio``),
:meth:`RtpPacer.kick` fills that call on the next turn of the loop instead of at the next fill: the skipped
silence is taken back (the RTP timestamp rewinds by as much, never before the slot after the last packet
sent), so the first packet's deadline is the next millisecond, then one per packet time from there. Its
``answer_start_ms`` records, per answer, the first packet's deadline minus the moment the audio arrived.

What running ahead costs: the session sees frames as played when they are pulled, so
``output_audio_buffer.started`` of an answer that follows another on a talking call comes up to
``run_ahead`` before its audio leaves; ``stopped`` waits until the call's queued packets have left
(``MediaOutput.ahead``), and a clear still cuts at what was sent, exactly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rtlayer_native import Pacer

__all__ = ["PacedCall", "RtpPacer"]

logger = logging.getLogger("rtlayer.server.sip")

GRID_NS = (
    1_000_000  # every deadline falls on a whole millisecond: the sender wakes at most 1000 times a second
)


def on_grid(ns: int) -> int:
    """``ns`` rounded up to the pacing grid. Calls keep their own phase, chosen on a 1 ms grid, so
    that the packets of several calls share a wake-up of the sending thread instead of each its own."""
    return -(-ns // GRID_NS) * GRID_NS


class PacedCall(Protocol):
    """What the pacer needs of a call (``SipCall`` implements it)."""

    @property
    def id(self) -> str: ...

    @property
    def ended(self) -> bool: ...

    @property
    def ptime_ns(self) -> int: ...

    def queue_frame(self, deadline_ns: int) -> bool:
        """Pull the frame for ``deadline_ns`` and queue its packet (or let the RTP clock run on)."""
        ...

    def has_audio(self) -> bool:
        """Whether a frame of output audio is waiting to be pulled."""
        ...

    def rewind_silence(self, ns: int) -> int:
        """Take back up to ``ns`` of the frame times skipped since the last packet; returns how much."""
        ...


@dataclass(slots=True)
class _Slot:
    call: PacedCall
    due: int  # the deadline of the call's next frame, monotonic ns
    talking: bool = False  # the last frame pulled carried audio: run ahead
    audio_at: int | None = None  # when an answer's audio arrived, until its first packet is queued
    follows: bool = False  # that answer arrived while the previous one's packets were still queued


class RtpPacer:
    """One native sending thread and one loop task that keeps it fed, for every call of a front."""

    def __init__(
        self,
        *,
        lookahead: float = 0.04,
        run_ahead: float = 0.2,
        fill_interval: float = 0.02,
        max_lateness_samples: int = 100_000,
        slice_us: int = 100,
        realtime_priority: int = 0,
        on_error: Callable[[PacedCall], None] | None = None,
        prompt_start: bool = True,
        start_margin: float = 0.001,
    ) -> None:
        if not 0 < fill_interval <= lookahead <= run_ahead:
            raise ValueError("need 0 < fill_interval <= lookahead <= run_ahead")
        self.lookahead_ns = int(lookahead * 1e9)
        self.run_ahead_ns = int(run_ahead * 1e9)
        self.fill_interval_ns = int(fill_interval * 1e9)
        self.native = Pacer(slice_us=slice_us, realtime_priority=realtime_priority)
        # how late each packet left against its deadline (ms), at the native sender, for benchmarks
        self.lateness_ms: deque[float] = deque(maxlen=max_lateness_samples)
        self._on_error = on_error
        # an answer's first packets are queued as soon as its audio arrives (False: at the next fill)
        self.prompt_start = prompt_start
        self.start_margin_ns = int(start_margin * 1e9)  # the native thread must see a packet before its time
        # per answer: its first packet's deadline minus the moment its audio arrived (ms), for benchmarks;
        # answers on a quiet line, and those queued behind the previous answer's last packets
        self.answer_start_ms: deque[float] = deque(maxlen=max_lateness_samples)
        self.answer_follow_ms: deque[float] = deque(maxlen=max_lateness_samples)
        self._kicked: set[str] = set()
        self._kick_handle: asyncio.Handle | None = None
        self._slots: dict[str, _Slot] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resyncs = 0  # the loop fell more than 5 packet times behind: a call's clock was reset
        self.late_fills = 0  # frames queued after their deadline (resyncs included): the loop was too late
        self.closed = False

    def start(self) -> None:
        """Start the native thread and the filling task (on the running loop)."""
        self.native.start()
        self._task = asyncio.get_running_loop().create_task(self._fill(), name="rtlayer-sip-pacer")

    async def close(self) -> None:
        """Stop the task and the thread (joined: no thread outlives the front). Idempotent."""
        self.closed = True
        if self._kick_handle is not None:
            self._kick_handle.cancel()
            self._kick_handle = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.native.close()
        self.drain_lateness()

    def add(self, call: PacedCall, first_deadline_ns: int) -> None:
        """Pace ``call`` from ``first_deadline_ns`` on (``time.monotonic_ns`` clock), one frame per packet time."""
        self._slots[call.id] = _Slot(call, on_grid(first_deadline_ns))
        self._wake.set()

    def drain_lateness(self) -> None:
        """Move the native sender's lateness records into :attr:`lateness_ms`."""
        data = self.native.drain_lateness()
        if data:
            self.lateness_ms.extend(ns / 1e6 for ns in array("q", data))

    def stats(self) -> dict[str, int]:
        """The native queue's totals, plus ``resyncs`` and ``late_fills``."""
        return {**self.native.stats(), "resyncs": self.resyncs, "late_fills": self.late_fills}

    def kick(self, call: PacedCall, now_ns: int) -> None:
        """Audio for ``call`` has just arrived in an empty buffer: if the call is silent, fill it on the
        loop's next turn (not from inside the session's write) with deadlines from now on."""
        slot = self._slots.get(call.id)
        if slot is None or slot.talking or self.closed:
            return  # still sending the previous answer: its frames follow on at once anyway
        if slot.audio_at is None:
            slot.audio_at = now_ns
            # beyond the silent horizon: the previous answer's last packets are still queued ahead
            slot.follows = slot.due > on_grid(now_ns + self.lookahead_ns) + call.ptime_ns
        if not self.prompt_start:
            return
        self._kicked.add(call.id)
        if self._kick_handle is None:
            self._kick_handle = asyncio.get_running_loop().call_soon(self._fill_kicked)

    def _fill_kicked(self) -> None:
        self._kick_handle = None
        kicked, self._kicked = self._kicked, set()
        self.start_now(kicked, time.monotonic_ns())

    def start_now(self, call_ids: set[str], now_ns: int) -> None:
        """Fill the silent calls ``call_ids`` from ``now_ns`` on: the skipped silence ahead of now is
        taken back, so their next deadline is the next grid millisecond after ``now_ns`` plus the margin
        (never before the slot after their last packet), and they are filled ``run_ahead`` far."""
        for key in call_ids:
            slot = self._slots.get(key)
            if slot is None or slot.talking:
                continue
            earliest = on_grid(now_ns + self.start_margin_ns)
            if slot.due > earliest:
                slot.due -= slot.call.rewind_silence(slot.due - earliest)
            self._fill_slot(key, slot, now_ns)

    def fill_once(self, now_ns: int) -> None:
        """Queue, for every call, the frames due within its horizon (the task's step; public for tests)."""
        for key, slot in list(self._slots.items()):
            call = slot.call
            if call.ended:
                del self._slots[key]
                continue
            if now_ns - slot.due > 5 * call.ptime_ns:
                self.resyncs += 1
                self.late_fills += 1
                slot.due = on_grid(now_ns)  # the loop stalled far beyond the lookahead: resynchronize
            self._fill_slot(key, slot, now_ns)

    def _fill_slot(self, key: str, slot: _Slot, now_ns: int) -> None:
        call = slot.call
        near, far = now_ns + self.lookahead_ns, now_ns + self.run_ahead_ns
        while slot.due <= (far if slot.talking else near):
            if slot.due > near and not call.has_audio():
                # the producer has not caught up yet: beyond the lookahead, wait for its next part
                # rather than skip this frame time (a gap inside the answer)
                break
            if slot.due < now_ns:
                self.late_fills += 1
            try:
                slot.talking = call.queue_frame(slot.due)
            except Exception:  # one call's failure must not silence the others
                logger.exception("SIP call %s: queueing a frame failed; hanging up", call.id)
                del self._slots[key]
                if self._on_error is not None:
                    self._on_error(call)
                return
            if slot.talking and slot.audio_at is not None:
                starts = self.answer_follow_ms if slot.follows else self.answer_start_ms
                starts.append(max(0, slot.due - slot.audio_at) / 1e6)
                slot.audio_at = None
            slot.due += call.ptime_ns

    async def _fill(self) -> None:
        period = self.fill_interval_ns
        tick = time.monotonic_ns()
        while True:
            if not self._slots:
                self._wake.clear()
                await self._wake.wait()
                tick = time.monotonic_ns()
            now = time.monotonic_ns()
            self.fill_once(now)
            self.drain_lateness()
            tick += period  # a fixed cadence; after a stall, from now on
            if tick <= now:
                tick = now + period
            await asyncio.sleep((tick - time.monotonic_ns()) / 1e9)
