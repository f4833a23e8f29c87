// dev/simt/bf16_toolkit_ref.cpp: the CUDA toolkit's own host bf16 routines (cuda_bf16.h compiled
// by g++ as host code), wrapped over raw bits so that dev/simt/test_bf16.cpp, which uses our
// dev/simt/bf16.h, can compare against them without the two __nv_bfloat16 types meeting.
#include <cuda_bf16.h>
#include <cstdint>
#include <cstring>

static uint16_t bits_of(__nv_bfloat16 b) { return static_cast<__nv_bfloat16_raw>(b).x; }
static __nv_bfloat16 from_bits(uint16_t u) { __nv_bfloat16_raw r; r.x = u; return __nv_bfloat16(r); }

uint16_t toolkit_float2bfloat16(float f) { return bits_of(__float2bfloat16(f)); }
uint16_t toolkit_float2bfloat16_rn(float f) { return bits_of(__float2bfloat16_rn(f)); }
uint16_t toolkit_float2bfloat16_rz(float f) { return bits_of(__float2bfloat16_rz(f)); }
uint16_t toolkit_bfloat16_ctor(float f) { return bits_of(__nv_bfloat16(f)); }
float toolkit_bfloat162float(uint16_t b) { return __bfloat162float(from_bits(b)); }

// op: 0 add, 1 sub, 2 mul, 3 div, 4 negate (b unused)
uint16_t toolkit_arith(int op, uint16_t a, uint16_t b) {
    __nv_bfloat16 x = from_bits(a), y = from_bits(b);
    switch (op) {
        case 0: return bits_of(__hadd(x, y));
        case 1: return bits_of(__hsub(x, y));
        case 2: return bits_of(__hmul(x, y));
        case 3: return bits_of(__hdiv(x, y));
        default: return bits_of(__hneg(x));
    }
}

uint32_t toolkit_floats2bfloat162_rn(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u; memcpy(&u, &v, 4); return u;
}
