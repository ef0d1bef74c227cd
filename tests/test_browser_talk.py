"""A real browser: headless Chromium talks to the embedded server through the talk page over WebRTC.

The browser and the server it talks to run as one subprocess (``browser_talk_driver.py``) inside a
loopback-only network namespace (``unshare -n``), so nothing Chromium tries can leave the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("browser_talk_driver.py")
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.timeout(60)


def run_in_loopback_namespace(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(DRIVER.parent), env.get("PYTHONPATH", "")])
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def browser_call() -> dict[str, object]:
    # A missing peer is a failure, not a skip: scripts/install-test-deps installs them.
    assert Path("/usr/bin/chromium").exists(), "Debian's chromium is missing: run scripts/install-test-deps"
    assert shutil.which("unshare") is not None, "unshare (util-linux) is missing"
    probe = run_in_loopback_namespace("true", timeout=10)
    assert probe.returncode == 0, f"cannot create a network namespace here: {probe.stderr.strip()}"
    done = run_in_loopback_namespace(sys.executable, str(DRIVER), str(ARTIFACTS), timeout=50)
    assert done.returncode == 0, f"driver failed:\n{done.stderr[-3000:]}"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_server_heard_the_wav(browser_call):
    wav = browser_call["wav"]
    turn = browser_call["server"]["turns"][0]  # the first user turn, as the session committed it
    assert browser_call["connected"] == "connected"
    # All of the WAV's speech, and at its level: the browser's processing was off (Opus round trip).
    assert abs(turn["loud_ms"] - wav["loud_ms"]) <= 100, (turn, wav)
    assert wav["duration_ms"] <= turn["duration_ms"] <= wav["duration_ms"] + 1200
    assert turn["loud_rms"] == pytest.approx(wav["loud_rms"], rel=0.25)


def test_the_browser_received_the_answer(browser_call):
    inbound = browser_call["browser"]["inbound"]
    answer_ms = browser_call["server"]["answer_frames_sent"] * 20
    assert 1500 <= answer_ms <= 1540  # the responder's 1.5 s tone, all of it (+ the resampler's tail)
    assert inbound["packetsReceived"] >= 75 and inbound["packetsLost"] == 0
    # A 0.3-amplitude tone: level and energy (level^2 x seconds) show it was heard, not silence.
    assert browser_call["browser"]["maxAudioLevel"] > 0.1
    assert inbound["totalAudioEnergy"] > 0.3**2 * 1.5 * 0.3
    assert browser_call["browser"]["outputLevelMax"] > 0.05  # the page's own meter (Web Audio)


def test_data_channel_events_arrived_and_hangup_released_everything(browser_call):
    events = browser_call["events"]
    for kind in ("session.created", "input_audio_buffer.speech_started", "response.done"):
        assert events.get(kind, 0) >= 1, kind
    # The spoken turn's answer played to its end; the text turn's was interrupted by the page's button.
    assert events["response.created"] == events["output_audio_buffer.started"] == 2
    assert events["output_audio_buffer.stopped"] == events["output_audio_buffer.cleared"] == 1
    assert "error" not in events  # the page cancels only a response still being generated
    assert browser_call["calls_left"] == 0 and browser_call["peers_left"] == 0
    assert browser_call["console_errors"] == []
    assert browser_call["invalid_events"] == []  # every server event valid for the official client
    assert (ARTIFACTS / "browser_talk.png").stat().st_size > 10_000


def test_the_page_shows_the_conversation_as_a_transcript(browser_call):
    # the spoken turn (its words from input transcription, one turn for the WAV's two sentences), the
    # answer's words, then the typed turn and its interrupted answer, in conversation order
    assert len(browser_call["server"]["turns"]) == 1
    roles = [(e["role"], e["text"]) for e in browser_call["transcript"]]
    assert roles[:3] == [
        ("user", "Hello there, how are you today?"),
        ("assistant", "a tone"),
        ("user", "Hello there"),
    ], roles
    assert roles[3][0] == "assistant"
    text = browser_call["transcript_text"]
    assert "You" in text and "Assistant" in text and "Hello there, how are you today?" in text
    # the raw events are still there, folded away
    assert browser_call["log_folded"] and not browser_call["log_visible"]
