"""``rtlayer bridge`` and ``rtlayer phone`` against each other, for every provider, over real sockets."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import subprocess
import sys
import urllib.request
import wave
from pathlib import Path

import pytest
from media_stream_helpers import hello_sentence

import rtlayer_native
from rtlayer.cli import build_parser
from rtlayer.cli.bridge import running_bridge
from rtlayer.cli.phone import call

PROVIDERS = ["twilio", "telnyx", "plivo", "exotel", "vonage"]


def _wav(path: Path, pcm: bytes, rate: int = 24000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return path


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rtlayer_phone_hears_rtlayer_bridge_answer_and_the_metrics_count_the_call(
    provider: str, tmp_path: Path
) -> None:
    said = _wav(tmp_path / "said.wav", hello_sentence())
    heard = tmp_path / "heard.wav"
    async with running_bridge(_args("bridge", "--provider", provider, "--port", "0")) as bridge:
        url = f"ws://127.0.0.1:{bridge.port}/media-stream"
        out = io.StringIO()
        code = await call(
            _args(
                "phone",
                "--provider",
                provider,
                url,
                str(said),
                "-o",
                str(heard),
                "--dtmf",
                "5@0.3",
                "--custom",
                "who=test",
            ),
            out,
        )
        assert code == 0, out.getvalue()
        base = f"http://127.0.0.1:{bridge.port}"
        health, metrics = await asyncio.to_thread(lambda: (_get(base + "/healthz"), _get(base + "/metrics")))
        transports = bridge.metrics
    assert health == "ok\n"
    assert "answer_started" in out.getvalue() and "heard 1 answer(s)" in out.getvalue()
    with wave.open(str(heard)) as wav:
        assert wav.getframerate() == (16000 if provider == "vonage" else 8000)
        assert wav.getnframes() > wav.getframerate() * 1.0  # the whole call, silence included
    assert _metric(metrics, "rtlayer_bridge_calls_total") == 1
    assert _metric(metrics, "rtlayer_bridge_frames_in_total") > 10
    assert _metric(metrics, "rtlayer_bridge_frames_out_total") >= 30  # >= 600 ms of answer, 20 ms frames
    assert _metric(metrics, "rtlayer_bridge_active_calls") in (0, 1)
    assert transports.calls == 1


def test_the_commands_run_as_processes(tmp_path: Path) -> None:
    said = _wav(tmp_path / "said.wav", hello_sentence())
    heard = tmp_path / "heard.wav"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bridge = subprocess.Popen(
        [sys.executable, "-m", "rtlayer.cli", "bridge", "--provider", "twilio", "--port", "0"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert bridge.stderr is not None
        line = bridge.stderr.readline()
        port = re.search(r"ws://127\.0\.0\.1:(\d+)/media-stream", line)
        assert port, line
        done = subprocess.run(
            [sys.executable, "-m", "rtlayer.cli", "phone", "--provider", "twilio",
             f"ws://127.0.0.1:{port.group(1)}/media-stream", str(said), "-o", str(heard)],
            capture_output=True, text=True, timeout=30, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "heard 1 answer(s)" in done.stdout
    finally:
        bridge.terminate()
        bridge.wait(10)
    assert bridge.returncode == 0


def test_phone_refuses_a_bad_dtmf_spec(tmp_path: Path) -> None:
    said = _wav(tmp_path / "said.wav", hello_sentence())
    args = _args(
        "phone",
        "--provider",
        "twilio",
        "ws://127.0.0.1:9/x",
        str(said),
        "-o",
        str(tmp_path / "h.wav"),
        "--dtmf",
        "12",
    )
    with pytest.raises(ValueError, match="DIGITS@SECONDS"):
        asyncio.run(call(args))


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} not in\n{text}"
    return float(match.group(1))


@pytest.mark.parametrize("transport", ["fetch-upgrade", "webrtc"])
async def test_the_bridge_reaches_the_model_over_the_other_transports_too(
    transport: str, tmp_path: Path
) -> None:
    said = _wav(tmp_path / "said.wav", hello_sentence())
    heard = tmp_path / "h.wav"
    args = _args("bridge", "--provider", "twilio", "--port", "0", "--transport", transport)
    async with running_bridge(args) as bridge:
        url = f"ws://127.0.0.1:{bridge.port}/media-stream"
        out = io.StringIO()
        code = await call(_args("phone", "--provider", "twilio", url, str(said), "-o", str(heard)), out)
        transports = bridge.metrics
    assert code == 0, out.getvalue()
    assert "heard 1 answer(s)" in out.getvalue()
    assert transports.calls == 1 and not transports.problems
    with wave.open(str(heard)) as wav:  # the echo of what was said, not silence
        assert rtlayer_native.rms_dbfs(wav.readframes(wav.getnframes())) > -50
