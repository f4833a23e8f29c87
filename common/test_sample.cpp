// Tests for cpu/sample.h on a random tiny GPT-2:
//   - the KV-cache forward gives the same next-token log-probs as cpu/gpt2.h's full forward
//   - greedy generation with the cache gives the same tokens as greedy generation that reruns
//     gpt2.h's full forward over the whole sequence for every new token (also up to a full context)
//   - top_k = 1 equals greedy; the same seed gives the same tokens, another seed other tokens
//   - the token frequencies of temperature / top-k / top-p sampling match the distribution
//     those settings define (computed here in double), and nothing outside it is ever drawn
//   - generation stops at EOS and when the context is full; bad prompts are refused
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "cpu/gpt2.h"
#include "cpu/sample.h"
#include "dev/test_util.h"

static ModelConfig tiny_config() {
    ModelConfig c;
    c.max_seq_len = 32; c.vocab_size = 61; c.padded_vocab_size = pad_vocab(61);
    c.num_layers = 2; c.num_heads = 4; c.channels = 16;
    return c;
}

// One plain causal row of the given tokens; the positions in `scored` get a target.
static Batch causal_row(const std::vector<int>& seq, const std::vector<int>& targets) {
    Batch b;
    int n = (int)seq.size();
    b.reset(1, n);
    b.pair_ids.push_back(0);
    b.row_len[0] = n;
    for (int t = 0; t < n; t++) {
        b.tokens[t] = seq[t];
        b.pos[t] = t;
        b.end[t] = n;
        if (targets[t] >= 0) { b.target[t] = targets[t]; b.slot[t] = 0; b.side[t] = SIDE_CHOSEN; }
    }
    return b;
}

// Greedy decoding without a cache: the full forward of gpt2.h over the whole sequence each step.
static std::vector<int> greedy_full_forward(cpu::GPT2<float>& model, std::vector<int> seq, int n_new) {
    std::vector<int> out;
    const int V = model.cfg.vocab_size;
    for (int s = 0; s < n_new; s++) {
        std::vector<int> targets(seq.size(), -1);
        targets.back() = 0;  // any target: only the probabilities of the last position are used
        model.forward(causal_row(seq, targets));
        const float* p = &model.probs[0];
        int next = (int)(std::max_element(p, p + V) - p);
        out.push_back(next);
        if ((int)seq.size() == model.cfg.max_seq_len) break;
        seq.push_back(next);
    }
    return out;
}

