/* The resampler's sample loops (rtlayer_native/_resample.pyx, declared in _kernels.pxd).

   Kernels are compiled twice on x86-64 Linux with GCC (x86-64-v3, i.e. AVX2 + FMA, and the portable
   baseline) and one is picked at load time, so a portable build still runs at full speed. Every
   output sample is computed by the same instruction sequence whichever call or vector lane it falls
   in, so results do not depend on chunking.

   Plain C99 plus GCC/Clang vector extensions; tests/test_native_headers.py compiles this header on
   its own with -Wall -Wextra -Werror in every configuration (dispatch, RT_NO_DISPATCH, RT_SCALAR). */
#ifndef RTLAYER_RESAMPLE_KERNELS_H
#define RTLAYER_RESAMPLE_KERNELS_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#include "rt_common.h"

/* RT_NO_DISPATCH / RT_SCALAR (compile-time defines) force the baseline and the plain-C paths,
   so that tests can check them on any machine. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(RT_NO_DISPATCH) && !defined(RT_SCALAR)
#define RT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RT_CLONES
#endif

#if defined(_MSC_VER)
#define restrict __restrict
#endif

#if defined(__GNUC__) && !defined(RT_SCALAR)
#define RT_VECTOR 1
typedef float rt_v8 __attribute__((vector_size(32)));
#endif

/* Convolution form, for small L and M: the outputs of one polyphase branch form an FIR over
   an input stream of stride M, computed 8, 32 or 64 outputs at a time with one coefficient
   broadcast per tap (64 = eight independent FMA chains, enough to hide their latency).
   streams[r][i] is window sample M * i + r; the window starts at input w0. Output k + L * j
   (relative to the first, whose newest input is b0 and branch p0) goes to y[k * jstride + j];
   the last block of a branch may write up to 63 floats of padding past its outputs. */
#define RT_MAX_CONV_TAPS 2048

RT_CLONES
RT_MAYBE_UNUSED static void rt_conv(const float *coef, int K, int K0, int L, int M,
                    const float *const *streams, int64_t w0, int64_t b0, int p0,
                    int64_t count, float *y, int64_t jstride)
{
    /* taps[m]: where tap m of the branch's first output reads; output j reads taps[m] + j */
    const float *taps[RT_MAX_CONV_TAPS];
    int64_t b = b0, q, j, J;
    int p = p0, k, m, l;
    for (k = 0; k < L && k < count; k++) {
        const float *c = coef + (int64_t)p * K + (K - K0);
        float *yk = y + k * jstride;
        J = (count - k + L - 1) / L;
        q = b - K0 + 1 - w0;
        for (m = 0; m < K0; m++, q++) taps[m] = streams[q % M] + q / M;
        for (j = 0; j < J;) {
#if defined(RT_VECTOR)
            if (J - j >= 48) {
                rt_v8 a[8] = {{0}};
                for (m = 0; m < K0; m++) {
                    const float *s = taps[m] + j;
                    float cm = c[m];
                    for (l = 0; l < 8; l++) {
                        rt_v8 x;
                        memcpy(&x, s + 8 * l, 32);
                        a[l] += cm * x;
                    }
                }
                memcpy(yk + j, a, sizeof a);
                j += 64;
            } else if (J - j >= 24) {
                rt_v8 a[4] = {{0}};
                for (m = 0; m < K0; m++) {
                    const float *s = taps[m] + j;
                    float cm = c[m];
                    for (l = 0; l < 4; l++) {
                        rt_v8 x;
                        memcpy(&x, s + 8 * l, 32);
                        a[l] += cm * x;
                    }
                }
                memcpy(yk + j, a, sizeof a);
                j += 32;
            } else {
                rt_v8 a0 = {0};
                for (m = 0; m < K0; m++) {
                    rt_v8 x;
                    memcpy(&x, taps[m] + j, 32);
                    a0 += c[m] * x;
                }
                memcpy(yk + j, &a0, 32);
                j += 8;
            }
#else
            float a0[8] = {0};
            for (m = 0; m < K0; m++)
                for (l = 0; l < 8; l++) a0[l] += c[m] * taps[m][j + l];
            memcpy(yk + j, a0, sizeof a0);
            j += 8;
#endif
        }
        p += M % L;
        b += M / L;
        if (p >= L) { p -= L; b++; }
    }
}

/* Round to nearest (ties away from zero) and saturate: written so that it vectorises
   (min/max, copysign, truncating convert). */
static inline int32_t rt_round(float v) {
    /* |v| stays far below 2^31 (the filters' gain is about 1), so convert first, then
       saturate as integers: both steps map to vector instructions. */
    int32_t s = (int32_t)(v + copysignf(0.5f, v));
    s = s > 32767 ? 32767 : s;
    return s < -32768 ? -32768 : s;
}

