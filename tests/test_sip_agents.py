"""An ``openai-agents`` app taking phone calls: sipp calls the embedded server, the app answers with an agent.

The app is what a Realtime customer runs: it receives the ``realtime.call.incoming`` webhook, accepts
with a body built from its agent (``rtlayer.integrations.openai_agents.build_initial_config``) and runs
the agent over ``SIPTransport`` with ``RtlayerRealtimeModel``. The caller speaks; the triage agent
calls a tool, then hands off to the billing agent (another voice, other instructions), whose answer the
caller hears on RTP; a digit the caller presses reaches the session as an event; an output guardrail
trips mid-answer; the caller hangs up and the session ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents import GuardrailFunctionOutput, RunContextWrapper, function_tool, output_guardrail
from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSessionEvent, realtime_handoff
from sip_helpers import SIPP, Phone, open_phone

import rtlayer_native
from rtlayer import DtmfEvent
from rtlayer.integrations.openai_agents import RtlayerRealtimeModel, build_initial_config
from rtlayer.server.responders import FunctionCallPart, Rule, ScriptedResponder
from rtlayer.transports.sip import SIPTransport

pytestmark = pytest.mark.timeout(60)

assert SIPP is not None, "sipp is missing: run scripts/install-test-deps (Debian package sip-tester)"

BILLING_ANSWER = "Billing here. Your refund is on its way."
SECRET_ANSWER = "Your card number is 4242 4242 4242 4242."

# The model of this phone line, as rules: the triage agent looks the order up and transfers (only an
# agent that has the transfer tool is asked to); the billing agent answers, and reads a card number
# when the caller presses a key (which the guardrail stops).
RESPONDER = ScriptedResponder(
    [
        Rule(
            audio=True,
            instructions_contain="triage",
            calls=(FunctionCallPart("lookup_order", {"order_id": "42"}),),
        ),
        Rule(after_tool="lookup_order", calls=(FunctionCallPart("transfer_to_billing"),), require_tools=True),
        Rule(after_tool="transfer_to_billing", instructions_contain="billing", say=BILLING_ANSWER),
        Rule(words=("pressed",), instructions_contain="billing", say=SECRET_ANSWER),
    ],
    default="Sorry, I cannot help with that.",
)


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up by its number."""
    return f"Order {order_id}: refund approved."


@output_guardrail
def no_card_numbers(context: RunContextWrapper[Any], agent: Any, output: str) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="card number" in output.lower())


def agents(model: RtlayerRealtimeModel) -> RealtimeAgent[Any]:
    """The triage agent, which hands off to billing; billing speaks with its own voice."""
    billing: RealtimeAgent[Any] = RealtimeAgent(
        name="billing",
        instructions="You are the billing desk.",
        output_guardrails=[no_card_numbers],
    )

    def billing_voice(context: RunContextWrapper[Any]) -> None:
        model.session_overrides = {"voice": "coral"}

    return RealtimeAgent(
        name="triage",
        instructions="You triage calls.",
        tools=[lookup_order],
        handoffs=[realtime_handoff(billing, on_handoff=billing_voice)],
    )


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    async with open_phone(tmp_path, responder=RESPONDER) as opened:
        yield opened


def raw(event: RealtimeSessionEvent) -> dict[str, Any] | None:
    if event.type == "raw_model_event" and event.data.type == "raw_server_event":
        return dict(event.data.data)
    return None


