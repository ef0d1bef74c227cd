"""Faulty and hostile servers, over real loopback sockets: every wait ends, every failure is counted,
nothing is left open.

Each test runs against both socket transports (the ``websockets`` client and the fetch-upgrade one over
httpx), because each has its own connection object under the shared shell. The servers are small
``websockets`` servers on 127.0.0.1 that misbehave on purpose, or a raw TCP peer that stops reading.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from helpers import Recorder
from websockets.asyncio.server import ServerConnection, serve

from rtlayer.exceptions import ConnectionClosedError
from rtlayer.transport import TransportStatus
from rtlayer.transports import BaseRealtimeTransport, WebSocketTransport
from rtlayer.transports._upgraded import UpgradedConnection
from rtlayer.transports.fetch_upgrade import FetchUpgradeTransport

pytestmark = pytest.mark.timeout(30)

CREATED = json.dumps(
    {"type": "session.created", "event_id": "e0", "session": {"id": "s", "type": "realtime"}}
)
DELTA = {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "output_index": 0}

#: Server events that are valid JSON with fields of the wrong type, and the field each gets wrong.
FOUR_ZERO_BYTES = base64.b64encode(bytes(4)).decode()
WRONG_TYPED: list[tuple[dict[str, Any], str]] = [
    ({**DELTA, "content_index": 0, "delta": "abc"}, "base64"),
    ({**DELTA, "content_index": "zero", "delta": FOUR_ZERO_BYTES}, "content_index"),
    ({**DELTA, "content_index": 0, "delta": base64.b64encode(bytes(3)).decode()}, "PCM16"),  # odd length
    ({**DELTA, "item_id": ["i"], "content_index": 0, "delta": FOUR_ZERO_BYTES}, "unhashable"),
    (
        {
            "type": "response.done",
            "response": {"id": "r", "status": "completed", "usage": {"input_tokens": "many"}},
        },
        "many",
    ),
]

Make = Callable[..., BaseRealtimeTransport]


def _websocket(**options: Any) -> BaseRealtimeTransport:
    return WebSocketTransport(**options)


def _fetch_upgrade(**options: Any) -> BaseRealtimeTransport:
    return FetchUpgradeTransport(trust_env=False, **options)


SOCKET_TRANSPORTS = pytest.mark.parametrize(
    "make", [_websocket, _fetch_upgrade], ids=["websocket", "fetch-upgrade"]
)


class Peers:
    """A websockets server on 127.0.0.1 running ``behaviour`` for each connection; counts what it saw."""

    def __init__(self, behaviour: Callable[[ServerConnection], Awaitable[None]]) -> None:
        self.behaviour = behaviour
        self.open: set[ServerConnection] = set()
        self.accepted = 0
        self.url = ""

    async def _handle(self, ws: ServerConnection) -> None:
        self.open.add(ws)
        self.accepted += 1
        try:
            await self.behaviour(ws)
        finally:
            self.open.discard(ws)


@pytest.fixture
async def peers() -> AsyncIterator[
    Callable[[Callable[[ServerConnection], Awaitable[None]]], Awaitable[Peers]]
]:
    servers: list[Any] = []

    async def start(behaviour: Callable[[ServerConnection], Awaitable[None]]) -> Peers:
        p = Peers(behaviour)
        server = await serve(p._handle, "127.0.0.1", 0, ping_interval=None)
        servers.append(server)
        p.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/realtime"
        return p

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _tasks_left() -> list[asyncio.Task[Any]]:
    """The client's tasks still running (the test servers' own connection handlers are not counted)."""
    return [
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task() and not _is_test_server(task.get_coro())
    ]


def _is_test_server(coro: Any) -> bool:
    code = getattr(coro, "cr_code", None)
    return code is not None and code.co_filename.endswith(os.path.join("websockets", "asyncio", "server.py"))


def _open_sockets() -> int:
    """TCP sockets this process holds (client and server sides alike)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


