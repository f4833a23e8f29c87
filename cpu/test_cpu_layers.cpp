// Tests of the CPU reference layers that the model used to inline (cpu/encoder.h, cpu/gelu.h,
// cpu/logprob.h, cpu/adamw.h), each on its own, on fresh random inputs:
//   - encoder: forward against the embedding sums written out here; backward against central
//     finite differences in double, with tokens and positions that repeat
//   - gelu: backward against central finite differences in double
//   - logprob: forward against a log-softmax computed here in long double, in float and double;
//     backward (d inp and d wte) against central finite differences in double
//   - adamw: decay only on the tensors that decay, against the update written out here; the
//     global gradient norm against a plain sum
// The whole-model gradient check and layout equivalence are in common/test_model.cpp.
#include <cmath>
#include <cstdio>
#include <vector>

#include "common/rng.h"
#include "cpu/adamw.h"
#include "cpu/encoder.h"
#include "cpu/gelu.h"
#include "cpu/logprob.h"
#include "dev/test_util.h"

template <typename Real>
static std::vector<Real> random_vector(Rng& rng, size_t n, double scale = 1.0) {
    std::vector<Real> v(n);
    for (auto& x : v) x = (Real)(scale * rng.normal());
    return v;
}

// relative error of a against b: |a - b| / max(|b|, tiny), over whole vectors
static double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i]; }
    return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

static void test_encoder() {
    Rng rng(11);
    const int N = 23, C = 6, V = 9, maxT = 7;
    std::vector<int> tok(N), pos(N);
    for (int n = 0; n < N; n++) { tok[n] = rng.below(V); pos[n] = rng.below(maxT); }
    std::vector<double> wte = random_vector<double>(rng, (size_t)V * C);
    std::vector<double> wpe = random_vector<double>(rng, (size_t)maxT * C);
    std::vector<double> out((size_t)N * C);
    cpu::encoder_forward(out.data(), tok.data(), pos.data(), wte.data(), wpe.data(), N, C);
    double worst = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C; i++)
            worst = std::max(worst, std::fabs(out[(size_t)n * C + i] -
                                              (wte[(size_t)tok[n] * C + i] + wpe[(size_t)pos[n] * C + i])));
    test_report(worst == 0, "encoder_forward_is_wte_plus_wpe", "max difference %.3g", worst);

    // loss = sum(out * g): d loss / d wte and wpe by central differences of the forward
    std::vector<double> g = random_vector<double>(rng, (size_t)N * C);
    auto loss = [&]() {
        cpu::encoder_forward(out.data(), tok.data(), pos.data(), wte.data(), wpe.data(), N, C);
        double s = 0;
        for (size_t i = 0; i < out.size(); i++) s += out[i] * g[i];
        return s;
    };
    std::vector<double> dwte(wte.size(), 0.5), dwpe(wpe.size(), -0.25);  // accumulates onto these
    cpu::encoder_backward(dwte.data(), dwpe.data(), g.data(), tok.data(), pos.data(), N, C);
    std::vector<double> an, fd;
    for (auto* pair : {&wte, &wpe}) {
        std::vector<double>& w = *pair;
        const std::vector<double>& d = pair == &wte ? dwte : dwpe;
        const double start = pair == &wte ? 0.5 : -0.25;
        for (size_t j = 0; j < w.size(); j++) {
            const double h = 1e-4, saved = w[j];
            w[j] = saved + h; double lp = loss();
            w[j] = saved - h; double lm = loss();
            w[j] = saved;
            fd.push_back((lp - lm) / (2 * h));
            an.push_back(d[j] - start);
        }
    }
    double rel = rel_error(an, fd);
    test_report(rel < 1e-8, "encoder_backward_vs_finite_differences", "relative error %.3g", rel);
}

static void test_gelu() {
    Rng rng(12);
    const size_t n = 200;
    std::vector<double> x = random_vector<double>(rng, n, 3.0), g = random_vector<double>(rng, n), y(n), dx(n);
    cpu::gelu_backward(dx.data(), x.data(), g.data(), n);
    std::vector<double> fd(n), an(dx.begin(), dx.end());
    for (size_t i = 0; i < n; i++) {
        const double h = 1e-5;
        double xp = x[i] + h, xm = x[i] - h, yp, ym;
        cpu::gelu_forward(&yp, &xp, 1);
        cpu::gelu_forward(&ym, &xm, 1);
        fd[i] = g[i] * (yp - ym) / (2 * h);
    }
    double rel = rel_error(an, fd);
    test_report(rel < 1e-8, "gelu_backward_vs_finite_differences", "relative error %.3g", rel);
}

