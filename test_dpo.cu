// test_dpo: the GPU trainer (train_dpo.cu) against the CPU reference in double (cpu/gpt2.h,
// cpu/dpo.h), in the style of llm.c's test_gpt2.cu. On a tiny random model (L=2, NH=2, C=32,
// V=67, maxT=64) and random pairs packed by the real packer (data/dataloader.h), for each layout
// (prefix-shared, baseline) with packing on and off, one micro-batch of DPO:
//   - per-pair policy log-probs (chosen, rejected) and per-pair losses,
//   - the log-probs of the whole set, forward only (the reference cache's, eval's and score's path),
//   - the gradient of every named parameter tensor,
//   - the parameters after 3 AdamW steps (clipping active) on the same micro-batch.
// On the CPU it runs through dev/simt with the cuBLASLt stand-in (make test: test_dpo_fp32 and
// test_dpo); on a GPU the same file builds with nvcc (dev/gpu_check.sh).
#define TESTING
#include "train_dpo.cu"

#include <random>

#include "cpu/dpo.h"
#include "cpu/gpt2.h"
#include "dev/simt/kernel_test.h"
#include "dev/test_util.h"

// Tolerances. The reference runs in double on the weights the GPU's forward reads (representable in
// floatX), so only the GPU's arithmetic is measured. Each bound is 4-10x the largest error seen
// over a series of seeds (KERNEL_TEST_SEED), given in brackets.
//   fp32: every product and reduction in fp32 (unit roundoff 6e-8) over at most a few hundred terms
//         per value: log-probs [1.5e-7 relative], losses [1.5e-6], gradients [1.5e-6 of their
//         tensor's largest element], parameters after AdamW [1.6e-7: the fp32 rounding of weights ~1].
//   bf16: activations are rounded to bf16 (8 significand bits, 4e-3 relative per rounding) at every
//         layer boundary and in the logits: log-probs [2.5e-3 relative, so ~0.1 absolute on sums of
//         ~-40], losses [2e-2: beta 0.5 times that, plus the SFT term], gradients [2.6e-2 of the
//         tensor's largest element], parameters [2.7e-4, lr 1e-3].
// Gradients are compared per tensor as max |gpu - ref| / max |ref| (one outlier element in a tensor
// of small values does not hide behind the large ones of another tensor).
// AdamW: an element whose reference gradient is below GRAD_NOISE of its tensor's largest (at the
// gradient error level, e.g. the key biases, to which softmax is invariant: exactly 0 in theory)
// gets an update of about +-lr decided by the sign of rounding noise on each side, so it is left
// out of the parameter comparison; at least a tenth of the parameters must remain.
#if defined(ENABLE_FP32)
static const double TOL_LOGP = 2e-6, TOL_LOSS = 2e-5, TOL_GRAD = 2e-5, TOL_PARAM = 2e-6;
static const double GRAD_NOISE = 1e-3;
#else
static const double TOL_LOGP = 1e-2, TOL_LOSS = 1e-1, TOL_GRAD = 1e-1, TOL_PARAM = 1e-3;
static const double GRAD_NOISE = 5e-2;
#endif

static const int TEST_B = 4, TEST_T = 32;

// A tiny model with every parameter random (biases and LayerNorm weights too), padded rows 0.
static ModelConfig tiny_config() {
    ModelConfig c;
    c.num_layers = 2; c.num_heads = 2; c.channels = 32; c.max_seq_len = 64;
    c.vocab_size = 67; c.padded_vocab_size = pad_vocab(67);
    return c;
}

static std::vector<float> random_weights(const ModelConfig& c, std::mt19937_64& rng) {
    std::vector<float> w(num_parameters(c), 0.0f);
    std::normal_distribution<double> normal(0.0, 1.0);
    size_t sizes[NUM_PARAM_TENSORS], offsets[NUM_PARAM_TENSORS];
    param_sizes(c, sizes);
    param_offsets(c, offsets);
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        const bool ln_weight = t == PARAM_LN1W || t == PARAM_LN2W || t == PARAM_LNFW;
        const size_t n = t == PARAM_WTE ? (size_t)c.vocab_size * c.channels : sizes[t];
        for (size_t i = 0; i < n; i++) {
            double x = (param_tensor_decays(t) ? 0.15 : 0.1) * normal(rng);
            w[offsets[t] + i] = (float)(ln_weight ? 1.0 + x : x);
        }
    }
    return w;
}

