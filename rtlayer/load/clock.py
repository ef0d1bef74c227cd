"""``FrameClock``: one 20 ms clock for every caller of a generator process, instead of a timer per caller.

A caller sends a frame every 20 ms. With a timer (``asyncio.sleep``) per caller per frame, a process driving
1,000 callers arms, sorts and cancels 50,000 timers a second and wakes 50,000 tasks; here one timer fires per
phase and calls every caller of that phase directly (a plain function call: the caller builds and sends its
frame synchronously when its transport allows it).

Callers are spread over :data:`PHASES` phases, ``frame_ms / PHASES`` apart, so that their frames leave in
four smaller bursts rather than one (real callers' frames are not synchronized; a server should not see
every frame of a run in the same millisecond). A tick that fires late catches up: each caller is told how
many of its frames fell due since its last tick (it sends them all, as a late ``sleep`` loop would), and
how late the first of them is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from weakref import WeakKeyDictionary

__all__ = ["PHASES", "FrameClock", "TickListener"]

logger = logging.getLogger("rtlayer.load")

#: the callers' frames leave in this many groups per frame, evenly spaced
PHASES = 4

#: ``listener(now, frames, late_ms)``: ``frames`` frames fell due, the first ``late_ms`` ago
TickListener = Callable[[float, int, float], None]

_CLOCKS: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, FrameClock]] = WeakKeyDictionary()


class FrameClock:
    """Calls its listeners on a ``frame_ms`` grid (see the module docstring); one per loop and frame size
    (:meth:`shared`). A listener that raises is logged and removed: it must not stop the other callers."""

    def __init__(self, frame_ms: int = 20, phases: int = PHASES) -> None:
        self._loop = asyncio.get_running_loop()
        self.frame_ms = frame_ms
        self._phases = phases
        self._step_s = frame_ms / 1000 / phases
        self._t0 = self._loop.time()
        self._next = 1  # the next sub-tick (of ``step_s``) to handle
        self._listeners: list[dict[TickListener, None]] = [{} for _ in range(phases)]
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def shared(cls, frame_ms: int = 20) -> FrameClock:
        """The running loop's clock for ``frame_ms`` frames (made on first use)."""
        loop = asyncio.get_running_loop()
        clocks = _CLOCKS.setdefault(loop, {})
        clock = clocks.get(frame_ms)
        if clock is None:
            clock = clocks[frame_ms] = cls(frame_ms)
        return clock

    @property
    def listeners(self) -> int:
        return sum(len(phase) for phase in self._listeners)

    def add(self, listener: TickListener) -> None:
        """Calls ``listener`` from the next tick of the least crowded phase on."""
        phase = min(self._listeners, key=len)
        phase[listener] = None
        if self._timer is None:
            # Idle until now: start from the current time, not from the ticks missed while nobody listened.
            self._next = int((self._loop.time() - self._t0) / self._step_s) + 1
            self._arm()

    def remove(self, listener: TickListener) -> None:
        for phase in self._listeners:
            phase.pop(listener, None)
        if self._timer is not None and not self.listeners:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        self._timer = self._loop.call_at(self._t0 + self._next * self._step_s, self._fire)

    def _fire(self) -> None:
        now = self._loop.time()
        phases, step_s = self._phases, self._step_s
        first = self._next
        # The latest sub-tick that fell due (at least the one this timer was for: the loop runs a timer up to
        # its clock's resolution early).
        last = max(first, int((now - self._t0) / step_s))
        self._next = last + 1
        # How many of each phase's slots fell due since the last tick, and how late the first one is.
        for phase in range(phases):
            # The first sub-tick >= first whose index is in this phase.
            start = first + (phase - first) % phases
            if start > last:
                continue
            frames = (last - start) // phases + 1
            late_ms = (now - self._t0 - start * step_s) * 1000
            listeners = self._listeners[phase]
            for listener in tuple(listeners):
                try:
                    listener(now, frames, late_ms)
                except Exception:
                    logger.exception("a frame-clock listener failed; removed")
                    listeners.pop(listener, None)
        if self.listeners:
            self._arm()
        else:
            self._timer = None
