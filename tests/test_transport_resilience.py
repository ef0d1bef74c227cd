"""What the anchors do not survive: dropped connections, silent listeners, dead peers, garbage frames.

Also the handshake: auth headers, custom headers, browser subprotocols, OPENAI_API_KEY, and keys that never
reach a log. Every peer here is on 127.0.0.1: the embedded server, a TCP relay in front of it that the test
can cut or freeze, a listener that never answers, and a small websockets server that misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import pytest
from helpers import Recorder
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request
from websockets.server import ServerProtocol as WsServerProtocol
from websockets.typing import Subprotocol

from rtlayer.exceptions import ConnectError, ConnectionClosedError, ConnectTimeout, HandshakeError
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.transport import TransportStatus
from rtlayer.transports import WebSocketTransport

pytestmark = pytest.mark.timeout(30)


class Relay:
    """A TCP relay to ``port`` that the test can ``drop`` (abort every connection) or ``freeze``."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.frozen = False
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Relay:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.drop()
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                if not self.frozen:
                    dst.write(data)
                    await dst.drain()

    def drop(self) -> None:
        """Cut every relayed connection without a close frame (what a crash or a network cut looks like)."""
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()


async def test_reconnects_after_the_server_drops_and_restores_the_session_config(
    server: RealtimeServer,
) -> None:
    async with Relay(server.port) as relay:
        t = WebSocketTransport(url=f"ws://127.0.0.1:{relay.port}/v1/realtime", reconnect_backoff=(0.05, 0.2))
        rec = Recorder(
            t, ("session.created", "session.updated", "connection_change", "turn_done", "output_text_delta")
        )
        try:
            await t.connect(initial_session_config={"modalities": ["text"], "instructions": "Keep it short."})
            t.send_message("first")
            await rec.next("turn_done")
            first_session = rec.events["session.created"][0]["session"]["id"]

            relay.drop()
            while not [
                c
                for c in rec.events["connection_change"]
                if c.status is TransportStatus.CONNECTED and c.attempt
            ]:
                await rec.next("connection_change")
            created = await rec.nth("session.created", 1)
            assert created["session"]["id"] != first_session  # a new server session...
            while rec.events["session.updated"][-1]["session"]["instructions"] != "Keep it short.":
                await rec.next("session.updated")
            restored = rec.events["session.updated"][-1]["session"]
            assert restored["output_modalities"] == ["text"]  # ...with the app's config restored

            t.send_message("second")
            done = await rec.next("turn_done")
            assert done.status == "completed"
            assert rec.events["output_text_delta"][-1].delta == "second"
            statuses = [(c.status.value, c.attempt) for c in rec.events["connection_change"]]
            assert ("reconnecting", 1) in statuses and t.reconnects == 1
        finally:
            await t.close()


async def test_gives_up_after_the_last_attempt(server: RealtimeServer) -> None:
    async with Relay(server.port) as relay:
        t = WebSocketTransport(
            url=f"ws://127.0.0.1:{relay.port}/v1/realtime",
            reconnect_backoff=(0.01, 0.02),
            max_reconnect_attempts=2,
        )
        rec = Recorder(t, ("connection_change", "error"))
        await t.connect()
        assert relay.server is not None
        relay.server.close()  # nothing listens any more
        relay.drop()
        while t.status is not TransportStatus.DISCONNECTED:
            await rec.next("connection_change")
        assert [e.code for e in rec.events["error"]] == ["reconnect_failed"]
        assert [
            c.attempt for c in rec.events["connection_change"] if c.status is TransportStatus.RECONNECTING
        ] == [1, 2]
        await t.close()


async def test_connect_timeout_against_a_listener_that_never_answers() -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    listener = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    t = WebSocketTransport(url=f"ws://127.0.0.1:{port}/v1/realtime", connect_timeout=0.5)
    rec = Recorder(t, ("connection_change",))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectTimeout, match=r"within 0\.5 s"):
        await t.connect()
    # It waited for the given timeout, and not for the 10 s default (a wide margin on both sides: the bound
    # only tells the two apart, it times nothing finely).
    assert 0.5 <= loop.time() - started < 5.0
    assert held, "the listener did accept the TCP connection"
    assert t.status is TransportStatus.DISCONNECTED
    assert [c.status.value for c in rec.events["connection_change"]][-1] == "disconnected"
    for writer in held:
        writer.close()
    listener.close()


async def test_keepalive_detects_a_dead_peer(server: RealtimeServer) -> None:
    async with Relay(server.port) as relay:
        t = WebSocketTransport(
            url=f"ws://127.0.0.1:{relay.port}/v1/realtime",
            ping_interval=0.2,
            ping_timeout=0.3,
            reconnect=False,
        )
        rec = Recorder(t, ("error", "connection_change"))
        await t.connect()
        relay.frozen = True  # the peer neither answers nor closes: only pings can tell
        while t.status is not TransportStatus.DISCONNECTED:
            await rec.next("connection_change", within=5)
        assert "keepalive_timeout" in [e.code for e in rec.events["error"]]
        await t.close()