// Random pairs: prompts of 1-8 tokens, responses of 1-7, token ids in [0, V).
static PairSet random_pairs(int n, int V, std::mt19937_64& rng) {
    PairSet set;
    set.vocab_size = V;
    std::uniform_int_distribution<int> len_p(1, 8), len_r(1, 7), tok(0, V - 1);
    for (int i = 0; i < n; i++) {
        std::vector<int32_t> p(len_p(rng)), c(len_r(rng)), r(len_r(rng));
        for (auto& x : p) x = tok(rng);
        for (auto& x : c) x = tok(rng);
        for (auto& x : r) x = tok(rng);
        set.add(p, c, r);
    }
    return set;
}

// The first micro-batch the packer makes of the pairs (as many as fit one micro-batch).
static Batch first_batch(const PairSet& set, Layout layout, bool packing) {
    std::vector<int64_t> ids(set.size());
    for (size_t i = 0; i < ids.size(); i++) ids[i] = (int64_t)i;
    std::vector<Batch> batches;
    std::vector<UnitPlacement> placements;
    int skipped = 0;
    std::string err;
    if (!pack_pairs(set, ids.data(), (int)ids.size(), {TEST_B, TEST_T, layout, packing, false}, &batches,
                    &placements, &skipped, &err)) {
        fprintf(stderr, "pack_pairs: %s\n", err.c_str());
        exit(1);
    }
    return batches[0];
}


