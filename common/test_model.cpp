// Tests of the CPU reference model and the DPO loss (cpu/gpt2.h, cpu/dpo.h,
// kernels/dpo_loss_math.h):
//   - gradient check in double: analytic gradients of the DPO loss w.r.t. every parameter
//     tensor against central finite differences, for both layouts and for packed rows
//   - equivalence in float: prefix-shared and baseline layouts give the same per-pair log-probs,
//     loss and gradients, with and without packing (P = 1, C = 1, R = 1 and C != R included)
//   - the float (BLAS) path agrees with the double (plain loops) path
//   - each loss type against its closed form at hand-picked points, large |h| included
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/dpo.h"
#include "data/pairs.h"
#include "dev/test_util.h"

// Lays pairs into a batch without the dataloader: unpacked = one unit per row; packed = units
// back to back, a new row when the next unit does not fit.
static Batch layout_pairs(const PairSet& set, Layout layout, bool packed, int T) {
    std::vector<std::pair<int, int>> units;  // (pair, unit)
    for (int i = 0; i < (int)set.size(); i++)
        for (int u = 0; u < units_per_pair(layout); u++) units.push_back({i, u});
    std::vector<int> row_of(units.size()), start_of(units.size());
    int row = 0, fill = 0;
    for (size_t j = 0; j < units.size(); j++) {
        const PairRef& p = set.pairs[units[j].first];
        int len = unit_len(layout, units[j].second, p.P, p.C, p.R);
        if (j > 0 && (!packed || fill + len > T)) { row++; fill = 0; }
        row_of[j] = row; start_of[j] = fill; fill += len;
    }
    Batch b;
    b.reset(row + 1, T);
    for (size_t i = 0; i < set.size(); i++) b.pair_ids.push_back((int64_t)i);
    for (size_t j = 0; j < units.size(); j++) {
        int i = units[j].first;
        write_unit(b, layout, units[j].second, row_of[j], start_of[j], i, set.tokens_of(i));
    }
    return b;
}

static PairSet random_pairs(Rng& rng, int n, int V, int maxlen, bool include_ones) {
    PairSet set;
    set.vocab_size = V;
    for (int i = 0; i < n; i++) {
        int P = 1 + rng.below(maxlen), C = 1 + rng.below(maxlen), R = 1 + rng.below(maxlen);
        if (include_ones && i == 0) { P = 1; C = 1; R = 1; }
        if (include_ones && i == 1) { P = 1; C = 3; R = 1; }
        if (include_ones && i == 2) { C = 1; R = maxlen; }
        std::vector<int32_t> p(P), c(C), r(R);
        for (auto& t : p) t = rng.below(V);
        for (auto& t : c) t = rng.below(V);
        for (auto& t : r) t = rng.below(V);
        set.add(p, c, r);
    }
    return set;
}

static ModelConfig tiny_config() {
    ModelConfig c;
    c.max_seq_len = 48; c.vocab_size = 61; c.padded_vocab_size = pad_vocab(61);
    c.num_layers = 2; c.num_heads = 2; c.channels = 8;
    return c;
}

// random weights larger than GPT-2's init so every path carries signal
// (padded vocabulary rows of wte stay 0)
template <typename T>
static void randomize(cpu::GPT2<T>& m, uint64_t seed) {
    m.init_random(m.cfg, seed);
    Rng rng(seed + 1);
    size_t sizes[NUM_PARAM_TENSORS], offsets[NUM_PARAM_TENSORS];
    param_sizes(m.cfg, sizes);
    param_offsets(m.cfg, offsets);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        size_t n = i == PARAM_WTE ? (size_t)m.cfg.vocab_size * m.cfg.channels : sizes[i];
        for (size_t j = 0; j < n; j++) m.params[offsets[i] + j] += (T)(0.3 * rng.normal());
    }
}

// Loss of the whole batch (mean over pairs), and gradients in model.grads
template <typename T>
static double batch_loss(cpu::GPT2<T>& m, const Batch& b, const std::vector<double>& rc,
                         const std::vector<double>& rr, const LossSpec& spec, bool with_grad,
                         std::vector<PairResult>* out = nullptr) {
    if (with_grad) m.zero_grad();
    auto res = cpu::dpo_forward_backward(m, b, rc, rr, spec, 1.0 / b.n_slots());
    double loss = 0;
    for (auto& r : res) loss += r.loss;
    if (out) *out = res;
    return loss / b.n_slots();
}

