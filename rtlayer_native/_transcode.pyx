"""Fused transcoders: G.711 8 kHz <-> PCM16 at any supported rate in one pass, and PCM16 rate to rate.

A G.711 decoder writes straight into the resampler's float history, and the resampler's rounded
output goes straight through the G.711 encoder table: no intermediate PCM16 buffer, one pass.
"""

from rtlayer_native._resample cimport CODEC_ALAW, CODEC_PCM16, CODEC_ULAW, Resampler

CODECS = ("pcm16", "pcmu", "pcma")
G711_RATE = 8000

cdef dict _CODEC_IDS = {"pcm16": CODEC_PCM16, "pcmu": CODEC_ULAW, "pcma": CODEC_ALAW}


cdef class Transcoder:
    """One direction of a call's audio: ``src_codec`` at ``src_rate`` -> ``dst_codec`` at ``dst_rate``.

    Codecs are ``"pcm16"``, ``"pcmu"`` (mu-law) and ``"pcma"`` (A-law); G.711 is always 8000 Hz,
    mono. State is carried across calls exactly as in :class:`Resampler`, and as there, calls on one
    object must not overlap: an overlapping call raises ``RuntimeError``, and so does any use of an
    object whose ``__init__`` did not run.
    """

    cdef Resampler _resampler
    cdef readonly str src_codec
    cdef readonly int src_rate
    cdef readonly str dst_codec
    cdef readonly int dst_rate
    cdef readonly str quality

    def __init__(
        self,
        str src_codec,
        int src_rate,
        str dst_codec,
        int dst_rate,
        str quality="conversational",
    ):
        for name, codec, rate in (("src", src_codec, src_rate), ("dst", dst_codec, dst_rate)):
            if codec not in _CODEC_IDS:
                raise ValueError(f"{name}_codec must be one of {CODECS}, got {codec!r}")
            if codec != "pcm16" and rate != G711_RATE:
                raise ValueError(f"{codec} is always {G711_RATE} Hz, got {name}_rate={rate}")
        cdef Resampler stream = Resampler(src_rate, dst_rate, 1, quality)
        stream.set_codecs(_CODEC_IDS[src_codec], _CODEC_IDS[dst_codec])
        stream.kind = "Transcoder"
        self._resampler = stream
        self.src_codec = src_codec
        self.src_rate = src_rate
        self.dst_codec = dst_codec
        self.dst_rate = dst_rate
        self.quality = quality

    def __repr__(self) -> str:
        return (
            f"Transcoder({self.src_codec!r}, {self.src_rate}, {self.dst_codec!r}, {self.dst_rate}, "
            f"quality={self.quality!r})"
        )

    cdef Resampler _stream(self):
        # A local reference: a concurrent __init__ may replace the attribute, never free what a call uses.
        cdef Resampler stream = self._resampler
        if stream is None:
            raise RuntimeError(
                "this Transcoder is not initialised: its __init__ did not run (a subclass's __init__ "
                "must call super().__init__())"
            )
        return stream

    @property
    def latency_ms(self) -> float:
        """The delay the resampling filter adds, in ms (0.0 when the rates are equal)."""
        return self._stream().latency_ms

    def process(self, data) -> bytes:
        """Transcode a chunk; returns every output sample it allows."""
        return self._stream().process_buffer(data)

    def flush(self) -> bytes:
        """Drain the filter tail; the object is then reset."""
        return self._stream().flush_buffer()

    def reset(self) -> None:
        """Forget all state."""
        self._stream().reset_stream()
