/* Shared by the rtlayer_native headers. Each header is C99 (plus GCC/Clang extensions where noted),
   included by one Cython module, and checked on its own by tests/test_native_headers.py. */
#ifndef RTLAYER_COMMON_H
#define RTLAYER_COMMON_H

/* Header functions are static: an includer uses some of them, not necessarily all. */
#if defined(__GNUC__)
#define RT_MAYBE_UNUSED __attribute__((unused))
#else
#define RT_MAYBE_UNUSED
#endif

#endif /* RTLAYER_COMMON_H */
