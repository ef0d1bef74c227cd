"""``pip install rtlayer`` without the ``webrtc`` extra: the server starts without its WebRTC endpoint
and says so, a WebSocket turn works, and the WebRTC paths fail with one sentence naming the extra.

Each test runs Python in a subprocess where aiortc, av and aioice cannot be imported (``None`` in
``sys.modules`` makes ``import aiortc`` raise ``ModuleNotFoundError``, as on a machine without them)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from rtlayer._extras import MissingExtraError, missing_extra

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "tests" / "data" / "hello_24k.wav"
WEBRTC_MODULES = ("aiortc", "av", "aioice")
EXTRA_SENTENCE = "needs the webrtc extra (aiortc is not installed): pip install 'rtlayer[webrtc]'"

pytestmark = pytest.mark.timeout(60)


def without_webrtc(code: str) -> list[str]:
    """The command line that runs ``code`` with the webrtc extra's modules missing."""
    block = f"import sys; sys.modules.update(dict.fromkeys({WEBRTC_MODULES!r}))"
    return [sys.executable, "-c", f"{block}\n{code}"]


def rtlayer_without_webrtc(*args: str) -> list[str]:
    return without_webrtc(
        f"import runpy; sys.argv = ['rtlayer', *{list(args)!r}]; runpy.run_module('rtlayer.cli', run_name='__main__')"
    )


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    return env


async def test_the_server_starts_without_webrtc_says_so_and_answers_a_websocket_turn() -> None:
    proc = await asyncio.create_subprocess_exec(
        *rtlayer_without_webrtc("serve", "--port", "0", "--audio-pacing", "0"),
        cwd=ROOT, stderr=asyncio.subprocess.PIPE, env=_env(),
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not lines or "  limits  " not in lines[-1]:
                lines.append((await proc.stderr.readline()).decode())
                assert lines[-1], "".join(lines)
        start = "".join(lines)
        url = re.search(r"listening on (http://\S+)", start).group(1)  # type: ignore[union-attr]
        async with websockets.connect(url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime") as ws:
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))  # fmt: skip
            await ws.send(json.dumps({"type": "response.create"}))
            async with asyncio.timeout(10):
                while (done := json.loads(await ws.recv()))["type"] != "response.done":
                    pass
        assert done["response"]["status"] == "completed"
        async with httpx.AsyncClient() as http:
            offer = await http.post(f"{url}/v1/realtime/calls", content="v=0\r\n")
            page = await http.get(f"{url}/")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            await proc.stderr.read()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0
    # One line at start names what is off and the extra that brings it; the talk page is not offered.
    said = [line for line in lines if "webrtc" in line.lower()]
    assert len(said) == 1, start
    assert (
        said[0]
        .rstrip()
        .endswith(
            f"the WebRTC endpoint (POST /v1/realtime/calls and the talk page) {EXTRA_SENTENCE}; starting without it"
        )
    )
    assert "talk page    " not in start
    assert offer.status_code == 404 and page.status_code == 404
    assert offer.json()["error"]["type"] == "invalid_request_error"


def test_talk_over_websocket_works_without_webrtc(tmp_path: Path) -> None:
    reply = tmp_path / "reply.wav"
    done = subprocess.run(
        rtlayer_without_webrtc("talk", str(HELLO), "-o", str(reply), "--pace", "0", "--quiet"),
        capture_output=True, text=True, timeout=40, env=_env(), cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the in-process server's note about WebRTC is not for a WebSocket user
    assert reply.stat().st_size > 44


def test_webrtc_transport_names_the_extra_in_one_sentence() -> None:
    done = subprocess.run(
        without_webrtc(
            "from rtlayer import WebRTCTransport\n"
        ),
        capture_output=True, text=True, timeout=30, env=_env(), cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert last == f"rtlayer._extras.MissingExtraError: WebRTCTransport {EXTRA_SENTENCE}"
    # The missing module is the whole story: no chained aiortc traceback above it.
    assert "During handling" not in done.stderr and "ModuleNotFoundError" not in done.stderr


def test_talk_over_webrtc_without_the_extra_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    done = subprocess.run(
        rtlayer_without_webrtc("talk", str(HELLO), "-o", str(tmp_path / "r.wav"), "--transport", "webrtc"),
        capture_output=True, text=True, timeout=30, env=_env(), cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"rtlayer talk: WebRTCTransport {EXTRA_SENTENCE}\n"


def test_an_import_error_that_is_not_a_missing_extra_is_left_alone() -> None:
    ours = ModuleNotFoundError("No module named 'rtlayer.nothing'", name="rtlayer.nothing")
    assert missing_extra(ours, "webrtc", "X") is ours  # a bug of ours must show as itself
    broken = ImportError("cannot import name 'RTCIceServer' from 'aiortc'", name="aiortc")
    assert missing_extra(broken, "webrtc", "X") is broken  # an installed but incompatible aiortc
    missing = missing_extra(ModuleNotFoundError("No module named 'av'", name="av"), "webrtc", "X")
    assert isinstance(missing, MissingExtraError) and isinstance(missing, ImportError)
    assert str(missing) == "X needs the webrtc extra (av is not installed): pip install 'rtlayer[webrtc]'"