int main() {
    const uint64_t seed = std::random_device{}();
    ModelConfig cfg = tiny_config();
    cpu::GPT2<float> model;
    model.init_random(cfg, seed);
    Rng noise(seed ^ 0x5eed);  // weights larger than GPT-2's init, so every token matters
    for (size_t i = 0; i < (size_t)cfg.vocab_size * cfg.channels; i++) model.params[i] += 0.5f * (float)noise.normal();
    for (size_t i = (size_t)cfg.padded_vocab_size * cfg.channels; i < model.params.size(); i++)
        model.params[i] += 0.3f * (float)noise.normal();
    const int V = cfg.vocab_size, T = cfg.max_seq_len;
    printf("seed %llu\n", (unsigned long long)seed);

    // 1. per-token log-probs: cache vs full forward, over a whole context of random tokens
    {
        std::vector<int> seq(T), targets(T);
        for (int& t : seq) t = noise.below(V);
        for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? seq[t + 1] : noise.below(V);
        model.forward(causal_row(seq, targets));
        cpu::Sampler s(cfg, model.params.data(), cpu::SampleSettings());
        double worst = 0;
        for (int t = 0; t < T; t++) {
            const float* z = s.step(seq[t]);
            double maxz = *std::max_element(z, z + V), sum = 0;
            for (int v = 0; v < V; v++) sum += std::exp((double)z[v] - maxz);
            double logp = z[targets[t]] - maxz - std::log(sum);
            worst = std::max(worst, std::fabs(logp - (double)model.logp[t]));
        }
        test_report(worst < 1e-4, "kv_cache_logprobs_match_full_forward", "max |diff| %.3g", worst);
    }

    // 2. greedy with the cache == greedy rerunning the full forward
    cpu::SampleSettings greedy;
    greedy.greedy = true;
    greedy.eos_token = -1;
    for (int trial = 0; trial < 3; trial++) {
        std::vector<int> prompt(1 + noise.below(6));
        for (int& t : prompt) t = noise.below(V);
        greedy.max_new_tokens = 12;
        cpu::Sampler s(cfg, model.params.data(), greedy);
        cpu::SampleResult r = s.generate(prompt);
        std::vector<int> ref = greedy_full_forward(model, prompt, 12);
        char name[64];
        snprintf(name, sizeof(name), "greedy_cache_equals_no_cache_%d", trial);
        test_report(r.tokens == ref && r.stop == cpu::SampleStop::max_new_tokens, name, "prompt %zu tokens",
                    prompt.size());
    }
    // ... up to a full context: a prompt of T-3 tokens leaves room for 4 new tokens
    {
        std::vector<int> prompt(T - 3);
        for (int& t : prompt) t = noise.below(V);
        greedy.max_new_tokens = 10;
        cpu::Sampler s(cfg, model.params.data(), greedy);
        cpu::SampleResult r = s.generate(prompt);
        std::vector<int> ref = greedy_full_forward(model, prompt, 4);
        test_report(r.tokens == ref && r.tokens.size() == 4 && r.stop == cpu::SampleStop::context_full,
                    "greedy_to_full_context", "%zu tokens, stop %d", r.tokens.size(), (int)r.stop);
    }

    // 3. top_k = 1 is greedy whatever the temperature; EOS stops generation
    std::vector<int> prompt = {3, 14, 15, 9, 26};
    greedy.max_new_tokens = 20;
    std::vector<int> greedy_tokens = cpu::Sampler(cfg, model.params.data(), greedy).generate(prompt).tokens;
    {
        cpu::SampleSettings k1;
        k1.top_k = 1; k1.temperature = 2.0f; k1.max_new_tokens = 20; k1.eos_token = -1; k1.seed = seed;
        test_report(cpu::Sampler(cfg, model.params.data(), k1).generate(prompt).tokens == greedy_tokens,
                    "top_k_1_equals_greedy");
        cpu::SampleSettings with_eos = greedy;
        with_eos.eos_token = greedy_tokens[4];
        size_t first = std::find(greedy_tokens.begin(), greedy_tokens.end(), with_eos.eos_token) - greedy_tokens.begin();
        cpu::SampleResult r = cpu::Sampler(cfg, model.params.data(), with_eos).generate(prompt);
        std::vector<int> want(greedy_tokens.begin(), greedy_tokens.begin() + first + 1);
        test_report(r.tokens == want && r.stop == cpu::SampleStop::eos, "stops_at_eos", "%zu tokens, stop %d",
                    r.tokens.size(), (int)r.stop);
    }

    // prompts it cannot run are refused, not read out of bounds
    {
        cpu::Sampler s(cfg, model.params.data(), greedy);
        std::vector<int> too_long(T + 1, 1), bad_id = {1, V, 2};
        bool refused = s.generate({}).stop == cpu::SampleStop::bad_prompt &&
                       s.generate(too_long).stop == cpu::SampleStop::bad_prompt &&
                       s.generate(bad_id).stop == cpu::SampleStop::bad_prompt && s.generate({-1}).tokens.empty();
        test_report(refused, "bad_prompts_refused");
    }

    // 4. sampling is a function of the seed
    {
        cpu::SampleSettings s;
        s.temperature = 1.5f; s.top_k = 40; s.top_p = 0.95f; s.max_new_tokens = 20; s.eos_token = -1; s.seed = seed;
        std::vector<int> a = cpu::Sampler(cfg, model.params.data(), s).generate(prompt).tokens;
        std::vector<int> b = cpu::Sampler(cfg, model.params.data(), s).generate(prompt).tokens;
        s.seed = seed + 1;
        std::vector<int> c = cpu::Sampler(cfg, model.params.data(), s).generate(prompt).tokens;
        test_report(a == b && a.size() == 20, "same_seed_same_tokens");
        test_report(a != c, "other_seed_other_tokens");
    }

    // 5. the sampling distribution: fixed logits, many draws, against the definition in double
    struct Case { const char* name; float temperature; int top_k; float top_p; };
    const Case cases[] = {{"sample_dist_temperature", 0.7f, 0, 1.0f},
                          {"sample_dist_top_k", 1.3f, 7, 1.0f},
                          {"sample_dist_top_p", 1.0f, 0, 0.6f},
                          {"sample_dist_top_k_top_p", 0.9f, 12, 0.75f}};
    std::vector<float> logits(V);
    for (float& z : logits) z = 1.5f * (float)noise.normal();
    for (const Case& c : cases) {
        // expected: sort by logit, keep top_k, softmax at the temperature, keep the nucleus
        std::vector<int> order(V);
        for (int v = 0; v < V; v++) order[v] = v;
        std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
        int keep = c.top_k > 0 ? c.top_k : V;
        std::vector<double> p(keep);
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += p[i] = std::exp((logits[order[i]] - logits[order[0]]) / c.temperature);
        int nucleus = 0;
        for (double cum = 0; nucleus < keep && cum < c.top_p;) cum += p[nucleus++] / sum;
        std::vector<double> want(V, 0.0);
        double kept = 0;
        for (int i = 0; i < nucleus; i++) kept += p[i];
        for (int i = 0; i < nucleus; i++) want[order[i]] = p[i] / kept;

        cpu::SampleSettings s;
        s.temperature = c.temperature; s.top_k = c.top_k; s.top_p = c.top_p; s.seed = seed + 7;
        cpu::Sampler sampler(cfg, model.params.data(), s);
        const int draws = 40000;
        std::vector<int> count(V, 0);
        for (int d = 0; d < draws; d++) count[sampler.choose(logits.data())]++;
        // The deviation of each token's frequency in standard errors. The normal approximation
        // needs an expected count of about 20 or more: a token expected 0.01 times and drawn once
        // would be 10 sigma off. Those rare tokens are pooled into one bin, tested the same way.
        double worst = 0;  // largest deviation in standard errors
        int outside = 0, rare_count = 0;
        double rare_want = 0;
        auto deviation = [&](int n, double q) {
            double se = std::sqrt(q * (1 - q) / draws) + 1e-9;
            return std::fabs(n / (double)draws - q) / se;
        };
        for (int v = 0; v < V; v++) {
            if (want[v] == 0) { outside += count[v]; continue; }
            if (want[v] * draws < 20) { rare_count += count[v]; rare_want += want[v]; continue; }
            worst = std::max(worst, deviation(count[v], want[v]));
        }
        // the pooled bin: normal if its expected count allows, else a Poisson tail bound (the
        // chance of exceeding mean + 5 sqrt(mean) + 5 is below 1e-6 for any mean up to 20)
        const double rare_mean = rare_want * draws;
        bool rare_ok = true;
        if (rare_mean >= 20) worst = std::max(worst, deviation(rare_count, rare_want));
        else rare_ok = rare_count <= rare_mean + 5 * std::sqrt(rare_mean) + 5;
        test_report(outside == 0 && worst < 5.0 && rare_ok, c.name,
                    "%d draws outside the allowed tokens, worst deviation %.1f sigma, rare tokens drawn %d times "
                    "(expected %.2f)", outside, worst, rare_count, rare_mean);
    }
    return test_exit();
}
