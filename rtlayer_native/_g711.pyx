# cython: binding=False, always_allow_keywords=False
"""G.711 mu-law and A-law, bit-exact with CPython's ``audioop`` (3.11).

The encoders follow audioop's segment search (mu-law on the 14-bit value ``sample >> 2``, A-law
on the 13-bit value ``sample >> 3``); both are tabulated at import for all 65,536 linear values, so
encoding and decoding are one table look-up per sample.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from libc.stdint cimport int16_t, uint8_t, uint16_t


# Buffers of at least this many samples are converted with the GIL released; for a 20 ms frame
# the two thread-state switches would cost more than the conversion itself.
cdef enum:
    NOGIL_MIN = 4096

cdef int16_t _ULAW_DEC[256]
cdef int16_t _ALAW_DEC[256]
cdef uint8_t _ULAW_ENC[65536]
cdef uint8_t _ALAW_ENC[65536]

cdef int16_t[8] _SEG_UEND = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
cdef int16_t[8] _SEG_AEND = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]


cdef int _search(int val, const int16_t* table) noexcept nogil:
    cdef int i
    for i in range(8):
        if val <= table[i]:
            return i
    return 8


cdef uint8_t _ulaw_from_14bit(int pcm_val) noexcept nogil:
    # The ITU/Sun reference algorithm that audioop uses: bias 33 on the 14-bit magnitude.
    cdef int mask, seg
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    if pcm_val > 8159:
        pcm_val = 8159
    pcm_val += 0x84 >> 2
    seg = _search(pcm_val, _SEG_UEND)
    if seg >= 8:
        return <uint8_t>(0x7F ^ mask)
    return <uint8_t>(((seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)) ^ mask)


cdef uint8_t _alaw_from_13bit(int pcm_val) noexcept nogil:
    cdef int mask, seg, aval
    if pcm_val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm_val = -pcm_val - 1
    seg = _search(pcm_val, _SEG_AEND)
    if seg >= 8:
        return <uint8_t>(0x7F ^ mask)
    aval = seg << 4
    if seg < 2:
        aval |= (pcm_val >> 1) & 0xF
    else:
        aval |= (pcm_val >> seg) & 0xF
    return <uint8_t>(aval ^ mask)


cdef int16_t _ulaw_to_linear(int u) noexcept nogil:
    cdef int t
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return <int16_t>((0x84 - t) if (u & 0x80) else (t - 0x84))


cdef int16_t _alaw_to_linear(int a) noexcept nogil:
    cdef int t, seg
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return <int16_t>(t if (a & 0x80) else -t)


cdef void _build_tables() noexcept nogil:
    cdef int i, s
    for i in range(256):
        _ULAW_DEC[i] = _ulaw_to_linear(i)
        _ALAW_DEC[i] = _alaw_to_linear(i)
    for i in range(65536):
        s = <int16_t>(<uint16_t>i)
        _ULAW_ENC[i] = _ulaw_from_14bit(s >> 2)
        _ALAW_ENC[i] = _alaw_from_13bit(s >> 3)


_build_tables()


cdef const int16_t* ulaw_decode_table() noexcept nogil:
    return _ULAW_DEC


cdef const int16_t* alaw_decode_table() noexcept nogil:
    return _ALAW_DEC


cdef const uint8_t* ulaw_encode_table() noexcept nogil:
    return _ULAW_ENC


cdef const uint8_t* alaw_encode_table() noexcept nogil:
    return _ALAW_ENC


cdef void _encode_loop(const uint16_t* src, uint8_t* dst, Py_ssize_t n,
                       const uint8_t* table) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = table[src[i]]


# The AVX2 expanders (used only where the CPU has AVX2, checked once): include/rt_g711_expand.h.
cdef extern from "rt_g711_expand.h":
    void rt_ulaw_expand_avx2(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil
    void rt_alaw_expand_avx2(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil
    int rt_g711_avx2() noexcept nogil


cdef bint _AVX2 = rt_g711_avx2()


cdef void _decode_loop(const uint8_t* src, int16_t* dst, Py_ssize_t n,
                       const int16_t* table) noexcept nogil:
    cdef Py_ssize_t i
    if _AVX2 and n >= 16:
        if table == _ULAW_DEC:
            rt_ulaw_expand_avx2(src, dst, n)
            return
        if table == _ALAW_DEC:
            rt_alaw_expand_avx2(src, dst, n)
            return
    for i in range(n):
        dst[i] = table[src[i]]


cdef bytes _encode(object pcm16, const uint8_t* table):
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef uint8_t* dst
    cdef bytes out
    if PyBytes_CheckExact(pcm16) and PyBytes_GET_SIZE(pcm16) < 2 * NOGIL_MIN:
        # The common case, a frame in a bytes object: no buffer protocol round trip.
        n = PyBytes_GET_SIZE(pcm16)
        if n & 1:
            raise ValueError(f"PCM16 data must have an even number of bytes, got {n}")
        out = PyBytes_FromStringAndSize(NULL, n >> 1)
        _encode_loop(<const uint16_t*>PyBytes_AS_STRING(pcm16), <uint8_t*>PyBytes_AS_STRING(out),
                     n >> 1, table)
        return out
    PyObject_GetBuffer(pcm16, &view, PyBUF_SIMPLE)
    try:
        if view.len & 1:
            raise ValueError(f"PCM16 data must have an even number of bytes, got {view.len}")
        n = view.len >> 1
        out = PyBytes_FromStringAndSize(NULL, n)
        dst = <uint8_t*>PyBytes_AS_STRING(out)
        # PCM16 is little-endian and so is the host (checked by the package): samples are read as
        # uint16 table indices directly.
        if n >= NOGIL_MIN:
            with nogil:
                _encode_loop(<const uint16_t*>view.buf, dst, n, table)
        else:
            _encode_loop(<const uint16_t*>view.buf, dst, n, table)
        return out
    finally:
        PyBuffer_Release(&view)


cdef bytes _decode(object data, const int16_t* table):
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef int16_t* dst
    cdef bytes out
    if PyBytes_CheckExact(data) and PyBytes_GET_SIZE(data) < NOGIL_MIN:
        n = PyBytes_GET_SIZE(data)
        out = PyBytes_FromStringAndSize(NULL, 2 * n)
        _decode_loop(<const uint8_t*>PyBytes_AS_STRING(data), <int16_t*>PyBytes_AS_STRING(out),
                     n, table)
        return out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = view.len
        out = PyBytes_FromStringAndSize(NULL, 2 * n)
        dst = <int16_t*>PyBytes_AS_STRING(out)
        if n >= NOGIL_MIN:
            with nogil:
                _decode_loop(<const uint8_t*>view.buf, dst, n, table)
        else:
            _decode_loop(<const uint8_t*>view.buf, dst, n, table)
        return out
    finally:
        PyBuffer_Release(&view)


def ulaw_encode(pcm16) -> bytes:
    """Encode PCM16 (little-endian) to G.711 mu-law, one byte per sample."""
    return _encode(pcm16, _ULAW_ENC)


def alaw_encode(pcm16) -> bytes:
    """Encode PCM16 (little-endian) to G.711 A-law, one byte per sample."""
    return _encode(pcm16, _ALAW_ENC)


def ulaw_decode(ulaw) -> bytes:
    """Decode G.711 mu-law bytes to PCM16 (little-endian)."""
    return _decode(ulaw, _ULAW_DEC)


def alaw_decode(alaw) -> bytes:
    """Decode G.711 A-law bytes to PCM16 (little-endian)."""
    return _decode(alaw, _ALAW_DEC)
