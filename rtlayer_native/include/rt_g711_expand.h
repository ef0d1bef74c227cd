/* The G.711 expansion formulas, vectorised with AVX2 where the CPU has it (rtlayer_native/_g711.pyx).

   Plain C99 plus GCC attributes; tests/test_native_headers.py compiles this header on its own with
   -Wall -Wextra -Werror (with and without the AVX2 path). */
#ifndef RTLAYER_G711_EXPAND_H
#define RTLAYER_G711_EXPAND_H

#include <stdint.h>
#include <stddef.h>

#include "rt_common.h"

/* The G.711 expansion formulas, branch-free: with AVX2's per-lane shifts the compiler turns
   them into 8 samples an instruction sequence, faster than table look-ups. Used only where
   the CPU has AVX2 (checked once); elsewhere the 256-entry tables are used. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(RT_NO_DISPATCH) \
    && !defined(RT_SCALAR)
#define RT_G711_AVX2 1
__attribute__((target("avx2")))
RT_MAYBE_UNUSED static void rt_ulaw_expand_avx2(const uint8_t *restrict src, int16_t *restrict dst, ptrdiff_t n) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        int32_t u = (int32_t)src[i] ^ 0xFF;
        int32_t e = (u & 0x70) >> 4;
        /* 0x10000 * (e > 0) only sets bits above the 16 kept: it stops GCC from narrowing the
           shift to 16-bit lanes, which AVX2 cannot shift by a per-lane count. */
        int32_t t = ((((u & 0x0F) << 3) + 0x84 + 0x10000 * ((e + 7) >> 3)) << e) - 0x84;
        int32_t neg = -((u & 0x80) >> 7);  /* 0 or -1 */
        dst[i] = (int16_t)((t ^ neg) - neg);
    }
}
__attribute__((target("avx2")))
RT_MAYBE_UNUSED static void rt_alaw_expand_avx2(const uint8_t *restrict src, int16_t *restrict dst, ptrdiff_t n) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        uint32_t a = (uint32_t)src[i] ^ 0x55;
        uint32_t seg = (a >> 4) & 7;
        uint32_t nz = (seg + 7) >> 3;  /* 1 when seg > 0 */
        int32_t t = (int32_t)((((a & 0x0F) << 4) + 8 + 0x100 * nz) << (seg - nz));
        int32_t neg = (int32_t)(a >> 7) - 1;  /* -1 when the sign bit is clear */
        dst[i] = (int16_t)((t ^ neg) - neg);
    }
}
RT_MAYBE_UNUSED static int rt_g711_avx2(void) {
    static int has = -1;
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return has;
}
#else
#define RT_G711_AVX2 0
RT_MAYBE_UNUSED static void rt_ulaw_expand_avx2(const uint8_t *src, int16_t *dst, ptrdiff_t n) { (void)src; (void)dst; (void)n; }
RT_MAYBE_UNUSED static void rt_alaw_expand_avx2(const uint8_t *src, int16_t *dst, ptrdiff_t n) { (void)src; (void)dst; (void)n; }
RT_MAYBE_UNUSED static int rt_g711_avx2(void) { return 0; }
#endif

#endif /* RTLAYER_G711_EXPAND_H */
