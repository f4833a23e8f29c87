// test_dpo: the GPU trainer (train_dpo.cu) against the CPU reference in double (cpu/gpt2.h,
// cpu/dpo.h), in the style of llm.c's test_gpt2.cu. On a tiny random model (L=2, NH=2, C=32,
// V=67, maxT=64) and random pairs packed by the real packer (data/dataloader.h), for each layout
// (prefix-shared, baseline) with packing on and off, one micro-batch of DPO:
//   - per-pair policy log-probs (chosen, rejected) and per-pair losses,
//   - the log-probs of the whole set, forward only (the reference cache's, eval's and score's path),
//   - the gradient of every named parameter tensor,
//   - the parameters after 3 AdamW steps (clipping active) on the same micro-batch;
// and the prefix-shared packed case again with the LM head in chunks of 5 scored tokens
// (--head-chunk 5: several chunks, the backward recomputing all but the last one's logits).
// On the CPU it runs through dev/simt with the cuBLASLt stand-in (make test: test_dpo_fp32 and
// test_dpo); on a GPU the same file builds with nvcc (dev/gpu_check.sh).
#define TESTING
#include "train_dpo.cu"

#include <random>

#include "common/launch.h"
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

// head_chunk: the LM head's scored tokens per chunk (0: GPT2GPU's default, one chunk here)
static void run_case(const char* name, Layout layout, bool packing, std::mt19937_64& rng, int head_chunk = 0) {
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
    if (head_chunk > 0) gpu.head_chunk = head_chunk;
    gpu.setup(cfg, TEST_B, TEST_T, w, {}, {});
    gpu.zero_grad();
    std::vector<PairResult> got = gpu.dpo_step(b, rc, rr, spec, scale);
    if (head_chunk > 0) {
        snprintf(check, sizeof check, "%s_has_several_chunks", name);
        test_report(gpu.M > 2 * head_chunk, check, "%d scored tokens, chunks of %d", gpu.M, head_chunk);
    }
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

// ----------------------------------------------------------------------------------------------
// Several ranks (`mpirun -np N ./test_dpo_fp32 --ranks [case]`, test_train_dpo_ranks.sh): the GPU
// trainer's own communication code (kernels/zero.cuh over NCCL; under dev/simt the stand-in over
// MPI, dev/simt/nccl_cpu.h) against one process with the same global batch, which every rank
// computes itself. Each rank takes its slice of every step's G pairs (the dataloader's split; G
// does not divide evenly by 2 or 3, so the ranks' slices differ) in micro-batches of RANKS_B rows,
// and trains 3 steps (clipping active) with ZeRO-1 and with --zero 0:
//   per-pair losses (by pair id), the step's summed metrics and global gradient norm, the summed
//   gradient on each rank's shard (ZeRO-1) or everywhere (--zero 0), the parameters and moments
//   after 3 AdamW steps (gathered on every rank: the all-gather of the update and the gather of the
//   shards), ZeRO-1 against --zero 0, and the host collectives (broadcast, all_gather_pieces).
// Tolerances: each run is within the single-rank tolerances above of the exact value (those cases
// check it), so two runs that differ only in how the sums are cut and ordered (other micro-batches,
// the ranks' sum) agree within twice them. Parameters: elements whose gradient is at the noise
// level are left out, as above. ZeRO-1 and --zero 0 make the same sums in the same order on the
// stand-in (rank order): there they must agree bit for bit; real NCCL may order an all-reduce
// otherwise, so on a GPU they need only agree within the tolerance.
// Every rank computes its errors; rank 0 gathers them (the host all_gather) and prints the checks.

static const int RANKS_G = 7, RANKS_STEPS = 3, RANKS_B = 2;

// this rank's shard of the summed gradient (ZeRO-1) or all of it (--zero 0), on the host
static std::vector<float> reduced_gradient(const GPT2GPU& m) {
    const ZeroGPU& z = *m.dp;
    const size_t lo = z.sharded() ? z.lo : 0, hi = z.sharded() ? z.hi : z.shards.n;
    std::vector<float> h(hi - lo);
    CUDA_CHECK(cudaMemcpy(h.data(), z.grad_source(), h.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

static void run_ranks(NcclComm& comm, const char* name, Layout layout, bool packing, uint64_t seed) {
    std::mt19937_64 rng(seed);
    const ModelConfig cfg = tiny_config();
    std::vector<float> w = random_weights(cfg, rng);
    for (float& x : w) x = (float)(floatX)x;
    PairSet set = random_pairs(RANKS_G * RANKS_STEPS, cfg.vocab_size, rng);
    LossSpec spec;
    spec.label_smoothing = 0.1f;
    spec.weight[LOSS_SFT] = 0.5f;
    spec.beta = 0.5f;
    TrainConfig tc;
    tc.weight_decay = 0.1f;
    tc.grad_clip = 0.05f;
    const size_t n = num_parameters(cfg);
    size_t sizes[NUM_PARAM_TENSORS], offsets[NUM_PARAM_TENSORS];
    param_sizes(cfg, sizes);
    param_offsets(cfg, offsets);

    // one process: the whole global batch
    GPT2GPU single;
    single.setup(cfg, RANKS_B, TEST_T, w, {}, {});
    // reference log-probs: the initial model's, moved by noise (same on every rank: same seed)
    LocalComm alone;
    SetPass pass;
    pass.layout = layout; pass.packing = packing; pass.B = RANKS_B; pass.T = TEST_T; pass.quiet = true;
    const SetLogps lp0 = set_logps(alone, single, set, pass, "set log-probs");
    // the driver's pass split over the ranks (by whole packing chunks) and all-gathered: the same bits
    const SetLogps split = set_logps(comm, single, set, pass, "set log-probs");
    const bool split_same = split.chosen == lp0.chosen && split.rejected == lp0.rejected &&
                            split.n_chosen == lp0.n_chosen && split.n_rejected == lp0.n_rejected;
    std::normal_distribution<double> noise(0.0, 2.0);
    std::vector<double> ref_c(set.size()), ref_r(set.size());
    for (size_t i = 0; i < set.size(); i++) { ref_c[i] = lp0.chosen[i] + noise(rng); ref_r[i] = lp0.rejected[i] + noise(rng); }

    // several: ZeRO-1 and --zero 0 over the job's communicator
    ZeroGPU zero1, allreduce;
    zero1.init(&comm, cfg, true);
    allreduce.init(&comm, cfg, false);
    GPT2GPU mz, ma;
    mz.setup(cfg, RANKS_B, TEST_T, w, {}, {}, &zero1);
    ma.setup(cfg, RANKS_B, TEST_T, w, {}, {}, &allreduce);

    LoaderConfig lc;
    lc.B = RANKS_B; lc.T = TEST_T; lc.pairs_per_step = RANKS_G; lc.layout = layout; lc.packing = packing;
    lc.shuffle = false; lc.seed = 1;
    DataLoader one, mine;
    std::string err;
    LoaderConfig lr = lc;
    lr.rank = comm.rank; lr.world = comm.world;
    if (!one.init(&set, lc, &err) || !mine.init(&set, lr, &err)) { fprintf(stderr, "%s\n", err.c_str()); exit(1); }

    // a micro-batch's reference log-probs by slot
    auto refs = [&](const Batch& b, std::vector<double>* rc, std::vector<double>* rr) {
        rc->resize(b.n_slots()); rr->resize(b.n_slots());
        for (int s = 0; s < b.n_slots(); s++) { (*rc)[s] = ref_c[b.pair_ids[s]]; (*rr)[s] = ref_r[b.pair_ids[s]]; }
    };
    // errors: [0] losses, [1] metric sums, [2] norm, [3] gradient (ZeRO-1), [4] gradient (--zero 0),
    // [5] parameters ZeRO-1, [6] --zero 0, [7] moments ZeRO-1, [8] ZeRO-1 vs --zero 0, [9] micro-batches,
    // [10] 1 if the split set pass differs, [11] the floatX parameters, [12] the rank named for a NaN
    double e[13] = {0};
    e[10] = split_same ? 0 : 1;
    std::vector<char> noise_only(n, 0);
    std::vector<double> pair_loss(set.size(), NAN);
    std::vector<Batch> batches;
    for (long step = 0; step < RANKS_STEPS; step++) {
        const float lr_t = tc.lr;
        // one process
        if (!one.step_batches(step, &batches, &err)) { fprintf(stderr, "%s\n", err.c_str()); exit(1); }
        const int pairs = one.step_pairs_used(step);
        single.zero_grad();
        PairMetrics m1;
        for (const Batch& b : batches) {
            std::vector<double> rc, rr;
            refs(b, &rc, &rr);
            std::vector<PairResult> res = single.dpo_step(b, rc, rr, spec, 1.0 / pairs);
            for (int s = 0; s < b.n_slots(); s++) { pair_loss[b.pair_ids[s]] = res[s].loss; m1.add(res[s], spec.beta); }
        }
        const std::vector<float> g1 = single.download(single.grads);
        for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
            double big = 0;
            for (size_t i = offsets[k]; i < offsets[k] + sizes[k]; i++) big = std::max(big, std::fabs((double)g1[i]));
            for (size_t i = offsets[k]; i < offsets[k] + sizes[k]; i++)
                if (std::fabs((double)g1[i]) <= GRAD_NOISE * big) noise_only[i] = 1;
        }
        const double norm1 = single.grad_norm();
        single.adamw_step(tc, lr_t, norm1 > tc.grad_clip ? (float)(tc.grad_clip / norm1) : 1.0f, step + 1);

        // this rank's slice, in both modes
        if (!mine.step_batches(step, &batches, &err)) { fprintf(stderr, "%s\n", err.c_str()); exit(1); }
        if (mine.step_pairs_used(step) != pairs) { fprintf(stderr, "step pairs differ\n"); exit(1); }
        e[9] += batches.size();
        for (GPT2GPU* model : {&mz, &ma}) {
            model->zero_grad();
            StepPartial part;
            for (size_t k = 0; k < batches.size(); k++) {
                std::vector<double> rc, rr;
                refs(batches[k], &rc, &rr);
                std::vector<PairResult> res = model->dpo_step(batches[k], rc, rr, spec, 1.0 / pairs, k + 1 == batches.size());
                for (int s = 0; s < batches[k].n_slots(); s++) {
                    e[0] = std::max(e[0], std::fabs(res[s].loss - pair_loss[batches[k].pair_ids[s]]));
                    part.metrics.add(res[s], spec.beta);
                }
            }
            const StepPartial all = model->reduce(part);
            e[1] = std::max({e[1], std::fabs(all.metrics.loss - m1.loss) / std::max(1.0, std::fabs(m1.loss)),
                             std::fabs(all.metrics.pairs - m1.pairs), std::fabs(all.metrics.correct - m1.correct)});
            const double norm = std::sqrt(all.shard_sumsq);
            e[2] = std::max(e[2], std::fabs(norm - norm1) / norm1);
            // the summed gradient against the one process's, per tensor, relative to its largest
            const ZeroGPU& z = *model->dp;
            const size_t lo = z.sharded() ? z.lo : 0;
            const std::vector<float> g = reduced_gradient(*model);
            double& eg = e[model == &mz ? 3 : 4];
            for (int k = 0; k < NUM_PARAM_TENSORS; k++) {
                const size_t a = std::max(lo, offsets[k]), b = std::min(lo + g.size(), offsets[k] + sizes[k]);
                double big = 0;
                for (size_t i = offsets[k]; i < offsets[k] + sizes[k]; i++) big = std::max(big, std::fabs((double)g1[i]));
                for (size_t i = a; i < b; i++) eg = std::max(eg, std::fabs((double)g[i - lo] - g1[i]) / std::max(big, 1e-30));
            }
            if (model->dp->bad_rank >= 0) e[1] = INFINITY;
            model->adamw_step(tc, lr_t, norm > tc.grad_clip ? (float)(tc.grad_clip / norm) : 1.0f, step + 1);
        }
    }
    // one more step in which the last rank's first pair has a NaN reference log-prob: every rank
    // must learn that rank's number from the reduction (the driver then stops every rank)
    if (!mine.step_batches(RANKS_STEPS, &batches, &err)) { fprintf(stderr, "%s\n", err.c_str()); exit(1); }
    mz.zero_grad();
    StepPartial part;
    for (size_t k = 0; k < batches.size(); k++) {
        std::vector<double> rc, rr;
        refs(batches[k], &rc, &rr);
        if (k == 0 && comm.rank == comm.world - 1) rc[0] = NAN;
        for (const PairResult& r : mz.dpo_step(batches[k], rc, rr, spec, 1.0, k + 1 == batches.size()))
            part.metrics.add(r, spec.beta);
    }
    mz.reduce(part);
    e[12] = mz.dp->bad_rank;

    // after the steps: everything gathered on every rank
    const std::vector<float> p1 = single.download(single.master), m1 = single.download(single.adam_m);
    const std::vector<float> pz = mz.weights(), pa = ma.weights();
    const std::vector<float> mzm = mz.dp->gather(mz.adam_m);  // every rank's shard
    double mbig = 0;
    for (float x : m1) mbig = std::max(mbig, std::fabs((double)x));
    size_t compared = 0;
    for (size_t i = 0; i < n; i++) {
        e[7] = std::max(e[7], std::fabs((double)mzm[i] - m1[i]) / mbig);
        e[8] = std::max(e[8], std::fabs((double)pz[i] - pa[i]));
        if (noise_only[i]) continue;
        compared++;
        e[5] = std::max(e[5], std::fabs((double)pz[i] - p1[i]));
        e[6] = std::max(e[6], std::fabs((double)pa[i] - p1[i]));
    }
    if (compared < n / 10) e[5] = e[6] = INFINITY;
    // the floatX parameters every rank's forward reads: the all-gather after the update
    std::vector<floatX> fz(n), f1(n);
    CUDA_CHECK(cudaMemcpy(fz.data(), mz.params, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(f1.data(), single.params, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++)
        if (!noise_only[i]) e[11] = std::max(e[11], std::fabs((double)(float)fz[i] - (double)(float)f1[i]));

    // rank 0 reports the worst over the ranks
    const int K = 13;
    std::vector<double> all;
    comm.all_gather(e, K, &all);
    double worst[K] = {0};
    double micro = 0;
    bool nan_named = true;  // every rank names the last rank
    for (int r = 0; r < comm.world; r++) {
        nan_named = nan_named && all[(size_t)r * K + 12] == comm.world - 1;
        for (int k = 0; k < K; k++) worst[k] = std::max(worst[k], all[(size_t)r * K + k]);
        micro += all[(size_t)r * K + 9];
    }
    mz.free_all();
    ma.free_all();
    single.free_all();
    if (comm.rank > 0) return;
    char check[160];
    auto report = [&](const char* what, double err, double tol, const char* unit) {
        snprintf(check, sizeof check, "np%d_%s_%s", comm.world, name, what);
        test_report(err <= tol, check, "max error %.3g %s (tolerance %.1g)", err, unit, tol);
    };
    printf("  np%d %s: %d pairs per step over %d ranks, %.0f micro-batches in all, %zu of %zu parameters compared; "
           "max errors: loss %.2g, grad %.2g, params %.2g, ZeRO-1 vs --zero 0 %.2g\n",
           comm.world, name, RANKS_G, comm.world, micro, compared, n, worst[0], std::max(worst[3], worst[4]),
           std::max(worst[5], worst[6]), worst[8]);
    report("pair_losses_match_one_process", worst[0], 2 * TOL_LOSS, "absolute");
    report("step_sums_match_one_process", worst[1], 2 * TOL_LOSS, "relative");
    report("grad_norm_matches_one_process", worst[2], 2 * TOL_GRAD, "relative");
    report("zero1_shard_gradient_matches_one_process", worst[3], 2 * TOL_GRAD, "of the tensor's largest");
    report("allreduce_gradient_matches_one_process", worst[4], 2 * TOL_GRAD, "of the tensor's largest");
    report("zero1_params_after_3_steps_match_one_process", worst[5], 2 * TOL_PARAM, "absolute");
    report("allreduce_params_after_3_steps_match_one_process", worst[6], 2 * TOL_PARAM, "absolute");
    report("zero1_floatX_params_all_gathered", worst[11], 2 * TOL_PARAM, "absolute");
    report("set_logps_split_over_ranks_is_bitwise", worst[10], 0, "(ranks whose pass differs)");
    report("zero1_moments_gathered_match_one_process", worst[7], 2 * TOL_GRAD, "of the largest");
    snprintf(check, sizeof check, "np%d_%s_nan_on_rank_%d_named_by_every_rank", comm.world, name, comm.world - 1);
    test_report(nan_named, check, "the ranks named ranks %s", [&] {
        std::string named;
        for (int r = 0; r < comm.world; r++) named += std::to_string((int)all[(size_t)r * K + 12]) + " ";
        return named;
    }().c_str());
    report("zero1_and_allreduce_params", worst[8], SIMT_CPU ? 0.0 : 2 * TOL_PARAM, SIMT_CPU ? "(stand-in: bitwise)" : "absolute");
}

// The host collectives the training driver uses: broadcast of bytes, all_gather_pieces with
// pieces of different lengths (one of them empty), barrier.
static void check_host_collectives(NcclComm& comm) {
    std::vector<uint8_t> bytes(1000);
    for (size_t i = 0; i < bytes.size(); i++) bytes[i] = comm.rank == 0 ? (uint8_t)(i * 7 + 3) : 0;
    comm.broadcast(bytes.data(), bytes.size());
    bool bcast_ok = true;
    for (size_t i = 0; i < bytes.size(); i++) bcast_ok = bcast_ok && bytes[i] == (uint8_t)(i * 7 + 3);
    std::vector<int64_t> bounds(comm.world + 1, 0);
    for (int r = 0; r < comm.world; r++) bounds[r + 1] = bounds[r] + (r == 1 ? 0 : 5 + 3 * r);  // rank 1: empty
    std::vector<double> buf(bounds[comm.world], -1.0);
    for (int64_t i = bounds[comm.rank]; i < bounds[comm.rank + 1]; i++) buf[i] = 100.0 * comm.rank + i;
    comm.all_gather_pieces(buf.data(), bounds);
    bool pieces_ok = true;
    for (int r = 0; r < comm.world; r++)
        for (int64_t i = bounds[r]; i < bounds[r + 1]; i++) pieces_ok = pieces_ok && buf[i] == 100.0 * r + i;
    comm.barrier();
    const double mine[2] = {bcast_ok ? 0.0 : 1.0, pieces_ok ? 0.0 : 1.0};
    std::vector<double> all;
    comm.all_gather(mine, 2, &all);
    double bad[2] = {0, 0};
    for (int r = 0; r < comm.world; r++) { bad[0] += all[2 * r]; bad[1] += all[2 * r + 1]; }
    if (comm.rank > 0) return;
    char check[96];
    snprintf(check, sizeof check, "np%d_broadcast_of_bytes", comm.world);
    test_report(bad[0] == 0, check, "%.0f rank(s) got other bytes than rank 0's", bad[0]);
    snprintf(check, sizeof check, "np%d_all_gather_pieces", comm.world);
    test_report(bad[1] == 0, check, "%.0f rank(s) got wrong pieces", bad[1]);
}

// only: run just that case (shared_packed, baseline_unpacked), or both when null
static int main_ranks(const char* only) {
    LaunchInfo info;
    std::string err;
    if (!resolve_launch(LaunchFlags{}, "/tmp", process_environment, &info, &err)) { fprintf(stderr, "%s\n", err.c_str()); return 1; }
    NcclComm comm;
    comm.start(info.rank, info.world, info.local_rank, 120,
               [&](void* blob, size_t bytes, std::string* e) { return rendezvous_broadcast(info, blob, bytes, e); });
    uint64_t seed = comm.rank == 0 ? test_seed() : 0;  // rank 0's seed: every rank builds the same data
    comm.broadcast(&seed, sizeof seed);
    if (comm.rank == 0) printf("test_dpo --ranks: %d ranks, precision %s\n", comm.world, PRECISION_NAME);
    // This mode checks the communication; the kernels run in one thread order (the single-rank
    // cases run them in every order), so test_exit's check of that is not wanted here.
    g_test_exit_checks = nullptr;
    matmul_setup();
    check_host_collectives(comm);
    if (!only || strcmp(only, "shared_packed") == 0) run_ranks(comm, "shared_packed", LAYOUT_SHARED, true, seed);
    if (!only || strcmp(only, "baseline_unpacked") == 0)
        run_ranks(comm, "baseline_unpacked", LAYOUT_BASELINE, false, seed + 1);
    matmul_teardown();
    comm.finish();
#ifdef DIST_WITH_MPI
    int mpi_started = 0;
    MPI_Initialized(&mpi_started);
    if (mpi_started) MPI_Finalize();  // the mpi rendezvous (common/launch.h) started it
#endif
    return test_exit();
}

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--ranks") return main_ranks(argc > 2 ? argv[2] : nullptr);
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
        run_case(("shared_packed_head_chunk5" + o).c_str(), LAYOUT_SHARED, true, rng, 5);
    });
    matmul_teardown();
    return test_exit();
}
