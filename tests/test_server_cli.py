"""``rtlayer serve`` as a user runs it, TLS, and sideband sockets attached to a registered call."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import websockets
from helpers import EmittedEvents
from helpers_tls import make_pki

from rtlayer.cli.serve import make_responder
from rtlayer.server import RealtimeServer, ServerState, SessionRunner
from rtlayer.server.responders import EchoResponder, ScriptedResponder

pytestmark = pytest.mark.timeout(40)

ROOT = Path(__file__).resolve().parent.parent


async def test_rtlayer_serve_logs_one_line_per_event_and_stops_cleanly_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtlayer.cli", "serve", "--port", "0", "--api-key", "sk-secret-cli",
        "--audio-pacing", "0",
        cwd=ROOT, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not lines or "listening on" not in lines[-1]:
                lines.append((await proc.stderr.readline()).decode())
                assert lines[-1], "".join(lines)
        url = re.search(r"listening on (http://\S+)", lines[-1]).group(1)  # type: ignore[union-attr]
        async with websockets.connect(
            url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime",
            additional_headers={"Authorization": "Bearer sk-secret-cli"},
        ) as ws:
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))  # fmt: skip
            await ws.send(json.dumps({"type": "response.create"}))
            async with asyncio.timeout(10):
                while json.loads(await ws.recv())["type"] != "response.done":
                    pass
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            rest = (await proc.stderr.read()).decode()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = "".join(lines) + rest
    assert code == 0, log
    # It says where it serves: the WebSocket, the openai base_url, ephemeral keys, health, the talk page.
    base = url.rstrip("/")
    ws_base = base.replace("http", "ws")
    for shown in (f"{ws_base}/v1/realtime?model=gpt-realtime", f'base_url="{base}/v1"',
                  f"{base}/v1/realtime/client_secrets", f"{base}/healthz", f"talk page    {base}/ "):  # fmt: skip
        assert shown in log, (shown, log)
    assert "answer audio as fast as produced" in log
    assert re.search(r"sess_\w+  session\.created gpt-realtime audio/pcm turns=server_vad", log), log
    assert re.search(r"sess_\w+  response\.done completed \d+\.\d\d s audio", log), log
    assert "shutting down" in log
    assert "sk-secret-cli" not in log  # keys are never logged


def test_rtlayer_serve_refuses_a_public_address_without_a_key() -> None:
    from rtlayer.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2


async def test_tls_serves_https_and_wss(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with RealtimeServer(certfile=str(pki.server_cert), keyfile=str(pki.server_key)) as server:
        assert server.url.startswith("https://127.0.0.1:") and server.ws_url.startswith("wss://")
        async with httpx.AsyncClient(verify=pki.client_context()) as http:
            assert (await http.get(server.url + "/healthz")).json()["status"] == "ok"
        async with websockets.connect(
            server.ws_url + "?model=m",
            ssl=pki.client_context(),
            additional_headers={"Authorization": "Bearer x"},
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
        with pytest.raises(OSError):  # an unknown CA is refused by a verifying client
            await websockets.connect(
                server.ws_url + "?model=m", additional_headers={"Authorization": "Bearer x"}
            )


class HeadlessCall:
    """A call with no media (the shape the WebRTC and SIP fronts register): an id, a runner, hangup."""

    def __init__(self, state: ServerState, call_id: str) -> None:
        self.id = call_id
        self.state = state
        self.runner: SessionRunner | None = state.create_runner(model="gpt-realtime")
        self.runner.start()
        state.calls.add(self)

    async def hangup(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        self.state.calls.remove(self.id)


async def test_sideband_socket_attaches_to_a_call_and_hangup_ends_it(
    server: RealtimeServer, server_events: EmittedEvents
) -> None:
    call = HeadlessCall(server.state, "rtc_headless1")
    headers = {"Authorization": "Bearer x"}
    async with websockets.connect(server.ws_url + "?call_id=rtc_headless1", additional_headers=headers) as ws:
        # The sideband learns the session it joined, as a fresh socket would.
        created = json.loads(await ws.recv())
        assert call.runner is not None
        assert created["type"] == "session.created" and created["session"]["id"] == call.runner.id
        await ws.send(
            json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "Hi"}})
        )
        updated = json.loads(await ws.recv())
        assert updated["type"] == "session.updated" and updated["session"]["instructions"] == "Hi"
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
            assert (await http.post("/v1/realtime/calls/rtc_headless1/hangup")).status_code == 200
            assert (await http.post("/v1/realtime/calls/rtc_headless1/hangup")).status_code == 404
        async with asyncio.timeout(5):
            with pytest.raises(websockets.ConnectionClosedOK):
                while True:
                    await ws.recv()
    assert call.runner is None and "rtc_headless1" not in server.state.calls
    assert not server.state.runners


async def test_the_official_client_attaches_to_a_call_with_call_id(server: RealtimeServer) -> None:
    call = HeadlessCall(server.state, "rtc_headless2")
    client = openai.AsyncOpenAI(api_key="sk-app", base_url=server.url + "/v1")
    async with client.realtime.connect(call_id="rtc_headless2") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        async with asyncio.timeout(5):
            created = await conn.recv()
            updated = await conn.recv()
    assert created.type == "session.created" and created.session.id == call.runner.id  # type: ignore[union-attr]
    assert updated.type == "session.updated"
    assert updated.session.output_modalities == ["text"]
    await call.hangup()


def test_serve_builds_the_responder_it_is_asked_for(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"when": {"always": True}, "say": "Scripted."}]}))
    assert isinstance(make_responder("echo"), EchoResponder)
    assert isinstance(make_responder(f"scripted:{rules}"), ScriptedResponder)
    with pytest.raises(ValueError, match="unknown responder"):
        make_responder("oracle")
    (tmp_path / "broken.json").write_text("not json")
    for bad in ("broken.json", "missing.json"):
        with pytest.raises(ValueError, match=f"cannot use the rules file .*{bad}"):
            make_responder(f"scripted:{tmp_path / bad}")


class StartLines(logging.Handler):
    """Collects ``rtlayer serve``'s start-up lines; ``ready`` is set once the limits line is out."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.ready = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"
        if "limits" in record.getMessage():
            self.ready.set()


