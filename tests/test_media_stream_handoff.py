"""An ``openai-agents`` agent on a phone call: ``RtlayerRealtimeModel`` over ``MediaStreamTransport``.

The agent hands the call off to another agent. The SDK's handoff sends a ``session.update`` built from its
defaults (PCM16 24 kHz), which is what gives the JS SDK's Twilio bridge its static; here the bridge keeps the
model on the provider's format, so the caller hears the second agent as clearly as the first: the answers'
level and spectrum after the handoff match the ones before it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from helpers import EmittedEvents
from websockets.asyncio.server import ServerConnection, serve

from rtlayer.audio import AudioFormat
from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder
from rtlayer.testing.phone import PhoneSimulator
from rtlayer.transports.media_stream import MediaStreamTransport

RULES = {
    "rules": [
        {"when": {"text_contains": "hello"}, "say": "Front desk, hello."},
        {
            "when": {"text_contains": "billing"},
            "call": {"name": "transfer_to_billing_agent", "arguments": {}},
        },
        {"after_function_output": "transfer_to_billing_agent", "say": "Billing here, hello."},
    ]
}


def _centroid_hz(pcm16: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float((spectrum * freqs).sum() / spectrum.sum())


def _rms_dbfs(pcm16: bytes) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64) / 32768
    return float(20 * np.log10(np.sqrt((samples**2).mean())))


@pytest.mark.parametrize("provider", ["twilio", "vonage"])
async def test_a_handoff_keeps_the_providers_format_and_the_caller_hears_no_static(
    provider: str, server_events: EmittedEvents
) -> None:
    billing = RealtimeAgent(name="Billing agent", instructions="You handle billing.")
    front = RealtimeAgent(name="Front desk", instructions="You greet callers.", handoffs=[billing])
    sessions: list[Any] = []
    agents_seen: list[str] = []
    done = asyncio.Event()

    async with RealtimeServer(responder=ScriptedResponder(RULES)) as server:

        async def call(conn: ServerConnection) -> None:
            transport = MediaStreamTransport(conn, provider)
            runner = RealtimeRunner(front, model=RtlayerRealtimeModel(transport=transport))
            try:
                async with await runner.run(model_config={"url": server.ws_url, "api_key": "x"}) as session:
                    sessions.append((session, transport))
                    async for event in session:
                        if event.type == "handoff":
                            agents_seen.append(event.to_agent.name)
                        assert event.type != "error", event
            finally:
                done.set()

        async with serve(call, "127.0.0.1", 0) as bridge:
            url = f"ws://127.0.0.1:{bridge.sockets[0].getsockname()[1]}/media-stream"
            async with PhoneSimulator(provider, url) as phone:
                await phone.wait_for(lambda: sessions, within=10)
                session, transport = sessions[0]
                await session.send_message("hello")
                before = await phone.wait_for_answer_end(1, within=15)
                await session.send_message("billing please")
                after = await phone.wait_for_answer_end(2, within=15)
            await asyncio.wait_for(done.wait(), 5)

    assert agents_seen == ["Billing agent"]
    # The SDK asked for PCM16 at the handoff; the model stayed on the provider's format all along.
    pinned = transport.model_format
    assert transport.format_pins >= (
        1 if pinned.codec == "pcmu" else 0
    )  # Vonage's model side is PCM16 anyway
    updates = server_events.of_type("session.updated")
    assert len(updates) >= 2  # the agent's config, then the handoff's
    for event in updates:
        assert AudioFormat.from_session(event["session"]["audio"]["output"]["format"]) == pinned
    rate = phone.side.rate
    level_before, level_after = _rms_dbfs(bytes(before.pcm16)), _rms_dbfs(bytes(after.pcm16))
    centroid_before = _centroid_hz(bytes(before.pcm16), rate)
    centroid_after = _centroid_hz(bytes(after.pcm16), rate)
    assert before.played_ms > 500 and after.played_ms > 500
    assert abs(level_after - level_before) < 3.0, (level_before, level_after)
    assert abs(centroid_after - centroid_before) < 0.25 * centroid_before, (centroid_before, centroid_after)
