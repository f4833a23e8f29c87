// Benchmark of one CPU training step (forward + backward + AdamW) of GPT-2 124M at the shape
// llm.c's train_gpt2.c is usually timed at: B=4 rows of T=64 tokens, (almost) every token
// scored. Each row is one prefix-shared unit with P=1, C=R=31, so 62 of its 64 tokens have a
// target, like language-model training. Also times OpenBLAS sgemm on the layer shapes, in the
// same run, so the numbers can be read against what the BLAS can do on this machine, and checks
// the BLAS result (dev/bench_cpu_step.sh runs it with the BLAS kernels the environment asks for
// and with OpenBLAS's own choice).
//   usage: dev/bench_cpu_step [steps (default 5)] [threads (default all)]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/train_config.h"
#include "cpu/adamw.h"
#include "cpu/dpo.h"

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    if (argc > 2) omp_set_num_threads(atoi(argv[2]));
    openblas_set_num_threads(omp_get_max_threads());
    const int B = 4, T = 64;

    ModelConfig cfg;
    model_preset("d12", &cfg);
    cfg.vocab_size = 50257;
    cfg.padded_vocab_size = pad_vocab(50257);
    cpu::GPT2<float> model;
    model.init_random(cfg, 1);
    std::vector<float> m(model.params.size(), 0.0f), v(model.params.size(), 0.0f);
    cpu::AdamWSettings adamw;  // lr 1e-4, betas 0.9 / 0.999, eps 1e-8, no weight decay

    Rng rng(2);
    Batch b;
    b.reset(B, T);
    for (int r = 0; r < B; r++) {
        std::vector<int32_t> p(1), c(31), rj(31);
        for (auto& t : p) t = rng.below(50257);
        for (auto& t : c) t = rng.below(50257);
        for (auto& t : rj) t = rng.below(50257);
        b.pair_ids.push_back(r);
        write_unit(b, LAYOUT_SHARED, 0, r, 0, r, {p.data(), 1, c.data(), 31, rj.data(), 31});
    }
    std::vector<double> ref_c(B, -350.0), ref_r(B, -350.0);
    LossSpec spec;

    printf("GPT-2 124M (%.1fM parameters), B=%d T=%d, %d threads\n", num_parameters(cfg) / 1e6, B, T,
           omp_get_max_threads());
    double total = 0, fb_total = 0;
    for (int s = 0; s <= steps; s++) {
        double t0 = now();
        model.zero_grad();
        cpu::dpo_forward_backward(model, b, ref_c, ref_r, spec, 1.0 / B);
        double t1 = now();
        cpu::adamw_update_model(cfg, model.params.data(), m.data(), v.data(), model.grads.data(), 1.0f,
                                adamw, s + 1);
        double t2 = now();
        if (s == 0) continue;  // warm-up
        total += t2 - t0;
        fb_total += t1 - t0;
        printf("step %d: %.3f s (forward+backward %.3f s, zero_grad+AdamW %.3f s)\n", s, t2 - t0,
               t1 - t0, t2 - t1 + 0.0);
    }
    double per_step = total / steps;
    double tokens = (double)B * T;
    // FLOPs of a training step: 6 * (non-embedding params) per token for the linear layers, plus
    // the LM head (6 * C * V per scored token), plus attention (12 * L * T/2 * C per token, causal)
    double C = cfg.channels, L = cfg.num_layers, V = cfg.vocab_size;
    double lin = 6.0 * 12.0 * L * C * C * tokens, head = 6.0 * C * V * model.M();
    double att = 12.0 * L * (T / 2.0) * C * tokens;
    double flops = lin + head + att;
    printf("mean step %.3f s: %.0f tokens/s, %.1f GFLOP/s (forward+backward alone %.3f s)\n", per_step,
           tokens / per_step, flops / per_step / 1e9, fb_total / steps);

    // sgemm on the MLP's shape (N=256 tokens, 768 -> 3072), same threads; its result is checked
    // against a double loop, since BLAS kernels chosen for this CPU are what is being timed
    int N = B * T, K = 768, O = 3072;
    std::vector<float> x((size_t)N * K), w((size_t)O * K), y((size_t)N * O);
    for (auto& e : x) e = (float)rng.normal();
    for (auto& e : w) e = (float)rng.normal();
    double t0 = now();
    int reps = 20;
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, K, 1.0f, x.data(), K, w.data(), K, 0.0f, y.data(), O);
    double gemm = (now() - t0) / reps;
    double worst = 0;
    for (int n = 0; n < N; n += 37) {
        for (int o = 0; o < O; o += 101) {
            double ref = 0;
            for (int k = 0; k < K; k++) ref += (double)x[(size_t)n * K + k] * w[(size_t)o * K + k];
            worst = std::max(worst, std::fabs(ref - y[(size_t)n * O + o]) / std::sqrt((double)K));
        }
    }
    printf("OpenBLAS (%s kernels) sgemm %dx%dx%d: %.1f GFLOP/s, error vs double %.2g (%s)\n",
           openblas_get_corename(), N, O, K, 2.0 * N * O * K / gemm / 1e9, worst,
           worst < 1e-5 ? "ok" : "WRONG RESULTS");
    printf("tokens_per_sec %.1f\n", tokens / per_step);
    return 0;
}
