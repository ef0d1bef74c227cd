"""The media examples run as a user runs them: a WebRTC call, and a phone app answering a real sipp call.

``examples/webrtc_call.py`` runs alone (its embedded server in-process). ``examples/sip_phone_app.py``
runs as documented in its docstring: ``rtlayer serve --sip-port --webhook-url --webhook-secret`` in one
process, the app in another, and sipp (Debian's sip-tester) calling with PCMU speech.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import wave
from pathlib import Path

import pytest
from helpers_proxy import free_port
from sip_helpers import SECRET, SIPP, RtpSink, g711_speech, run_sipp
from test_examples import ROOT, run_example

import rtlayer_native

pytestmark = pytest.mark.timeout(60)

SPEECH = ROOT / "tests" / "data" / "hello_24k.wav"


def test_webrtc_call_speaks_a_wav_and_prints_the_answer_it_heard() -> None:
    out = run_example("webrtc_call.py")
    assert re.search(r"^call rtc_\w+ connected$", out, re.M), out
    assert "server: speech started" in out and "server: speech stopped" in out
    with wave.open(str(SPEECH), "rb") as f:
        spoken_s = f.getnframes() / f.getframerate()
    heard = re.search(r"heard: (\d+) ms of answer audio at (-?[\d.]+) dBFS", out)
    assert heard is not None, out
    heard_ms, level = int(heard[1]), float(heard[2])
    # the echo responder says the user's turn back: about as long as the WAV, and not silence
    assert 0.8 * spoken_s * 1000 <= heard_ms <= 1.5 * spoken_s * 1000, (heard_ms, spoken_s)
    assert level > -40.0
    described = re.search(r"heard said: Echo: \[speech ([\d.]+) s\]", out)
    assert described is not None, out
    assert abs(float(described[1]) * 1000 - heard_ms) <= 200


async def _line_with(stream: asyncio.StreamReader, marker: str, within: float) -> str:
    """The first line of ``stream`` containing ``marker`` (the process must not exit first)."""
    async with asyncio.timeout(within):
        while True:
            line = (await stream.readline()).decode()
            assert line, f"the process exited before printing {marker!r}"
            if marker in line:
                return line.strip()


async def test_sip_phone_app_answers_a_sipp_call(tmp_path: Path) -> None:
    assert SIPP is not None, "sipp is missing: run scripts/install-test-deps (Debian package sip-tester)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    app_port = free_port()
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtlayer.cli", "serve", "--port", "0", "--sip-port", "0",
        "--webhook-url", f"http://127.0.0.1:{app_port}/webhook", "--webhook-secret", SECRET,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    app: asyncio.subprocess.Process | None = None
    sink = RtpSink()
    await sink.start()
    try:
        assert serve.stderr is not None
        url = (await _line_with(serve.stderr, "listening on ", 15)).split("listening on ")[1].split()[0]
        sip_port = int((await _line_with(serve.stderr, "SIP on udp ", 5)).rsplit(":", 1)[1])
        app = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "examples" / "sip_phone_app.py"), "--url", url,
            "--port", str(app_port), "--secret", SECRET, "--hangup-after", "1", "--calls", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=ROOT,
        )  # fmt: skip
        assert app.stdout is not None
        await _line_with(app.stdout, f"webhook receiver on http://127.0.0.1:{app_port}/webhook", 15)

        (tmp_path / "speech.pcmu").write_bytes(g711_speech("pcmu"))
        sipp = await run_sipp("uac_pcmu_app_hangup", sip_port, tmp_path, keys={"rtp_sink": str(sink.port)})
        code, sipp_log = await sipp.wait(40)
        assert code == 0, sipp_log  # the scenario passed: 200 OK, then the app's BYE

        await asyncio.wait_for(app.wait(), 15)  # --calls 1: the app exits once its call ended
        log = (await app.stdout.read()).decode()
        assert app.returncode == 0, log
    finally:
        sink.close()
        for proc in (app, serve):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 10)

    call_id = re.search(r"(rtc_\w+): incoming call from sipp <sip:sipp@127\.0\.0\.1", log)
    assert call_id is not None, log
    lines = [line.removeprefix(f"{call_id[1]}: ") for line in log.splitlines() if line.startswith(call_id[1])]
    assert lines[0].startswith("incoming call from sipp"), log
    assert lines[1:3] == ["accepted", "caller speaking"], log
    said = [line for line in lines if line.startswith("caller said: ")]
    answered = [line for line in lines if line.startswith("agent said: Echo: ")]
    assert len(said) == 1 and len(answered) == 1, log  # one sentence, one turn, one answer
    assert answered[0].removeprefix("agent said: Echo: ") == said[0].removeprefix("caller said: ")
    assert lines[-2:] == ["hanging up after 1 answer(s)", "call ended"], log

    # the answer reached the phone as PCMU RTP: the caller's own speech said back, at a speaking level
    assert {p[1] for p in sink.packets} == {0}
    speech_ms = 1000 * len(g711_speech("pcmu", silence_s=0)) / 8000
    assert len(sink.packets) * 20 >= 0.5 * speech_ms, (len(sink.packets), speech_ms)
    assert rtlayer_native.rms_dbfs(rtlayer_native.ulaw_decode(sink.payload())) > -40.0
