"""What keeps ``rtlayer load`` lean: one frame clock for every caller, and frames written to the socket at once.

Real loops and real sockets (the embedded server on 127.0.0.1); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

from rtlayer.load.clock import PHASES, FrameClock, TickListener
from rtlayer.load.scenario import CALLER_FORMAT, default_scenario
from rtlayer.load.transport import LoadWebSocketTransport
from rtlayer.server import RealtimeServer

Call = tuple[float, int, float]


def _recorder(calls: list[Call]) -> TickListener:
    def listener(now: float, frames: int, late_ms: float) -> None:
        calls.append((now, frames, late_ms))

    return listener


async def test_one_clock_calls_every_caller_once_a_frame_in_phases_5_ms_apart() -> None:
    clock = FrameClock(20)
    calls: list[list[Call]] = [[] for _ in range(2 * PHASES)]
    listeners = [_recorder(c) for c in calls]
    loop = asyncio.get_running_loop()
    started = loop.time()
    for listener in listeners:
        clock.add(listener)
    await asyncio.sleep(0.5)
    for listener in listeners:
        clock.remove(listener)
    elapsed = loop.time() - started
    assert clock.listeners == 0
    for made in calls:
        frames = sum(frames for _, frames, _ in made)
        assert abs(frames - elapsed / 0.020) <= 2, (frames, elapsed)  # every frame due, once
    # The first PHASES callers went to different phases: the slots of their first frames (when they were
    # called, less how late) are 5 ms apart on the 20 ms grid, however late the loop ran.
    slots = [made[0][0] - made[0][2] / 1000 for made in calls[:PHASES]]
    assert {round((slot - slots[0]) * 1000 / 5) % PHASES for slot in slots} == set(range(PHASES))


async def test_a_late_tick_makes_every_caller_catch_up_and_says_how_late() -> None:
    clock = FrameClock(20)
    calls: list[Call] = []
    listener = _recorder(calls)
    clock.add(listener)
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(0.1)
    time.sleep(0.12)  # noqa: ASYNC251 (the loop blocked on purpose: six frames fall due at once)
    await asyncio.sleep(0.1)
    clock.remove(listener)
    elapsed = asyncio.get_running_loop().time() - started
    catch_up = max(calls, key=lambda call: call[1])
    assert catch_up[1] >= 5 and catch_up[2] >= 80, catch_up
    # Every frame of the run was due once: none lost, none doubled.
    assert abs(sum(frames for _, frames, _ in calls) - elapsed / 0.020) <= 2


async def test_a_caller_that_raises_is_removed_and_the_others_go_on() -> None:
    clock = FrameClock(20)
    calls: list[Call] = []

    def broken(now: float, frames: int, late_ms: float) -> None:
        raise RuntimeError("a bug")

    clock.add(broken)
    clock.add(_recorder(calls))
    await asyncio.sleep(0.2)
    assert clock.listeners == 1
    assert len(calls) >= 5


async def test_prepared_frames_reach_the_server_as_appends_and_a_muted_caller_falls_back(
    server: RealtimeServer,
) -> None:
    speech = default_scenario().turns[0].speech
    assert speech is not None
    size = CALLER_FORMAT.bytes_for_ms(20)
    # The sentence, then 0.8 s of silence: a turn, as UTF-8 append JSON.
    pcm = speech + bytes(-len(speech) % size + 40 * size)
    frames = [
        json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + size]).decode()}
        ).encode()
        for i in range(0, len(pcm), size)
    ]
    transport = LoadWebSocketTransport(
        url=server.ws_url, api_key="test", input_format=CALLER_FORMAT, output_format=CALLER_FORMAT
    )
    assert not transport.send_prepared_nowait(frames[0])  # not connected: nothing sent
    stopped = asyncio.Event()
    transport.on("input_audio_buffer.speech_stopped", lambda event: stopped.set())
    async with transport:
        await transport.connect()
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        for frame in frames:
            assert transport.send_prepared_nowait(frame)
            next_at += 0.020
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        # The server's VAD heard the sentence end: the frames were appends of that audio.
        async with asyncio.timeout(5):
            await stopped.wait()
        transport.mute(True)  # a muted caller sends silence: only send_audio does that
        assert not transport.send_prepared_nowait(frames[0])
