"""A native packet pacer: one thread, holding no GIL and no lock, sends queued UDP datagrams at absolute deadlines.

Why: an asyncio loop thread wakes late on a loaded machine (its own work, the GIL, the OS scheduler),
and every millisecond of that lateness used to land on the RTP stream. Here the loop only hands over
packets ahead of time (``enqueue``); this thread sleeps on ``CLOCK_MONOTONIC`` until the earliest
deadline and sends with ``sendto``. It never touches a Python object, so neither the GIL nor the
loop's work can delay it; on Linux it asks for a short time slice (EEVDF custom slice,
``sched_setattr`` with ``sched_runtime``; unprivileged), which lets it preempt a busy process when it
wakes, or SCHED_FIFO when asked and permitted.

Nothing the thread needs is ever behind a lock the Python side holds: a mutex shared with the loop
thread was measured to turn every preemption of the loop (50-300 ms on a loaded 2-core machine) into
that much lateness of the sender (priority inversion). So:

- packets go through a single-producer ring (the producer is whoever holds the GIL) into the thread's
  private heap; the ring and the heap hold at most ``max_packets`` packets together, beyond that
  ``enqueue`` refuses and counts;
- ``drop`` is exact without waiting for the thread: each stream has one atomic word, epoch (high 32
  bits) and packets committed to the wire (low 32 bits). The thread commits a packet with a
  compare-and-swap that requires the packet's epoch; ``drop`` bumps the epoch with one atomic add,
  whose result says exactly how many were committed, so every other packet is dropped (counted, and
  discarded by the thread when it meets it);
- each stream owns a ``dup`` of the caller's socket, closed by the thread itself (or after it is
  joined), so the caller may close its socket right after ``close_stream``;
- the thread sleeps on a futex with an absolute deadline; ``enqueue`` wakes it only when the new
  packet is due before the thread would wake anyway; lateness records come back through a second
  single-producer ring (full: the record is lost and counted).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport close as c_close


cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    int pthread_create(pthread_t*, void*, void* (*)(void*) noexcept nogil, void*)
    int pthread_join(pthread_t, void**)


cdef extern from "<fcntl.h>" nogil:
    int fcntl(int, int, ...)
    int F_DUPFD_CLOEXEC


cdef extern from "<sys/socket.h>" nogil:
    ctypedef uint32_t socklen_t
    struct sockaddr:
        pass
    struct sockaddr_storage:
        pass
    ssize_t sendto(int, const void*, size_t, int, const sockaddr*, socklen_t)
    int AF_INET
    int AF_INET6
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        pass
    struct in6_addr:
        pass
    struct sockaddr_in:
        uint16_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        uint16_t sin6_family
        uint16_t sin6_port
        in6_addr sin6_addr
    uint16_t htons(uint16_t)


cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int, const char*, void*)


cdef extern from "rt_pacer_os.h":
    int rtl_set_slice(uint64_t ns) nogil
    int rtl_set_fifo(int prio) nogil
    uint64_t rtl_load64(uint64_t* p) nogil
    void rtl_store64(uint64_t* p, uint64_t v) nogil
    uint64_t rtl_add64(uint64_t* p, uint64_t v) nogil
    bint rtl_cas64(uint64_t* p, uint64_t expected, uint64_t desired) nogil
    int64_t rtl_loadi64(int64_t* p) nogil
    void rtl_storei64(int64_t* p, int64_t v) nogil
    int32_t rtl_load32(int32_t* p) nogil
    void rtl_store32(int32_t* p, int32_t v) nogil
    int32_t rtl_add32(int32_t* p, int32_t v) nogil
    void rtl_futex_wait(int32_t* addr, int32_t val, int64_t abs_ns) nogil
    void rtl_futex_wake(int32_t* addr) nogil


cdef enum:
    SCHED_DEFAULT = 0
    SCHED_SLICE = 1
    SCHED_FIFO_MODE = 2
    FREE = 0
    OPEN = 1
    CLOSING = 2

cdef uint64_t LOW32 = 0xFFFFFFFF
cdef uint64_t EPOCH1 = 1 << 32
cdef int64_t NEVER = 0x7FFFFFFFFFFFFFFF


cdef struct Stream:
    int32_t status  # atomic: FREE -> OPEN (Python) -> CLOSING (Python) -> FREE (the thread, after close(fd))
    int fd  # our dup of the caller's socket
    sockaddr_storage addr
    socklen_t addrlen
    uint64_t state  # atomic: epoch << 32 | packets committed (mod 2**32)
    uint64_t send_errors  # atomic, the thread's
    uint32_t enqueued  # Python's (under the GIL), mod 2**32
    uint32_t dropped


cdef struct Shared:
    int32_t stop
    int32_t doorbell  # futex word: bumped to wake the thread
    int32_t sleeping
    int64_t next_wake
    int32_t pending_closes
    int packet_size
    int max_packets
    # the ring, Python -> thread
    uint64_t ring_mask
    uint64_t ring_head  # atomic, written by the producer
    uint64_t ring_tail  # atomic, written by the thread
    int64_t* r_deadline
    int32_t* r_sid
    uint32_t* r_epoch
    int32_t* r_length
    uint8_t* r_data
    # the thread's private heap of packets
    int64_t* deadline
    uint64_t* order
    int32_t* sid
    uint32_t* epoch
    int32_t* length
    uint8_t* data
    int32_t* free_slots
    int free_n
    int32_t* heap
    int heap_n
    uint64_t next_order
    # streams
    int max_streams
    Stream* streams
    # lateness, thread -> Python
    uint64_t lat_mask
    uint64_t lat_head  # atomic, the thread's
    uint64_t lat_tail  # atomic, Python's
    int64_t* lateness
    uint64_t lat_lost  # atomic
    # totals
    uint64_t committed  # atomic, the thread's
    uint64_t freed  # atomic, the thread's: packets it is done with (sent or discarded)
    uint64_t send_errors  # atomic, the thread's
    uint64_t enqueued  # Python's
    uint64_t dropped
    uint64_t refused
    # scheduling
    uint64_t slice_ns
    int fifo_priority
    int32_t sched_mode


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline bint _before(Shared* s, int32_t a, int32_t b) noexcept nogil:
    if s.deadline[a] != s.deadline[b]:
        return s.deadline[a] < s.deadline[b]
    return s.order[a] < s.order[b]


cdef void _sift_up(Shared* s, int i) noexcept nogil:
    cdef int32_t item = s.heap[i]
    cdef int parent
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(s, item, s.heap[parent]):
            break
        s.heap[i] = s.heap[parent]
        i = parent
    s.heap[i] = item


cdef void _sift_down(Shared* s, int i) noexcept nogil:
    cdef int32_t item = s.heap[i]
    cdef int n = s.heap_n
    cdef int child
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and _before(s, s.heap[child + 1], s.heap[child]):
            child += 1
        if not _before(s, s.heap[child], item):
            break
        s.heap[i] = s.heap[child]
        i = child
    s.heap[i] = item


cdef inline uint64_t _pow2(uint64_t n) noexcept nogil:
    cdef uint64_t p = 1
    while p < n:
        p <<= 1
    return p


cdef bint _commit(Stream* st, uint32_t epoch) noexcept nogil:
    """Count one packet of ``epoch`` as committed to the wire, unless a drop bumped the epoch."""
    cdef uint64_t s, new
    while True:
        s = rtl_load64(&st.state)
        if <uint32_t>(s >> 32) != epoch:
            return False
        new = (s & ~LOW32) | ((s + 1) & LOW32)
        if rtl_cas64(&st.state, s, new):
            return True


cdef void _take_ring(Shared* s) noexcept nogil:
    """Move what the producer queued into the heap (there is always room: ``enqueue`` bounds both)."""
    cdef uint64_t tail = rtl_load64(&s.ring_tail)
    cdef uint64_t head = rtl_load64(&s.ring_head)
    cdef uint64_t i
    cdef int32_t slot
    while tail != head and s.free_n > 0:
        i = tail & s.ring_mask
        s.free_n -= 1
        slot = s.free_slots[s.free_n]
        memcpy(s.data + <size_t>slot * s.packet_size, s.r_data + <size_t>i * s.packet_size, s.r_length[i])
        s.length[slot] = s.r_length[i]
        s.deadline[slot] = s.r_deadline[i]
        s.sid[slot] = s.r_sid[i]
        s.epoch[slot] = s.r_epoch[i]
        s.order[slot] = s.next_order
        s.next_order += 1
        s.heap[s.heap_n] = slot
        s.heap_n += 1
        _sift_up(s, s.heap_n - 1)
        tail += 1
    rtl_store64(&s.ring_tail, tail)


cdef void _sweep(Shared* s) noexcept nogil:
    cdef int i
    for i in range(s.max_streams):
        if rtl_load32(&s.streams[i].status) == CLOSING:
            c_close(s.streams[i].fd)
            s.streams[i].fd = -1
            rtl_store32(&s.streams[i].status, FREE)
            rtl_add32(&s.pending_closes, -1)


cdef void _send_due(Shared* s) noexcept nogil:
    cdef int32_t slot
    cdef int64_t now = _now_ns()
    cdef Stream* st
    cdef ssize_t rc
    cdef uint64_t h
    while s.heap_n > 0 and s.deadline[s.heap[0]] <= now:
        slot = s.heap[0]
        s.heap_n -= 1
        if s.heap_n > 0:
            s.heap[0] = s.heap[s.heap_n]
            _sift_down(s, 0)
        st = &s.streams[s.sid[slot]]
        if _commit(st, s.epoch[slot]):
            now = _now_ns()
            rc = sendto(
                st.fd, s.data + <size_t>slot * s.packet_size, s.length[slot], MSG_DONTWAIT | MSG_NOSIGNAL,
                <sockaddr*>&st.addr, st.addrlen,
            )
            rtl_add64(&s.committed, 1)
            if rc < 0:
                rtl_add64(&st.send_errors, 1)
                rtl_add64(&s.send_errors, 1)
            h = rtl_load64(&s.lat_head)
            if h - rtl_load64(&s.lat_tail) > s.lat_mask:
                rtl_add64(&s.lat_lost, 1)
            else:
                s.lateness[h & s.lat_mask] = now - s.deadline[slot]
                rtl_store64(&s.lat_head, h + 1)
        # else: dropped by the producer since it was queued (already counted there)
        s.free_slots[s.free_n] = slot
        s.free_n += 1
        rtl_add64(&s.freed, 1)


cdef void* _run(void* arg) noexcept nogil:
    cdef Shared* s = <Shared*>arg
    cdef int32_t seen
    cdef int64_t wake
    if s.fifo_priority > 0 and rtl_set_fifo(s.fifo_priority) == 0:
        rtl_store32(&s.sched_mode, SCHED_FIFO_MODE)
    elif s.slice_ns > 0 and rtl_set_slice(s.slice_ns) == 0:
        rtl_store32(&s.sched_mode, SCHED_SLICE)
    while not rtl_load32(&s.stop):
        if rtl_load32(&s.pending_closes) > 0:
            _sweep(s)
        _take_ring(s)
        _send_due(s)
        # sleep until the earliest deadline, unless something arrived meanwhile
        seen = rtl_load32(&s.doorbell)
        wake = s.deadline[s.heap[0]] if s.heap_n > 0 else NEVER
        rtl_storei64(&s.next_wake, wake)
        rtl_store32(&s.sleeping, 1)
        if (
            rtl_load64(&s.ring_head) == rtl_load64(&s.ring_tail)
            and not rtl_load32(&s.stop)
            and rtl_load32(&s.pending_closes) == 0
        ):
            rtl_futex_wait(&s.doorbell, seen, wake if wake != NEVER else -1)
        rtl_store32(&s.sleeping, 0)
    return NULL


def monotonic_ns() -> int:
    """``CLOCK_MONOTONIC`` in ns: the clock of every deadline (the same as ``time.monotonic_ns`` on Linux)."""
    return _now_ns()


cdef class Pacer:
    """Sends datagrams of registered streams at their deadlines, from a native thread."""

    cdef Shared* s
    cdef pthread_t thread
    cdef bint started  # a thread exists (until it is joined)
    cdef bint stopping  # one caller is joining it (with the GIL released): nobody else may
    cdef bint closed

    def __cinit__(
        self,
        int max_packets=4096,
        int max_streams=2048,
        int packet_size=1500,
        int lateness_samples=65536,
        int slice_us=100,
        int realtime_priority=0,
    ):
        if max_packets < 1 or max_streams < 1 or packet_size < 12 or lateness_samples < 1:
            raise ValueError("max_packets, max_streams, lateness_samples must be >= 1, packet_size >= 12")
        if slice_us < 0 or realtime_priority < 0:
            raise ValueError("slice_us and realtime_priority must be >= 0")
        cdef Shared* s = <Shared*>calloc(1, sizeof(Shared))
        cdef uint64_t ring = _pow2(max_packets)
        cdef uint64_t lat = _pow2(lateness_samples)
        cdef int i
        if s == NULL:
            raise MemoryError()
        self.s = s
        s.packet_size = packet_size
        s.max_packets = max_packets
        s.max_streams = max_streams
        s.slice_ns = <uint64_t>slice_us * 1000
        s.fifo_priority = realtime_priority
        s.next_wake = NEVER
        s.ring_mask = ring - 1
        s.lat_mask = lat - 1
        s.r_deadline = <int64_t*>calloc(ring, sizeof(int64_t))
        s.r_sid = <int32_t*>calloc(ring, sizeof(int32_t))
        s.r_epoch = <uint32_t*>calloc(ring, sizeof(uint32_t))
        s.r_length = <int32_t*>calloc(ring, sizeof(int32_t))
        s.r_data = <uint8_t*>calloc(ring * packet_size, 1)
        s.deadline = <int64_t*>calloc(max_packets, sizeof(int64_t))
        s.order = <uint64_t*>calloc(max_packets, sizeof(uint64_t))
        s.sid = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.epoch = <uint32_t*>calloc(max_packets, sizeof(uint32_t))
        s.length = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.data = <uint8_t*>calloc(<size_t>max_packets * packet_size, 1)
        s.free_slots = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.heap = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.streams = <Stream*>calloc(max_streams, sizeof(Stream))
        s.lateness = <int64_t*>calloc(lat, sizeof(int64_t))
        if (
            s.r_deadline == NULL or s.r_sid == NULL or s.r_epoch == NULL or s.r_length == NULL
            or s.r_data == NULL or s.deadline == NULL or s.order == NULL or s.sid == NULL
            or s.epoch == NULL or s.length == NULL or s.data == NULL or s.free_slots == NULL
            or s.heap == NULL or s.streams == NULL or s.lateness == NULL
        ):
            self._free()
            raise MemoryError(
                f"cannot allocate the pacer's queues: {max_packets} packets of {packet_size} bytes, "
                f"{max_streams} streams, {lateness_samples} lateness samples"
            )
        for i in range(max_packets):
            s.free_slots[i] = max_packets - 1 - i
        s.free_n = max_packets
        for i in range(max_streams):
            s.streams[i].fd = -1

    cdef void _free(self) noexcept:
        cdef Shared* s = self.s
        if s == NULL:
            return
        free(s.r_deadline)
        free(s.r_sid)
        free(s.r_epoch)
        free(s.r_length)
        free(s.r_data)
        free(s.deadline)
        free(s.order)
        free(s.sid)
        free(s.epoch)
        free(s.length)
        free(s.data)
        free(s.free_slots)
        free(s.heap)
        free(s.streams)
        free(s.lateness)
        free(s)
        self.s = NULL

    def __dealloc__(self):
        self._stop()
        self._close_fds()
        self._free()

    cdef void _wake(self) noexcept:
        rtl_add32(&self.s.doorbell, 1)
        rtl_futex_wake(&self.s.doorbell)

    cdef void _stop(self) noexcept:
        if self.s == NULL or not self.started or self.stopping:
            return
        # While this call waits without the GIL, other threads may call in: `stopping` keeps a second
        # join of the same thread out, and `started` stays set so that close_stream leaves each socket
        # to the thread (or to _close_fds after the join) instead of closing it under the thread.
        self.stopping = True
        rtl_store32(&self.s.stop, 1)
        self._wake()
        with nogil:
            # bounded: the thread blocks nowhere but on the futex just rung (sendto does not block)
            pthread_join(self.thread, NULL)
        self.started = False
        self.stopping = False

    cdef void _close_fds(self) noexcept:
        """With no thread running: close every stream's socket and count what was still queued."""
        cdef int i
        cdef Stream* st
        if self.s == NULL:
            return
        for i in range(self.s.max_streams):
            st = &self.s.streams[i]
            if rtl_load32(&st.status) == OPEN:
                self._drop(st)
            if st.fd >= 0:
                c_close(st.fd)
                st.fd = -1
            rtl_store32(&st.status, FREE)
        self.s.pending_closes = 0

    def start(self) -> None:
        """Start the sending thread (once; packets queued before start wait for it)."""
        if self.closed:
            raise RuntimeError("the pacer is closed")
        if self.started:
            return
        if pthread_create(&self.thread, NULL, _run, self.s) != 0:
            raise OSError("cannot start the pacer thread")
        self.started = True

    def close(self) -> None:
        """Stop and join the thread, close the streams' sockets; what was queued is dropped and counted.
        Idempotent."""
        if self.closed:
            return
        self.closed = True  # first: _stop lets other threads in, and they must see a closed pacer
        self._stop()
        self._close_fds()

    @property
    def running(self) -> bool:
        return self.started

    @property
    def scheduling(self) -> str:
        """How the thread is scheduled: ``fifo``, ``slice`` (a short EEVDF slice) or ``default``."""
        return ("default", "slice", "fifo")[rtl_load32(&self.s.sched_mode)]

    def open_stream(self, int fd, str host, int port) -> int:
        """Register a socket (duplicated: the caller may close its own after ``close_stream``) and a
        numeric destination address; returns the stream id."""
        cdef sockaddr_in* a4
        cdef sockaddr_in6* a6
        cdef bytes h = host.encode("ascii")  # UnicodeEncodeError (a ValueError) for any other text
        cdef int sid = -1
        cdef int i
        cdef int dup
        cdef Stream* st
        cdef uint64_t epoch
        if self.closed:
            raise RuntimeError("the pacer is closed")
        if not 0 < port < 65536:
            raise ValueError(f"bad port {port}")
        if b"\0" in h:
            raise ValueError(f"not a numeric IP address: {host!r}")
        for i in range(self.s.max_streams):
            if rtl_load32(&self.s.streams[i].status) == FREE:
                sid = i
                break
        if sid < 0:
            raise RuntimeError(f"more than {self.s.max_streams} streams")
        st = &self.s.streams[sid]
        memset(&st.addr, 0, sizeof(sockaddr_storage))
        a4 = <sockaddr_in*>&st.addr
        a6 = <sockaddr_in6*>&st.addr
        if inet_pton(AF_INET, h, &a4.sin_addr) == 1:
            a4.sin_family = AF_INET
            a4.sin_port = htons(port)
            st.addrlen = sizeof(sockaddr_in)
        elif inet_pton(AF_INET6, h, &a6.sin6_addr) == 1:
            a6.sin6_family = AF_INET6
            a6.sin6_port = htons(port)
            st.addrlen = sizeof(sockaddr_in6)
        else:
            raise ValueError(f"not a numeric IP address: {host!r}")
        dup = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if dup < 0:
            raise OSError(f"cannot duplicate socket {fd}")
        st.fd = dup
        st.enqueued = 0
        st.dropped = 0
        rtl_store64(&st.send_errors, 0)
        epoch = (rtl_load64(&st.state) >> 32) + 1  # packets of an earlier use of this slot never match
        rtl_store64(&st.state, (epoch & LOW32) << 32)
        rtl_store32(&st.status, OPEN)
        return sid

    cdef Stream* _stream(self, int sid) except NULL:
        if self.s == NULL or not 0 <= sid < self.s.max_streams or rtl_load32(&self.s.streams[sid].status) != OPEN:
            raise KeyError(f"no open stream {sid}")
        return &self.s.streams[sid]

    cdef uint32_t _drop(self, Stream* st) noexcept:
        cdef uint64_t old = rtl_add64(&st.state, EPOCH1)  # from now on no queued packet of st can commit
        cdef uint32_t n = st.enqueued - <uint32_t>(old & LOW32) - st.dropped
        st.dropped += n
        self.s.dropped += n
        return n

    def close_stream(self, int sid) -> int:
        """Forget a stream: its queued packets are dropped (returned, counted); its socket copy is closed."""
        cdef Stream* st = self._stream(sid)
        cdef uint32_t n = self._drop(st)
        if self.started:
            rtl_store32(&st.status, CLOSING)
            rtl_add32(&self.s.pending_closes, 1)
            self._wake()
        else:
            c_close(st.fd)
            st.fd = -1
            rtl_store32(&st.status, FREE)
        return n

    def enqueue(self, int sid, int64_t deadline_ns, packet) -> bool:
        """Queue ``packet`` to leave on ``sid`` at ``deadline_ns`` (``monotonic_ns`` clock). False: the
        pacer already holds ``max_packets``; the packet is refused and counted (``refused``)."""
        cdef Stream* st
        cdef Shared* s = self.s
        cdef Py_buffer view
        cdef uint64_t head, i
        # Taking the buffer may run Python code (and let another thread close the stream): it comes
        # first, and from the stream's look-up on nothing here lets another thread in.
        PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE)
        try:
            st = self._stream(sid)
            if view.len > s.packet_size or view.len == 0:
                raise ValueError(f"a packet of {view.len} bytes (1..{s.packet_size})")
            if s.enqueued - rtl_load64(&s.freed) >= <uint64_t>s.max_packets:
                s.refused += 1
                return False
            head = rtl_load64(&s.ring_head)
            i = head & s.ring_mask
            memcpy(s.r_data + <size_t>i * s.packet_size, view.buf, view.len)
            s.r_length[i] = <int32_t>view.len
            s.r_deadline[i] = deadline_ns
            s.r_sid[i] = sid
            s.r_epoch[i] = <uint32_t>(rtl_load64(&st.state) >> 32)
            rtl_store64(&s.ring_head, head + 1)
            s.enqueued += 1
            st.enqueued += 1
            if rtl_load32(&s.sleeping) and deadline_ns < rtl_loadi64(&s.next_wake):
                self._wake()  # due before the thread would wake by itself
            return True
        finally:
            PyBuffer_Release(&view)

    def drop(self, int sid) -> int:
        """Drop every packet of ``sid`` not sent yet; returns how many (none of them will leave)."""
        return self._drop(self._stream(sid))

    def stream_stats(self, int sid) -> tuple[int, int, int, int]:
        """``(queued, sent, dropped, send_errors)`` of one stream (sent: committed to ``sendto``)."""
        cdef Stream* st = self._stream(sid)
        cdef uint32_t sent = <uint32_t>(rtl_load64(&st.state) & LOW32)
        cdef uint32_t queued = st.enqueued - sent - st.dropped
        return queued, sent, st.dropped, rtl_load64(&st.send_errors)

    def queued(self, int sid) -> int:
        """Packets of ``sid`` waiting for their deadline."""
        cdef Stream* st = self._stream(sid)
        cdef uint32_t queued = st.enqueued - <uint32_t>(rtl_load64(&st.state) & LOW32) - st.dropped
        return queued

    def stats(self) -> dict[str, int]:
        """Totals: ``queued``, ``sent``, ``dropped`` (by drop/close), ``refused`` (pacer full),
        ``send_errors``, ``lateness_lost`` (records lost to a full lateness ring)."""
        cdef Shared* s = self.s
        cdef uint64_t committed = rtl_load64(&s.committed)
        return {
            "queued": s.enqueued - committed - s.dropped,
            "sent": committed,
            "dropped": s.dropped,
            "refused": s.refused,
            "send_errors": rtl_load64(&s.send_errors),
            "lateness_lost": rtl_load64(&s.lat_lost),
        }

    def drain_lateness(self) -> bytes:
        """The lateness (send time minus deadline, ns) of each packet sent since the last drain,
        oldest first, as native-endian int64s (``array('q', ...)``)."""
        cdef Shared* s = self.s
        cdef uint64_t tail = rtl_load64(&s.lat_tail)
        cdef uint64_t head = rtl_load64(&s.lat_head)
        cdef uint64_t n = head - tail
        cdef uint64_t cap = s.lat_mask + 1
        cdef uint64_t start = tail & s.lat_mask
        cdef uint64_t first = min(n, cap - start)
        cdef bytes out = PyBytes_FromStringAndSize(NULL, n * 8)
        cdef int64_t* dst = <int64_t*>PyBytes_AS_STRING(out)
        memcpy(dst, s.lateness + start, first * 8)
        memcpy(dst + first, s.lateness, (n - first) * 8)
        rtl_store64(&s.lat_tail, head)
        return out
