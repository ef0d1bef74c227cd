"""``run_load``: N simulated callers against one endpoint, ramped, for a bounded time, in one or more processes.

With no URL, the target is an embedded server started in another process (so that its CPU and the
generator's are not the same), on 127.0.0.1, with limits sized for the run. The run ends on time: callers
stop starting turns at ``duration`` seconds, and whatever still runs :data:`CLOSE_GRACE_S` later is cancelled
and counted as ``unfinished``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import pickle
import random
import re
import secrets
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
from .phone import PhoneCaller
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

TransportKind = Literal["websocket", "webrtc", "fetch-upgrade", "sip"]
TRANSPORTS: tuple[TransportKind, ...] = ("websocket", "webrtc", "fetch-upgrade", "sip")
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
    #: call a phone bot's media-stream endpoint as this provider would (twilio, telnyx, plivo, exotel,
    #: vonage) instead of a Realtime endpoint; with no URL, ``rtlayer bridge`` runs in another process
    provider: str | None = None

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
        if self.transport == "sip" and any(turn.speech is None for turn in self.scenario.turns):
            raise ValueError("a SIP caller can only speak: every turn of the scenario needs 'audio'")
        if self.provider is not None:
            from ..testing.phone import PROVIDERS

            if self.provider not in PROVIDERS:
                raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
            if any(turn.speech is None for turn in self.scenario.turns):
                raise ValueError("a phone caller can only speak: every turn of the scenario needs 'audio'")


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
    if config.transport == "sip":
        return await _run_sip(config)
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
    make_transport = transport_factory(config, url) if config.provider is None else None
    tasks: list[asyncio.Task[None]] = []

    async def one(index: int) -> None:
        start_at = origin + delay_s + index / ramp
        await asyncio.sleep(max(0.0, start_at - loop.time()))
        if loop.time() >= until:
            return
        rng = random.Random(config.seed * 1_000_003 + first + index)
        caller: Caller | PhoneCaller
        if config.provider is not None:
            caller = PhoneCaller(config.provider, url, config.scenario, figures, origin=origin, rng=rng)
        else:
            assert make_transport is not None
            caller = Caller(
                make_transport, config.scenario, figures, origin=origin, schedule=schedule, rng=rng
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
        # The WebSocket transport, plus a synchronous send of the pre-encoded frames the callers send.
        from .transport import LoadWebSocketTransport

        socket_class = LoadWebSocketTransport

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


# -- SIP: sipp places the calls --------------------------------------------------------------------------


async def _run_sip(config: LoadConfig) -> LoadResult:
    """sipp against ``sip:HOST:PORT`` (the URL), or against an embedded server's SIP front whose calls an
    answering app in this process accepts (the server's responder then speaks over RTP)."""
    from .sip import run_sip_load

    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        if config.url is None:
            target = await stack.enter_async_context(_AnsweringSipServer(config))
        else:
            target = config.url.removeprefix("sip:").removeprefix("//")
        started = loop.time()
        figures, generator = await run_sip_load(
            target, config.scenario, sessions=config.sessions, ramp=config.ramp, duration=config.duration
        )
        return LoadResult(config, f"sip:{target}", figures, generator, loop.time() - started)
    raise AssertionError("unreachable")  # pragma: no cover (AsyncExitStack swallows nothing here)


class _AnsweringSipServer:
    """``rtlayer serve --sip-port`` in a child process, and a webhook receiver here that accepts every call
    with the scenario's session config (``build_initial_config``: SIP fixed the formats)."""

    def __init__(self, config: LoadConfig) -> None:
        self._config = config
        self._secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self._server: _ServerProcess | None = None
        self._runner: Any = None
        self._calls: Any = None

    async def __aenter__(self) -> str:
        from aiohttp import web

        from ..transports.calls import CallsClient
        from ..transports.sip import build_initial_config
        from ..transports.sip_webhooks import IncomingCall, add_webhook_route

        app = web.Application()
        session = build_initial_config(config=self._config.scenario.session)

        async def accept(call: IncomingCall) -> None:
            assert self._calls is not None
            await self._calls.accept(call.call_id, session)

        add_webhook_route(app, "/webhook", secret=self._secret, on_call=accept)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        webhook = f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhook"
        self._server = _ServerProcess(
            self._config, ["--sip-port", "0", "--webhook-url", webhook, "--webhook-secret", self._secret]
        )
        await self._server.start()
        http_url, sip_port = self._server.http_url, self._server.sip_port
        assert sip_port is not None
        self._calls = CallsClient(base_url=http_url + "/v1", api_key="load", timeout=10.0)
        return f"127.0.0.1:{sip_port}"

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._calls is not None:
            await self._calls.aclose()


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

_LISTENING = re.compile(rb"listening on https?://127\.0\.0\.1:(\d+)")
_SIP = re.compile(rb"SIP on udp 127\.0\.0\.1:(\d+)")
_BRIDGE = re.compile(rb"media streams on (ws://127\.0\.0\.1:\d+/\S*)")


class _ServerProcess:
    """``rtlayer serve`` (or, for phone callers, ``rtlayer bridge``, which starts its own embedded model
    server) in a child process, on 127.0.0.1 and a free port, sized for the run; ``extra`` arguments are
    given to it (``--sip-port 0 ...``: then ``sip_port`` is read from its start-up lines too)."""

    def __init__(self, config: LoadConfig, extra: list[str] | None = None) -> None:
        self._config = config
        self._extra = list(extra or [])
        self._process: asyncio.subprocess.Process | None = None
        self.http_url = ""
        self.sip_port: int | None = None

    async def start(self) -> str:
        config = self._config
        if config.provider is not None:
            command = ["bridge", "--provider", config.provider, "--responder", config.responder]
            patterns = [_BRIDGE]
        else:
            sessions = max(1000, 2 * config.sessions)
            command = [
                "serve",
                "--responder",
                config.responder,
                "--max-sessions",
                str(sessions),
                "--max-connections",
                str(2 * sessions),
            ]
            patterns = [_LISTENING, _SIP] if "--sip-port" in self._extra else [_LISTENING]
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtlayer.cli", *command, *self._extra, "--port", "0",
            stdout=PIPE, stderr=STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        seen = b""
        found: list[re.Match[bytes]] = []
        try:
            async with asyncio.timeout(_SERVER_START_TIMEOUT_S):
                while len(found) < len(patterns) and (line := await process.stdout.readline()):
                    seen += line
                    match = patterns[len(found)].search(line)
                    if match:
                        found.append(match)
        except TimeoutError:
            pass
        if len(found) < len(patterns):
            raise RuntimeError("the embedded server did not start: " + seen.decode(errors="replace")[-500:])
        # Keep reading its log so that a full pipe never blocks the server.
        self._drain = asyncio.get_running_loop().create_task(process.stdout.read())
        if config.provider is not None:
            return found[0].group(1).decode()
        port = int(found[0].group(1))
        self.http_url = f"http://127.0.0.1:{port}"
        if len(found) > 1:
            self.sip_port = int(found[1].group(1))
        if config.transport == "webrtc":
            return self.http_url
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
