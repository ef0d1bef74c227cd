"""``rtlayer load``: sessions one generator core drives at real-time pace, against a bare websockets client.

Each caller streams 20 ms frames of speech and silence at real-time pace over a WebSocket, and receives and
tracks the answers (audio decoded and "played", turns measured). The server (``rtlayer serve``, its
default 4x answer pacing) runs in its own process on the other CPU; each generator runs in a process of its
own pinned to one CPU, and its CPU time over the steady part of the run (after the ramp) is divided by the
session-seconds it drove: **CPU per session-second**, and its inverse, **sessions per core**.

The anchors, same run, same server: a bare ``websockets`` client doing the same sends (the same
``input_audio_buffer.append`` JSON, pre-encoded, on the same 20 ms schedule) and receives (every event
parsed with orjson, audio deltas base64-decoded), and nothing else; and the same client made lean (one
ticker for every connection, each frame written through the connection's sans-I/O protocol to its socket, as
``rtlayer load`` does since its ``FrameClock``): the floor of that work in Python.

Run it:

- ``python -m pytest bench/test_load_generator.py`` (or ``--benchmark-disable``, as CI does): a smoke run,
  5 sessions for 3 s each way, that checks the machinery;
- ``python bench/test_load_generator.py [SESSIONS] [SECONDS]`` (default 200 sessions, 15 s): the figures for
  ``bench/README.md``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FRAME_MS = 20
RAMP_PER_S = 100.0


def _pin(cpu: int) -> Any:
    return lambda: os.sched_setaffinity(0, {cpu})


def _cpus() -> tuple[int, int]:
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0], cpus[-1]


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """``rtlayer serve`` on the last CPU; returns the process and its WebSocket URL."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtlayer.cli",
            "serve",
            "--port",
            "0",
            "--max-sessions",
            "5000",
            "--max-connections",
            "10000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        preexec_fn=_pin(_cpus()[1]),
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    found = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", line)
    assert found, line
    # Keep reading its log, so that a full pipe never blocks the server.
    threading.Thread(target=server.stdout.read, daemon=True).start()
    return server, f"ws://127.0.0.1:{int(found.group(1))}/v1/realtime"


# -- the anchor: a bare websockets client --------------------------------------------------------------------


async def bare_clients(url: str, sessions: int, seconds: float, lean: bool = False) -> dict[str, float]:
    """Same sends and receives as rtlayer's callers, nothing else; CPU over the steady window.

    ``lean``: the floor of the same work in Python: one 20 ms ticker for every connection (four phases, as
    rtlayer's clock) writing each frame through the connection's sans-I/O protocol straight to its socket,
    instead of a sleep and an ``await ws.send`` per connection per frame."""
    import orjson
    from websockets.asyncio.client import connect

    from rtlayer.load.scenario import CALLER_FORMAT, default_scenario

    speech = default_scenario().turns[0].speech
    assert speech is not None
    frame = CALLER_FORMAT.bytes_for_ms(FRAME_MS)
    silence = bytes(frame)
    # One turn: the sentence, then 3 s of silence (the answer plays, then a pause), looped.
    pcm = speech + silence * (3000 // FRAME_MS)
    pcm += bytes(-len(pcm) % frame)
    frames = [
        json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + frame]).decode()}
        )
        for i in range(0, len(pcm), frame)
    ]
    loop = asyncio.get_running_loop()
    start = loop.time()
    steady_from = start + sessions / RAMP_PER_S
    until = steady_from + seconds
    received = [0]
    conns: list[Any] = []

    async def ticker() -> None:
        """The lean sends: every connection's next frame, in four phases 5 ms apart."""
        from websockets.protocol import State

        step = FRAME_MS / 1000 / 4
        tick = 0
        next_at = loop.time()
        while loop.time() < until:
            next_at += step
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            for k in range(tick % 4, len(conns), 4):
                ws, sent = conns[k]
                if ws.protocol.state is State.OPEN:
                    # Each connection from the start of the file, as the other clients do.
                    ws.protocol.send_text(frames_utf8[sent % len(frames)])
                    for data in ws.protocol.data_to_send():
                        ws.transport.write(data)
                    conns[k][1] = sent + 1
            tick += 1

    frames_utf8 = [frame.encode() for frame in frames]

    async def one(index: int) -> None:
        await asyncio.sleep(index / RAMP_PER_S)
        async with connect(
            url + "?model=gpt-realtime",
            additional_headers={"Authorization": "Bearer x"},
            max_size=None,
            compression=None,
        ) as ws:

            async def reader() -> None:
                async for message in ws:
                    event = orjson.loads(message)
                    if event["type"] == "response.output_audio.delta":
                        received[0] += len(base64.b64decode(event["delta"]))

            task = asyncio.create_task(reader())
            if lean:
                conns.append([ws, 0])
                await asyncio.sleep(max(0.0, until - loop.time()))
                task.cancel()
                return
            next_at = loop.time()
            i = 0
            while loop.time() < until:
                next_at += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                await ws.send(frames[i % len(frames)])
                i += 1
            task.cancel()

    tasks = [asyncio.create_task(one(i)) for i in range(sessions)]
    if lean:
        tasks.append(asyncio.create_task(ticker()))
    await asyncio.sleep(max(0.0, steady_from - loop.time()))
    cpu0, wall0, kernel0 = time.process_time(), time.monotonic(), os.times().system
    await asyncio.sleep(max(0.0, until - loop.time()))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    kernel = os.times().system - kernel0
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"cpu_s": cpu, "kernel_s": kernel, "wall_s": wall, "received_audio_bytes": received[0]}


