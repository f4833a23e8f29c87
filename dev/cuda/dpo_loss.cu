// dev/cuda/dpo_loss.cu: the fused DPO loss (kernels/dpo_loss.cuh), checked and benchmarked.
//   ./dev/cuda/dpo_loss     checks, for every loss type and mixes of them, on random pairs (counts
//                           of 1 included, scored tokens in row order or shuffled, some pairs with
//                           |h| in the hundreds): per-pair sums, loss and dlogp against the CPU
//                           trainer's pair loop (cpu/dpo_loss.h: sums by slot, pair_loss, times
//                           scale) in double, and against the same loop in float; the plan
//                           builder's errors on bad metadata
//   ./dev/cuda/dpo_loss 1   (GPU only) times version 1 on a micro-batch of 64 pairs, 32k tokens
// Builds with g++ on the CPU execution layer (both thread orders, ASan, -DENABLE_FP32) and nvcc.
#include <algorithm>
#include <cstring>
#include <vector>

#include "dev/cuda/expect_exit.h"
#include "dev/simt/kernel_test.h"
#include "cpu/dpo_loss.h"
#include "kernels/dpo_loss.cuh"

// The scored tokens of a random micro-batch: per token slot, side, logp, mean logit; per pair the
// reference sums.
struct ScoredTokens {
    int S = 0, M = 0;
    std::vector<int32_t> slot;
    std::vector<int8_t> side;
    std::vector<float> logp, mean_logit, ref_chosen, ref_rejected;
};

// S pairs; counts per side from 1 to max_count (the first pair 1 and 1); in row order (each pair
// chosen then rejected, as the shared layout) or shuffled.
static ScoredTokens random_tokens(int S, int max_count, bool shuffled, std::mt19937_64& rng) {
    ScoredTokens b;
    b.S = S;
    std::uniform_int_distribution<int> count(1, max_count);
    for (int s = 0; s < S; s++)
        for (int8_t side = 1; side <= 2; side++) {
            const int n = s == 0 ? 1 : count(rng);
            for (int i = 0; i < n; i++) { b.slot.push_back(s); b.side.push_back(side); }
        }
    b.M = (int)b.slot.size();
    if (shuffled) {
        std::vector<int> perm(b.M);
        for (int m = 0; m < b.M; m++) perm[m] = m;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int32_t> slot(b.M);
        std::vector<int8_t> side(b.M);
        for (int m = 0; m < b.M; m++) { slot[m] = b.slot[perm[m]]; side[m] = b.side[perm[m]]; }
        b.slot = slot;
        b.side = side;
    }
    b.logp.resize(b.M);
    b.mean_logit.resize(b.M);
    fill_uniform(b.logp, -6.0f, -0.01f, rng);
    fill_uniform(b.mean_logit, -3.0f, 3.0f, rng);
    // references near the policy sums (|h| of a few), every fifth pair far off (|h| in hundreds)
    std::vector<double> chosen(S, 0.0), rejected(S, 0.0);
    for (int m = 0; m < b.M; m++) (b.side[m] == 1 ? chosen : rejected)[b.slot[m]] += b.logp[m];
    std::uniform_real_distribution<double> near(-10.0, 10.0), far(-3000.0, 3000.0);
    for (int s = 0; s < S; s++) {
        b.ref_chosen.push_back((float)(chosen[s] + (s % 5 == 4 ? far(rng) : near(rng))));
        b.ref_rejected.push_back((float)(rejected[s] + near(rng)));
    }
    return b;
}

// The CPU trainer's pair loop (cpu/dpo_loss.h: what cpu::dpo_forward_backward runs between the
// model's forward and backward) in Real, on the same scored tokens.
template <typename Real> struct PairLoop {
    std::vector<PairResult> res;  // per pair: sums, counts, references, loss
    std::vector<Real> dlogp;      // per scored token
};

template <typename Real>
static PairLoop<Real> pair_loop(const ScoredTokens& b, const LossSpec& spec, double scale) {
    const std::vector<Real> logp(b.logp.begin(), b.logp.end());
    const std::vector<Real> mean_logit(b.mean_logit.begin(), b.mean_logit.end());
    const std::vector<double> ref_chosen(b.ref_chosen.begin(), b.ref_chosen.end());
    const std::vector<double> ref_rejected(b.ref_rejected.begin(), b.ref_rejected.end());
    PairLoop<Real> r;
    r.dlogp.resize(b.M);
    r.res = cpu::dpo_pair_losses<Real>(
        cpu::gather_pair_logps<Real>(logp.data(), mean_logit.data(), b.slot.data(), b.side.data(), b.M, b.S),
        ref_chosen, ref_rejected, spec, scale, b.slot.data(), b.side.data(), b.M, r.dlogp.data());
    return r;
}

