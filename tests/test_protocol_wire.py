"""Wire helpers: event names, ids, items, the JSON codec."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import event_problems

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol import codec
from rtlayer.protocol.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES, ServerEventType
from rtlayer.protocol.ids import new_event_id, new_id
from rtlayer.protocol.items import audio_duration_ms, item_text, normalize_client_item
from rtlayer.server.core.client_events import check_client_event

PROTOCOL = Path(__file__).parent / "data" / "protocol"
"""The protocol notes the project was built from (vendored: event names and sample events of the service)."""


def test_event_names_are_exactly_the_protocols() -> None:
    names = json.loads((PROTOCOL / "event-types.json").read_text())
    assert set(names["client_event_types"]) == CLIENT_EVENT_TYPES
    assert set(names["server_event_types"]) == SERVER_EVENT_TYPES
    assert ServerEventType.RESPONSE_DONE == "response.done"


def test_the_services_sample_events_pass_our_checks() -> None:
    """What the service sends passes the suite's server event check; what clients send, the server's."""
    samples = json.loads((PROTOCOL / "sample-events.json").read_text())
    server_events = [event for group in samples["server"].values() for event in group]
    assert len(server_events) == 45
    for event in server_events:
        assert event["type"] in SERVER_EVENT_TYPES
        assert event_problems(event) == [], event
    for event in samples["client"]:
        check_client_event(event)  # raises RequestRefused for anything the server would refuse


def test_ids_have_the_services_shape_and_do_not_repeat() -> None:
    assert re.fullmatch(r"event_[A-Za-z0-9]{21}", new_event_id())
    assert re.fullmatch(r"item_[A-Za-z0-9]{21}", new_id("item"))
    assert len({new_id("resp") for _ in range(1000)}) == 1000
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("itme")


def test_client_items_are_completed_in_the_services_shape() -> None:
    item = normalize_client_item(
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}]}
    )
    assert (
        item["id"].startswith("item_") and item["object"] == "realtime.item" and item["status"] == "completed"
    )
    assert item["content"] == [{"type": "output_text", "text": "hi"}]  # the beta name mapped to GA
    call = normalize_client_item({"type": "function_call", "name": "f", "call_id": "call_1"})
    assert call["arguments"] == "" and item_text(call) == "f()"
    with pytest.raises(RequestRefused) as info:
        normalize_client_item({"type": "message", "role": "system", "content": [{"type": "input_audio"}]})
    assert info.value.param == "item.content[0].type"
    with pytest.raises(RequestRefused) as info:
        normalize_client_item(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": 5}]}
        )
    assert info.value.param == "item.content[0].text"


@pytest.mark.parametrize(
    ("nbytes", "codec_", "rate", "ms"),
    [
        (48000, "pcm16", 24000, 1000.0),
        (4800, "pcm16", 24000, 100.0),
        (8000, "pcmu", 8000, 1000.0),
        (160, "pcma", 8000, 20.0),
        (32000, "pcm16", 16000, 1000.0),
    ],
)
def test_audio_duration(nbytes: int, codec_: str, rate: int, ms: float) -> None:
    assert audio_duration_ms(nbytes, codec_, rate) == ms


def test_codec_round_trips_and_matches_stdlib_json() -> None:
    event = {
        "type": "response.output_audio_transcript.delta",
        "event_id": new_event_id(),
        "delta": 'héllo \u2603 "q"',
        "output_index": 0,
        "nested": {"list": [1, 2.5, None, True]},
    }
    text = codec.dumps(event)
    assert isinstance(text, str) and codec.loads(text) == event == json.loads(text)
    assert codec.loads(text.encode()) == event
    for bad in ('{"type": ', "NaN", "{'a': 1}", ""):
        with pytest.raises(ValueError):
            codec.loads(bad)


def _nest(depth: int) -> Any:
    """A value ``depth`` levels deep (objects and arrays taking turns), a scalar at the bottom."""
    value: Any = 0
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(
    "shape",
    [
        # the deep branch behind containers of scalars (which loads proves shallow by a look)
        lambda deep: {"event": "media", "media": {"payload": "AA=="}, "tags": [1, 2], "deep": deep},
        # behind a container too big to look at
        lambda deep: {"big": list(range(20)), "deep": deep},
        # inside a small container, one level down
        lambda deep: {"media": {"a": 1, "deep": deep}},
        lambda deep: [{"a": 1}, deep],
    ],
)
def test_codec_loads_refuses_past_max_depth_wherever_the_deep_branch_is(shape: Any) -> None:
    fits = shape(_nest(codec.MAX_DEPTH - 3))
    assert codec.loads(codec.dumps(fits)) == fits
    with pytest.raises(codec.TooDeep):
        codec.loads(codec.dumps(shape(_nest(codec.MAX_DEPTH))))


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e309"])
def test_codec_loads_refuses_numbers_past_a_double_on_both_parsers(number: str) -> None:
    """orjson refuses them; the stdlib parser (a long text that could open many containers) would make an
    infinity, which int() turns into an OverflowError nobody expects."""
    short = f'{{"audio_end_ms": {number}}}'
    pad = ",".join(["[]"] * 3500)
    long = f'{{"audio_end_ms": {number}, "pad": [{pad}]}}'
    assert len(long) > codec.ORJSON_SAFE_CHARS and long.count("[") > codec.ORJSON_SAFE_OPENS
    for text in (short, long):
        with pytest.raises(ValueError):
            codec.loads(text)
        with pytest.raises(ValueError):
            codec.loads_without_depth_check(text)
