"""RTP send pacing for every call of a SIP front: frames are pulled a little ahead, a native thread sends them.

Why not send from the asyncio loop: on a loaded machine the loop wakes late (its own work on other
calls, the GIL, the OS scheduler giving the core to another process), and each millisecond of that
lateness used to land on the RTP stream (p99 1.5-7.6 ms at 50 calls under a load of 3-4). So the
loop only *prepares* packets: every ``fill_interval`` it pulls, for each live call, the frames whose
packet time falls within ``lookahead`` (so each packet is queued ``lookahead - fill_interval`` to
``lookahead`` before it is due), stamps them (:class:`RtpSender`) and queues them with their
absolute deadline in :class:`rtlayer_native.Pacer`, whose thread holds no GIL, sleeps on
``CLOCK_MONOTONIC`` and sends with ``sendto`` on the call's own socket. Loop lateness up to
``lookahead - fill_interval`` no longer shows on the wire.

Exactness: a frame pulled ahead already counts as played in the session, so the call registers as
its media output's ``ahead`` consumer (``MediaOutput.PulledAhead``): a clear (``output_audio_buffer.clear``,
barge-in) drops the call's queued packets in the native queue under its lock, and the session takes
exactly those frames back before it computes the truncation; the RTP sender rewinds its sequence
number by as many, so the caller sees no gap, and the next packet starts a talk spurt (marker).
Packets refused by a full native queue, dropped by a clear or by the call's end, and failed sends are
counted (:meth:`stats`); nothing is dropped silently.

Calls keep their own phase (the moment they were accepted), so their packets spread over the packet
time instead of leaving in one burst per tick.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Protocol

from rtlayer_native import Pacer

__all__ = ["PacedCall", "RtpPacer"]

logger = logging.getLogger("rtlayer.server.sip")


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


class RtpPacer:
    """One native sending thread and one loop task that keeps it fed, for every call of a front."""

    def __init__(
        self,
        *,
        lookahead: float = 0.06,
        fill_interval: float = 0.02,
        max_lateness_samples: int = 100_000,
        slice_us: int = 100,
        realtime_priority: int = 0,
        on_error: Callable[[PacedCall], None] | None = None,
    ) -> None:
        if not 0 < fill_interval <= lookahead:
            raise ValueError("need 0 < fill_interval <= lookahead")
        self.lookahead_ns = int(lookahead * 1e9)
        self.fill_interval_ns = int(fill_interval * 1e9)
        self.native = Pacer(slice_us=slice_us, realtime_priority=realtime_priority)
        # how late each packet left against its deadline (ms), at the native sender, for benchmarks
        self.lateness_ms: deque[float] = deque(maxlen=max_lateness_samples)
        self._on_error = on_error
        self._heap: list[tuple[int, int, PacedCall]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resyncs = 0  # the loop fell more than 5 packet times behind: a call's clock was reset

    def start(self) -> None:
        """Start the native thread and the filling task (on the running loop)."""
        self.native.start()
        self._task = asyncio.get_running_loop().create_task(self._fill(), name="rtlayer-sip-pacer")

    async def close(self) -> None:
        """Stop the task and the thread (joined: no thread outlives the front). Idempotent."""
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
        heapq.heappush(self._heap, (first_deadline_ns, next(self._seq), call))
        self._wake.set()

    def drain_lateness(self) -> None:
        """Move the native sender's lateness records into :attr:`lateness_ms`."""
        data = self.native.drain_lateness()
        if data:
            self.lateness_ms.extend(ns / 1e6 for ns in array("q", data))

    def stats(self) -> dict[str, int]:
        """The native queue's totals, plus ``resyncs``."""
        return {**self.native.stats(), "resyncs": self.resyncs}

    def fill_once(self, now_ns: int) -> None:
        """Queue every frame due before ``now_ns + lookahead`` (the task's step; public for tests)."""
        heap = self._heap
        horizon = now_ns + self.lookahead_ns
        while heap and heap[0][0] <= horizon:
            due, seq, call = heapq.heappop(heap)
            if call.ended:
                continue
            if now_ns - due > 5 * call.ptime_ns:
                self.resyncs += 1
                due = now_ns  # the loop stalled far beyond the lookahead: resynchronize, don't burst
            try:
                call.queue_frame(due)
            except Exception:  # one call's failure must not silence the others
                logger.exception("SIP call %s: queueing a frame failed; hanging up", call.id)
                if self._on_error is not None:
                    self._on_error(call)
                continue
            heapq.heappush(heap, (due + call.ptime_ns, seq, call))

    async def _fill(self) -> None:
        heap = self._heap
        while True:
            if not heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.fill_once(time.monotonic_ns())
            self.drain_lateness()
            if heap:
                # wake when the earliest packet is ``lookahead`` away, plus one fill interval so that one
                # wake-up queues a fill interval's worth of packets of every call
                wake = heap[0][0] - self.lookahead_ns + self.fill_interval_ns
                await asyncio.sleep(max(0.0, (wake - time.monotonic_ns()) / 1e9))