// The LM head's reference: logits in long double from the same inputs, then log-softmax.
struct LogprobWant {
    std::vector<double> logp, logit_mean, probs;
};
template <typename Real>
static LogprobWant logprob_direct(const std::vector<Real>& inp, const std::vector<Real>& wte,
                                  const std::vector<int>& target, int M, int C, int V) {
    LogprobWant w;
    for (int m = 0; m < M; m++) {
        std::vector<long double> z(V);
        long double maxz = -INFINITY, total = 0;
        for (int v = 0; v < V; v++) {
            long double s = 0;
            for (int i = 0; i < C; i++) s += (long double)inp[(size_t)m * C + i] * wte[(size_t)v * C + i];
            z[v] = s;
            maxz = std::max(maxz, s);
            total += s;
        }
        long double sum = 0;
        for (int v = 0; v < V; v++) sum += expl(z[v] - maxz);
        w.logp.push_back((double)(z[target[m]] - maxz - logl(sum)));
        w.logit_mean.push_back((double)(total / V));
        for (int v = 0; v < V; v++) w.probs.push_back((double)(expl(z[v] - maxz) / sum));
    }
    return w;
}

// Runs logprob_forward in Real and returns the worst relative error of logp, logit_mean, probs.
template <typename Real>
static double logprob_forward_error(int M, int C, int V, int Vp, uint64_t seed) {
    Rng rng(seed);
    std::vector<Real> inp = random_vector<Real>(rng, (size_t)M * C);
    std::vector<Real> wte = random_vector<Real>(rng, (size_t)Vp * C, 0.5);
    std::vector<int> target(M);
    for (int m = 0; m < M; m++) target[m] = rng.below(V);
    std::vector<Real> probs((size_t)M * V), logp(M), logit_mean(M);
    cpu::logprob_forward(probs.data(), logp.data(), logit_mean.data(), inp.data(), wte.data(), target.data(),
                         M, C, V);
    LogprobWant w = logprob_direct(inp, wte, target, M, C, V);
    auto as_double = [](const std::vector<Real>& v) { return std::vector<double>(v.begin(), v.end()); };
    return std::max({rel_error(as_double(logp), w.logp), rel_error(as_double(logit_mean), w.logit_mean),
                     rel_error(as_double(probs), w.probs)});
}

static void test_logprob_forward() {
    // V = 61 with Vp = 128: the padded rows hold random values that must not matter
    double ed = logprob_forward_error<double>(9, 16, 61, 128, 21);
    double ef = logprob_forward_error<float>(9, 16, 61, 128, 22);
    // double: rounding of sums of 16 products and 61 exponentials (< 1e-13); float through BLAS
    // sgemm and expf: a few ulps of float on each (< 1e-5)
    test_report(ed < 1e-12 && ef < 1e-5, "logprob_forward_vs_direct_log_softmax",
                "worst relative error %.3g (double), %.3g (float)", ed, ef);
}

