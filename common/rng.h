// SplitMix64, the project's one random number generator: the step function (data order, the
// validation split, tests) and a small generator with uniform and normal draws (weight init,
// sampling). Deterministic and identical on every platform and compiler.
#pragma once
#include <cmath>
#include <cstdint>

// SplitMix64's state advances by this (2^64 / golden ratio) per draw, so the state after k draws
// from seed s is s + k * SPLITMIX64_STEP: any part of a stream can be drawn without the rest.
static const uint64_t SPLITMIX64_STEP = 0x9E3779B97F4A7C15ull;

// One step of SplitMix64: advances *state by SPLITMIX64_STEP and returns the mix of it.
inline uint64_t splitmix64_next(uint64_t* state) {
    uint64_t z = (*state += SPLITMIX64_STEP);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// SplitMix64 as a hash of one value: the first output of a generator seeded with x.
inline uint64_t splitmix64(uint64_t x) { return splitmix64_next(&x); }

struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed = 0) : state(seed) {}
    uint64_t next_u64() { return splitmix64_next(&state); }
    void skip(uint64_t draws) { state += draws * SPLITMIX64_STEP; }  // as if next_u64() were called `draws` times
    double uniform() { return (next_u64() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    int below(int n) { return (int)(uniform() * n); }                              // [0, n)
    double normal() {  // Box-Muller, one value per call, always two draws
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};