class Misbehaving:
    """A websockets server that records handshakes, sends ``frames`` after a valid session.created, and
    keeps what the client sends."""

    def __init__(self, frames: list[str | bytes]) -> None:
        self.frames = frames
        self.requests: list[dict[str, Any]] = []
        self.received: list[str] = []

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.requests.append(
            {
                "headers": dict(ws.request.headers.raw_items()),
                "subprotocol": ws.subprotocol,
                "path": ws.request.path,
            }
        )
        await ws.send(
            '{"type":"session.created","event_id":"event_1","session":{"id":"sess_1","type":"realtime"}}'
        )
        for frame in self.frames:
            await ws.send(frame)
        async for message in ws:
            self.received.append(str(message))


@contextlib.asynccontextmanager
async def misbehaving(frames: list[str | bytes]) -> AsyncIterator[tuple[Misbehaving, str]]:
    peer = Misbehaving(frames)

    def realtime_if_asked(conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        return Subprotocol("realtime") if "realtime" in offered else None

    async with serve(peer.handler, "127.0.0.1", 0, select_subprotocol=realtime_if_asked) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        yield peer, f"ws://127.0.0.1:{port}/v1/realtime"


async def test_malformed_frames_become_errors_and_the_connection_goes_on() -> None:
    frames: list[str | bytes] = [
        "this is not json",
        "[1, 2, 3]",
        b"\xff\xfe\x00",
        '{"no": "type"}',
        '{"type": "brand.new.event", "event_id": "event_2", "payload": {"x": [1, 2]}}',
        '{"type": "rate_limits.updated", "event_id": "event_3", "rate_limits": []}',
    ]
    async with misbehaving(frames) as (peer, url):
        t = WebSocketTransport(url=url, api_key="sk-test")
        rec = Recorder(t, ("error", "rate_limits.updated", "brand.new.event", "*"))
        await t.connect()
        await rec.first("rate_limits.updated")
        # An event type this library has never heard of reaches `*` and its own name, untouched.
        unknown = {"type": "brand.new.event", "event_id": "event_2", "payload": {"x": [1, 2]}}
        assert rec.events["brand.new.event"] == [unknown]
        assert unknown in rec.events["*"]
        codes = [e.code for e in rec.events["error"]]
        assert codes == ["malformed_frame", "malformed_frame", "malformed_frame", "invalid_event"]
        assert t.status is TransportStatus.CONNECTED
        t.send_event({"type": "input_audio_buffer.clear"})
        for _ in range(100):
            if any("input_audio_buffer.clear" in m for m in peer.received):
                break
            await asyncio.sleep(0.01)
        assert any("input_audio_buffer.clear" in m for m in peer.received)
        await t.close()


async def test_auth_headers_custom_headers_subprotocols_and_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    async with misbehaving([]) as (peer, url):

        async def handshake(transport: WebSocketTransport, **kwargs: Any) -> dict[str, Any]:
            await transport.connect(**kwargs)
            await transport.close()
            return peer.requests[-1]

        bearer = await handshake(WebSocketTransport(url=url), api_key="sk-one")
        assert bearer["headers"]["Authorization"] == "Bearer sk-one"
        assert "model=gpt-realtime" in bearer["path"]

        azure = await handshake(
            WebSocketTransport(url=url, headers={"api-key": "azure-key"}), api_key="sk-two"
        )
        assert azure["headers"]["api-key"] == "azure-key" and "Authorization" not in azure["headers"]

        browser = await handshake(WebSocketTransport(url=url, use_subprotocol_auth=True), api_key="ek_123")
        assert browser["headers"]["Sec-WebSocket-Protocol"] == "realtime, openai-insecure-api-key.ek_123"
        assert browser["subprotocol"] == "realtime" and "Authorization" not in browser["headers"]

        monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
        env = await handshake(WebSocketTransport(url=url))
        assert env["headers"]["Authorization"] == "Bearer sk-from-env"

        async def ephemeral() -> str:
            return "ek_fetched"

        fetched = await handshake(WebSocketTransport(url=url, api_key=ephemeral), call_id="rtc_abc")
        assert fetched["headers"]["Authorization"] == "Bearer ek_fetched"
        assert "call_id=rtc_abc" in fetched["path"]


async def test_keys_never_reach_a_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-test-SECRET-0123456789"
    async with misbehaving([]) as (_, url):
        t = WebSocketTransport(url=url, api_key=secret)
        await t.connect()
        await t.close()
        t = WebSocketTransport(url=url, api_key=secret, use_subprotocol_auth=True)
        await t.connect()
        await t.close()
    # The test's own server logs what it receives; the client's side is everything else.
    client_log = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")
    )
    assert "> GET /v1/realtime" in client_log  # the handshake was logged at debug level...
    assert "Authorization" in client_log and "openai-insecure-api-key" in client_log
    assert secret not in client_log  # ...without the key


