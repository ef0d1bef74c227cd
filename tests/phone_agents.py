"""The agents app of the phone tests, shared by every medium (SIP with sipp, providers' media streams).

A triage agent looks the caller's order up with a tool, then hands off to a billing agent (its own voice
and instructions) whose answer the caller hears; a key the caller presses reaches the session, the app
asks billing about it, and billing's answer trips an output guardrail. ``RESPONDER`` is the model's side,
as rules; ``converse`` runs the app's session until the caller hangs up; ``check_the_call`` says what every
medium must show of it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agents import GuardrailFunctionOutput, RunContextWrapper, function_tool, output_guardrail
from agents.realtime import RealtimeAgent, RealtimeSession, RealtimeSessionEvent, realtime_handoff

from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
from rtlayer.server.responders import FunctionCallPart, Rule, ScriptedResponder

BILLING_ANSWER = "Billing here. Your refund is on its way."
SECRET_ANSWER = "Your card number is 4242 4242 4242 4242."
#: what the app's runner is configured with: the guardrail looks at every 10 characters of an answer
RUN_CONFIG: Any = {"guardrails_settings": {"debounce_text_length": 10}}
#: the caller's WAV has a 250 ms pause between its sentences: one turn needs a longer silence
TURN_DETECTION: Any = {"type": "server_vad", "silence_duration_ms": 500}

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


def phone_agents(model: RtlayerRealtimeModel) -> RealtimeAgent[Any]:
    """The triage agent, which hands off to billing; billing speaks with its own voice (set through the
    model's ``session_overrides``: the Python SDK's agents carry no voice)."""
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


def raw(event: RealtimeSessionEvent) -> dict[str, Any] | None:
    """The server event under a ``raw_model_event``, if it carries one."""
    if event.type == "raw_model_event" and event.data.type == "raw_server_event":
        return dict(event.data.data)
    return None


@dataclass
class AgentCall:
    """What the app's session saw of one call."""

    seen: list[RealtimeSessionEvent] = field(default_factory=list)
    #: when the billing agent's answer started (its first transcript delta), on the loop's clock
    billing_from: float | None = None

    def raws(self, kind: str) -> list[dict[str, Any]]:
        return [d for e in self.seen if (d := raw(e)) is not None and d.get("type") == kind]


async def converse(session: RealtimeSession, record: AgentCall, within: float = 30.0) -> None:
    """The app's loop: every event recorded; a pressed key is told to the agent. Returns when the session
    ends (the caller hung up)."""
    loop = asyncio.get_running_loop()
    handed_off = False
    async with session, asyncio.timeout(within):
        async for event in session:
            record.seen.append(event)
            data = raw(event)
            kind = data and data.get("type")
            if kind == "input_audio_buffer.dtmf_event_received":
                await session.send_message(f"The caller pressed {data['event']}.")  # type: ignore[index]
            elif event.type == "handoff":
                handed_off = True
            elif (
                kind == "response.output_audio_transcript.delta"
                and handed_off
                and record.billing_from is None
            ):
                record.billing_from = loop.time()


def check_the_call(record: AgentCall, call_format: dict[str, Any]) -> None:
    """What every medium must show: the tool, the handoff with billing's voice and instructions (the call's
    audio format untouched), billing's answer, the digit, and the guardrail."""
    seen = record.seen
    kinds = [e.type for e in seen]
    assert not [e for e in seen if e.type == "error"], [e for e in seen if e.type == "error"]
    tool_ends = [e for e in seen if e.type == "tool_end"]
    assert [e.tool.name for e in tool_ends] == ["lookup_order"]  # type: ignore[attr-defined]
    assert tool_ends[0].output == "Order 42: refund approved."  # type: ignore[attr-defined]
    handoff = next(e for e in seen if e.type == "handoff")
    assert (handoff.from_agent.name, handoff.to_agent.name) == ("triage", "billing")  # type: ignore[attr-defined]
    updates = [d["session"] for d in record.raws("session.updated")]
    billing_config = next(u for u in updates if u["instructions"] == "You are the billing desk.")
    assert updates[0]["audio"]["output"]["voice"] == "ash"
    assert billing_config["audio"]["output"]["voice"] == "coral"
    assert (
        billing_config["audio"]["input"]["format"]
        == billing_config["audio"]["output"]["format"]
        == call_format
    )
    transcripts = [d["transcript"] for d in record.raws("response.output_audio_transcript.done")]
    assert BILLING_ANSWER in transcripts
    assert record.billing_from is not None
    assert [d["event"] for d in record.raws("input_audio_buffer.dtmf_event_received")] == ["1"]
    tripped = [e for e in seen if e.type == "guardrail_tripped"]
    assert len(tripped) == 1 and "card number" in tripped[0].message.lower()  # type: ignore[attr-defined]
    assert SECRET_ANSWER not in transcripts  # cut before it was all said
    assert kinds.index("guardrail_tripped") > kinds.index("handoff")
