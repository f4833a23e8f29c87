// train_dpo: DPO training of GPT-2 on a CUDA GPU. The same command line, data, checkpoints,
// reference cache and log.jsonl as train_dpo_cpu: both run the training driver of
// common/train_loop.h (flags, data, reference pass, eval, checkpoints, the step loop); this file
// is its GPU backend (GPT2GPU below), with the forward and backward of every layer in kernels/*.cuh.
//
//   ./train_dpo                       the bundled synthetic task with a tiny model
//   ./train_dpo --train T.bin --val V.bin --model gpt2/ --out run1 ...
//   ./train_dpo score --model M --data PAIRS.bin --out LOGPS.tsv
//   ./train_dpo sample --model M --prompt "TEXT"      (on the CPU, from the fp32 weights)
//   ./train_dpo memory --model d12 --micro-rows B --seq-len T [--head-chunk K]
//                                     the device memory such a run needs (computed; no GPU needed)
//
// Precision: parameters and activations floatX (bf16; float with `make PRECISION=FP32`); an fp32
// master copy of the weights, fp32 gradients (accumulated over the micro-batches of a step) and fp32
// AdamW moments; every reduction and softmax in fp32. Checkpoints hold the fp32 master weights and
// moments, so a run resumes in either trainer.
//
// One micro-batch (data/batch.h) is B rows x T tokens, N = B*T, padding included: every layer runs
// over all N tokens (padding sees only itself, so its gradient is exactly 0). Only the M scored
// tokens (target >= 0) go through the LM head:
//   encoder -> L x [ LN1 -> QKV matmul -> attention (end[] mask) -> proj matmul
//                    -> residual + LN2 (fused) -> FC matmul + GELU (epilogue) -> FCproj matmul
//                    -> residual + the next LN1, or the final LN (fused) ]
//   -> gather the scored rows -> logits = lnf_scored wte^T -> log-prob of each target
//   -> dpo_loss (per-pair sums, loss, dlogp) -> backward through all of it.
// The LM head runs in chunks of at most head_chunk (--head-chunk K) scored tokens, so its logits
// buffer is [min(K, N), Vp], not [M, Vp] (at N = 8 x 1024 and Vp = 50304 that is 0.8 GB in bf16).
// The forward keeps only the last chunk's logits; the backward walks the chunks from the last one
// down and recomputes the logits of the others (2 M' C Vp more FLOPs for the M' scored tokens
// outside the last chunk; none when M <= K, the default's common case).
// Built with TESTING defined (test_dpo.cu includes this file) it has no main().
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda_common.h"
#include "kernels/adamw.cuh"
#include "kernels/attention.cuh"
#include "kernels/dpo_loss.cuh"
#include "kernels/encoder.cuh"
#include "kernels/gelu.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/logprob.cuh"
#include "kernels/matmul.cuh"
#include "kernels/zero.cuh"

#include "common/demo_task.h"
#include "common/launch.h"
#include "common/train_loop.h"
#include "common/trainer.h"
#include "cpu/exact_match.h"
#include "cpu/sample.h"
#include "cpu/sample_command.h"
#include "data/dataloader.h"

// ----------------------------------------------------------------------------------------------
// The CPU sampler (cpu/sample.h, for `sample` and the samples during training) makes its matrix-vector
// products with cblas_sgemv. This is that call, row-major and untransposed (all the sampler asks
// for), so that the GPU trainer needs cblas.h but no BLAS library (GPU machines often have none).
// Memory-bound either way: the weights are read once per generated token.
extern "C" void cblas_sgemv(OPENBLAS_CONST enum CBLAS_ORDER order, OPENBLAS_CONST enum CBLAS_TRANSPOSE trans,
                            OPENBLAS_CONST blasint m, OPENBLAS_CONST blasint n, OPENBLAS_CONST float alpha,
                            OPENBLAS_CONST float* a, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float* x,
                            OPENBLAS_CONST blasint incx, OPENBLAS_CONST float beta, float* y,
                            OPENBLAS_CONST blasint incy) {
    if (order != CblasRowMajor || trans != CblasNoTrans || incx != 1 || incy != 1) {
        fprintf(stderr, "%s:%d: cblas_sgemv: only row-major, untransposed, unit strides are implemented here\n",
                __FILE__, __LINE__);
        exit(1);
    }
    for (blasint i = 0; i < m; i++) {
        const float* row = a + (size_t)i * lda;
        float sum = 0.0f;
        for (blasint j = 0; j < n; j++) sum += row[j] * x[j];
        y[i] = alpha * sum + (beta == 0.0f ? 0.0f : beta * y[i]);
    }
}

// ----------------------------------------------------------------------------------------------
// fp32 master weights -> the floatX parameters the forward reads

__global__ void copy_to_floatX_kernel(floatX* out, const float* inp, size_t n) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = (floatX)inp[i];
}

inline void copy_to_floatX(floatX* out, const float* inp, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    const size_t blocks = (n + 511) / 512;
    copy_to_floatX_kernel<<<(unsigned)std::min<size_t>(blocks, 65536), 512, 0, stream>>>(out, inp, n);
    CUDA_CHECK(cudaGetLastError());
}

// ----------------------------------------------------------------------------------------------
// The model on the GPU: weights, optimizer state, and activations for one micro-batch of B x T.

struct GPT2GPU {
    ModelConfig cfg;
    int B = 0, T = 0;              // capacity: one micro-batch of B rows x T tokens
    int head_chunk = 8192;         // scored tokens per LM-head chunk (set before setup)
    size_t num_params = 0;
    size_t sizes[NUM_PARAM_TENSORS], offsets[NUM_PARAM_TENSORS];
    cudaStream_t stream = 0;

