"""``rtlayer talk`` and ``rtlayer events`` as a user runs them: subprocesses against the embedded server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from rtlayer.wav import read_wav

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
    # The live log tells the turn in the order it happens to the user.
    steps = ("speech detected", "response started", "transcript: ", "audio received: ", "done: completed")
    assert [log.index(step) for step in steps] == sorted(log.index(step) for step in steps), log
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
    assert "notes.wav: not a PCM WAV file (file does not start with RIFF id)" in done.stderr
    assert not (tmp_path / "out.wav").exists()


# A WAV header of format 3 (IEEE float), 48 kHz mono 32-bit, with no samples.
FLOAT_WAV_HEADER = (
    b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00\x80\xbb\x00\x00"
    b"\x00\xee\x02\x00\x04\x00\x20\x00data\x00\x00\x00\x00"
)
NOT_WAV = [
    # (the file's bytes, what the error says it is)
    (b"", "(the file is empty)"),
    (b"RI", "(no RIFF header)"),
    (b"RIFF\x24\x00", "(the file ends inside its WAV header)"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(100), "(it is an MP3 file)"),
    (b"OggS" + bytes(100), "(it is an Ogg file)"),
    (b"RIFF\x04\x00\x00\x00AVI LIST", "(not a WAVE file)"),
    (b"hello, this is text", "(file does not start with RIFF id)"),
    (FLOAT_WAV_HEADER, "(32-bit float samples; rtlayer reads 16-bit PCM)"),
]


@pytest.mark.parametrize(("data", "reason"), NOT_WAV, ids=[r for _, r in NOT_WAV])
def test_a_file_that_is_not_a_wav_is_named_with_the_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "input.wav"
    path.write_bytes(data)
    with pytest.raises(ValueError) as caught:
        read_wav(str(path))
    assert str(caught.value) == f"{path}: not a PCM WAV file {reason}"


def _wav(path: Path, *, rate: int = 24000, width: int = 2, seconds: float = 0.2) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(b"\x10" * width * int(rate * seconds))
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing input", "cannot read it (No such file or directory)"),
        ("8-bit input", "8-bit samples; rtlayer reads 16-bit PCM"),
        ("unsupported rate", "unsupported sample rate 22050"),
        ("no such output folder", "does not exist"),
        ("output is a folder", "is a folder; give a file name"),
        ("unsupported answer rate", "unsupported sample rate 12345"),
    ],
)
def test_talk_says_what_is_wrong_before_calling(case: str, message: str, tmp_path: Path) -> None:
    good, out = _wav(tmp_path / "good.wav"), str(tmp_path / "out.wav")
    args = {
        "missing input": [str(tmp_path / "absent.wav"), "-o", out],
        "8-bit input": [str(_wav(tmp_path / "8bit.wav", width=1)), "-o", out],
        "unsupported rate": [str(_wav(tmp_path / "22k.wav", rate=22050)), "-o", out],
        "no such output folder": [str(good), "-o", str(tmp_path / "absent" / "out.wav")],
        "output is a folder": [str(good), "-o", str(tmp_path)],
        "unsupported answer rate": [str(good), "-o", out, "--rate", "12345"],
    }[case]
    done = rtlayer("talk", *args)
    assert done.returncode == 2
    assert done.stderr.startswith("rtlayer talk: ") and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "connected" not in done.stdout  # refused before any connection


def test_talk_reads_a_wav_cut_short_mid_sample(tmp_path: Path) -> None:
    cut = tmp_path / "cut.wav"
    cut.write_bytes(HELLO.read_bytes()[:-1])  # the last sample is missing a byte
    done = rtlayer("talk", str(cut), "-o", str(tmp_path / "reply.wav"), "--pace", "0", "--quiet")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reply.wav").exists()


def test_events_reports_bad_events_and_the_session_goes_on() -> None:
    lines = [
        {"type": "no.such.event"},
        {"type": "conversation.item.create", "item": {"type": "message", "role": "nobody"}},
        [1, 2, 3],
        {"type": "conversation.item.create", "item": _user_text("still here")},
        {"type": "response.create", "response": {"output_modalities": ["text"]}},
    ]
    done = rtlayer("events", stdin="\n".join(json.dumps(line) for line in lines) + "\n")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    errors = [e["error"] for e in events if e["type"] == "error"]
    assert len(errors) == 2 and all(e["message"] for e in errors)
    assert "not an event object with a type" in done.stderr
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "still here"
    assert events[-1]["type"] == "response.done"


def _user_text(text: str) -> dict[str, object]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


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
