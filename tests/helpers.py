"""What the tests share: test audio, the check of server events, a recorder of transport events, a driver
of a sans-I/O ``ServerSession``, and polling with a deadline.

- audio: ``load_wav`` / ``wav`` (``tests/data/*.wav``), ``silence``, ``tone``, ``chunks``, ``stream_pcm``
  (the clients' paced append loop), ``append_event``;
- server events: ``event_problems`` says what is wrong with one event against
  ``openai.types.realtime.RealtimeServerEvent`` (the union the official clients parse with), the fields
  the service sends and its ``event_...`` ids; ``EmittedEvents`` collects a test's events (conftest's
  autouse fixture checks them all); ``Driver.drain`` checks the events of a session driven by hand;
- transports: ``Recorder`` keeps what a transport emitted, by name, and waits for what is to come;
- sessions: ``Driver`` runs a ``ServerSession`` and its responder inline with a fake clock;
- WebRTC: ``ToneResponder`` (a known answer) and ``open_peer_connections`` (a leak check).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import math
import re
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np
from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter, ValidationError

from rtlayer.audio import AudioFormat
from rtlayer.server.core.session import ServerSession
from rtlayer.server.responders import (
    AudioPart,
    EchoResponder,
    Responder,
    ResponsePart,
    ResponseRequest,
    TextPart,
)
from rtlayer.transport import EventEmitter

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

DATA = Path(__file__).parent / "data"

# -- audio ------------------------------------------------------------------------------------------


def load_wav(name: str) -> tuple[bytes, int]:
    """``tests/data/NAME`` (``.wav`` optional) as (PCM16 mono little-endian bytes, sample rate)."""
    path = DATA / (name if name.endswith(".wav") else name + ".wav")
    with wave.open(str(path), "rb") as f:
        assert f.getsampwidth() == 2 and f.getnchannels() == 1, f"{path.name}: expected PCM16 mono"
        return f.readframes(f.getnframes()), f.getframerate()


def wav(name: str) -> bytes:
    """``tests/data/NAME.wav``, which must be PCM16 24 kHz mono (the sessions' default format)."""
    pcm, rate = load_wav(name)
    assert rate == 24000, f"{name}: {rate} Hz, expected 24000"
    return pcm


def silence(ms: int, fmt: AudioFormat | None = None) -> bytes:
    """``ms`` of digital silence in ``fmt`` (default PCM16 24 kHz): zeros, or the G.711 codes of zero."""
    fmt = fmt or AudioFormat()
    fill = b"\xff" if fmt.codec == "pcmu" else b"\xd5" if fmt.codec == "pcma" else b"\x00"
    return fill * fmt.bytes_for_ms(ms)


def tone(ms: float, *, rate: int = 24000, freq: float = 440.0, amplitude: float = 0.3) -> bytes:
    """A sine as PCM16 mono, ``amplitude`` of full scale (numpy: test data, not library code)."""
    n = np.arange(int(rate * ms / 1000))
    return np.round(32767 * amplitude * np.sin(2 * math.pi * freq * n / rate)).astype("<i2").tobytes()


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


def append_event(pcm: bytes) -> dict[str, Any]:
    """An ``input_audio_buffer.append`` client event carrying ``pcm``."""
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


async def eventually(predicate: Callable[[], object], *, within: float = 5.0, step: float = 0.01) -> None:
    """Wait until ``predicate()`` is true, polling every ``step`` s; fail after ``within`` seconds."""
    for _ in range(max(1, int(within / step))):
        if predicate():
            return
        await asyncio.sleep(step)
    assert predicate(), f"still false after {within} s"


# -- server events ----------------------------------------------------------------------------------

_SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)


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
_EVENT_ID = re.compile(r"event_[A-Za-z0-9]{21}")


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


def event_problems(event: Any) -> list[str]:
    """What is wrong with one server event (nothing: ``[]``), one line each.

    The event must validate against the member of ``RealtimeServerEvent`` its ``type`` names, carry no
    field beyond what the models and the service have, and have an id like the service's
    (``event_`` + 21 base62 characters; DTMF events have none).
    """
    kind = event.get("type") if isinstance(event, dict) else None
    # The union accepts an event iff the member named by its "type" does; validating against that
    # member gives the error that matters instead of one per member of the union.
    adapter = _BY_TYPE.get(kind, _SERVER_EVENT) if isinstance(kind, str) else _SERVER_EVENT
    try:
        model = adapter.validate_python(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return [f"{kind!r}: {where}: {first['msg']} ({exc.error_count()} errors)"]
    problems = [
        f"{kind!r}: fields no model has at {where or '.'}: {names}"
        for where, names in _extra_fields(model)
        if names - _SERVICE_EXTRAS.get((str(kind), where), set())
    ]
    event_id = event.get("event_id")
    if kind != "input_audio_buffer.dtmf_event_received" and not (
        isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id)
    ):
        problems.append(f"{kind!r}: event_id {event_id!r} is not event_ + 21 base62")
    return problems


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
        """One line per problem of any collected event (``event_problems``), naming its session."""
        return [
            f"{session_id} {problem}" for session_id, event in self.items for problem in event_problems(event)
        ]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def audio_bytes(events: list[dict[str, Any]]) -> bytes:
    """The output audio of ``response.output_audio.delta`` events, concatenated."""
    return b"".join(base64.b64decode(e["delta"]) for e in of_type(events, "response.output_audio.delta"))


# -- transports -------------------------------------------------------------------------------------


