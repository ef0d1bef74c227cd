"""``rtlayer load``: simulated callers against real servers, over real sockets, measured per turn.

Every run here targets 127.0.0.1 only (the embedded server, or a fault-injecting proxy in front of it) and is
bounded in callers and seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from rtlayer.load import (
    Figures,
    LoadConfig,
    ScenarioError,
    load_scenario,
    run_load,
)
from rtlayer.load.report import report_json, summary_table, write_report
from rtlayer.load.scenario import parse_scenario
from rtlayer.server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder

ROOT = Path(__file__).resolve().parent.parent
HELLO = str(ROOT / "tests" / "data" / "hello_24k.wav")
SENTENCE = str(ROOT / "tests" / "data" / "joke_24k.wav")  # one phrase, 1.1 s


def rtlayer_load(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``rtlayer load ARGS`` as a user runs it, in its own process, from the checkout."""
    return subprocess.run(
        [sys.executable, "-m", "rtlayer.cli", "load", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


# -- scenarios -------------------------------------------------------------------------------------------


def test_a_scenario_file_names_turns_audio_pauses_barge_ins_and_tools(tmp_path: Path) -> None:
    path = tmp_path / "calls.json"
    path.write_text(
        json.dumps(
            {
                "session": {"instructions": "Be brief."},
                "answer_timeout_ms": 5000,
                "turns": [
                    {"name": "hello", "audio": HELLO, "pause_ms": 200},
                    {"name": "cut", "audio": HELLO, "interrupt_after_ms": 300},
                    {
                        "name": "weather",
                        "text": "weather?",
                        "expect_tool": "get_weather",
                        "tool_output": {"sky": 1},
                    },
                ],
            }
        )
    )
    scenario = load_scenario(path)
    hello, cut, weather = scenario.turns
    assert scenario.session == {"instructions": "Be brief."}
    assert scenario.answer_timeout_ms == 5000
    assert hello.speech is not None and hello.pause_ms == 200
    # The voice ends before the WAV does: turn latencies count from the end of the voice.
    assert 0 < hello.speech_end_ms <= hello.speech_ms
    assert cut.interrupt_after_ms == 300
    assert weather.text == "weather?" and weather.expect_tool == "get_weather"
    assert json.loads(weather.tool_output) == {"sky": 1}


def test_the_same_scenario_reads_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "calls.toml"
    path.write_text(f'[[turns]]\nname = "hello"\naudio = "{HELLO}"\n\n[[turns]]\ntext = "and you?"\n')
    names = [turn.name for turn in load_scenario(path).turns]
    assert names == ["hello", "turn2"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected an object"),
        ({"turns": []}, "non-empty list"),
        ({"turns": [{"text": "a"}], "extra": 1}, "unknown field(s) extra"),
        ({"turns": [{"text": "a", "audio": HELLO}]}, "exactly one of"),
        ({"turns": [{}]}, "exactly one of"),
        ({"turns": [{"text": "a", "pause_ms": -1}]}, "'pause_ms' must be a whole number"),
        ({"turns": [{"text": "a", "pause_ms": True}]}, "'pause_ms' must be a whole number"),
        ({"turns": [{"text": "a", "expect_tool": 3}]}, "'expect_tool' must be a tool name"),
        ({"turns": [{"audio": "missing.wav"}]}, "missing.wav: cannot read it"),
        ({"turns": [{"text": "a"}], "session": []}, "'session' must be an object"),
        ({"turns": [{"text": "a"}], "answer_timeout_ms": 0}, "'answer_timeout_ms'"),
    ],
)
def test_a_bad_scenario_is_refused_with_the_field_named(data: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    assert message in str(caught.value)


def test_a_silent_wav_is_refused_as_a_turn(tmp_path: Path) -> None:
    from rtlayer.wav import write_wav

    write_wav(str(tmp_path / "silence.wav"), bytes(48_000), 24000)
    with pytest.raises(ScenarioError, match="is silent"):
        parse_scenario({"turns": [{"audio": "silence.wav"}]}, base=tmp_path)


def test_a_file_that_is_not_json_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.json"
    path.write_text("{turns:")
    with pytest.raises(ScenarioError, match="not valid json"):
        load_scenario(path)


# -- figures ---------------------------------------------------------------------------------------------


def test_figures_merge_exactly_and_survive_the_trip_between_processes() -> None:
    one, two = Figures(), Figures()
    for i in range(100):
        one.add("first_audio", "hello", float(i), at=i / 10)
    two.add("first_audio", "hello", 1000.0, at=11.0)
    two.error("no_answer", "hello", at=3.0)
    two.count("turns", 5)
    merged = Figures.load(one.dump())
    merged.merge(Figures.load(two.dump()))
    summary = merged.summary("first_audio")
    assert (summary.count, summary.p50, summary.p99, summary.max) == (101, 50.0, 99.0, 1000.0)
    assert merged.error_counts() == {"no_answer": 1}
    assert merged.counters["turns"] == 5
    assert [at for at, _ in merged.timeline("first_audio", 5.0)] == [0.0, 5.0, 10.0]
    with pytest.raises(ValueError, match="unknown figure"):
        merged.add("latency", "hello", 1.0, 0.0)


# -- runs against the embedded server ---------------------------------------------------------------------


async def test_callers_against_the_embedded_server_measure_every_turn(
    server: RealtimeServer, tmp_path: Path
) -> None:
    config = LoadConfig(url=server.ws_url, sessions=4, ramp=20, duration=4.0)
    result = await run_load(config)
    figures = result.figures
    assert figures.counters["connected"] == 4
    assert figures.error_counts() == {}
    for name in ("speech_stopped_lag", "first_audio", "turn", "answer_duration"):
        assert figures.summary(name).count >= 4, name
    # The echo responder answers with what it heard: about the voiced part of the sentence.
    assert 800 <= figures.summary("answer_duration").p50 <= 1300
    # The answer cannot start before the turn was detected as ended.
    assert figures.summary("first_audio").p50 >= figures.summary("speech_stopped_lag").p50
    assert result.generator.frames > 4 * 150 and not result.generator.saturation()
    assert result.elapsed_s < config.duration + 6
    table = summary_table(result)
    assert "first_audio" in table and "errors: none" in table
    json_path, html_path = write_report(result, tmp_path / "report")
    report = json.loads(json_path.read_text())
    assert (
        report["figures"]["first_audio"]["turns"]["sentence"]["count"] == figures.summary("first_audio").count
    )
    assert report == json.loads(json.dumps(report_json(result), default=str))
    assert "<svg" in html_path.read_text()


async def test_a_barge_in_is_truncated_exactly_where_the_caller_stopped_hearing(
    server: RealtimeServer, tmp_path: Path
) -> None:
    scenario = parse_scenario(
        {"turns": [{"name": "cut", "audio": HELLO, "interrupt_after_ms": 300}], "pause_jitter_ms": 0}
    )
    result = await run_load(
        LoadConfig(url=server.ws_url, sessions=2, ramp=20, duration=5.0, scenario=scenario)
    )
    errors = result.figures.values("truncate_error", "cut")
    assert result.figures.counters["barge_ins"] >= 2
    assert len(errors) >= 2
    # The caller fed its tracker 20 ms a frame; the truncate carried that, and the server kept it to the ms.
    assert errors == [0.0] * len(errors)


async def test_a_tool_turn_measures_the_call_and_the_answer_that_follows() -> None:
    responder = ScriptedResponder(
        {
            "rules": [
                {
                    "when": {"text_contains": "weather"},
                    "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
                {"after_function_output": "get_weather", "say": "It is sunny."},
            ]
        }
    )
    scenario = parse_scenario(
        {"turns": [{"name": "weather", "text": "the weather please", "expect_tool": "get_weather"}]}
    )
    async with RealtimeServer(responder=responder) as server:
        result = await run_load(
            LoadConfig(url=server.ws_url, sessions=2, ramp=20, duration=3.0, scenario=scenario)
        )
    figures = result.figures
    assert figures.error_counts() == {}
    assert figures.summary("tool_call", "weather").count >= 2
    assert figures.summary("turn", "weather").count >= 2
    # The answer after the tool output is the one measured: it comes after the call.
    assert figures.summary("turn").p50 > figures.summary("tool_call").p50


def test_the_command_runs_an_embedded_server_in_another_process_and_writes_its_report(tmp_path: Path) -> None:
    done = rtlayer_load("--sessions", "3", "--duration", "3", "--report", str(tmp_path), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ws://127.0.0.1:" in done.stdout and "first_audio" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counters"]["connected"] == 3
    assert report["config"]["url"].startswith("ws://127.0.0.1:")


def test_the_command_refuses_bad_flags_in_one_line() -> None:
    done = rtlayer_load("--ramp", "-1", timeout=30)
    assert done.returncode == 2
    # One line, as for every rtlayer command (rtlayer.cli._args.Parser): no usage block.
    assert (
        done.stderr
        == "rtlayer load: argument --ramp: expected a number > 0, got -1 (see rtlayer load --help)\n"
    )


async def test_an_endpoint_that_refuses_every_connection_is_counted_and_the_run_ends() -> None:
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        result = await run_load(
            LoadConfig(url=f"ws://127.0.0.1:{port}/v1/realtime", sessions=3, ramp=30, duration=2.0)
        )
    assert result.figures.counters["connected"] == 0
    assert sum(result.figures.error_counts().values()) == 3
    assert all(code.startswith("connect_failed:") for code in result.figures.error_counts())


# -- a server that degrades on purpose ---------------------------------------------------------------------


class FaultyProxy:
    """A WebSocket proxy in front of the embedded server that delays its events, drops whole responses and
    closes sockets: the server of a bad day, for checking that each fault shows in the right figure."""

    def __init__(
        self, upstream: str, *, delay_s: float = 0.0, drop: float = 0.0, close_after_s: float | None = None
    ) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self.drop = drop
        self.close_after_s = close_after_s
        self.rng = random.Random(7)
        self.closed = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FaultyProxy:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}/v1/realtime"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse()
        await client.prepare(request)
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(
                self.upstream + "?" + request.query_string, headers={"Authorization": "Bearer x"}
            ) as server,
        ):
            dropped: set[str] = set()
            pending: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
            loop = asyncio.get_running_loop()

            async def upward() -> None:
                async for message in client:
                    await server.send_str(message.data)

            async def downward() -> None:
                async for message in server:
                    event = json.loads(message.data)
                    response_id = event.get("response_id") or (event.get("response") or {}).get("id")
                    if event["type"] == "response.created" and self.rng.random() < self.drop:
                        dropped.add(response_id)
                    if response_id in dropped:
                        continue
                    await pending.put((loop.time() + self.delay_s, message.data))

            async def deliver() -> None:
                while True:
                    due, text = await pending.get()
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    await client.send_str(text)

            tasks = [asyncio.create_task(coro()) for coro in (upward, downward, deliver)]
            try:
                await asyncio.wait(tasks, timeout=self.close_after_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self.close_after_s is not None and not client.closed:
                    self.closed += 1
                    await client.close(code=1011, message=b"proxy fault")
        return client


async def test_server_delay_shows_in_answer_latency_and_nowhere_else(server: RealtimeServer) -> None:
    async with FaultyProxy(server.ws_url) as plain:
        baseline = await run_load(LoadConfig(url=plain.url, sessions=2, ramp=20, duration=3.0))
    async with FaultyProxy(server.ws_url, delay_s=0.3) as slow:
        delayed = await run_load(LoadConfig(url=slow.url, sessions=2, ramp=20, duration=3.0))
    added = delayed.figures.summary("first_audio").p50 - baseline.figures.summary("first_audio").p50
    assert 280 <= added <= 400
    assert delayed.figures.error_counts() == {}
    assert not delayed.generator.saturation()


async def test_dropped_answers_are_counted_as_no_answer_and_the_run_ends_on_time(
    server: RealtimeServer,
) -> None:
    scenario = parse_scenario(
        {"turns": [{"name": "hello", "audio": HELLO, "pause_ms": 100}], "answer_timeout_ms": 1500}
    )
    async with FaultyProxy(server.ws_url, drop=0.5) as proxy:
        result = await run_load(
            LoadConfig(url=proxy.url, sessions=3, ramp=30, duration=6.0, scenario=scenario)
        )
    errors = result.figures.error_counts()
    answered = result.figures.summary("turn").count
    assert errors.get("no_answer", 0) >= 1 and answered >= 1
    assert set(errors) == {"no_answer"}
    assert result.elapsed_s < 6.0 + 6


async def test_closed_sockets_show_as_reconnects(server: RealtimeServer) -> None:
    async with FaultyProxy(server.ws_url, close_after_s=1.5) as proxy:
        result = await run_load(LoadConfig(url=proxy.url, sessions=2, ramp=20, duration=4.0))
    assert proxy.closed >= 2
    assert result.figures.counters["reconnects"] >= 2
    assert result.elapsed_s < 4.0 + 6


@pytest.mark.exclusive  # its busy loop takes a whole core from whatever test would run beside it
async def test_a_generator_short_of_cpu_says_that_the_figures_are_its_own(
    server: RealtimeServer, tmp_path: Path
) -> None:
    """The generator pinned to one core that a busy loop also wants, at a lower priority (nice 7: about a
    sixth of the core); 250 callers need more than that even from a lean generator (0.7 ms per caller-second
    would already fill it)."""
    cpu = min(os.sched_getaffinity(0))
    hog = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "while True: pass", preexec_fn=lambda: os.sched_setaffinity(0, {cpu})
    )
    try:
        load = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rtlayer.cli",
            "load",
            "--url",
            server.ws_url,
            "--sessions",
            "250",
            "--ramp",
            "125",
            "--duration",
            "5",
            "--report",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=lambda: (os.sched_setaffinity(0, {cpu}), os.nice(7)),
        )
        async with asyncio.timeout(60):
            out, _ = await load.communicate()
    finally:
        hog.kill()
        await hog.wait()
    text = out.decode()
    assert load.returncode == 1, text
    assert "GENERATOR SATURATED" in text
    assert json.loads((tmp_path / "report.json").read_text())["generator"]["saturated"]


# -- phone bots: the provider's media stream ------------------------------------------------------------


@pytest.mark.parametrize("provider", ["twilio", "vonage"])
def test_phone_callers_measure_a_bridge_as_the_caller_hears_it(provider: str, tmp_path: Path) -> None:
    """``rtlayer load --provider`` with no URL calls an ``rtlayer bridge`` in another process."""
    scenario = tmp_path / "calls.json"
    scenario.write_text(
        json.dumps(
            {
                "pause_jitter_ms": 0,
                "turns": [
                    {"name": "cut", "audio": SENTENCE, "interrupt_after_ms": 400},
                    {"name": "hello", "audio": SENTENCE, "pause_ms": 300},
                ],
            }
        )
    )
    done = rtlayer_load(
        "--provider",
        provider,
        "--sessions",
        "2",
        "--duration",
        "9",
        "--scenario",
        str(scenario),
        "--report",
        str(tmp_path),
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{provider} media streams -> ws://127.0.0.1:" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    figures = report["figures"]
    assert report["errors"] == {}
    assert figures["first_audio"]["turns"]["cut"]["count"] >= 2
    assert figures["answer_duration"]["turns"]["hello"]["count"] >= 1
    # The bridge cleared the answer soon after the caller talked over it (the model's VAD needs some speech).
    clear = figures["barge_in_clear"]["turns"]["cut"]
    assert clear["count"] >= 2 and 0 < clear["max"] < 2000


# -- SIP: sipp places the calls ----------------------------------------------------------------------------


def test_sip_callers_are_sipp_calls_into_an_embedded_server_that_answers_them(tmp_path: Path) -> None:
    done = rtlayer_load(
        "--transport", "sip", "--sessions", "3", "--duration", "4", "--report", str(tmp_path), timeout=90
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"]["url"].startswith("sip:127.0.0.1:")
    assert report["errors"] == {}
    counters = report["counters"]
    assert counters["sessions"] >= 3 and counters["answered"] == counters["sessions"]
    assert report["figures"]["sip_setup"]["all"]["count"] == counters["sessions"]


def test_the_generated_sipp_scenario_plays_each_turn_as_pcmu_then_hangs_up() -> None:
    from rtlayer.load.sip import call_ms, sipp_scenario

    scenario = parse_scenario({"turns": [{"audio": SENTENCE, "pause_ms": 500}, {"audio": SENTENCE}]})
    xml, files = sipp_scenario(scenario)
    assert list(files) == ["turn1.pcmu", "turn2.pcmu"]
    # 8 kHz, one byte a sample: as long as the speech (the resampler's delay line adds under 2 ms).
    assert abs(len(files["turn1.pcmu"]) / 8 - scenario.turns[0].speech_ms) < 2
    assert (
        xml.index('rtp_stream="turn1.pcmu,1,0"') < xml.index('rtp_stream="turn2.pcmu,1,0"') < xml.index("BYE")
    )
    assert call_ms(scenario) == 4 * scenario.turns[0].speech_ms + 500 + 800
    with pytest.raises(ValueError, match="needs 'audio'"):
        sipp_scenario(parse_scenario({"turns": [{"text": "hi"}]}))


async def test_refused_sip_calls_show_with_their_status(tmp_path: Path) -> None:
    """A SIP endpoint whose app rejects every call (486): each call fails, with the status that ended it."""
    from aiohttp import web as aioweb

    from rtlayer.transports.calls import CallsClient
    from rtlayer.transports.sip_webhooks import IncomingCall, add_webhook_route

    secret = "whsec_cnRsYXllci1sb2FkLXRlc3RzLXNlY3JldA=="
    app = aioweb.Application()
    calls: list[CallsClient] = []

    async def reject(call: IncomingCall) -> None:
        await calls[0].reject(call.call_id, 486)

    add_webhook_route(app, "/webhook", secret=secret, on_call=reject)
    runner = aioweb.AppRunner(app)
    await runner.setup()
    await aioweb.TCPSite(runner, "127.0.0.1", 0).start()
    webhook = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
    try:
        async with RealtimeServer(sip_port=0, webhook_url=webhook, webhook_secret=secret) as server:
            calls.append(CallsClient(base_url=server.url + "/v1", api_key="x"))
            result = await run_load(
                LoadConfig(
                    url=f"sip:127.0.0.1:{server.sip.port}", transport="sip", sessions=2, ramp=10, duration=2.0
                )
            )
            await calls[0].aclose()
    finally:
        await runner.cleanup()
    errors = result.figures.error_counts()
    calls = result.figures.counters["sessions"]
    assert calls >= 2
    assert errors == {"sip_failed:unexpected_message": calls, "sip_status:486": calls}
    assert result.figures.counters["answered"] == 0