static void test_gradcheck() {
    Rng rng(1234);
    ModelConfig cfg = tiny_config();
    PairSet set = random_pairs(rng, 4, cfg.vocab_size, 5, true);
    std::vector<double> rc(4), rr(4);
    for (int i = 0; i < 4; i++) { rc[i] = -10 * rng.uniform() - 5; rr[i] = -10 * rng.uniform() - 5; }
    LossSpec spec;
    spec.weight[LOSS_SIGMOID] = 1.0f; spec.weight[LOSS_IPO] = 0.3f; spec.weight[LOSS_SFT] = 0.5f;
    spec.beta = 0.5f; spec.label_smoothing = 0.1f;
    struct Case { Layout layout; bool packed; const char* name; };
    Case cases[] = {{LAYOUT_SHARED, false, "shared"}, {LAYOUT_BASELINE, false, "baseline"},
                    {LAYOUT_SHARED, true, "shared_packed"}, {LAYOUT_BASELINE, true, "baseline_packed"}};
    for (const Case& cs : cases) {
        cpu::GPT2<double> m;
        m.cfg = cfg;
        randomize(m, 7);
        Batch b = layout_pairs(set, cs.layout, cs.packed, cs.packed ? 40 : 24);
        batch_loss(m, b, rc, rr, spec, true);
        std::vector<double> analytic = m.grads;
        size_t sizes[NUM_PARAM_TENSORS], off = 0;
        param_sizes(cfg, sizes);
        double worst = 0;
        std::string worst_name = "-";
        for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
            // up to 24 random entries of each tensor (all of the small ones)
            double num2 = 0, den2 = 0;
            int count = sizes[i] < 24 ? (int)sizes[i] : 24;
            for (int j = 0; j < count; j++) {
                size_t idx = sizes[i] < 24 ? (size_t)j : (size_t)rng.below((int)sizes[i]);
                if (i == PARAM_WTE && idx >= (size_t)cfg.vocab_size * cfg.channels)
                    idx %= (size_t)cfg.vocab_size * cfg.channels;
                double& w = m.params[off + idx];
                const double h = 1e-5, saved = w;
                w = saved + h; double lp = batch_loss(m, b, rc, rr, spec, false);
                w = saved - h; double lm = batch_loss(m, b, rc, rr, spec, false);
                w = saved;
                double fd = (lp - lm) / (2 * h), an = analytic[off + idx];
                num2 += (fd - an) * (fd - an);
                den2 += fd * fd;
            }
            double rel = std::sqrt(num2) / std::max(std::sqrt(den2), 1e-12);
            if (rel > worst) { worst = rel; worst_name = PARAM_TENSOR_NAMES[i]; }
            off += sizes[i];
        }
        // padded vocabulary rows never receive gradient
        bool pad_zero = true;
        for (size_t j = (size_t)cfg.vocab_size * cfg.channels; j < sizes[PARAM_WTE]; j++)
            if (analytic[j] != 0) pad_zero = false;
        std::string name = std::string("gradcheck_double_") + cs.name;
        test_report(worst < 1e-6 && pad_zero, name.c_str(), "worst relative error %.3g in %s%s",
                    worst, worst_name.c_str(), pad_zero ? "" : "; padded vocab rows got gradient");
    }
}