@SOCKET_TRANSPORTS
@pytest.mark.parametrize("raw_listener", [False, True], ids=["typed", "with-raw-listener"])
async def test_a_wrong_typed_server_event_is_an_error_event_and_the_connection_carries_on(
    make: Make, peers: Callable[..., Awaitable[Peers]], raw_listener: bool
) -> None:
    """Each wrong-typed event becomes one ``error`` event, whether or not someone reads the raw events
    (an SDK's model does: audio deltas then go through ``*`` first, by the same checks)."""

    async def behaviour(ws: ServerConnection) -> None:
        await ws.send(CREATED)
        for event, _ in WRONG_TYPED:
            await ws.send(json.dumps(event))
        await ws.send(
            json.dumps(
                {
                    "type": "response.output_text.delta",
                    "delta": "still here",
                    "item_id": "i",
                    "response_id": "r",
                }
            )
        )
        await ws.wait_closed()

    server = await peers(behaviour)
    t = make(url=server.url, api_key="k")
    rec = Recorder(t, ("error", "output_text_delta", *(("*",) if raw_listener else ())))
    await t.connect()
    assert (await rec.first("output_text_delta")).delta == "still here"
    if raw_listener:  # every event reached ``*`` first, the wrong-typed ones included
        assert [e["type"] for e in rec.events["*"]][1:-1] == [e["type"] for e, _ in WRONG_TYPED]
    errors = rec.events["error"]
    assert [e.code for e in errors] == ["invalid_server_event"] * len(WRONG_TYPED)
    for error, (event, what) in zip(errors, WRONG_TYPED, strict=True):
        assert event["type"] in error.message and what in error.message
    assert t.status is TransportStatus.CONNECTED and t.reconnects == 0 and server.accepted == 1
    await t.close()


@SOCKET_TRANSPORTS
async def test_a_wrong_typed_event_on_the_fast_audio_path_is_reported_too(
    make: Make, peers: Callable[..., Awaitable[Peers]]
) -> None:
    """With no ``*`` listener the audio delta skips the generic dispatch: the same checks apply there."""

    async def behaviour(ws: ServerConnection) -> None:
        await ws.send(CREATED)
        await ws.send(json.dumps(WRONG_TYPED[0][0]))
        await ws.send(json.dumps({**DELTA, "content_index": 0, "delta": FOUR_ZERO_BYTES}))
        await ws.wait_closed()

    server = await peers(behaviour)
    t = make(url=server.url, api_key="k")
    rec = Recorder(t, ("error", "audio"))
    await t.connect()
    assert (await rec.first("audio")).data == bytes(4)
    assert [e.code for e in rec.events["error"]] == ["invalid_server_event"]
    assert "base64" in rec.events["error"][0].message
    assert t.status is TransportStatus.CONNECTED
    await t.close()


@SOCKET_TRANSPORTS
async def test_reconnects_stop_at_the_budget_when_every_connection_opens_then_fails(
    make: Make, peers: Callable[..., Awaitable[Peers]]
) -> None:
    """A server that accepts each connection, creates the session, then drops it (no close frame): the
    budget counts those failures too, so the reconnections stop at the limit; nothing stays open."""

    async def behaviour(ws: ServerConnection) -> None:
        await ws.send(CREATED)
        await asyncio.sleep(0.05)
        ws.transport.abort()

    server = await peers(behaviour)
    sockets_before = _open_sockets()
    t = make(url=server.url, api_key="k", max_reconnect_attempts=3, reconnect_backoff=(0.01, 0.02))
    rec = Recorder(t, ("error", "connection_change"))
    await t.connect()
    while t.status is not TransportStatus.DISCONNECTED:
        await rec.next("connection_change", within=5)
    assert t.reconnects == 3
    assert server.accepted == 4  # the first connection and three reconnections, then no more
    attempts = [
        c.attempt for c in rec.events["connection_change"] if c.status is TransportStatus.RECONNECTING
    ]
    assert attempts == [1, 2, 3]
    assert rec.events["error"][-1].code == "reconnect_failed"
    await t.close()
    await asyncio.sleep(0.05)  # the server's handlers see the ends
    assert server.open == set()
    assert _tasks_left() == []
    assert _open_sockets() <= sockets_before