class Recorder:
    """Everything a transport emitted, by event name, and ways to wait for what is still to come.

    ``Recorder(transport, ("*", "audio", "turn_done"))`` listens to those names only (listening to
    ``"*"`` changes nothing for the transport but costs it the raw dicts, so a test asks for it).
    """

    def __init__(self, transport: EventEmitter, names: tuple[str, ...]) -> None:
        self.events: dict[str, list[Any]] = {n: [] for n in names}
        self._waiters: dict[str, list[asyncio.Future[Any]]] = {}
        for name in names:
            transport.add_listener(name, self._listener(name))

    def _listener(self, name: str) -> Callable[[Any], None]:
        def record(payload: Any) -> None:
            self.events[name].append(payload)
            for fut in self._waiters.pop(name, []):
                if not fut.done():
                    fut.set_result(payload)

        return record

    async def first(self, name: str, within: float = 10.0) -> Any:
        """The first ``name`` event, already received or still to come."""
        if self.events[name]:
            return self.events[name][0]
        return await self.next(name, within)

    async def nth(self, name: str, n: int, within: float = 10.0) -> Any:
        """The ``n``-th (from 0) ``name`` event, already received or still to come."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.events[name]) <= n:
            await self.next(name, max(0.01, deadline - loop.time()))
        return self.events[name][n]

    async def next(self, name: str, within: float = 10.0) -> Any:
        """The next ``name`` event to come."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(name, []).append(fut)
        return await asyncio.wait_for(fut, within)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Poll ``predicate`` every 20 ms, at most ``within`` seconds."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {within} s; events: {self.types()[-30:]}")
            await asyncio.sleep(0.02)

    def types(self) -> list[str]:
        """The ``type`` of every raw server event (``"*"``), in order."""
        return [e["type"] for e in self.events.get("*", [])]

    def count(self, kind: str) -> int:
        """How many raw server events of ``kind`` arrived."""
        return sum(1 for e in self.events.get("*", []) if e["type"] == kind)

    def audio_ms(self, response_id: str | None = None) -> float:
        """Milliseconds of ``audio`` events (PCM16 24 kHz) received, of one response or all."""
        n = sum(
            len(a.data) for a in self.events["audio"] if response_id is None or a.response_id == response_id
        )
        return n / 48.0


# -- sessions driven by hand ------------------------------------------------------------------------

AUDIO_ANSWER_END = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
]
"""How an audio answer ends, in the service's order, whether it completes or is cancelled."""


class Driver:
    """A sans-I/O ``ServerSession``, its responder and a fake clock (Unix seconds): no sockets, no sleeping.

    ``send`` a client event, ``append`` audio, ``run`` the response and transcription jobs the session
    asked for (the job of ``SessionRunner``, done inline), and ``drain`` the server events, each checked
    by ``event_problems``: every event a test sees is one the official clients parse.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        now: float = 1_800_000_000.0,
        config: dict[str, Any] | None = None,
        media: AudioFormat | None = None,
        **kwargs: Any,
    ) -> None:
        self.responder = responder or EchoResponder()
        self.now = now
        self.session = ServerSession(self.responder, now=now, config=config, media=media, **kwargs)
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Server events since the last drain, each checked."""
        events = self.session.events_to_send()
        for event in events:
            problems = event_problems(event)
            assert not problems, problems
        self.seen += events
        return events

    def types(self) -> list[str]:
        return [e["type"] for e in self.drain()]

    def send(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """One client event; returns the events it caused (responses are not run: see ``run``)."""
        self.session.receive_event(event, self.now)
        return self.drain()

    def append(
        self, audio: bytes, chunk_ms: int = 20, fmt: AudioFormat | None = None
    ) -> list[dict[str, Any]]:
        """Stream ``audio`` (in ``fmt``, default PCM16 24 kHz) as ``input_audio_buffer.append`` events."""
        fmt = fmt or AudioFormat()
        size = fmt.bytes_for_ms(chunk_ms)
        for offset in range(0, len(audio), size):
            chunk = base64.b64encode(audio[offset : offset + size]).decode()
            self.session.receive_event({"type": "input_audio_buffer.append", "audio": chunk}, self.now)
            self.now += chunk_ms / 1000
        return self.drain()

    async def run(self, max_parts: int | None = None) -> list[dict[str, Any]]:
        """Run every job the session asked for, to the end (or ``max_parts`` parts); returns the events."""
        for job in self.session.response_jobs():
            count = 0
            async for part in self.responder.respond(job.request):
                self.session.response_part(job.response_id, part, self.now)
                count += 1
                if job.cancelled or (max_parts is not None and count >= max_parts):
                    break
            else:
                self.session.response_finished(job.response_id, self.now)
        transcribe = getattr(self.responder, "transcribe", None)
        for tjob in self.session.transcription_jobs():
            assert transcribe is not None
            self.session.transcription_result(tjob.item_id, await transcribe(tjob.pcm16_24k), self.now)
        return self.drain()


# -- WebRTC -----------------------------------------------------------------------------------------


class ToneResponder:
    """Answers every response with ``ms`` of a 440 Hz tone at amplitude 0.3 (a known answer).

    ``realtime=True`` produces it at the pace of real time, like a model streaming its answer (the
    response stays active while it plays); otherwise all at once.
    """

    def __init__(self, ms: int = 3000, *, realtime: bool = False) -> None:
        self.pcm = tone(ms)
        self.realtime = realtime
        self.requests: list[ResponseRequest] = []

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        self.requests.append(request)
        yield TextPart("a tone")
        step = 4800  # 100 ms
        for offset in range(0, len(self.pcm), step):
            yield AudioPart(self.pcm[offset : offset + step])
            if self.realtime:
                await asyncio.sleep(0.1)


def open_peer_connections() -> list[RTCPeerConnection]:
    """Every aiortc peer connection of this process that is not closed (a leak check)."""
    from aiortc import RTCPeerConnection

    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"]