def run_bare(url: str, sessions: int, seconds: float, lean: bool = False) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--bare-lean" if lean else "--bare", url, str(sessions), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + sessions / RAMP_PER_S + 60,
        cwd=ROOT,
        preexec_fn=_pin(_cpus()[0]),
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- rtlayer's callers -----------------------------------------------------------------------------------------


def run_rtlayer(url: str, sessions: int, seconds: float, report: Path) -> dict[str, Any]:
    """``rtlayer load`` in a process pinned to the first CPU; its report's generator samples give the CPU."""
    duration = seconds + sessions / RAMP_PER_S
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rtlayer.cli",
            "load",
            "--url",
            url,
            "--sessions",
            str(sessions),
            "--ramp",
            str(RAMP_PER_S),
            "--duration",
            str(duration),
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        cwd=ROOT,
        preexec_fn=_pin(_cpus()[0]),
        check=False,
    )
    data: dict[str, Any] = json.loads((report / "report.json").read_text())
    return data


def measure(sessions: int, seconds: float, report: Path) -> dict[str, Any]:
    server, url = start_server()
    try:
        bare = run_bare(url, sessions, seconds)
        lean = run_bare(url, sessions, seconds, lean=True)
        rtlayer = run_rtlayer(url, sessions, seconds, report)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    bare_per = bare["cpu_s"] / (sessions * bare["wall_s"])
    lean_per = lean["cpu_s"] / (sessions * lean["wall_s"])
    cpu = rtlayer["generator"]["cpu_percent"]
    # The p50 of the per-second samples: the ramp's seconds and the last, partial one are the tails.
    ours_per = cpu["p50"] / 100 / sessions
    return {
        "sessions": sessions,
        "rtlayer_ms_per_session_s": ours_per * 1000,
        "bare_ms_per_session_s": bare_per * 1000,
        "lean_ms_per_session_s": lean_per * 1000,
        # the kernel's share of the lean floor (send(2)/recv(2), loopback TCP, epoll): what no client in any
        # language avoids for the same frames on the same sockets
        "lean_kernel_ms_per_session_s": 1000 * lean["kernel_s"] / (sessions * lean["wall_s"]),
        "bare_kernel_ms_per_session_s": 1000 * bare["kernel_s"] / (sessions * bare["wall_s"]),
        "ratio": ours_per / bare_per,
        "ratio_to_lean": ours_per / lean_per,
        "rtlayer_sessions_per_core": 1 / ours_per,
        "bare_sessions_per_core": 1 / bare_per,
        "rtlayer_saturated": rtlayer["generator"]["saturated"],
        "rtlayer_late_frames": rtlayer["generator"]["late_frames"],
        "rtlayer_errors": rtlayer["errors"],
        "rtlayer_first_audio_p50": rtlayer["figures"]["first_audio"]["all"]["p50"],
    }


def test_generator_cost_beside_a_bare_websockets_client(tmp_path: Path) -> None:
    figures = measure(5, 3.0, tmp_path)
    print(json.dumps(figures, indent=2))
    assert figures["rtlayer_errors"] == {}
    assert not figures["rtlayer_saturated"]
    assert figures["rtlayer_first_audio_p50"] is not None


if __name__ == "__main__":
    if sys.argv[1] in ("--bare", "--bare-lean"):
        url, n, s = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(asyncio.run(bare_clients(url, n, s, lean=sys.argv[1] == "--bare-lean"))))
    else:
        import tempfile

        sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 200
        seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(measure(sessions, seconds, Path(folder)), indent=2))
