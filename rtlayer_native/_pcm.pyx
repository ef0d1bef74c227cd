"""PCM16 helpers: float conversion, saturating gain, level meters, stereo <-> mono.

PCM16 is signed 16-bit little-endian (the host byte order on every platform rtlayer targets;
``__init__`` refuses to load on a big-endian host). Every function takes any bytes-like object.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport INFINITY, floor, log10, sqrt
from libc.stdint cimport int16_t, int32_t, int64_t



cdef inline int16_t _sat16(double v) noexcept nogil:
    # Round half away from zero's cheaper cousin: floor(v + 0.5), then saturate.
    v = floor(v + 0.5)
    if v > 32767.0:
        return 32767
    if v < -32768.0:
        return -32768
    return <int16_t>v


cdef inline void _acquire(object data, Py_buffer* view, bint pcm16) except *:
    PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    if pcm16 and (view.len & 1):
        n = view.len
        PyBuffer_Release(view)
        raise ValueError(f"PCM16 data must have an even number of bytes, got {n}")


def pcm16_to_float32(pcm16) -> bytes:
    """PCM16 -> float32 samples in [-1, 1), scaled by 1/32768."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const int16_t* src
    cdef float* dst
    _acquire(pcm16, &view, True)
    try:
        n = view.len >> 1
        out = PyBytes_FromStringAndSize(NULL, 4 * n)
        src = <const int16_t*>view.buf
        dst = <float*>PyBytes_AS_STRING(out)
        with nogil:
            for i in range(n):
                dst[i] = src[i] * (1.0 / 32768.0)
        return out
    finally:
        PyBuffer_Release(&view)


def float32_to_pcm16(f32) -> bytes:
    """float32 -> PCM16: clipped to [-1, 1), scaled by 32768, rounded to nearest."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const float* src
    cdef int16_t* dst
    cdef double v
    PyObject_GetBuffer(f32, &view, PyBUF_SIMPLE)
    try:
        if view.len & 3:
            raise ValueError(f"float32 data must have a multiple of 4 bytes, got {view.len}")
        n = view.len >> 2
        out = PyBytes_FromStringAndSize(NULL, 2 * n)
        src = <const float*>view.buf
        dst = <int16_t*>PyBytes_AS_STRING(out)
        with nogil:
            for i in range(n):
                v = src[i]
                # NaN compares false both ways: it falls through to 0 below.
                if v >= 1.0:
                    dst[i] = 32767
                elif v < -1.0:
                    dst[i] = -32768
                elif v == v:
                    dst[i] = _sat16(v * 32768.0)
                else:
                    dst[i] = 0
        return out
    finally:
        PyBuffer_Release(&view)


def apply_gain(pcm16, double gain) -> bytes:
    """Multiply every sample by ``gain``, rounding to nearest and saturating at the int16 limits."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const int16_t* src
    cdef int16_t* dst
    if gain != gain:
        raise ValueError("gain must be a number, got NaN")
    _acquire(pcm16, &view, True)
    try:
        n = view.len >> 1
        out = PyBytes_FromStringAndSize(NULL, 2 * n)
        src = <const int16_t*>view.buf
        dst = <int16_t*>PyBytes_AS_STRING(out)
        with nogil:
            for i in range(n):
                dst[i] = _sat16(src[i] * gain)
        return out
    finally:
        PyBuffer_Release(&view)


def rms(pcm16) -> float:
    """Root mean square level, linear, 1.0 = 32768 (full-scale square wave). 0.0 when empty."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const int16_t* src
    cdef int64_t acc = 0
    cdef int32_t s
    _acquire(pcm16, &view, True)
    try:
        n = view.len >> 1
        if n == 0:
            return 0.0
        src = <const int16_t*>view.buf
        with nogil:
            # Exact integer sum of squares: 2^30 per sample, overflow only after 2^33 samples.
            for i in range(n):
                s = src[i]
                acc += s * s
        return sqrt(<double>acc / n) / 32768.0
    finally:
        PyBuffer_Release(&view)


def peak(pcm16) -> float:
    """Largest absolute sample, linear, 1.0 = 32768. 0.0 when empty."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const int16_t* src
    cdef int32_t m = 0, s
    _acquire(pcm16, &view, True)
    try:
        n = view.len >> 1
        src = <const int16_t*>view.buf
        with nogil:
            for i in range(n):
                s = src[i]
                if s < 0:
                    s = -s
                if s > m:
                    m = s
        return m / 32768.0
    finally:
        PyBuffer_Release(&view)


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
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const int16_t* src
    cdef int16_t* dst
    _acquire(pcm16, &view, True)
    try:
        if view.len & 3:
            raise ValueError(
                f"stereo PCM16 data must have a multiple of 4 bytes (whole frames), got {view.len}"
            )
        n = view.len >> 2
        out = PyBytes_FromStringAndSize(NULL, 2 * n)
        src = <const int16_t*>view.buf
        dst = <int16_t*>PyBytes_AS_STRING(out)
        with nogil:
            for i in range(n):
                dst[i] = <int16_t>((<int32_t>src[2 * i] + <int32_t>src[2 * i + 1]) >> 1)
        return out
    finally:
        PyBuffer_Release(&view)


def mono_to_stereo(pcm16) -> bytes:
    """Mono PCM16 -> interleaved stereo, each sample duplicated."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const int16_t* src
    cdef int16_t* dst
    _acquire(pcm16, &view, True)
    try:
        n = view.len >> 1
        out = PyBytes_FromStringAndSize(NULL, 4 * n)
        src = <const int16_t*>view.buf
        dst = <int16_t*>PyBytes_AS_STRING(out)
        with nogil:
            for i in range(n):
                dst[2 * i] = src[i]
                dst[2 * i + 1] = src[i]
        return out
    finally:
        PyBuffer_Release(&view)
