"""One simulated caller: a real transport session that speaks a scenario at real-time pace and measures it.

The caller sends its microphone continuously, as a phone or a browser does: 20 ms frames of speech during
a turn and of silence between turns, on a fixed schedule. It "plays" the answer as a speaker would, in real
time from the first audio that arrived, and feeds what it played to the transport's ``PlaybackTracker``,
so a barge-in truncates where this caller stopped hearing, and the server's ``conversation.item.truncated``
says whether the truncation landed there (``truncate_error``).

It works over any transport that satisfies ``RealtimeTransportLayer`` (WebSocket, WebRTC, fetch-upgrade,
...): it uses only the contract's public methods and events.
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
from .figures import Figures
from .monitor import SendSchedule
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


class Caller:
    """Connects, plays the scenario's turns in a loop until ``until`` (loop time), reports into ``figures``."""

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
    ) -> None:
        self._scenario = scenario
        self._figures = figures
        self._origin = origin
        self._schedule = schedule
        self._rng = rng or random.Random(0)
        self._connect_kwargs = dict(connect_kwargs or {})
        self._frame_ms = frame_ms
        self._frame_s = frame_ms / 1000
        self._silence = bytes(CALLER_FORMAT.bytes_for_ms(frame_ms))
        self._connect_timeout_s = connect_timeout_s
        self._tracker = PlaybackTracker(CALLER_FORMAT)
        self._loop = asyncio.get_running_loop()
        self.transport = make_transport(self._tracker)
        self._state: _TurnState | None = None
        self._expected_truncate: dict[str, tuple[float, str]] = {}
        self._next_at = 0.0
        self._subscribe()

    # -- the run -------------------------------------------------------------------------------------------

    async def run(self, until: float) -> None:
        """The whole call: connect, turns in a loop until ``until``, close (always, even when cancelled)."""
        figures, loop = self._figures, self._loop
        figures.count("sessions")
        started = loop.time()
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
            self._next_at = loop.time()
            while loop.time() < until:
                for turn in self._scenario.turns:
                    if loop.time() >= until:
                        break
                    await self._play_turn(turn, until)
        finally:
            if self._state is not None and not self._state.done and not self._state.barged:
                figures.count("unfinished")
            self._state = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await self.transport.close()

    async def _play_turn(self, turn: Turn, until: float) -> None:
        loop = self._loop
        state = self._state = _TurnState(turn)
        self._figures.count("turns")
        if turn.speech is not None:
            frame = CALLER_FORMAT.bytes_for_ms(self._frame_ms)
            speech, voiced_end = turn.speech, CALLER_FORMAT.bytes_for_ms(turn.speech_end_ms)
            for offset in range(0, len(speech), frame):
                if loop.time() >= until:
                    return
                chunk = speech[offset : offset + frame]
                await self._tick(chunk + self._silence[len(chunk) :])
                if state.end_at is None and offset + frame >= voiced_end:
                    state.end_at = loop.time()  # the voice ended in this frame; its trailing silence follows
        else:
            assert turn.text is not None
            self.transport.send_message(turn.text)
        if state.end_at is None:
            state.end_at = loop.time()
        deadline = state.end_at + self._scenario.answer_timeout_ms / 1000
        # Listen: the answer plays; the caller barges in, or hears it to the end.
        while loop.time() < until:
            if turn.interrupt_after_ms is not None and state.first_audio_seen:
                if state.heard_ms >= turn.interrupt_after_ms:
                    self._barge_in(state)
                    return  # a barging caller speaks at once: the next turn starts now
            if state.done and state.all_heard:
                break
            if loop.time() >= deadline:
                self._figures.error("no_answer", turn.name, self._at())
                state.done = True  # a late answer must not be credited to the next turn
                return
            await self._tick(self._silence)
        else:
            return
        self._finish(state)
        pause_s = (turn.pause_ms + self._rng.uniform(0, self._scenario.pause_jitter_ms)) / 1000
        pause_end = loop.time() + pause_s
        while loop.time() < min(pause_end, until):
            await self._tick(self._silence)

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

    async def _tick(self, frame: bytes) -> None:
        """Sends one frame at its slot on the schedule, then lets the speaker play one frame's worth."""
        self._next_at += self._frame_s
        delay = self._next_at - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            self._schedule.late(-delay * 1000)
        self._schedule.sent()
        if self.transport.status is TransportStatus.CONNECTED:
            await self.transport.send_audio(frame)
        self._play(self._frame_ms)

    def _play(self, ms: float) -> None:
        state = self._state
        if state is None or state.barged:
            return
        for item in state.queue:
            step = min(ms, item.received_ms - item.heard_ms)
            if step > 0:
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
