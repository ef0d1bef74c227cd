"""Fuzz the wire codec and the server's handling of client events: the mutation targets of
``protocol_targets.py`` in the shared runner (each in a child process; ``RTLAYER_FUZZ_LONG=1`` for the
night mode), and structured random events in-process with hypothesis.

Two properties, each over mutated frames and over structured random events:

- ``codec.loads`` raises only ``ValueError`` (bad JSON, or ``TooDeep``), and whatever it accepts
  ``codec.dumps`` can send back, unchanged: a value that parses but cannot be serialised once made every
  later event of its session fail.
- ``ServerSession.receive_text`` never raises, whatever the frame: a bad one is answered with an ``error``
  event, and every event the session emits serialises.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fuzz_runner import LONG, check_target, load_targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtlayer.protocol import codec
from rtlayer.protocol.events import CLIENT_EVENT_TYPES
from rtlayer.server.core.session import ServerSession

PROTOCOL = sorted(name for name in load_targets() if name.startswith("protocol."))


def test_the_codec_and_the_client_event_handling_have_targets() -> None:
    assert PROTOCOL == ["protocol.client_events", "protocol.codec"]


@pytest.mark.parametrize("name", PROTOCOL)
@pytest.mark.timeout(None if LONG else 60)
def test_protocol_target_finds_nothing(name: str) -> None:
    check_target(name)


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
_FIELDS = [
    "session",
    "item",
    "response",
    "audio",
    "item_id",
    "previous_item_id",
    "content_index",
    "audio_end_ms",
    "response_id",
    "event_id",
]


@settings(
    max_examples=5_000 if LONG else 100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    st.sampled_from([*sorted(CLIENT_EVENT_TYPES), "", "nope"]),
    st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), _JSON, max_size=5),
)
def test_any_structured_event_is_answered_never_raised(kind: str, fields: dict[str, Any]) -> None:
    session = ServerSession(now=time.time())
    session.events_to_send()
    session.receive_event({"type": kind, **fields}, time.time())
    for event in session.events_to_send():
        codec.dumps(event)  # every answer (an error naming the field, or the event's effect) can be sent


@settings(max_examples=2_000 if LONG else 50, derandomize=True, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["[", '{"a":']))
def test_any_depth_is_refused_or_round_trips(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + ("1" if opener != "[" else "") + closer * depth
    try:
        value = codec.loads(text)
    except codec.TooDeep:
        assert depth > codec.MAX_DEPTH
        return
    assert depth <= codec.MAX_DEPTH
    assert codec.loads(codec.dumps(value)) == value
