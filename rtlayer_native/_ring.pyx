"""Byte buffers for audio pipelines: a bounded ring (``AudioRing``) and an exact framer (``Framer``).

Threads: both hold the GIL from their first read of the object's state to their last write, and
nothing in between can run Python code (no GC-tracked allocation, no buffer export, no callback):
whatever may run Python code, and so let another thread in, runs before (taking the caller's buffer)
or after. So one object shared by threads is safe without a lock of its own, and a call never waits.
An object whose ``__init__`` did not run (``AudioRing.__new__``, a subclass that skips
``super().__init__()``) raises ``RuntimeError`` at its first use.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.list cimport PyList_New
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.string cimport memcpy, memset

OVERFLOW_POLICIES = ("drop_oldest", "reject")

_NOT_INITIALISED = (
    "this {} is not initialised: its __init__ did not run (a subclass's __init__ must call "
    "super().__init__())"
)


cdef class AudioRing:
    """A fixed-capacity FIFO of bytes.

    When a write does not fit, ``overflow="drop_oldest"`` drops the oldest bytes to make room (the
    newest ``capacity`` bytes survive) and ``"reject"`` accepts only what fits. Either way every
    byte lost is added to ``dropped``, so a bounded buffer always says what it threw away.
    Methods run with the GIL held, so threads may share a ring.
    """

    cdef unsigned char* buf
    cdef readonly Py_ssize_t capacity
    cdef readonly str overflow
    cdef readonly long long dropped
    cdef Py_ssize_t head, size
    cdef bint reject

    def __cinit__(self, *args, **kwargs):
        self.buf = NULL  # until __init__: every method checks it (see _ready)

    def __init__(self, Py_ssize_t capacity, str overflow="drop_oldest"):
        if capacity <= 0:
            raise ValueError(f"capacity must be a positive number of bytes, got {capacity}")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
        if self.buf != NULL:
            PyMem_Free(self.buf)
        self.buf = <unsigned char*>PyMem_Malloc(capacity)
        if self.buf == NULL:
            raise MemoryError(f"cannot allocate a ring of {capacity} bytes")
        self.capacity = capacity
        self.overflow = overflow
        self.reject = overflow == "reject"
        self.dropped = 0
        self.head = 0
        self.size = 0

    def __dealloc__(self):
        if self.buf != NULL:
            PyMem_Free(self.buf)

    def __len__(self) -> int:
        return self.size

    cdef int _ready(self) except -1:
        if self.buf == NULL:
            raise RuntimeError(_NOT_INITIALISED.format(type(self).__name__))
        return 0

    def __repr__(self) -> str:
        return f"AudioRing({self.capacity}, overflow={self.overflow!r}) len={self.size} dropped={self.dropped}"

    cdef void _put(self, const unsigned char* src, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t tail = (self.head + self.size) % self.capacity
        cdef Py_ssize_t first = self.capacity - tail
        if first > n:
            first = n
        memcpy(self.buf + tail, src, first)
        memcpy(self.buf, src + first, n - first)
        self.size += n

    cdef void _get(self, unsigned char* dst, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t first = self.capacity - self.head
        if first > n:
            first = n
        memcpy(dst, self.buf + self.head, first)
        memcpy(dst + first, self.buf, n - first)

    cdef void _skip(self, Py_ssize_t n) noexcept nogil:
        self.head = (self.head + n) % self.capacity
        self.size -= n
        if self.size == 0:
            self.head = 0

    def write(self, data) -> int:
        """Append bytes; returns how many of ``data``'s bytes are now held."""
        cdef Py_buffer view
        cdef Py_ssize_t n, free, excess
        cdef const unsigned char* src
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)  # may run Python code: before any state is read
        try:
            self._ready()
            n = view.len
            src = <const unsigned char*>view.buf
            free = self.capacity - self.size
            if n > free:
                if self.reject:
                    self.dropped += n - free
                    n = free
                else:
                    if n >= self.capacity:
                        # Only the newest `capacity` bytes of data can survive.
                        self.dropped += self.size + (n - self.capacity)
                        src += n - self.capacity
                        n = self.capacity
                        self.head = 0
                        self.size = 0
                    else:
                        excess = n - free
                        self.dropped += excess
                        self._skip(excess)
            self._put(src, n)
            return n
        finally:
            PyBuffer_Release(&view)

    cdef bytes _take(self, Py_ssize_t n, bint remove):
        cdef bytes out
        self._ready()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n > self.size:
            n = self.size
        out = PyBytes_FromStringAndSize(NULL, n)  # bytes are not GC-tracked: no collection runs here
        self._get(<unsigned char*>PyBytes_AS_STRING(out), n)
        if remove:
            self._skip(n)
        return out

    def peek(self, Py_ssize_t n) -> bytes:
        """Up to ``n`` of the oldest bytes, left in the ring."""
        return self._take(n, False)

    def read(self, Py_ssize_t n) -> bytes:
        """Remove and return up to ``n`` of the oldest bytes."""
        return self._take(n, True)

    def discard(self, Py_ssize_t n) -> int:
        """Drop up to ``n`` of the oldest bytes (not counted in ``dropped``); returns how many."""
        self._ready()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n > self.size:
            n = self.size
        self._skip(n)
        return n

    def clear(self) -> None:
        """Empty the ring (not counted in ``dropped``)."""
        self.head = 0
        self.size = 0


