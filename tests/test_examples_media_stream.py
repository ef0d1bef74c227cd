"""The media-stream examples run as a user runs them (a subprocess per app), called by the provider
simulator: an aiohttp app, a Starlette app on uvicorn and a `websockets` app, each with two providers
(``--provider``), so every framework meets a JSON provider and every provider meets some framework."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from media_stream_helpers import hello_sentence
from test_examples import ROOT

from rtlayer.testing.phone import PhoneSimulator

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("example", "provider"),
    [
        ("media_stream_aiohttp.py", "twilio"),
        ("media_stream_aiohttp.py", "plivo"),
        ("media_stream_starlette.py", "telnyx"),
        ("media_stream_starlette.py", "exotel"),
        ("media_stream_websockets.py", "vonage"),
        ("media_stream_websockets.py", "twilio"),
    ],
)
async def test_a_media_stream_example_answers_a_simulated_call(example: str, provider: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    app = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / example), "--port", "0", "--calls", "1", "--provider", provider,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert app.stderr is not None
        url = (await _line_with(app.stderr, "listening on ws://", lines)).split("listening on ")[1].strip()
        async with PhoneSimulator(provider, url, custom={"order": "1234"}) as phone:
            phone.press("5")
            phone.say(hello_sentence(), 24000)
            answer = await phone.wait_for_answer_end(1, within=15)
            assert answer.played_ms >= 500
        await asyncio.wait_for(app.wait(), 15)  # --calls 1: it exits once the call ended
        lines += (await app.stderr.read()).decode().splitlines()
    finally:
        if app.returncode is None:
            app.kill()
            await app.wait()
    out = "\n".join(lines)
    assert app.returncode == 0, out
    assert "'order': '1234'}" in out
    assert "caller pressed 5" in out
    assert "answer completed" in out
    assert "call ended" in out.split("answer completed", 1)[1]
    assert phone.problems == []


async def _line_with(stream: asyncio.StreamReader, marker: str, lines: list[str]) -> str:
    async with asyncio.timeout(20):
        while True:
            line = (await stream.readline()).decode()
            assert line, "the example exited early:\n" + "\n".join(lines)
            lines.append(line.rstrip())
            if marker in line:
                return line