@SOCKET_TRANSPORTS
async def test_close_leaves_no_socket_and_no_task(make: Make, peers: Callable[..., Awaitable[Peers]]) -> None:
    async def behaviour(ws: ServerConnection) -> None:
        await ws.send(CREATED)
        await ws.wait_closed()

    server = await peers(behaviour)
    sockets_before = _open_sockets()
    t = make(url=server.url, api_key="k")
    await t.connect()
    assert len(server.open) == 1
    await t.close()
    await t.close()
    await asyncio.sleep(0.05)
    assert server.open == set() and t.status is TransportStatus.DISCONNECTED
    assert _tasks_left() == []
    assert _open_sockets() <= sockets_before


@SOCKET_TRANSPORTS
async def test_close_during_a_flood_returns_and_ends_disconnected(
    make: Make, peers: Callable[..., Awaitable[Peers]]
) -> None:
    async def behaviour(ws: ServerConnection) -> None:
        await ws.send(CREATED)
        delta = json.dumps(
            {"type": "response.output_text.delta", "delta": "x", "item_id": "i", "response_id": "r"}
        )
        with contextlib.suppress(Exception):
            for _ in range(100_000):
                await ws.send(delta)

    server = await peers(behaviour)
    t = make(url=server.url, api_key="k", ping_interval=0.2, ping_timeout=0.2)
    await t.connect()
    await asyncio.sleep(0.5)
    await t.close()  # never raises (no CancelledError from inside the connection)
    assert t.status is TransportStatus.DISCONNECTED
    assert _tasks_left() == []


class _StopsReading:
    """A raw TCP WebSocket peer: completes the handshake, says ``session.created``, then never reads again."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/realtime"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        proto = (
            b"Sec-WebSocket-Protocol: realtime\r\n" if b"sec-websocket-protocol" in request.lower() else b""
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n" + proto + b"\r\n"
        )
        msg = CREATED.encode()
        writer.write(bytes([0x81, 126]) + len(msg).to_bytes(2, "big") + msg)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self.writers.append(writer)  # kept referenced: a collected transport would close the socket

    async def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@SOCKET_TRANSPORTS
async def test_send_audio_to_a_peer_that_stops_reading_ends_with_a_clear_error(make: Make) -> None:
    peer = _StopsReading()
    url = await peer.start()
    t = make(url=url, api_key="k", send_timeout=0.5, ping_interval=0.3, ping_timeout=0.3, reconnect=False)
    rec = Recorder(t, ("error",))
    await t.connect()
    chunk = bytes(48_000)  # 1 s of PCM16 at 24 kHz
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(ConnectionClosedError, match=r"stopped reading|closed|disconnect"):
        async with asyncio.timeout(10):
            for _ in range(10_000):  # 480 MB: far past every socket buffer on the way
                await t.send_audio(chunk)
    assert loop.time() - start < 5
    codes = {e.code for e in rec.events["error"]}
    assert codes & {"send_timeout", "keepalive_timeout"}, codes
    await t.close()
    assert t.status is TransportStatus.DISCONNECTED and _tasks_left() == []
    await peer.close()


async def test_an_upgraded_connection_closes_quietly_after_an_abort() -> None:
    """What a keepalive timeout does (abort) followed by the shell's close(): close() returns, it does not
    raise the reader's cancellation into the caller."""

    class Silent:
        async def read(self, n: int) -> bytes:
            await asyncio.sleep(3600)
            return b""

        async def write(self, data: bytes) -> None:
            pass

        async def aclose(self) -> None:
            pass

    conn = UpgradedConnection(Silent(), "ws://127.0.0.1:1/v1/realtime", close_timeout=1.0)
    conn.abort()
    await asyncio.sleep(0.01)
    await conn.close()
    await conn.close()
    assert conn.close_code == 1006


