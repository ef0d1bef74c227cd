"""The contract's small print: emitter semantics, lifecycle errors, normal closes, ephemeral keys."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from helpers import Recorder

from rtlayer.exceptions import ConnectionClosedError, LocalProtocolError
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.transport import EventEmitter, RealtimeTransportLayer, TransportStatus
from rtlayer.transports import WebSocketTransport

pytestmark = pytest.mark.timeout(30)


async def test_emitter_on_off_once_star_and_failing_listeners() -> None:
    emitter = EventEmitter()
    seen: list[tuple[str, Any]] = []

    def boom(payload: Any) -> None:
        raise RuntimeError("listener bug")

    emitter.on("x", boom)
    emitter.on("x", lambda p: seen.append(("x", p)))
    emitter.once("x", lambda p: seen.append(("once", p)))
    emitter.on("error", lambda e: seen.append(("error", e.code)))
    emitter.emit("x", 1)
    emitter.emit("x", 2)
    emitter.off("x", boom)
    emitter.emit("x", 3)
    assert seen == [
        ("error", "listener_error"),
        ("x", 1),
        ("once", 1),
        ("error", "listener_error"),
        ("x", 2),
        ("x", 3),
    ]

    got: list[Any] = []

    async def async_listener(payload: Any) -> None:
        await asyncio.sleep(0)
        got.append(payload)

    emitter.on("y", async_listener)
    emitter.emit("y", "later")
    await asyncio.sleep(0.01)
    assert got == ["later"]


async def test_events_iterator_by_name_is_bounded_and_ends() -> None:
    emitter = EventEmitter()
    stream = emitter.events(("a", "b"), maxsize=2)
    for value in range(5):
        emitter.emit("a" if value % 2 else "b", value)
    emitter.emit("c", "ignored")
    emitter.close_listeners()
    assert [v async for v in stream] == [3, 4]  # the newest two; the three oldest were dropped and counted
    assert stream.dropped == 3
    assert not emitter.has_listeners("a")


async def test_lifecycle_errors_and_idempotent_close(server: RealtimeServer) -> None:
    t = WebSocketTransport(url=server.ws_url)
    assert isinstance(t, RealtimeTransportLayer)
    with pytest.raises(ConnectionClosedError):
        t.send_message("too early")
    await t.close()  # before connect: nothing to do
    await t.connect()
    with pytest.raises(LocalProtocolError):
        await t.connect()
    await t.close()
    await t.close()
    assert t.status is TransportStatus.DISCONNECTED
    with pytest.raises(ConnectionClosedError):
        await t.send_audio(b"\x00\x00")


async def test_a_normal_close_by_the_server_is_not_retried(server: RealtimeServer) -> None:
    t = WebSocketTransport(url=server.ws_url, reconnect_backoff=(0.01, 0.02))
    rec = Recorder(t, ("connection_change",))
    await t.connect()
    for runner in list(server.state.runners.values()):
        runner.close()  # the server ends the session: close code 1000
    while t.status is not TransportStatus.DISCONNECTED:
        await rec.next("connection_change")
    statuses = [c.status.value for c in rec.events["connection_change"]]
    assert "reconnecting" not in statuses
    assert "1000" in (rec.events["connection_change"][-1].reason or "")
    await t.close()


async def test_ephemeral_key_through_browser_subprotocols() -> None:
    async with RealtimeServer(api_key="sk-server-side") as server:
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                server.url + "/v1/realtime/client_secrets",
                headers={"Authorization": "Bearer sk-server-side"},
                json={"session": {"type": "realtime", "instructions": "From the ephemeral key."}},
            )
        ephemeral = answer.json()["value"]
        assert ephemeral.startswith("ek_")
        t = WebSocketTransport(url=server.ws_url, use_subprotocol_auth=True)
        rec = Recorder(t, ("session.created",))
        await t.connect(api_key=ephemeral)
        created = await rec.first("session.created")
        assert created["session"]["instructions"] == "From the ephemeral key."
        await t.close()


def test_urls_and_auth_forms() -> None:
    from rtlayer.transports._connect import auth_for, realtime_url

    assert realtime_url(None, "gpt-realtime", None) == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert realtime_url(None, "gpt-realtime", "rtc_1") == "wss://api.openai.com/v1/realtime?call_id=rtc_1"
    azure = "wss://res.openai.azure.com/openai/v1/realtime?model=my-deployment"
    assert realtime_url(azure, "gpt-realtime", None) == azure  # the deployment in the URL is kept
    assert auth_for(azure, "k", None, False) == ({"api-key": "k"}, None)
    assert auth_for("wss://api.openai.com/v1/realtime", "k", None, False) == (
        {"Authorization": "Bearer k"},
        None,
    )
    assert auth_for("ws://127.0.0.1:1/v1/realtime", None, None, False) == ({}, None)  # a local keyless server
    assert auth_for("wss://x/v1/realtime", "k", {"X-Token": "t"}, False) == ({"X-Token": "t"}, None)
