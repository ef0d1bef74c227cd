"""``rtlayer serve`` in a child process, as a hostile client meets it: its RSS, its health, and a probe session.

Resource tests run the server in its own process so that what they measure (its RSS, the latency its other
sessions see) is the server's alone, never the test client's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

ROOT = Path(__file__).resolve().parents[1]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``python -m rtlayer.cli serve --port PORT ARGS...``; ``async with`` starts it and kills it after."""

    def __init__(self, *args: str, port: int = 0, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.port = port
        self.env = env
        self.url = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = dict(os.environ, **(self.env or {}))
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtlayer.cli", "serve", "--port", str(self.port), *self.args,
            stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, cwd=str(ROOT), env=env,
        )  # fmt: skip
        assert self.proc.stderr is not None
        async with asyncio.timeout(20):
            while "listening on " not in (line := (await self.proc.stderr.readline()).decode()):
                assert line, f"rtlayer serve exited early: {self.log}"
                self.log.append(line)
        self.log.append(line)
        self.url = line.split("listening on ")[1].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        self._drain = asyncio.get_running_loop().create_task(self._read_log())

    async def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log.append(line.decode())
            del self.log[:-2000]  # bounded: the last lines are what a failure needs

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:] + "/v1/realtime?model=gpt-realtime"

    def cmdline(self) -> bytes:
        """What any user of the machine reads in ``/proc/PID/cmdline`` (a key given there leaks)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/cmdline", "rb") as f:
            return f.read()

    def rss_mb(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    async def health(self) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body

        return await asyncio.to_thread(get)

    async def wait_sessions(self, at_most: int, within: float = 20.0) -> None:
        """Poll ``/healthz`` until at most ``at_most`` sessions are open (another process: no event to await)."""
        async with asyncio.timeout(within):
            while (await self.health())["sessions"] > at_most:  # noqa: ASYNC110
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL, by the pid this object started: no goodbye to any client."""
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                await self.kill()
        if self._drain is not None:
            self._drain.cancel()

    async def __aenter__(self) -> ServeProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_session(url: str, **kwargs: Any) -> ClientConnection:
    """A raw WebSocket session, past its ``session.created``."""
    ws = await websockets.connect(url, additional_headers={"Authorization": "Bearer x"}, **kwargs)
    async with asyncio.timeout(10):
        while json.loads(await ws.recv())["type"] != "session.created":
            pass
    return ws


class LatencyProbe:
    """Another client's view of the server: the round trip of one cheap event, every ``interval`` s.

    Each probe is a ``conversation.item.retrieve`` of an item that does not exist: the session answers it
    with an ``error`` carrying the probe's ``event_id``, through the whole path (socket, parser, session,
    serializer, writer) and nothing else. The probe runs in a process of its own, so that the test's own
    attacking client (busy reading a flood of events) never delays the measurement.
    """

    def __init__(self, url: str, interval: float = 0.02) -> None:
        self.url = url
        self.interval = interval
        self.rtts: list[float] = []
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> LatencyProbe:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "probe", self.url, str(self.interval),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None
        async with asyncio.timeout(20):
            assert (await self.proc.stdout.readline()).strip() == b"ready"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        async with asyncio.timeout(70):
            out = await self.proc.stdout.read()
            await self.proc.wait()
        self.rtts = json.loads(out)

    @property
    def worst_ms(self) -> float:
        return 1000 * max(self.rtts, default=0.0)


async def _probe(url: str, interval: float) -> None:
    """The probe process: round trips until stdin closes, then their list (seconds) as JSON on stdout."""
    loop = asyncio.get_running_loop()
    stop = loop.run_in_executor(None, sys.stdin.buffer.read)
    rtts: list[float] = []
    ws = await open_session(url)
    print("ready", flush=True)
    n = 0
    while not stop.done():
        n += 1
        probe = f"probe_{n}"
        sent = time.monotonic()
        await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": "x", "event_id": probe}))
        async with asyncio.timeout(60):
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "error" and event["error"].get("event_id") == probe:
                    break
        rtts.append(time.monotonic() - sent)
        await asyncio.sleep(interval)
    await ws.close()
    print(json.dumps(rtts), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["probe"]:
    asyncio.run(_probe(sys.argv[2], float(sys.argv[3])))
