"""``PhoneSimulator``: a telephony provider's side of a media stream, for testing phone bots without a phone.

It connects to the app's media-stream endpoint as the provider would: its opening messages, then the
caller's audio at real-time pace in the provider's chunk size, encoding and timestamps, with continuous
silence between what the caller says; it plays the app's audio at real time (a 20 ms tick), echoes a
playback mark only once the audio sent before it has played, and on a clear discards what is queued and
returns the pending marks (or confirms the clear, as the provider does); it ends with ``stop`` and a close.

```python
async with PhoneSimulator("twilio", "ws://127.0.0.1:8080/media-stream") as phone:
    phone.say(pcm16, rate=24000)            # the caller speaks (queued into the continuous stream)
    await phone.wait_answer(within=10)      # an answer started playing
    phone.press("5")
    await phone.hangup()
phone.write_heard("heard.wav")             # what the caller heard, as a caller would hear it
print(phone.format_timeline())
```

Everything happens on the simulator's own clock (a tick every 20 ms from the call's start): ``timeline``
entries carry ms since the start, ``answers`` and ``clears`` report what played and what was discarded.
What the app sent that the provider would refuse is listed in ``problems``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import wave
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import rtlayer_native

from .providers import AppAudio, AppClear, AppMark, AppProblem, CallInfo, ProviderSide, provider_side

__all__ = ["Answer", "ClearReport", "PhoneSimulator", "TimelineEntry"]

logger = logging.getLogger("rtlayer.testing.phone")

TICK_MS = 20
#: a pause in the app's audio longer than this ends an answer (a shorter one is a gap inside it: an underrun)
ANSWER_GAP_MS = 200


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at_ms: int
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Answer:
    """One stretch of app audio the caller heard without a pause."""

    started_ms: int
    played_ms: int = 0
    ended_ms: int | None = None
    cleared: bool = False
    #: ticks inside the answer where no audio was there to play (the app fell behind real time)
    gap_ticks: int = 0
    idle_ticks: int = field(default=0, repr=False)
    pcm16: bytearray = field(default_factory=bytearray, repr=False)


@dataclass(frozen=True, slots=True)
class ClearReport:
    """A clear the app sent: when, how much of the answer had played, and what it discarded."""

    at_ms: int
    played_ms: int
    discarded_ms: int
    marks_returned: int


class PhoneSimulator:
    """The provider's side of one call (see the module docstring)."""

    def __init__(
        self,
        provider: str | ProviderSide,
        url: str,
        *,
        call: CallInfo | None = None,
        custom: Mapping[str, str] | None = None,
        codec: str | None = None,
        rate: int | None = None,
        send_opening: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        self.side = provider_side(provider, codec, rate) if isinstance(provider, str) else provider
        self.url = url
        self.call = call or CallInfo(custom=dict(custom or {}))
        self.send_opening = send_opening
        self.connect_timeout = connect_timeout
        self.timeline: list[TimelineEntry] = []
        self.answers: list[Answer] = []
        self.clears: list[ClearReport] = []
        self.problems: list[str] = []
        #: what the caller heard, PCM16 at the provider's rate, one tick after another (silence included)
        self.heard = bytearray()
        self.marks_echoed = 0
        self.played_ms = 0
        #: the most app audio ever queued here ahead of playback, in ms (how far ahead of real time the app
        #: sends: what a barge-in can cost at most)
        self.max_queued_ms = 0
        self._queued_bytes = 0
        self.closed_by: str | None = None
        self._conn: Any = None
        self._opened = False
        self._media_stopped = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._speech = bytearray()
        self._lose = 0
        self._queue: deque[bytearray | str] = deque()  # app audio (PCM16) and mark names, in arrival order
        self._playing: bytes | None = None
        self._answer: Answer | None = None
        self._tick = 0
        self._t0 = 0.0
        self._ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._send_lock = asyncio.Lock()

    # -- the call ---------------------------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self._tick * TICK_MS

    async def start(self) -> None:
        from websockets.asyncio.client import connect

        self._conn = await connect(
            self.url, open_timeout=self.connect_timeout, max_size=2**22, ping_interval=None
        )
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        if self.send_opening:
            await self.open()
        self._tasks = [asyncio.ensure_future(self._clock()), asyncio.ensure_future(self._reader())]

    async def open(self) -> None:
        """Sends the provider's opening messages; the caller's audio flows from then on (``start`` does this
        unless ``send_opening=False``, which lets a test send something else first)."""
        for frame in self.side.opening(self.call):
            await self._send(frame)
        self._opened = True

    async def __aenter__(self) -> PhoneSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.hangup()

    def say(self, pcm16: bytes, rate: int) -> int:
        """The caller speaks ``pcm16`` (mono, little-endian, at ``rate``) after what is already queued;
        returns the ms (simulator clock) at which it will have been sent."""
        if rate != self.side.rate:
            resampler = rtlayer_native.Resampler(rate, self.side.rate)
            pcm16 = resampler.process(pcm16) + resampler.flush()
        self._speech += pcm16
        end = self.now_ms + len(self._speech) // self.side.pcm_bytes_per_ms
        self._note("say", ms=len(pcm16) // self.side.pcm_bytes_per_ms)
        return end

    def lose(self, chunks: int) -> None:
        """The network loses the next ``chunks`` inbound chunks (their timestamps still advance)."""
        self._lose += chunks

    def stop_media(self, stopped: bool = True) -> None:
        """The provider stops sending the caller's audio (some do on hold or mute) until called with False;
        the call stays up, marks and clears keep working."""
        self._media_stopped = stopped
        self._note("media_stopped" if stopped else "media_resumed")

    def press(self, digit: str) -> None:
        """The caller presses a key (sent now, between audio chunks)."""
        self._note("dtmf", digit=digit)
        self._tasks.append(asyncio.ensure_future(self._send(self.side.dtmf(self.call, digit))))

    async def send_raw(self, frame: str | bytes) -> None:
        """Sends any frame as is (to test what an app does with input a provider should not send)."""
        await self._send(frame)

    async def hangup(self) -> None:
        """The caller hangs up: the provider's stop (if it has one), then the close."""
        if self._conn is None or self._ended.is_set():
            await self._finish()
            return
        self._note("hangup")
        self.closed_by = self.closed_by or "caller"
        stop = self.side.stop(self.call)
        if stop is not None:
            with contextlib.suppress(Exception):
                await self._send(stop)
        await self._finish()

    async def wait_closed(self, within: float = 10.0) -> None:
        """Waits until the app closed the stream (raises ``TimeoutError`` past ``within`` seconds)."""
        async with asyncio.timeout(within):
            await self._ended.wait()

    async def wait_for(self, predicate: Callable[[], object], within: float = 10.0) -> None:
        """Waits until ``predicate()`` is true (checked whenever something changes, at most every tick)."""
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK_MS / 1000):
                        await self._changed.wait()

    async def wait_answer(self, n: int = 1, min_played_ms: int = 0, within: float = 10.0) -> Answer:
        """Waits until the ``n``-th answer has played at least ``min_played_ms``."""
        await self.wait_for(
            lambda: len(self.answers) >= n and self.answers[n - 1].played_ms >= min_played_ms, within
        )
        return self.answers[n - 1]

    async def wait_for_answer_end(self, n: int = 1, within: float = 10.0) -> Answer:
        """Waits until the ``n``-th answer has finished playing (or was cleared)."""
        await self.wait_for(
            lambda: len(self.answers) >= n and self.answers[n - 1].ended_ms is not None, within
        )
        return self.answers[n - 1]

    def speaking(self) -> bool:
        """Whether caller speech is still queued to be sent."""
        return bool(self._speech)

    # -- reports ------------------------------------------------------------------------------------------------

    def write_heard(self, path: str) -> None:
        """What the caller heard as a WAV (PCM16 mono at the provider's rate)."""
        with wave.open(path, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(self.side.rate)
            out.writeframes(bytes(self.heard))

    def format_timeline(self) -> str:
        lines = []
        for entry in self.timeline:
            detail = " ".join(f"{k}={v}" for k, v in entry.detail.items())
            lines.append(f"{entry.at_ms / 1000:8.2f} s  {entry.kind:<15} {detail}".rstrip())
        return "\n".join(lines)

    # -- internals -------------------------------------------------------------------------------------------

    def _note(self, kind: str, **detail: Any) -> None:
        self.timeline.append(TimelineEntry(self.now_ms, kind, detail))
        self._changed.set()

    async def _send(self, frame: str | bytes) -> None:
        async with self._send_lock:
            await self._conn.send(frame)

    async def _clock(self) -> None:
        """One tick every 20 ms on an absolute schedule: play, echo marks, send the caller's chunk."""
        loop = asyncio.get_running_loop()
        side = self.side
        chunk_ticks = side.in_chunk_ms // TICK_MS
        chunk_bytes = side.pcm_bytes_per_ms * side.in_chunk_ms
        try:
            while True:
                self._tick += 1
                delay = self._t0 + self._tick * TICK_MS / 1000 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._play_tick()
                if self._tick % chunk_ticks == 0:
                    pcm = bytes(self._speech[:chunk_bytes])
                    del self._speech[:chunk_bytes]
                    pcm += b"\x00" * (chunk_bytes - len(pcm))
                    timestamp = (self._tick - chunk_ticks) * TICK_MS
                    if self._lose:
                        self._lose -= 1
                    elif self._opened and not self._media_stopped:
                        await self._send(side.media(self.call, pcm, timestamp))
        except Exception as exc:  # the app closed the socket
            self._closed(exc)

    async def _play_tick(self) -> None:
        """The frame that was playing has played; echo the marks it reached; start the next 20 ms."""
        tick_bytes = self.side.pcm_bytes_per_ms * TICK_MS
        frame = self._playing
        if frame is not None:
            self.heard += frame + b"\x00" * (tick_bytes - len(frame))
            ms = len(frame) // self.side.pcm_bytes_per_ms
            self.played_ms += ms
            assert self._answer is not None
            self._answer.played_ms += ms
            self._answer.pcm16 += frame
            self._changed.set()
        else:
            self.heard += b"\x00" * tick_bytes
        await self._echo_reached_marks()
        frame = self._pull(tick_bytes)
        answer = self._answer
        if frame and answer is None:
            self._answer = Answer(self.now_ms)
            self.answers.append(self._answer)
            self._note("answer_started", n=len(self.answers))
        elif frame and answer is not None and answer.idle_ticks:
            answer.gap_ticks += answer.idle_ticks
            answer.idle_ticks = 0
        elif not frame and answer is not None:
            answer.idle_ticks += 1
            if answer.idle_ticks * TICK_MS >= ANSWER_GAP_MS:
                self._end_answer()
        self._playing = frame or None

    def _pull(self, nbytes: int) -> bytes:
        out = bytearray()
        while self._queue and len(out) < nbytes:
            head = self._queue[0]
            if isinstance(head, str):
                break  # a mark: it is echoed once the audio before it has played
            take = head[: nbytes - len(out)]
            out += take
            self._queued_bytes -= len(take)
            del head[: len(take)]
            if not head:
                self._queue.popleft()
        return bytes(out)

    async def _echo_reached_marks(self) -> None:
        while self._queue and isinstance(self._queue[0], str):
            name = self._queue.popleft()
            assert isinstance(name, str)
            self.marks_echoed += 1
            await self._send(self.side.mark_echo(self.call, name))

    def _end_answer(self) -> None:
        answer = self._answer
        if answer is not None:
            answer.ended_ms = self.now_ms - answer.idle_ticks * TICK_MS
            detail = {"n": len(self.answers), "played_ms": answer.played_ms}
            if answer.gap_ticks:
                detail["gaps_ms"] = answer.gap_ticks * TICK_MS
            self.timeline.append(TimelineEntry(answer.ended_ms, "answer_ended", detail))
            self._changed.set()
        self._answer = None

    async def _reader(self) -> None:
        try:
            async for message in self._conn:
                parsed = self.side.parse(message)
                if isinstance(parsed, AppAudio):
                    self._queue.append(bytearray(parsed.pcm16))
                    self._queued_bytes += len(parsed.pcm16)
                    queued_ms = self._queued_bytes // self.side.pcm_bytes_per_ms
                    self.max_queued_ms = max(self.max_queued_ms, queued_ms)
                elif isinstance(parsed, AppMark):
                    if not self._queue and self._playing is None:
                        self.marks_echoed += 1
                        await self._send(self.side.mark_echo(self.call, parsed.name))
                    else:
                        self._queue.append(parsed.name)
                elif isinstance(parsed, AppClear):
                    await self._clear()
                elif isinstance(parsed, AppProblem):
                    self.problems.append(parsed.reason)
                    self._note("problem", reason=parsed.reason)
        except Exception as exc:
            self._closed(exc)
            return
        self._closed(None)

    async def _clear(self) -> None:
        discarded = len(self._playing or b"")
        marks: list[str] = []
        for entry in self._queue:
            if isinstance(entry, str):
                marks.append(entry)
            else:
                discarded += len(entry)
        self._queue.clear()
        self._queued_bytes = 0
        self._playing = None
        answer = self._answer
        report = ClearReport(
            self.now_ms,
            answer.played_ms if answer is not None else 0,
            discarded // self.side.pcm_bytes_per_ms,
            len(marks) if self.side.returns_marks_on_clear else 0,
        )
        self.clears.append(report)
        self._note("clear", played_ms=report.played_ms, discarded_ms=report.discarded_ms)
        if answer is not None:
            answer.cleared = True
            self._end_answer()
        if self.side.returns_marks_on_clear:
            for name in marks:
                await self._send(self.side.mark_echo(self.call, name))
        reply = self.side.clear_reply(self.call)
        if reply is not None:
            await self._send(reply)

    def _closed(self, exc: BaseException | None) -> None:
        if self._ended.is_set():
            return
        if self.closed_by is None:
            self.closed_by = "app"
            self._note("closed_by_app")
        self._ended.set()
        self._changed.set()

    async def _finish(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._ended.set()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*[t for t in self._tasks if t is not current], return_exceptions=True)
