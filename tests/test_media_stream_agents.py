"""The phone agents app (tests/phone_agents.py) on a provider's media stream: ``RtlayerRealtimeModel`` over
``MediaStreamTransport``, the provider played by ``rtlayer.testing.phone.PhoneSimulator``, real sockets.

The same call as over SIP: the caller speaks, the triage agent calls its tool and hands off to billing
(another voice), whose answer the caller hears; the caller presses 1, which reaches the agent's session as
the same raw event a SIP call gives; billing's next answer trips the guardrail; the caller hangs up and the
session ends.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import pytest
from agents.realtime import RealtimeRunner
from phone_agents import (
    RESPONDER,
    RUN_CONFIG,
    TURN_DETECTION,
    AgentCall,
    check_the_call,
    converse,
    phone_agents,
)
from websockets.asyncio.server import ServerConnection, serve

import rtlayer_native
from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.testing.phone import PhoneSimulator
from rtlayer.transports.media_stream import MediaStreamTransport

pytestmark = pytest.mark.timeout(60)

HELLO = Path(__file__).parent / "data" / "hello_24k.wav"


@pytest.mark.parametrize(
    ("provider", "call_format"),
    [
        ("twilio", {"type": "audio/pcmu"}),  # mu-law passthrough
        pytest.param(
            "vonage", {"type": "audio/pcm", "rate": 24000}, marks=pytest.mark.slow
        ),  # L16, converted
    ],
)
async def test_an_agent_takes_a_media_stream_call(provider: str, call_format: dict[str, Any]) -> None:
    record = AgentCall()
    ended = asyncio.Event()
    failures: list[BaseException] = []
    loop = asyncio.get_running_loop()

    async with RealtimeServer(responder=RESPONDER) as server:

        async def media_stream(conn: ServerConnection) -> None:
            """The app's media-stream endpoint: one agents session per call."""
            model = RtlayerRealtimeModel(transport=MediaStreamTransport(conn, provider, url=server.ws_url))
            runner = RealtimeRunner(phone_agents(model), model=model, config=RUN_CONFIG)
            try:
                session = await runner.run(
                    model_config={
                        "url": server.ws_url,
                        "api_key": "x",
                        "initial_model_settings": {"voice": "ash", "turn_detection": TURN_DETECTION},
                    }
                )
                await converse(session, record)  # until the caller hangs up
            except BaseException as exc:
                failures.append(exc)
                raise
            finally:
                ended.set()

        async with serve(media_stream, "127.0.0.1", 0) as endpoint:
            url = f"ws://127.0.0.1:{endpoint.sockets[0].getsockname()[1]}/media-stream"
            async with PhoneSimulator(provider, url) as phone:
                with wave.open(str(HELLO)) as wav:
                    phone.say(wav.readframes(wav.getnframes()), 24000)
                # billing's answer is the first audio the caller hears (the triage turns only call tools)
                answer = await phone.wait_for_answer_end(1, within=20)
                heard_at = loop.time()
                phone.press("1")
                await phone.wait_for(
                    lambda: any(e.type == "guardrail_tripped" for e in record.seen), within=10
                )
            await asyncio.wait_for(ended.wait(), 10)  # the caller's hang-up ended the session

    assert not failures, failures
    check_the_call(record, call_format)
    assert record.billing_from is not None and record.billing_from < heard_at
    assert answer.played_ms >= 1000 and not answer.cleared
    assert rtlayer_native.rms_dbfs(bytes(answer.pcm16)) > -40.0
    assert phone.problems == []