    // Weights and optimizer state. Data parallelism (kernels/zero.cuh) decides which parameters
    // [own_lo, own_hi) this rank updates: its ZeRO-1 shard, or all of them (one rank, --zero 0).
    //   params [num_params, padded for the ZeRO-1 all-gather]   floatX, the whole model
    //   grads [num_params]                                      fp32, this rank's micro-batches
    //   master, adam_m, adam_v [own_hi - own_lo]                fp32, master[0] is parameter own_lo
    floatX* params = nullptr;
    float *master = nullptr, *grads = nullptr, *adam_m = nullptr, *adam_v = nullptr;
    size_t own_lo = 0, own_hi = 0;
    ZeroGPU* dp = nullptr;         // the optimizer step: the job's, or solo_dp on one rank
    NcclComm solo;                 // world 1
    ZeroGPU solo_dp;
    bool reduce_in_backward = false;  // this backward is the step's last: start the reductions
    ParamTensors<floatX> param;
    ParamTensors<float> grad;

    // per-token metadata of the micro-batch [N]; the scored tokens' rows and targets [<= N]
    int *tokens = nullptr, *pos = nullptr, *end = nullptr, *scored = nullptr, *targets = nullptr;
    int* encoder_plan = nullptr;                        // [6N + 2] encoder_backward_plan's data
    int *pair_offsets = nullptr, *pair_tokens = nullptr;  // dpo_loss plan [2N + 1], [N]
    float *ref_chosen = nullptr, *ref_rejected = nullptr; // [N] (at most N pairs)
    PairResult* pair_results = nullptr;                 // [N]

    // activations (floatX [N, *], statistics fp32)
    floatX* encoded = nullptr;                          // [N,C]
    struct Layer {
        floatX *ln1, *qkv, *atty, *res2, *ln2, *fch, *fch_gelu, *res3;  // [N,C|3C|C|C|C|4C|4C|C]
        float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lse;         // [N] x 4, [B,NH,T]
    };
    std::vector<Layer> layers;
    floatX* lnf = nullptr;                              // [N,C]
    float *lnf_mean = nullptr, *lnf_rstd = nullptr;     // [N]
    floatX *lnf_scored = nullptr, *logits = nullptr;    // [M,C], [chunk,Vp] (M <= N, chunk <= head_chunk)
    float *logp = nullptr, *head_lse = nullptr, *mean_logit = nullptr, *dlogp = nullptr;  // [M]
    // scratch: gradients in the backward; dc also takes the two projections' outputs in the forward
    floatX *dres = nullptr, *dc = nullptr, *d3c = nullptr, *d4c = nullptr;  // [N, C|C|3C|4C]
    float *norm_partials = nullptr, *norm_out = nullptr;
    float* column_partials = nullptr;  // the dbias and LayerNorm parameter sums' stage-1 scratch

    // host side of the last forward
    int N = 0, M = 0;
    std::vector<int> h_scored, h_targets, h_slot;
    std::vector<int8_t> h_side;
    std::vector<float> h_logp, h_mean_logit;
    size_t allocated_bytes = 0;  // this struct's device buffers and the matmul workspace

    // scored tokens per LM-head chunk for micro-batches of B x T (the logits buffer's rows)
    size_t head_rows() const { return std::min((size_t)B * T, (size_t)std::max(1, head_chunk)); }

    // The device memory of a run, by part (allocate's bytes, without a GPU: `train_dpo memory`).
    struct Memory { size_t state = 0, activations = 0, logits = 0, workspace = MATMUL_WORKSPACE_BYTES; };
    Memory memory;  // allocate's count

    // Allocates (or, with dry_run, only counts) every device buffer for micro-batches of B x T.
    // Returns the bytes, with the 32 MiB workspace that matmul_setup allocates; memory has the
    // parts: weights and optimizer state, activations, the LM head's logits.
    size_t allocate(bool dry_run) {
        const size_t C = cfg.channels, L = cfg.num_layers, Vp = cfg.padded_vocab_size, NH = cfg.num_heads;
        const size_t n = (size_t)B * T;
        memory = Memory();
        size_t* part = &memory.state;
        auto buf = [&](auto** p, size_t count) {
            const size_t b = (count * sizeof(**p) + 255) / 256 * 256;
            *part += b;
            if (!dry_run) CUDA_CHECK(cudaMalloc((void**)p, b));
        };
        // without dp (the memory subcommand): one rank's
        const size_t owned = dp ? own_hi - own_lo : num_params;
        buf(&params, dp ? dp->params_elements() : num_params);
        buf(&master, owned); buf(&grads, num_params); buf(&adam_m, owned); buf(&adam_v, owned);
        part = &memory.activations;
        buf(&tokens, n); buf(&pos, n); buf(&end, n); buf(&scored, n); buf(&targets, n);
        buf(&encoder_plan, 6 * n + 2);
        buf(&pair_offsets, 2 * n + 1); buf(&pair_tokens, n);
        buf(&ref_chosen, n); buf(&ref_rejected, n); buf(&pair_results, n);
        buf(&encoded, n * C);
        layers.resize(L);
        for (Layer& a : layers) {
            buf(&a.ln1, n * C); buf(&a.qkv, n * 3 * C); buf(&a.atty, n * C); buf(&a.res2, n * C);
            buf(&a.ln2, n * C); buf(&a.fch, n * 4 * C); buf(&a.fch_gelu, n * 4 * C); buf(&a.res3, n * C);
            buf(&a.ln1_mean, n); buf(&a.ln1_rstd, n); buf(&a.ln2_mean, n); buf(&a.ln2_rstd, n);
            buf(&a.lse, n * NH);
        }
        buf(&lnf, n * C); buf(&lnf_mean, n); buf(&lnf_rstd, n);
        buf(&lnf_scored, n * C);
        buf(&logp, n); buf(&head_lse, n); buf(&mean_logit, n); buf(&dlogp, n);
        buf(&dres, n * C); buf(&dc, n * C); buf(&d3c, n * 3 * C); buf(&d4c, n * 4 * C);
        buf(&norm_partials, SUM_SQUARES_BLOCKS); buf(&norm_out, 1);
        buf(&column_partials, std::max({layernorm_backward_scratch_floats((int)C), matmul_dbias_scratch_floats((int)C),
                                        matmul_dbias_scratch_floats(3 * (int)C),
                                        matmul_dbias_scratch_floats(4 * (int)C)}));
        part = &memory.logits;
        buf(&logits, head_rows() * Vp);
        return memory.state + memory.activations + memory.logits + memory.workspace;
    }

