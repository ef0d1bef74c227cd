"""A simulated caller on the phone: a provider's media stream into a phone bot, measured per turn.

Where :class:`~rtlayer.load.caller.Caller` is a client of a Realtime endpoint, a :class:`PhoneCaller` is
the telephony provider's side of a call into an app (a phone bot's media-stream endpoint), through
:class:`rtlayer.testing.phone.PhoneSimulator`: the provider's opening messages, the caller's speech in the
provider's encoding and chunk size at real-time pace with continuous silence, and the app's audio played in
real time with the provider's playback acknowledgements. It measures what a caller experiences:

- ``first_audio``: the end of the caller's voice -> the answer starts playing on the phone;
- ``turn``: the end of the caller's voice -> the answer has finished playing;
- ``answer_duration``: how long the answer played;
- ``barge_in_clear``: the caller starts talking over the answer -> the app's clear reached the provider
  (what a caller hears as "it stopped talking when I spoke").

All times are on the simulator's own 20 ms clock, so they are what the caller heard, to the tick.
Text turns cannot be said on a phone; a scenario with one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping

from ..testing.phone import Answer, PhoneSimulator
from .figures import Figures
from .scenario import CALLER_FORMAT, Scenario, ScenarioError, Turn

__all__ = ["PhoneCaller"]

_CONNECT_TIMEOUT_S = 15.0


class PhoneCaller:
    """Calls ``url`` as ``provider`` would and plays the scenario's turns in a loop until ``until``."""

    def __init__(
        self,
        provider: str,
        url: str,
        scenario: Scenario,
        figures: Figures,
        *,
        origin: float,
        rng: random.Random | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> None:
        if any(turn.speech is None for turn in scenario.turns):
            raise ScenarioError("a phone caller can only speak: every turn needs 'audio'")
        self._scenario = scenario
        self._figures = figures
        self._origin = origin
        self._rng = rng or random.Random(0)
        self._loop = asyncio.get_running_loop()
        self.phone = PhoneSimulator(provider, url, custom=custom, connect_timeout=_CONNECT_TIMEOUT_S)
        self._barged_at_ms: int | None = None
        self._barge_turn = ""
        self._watchers: set[asyncio.Task[None]] = set()

    async def run(self, until: float) -> None:
        figures, loop = self._figures, self._loop
        figures.count("sessions")
        started = loop.time()
        try:
            try:
                await self.phone.start()
            except Exception as exc:
                figures.error(f"connect_failed:{type(exc).__name__}", "connect", self._at())
                return
            figures.add("connect", "connect", (loop.time() - started) * 1000, self._at())
            figures.count("connected")
            while loop.time() < until and self.phone.closed_by is None:
                for turn in self._scenario.turns:
                    if loop.time() >= until or self.phone.closed_by is not None:
                        break
                    await self._play_turn(turn, until)
            if self.phone.closed_by == "app":
                figures.error("app_hung_up", "call", self._at())
        finally:
            for watcher in self._watchers:
                watcher.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.phone.hangup()

    async def _play_turn(self, turn: Turn, until: float) -> None:
        phone, figures = self.phone, self._figures
        assert turn.speech is not None
        figures.count("turns")
        clears_before = len(phone.clears)
        sent_ms = phone.say(turn.speech, CALLER_FORMAT.rate)
        voice_end_ms = sent_ms - (turn.speech_ms - turn.speech_end_ms)
        if self._barged_at_ms is not None:
            self._await_clear(clears_before)

        def answer() -> Answer | None:
            """The first answer that started once the caller's voice had ended (an app may answer part of
            a long sentence while the caller still speaks: that one is not this turn's answer)."""
            return next((a for a in phone.answers if a.started_ms >= voice_end_ms), None)

        def left_s() -> float:
            return max(0.0, until - self._loop.time())

        timeout_s = (sent_ms - phone.now_ms) / 1000 + self._scenario.answer_timeout_ms / 1000
        try:
            await phone.wait_for(lambda: answer() is not None, within=min(timeout_s, left_s()))
        except TimeoutError:
            if self._loop.time() < until:
                figures.error("no_answer", turn.name, self._at())
            else:
                figures.count("unfinished")
            return
        heard = answer()
        assert heard is not None
        figures.add("first_audio", turn.name, heard.started_ms - voice_end_ms, self._at())
        interrupt = turn.interrupt_after_ms
        try:
            if interrupt is not None:
                await phone.wait_for(
                    lambda: heard.played_ms >= interrupt or heard.ended_ms is not None, left_s()
                )
                if heard.ended_ms is None:
                    # The next turn's speech starts now, over the answer: the app should clear it.
                    self._barged_at_ms, self._barge_turn = phone.now_ms, turn.name
                    figures.count("barge_ins")
                    figures.count("answered")
                    return
            await phone.wait_for(lambda: heard.ended_ms is not None, left_s())
        except TimeoutError:
            figures.count("unfinished")
            return
        assert heard.ended_ms is not None
        figures.add("turn", turn.name, heard.ended_ms - voice_end_ms, self._at())
        figures.add("answer_duration", turn.name, heard.played_ms, self._at())
        figures.count("answered")
        pause_s = (turn.pause_ms + self._rng.uniform(0, self._scenario.pause_jitter_ms)) / 1000
        await asyncio.sleep(min(pause_s, left_s()))

    def _await_clear(self, clears_before: int) -> None:
        """Measures the barge-in once the app's clear arrives (in the background: the caller talks on)."""
        barged_at, turn = self._barged_at_ms, self._barge_turn
        self._barged_at_ms = None
        assert barged_at is not None

        async def watch() -> None:
            try:
                await self.phone.wait_for(lambda: len(self.phone.clears) > clears_before, within=5.0)
            except TimeoutError:
                self._figures.error("no_clear", turn, self._at())
                return
            clear = self.phone.clears[clears_before]
            self._figures.add("barge_in_clear", turn, clear.at_ms - barged_at, self._at())

        task = self._loop.create_task(watch())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    def _at(self) -> float:
        return self._loop.time() - self._origin
