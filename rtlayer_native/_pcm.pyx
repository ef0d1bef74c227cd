"""PCM16 helpers: float conversion, saturating gain, level meters, stereo <-> mono.

PCM16 is signed 16-bit little-endian (the host byte order on every platform rtlayer targets;
``__init__`` refuses to load on a big-endian host). Every function takes any bytes-like object.

Each helper is a sample loop (a kernel, without the GIL) and one call of ``_map`` or ``_reduce``,
which take the caller's buffer, check its length against the layout, run the kernel and release the
buffer: the buffer protocol is handled in one place.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport INFINITY, floor, log10, sqrt
from libc.stdint cimport int16_t, int32_t, int64_t


# How the bytes of an input are laid out: the unit a length must be a multiple of, and the error.
cdef enum Layout:
    PCM16 = 0  # 2 bytes a sample
    STEREO_PCM16 = 1  # 4 bytes a frame
    FLOAT32 = 2  # 4 bytes a sample

# A kernel reads n items (samples or frames) at src and writes n results at dst.
ctypedef void (*MapKernel)(const void* src, void* dst, Py_ssize_t n, double arg) noexcept nogil
# A kernel reduces n samples to one number.
ctypedef double (*ReduceKernel)(const void* src, Py_ssize_t n) noexcept nogil


cdef Py_ssize_t _items(Py_ssize_t length, Layout layout) except -1:
    """The number of items in ``length`` bytes, or ValueError naming what is wrong."""
    if layout != FLOAT32 and length & 1:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {length}")
    if layout == STEREO_PCM16 and length & 3:
        raise ValueError(f"stereo PCM16 data must have a multiple of 4 bytes (whole frames), got {length}")
    if layout == FLOAT32 and length & 3:
        raise ValueError(f"float32 data must have a multiple of 4 bytes, got {length}")
    return length >> (1 if layout == PCM16 else 2)


cdef bytes _map(object data, Layout layout, Py_ssize_t out_item_bytes, MapKernel kernel, double arg=0.0):
    """``kernel`` over every item of ``data``, into a new bytes object of ``out_item_bytes`` an item."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef bytes out
    cdef char* dst
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = _items(view.len, layout)
        out = PyBytes_FromStringAndSize(NULL, n * out_item_bytes)
        dst = PyBytes_AS_STRING(out)
        with nogil:
            kernel(view.buf, dst, n, arg)
        return out
    finally:
        PyBuffer_Release(&view)


cdef double _reduce(object data, ReduceKernel kernel) except? -1.0:
    """``kernel`` over the samples of PCM16 ``data``; 0.0 when empty."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef double result
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = _items(view.len, PCM16)
        if n == 0:
            return 0.0
        with nogil:
            result = kernel(view.buf, n)
        return result
    finally:
        PyBuffer_Release(&view)


cdef inline int16_t _sat16(double v) noexcept nogil:
    # Round half away from zero's cheaper cousin: floor(v + 0.5), then saturate.
    v = floor(v + 0.5)
    if v > 32767.0:
        return 32767
    if v < -32768.0:
        return -32768
    return <int16_t>v


# --- kernels ---------------------------------------------------------------------------------------
cdef void _to_float32(const void* src, void* dst, Py_ssize_t n, double arg) noexcept nogil:
    cdef const int16_t* s = <const int16_t*>src
    cdef float* d = <float*>dst
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = s[i] * (1.0 / 32768.0)


cdef void _from_float32(const void* src, void* dst, Py_ssize_t n, double arg) noexcept nogil:
    cdef const float* s = <const float*>src
    cdef int16_t* d = <int16_t*>dst
    cdef Py_ssize_t i
    cdef double v
    for i in range(n):
        v = s[i]
        # NaN compares false both ways: it falls through to 0 below.
        if v >= 1.0:
            d[i] = 32767
        elif v < -1.0:
            d[i] = -32768
        elif v == v:
            d[i] = _sat16(v * 32768.0)
        else:
            d[i] = 0


cdef void _gain(const void* src, void* dst, Py_ssize_t n, double gain) noexcept nogil:
    cdef const int16_t* s = <const int16_t*>src
    cdef int16_t* d = <int16_t*>dst
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = _sat16(s[i] * gain)


cdef void _downmix(const void* src, void* dst, Py_ssize_t n, double arg) noexcept nogil:
    cdef const int16_t* s = <const int16_t*>src
    cdef int16_t* d = <int16_t*>dst
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = <int16_t>((<int32_t>s[2 * i] + <int32_t>s[2 * i + 1]) >> 1)


cdef void _upmix(const void* src, void* dst, Py_ssize_t n, double arg) noexcept nogil:
    cdef const int16_t* s = <const int16_t*>src
    cdef int16_t* d = <int16_t*>dst
    cdef Py_ssize_t i
    for i in range(n):
        d[2 * i] = s[i]
        d[2 * i + 1] = s[i]


cdef double _rms(const void* src, Py_ssize_t n) noexcept nogil:
    cdef const int16_t* s = <const int16_t*>src
    cdef int64_t acc = 0
    cdef int32_t v
    cdef Py_ssize_t i
    # Exact integer sum of squares: 2^30 per sample, overflow only after 2^33 samples.
    for i in range(n):
        v = s[i]
        acc += v * v
    return sqrt(<double>acc / n) / 32768.0


cdef double _peak(const void* src, Py_ssize_t n) noexcept nogil:
    cdef const int16_t* s = <const int16_t*>src
    cdef int32_t m = 0, v
    cdef Py_ssize_t i
    for i in range(n):
        v = s[i]
        if v < 0:
            v = -v
        if v > m:
            m = v
    return m / 32768.0


# --- the functions --------------------------------------------------------------------------------
def pcm16_to_float32(pcm16) -> bytes:
    """PCM16 -> float32 samples in [-1, 1), scaled by 1/32768."""
    return _map(pcm16, PCM16, 4, _to_float32)


def float32_to_pcm16(f32) -> bytes:
    """float32 -> PCM16: clipped to [-1, 1), scaled by 32768, rounded to nearest."""
    return _map(f32, FLOAT32, 2, _from_float32)


def apply_gain(pcm16, double gain) -> bytes:
    """Multiply every sample by ``gain``, rounding to nearest and saturating at the int16 limits."""
    if gain != gain:
        raise ValueError("gain must be a number, got NaN")
    return _map(pcm16, PCM16, 2, _gain, gain)


def rms(pcm16) -> float:
    """Root mean square level, linear, 1.0 = 32768 (full-scale square wave). 0.0 when empty."""
    return _reduce(pcm16, _rms)


def peak(pcm16) -> float:
    """Largest absolute sample, linear, 1.0 = 32768. 0.0 when empty."""
    return _reduce(pcm16, _peak)


cdef double _dbfs(double linear):
    return 20.0 * log10(linear) if linear > 0.0 else -INFINITY


def rms_dbfs(pcm16) -> float:
    """RMS level in dBFS (0 dBFS = a full-scale square wave); -inf for silence or empty input."""
    return _dbfs(rms(pcm16))


def peak_dbfs(pcm16) -> float:
    """Peak level in dBFS; -inf for silence or empty input."""
    return _dbfs(peak(pcm16))


def stereo_to_mono(pcm16) -> bytes:
    """Interleaved stereo PCM16 -> mono, the average of both channels (rounded toward -inf)."""
    return _map(pcm16, STEREO_PCM16, 2, _downmix)


def mono_to_stereo(pcm16) -> bytes:
    """Mono PCM16 -> interleaved stereo, each sample duplicated."""
    return _map(pcm16, PCM16, 4, _upmix)
