"""One simulated caller: a real transport session that speaks a scenario at real-time pace and measures it.

The caller sends its microphone continuously, as a phone or a browser does: 20 ms frames of speech during
a turn and of silence between turns, on a fixed schedule. It "plays" the answer as a speaker would, in real
time from the first audio that arrived, and feeds what it played to the transport's ``PlaybackTracker``,
so a barge-in truncates where this caller stopped hearing, and the server's ``conversation.item.truncated``
says whether the truncation landed there (``truncate_error``).

It works over any transport that satisfies ``RealtimeTransportLayer`` (WebSocket, WebRTC, fetch-upgrade,
...): it uses only the contract's public methods and events, plus one optional method when the transport has
it, ``send_prepared_nowait`` (:class:`~rtlayer.load.transport.LoadWebSocketTransport`, what ``rtlayer load``
uses for WebSocket): the caller's frames are encoded once per WAV and written to the socket at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..audio import PlaybackTracker
from ..protocol.codec import b64encode_audio
from ..transport import (
    AudioEvent,
    ConnectionChangeEvent,
    ErrorEvent,
    FunctionCallEvent,
    RealtimeTransportLayer,
    TransportStatus,
    TurnDoneEvent,
    TurnStartedEvent,
)
from .clock import FrameClock
from .figures import Figures
from .monitor import LATE_FRAME_MS, SendSchedule
from .scenario import CALLER_FORMAT, Scenario, Turn

__all__ = ["Caller", "TransportFactory"]

#: builds the caller's transport; the caller's tracker must be passed to it as ``playback_tracker``
TransportFactory = Callable[[PlaybackTracker], RealtimeTransportLayer]

_CLOSE_TIMEOUT_S = 5.0


@dataclass
class _Playing:
    """An answer item the caller's speaker is playing: what arrived and what was heard."""

    item_id: str
    content_index: int
    received_ms: float = 0.0
    heard_ms: float = 0.0


@dataclass
class _TurnState:
    turn: Turn
    #: loop time the caller finished speaking (or sent its text); None while it still speaks
    end_at: float | None = None
    response_id: str | None = None
    stopped_seen: bool = False
    first_audio_seen: bool = False
    answer_ms: float = 0.0
    done: bool = False
    tool_called: bool = False
    barged: bool = False
    queue: deque[_Playing] = field(default_factory=deque)

    @property
    def heard_ms(self) -> float:
        return sum(item.heard_ms for item in self.queue)

    @property
    def all_heard(self) -> bool:
        return all(item.heard_ms >= item.received_ms for item in self.queue)


class _Frame:
    """One 20 ms frame a caller sends: its PCM, and its ``input_audio_buffer.append`` JSON, encoded once."""

    __slots__ = ("append", "pcm")

    def __init__(self, pcm: bytes) -> None:
        self.pcm = pcm
        self.append = ('{"type":"input_audio_buffer.append","audio":"' + b64encode_audio(pcm) + '"}').encode()


@dataclass(frozen=True, slots=True)
class _SpeechFrames:
    frames: tuple[_Frame, ...]
    #: the index of the frame in which the voice ends (the turn's end is measured from when it was sent)
    voiced_last: int


#: a turn's frames, made once per process for every caller: keyed by the speech's id, which the value keeps
#: alive (so the id is not reused while the entry exists)
_PREPARED: dict[tuple[int, int], tuple[bytes, _SpeechFrames]] = {}
_SILENCE: dict[int, _Frame] = {}


def _speech_frames(speech: bytes, voiced_end_ms: int, frame_ms: int) -> _SpeechFrames:
    key = (id(speech), frame_ms)
    entry = _PREPARED.get(key)
    if entry is None or entry[0] is not speech:
        size = CALLER_FORMAT.bytes_for_ms(frame_ms)
        chunks = [speech[i : i + size] for i in range(0, len(speech), size)]
        frames = tuple(_Frame(chunk + bytes(size - len(chunk))) for chunk in chunks)
        voiced_bytes = CALLER_FORMAT.bytes_for_ms(voiced_end_ms)
        # The first frame that reaches the end of the voice (the last one for a file voiced to its end).
        voiced_last = next((i for i in range(len(frames)) if (i + 1) * size >= voiced_bytes), len(frames) - 1)
        entry = _PREPARED[key] = (speech, _SpeechFrames(frames, voiced_last))
    return entry[1]


def _silence_frame(frame_ms: int) -> _Frame:
    frame = _SILENCE.get(frame_ms)
    if frame is None:
        frame = _SILENCE[frame_ms] = _Frame(bytes(CALLER_FORMAT.bytes_for_ms(frame_ms)))
    return frame


_SPEAK, _LISTEN, _PAUSE = range(3)


