"""``run_load``: N simulated callers against one endpoint, ramped, for a bounded time, in one or more processes.

With no URL, the target is an embedded server started in another process (so that its CPU and the
generator's are not the same), on 127.0.0.1, with limits sized for the run. The run ends on time: callers
stop starting turns at ``duration`` seconds, and whatever still runs :data:`CLOSE_GRACE_S` later is cancelled
and counted as ``unfinished``.
"""

from __future__ import annotations

import asyncio
import pickle
import random
import re
import sys
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..audio import PlaybackTracker
from ..transport import RealtimeTransportLayer
from .caller import Caller
from .figures import Figures
from .monitor import GeneratorStats, ProcessMonitor, SendSchedule
from .scenario import CALLER_FORMAT, Scenario, default_scenario

__all__ = [
    "CLOSE_GRACE_S",
    "LoadConfig",
    "LoadResult",
    "TransportKind",
    "run_load",
    "run_load_sync",
    "transport_factory",
]

TransportKind = Literal["websocket", "webrtc", "fetch-upgrade"]
TRANSPORTS: tuple[TransportKind, ...] = ("websocket", "webrtc", "fetch-upgrade")
CLOSE_GRACE_S = 10.0
_SERVER_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LoadConfig:
    """What to run: how many callers, how fast they arrive, for how long, over what, saying what."""

    url: str | None = None
    sessions: int = 10
    #: callers started per second
    ramp: float = 10.0
    #: seconds from the first caller's start until callers stop starting turns
    duration: float = 30.0
    transport: TransportKind = "websocket"
    scenario: Scenario = field(default_factory=default_scenario)
    api_key: str | None = None
    model: str = "gpt-realtime"
    #: generator processes the callers are spread over (each an asyncio loop on its own core)
    processes: int = 1
    seed: int = 0
    #: the embedded server's responder when there is no URL (``echo`` or ``scripted:RULES.json``)
    responder: str = "echo"

    def __post_init__(self) -> None:
        if self.sessions < 1:
            raise ValueError("sessions must be at least 1")
        if self.ramp <= 0:
            raise ValueError("ramp must be a positive number of callers per second")
        if self.duration <= 0:
            raise ValueError("duration must be a positive number of seconds")
        if self.processes < 1:
            raise ValueError("processes must be at least 1")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")


@dataclass
class LoadResult:
    """The merged measurements of every caller, and what the generator saw of itself."""

    config: LoadConfig
    url: str
    figures: Figures
    generator: GeneratorStats
    elapsed_s: float


def run_load_sync(config: LoadConfig) -> LoadResult:
    """:func:`run_load` from synchronous code (the CLI)."""
    return asyncio.run(run_load(config))


async def run_load(config: LoadConfig) -> LoadResult:
    """Runs the whole load: the embedded server when there is no URL, the callers, then the merge."""
    server: _ServerProcess | None = None
    try:
        if config.url is None:
            server = _ServerProcess(config)
            url = await server.start()
        else:
            url = config.url
        loop = asyncio.get_running_loop()
        started = loop.time()
        if config.processes == 1:
            figures, generator = await _run_callers(config, url, 0, config.sessions, config.ramp)
        else:
            figures, generator = await _run_processes(config, url)
        return LoadResult(config, url, figures, generator, loop.time() - started)
    finally:
        if server is not None:
            await server.stop()


