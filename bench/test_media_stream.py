"""Media-stream bridge (issue 12): CPU per bridged call-second against pipecat's Twilio path, and the latency
the bridge adds, over real loopback sockets.

CPU (pytest-benchmark, ratio in one run): one call-second of a Twilio call, mu-law both ways, without the
sockets (the same for both):

- ``rtlayer`` (the bridge's work): 50 inbound ``media`` frames -> dialect -> input conditioning ->
  ``input_audio_buffer.append`` text (mu-law passthrough to an ``audio/pcmu`` session); 10 model deltas of
  100 ms (``response.output_audio.delta`` JSON, mu-law) -> ``ClientSession`` (decode, frame) -> pacing ->
  50 ``media`` frames + 50 ``mark`` frames; the 50 mark echoes parsed and turned into playback truth.
- ``pipecat`` (anchor; ``pipecat-ai``'s ``TwilioFrameSerializer`` with its resampler, its pipeline at
  24 kHz like the Realtime model's PCM): 50 ``deserialize`` (mu-law -> PCM 24 kHz) + the append JSON the
  OpenAI Realtime service needs; 10 model deltas (PCM 24 kHz) -> 50 ``OutputAudioRawFrame`` of 20 ms ->
  ``serialize`` (PCM 24 kHz -> mu-law 8 kHz). It sends no marks (its playback is a wall-clock guess).

Latency (real sockets, the bridge as an app runs it; a minimal model server in this process records when each
append arrives and sends deltas): provider frame in -> ``input_audio_buffer.append`` at the model, model
delta sent -> provider ``media`` frame received (pacing lead made large so pacing does not hold the frames),
and barge-in (model's ``speech_started``) -> provider ``clear``; p50/p99. Smoke size by default;
``RTLAYER_BENCH_FULL=1`` for the figures in bench/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import rtlayer_native

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from rtlayer.audio import PCMU  # noqa: E402
from rtlayer.client.session import ClientSession  # noqa: E402
from rtlayer.transports.media_stream import InboundAudio, OutboundAudio, dialect_for  # noqa: E402

FULL = bool(os.environ.get("RTLAYER_BENCH_FULL"))
FRAMES = 2000 if FULL else 100

_SPEECH = rtlayer_native.ulaw_encode(bytes(range(256)) * 63)[:8000]  # 1 s of mu-law, not silence
assert len(_SPEECH) == 8000
_PCM24 = rtlayer_native.Transcoder("pcmu", 8000, "pcm16", 24000).process(_SPEECH)


def _twilio_media(k: int) -> str:
    payload = base64.b64encode(_SPEECH[k * 160 : (k + 1) * 160]).decode()
    media = {"track": "inbound", "chunk": str(k + 1), "timestamp": str(k * 20), "payload": payload}
    return json.dumps({"event": "media", "sequenceNumber": str(k + 3), "media": media, "streamSid": "MZ1"})


INBOUND = [_twilio_media(k) for k in range(50)]
START = json.dumps({"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "customParameters": {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})  # fmt: skip


def _delta(audio: bytes, k: int) -> str:
    return json.dumps({"type": "response.output_audio.delta", "event_id": f"event_{k}", "response_id": "resp_1",
                       "item_id": "item_1", "output_index": 0, "content_index": 0,
                       "delta": base64.b64encode(audio).decode()})  # fmt: skip


DELTAS_PCMU = [_delta(_SPEECH[k * 800 : (k + 1) * 800], k) for k in range(10)]
DELTAS_PCM24 = [_delta(_PCM24[k * 4800 : (k + 1) * 4800], k) for k in range(10)]


class RtlayerCall:
    """The bridge's sans-I/O work for one call (what MediaStreamTransport runs around its sockets)."""

    def __init__(self) -> None:
        self.dialect = dialect_for("twilio")
        self.dialect.receive(START)
        self.inbound = InboundAudio(PCMU)
        self.outbound = OutboundAudio(20, lead_ms=1e9, max_ahead_ms=1e9)  # pacing is the shell's clock
        self.sent: list[str] = []
        self.session = ClientSession(input_format=PCMU, output_format=PCMU, output_frame_ms=20,
                                     emit=self._emit, send=lambda e: None)  # fmt: skip
        self.session.receive_event({"type": "session.updated", "session": {"audio": {
            "input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}}, 0.0)  # fmt: skip
        self.now = 0.0

    def _emit(self, name: str, payload: Any) -> None:
        if name == "audio":
            self.outbound.push(payload.data, payload.item_id, payload.content_index)

    def call_second(self) -> int:
        from rtlayer.protocol.codec import loads

        out = 0
        for text in INBOUND:
            for event in self.dialect.receive(text):
                for chunk in self.inbound.media(event.audio, event.timestamp_ms, self.now):  # type: ignore[union-attr]
                    self.sent.append(self.session.encode_audio(chunk))
        for text in DELTAS_PCMU:
            event = loads(text)
            self.session.receive_audio_delta(
                event["response_id"], event["item_id"], 0, event["delta"], self.now
            )
        marks = []
        for frame in self.outbound.pop_ready(self.now):
            self.sent.append(self.dialect.audio(frame.audio))  # type: ignore[arg-type]
            self.sent.append(self.dialect.bridge_mark(frame.mark))  # type: ignore[arg-type]
            marks.append(frame.mark)
            out += 1
        for name in marks:
            # what Twilio sends back (built cheaply: the provider's work, not the bridge's)
            echo = '{"event":"mark","sequenceNumber":"9","streamSid":"MZ1","mark":{"name":"' + name + '"}}'
            for ack in self.dialect.receive(echo):
                self.outbound.ack(ack.name)  # type: ignore[union-attr]
        self.sent.clear()
        return out


def test_cpu_per_call_second_rtlayer(benchmark: Any) -> None:
    call = RtlayerCall()
    benchmark.group = "media stream: one Twilio call-second (50 frames in, 50 out)"
    benchmark.extra_info.update({"role": "rtlayer", "target": 0.2, "items": 1, "item": "call-second"})
    assert benchmark(call.call_second) == 50


def test_cpu_per_call_second_pipecat_anchor(benchmark: Any) -> None:
    from pipecat.frames.frames import OutputAudioRawFrame
    from pipecat.serializers.twilio import TwilioFrameSerializer

    serializer = TwilioFrameSerializer(
        "MZ1", params=TwilioFrameSerializer.InputParams(sample_rate=24000, auto_hang_up=False)
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(serializer.setup(SimpleNamespace(audio_in_sample_rate=24000)))  # type: ignore[arg-type]

    async def call_second() -> int:
        out = 0
        for text in INBOUND:
            frame = await serializer.deserialize(text)
            if frame is not None:  # None while its resampler fills
                audio = base64.b64encode(frame.audio).decode()  # type: ignore[attr-defined]
                json.dumps({"type": "input_audio_buffer.append", "audio": audio})
        for text in DELTAS_PCM24:
            pcm = base64.b64decode(json.loads(text)["delta"])
            for i in range(0, len(pcm), 960):
                if await serializer.serialize(OutputAudioRawFrame(pcm[i : i + 960], 24000, 1)):
                    out += 1
        return out

    benchmark.group = "media stream: one Twilio call-second (50 frames in, 50 out)"
    benchmark.extra_info.update({"role": "anchor"})
    try:
        # its resampler returns output in bursts: some 20 ms frames give nothing, later ones more
        assert benchmark(lambda: loop.run_until_complete(call_second())) > 0
    finally:
        loop.close()


# -- latency over real sockets ---------------------------------------------------------------------------------


class ModelDouble:
    """Just enough of a Realtime server for the bridge's model transport; records when appends arrive."""

    def __init__(self) -> None:
        self.append_times: list[float] = []
        self.conn: Any = None
        self.ready = asyncio.Event()
        #: set once FRAMES appends arrived
        self.enough = asyncio.Event()

    async def handler(self, conn: Any) -> None:
        self.conn = conn
        session = {
            "type": "realtime",
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}},
                "output": {"format": {"type": "audio/pcmu"}},
            },
        }
        await conn.send(json.dumps({"type": "session.created", "event_id": "e0", "session": session}))
        async for message in conn:
            kind = json.loads(message).get("type")
            if kind == "input_audio_buffer.append":
                self.append_times.append(time.perf_counter())
                if len(self.append_times) >= FRAMES:
                    self.enough.set()
            elif kind == "session.update":
                await conn.send(json.dumps({"type": "session.updated", "event_id": "e1", "session": session}))
                self.ready.set()


async def _latencies() -> dict[str, list[float]]:
    from media_stream_helpers import websockets_bridge
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    model = ModelDouble()
    async with serve(model.handler, "127.0.0.1", 0) as server:
        model_url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/realtime"
        async with websockets_bridge(
            "twilio", model_url, lead_ms=60_000, max_ahead_ms=60_000, trailing_silence_ms=0
        ) as app:
            async with connect(app.url) as provider:
                await provider.send(json.dumps({"event": "connected"}))
                await provider.send(START)
                await asyncio.wait_for(model.ready.wait(), 10)
                await asyncio.sleep(0.1)
                # provider frame in -> append at the model
                sent_in: list[float] = []
                for k in range(FRAMES):
                    sent_in.append(time.perf_counter())
                    await provider.send(INBOUND[k % 50])
                    await asyncio.sleep(0.002)
                await asyncio.wait_for(model.enough.wait(), 10)
                inbound = [b - a for a, b in zip(sent_in, model.append_times[-FRAMES:], strict=True)]
                # model delta (20 ms) out -> provider media frame received
                outbound: list[float] = []
                for k in range(FRAMES):
                    delta = _delta(_SPEECH[(k % 50) * 160 : (k % 50 + 1) * 160], k)
                    t0 = time.perf_counter()
                    await model.conn.send(delta)
                    async with asyncio.timeout(5):
                        while True:
                            message = json.loads(await provider.recv())
                            if message.get("event") == "media":
                                outbound.append(time.perf_counter() - t0)
                                break
                # barge-in: speech_started while audio plays -> clear at the provider
                t0 = time.perf_counter()
                await model.conn.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.speech_started",
                            "event_id": "e9",
                            "audio_start_ms": 0,
                            "item_id": "item_u",
                        }
                    )
                )
                async with asyncio.timeout(5):
                    while json.loads(await provider.recv()).get("event") != "clear":
                        pass
                barge_in = [time.perf_counter() - t0]
    return {
        "provider frame -> append": inbound,
        "model delta -> provider frame": outbound,
        "barge-in -> clear": barge_in,
    }


def test_bridge_latency_both_directions_and_barge_in_to_clear() -> None:
    figures = asyncio.run(_latencies())
    for name, values in figures.items():
        ms = sorted(v * 1000 for v in values)
        p50 = statistics.median(ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"\nmedia stream latency, {name}: p50 {p50:.3f} ms, p99 {p99:.3f} ms ({len(ms)} samples)")
        assert all(v > 0 for v in ms)
