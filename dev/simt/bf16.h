// dev/simt/bf16.h: __nv_bfloat16 and __nv_bfloat162 for the CPU (g++) build of the kernels.
// Under nvcc the kernels use CUDA's own cuda_bf16.h; this header stands in for it under g++ and is
// bit-exact with the toolkit's host conversions (checked by dev/simt/test_bf16 on all 2^16 bf16
// values and on millions of floats):
//   float -> bf16: round to nearest, ties to even; every NaN becomes the canonical 0x7FFF.
//   bf16 -> float: exact (the 16 bits become the high half of the float).
//   arithmetic: in float, then rounded to bf16 once (as CUDA's host code does; for + - * / this
//   equals a single correctly rounded bf16 operation, since float has more than 2*8+2 mantissa bits).
#pragma once
#include <cstdint>
#include <cstring>

namespace bf16_detail {
static inline uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// float -> bf16 bits, round to nearest even; NaN -> 0x7FFF.
static inline uint16_t float_to_bits_rn(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFFu;
    uint32_t upper = x >> 16, lower = x & 0xFFFFu;
    if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) upper++;   // carries into the exponent
    return (uint16_t)upper;                                               // (and to Inf) as it should
}
// float -> bf16 bits, truncation toward zero; NaN -> 0x7FFF.
static inline uint16_t float_to_bits_rz(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFFu;
    return (uint16_t)(x >> 16);
}
static inline float bits_to_float(uint16_t b) { return bits_float((uint32_t)b << 16); }
} // namespace bf16_detail

struct alignas(2) __nv_bfloat16 {
    uint16_t __x;
    __nv_bfloat16() = default;
    // From float only: ints and doubles convert to float first (exact for |int| <= 2^24; a double
    // is rounded twice, which CUDA's direct double/int conversions avoid: use floats).
    __nv_bfloat16(float f) : __x(bf16_detail::float_to_bits_rn(f)) {}
    operator float() const { return bf16_detail::bits_to_float(__x); }
};

struct alignas(4) __nv_bfloat162 {
    __nv_bfloat16 x, y;   // x is the low half of the 32-bit word, y the high half
    __nv_bfloat162() = default;
    __nv_bfloat162(__nv_bfloat16 lo, __nv_bfloat16 hi) : x(lo), y(hi) {}
};

static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) { __nv_bfloat16 b; b.__x = bits; return b; }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }

static inline __nv_bfloat16 __float2bfloat16(float f) { return __ushort_as_bfloat16(bf16_detail::float_to_bits_rn(f)); }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
static inline __nv_bfloat16 __float2bfloat16_rz(float f) { return __ushort_as_bfloat16(bf16_detail::float_to_bits_rz(f)); }
static inline float __bfloat162float(__nv_bfloat16 b) { return bf16_detail::bits_to_float(b.__x); }

static inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
    return __nv_bfloat162(__float2bfloat16(lo), __float2bfloat16(hi));
}
static inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 lo, __nv_bfloat16 hi) { return __nv_bfloat162(lo, hi); }
static inline float __low2float(__nv_bfloat162 v) { return __bfloat162float(v.x); }
static inline float __high2float(__nv_bfloat162 v) { return __bfloat162float(v.y); }

// Arithmetic: compute in float, round once.
static inline __nv_bfloat16 __hadd(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16((float)a + (float)b); }
static inline __nv_bfloat16 __hsub(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16((float)a - (float)b); }
static inline __nv_bfloat16 __hmul(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16((float)a * (float)b); }
static inline __nv_bfloat16 __hdiv(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16((float)a / (float)b); }
static inline __nv_bfloat16 __hneg(__nv_bfloat16 a) { return __float2bfloat16(-(float)a); }   // NaN -> 0x7FFF, as on the host

static inline __nv_bfloat16 operator+(__nv_bfloat16 a, __nv_bfloat16 b) { return __hadd(a, b); }
static inline __nv_bfloat16 operator-(__nv_bfloat16 a, __nv_bfloat16 b) { return __hsub(a, b); }
static inline __nv_bfloat16 operator*(__nv_bfloat16 a, __nv_bfloat16 b) { return __hmul(a, b); }
static inline __nv_bfloat16 operator/(__nv_bfloat16 a, __nv_bfloat16 b) { return __hdiv(a, b); }
static inline __nv_bfloat16 operator-(__nv_bfloat16 a) { return __hneg(a); }
static inline __nv_bfloat16& operator+=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = a + b; }
static inline __nv_bfloat16& operator-=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = a - b; }
static inline __nv_bfloat16& operator*=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = a * b; }
static inline __nv_bfloat16& operator/=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = a / b; }
