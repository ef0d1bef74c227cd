"""Helpers of the WebRTC tests: a recorder of transport events, a long-answer responder, leak checks."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection

from rtlayer.server.responders import AudioPart, ResponsePart, ResponseRequest, TextPart
from rtlayer.transport import AudioEvent
from rtlayer.transports.webrtc import WebRTCTransport


def tone(ms: int, *, rate: int = 24000, freq: float = 440.0, amplitude: float = 0.3) -> bytes:
    """A sine as PCM16 mono (numpy: test data, not library code)."""
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * math.pi * freq * t) * amplitude * 32767).astype("<i2").tobytes()


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


@dataclass
class Recorder:
    """Everything a transport emitted, with arrival times."""

    events: list[dict[str, Any]] = field(default_factory=list)
    audio: list[AudioEvent] = field(default_factory=list)
    named: dict[str, list[Any]] = field(default_factory=dict)

    def attach(self, transport: WebRTCTransport, *names: str) -> Recorder:
        transport.on("*", self.events.append)
        transport.on("audio", self.audio.append)
        for name in names:
            transport.add_listener(name, self.named.setdefault(name, []).append)
        return self

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e["type"] == kind)

    def audio_ms(self, response_id: str | None = None) -> float:
        n = sum(len(a.data) for a in self.audio if response_id is None or a.response_id == response_id)
        return n / 48.0  # PCM16 24 kHz

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Poll ``predicate`` every 20 ms, at most ``within`` seconds."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {within} s; events: {self.types()[-30:]}")
            await asyncio.sleep(0.02)


def open_peer_connections() -> list[RTCPeerConnection]:
    """Every aiortc peer connection of this process that is not closed (a leak check)."""
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"]
