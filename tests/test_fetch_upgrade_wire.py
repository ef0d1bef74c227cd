"""The WebSocket upgrade through an HTTP client, against a plain ``websockets`` server on loopback.

These tests cover the layer under ``FetchUpgradeTransport``: ``upgrade_websocket`` (the handshake over a
pluggable fetch) and ``UpgradedConnection`` (websockets' sans-I/O protocol on the upgraded stream):
messages both ways, fragments, pings, the close handshake, size limits, flow control, refusals, TLS with
a test CA, and a real tinyproxy doing CONNECT, with and without Basic authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from helpers_proxy import run_tinyproxy
from helpers_tls import TestPKI, make_pki
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.http11 import Request, Response

from rtlayer.exceptions import ConnectError, HandshakeError, ProxyError
from rtlayer.transports.fetch_upgrade import HttpxFetch, UpgradeResponse, upgrade_websocket

pytestmark = pytest.mark.timeout(30)


Handler = Callable[[ServerConnection], Awaitable[None]]

REALTIME = ["realtime"]  # the subprotocol the Realtime API speaks


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def refuse_bad_key(connection: ServerConnection, request: Request) -> Response | None:
    """Answer 401 with a Realtime-style JSON error unless the bearer key is right."""
    if request.headers.get("Authorization") == "Bearer sk-right":
        return None
    body = json.dumps(
        {"error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "Bad key"}}
    )
    return Response(401, "Unauthorized", Headers({"Content-Type": "application/json"}), body.encode())


@asynccontextmanager
async def ws_server(
    handler: Handler = echo, *, pki: TestPKI | None = None, process_request: object = None
) -> AsyncIterator[str]:
    """A websockets server on 127.0.0.1:free port; yields its ws:// or wss:// URL."""
    ssl_context = pki.server_context() if pki is not None else None
    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["realtime"],  # type: ignore[list-item]
        ssl=ssl_context,
        process_request=process_request,  # type: ignore[arg-type]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"{'wss' if pki else 'ws'}://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def port_of(url: str) -> int:
    port = httpx.URL(url.replace("ws", "http", 1)).port
    assert port is not None
    return port


async def test_messages_ping_and_close_handshake() -> None:
    async with ws_server() as url:
        conn = await upgrade_websocket(
            url, {"Authorization": "Bearer k"}, fetch=HttpxFetch(), subprotocols=REALTIME
        )
        assert conn.subprotocol == "realtime"
        await conn.send('{"type": "session.update"}')
        assert await conn.recv() == '{"type": "session.update"}'
        await conn.send(b"\x00\x01binary")
        assert await conn.recv() == b"\x00\x01binary"
        latency = await asyncio.wait_for(await conn.ping(), 5)
        assert 0 <= latency < 5 and conn.latency == latency
        assert conn.close_code is None
        await conn.close()
        assert conn.close_code == 1000
        with pytest.raises(ConnectionClosedOK):
            await conn.recv()
        with pytest.raises(ConnectionClosed):
            await conn.send("after close")


async def test_text_as_undecoded_bytes_for_a_consumer_that_parses_them() -> None:
    async with ws_server() as url:
        conn = await upgrade_websocket(url, {}, fetch=HttpxFetch(), subprotocols=REALTIME, decode_text=False)
        await conn.send('{"type": "ping", "text": "h\u00e9"}')
        assert await conn.recv() == '{"type": "ping", "text": "h\u00e9"}'.encode()
        await conn.close()


async def test_server_close_code_and_fragmented_messages_reach_the_client() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(["frag", "mented ", "text"])  # one message in three frames
        await ws.send([b"\x01", b"\x02"])
        await ws.close(4000, "going away for a test")

    async with ws_server(handler) as url:
        conn = await upgrade_websocket(url, {}, fetch=HttpxFetch(), subprotocols=REALTIME)
        assert await conn.recv() == "fragmented text"
        assert await conn.recv() == b"\x01\x02"
        with pytest.raises(ConnectionClosed) as closed:
            await conn.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
        assert conn.close_code == 4000


