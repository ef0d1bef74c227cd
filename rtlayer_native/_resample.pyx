"""Streaming polyphase resampler for PCM16 (and, for the fused transcoder, G.711 in or out).

Design (why it is deterministic and low-delay):

- A linear-phase windowed-sinc prototype (Kaiser window) runs at ``L * in_rate``; it is split into
  ``L`` branches of ``K`` taps. Output ``n`` sits at prototype time ``n * M``: its branch is
  ``(n * M) % L`` and its newest input sample ``(n * M) // L``. Both are integers carried across
  calls, so the arithmetic for output ``n`` never depends on how the input was chunked: any
  chunking gives bit-identical output.
- The added delay is the prototype's group delay, ``(N - 1) / 2`` prototype samples. The transition
  band is placed around the lower rate's Nyquist frequency ``fn`` (conversational: 0.75..1.25 fn,
  82 dB; high: 0.90..1.10 fn, 110 dB), which gives about 1.25 ms (resp. 4.5 ms) at 8 kHz and less
  at higher rates.
- Samples are held as float32 and each output is a float32 sum over its taps, always in the same
  order (the kernels in _kernels.pxd: for small L and M, 8 to 64 outputs of one branch at a time in
  vector lanes; for the 44.1 kHz pairs, one output at a time with eight fixed partial sums), then
  rounded to nearest and saturated to int16.
- Filters are designed in C on first use for a (rates, quality) pair and cached for the process.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport M_PI, ceil, sin, sqrt
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t
from libc.string cimport memcpy, memmove, memset

from rtlayer_native._g711 cimport (
    alaw_decode_table,
    alaw_encode_table,
    ulaw_decode_table,
    ulaw_encode_table,
)

from rtlayer_native._kernels cimport (
    MAX_CONV_TAPS,
    rt_conv,
    rt_deinterleave,
    rt_dot,
    rt_emit,
)

# Pairs whose L and M are both at most this use the convolution form (rt_conv).
cdef enum:
    CONV_MAX_LM = 8
    # Samples of zeroed slack after the history: the last vector block may read past the end.
    SLACK = 40
    # A call with at least this many multiply-adds (a few microseconds) releases the GIL; a 20 ms
    # frame at the conversational quality (about 10,000) is done before a thread switch would pay.
    NOGIL_WORK = 20000
    MAX_STREAMS = 8

SUPPORTED_RATES = (8000, 16000, 24000, 44100, 48000)
QUALITIES = ("conversational", "high")
MAX_CHANNELS = 8

# (attenuation dB, pass edge / fn, stop edge / fn) per quality; fn = the lower rate's Nyquist.
cdef dict _QUALITY_SPECS = {
    # The widest transition that keeps >= 80 dB from 1.25 fn and -0.35 dB at 0.85 fn: fewest taps.
    "conversational": (82.0, 0.75, 1.25),
    "high": (110.0, 0.90, 1.10),
}
cdef dict _DESIGNS = {}


cdef int _gcd(int a, int b) noexcept nogil:
    cdef int t
    while b:
        t = a % b
        a = b
        b = t
    return a


cdef double _bessel_i0(double x) noexcept nogil:
    # Power series; converges fast for the window's arguments (x < 20).
    cdef double term = 1.0, total = 1.0, half = x / 2.0
    cdef int k = 1
    while term > 1e-17 * total:
        term *= (half / k) * (half / k)
        total += term
        k += 1
    return total


cdef tuple _design(int in_rate, int out_rate, str quality):
    """Design (or fetch) the prototype: returns (coef bytes, L, M, K, N)."""
    key = (in_rate, out_rate, quality)
    cached = _DESIGNS.get(key)
    if cached is not None:
        return cached
    cdef int g = _gcd(in_rate, out_rate)
    cdef int L = out_rate // g, M = in_rate // g
    atten, pass_rel, stop_rel = _QUALITY_SPECS[quality]
    cdef double fn = min(in_rate, out_rate) / 2.0
    cdef double fs_proto = <double>L * in_rate
    cdef double df = (stop_rel - pass_rel) * fn
    cdef double fc = (stop_rel + pass_rel) / 2.0 * fn / fs_proto   # cycles per prototype sample
    cdef double A = atten
    cdef double beta = 0.1102 * (A - 8.7)
    cdef int N = <int>ceil((A - 7.95) / (2.285 * 2.0 * M_PI * df / fs_proto)) + 1
    if N % 2 == 0:
        N += 1
    cdef int K0 = (N + L - 1) // L
    cdef int K = K0
    if K < (M + L - 1) // L + 1:
        K = (M + L - 1) // L + 1
    K = (K + 7) & ~7
    cdef double* h = <double*>PyMem_Malloc(N * sizeof(double))
    if h == NULL:
        raise MemoryError()
    cdef double centre = (N - 1) / 2.0, t, r, total = 0.0, i0b = _bessel_i0(beta)
    cdef int k, p, j, m
    coef = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>L * K * sizeof(float))
    cdef float* c = <float*>PyBytes_AS_STRING(coef)
    try:
        with nogil:
            for k in range(N):
                t = k - centre
                r = 2.0 * k / (N - 1) - 1.0
                h[k] = 2.0 * fc * (sin(2.0 * M_PI * fc * t) / (2.0 * M_PI * fc * t) if t != 0 else 1.0)
                h[k] *= _bessel_i0(beta * sqrt(1.0 - r * r if r * r < 1.0 else 0.0)) / i0b
                total += h[k]
            memset(c, 0, <size_t>L * K * sizeof(float))
            for p in range(L):
                # Branch p, tap m multiplies input (base - m); stored reversed so the dot product
                # walks the history forward. Unused leading slots stay zero.
                for m in range(K):
                    j = p + m * L
                    if j < N:
                        c[p * K + (K - 1 - m)] = <float>(h[j] * L / total)
    finally:
        PyMem_Free(h)
    result = (coef, L, M, K, N)
    _DESIGNS[key] = result
    return result


cdef class Resampler:
    """Streaming PCM16 resampler for 8000/16000/24000/44100/48000 Hz, any pair, 1-8 channels.

    ``process()`` returns every output sample the input so far allows, with state carried across
    calls (any chunking gives bit-identical output); ``flush()`` drains the filter tail and resets.
    ``latency_ms`` is the delay the filter adds, in ms.

    One object is one stream: calls on it must not overlap (each thread or session owns its own;
    different objects run in parallel, with the GIL released for calls of more than a few
    microseconds of work). A call that overlaps another on the same object, from another thread or
    re-entering, raises ``RuntimeError`` and changes nothing; so does any use of an object whose
    ``__init__`` did not run (``Resampler.__new__``, a subclass that skips ``super().__init__()``).
    """

    def __cinit__(self, *args, **kwargs):
        # The invariant every method relies on: hist is NULL until __init__ has set up the whole
        # geometry, and a call claims the object (busy) before it reads any of it.
        self.hist = NULL
        self.ybuf = NULL
        self.sbuf = NULL
        self.ycap = 0
        self.scap = 0
        self.busy = False
        self.kind = "Resampler"

    cdef int _claim(self, bint need_init) except -1:
        # Under the GIL, so the test and the set are one step: refusing (rather than serialising with
        # a lock) because two threads feeding one stream interleave its audio, a bug to report, not
        # to hide; the cost on the fast path is one flag.
        if self.busy:
            raise RuntimeError(
                f"this {self.kind} is in use by another call: one object is one stream, calls on it "
                "must not overlap (give each thread its own)"
            )
        if need_init and self.hist == NULL:
            raise RuntimeError(
                f"this {self.kind} is not initialised: its __init__ did not run (a subclass's "
                "__init__ must call super().__init__())"
            )
        self.busy = True
        return 0

    cdef int enter(self) except -1:
        """Claims an initialised object for one call; the caller clears ``busy`` when it is done."""
        return self._claim(True)

    def __init__(self, int in_rate, int out_rate, int channels=1, str quality="conversational"):
        if in_rate not in SUPPORTED_RATES:
            raise ValueError(f"unsupported input rate {in_rate}; supported: {SUPPORTED_RATES}")
        if out_rate not in SUPPORTED_RATES:
            raise ValueError(f"unsupported output rate {out_rate}; supported: {SUPPORTED_RATES}")
        if not 1 <= channels <= MAX_CHANNELS:
            raise ValueError(f"channels must be 1..{MAX_CHANNELS}, got {channels}")
        if quality not in _QUALITY_SPECS:
            raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
        # Re-initialising replaces the buffers a running call reads (and _design releases the GIL).
        self._claim(False)
        try:
            self._setup(in_rate, out_rate, channels, quality)
        finally:
            self.busy = False

    cdef int _setup(self, int in_rate, int out_rate, int channels, str quality) except -1:
        # Not initialised (hist NULL) until the new geometry is complete: a failure half-way leaves
        # an object that refuses calls, not one whose buffers no longer match its fields.
        PyMem_Free(self.hist)
        self.hist = NULL
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self.quality = quality
        self.in_codec = CODEC_PCM16
        self.out_codec = CODEC_PCM16
        self.identity = in_rate == out_rate
        if self.identity:
            self.L = self.M = self.K = self.N = self.K0 = 1
            self.latency_ms = 0.0
        else:
            coef, L, M, K, N = _design(in_rate, out_rate, quality)
            self.coef_owner = coef
            self.coef = <const float*>PyBytes_AS_STRING(coef)
            self.L = L
            self.M = M
            self.K = K
            self.N = N
            self.K0 = (N + L - 1) // L
            self.latency_ms = (N - 1) / 2.0 / (<double>L * in_rate) * 1000.0
        self.conv = self.L <= CONV_MAX_LM and self.M <= CONV_MAX_LM and self.K0 <= MAX_CONV_TAPS
        self.cap = self.K + 1024 + SLACK
        self.hist = <float*>PyMem_Malloc(self.cap * channels * sizeof(float))
        if self.hist == NULL:
            raise MemoryError()
        self.reset_state()
        return 0

    def __dealloc__(self):
        PyMem_Free(self.hist)
        PyMem_Free(self.ybuf)
        PyMem_Free(self.sbuf)

    def __repr__(self) -> str:
        return (
            f"Resampler({self.in_rate}, {self.out_rate}, channels={self.channels}, "
            f"quality={self.quality!r})"
        )

    cdef int set_codecs(self, int in_codec, int out_codec) except -1:
        self.in_codec = in_codec
        self.out_codec = out_codec
        self.dec_table = ulaw_decode_table() if in_codec == CODEC_ULAW else alaw_decode_table()
        self.enc_table = ulaw_encode_table() if out_codec == CODEC_ULAW else alaw_encode_table()
        return 0

    cdef void reset_state(self) noexcept:
        # K - 1 zeros of history before input sample 0.
        memset(self.hist, 0, self.cap * self.channels * sizeof(float))
        self.hist_len = self.K - 1
        self.hist_abs = -(self.K - 1)
        self.base_abs = 0
        self.phase = 0
        self.total_in = 0
        self.total_out = 0

    cdef int _reserve(self, Py_ssize_t extra, Py_ssize_t count) except -1:
        """Make room for `extra` more input frames and `count` outputs (called with the GIL)."""
        cdef Py_ssize_t need = self.hist_len + extra + SLACK, new_cap, ch, window, size
        cdef float* grown
        if need > self.cap:
            new_cap = max(need, 2 * self.cap)
            grown = <float*>PyMem_Malloc(new_cap * self.channels * sizeof(float))
            if grown == NULL:
                raise MemoryError()
            for ch in range(self.channels):
                memcpy(grown + ch * new_cap, self.hist + ch * self.cap, self.hist_len * sizeof(float))
            PyMem_Free(self.hist)
            self.hist = grown
            self.cap = new_cap
        # Float outputs (per branch, padded), then int16 room for rt_emit's rounding pass.
        size = self._jstride(count) * self.L if self.conv else count
        size += (count + 8 * self.L) // 2 + 8
        if size > self.ycap:
            PyMem_Free(self.ybuf)
            self.ybuf = <float*>PyMem_Malloc(size * sizeof(float))
            if self.ybuf == NULL:
                self.ycap = 0
                raise MemoryError()
            self.ycap = size
        if self.conv and self.M > 1:
            # M de-interleaved streams covering the window of inputs these outputs read.
            window = (count // self.L + 2) * self.M + self.K0
            size = self.M * (window // self.M + SLACK)
            if size > self.scap:
                PyMem_Free(self.sbuf)
                self.sbuf = <float*>PyMem_Malloc(size * sizeof(float))
                if self.sbuf == NULL:
                    self.scap = 0
                    raise MemoryError()
                self.scap = size
        return 0

    cdef void _append(self, const uint8_t* src, Py_ssize_t frames) noexcept nogil:
        # Decode the input into the float planes, after the history.
        cdef Py_ssize_t i, ch, chans = self.channels
        cdef float* plane
        cdef const int16_t* s16 = <const int16_t*>src
        cdef const int16_t* table = self.dec_table
        if self.in_codec == CODEC_PCM16:
            if chans == 1:
                plane = self.hist + self.hist_len
                for i in range(frames):
                    plane[i] = s16[i]
            else:
                for ch in range(chans):
                    plane = self.hist + ch * self.cap + self.hist_len
                    for i in range(frames):
                        plane[i] = s16[i * chans + ch]
        else:
            plane = self.hist + self.hist_len
            for i in range(frames):
                plane[i] = table[src[i]]
        self.hist_len += frames

    cdef inline int64_t _jstride(self, Py_ssize_t count) noexcept nogil:
        # Room per branch in ybuf: its outputs plus a whole 64-wide block of padding.
        return count // self.L + 1 + 64

    cdef void _filter(self, Py_ssize_t ch, Py_ssize_t count) noexcept nogil:
        # Outputs total_out .. total_out + count - 1 of channel `ch`, as floats into ybuf.
        cdef float* plane = self.hist + ch * self.cap
        cdef const float* streams[MAX_STREAMS]
        cdef int64_t w0, b_last, window, stride, i, r, rel
        cdef int M = self.M
        if not self.conv:
            rt_dot(self.coef, self.K, self.L, M, plane, self.hist_abs,
                   self.base_abs, self.phase, count, self.ybuf)
            return
        w0 = self.base_abs - self.K0 + 1
        rel = w0 - self.hist_abs
        # Vector blocks may read past the newest sample (into lanes that are discarded): zeros.
        memset(plane + self.hist_len, 0, SLACK * sizeof(float))
        if M == 1:
            streams[0] = plane + rel
        else:
            b_last = ((self.total_out + count - 1) * M) // self.L
            window = b_last - w0 + 1
            stride = window // M + SLACK
            rt_deinterleave(plane + rel, window, M, self.sbuf, stride)
            for r in range(M):
                streams[r] = self.sbuf + r * stride
        rt_conv(self.coef, self.K, self.K0, self.L, M, streams, w0,
                self.base_abs, self.phase, count, self.ybuf, self._jstride(count))

    cdef void _run(self, uint8_t* dst, Py_ssize_t count) noexcept nogil:
        # Produce `count` outputs; the caller made sure their input samples are in the history
        # and that the work buffers are large enough (_reserve).
        cdef Py_ssize_t n, ch, chans = self.channels, off
        cdef int64_t end, keep
        cdef float* y = self.ybuf
        cdef int64_t jstride
        cdef int16_t* tmp
        cdef int16_t* d16 = <int16_t*>dst
        cdef const uint8_t* enc = self.enc_table
        if count <= 0:
            return
        jstride = self._jstride(count) if self.conv else count
        tmp = <int16_t*>(y + (jstride * self.L if self.conv else count))
        for ch in range(chans):
            self._filter(ch, count)
            rt_emit(y, count, self.L if self.conv else 1, jstride, tmp,
                    d16 + ch, chans, enc if self.out_codec != CODEC_PCM16 else NULL, dst)
        self.total_out += count
        end = self.total_out * self.M
        self.base_abs = end // self.L
        self.phase = <int>(end % self.L)
        # Drop history the next output no longer needs (keep >= hist_abs always holds: K covers
        # one output step, see _design).
        keep = self.base_abs - (self.K - 1)
        off = <Py_ssize_t>(keep - self.hist_abs)
        if off > self.hist_len:
            off = self.hist_len
        if off > 0:
            for ch in range(chans):
                memmove(self.hist + ch * self.cap, self.hist + ch * self.cap + off,
                        (self.hist_len - off) * sizeof(float))
            self.hist_len -= off
            self.hist_abs += off

    cdef bytes _passthrough(self, const uint8_t* src, Py_ssize_t frames):
        # Equal rates: a format conversion only (or a copy).
        cdef Py_ssize_t i, out_size = frames * self.channels * (2 if self.out_codec == CODEC_PCM16 else 1)
        cdef bytes out = PyBytes_FromStringAndSize(NULL, out_size)
        cdef uint8_t* dst = <uint8_t*>PyBytes_AS_STRING(out)
        cdef int16_t s
        if self.in_codec == CODEC_PCM16 and self.out_codec == CODEC_PCM16:
            memcpy(dst, src, out_size)
            return out
        with nogil:
            for i in range(frames):
                if self.in_codec == CODEC_PCM16:
                    s = (<const int16_t*>src)[i]
                else:
                    s = self.dec_table[src[i]]
                if self.out_codec == CODEC_PCM16:
                    (<int16_t*>dst)[i] = s
                else:
                    dst[i] = self.enc_table[<uint16_t>s]
        return out

    cdef bytes process_buffer(self, object data):
        self.enter()
        try:
            return self._process(data)
        finally:
            self.busy = False

    cdef bytes flush_buffer(self):
        self.enter()
        try:
            return self._flush()
        finally:
            self.busy = False

    cdef int reset_stream(self) except -1:
        self.enter()
        self.reset_state()
        self.busy = False
        return 0

    cdef bytes _process(self, object data):
        cdef Py_buffer view
        cdef Py_ssize_t frames, count, frame_bytes
        cdef int64_t total
        cdef bytes out
        cdef uint8_t* dst
        cdef int out_sample = 2 if self.out_codec == CODEC_PCM16 else 1
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if self.in_codec == CODEC_PCM16:
                if view.len & 1:
                    raise ValueError(f"PCM16 data must have an even number of bytes, got {view.len}")
                frame_bytes = 2 * self.channels
                if view.len % frame_bytes:
                    raise ValueError(
                        f"PCM16 data for {self.channels} channels must have a multiple of "
                        f"{frame_bytes} bytes, got {view.len}"
                    )
            else:
                frame_bytes = 1
            frames = view.len // frame_bytes
            if self.identity:
                return self._passthrough(<const uint8_t*>view.buf, frames)
            total = self.total_in + frames
            # Outputs 0..n-1 are producible once input sample floor((n-1) * M / L) has arrived,
            # i.e. ceil(total_in * L / M) outputs in all.
            count = <Py_ssize_t>((total * self.L + self.M - 1) // self.M - self.total_out)
            self._reserve(frames, count)
            out = PyBytes_FromStringAndSize(NULL, count * self.channels * out_sample)
            dst = <uint8_t*>PyBytes_AS_STRING(out)
            self.total_in = total
            if <int64_t>count * self.K0 * self.channels >= NOGIL_WORK:
                with nogil:
                    self._append(<const uint8_t*>view.buf, frames)
                    self._run(dst, count)
            else:
                self._append(<const uint8_t*>view.buf, frames)
                self._run(dst, count)
            return out
        finally:
            PyBuffer_Release(&view)

    cdef bytes _flush(self):
        cdef int64_t target, last_base
        cdef Py_ssize_t count, zeros, ch
        cdef bytes out
        cdef uint8_t* dst
        cdef int out_sample = 2 if self.out_codec == CODEC_PCM16 else 1
        if self.identity or self.total_in == 0:
            self.reset_state()
            return b""
        # Emit until the last input sample has come out of the filter's group delay.
        target = (self.total_in * self.L + (self.N - 1) // 2 + self.M - 1) // self.M
        count = <Py_ssize_t>(target - self.total_out)
        last_base = ((target - 1) * self.M) // self.L
        zeros = <Py_ssize_t>(last_base - (self.hist_abs + self.hist_len - 1))
        if zeros < 0:
            zeros = 0
        self._reserve(zeros, count)
        for ch in range(self.channels):
            memset(self.hist + ch * self.cap + self.hist_len, 0, zeros * sizeof(float))
        self.hist_len += zeros
        out = PyBytes_FromStringAndSize(NULL, count * self.channels * out_sample)
        dst = <uint8_t*>PyBytes_AS_STRING(out)
        with nogil:
            self._run(dst, count)
        self.reset_state()
        return out

    def process(self, pcm16) -> bytes:
        """Resample a chunk of PCM16 (interleaved when multi-channel); returns what is ready."""
        return self.process_buffer(pcm16)

    def flush(self) -> bytes:
        """Drain the filter tail (the last ``latency_ms`` of audio); the object is then reset."""
        return self.flush_buffer()

    def reset(self) -> None:
        """Forget all state, as if newly constructed."""
        self.reset_stream()

    def _prototype(self) -> tuple:
        """(L, M, N, taps) of the prototype filter, for tests and the quality table.

        ``taps`` is the float32 branch table as bytes: L branches of K taps, oldest tap first.
        """
        self.enter()
        self.busy = False
        if self.identity:
            return (1, 1, 1, b"\x00\x00\x80\x3f")
        return (self.L, self.M, self.N, bytes(self.coef_owner))