// max |a - b| / max |b| over the elements [o, o + n)
static double tensor_error(const float* a, const double* b, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = std::max(diff, std::fabs((double)a[i] - b[i]));
        scale = std::max(scale, std::fabs(b[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

// AdamW step t of the reference in double (decoupled decay, as kernels/adamw_math.h in float).
static void adamw_double(std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
                         const std::vector<double>& g, double clip, const TrainConfig& tc, double lr,
                         long t, const ModelConfig& cfg) {
    size_t sizes[NUM_PARAM_TENSORS], offsets[NUM_PARAM_TENSORS];
    param_sizes(cfg, sizes);
    param_offsets(cfg, offsets);
    const double bc1 = 1 - std::pow((double)tc.beta1, (double)t), bc2 = 1 - std::pow((double)tc.beta2, (double)t);
    for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
        const double wd = param_tensor_decays(k) ? tc.weight_decay : 0.0;
        for (size_t i = offsets[k]; i < offsets[k] + sizes[k]; i++) {
            const double gi = g[i] * clip;
            m[i] = tc.beta1 * m[i] + (1 - tc.beta1) * gi;
            v[i] = tc.beta2 * v[i] + (1 - tc.beta2) * gi * gi;
            p[i] -= lr * ((m[i] / bc1) / (std::sqrt(v[i] / bc2) + tc.adam_eps) + wd * p[i]);
        }
    }
}

static void run_case(const char* name, Layout layout, bool packing, std::mt19937_64& rng) {
    const ModelConfig cfg = tiny_config();
    // weights representable in floatX, so that the GPU's fp32 master and its floatX copy start equal
    std::vector<float> w = random_weights(cfg, rng);
    for (float& x : w) x = (float)(floatX)x;
    PairSet set = random_pairs(24, cfg.vocab_size, rng);
    const Batch b = first_batch(set, layout, packing);
    const int S = b.n_slots();
    LossSpec spec;  // sigmoid DPO, beta 0.1, with a little cDPO smoothing and an SFT term
    spec.label_smoothing = 0.1f;
    spec.weight[LOSS_SFT] = 0.5f;
    spec.beta = 0.5f;
    const double scale = 1.0 / S;
    char check[160];

    // reference model in double on the floatX-rounded weights; reference log-probs near the policy's
    cpu::GPT2<double> ref;
    ref.setup(cfg);
    std::vector<double> wd(w.begin(), w.end());
    std::copy(wd.begin(), wd.end(), ref.params.begin());
    ref.forward(b);
    std::vector<PairLogps> lp0 = cpu::gather_pair_logps(ref, S);
    std::normal_distribution<double> noise(0.0, 2.0);
    std::vector<double> rc(S), rr(S);
    for (int s = 0; s < S; s++) { rc[s] = lp0[s].chosen + noise(rng); rr[s] = lp0[s].rejected + noise(rng); }

    GPT2GPU gpu;
    gpu.setup(cfg, TEST_B, TEST_T, w, {}, {});
    gpu.zero_grad();
    std::vector<PairResult> got = gpu.dpo_step(b, rc, rr, spec, scale);
    ref.zero_grad();
    std::vector<PairResult> want = cpu::dpo_forward_backward(ref, b, rc, rr, spec, scale);

    // per-pair log-probs and losses
    double err_logp = 0, err_loss = 0;
    bool counts_ok = true;
    for (int s = 0; s < S; s++) {
        const PairLogps &g = got[s].policy, &r = want[s].policy;
        err_logp = std::max(err_logp, std::fabs(g.chosen - r.chosen) / std::max(1.0, std::fabs(r.chosen)));
        err_logp = std::max(err_logp, std::fabs(g.rejected - r.rejected) / std::max(1.0, std::fabs(r.rejected)));
        err_loss = std::max(err_loss, std::fabs(got[s].loss - want[s].loss));
        counts_ok = counts_ok && g.n_chosen == r.n_chosen && g.n_rejected == r.n_rejected;
    }
    snprintf(check, sizeof check, "%s_logps", name);
    test_report(err_logp <= TOL_LOGP && counts_ok, check, "max relative error %.3g (tolerance %.1g), token counts %s",
                err_logp, TOL_LOGP, counts_ok ? "equal" : "differ");
    snprintf(check, sizeof check, "%s_loss", name);
    test_report(err_loss <= TOL_LOSS, check, "max error %.3g (tolerance %.1g)", err_loss, TOL_LOSS);

    // the forward-only path of the reference cache, eval and score (common/train_loop.h's
    // set_logps over GPT2GPU::batch_logps): every pair of the set, in as many micro-batches as
    // the packer makes
    {
        LocalComm one;
        SetPass pass;
        pass.layout = layout; pass.packing = packing; pass.B = TEST_B; pass.T = TEST_T; pass.quiet = true;
        SetLogps gs = set_logps(one, gpu, set, pass, "test set log-probs");
        std::vector<Batch> batches;
        std::string err;
        eval_batches(set, TEST_B, TEST_T, layout, packing, &batches, &err);
        double e = 0;
        bool counts = true;
        for (const Batch& eb : batches) {
            ref.forward(eb);
            std::vector<PairLogps> r = cpu::gather_pair_logps(ref, eb.n_slots());
            for (int k = 0; k < eb.n_slots(); k++) {
                const int64_t i = eb.pair_ids[k];
                e = std::max(e, std::fabs(gs.chosen[i] - r[k].chosen) / std::max(1.0, std::fabs(r[k].chosen)));
                e = std::max(e, std::fabs(gs.rejected[i] - r[k].rejected) / std::max(1.0, std::fabs(r[k].rejected)));
                counts = counts && gs.n_chosen[i] == r[k].n_chosen && gs.n_rejected[i] == r[k].n_rejected;
            }
        }
        snprintf(check, sizeof check, "%s_set_logps", name);
        test_report(e <= TOL_LOGP && counts && batches.size() > 1, check,
                    "%zu micro-batches, max relative error %.3g (tolerance %.1g), token counts %s", batches.size(), e,
                    TOL_LOGP, counts ? "equal" : "differ");
    }

    // gradients, per named tensor
    std::vector<float> grads = gpu.download(gpu.grads);
    size_t sizes[NUM_PARAM_TENSORS], offsets[NUM_PARAM_TENSORS];
    param_sizes(cfg, sizes);
    param_offsets(cfg, offsets);
    double err_grad = 0;
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        double e = tensor_error(grads.data() + offsets[t], ref.grads.data() + offsets[t], sizes[t]);
        err_grad = std::max(err_grad, e);
        snprintf(check, sizeof check, "%s_grad_%s", name, PARAM_TENSOR_NAMES[t]);
        test_report(e <= TOL_GRAD, check, "max error %.3g of the tensor's largest gradient (tolerance %.1g)", e,
                    TOL_GRAD);
    }

    // 3 AdamW steps on the same micro-batch: the GPU trainer's step against the double reference.
    // The reference keeps its master weights p in double and, like the GPU, takes each step's
    // gradient at those weights rounded to floatX (a bf16 weight near 1 moves only every few steps).
    TrainConfig tc;
    tc.weight_decay = 0.1f;
    tc.grad_clip = 0.05f;  // below the gradient norm here, so clipping is exercised
    std::vector<double> p = wd, m(p.size(), 0.0), v(p.size(), 0.0);
    std::vector<double> g = ref.grads;
    std::vector<char> noise_only(p.size(), 0);
    for (long t = 1; t <= 3; t++) {
        if (t > 1) {
            gpu.zero_grad();
            gpu.dpo_step(b, rc, rr, spec, scale);
            for (size_t i = 0; i < p.size(); i++) ref.params[i] = (double)(float)(floatX)(float)p[i];
            ref.zero_grad();
            cpu::dpo_forward_backward(ref, b, rc, rr, spec, scale);
            g = ref.grads;
        }
        double norm = 0;
        for (double x : g) norm += x * x;
        norm = std::sqrt(norm);
        const double gnorm = gpu.grad_norm();
        const float clip = gnorm > tc.grad_clip ? (float)(tc.grad_clip / gnorm) : 1.0f;
        gpu.adamw_step(tc, tc.lr, clip, t);
        adamw_double(p, m, v, g, norm > tc.grad_clip ? tc.grad_clip / norm : 1.0, tc, tc.lr, t, cfg);
        // Elements whose reference gradient is at the rounding-noise level of their tensor (e.g.
        // the key biases, to which softmax is invariant: exactly 0 in theory) get an AdamW update of
        // +-lr decided by the sign of that noise on each side; they are left out of the comparison.
        for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
            double big = 0;
            for (size_t i = offsets[k]; i < offsets[k] + sizes[k]; i++) big = std::max(big, std::fabs(g[i]));
            for (size_t i = offsets[k]; i < offsets[k] + sizes[k]; i++) {
                if (std::fabs(g[i]) <= GRAD_NOISE * big) noise_only[i] = 1;
            }
        }
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> master = gpu.download(gpu.master);
    double err_param = 0;
    size_t compared = 0, left_out = 0;
    for (size_t i = 0; i < p.size(); i++) {
        if (noise_only[i]) { left_out++; continue; }
        compared++;
        err_param = std::max(err_param, std::fabs((double)master[i] - p[i]));
    }
    snprintf(check, sizeof check, "%s_params_after_3_adamw_steps", name);
    test_report(err_param <= TOL_PARAM && compared >= p.size() / 10, check,
                "max error %.3g (tolerance %.1g) over %zu parameters (%zu with noise-level gradients left out)",
                err_param, TOL_PARAM, compared, left_out);
    printf("  %s: %d pairs, %d scored tokens; max errors: logp %.2g, loss %.2g, grad %.2g, params %.2g\n", name,
           S, gpu.M, err_logp, err_loss, err_grad, err_param);
    gpu.free_all();
}

int main() {
    std::mt19937_64 rng(test_seed());
    printf("test_dpo: precision %s\n", PRECISION_NAME);
    matmul_setup();
    // on the CPU layer the whole trainer runs in every thread order (kernel_test.h), fresh inputs each
    for_each_thread_order([&](const char* order) {
        const std::string o = std::string("/") + order;
        run_case(("shared_packed" + o).c_str(), LAYOUT_SHARED, true, rng);
        run_case(("baseline_packed" + o).c_str(), LAYOUT_BASELINE, true, rng);
        run_case(("shared_unpacked" + o).c_str(), LAYOUT_SHARED, false, rng);
        run_case(("baseline_unpacked" + o).c_str(), LAYOUT_BASELINE, false, rng);
    });
    matmul_teardown();
    return test_exit();
}
