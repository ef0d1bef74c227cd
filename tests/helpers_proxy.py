"""A real HTTP proxy for tests: Debian's ``tinyproxy`` on a free loopback port, with its own config.

The proxy only accepts clients from 127.0.0.1, only tunnels (CONNECT) to the ports the test names, can
require Basic authentication, and logs every request to a file the test reads afterwards (a CONNECT
shows up as ``Request (file descriptor N): CONNECT 127.0.0.1:PORT HTTP/1.1``). Start and stop are
bounded in time; the process is ended by its own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CuttableRelay", "TinyProxy", "free_port", "run_tinyproxy"]

TINYPROXY = shutil.which("tinyproxy")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class TinyProxy:
    """A running tinyproxy: where it listens, its log, and URLs with or without credentials."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    auth: tuple[str, str] | None

    @property
    def url(self) -> str:
        """The proxy URL, with the configured credentials in its userinfo when there are any."""
        if self.auth is None:
            return self.bare_url
        return self.url_with(*self.auth)

    @property
    def bare_url(self) -> str:
        """The proxy URL without credentials."""
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        """The proxy URL carrying the given (possibly wrong) credentials."""
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the proxy logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connect_lines(self) -> list[str]:
        """The logged CONNECT requests, one line each."""
        # Lines look like "CONNECT   <date> [pid]: Request (file descriptor 5): CONNECT host:port HTTP/1.1";
        # the first CONNECT is the log level, so look at what follows "Request (...): ".
        return [line for line in self.log().splitlines() if re.search(r"Request \([^)]*\): CONNECT ", line)]

    def forwarded_lines(self) -> list[str]:
        """The logged forwarded (non-CONNECT) requests, one line each."""
        return [
            line for line in self.log().splitlines() if re.search(r"Request \([^)]*\): (?!CONNECT )", line)
        ]


def _config(
    port: int, log_path: Path, pid_path: Path, connect_ports: Sequence[int], auth: tuple[str, str] | None
) -> str:
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        f'LogFile "{log_path}"',
        "LogLevel Connect",
        f'PidFile "{pid_path}"',
        "MaxClients 50",
        "Allow 127.0.0.1",
        "DisableViaHeader Yes",
    ]
    # Without any ConnectPort line tinyproxy allows CONNECT to every port; listing them keeps it to the test's.
    lines += [f"ConnectPort {p}" for p in connect_ports]
    if auth is not None:
        lines.append(f"BasicAuth {auth[0]} {auth[1]}")
    return "\n".join(lines) + "\n"


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tinyproxy exited at start with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"tinyproxy did not listen on 127.0.0.1:{port} within {timeout} s")


@contextlib.contextmanager
def run_tinyproxy(
    directory: Path,
    *,
    connect_ports: Sequence[int],
    auth: tuple[str, str] | None = None,
    start_timeout: float = 5.0,
) -> Iterator[TinyProxy]:
    """Run tinyproxy in the foreground for the duration of the block, then stop it (bounded)."""
    if TINYPROXY is None:
        raise RuntimeError(
            "tinyproxy is not installed: run scripts/install-test-deps (Debian package tinyproxy)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = directory / "tinyproxy.log"
    conf_path = directory / "tinyproxy.conf"
    conf_path.write_text(_config(port, log_path, directory / "tinyproxy.pid", connect_ports, auth))
    process = subprocess.Popen(
        [TINYPROXY, "-d", "-c", str(conf_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, process, start_timeout)
        yield TinyProxy(port=port, log_path=log_path, process=process, auth=auth)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class CuttableRelay:
    """A TCP relay on 127.0.0.1 in front of ``target_port`` that a test can cut or freeze.

    ``cut()`` aborts every relayed connection (what a crash or a network cut looks like to the client);
    ``frozen = True`` keeps connections open but stops relaying (a dead peer, for keepalive tests).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.frozen = False
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttableRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                if not self.frozen:
                    dst.write(data)
                    await dst.drain()
        with contextlib.suppress(Exception):
            dst.close()

    def cut(self) -> None:
        """Abort every relayed connection, without any close frame."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
