# Declarations of the streaming polyphase resampler, cimported by the fused transcoder.
from libc.stdint cimport int16_t, int64_t, uint8_t

cdef enum Codec:
    CODEC_PCM16 = 0
    CODEC_ULAW = 1
    CODEC_ALAW = 2


cdef class Resampler:
    cdef readonly int in_rate
    cdef readonly int out_rate
    cdef readonly int channels
    cdef readonly str quality
    cdef readonly double latency_ms
    # Polyphase geometry: up by L, filter (N taps, K per phase), down by M.
    cdef int L, M, K, N, K0
    cdef bint conv                  # convolution form (small L and M) or dot-product form
    cdef bint identity
    cdef object coef_owner          # the bytes object holding coef (shared, cached per design)
    cdef const float* coef          # L phases of K taps, each phase reversed (oldest tap first)
    # History: one float plane per channel, `cap` samples each; hist[0] is input sample hist_abs.
    cdef float* hist
    cdef Py_ssize_t cap
    cdef Py_ssize_t hist_len
    cdef int64_t hist_abs
    cdef int64_t base_abs           # newest input sample the next output needs
    cdef int phase                  # polyphase branch of the next output
    cdef int64_t total_in
    # Work buffers: float outputs of one channel, and de-interleaved input streams (rt_conv, M > 1).
    cdef float* ybuf
    cdef Py_ssize_t ycap
    cdef float* sbuf
    cdef Py_ssize_t scap
    cdef int64_t total_out
    cdef int in_codec
    cdef int out_codec
    cdef const int16_t* dec_table
    cdef const uint8_t* enc_table
    # Set (under the GIL) while a call runs, so that an overlapping call is refused: the work may run
    # without the GIL, and two calls on one stream would realloc/reset what the other is reading.
    cdef bint busy
    cdef str kind                   # the class users see in error messages ("Transcoder" for its own)

    cdef int _claim(self, bint need_init) except -1
    cdef int enter(self) except -1
    cdef int _setup(self, int in_rate, int out_rate, int channels, str quality) except -1
    cdef int set_codecs(self, int in_codec, int out_codec) except -1
    # The calls users make (through Resampler or Transcoder): each claims the object, see enter().
    cdef bytes process_buffer(self, object data)
    cdef bytes flush_buffer(self)
    cdef int reset_stream(self) except -1
    cdef bytes _process(self, object data)
    cdef bytes _flush(self)
    cdef void reset_state(self) noexcept
    cdef int _reserve(self, Py_ssize_t extra, Py_ssize_t count) except -1
    cdef int64_t _jstride(self, Py_ssize_t count) noexcept nogil
    cdef void _filter(self, Py_ssize_t ch, Py_ssize_t count) noexcept nogil
    cdef void _append(self, const uint8_t* src, Py_ssize_t frames) noexcept nogil
    cdef void _run(self, uint8_t* dst, Py_ssize_t count) noexcept nogil
    cdef bytes _passthrough(self, const uint8_t* src, Py_ssize_t frames)
