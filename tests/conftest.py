"""Shared fixtures: a running embedded server, the check of every event it emits, and test audio.

- ``server``: a ``RealtimeServer`` on 127.0.0.1 and a free port (echo responder, 4x real-time audio
  pacing); ``server.url`` (``http://127.0.0.1:PORT``) and ``server.ws_url``.
- ``server_events`` (autouse): every server event that any ``RealtimeServer`` of this process emits
  during a test is collected and, at teardown, validated against
  ``openai.types.realtime.RealtimeServerEvent`` (the union the official clients parse with). A test
  that made a server emit an invalid event fails, whoever wrote it.
- ``load_wav(name)`` / ``stream_pcm(send, pcm, ...)``: ``tests/data/*.wav`` as PCM16 bytes, and a
  paced chunked sender (the clients' append loop).
"""

from __future__ import annotations

import asyncio
import base64
import re
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter, ValidationError

from rtlayer.server.state import ServerState

if TYPE_CHECKING:
    from rtlayer.server.realtime_server import RealtimeServer

DATA = Path(__file__).parent / "data"

_SERVER_EVENT = TypeAdapter(RealtimeServerEvent)


def _models_by_type() -> dict[str, TypeAdapter[Any]]:
    """Each member of the ``RealtimeServerEvent`` union by its ``type`` literal, for precise messages."""
    union = get_args(RealtimeServerEvent)[0]
    by_type: dict[str, TypeAdapter[Any]] = {}
    for model in get_args(union):
        for literal in get_args(model.model_fields["type"].annotation):
            by_type[literal] = TypeAdapter(model)
    return by_type


_BY_TYPE = _models_by_type()
# Fields the service really sends that the openai models do not declare.
_SERVICE_EXTRAS = {
    ("session.created", ".session"): {"object", "id", "expires_at"},
    ("session.updated", ".session"): {"object", "id", "expires_at"},
}


def _extra_fields(model: object, path: str = "") -> Iterator[tuple[str, set[str]]]:
    """``(path, names)`` for every nested model holding fields its class does not declare."""
    if isinstance(model, BaseModel):
        if model.model_extra:
            yield path, set(model.model_extra)
        for name in type(model).model_fields:
            yield from _extra_fields(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, value in enumerate(model):
            yield from _extra_fields(value, f"{path}[{i}]")


_EVENT_ID = re.compile(r"event_[A-Za-z0-9]{21}")


# -- audio helpers ----------------------------------------------------------------------------------


def load_wav(name: str) -> tuple[bytes, int]:
    """``tests/data/NAME`` (``.wav`` optional) as (PCM16 mono little-endian bytes, sample rate)."""
    path = DATA / (name if name.endswith(".wav") else name + ".wav")
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1, f"{path.name}: expected PCM16 mono"
        return wav.readframes(wav.getnframes()), wav.getframerate()


def chunks(pcm: bytes, rate: int = 24000, chunk_ms: int = 20) -> Iterator[bytes]:
    """``pcm`` cut in ``chunk_ms`` pieces (the last one may be shorter)."""
    size = rate * 2 * chunk_ms // 1000
    for offset in range(0, len(pcm), size):
        yield pcm[offset : offset + size]


async def stream_pcm(
    send: Callable[[bytes], Awaitable[Any]],
    pcm: bytes,
    *,
    rate: int = 24000,
    chunk_ms: int = 20,
    speed: float = 1.0,
) -> int:
    """Send ``pcm`` through ``send`` in ``chunk_ms`` chunks at ``speed`` x real time (0: no pacing).

    Returns the number of chunks sent. VAD works on audio time, so tests may stream faster than
    real time and still see the same turn boundaries.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent_s = 0.0
    count = 0
    for chunk in chunks(pcm, rate, chunk_ms):
        await send(chunk)
        count += 1
        sent_s += len(chunk) / (2 * rate)
        if speed > 0:
            delay = start + sent_s / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
    return count


async def eventually(predicate: Callable[[], object], *, within: float = 5.0, step: float = 0.01) -> None:
    """Wait until ``predicate()`` is true, polling every ``step`` s; fail after ``within`` seconds."""
    for _ in range(max(1, int(within / step))):
        if predicate():
            return
        await asyncio.sleep(step)
    assert predicate(), f"still false after {within} s"


def append_event(pcm: bytes) -> dict[str, Any]:
    """An ``input_audio_buffer.append`` client event carrying ``pcm``."""
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


def silence(ms: int, rate: int = 24000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


# -- server event validation ------------------------------------------------------------------------


@dataclass
class EmittedEvents:
    """What the servers emitted during one test: ``(session_id, event)`` in order."""

    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, session_id: str, event: dict[str, Any]) -> None:
        self.items.append((session_id, event))

    def types(self, session_id: str | None = None) -> list[str]:
        return [e["type"] for s, e in self.items if session_id is None or s == session_id]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for _, e in self.items if e["type"] == event_type]

    def invalid(self) -> list[str]:
        """One line per event that ``RealtimeServerEvent`` refuses."""
        problems = []
        for session_id, event in self.items:
            # The union accepts an event iff the member named by its "type" does; validating against
            # that member gives the error that matters instead of one per member of the union.
            adapter = (
                _BY_TYPE.get(event.get("type"), _SERVER_EVENT) if isinstance(event, dict) else _SERVER_EVENT
            )
            try:
                model = adapter.validate_python(event)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                problems.append(
                    f"{session_id} {event.get('type')!r}: {where}: {first['msg']} ({exc.error_count()} errors)"
                )
                continue
            # The models accept unknown fields; the service sends none beyond these (sample-events.json).
            for where, names in _extra_fields(model):
                if names - _SERVICE_EXTRAS.get((event["type"], where), set()):
                    problems.append(
                        f"{session_id} {event['type']!r}: fields no model has at {where or '.'}: {names}"
                    )
            # The models take any string as an id; the service's are "event_" + 21 base62 characters.
            event_id = event.get("event_id")
            if event.get("type") != "input_audio_buffer.dtmf_event_received" and not (
                isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id)
            ):
                problems.append(
                    f"{session_id} {event.get('type')!r}: event_id {event_id!r} is not event_ + 21 base62"
                )
        return problems


@pytest.fixture(autouse=True)
def server_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmittedEvents]:
    """Collects every server event emitted in this test and fails it if any is invalid.

    Every ``ServerState`` built during the test (by a ``RealtimeServer``, a transport's implicit
    server, the CLI in-process) gets ``collected`` through its public ``add_event_observer``; the
    product keeps no process-wide hook for the test suite.
    """
    collected = EmittedEvents()
    build = ServerState.__init__

    def observed(self: ServerState, *args: Any, **kwargs: Any) -> None:
        build(self, *args, **kwargs)
        self.add_event_observer(collected)

    monkeypatch.setattr(ServerState, "__init__", observed)
    yield collected
    problems = collected.invalid()
    if problems:
        shown = "\n  ".join(problems[:20])
        pytest.fail(
            f"{len(problems)} server event(s) fail RealtimeServerEvent validation:\n  {shown}", pytrace=False
        )


# -- the server -------------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[RealtimeServer]:
    """A running embedded server on 127.0.0.1 (echo responder, any key accepted)."""
    from rtlayer.server.realtime_server import RealtimeServer

    async with RealtimeServer() as running:
        yield running


@pytest.fixture(name="load_wav")
def load_wav_fixture() -> Callable[[str], tuple[bytes, int]]:
    return load_wav


@pytest.fixture(name="stream_pcm")
def stream_pcm_fixture() -> Callable[..., Awaitable[int]]:
    return stream_pcm
