"""``rtlayer.load.locust``: the same callers as Locust users, in a master and two workers on loopback.

The master and the workers are separate ``locust`` processes, headless, bound to 127.0.0.1; each worker
writes how many values of each figure it reported (``--rtlayer-totals``), and the master's statistics must
be their sum: Locust adds up what the workers measured, nothing is lost or counted twice.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from collections import Counter
from pathlib import Path

from rtlayer.server import RealtimeServer

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "examples" / "locustfile.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _worker_totals(folder: Path) -> list[Counter[str]]:
    return [Counter(json.loads(path.read_text())) for path in sorted(folder.glob("totals-*.json"))]


def _locust(*args: str) -> list[str]:
    executable = shutil.which("locust")
    return [executable] if executable else [sys.executable, "-m", "locust"]


async def test_a_master_and_two_workers_add_up_what_each_worker_measured(tmp_path: Path) -> None:
    import asyncio

    port = _free_port()
    async with RealtimeServer() as server:
        common = ["-f", str(LOCUSTFILE), "--rtlayer-totals", str(tmp_path)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        master = await asyncio.create_subprocess_exec(
            *_locust(),
            *common,
            "--master",
            "--headless",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "2",
            "--expect-workers-max-wait",
            "30",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "7s",
            "--host",
            server.ws_url,
            "--json",
            "--skip-log",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        workers = [
            await asyncio.create_subprocess_exec(
                *_locust(),
                *common,
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                cwd=tmp_path,
                env=env,
            )
            for _ in range(2)
        ]
        try:
            async with asyncio.timeout(90):
                out, err = await master.communicate()
                for worker in workers:
                    await worker.wait()
        finally:
            for process in (master, *workers):
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    assert master.returncode == 0, err.decode()[-2000:]
    stats = json.loads(out)
    master_totals = Counter({f"{entry['method']}/{entry['name']}": entry["num_requests"] for entry in stats})
    per_worker = await asyncio.to_thread(_worker_totals, tmp_path)
    assert len(per_worker) == 2, "each worker writes its totals"
    worker_totals: Counter[str] = Counter()
    for mine in per_worker:
        assert mine["first_audio/sentence"] >= 1, "both workers ran callers"
        worker_totals.update(mine)
    assert +master_totals == worker_totals
    assert master_totals["connect/connect"] == 4


async def test_media_stream_users_call_a_bridge_as_twilio_would(tmp_path: Path) -> None:
    import asyncio
    import re

    bridge = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtlayer.cli",
        "bridge",
        "--provider",
        "twilio",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        assert bridge.stdout is not None
        async with asyncio.timeout(30):
            line = await bridge.stdout.readline()
        found = re.search(rb"media streams on (ws://127\.0\.0\.1:\d+/\S*)", line)
        assert found, line
        locust = await asyncio.create_subprocess_exec(
            *_locust(),
            "-f",
            str(ROOT / "examples" / "locustfile_phone.py"),
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "6s",
            "--host",
            found.group(1).decode(),
            "--json",
            "--skip-log",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        async with asyncio.timeout(60):
            out, err = await locust.communicate()
    finally:
        bridge.terminate()
        await bridge.wait()
    assert locust.returncode == 0, err.decode()[-2000:]
    stats = {(entry["method"], entry["name"]): entry for entry in json.loads(out)}
    assert stats[("first_audio", "sentence")]["num_requests"] >= 2
    assert stats[("first_audio", "sentence")]["num_failures"] == 0
    assert not any(method == "error" for method, _ in stats)
