"""CPU of the sans-I/O ServerSession per stream-second: the share of the server that is not sockets.

Run: ``pytest bench/test_server_session_core.py --benchmark-only -q -s``. One round is a full audio turn
(joke_24k.wav + 600 ms of silence as 20 ms ``input_audio_buffer.append`` frames, server VAD, commit) and the echo
answer (100 ms audio parts), every server event encoded with ``rtlayer.protocol.codec``. The anchor, timed in the
same run, is the least any server must do with the same input: ``json.loads`` and base64-decode each frame.
``extra_info`` records ms of CPU per stream-second and the ratio to the anchor.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import wave
from pathlib import Path
from typing import Any

from rtlayer.protocol import codec
from rtlayer.server.core.session import ServerSession
from rtlayer.server.responders import EchoResponder

DATA = Path(__file__).parent.parent / "tests" / "data"


def _frames() -> tuple[list[str], float]:
    with wave.open(str(DATA / "joke_24k.wav"), "rb") as f:
        pcm = f.readframes(f.getnframes()) + bytes(48 * 600)
    frames = [
        codec.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + 960]).decode()}
        )
        for i in range(0, len(pcm), 960)
    ]
    return frames, len(pcm) / 48000


FRAMES, TURN_S = _frames()
RESPONDER = EchoResponder()


async def _turn(session: ServerSession) -> int:
    sent = 0
    for frame in FRAMES:
        session.receive_text(frame, 1.0)
        for event in session.events_to_send():
            codec.dumps(event)
            sent += 1
    for job in session.response_jobs():
        async for part in RESPONDER.respond(job.request):
            session.response_part(job.response_id, part, 1.0)
            for event in session.events_to_send():
                codec.dumps(event)
                sent += 1
        session.response_finished(job.response_id, 1.0)
    for event in session.events_to_send():
        codec.dumps(event)
        sent += 1
    return sent


def _anchor() -> None:
    for frame in FRAMES:
        base64.b64decode(json.loads(frame)["audio"])


def test_session_turn(benchmark: Any) -> None:
    session = ServerSession(RESPONDER, now=0.0)
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_turn(session)) > 20  # a whole turn and answer happened
        rounds = 30
        start = time.process_time()
        for _ in range(rounds):
            loop.run_until_complete(_turn(session))
        per_turn = (time.process_time() - start) / rounds
        start = time.process_time()
        for _ in range(rounds):
            _anchor()
        anchor = (time.process_time() - start) / rounds
        ms_per_stream_s = per_turn / TURN_S * 1000
        benchmark.extra_info["cpu_ms_per_stream_second"] = round(ms_per_stream_s, 3)
        benchmark.extra_info["ratio_to_parse_and_decode"] = round(per_turn / anchor, 1)
        print(
            f"\nServerSession: {ms_per_stream_s:.2f} ms CPU per stream-second "
            f"({per_turn / anchor:.1f}x bare json.loads + base64 of the same frames)",
            file=sys.stderr,
        )
        benchmark.pedantic(lambda: loop.run_until_complete(_turn(session)), rounds=10, iterations=1)
    finally:
        loop.close()
