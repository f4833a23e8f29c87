// dev/cuda/test_bf16.cpp: checks that dev/simt/bf16.h (the CPU build's __nv_bfloat16) is bit-exact
// with the CUDA toolkit's own host implementation (dev/cuda/bf16_toolkit_ref.cpp): every one of the
// 2^16 bf16 values to float, float to bf16 on every (sign, exponent, top mantissa) pattern with the
// rounding-critical low halves plus millions of random floats (NaN, Inf, denormals, ties), and the
// four arithmetic operators and negation on a million random pairs.
#include "common/rng.h"
#include "dev/simt/bf16.h"
#include "dev/test_util.h"
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstring>

uint16_t toolkit_float2bfloat16(float f);
uint16_t toolkit_float2bfloat16_rn(float f);
uint16_t toolkit_float2bfloat16_rz(float f);
uint16_t toolkit_bfloat16_ctor(float f);
float toolkit_bfloat162float(uint16_t b);
uint16_t toolkit_arith(int op, uint16_t a, uint16_t b);
uint32_t toolkit_floats2bfloat162_rn(float lo, float hi);

static uint64_t rng_state;
static uint64_t next_u64() { return splitmix64_next(&rng_state); }
static float float_from(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bits_from(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// Compares all float->bf16 conversions of ours with the toolkit's on one input; counts mismatches
// and remembers the first one.
struct ConvertCheck {
    long mismatches = 0, checked = 0;
    uint32_t first_bad = 0;
    void check(uint32_t u) {
        float f = float_from(u);
        bool ok = __bfloat16_as_ushort(__float2bfloat16(f)) == toolkit_float2bfloat16(f)
               && __bfloat16_as_ushort(__float2bfloat16_rn(f)) == toolkit_float2bfloat16_rn(f)
               && __bfloat16_as_ushort(__float2bfloat16_rz(f)) == toolkit_float2bfloat16_rz(f)
               && __bfloat16_as_ushort(__nv_bfloat16(f)) == toolkit_bfloat16_ctor(f);
        checked++;
        if (!ok && mismatches++ == 0) first_bad = u;
    }
    void report(const char* name) {
        test_report(mismatches == 0, name, "%ld of %ld floats differ, first 0x%08x: ours 0x%04x, toolkit 0x%04x",
                    mismatches, checked, first_bad, __bfloat16_as_ushort(__float2bfloat16(float_from(first_bad))),
                    toolkit_float2bfloat16(float_from(first_bad)));
    }
};

int main() {
    rng_state = (uint64_t)std::chrono::high_resolution_clock::now().time_since_epoch().count();
    printf("seed %" PRIu64 "\n", rng_state);

    // 1. every bf16 value to float (NaN payloads included: compare bits)
    {
        long bad = 0; uint32_t first = 0;
        for (uint32_t b = 0; b < 65536; b++) {
            uint32_t ours = bits_from(__bfloat162float(__ushort_as_bfloat16((uint16_t)b)));
            uint32_t theirs = bits_from(toolkit_bfloat162float((uint16_t)b));
            uint32_t via_operator = bits_from((float)__ushort_as_bfloat16((uint16_t)b));
            if ((ours != theirs || via_operator != theirs) && bad++ == 0) first = b;
        }
        test_report(bad == 0, "bf16_to_float_all_65536", "%ld values differ, first 0x%04x", bad, first);
    }

    // 2. float -> bf16 on every upper half with the low halves where rounding decides
    {
        const uint32_t lows[] = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF};
        ConvertCheck c;
        for (uint32_t hi = 0; hi < 65536; hi++)
            for (uint32_t lo : lows) c.check(hi << 16 | lo);
        c.report("float_to_bf16_all_ties_and_edges");
    }
    // 3. float -> bf16 on random bit patterns (covers NaN payloads, denormals, Inf neighbours),
    //    plus random floats near ties and random small/denormal magnitudes
    {
        ConvertCheck c;
        for (int i = 0; i < 8000000; i++) {
            uint64_t r = next_u64();
            c.check((uint32_t)r);
            uint32_t near_tie = ((uint32_t)(r >> 32) & 0xFFFF0000u) | (0x8000u + (uint32_t)(r >> 24 & 7) - 3);
            c.check(near_tie);
            c.check((uint32_t)(r >> 32) & 0x80FFFFFFu);   // exponent 0 or 1: denormals and tiny normals
        }
        c.report("float_to_bf16_24M_random");
    }
    // 4. arithmetic on random bf16 pairs (all bit patterns, so NaN and Inf operands too)
    {
        const char* names[] = {"bf16_add", "bf16_sub", "bf16_mul", "bf16_div", "bf16_neg"};
        for (int op = 0; op < 5; op++) {
            long bad = 0; uint16_t fa = 0, fb = 0;
            for (int i = 0; i < 1000000; i++) {
                uint64_t r = next_u64();
                uint16_t a = (uint16_t)r, b = (uint16_t)(r >> 16);
                if (i & 1) b = (uint16_t)((a & 0xFF80u) ^ (uint16_t)(r >> 32 & 0x807Fu));   // similar magnitudes
                __nv_bfloat16 x = __ushort_as_bfloat16(a), y = __ushort_as_bfloat16(b), z;
                switch (op) {
                    case 0: z = x + y; break;
                    case 1: z = x - y; break;
                    case 2: z = x * y; break;
                    case 3: z = x / y; break;
                    default: z = -x; break;
                }
                if (__bfloat16_as_ushort(z) != toolkit_arith(op, a, b) && bad++ == 0) { fa = a; fb = b; }
            }
            test_report(bad == 0, names[op], "%ld of 1000000 pairs differ, first (0x%04x, 0x%04x)", bad, fa, fb);
        }
    }
    // 5. bf16x2 packing: x is the low half of the 32-bit word, as in the toolkit
    {
        long bad = 0;
        for (int i = 0; i < 100000; i++) {
            uint64_t r = next_u64();
            float lo = float_from((uint32_t)r), hi = float_from((uint32_t)(r >> 32));
            __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
            uint32_t ours; memcpy(&ours, &v, 4);
            if (ours != toolkit_floats2bfloat162_rn(lo, hi)) bad++;
        }
        test_report(bad == 0, "bf162_pack_layout", "%ld of 100000 differ", bad);
        test_report(sizeof(__nv_bfloat16) == 2 && alignof(__nv_bfloat162) == 4 && sizeof(__nv_bfloat162) == 4,
                    "bf16_sizes", "sizeof bf16 %zu, bf162 %zu, alignof bf162 %zu",
                    sizeof(__nv_bfloat16), sizeof(__nv_bfloat162), alignof(__nv_bfloat162));
    }
    return test_exit();
}
