"""WebSocket transport: client CPU per received audio delta and per sent 20 ms frame, against the anchors.

Receive: a local ``websockets`` server (its own process, so its CPU is not counted) sends ``session.created``
then N ``response.output_audio.delta`` events (20 ms of 24 kHz PCM each, pre-encoded, compact JSON with
``type`` first as the service sends them). Each client counts CPU time (``time.process_time``) from connect
to the N-th decoded delta:

- ``bare``: ``websockets`` recv + ``json.loads`` + ``base64.b64decode``, the floor any client pays;
- ``openai``: ``AsyncOpenAI().realtime.connect()`` and ``await conn.recv()`` (a pydantic model per event);
- ``agents``: ``OpenAIRealtimeWebSocketModel`` with a listener counting ``RealtimeModelAudioEvent``;
- ``rtlayer``: ``WebSocketTransport`` delivering decoded audio as ``audio`` events, the app feeding a
  ``PlaybackTracker`` (``rtlayer+raw``: the same with a ``*`` listener, which forces the full JSON parse).

Send: a local server that only drains; per 20 ms frame, ``bare`` (``ws.send(json.dumps(...))`` with
``b64encode``), ``openai`` (``conn.input_audio_buffer.append``), ``agents`` (``send_event(RealtimeModelSendAudio)``)
and ``rtlayer`` ``send_audio`` with the app's PCM at 24 kHz (no conversion) and 16 kHz (resampled natively).

``python -m pytest bench/test_transport_ws.py -s`` runs a smoke size (2,000 events); ``python
bench/test_transport_ws.py`` (or ``RTLAYER_BENCH_FULL=1``) runs 20,000 and prints the table for
``bench/README.md``. Ratios are to ``bare`` in the same run; the minimum of ``ROUNDS`` rounds is kept,
the clients taking turns in a rotating order (``interleaved``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FULL = os.environ.get("RTLAYER_BENCH_FULL") == "1"
ROUNDS = 5 if FULL or __name__ == "__main__" else 1  # the smoke run checks the machinery, not the figures
FRAME_BYTES = 960  # 20 ms of 24 kHz PCM16
PCM = bytes((i * 37) & 0xFF for i in range(FRAME_BYTES))
SESSION_CREATED = json.dumps(
    json.loads((ROOT / "tests" / "data" / "protocol" / "sample-events.json").read_text())["server"][
        "connect"
    ][0],
    separators=(",", ":"),
)


def delta_frame(i: int) -> str:
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": f"event_{i:021d}",
            "response_id": "resp_CApQyRFaW3rDiwDCD8OLM",
            "item_id": "item_CApQyRFaW3rDiwDCD8OLN",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(PCM).decode(),
        },
        separators=(",", ":"),
    )


def transcript_frame(i: int) -> str:
    """What a SIP call's control socket carries instead of audio: the answer's transcript, word by word."""
    return json.dumps(
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": f"event_CApQyRFaW3rDiwDCD8{i:06d}",
            "response_id": "resp_CApQyRFaW3rDiwDCD8OLM",
            "item_id": "item_CApQyRFaW3rDiwDCD8OLN",
            "output_index": 0,
            "content_index": 0,
            "delta": " word",
        },
        separators=(",", ":"),
    )


#: peer modes: "blast" sends audio deltas, "transcripts" transcript deltas, "drain" only reads
SENDING_MODES = {"blast": delta_frame, "transcripts": transcript_frame}


# -- the peer process ----------------------------------------------------------------------------------


def _peer_main(conn: Connection, mode: str, count: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    frames = [SENDING_MODES[mode](i) for i in range(count)] if mode in SENDING_MODES else []

    async def blast(ws: ServerConnection) -> None:
        await ws.send(SESSION_CREATED)
        for frame in frames:
            await ws.send(frame)
        async for _ in ws:  # keep the connection until the client leaves
            pass

    async def drain(ws: ServerConnection) -> None:
        await ws.send(SESSION_CREATED)
        async for _ in ws:
            pass

    async def main() -> None:
        async with serve(
            blast if mode in SENDING_MODES else drain, "127.0.0.1", 0, compression=None, max_size=None
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            conn.send(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime")
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


class Peer:
    def __init__(self, mode: str, count: int) -> None:
        ctx = mp.get_context("spawn")
        self.parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_peer_main, args=(child, mode, count), daemon=True)

    def __enter__(self) -> str:
        self.proc.start()
        if not self.parent.poll(30):
            raise RuntimeError("bench peer did not start")
        url: str = self.parent.recv()
        return url

    def __exit__(self, *exc: object) -> None:
        self.parent.send("stop")
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# -- receive clients -----------------------------------------------------------------------------------


async def recv_bare(url: str, n: int) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, max_size=None) as ws:
        got = 0
        while got < n:
            event = json.loads(await ws.recv())
            if event["type"] == "response.output_audio.delta":
                base64.b64decode(event["delta"])
                got += 1


async def recv_openai(url: str, n: int) -> None:
    from openai import AsyncOpenAI

    base = url.split("/realtime")[0]
    client = AsyncOpenAI(api_key="x", websocket_base_url=base)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        got = 0
        while got < n:
            event = await conn.recv()
            if event.type == "response.output_audio.delta":
                base64.b64decode(event.delta)
                got += 1


async def recv_agents(url: str, n: int, model: Any = None) -> None:
    """The agents SDK's model listener; ``model`` is any ``RealtimeModel`` (default: the SDK's own)."""
    from agents.realtime.model import RealtimeModelListener
    from agents.realtime.model_events import RealtimeModelAudioEvent, RealtimeModelEvent
    from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel

    done = asyncio.Event()

    class Counter(RealtimeModelListener):
        got = 0

        async def on_event(self, event: RealtimeModelEvent) -> None:
            if isinstance(event, RealtimeModelAudioEvent):
                self.got += 1
                if self.got >= n:
                    done.set()

    model = OpenAIRealtimeWebSocketModel() if model is None else model
    model.add_listener(Counter())
    await model.connect({"url": url, "api_key": "x", "initial_model_settings": {}})
    await done.wait()
    await model.close()


async def recv_agents_session(url: str, n: int, model: Any = None) -> None:
    """The agents SDK's session iterator over ``model`` (default: the SDK's own)."""
    from agents.realtime import RealtimeAgent, RealtimeRunner
    from agents.realtime.events import RealtimeAudio

    runner = RealtimeRunner(RealtimeAgent(name="bench", instructions="-"), model=model)
    session = await runner.run(model_config={"url": url, "api_key": "x"})
    got = 0
    async with session:
        async for event in session:
            if isinstance(event, RealtimeAudio):
                got += 1
                if got >= n:
                    break


async def receive_audio_events(transport_name: str, url: str, n: int, raw: bool) -> None:
    """One rtlayer transport (by its name in ``rtlayer.transports``) receiving ``n`` decoded ``audio``
    events with playback tracking; ``raw`` adds a ``*`` listener (the full parse of every event).
    Shared with ``bench/test_fetch_upgrade.py`` so both transports are measured by the same client."""
    from rtlayer import transports
    from rtlayer.audio import PlaybackTracker
    from rtlayer.transport import AudioEvent

    tracker = PlaybackTracker()
    transport_cls = getattr(transports, transport_name)
    transport = transport_cls(url=url, playback_tracker=tracker, reconnect=False, ping_interval=None)
    done = asyncio.Event()
    got = 0

    def on_audio(event: AudioEvent) -> None:
        nonlocal got
        tracker.on_play_bytes(event.item_id, event.content_index, event.data)  # what a player would report
        got += 1
        if got >= n:
            done.set()

    transport.on("audio", on_audio)
    if raw:
        transport.on("*", lambda event: None)
    await transport.connect()
    await done.wait()
    await transport.close()


async def recv_rtlayer(url: str, n: int) -> None:
    await receive_audio_events("WebSocketTransport", url, n, raw=False)


async def recv_rtlayer_raw(url: str, n: int) -> None:
    await receive_audio_events("WebSocketTransport", url, n, raw=True)


# -- send clients --------------------------------------------------------------------------------------


async def send_bare(url: str, n: int) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None) as ws:
        for _ in range(n):
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(PCM).decode()})
            )


async def send_openai(url: str, n: int) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="x", websocket_base_url=url.split("/realtime")[0])
    async with client.realtime.connect(model="gpt-realtime") as conn:
        for _ in range(n):
            await conn.input_audio_buffer.append(audio=base64.b64encode(PCM).decode())


async def send_agents(url: str, n: int) -> None:
    from agents.realtime.model_inputs import RealtimeModelSendAudio
    from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel

    model = OpenAIRealtimeWebSocketModel()
    await model.connect({"url": url, "api_key": "x", "initial_model_settings": {}})
    for _ in range(n):
        await model.send_event(RealtimeModelSendAudio(audio=PCM, commit=False))
    await model.close()


def _send_rtlayer(rate: int) -> Callable[[str, int], Awaitable[None]]:
    async def send(url: str, n: int) -> None:
        from rtlayer.audio import AudioFormat
        from rtlayer.transports import WebSocketTransport

        pcm = PCM[: rate * 2 * 20 // 1000] if rate <= 24000 else PCM * (rate // 24000)
        transport = WebSocketTransport(
            url=url, input_format=AudioFormat("pcm16", rate), reconnect=False, ping_interval=None
        )
        await transport.connect()
        for _ in range(n):
            await transport.send_audio(pcm)
        await transport.close()

    return send


# -- measurement ---------------------------------------------------------------------------------------


def one_round_us(mode: str, client: Callable[[str, int], Awaitable[None]], n: int) -> float:
    """One client's CPU per event (us) for one run of ``n`` events against a fresh peer."""
    with Peer(mode, n if mode in SENDING_MODES else 0) as url:
        start = time.process_time()
        asyncio.run(asyncio.wait_for(client(url, n), 120))
        return (time.process_time() - start) / n * 1e6


