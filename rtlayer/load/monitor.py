"""The generator watching itself: is it, and not the server, the bottleneck?

A load generator that runs out of CPU sends late and reads late, and every latency it reports then grows
for reasons that have nothing to do with the server. Each generator process therefore measures:

- its CPU use (user + system time over wall time, 100 % = one core busy);
- its event loop's lag (how late a 100 ms timer fires);
- how late its callers send their frames against the real-time schedule (:class:`SendSchedule`).

A process is *saturated* when, over the run's seconds, its CPU is at least :data:`CPU_SATURATED` % of one
core most of the time (p90; an asyncio process runs on one core), its loop lags :data:`LAG_SATURATED_MS` or
more most of the time (p90 of each second's worst lag: one stall of the machine is not a saturated
generator), or more than :data:`LATE_SATURATED` of its frames left :data:`LATE_FRAME_MS` or more behind
schedule: then the report says that the figures are the generator's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from .figures import Summary

__all__ = [
    "CPU_SATURATED",
    "LAG_SATURATED_MS",
    "LATE_FRAME_MS",
    "LATE_SATURATED",
    "GeneratorSample",
    "GeneratorStats",
    "ProcessMonitor",
    "SendSchedule",
]

CPU_SATURATED = 90.0
LAG_SATURATED_MS = 50.0
LATE_FRAME_MS = 20.0
LATE_SATURATED = 0.01
_TICK_S = 0.1


@dataclass(slots=True)
class SendSchedule:
    """How the callers of one process kept their frame schedule."""

    frames: int = 0
    late_frames: int = 0
    max_late_ms: float = 0.0

    def sent(self) -> None:
        self.frames += 1

    def late(self, ms: float) -> None:
        if ms >= LATE_FRAME_MS:
            self.late_frames += 1
        if ms > self.max_late_ms:
            self.max_late_ms = ms

    def sent_many(self, frames: int, late_ms: float) -> None:
        """``frames`` frames sent at once (a late clock tick catches up), the first ``late_ms`` late; each
        next one was due a frame (:data:`LATE_FRAME_MS`) later, so it is that much less late."""
        self.frames += frames
        if late_ms >= LATE_FRAME_MS:
            self.late_frames += min(frames, int(late_ms // LATE_FRAME_MS))
        if late_ms > self.max_late_ms:
            self.max_late_ms = late_ms


@dataclass(frozen=True, slots=True)
class GeneratorSample:
    """One second of one generator process."""

    at: float
    cpu_percent: float
    loop_lag_ms: float
    active_sessions: int


@dataclass
class GeneratorStats:
    """What one (or, merged, every) generator process saw of itself."""

    samples: list[GeneratorSample] = field(default_factory=list)
    frames: int = 0
    late_frames: int = 0
    max_late_ms: float = 0.0
    processes: int = 1

    def merge(self, other: GeneratorStats) -> None:
        self.samples.extend(other.samples)
        self.frames += other.frames
        self.late_frames += other.late_frames
        self.max_late_ms = max(self.max_late_ms, other.max_late_ms)
        self.processes += other.processes

    @property
    def cpu(self) -> Summary:
        return Summary.of(sample.cpu_percent for sample in self.samples)

    @property
    def loop_lag(self) -> Summary:
        return Summary.of(sample.loop_lag_ms for sample in self.samples)

    @property
    def late_fraction(self) -> float:
        return self.late_frames / self.frames if self.frames else 0.0

    def saturation(self) -> list[str]:
        """Why the generator was the bottleneck (empty when it was not)."""
        reasons = []
        cpu, lag = self.cpu, self.loop_lag
        if cpu.count and cpu.p90 >= CPU_SATURATED:
            reasons.append(f"generator CPU p90 {cpu.p90:.0f} % of a core (>= {CPU_SATURATED:.0f} %)")
        if lag.count and lag.p90 >= LAG_SATURATED_MS:
            # A loop that lags while its process uses little CPU is waiting for a CPU the machine does not
            # give it (other processes): the figures are as untrustworthy, for another reason.
            why = "" if cpu.p90 >= CPU_SATURATED / 2 else f", at {cpu.p90:.0f} % CPU: the machine is busy"
            reasons.append(
                f"generator event-loop lag p90 {lag.p90:.0f} ms over its seconds (>= {LAG_SATURATED_MS:.0f} ms{why})"
            )
        if self.late_fraction > LATE_SATURATED:
            reasons.append(
                f"{100 * self.late_fraction:.1f} % of frames sent {LATE_FRAME_MS:.0f} ms or more late"
                f" (> {100 * LATE_SATURATED:.0f} %)"
            )
        return reasons

    def to_json(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "cpu_percent": self.cpu.to_json(),
            "loop_lag_ms": self.loop_lag.to_json(),
            "frames": self.frames,
            "late_frames": self.late_frames,
            "max_late_ms": self.max_late_ms,
            "saturated": self.saturation(),
        }

    def dump(self) -> dict[str, Any]:
        return {
            "samples": [(s.at, s.cpu_percent, s.loop_lag_ms, s.active_sessions) for s in self.samples],
            "frames": self.frames,
            "late_frames": self.late_frames,
            "max_late_ms": self.max_late_ms,
            "processes": self.processes,
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> GeneratorStats:
        return cls(
            samples=[GeneratorSample(*sample) for sample in data["samples"]],
            frames=data["frames"],
            late_frames=data["late_frames"],
            max_late_ms=data["max_late_ms"],
            processes=data["processes"],
        )


class ProcessMonitor:
    """Samples this process once a second while the run goes on; ``active`` says how many callers run."""

    def __init__(self, origin: float, schedule: SendSchedule) -> None:
        self._origin = origin
        self._schedule = schedule
        self.active = 0
        self.stats = GeneratorStats()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> GeneratorStats:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.stats.frames = self._schedule.frames
        self.stats.late_frames = self._schedule.late_frames
        self.stats.max_late_ms = self._schedule.max_late_ms
        return self.stats

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        cpu0, wall0 = time.process_time(), time.monotonic()
        lags: list[float] = []
        while True:
            expected = loop.time() + _TICK_S
            await asyncio.sleep(_TICK_S)
            lags.append(max(0.0, (loop.time() - expected) * 1000))
            wall = time.monotonic()
            if wall - wall0 >= 1.0:
                cpu = time.process_time()
                self.stats.samples.append(
                    GeneratorSample(
                        at=loop.time() - self._origin,
                        cpu_percent=100 * (cpu - cpu0) / (wall - wall0),
                        loop_lag_ms=max(lags),
                        active_sessions=self.active,
                    )
                )
                cpu0, wall0, lags = cpu, wall, []
