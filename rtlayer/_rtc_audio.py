"""Audio plumbing between aiortc frames and rtlayer's PCM, shared by the WebRTC transport and server.

WebRTC audio is Opus at 48 kHz in 20 ms frames. aiortc hands received audio over as ``av.AudioFrame``
objects (decoded Opus: packed s16, stereo, 960 samples) and asks an outgoing track for one frame
per ``recv()`` call, which the track must pace in real time itself. This module has the three
pieces both ends need, with every sample handled by ``rtlayer_native`` (never a Python loop):

- ``frame_pcm16``: the interleaved PCM16 bytes of a received frame, without copying the padding;
- ``FrameDownmixer``: received frames -> mono PCM16 in any ``AudioFormat`` (downmix + resample);
- ``PcmFrameQueue``: PCM at any rate -> exact 20 ms 48 kHz mono frames, bounded, drops counted;
- ``PacedAudioTrack``: an aiortc track that pulls one 20 ms frame per tick from a callable and
  sends silence when the callable has nothing (or the track is muted).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

import rtlayer_native
from rtlayer.audio import AudioConverter, AudioFormat

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "RTC_RATE",
    "FrameDownmixer",
    "PacedAudioTrack",
    "PcmFrameQueue",
    "frame_pcm16",
    "pcm16_frame",
]

RTC_RATE = 48000
FRAME_MS = 20
FRAME_SAMPLES = RTC_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
"""One 20 ms frame of mono PCM16 at 48 kHz: 1920 bytes."""

_TIME_BASE = fractions.Fraction(1, RTC_RATE)
_SILENCE = bytes(FRAME_BYTES)
_MAX_LATE_S = 0.2
"""A track more than this late (a stalled loop) restarts its clock instead of bursting frames."""


def frame_pcm16(frame: AudioFrame) -> memoryview:
    """The interleaved PCM16 samples of a packed s16 frame (a view; decoder buffers are padded)."""
    if frame.format.name != "s16":
        raise ValueError(f"expected packed s16 audio frames, got {frame.format.name}")
    # layout.nb_channels, not len(layout.channels): the latter builds channel objects (~1 us a frame).
    nbytes = frame.samples * frame.layout.nb_channels * 2
    return memoryview(frame.planes[0])[:nbytes]


def pcm16_frame(pcm16: bytes, pts: int, rate: int = RTC_RATE) -> AudioFrame:
    """A mono s16 ``AudioFrame`` holding ``pcm16`` (whole samples), stamped ``pts`` at ``1/rate``."""
    frame = AudioFrame(format="s16", layout="mono", samples=len(pcm16) // 2)
    frame.planes[0].update(pcm16)
    frame.pts = pts
    frame.sample_rate = rate
    frame.time_base = fractions.Fraction(1, rate)
    return frame


class FrameDownmixer:
    """Received frames (any rate, mono or stereo) -> mono PCM16 in ``dst``, streaming.

    Stereo is averaged to mono, then one ``AudioConverter`` (rtlayer_native's resampler, state
    carried across frames) takes it to ``dst``. A change of input rate (a renegotiated codec)
    starts a new converter.
    """

    def __init__(self, dst: AudioFormat, quality: str = "conversational") -> None:
        self.dst = dst
        self.quality = quality
        self._rate = 0
        self._converter: AudioConverter | None = None
        self.frames = 0

    @property
    def latency_ms(self) -> float:
        return self._converter.latency_ms if self._converter is not None else 0.0

    def process(self, frame: AudioFrame) -> bytes:
        pcm: bytes | memoryview = frame_pcm16(frame)
        channels = frame.layout.nb_channels
        if channels == 2:
            pcm = rtlayer_native.stereo_to_mono(pcm)
        elif channels != 1:
            raise ValueError(f"unsupported channel count {channels}")
        if frame.sample_rate != self._rate or self._converter is None:
            self._rate = frame.sample_rate
            self._converter = AudioConverter(AudioFormat("pcm16", self._rate), self.dst, self.quality)
        self.frames += 1
        return self._converter.convert(pcm)

    def reset(self) -> None:
        if self._converter is not None:
            self._converter.reset()


class PcmFrameQueue:
    """PCM16 mono at ``rate`` in, whole 20 ms 48 kHz frames out; at most ``max_ms`` held.

    ``push`` resamples (rtlayer_native ``Resampler``) and frames (``Framer``); ``pull`` returns
    the next frame, the zero-padded remainder when only a partial frame is left, or None.
    Past ``max_ms`` the oldest frames are dropped and counted in ``dropped_frames``.
    """

    def __init__(self, rate: int, *, max_ms: int = 60_000) -> None:
        self.rate = rate
        self._resampler = rtlayer_native.Resampler(rate, RTC_RATE) if rate != RTC_RATE else None
        self._framer = rtlayer_native.Framer(FRAME_BYTES, pad_last=True)
        self._frames: collections.deque[bytes] = collections.deque()
        self._max_frames = max(1, max_ms // FRAME_MS)
        self.dropped_frames = 0

    @property
    def buffered_ms(self) -> int:
        return len(self._frames) * FRAME_MS + (FRAME_MS if self._framer.pending else 0)

    def push(self, pcm16: bytes | bytearray | memoryview) -> None:
        data = self._resampler.process(pcm16) if self._resampler is not None else pcm16
        for frame in self._framer.push(data):
            if len(self._frames) >= self._max_frames:
                self._frames.popleft()
                self.dropped_frames += 1
            self._frames.append(frame)

    def pull(self, nbytes: int = FRAME_BYTES) -> bytes | None:
        if nbytes != FRAME_BYTES:
            raise ValueError(f"frames are {FRAME_BYTES} bytes, asked for {nbytes}")
        if self._frames:
            return self._frames.popleft()
        if self._framer.pending:
            return self._framer.flush()
        return None

    def clear(self) -> None:
        self._frames.clear()
        self._framer.reset()
        if self._resampler is not None:
            self._resampler.reset()


class PacedAudioTrack(MediaStreamTrack):
    """An outgoing audio track: one 20 ms 48 kHz mono frame per ``recv()``, paced in real time.

    ``source(nbytes)`` is called once per frame and returns that many bytes of PCM16 or None for
    silence. A muted track still sends frames (silence), so the RTP clock runs on, like a browser
    track with ``enabled = false``.
    """

    kind = "audio"

    def __init__(self, source: Callable[[int], bytes | None]) -> None:
        super().__init__()
        self._source = source
        self.muted = False
        self._start: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.audio_frames_sent = 0
        self.resyncs = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += FRAME_SAMPLES
            wait = self._start + self._pts / RTC_RATE - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -_MAX_LATE_S:
                self._start = loop.time() - self._pts / RTC_RATE
                self.resyncs += 1
            if self.readyState != "live":
                raise MediaStreamError
        data = self._source(FRAME_BYTES)
        if data is None or self.muted:
            data = _SILENCE
        else:
            self.audio_frames_sent += 1
            if len(data) != FRAME_BYTES:
                data = (bytes(data) + _SILENCE)[:FRAME_BYTES]
        self.frames_sent += 1
        return pcm16_frame(data, self._pts)
