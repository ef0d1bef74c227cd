/* What the pacer's thread needs from the OS and the compiler (rtlayer_native/_pacer.pyx): its
   scheduling class, sequentially consistent atomics, and a futex sleep with an absolute deadline.

   Plain C99 plus POSIX/Linux calls and GCC atomics; tests/test_native_headers.py compiles this header
   on its own with -Wall -Wextra -Werror. */
#ifndef RTLAYER_PACER_OS_H
#define RTLAYER_PACER_OS_H

/* syscall(), sched_setscheduler(), clock_gettime(): Python.h defines this first in the extension. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <sched.h>
#include <unistd.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <sys/syscall.h>
#include <errno.h>
#ifdef __linux__
#include <linux/futex.h>
#endif

#include "rt_common.h"

struct rtl_sched_attr {
    uint32_t size; uint32_t sched_policy; uint64_t sched_flags; int32_t sched_nice;
    uint32_t sched_priority; uint64_t sched_runtime; uint64_t sched_deadline; uint64_t sched_period;
    uint32_t sched_util_min; uint32_t sched_util_max;
};
/* The calling thread's fair-class time slice (EEVDF, Linux 6.12+): a short slice gives the
   thread an early virtual deadline, so it preempts a CPU-bound task when it wakes. */
RT_MAYBE_UNUSED static int rtl_set_slice(uint64_t ns) {
#ifdef SYS_sched_setattr
    struct rtl_sched_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a; a.sched_policy = SCHED_OTHER; a.sched_runtime = ns;
    return (int)syscall(SYS_sched_setattr, 0, &a, 0);
#else
    (void)ns; return -1;
#endif
}
RT_MAYBE_UNUSED static int rtl_set_fifo(int prio) {
    struct sched_param p; memset(&p, 0, sizeof p); p.sched_priority = prio;
    return sched_setscheduler(0, SCHED_FIFO, &p);
}
static inline uint64_t rtl_load64(uint64_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void rtl_store64(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t rtl_add64(uint64_t* p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline int rtl_cas64(uint64_t* p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline int64_t rtl_loadi64(int64_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void rtl_storei64(int64_t* p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int32_t rtl_load32(int32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void rtl_store32(int32_t* p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int32_t rtl_add32(int32_t* p, int32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
#ifdef __linux__
/* Sleep while *addr == val, until abs_ns on CLOCK_MONOTONIC (abs_ns < 0: no deadline). */
RT_MAYBE_UNUSED static void rtl_futex_wait(int32_t* addr, int32_t val, int64_t abs_ns) {
    struct timespec ts, *t = NULL;
    if (abs_ns >= 0) { ts.tv_sec = abs_ns / 1000000000; ts.tv_nsec = abs_ns % 1000000000; t = &ts; }
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET_PRIVATE, val, t, NULL, FUTEX_BITSET_MATCH_ANY);
}
RT_MAYBE_UNUSED static void rtl_futex_wake(int32_t* addr) { syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }
#else
/* No futex (macOS): sleep in steps of at most 1 ms, watching the word; coarser, still lock-free. */
RT_MAYBE_UNUSED static void rtl_futex_wait(int32_t* addr, int32_t val, int64_t abs_ns) {
    struct timespec now, d;
    int64_t left;
    while (__atomic_load_n(addr, __ATOMIC_SEQ_CST) == val) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = abs_ns < 0 ? 1000000 : abs_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        if (left <= 0) return;
        if (left > 1000000) left = 1000000;
        d.tv_sec = 0; d.tv_nsec = left;
        nanosleep(&d, NULL);
    }
}
RT_MAYBE_UNUSED static void rtl_futex_wake(int32_t* addr) { (void)addr; }
#endif

#endif /* RTLAYER_PACER_OS_H */
