"""Bad input over a real socket: each is answered by the right ``error`` and the session goes on.

Every case sends its bad frame with an ``event_id`` (when it can carry one), checks the error's code,
param and echoed ``event_id``, and then has an ordinary text turn in the same session.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from helpers import EmittedEvents, eventually
from websockets.asyncio.client import ClientConnection

from rtlayer.server import RealtimeServer, ServerLimits

pytestmark = pytest.mark.timeout(30)


class RawClient:
    """A bare WebSocket client speaking raw JSON events (what a thin script does)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(event if isinstance(event, (str, bytes)) else json.dumps(event))

    async def until(self, event_type: str, limit: float = 10.0) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(limit):
            while True:
                event = json.loads(await self.ws.recv())
                seen.append(event)
                if event["type"] == event_type:
                    return seen

    async def error(self) -> dict[str, Any]:
        error: dict[str, Any] = (await self.until("error"))[-1]["error"]
        return error

    async def text_turn(self, text: str = "still here") -> dict[str, Any]:
        """A normal turn; returns its ``response.done`` response."""
        await self.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        await self.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        done = (await self.until("response.done"))[-1]["response"]
        assert done["status"] == "completed"
        assert text in done["output"][0]["content"][0]["text"]
        return done


@pytest.fixture
async def client(server: RealtimeServer) -> AsyncIterator[RawClient]:
    async with websockets.connect(
        server.ws_url + "?model=gpt-realtime", additional_headers={"Authorization": "Bearer x"}
    ) as ws:
        raw = RawClient(ws)
        await raw.until("session.created")
        yield raw


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CASES: list[tuple[str, Any, str, str | None]] = [
    # (name, frame, expected code, expected param)
    ("unknown type", {"type": "conversation.item.explode", "event_id": "evt_bad"}, "invalid_value", "type"),
    (
        "missing field",
        {"type": "conversation.item.create", "event_id": "evt_bad"},
        "missing_required_parameter",
        "item",
    ),
    (
        "mistyped field",
        {"type": "conversation.item.retrieve", "item_id": 5, "event_id": "evt_bad"},
        "invalid_type",
        "item_id",
    ),
    (
        "unknown field",
        {"type": "input_audio_buffer.commit", "event_id": "evt_bad", "item_id": "item_x"},
        "unknown_parameter",
        "item_id",
    ),
    (
        "bad base64",
        {"type": "input_audio_buffer.append", "audio": "@@not base64@@", "event_id": "evt_bad"},
        "invalid_value",
        "audio",
    ),
    (
        "odd-length PCM",
        {"type": "input_audio_buffer.append", "audio": b64(b"\x01\x02\x03"), "event_id": "evt_bad"},
        "invalid_value",
        "audio",
    ),
    (
        "cancel with none running",
        {"type": "response.cancel", "event_id": "evt_bad"},
        "response_cancel_not_active",
        None,
    ),
    (
        "retrieve unknown item",
        {"type": "conversation.item.retrieve", "item_id": "item_nope", "event_id": "evt_bad"},
        "item_retrieve_invalid_item_id",
        None,
    ),
    (
        "delete unknown item",
        {"type": "conversation.item.delete", "item_id": "item_nope", "event_id": "evt_bad"},
        "item_delete_invalid_item_id",
        None,
    ),
    (
        "truncate unknown item",
        {
            "type": "conversation.item.truncate",
            "item_id": "item_nope",
            "content_index": 0,
            "audio_end_ms": 10,
            "event_id": "evt_bad",
        },
        "item_truncate_invalid_item_id",
        "item_id",
    ),
    (
        "invalid session value",
        {
            "type": "session.update",
            "event_id": "evt_bad",
            "session": {"type": "realtime", "audio": {"output": {"speed": 9}}},
        },
        "invalid_value",
        "session.audio.output.speed",
    ),
]


