"""The typed events for the newer server events, over a real WebSocket against the embedded server:
``input_audio_timeout`` (idle_timeout_ms). ``dtmf`` is shown on a phone call in tests/test_sip_agents.py."""

from __future__ import annotations

import asyncio

import pytest

from rtlayer import InputAudioTimeoutEvent, WebSocketTransport
from rtlayer.server import RealtimeServer

pytestmark = pytest.mark.timeout(20)


async def test_idle_timeout_reaches_the_app_as_a_typed_event() -> None:
    async with RealtimeServer() as server:
        transport = WebSocketTransport()
        timeouts: asyncio.Queue[InputAudioTimeoutEvent] = asyncio.Queue()
        transport.on("input_audio_timeout", timeouts.put_nowait)
        await transport.connect(
            url=server.ws_url,
            api_key="x",
            initial_session_config={
                "output_modalities": ["text"],
                "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 300}}},
            },
        )
        try:
            transport.send_message("hi")
            event = await asyncio.wait_for(timeouts.get(), 5)
        finally:
            await transport.close()
    assert event.item_id.startswith("item_")
    assert event.audio_end_ms >= event.audio_start_ms >= 0