async def _run_callers(
    config: LoadConfig, url: str, first: int, count: int, ramp: float, delay_s: float = 0.0
) -> tuple[Figures, GeneratorStats]:
    """``count`` callers in this process, the first starting after ``delay_s``, then ``ramp`` a second."""
    loop = asyncio.get_running_loop()
    origin = loop.time()
    until = origin + config.duration
    figures = Figures()
    schedule = SendSchedule()
    monitor = ProcessMonitor(origin, schedule)
    monitor.start()
    make_transport = transport_factory(config, url)
    tasks: list[asyncio.Task[None]] = []

    async def one(index: int) -> None:
        start_at = origin + delay_s + index / ramp
        await asyncio.sleep(max(0.0, start_at - loop.time()))
        if loop.time() >= until:
            return
        caller = Caller(
            make_transport,
            config.scenario,
            figures,
            origin=origin,
            schedule=schedule,
            rng=random.Random(config.seed * 1_000_003 + first + index),
        )
        monitor.active += 1
        try:
            await caller.run(until)
        finally:
            monitor.active -= 1

    try:
        tasks = [loop.create_task(one(i)) for i in range(count)]
        _, pending = await asyncio.wait(tasks, timeout=config.duration + delay_s + CLOSE_GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        generator = await monitor.stop()
    return figures, generator


def transport_factory(config: LoadConfig, url: str) -> Callable[[PlaybackTracker], RealtimeTransportLayer]:
    common: dict[str, Any] = {"url": url, "api_key": config.api_key or "load", "model": config.model}
    if config.transport == "webrtc":
        from ..transports.webrtc import WebRTCTransport

        def webrtc(tracker: PlaybackTracker) -> RealtimeTransportLayer:
            return WebRTCTransport(
                **common, input_format=CALLER_FORMAT, output_format=CALLER_FORMAT, playback_tracker=tracker
            )

        return webrtc
    if config.transport == "fetch-upgrade":
        from ..transports.fetch_upgrade import FetchUpgradeTransport

        socket_class: Any = FetchUpgradeTransport
    else:
        from ..transports.websocket import WebSocketTransport

        socket_class = WebSocketTransport

    def socket(tracker: PlaybackTracker) -> RealtimeTransportLayer:
        transport: RealtimeTransportLayer = socket_class(
            **common,
            input_format=CALLER_FORMAT,
            output_format=CALLER_FORMAT,
            playback_tracker=tracker,
            # A load run measures failures; it does not hide them behind reconnections (counted when they
            # happen all the same).
            max_reconnect_attempts=3,
        )
        return transport

    return socket


# -- several generator processes ---------------------------------------------------------------------------


async def _run_processes(config: LoadConfig, url: str) -> tuple[Figures, GeneratorStats]:
    """Spreads the callers over ``processes`` child processes (``python -m rtlayer.load.worker``),
    interleaved so that the ramp stays the one asked for."""
    jobs = []
    for index in range(config.processes):
        count = len(range(index, config.sessions, config.processes))
        if count:
            job = (
                replace(config, processes=1),
                url,
                index,
                count,
                config.ramp / config.processes,
                index / config.ramp,
            )
            jobs.append(_run_child(job, config.duration + CLOSE_GRACE_S + _SERVER_START_TIMEOUT_S))
    figures, generator = Figures(), GeneratorStats(processes=0)
    for outcome in await asyncio.gather(*jobs):
        if isinstance(outcome, str):
            figures.error(outcome, "run", config.duration)
        else:
            figures.merge(Figures.load(outcome[0]))
            generator.merge(GeneratorStats.load(outcome[1]))
    return figures, generator


async def _run_child(job: tuple[Any, ...], timeout_s: float) -> tuple[Any, Any] | str:
    """One generator process: the job in on stdin, (figures, generator stats) out on stdout (pickles
    between this process and its own child, never from the network)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtlayer.load.worker", stdin=PIPE, stdout=PIPE
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await process.communicate(pickle.dumps(job))
    except TimeoutError:
        return "generator_process_timeout"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0 or not out:
        return "generator_process_died"
    result: tuple[Any, Any] = pickle.loads(out)
    return result


def run_worker_job(job: tuple[Any, ...]) -> tuple[Any, Any]:
    """What ``python -m rtlayer.load.worker`` runs: its share of the callers, as plain data."""
    config, url, first, count, ramp, delay_s = job
    figures, generator = asyncio.run(_run_callers(config, url, first, count, ramp, delay_s))
    return figures.dump(), generator.dump()


# -- the embedded server in its own process ----------------------------------------------------------------

_LISTENING = re.compile(rb"listening on (https?)://127\.0\.0\.1:(\d+)")


class _ServerProcess:
    """``rtlayer serve`` in a child process, on 127.0.0.1 and a free port, sized for the run."""

    def __init__(self, config: LoadConfig) -> None:
        self._config = config
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        sessions = max(1000, 2 * self._config.sessions)
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rtlayer.cli",
            "serve",
            "--port",
            "0",
            "--responder",
            self._config.responder,
            "--max-sessions",
            str(sessions),
            "--max-connections",
            str(2 * sessions),
            stdout=PIPE,
            stderr=STDOUT,
        )
        assert process.stdout is not None
        seen = b""
        try:
            async with asyncio.timeout(_SERVER_START_TIMEOUT_S):
                while line := await process.stdout.readline():
                    seen += line
                    found = _LISTENING.search(line)
                    if found:
                        break
                else:
                    found = None
        except TimeoutError:
            found = None
        if found is None:
            raise RuntimeError("the embedded server did not start: " + seen.decode(errors="replace")[-500:])
        # Keep reading its log so that a full pipe never blocks the server.
        self._drain = asyncio.get_running_loop().create_task(process.stdout.read())
        port = int(found.group(2))
        if self._config.transport == "webrtc":
            return f"http://127.0.0.1:{port}"
        return f"ws://127.0.0.1:{port}/v1/realtime"

    async def stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
