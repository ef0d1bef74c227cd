"""``rtlayer talk`` and ``rtlayer events`` as a user runs them: subprocesses against the embedded server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "tests" / "data" / "hello_24k.wav"

pytestmark = pytest.mark.timeout(60)


def rtlayer(*args: str, stdin: str | None = None, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "rtlayer.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_talk_writes_the_spoken_answer(tmp_path: Path) -> None:
    reply = tmp_path / "reply.wav"
    done = rtlayer("talk", str(HELLO), "-o", str(reply), "--pace", "0", "--rate", "16000")
    assert done.returncode == 0, done.stderr
    log = done.stdout
    for line in (
        "connected to the embedded server",
        "speech detected",
        "response started",
        "transcript: ",
        "answer audio arriving",
        "audio received: ",
        "done: completed",
        f"wrote {reply}",
    ):
        assert line in log, f"missing {line!r} in:\n{log}"
    with wave.open(str(reply), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        seconds = wav.getnframes() / 16000
    # The echo responder says back what it heard: about as long as the 3.2 s of input.
    assert 2.0 < seconds < 5.0


def test_talk_refuses_a_file_that_is_not_a_wav(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.wav"
    bogus.write_text("not audio")
    done = rtlayer("talk", str(bogus), "-o", str(tmp_path / "out.wav"))
    assert done.returncode == 2
    assert "not a PCM WAV file" in done.stderr
    assert not (tmp_path / "out.wav").exists()


def test_events_prints_every_server_event_and_waits_for_the_response() -> None:
    lines = [
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ping"}]},
        },
        "this line is not json",
        {"type": "response.create", "response": {"output_modalities": ["text"]}},
    ]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    done = rtlayer("events", stdin=stdin)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "session.created"
    assert types[-1] == "response.done"  # EOF came long before: it waited for the answer
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "ping"
    assert "not JSON" in done.stderr
