"""WebRTC: time to the first answer frame, CPU of a two-way call, and the received-frame path vs PyAV.

1. ``test_connect_to_first_answer_audio``: from ``connect()`` to the first answer frame in the app's
   hands (an ``audio`` event), against an embedded server whose responder answers at once with a
   tone (the app sends a text message right after ``connect``). Loopback, one process, one loop.
   Anchor, in the same run: a bare aiortc pair (offer/answer in memory) to its first received frame.
2. ``test_two_way_call_cpu``: one call with audio both ways (the app streams speech on its track,
   the server plays a long answer); CPU seconds per second of call of the client (this process)
   and of the server (its own process, ``/proc/PID/stat``), and the same for a bare aiortc pair
   (one peer per process, the same audio both ways, received frames drained: Opus, SRTP and pacing
   only) as the anchor.
3. ``test_frame_path_vs_pyav``: one received frame (48 kHz stereo s16, as aiortc decodes Opus) to
   the app's PCM16 24 kHz mono: rtlayer_native downmix + resample vs PyAV's ``AudioResampler`` per
   frame (pipecat SmallWebRTC's approach), both streaming over the same frames.

``python -m pytest bench/test_webrtc.py`` runs short versions (CI: ``--benchmark-disable``);
``RTLAYER_BENCH_FULL=1`` runs the longer ones behind the figures in ``bench/README.md``.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
import timeit
import wave
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack  # noqa: E402

import rtlayer_native  # noqa: E402
from rtlayer._ice import host_policy  # noqa: E402
from rtlayer._rtc_audio import FrameDownmixer  # noqa: E402
from rtlayer.audio import PCM16_24K  # noqa: E402

FULL = bool(os.environ.get("RTLAYER_BENCH_FULL"))
LATENCY_ROUNDS = 20 if FULL else 5
CPU_SECONDS = 10.0 if FULL else 3.0


def _tone(ms: int, amplitude: float = 0.3) -> bytes:
    t = np.arange(24 * ms) / 24000
    return (np.sin(2 * math.pi * 440 * t) * amplitude * 32767).astype("<i2").tobytes()


def _speech_24k() -> bytes:
    with wave.open(str(ROOT / "tests" / "data" / "hello_24k.wav"), "rb") as wav:
        return wav.readframes(wav.getnframes())


class _ToneNow:
    """Answers every response at once with ``ms`` of a tone (no model time: the figure is the transport's)."""

    def __init__(self, ms: int) -> None:
        self.pcm = _tone(ms)

    async def respond(self, request: Any) -> AsyncIterator[Any]:
        from rtlayer.server.responders import AudioPart

        for offset in range(0, len(self.pcm), 4800):
            yield AudioPart(self.pcm[offset : offset + 4800])


# -- 1. connect -> first answer frame ----------------------------------------------------------------


async def _bare_pair_first_frame() -> float:
    """A bare aiortc pair on loopback: seconds from creating the peers to the first received frame."""
    start = time.perf_counter()
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    got: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    readers: list[asyncio.Task[None]] = []

    def on_track(track: MediaStreamTrack) -> None:
        async def first() -> None:
            await track.recv()
            if not got.done():
                got.set_result(time.perf_counter() - start)

        readers.append(asyncio.ensure_future(first()))

    b.on("track", on_track)
    a.addTrack(AudioStreamTrack())
    a.createDataChannel("oai-events")
    with host_policy("loopback_only"):
        await a.setLocalDescription(await a.createOffer())
        assert a.localDescription is not None
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
    assert b.localDescription is not None
    await a.setRemoteDescription(RTCSessionDescription(b.localDescription.sdp, "answer"))
    try:
        return await asyncio.wait_for(got, 10)
    finally:
        for task in readers:
            task.cancel()
        await a.close()
        await b.close()


async def _connect_to_first_audio(url: str) -> tuple[float, float]:
    """(connect seconds, seconds from connect() to the first answer frame in the app's hands)."""
    from rtlayer.transports.webrtc import WebRTCTransport

    transport = WebRTCTransport()
    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    transport.on("audio", lambda _e: None if first.done() else first.set_result(None))
    start = time.perf_counter()
    await transport.connect(url=url)
    connected = time.perf_counter() - start
    transport.send_message("hi")
    try:
        await asyncio.wait_for(first, 10)
        assert transport.first_audio_at is not None
        return connected, transport.first_audio_at - start
    finally:
        await transport.close()


async def _latency_run(rounds: int) -> dict[str, float]:
    from rtlayer.server.realtime_server import RealtimeServer

    bare = [await _bare_pair_first_frame() for _ in range(rounds)]
    async with RealtimeServer(responder=_ToneNow(300)) as server:
        await _connect_to_first_audio(server.url)  # warm-up (imports, first codec set-up)
        ours = [await _connect_to_first_audio(server.url) for _ in range(rounds)]
    first = [t for _, t in ours]
    return {
        "connect_ms_median": statistics.median(c for c, _ in ours) * 1000,
        "first_audio_ms_median": statistics.median(first) * 1000,
        "first_audio_ms_max": max(first) * 1000,
        "bare_pair_first_frame_ms_median": statistics.median(bare) * 1000,
        "ratio_vs_bare_pair": statistics.median(first) / statistics.median(bare),
    }


@pytest.mark.timeout(120)
def test_connect_to_first_answer_audio(benchmark: Any) -> None:
    figures = benchmark.pedantic(lambda: asyncio.run(_latency_run(LATENCY_ROUNDS)), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(
        f"\nconnect {figures['connect_ms_median']:.0f} ms; first answer frame in the app's hands "
        f"{figures['first_audio_ms_median']:.0f} ms median (max {figures['first_audio_ms_max']:.0f}); "
        f"bare aiortc pair first frame {figures['bare_pair_first_frame_ms_median']:.0f} ms; "
        f"ratio {figures['ratio_vs_bare_pair']:.2f}"
    )


# -- 2. CPU of a two-way call ------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _server_main(conn: Connection, cpu: int | None, answer_ms: int) -> None:
    _pin(cpu)
    sys.path.insert(0, str(ROOT))
    from rtlayer.server.realtime_server import RealtimeServer

    async def main() -> None:
        async with RealtimeServer(responder=_ToneNow(answer_ms)) as server:
            conn.send(server.url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"

    asyncio.run(main())


async def _client_call(url: str, seconds: float, server_pid: int) -> dict[str, float]:
    from rtlayer.transports.webrtc import WebRTCTransport

    transport = WebRTCTransport()
    received = [0]
    transport.on("audio", lambda e: received.__setitem__(0, received[0] + len(e.data)))
    # Manual turns: the app's speech is heard but never interrupts the answer.
    await transport.connect(url=url, initial_session_config={"audio": {"input": {"turn_detection": None}}})
    speech = _speech_24k()
    loops = math.ceil((seconds + 2) * 48000 / len(speech))
    await transport.send_audio(speech * loops)
    transport.send_message("talk to me")
    await asyncio.sleep(1.0)  # both directions flowing
    cpu0, srv0, wall0, got0 = time.process_time(), _cpu_seconds(server_pid), time.perf_counter(), received[0]
    await asyncio.sleep(seconds)
    cpu1, srv1, wall1, got1 = time.process_time(), _cpu_seconds(server_pid), time.perf_counter(), received[0]
    await transport.close()
    wall = wall1 - wall0
    return {
        "client_cpu_per_s": (cpu1 - cpu0) / wall,
        "server_cpu_per_s": (srv1 - srv0) / wall,
        "answer_audio_s_per_s": (got1 - got0) / 48000 / wall,
    }


class _LoopTrack(MediaStreamTrack):
    """A bare app's track: precomputed 20 ms 48 kHz mono frames, looped, paced like aiortc's own."""

    kind = "audio"

    def __init__(self, pcm48k: bytes) -> None:
        super().__init__()
        self.frames = []
        for offset in range(0, len(pcm48k) - 1919, 1920):
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(pcm48k[offset : offset + 1920])
            frame.sample_rate = 48000
            frame.time_base = fractions.Fraction(1, 48000)
            self.frames.append(frame)
        self.count = 0
        self.start = 0.0

    async def recv(self) -> av.AudioFrame:
        if self.count == 0:
            self.start = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self.start + self.count * 0.02 - time.monotonic()))
        frame = self.frames[self.count % len(self.frames)]
        frame.pts = self.count * 960
        self.count += 1
        return frame


def _bare_peer_main(conn: Connection, cpu: int | None, role: str) -> None:
    """One side of a bare aiortc call, signalled over the pipe: the same audio as the measured call
    (speech from the offerer, the 440 Hz tone from the answerer), received frames only drained."""
    _pin(cpu)
    source = _speech_24k() if role == "offer" else _tone(2000)

    async def main() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(_LoopTrack(rtlayer_native.Resampler(24000, 48000).process(source)))
        readers: list[asyncio.Task[None]] = []

        def on_track(track: MediaStreamTrack) -> None:
            async def drain() -> None:
                while True:
                    await track.recv()

            readers.append(asyncio.ensure_future(drain()))

        pc.on("track", on_track)
        loop = asyncio.get_running_loop()
        with host_policy("loopback_only"):
            if role == "offer":
                pc.createDataChannel("oai-events")
                await pc.setLocalDescription(await pc.createOffer())
                assert pc.localDescription is not None
                conn.send(pc.localDescription.sdp)
                answer = await loop.run_in_executor(None, conn.recv)
                await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            else:
                offer = await loop.run_in_executor(None, conn.recv)
                await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                assert pc.localDescription is not None
                conn.send(pc.localDescription.sdp)
        await loop.run_in_executor(None, conn.recv)  # "stop"
        for task in readers:
            task.cancel()
        await pc.close()

    asyncio.run(main())


def _bare_pair_cpu(seconds: float, cpus: list[int | None]) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    offer_end, offer_child = ctx.Pipe()
    answer_end, answer_child = ctx.Pipe()
    offerer = ctx.Process(target=_bare_peer_main, args=(offer_child, cpus[1], "offer"), daemon=True)
    answerer = ctx.Process(target=_bare_peer_main, args=(answer_child, cpus[0], "answer"), daemon=True)
    offerer.start()
    answerer.start()
    try:
        answer_end.send(offer_end.recv())
        offer_end.send(answer_end.recv())
        time.sleep(2.0)
        assert offerer.pid is not None and answerer.pid is not None
        a0, b0, w0 = _cpu_seconds(offerer.pid), _cpu_seconds(answerer.pid), time.perf_counter()
        time.sleep(seconds)
        a1, b1, w1 = _cpu_seconds(offerer.pid), _cpu_seconds(answerer.pid), time.perf_counter()
    finally:
        for end in (offer_end, answer_end):
            end.send("stop")
        for proc in (offerer, answerer):
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return {"bare_offerer_cpu_per_s": (a1 - a0) / (w1 - w0), "bare_answerer_cpu_per_s": (b1 - b0) / (w1 - w0)}


def two_way_cpu(seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    cpus: list[int | None] = list(sorted(os.sched_getaffinity(0)))
    if len(cpus) < 2:
        cpus = [None, None]
    parent, child = ctx.Pipe()
    answer_ms = int((seconds + 4) * 1000)
    server = ctx.Process(target=_server_main, args=(child, cpus[0], answer_ms), daemon=True)
    server.start()
    me = os.sched_getaffinity(0)
    try:
        if not parent.poll(30):
            raise RuntimeError("the server process did not start")
        url = parent.recv()
        _pin(cpus[1])
        assert server.pid is not None
        figures = asyncio.run(_client_call(url, seconds, server.pid))
    finally:
        os.sched_setaffinity(0, me)
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()
    figures.update(_bare_pair_cpu(seconds, cpus))
    figures["client_ratio_vs_bare"] = figures["client_cpu_per_s"] / figures["bare_offerer_cpu_per_s"]
    figures["server_ratio_vs_bare"] = figures["server_cpu_per_s"] / figures["bare_answerer_cpu_per_s"]
    return figures


@pytest.mark.timeout(120)
def test_two_way_call_cpu(benchmark: Any) -> None:
    figures = benchmark.pedantic(two_way_cpu, args=(CPU_SECONDS,), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    assert figures["answer_audio_s_per_s"] > 0.9  # the answer really flowed for the whole window
    print(
        f"\nper second of two-way call: client {figures['client_cpu_per_s'] * 1000:.1f} ms CPU "
        f"(bare aiortc {figures['bare_offerer_cpu_per_s'] * 1000:.1f}; x{figures['client_ratio_vs_bare']:.2f}), "
        f"server {figures['server_cpu_per_s'] * 1000:.1f} ms CPU "
        f"(bare aiortc {figures['bare_answerer_cpu_per_s'] * 1000:.1f}; x{figures['server_ratio_vs_bare']:.2f})"
    )


# -- 3. the received-frame path ----------------------------------------------------------------------


def _decoded_frames(count: int = 50) -> list[av.AudioFrame]:
    """What aiortc hands over after Opus: 20 ms, 48 kHz, stereo, packed s16 (here: speech)."""
    speech = rtlayer_native.Resampler(24000, 48000).process(_speech_24k())
    stereo = rtlayer_native.mono_to_stereo(speech)
    frames = []
    for i in range(count):
        chunk = stereo[i * 3840 : (i + 1) * 3840]
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(chunk)
        frame.sample_rate = 48000
        frames.append(frame)
    return frames


def _pyav_path(resampler: av.AudioResampler, frame: av.AudioFrame) -> bytes:
    out = b""
    for converted in resampler.resample(frame):
        out += bytes(memoryview(converted.planes[0])[: converted.samples * 2])
    return out


def test_frame_path_vs_pyav(benchmark: Any) -> None:
    frames = _decoded_frames()
    ours = FrameDownmixer(PCM16_24K)
    theirs = av.AudioResampler(format="s16", layout="mono", rate=24000)
    # Same output, so the comparison is like for like (PyAV's filter differs: levels, not samples).
    a = b"".join(ours.process(f) for f in frames)
    b = b"".join(_pyav_path(theirs, f) for f in frames)
    assert abs(len(a) - len(b)) <= 4 * 960 and abs(rtlayer_native.rms(a) - rtlayer_native.rms(b)) < 0.01

    def run_ours() -> None:
        for f in frames:
            ours.process(f)

    def run_theirs() -> None:
        for f in frames:
            _pyav_path(theirs, f)

    n = 20 if FULL else 5
    ours_s = min(timeit.repeat(run_ours, number=n, repeat=5)) / (n * len(frames))
    theirs_s = min(timeit.repeat(run_theirs, number=n, repeat=5)) / (n * len(frames))
    benchmark(run_ours)
    benchmark.extra_info.update(
        {
            "rtlayer_us_per_frame": ours_s * 1e6,
            "pyav_us_per_frame": theirs_s * 1e6,
            "speedup": theirs_s / ours_s,
        }
    )
    print(
        f"\nreceived frame -> PCM16 24 kHz mono: rtlayer_native {ours_s * 1e6:.1f} us, "
        f"PyAV AudioResampler {theirs_s * 1e6:.1f} us per 20 ms frame (x{theirs_s / ours_s:.1f})"
    )
