"""Locust users that are rtlayer callers: ``rtlayer load``'s scenarios, scaled out over a Locust cluster.

Each Locust user is one simulated caller (:class:`~rtlayer.load.caller.Caller`) over a real transport; each
figure it measures goes to Locust's statistics with the figure as the request type and the turn as the
name (``first_audio`` / ``greeting``), and each error as a failure (request type ``error``, the turn as the
name, the code as the message). So ``locust -f locustfile.py --master`` with ``--worker`` processes on
several machines runs the same scenarios as ``rtlayer load``, and Locust adds the numbers up::

    # locustfile.py
    from rtlayer.load.locust import RealtimeUser

    class Caller(RealtimeUser):
        scenario_file = "scenario.json"   # None: one spoken sentence
        call_seconds = 30                 # each call lasts this long, then the user calls again

    # locust -f locustfile.py --host ws://127.0.0.1:8765/v1/realtime --headless -u 100 -r 10 -t 5m

:class:`MediaStreamUser` does the same to a phone bot, calling its media-stream endpoint as a telephony
provider would (``provider = "twilio"``, ``--host ws://bot.example/media-stream``).

Locust runs its users as gevent greenlets; rtlayer's transports are asyncio. Each Locust process therefore
runs one asyncio loop in a native thread (started with gevent's own ``get_original``, so it is a real
thread even though Locust monkey-patched ``threading``), the callers run there, and their measurements come
back to the user's greenlet through a thread-safe deque: Locust's statistics are only touched from greenlets.
``truncate_error`` is reported as its absolute value (Locust's response times cannot be negative).

``--rtlayer-totals DIR`` (added to Locust's command line) makes every process that ran users write
``totals-PID.json``: how many values of each (figure, turn) it reported, so that a test can check that the
master's totals are the sum of what the workers measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gevent
from gevent import monkey
from locust import User, events, task

from ..audio import PlaybackTracker
from ..transport import RealtimeTransportLayer
from .caller import Caller
from .figures import Figures
from .monitor import SendSchedule
from .phone import PhoneCaller
from .runner import LoadConfig, TransportKind, transport_factory
from .scenario import Scenario, default_scenario, load_scenario

__all__ = ["LoadError", "MediaStreamUser", "RealtimeUser"]

_POLL_S = 0.05


class LoadError(Exception):
    """What a caller's error is reported as in Locust's failures (the message is the error code)."""


class _ReportingFigures(Figures):
    """Figures that also queue each value for the user's greenlet (``deque`` appends are thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.outbox: deque[tuple[str, str, float, str | None]] = deque()

    def add(self, figure: str, turn: str, value_ms: float, at: float) -> None:
        super().add(figure, turn, value_ms, at)
        self.outbox.append((figure, turn, value_ms, None))

    def error(self, code: str, turn: str, at: float) -> None:
        super().error(code, turn, at)
        self.outbox.append(("error", turn, 0.0, code))


class _AsyncioThread:
    """One asyncio loop per process, in a real thread, shared by every user of the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                # The loop and its selector are made in the thread, with the selector gevent did not patch:
                # a patched one would wait on the main thread's gevent hub.
                selector_class = monkey.get_original("selectors", "DefaultSelector")
                start_new_thread: Callable[..., Any] = monkey.get_original("_thread", "start_new_thread")
                ready: deque[asyncio.AbstractEventLoop] = deque()

                def run() -> None:
                    loop = asyncio.SelectorEventLoop(selector_class())
                    ready.append(loop)
                    loop.run_forever()

                start_new_thread(run, ())
                while not ready:
                    gevent.sleep(0.001)
                cls._loop = ready[0]
            return cls._loop


_totals: Counter[str] = Counter()


def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--rtlayer-totals",
        default="",
        help="rtlayer: write totals-PID.json (values reported per figure and turn) into this folder",
    )


def _write_totals(environment: Any, **_: Any) -> None:
    folder = getattr(environment.parsed_options, "rtlayer_totals", "") if environment.parsed_options else ""
    if folder and _totals:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"totals-{os.getpid()}.json").write_text(json.dumps(dict(_totals)))


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_write_totals)  # type: ignore[no-untyped-call]


class RealtimeUser(User):
    """A caller over ``transport`` to the Locust host (a Realtime endpoint URL), playing ``scenario_file``."""

    abstract = True
    #: a JSON or TOML scenario (see :mod:`rtlayer.load.scenario`); None: one spoken sentence
    scenario_file: ClassVar[str | None] = None
    transport: ClassVar[TransportKind] = "websocket"
    #: how long each call lasts; then the user hangs up and calls again
    call_seconds: ClassVar[float] = 30.0
    api_key: ClassVar[str | None] = None
    _scenario: ClassVar[Scenario | None] = None

    @classmethod
    def scenario(cls) -> Scenario:
        if cls._scenario is None:
            cls._scenario = load_scenario(cls.scenario_file) if cls.scenario_file else default_scenario()
        return cls._scenario

    def make_transport(self) -> Callable[[PlaybackTracker], RealtimeTransportLayer]:
        """The transport factory; override to configure the transport your own way."""
        if not self.host:
            raise ValueError("RealtimeUser needs a host: the endpoint's URL (locust --host URL)")
        config = LoadConfig(url=self.host, transport=self.transport, api_key=self.api_key)
        return transport_factory(config, self.host)

    def make_caller(self, figures: Figures, origin: float) -> Caller | PhoneCaller:
        """One call's caller (runs on the process's asyncio loop)."""
        return Caller(self.make_transport(), self.scenario(), figures, origin=origin, schedule=SendSchedule())

    @task
    def call(self) -> None:
        """One call of ``call_seconds``; every figure is reported to Locust as it is measured."""
        figures = _ReportingFigures()
        loop = _AsyncioThread.loop()

        async def run() -> None:
            here = asyncio.get_running_loop()
            caller = self.make_caller(figures, here.time())
            await caller.run(here.time() + self.call_seconds)

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        try:
            while not future.done():
                self._report(figures)
                gevent.sleep(_POLL_S)
            future.result()
        finally:
            future.cancel()
            self._report(figures)

    def _report(self, figures: _ReportingFigures) -> None:
        fire = self.environment.events.request.fire
        outbox = figures.outbox
        while outbox:
            figure, turn, value, code = outbox.popleft()
            _totals[f"{figure}/{turn}"] += 1
            fire(
                request_type=figure,
                name=turn,
                response_time=abs(value),
                response_length=0,
                exception=LoadError(code) if code is not None else None,
                context={},
                start_time=time.time(),
            )


class MediaStreamUser(RealtimeUser):
    """A caller on the phone: calls the Locust host (a phone bot's media-stream endpoint, ``ws://...``) as
    ``provider`` would, through :class:`rtlayer.testing.phone.PhoneSimulator` (see :mod:`rtlayer.load.phone`
    for what it measures)."""

    abstract = True
    provider: ClassVar[str] = "twilio"
    #: the provider's custom parameters on the call (Twilio's ``customParameters``, ...)
    custom: ClassVar[dict[str, str]] = {}

    def make_caller(self, figures: Figures, origin: float) -> Caller | PhoneCaller:
        if not self.host:
            raise ValueError("MediaStreamUser needs a host: the app's media-stream URL (locust --host URL)")
        return PhoneCaller(
            self.provider, self.host, self.scenario(), figures, origin=origin, custom=self.custom
        )