// A micro-batch's scored tokens on the device, with the plan the kernel reads (built on the host);
// launch() runs the kernel once: per-pair results (S,) and dlogp (M,).
struct DeviceTokens {
    const int S;
    const DpoPairPlan plan;
    DeviceBuffer<float> logp, mean_logit, ref_chosen, ref_rejected, dlogp;
    DeviceBuffer<int> offsets, tokens;
    DeviceBuffer<PairResult> results;
    explicit DeviceTokens(const ScoredTokens& b)
        : S(b.S), plan(dpo_pair_plan(b.slot.data(), b.side.data(), b.M, b.S)), logp(b.M),
          mean_logit(b.M), ref_chosen(b.S), ref_rejected(b.S), dlogp(b.M),
          offsets(plan.offsets.size()), tokens(b.M), results(b.S) {
        logp.upload(b.logp); mean_logit.upload(b.mean_logit);
        ref_chosen.upload(b.ref_chosen); ref_rejected.upload(b.ref_rejected);
        offsets.upload(plan.offsets); tokens.upload(plan.tokens);
    }
    void launch(const LossSpec& spec, float scale) {
        dpo_loss_forward_backward(results.ptr, dlogp.ptr, logp.ptr, mean_logit.ptr, offsets.ptr,
                                  tokens.ptr, ref_chosen.ptr, ref_rejected.ptr, spec, S, scale, nullptr);
    }
};

// Worst |got - want| / (|want| + floor) so far, and whether anything was NaN.
struct Worst {
    double value = 0.0;
    void add(double got, double want, double floor) {
        const double e = std::fabs(got - want) / (std::fabs(want) + floor);
        value = (e == e) ? std::max(value, e) : INFINITY;
    }
};

struct Outcome {
    Worst sums, loss, dlogp, float_path;
    bool counts_exact = true, deterministic = true;
};

static void run_case(Outcome& out, const ScoredTokens& b, const LossSpec& spec, float scale) {
    DeviceTokens d(b);
    auto run = [&]() {
        d.launch(spec, scale);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaDeviceSynchronize());
    };
    run();  // dlogp starts as whatever cudaMalloc left (NaN on the CPU layer): all M overwritten
    const std::vector<PairResult> res = d.results.download();
    const std::vector<float> dlogp = d.dlogp.download();
    const PairLoop<double> want = pair_loop<double>(b, spec, scale);
    const PairLoop<float> cpu_float = pair_loop<float>(b, spec, scale);

    // coefficients are compared on the scale of `scale` (they are O(scale * beta * weight)): near
    // a zero of d loss / d h (cDPO's h = log((1-eps)/eps)) only absolute error means anything
    const double dfloor = scale;
    for (int s = 0; s < b.S; s++) {
        const PairResult &r = res[s], &w = want.res[s];
        // the sums are float values added in double: only the order differs from the reference
        out.sums.add(r.policy.chosen, w.policy.chosen, 1e-9);
        out.sums.add(r.policy.rejected, w.policy.rejected, 1e-9);
        out.sums.add(r.policy.logit_chosen, w.policy.logit_chosen, 1e-9);
        out.sums.add(r.policy.logit_rejected, w.policy.logit_rejected, 1e-9);
        out.counts_exact = out.counts_exact && r.policy.n_chosen == w.policy.n_chosen &&
                           r.policy.n_rejected == w.policy.n_rejected &&
                           r.ref_chosen == w.ref_chosen && r.ref_rejected == w.ref_rejected;
        out.loss.add(r.loss, w.loss, 1.0);
        out.float_path.add(r.loss, cpu_float.res[s].loss, 1.0);
    }
    for (int m = 0; m < b.M; m++) {
        out.dlogp.add(dlogp[m], want.dlogp[m], dfloor);
        out.float_path.add(dlogp[m], cpu_float.dlogp[m], dfloor);
    }
    run();
    const std::vector<PairResult> again = d.results.download();
    const std::vector<float> dlogp_again = d.dlogp.download();
    out.deterministic = out.deterministic &&
                        memcmp(again.data(), res.data(), res.size() * sizeof(PairResult)) == 0 &&
                        memcmp(dlogp_again.data(), dlogp.data(), dlogp.size() * sizeof(float)) == 0;
}