cdef class Framer:
    """Chunks of any size in, frames of exactly ``frame_bytes`` out; the remainder is kept.

    ``flush()`` returns the remainder (zero-padded to a whole frame when ``pad_last``), or None.
    """

    cdef unsigned char* buf
    cdef readonly Py_ssize_t frame_bytes
    cdef readonly Py_ssize_t pending
    cdef readonly bint pad_last

    def __cinit__(self, *args, **kwargs):
        self.buf = NULL  # until __init__: every method checks it (see _ready)

    def __init__(self, Py_ssize_t frame_bytes, bint pad_last=False):
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        if self.buf != NULL:
            PyMem_Free(self.buf)
        self.buf = <unsigned char*>PyMem_Malloc(frame_bytes)
        if self.buf == NULL:
            raise MemoryError(f"cannot allocate a frame of {frame_bytes} bytes")
        self.frame_bytes = frame_bytes
        self.pad_last = pad_last
        self.pending = 0

    def __dealloc__(self):
        if self.buf != NULL:
            PyMem_Free(self.buf)

    def __repr__(self) -> str:
        return f"Framer({self.frame_bytes}, pad_last={self.pad_last}) pending={self.pending}"

    cdef int _ready(self) except -1:
        if self.buf == NULL:
            raise RuntimeError(_NOT_INITIALISED.format(type(self).__name__))
        return 0

    def push(self, data) -> list:
        """Add a chunk; returns the frames it completes (possibly none)."""
        cdef Py_buffer view
        cdef Py_ssize_t n, fb, take
        cdef const unsigned char* src
        cdef list frames
        self._ready()
        if self.pending == 0 and PyBytes_CheckExact(data) and len(<bytes>data) == self.frame_bytes:
            # The common case (a transport hands over exactly one frame): no copy at all.
            return [data]
        # Both may run Python code (a buffer exporter; a collection, as the list is GC-tracked), so
        # both come before the state is read.
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            frames = PyList_New(0)
            self._ready()
            fb = self.frame_bytes
            n = view.len
            src = <const unsigned char*>view.buf
            if self.pending:
                take = fb - self.pending
                if take > n:
                    take = n
                memcpy(self.buf + self.pending, src, take)
                self.pending += take
                src += take
                n -= take
                if self.pending == fb:
                    frames.append(PyBytes_FromStringAndSize(<char*>self.buf, fb))
                    self.pending = 0
            while n >= fb:
                frames.append(PyBytes_FromStringAndSize(<const char*>src, fb))
                src += fb
                n -= fb
            if n:
                memcpy(self.buf, src, n)
                self.pending = n
            return frames
        finally:
            PyBuffer_Release(&view)

    def flush(self):
        """The remainder (zero-padded to a frame when ``pad_last``), or None; then empty."""
        self._ready()
        if self.pending == 0:
            return None
        if self.pad_last:
            memset(self.buf + self.pending, 0, self.frame_bytes - self.pending)
            out = PyBytes_FromStringAndSize(<char*>self.buf, self.frame_bytes)
        else:
            out = PyBytes_FromStringAndSize(<char*>self.buf, self.pending)
        self.pending = 0
        return out

    def reset(self) -> None:
        """Drop the remainder."""
        self.pending = 0
