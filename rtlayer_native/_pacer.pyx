"""A native packet pacer: one thread, holding no GIL, sends queued UDP datagrams at absolute deadlines.

Why: an asyncio loop thread wakes late on a loaded machine (its own work, the GIL, the OS scheduler),
and every millisecond of that lateness used to land on the RTP stream. Here the loop only hands over
packets a little ahead of time (``enqueue``); this thread sleeps on ``CLOCK_MONOTONIC`` until the
earliest deadline (a condition variable, so an earlier packet or ``close`` wakes it at once) and sends
with ``sendto`` on the stream's socket. It never touches a Python object, so neither the GIL nor the
loop's work can delay it. On Linux it asks the scheduler for a short time slice (EEVDF custom slice,
``sched_setattr`` with ``sched_runtime``; unprivileged), which lets it preempt a busy process when it
wakes; optionally SCHED_FIFO when the caller may.

Memory is fixed at construction (``max_packets`` slots of ``packet_size`` bytes, ``max_streams``
streams, ``lateness_samples`` lateness records): a full queue refuses the packet and counts it, a
full lateness record keeps the newest and counts the overwritten. Everything shared is guarded by
one mutex; the sender holds it while it sends a batch, so ``drop``/``close_stream`` return only when
no packet of that stream can leave any more: what they drop is exactly what was not sent.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


cdef extern from "<errno.h>" nogil:
    int errno


cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    ctypedef struct pthread_condattr_t:
        pass
    int pthread_create(pthread_t*, void*, void* (*)(void*) noexcept nogil, void*)
    int pthread_join(pthread_t, void**)
    int pthread_mutex_init(pthread_mutex_t*, void*)
    int pthread_mutex_destroy(pthread_mutex_t*)
    int pthread_mutex_lock(pthread_mutex_t*)
    int pthread_mutex_unlock(pthread_mutex_t*)
    int pthread_condattr_init(pthread_condattr_t*)
    int pthread_condattr_setclock(pthread_condattr_t*, int)
    int pthread_condattr_destroy(pthread_condattr_t*)
    int pthread_cond_init(pthread_cond_t*, pthread_condattr_t*)
    int pthread_cond_destroy(pthread_cond_t*)
    int pthread_cond_signal(pthread_cond_t*)
    int pthread_cond_wait(pthread_cond_t*, pthread_mutex_t*)
    int pthread_cond_timedwait(pthread_cond_t*, pthread_mutex_t*, const timespec*)


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


cdef extern from *:
    """
    #include <sched.h>
    #include <unistd.h>
    #ifdef __linux__
    #include <sys/syscall.h>
    struct rtl_sched_attr {
        uint32_t size; uint32_t sched_policy; uint64_t sched_flags; int32_t sched_nice;
        uint32_t sched_priority; uint64_t sched_runtime; uint64_t sched_deadline; uint64_t sched_period;
        uint32_t sched_util_min; uint32_t sched_util_max;
    };
    /* The calling thread's fair-class time slice (EEVDF, Linux 6.12+): a short slice gives the
       thread an early virtual deadline, so it preempts a CPU-bound task when it wakes. */
    static int rtl_set_slice(uint64_t ns) {
    #ifdef SYS_sched_setattr
        struct rtl_sched_attr a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a; a.sched_policy = SCHED_OTHER; a.sched_runtime = ns;
        return (int)syscall(SYS_sched_setattr, 0, &a, 0);
    #else
        (void)ns; return -1;
    #endif
    }
    #else
    static int rtl_set_slice(uint64_t ns) { (void)ns; return -1; }
    #endif
    static int rtl_set_fifo(int prio) {
        struct sched_param p; memset(&p, 0, sizeof p); p.sched_priority = prio;
        return sched_setscheduler(0, SCHED_FIFO, &p);
    }
    """
    int rtl_set_slice(uint64_t ns) nogil
    int rtl_set_fifo(int prio) nogil


cdef enum:
    SCHED_DEFAULT = 0
    SCHED_SLICE = 1
    SCHED_FIFO_MODE = 2


cdef struct Stream:
    int fd
    bint open
    sockaddr_storage addr
    socklen_t addrlen
    int64_t queued
    int64_t sent
    int64_t dropped
    int64_t send_errors


cdef struct Shared:
    pthread_mutex_t lock
    pthread_cond_t cond
    bint stop
    # packet slots
    int capacity
    int packet_size
    int64_t* deadline
    uint64_t* order
    int32_t* stream_of
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
    # lateness of every sent packet, in ns (a ring)
    int64_t* lateness
    int lateness_cap
    int64_t lateness_w
    int64_t lateness_r
    int64_t lateness_overwritten
    # totals
    int64_t sent
    int64_t dropped
    int64_t refused
    int64_t send_errors
    # scheduling
    uint64_t slice_ns
    int fifo_priority
    int sched_mode
    int sched_errno


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


cdef int32_t _pop(Shared* s) noexcept nogil:
    cdef int32_t top = s.heap[0]
    s.heap_n -= 1
    if s.heap_n > 0:
        s.heap[0] = s.heap[s.heap_n]
        _sift_down(s, 0)
    return top


cdef int64_t _drop_stream(Shared* s, int sid) noexcept nogil:
    """Remove every queued packet of ``sid`` (lock held); returns how many."""
    cdef int i, j = 0
    cdef int32_t slot
    cdef int64_t n = 0
    for i in range(s.heap_n):
        slot = s.heap[i]
        if s.stream_of[slot] == sid:
            s.free_slots[s.free_n] = slot
            s.free_n += 1
            n += 1
        else:
            s.heap[j] = slot
            j += 1
    s.heap_n = j
    i = j // 2 - 1
    while i >= 0:
        _sift_down(s, i)
        i -= 1
    s.streams[sid].queued -= n
    s.streams[sid].dropped += n
    s.dropped += n
    return n


cdef void* _run(void* arg) noexcept nogil:
    cdef Shared* s = <Shared*>arg
    cdef timespec until
    cdef int32_t slot
    cdef int64_t now, due
    cdef Stream* st
    cdef ssize_t rc
    if s.fifo_priority > 0 and rtl_set_fifo(s.fifo_priority) == 0:
        s.sched_mode = SCHED_FIFO_MODE
    elif s.slice_ns > 0 and rtl_set_slice(s.slice_ns) == 0:
        s.sched_mode = SCHED_SLICE
    else:
        s.sched_errno = errno
    pthread_mutex_lock(&s.lock)
    while not s.stop:
        if s.heap_n == 0:
            pthread_cond_wait(&s.cond, &s.lock)
            continue
        due = s.deadline[s.heap[0]]
        now = _now_ns()
        if due > now:
            until.tv_sec = due // 1000000000
            until.tv_nsec = due % 1000000000
            pthread_cond_timedwait(&s.cond, &s.lock, &until)
            continue
        # every packet that is due leaves now, in deadline order, under one lock
        while s.heap_n > 0 and s.deadline[s.heap[0]] <= now:
            slot = _pop(s)
            st = &s.streams[s.stream_of[slot]]
            now = _now_ns()
            rc = sendto(
                st.fd, s.data + <size_t>slot * s.packet_size, s.length[slot], MSG_DONTWAIT | MSG_NOSIGNAL,
                <sockaddr*>&st.addr, st.addrlen,
            )
            st.queued -= 1
            if rc < 0:
                st.send_errors += 1
                s.send_errors += 1
            else:
                st.sent += 1
                s.sent += 1
            s.lateness[s.lateness_w % s.lateness_cap] = now - s.deadline[slot]
            s.lateness_w += 1
            if s.lateness_w - s.lateness_r > s.lateness_cap:
                s.lateness_r += 1
                s.lateness_overwritten += 1
            s.free_slots[s.free_n] = slot
            s.free_n += 1
    pthread_mutex_unlock(&s.lock)
    return NULL


def monotonic_ns() -> int:
    """``CLOCK_MONOTONIC`` in ns: the clock of every deadline (the same as ``time.monotonic_ns`` on Linux)."""
    return _now_ns()


cdef class Pacer:
    """Sends datagrams of registered streams at their deadlines, from a native thread."""

    cdef Shared* s
    cdef pthread_t thread
    cdef bint started
    cdef bint closed

    def __cinit__(
        self,
        int max_packets=8192,
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
        cdef Shared* s
        cdef pthread_condattr_t attr
        self.s = <Shared*>calloc(1, sizeof(Shared))
        if self.s == NULL:
            raise MemoryError()
        s = self.s
        s.capacity = max_packets
        s.packet_size = packet_size
        s.max_streams = max_streams
        s.lateness_cap = lateness_samples
        s.slice_ns = <uint64_t>slice_us * 1000
        s.fifo_priority = realtime_priority
        s.deadline = <int64_t*>calloc(max_packets, sizeof(int64_t))
        s.order = <uint64_t*>calloc(max_packets, sizeof(uint64_t))
        s.stream_of = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.length = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.data = <uint8_t*>calloc(<size_t>max_packets * packet_size, 1)
        s.free_slots = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.heap = <int32_t*>calloc(max_packets, sizeof(int32_t))
        s.streams = <Stream*>calloc(max_streams, sizeof(Stream))
        s.lateness = <int64_t*>calloc(lateness_samples, sizeof(int64_t))
        if (
            s.deadline == NULL or s.order == NULL or s.stream_of == NULL or s.length == NULL
            or s.data == NULL or s.free_slots == NULL or s.heap == NULL or s.streams == NULL
            or s.lateness == NULL
        ):
            self._free()
            raise MemoryError()
        for i in range(max_packets):
            s.free_slots[i] = max_packets - 1 - i
        s.free_n = max_packets
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&s.cond, &attr)
        pthread_condattr_destroy(&attr)
        pthread_mutex_init(&s.lock, NULL)

    cdef void _free(self) noexcept:
        cdef Shared* s = self.s
        if s == NULL:
            return
        free(s.deadline)
        free(s.order)
        free(s.stream_of)
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
        if self.s != NULL:
            pthread_mutex_destroy(&self.s.lock)
            pthread_cond_destroy(&self.s.cond)
        self._free()

    cdef void _stop(self) noexcept:
        if self.s == NULL or not self.started:
            return
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            self.s.stop = True
            pthread_cond_signal(&self.s.cond)
            pthread_mutex_unlock(&self.s.lock)
            # bounded: the thread blocks nowhere but on the condition just signalled (sendto is
            # non-blocking), so it leaves its loop at once
            pthread_join(self.thread, NULL)
        self.started = False

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
        """Stop and join the thread; queued packets are dropped and counted. Idempotent."""
        cdef int sid
        if self.closed:
            return
        self._stop()
        self.closed = True
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            for sid in range(self.s.max_streams):
                if self.s.streams[sid].open:
                    _drop_stream(self.s, sid)
                    self.s.streams[sid].open = False
            pthread_mutex_unlock(&self.s.lock)

    @property
    def running(self) -> bool:
        return self.started

    @property
    def scheduling(self) -> str:
        """How the thread is scheduled: ``fifo``, ``slice`` (a short EEVDF slice) or ``default``."""
        return ("default", "slice", "fifo")[self.s.sched_mode]

    def open_stream(self, int fd, str host, int port) -> int:
        """Register a socket (its fd: the caller keeps it open until ``close_stream``) and its
        destination; returns the stream id."""
        cdef sockaddr_in* a4
        cdef sockaddr_in6* a6
        cdef bytes h = host.encode("ascii")
        cdef int sid = -1
        cdef int i
        cdef Stream* st
        if self.closed:
            raise RuntimeError("the pacer is closed")
        if not 0 < port < 65536:
            raise ValueError(f"bad port {port}")
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            for i in range(self.s.max_streams):
                if not self.s.streams[i].open and self.s.streams[i].queued == 0:
                    sid = i
                    break
            if sid >= 0:
                memset(&self.s.streams[sid], 0, sizeof(Stream))
                self.s.streams[sid].fd = -1
            pthread_mutex_unlock(&self.s.lock)
        if sid < 0:
            raise RuntimeError(f"more than {self.s.max_streams} streams")
        st = &self.s.streams[sid]
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
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            st.fd = fd
            st.open = True
            pthread_mutex_unlock(&self.s.lock)
        return sid

    cdef Stream* _stream(self, int sid) except NULL:
        if not 0 <= sid < self.s.max_streams or not self.s.streams[sid].open:
            raise KeyError(f"no open stream {sid}")
        return &self.s.streams[sid]

    def close_stream(self, int sid) -> int:
        """Forget a stream: its queued packets are dropped (returned, counted); its fd is no longer used."""
        self._stream(sid)
        cdef int64_t n
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            n = _drop_stream(self.s, sid)
            self.s.streams[sid].open = False
            pthread_mutex_unlock(&self.s.lock)
        return n

    def enqueue(self, int sid, int64_t deadline_ns, packet) -> bool:
        """Queue ``packet`` to leave on ``sid`` at ``deadline_ns`` (``monotonic_ns`` clock). False: the
        queue is full, the packet is refused and counted (``refused``)."""
        self._stream(sid)
        cdef Py_buffer view
        PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE)
        cdef bint ok = False
        cdef int32_t slot
        try:
            if view.len > self.s.packet_size or view.len == 0:
                raise ValueError(f"a packet of {view.len} bytes (1..{self.s.packet_size})")
            with nogil:
                pthread_mutex_lock(&self.s.lock)
                if self.s.free_n > 0:
                    self.s.free_n -= 1
                    slot = self.s.free_slots[self.s.free_n]
                    memcpy(self.s.data + <size_t>slot * self.s.packet_size, view.buf, view.len)
                    self.s.length[slot] = <int32_t>view.len
                    self.s.deadline[slot] = deadline_ns
                    self.s.stream_of[slot] = sid
                    self.s.order[slot] = self.s.next_order
                    self.s.next_order += 1
                    self.s.heap[self.s.heap_n] = slot
                    self.s.heap_n += 1
                    _sift_up(self.s, self.s.heap_n - 1)
                    self.s.streams[sid].queued += 1
                    ok = True
                    if self.s.heap[0] == slot:
                        pthread_cond_signal(&self.s.cond)  # a new earliest deadline
                else:
                    self.s.refused += 1
                pthread_mutex_unlock(&self.s.lock)
        finally:
            PyBuffer_Release(&view)
        return ok

    def drop(self, int sid) -> int:
        """Drop every packet of ``sid`` not sent yet; returns how many (none of them will leave)."""
        self._stream(sid)
        cdef int64_t n
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            n = _drop_stream(self.s, sid)
            pthread_mutex_unlock(&self.s.lock)
        return n

    def stream_stats(self, int sid) -> tuple[int, int, int, int]:
        """``(queued, sent, dropped, send_errors)`` of one stream."""
        cdef Stream* st = self._stream(sid)
        cdef int64_t q, t, d, e
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            q, t, d, e = st.queued, st.sent, st.dropped, st.send_errors
            pthread_mutex_unlock(&self.s.lock)
        return q, t, d, e

    def queued(self, int sid) -> int:
        """Packets of ``sid`` waiting for their deadline."""
        cdef Stream* st = self._stream(sid)
        cdef int64_t q
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            q = st.queued
            pthread_mutex_unlock(&self.s.lock)
        return q

    def stats(self) -> dict[str, int]:
        """Totals: ``queued``, ``sent``, ``dropped`` (by drop/close), ``refused`` (queue full),
        ``send_errors``, ``lateness_overwritten`` (records lost to a full lateness ring)."""
        cdef int64_t q, t, d, r, e, o
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            q, t, d, r, e, o = (
                self.s.heap_n, self.s.sent, self.s.dropped, self.s.refused, self.s.send_errors,
                self.s.lateness_overwritten,
            )
            pthread_mutex_unlock(&self.s.lock)
        return {
            "queued": q, "sent": t, "dropped": d, "refused": r, "send_errors": e,
            "lateness_overwritten": o,
        }

    def drain_lateness(self) -> bytes:
        """The lateness (send time minus deadline, ns) of each packet sent since the last drain,
        oldest first, as native-endian int64s (``array('q', ...)``)."""
        cdef int64_t n, r, first, cap = self.s.lateness_cap
        cdef bytes out
        cdef int64_t* dst
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            r = self.s.lateness_r
            n = self.s.lateness_w - r
            self.s.lateness_r = self.s.lateness_w
        out = PyBytes_FromStringAndSize(NULL, n * 8)
        dst = <int64_t*>PyBytes_AS_STRING(out)
        with nogil:
            first = min(n, cap - r % cap)
            memcpy(dst, self.s.lateness + r % cap, first * 8)
            memcpy(dst + first, self.s.lateness, (n - first) * 8)
            pthread_mutex_unlock(&self.s.lock)
        return out
