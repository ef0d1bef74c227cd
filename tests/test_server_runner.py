"""``SessionRunner`` behaviour seen from a client: audio chunking and pacing, responder failures."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from helpers import EmittedEvents, eventually

from rtlayer.server import RealtimeServer, ServerLimits
from rtlayer.server.responders import AudioPart, ResponsePart, ResponseRequest, TextPart

pytestmark = pytest.mark.timeout(30)


class ToneResponder:
    """Answers every turn with one second of audio handed over in a single part."""

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        yield TextPart("one second of sound")
        yield AudioPart(b"\x00\x08" * 24000)


class FlakyResponder:
    """Fails in the middle of its first answer (a model that crashed), then answers normally."""

    def __init__(self) -> None:
        self.calls = 0

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        self.calls += 1
        yield TextPart("partial")
        if self.calls == 1:
            raise RuntimeError("the model crashed")
        yield TextPart(" and complete")


async def answer(
    server: RealtimeServer, modalities: list[str] | None = None
) -> list[tuple[float, dict[str, Any]]]:
    """One text turn on a fresh socket; every event with its arrival time, up to ``response.done``."""
    loop = asyncio.get_running_loop()
    seen: list[tuple[float, dict[str, Any]]] = []
    async with websockets.connect(
        server.ws_url + "?model=m", additional_headers={"Authorization": "Bearer x"}
    ) as ws:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        response = {"output_modalities": modalities} if modalities else {}
        await ws.send(json.dumps({"type": "response.create", "response": response}))
        async with asyncio.timeout(10):
            while not seen or seen[-1][1]["type"] != "response.done":
                seen.append((loop.time(), json.loads(await ws.recv())))
    return seen


@pytest.mark.parametrize("pacing", [0.0, 2.0])
async def test_answer_audio_is_cut_in_100_ms_deltas_and_paced(pacing: float) -> None:
    async with RealtimeServer(responder=ToneResponder(), audio_pacing=pacing) as server:
        seen = await answer(server)
    deltas = [(t, e) for t, e in seen if e["type"] == "response.output_audio.delta"]
    sizes = [len(base64.b64decode(e["delta"])) for _, e in deltas]
    assert sum(sizes) == 48000  # one second, nothing lost or added
    assert max(sizes) == 4800 and len(sizes) == 10  # 100 ms each
    span = deltas[-1][0] - deltas[0][0]
    if pacing:
        # At 2x real time the 900 ms from the first to the last delta take ~450 ms (less receive jitter).
        assert span >= 0.9 / pacing * 0.7, span


async def test_a_responder_failure_fails_that_response_and_the_session_goes_on() -> None:
    responder = FlakyResponder()
    async with RealtimeServer(responder=responder) as server:
        failed = (await answer(server, ["text"]))[-1][1]["response"]
        ok = (await answer(server, ["text"]))[-1][1]["response"]
    assert failed["status"] == "failed"
    assert "the model crashed" in json.dumps(failed["status_details"])
    assert ok["status"] == "completed"
    assert ok["output"][0]["content"][0]["text"] == "partial and complete"


async def test_an_expired_session_says_so_and_its_socket_closes() -> None:
    limits = ServerLimits(session_expiry_s=0.5)  # the service's 60 minutes, shortened
    async with (
        RealtimeServer(limits=limits) as server,
        websockets.connect(
            server.ws_url + "?model=m", additional_headers={"Authorization": "Bearer x"}
        ) as ws,
    ):
        created = json.loads(await ws.recv())
        assert created["session"]["expires_at"] - time.time() < 2
        async with asyncio.timeout(5):  # nothing is sent: the runner's timer must fire on its own
            expired = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosedOK):
                await ws.recv()
        assert expired["type"] == "error" and expired["error"]["code"] == "session_expired"
        assert not server.state.runners


class LongResponder:
    """Two minutes of audio in 100 ms parts: more than a client's socket buffers hold."""

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        for _ in range(1200):
            yield AudioPart(b"\x00\x04" * 2400)


async def test_a_client_that_stops_reading_is_cut_off_not_buffered_forever(
    server_events: EmittedEvents,
) -> None:
    limits = ServerLimits(max_queued_bytes=400_000)
    headers = {"Authorization": "Bearer x"}
    async with RealtimeServer(responder=LongResponder(), audio_pacing=0, limits=limits) as server:
        async with websockets.connect(
            server.ws_url + "?model=m", additional_headers=headers, max_queue=4
        ) as ws:
            await ws.send(json.dumps({"type": "response.create"}))
            # Never read: once the kernel buffers are full the server's queue for this socket grows...
            await eventually(lambda: server.state.counters.sinks_dropped == 1, within=15)
            async with asyncio.timeout(10):  # ...and past 400 kB the server drops it: 1008 if the close
                with pytest.raises(websockets.ConnectionClosed):  # frame got through, else aborted
                    while True:
                        await ws.recv()
            assert ws.close_code in (1008, 1006)
        await eventually(lambda: not server.state.runners)
        # The server itself is fine: a new session works.
        seen = await answer(server, ["text"])
        assert seen[-1][1]["response"]["status"] == "completed"
