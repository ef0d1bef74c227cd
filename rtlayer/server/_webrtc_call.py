"""One WebRTC call of the embedded server: peer connection + session runner + their plumbing.

Lifecycle (one direction only; every path ends in ``hangup``)::

    created --attach_media/start--> live --hangup()/ICE failed/closed/runner closed/deadline--> ended

``hangup`` is idempotent and safe from any of those paths: it closes the runner (which stops its
response tasks and detaches sinks), stops our track and the receive task, closes the peer
connection, and tells the front to forget the call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Coroutine

from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

import rtlayer_native
from rtlayer._rtc_audio import FRAME_MS, RTC_RATE, PacedAudioTrack, frame_pcm16
from rtlayer.exceptions import RequestRefused
from rtlayer.server.runner import SessionRunner

__all__ = ["InputStats", "WebRTCCall"]

logger = logging.getLogger("rtlayer.server.webrtc")

DATA_CHANNEL_LABEL = "oai-events"


class InputStats:
    """What the server heard from the caller: frames, duration and energy (for levels)."""

    __slots__ = ("energy", "frames", "loud_frames", "samples")

    LOUD_DBFS = -50.0

    def __init__(self) -> None:
        self.frames = 0
        self.samples = 0
        self.energy = 0.0
        self.loud_frames = 0

    def add(self, mono_pcm16: bytes) -> None:
        n = len(mono_pcm16) // 2
        level = rtlayer_native.rms(mono_pcm16)
        self.frames += 1
        self.samples += n
        self.energy += level * level * n
        if n and rtlayer_native.rms_dbfs(mono_pcm16) > self.LOUD_DBFS:
            self.loud_frames += 1

    @property
    def duration_ms(self) -> float:
        return self.samples / 48.0

    @property
    def loud_ms(self) -> float:
        return self.loud_frames * float(FRAME_MS)

    @property
    def rms(self) -> float:
        return (self.energy / self.samples) ** 0.5 if self.samples else 0.0


class WebRTCCall:
    """A call registered under ``rtc_...``: satisfies ``rtlayer.server.state.Call``."""

    def __init__(
        self, call_id: str, pc: RTCPeerConnection, runner: SessionRunner, max_queued_bytes: int
    ) -> None:
        """``max_queued_bytes``: events held for a data channel not open yet (oldest dropped past it), and
        what the channel may have waiting to be sent before the caller counts as not reading (hung up)."""
        self._id = call_id
        self.pc = pc
        self._runner = runner
        self.track = PacedAudioTrack(runner.pull_media_audio)
        self.input = InputStats()
        self.channel: RTCDataChannel | None = None
        self.ended = False
        self.events_dropped = 0
        self.frames_ignored = 0
        self._pending: collections.deque[str] = collections.deque()
        self._pending_bytes = 0
        self._max_queued = max_queued_bytes
        self._cut_off = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended_callbacks: list[Callable[[WebRTCCall], None]] = []
        self._deadline: asyncio.TimerHandle | None = None
        self._hangup_task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self._id

    @property
    def runner(self) -> SessionRunner | None:
        return self._runner

    def on_ended(self, callback: Callable[[WebRTCCall], None]) -> None:
        self._ended_callbacks.append(callback)

    # -- set-up -----------------------------------------------------------------------------------

    def attach_media(self) -> None:
        """Wire tracks, data channel and state changes; call after the remote offer is set."""
        pc = self.pc
        audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
        if audio:
            # Answer the offered audio section with our track (aiortc reuses its transceiver); an
            # offer without audio is a text-only call: adding a track would add an unoffered section.
            pc.addTrack(self.track)
        for transceiver in audio:
            self._spawn(self._receive_audio(transceiver.receiver.track))
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)
        self._runner.add_sink(self._sink)
        self._runner.on_close(lambda _runner: self._schedule_hangup())

    def start(self, connect_deadline_s: float) -> None:
        """Flush ``session.created`` (queued until the data channel opens) and arm the ICE deadline."""
        self._runner.start()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(connect_deadline_s, self._on_deadline)

    # -- events out -------------------------------------------------------------------------------

    def _sink(self, text: str) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open" and not self._pending:
            if self._cut_off or channel.bufferedAmount + len(text) > self._max_queued:
                # The caller's data channel does not drain: a reader this far behind is cut off.
                self.events_dropped += 1
                self._runner.count_dropped(1, len(text), cut_off=not self._cut_off)
                if not self._cut_off:
                    self._cut_off = True
                    logger.warning(
                        "call %s: data channel %d bytes behind, hanging up", self._id, self._max_queued
                    )
                    self._schedule_hangup()
                return
            channel.send(text)
            return
        self._pending.append(text)
        self._pending_bytes += len(text)
        while self._pending_bytes > self._max_queued and self._pending:
            dropped = self._pending.popleft()
            self._pending_bytes -= len(dropped)
            self.events_dropped += 1
            self._runner.count_dropped(1, len(dropped))

    def _flush(self) -> None:
        channel = self.channel
        while self._pending and channel is not None and channel.readyState == "open":
            text = self._pending.popleft()
            self._pending_bytes -= len(text)
            channel.send(text)

    # -- events in --------------------------------------------------------------------------------

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != DATA_CHANNEL_LABEL:
            logger.info("call %s: ignoring data channel %r", self._id, channel.label)
            return
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("open", self._flush)
        self._flush()

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self._runner.receive_text(message)
        else:
            self._runner.refuse(
                RequestRefused(
                    "invalid_message",
                    f"binary data channel messages are not supported ({len(message)} bytes): send JSON text",
                )
            )

    async def _receive_audio(self, track: MediaStreamTrack) -> None:
        """Caller's audio: 48 kHz frames (stereo from Opus) -> mono PCM16 48 kHz -> the session."""
        runner = self._runner
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, AudioFrame) or frame.sample_rate != RTC_RATE:
                self.frames_ignored += 1  # aiortc decodes Opus at 48 kHz; only G.711 would differ
                continue
            pcm = frame_pcm16(frame)
            mono = rtlayer_native.stereo_to_mono(pcm) if frame.layout.nb_channels == 2 else bytes(pcm)
            self.input.add(mono)
            runner.receive_media_audio(mono)

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        elif state in ("failed", "closed"):
            self._schedule_hangup()

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.pc.connectionState != "connected":
            logger.info("call %s: ICE did not connect in time, hanging up", self._id)
            self._schedule_hangup()

    # -- ending -----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule_hangup(self) -> None:
        if not self.ended and self._hangup_task is None:
            self._hangup_task = asyncio.get_running_loop().create_task(self.hangup())

    async def hangup(self) -> None:
        """End the call: runner, track, receive task, peer connection. Idempotent."""
        if self.ended:
            return
        self.ended = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._runner.close()
        self.track.stop()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()
        callbacks, self._ended_callbacks = self._ended_callbacks, []
        for callback in callbacks:
            callback(self)
