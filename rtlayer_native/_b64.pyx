"""Base64 decoding of the common case, for the server's hot path (every ``input_audio_buffer.append``).

``binascii.a2b_base64`` in strict mode spends about 24 instructions a character (it checks each one for
padding and whitespace rules); a 20 ms frame is 1,280 characters, which made it the largest single cost of
receiving audio. ``b64decode_plain`` decodes only the plain case, a str of whole 4-character groups of
``A-Z a-z 0-9 + /`` where ``=`` or ``==`` may close the last group (what every encoder writes: 20 ms at
24 kHz unpadded, a telephony provider's 160-byte frame or a model's mu-law delta padded), at about a sixth of
that; for anything else it returns ``None`` and the caller decodes with ``binascii``, whose rules (and errors)
therefore stay the only ones. Like strict ``binascii``, it ignores the unused low bits of a padded group.
Internal: not part of ``rtlayer_native``'s public API.
"""

from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport (
    PyUnicode_1BYTE_KIND,
    PyUnicode_DATA,
    PyUnicode_DecodeASCII,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
)

# Character -> its 6-bit value, -1 for every byte outside the standard alphabet ('=' included).
cdef signed char _VALUE[256]


cdef void _fill_table() noexcept:
    cdef int i
    cdef bytes alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for i in range(256):
        _VALUE[i] = -1
    for i in range(64):
        _VALUE[<unsigned char>alphabet[i]] = <signed char>i


_fill_table()


# Texts of at least this many characters are decoded with the GIL released; for a 20 ms frame (1,280) the
# two thread-state switches would cost a noticeable part of the decoding itself.
cdef enum:
    NOGIL_MIN = 16384
    PAD = 0x3D  # '='


cdef int _decode(const unsigned char* src, Py_ssize_t groups, unsigned char* dst) noexcept nogil:
    """Decodes ``groups`` 4-character groups; -1 at the first character outside the alphabet."""
    cdef Py_ssize_t g
    cdef int a, b, c, d
    for g in range(groups):
        a = _VALUE[src[0]]
        b = _VALUE[src[1]]
        c = _VALUE[src[2]]
        d = _VALUE[src[3]]
        if (a | b | c | d) < 0:  # a character outside the alphabet (padding included): not the plain case
            return -1
        dst[0] = <unsigned char>((a << 2) | (b >> 4))
        dst[1] = <unsigned char>(((b & 15) << 4) | (c >> 2))
        dst[2] = <unsigned char>(((c & 3) << 6) | d)
        src += 4
        dst += 3
    return 0


cdef int _decode_last(const unsigned char* src, unsigned char* dst) noexcept nogil:
    """The last group: its byte count (3; 2 closed by ``=``; 1 by ``==``), -1 if it is not plain."""
    cdef int a = _VALUE[src[0]], b = _VALUE[src[1]], c = _VALUE[src[2]], d = _VALUE[src[3]]
    if (a | b) < 0:
        return -1
    dst[0] = <unsigned char>((a << 2) | (b >> 4))
    if c < 0:
        return 1 if src[2] == PAD and src[3] == PAD else -1
    dst[1] = <unsigned char>(((b & 15) << 4) | (c >> 2))
    if d < 0:
        return 2 if src[3] == PAD else -1
    dst[2] = <unsigned char>(((c & 3) << 6) | d)
    return 3


def b64decode_plain(object text):
    """The bytes ``text`` encodes if it is a str of plain standard base64 (padding only closing the last
    group), else ``None`` (use binascii)."""
    cdef const unsigned char* src
    cdef unsigned char* dst
    cdef unsigned char tail[3]
    cdef Py_ssize_t n, groups
    cdef int status, last
    cdef bytes out
    if type(text) is not str or PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND:
        return None
    n = PyUnicode_GET_LENGTH(text)
    if n & 3:
        return None
    if n == 0:
        return b""
    src = <const unsigned char*>PyUnicode_DATA(text)
    groups = (n >> 2) - 1  # every group but the last, which alone may be padded
    last = _decode_last(src + groups * 4, tail)  # first, so that the output is made at its exact size
    if last < 0:
        return None
    out = PyBytes_FromStringAndSize(NULL, groups * 3 + last)
    dst = <unsigned char*>PyBytes_AS_STRING(out)
    if n >= NOGIL_MIN:
        with nogil:
            status = _decode(src, groups, dst)
    else:
        status = _decode(src, groups, dst)
    if status:
        return None
    memcpy(dst + groups * 3, tail, last)
    return out


cdef const char* _ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


cdef void _encode(const unsigned char* src, Py_ssize_t n, char* dst) noexcept nogil:
    """Standard padded base64 of ``n`` bytes into ``(n + 2) // 3 * 4`` characters."""
    cdef Py_ssize_t full = n // 3, i
    cdef unsigned int v
    for i in range(full):
        v = (<unsigned int>src[0] << 16) | (<unsigned int>src[1] << 8) | src[2]
        dst[0] = _ALPHABET[v >> 18]
        dst[1] = _ALPHABET[(v >> 12) & 63]
        dst[2] = _ALPHABET[(v >> 6) & 63]
        dst[3] = _ALPHABET[v & 63]
        src += 3
        dst += 4
    if n - full * 3 == 1:
        v = <unsigned int>src[0] << 16
        dst[0] = _ALPHABET[v >> 18]
        dst[1] = _ALPHABET[(v >> 12) & 63]
        dst[2] = b"="
        dst[3] = b"="
    elif n - full * 3 == 2:
        v = (<unsigned int>src[0] << 16) | (<unsigned int>src[1] << 8)
        dst[0] = _ALPHABET[v >> 18]
        dst[1] = _ALPHABET[(v >> 12) & 63]
        dst[2] = _ALPHABET[(v >> 6) & 63]
        dst[3] = b"="


def b64encode_str(object data):
    """Standard padded base64 of ``bytes`` ``data`` as an ASCII ``str`` (``b64encode(data).decode()`` in one
    step: an output audio delta is encoded once per 100 ms of every answer)."""
    cdef const unsigned char* src
    cdef char* dst
    cdef Py_ssize_t n
    cdef bytes out
    if type(data) is not bytes:
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    n = len(<bytes>data)
    src = <const unsigned char*>PyBytes_AS_STRING(data)
    out = PyBytes_FromStringAndSize(NULL, (n + 2) // 3 * 4)
    dst = PyBytes_AS_STRING(out)
    if n >= NOGIL_MIN:
        with nogil:
            _encode(src, n, dst)
    else:
        _encode(src, n, dst)
    return PyUnicode_DecodeASCII(PyBytes_AS_STRING(out), len(out), NULL)
