"""Helpers for driving a sans-I/O ``ServerSession`` in tests: no sockets, no sleeping, time is an argument.

``Driver`` wraps a session and a responder: ``send`` a client event, ``append`` audio, ``run`` the response
and transcription jobs the session asked for (the job of ``SessionRunner``, done inline), and ``drain`` the
server events, each validated against ``openai.types.realtime.RealtimeServerEvent`` (what the official
clients parse with). Every event a test sees has passed that check.
"""

from __future__ import annotations

import base64
import wave
from pathlib import Path
from typing import Any

from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from rtlayer.audio import AudioFormat
from rtlayer.server.core.session import ServerSession
from rtlayer.server.responders import EchoResponder, Responder

DATA = Path(__file__).parent / "data"
AUDIO_ANSWER_END = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
]
"""How an audio answer ends, in the service's order, whether it completes or is cancelled."""
SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)


def wav(name: str) -> bytes:
    """``tests/data/NAME.wav`` as PCM16 24 kHz mono bytes."""
    with wave.open(str(DATA / f"{name}.wav"), "rb") as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (24000, 1, 2)
        return f.readframes(f.getnframes())


def silence(ms: int, fmt: AudioFormat | None = None) -> bytes:
    fmt = fmt or AudioFormat()
    fill = b"\xff" if fmt.codec == "pcmu" else b"\xd5" if fmt.codec == "pcma" else b"\x00"
    return fill * fmt.bytes_for_ms(ms)


def validate(event: dict[str, Any]) -> None:
    """Raises if ``event`` is not a valid GA server event."""
    SERVER_EVENT.validate_python(event)


class Driver:
    """A session, its responder and a fake clock (Unix seconds)."""

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
        """Server events since the last drain, each validated."""
        events = self.session.events_to_send()
        for event in events:
            validate(event)
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


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def audio_bytes(events: list[dict[str, Any]]) -> bytes:
    """The output audio of ``response.output_audio.delta`` events, concatenated."""
    return b"".join(base64.b64decode(e["delta"]) for e in of_type(events, "response.output_audio.delta"))
