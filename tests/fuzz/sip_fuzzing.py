"""Seeded mutation fuzzing for the SIP front's parsers (SIP, SDP, RTP, RTCP), in-process.

Each target is a function fed one input at a time; it may raise only the component's documented error
type. :func:`fuzz` drives it with inputs made by :class:`Mutator` from a seed corpus (byte flips,
deletions, splices of tokens that broke parsers before: non-ASCII digits, huge numbers, separators)
and with random bytes, from a fixed seed, so a failure reproduces. It fails the test on any other
exception, on any single input that takes more than ``HANG_S`` of CPU time (a hang: CPU time, so a
machine busy with other work does not make a slow input), and on RSS growth past
``GROWTH_MB`` between the first thousand inputs and the end (a leak).

CI runs each target for ``CI_SECONDS`` (a few seconds); ``RTLAYER_FUZZ_LONG=1`` runs the night mode:
``RTLAYER_FUZZ_INPUTS`` inputs per target (default 1,000,000), up to ``RTLAYER_FUZZ_SECONDS``, and
prints ``fuzz <target>: <inputs> inputs, <failures> failures`` for ``bench/README.md``.
"""

from __future__ import annotations

import os
import random
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sip_helpers import rss_mb

LONG = os.environ.get("RTLAYER_FUZZ_LONG") == "1"
CI_SECONDS = 2.0
HANG_S = 1.0
GROWTH_MB = 64

# Fragments that broke (or could break) hand-written parsers: non-ASCII digits (² ٣), numbers past
# int()'s 4300-digit limit or 2**31, separators, NUL, Unicode line breaks that str.splitlines honours.
TOKENS = [
    b"\xc2\xb2",
    b"\xd9\xa3",
    b"9" * 5000,
    b"99999999999999999999",
    b"2147483648",
    b"-1",
    b"",
    b" ",
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b":",
    b"\x00",
    b"\xff",
    b"SIP/2.0",
    b"\t",
    b"<",
    b">",
    b";",
    b"=",
    b"/",
    b",",
    b";tag=",
    b";branch=z9hG4bK",
    b"\xe2\x80\xa8",
    b"\x1c",
    b"\x85",
    b"\xc2\x85",
]


class Mutator:
    """Inputs from a seed corpus, deterministic for a given seed."""

    def __init__(self, seeds: Sequence[bytes], seed: int, random_share: float = 0.15) -> None:
        self.seeds = list(seeds)
        self.rng = random.Random(seed)
        self.random_share = random_share

    def random_bytes(self, most: int = 300) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, most))

    def mutate(self, base: bytes) -> bytes:
        rng = self.rng
        b = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            if op < 0.25 and b:
                b[rng.randrange(len(b))] = rng.randrange(256)
            elif op < 0.4 and b:
                i = rng.randrange(len(b))
                del b[i : i + rng.randint(1, 20)]
            elif op < 0.65:
                i = rng.randrange(len(b) + 1)
                b[i:i] = rng.choice(TOKENS)
            elif op < 0.8 and b:  # duplicate a slice (repeated headers, lines, blocks)
                i = rng.randrange(len(b))
                j = min(len(b), i + rng.randint(1, 64))
                b[i:i] = b[i:j] * rng.randint(1, 4)
            else:  # a run of digits replaced by a token
                digits = [i for i, c in enumerate(b) if 48 <= c <= 57]
                if digits:
                    i = j = rng.choice(digits)
                    while j < len(b) and 48 <= b[j] <= 57:
                        j += 1
                    b[i:j] = rng.choice(TOKENS)
        return bytes(b)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            if self.rng.random() < self.random_share:
                yield self.random_bytes()
            else:
                yield self.mutate(self.rng.choice(self.seeds))


@dataclass
class FuzzResult:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    slowest_s: float = 0.0
    growth_mb: float = 0.0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"fuzz {self.target}: {self.inputs} inputs, {len(self.failures)} failures, "
            f"{self.seconds:.0f} s, slowest input {self.slowest_s * 1000:.1f} ms CPU, RSS growth {self.growth_mb:.1f} MB"
        )


def budget() -> tuple[int, float]:
    """(inputs, seconds) for one target in this run's mode."""
    if LONG:
        return int(os.environ.get("RTLAYER_FUZZ_INPUTS") or 1_000_000), float(
            os.environ.get("RTLAYER_FUZZ_SECONDS") or 6 * 3600
        )
    return 10_000_000, CI_SECONDS


def fuzz(
    target: str,
    check: Callable[[bytes], object],
    inputs: Iterator[bytes],
    documented: type[BaseException] | tuple[type[BaseException], ...],
) -> FuzzResult:
    """Feed ``check`` until the budget is spent; everything but ``documented`` is a failure (the first
    ten distinct ones are kept with their input)."""
    most, seconds = budget()
    result = FuzzResult(target)
    seen: set[tuple[str, str]] = set()
    start = time.monotonic()
    baseline = rss_mb()
    for data in inputs:
        t0 = time.thread_time()
        try:
            check(data)
        except documented:
            pass
        except Exception as exc:
            key = (type(exc).__name__, str(exc)[:40])
            if key not in seen and len(seen) < 10:
                seen.add(key)
                where = traceback.format_exc().strip().splitlines()[-3:]
                result.failures.append(f"{type(exc).__name__}: {exc!s:.80} on {data[:200]!r} at {where}")
            elif key not in seen:
                result.failures.append(type(exc).__name__)
        elapsed = time.thread_time() - t0
        result.slowest_s = max(result.slowest_s, elapsed)
        if elapsed > HANG_S:
            result.failures.append(f"{elapsed:.1f} s on one input (a hang): {data[:200]!r}")
        result.inputs += 1
        if result.inputs == 1000:
            baseline = rss_mb()
        if result.inputs >= most or (result.inputs % 256 == 0 and time.monotonic() - start > seconds):
            break
    result.seconds = time.monotonic() - start
    result.growth_mb = rss_mb() - baseline
    if result.growth_mb > GROWTH_MB:
        result.failures.append(f"RSS grew by {result.growth_mb:.0f} MB")
    print(result.summary())
    return result
