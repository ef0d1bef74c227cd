"""Fair use of blocking work (speech synthesis) across the sessions of one process.

Responders run blocking work in threads (espeak-ng for the echo responder's speech). Through the loop's
default executor, one session that asked for 60 out-of-band audio answers at once filled every worker
thread, and another session's first answer audio waited 15 s behind them. ``run_blocking`` instead runs
at most one job per session at a time (the runner's ``work_slot``, which its response tasks enter with
``enter_session``: a context variable, so a responder needs no session argument) on one shared pool of
bounded size. A session's further jobs wait for its own slot, never for the other sessions' work: each
session with work gets a worker in turn. A job keeps its slot until its thread really ends, so cancelling
responses cannot stack up threads either.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["WORKERS", "enter_session", "run_blocking"]

T = TypeVar("T")

WORKERS = max(4, 2 * (os.cpu_count() or 2))
"""Threads of the shared pool: that many sessions synthesize at once; the next ones queue in order."""

_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rtlayer-work")
_SLOT: ContextVar[asyncio.Semaphore | None] = ContextVar("rtlayer_session_work_slot", default=None)


def enter_session(slot: asyncio.Semaphore) -> None:
    """From here on, this task's (and its children's) blocking work is ``slot``'s session's."""
    _SLOT.set(slot)


async def run_blocking(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in the shared pool, after the current session's earlier job (if any) has ended."""
    loop = asyncio.get_running_loop()
    slot = _SLOT.get()
    if slot is None:  # outside a session (a test calling a responder directly)
        return await asyncio.wrap_future(_POOL.submit(fn, *args))
    await slot.acquire()
    try:
        future: Future[T] = _POOL.submit(fn, *args)
    except BaseException:
        slot.release()
        raise

    def release(_done: Future[T]) -> None:
        try:
            loop.call_soon_threadsafe(slot.release)
        except RuntimeError:  # the loop is gone (the server stopped): nobody waits on the slot
            pass

    future.add_done_callback(release)
    return await asyncio.wrap_future(future)