async def test_rtlayer_serve_limits_come_from_the_command_line() -> None:
    from rtlayer.cli import build_parser
    from rtlayer.cli.serve import serve

    args = build_parser().parse_args(
        ["serve", "--port", "0", "--max-sessions", "1", "--idle-timeout", "0.5", "--session-expiry", "90"]
    )
    stop = asyncio.Event()
    lines = StartLines()
    log = logging.getLogger("rtlayer.serve")
    log.addHandler(lines)
    log.setLevel(logging.INFO)
    task = asyncio.create_task(serve(args, stop=stop))
    try:
        await asyncio.wait_for(lines.ready.wait(), 10)
        caplog_text = lines.text
        m = re.search(r"listening on (http://\S+)", caplog_text)
        assert m is not None, caplog_text
        ws_url = m.group(1).replace("http", "ws") + "/v1/realtime?model=gpt-realtime"
        assert "1 sessions, 2000 connections, idle sockets closed after 0.5 s" in caplog_text
        assert "answer audio at 4x real time" in caplog_text  # the same default as RealtimeServer
        async with websockets.connect(ws_url, additional_headers={"Authorization": "Bearer x"}) as first:
            created = json.loads(await first.recv())
            assert created["session"]["expires_at"] - time.time() == pytest.approx(90, abs=5)
            with pytest.raises(websockets.InvalidStatus) as refused:  # --max-sessions 1
                await websockets.connect(ws_url, additional_headers={"Authorization": "Bearer x"})
            assert refused.value.response.status_code == 429
            async with asyncio.timeout(5):  # --idle-timeout: a silent socket is closed (going away)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await first.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        stop.set()
        log.removeHandler(lines)
        await asyncio.wait_for(task, 10)


def test_rtlayer_serve_refuses_bad_limits() -> None:
    from rtlayer.cli import main

    for bad in (["--max-sessions", "0"], ["--idle-timeout", "-1"], ["--session-expiry", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--port", "0", *bad])
        assert exited.value.code == 2
    assert (
        main(["serve", "--host", "0.0.0.0", "--port", "0", "--api-key", " "]) == 2
    )  # an empty key is no key


FROZEN_AFTER_START = """
import asyncio, gc, json
from rtlayer.cli import build_parser
from rtlayer.cli.serve import serve

async def main():
    stop = asyncio.Event()
    args = build_parser().parse_args(["serve", "--port", "0"])
    task = asyncio.create_task(serve(args, stop=stop, freeze_heap=True))
    async with asyncio.timeout(20):
        while gc.get_freeze_count() == 0:
            await asyncio.sleep(0.05)
    print(json.dumps({"frozen": gc.get_freeze_count(), "oldest": len(gc.get_objects(2))}))
    stop.set()
    await task

asyncio.run(main())
"""


def test_rtlayer_serve_keeps_what_start_up_built_out_of_full_collections() -> None:
    """``rtlayer serve`` (its own process) freezes start-up's objects once it listens: a full collection,
    which stalls every session, walks only what the sessions made since (rtlayer/cli/_heap.py)."""
    done = subprocess.run(
        [sys.executable, "-c", FROZEN_AFTER_START], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    heap = json.loads(done.stdout.splitlines()[-1])
    assert heap["frozen"] > 10_000  # the modules, classes and functions of start-up
    assert heap["oldest"] < heap["frozen"] / 10