@SOCKET_TRANSPORTS
async def test_the_keepalive_finds_a_dead_peer_while_a_send_is_blocked(make: Make) -> None:
    """No write timeout to help (``send_timeout`` 60 s): the ping, sent behind a blocked write, is inside
    ``ping_timeout`` too, so the keepalive alone drops the connection and the blocked ``send_audio`` ends."""
    peer = _StopsReading()
    url = await peer.start()
    t = make(url=url, api_key="k", send_timeout=60.0, ping_interval=0.3, ping_timeout=0.3, reconnect=False)
    rec = Recorder(t, ("error",))
    await t.connect()
    chunk = bytes(48_000)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(ConnectionClosedError, match=r"no pong within 0\.3 s"):
        async with asyncio.timeout(10):
            for _ in range(10_000):
                await t.send_audio(chunk)
    assert loop.time() - start < 5
    assert [e.code for e in rec.events["error"]] == ["keepalive_timeout"]
    await t.close()
    assert t.status is TransportStatus.DISCONNECTED and _tasks_left() == []
    await peer.close()


@pytest.mark.parametrize("way", ["send_prepared_nowait", "send_audio_nowait"])
async def test_direct_appends_to_a_peer_that_stops_reading_stop_at_the_write_limit(way: str) -> None:
    """The direct writes (``rtlayer load``'s ``LoadWebSocketTransport.send_prepared_nowait``, the media-stream
    bridge's ``WebSocketTransport.send_audio_nowait``) to a server that stops reading: at most
    ``WRITE_BUFFER_LIMIT`` (plus one frame) waits in the socket's buffer, then the caller is told to take
    ``send_audio``, whose timeout ends the connection with a clear error."""
    from rtlayer.load.transport import WRITE_BUFFER_LIMIT, LoadWebSocketTransport

    peer = _StopsReading()
    url = await peer.start()
    t = LoadWebSocketTransport(url=url, api_key="k", send_timeout=0.5, ping_interval=None, reconnect=False)
    rec = Recorder(t, ("error",))
    assert not t.send_audio_nowait(bytes(960))  # not connected: nothing sent
    await t.connect()
    t.send_event({"type": "input_audio_buffer.clear"})
    assert not t.send_audio_nowait(bytes(960))  # an event waits ahead of it: the waiting way keeps the order
    for _ in range(100):  # the writer hands the event to the socket
        if not t.queued:
            break
        await asyncio.sleep(0.01)
    assert not t.queued
    audio = bytes(960)  # 20 ms of PCM16 at 24 kHz
    frame = json.dumps(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
    ).encode()
    from websockets.asyncio.client import ClientConnection

    conn = t._conn
    assert isinstance(conn, ClientConnection)
    refused_after = None
    for sent in range(200_000):  # 280 MB: far past every socket buffer on the way
        if not (
            t.send_prepared_nowait(frame) if way == "send_prepared_nowait" else t.send_audio_nowait(audio)
        ):
            refused_after = sent
            break
        buffered = conn.transport.get_write_buffer_size()
        assert buffered <= WRITE_BUFFER_LIMIT + len(frame) + 14  # one frame past the limit, header included
        if sent % 64 == 63:
            await asyncio.sleep(0)  # let the loop hand what it can to the kernel
    assert refused_after is not None and refused_after > 0
    with pytest.raises(ConnectionClosedError):
        async with asyncio.timeout(10):
            for _ in range(10_000):
                await t.send_audio(audio * 50)  # 1 s at a time: the ordinary path times out
    assert "send_timeout" in {e.code for e in rec.events["error"]}
    await t.close()
    assert t.status is TransportStatus.DISCONNECTED and _tasks_left() == []
    await peer.close()
