// Tests of the threaded random initialisation (common/model_init.h): for 1, 2, 3 and 7 threads
// and the default (one per core), in float and double, the whole parameter buffer is bit-identical
// to the one sequential SplitMix64 stream the initialisation was before it had threads (kept
// below as the reference), for two seeds (one whose state wraps around 2^64 at once); the chunk
// size follows the thread count, so chunks start at other draws, inside tensors, each time. And
// the stream's jump (Rng::skip) lands where stepping does.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/model_init.h"
#include "dev/test_util.h"

// The initialisation as one loop: every normal value from one generator, tensor after tensor in
// buffer order (common/model_init.h up to its threaded version, unchanged).
template <typename Real>
static void sequential_init(const ModelConfig& c, uint64_t seed, Real* params) {
    ParamTensors<Real> param(params, c);
    Rng rng(seed);
    const size_t V = c.vocab_size, C = c.channels, L = c.num_layers, maxT = c.max_seq_len;
    const double resid_std = 0.02 / std::sqrt(2.0 * c.num_layers);
    auto normal = [&](Real* p, size_t n, double sd) {
        for (size_t j = 0; j < n; j++) p[j] = (Real)(sd * rng.normal());
    };
    normal(param.wte, V * C, 0.02);
    normal(param.wpe, maxT * C, 0.02);
    normal(param.qkvw, L * 3 * C * C, 0.02);
    normal(param.attprojw, L * C * C, resid_std);
    normal(param.fcw, L * 4 * C * C, 0.02);
    normal(param.fcprojw, L * C * 4 * C, resid_std);
    std::fill_n(param.ln1w, L * C, (Real)1);
    std::fill_n(param.ln2w, L * C, (Real)1);
    std::fill_n(param.lnfw, C, (Real)1);
}

// 3 layers, C = 24, V = 61 (padded to 128: 67 zero rows of wte), maxT = 40: 25752 parameters,
// 23784 of them normal values
static ModelConfig small_config() {
    ModelConfig c;
    c.max_seq_len = 40; c.vocab_size = 61; c.padded_vocab_size = pad_vocab(61);
    c.num_layers = 3; c.num_heads = 2; c.channels = 24;
    return c;
}

template <typename Real>
static void check_thread_counts(const char* type, uint64_t seed) {
    const ModelConfig c = small_config();
    std::vector<Real> want(num_parameters(c), (Real)0);
    sequential_init(c, seed, want.data());
    for (int threads : {1, 2, 3, 7, 0}) {
        std::vector<Real> got(want.size(), (Real)0);
        gpt2_init_params(c, seed, got.data(), threads);
        size_t first_diff = want.size();
        for (size_t i = 0; i < want.size() && first_diff == want.size(); i++)
            if (memcmp(&got[i], &want[i], sizeof(Real)) != 0) first_diff = i;
        const std::string name = std::string("init_") + type + "_seed_" + (seed == 1337 ? "1337" : "max") +
                                 "_threads_" + (threads ? std::to_string(threads) : "default") + "_is_sequential";
        test_report(first_diff == want.size(), name.c_str(), "parameter %zu of %zu is %.9g, the sequential loop's %.9g",
                    first_diff, want.size(), first_diff < want.size() ? (double)got[first_diff] : 0.0,
                    first_diff < want.size() ? (double)want[first_diff] : 0.0);
    }
}

int main() {
    // the jump: k draws skipped = k draws taken, across the 2^64 wrap too
    for (uint64_t seed : {uint64_t(1337), ~uint64_t(0)}) {
        Rng stepped(seed), jumped(seed);
        for (int k = 0; k < 1001; k++) stepped.next_u64();
        jumped.skip(1001);
        const std::string name = std::string("rng_skip_equals_stepping_seed_") + (seed == 1337 ? "1337" : "max");
        test_report(stepped.next_u64() == jumped.next_u64(), name.c_str(), "states differ after 1001 draws");
    }
    for (uint64_t seed : {uint64_t(1337), ~uint64_t(0)}) {
        check_thread_counts<float>("float", seed);
        check_thread_counts<double>("double", seed);
    }
    // the weights of seed 1337 as this project has always drawn them: the hash of the buffer the
    // sequential loop made before the initialisation had threads (g++ and glibc's log and cos)
    const ModelConfig c = small_config();
    std::vector<float> params(num_parameters(c), 0.0f);
    gpt2_init_params(c, 1337, params.data());
    const uint64_t h = hash_bytes(params.data(), params.size() * sizeof(float));
    test_report(h == 0x35dfba30af413f80ull, "init_float_seed_1337_is_the_pinned_weights",
                "hash %016llx, pinned 35dfba30af413f80", (unsigned long long)h);
    return test_exit();
}
