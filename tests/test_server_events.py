"""The suite-wide check of server events (conftest ``server_events``) really checks."""

from __future__ import annotations

import json

import websockets
from conftest import EmittedEvents

from rtlayer.server import RealtimeServer


def test_the_validator_flags_an_event_the_official_models_refuse() -> None:
    collected = EmittedEvents()
    collected("sess_1", {"type": "error", "event_id": "event_1", "error": {"type": "invalid_request_error",
                                                                           "message": "fine"}})  # fmt: skip
    collected("sess_1", {"type": "response.done", "event_id": "event_2", "response": {"status": "exploded"}})
    collected(
        "sess_1", {"type": "input_audio_buffer.speech_started", "event_id": "event_3"}
    )  # no audio_start_ms
    problems = collected.invalid()
    assert len(problems) == 2
    assert "'response.done'" in problems[0] and "status" in problems[0]
    assert "'input_audio_buffer.speech_started'" in problems[1]


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
