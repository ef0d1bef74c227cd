"""The phone agents app (tests/phone_agents.py) on a provider's media stream: ``RtlayerRealtimeModel`` over
``MediaStreamTransport``, the provider played by ``rtlayer.testing.phone.PhoneSimulator``, real sockets.

The full call, as over SIP, on Twilio (JSON, mu-law passthrough) and Vonage (binary L16, converted): the
caller speaks, the triage agent calls its tool and hands off to billing (another voice), whose answer the
caller hears; the caller presses 1, which reaches the agent's session as the same raw event a SIP call gives;
billing's next answer trips the guardrail; the caller hangs up and the session ends.

The lean call, on every provider: the caller presses 1 first; the digit reaches the agent's session, triage
hands off to billing, billing's session keeps the provider's format and the caller hears billing start to
answer; the caller hangs up. It shows what differs between providers (the dialect, the format, DTMF) in
about a second of simulated call rather than the full call's real-time speech and answers.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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
from rtlayer.server.responders import FunctionCallPart, Rule, ScriptedResponder
from rtlayer.testing.phone import PhoneSimulator
from rtlayer.transports.media_stream import MediaStreamTransport

pytestmark = pytest.mark.timeout(60)

HELLO = Path(__file__).parent / "data" / "hello_24k.wav"

#: the format each provider's call pins the model's session to (the transport's choice, never the agent's)
CALL_FORMATS: dict[str, dict[str, Any]] = {
    "twilio": {"type": "audio/pcmu"},  # mu-law passthrough
    "telnyx": {"type": "audio/pcmu"},  # its default codec, passthrough
    "plivo": {"type": "audio/pcm", "rate": 24000},  # L16 8 kHz, converted
    "exotel": {"type": "audio/pcm", "rate": 24000},  # L16 8 kHz, converted
    "vonage": {"type": "audio/pcm", "rate": 24000},  # binary L16 16 kHz, converted
}

#: the lean call's model: a pressed key is enough for triage to transfer (the full call's rules after that)
LEAN_RESPONDER = ScriptedResponder(
    [
        Rule(
            words=("pressed",),
            instructions_contain="triage",
            calls=(FunctionCallPart("transfer_to_billing"),),
        ),
        *RESPONDER.rules,
    ],
    default=RESPONDER.default,
)


@asynccontextmanager
async def agent_line(
    provider: str, server: RealtimeServer, record: AgentCall
) -> AsyncIterator[tuple[str, Callable[[], Any]]]:
    """The app's media-stream endpoint (one agents session per call, recorded in ``record``): yields its URL
    and a coroutine function waiting for the session to end, which re-raises what the session raised."""
    ended = asyncio.Event()
    failures: list[BaseException] = []

    async def media_stream(conn: ServerConnection) -> None:
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

    async def session_ended() -> None:
        await asyncio.wait_for(ended.wait(), 10)
        assert not failures, failures

    async with serve(media_stream, "127.0.0.1", 0) as endpoint:
        yield f"ws://127.0.0.1:{endpoint.sockets[0].getsockname()[1]}/media-stream", session_ended


@pytest.mark.parametrize("provider", ["twilio", "vonage"])
async def test_an_agent_takes_a_media_stream_call(provider: str) -> None:
    record = AgentCall()
    loop = asyncio.get_running_loop()
    async with (
        RealtimeServer(responder=RESPONDER) as server,
        agent_line(provider, server, record) as (
            url,
            session_ended,
        ),
    ):
        async with PhoneSimulator(provider, url) as phone:
            with wave.open(str(HELLO)) as wav:
                phone.say(wav.readframes(wav.getnframes()), 24000)
            # billing's answer is the first audio the caller hears (the triage turns only call tools)
            answer = await phone.wait_for_answer_end(1, within=20)
            heard_at = loop.time()
            phone.press("1")
            await phone.wait_for(lambda: any(e.type == "guardrail_tripped" for e in record.seen), within=10)
        await session_ended()  # the caller's hang-up ended the session

    check_the_call(record, CALL_FORMATS[provider])
    assert record.billing_from is not None and record.billing_from < heard_at
    assert answer.played_ms >= 1000 and not answer.cleared
    assert rtlayer_native.rms_dbfs(bytes(answer.pcm16)) > -40.0
    assert phone.problems == []


@pytest.mark.parametrize("provider", list(CALL_FORMATS))
async def test_a_handoff_keeps_each_providers_format_and_dtmf_reaches_the_agent(provider: str) -> None:
    record = AgentCall()
    async with (
        RealtimeServer(responder=LEAN_RESPONDER) as server,
        agent_line(provider, server, record) as (
            url,
            session_ended,
        ),
    ):
        async with PhoneSimulator(provider, url) as phone:
            phone.press("1")
            answer = await phone.wait_answer(1, min_played_ms=300, within=10)  # billing, heard
        await session_ended()  # the caller's hang-up ended the session

    assert not [e for e in record.seen if e.type == "error"]
    assert [d["event"] for d in record.raws("input_audio_buffer.dtmf_event_received")] == ["1"]
    handoff = next(e for e in record.seen if e.type == "handoff")
    assert (handoff.from_agent.name, handoff.to_agent.name) == ("triage", "billing")  # type: ignore[attr-defined]
    updates = [d["session"] for d in record.raws("session.updated")]
    billing = next(u for u in updates if u["instructions"] == "You are the billing desk.")
    assert billing["audio"]["output"]["voice"] == "coral"
    assert (
        billing["audio"]["input"]["format"] == billing["audio"]["output"]["format"] == CALL_FORMATS[provider]
    )
    assert record.billing_from is not None  # billing's answer started, on the session
    assert rtlayer_native.rms_dbfs(bytes(answer.pcm16)) > -40.0  # and the caller heard it
    assert phone.problems == []