def cpu_per_event_us(mode: str, client: Callable[[str, int], Awaitable[None]], n: int) -> float:
    """The minimum over ``ROUNDS`` rounds of one client (see ``interleaved`` for a fair comparison)."""
    return min(one_round_us(mode, client, n) for _ in range(ROUNDS))


def interleaved(
    mode: str, table: dict[str, Callable[[str, int], Awaitable[None]]], n: int
) -> dict[str, float]:
    """Each client's minimum over ``ROUNDS`` rounds, the clients taking turns and the order rotating each
    round: a machine whose load drifts, or a position in the order that costs more (measured: up to 8 %
    for the client run right after another), then weighs on every client alike."""
    names = list(table)
    best = dict.fromkeys(names, float("inf"))
    for r in range(ROUNDS):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            best[name] = min(best[name], one_round_us(mode, table[name], n))
    return best


RECEIVE: dict[str, Callable[[str, int], Awaitable[None]]] = {
    "bare": recv_bare,
    "openai": recv_openai,
    "agents": recv_agents,
    "agents session": recv_agents_session,
    "rtlayer": recv_rtlayer,
    "rtlayer+raw": recv_rtlayer_raw,
}
SEND = {
    "bare": send_bare,
    "openai": send_openai,
    "agents": send_agents,
    "rtlayer 24k": _send_rtlayer(24000),
    "rtlayer 16k->24k": _send_rtlayer(16000),
}