class Caller:
    """Connects, plays the scenario's turns in a loop until ``until`` (loop time), reports into ``figures``.

    Frames leave on a :class:`~rtlayer.load.clock.FrameClock` shared by every caller of the loop (``clock``;
    default the loop's shared one), which calls :meth:`_on_tick` every 20 ms: the caller decides there what
    to send (speech, silence, nothing at the end) and what happens next (barge in, give up on an answer,
    pause, the next turn). A transport that can send a pre-encoded frame at once
    (:class:`~rtlayer.load.transport.LoadWebSocketTransport`) gets it there, synchronously; any other
    transport, or the same one while its socket is busy, gets it through ``send_audio`` from a task of the
    caller's, in order.
    """

    def __init__(
        self,
        make_transport: TransportFactory,
        scenario: Scenario,
        figures: Figures,
        *,
        origin: float,
        schedule: SendSchedule,
        rng: random.Random | None = None,
        connect_kwargs: Mapping[str, Any] | None = None,
        frame_ms: int = 20,
        connect_timeout_s: float = 15.0,
        clock: FrameClock | None = None,
    ) -> None:
        self._scenario = scenario
        self._figures = figures
        self._origin = origin
        self._schedule = schedule
        self._rng = rng or random.Random(0)
        self._connect_kwargs = dict(connect_kwargs or {})
        self._frame_ms = frame_ms
        self._silence = _silence_frame(frame_ms)
        self._connect_timeout_s = connect_timeout_s
        self._tracker = PlaybackTracker(CALLER_FORMAT)
        self._loop = asyncio.get_running_loop()
        self._clock = clock
        self.transport = make_transport(self._tracker)
        # The synchronous send of a pre-encoded frame, when the transport has one (LoadWebSocketTransport).
        self._send_nowait: Callable[[bytes], bool] | None = getattr(
            self.transport, "send_prepared_nowait", None
        )
        self._state: _TurnState | None = None
        self._expected_truncate: dict[str, tuple[float, str]] = {}
        # The state machine that _on_tick runs.
        self._until = 0.0
        self._turn_index = -1
        self._phase = _SPEAK
        self._speech: _SpeechFrames | None = None
        self._frame_index = 0
        self._deadline = 0.0
        self._pause_end = 0.0
        self._ended: asyncio.Future[None] | None = None
        # Frames for send_audio, in order, with when they fell due; the sender task drains them.
        self._backlog: deque[tuple[_Frame, float]] = deque()
        self._backlog_ready = asyncio.Event()
        self._subscribe()

    # -- the run -------------------------------------------------------------------------------------------

    async def run(self, until: float) -> None:
        """The whole call: connect, turns in a loop until ``until``, close (always, even when cancelled)."""
        figures, loop = self._figures, self._loop
        figures.count("sessions")
        started = loop.time()
        clock = self._clock = self._clock or FrameClock.shared(self._frame_ms)
        sender: asyncio.Task[None] | None = None
        try:
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    await self.transport.connect(
                        initial_session_config=self._scenario.session, **self._connect_kwargs
                    )
            except Exception as exc:
                figures.error(f"connect_failed:{type(exc).__name__}", "connect", self._at())
                return
            figures.add("connect", "connect", (loop.time() - started) * 1000, self._at())
            figures.count("connected")
            now = loop.time()
            if now >= until:
                return
            self._until = until
            self._ended = loop.create_future()
            self._next_turn(now)
            sender = loop.create_task(self._sender())
            clock.add(self._on_tick)
            try:
                await asyncio.wait([self._ended, sender], return_when=asyncio.FIRST_COMPLETED)
            finally:
                clock.remove(self._on_tick)
            if sender.done():
                sender.result()  # send_audio failed (the socket stalled past its send timeout): raise it
            self._ended.result()
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            if self._state is not None and not self._state.done and not self._state.barged:
                figures.count("unfinished")
            self._state = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await self.transport.close()

    def _on_tick(self, now: float, frames: int, late_ms: float) -> None:
        """The clock's call: ``frames`` frames fell due (more than one when the loop ran late)."""
        try:
            self._schedule.sent_many(frames, late_ms)
            while frames:
                frames -= 1
                frame = self._next_frame(now)
                if frame is None:
                    self._end(None)
                    return
                self._send(frame, now)
                if self._state is not None and self._state.queue:
                    self._play(self._frame_ms)
        except Exception as exc:  # a bug: end this caller with it rather than the clock's other callers
            self._end(exc)

    def _end(self, exc: Exception | None) -> None:
        if self._clock is not None:
            self._clock.remove(self._on_tick)
        ended = self._ended
        if ended is not None and not ended.done():
            if exc is None:
                ended.set_result(None)
            else:
                ended.set_exception(exc)

    def _send(self, frame: _Frame, due: float) -> None:
        if self._backlog or self._send_nowait is None or not self._send_nowait(frame.append):
            self._backlog.append((frame, due))
            self._backlog_ready.set()

    async def _sender(self) -> None:
        """Sends, through ``send_audio``, the frames the transport could not take at once (in order)."""
        backlog, ready, transport, loop = self._backlog, self._backlog_ready, self.transport, self._loop
        while True:
            await ready.wait()
            ready.clear()
            while backlog:
                frame, due = backlog[0]
                late_ms = (loop.time() - due) * 1000
                if late_ms >= LATE_FRAME_MS:
                    self._schedule.late(late_ms)
                if transport.status is TransportStatus.CONNECTED:
                    await transport.send_audio(frame.pcm)
                backlog.popleft()

    def _next_frame(self, now: float) -> _Frame | None:
        """What to send in this slot, after moving the turn on as far as ``now`` says; None: the call ends."""
        # The common cases first, without the general loop: speech to go on with, or a pause to go on with.
        if now < self._until:
            if self._phase == _SPEAK:
                speech, index = self._speech, self._frame_index
                assert speech is not None
                if index < len(speech.frames) and index != speech.voiced_last:
                    self._frame_index = index + 1
                    return speech.frames[index]
            elif self._phase == _PAUSE:
                if now < self._pause_end:
                    return self._silence
            else:  # listening: silence while the answer is awaited (nothing to barge in on yet)
                state = self._state
                assert state is not None
                if not state.done and not state.first_audio_seen and now < self._deadline:
                    return self._silence
        return self._advance(now)

    def _advance(self, now: float) -> _Frame | None:
        """``_next_frame``'s general case: moves the turn on (ends speech, barges in, finishes, pauses,
        starts the next turn) until a frame is due."""
        for _ in range(3 * len(self._scenario.turns) + 3):  # bounded: each pass moves the turn on
            if now >= self._until:
                return None
            state = self._state
            assert state is not None
            if self._phase == _SPEAK:
                speech = self._speech
                assert speech is not None
                index = self._frame_index
                if index < len(speech.frames):
                    self._frame_index = index + 1
                    if index == speech.voiced_last and state.end_at is None:
                        state.end_at = now  # the voice ends in this frame; its trailing silence follows
                    return speech.frames[index]
                self._listen(state, now)
                continue
            if self._phase == _LISTEN:
                turn = state.turn
                if turn.interrupt_after_ms is not None and state.first_audio_seen:
                    if state.heard_ms >= turn.interrupt_after_ms:
                        self._barge_in(state)
                        self._next_turn(now)  # a barging caller speaks at once: the next turn starts now
                        continue
                if state.done and state.all_heard:
                    self._finish(state)
                    pause_s = (turn.pause_ms + self._rng.uniform(0, self._scenario.pause_jitter_ms)) / 1000
                    self._pause_end = now + pause_s
                    self._phase = _PAUSE
                    continue
                if now >= self._deadline:
                    self._figures.error("no_answer", turn.name, self._at())
                    state.done = True  # a late answer must not be credited to the next turn
                    self._next_turn(now)
                    continue
                return self._silence
            if now < self._pause_end:
                return self._silence
            self._next_turn(now)
        raise AssertionError("a turn that neither speaks, listens nor pauses")  # pragma: no cover

    def _next_turn(self, now: float) -> None:
        turns = self._scenario.turns
        self._turn_index = (self._turn_index + 1) % len(turns)
        turn = turns[self._turn_index]
        state = self._state = _TurnState(turn)
        self._figures.count("turns")
        if turn.speech is not None:
            self._speech = _speech_frames(turn.speech, turn.speech_end_ms, self._frame_ms)
            self._frame_index = 0
            self._phase = _SPEAK
        else:
            assert turn.text is not None
            self.transport.send_message(turn.text)
            self._listen(state, now)

    def _listen(self, state: _TurnState, now: float) -> None:
        if state.end_at is None:
            state.end_at = now
        self._deadline = state.end_at + self._scenario.answer_timeout_ms / 1000
        self._phase = _LISTEN

    def _finish(self, state: _TurnState) -> None:
        figures, at = self._figures, self._at()
        figures.add("answer_duration", state.turn.name, state.answer_ms, at)
        figures.count("answered")
        if state.turn.expect_tool is not None and not state.tool_called:
            figures.error("tool_not_called", state.turn.name, at)

    def _barge_in(self, state: _TurnState) -> None:
        playing = state.queue[-1] if state.queue else None
        if playing is not None:
            self._expected_truncate[playing.item_id] = (playing.heard_ms, state.turn.name)
        state.barged = True
        self._figures.count("barge_ins")
        self._finish(state)
        self.transport.interrupt()

    def _play(self, ms: float) -> None:
        state = self._state
        if state is None or state.barged:
            return
        for item in state.queue:
            step = item.received_ms - item.heard_ms
            if step <= 0:
                continue  # heard in full already
            if step > ms:
                step = ms
            item.heard_ms += step
            self._tracker.on_play_ms(item.item_id, item.content_index, step)
            ms -= step
            if ms <= 0:
                break

    def _at(self) -> float:
        return self._loop.time() - self._origin

    # -- what the server says --------------------------------------------------------------------------------

    def _subscribe(self) -> None:
        on = self.transport.on
        on("input_audio_buffer.speech_stopped", self._on_speech_stopped)
        on("turn_started", self._on_turn_started)
        on("audio", self._on_audio)
        on("turn_done", self._on_turn_done)
        on("function_call", self._on_function_call)
        on("conversation.item.truncated", self._on_truncated)
        on("error", self._on_error)
        on("connection_change", self._on_connection_change)

    def _current(self) -> _TurnState | None:
        """The turn whose answer is awaited: the caller finished speaking and has not barged in."""
        state = self._state
        if state is None or state.end_at is None or state.barged:
            return None
        return state

    def _on_speech_stopped(self, event: dict[str, Any]) -> None:
        state = self._current()
        if state is not None and not state.stopped_seen:
            state.stopped_seen = True
            assert state.end_at is not None
            lag = (self._loop.time() - state.end_at) * 1000
            self._figures.add("speech_stopped_lag", state.turn.name, lag, self._at())

    def _on_turn_started(self, event: TurnStartedEvent) -> None:
        state = self._current()
        if state is not None and state.response_id is None and not state.done:
            state.response_id = event.response_id

    def _on_audio(self, event: AudioEvent) -> None:
        state = self._current()
        if state is None or event.response_id != state.response_id:
            return  # a cancelled answer's late deltas, or one this caller is not waiting for
        ms = CALLER_FORMAT.duration_ms(len(event.data))
        if not state.first_audio_seen:
            state.first_audio_seen = True
            assert state.end_at is not None
            lag = (self._loop.time() - state.end_at) * 1000
            self._figures.add("first_audio", state.turn.name, lag, self._at())
        if not state.queue or state.queue[-1].item_id != event.item_id:
            state.queue.append(_Playing(event.item_id, event.content_index))
        state.queue[-1].received_ms += ms
        state.answer_ms += ms

    def _on_turn_done(self, event: TurnDoneEvent) -> None:
        state = self._current()
        if state is None or event.response_id != state.response_id or state.done:
            return
        if state.turn.expect_tool is not None and not state.tool_called:
            # The answer ended without the tool: that is this turn's answer (and an error at _finish).
            pass
        elif state.tool_called and not state.first_audio_seen and not state.answer_ms:
            # The response that only carried the function call; the answer comes in the next one.
            if any(item.get("type") == "function_call" for item in event.response.get("output", ())):
                state.response_id = None
                return
        state.done = True
        assert state.end_at is not None
        if event.status not in ("completed", "cancelled"):
            self._figures.error(f"response_{event.status}", state.turn.name, self._at())
        self._figures.add("turn", state.turn.name, (self._loop.time() - state.end_at) * 1000, self._at())

    def _on_function_call(self, event: FunctionCallEvent) -> None:
        state = self._current()
        if state is None:
            return
        expected = state.turn.expect_tool
        if expected == event.name and not state.tool_called:
            state.tool_called = True
            assert state.end_at is not None
            lag = (self._loop.time() - state.end_at) * 1000
            self._figures.add("tool_call", state.turn.name, lag, self._at())
            self.transport.send_function_call_output(event, state.turn.tool_output)
        else:
            self._figures.error(f"unexpected_tool:{event.name}", state.turn.name, self._at())
            self.transport.send_function_call_output(event, "{}")

    def _on_truncated(self, event: dict[str, Any]) -> None:
        expected = self._expected_truncate.pop(str(event.get("item_id")), None)
        audio_end_ms = event.get("audio_end_ms")
        if expected is not None and isinstance(audio_end_ms, int | float):
            heard_ms, turn = expected
            self._figures.add("truncate_error", turn, audio_end_ms - heard_ms, self._at())

    def _on_error(self, event: ErrorEvent) -> None:
        state = self._state
        turn = state.turn.name if state is not None else "connect"
        self._figures.error(event.code or event.type, turn, self._at())

    def _on_connection_change(self, event: ConnectionChangeEvent) -> None:
        if event.status is TransportStatus.RECONNECTING and event.attempt == 1:
            self._figures.count("reconnects")