static void test_logprob_backward() {
    Rng rng(23);
    const int M = 7, C = 8, V = 29, Vp = 32;
    std::vector<double> inp = random_vector<double>(rng, (size_t)M * C);
    std::vector<double> wte = random_vector<double>(rng, (size_t)Vp * C, 0.5);
    std::vector<double> dlogp = random_vector<double>(rng, M);
    std::vector<int> target(M);
    for (int m = 0; m < M; m++) target[m] = rng.below(V);
    std::vector<double> probs((size_t)M * V), logp(M), logit_mean(M);
    // loss = sum_m dlogp[m] * logp[m]
    auto loss = [&]() {
        cpu::logprob_forward(probs.data(), logp.data(), logit_mean.data(), inp.data(), wte.data(),
                             target.data(), M, C, V);
        double s = 0;
        for (int m = 0; m < M; m++) s += dlogp[m] * logp[m];
        return s;
    };
    loss();
    std::vector<double> dinp((size_t)M * C, 7.0), dwte((size_t)Vp * C, 0.0), dlogits((size_t)M * V);
    cpu::logprob_backward(dinp.data(), dwte.data(), dlogits.data(), dlogp.data(), probs.data(), inp.data(),
                          wte.data(), target.data(), M, C, V);
    std::vector<double> an_inp, fd_inp, an_wte, fd_wte;
    auto fd_of = [&](double& w) {
        const double h = 1e-5, saved = w;
        w = saved + h; double lp = loss();
        w = saved - h; double lm = loss();
        w = saved;
        return (lp - lm) / (2 * h);
    };
    for (size_t j = 0; j < inp.size(); j++) { fd_inp.push_back(fd_of(inp[j])); an_inp.push_back(dinp[j]); }
    for (size_t j = 0; j < (size_t)V * C; j++) { fd_wte.push_back(fd_of(wte[j])); an_wte.push_back(dwte[j]); }
    bool pad_zero = true;
    for (size_t j = (size_t)V * C; j < dwte.size(); j++) pad_zero = pad_zero && dwte[j] == 0;
    double ri = rel_error(an_inp, fd_inp), rw = rel_error(an_wte, fd_wte);
    test_report(ri < 1e-7 && rw < 1e-7 && pad_zero, "logprob_backward_vs_finite_differences",
                "relative error %.3g (d inp), %.3g (d wte)%s", ri, rw,
                pad_zero ? "" : "; padded rows got gradient");
}

static void test_adamw() {
    ModelConfig cfg;
    cfg.max_seq_len = 8; cfg.vocab_size = 10; cfg.padded_vocab_size = 128;
    cfg.num_layers = 2; cfg.num_heads = 2; cfg.channels = 4;
    const size_t n = num_parameters(cfg);
    Rng rng(31);
    std::vector<float> p = random_vector<float>(rng, n), g = random_vector<float>(rng, n);
    std::vector<float> m = random_vector<float>(rng, n, 0.1), v(n);
    for (auto& x : v) x = (float)(0.01 + rng.uniform());
    std::vector<float> p0 = p, m0 = m, v0 = v;
    cpu::AdamWSettings s;
    s.lr = 0.01f; s.beta1 = 0.8f; s.beta2 = 0.95f; s.eps = 1e-6f; s.weight_decay = 0.3f;
    const float clip = 0.5f;
    const long t = 3;
    cpu::adamw_update_model(cfg, p.data(), m.data(), v.data(), g.data(), clip, s, t);
    // expected, in double: decay on wte, wpe, qkvw, attprojw, fcw, fcprojw only
    size_t sizes[NUM_PARAM_TENSORS], off[NUM_PARAM_TENSORS];
    param_sizes(cfg, sizes);
    param_offsets(cfg, off);
    bool decays[NUM_PARAM_TENSORS] = {};
    for (int i : {PARAM_WTE, PARAM_WPE, PARAM_QKVW, PARAM_ATTPROJW, PARAM_FCW, PARAM_FCPROJW}) decays[i] = true;
    double worst = 0;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        for (size_t j = off[i]; j < off[i] + sizes[i]; j++) {
            double gr = (double)g[j] * clip;
            double mt = 0.8 * m0[j] + 0.2 * gr, vt = 0.95 * v0[j] + 0.05 * gr * gr;
            double mh = mt / (1 - std::pow(0.8, 3)), vh = vt / (1 - std::pow(0.95, 3));
            double want = p0[j] - 0.01 * (mh / (std::sqrt(vh) + 1e-6) + (decays[i] ? 0.3 : 0.0) * p0[j]);
            worst = std::max(worst, std::fabs(p[j] - want) / (std::fabs(want) + 1e-3));
        }
    }
    // float arithmetic on values of order 1: a few ulps (1e-5 relative is ~100 ulps of slack)
    test_report(worst < 1e-5, "adamw_decays_only_named_matrices", "worst relative error %.3g", worst);

    double sumsq = 0;
    for (float x : g) sumsq += (double)x * x;
    double norm = cpu::global_grad_norm(g.data(), n);
    test_report(std::fabs(norm - std::sqrt(sumsq)) < 1e-12 * std::sqrt(sumsq), "global_grad_norm",
                "%.17g vs %.17g", norm, std::sqrt(sumsq));
}

int main() {
    test_encoder();
    test_gelu();
    test_logprob_forward();
    test_logprob_backward();
    test_adamw();
    return test_exit();
}