/* Store output n = k + L * j from y[k * jstride + j] as PCM16 (dst16[n * chans], when enc
   is NULL) or as G.711 through the 64 Ki-entry table enc (dst8[n]). Rounding runs first,
   contiguously (vectorised), into tmp (count + L * 8 int16); then the branches interleave. */
RT_CLONES
RT_MAYBE_UNUSED static void rt_emit(const float *restrict y, int64_t count, int L, int64_t jstride,
                    int16_t *restrict tmp, int16_t *restrict dst16, int chans,
                    const uint8_t *restrict enc, uint8_t *restrict dst8)
{
    int64_t j, k, J = (count + L - 1) / L;
    if (L == 1 && chans == 1 && enc == NULL) {
        for (j = 0; j < count; j++) dst16[j] = (int16_t)rt_round(y[j]);
        return;
    }
    for (k = 0; k < L; k++) {
        const float *yk = y + k * jstride;
        int16_t *tk = tmp + k * J;
        for (j = 0; j < J; j++) tk[j] = (int16_t)rt_round(yk[j]);
    }
    if (enc == NULL && chans == 1 && (L == 2 || L == 3)) {
        /* the common upsampling ratios: contiguous stores, then the generic loop for the tail */
        int64_t full = count / L;
        if (L == 2)
            for (j = 0; j < full; j++) {
                dst16[2 * j] = tmp[j];
                dst16[2 * j + 1] = tmp[J + j];
            }
        else
            for (j = 0; j < full; j++) {
                dst16[3 * j] = tmp[j];
                dst16[3 * j + 1] = tmp[J + j];
                dst16[3 * j + 2] = tmp[2 * J + j];
            }
        for (k = 0; k < count - full * L; k++) dst16[full * L + k] = tmp[k * J + full];
        return;
    }
    for (k = 0; k < L && k < count; k++) {
        const int16_t *tk = tmp + k * J;
        int64_t Jk = (count - k + L - 1) / L;
        if (enc != NULL) {
            uint8_t *d = dst8 + k;
            for (j = 0; j < Jk; j++) d[L * j] = enc[(uint16_t)tk[j]];
        } else {
            int16_t *d = dst16 + k * chans;
            int64_t step = (int64_t)L * chans;
            for (j = 0; j < Jk; j++) d[step * j] = tk[j];
        }
    }
}

/* streams[r][i] = src[M * i + r] for M * i + r < n, zeros after (up to `stride` each). */
RT_CLONES
RT_MAYBE_UNUSED static void rt_deinterleave(const float *restrict src, int64_t n, int M, float *restrict dst,
                            int64_t stride)
{
    int64_t i, r, valid;
    for (r = 0; r < M; r++) {
        float *d = dst + r * stride;
        valid = n > r ? (n - r + M - 1) / M : 0;
        if (valid > stride) valid = stride;
        /* constant strides for the common ratios let the compiler vectorise with shuffles */
        if (M == 2)
            for (i = 0; i < valid; i++) d[i] = src[2 * i + r];
        else if (M == 3)
            for (i = 0; i < valid; i++) d[i] = src[3 * i + r];
        else
            for (i = 0; i < valid; i++) d[i] = src[M * i + r];
        memset(d + valid, 0, (size_t)(stride - valid) * sizeof(float));
    }
}

/* Dot-product form, for large L or M (the 44.1 kHz pairs): one output at a time, K taps
   (a multiple of 8) as 8 partial sums added in a fixed order. x[0] is input x_abs. */
RT_CLONES
RT_MAYBE_UNUSED static void rt_dot(const float *coef, int K, int L, int M, const float *x, int64_t x_abs,
                   int64_t b0, int p0, int64_t count, float *y)
{
    int64_t b = b0, n;
    int p = p0, m;
    for (n = 0; n < count; n++) {
        const float *c = coef + (int64_t)p * K;
        const float *s = x + (b - K + 1 - x_abs);
#if defined(RT_VECTOR)
        rt_v8 a = {0};
        for (m = 0; m < K; m += 8) {
            rt_v8 cv, xv;
            memcpy(&cv, c + m, 32);
            memcpy(&xv, s + m, 32);
            a += cv * xv;
        }
        y[n] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
#else
        float a[8] = {0};
        int l;
        for (m = 0; m < K; m += 8)
            for (l = 0; l < 8; l++) a[l] += c[m + l] * s[m + l];
        y[n] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
#endif
        p += M % L;
        b += M / L;
        if (p >= L) { p -= L; b++; }
    }
}

#endif /* RTLAYER_RESAMPLE_KERNELS_H */
