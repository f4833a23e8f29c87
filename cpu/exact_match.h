// Exact-match rate of greedy generation on held-out prompts: the fraction of pairs whose greedy
// continuation of the prompt (cpu/sample.h, KV cache) equals the chosen response token for
// token, its end token included. For the bundled sorting task this is "the model sorts the
// prompt's digits correctly"; a preference metric (rewards/accuracies) cannot show that.
//
//   double rate = cpu::exact_match_rate(cfg, params, val, n_prompts);   // the first n_prompts pairs
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "cpu/sample.h"
#include "data/pairs.h"

namespace cpu {

// Generation stops at the chosen response's last token (its end token) or after as many tokens
// as the chosen response has, so a continuation matches only if it ends where the response does.
inline double exact_match_rate(const ModelConfig& cfg, const float* params, const PairSet& set, long n_prompts) {
    const long n = std::min<long>(n_prompts, (long)set.size());
    if (n <= 0) return 0.0;
    SampleSettings ss;
    ss.greedy = true;
    long matches = 0;
    // prompts in parallel, a sampler (KV cache) per thread; BLAS inside runs single-threaded
#pragma omp parallel reduction(+ : matches)
    {
        Sampler sampler(cfg, params, ss);
#pragma omp for schedule(dynamic, 4)
        for (long i = 0; i < n; i++) {
            const int P = set.pairs[i].P, C = set.pairs[i].C;
            const int32_t* chosen = set.chosen(i);
            sampler.settings.max_new_tokens = C;
            sampler.settings.eos_token = C > 0 ? chosen[C - 1] : -1;
            SampleResult r = sampler.generate(std::vector<int>(set.prompt(i), set.prompt(i) + P));
            matches += r.tokens.size() == (size_t)C && std::equal(r.tokens.begin(), r.tokens.end(), chosen);
        }
    }
    return (double)matches / (double)n;
}

}  // namespace cpu
