"""Bad input to the ServerSession: each case answered by one ``error`` (code, param, the client's event_id),
after which the session carries on and a normal turn still works."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest
from helpers import Driver, of_type, silence, wav


def error_of(d: Driver, event: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(event, str):
        d.session.receive_text(event, d.now)
        events = d.drain()
    else:
        events = d.send(event)
    assert [e["type"] for e in events] == ["error"], events
    err: dict[str, Any] = events[0]["error"]
    assert err["type"] == "invalid_request_error"
    return err


async def assert_still_answers(d: Driver) -> None:
    d.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "still here"}],
            },
        }
    )
    d.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    events = await d.run()
    assert of_type(events, "response.done")[0]["response"]["status"] == "completed"


@pytest.fixture
def d() -> Driver:
    driver = Driver(config={"audio": {"input": {"turn_detection": None}}})
    driver.drain()
    return driver


BAD_EVENTS = [
    # (client event, code, param)
    ('{"type": "response.create"', "invalid_json", None),
    ("[1, 2]", "invalid_json", None),
    ({"event_id": "e1", "type": "response.explode"}, "invalid_value", "type"),
    ({"event_id": "e1"}, "missing_required_parameter", "type"),
    ({"event_id": "e1", "type": 5}, "invalid_type", "type"),
    ({"event_id": "e1", "type": "input_audio_buffer.append"}, "missing_required_parameter", "audio"),
    ({"event_id": "e1", "type": "input_audio_buffer.append", "audio": 12}, "invalid_type", "audio"),
    (
        {"event_id": "e1", "type": "input_audio_buffer.append", "audio": "not base64!"},
        "invalid_value",
        "audio",
    ),
    (
        {"event_id": "e1", "type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()},
        "invalid_value",
        "audio",
    ),  # odd-length PCM16
    # The append fast path takes only exactly {type, audio, event_id}: anything else still gets checked.
    (
        {"event_id": "e1", "type": "input_audio_buffer.append", "audio": "AAAA", "extra": 1},
        "unknown_parameter",
        "extra",
    ),
    ({"event_id": "e1", "type": "input_audio_buffer.append", "audio": "\u00c0AAA"}, "invalid_value", "audio"),
    (
        {"event_id": "e1", "type": "input_audio_buffer.append", "audio": None},
        "missing_required_parameter",
        "audio",
    ),
    (
        {
            "event_id": "e1",
            "type": "conversation.item.truncate",
            "item_id": "item_x",
            "content_index": 0,
            "audio_end_ms": "10",
        },
        "invalid_type",
        "audio_end_ms",
    ),
    (
        {
            "event_id": "e1",
            "type": "conversation.item.truncate",
            "item_id": "item_x",
            "content_index": 0,
            "audio_end_ms": 10,
        },
        "item_truncate_invalid_item_id",
        "item_id",
    ),
    (
        {"event_id": "e1", "type": "conversation.item.delete", "item_id": "item_nope"},
        "item_delete_invalid_item_id",
        None,
    ),
    (
        {"event_id": "e1", "type": "conversation.item.retrieve", "item_id": "item_nope"},
        "item_retrieve_invalid_item_id",
        None,
    ),
    ({"event_id": "e1", "type": "conversation.item.create"}, "missing_required_parameter", "item"),
    (
        {
            "event_id": "e1",
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "robot", "content": []},
        },
        "invalid_value",
        "item.role",
    ),
    (
        {
            "event_id": "e1",
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "output": "x"},
        },
        "missing_required_parameter",
        "item.call_id",
    ),
    (
        {"event_id": "e1", "type": "session.update", "session": {"type": "realtime", "bogus": 1}},
        "unknown_parameter",
        "session.bogus",
    ),
    (
        {"event_id": "e1", "type": "session.update", "session": {"type": "realtime", "tools": "all"}},
        "invalid_type",
        "session.tools",
    ),
    (
        {
            "event_id": "e1",
            "type": "conversation.item.create",
            "previous_item_id": "item_nope",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        },
        "invalid_value",
        "previous_item_id",
    ),
    ({"event_id": "e1", "type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty", None),
    ({"event_id": "e1", "type": "response.cancel"}, "response_cancel_not_active", None),
    (
        {"event_id": "e1", "type": "session.update", "session": {"audio": {"output": {"speed": 3}}}},
        "invalid_value",
        "session.audio.output.speed",
    ),
    (
        {"event_id": "e1", "type": "session.update", "session": {"audio": {"output": {"voice": "robot"}}}},
        "invalid_value",
        "session.audio.output.voice",
    ),
    (
        {"event_id": "e1", "type": "session.update", "session": {"output_modalities": ["video"]}},
        "invalid_value",
        "session.output_modalities",
    ),
    (
        {
            "event_id": "e1",
            "type": "session.update",
            "session": {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
        },
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        {
            "event_id": "e1",
            "type": "session.update",
            "session": {"audio": {"input": {"format": {"type": "audio/opus"}}}},
        },
        "invalid_value",
        "session.audio.input.format.type",
    ),
    (
        {"event_id": "e1", "type": "session.update", "session": {"max_output_tokens": 0}},
        "invalid_value",
        "session.max_output_tokens",
    ),
    ({"event_id": "e1", "type": "session.update", "session": "audio"}, "invalid_type", "session"),
    (
        {"event_id": "e1", "type": "response.create", "response": {"output_modalities": ["text", "video"]}},
        "invalid_value",
        "response.output_modalities",
    ),
    (
        {"event_id": "e1", "type": "response.create", "response": {"conversation": "elsewhere"}},
        "invalid_value",
        "response.conversation",
    ),
    (
        {"event_id": "e1", "type": "response.create", "response": {"metadata": {"k": 1}}},
        "invalid_value",
        "response.metadata",
    ),
    (
        {"event_id": "e1", "type": "output_audio_buffer.clear"},
        "invalid_value",
        "type",
    ),  # WebSocket: client owns playback
]


PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


def create(role: str, *content: Any) -> dict[str, Any]:
    """``conversation.item.create`` of a message with these content parts, as a client would send it."""
    return {
        "event_id": "evt_item",
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": list(content)},
    }


BAD_CONTENT = [
    # (client event, code, param): content parts the service refuses, each naming the part at fault
    (
        create("user", {"type": "input_image", "image_url": None}),
        "missing_required_parameter",
        "item.content[0].image_url",
    ),
    (create("user", {"type": "input_image"}), "missing_required_parameter", "item.content[0].image_url"),
    (create("user", {"type": "input_image", "image_url": 7}), "invalid_type", "item.content[0].image_url"),
    (
        create("user", {"type": "input_image", "image_url": "https://example.com/cat.png"}),
        "invalid_value",
        "item.content[0].image_url",
    ),
    (
        create("user", {"type": "input_image", "image_url": "data:text/plain;base64,aGk="}),
        "invalid_value",
        "item.content[0].image_url",
    ),
    (
        create("user", {"type": "input_image", "image_url": "data:image/png;base64,not base64!"}),
        "invalid_value",
        "item.content[0].image_url",
    ),
    (
        create("user", {"type": "input_image", "image_url": "data:image/png;base64,"}),
        "invalid_value",
        "item.content[0].image_url",
    ),
    (
        create("user", {"type": "input_image", "image_url": PNG, "detail": "ultra"}),
        "invalid_value",
        "item.content[0].detail",
    ),
    (
        create("user", {"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": None}),
        "missing_required_parameter",
        "item.content[1].image_url",
    ),
    (
        create("user", {"type": "input_text", "text": None}),
        "missing_required_parameter",
        "item.content[0].text",
    ),
    (create("user", {"type": "input_text", "text": ["a"]}), "invalid_type", "item.content[0].text"),
    (create("user", {"text": "no type"}), "missing_required_parameter", "item.content[0].type"),
    (create("user", "just a string"), "invalid_type", "item.content[0]"),
    (create("user", {"type": "output_text", "text": "x"}), "invalid_value", "item.content[0].type"),
    (
        create("user", {"type": "input_audio", "audio": "not base64!"}),
        "invalid_value",
        "item.content[0].audio",
    ),
    (create("user", {"type": "input_audio", "audio": 5}), "invalid_type", "item.content[0].audio"),
    (create("user", {"type": "input_audio", "transcript": 5}), "invalid_type", "item.content[0].transcript"),
    (create("assistant", {"type": "input_text", "text": "x"}), "invalid_value", "item.content[0].type"),
    (create("assistant", {"type": "output_text"}), "missing_required_parameter", "item.content[0].text"),
    (
        create("assistant", {"type": "output_audio", "transcript": False}),
        "invalid_type",
        "item.content[0].transcript",
    ),
    (create("system", {"type": "input_image", "image_url": PNG}), "invalid_value", "item.content[0].type"),
    (create("system", {"type": "input_text", "text": 1}), "invalid_type", "item.content[0].text"),
    (
        {
            "event_id": "evt_item",
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user"},
        },
        "missing_required_parameter",
        "item.content",
    ),
    (
        {
            "event_id": "evt_item",
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": "hi"},
        },
        "invalid_type",
        "item.content",
    ),
]


@pytest.mark.parametrize(("event", "code", "param"), BAD_CONTENT, ids=[p for _, _, p in BAD_CONTENT])
async def test_bad_content_part_gets_one_error_and_the_session_goes_on(
    d: Driver, event: dict[str, Any], code: str, param: str
) -> None:
    err = error_of(d, event)
    assert (err["code"], err["param"], err["event_id"]) == (code, param, "evt_item")
    assert param in err["message"] or err["message"].startswith("Invalid value")
    assert len(d.session.conversation) == 0  # nothing of a refused item is kept
    await assert_still_answers(d)


GOOD_CONTENT = [
    create(
        "user",
        {"type": "input_text", "text": "hi"},
        {"type": "input_image", "image_url": PNG, "detail": "low"},
    ),
    create("user", {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4AAQ"}),
    create(
        "user", {"type": "input_audio", "audio": base64.b64encode(silence(20)).decode(), "transcript": "hm"}
    ),
    create("assistant", {"type": "output_text", "text": "hello"}),
    create("assistant", {"type": "output_audio", "transcript": "hello"}),
    create("system", {"type": "input_text", "text": "be brief"}),
]


@pytest.mark.parametrize(
    "event", GOOD_CONTENT, ids=lambda e: e["item"]["role"] + ":" + e["item"]["content"][-1]["type"]
)
async def test_well_formed_content_parts_are_added(d: Driver, event: dict[str, Any]) -> None:
    added, done = d.send(event)
    assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
    kinds = [part["type"] for part in done["item"]["content"]]
    assert kinds == [part["type"] for part in event["item"]["content"]]
    assert "audio" not in done["item"]["content"][0]  # input audio is kept aside, never echoed


@pytest.mark.parametrize(("event", "code", "param"), BAD_EVENTS, ids=[f"{c}:{p}" for _, c, p in BAD_EVENTS])
async def test_bad_event_gets_one_error_and_the_session_goes_on(
    d: Driver, event: Any, code: str, param: str | None
) -> None:
    err = error_of(d, event)
    assert (err["code"], err["param"]) == (code, param)
    assert err["event_id"] == (event.get("event_id") if isinstance(event, dict) else None)
    assert err["message"]
    await assert_still_answers(d)


def test_append_with_null_event_id_or_no_event_id_is_taken(d: Driver) -> None:
    """A null ``event_id`` is no ``event_id`` (stripped as any null is): the audio goes in, no error."""
    pcm = silence(20)
    for extra in ({"event_id": None}, {}, {"event_id": "e2"}):
        assert (
            d.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode(), **extra})
            == []
        )
    assert d.session.input_buffer_ms == pytest.approx(60.0)


async def test_response_create_while_one_is_active(d: Driver) -> None:
    d.send({"type": "response.create"})
    err = error_of(d, {"type": "response.create", "event_id": "second"})
    assert err["code"] == "conversation_already_has_active_response" and err["event_id"] == "second"
    # An out-of-band response may run beside it.
    assert (
        d.send({"type": "response.create", "response": {"conversation": "none"}})[0]["type"]
        == "response.created"
    )


async def test_commit_below_100_ms_reports_what_the_buffer_has(d: Driver) -> None:
    d.append(silence(60))
    err = error_of(d, {"type": "input_audio_buffer.commit"})
    assert err["code"] == "input_audio_buffer_commit_empty" and "60.00ms" in err["message"]
    d.append(silence(60))
    assert d.send({"type": "input_audio_buffer.commit"})[0]["type"] == "input_audio_buffer.committed"


async def test_truncate_is_checked_against_the_real_audio_length(d: Driver) -> None:
    d.append(wav("joke_24k"))
    d.send({"type": "input_audio_buffer.commit"})
    user_item = d.seen[-1]["item"]["id"]
    d.send({"type": "response.create"})
    answer = await d.run()
    item_id = of_type(answer, "response.output_item.done")[0]["item"]["id"]
    length_ms = len(wav("joke_24k")) / 48  # the echo is as long as the turn: 1122.5 ms
    err = error_of(
        d,
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 1124},
    )
    assert (err["code"], err["param"]) == ("invalid_value", "audio_end_ms")
    err = error_of(
        d,
        {"type": "conversation.item.truncate", "item_id": user_item, "content_index": 0, "audio_end_ms": 10},
    )
    assert err["code"] == "item_truncate_invalid_item_id"  # a user item has no assistant audio
    err = error_of(
        d, {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 1, "audio_end_ms": 10}
    )
    assert (err["code"], err["param"]) == ("invalid_value", "content_index")
    # 1123 ms is the audio's length rounded up to a whole ms: accepted.
    (ok,) = d.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": math.ceil(length_ms),
        }
    )
    assert ok == {**ok, "type": "conversation.item.truncated", "item_id": item_id, "audio_end_ms": 1123}
    (ok,) = d.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 500}
    )
    assert ok["audio_end_ms"] == 500
    # Truncation shortens the audio: the item now holds 500 ms, so 501 is past its end.
    err = error_of(
        d, {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 501}
    )
    assert err["param"] == "audio_end_ms"


async def test_voice_cannot_change_after_audio_output() -> None:
    d = Driver()
    d.drain()
    assert (
        d.send({"type": "session.update", "session": {"audio": {"output": {"voice": "cedar"}}}})[0]["type"]
        == "session.updated"
    )
    d.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        }
    )
    d.send({"type": "response.create"})
    await d.run()
    err = error_of(
        d, {"type": "session.update", "event_id": "v", "session": {"audio": {"output": {"voice": "ash"}}}}
    )
    assert (err["code"], err["param"], err["event_id"]) == (
        "invalid_value",
        "session.audio.output.voice",
        "v",
    )
    # Other fields still update, and re-sending the same voice is fine.
    updated = d.send(
        {
            "type": "session.update",
            "session": {"instructions": "Be brief.", "audio": {"output": {"voice": "cedar"}}},
        }
    )
    assert updated[0]["session"]["instructions"] == "Be brief."


async def test_errors_leave_the_session_open_for_a_whole_sequence(d: Driver) -> None:
    for event, _, _ in BAD_EVENTS:
        if isinstance(event, str):
            d.session.receive_text(event, d.now)
        else:
            d.session.receive_event(event, d.now)
    assert [e["type"] for e in d.drain()] == ["error"] * len(BAD_EVENTS)
    assert not d.session.closed
    await assert_still_answers(d)
