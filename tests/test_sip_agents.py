"""An ``openai-agents`` app taking phone calls: sipp calls the embedded server, the app answers with an agent.

The app is what a Realtime customer runs: it receives the ``realtime.call.incoming`` webhook, accepts
with a body built from its agent (``rtlayer.integrations.openai_agents.build_initial_config``) and runs
the agent over ``SIPTransport`` with ``RtlayerRealtimeModel``. The caller speaks; the triage agent
calls a tool, then hands off to the billing agent (another voice, other instructions), whose answer the
caller hears on RTP; a digit the caller presses (SIP INFO) reaches the session as an event; an output
guardrail trips mid-answer; the caller hangs up and the session ends (tests/phone_agents.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from phone_agents import (
    RESPONDER,
    RUN_CONFIG,
    TURN_DETECTION,
    AgentCall,
    check_the_call,
    converse,
    phone_agents,
    raw,
)
from sip_helpers import SIPP, Phone, RtpSink, answered_call, open_phone, sip_rig

import rtlayer_native
from rtlayer import DtmfEvent
from rtlayer.integrations.openai_agents import RtlayerRealtimeModel, build_initial_config
from rtlayer.transports.sip import SIPTransport

pytestmark = pytest.mark.timeout(60)

assert SIPP is not None, "sipp is missing: run scripts/install-test-deps (Debian package sip-tester)"


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    async with open_phone(tmp_path, responder=RESPONDER) as opened:
        yield opened


async def test_an_agent_answers_the_phone_calls_a_tool_hands_off_and_the_caller_hangs_up(
    phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    model = RtlayerRealtimeModel(transport=SIPTransport())
    triage = phone_agents(model)
    sipp, call = await phone.ring("uac_pcmu_agent_dtmf_caller_bye")
    accept = await build_initial_config(triage, overrides={"voice": "ash", "turn_detection": TURN_DETECTION})
    assert accept["instructions"] == "You triage calls."
    assert sorted(t["name"] for t in accept["tools"]) == ["lookup_order", "transfer_to_billing"]
    assert "format" not in json.dumps(accept)  # the SDK's audio/pcm formats were dropped
    assert phone.app.client is not None
    await phone.app.client.accept(call.call_id, accept)

    session = await RealtimeRunner(triage, model=model, config=RUN_CONFIG).run(
        model_config={"url": phone.server.ws_url, "api_key": "x", "call_id": call.call_id},
    )
    pressed: list[DtmfEvent] = []
    model.transport.on("dtmf", pressed.append)  # the transport's typed view of the same server event
    record = AgentCall()
    await converse(session, record)  # until the caller's BYE
    code, log = await sipp.wait()
    assert code == 0, log

    check_the_call(record, {"type": "audio/pcmu"})
    # the caller heard billing's answer: the RTP after it started carries speech
    assert record.billing_from is not None
    after = b"".join(p[5] for p in phone.sink.packets if p[0] >= record.billing_from)
    assert len(after) >= 8000, len(after)  # at least a second of it
    assert rtlayer_native.rms_dbfs(rtlayer_native.ulaw_decode(after)) > -40.0
    assert [e.digit for e in pressed] == ["1"] and (pressed[0].received_at or 0) > 0
    # one warning, for the SDK's formats in the accept body; none at connect or at the handoff (the model
    # kept the call's id, so the SDK's builder left the formats out)
    format_warnings = [r.getMessage() for r in caplog.records if "dropping audio" in r.getMessage()]
    assert len(format_warnings) == 1 and format_warnings[0].startswith("build_initial_config"), (
        format_warnings
    )
    assert not any("Tool output send failed" in r.getMessage() for r in caplog.records)
    # the caller's BYE ended the call and its control socket
    assert call.call_id not in phone.server.state.calls
    assert phone.server.state.connections == 0


async def test_update_agent_on_a_call_keeps_the_call(caplog: pytest.LogCaptureFixture) -> None:
    """``session.update_agent()`` over SIP (the shape of the first bug report): the update the SDK builds
    reaches the call without formats, the call's codec stays, and nothing fails; a raw ``session.update``
    with a format has it dropped, with the transport's one warning. A minimal UAC calls."""
    caplog.set_level(logging.WARNING)
    sink = RtpSink()
    await sink.start()
    async with sip_rig() as (server, app):
        caller, call_id, _ = await answered_call(server, app, sink.port)
        try:
            model = RtlayerRealtimeModel(transport=SIPTransport())
            first: RealtimeAgent[Any] = RealtimeAgent(name="first", instructions="You greet.")
            second: RealtimeAgent[Any] = RealtimeAgent(name="second", instructions="You do billing.")
            session = await RealtimeRunner(first, model=model).run(
                model_config={"url": server.ws_url, "api_key": "x", "call_id": call_id}
            )
            updated: list[dict[str, Any]] = []
            raw_update = {
                "type": "realtime",
                "instructions": "Raw.",
                "audio": {"output": {"format": "pcm16"}},
            }
            async with session, asyncio.timeout(10):
                async for event in session:
                    data = raw(event)
                    assert event.type != "error", event
                    if data is None or data.get("type") != "session.updated":
                        continue
                    updated.append(data["session"])
                    if len(updated) == 1:
                        no_warnings_yet = not [
                            r for r in caplog.records if "dropping audio" in r.getMessage()
                        ]
                        await session.update_agent(second)
                    elif data["session"]["instructions"] == "You do billing.":
                        model.transport.send_event({"type": "session.update", "session": raw_update})
                    elif data["session"]["instructions"] == "Raw.":
                        break
        finally:
            caller.close()
            sink.close()
    assert no_warnings_yet  # connect and update_agent: the kept call_id left the formats out
    for config in updated:
        assert (
            config["audio"]["input"]["format"]
            == config["audio"]["output"]["format"]
            == {"type": "audio/pcmu"}
        )
    warnings = [r.getMessage() for r in caplog.records if "dropping audio" in r.getMessage()]
    assert warnings == [
        "SIPTransport.send_event: dropping audio.output.format=pcm16: "
        "a SIP call's audio is the caller's codec, negotiated over SIP"
    ]
