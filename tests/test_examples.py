"""Every example runs, as a user runs it (a subprocess, the embedded server), and says what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(60)


def run_example(name: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=45,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_raw_events() -> None:
    out = run_example("raw_events.py")
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == "session.created"
    assert "response.output_text.delta: 'Hi'" in lines
    assert lines[-1] == "response.done"


def test_interrupt_with_tracker() -> None:
    out = run_example("interrupt_with_tracker.py")
    assert "the server truncated the item at" in out
    played = int(out.split("played ")[1].split(" ms")[0])
    truncated = int(out.split("truncated the item at ")[1].split(" ms")[0])
    # The speaker reports whole 20 ms frames; how many it played by then depends on the machine's load,
    # what matters is that the server truncated at exactly that.
    assert truncated == played and played > 0 and played % 20 == 0


def test_function_call() -> None:
    out = run_example("function_call.py")
    assert "model calls get_weather({'city': 'Paris'})" in out
    assert "answer: It is sunny and 21 degrees in Paris." in out


def test_custom_transport() -> None:
    out = run_example("custom_transport.py")
    assert "in memory : Hello through memory" in out
    assert "websocket : Hello through a socket" in out


def test_custom_responder() -> None:
    out = run_example("custom_responder.py")
    assert out.strip() == "answer: You said 7 words."
