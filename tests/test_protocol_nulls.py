"""Optional fields sent as JSON null mean "not given", on every client event, as ``openai.types.realtime``
declares them (``Optional[...] = None``) and as the hosted service reads them: other SDKs serialise unset
fields so. Each optional field of each client event model, at every level the models describe, is sent
as null and must give the same result as leaving it out; only where null is a value (turning turn
detection off, for example) may the results differ, and those are listed.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import pytest
from helpers import Driver
from openai.types.realtime import (
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    OutputAudioBufferClearEvent,
    RealtimeClientEvent,
    RealtimeConversationItemUserMessage,
    RealtimeResponseCreateParams,
    RealtimeSessionCreateRequest,
    ResponseCancelEvent,
    ResponseCreateEvent,
    SessionUpdateEvent,
)
from pydantic import BaseModel

# One valid event of each client type, with the nested objects the null variants go into.
EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    SessionUpdateEvent: {
        "type": "session.update",
        "session": {"type": "realtime", "instructions": "Be brief."},
    },
    InputAudioBufferAppendEvent: {"type": "input_audio_buffer.append", "audio": "AAAA"},
    InputAudioBufferCommitEvent: {"type": "input_audio_buffer.commit"},
    InputAudioBufferClearEvent: {"type": "input_audio_buffer.clear"},
    OutputAudioBufferClearEvent: {"type": "output_audio_buffer.clear"},
    ConversationItemCreateEvent: {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    },
    ConversationItemRetrieveEvent: {"type": "conversation.item.retrieve", "item_id": "item_x"},
    ConversationItemDeleteEvent: {"type": "conversation.item.delete", "item_id": "item_x"},
    ConversationItemTruncateEvent: {
        "type": "conversation.item.truncate",
        "item_id": "item_x",
        "content_index": 0,
        "audio_end_ms": 0,
    },
    ResponseCreateEvent: {"type": "response.create", "response": {"instructions": "Say hi."}},
    ResponseCancelEvent: {"type": "response.cancel"},
}
# Fields whose type is a union of models: the member the example uses.
MEMBERS: dict[tuple[str, ...], type[BaseModel]] = {
    ("item",): RealtimeConversationItemUserMessage,
    ("session",): RealtimeSessionCreateRequest,
    ("response",): RealtimeResponseCreateParams,
}
# Where null is a value, not "not given" (the service's meaning too): off or none.
NULL_IS_A_VALUE = {
    ("session", "tracing"),
    ("session", "prompt"),
    ("session", "include"),
    ("session", "reasoning"),
    ("session", "audio", "input", "turn_detection"),
    ("session", "audio", "input", "transcription"),
    ("session", "audio", "input", "noise_reduction"),
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (through Optional, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def optional_paths(
    model: type[BaseModel], prefix: tuple[str, ...] = (), depth: int = 4
) -> list[tuple[str, ...]]:
    """Every field of ``model`` (and of the single models below it) that is optional with a None default."""
    paths = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        if not field.is_required() and field.default is None:
            paths.append(path)
        nested = [MEMBERS[path]] if path in MEMBERS else _models_in(field.annotation)
        if len(nested) == 1 and depth > 1:
            paths += optional_paths(nested[0], path, depth - 1)
    return paths


def _with(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(event)
    node = out
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    if value is _ABSENT:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


_ABSENT = object()


async def outcome(event: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the server does with ``event`` in a text session: event types, errors, the session it reports."""
    driver = Driver(config={"output_modalities": ["text"]})
    driver.drain()  # session.created
    events = driver.send(event) + await driver.run()
    seen: list[tuple[str, Any]] = []
    for e in events:
        if e["type"] == "error":
            seen.append(("error", (e["error"]["code"], e["error"].get("param"))))
        elif e["type"] == "session.updated":
            session = dict(e["session"])
            session.pop("id", None)
            seen.append((e["type"], session))
        elif e["type"] == "response.done":
            seen.append((e["type"], e["response"]["status"]))
        else:
            seen.append((e["type"], None))
    return seen


CASES = [
    (model.__name__, path)
    for model in EXAMPLES
    for path in optional_paths(model)
    if path not in NULL_IS_A_VALUE
]


def test_the_examples_cover_every_client_event_type() -> None:
    members = _models_in(RealtimeClientEvent)
    assert set(members) == set(EXAMPLES), set(members) ^ set(EXAMPLES)
    assert len(CASES) > 50  # the nested fields are walked too


@pytest.mark.parametrize(("event_model", "path"), CASES, ids=[".".join(p) for _, p in CASES])
async def test_an_optional_field_sent_as_null_is_a_field_not_given(
    event_model: str, path: tuple[str, ...]
) -> None:
    example = next(e for m, e in EXAMPLES.items() if m.__name__ == event_model)
    assert await outcome(_with(example, path, None)) == await outcome(_with(example, path, _ABSENT))


@pytest.mark.parametrize("path", sorted(NULL_IS_A_VALUE), ids=".".join)
async def test_where_null_is_a_value_it_is_accepted(path: tuple[str, ...]) -> None:
    seen = await outcome(_with(EXAMPLES[SessionUpdateEvent], path, None))
    assert [kind for kind, _ in seen] == ["session.updated"], seen