async def test_server_pings_are_answered() -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        latencies.append(await asyncio.wait_for(await ws.ping(), 5))
        await ws.send("pinged")
        await ws.wait_closed()

    async with ws_server(handler) as url:
        conn = await upgrade_websocket(url, {}, fetch=HttpxFetch(), subprotocols=REALTIME)
        assert await asyncio.wait_for(conn.recv(), 5) == "pinged"
        assert len(latencies) == 1
        await conn.close()


async def test_message_over_max_size_closes_with_1009() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("small")
        await ws.send("x" * 5000)
        await ws.wait_closed()

    async with ws_server(handler) as url:
        conn = await upgrade_websocket(url, {}, fetch=HttpxFetch(), subprotocols=REALTIME, max_size=4096)
        assert await conn.recv() == "small"
        with pytest.raises(ConnectionClosedError) as closed:
            await conn.recv()
        assert closed.value.sent is not None and closed.value.sent.code == 1009


async def test_flow_control_delivers_every_message_in_order() -> None:
    count = 2000

    async def handler(ws: ServerConnection) -> None:
        for i in range(count):
            await ws.send(str(i))
        await ws.close()

    async with ws_server(handler) as url:
        conn = await upgrade_websocket(url, {}, fetch=HttpxFetch(), subprotocols=REALTIME, max_queue=8)
        await asyncio.sleep(0.2)  # let the server run ahead: the reader must pause, not drop
        received = []
        with pytest.raises(ConnectionClosedOK):
            for _ in range(count + 1):
                received.append(await asyncio.wait_for(conn.recv(), 5))
        assert received == [str(i) for i in range(count)]


async def test_connection_reset_ends_with_1006() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("bye")
        ws.transport.abort()  # TCP reset, no close frame

    async with ws_server(handler) as url:
        conn = await upgrade_websocket(url, {}, fetch=HttpxFetch(), subprotocols=REALTIME)
        assert await conn.recv() == "bye"
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(conn.recv(), 5)
        assert conn.close_code == 1006


async def test_refusal_carries_status_and_json_body() -> None:
    async with ws_server(process_request=refuse_bad_key) as url:
        with pytest.raises(HandshakeError) as refused:
            await upgrade_websocket(
                url, {"Authorization": "Bearer sk-wrong"}, fetch=HttpxFetch(), subprotocols=REALTIME
            )
        assert refused.value.status == 401
        assert json.loads(refused.value.body)["error"]["code"] == "invalid_api_key"
        assert str(refused.value).startswith("Failed to upgrade websocket: 401 {")
        assert "sk-wrong" not in str(refused.value)
        conn = await upgrade_websocket(
            url, {"Authorization": "Bearer sk-right"}, fetch=HttpxFetch(), subprotocols=REALTIME
        )
        await conn.close()