static void test_spec(const char* order, const char* what, const LossSpec& spec, std::mt19937_64& rng) {
    Outcome out;
    const float scale = 1.0f / 48.0f;  // 1 / pairs of a step
    run_case(out, random_tokens(1, 1, false, rng), spec, scale);    // one pair, one token a side
    run_case(out, random_tokens(7, 5, false, rng), spec, scale);    // row order, short responses
    run_case(out, random_tokens(45, 90, true, rng), spec, scale);   // shuffled, sides > 32 tokens
    char name[240], why[160];
    auto check = [&](bool ok, const char* part) {
        snprintf(name, sizeof name, "dpo_loss %s %s order=%s", what, part, order);
        test_report(ok, name, "%s", why);
    };
    auto check_error = [&](double error, double tol, const char* part) {
        snprintf(why, sizeof why, "relative error %.3g > %.3g", error, tol);
        check(error <= tol, part);
    };
    // tolerances: the sums are float values added in double (1e-12 relative: only the order of
    // the additions differs). The loss is pair_loss in float on the sums rounded to float: sums
    // of up to 90 tokens * 6 = 540 lose 540 * 6e-8 each, so h = beta * (...) is off by up to
    // ~beta * 2 * 3.2e-5 (3.2e-5 at beta 0.5), the loss by as much and d loss / d h by a quarter
    // of it: against double, 1e-4 relative (floor 1 for the loss, `scale` for the coefficients)
    // leaves a margin of 3 or more. Against the CPU trainer's float loop (the same float
    // operations on the same rounded sums; a GPU's expf/log1pf differ by an ulp or two): 1e-6.
    check_error(out.sums.value, 1e-12, "per-pair sums vs double");
    check_error(out.loss.value, 1e-4, "loss vs double");
    check_error(out.dlogp.value, 1e-4, "dlogp vs double");
    check_error(out.float_path.value, 1e-6, "loss, coefficients vs CPU float loop");
    snprintf(why, sizeof why, "a count or reference differs from the CPU loop's");
    check(out.counts_exact, "per-pair token counts and references");
    snprintf(why, sizeof why, "results or dlogp differ between two runs");
    check(out.deterministic, "second run bit-identical");
}

// Version 1 on a micro-batch of 64 pairs with 256 scored tokens a side (32k tokens), shuffled.
static void benchmark(int version) {
    std::mt19937_64 rng(1);
    const ScoredTokens b = random_tokens(64, 511, true, rng);
    DeviceTokens d(b);
    const double ms = benchmark_ms([&] { d.launch(LossSpec(), 1.0f / 64); });
    printf("dpo_loss version %d: S=%d M=%d: %.4f ms (a launch of this size is latency-bound)\n",
           version, b.S, b.M, ms);
}

int main(int argc, char** argv) {
    if (const int version = benchmark_version(argc, argv, 1)) {
        benchmark(version);
        return 0;
    }
    std::mt19937_64 rng(test_seed());
    printf("precision %s (this kernel has no floatX: logp, coefficients fp32 in both builds)\n", PRECISION_NAME);
    struct Named { const char* name; LossSpec spec; };
    std::vector<Named> specs;
    auto add = [&](const char* name, float sigmoid, float ipo, float hinge, float sft, float beta, float smoothing) {
        LossSpec s;
        s.weight[LOSS_SIGMOID] = sigmoid; s.weight[LOSS_IPO] = ipo;
        s.weight[LOSS_HINGE] = hinge; s.weight[LOSS_SFT] = sft;
        s.beta = beta; s.label_smoothing = smoothing;
        specs.push_back({name, s});
    };
    add("sigmoid", 1, 0, 0, 0, 0.1f, 0.0f);
    add("sigmoid cDPO (smoothing 0.2, beta 0.5)", 1, 0, 0, 0, 0.5f, 0.2f);
    add("ipo", 0, 1, 0, 0, 0.1f, 0.0f);
    add("hinge", 0, 0, 1, 0, 0.1f, 0.0f);
    add("sft", 0, 0, 0, 1, 0.1f, 0.0f);
    add("sigmoid + 0.5 sft", 1, 0, 0, 0.5f, 0.1f, 0.0f);
    add("mix of all four (smoothing 0.1)", 0.7f, 0.2f, 0.3f, 0.1f, 0.2f, 0.1f);
    for_each_thread_order([&](const char* order) {
        for (const Named& n : specs) test_spec(order, n.name, n.spec, rng);
    });
    // bad metadata: exit status 1 and a message naming the token or pair
    auto plan_of = [](std::vector<int32_t> slot, std::vector<int8_t> side, int S) {
        return [=]() { dpo_pair_plan(slot.data(), side.data(), (int)slot.size(), S); };
    };
    expect_exit_message("dpo_pair_plan error: slot out of range", "scored token 2 has slot 1",
                        plan_of({0, 0, 1}, {1, 2, 1}, 1));
    expect_exit_message("dpo_pair_plan error: side 0", "scored token 1 has slot 0 and side 0",
                        plan_of({0, 0, 0}, {1, 0, 2}, 1));
    expect_exit_message("dpo_pair_plan error: pair without rejected tokens",
                        "pair slot 0 has no scored rejected token", plan_of({0, 1, 1}, {1, 1, 2}, 2));
    return test_exit();
}
