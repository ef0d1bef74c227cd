# Declarations of the resampler's sample loops, cimported by _resample.pyx (no module of its own).
# The C lives in include/rt_resample_kernels.h, which says how the kernels are dispatched and why
# their results do not depend on chunking.
from libc.stdint cimport int16_t, int64_t, uint8_t

cdef extern from "rt_resample_kernels.h":
    void rt_conv(const float* coef, int K, int K0, int L, int M, const float* const* streams,
                 int64_t w0, int64_t b0, int p0, int64_t count, float* y, int64_t jstride) noexcept nogil
    void rt_emit(const float* y, int64_t count, int L, int64_t jstride, int16_t* tmp, int16_t* dst16,
                 int chans, const uint8_t* enc, uint8_t* dst8) noexcept nogil
    void rt_deinterleave(const float* src, int64_t n, int M, float* dst, int64_t stride) noexcept nogil
    enum: MAX_CONV_TAPS "RT_MAX_CONV_TAPS"
    void rt_dot(const float* coef, int K, int L, int M, const float* x, int64_t x_abs,
                int64_t b0, int p0, int64_t count, float* y) noexcept nogil