async def test_a_101_with_a_wrong_accept_key_is_refused() -> None:
    """A server (or a middlebox) answering 101 without proving it read our key is not a WebSocket."""

    async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"
        )
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(liar, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(HandshakeError, match="Sec-WebSocket-Accept"):
            await upgrade_websocket(f"ws://127.0.0.1:{port}/", {}, fetch=HttpxFetch(), subprotocols=REALTIME)


async def test_tls_needs_the_ca(pki: TestPKI) -> None:
    async with ws_server(pki=pki) as url:
        # trust_env=False: an SSL_CERT_FILE in the environment must not decide this test.
        with pytest.raises(ConnectError, match="certificate verification failed") as refused:
            await upgrade_websocket(url, {}, fetch=HttpxFetch(trust_env=False), subprotocols=REALTIME)
        assert "unable to get local issuer certificate" in str(refused.value)
        conn = await upgrade_websocket(
            url, {}, fetch=HttpxFetch(verify=pki.client_context()), subprotocols=REALTIME
        )
        await conn.send("over tls")
        assert await conn.recv() == "over tls"
        await conn.close()


async def test_an_apps_own_httpx_client_and_its_own_fetch(pki: TestPKI) -> None:
    seen: list[str] = []

    async with ws_server(pki=pki) as url, httpx.AsyncClient(verify=pki.client_context()) as client:
        httpx_fetch = HttpxFetch(client)

        async def my_fetch(target: str, headers: Mapping[str, str]) -> UpgradeResponse:
            seen.append(headers["Upgrade"])  # an app's own fetch sees the upgrade request
            return await httpx_fetch(target, headers)

        for _ in range(2):  # the app's client survives each connection
            conn = await upgrade_websocket(url, {}, fetch=my_fetch, subprotocols=REALTIME)
            await conn.send("mine")
            assert await conn.recv() == "mine"
            await conn.close()
        assert not client.is_closed
    assert seen == ["websocket", "websocket"]


class StreamPair:
    """asyncio streams as the ``ByteStream`` an upgrade hands over."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self, max_bytes: int, /) -> bytes:
        return await self.reader.read(max_bytes)

    async def write(self, data: bytes, /) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def asyncio_fetch(url: str, headers: Mapping[str, str]) -> UpgradeResponse:
    """A fetch with no httpx at all, the way a runtime with its own HTTP stack would provide one."""
    target = httpx.URL(url.replace("ws", "http", 1))
    reader, writer = await asyncio.open_connection(target.host, target.port)
    lines = [f"GET {target.raw_path.decode()} HTTP/1.1", f"Host: {target.host}:{target.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    answer = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
    if status == 101:
        return UpgradeResponse(status, answer, stream=StreamPair(reader, writer))
    body = await reader.read(65536)
    writer.close()
    return UpgradeResponse(status, answer, body=body)


async def test_any_fetch_callable_with_its_own_byte_stream() -> None:
    async with ws_server(process_request=refuse_bad_key) as url:
        conn = await upgrade_websocket(
            url, {"Authorization": "Bearer sk-right"}, fetch=asyncio_fetch, subprotocols=REALTIME
        )
        await conn.send("no httpx here")
        assert await conn.recv() == "no httpx here"
        await conn.close()
        assert conn.close_code == 1000
        with pytest.raises(HandshakeError) as refused:
            await upgrade_websocket(
                url, {"Authorization": "Bearer nope"}, fetch=asyncio_fetch, subprotocols=REALTIME
            )
        assert refused.value.status == 401 and "invalid_api_key" in refused.value.body


async def test_through_tinyproxy_connect_with_basic_auth(pki: TestPKI, tmp_path: Path) -> None:
    async with ws_server(pki=pki) as url:
        with run_tinyproxy(tmp_path, connect_ports=[port_of(url)], auth=("alice", "s3cret")) as proxy:
            # Right credentials (in the proxy URL's userinfo): the tunnel opens, the proxy logs CONNECT.
            conn = await upgrade_websocket(
                url, {}, fetch=HttpxFetch(proxy=proxy.url, verify=pki.client_context()), subprotocols=REALTIME
            )
            await conn.send("through the proxy")
            assert await conn.recv() == "through the proxy"
            await conn.close()
            assert [f"CONNECT 127.0.0.1:{port_of(url)} " in line for line in proxy.connect_lines()] == [True]

            # No credentials: 407.
            with pytest.raises(ProxyError) as missing:
                await upgrade_websocket(
                    url,
                    {},
                    fetch=HttpxFetch(proxy=proxy.bare_url, verify=pki.client_context()),
                    subprotocols=REALTIME,
                )
            assert missing.value.status == 407
            assert str(missing.value).startswith("Proxy authentication failed (407 from the proxy")
            assert "407 Proxy Authentication Required" in str(missing.value)

            # Wrong credentials: tinyproxy answers 401 (not 407) to a bad password; still a ProxyError.
            with pytest.raises(ProxyError) as wrong:
                await upgrade_websocket(
                    url,
                    {},
                    fetch=HttpxFetch(proxy=proxy.url_with("alice", "wrong"), verify=pki.client_context()),
                    subprotocols=REALTIME,
                )
            assert wrong.value.status in (401, 407)
            assert str(wrong.value).startswith(
                f"Proxy authentication failed ({wrong.value.status} from the proxy"
            )
            assert "wrong" not in str(wrong.value).replace("wrong or missing", "")  # the password is redacted


async def test_proxy_from_the_environment_and_no_proxy(
    pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ws_server(pki=pki) as url:
        with run_tinyproxy(tmp_path, connect_ports=[port_of(url)]) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            monkeypatch.delenv("NO_PROXY", raising=False)
            monkeypatch.delenv("no_proxy", raising=False)
            conn = await upgrade_websocket(
                url, {}, fetch=HttpxFetch(verify=pki.client_context()), subprotocols=REALTIME
            )
            await conn.close()
            assert len(proxy.connect_lines()) == 1

            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            conn = await upgrade_websocket(
                url, {}, fetch=HttpxFetch(verify=pki.client_context()), subprotocols=REALTIME
            )
            await conn.close()
            assert len(proxy.connect_lines()) == 1  # went direct


async def test_plain_ws_through_a_forward_proxy_fails_clearly(tmp_path: Path) -> None:
    """Without TLS httpx forwards the GET (no CONNECT) and the proxy drops ``Upgrade``: use wss://."""
    async with ws_server() as url:
        with run_tinyproxy(tmp_path, connect_ports=[port_of(url)]) as proxy:
            with pytest.raises(HandshakeError) as refused:
                await upgrade_websocket(url, {}, fetch=HttpxFetch(proxy=proxy.url), subprotocols=REALTIME)
            assert refused.value.status == int(HTTPStatus.UPGRADE_REQUIRED)
            assert "use wss://" in str(refused.value)
            assert proxy.connect_lines() == []
            assert len(proxy.forwarded_lines()) == 1


async def test_a_proxy_forbidding_the_port_gives_403_and_an_absent_proxy_a_connect_error(
    pki: TestPKI, tmp_path: Path
) -> None:
    async with ws_server(pki=pki) as url:
        other_port = port_of(url) + 1 if port_of(url) < 65535 else port_of(url) - 1
        with run_tinyproxy(tmp_path, connect_ports=[other_port]) as proxy:
            with pytest.raises(ProxyError) as forbidden:
                await upgrade_websocket(
                    url,
                    {},
                    fetch=HttpxFetch(proxy=proxy.url, verify=pki.client_context()),
                    subprotocols=REALTIME,
                )
            assert forbidden.value.status == 403
            assert "refused to open a tunnel" in str(forbidden.value)
            gone = proxy.bare_url
        # The proxy has stopped: nothing listens on its port any more.
        with pytest.raises(ConnectError, match=f"through proxy {gone}") as unreachable:
            await upgrade_websocket(
                url, {}, fetch=HttpxFetch(proxy=gone, verify=pki.client_context()), subprotocols=REALTIME
            )
        assert not isinstance(unreachable.value, ProxyError)


async def test_a_forwarding_proxy_asking_for_credentials_is_a_407_proxy_error(tmp_path: Path) -> None:
    """For a plain ws:// target the proxy answers the forwarded GET itself (HTTP/1.0 407), no CONNECT."""
    async with ws_server() as url:
        with run_tinyproxy(tmp_path, connect_ports=[port_of(url)], auth=("alice", "s3cret")) as proxy:
            with pytest.raises(ProxyError) as refused:
                await upgrade_websocket(
                    url, {}, fetch=HttpxFetch(proxy=proxy.bare_url), subprotocols=REALTIME
                )
            assert refused.value.status == 407
            assert str(refused.value).startswith("Proxy authentication failed (407 from the proxy")
            assert "proxy credentials" in str(refused.value)