static double rel_diff(const std::vector<float>& a, const std::vector<float>& b, size_t from, size_t n) {
    double num = 0, den = 0;
    for (size_t i = from; i < from + n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

static void test_equivalence() {
    Rng rng(99);
    ModelConfig cfg = tiny_config();
    cfg.channels = 32; cfg.num_heads = 4; cfg.max_seq_len = 64; cfg.num_layers = 2;
    const int n = 12;
    PairSet set = random_pairs(rng, n, cfg.vocab_size, 12, true);
    std::vector<double> rc(n), rr(n);
    for (int i = 0; i < n; i++) { rc[i] = -30 * rng.uniform(); rr[i] = -30 * rng.uniform(); }
    LossSpec spec;
    spec.weight[LOSS_SFT] = 0.25f;
    spec.beta = 0.2f;
    cpu::GPT2<float> ref_model;
    ref_model.cfg = cfg;
    randomize(ref_model, 3);
    // the reference result: baseline layout, one unit per row
    Batch base = layout_pairs(set, LAYOUT_BASELINE, false, 64);
    std::vector<PairResult> base_res;
    double base_loss = batch_loss(ref_model, base, rc, rr, spec, true, &base_res);
    std::vector<float> base_grads = ref_model.grads;
    struct Case { Layout layout; bool packed; const char* name; };
    Case cases[] = {{LAYOUT_SHARED, false, "shared_unpacked"}, {LAYOUT_SHARED, true, "shared_packed"},
                    {LAYOUT_BASELINE, true, "baseline_packed"}};
    for (const Case& cs : cases) {
        cpu::GPT2<float> m = ref_model;
        Batch b = layout_pairs(set, cs.layout, cs.packed, 64);
        std::vector<PairResult> res;
        double loss = batch_loss(m, b, rc, rr, spec, true, &res);
        double worst_logp = 0;
        for (int i = 0; i < n; i++) {
            worst_logp = std::max(worst_logp, std::fabs(res[i].policy.chosen - base_res[i].policy.chosen) /
                                                  std::fabs(base_res[i].policy.chosen));
            worst_logp = std::max(worst_logp, std::fabs(res[i].policy.rejected - base_res[i].policy.rejected) /
                                                  std::fabs(base_res[i].policy.rejected));
            if (res[i].policy.n_chosen != base_res[i].policy.n_chosen ||
                res[i].policy.n_rejected != base_res[i].policy.n_rejected) worst_logp = 1;
        }
        double loss_rel = std::fabs(loss - base_loss) / std::fabs(base_loss);
        size_t sizes[NUM_PARAM_TENSORS], off = 0;
        param_sizes(cfg, sizes);
        double worst_grad = 0;
        std::string worst_name = "-";
        for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
            double r = rel_diff(m.grads, base_grads, off, sizes[i]);
            if (r > worst_grad) { worst_grad = r; worst_name = PARAM_TENSOR_NAMES[i]; }
            off += sizes[i];
        }
        std::string name = std::string("equivalence_float_") + cs.name + "_vs_baseline";
        test_report(worst_logp < 1e-5 && loss_rel < 1e-5 && worst_grad < 1e-5, name.c_str(),
                    "logp rel %.3g, loss rel %.3g, worst grad rel %.3g (%s)", worst_logp, loss_rel,
                    worst_grad, worst_name.c_str());
    }
}

static void test_float_matches_double() {
    Rng rng(5);
    ModelConfig cfg = tiny_config();
    cfg.channels = 32; cfg.num_heads = 4;
    PairSet set = random_pairs(rng, 6, cfg.vocab_size, 8, false);
    std::vector<double> rc(6, -20.0), rr(6, -21.0);
    LossSpec spec;
    cpu::GPT2<double> md; md.cfg = cfg; randomize(md, 11);
    cpu::GPT2<float> mf; mf.setup(cfg);
    for (size_t i = 0; i < md.params.size(); i++) mf.params[i] = (float)md.params[i];
    Batch b = layout_pairs(set, LAYOUT_SHARED, true, 48);
    double ld = batch_loss(md, b, rc, rr, spec, true);
    double lf = batch_loss(mf, b, rc, rr, spec, true);
    std::vector<float> gd(md.grads.begin(), md.grads.end());
    double gr = rel_diff(mf.grads, gd, 0, gd.size());
    double lr = std::fabs(ld - lf) / std::fabs(ld);
    test_report(lr < 1e-5 && gr < 1e-4, "float_blas_path_matches_double_loops",
                "loss rel %.3g, grad rel %.3g", lr, gr);
}

// closed forms computed here in long double, independently of kernels/dpo_loss_math.h
static void test_loss_formulas() {
    const double hs[] = {-800.0, -40.0, -3.0, -0.5, 0.0, 0.7, 2.0, 35.0, 900.0};
    const float beta = 0.25f, eps = 0.1f;
    bool ok_sig = true, ok_ipo = true, ok_hinge = true, ok_sft = true, finite = true;
    char why[256] = "";
    for (double hv : hs) {
        // choose logps so that h = beta * ((pc - rc) - (pr - rr)) = hv
        double rc = -50, rr = -60, pr = -55;
        double pc = hv / beta + rc + (pr - rr);
        int nc = 7, nr = 9;
        double dc, dr;
        LossSpec s;
        // sigmoid with label smoothing
        s.beta = beta; s.label_smoothing = eps;
        double L = pair_loss<double>(s, pc, pr, rc, rr, nc, nr, &dc, &dr);
        long double h = (long double)beta * ((pc - rc) - (pr - rr));
        auto softplus = [](long double x) { return x > 40 ? x : log1pl(expl(x)); };
        const long double e = eps;
        long double want = (1 - e) * softplus(-h) + e * softplus(h);  // -log s(h) = softplus(-h)
        long double dwant = beta * (-(1 - e) / (1 + expl(h)) + e / (1 + expl(-h)));
        if (!std::isfinite(L) || !std::isfinite(dc)) finite = false;
        if (std::fabs(L - (double)want) > 1e-9 * std::max(1.0, std::fabs((double)want)) ||
            std::fabs(dc - (double)dwant) > 1e-9 || std::fabs(dr + (double)dwant) > 1e-9) {
            ok_sig = false; snprintf(why, sizeof why, "sigmoid at h=%g: %g vs %g", hv, L, (double)want);
        }
        // ipo: logps averaged per token
        s = LossSpec(); s.weight[LOSS_SIGMOID] = 0; s.weight[LOSS_IPO] = 1; s.beta = beta;
        L = pair_loss<double>(s, pc, pr, rc, rr, nc, nr, &dc, &dr);
        long double u = (pc - rc) / nc - (pr - rr) / nr - 1.0L / (2 * beta);
        if (std::fabs(L - (double)(u * u)) > 1e-9 * std::max(1.0, (double)(u * u)) ||
            std::fabs(dc - (double)(2 * u / nc)) > 1e-9 * std::max(1.0, std::fabs((double)u))) ok_ipo = false;
        // hinge
        s = LossSpec(); s.weight[LOSS_SIGMOID] = 0; s.weight[LOSS_HINGE] = 1; s.beta = beta;
        L = pair_loss<double>(s, pc, pr, rc, rr, nc, nr, &dc, &dr);
        double hw = (double)h, hinge = hw < 1 ? 1 - hw : 0;
        if (std::fabs(L - hinge) > 1e-9 * std::max(1.0, hinge) || dc != (hw < 1 ? -beta : 0.0)) ok_hinge = false;
        // sft
        s = LossSpec(); s.weight[LOSS_SIGMOID] = 0; s.weight[LOSS_SFT] = 1;
        L = pair_loss<double>(s, pc, pr, rc, rr, nc, nr, &dc, &dr);
        if (std::fabs(L - (-pc / nc)) > 1e-12 * std::fabs(pc) || dc != -1.0 / nc || dr != 0) ok_sft = false;
        // float at the extremes: no overflow, no NaN
        LossSpec sf; sf.beta = beta;
        float dcf, drf;
        float Lf = pair_loss<float>(sf, (float)pc, (float)pr, (float)rc, (float)rr, nc, nr, &dcf, &drf);
        if (!std::isfinite(Lf) || !std::isfinite(dcf) || !std::isfinite(drf)) finite = false;
    }
    test_report(ok_sig, "loss_sigmoid_closed_form", "%s", why);
    test_report(ok_ipo, "loss_ipo_closed_form");
    test_report(ok_hinge, "loss_hinge_closed_form");
    test_report(ok_sft, "loss_sft_closed_form");
    test_report(finite, "loss_no_overflow_at_large_h");
    // a weighted combination is the weighted sum
    LossSpec s; s.weight[LOSS_SIGMOID] = 1; s.weight[LOSS_SFT] = 0.5f; s.beta = 0.1f;
    double dc, dr, dc1, dr1, dc2, dr2;
    double L = pair_loss<double>(s, -30, -35, -31, -33, 5, 6, &dc, &dr);
    LossSpec a; a.beta = 0.1f;
    LossSpec b; b.weight[LOSS_SIGMOID] = 0; b.weight[LOSS_SFT] = 1;
    double La = pair_loss<double>(a, -30, -35, -31, -33, 5, 6, &dc1, &dr1);
    double Lb = pair_loss<double>(b, -30, -35, -31, -33, 5, 6, &dc2, &dr2);
    test_report(std::fabs(L - (La + 0.5 * Lb)) < 1e-12 && std::fabs(dc - (dc1 + 0.5 * dc2)) < 1e-12,
                "loss_weighted_combination");
}

// GELU (computed as x * sigmoid(2u)) against GPT-2's tanh form, written out here
static void test_gelu_closed_form() {
    double worst_double = 0, worst_float = 0;
    for (double x = -12; x <= 12; x += 0.01) {
        float xf = (float)x;
        double want = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        double want_f = 0.5 * xf * (1 + std::tanh(std::sqrt(2 / M_PI) * (xf + 0.044715 * xf * xf * xf)));
        worst_double = std::max(worst_double, std::fabs(gelu_forward_scalar<double>(x) - want));
        worst_float = std::max(worst_float, std::fabs(gelu_forward_scalar<float>(xf) - want_f) /
                                                (std::fabs(want_f) + 1e-6));
    }
    test_report(worst_double < 1e-12 && worst_float < 1e-5, "gelu_matches_tanh_form",
                "max abs difference %.3g (double), max relative %.3g (float)", worst_double, worst_float);
}

int main() {
    test_gelu_closed_form();
    test_loss_formulas();
    test_gradcheck();
    test_equivalence();
    test_float_matches_double();
    return test_exit();
}
