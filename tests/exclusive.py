"""Runs ``@pytest.mark.exclusive`` tests alone on the machine when the suite runs in parallel (xdist).

The suite runs on two pytest-xdist workers (``python -m pytest -n 2``): most tests wait on real
sockets and real-time audio, so two at once halve the wall time. A few tests measure wall-clock
fairness or CPU (another session's worst round trip while one client floods the server; a generator
that must notice it is starved); they would measure their neighbour instead. Marked ``exclusive``,
such a test waits for every running test to finish, and no test starts until it is done.

How: a readers-writer lock over two ``flock`` files shared by the workers of one run. Every test
holds the main lock shared; an exclusive test holds it exclusively. A turnstile lock, taken before
the main lock and released once it is held, keeps an exclusive test from waiting forever behind a
stream of shared holders: while it waits at the main lock, it holds the turnstile, so no new test
starts. Every wait is bounded (``_WAIT_S``), after which the test runs anyway and says so.

Without xdist (one process) nothing is locked.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
import warnings
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

_WAIT_S = 900.0  # the longest a test waits for its turn: far above the longest test (120 s timeout)
_POLL_S = 0.02


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "exclusive: runs with no other test at the same time (wall-clock or CPU measurements)"
    )


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[bool]:
    """Holds ``path`` locked in ``mode``; yields False if the wait ran out (and holds nothing)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + _WAIT_S
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(_POLL_S)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _turn(directory: Path, exclusive: bool) -> Iterator[bool]:
    """Holds this test's turn: the main lock, shared or exclusive, taken through the turnstile."""
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    with ExitStack() as main:
        with _flock(directory / "turnstile", fcntl.LOCK_EX) as through:
            held = main.enter_context(_flock(directory / "main", mode))
        yield through and held


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:  # not an xdist worker
        return (yield)
    directory = Path(tempfile.gettempdir()) / f"rtlayer-tests-{run_id}"
    directory.mkdir(exist_ok=True)
    exclusive = item.get_closest_marker("exclusive") is not None
    with _turn(directory, exclusive) as held:
        if not held:
            warnings.warn(f"{item.nodeid}: no turn after {_WAIT_S:.0f} s; ran without it", stacklevel=1)
        return (yield)