async def test_an_agent_answers_the_phone_calls_a_tool_hands_off_and_the_caller_hangs_up(
    phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    model = RtlayerRealtimeModel(transport=SIPTransport())
    triage = agents(model)
    sipp, call = await phone.ring("uac_pcmu_agent_dtmf_caller_bye")
    accept = await build_initial_config(
        triage,
        overrides={"voice": "ash", "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}},
    )
    assert accept["instructions"] == "You triage calls."
    assert sorted(t["name"] for t in accept["tools"]) == ["lookup_order", "transfer_to_billing"]
    assert "format" not in json.dumps(accept)  # the SDK's audio/pcm formats were dropped
    assert phone.app.client is not None
    await phone.app.client.accept(call.call_id, accept)

    runner = RealtimeRunner(
        triage,
        model=model,
        config={"guardrails_settings": {"debounce_text_length": 10}},
    )
    session = await runner.run(
        model_config={"url": phone.server.ws_url, "api_key": "x", "call_id": call.call_id},
    )
    seen: list[RealtimeSessionEvent] = []
    pressed: list[DtmfEvent] = []
    model.transport.on("dtmf", pressed.append)  # the transport's typed view of the same server event
    handed_off = False
    heard_from: float | None = None  # when the billing agent's answer started, on the test's clock
    loop = asyncio.get_running_loop()
    async with session:
        async with asyncio.timeout(30):
            async for event in session:  # ends when the caller hangs up
                seen.append(event)
                data = raw(event)
                kind = data and data.get("type")
                if kind == "input_audio_buffer.dtmf_event_received":
                    await session.send_message(f"The caller pressed {data['event']}.")  # type: ignore[index]
                elif event.type == "handoff":
                    handed_off = True
                elif kind == "response.output_audio_transcript.delta" and handed_off and heard_from is None:
                    heard_from = loop.time()
    code, log = await sipp.wait()
    assert code == 0, log

    kinds = [e.type for e in seen]
    errors = [e for e in seen if e.type == "error"]
    assert not errors, errors
    # the triage agent called its tool, then handed off
    tool_ends = [e for e in seen if e.type == "tool_end"]
    assert [e.tool.name for e in tool_ends] == ["lookup_order"]  # type: ignore[attr-defined]
    assert tool_ends[0].output == "Order 42: refund approved."  # type: ignore[attr-defined]
    handoff = next(e for e in seen if e.type == "handoff")
    assert (handoff.from_agent.name, handoff.to_agent.name) == ("triage", "billing")  # type: ignore[attr-defined]
    # the handoff's session.update reached the call: the billing agent's instructions, and its own voice
    updates = [d["session"] for e in seen if (d := raw(e)) and d.get("type") == "session.updated"]
    billing_config = next(u for u in updates if u["instructions"] == "You are the billing desk.")
    assert billing_config["audio"]["output"]["voice"] == "coral"
    assert updates[0]["audio"]["output"]["voice"] == "ash"
    assert billing_config["audio"]["output"]["format"] == {"type": "audio/pcmu"}  # still the call's codec
    transcripts = [
        d["transcript"]
        for e in seen
        if (d := raw(e)) and d.get("type") == "response.output_audio_transcript.done"
    ]
    assert BILLING_ANSWER in transcripts
    # ... and the caller heard it: RTP after it started carries speech
    assert heard_from is not None
    after = b"".join(p[5] for p in phone.sink.packets if p[0] >= heard_from)
    assert len(after) >= 8000, len(after)  # at least a second of it
    assert rtlayer_native.rms_dbfs(rtlayer_native.ulaw_decode(after)) > -40.0
    # the digit reached the agent's session as an event, and the guardrail stopped the card number
    digits = [
        d["event"]
        for e in seen
        if (d := raw(e)) and d.get("type") == "input_audio_buffer.dtmf_event_received"
    ]
    assert digits == ["1"]
    assert [e.digit for e in pressed] == ["1"] and pressed[0].received_at > 0
    tripped = [e for e in seen if e.type == "guardrail_tripped"]
    assert len(tripped) == 1 and "card number" in tripped[0].message.lower()  # type: ignore[attr-defined]
    assert SECRET_ANSWER not in transcripts  # cut before it was all said
    assert kinds.index("guardrail_tripped") > kinds.index("handoff")
    # one warning for the formats the SDK's builder puts in every update, none per handoff
    format_warnings = [r.getMessage() for r in caplog.records if "dropping audio" in r.getMessage()]
    assert len(format_warnings) <= 2, format_warnings  # build_initial_config's, and the transport's at most
    assert not any("Tool output send failed" in r.getMessage() for r in caplog.records)
    # the caller's BYE ended the call and its control socket
    assert call.call_id not in phone.server.state.calls
    assert phone.server.state.connections == 0
