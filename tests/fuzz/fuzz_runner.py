"""A seeded fuzz runner whose targets run in a child process: a crash or a hang fails a run, not pytest.

A target is a function of one ``random.Random`` (seeded from the run's seed and the input's index, so
any input can be replayed alone) that exercises a component as a hostile caller would, and the tuple
of exception types the component documents. The runner feeds it inputs in a child interpreter and
reports, for each target: how many inputs ran, and every failure, which is any of

- an exception outside the documented types (kept with its traceback and the input's index),
- a crash: the child killed by a signal (the input's index comes from a shared counter),
- a hang: no progress for ``hang_s`` seconds (the child is killed; index as for a crash),
- one input slower than ``hang_s`` that did finish,
- resident memory grown by more than ``growth_mb`` between the end of the warm-up and the end.

Adding a target: in a module ``tests/fuzz/<area>_targets.py``::

    from fuzz_runner import target

    @target("area.thing", documented=(ValueError,))
    def thing(rng: random.Random) -> None:
        parse(rng.randbytes(rng.randrange(300)))  # anything the component may be given

Every ``*_targets.py`` beside this file is found by name. A pytest module then runs a group with
:func:`run_group` (see ``test_fuzz_native.py``), which bounds it for CI: ``ci_seconds`` per target
(1.5 s unless the target says otherwise).

The long mode, for a night run (``bench/README.md`` records what it took)::

    RTLAYER_FUZZ_LONG=1 python -m pytest tests/fuzz/test_fuzz_native.py   # RTLAYER_FUZZ_INPUTS each
    python -m tests.fuzz native --inputs 1000000 --seconds 7200            # or a target: native.pcm
    python -m tests.fuzz native.pcm --replay 1234 --seed 1                 # one input, in-process

``RTLAYER_FUZZ_INPUTS`` (default 1,000,000) and ``RTLAYER_FUZZ_SECONDS`` (default 6 h) bound a target
in the long mode; the summary line of each target is ``fuzz <name>: <inputs> inputs, <failures>
failures, ...``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import mmap
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LONG = os.environ.get("RTLAYER_FUZZ_LONG") == "1"


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[random.Random], object]
    documented: tuple[type[BaseException], ...]
    hang_s: float = 10.0
    growth_mb: float = 48.0
    ci_seconds: float = 1.5


TARGETS: dict[str, Target] = {}


def target(
    name: str,
    documented: tuple[type[BaseException], ...],
    *,
    hang_s: float = 10.0,
    growth_mb: float = 48.0,
    ci_seconds: float = 1.5,
) -> Callable[[Callable[[random.Random], object]], Callable[[random.Random], object]]:
    """Registers ``fn`` as the target ``name`` (``group.thing``); see the module docstring."""

    def register(fn: Callable[[random.Random], object]) -> Callable[[random.Random], object]:
        assert name not in TARGETS, f"two targets named {name}"
        TARGETS[name] = Target(name, fn, documented, hang_s, growth_mb, ci_seconds)
        return fn

    return register


def load_targets() -> dict[str, Target]:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    for module in sorted(HERE.glob("*_targets.py")):
        importlib.import_module(module.stem)
    return TARGETS


def select(names: list[str]) -> list[Target]:
    """Targets by exact name or by group (``native`` selects every ``native.*``)."""
    targets = load_targets()
    chosen = [t for t in targets.values() if any(t.name == n or t.name.startswith(n + ".") for n in names)]
    unknown = [n for n in names if not any(t.name == n or t.name.startswith(n + ".") for t in chosen)]
    if unknown:
        raise SystemExit(f"no fuzz target {', '.join(unknown)}; known: {', '.join(sorted(targets))}")
    return chosen


def mutate(rng: random.Random, base: bytes, tokens: list[bytes]) -> bytes:
    """``base`` with one to six edits: byte flips, deletions, ``tokens`` spliced in, slices repeated, a run
    of digits replaced by a token (the fragments that break hand-written parsers)."""
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
            b[i:i] = rng.choice(tokens)
        elif op < 0.8 and b:  # a slice repeated (headers, lines, blocks, nesting)
            i = rng.randrange(len(b))
            j = min(len(b), i + rng.randint(1, 64))
            b[i:i] = b[i:j] * rng.randint(1, 4)
        else:  # a run of digits replaced by a token
            digits = [i for i, c in enumerate(b) if 48 <= c <= 57]
            if digits:
                i = j = rng.choice(digits)
                while j < len(b) and 48 <= b[j] <= 57:
                    j += 1
                b[i:j] = rng.choice(tokens)
    return bytes(b)


def hostile(rng: random.Random, seeds: list[bytes], tokens: list[bytes], most: int = 300) -> bytes:
    """Random bytes (15 %) or a mutated seed."""
    if rng.random() < 0.15:
        return rng.randbytes(rng.randint(0, most))
    return mutate(rng, rng.choice(seeds), tokens)


def input_rng(seed: int, index: int) -> random.Random:
    """The generator of input ``index``: independent of every other input, so one replays alone."""
    return random.Random(f"{seed}:{index}")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Report:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    slowest_ms: float = 0.0
    growth_mb: float = 0.0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"fuzz {self.target}: {self.inputs} inputs, {len(self.failures)} failures, {self.seconds:.0f} s, "
            f"slowest input {self.slowest_ms:.1f} ms, RSS growth {self.growth_mb:.1f} MB"
        )


# --- the child: runs one target, in-process -----------------------------------------------------------
def _child(name: str, seed: int, inputs: int, seconds: float, counter_path: str) -> None:
    (t,) = select([name])
    with open(counter_path, "r+b") as f:
        counter = mmap.mmap(f.fileno(), 8)
    report = Report(name)
    warm_up = max(1, min(2000, inputs // 10))
    baseline: float | None = None
    distinct: set[tuple[str, str]] = set()
    start = time.monotonic()
    index = 0
    for index in range(inputs):
        counter[:8] = struct.pack("<q", index)
        began = time.perf_counter()
        try:
            t.run(input_rng(seed, index))
        except t.documented:
            pass
        except BaseException as error:  # everything else is a finding, even KeyboardInterrupt-likes
            where = traceback.extract_tb(error.__traceback__)[-1]
            key = (type(error).__name__, f"{where.filename}:{where.lineno}")
            if key not in distinct:
                distinct.add(key)
                report.failures.append(
                    f"input {index} (seed {seed}): {type(error).__name__}: {error}\n"
                    + "".join(traceback.format_exception(error)[-6:])
                )
                if len(report.failures) >= 10:
                    break
        took = time.perf_counter() - began
        if took * 1000 > report.slowest_ms:
            report.slowest_ms = took * 1000
        if took > t.hang_s:
            report.failures.append(f"input {index} (seed {seed}) took {took:.1f} s (limit {t.hang_s} s)")
        if index + 1 == warm_up:
            gc.collect()
            baseline = rss_mb()
        if time.monotonic() - start > seconds:
            break
    report.inputs = index + 1
    report.seconds = time.monotonic() - start
    gc.collect()
    if baseline is not None:
        report.growth_mb = rss_mb() - baseline
        if report.growth_mb > t.growth_mb:
            report.failures.append(
                f"RSS grew by {report.growth_mb:.1f} MB (limit {t.growth_mb} MB) after warm-up"
            )
    print(json.dumps(report.__dict__), flush=True)


# --- the parent: one child per target, watched -----------------------------------------------------
def run_isolated(t: Target, seed: int, inputs: int, seconds: float) -> Report:
    """Runs ``t`` in a child interpreter; a crash, a hang or a lost child is a failure in the report."""
    with tempfile.NamedTemporaryFile(prefix="rtlayer-fuzz-", suffix=".counter") as counter_file:
        counter_file.write(struct.pack("<q", -1))
        counter_file.flush()
        with open(counter_file.name, "rb") as f:
            counter = mmap.mmap(f.fileno(), 8, access=mmap.ACCESS_READ)
        # -m from the repository's root: the child imports the code under test from this checkout, as
        # `python -m pytest` does, not whatever copy is installed.
        cmd = [sys.executable, "-m", "tests.fuzz", "--child", t.name, "--seed", str(seed)]
        cmd += ["--inputs", str(inputs), "--seconds", str(seconds), "--counter", counter_file.name]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
            last, moved = -2, time.monotonic()
            hung = False
            while child.poll() is None:
                time.sleep(0.2)
                now_at = struct.unpack("<q", counter[:8])[0]
                if now_at != last:
                    last, moved = now_at, time.monotonic()
                elif time.monotonic() - moved > t.hang_s + 5:  # + interpreter start-up and teardown
                    hung = True
                    child.kill()
                    child.wait()
            at = struct.unpack("<q", counter[:8])[0]
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    replay = f"replay: python -m tests.fuzz {t.name} --seed {seed} --replay {at}"
    if hung:
        return Report(
            t.name, inputs=at + 1, failures=[f"hang: input {at} made no progress for {t.hang_s} s; {replay}"]
        )
    if child.returncode < 0:
        sig = signal.Signals(-child.returncode).name
        return Report(
            t.name, inputs=at + 1, failures=[f"crash ({sig}) at input {at}; {replay}\n{stderr[-3000:]}"]
        )
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return Report(
            t.name, inputs=at + 1, failures=[f"child exit {child.returncode} at input {at}\n{stderr[-3000:]}"]
        )
    return Report(**json.loads(lines[-1]))


def budget() -> tuple[int, float | None]:
    """(inputs, seconds) per target: the long mode's from the environment; CI's: the target's seconds."""
    if LONG:
        return int(os.environ.get("RTLAYER_FUZZ_INPUTS") or 1_000_000), float(
            os.environ.get("RTLAYER_FUZZ_SECONDS") or 6 * 3600
        )
    return 10**9, None


