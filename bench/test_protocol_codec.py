"""rtlayer.protocol.codec against stdlib json, on the events a server sends and receives most.

Run: ``pytest bench/test_protocol_codec.py --benchmark-only -q``. Each benchmark times rtlayer's codec; the
stdlib json anchor is timed in the same run (best of 5 with ``timeit``) and the speedup is recorded as
``extra_info["speedup_vs_json"]`` and printed. Correctness (same JSON value both ways) is asserted; timings never are.
"""

from __future__ import annotations

import base64
import json
import os
import timeit
from collections.abc import Callable
from typing import Any

import pytest

from rtlayer.protocol import codec
from rtlayer.protocol.ids import new_event_id
from rtlayer.protocol.session_config import default_session

_AUDIO_20MS = base64.b64encode(os.urandom(960)).decode()  # 20 ms of PCM16 24 kHz

EVENTS: dict[str, dict[str, Any]] = {
    "audio_delta_20ms": {
        "type": "response.output_audio.delta",
        "event_id": new_event_id(),
        "response_id": "resp_x",
        "item_id": "item_x",
        "output_index": 0,
        "content_index": 0,
        "delta": _AUDIO_20MS,
    },
    "append_20ms": {"type": "input_audio_buffer.append", "event_id": "evt_1", "audio": _AUDIO_20MS},
    "transcript_delta": {
        "type": "response.output_audio_transcript.delta",
        "event_id": new_event_id(),
        "response_id": "resp_x",
        "item_id": "item_x",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hello, wörld",
    },
    "session_updated": {"type": "session.updated", "event_id": new_event_id(), "session": default_session()},
}

_stdlib_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _speedup(ours: Callable[[], object], anchor: Callable[[], object]) -> float:
    def best(fn: Callable[[], object]) -> float:
        n = 2000
        return min(timeit.repeat(fn, number=n, repeat=5)) / n

    return best(anchor) / best(ours)


@pytest.mark.parametrize("name", list(EVENTS))
def test_dumps(benchmark: Any, name: str) -> None:
    event = EVENTS[name]
    assert json.loads(codec.dumps(event)) == event
    benchmark.extra_info["backend"] = codec.BACKEND
    benchmark.extra_info["speedup_vs_json"] = ratio = _speedup(
        lambda: codec.dumps(event), lambda: _stdlib_dumps(event)
    )
    print(f"\ndumps {name}: {codec.BACKEND} is {ratio:.1f}x stdlib json")
    benchmark(codec.dumps, event)


@pytest.mark.parametrize("name", list(EVENTS))
def test_loads(benchmark: Any, name: str) -> None:
    text = _stdlib_dumps(EVENTS[name])
    assert codec.loads(text) == json.loads(text)
    benchmark.extra_info["backend"] = codec.BACKEND
    benchmark.extra_info["speedup_vs_json"] = ratio = _speedup(
        lambda: codec.loads(text), lambda: json.loads(text)
    )
    print(f"\nloads {name}: {codec.BACKEND} is {ratio:.1f}x stdlib json")
    benchmark(codec.loads, text)
