"""FetchUpgradeTransport against the embedded server, directly, over TLS, and through a real tinyproxy.

The same turns run through ``WebSocketTransport`` and ``FetchUpgradeTransport`` must give the same
sequence of server events: only the way the socket is opened differs. Through the proxy the target is
the TLS server (``wss://``), so httpx tunnels with CONNECT, which the proxy's log shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder
from helpers_proxy import CuttableRelay, run_tinyproxy
from helpers_tls import TestPKI, make_pki

from rtlayer.exceptions import ConnectError, HandshakeError, ProxyError
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.transport import TransportStatus
from rtlayer.transports.fetch_upgrade import FetchUpgradeTransport, HttpxFetch, UpgradeResponse
from rtlayer.transports.websocket import WebSocketTransport

pytestmark = pytest.mark.timeout(40)


ROOT = Path(__file__).resolve().parent.parent

TEXT_ONLY = {"output_modalities": ["text"], "instructions": "Be brief."}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tls_server(pki: TestPKI) -> AsyncIterator[RealtimeServer]:
    """The embedded server serving https and wss with a certificate from the test CA."""
    async with RealtimeServer(certfile=str(pki.server_cert), keyfile=str(pki.server_key)) as running:
        assert running.ws_url.startswith("wss://")
        yield running


async def text_turn(
    transport: WebSocketTransport | FetchUpgradeTransport, text: str = "Hello there"
) -> list[str]:
    """Connect, say ``text``, wait for the answer, close; the server event types seen, in order."""
    rec = Recorder(transport, ("*", "output_text_delta", "turn_done"))
    try:
        await transport.connect(initial_session_config=TEXT_ONLY)
        transport.send_message(text)
        done = await rec.next("turn_done")
        assert done.status == "completed"
        assert "".join(d.delta for d in rec.events["output_text_delta"]) == text
    finally:
        await transport.close()
    return rec.types()


async def audio_turn(
    transport: WebSocketTransport | FetchUpgradeTransport, pcm: bytes
) -> tuple[list[str], int]:
    """Speak ``pcm`` (24 kHz), then silence; the server event types and the bytes of audio received."""
    rec = Recorder(transport, ("*", "audio", "turn_done"))
    try:
        await transport.connect(
            initial_session_config={"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}
        )
        for offset in range(0, len(pcm), 960):  # 20 ms chunks, faster than real time (VAD uses audio time)
            await transport.send_audio(pcm[offset : offset + 960])
        await transport.send_audio(b"\x00\x00" * 24000)  # 1 s of silence ends the turn
        done = await rec.next("turn_done", within=20)
        assert done.status == "completed"
    finally:
        await transport.close()
    return rec.types(), sum(len(a.data) for a in rec.events["audio"])


async def test_text_turn_matches_the_websocket_transport(server: RealtimeServer) -> None:
    reference = await text_turn(WebSocketTransport(url=server.ws_url))
    upgraded = await text_turn(FetchUpgradeTransport(url=server.ws_url))
    assert upgraded == reference
    assert upgraded[0] == "session.created" and upgraded[-1] == "response.done"


async def test_audio_turn_matches_the_websocket_transport(
    server: RealtimeServer, load_wav: Callable[[str], tuple[bytes, int]]
) -> None:
    pcm, rate = load_wav("hello_24k")
    assert rate == 24000
    reference, reference_audio = await audio_turn(WebSocketTransport(url=server.ws_url), pcm)
    upgraded, upgraded_audio = await audio_turn(FetchUpgradeTransport(url=server.ws_url), pcm)
    assert upgraded == reference
    assert "input_audio_buffer.speech_started" in upgraded and "response.output_audio.delta" in upgraded
    assert upgraded_audio == reference_audio > 0


async def test_a_refused_key_carries_the_servers_body() -> None:
    async with RealtimeServer(api_key="sk-right-key") as keyed:
        transport = FetchUpgradeTransport(url=keyed.ws_url, api_key="sk-wrong-key", reconnect=False)
        with pytest.raises(HandshakeError) as refused:
            await transport.connect()
        assert refused.value.status == 401
        assert str(refused.value).startswith("Failed to upgrade websocket: 401 ")
        assert json.loads(refused.value.body)["error"]["code"] == "invalid_api_key"
        assert "sk-wrong-key" not in str(refused.value)
        assert transport.status is TransportStatus.DISCONNECTED

        types = await text_turn(FetchUpgradeTransport(url=keyed.ws_url, api_key="sk-right-key"))
        assert types[-1] == "response.done"


async def test_keys_never_reach_a_log_or_an_error(
    server: RealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-test-SECRET-0123456789"
    for subprotocol_auth in (False, True):  # bearer header, then the browsers' subprotocol form
        types = await text_turn(
            FetchUpgradeTransport(url=server.ws_url, api_key=secret, use_subprotocol_auth=subprotocol_auth)
        )
        assert types[-1] == "response.done"
    client_log = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("rtlayer.server"))
    assert "HTTP/1.1 101 Switching Protocols" in client_log  # httpx logged the upgrade at info level...
    assert "> TEXT" in client_log  # ...and websockets every frame at debug level...
    assert secret not in client_log  # ...without the key


async def test_tls_with_a_self_signed_ca_is_refused_without_it_and_accepted_with_it(
    tls_server: RealtimeServer, pki: TestPKI
) -> None:
    untrusting = FetchUpgradeTransport(url=tls_server.ws_url, trust_env=False)
    with pytest.raises(ConnectError, match="certificate verification failed") as refused:
        await untrusting.connect()
    assert "unable to get local issuer certificate" in str(refused.value)

    types = await text_turn(FetchUpgradeTransport(url=tls_server.ws_url, verify=pki.client_context()))
    assert types[-1] == "response.done"


async def test_wss_over_ipv6_loopback(pki: TestPKI) -> None:
    async with RealtimeServer(host="::1", certfile=str(pki.server_cert), keyfile=str(pki.server_key)) as v6:
        assert v6.ws_url.startswith("wss://[::1]:")
        types = await text_turn(FetchUpgradeTransport(url=v6.ws_url, verify=pki.client_context()))
        assert types[-1] == "response.done"


async def test_rtlayer_serve_with_certfile_and_keyfile_serves_wss(pki: TestPKI) -> None:
    """``rtlayer serve --certfile F --keyfile F`` as a user runs it, reached over wss with the test CA."""
    root = ROOT
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtlayer.cli", "serve", "--port", "0", "--audio-pacing", "0",
        "--certfile", str(pki.server_cert), "--keyfile", str(pki.server_key),
        cwd=root, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = b""
        async with asyncio.timeout(20):
            while b"listening on" not in line:
                line = await proc.stderr.readline()
                assert line, "rtlayer serve exited before listening"
        match = re.search(r"listening on (https://\S+)", line.decode())
        assert match is not None, line
        wss_url = match.group(1).replace("https://", "wss://") + "/v1/realtime"
        types = await text_turn(FetchUpgradeTransport(url=wss_url, verify=pki.client_context()))
        assert types[-1] == "response.done"
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()


async def test_through_tinyproxy_the_same_turn_goes_through_a_connect_tunnel(
    tls_server: RealtimeServer, pki: TestPKI, tmp_path: Path
) -> None:
    direct = await text_turn(FetchUpgradeTransport(url=tls_server.ws_url, verify=pki.client_context()))
    with run_tinyproxy(tmp_path, connect_ports=[tls_server.port]) as proxy:
        proxied = await text_turn(
            FetchUpgradeTransport(url=tls_server.ws_url, proxy=proxy.url, verify=pki.client_context())
        )
        (connect,) = proxy.connect_lines()
        assert f"CONNECT 127.0.0.1:{tls_server.port} HTTP/1.1" in connect
    assert proxied == direct


async def test_proxy_basic_auth_wrong_credentials_fail_clearly_right_ones_pass(
    tls_server: RealtimeServer, pki: TestPKI, tmp_path: Path
) -> None:
    with run_tinyproxy(tmp_path, connect_ports=[tls_server.port], auth=("agent", "pa55word")) as proxy:
        for proxy_url, statuses in (
            (proxy.bare_url, {407}),  # no credentials: 407 Proxy Authentication Required
            (proxy.url_with("agent", "not-it"), {401, 407}),  # tinyproxy answers a bad password with 401
        ):
            transport = FetchUpgradeTransport(
                url=tls_server.ws_url, proxy=proxy_url, verify=pki.client_context()
            )
            with pytest.raises(ProxyError) as refused:
                await transport.connect()
            assert refused.value.status in statuses
            # Whichever of 401/407 the proxy chose, the user reads the same plain diagnosis first.
            assert str(refused.value).startswith(
                f"Proxy authentication failed ({refused.value.status} from the proxy: "
                "wrong or missing proxy credentials): "
            )
            assert "refused to open a tunnel" in str(refused.value)
            assert "not-it" not in str(refused.value)  # the password is redacted
            assert transport.status is TransportStatus.DISCONNECTED

        types = await text_turn(
            FetchUpgradeTransport(url=tls_server.ws_url, proxy=proxy.url, verify=pki.client_context())
        )
        assert types[-1] == "response.done"
        assert len(proxy.connect_lines()) == 3


async def test_an_apps_own_fetch_callable(server: RealtimeServer) -> None:
    """Any ``async (url, headers) -> UpgradeResponse`` can make the request (a runtime's own fetch())."""
    requests: list[dict[str, str]] = []
    httpx_fetch = HttpxFetch()

    async def my_fetch(url: str, headers: Any) -> UpgradeResponse:
        requests.append(dict(headers))
        return await httpx_fetch(url, headers)

    types = await text_turn(FetchUpgradeTransport(url=server.ws_url, api_key="sk-local", fetch=my_fetch))
    assert types[-1] == "response.done"
    (sent,) = requests
    assert sent["Upgrade"] == "websocket" and sent["Connection"] == "Upgrade"
    assert sent["Sec-WebSocket-Protocol"] == "realtime" and sent["Sec-WebSocket-Version"] == "13"
    assert sent["Authorization"] == "Bearer sk-local"


async def test_reconnects_after_the_server_side_drops_the_connection(server: RealtimeServer) -> None:
    async with CuttableRelay(server.port) as relay:
        transport = FetchUpgradeTransport(
            url=f"ws://127.0.0.1:{relay.port}/v1/realtime", reconnect_backoff=(0.05, 0.2)
        )
        rec = Recorder(transport, ("session.created", "connection_change", "turn_done", "output_text_delta"))
        try:
            await transport.connect(initial_session_config=TEXT_ONLY)
            transport.send_message("before the cut")
            await rec.next("turn_done")

            relay.cut()
            while transport.reconnects == 0:
                await rec.next("connection_change")
            await rec.nth("session.created", 1)
            assert relay.accepted == 2

            before = len(rec.events["output_text_delta"])
            transport.send_message("after the cut")
            done = await rec.next("turn_done")
            assert done.status == "completed"
            assert "".join(d.delta for d in rec.events["output_text_delta"][before:]) == "after the cut"
            statuses = [(c.status.value, c.attempt) for c in rec.events["connection_change"]]
            assert ("reconnecting", 1) in statuses and ("connected", 1) in statuses
        finally:
            await transport.close()


async def test_keepalive_detects_a_dead_peer_and_reconnects(server: RealtimeServer) -> None:
    async with CuttableRelay(server.port) as relay:
        transport = FetchUpgradeTransport(
            url=f"ws://127.0.0.1:{relay.port}/v1/realtime",
            ping_interval=0.2,
            ping_timeout=0.3,
            reconnect_backoff=(0.05, 0.1),
        )
        rec = Recorder(transport, ("error", "connection_change", "session.created"))
        try:
            await transport.connect(initial_session_config=TEXT_ONLY)
            await asyncio.sleep(0.5)  # pings answered: nothing happens
            assert rec.events["error"] == []

            relay.frozen = True  # the peer stops answering, the TCP connection stays up
            error = await rec.next("error", within=5)
            assert error.code == "keepalive_timeout"
            change = await rec.next("connection_change", within=5)
            assert (change.status, change.reason) == (
                TransportStatus.RECONNECTING,
                "connection closed (code 1006): no pong within 0.3 s: connection presumed dead",
            )
            relay.frozen = False  # the network is back before the first attempt (after its backoff)
            while transport.reconnects == 0:
                await rec.next("connection_change", within=5)
            await rec.nth("session.created", 1)
            assert relay.accepted == 2
        finally:
            await transport.close()
