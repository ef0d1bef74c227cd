# C-level access to the G.711 tables, shared with the fused transcoder (_resample.pyx).
from libc.stdint cimport int16_t, uint8_t

cdef const int16_t* ulaw_decode_table() noexcept nogil
cdef const int16_t* alaw_decode_table() noexcept nogil
cdef const uint8_t* ulaw_encode_table() noexcept nogil
cdef const uint8_t* alaw_encode_table() noexcept nogil