async def test_refused_key_raises_with_the_servers_message() -> None:
    secret = "sk-wrong-SECRET-42"
    async with RealtimeServer(api_key="sk-right") as server:
        t = WebSocketTransport(url=server.ws_url, api_key=secret)
        with pytest.raises(HandshakeError) as info:
            await t.connect()
        assert info.value.status == 401
        assert secret not in str(info.value)
        assert "HTTP 401" in str(info.value)
        assert t.status is TransportStatus.DISCONNECTED


def transport_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still running transport code (reader, writer, keepalive, reconnection)."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "BaseRealtimeTransport" in getattr(task.get_coro(), "__qualname__", "")
    ]


async def test_close_while_reconnecting_leaves_nothing_behind(server: RealtimeServer) -> None:
    async with Relay(server.port) as relay:
        t = WebSocketTransport(url=f"ws://127.0.0.1:{relay.port}/v1/realtime", reconnect_backoff=(0.5, 1.0))
        rec = Recorder(t, ("connection_change",))
        await t.connect()
        assert len(transport_tasks()) == 3  # reader, writer, keepalive
        assert relay.server is not None
        relay.server.close()
        relay.drop()
        while t.status is not TransportStatus.RECONNECTING:
            await rec.next("connection_change")
        await t.close()  # in the middle of the backoff sleep
        assert t.status is TransportStatus.DISCONNECTED
        assert transport_tasks() == []
        await t.close()
        assert [c.status.value for c in rec.events["connection_change"]][-2:] == [
            "disconnecting",
            "disconnected",
        ]


async def test_failed_connect_leaves_nothing_behind() -> None:
    async with misbehaving([]) as (_, url):
        t = WebSocketTransport(url=url, connect_timeout=2)
        await t.connect()
        await t.close()
    assert transport_tasks() == []
    t = WebSocketTransport(url="ws://127.0.0.1:9/v1/realtime", connect_timeout=2)  # nothing listens on port 9
    with pytest.raises(ConnectError):
        await t.connect()
    assert transport_tasks() == [] and t.status is TransportStatus.DISCONNECTED


class StallingPeer(asyncio.Protocol):
    """Accepts the WebSocket, says ``session.created``, then never reads again: the client's socket fills up."""

    #: A transport that does not read is referenced by nothing else: without this the garbage collector
    #: would close its socket, and the client would see a dropped connection instead of a stalled one.
    alive: ClassVar[list[StallingPeer]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.alive.append(self)
        self.transport = transport
        self.ws = WsServerProtocol()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for request in self.ws.events_received():
            assert isinstance(request, Request)
            self.ws.send_response(self.ws.accept(request))
            self.ws.send_text(
                b'{"type":"session.created","event_id":"e1","session":{"id":"s","type":"realtime"}}'
            )
            for chunk in self.ws.data_to_send():
                self.transport.write(chunk)
            self.transport.pause_reading()


async def test_audio_over_a_stalled_socket_waits_instead_of_queueing_without_bound() -> None:
    """The peer stops reading: once an event waits for the socket, ``send_audio`` waits with it (the app is
    slowed down, as by a plain socket) rather than piling audio up in memory; at close, the audio still queued
    is dropped and counted."""
    loop = asyncio.get_running_loop()
    peer = await loop.create_server(StallingPeer, "127.0.0.1", 0)
    port = peer.sockets[0].getsockname()[1]
    t = WebSocketTransport(url=f"ws://127.0.0.1:{port}/v1/realtime", reconnect=False, ping_interval=None)
    await t.connect()
    frame = b"\x01\x00" * 480  # 20 ms at 24 kHz
    sent = 0

    async def stream() -> None:
        nonlocal sent
        t.send_event({"type": "input_audio_buffer.clear"})  # queued for the writer: audio queues behind it
        for _ in range(50_000):  # 64 MB of appends: far more than loopback buffers hold
            await t.send_audio(frame)
            sent += 1

    streamer = asyncio.create_task(stream())
    for _ in range(50):  # bounded: the streamer either finishes at once (queueing everything) or blocks
        await asyncio.sleep(0.01)
        if streamer.done():
            break
    assert not streamer.done(), f"send_audio queued all {sent} frames without waiting"
    assert t.queued <= 2
    await t.close()  # the peer cannot take a close frame: the connection is dropped after the close timeout
    with pytest.raises(ConnectionClosedError):
        await streamer  # released by the abort; its next call is refused: the transport is closed
    assert t.queued == 0
    peer.close()
