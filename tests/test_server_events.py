"""The suite-wide check of server events (conftest ``server_events``) really checks."""

from __future__ import annotations

import json

import websockets
from helpers import EmittedEvents

from rtlayer.server import RealtimeServer


def test_the_validator_flags_an_event_the_official_models_refuse() -> None:
    collected = EmittedEvents()
    good_id = "event_" + "A1" * 10 + "z"
    fine = {"type": "error", "event_id": good_id, "error": {"type": "invalid_request_error", "message": "m"}}
    collected("sess_1", fine)
    collected("sess_1", {"type": "response.done", "event_id": good_id, "response": {"status": "exploded"}})
    collected(
        "sess_1", {"type": "input_audio_buffer.speech_started", "event_id": good_id}
    )  # no audio_start_ms
    collected("sess_1", {**fine, "event_id": "evt_123"})  # valid for the models, not the service's id format
    collected("sess_1", {**fine, "error": {**fine["error"], "hint": "an invented field"}})
    problems = collected.invalid()
    assert len(problems) == 4, problems
    assert "'response.done'" in problems[0] and "status" in problems[0]
    assert "'input_audio_buffer.speech_started'" in problems[1]
    assert "evt_123" in problems[2]
    assert ".error" in problems[3] and "hint" in problems[3]


async def test_every_event_of_a_turn_reaches_the_validator_in_wire_order(
    server: RealtimeServer, server_events: EmittedEvents
) -> None:
    received: list[str] = []
    async with websockets.connect(
        server.ws_url + "?model=m", additional_headers={"Authorization": "Bearer x"}
    ) as ws:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        await ws.send(json.dumps({"type": "response.create"}))
        while not received or received[-1] != "response.done":
            received.append(json.loads(await ws.recv())["type"])
    assert server_events.types() == received  # what the client got is exactly what was checked
    assert "response.output_audio.delta" in received and not server_events.invalid()