    // The model of configuration c for micro-batches of B x T, weights from params (fp32 host,
    // all of them), AdamW moments from m and v: empty (zero), all num_params, or exactly this
    // rank's [own_lo, own_hi). zero: the job's data parallelism (ZeroGPU::init done), or null
    // for one rank. Exits with a clear message when the GPU lacks memory.
    void setup(const ModelConfig& c, int rows, int row_tokens, const std::vector<float>& weights,
               const std::vector<float>& m, const std::vector<float>& v, ZeroGPU* zero = nullptr) {
        cfg = c; B = rows; T = row_tokens;
        num_params = num_parameters(c);
        param_sizes(c, sizes);
        param_offsets(c, offsets);
        if (zero == nullptr) solo_dp.init(&solo, c, true);
        dp = zero ? zero : &solo_dp;
        own_lo = dp->lo; own_hi = dp->hi;
        const size_t need = allocate(true);
        size_t free_bytes = 0, total_bytes = 0;
        CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
        if (need > free_bytes) {
            const double weights_gb = memory.state / 1e9;  // floatX + 4 fp32 copies
            fprintf(stderr,
                    "error: the GPU has %.2f GB free of %.2f GB, this run needs %.2f GB (weights and "
                    "optimizer state %.2f GB, the LM head's logits of --head-chunk %zu tokens %.2f GB, "
                    "activations for --micro-rows %d x --seq-len %d the rest); "
                    "lower --micro-rows or --seq-len (or --head-chunk)%s\n",
                    free_bytes / 1e9, total_bytes / 1e9, need / 1e9, weights_gb, head_rows(),
                    memory.logits / 1e9, B, T,
                    weights_gb > free_bytes / 1e9 ? " (the model alone does not fit: use a smaller one)" : "");
            exit(1);
        }
        allocated_bytes = allocate(false);
        param = ParamTensors<floatX>(params, c);
        grad = ParamTensors<float>(grads, c);
        dp->attach(grads, stream);
        // all the weights through grads (fp32, num_params) into params; this rank's range to master
        const size_t owned = own_hi - own_lo;
        CUDA_CHECK(cudaMemcpy(grads, weights.data(), num_params * sizeof(float), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemset(params, 0, dp->params_elements() * sizeof(floatX)));  // the padding too
        copy_to_floatX(params, grads, num_params, stream);
        CUDA_CHECK(cudaMemcpy(master, grads + own_lo, owned * sizeof(float), cudaMemcpyDeviceToDevice));
        load_moments(m, v);
        CUDA_CHECK(cudaMemset(grads, 0, num_params * sizeof(float)));
    }

    // The AdamW moments: empty (zero), all num_params (a checkpoint of any world size: this
    // rank's range is taken) or exactly this rank's [own_lo, own_hi).
    void load_moments(const std::vector<float>& m, const std::vector<float>& v) {
        const size_t owned = own_hi - own_lo;
        if (m.empty()) {
            CUDA_CHECK(cudaMemset(adam_m, 0, owned * sizeof(float)));
            CUDA_CHECK(cudaMemset(adam_v, 0, owned * sizeof(float)));
            return;
        }
        if ((m.size() != num_params && m.size() != owned) || v.size() != m.size()) {
            fprintf(stderr, "%s:%d: AdamW moments of %zu and %zu values: expected all %zu or this rank's %zu\n",
                    __FILE__, __LINE__, m.size(), v.size(), num_params, owned);
            exit(1);
        }
        const size_t from = m.size() == num_params ? own_lo : 0;
        CUDA_CHECK(cudaMemcpy(adam_m, m.data() + from, owned * sizeof(float), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(adam_v, v.data() + from, owned * sizeof(float), cudaMemcpyHostToDevice));
    }

    void free_all() {
        auto release = [](auto*& p) { if (p) CUDA_CHECK(cudaFree(p)); p = nullptr; };
        release(params); release(master); release(grads); release(adam_m); release(adam_v);
        release(tokens); release(pos); release(end); release(scored); release(targets);
        release(encoder_plan); release(pair_offsets); release(pair_tokens);
        release(ref_chosen); release(ref_rejected); release(pair_results); release(encoded);
        for (Layer& a : layers) {
            release(a.ln1); release(a.qkv); release(a.atty); release(a.res2); release(a.ln2);
            release(a.fch); release(a.fch_gelu); release(a.res3); release(a.ln1_mean);
            release(a.ln1_rstd); release(a.ln2_mean); release(a.ln2_rstd); release(a.lse);
        }
        release(lnf); release(lnf_mean); release(lnf_rstd); release(lnf_scored); release(logits);
        release(logp); release(head_lse); release(mean_logit); release(dlogp);
        release(dres); release(dc); release(d3c); release(d4c); release(norm_partials); release(norm_out);
        release(column_partials);
        if (dp) dp->free_all();
    }

    // layer l's slice of a per-layer tensor whose layer size is n
    template <typename Real>
    static Real* at(Real* p, int l, size_t n) { return p + (size_t)l * n; }

    // Forward over micro-batch b (b.B x b.T tokens, at most B x T): logp[M] and mean_logit[M] of
    // the scored tokens, in row-major token order (the CPU model's order), on the device.
    void forward(const Batch& b) {
        const int C = cfg.channels, NH = cfg.num_heads, L = cfg.num_layers;
        const int V = cfg.vocab_size, Vp = cfg.padded_vocab_size;
        const float eps = cfg.layernorm_eps;
        if ((size_t)b.B * b.T > (size_t)B * T) {
            fprintf(stderr, "%s:%d: a micro-batch of %d x %d tokens exceeds the %d x %d the model was set up for\n",
                    __FILE__, __LINE__, b.B, b.T, B, T);
            exit(1);
        }
        N = b.B * b.T;
        h_scored.clear(); h_targets.clear(); h_slot.clear(); h_side.clear();
        for (int q = 0; q < N; q++) {
            if (b.target[q] < 0) continue;
            h_scored.push_back(q); h_targets.push_back(b.target[q]);
            h_slot.push_back(b.slot[q]); h_side.push_back(b.side[q]);
        }
        M = (int)h_scored.size();
        CUDA_CHECK(cudaMemcpyAsync(tokens, b.tokens.data(), N * sizeof(int), cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(cudaMemcpyAsync(pos, b.pos.data(), N * sizeof(int), cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(cudaMemcpyAsync(end, b.end.data(), N * sizeof(int), cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(cudaMemcpyAsync(scored, h_scored.data(), M * sizeof(int), cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(cudaMemcpyAsync(targets, h_targets.data(), M * sizeof(int), cudaMemcpyHostToDevice, stream));

        encoder_forward(encoded, tokens, pos, param.wte, param.wpe, N, C, stream);
        layernorm_forward(layers[0].ln1, layers[0].ln1_mean, layers[0].ln1_rstd, encoded, param.ln1w,
                          param.ln1b, N, C, eps, stream);
        for (int l = 0; l < L; l++) {
            Layer& a = layers[l];
            const floatX* x = l == 0 ? encoded : layers[l - 1].res3;  // the residual stream in
            matmul_forward(a.qkv, a.ln1, at(param.qkvw, l, 3 * C * C), at(param.qkvb, l, 3 * C), N, C, 3 * C, stream);
            attention_forward(a.atty, a.lse, a.qkv, end, b.B, b.T, NH, C, stream);
            matmul_forward(dc, a.atty, at(param.attprojw, l, C * C), at(param.attprojb, l, C), N, C, C, stream);
            fused_residual_layernorm_forward(a.res2, a.ln2, a.ln2_mean, a.ln2_rstd, x, dc, at(param.ln2w, l, C),
                                             at(param.ln2b, l, C), N, C, eps, stream);
            matmul_forward(a.fch_gelu, a.ln2, at(param.fcw, l, 4 * C * C), at(param.fcb, l, 4 * C), N, C, 4 * C,
                           stream, a.fch);
            matmul_forward(dc, a.fch_gelu, at(param.fcprojw, l, 4 * C * C), at(param.fcprojb, l, C), N, 4 * C, C,
                           stream);
            if (l + 1 < L) {
                Layer& next = layers[l + 1];
                fused_residual_layernorm_forward(a.res3, next.ln1, next.ln1_mean, next.ln1_rstd, a.res2, dc,
                                                 at(param.ln1w, l + 1, C), at(param.ln1b, l + 1, C), N, C, eps,
                                                 stream);
            } else {
                fused_residual_layernorm_forward(a.res3, lnf, lnf_mean, lnf_rstd, a.res2, dc, param.lnfw,
                                                 param.lnfb, N, C, eps, stream);
            }
        }
        if (M == 0) return;
        gather_rows(lnf_scored, lnf, scored, M, C, stream);
        // the LM head, chunk by chunk: logits[m0 .. m0+count) in the one buffer; the last chunk's stay
        for (int m0 = 0; m0 < M; m0 += (int)head_rows()) {
            const int count = std::min(M - m0, (int)head_rows());
            matmul_forward(logits, lnf_scored + (size_t)m0 * C, param.wte, nullptr, count, C, Vp, stream);
            logprob_forward(logp + m0, head_lse + m0, mean_logit + m0, logits, targets + m0, count, V, Vp, stream);
        }
    }

    // Forward only over micro-batch b: the per-slot sums of its log-probs (common/train_loop.h's
    // batch_logps, used by its set_logps for the reference pass, eval and score).
    std::vector<PairLogps> batch_logps(const Batch& b) {
        forward(b);
        return pair_logps(b.n_slots());
    }

    // Per-slot sums of the last forward's log-probs, in double and in token order (as the CPU).
    std::vector<PairLogps> pair_logps(int n_slots) {
        h_logp.resize(M); h_mean_logit.resize(M);
        CUDA_CHECK(cudaMemcpyAsync(h_logp.data(), logp, M * sizeof(float), cudaMemcpyDeviceToHost, stream));
        CUDA_CHECK(cudaMemcpyAsync(h_mean_logit.data(), mean_logit, M * sizeof(float), cudaMemcpyDeviceToHost, stream));
        CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<PairLogps> out(n_slots);
        for (int m = 0; m < M; m++) {
            PairLogps& p = out[h_slot[m]];
            if (h_side[m] == SIDE_CHOSEN) {
                p.chosen += (double)h_logp[m]; p.n_chosen++; p.logit_chosen += (double)h_mean_logit[m];
            } else {
                p.rejected += (double)h_logp[m]; p.n_rejected++; p.logit_rejected += (double)h_mean_logit[m];
            }
        }
        return out;
    }

    // Backward from dlogp[M] (on the device); accumulates into grads. b: the forward's micro-batch.
    void backward(const Batch& b) {
        const int C = cfg.channels, NH = cfg.num_heads, L = cfg.num_layers;
        const int V = cfg.vocab_size, Vp = cfg.padded_vocab_size;
        CUDA_CHECK(cudaMemsetAsync(dc, 0, (size_t)N * C * sizeof(floatX), stream));
        if (M > 0) {
            // the LM head chunk by chunk, the last (whose logits the forward left) first
            floatX* dlnf_scored = d3c;  // [M,C] scratch
            const int rows = (int)head_rows();
            const int last = (M - 1) / rows * rows;
            for (int m0 = last; m0 >= 0; m0 -= rows) {
                const int count = std::min(M - m0, rows);
                const floatX* x = lnf_scored + (size_t)m0 * C;
                if (m0 != last) matmul_forward(logits, x, param.wte, nullptr, count, C, Vp, stream);  // recompute
                logprob_backward(logits, dlogp + m0, head_lse + m0, targets + m0, count, V, Vp, stream);  // in place
                matmul_backward(dlnf_scored + (size_t)m0 * C, grad.wte, nullptr, nullptr, logits, x, param.wte, count,
                                C, Vp, stream);
            }
            scatter_add_rows(dc, dlnf_scored, scored, M, C, stream);  // d lnf [N,C]
        }
        CUDA_CHECK(cudaMemsetAsync(dres, 0, (size_t)N * C * sizeof(floatX), stream));
        layernorm_backward(dres, grad.lnfw, grad.lnfb, column_partials, dc, layers[L - 1].res3, param.lnfw, lnf_mean,
                           lnf_rstd, N, C, stream);
        if (reduce_in_backward) dp->group_ready(dp->lnf_group());  // lnfw, lnfb are final: reduce them
        for (int l = L - 1; l >= 0; l--) {
            Layer& a = layers[l];
            const floatX* x = l == 0 ? encoded : layers[l - 1].res3;
            // MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2)))); dres holds d res3
            matmul_backward(d4c, at(grad.fcprojw, l, 4 * C * C), at(grad.fcprojb, l, C), column_partials, dres,
                            a.fch_gelu, at(param.fcprojw, l, 4 * C * C), N, 4 * C, C, stream);
            gelu_backward(d4c, d4c, a.fch, (size_t)N * 4 * C, stream);
            matmul_backward(dc, at(grad.fcw, l, 4 * C * C), at(grad.fcb, l, 4 * C), column_partials, d4c,
                            a.ln2, at(param.fcw, l, 4 * C * C), N, C, 4 * C, stream);
            layernorm_backward(dres, at(grad.ln2w, l, C), at(grad.ln2b, l, C), column_partials, dc, a.res2,
                               at(param.ln2w, l, C), a.ln2_mean, a.ln2_rstd, N, C, stream);
            // attention: res2 = x + attproj(attn(qkv(ln1(x)))); dres holds d res2
            matmul_backward(dc, at(grad.attprojw, l, C * C), at(grad.attprojb, l, C), column_partials, dres,
                            a.atty, at(param.attprojw, l, C * C), N, C, C, stream);
            attention_backward(d3c, dc, a.qkv, a.atty, a.lse, end, b.B, b.T, NH, C, stream);
            matmul_backward(dc, at(grad.qkvw, l, 3 * C * C), at(grad.qkvb, l, 3 * C), column_partials, d3c,
                            a.ln1, at(param.qkvw, l, 3 * C * C), N, C, 3 * C, stream);
            layernorm_backward(dres, at(grad.ln1w, l, C), at(grad.ln1b, l, C), column_partials, dc, x,
                               at(param.ln1w, l, C), a.ln1_mean, a.ln1_rstd, N, C, stream);
            if (reduce_in_backward) dp->group_ready(dp->layer_group(l));  // layer l's slices, during layers < l
        }
        EncoderBackwardPlan plan = encoder_backward_plan(b.tokens.data(), b.pos.data(), N, Vp, cfg.max_seq_len);
        CUDA_CHECK(cudaMemcpyAsync(encoder_plan, plan.data.data(), plan.data.size() * sizeof(int),
                                   cudaMemcpyHostToDevice, stream));
        encoder_backward(grad.wte, grad.wpe, dres, plan, encoder_plan, C, stream);
        if (reduce_in_backward) dp->group_ready(dp->embedding_group());
        CUDA_CHECK(cudaStreamSynchronize(stream));  // the host buffers above are reused next micro-batch
    }

    // Forward, DPO loss against the reference log-probs (indexed by slot) and backward of one
    // micro-batch; every pair's gradient is scaled by `scale` (1 / pairs of the step). Returns the
    // per-pair results (loss unscaled), as cpu::dpo_forward_backward. last: the step's last
    // micro-batch on this rank (several ranks: the gradient reduction then starts in the backward,
    // layer by layer; without it reduce() does it all after the backward).
    std::vector<PairResult> dpo_step(const Batch& b, const std::vector<double>& rc, const std::vector<double>& rr,
                                     const LossSpec& spec, double scale, bool last = false) {
        forward(b);
        const int S = b.n_slots();
        DpoPairPlan plan = dpo_pair_plan(h_slot.data(), h_side.data(), M, S);
        std::vector<float> ref_c(rc.begin(), rc.end()), ref_r(rr.begin(), rr.end());
        CUDA_CHECK(cudaMemcpyAsync(pair_offsets, plan.offsets.data(), plan.offsets.size() * sizeof(int),
                                   cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(cudaMemcpyAsync(pair_tokens, plan.tokens.data(), plan.tokens.size() * sizeof(int),
                                   cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(cudaMemcpyAsync(ref_chosen, ref_c.data(), S * sizeof(float), cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(cudaMemcpyAsync(ref_rejected, ref_r.data(), S * sizeof(float), cudaMemcpyHostToDevice, stream));
        dpo_loss_forward_backward(pair_results, dlogp, logp, mean_logit, pair_offsets, pair_tokens, ref_chosen,
                                  ref_rejected, spec, S, (float)scale, stream);
        reduce_in_backward = last && dp->comm->active;
        backward(b);  // synchronizes
        reduce_in_backward = false;
        // the per-pair results, fetched once the backward is done: a copy into pageable host memory
        // waits for the stream, so before the backward it stopped the host until the forward was
        // over and the GPU idled while the first backward kernels were launched
        std::vector<PairResult> res(S);
        CUDA_CHECK(cudaMemcpyAsync(res.data(), pair_results, S * sizeof(PairResult), cudaMemcpyDeviceToHost,
                                   stream));
        CUDA_CHECK(cudaStreamSynchronize(stream));
        // the kernel had the references as floats; the metrics use the cache's doubles
        for (int s = 0; s < S; s++) { res[s].ref_chosen = rc[s]; res[s].ref_rejected = rr[s]; }
        return res;
    }

    void zero_grad() { CUDA_CHECK(cudaMemsetAsync(grads, 0, num_params * sizeof(float), stream)); }

    // One rank: sum of grads^2, summed in fp32 in a fixed order. Several: see reduce().
    double grad_sumsq() {
        global_norm_squared(norm_out, norm_partials, grads, num_params, stream);
        float sumsq = 0;
        CUDA_CHECK(cudaMemcpyAsync(&sumsq, norm_out, sizeof(float), cudaMemcpyDeviceToHost, stream));
        CUDA_CHECK(cudaStreamSynchronize(stream));
        return (double)sumsq;
    }
    double grad_norm() { return std::sqrt(grad_sumsq()); }

    // After the step's backward: the ranks' gradients summed (kernels/zero.cuh) and their
    // StepPartials summed in rank order; the global norm is sqrt(result.shard_sumsq); dp->bad_rank
    // names a rank whose loss or gradient was not finite. A collective.
    StepPartial reduce(const StepPartial& mine) { return dp->reduce(mine); }

    // AdamW step t (1, 2, ...) on this rank's parameters with the summed gradient * clip (as the
    // CPU trainer), then (ZeRO-1) the all-gather of the floatX parameters. One rank: the gradient
    // is grads, no reduce() needed. A collective.
    void adamw_step(const TrainConfig& tc, float lr, float clip, long t) {
        dp->update(master, params, adam_m, adam_v, lr, tc.beta1, tc.beta2, tc.adam_eps, tc.weight_decay, clip, t);
    }

    // All num_params fp32 master weights (every rank gets them; a collective).
    std::vector<float> weights() { return dp->gather(master); }
    // This rank's AdamW moments [own_lo, own_hi) on the host (no collective).
    void own_moments(std::vector<float>* m, std::vector<float>* v) {
        m->resize(own_hi - own_lo);
        v->resize(own_hi - own_lo);
        CUDA_CHECK(cudaMemcpy(m->data(), adam_m, m->size() * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(v->data(), adam_v, v->size() * sizeof(float), cudaMemcpyDeviceToHost));
    }

    // A device buffer of num_params fp32 values to the host (gradients).
    std::vector<float> download(const float* p) {
        std::vector<float> h(num_params);
        CUDA_CHECK(cudaMemcpy(h.data(), p, num_params * sizeof(float), cudaMemcpyDeviceToHost));
        return h;
    }
};

#ifndef TESTING
// ----------------------------------------------------------------------------------------------
// Model FLOPs utilisation. Only real tokens count (padding is waste, not work): per real token the
// forward does 2 * 12 L C^2 FLOPs in the layers' matmuls (QKV 3C^2, proj C^2, FC 4C^2, FCproj
// 4C^2); attention does 4 C FLOPs per layer for every visible (query, key) pair (QK^T and AV over
// all heads), which the mask's end[] gives exactly: key k is seen by end[k] - k queries; each
// scored token adds 2 C V in the LM head. Backward = 2 x forward, so a step is 3 x forward.
// LayerNorm, GELU, softmax and the optimizer are not counted (as llm.c does).
static double batch_flops(const Batch& b, const ModelConfig& cfg) {
    const double C = cfg.channels, L = cfg.num_layers, V = cfg.vocab_size;
    double real = 0, visible = 0, scored = 0;
    for (int r = 0; r < b.B; r++) {
        for (int t = 0; t < b.row_len[r]; t++) {
            const size_t i = (size_t)r * b.T + t;
            real += 1;
            visible += b.end[i] - t;
            scored += b.target[i] >= 0;
        }
    }
    const double forward = 2 * 12 * L * C * C * real + 4 * C * L * visible + 2 * C * V * scored;
    return 3 * forward;
}

// Dense peak FLOP/s of the GPU for this build's precision, 0 when unknown (then no MFU is shown).
// bf16: tensor cores; fp32: plain FP32 units (no TF32: matmul.cuh asks for true fp32).
static double peak_flops(const cudaDeviceProp& prop) {
    if (SIMT_CPU) return 0;  // the CPU emulator (train_dpo_simt) only names an H100
    const std::string name = prop.name;
    const bool fp32 = sizeof(floatX) == 4;
    struct Peak { const char* name; double bf16, fp32; };
    static const Peak peaks[] = {{"H200", 989e12, 67e12}, {"H100", 989e12, 67e12}, {"A100", 312e12, 19.5e12},
                                 {"L40S", 362e12, 91.6e12}, {"A10", 125e12, 31.2e12}};
    for (const Peak& p : peaks)
        if (name.find(p.name) != std::string::npos) return fp32 ? p.fp32 : p.bf16;
    return 0;
}

// Exits with a clear message when no usable GPU is present; returns the properties of the current
// device (0, or the one NcclComm::start chose for this rank).
static cudaDeviceProp require_gpu() {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        fatal(std::string("no CUDA GPU found (") + (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") +
              "); train on the CPU with ./train_dpo_cpu (same flags)");
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    printf("device: %s (sm_%d%d, %.1f GB), precision %s\n", prop.name, prop.major, prop.minor,
           prop.totalGlobalMem / 1e9, PRECISION_NAME);
    return prop;
}


// ----------------------------------------------------------------------------------------------
// The GPU backend of common/train_loop.h (its top comment lists these members): GPT2GPU with the
// optimizer step of kernels/zero.cuh over the job's NcclComm (alone: nobody to talk to, AdamW on
// every parameter).

struct GpuBackend {
    NcclComm* comm = nullptr;     // the job's
    bool zero1 = true;            // --zero: known before setup, since the shard sizes the optimizer state
    ZeroGPU zero;
    GPT2GPU gpu;
    bool started = false;
    double peak = 0;              // the GPU's peak FLOP/s for this precision, 0 = unknown
    std::vector<float> host;      // host_weights()'s copy of the fp32 master weights

    void start(const TrainConfig& tc) {
        peak = peak_flops(require_gpu());
        gpu.head_chunk = tc.head_chunk;
        matmul_setup();
        started = true;
    }
    void setup(const ModelConfig& cfg, int B, int T, std::vector<float>* weights) {
        zero.init(comm, cfg, zero1);
        gpu.setup(cfg, B, T, *weights, {}, {}, &zero);
        std::vector<float>().swap(*weights);
        printf("device memory: %.2f GB allocated (weights, optimizer state%s, activations of %d x %d tokens)\n",
               gpu.allocated_bytes / 1e9, zero.sharded() ? " of this rank's ZeRO-1 shard" : "", B, T);
    }
    void init_optimizer(const TrainConfig& tc, std::vector<float>* m, std::vector<float>* v) {
        if (tc.zero != zero1) fatal("--zero changed after the optimizer state was sized");
        gpu.load_moments(*m, *v);  // this rank's ZeRO-1 shard or all n (as load_checkpoint gives them), or none
        std::vector<float>().swap(*m);
        std::vector<float>().swap(*v);
    }
    std::vector<PairLogps> batch_logps(const Batch& b) { return gpu.batch_logps(b); }
    void zero_grad() { gpu.zero_grad(); }
    // last (this rank's last micro-batch of the step): its backward starts the gradient reduction
    std::vector<PairResult> dpo_step(const Batch& b, const std::vector<double>& rc, const std::vector<double>& rr,
                                     const LossSpec& spec, double scale, bool last) {
        return gpu.dpo_step(b, rc, rr, spec, scale, last);
    }
    StepPartial reduce(StepPartial mine, int* bad_rank) {
        StepPartial all = gpu.reduce(mine);
        *bad_rank = zero.bad_rank;
        return all;
    }
    void update(const TrainConfig& tc, float lr, float clip, long t) {
        gpu.adamw_step(tc, lr, clip, t);
        comm->wait(gpu.stream, "the optimizer step");
    }
    const float* host_weights() {
        host = gpu.weights();
        return host.data();
    }
    // this rank's moments, no collective: its ZeRO-1 shard from *begin, or all n from 0
    void moments(std::vector<float>* m, std::vector<float>* v, size_t* begin) {
        gpu.own_moments(m, v);
        *begin = gpu.own_lo;
    }
    // greedy generation on the host, on the CPU (cpu/sample.h, cpu/exact_match.h)
    double exact_match_rate(const float* w, const PairSet& set, long n) {
        return cpu::exact_match_rate(gpu.cfg, w, set, n);
    }
    std::vector<int> greedy_continuation(const float* w, const std::vector<int>& prompt, int max_new_tokens, int eos) {
        return cpu::greedy_continuation(gpu.cfg, w, prompt, max_new_tokens, eos);
    }
    // the step record's mfu (null when the GPU's peak is unknown) and peak_mem_gb; mfu on the line
    // (several ranks: rank 0's micro-batches on rank 0's GPU)
    void step_extras(const std::vector<Batch>& batches, double seconds, std::string* record, std::string* line) {
        double flops = 0;
        for (const Batch& b : batches) flops += batch_flops(b, gpu.cfg);
        const double mfu = peak > 0 ? flops / seconds / peak : -1;
        const double mem_gb = gpu.allocated_bytes / 1e9;
        char text[128];
        if (mfu >= 0) snprintf(text, sizeof text, ", \"mfu\": %.4f, \"peak_mem_gb\": %.3f", mfu, mem_gb);
        else snprintf(text, sizeof text, ", \"mfu\": null, \"peak_mem_gb\": %.3f", mem_gb);
        *record = text;
        if (mfu >= 0) {
            snprintf(text, sizeof text, " | mfu %.1f%%", 100 * mfu);
            *line = text;
        }
    }
    void finish() {
        if (!started) return;
        gpu.free_all();
        matmul_teardown();
    }
};

// ----------------------------------------------------------------------------------------------
// memory: what a run allocates on the device, computed by GPT2GPU::allocate(dry_run) without a
// GPU (so train_dpo_simt answers too), for GPT-2's vocabulary and this build's precision.

static int run_memory(int argc, char** argv) {
    std::string preset = "d12";
    int B = 8, T = 0, chunk = TrainConfig().head_chunk;
    FlagParser f(argc, argv, 2, "memory");
    while (f.next()) {
        if (f.is("--model")) f.text(&preset);
        else if (f.is("--micro-rows")) f.integer(&B, 1, MAX_FLAG_ROWS);
        else if (f.is("--seq-len")) f.integer(&T, 2, MAX_FLAG_SEQ_LEN);
        else if (f.is("--head-chunk")) f.integer(&chunk, 1, MAX_FLAG_HEAD_CHUNK);
        else if (f.is("--help") || f.is("-h")) {
            printf("usage: %s memory [--model PRESET (d12)] [--micro-rows B (8)] [--seq-len T (the model's)]\n"
                   "       [--head-chunk K (%d)]: the device memory of such a training run, computed\n",
                   argv[0], TrainConfig().head_chunk);
            return 0;
        }
        else f.unknown();
    }
    if (!f.ok()) fatal(f.error());
    GPT2GPU g;
    if (!model_preset(preset, &g.cfg)) fatal("memory: --model takes a preset: tiny small d6 d12 d24 d36 d48");
    g.cfg.vocab_size = 50257;
    g.cfg.padded_vocab_size = pad_vocab(50257);
    g.B = B;
    g.T = T == 0 ? g.cfg.max_seq_len : T;
    g.head_chunk = chunk;
    g.num_params = num_parameters(g.cfg);
    const size_t total = g.allocate(true);
    const GPT2GPU::Memory& m = g.memory;
    printf("memory: %s (%.1fM parameters, V=50257), micro-batch %d x %d, LM head in chunks of %zu scored tokens, %s\n",
           preset.c_str(), g.num_params / 1e6, g.B, g.T, g.head_rows(), PRECISION_NAME);
    printf("  weights and optimizer state %8.2f GB  (%s weights; fp32 master, gradients, AdamW m, v)\n",
           m.state / 1e9, PRECISION_NAME);
    printf("  activations                 %8.2f GB\n", m.activations / 1e9);
    printf("  LM-head logits              %8.2f GB\n", m.logits / 1e9);
    printf("  matmul workspace            %8.2f GB\n", m.workspace / 1e9);
    printf("  total                       %8.2f GB  (computed from the buffers train_dpo allocates, not measured)\n",
           total / 1e9);
    return 0;
}

// The job this process belongs to (common/launch.h: the rank flags or the launcher's environment)
// and its NCCL communicator. An explicit --world-size 1 runs the NCCL path with one rank.
static NcclComm g_comm;

// An error on one rank ends it (its communicator aborted, so that the others' collectives fail or
// time out and end them too), naming the rank: the handler of common/trainer.h's fatal().
static void fatal_on_rank(const std::string& msg) {
    if (g_comm.world > 1) g_comm.die(msg);
    fprintf(stderr, "error: %s\n", msg.c_str());
    g_comm.abort(1);
}

static void start_job(const TrainConfig& tc) {
    LaunchInfo info;
    std::string err;
    if (!resolve_launch(tc.launch, tc.out_dir, process_environment, &info, &err)) fatal(err);
    if (info.world > 1 && info.rank == 0) printf("launch: %s\n", launch_summary(info).c_str());
    g_comm.start(info.rank, info.world, info.local_rank, info.timeout_s,
                 [&](void* blob, size_t bytes, std::string* e) { return rendezvous_broadcast(info, blob, bytes, e); },
                 tc.launch.world != 0);
}

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "sample") return run_sample(argc, argv);
    if (argc > 1 && std::string(argv[1]) == "memory") return run_memory(argc, argv);
    fatal_handler = fatal_on_rank;
    GpuBackend backend;
    backend.comm = &g_comm;
    int status = 0;
    if (argc > 1 && std::string(argv[1]) == "score") {
        status = score_loop(argc, argv, backend);
    } else {
        TrainConfig tc;
        bool demo;
        if (!parse_train_flags(argc, argv, &tc, &demo)) return 0;  // --help
        start_job(tc);
        backend.zero1 = tc.zero;
        status = train_loop(tc, demo, g_comm, backend);
    }
    backend.finish();
    g_comm.finish();
#ifdef DIST_WITH_MPI
    int mpi_started = 0, mpi_finished = 0;
    MPI_Initialized(&mpi_started);
    MPI_Finalized(&mpi_finished);
    if (mpi_started && !mpi_finished) MPI_Finalize();  // the mpi rendezvous (common/launch.h) started it
#endif
    return status;
}
#endif
