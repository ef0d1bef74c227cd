"""SIP: concurrent phone calls from sipp into the embedded server; CPU per call and RTP pacing jitter.

sipp places ``CALLS`` calls at ``RATE`` per second (``-m CALLS -r RATE -l CALLS``), each streaming
speech as PCMU (``rtp_stream``, looped) for ``HOLD_S`` seconds, then hangs up. The server runs in its
own process with a responder that answers every turn with a long tone, so every call has audio
flowing both ways. The app (webhook receiver + ``CallsClient``) runs in this process and accepts
every call with server VAD that does not interrupt.

Measured while every call is up (a window after the last call was answered):

- the server process's CPU seconds per second of wall time, divided by the live calls: CPU per call,
  and its inverse, calls per core;
- RTP send-pacing lateness at the server's sender: how late each packet left against its deadline
  (``SipFront.pacing_jitter_ms``, recorded by the native pacer thread at ``sendto``), p50 and p99;
- the anchor, in the same run: sipp's own CPU per call for the same media (C, no session, no
  transcoding), read from ``/proc/PID/stat``.

The server's RTP sending thread asks for SCHED_FIFO 10 (the SIP front's default; granted to root or
CAP_SYS_NICE); ``RTLAYER_SIP_PACER_PRIORITY=0`` measures it in the fair class with a short time slice
(``pacer_scheduling`` in the output says which it got).

Two runs: on the machine as it is, and (``RTLAYER_BENCH_FULL`` only) under a bounded synthetic load:
one busy-looping Python process per CPU for the run's duration (killed at the end), the worst case for
a thread that must wake on time.

``python -m pytest bench/test_sip.py -s`` runs a short version (CI: ``--benchmark-disable``);
``RTLAYER_BENCH_FULL=1`` runs the 50-call version behind the figures in ``bench/README.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sip_helpers import PhoneApp, free_udp_port, g711_speech  # noqa: E402

FULL = bool(os.environ.get("RTLAYER_BENCH_FULL"))
CALLS = int(os.environ.get("RTLAYER_BENCH_SIP_CALLS", "50" if FULL else "6"))
RATE = 10
HOLD_S = 20.0 if FULL else 8.0
SCENARIO = ROOT / "tests" / "sip_scenarios" / "uac_pcmu_bench.xml"
SIPP = shutil.which("sipp")
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class _LongTone:
    """Answers every response with 30 s of a quiet tone in 100 ms parts, produced at twice real time
    (a streaming TTS's shape): output audio never runs dry during the window."""

    def __init__(self) -> None:
        rate, secs = 24000, 30
        import numpy as np

        t = np.arange(rate * secs) / rate
        self.pcm = (np.sin(2 * math.pi * 440 * t) * 0.2 * 32767).astype("<i2").tobytes()

    async def respond(self, request: Any) -> AsyncIterator[Any]:
        from rtlayer.server.responders import AudioPart

        for offset in range(0, len(self.pcm), 4800):
            yield AudioPart(self.pcm[offset : offset + 4800])
            await asyncio.sleep(0.05)


def _server_process(conn: Connection, webhook_url: str, secret: str) -> None:
    """The embedded server with a SIP front; answers "start"/"stop" with measurements."""
    from rtlayer.server.realtime_server import RealtimeServer

    async def main() -> None:
        server = RealtimeServer(
            sip_port=0, webhook_url=webhook_url, webhook_secret=secret, responder=_LongTone()
        )
        await server.start()
        # RTLAYER_SIP_PROMPT_START=0: the first frames of an answer wait for the next fill (the former way)
        server.sip.pacer.prompt_start = os.environ.get("RTLAYER_SIP_PROMPT_START", "1") != "0"
        conn.send({"url": server.url, "sip_port": server.sip.port})
        loop = asyncio.get_running_loop()
        mark: tuple[float, float] = (0.0, 0.0)
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            front = server.sip
            if cmd == "start":
                front.pacing_jitter_ms.clear()  # drains the native records first, then forgets them
                mark = (time.process_time(), time.monotonic())
                conn.send({"live": sum(1 for c in front.calls.values() if c.runner is not None)})
            elif cmd == "stop":
                cpu, wall = time.process_time() - mark[0], time.monotonic() - mark[1]
                jitter = sorted(front.pacing_jitter_ms)
                live = sum(1 for c in front.calls.values() if c.runner is not None)
                conn.send(
                    {
                        "cpu_s": cpu,
                        "wall_s": wall,
                        "live": live,
                        "jitter": jitter,
                        "counters": dataclasses.asdict(front.counters),
                        "rtp": front.rtp_stats(),
                        "pacer": front.pacer.stats(),
                        "pacer_scheduling": front.pacer.native.scheduling,
                        "answer_start": sorted(front.pacer.answer_start_ms),
                        "answer_follow": sorted(front.pacer.answer_follow_ms),
                    }
                )
            else:
                await server.close()
                conn.send("closed")
                return

    asyncio.run(main())


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def _steal_seconds() -> float:
    """CPU time the hypervisor took from this VM's CPUs (``/proc/stat`` steal), all CPUs together: no
    scheduling inside the machine can make up for it, so the bench reports it next to the lateness."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) / TICKS if len(fields) > 8 else 0.0


def _burners(seconds: float) -> list[subprocess.Popen[bytes]]:
    """One busy loop per CPU, each ending by itself after ``seconds`` (and killed by the caller)."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]


def _check(result: dict[str, Any], workdir: Path) -> None:
    print(json.dumps(result, indent=2))
    assert result["live_at_start"] == CALLS, result
    errors = "".join(p.read_text(errors="replace")[-2000:] for p in workdir.glob("*_errors.log"))
    assert result["sipp_exit"] == 0, errors
    assert result["pacer"]["refused"] == 0 and result["pacer"]["send_errors"] == 0, result


@pytest.mark.timeout(120)
def test_concurrent_calls_cpu_and_pacing(tmp_path: Path) -> None:
    _check(asyncio.run(_run(tmp_path)), tmp_path)


@pytest.mark.skipif(not FULL, reason="the synthetic load runs in RTLAYER_BENCH_FULL mode only")
@pytest.mark.timeout(120)
def test_concurrent_calls_pacing_under_cpu_load(tmp_path: Path) -> None:
    burners = _burners(CALLS / RATE + HOLD_S + 15.0)
    try:
        result = asyncio.run(_run(tmp_path))
    finally:
        for proc in burners:
            proc.kill()
            proc.wait(5)
    result["synthetic_load_processes"] = len(burners)
    _check(result, tmp_path)


async def _run(workdir: Path) -> dict[str, Any]:
    (workdir / "speech.pcmu").write_bytes(g711_speech("pcmu"))
    app = PhoneApp(server_url="")
    await app.start()
    config = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}},
    }

    async def accept_all() -> None:
        assert app.client is not None
        while True:
            call = await app.calls.get()
            asyncio.get_running_loop().create_task(app.client.accept(call.call_id, config))

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_server_process, args=(child, app.url, app.secret), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    info = await loop.run_in_executor(None, parent.recv)
    assert app.client is not None
    app.client.base_url = info["url"] + "/v1"
    acceptor = loop.create_task(accept_all())
    sipp = await asyncio.create_subprocess_exec(
        str(SIPP),
        "-sf", str(SCENARIO),
        "-m", str(CALLS), "-r", str(RATE), "-l", str(CALLS),
        "-d", str(int(HOLD_S * 1000)),
        "-i", "127.0.0.1", "-mi", "127.0.0.1",
        "-p", str(free_udp_port()), "-mp", str(free_udp_port()),
        "-nostdin", "-timeout", f"{int(HOLD_S + 40)}s", "-timeout_error", "-trace_err",
        "-s", "rtlayer",
        f"127.0.0.1:{info['sip_port']}",
        cwd=str(workdir), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    ramp = CALLS / RATE
    # every call placed, answered, and past its first turn (3.2 s of speech + VAD silence), so that
    # every call has answer audio flowing out during the window
    await asyncio.sleep(ramp + 5.0)
    parent.send("start")
    start = await loop.run_in_executor(None, parent.recv)
    sipp_cpu0, t0, steal0 = _cpu_seconds(sipp.pid), time.monotonic(), _steal_seconds()
    window = max(1.0, HOLD_S - ramp - 5.5)  # ends before the first call hangs up
    await asyncio.sleep(window)
    sipp_cpu1, t1, steal1 = _cpu_seconds(sipp.pid), time.monotonic(), _steal_seconds()
    parent.send("stop")
    stop = await loop.run_in_executor(None, parent.recv)
    try:
        await asyncio.wait_for(sipp.wait(), HOLD_S + 30)
    except TimeoutError:
        sipp.kill()
        await sipp.wait()
    acceptor.cancel()
    parent.send("close")
    await loop.run_in_executor(None, parent.recv)
    proc.join(5)
    await app.close()

    live = min(start["live"], stop["live"])
    cpu_per_call = stop["cpu_s"] / stop["wall_s"] / max(1, live)
    sipp_per_call = (sipp_cpu1 - sipp_cpu0) / (t1 - t0) / max(1, live)
    jitter = stop["jitter"]
    return {
        "calls": CALLS,
        "rate_per_s": RATE,
        "window_s": round(stop["wall_s"], 2),
        "live_at_start": start["live"],
        "live_at_stop": stop["live"],
        "server_cpu_core_fraction": round(stop["cpu_s"] / stop["wall_s"], 3),
        "server_cpu_per_call_pct": round(100 * cpu_per_call, 3),
        "calls_per_core": round(1 / cpu_per_call, 1) if cpu_per_call > 0 else None,
        "sipp_cpu_per_call_pct": round(100 * sipp_per_call, 3),
        "ratio_server_vs_sipp_per_call": round(cpu_per_call / sipp_per_call, 2)
        if sipp_per_call > 0
        else None,
        "rtp_packets_paced": len(jitter),
        "jitter_ms_p50": round(_pct(jitter, 0.50), 3),
        "jitter_ms_p99": round(_pct(jitter, 0.99), 3),
        "jitter_ms_p999": round(_pct(jitter, 0.999), 3),
        "share_over_2ms": round(sum(1 for j in jitter if j > 2.0) / max(1, len(jitter)), 5),
        "jitter_ms_max": round(jitter[-1], 3) if jitter else None,
        "jitter_ms_mean": round(statistics.fmean(jitter), 3) if jitter else None,
        # an answer's audio arriving in the session -> its first packet's deadline (over every answer)
        "answer_start_n": len(stop["answer_start"]),
        "answer_start_ms_p50": round(_pct(stop["answer_start"], 0.50), 2),
        "answer_start_ms_p99": round(_pct(stop["answer_start"], 0.99), 2),
        # answers whose audio came while the previous answer's last packets were still queued
        "answer_follow_n": len(stop["answer_follow"]),
        "answer_follow_ms_p50": round(_pct(stop["answer_follow"], 0.50), 2),
        "rtp": stop["rtp"],
        "pacer": stop["pacer"],
        "pacer_scheduling": stop["pacer_scheduling"],
        "sip": stop["counters"],
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "steal_pct": round(
            100 * (steal1 - steal0) / (t1 - t0) / (os.cpu_count() or 1), 2
        ),  # other processes on the machine add jitter
        "sipp_exit": sipp.returncode,
    }