def run_group(names: list[str], seed: int = 1) -> list[Report]:
    """Every selected target in its child, with this mode's budget; prints each summary line."""
    inputs, seconds = budget()
    reports = []
    for t in select(names):
        report = run_isolated(t, seed, inputs, seconds if seconds is not None else t.ci_seconds)
        print(report.summary())
        reports.append(report)
    return reports


def check_target(name: str, ci_minimum: int = 200) -> None:
    """A test's assertion for one target: it ran in this mode's budget (at least ``ci_minimum`` inputs in
    CI, every input of the budget in the long mode) and found nothing."""
    t = load_targets()[name]
    inputs, seconds = budget()
    report = run_isolated(t, seed=1, inputs=inputs, seconds=seconds if seconds is not None else t.ci_seconds)
    print(report.summary())
    assert not report.failures, "\n\n".join(report.failures)
    assert report.inputs >= (inputs if LONG else ci_minimum), report.summary()  # it really ran


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="targets or groups (native, native.pcm); default: all")
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target (default 1,000,000)")
    parser.add_argument("--seconds", type=float, default=6 * 3600, help="time cap per target (default 6 h)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument(
        "--replay", type=int, metavar="INDEX", help="run one input in-process, traceback and all"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--counter", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.seed, args.inputs, args.seconds, args.counter)
        return 0
    targets = select(args.names) if args.names else list(load_targets().values())
    if args.list:
        print("\n".join(t.name for t in targets))
        return 0
    if args.replay is not None:
        for t in targets:
            t.run(input_rng(args.seed, args.replay))
        return 0
    failed = 0
    for t in targets:
        report = run_isolated(t, args.seed, args.inputs, args.seconds)
        print(report.summary(), flush=True)
        for failure in report.failures:
            print("  " + failure.replace("\n", "\n  "), flush=True)
        failed += bool(report.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    # Run as a script: hand over to the importable module, which the targets register with.
    sys.path.insert(0, str(HERE))
    import fuzz_runner

    sys.exit(fuzz_runner.main())
