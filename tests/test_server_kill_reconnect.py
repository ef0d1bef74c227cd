"""The server process dies mid-session (SIGKILL: no close frame, no goodbye) and comes back on the same port.

The client (``WebSocketTransport``) must report the loss within its keepalive window, keep trying within
its reconnect budget, and once the restarted server answers, be connected again with the configuration
the app gave it restored on the new session (not the conversation: that died with the process).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import eventually
from helpers_serve import ServeProcess, free_tcp_port

from rtlayer.transport_events import ConnectionChangeEvent, TransportStatus
from rtlayer.transports.websocket import WebSocketTransport

pytestmark = pytest.mark.timeout(60)

PING_INTERVAL_S = 0.5
PING_TIMEOUT_S = 1.0


async def test_a_killed_server_is_reported_within_the_keepalive_window_and_its_restart_reconnects() -> None:
    port = free_tcp_port()
    first = ServeProcess(port=port)
    await first.start()
    transport = WebSocketTransport(
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_TIMEOUT_S,
        reconnect_backoff=(0.2, 0.5),
        max_reconnect_attempts=60,  # a restart takes a few seconds of Python start-up on a busy machine
    )
    changes: list[tuple[float, ConnectionChangeEvent]] = []
    events: list[dict[str, Any]] = []
    transport.on("connection_change", lambda change: changes.append((time.monotonic(), change)))
    transport.on("*", events.append)
    second: ServeProcess | None = None
    try:
        await transport.connect(
            url=first.url, api_key="x", initial_session_config={"instructions": "Remember me"}
        )
        await eventually(lambda: any(e["type"] == "session.updated" for e in events))
        old_session = next(e for e in events if e["type"] == "session.created")["session"]["id"]

        killed = time.monotonic()
        await first.kill()
        await eventually(
            lambda: any(c.status is TransportStatus.RECONNECTING for _, c in changes),
            within=PING_INTERVAL_S + PING_TIMEOUT_S,
        )
        lost = next(t for t, c in changes if c.status is TransportStatus.RECONNECTING)
        assert lost - killed <= PING_INTERVAL_S + PING_TIMEOUT_S

        second = ServeProcess(port=port)  # the same address: what a supervisor's restart gives
        await second.start()
        await eventually(lambda: transport.status is TransportStatus.CONNECTED, within=20)
        assert changes[-1][1].reason == "reconnected"

        def restored() -> bool:
            return any(
                e["type"] == "session.updated"
                and e["session"]["id"] != old_session
                and e["session"]["instructions"] == "Remember me"
                for e in events
            )

        await eventually(restored, within=5)
        transport.send_event({"type": "response.create", "response": {"output_modalities": ["text"]}})
        await eventually(lambda: any(e["type"] == "response.done" for e in events), within=10)
        assert (await second.health())["sessions"] == 1
    finally:
        await transport.close()
        await first.kill()
        if second is not None:
            await second.close()