@pytest.mark.parametrize(("frame", "code", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_event_gets_the_right_error_and_the_session_goes_on(
    client: RawClient, frame: dict[str, Any], code: str, param: str | None
) -> None:
    await client.send(frame)
    error = await client.error()
    assert error["code"] == code, error
    assert error["param"] == param, error
    assert error["event_id"] == "evt_bad"
    assert error["message"]
    await client.text_turn()


async def test_a_bad_image_part_is_refused_and_a_good_one_then_added(client: RawClient) -> None:
    """A user image whose ``image_url`` is null (or not a base64 data URI) is refused naming the part; the
    same item with a PNG data URI is then added, and the session still answers."""
    item: dict[str, Any] = {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": None},
        ],
    }
    await client.send({"type": "conversation.item.create", "event_id": "evt_img", "item": item})
    seen = await client.until("error")
    assert [e["type"] for e in seen] == ["error"]  # nothing of the item was added
    error = seen[-1]["error"]
    assert (error["code"], error["param"], error["event_id"]) == (
        "missing_required_parameter",
        "item.content[1].image_url",
        "evt_img",
    )
    await client.send(
        {
            "type": "conversation.item.create",
            "event_id": "evt_img2",
            "item": {
                **item,
                "content": [item["content"][0], {"type": "input_image", "image_url": "http://x/y.png"}],
            },
        }
    )
    error = await client.error()
    assert (error["code"], error["param"]) == ("invalid_value", "item.content[1].image_url")
    png = "data:image/png;base64," + b64(b"\x89PNG\r\n\x1a\n")
    item["content"][1]["image_url"] = png
    await client.send({"type": "conversation.item.create", "event_id": "evt_img3", "item": item})
    done = (await client.until("conversation.item.done"))[-1]["item"]
    assert done["content"][1] == {"type": "input_image", "image_url": png}
    await client.text_turn()


async def test_malformed_json_and_binary_frames_are_answered_and_survived(client: RawClient) -> None:
    await client.send('{"type": "session.update", ')
    malformed = await client.error()
    assert malformed["type"] == "invalid_request_error" and malformed["code"] == "invalid_json"
    await client.send(b"\x00\x01binary")
    binary = await client.error()
    assert binary["code"] == "invalid_message_type" and "JSON text" in binary["message"]
    await client.text_turn()


async def test_commit_of_less_than_100_ms_is_refused(client: RawClient) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    await client.until("session.updated")
    await client.send({"type": "input_audio_buffer.append", "audio": b64(b"\x00\x10" * 1200)})  # 50 ms
    await client.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
    error = await client.error()
    assert error["code"] == "input_audio_buffer_commit_empty" and error["event_id"] == "evt_commit"
    await client.text_turn()


async def test_response_create_while_one_runs_and_truncate_past_the_end(server_events: EmittedEvents) -> None:
    async with (
        RealtimeServer(audio_pacing=1.0) as server,
        websockets.connect(
            server.ws_url + "?model=gpt-realtime", additional_headers={"Authorization": "Bearer x"}
        ) as ws,
    ):
        client = RawClient(ws)
        await client.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "a sentence to speak"}],
                },
            }
        )
        await client.send({"type": "response.create"})
        first_delta = (await client.until("response.output_audio.delta"))[-1]
        await client.send({"type": "response.create", "event_id": "evt_second"})
        busy = await client.error()
        assert busy["code"] == "conversation_already_has_active_response" and busy["event_id"] == "evt_second"
        done = (await client.until("response.done"))[-1]["response"]
        assert done["status"] == "completed"
        item_id = first_delta["item_id"]
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 600_000,
                "event_id": "evt_trunc",
            }
        )
        past = await client.error()
        assert past["event_id"] == "evt_trunc" and past["param"] == "audio_end_ms", past
        await client.text_turn()


async def test_oversized_message_closes_only_that_socket(server: RealtimeServer) -> None:
    headers = {"Authorization": "Bearer x"}
    async with websockets.connect(server.ws_url + "?model=m", additional_headers=headers) as bystander:
        other = RawClient(bystander)
        await other.until("session.created")
        async with websockets.connect(
            server.ws_url + "?model=m", additional_headers=headers, max_size=None
        ) as big:
            await big.recv()
            huge = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (20 * 1024 * 1024)})
            with pytest.raises(websockets.ConnectionClosed):
                await big.send(huge)
                async with asyncio.timeout(10):
                    while True:
                        await big.recv()
            assert big.close_code == 1009
        # The server counts it once its side of the close handshake is done.
        await eventually(lambda: server.state.counters.oversized_messages == 1)
        await other.text_turn()  # the other session never noticed


@pytest.mark.parametrize("limits", [ServerLimits(max_sessions=1), ServerLimits(max_connections=1)])
async def test_session_and_connection_limits_refuse_politely(limits: ServerLimits) -> None:
    async with RealtimeServer(limits=limits) as server:
        headers = {"Authorization": "Bearer x"}
        async with websockets.connect(server.ws_url + "?model=m", additional_headers=headers) as first:
            await first.recv()
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(server.ws_url + "?model=m", additional_headers=headers)
            assert refused.value.response.status_code == 429
            assert b"rate_limit_exceeded" in refused.value.response.body
        # Once the first session has gone, a new one is welcome again.
        await eventually(lambda: not server.state.runners)
        async with websockets.connect(server.ws_url + "?model=m", additional_headers=headers) as again:
            assert json.loads(await again.recv())["type"] == "session.created"


async def test_idle_connection_is_closed() -> None:
    async with (
        RealtimeServer(limits=ServerLimits(idle_timeout_s=0.3)) as server,
        websockets.connect(
            server.ws_url + "?model=m", additional_headers={"Authorization": "Bearer x"}
        ) as ws,
    ):
        await ws.recv()
        async with asyncio.timeout(5):
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await ws.recv()
        assert ws.close_code == 1001


async def test_unknown_items_are_answered_in_the_services_words(client: RawClient) -> None:
    # What the service answers (code, message, no param; no event_id when the client sent none).
    await client.send({"type": "conversation.item.retrieve", "item_id": "item_nope"})
    assert await client.error() == {
        "type": "invalid_request_error",
        "code": "item_retrieve_invalid_item_id",
        "message": "Error retrieving item: the item with id 'item_nope' does not exist.",
        "param": None,
        "event_id": None,
    }
    await client.send({"type": "conversation.item.delete", "item_id": "yo"})
    deleted = await client.error()
    assert deleted["code"] == "item_delete_invalid_item_id"
    assert deleted["message"] == "Error deleting item: the item with id 'yo' does not exist."
    await client.text_turn()