def _warm_imports() -> None:
    """Import every client's modules before timing (else the first round pays for the imports)."""
    import agents.realtime
    import agents.realtime.openai_realtime
    import openai
    import websockets.asyncio.client

    import rtlayer.transports

    _ = (
        agents.realtime,
        agents.realtime.openai_realtime,
        openai,
        websockets.asyncio.client,
        rtlayer.transports,
    )


def measure(table: dict[str, Callable[[str, int], Awaitable[None]]], mode: str, n: int) -> dict[str, float]:
    _warm_imports()
    return interleaved(mode, table, n)


def report(title: str, figures: dict[str, float]) -> str:
    bare = figures["bare"]
    lines = [f"{title}", "| client | CPU per event (us) | vs bare |", "|---|---|---|"]
    lines += [f"| {name} | {us:.1f} | {us / bare:.2f}x |" for name, us in figures.items()]
    return "\n".join(lines)


def test_receive_path(benchmark: Any) -> None:
    n = 20_000 if FULL else 2_000
    figures = benchmark.pedantic(measure, args=(RECEIVE, "blast", n), rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 2) for k, v in figures.items()})
    print("\n" + report(f"receive, {n} audio deltas", figures))
    assert all(v > 0 for v in figures.values())


def test_send_path(benchmark: Any) -> None:
    n = 20_000 if FULL else 2_000
    figures = benchmark.pedantic(measure, args=(SEND, "drain", n), rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 2) for k, v in figures.items()})
    print("\n" + report(f"send, {n} frames of 20 ms", figures))
    assert all(v > 0 for v in figures.values())


if __name__ == "__main__":
    count = 20_000
    print(report(f"receive, {count} audio deltas", measure(RECEIVE, "blast", count)))
    print(report(f"send, {count} frames of 20 ms", measure(SEND, "drain", count)))
    _ = pytest
