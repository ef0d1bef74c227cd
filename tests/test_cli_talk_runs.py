"""``rtlayer talk`` as a tool: what it refuses before connecting, what ``--timeout`` bounds, the exit
status of a run without a complete answer, and Ctrl-C. Subprocesses against the embedded server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "tests" / "data" / "hello_24k.wav"  # 3.2 s of speech at 24 kHz

pytestmark = pytest.mark.timeout(60)


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    return env


def talk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtlayer.cli", "talk", *args],
        capture_output=True, text=True, timeout=40, env=_env(), cwd=ROOT, check=False,
    )  # fmt: skip


def _wav(path: Path, samples: int, rate: int = 24000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x10\x00" * samples)
    return path


@pytest.mark.parametrize(
    ("samples", "said"),
    [(0, "0 samples of audio"), (1, "1 sample of audio"), (479, "479 samples of audio")],
)
def test_an_empty_or_one_frame_wav_is_refused_before_connecting(
    tmp_path: Path, samples: int, said: str
) -> None:
    short = _wav(tmp_path / "short.wav", samples)
    done = talk(str(short), "-o", str(tmp_path / "out.wav"))
    assert done.returncode == 2
    assert (
        done.stderr
        == f"rtlayer talk: {short}: {said}; rtlayer talk needs at least 20 ms (480 samples at 24000 Hz)\n"
    )
    assert done.stdout == ""  # never connected


def test_an_output_that_cannot_be_opened_is_refused_before_connecting(tmp_path: Path) -> None:
    # /proc passes a permission check on its folder, but no file can be created there.
    done = talk(str(HELLO), "-o", "/proc/x.wav")
    assert done.returncode == 2
    assert done.stderr == "rtlayer talk: /proc/x.wav: cannot write it (No such file or directory)\n"
    assert done.stdout == ""


def test_checking_the_output_leaves_an_existing_file_untouched_and_creates_none(tmp_path: Path) -> None:
    from rtlayer.wav import check_writable

    existing = tmp_path / "old.wav"
    existing.write_bytes(b"the previous answer")
    check_writable(str(existing))
    assert existing.read_bytes() == b"the previous answer"
    check_writable(str(tmp_path / "new.wav"))
    assert not (tmp_path / "new.wav").exists()


def test_the_timeout_counts_from_the_end_of_the_input(tmp_path: Path) -> None:
    # 3.2 s of input streamed in real time, then about 1.8 s until the echo's answer has arrived: a
    # 3 s timeout over the whole run would cut the input; after the input it is enough.
    reply = tmp_path / "reply.wav"
    done = talk(str(HELLO), "-o", str(reply), "--pace", "1", "--timeout", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: completed" in done.stdout
    with wave.open(str(reply), "rb") as wav:
        assert wav.getnframes() > 24000  # more than a second of answer


def test_a_run_with_no_complete_answer_exits_1_and_keeps_what_arrived(tmp_path: Path) -> None:
    # 0.2 s after the input is far too short for the echo's answer (3.2 s of audio at 4x real time).
    reply = tmp_path / "reply.wav"
    done = talk(str(HELLO), "-o", str(reply), "--pace", "0", "--timeout", "0.2")
    assert done.returncode == 1
    assert done.stderr.startswith("rtlayer talk: no complete answer within 0.2 s; "), done.stderr
    assert done.stderr.count("\n") == 1
    if reply.exists():  # the start of the answer had arrived: it is kept, and the line says how much
        with wave.open(str(reply), "rb") as wav:
            seconds = wav.getnframes() / wav.getframerate()
        assert 0 < seconds < 3.2
        assert done.stderr.endswith(f"; wrote the {seconds:.2f} s received to {reply}\n")
    else:
        assert done.stderr.endswith("; no answer audio was received\n")


def _interrupt_when(tmp_path: Path, line: str) -> tuple[int, str, str]:
    """Run talk in real time, send SIGINT (Ctrl-C) once ``line`` is in its log; (status, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtlayer.cli", "talk", str(HELLO), "-o", str(tmp_path / "reply.wav"), "--pace", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    log = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            log.append(proc.stdout.readline())
            assert log[-1], "".join(log)
            if line in log[-1]:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(log) + out, err


def test_ctrl_c_during_the_answer_ends_with_one_line_and_keeps_what_arrived(tmp_path: Path) -> None:
    status, log, err = _interrupt_when(tmp_path, "answer audio arriving")
    assert status == 130, log + err
    assert err.startswith("rtlayer talk: interrupted; wrote the ") and err.count("\n") == 1, err
    assert err.endswith(f" s received to {tmp_path / 'reply.wav'}\n")
    with wave.open(str(tmp_path / "reply.wav"), "rb") as wav:
        assert wav.getnframes() > 0
        seconds = wav.getnframes() / wav.getframerate()
    assert f"wrote the {seconds:.2f} s received" in err


def test_ctrl_c_before_any_answer_writes_nothing(tmp_path: Path) -> None:
    status, log, err = _interrupt_when(tmp_path, "streaming")
    assert status == 130, log + err
    assert err == "rtlayer talk: interrupted; no answer audio was received\n"
    assert not (tmp_path / "reply.wav").exists()
