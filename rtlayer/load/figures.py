"""What a load run measures, and the arithmetic over it (sans-I/O: no clock, no sockets).

Every caller reports into a :class:`Figures`: one value per turn for each figure in :data:`FIGURES`
(milliseconds), errors by code, and counters. Values are kept in compact arrays (16 bytes each with the
time they were taken), so a long run with thousands of callers stays in the tens of megabytes, and two
``Figures`` merge exactly (a run over several processes, or the workers of a Locust cluster).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COUNTERS", "FIGURES", "Figures", "Summary", "percentile"]

#: figure name -> what it measures; every value is in milliseconds
FIGURES: Mapping[str, str] = {
    "connect": "connect() until the session exists",
    "speech_stopped_lag": "end of the caller's speech -> input_audio_buffer.speech_stopped",
    "first_audio": "end of the caller's speech (or text sent) -> first answer audio",
    "turn": "end of the caller's speech (or text sent) -> response.done",
    "answer_duration": "answer audio received in the turn (milliseconds of audio)",
    "tool_call": "end of the caller's speech (or text sent) -> the expected function call",
    "truncate_error": "audio_end_ms the server truncated to, minus what the caller had heard",
    "barge_in_clear": "the caller starts talking over the answer -> the app's clear reaches the phone",
    "sip_setup": "SIP INVITE -> 200 OK (sipp's response time)",
}

#: counter name -> what it counts
COUNTERS: Mapping[str, str] = {
    "sessions": "callers started",
    "connected": "callers whose session was created",
    "turns": "turns started",
    "answered": "turns answered in full (or barged into as planned)",
    "barge_ins": "barge-ins made",
    "reconnects": "reconnections the transports made",
    "unfinished": "turns still running when the run ended",
}


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of already sorted values; NaN when there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    """One figure's distribution."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        ordered = sorted(values)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 0.50),
            p90=percentile(ordered, 0.90),
            p99=percentile(ordered, 0.99),
            max=ordered[-1],
            mean=math.fsum(ordered) / len(ordered),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            name: (None if isinstance(value, float) and math.isnan(value) else value)
            for name, value in (
                ("count", self.count),
                ("p50", self.p50),
                ("p90", self.p90),
                ("p99", self.p99),
                ("max", self.max),
                ("mean", self.mean),
            )
        }


@dataclass(slots=True)
class _Series:
    values: array[float] = field(default_factory=lambda: array("d"))
    times: array[float] = field(default_factory=lambda: array("d"))


@dataclass
class Figures:
    """The measurements of one run (or of one process of it); ``at`` is seconds since the run started."""

    #: (figure, turn name) -> values with the time each was taken
    series: dict[tuple[str, str], _Series] = field(default_factory=dict)
    #: (error code, turn name) -> times the error happened
    errors: dict[tuple[str, str], array[float]] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)

    def add(self, figure: str, turn: str, value_ms: float, at: float) -> None:
        if figure not in FIGURES:
            raise ValueError(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}")
        series = self.series.get((figure, turn))
        if series is None:
            series = self.series[(figure, turn)] = _Series()
        series.values.append(value_ms)
        series.times.append(at)

    def error(self, code: str, turn: str, at: float) -> None:
        self.errors.setdefault((code, turn), array("d")).append(at)

    def count(self, counter: str, n: int = 1) -> None:
        if counter not in COUNTERS:
            raise ValueError(f"unknown counter {counter!r}; known: {', '.join(COUNTERS)}")
        self.counters[counter] += n

    def merge(self, other: Figures) -> None:
        """Adds another run's (or process's) measurements to these."""
        for key, series in other.series.items():
            mine = self.series.setdefault(key, _Series())
            mine.values.extend(series.values)
            mine.times.extend(series.times)
        for key, times in other.errors.items():
            self.errors.setdefault(key, array("d")).extend(times)
        self.counters.update(other.counters)

    # -- views -------------------------------------------------------------------------------------------

    def values(self, figure: str, turn: str | None = None) -> list[float]:
        """Every value of ``figure`` (of one turn, or of all)."""
        return [
            value
            for (name, turn_name), series in self.series.items()
            if name == figure and (turn is None or turn_name == turn)
            for value in series.values
        ]

    def summary(self, figure: str, turn: str | None = None) -> Summary:
        return Summary.of(self.values(figure, turn))

    def error_counts(self) -> Counter[str]:
        """Errors by code, all turns together."""
        counts: Counter[str] = Counter()
        for (code, _), times in self.errors.items():
            counts[code] += len(times)
        return counts

    def turn_names(self) -> list[str]:
        return sorted({turn for _, turn in self.series} | {turn for _, turn in self.errors})

    def timeline(self, figure: str, bucket_s: float = 1.0) -> list[tuple[float, Summary]]:
        """``figure``'s distribution in each ``bucket_s`` window (start time, summary), in time order."""
        buckets: dict[int, list[float]] = {}
        for (name, _), series in self.series.items():
            if name != figure:
                continue
            for value, at in zip(series.values, series.times, strict=True):
                buckets.setdefault(int(at // bucket_s), []).append(value)
        return [(index * bucket_s, Summary.of(buckets[index])) for index in sorted(buckets)]

    def error_timeline(self, bucket_s: float = 1.0) -> list[tuple[float, int]]:
        buckets: Counter[int] = Counter()
        for times in self.errors.values():
            for at in times:
                buckets[int(at // bucket_s)] += 1
        return [(index * bucket_s, buckets[index]) for index in sorted(buckets)]

    def to_json(self) -> dict[str, Any]:
        """Summaries per figure (all turns, and per turn), errors by code and turn, and the counters."""
        turns = self.turn_names()
        return {
            "figures": {
                figure: {
                    "all": self.summary(figure).to_json(),
                    "turns": {
                        turn: self.summary(figure, turn).to_json()
                        for turn in turns
                        if (figure, turn) in self.series
                    },
                }
                for figure in FIGURES
            },
            "errors": {
                code: {turn: len(times) for (c, turn), times in self.errors.items() if c == code}
                for code in sorted(self.error_counts())
            },
            "counters": {name: self.counters.get(name, 0) for name in COUNTERS},
        }

    # -- exchange between processes (plain data: picklable and JSON-able) ----------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "series": [
                [figure, turn, s.values.tobytes(), s.times.tobytes()]
                for (figure, turn), s in self.series.items()
            ],
            "errors": [[code, turn, times.tobytes()] for (code, turn), times in self.errors.items()],
            "counters": dict(self.counters),
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Figures:
        figures = cls()
        for figure, turn, values, times in data["series"]:
            series = figures.series[(figure, turn)] = _Series()
            series.values.frombytes(values)
            series.times.frombytes(times)
        for code, turn, times in data["errors"]:
            figures.errors.setdefault((code, turn), array("d")).frombytes(times)
        figures.counters.update(data["counters"])
        return figures
