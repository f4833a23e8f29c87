// GPT-2 model configuration and the layout of its parameters in one contiguous buffer
// (the order of llm.c's train_gpt2.c, so llm.c checkpoints map one to one).
//   V = vocab_size, Vp = padded_vocab_size (multiple of 128; rows >= V are never used),
//   maxT = max_seq_len, L = num_layers, NH = num_heads, C = channels.
// Linear weights are [out, in]: y = x W^T + b (Hugging Face's Conv1D stores [in, out]).
// The 16 tensors have names (ParamTensor) and views into the flat buffer (ParamTensors,
// LayerParams): code says `p.qkvw`, never a tensor's number.
#pragma once
#include <cstddef>
#include <string>

struct ModelConfig {
    int max_seq_len = 1024;
    int vocab_size = 50257;
    int padded_vocab_size = 50304;
    int num_layers = 12;
    int num_heads = 12;
    int channels = 768;
    float layernorm_eps = 1e-5f;
};

// The parameter tensors in buffer order (llm.c's order: checkpoints depend on it).
enum ParamTensor {
    PARAM_WTE,       // [Vp, C]    token embedding, also the LM head (tied)
    PARAM_WPE,       // [maxT, C]  position embedding
    PARAM_LN1W,      // [L, C]
    PARAM_LN1B,      // [L, C]
    PARAM_QKVW,      // [L, 3C, C]
    PARAM_QKVB,      // [L, 3C]
    PARAM_ATTPROJW,  // [L, C, C]
    PARAM_ATTPROJB,  // [L, C]
    PARAM_LN2W,      // [L, C]
    PARAM_LN2B,      // [L, C]
    PARAM_FCW,       // [L, 4C, C]
    PARAM_FCB,       // [L, 4C]
    PARAM_FCPROJW,   // [L, C, 4C]
    PARAM_FCPROJB,   // [L, C]
    PARAM_LNFW,      // [C]
    PARAM_LNFB,      // [C]
    NUM_PARAM_TENSORS
};
static const char* const PARAM_TENSOR_NAMES[NUM_PARAM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

// Element counts of the tensors, in order (shapes above).
static inline void param_sizes(const ModelConfig& c, size_t sizes[NUM_PARAM_TENSORS]) {
    size_t Vp = c.padded_vocab_size, C = c.channels, L = c.num_layers, maxT = c.max_seq_len;
    sizes[PARAM_WTE] = Vp * C;
    sizes[PARAM_WPE] = maxT * C;
    sizes[PARAM_LN1W] = L * C;
    sizes[PARAM_LN1B] = L * C;
    sizes[PARAM_QKVW] = L * 3 * C * C;
    sizes[PARAM_QKVB] = L * 3 * C;
    sizes[PARAM_ATTPROJW] = L * C * C;
    sizes[PARAM_ATTPROJB] = L * C;
    sizes[PARAM_LN2W] = L * C;
    sizes[PARAM_LN2B] = L * C;
    sizes[PARAM_FCW] = L * 4 * C * C;
    sizes[PARAM_FCB] = L * 4 * C;
    sizes[PARAM_FCPROJW] = L * C * 4 * C;
    sizes[PARAM_FCPROJB] = L * C;
    sizes[PARAM_LNFW] = C;
    sizes[PARAM_LNFB] = C;
}

// Start of each tensor in the flat buffer.
static inline void param_offsets(const ModelConfig& c, size_t offsets[NUM_PARAM_TENSORS]) {
    size_t sizes[NUM_PARAM_TENSORS], at = 0;
    param_sizes(c, sizes);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) { offsets[i] = at; at += sizes[i]; }
}

static inline size_t num_parameters(const ModelConfig& c) {
    size_t s[NUM_PARAM_TENSORS], n = 0;
    param_sizes(c, s);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) n += s[i];
    return n;
}

static inline int pad_vocab(int V) { return (V + 127) / 128 * 128; }

// Why a configuration read from a file cannot be a GPT-2 this project runs, or "" if it can.
// The bounds (those of llm.c's loader) keep every size computed from them, num_parameters()
// included, far from overflowing 64 bits: Vp*C <= 2^40, L*12*C*C < 2^54.
static inline std::string model_config_error(const ModelConfig& c) {
    if (c.max_seq_len <= 0 || c.max_seq_len > (1 << 24)) return "max_seq_len must be in [1, 2^24]";
    if (c.vocab_size <= 0 || c.vocab_size > (1 << 24)) return "vocab_size must be in [1, 2^24]";
    if (c.padded_vocab_size < c.vocab_size || c.padded_vocab_size > (1 << 24))
        return "padded_vocab_size must be in [vocab_size, 2^24]";
    if (c.num_layers <= 0 || c.num_layers > 4096) return "num_layers must be in [1, 4096]";
    if (c.channels <= 0 || c.channels > (1 << 16)) return "channels must be in [1, 2^16]";
    if (c.num_heads <= 0 || c.channels % c.num_heads != 0) return "num_heads must divide channels";
    if (!(c.layernorm_eps > 0 && c.layernorm_eps < 1)) return "layernorm_eps must be in (0, 1)";
    return "";
}

// The one check of a sequence length against the model's context, shared by train, score,
// sample and the GPU trainer: positions >= max_seq_len have no row in the position embedding
// (wpe), so reading them would read past its end. `what` names the length ("--seq-len 2048",
// "pair 7 of data.bin (P + C + 1 + R = 2000 tokens)"). Returns "" or the error to print.
static inline std::string check_seq_len(long long T, const ModelConfig& c, const std::string& what) {
    if (T >= 1 && T <= c.max_seq_len) return "";
    if (T < 1) return what + " is not a positive length";
    return what + " exceeds the model's context of " + std::to_string(c.max_seq_len) +
           " positions; lower it (or --max-len in data/prepare_dpo), or use a model with a longer context";
}

// True for the tensors with one slice per layer (ln1w .. fcprojb).
static inline bool param_tensor_has_layers(int i) { return i >= PARAM_LN1W && i <= PARAM_FCPROJB; }

// Weight decay applies to matrices (wte, wpe, qkvw, attprojw, fcw, fcprojw), not to biases
// or LayerNorm parameters.
static inline bool param_tensor_decays(int i) {
    return i == PARAM_WTE || i == PARAM_WPE || i == PARAM_QKVW || i == PARAM_ATTPROJW ||
           i == PARAM_FCW || i == PARAM_FCPROJW;
}

// One layer's slices of the layered tensors. Real may be const (read-only views).
template <typename Real>
struct LayerParams {
    Real *ln1w, *ln1b;          // [C], [C]
    Real *qkvw, *qkvb;          // [3C, C], [3C]
    Real *attprojw, *attprojb;  // [C, C], [C]
    Real *ln2w, *ln2b;          // [C], [C]
    Real *fcw, *fcb;            // [4C, C], [4C]
    Real *fcprojw, *fcprojb;    // [C, 4C], [C]
};

// Named views of the 16 tensors in a flat buffer of num_parameters(cfg) elements (parameters,
// gradients or optimizer moments alike).
template <typename Real>
struct ParamTensors {
    Real *wte, *wpe;                        // [Vp, C], [maxT, C]
    Real *ln1w, *ln1b;                      // [L, C]
    Real *qkvw, *qkvb;                      // [L, 3C, C], [L, 3C]
    Real *attprojw, *attprojb;              // [L, C, C], [L, C]
    Real *ln2w, *ln2b;                      // [L, C]
    Real *fcw, *fcb;                        // [L, 4C, C], [L, 4C]
    Real *fcprojw, *fcprojb;                // [L, C, 4C], [L, C]
    Real *lnfw, *lnfb;                      // [C]
    size_t C = 0;

    ParamTensors() = default;
    ParamTensors(Real* base, const ModelConfig& cfg) {
        size_t o[NUM_PARAM_TENSORS];
        param_offsets(cfg, o);
        wte = base + o[PARAM_WTE];           wpe = base + o[PARAM_WPE];
        ln1w = base + o[PARAM_LN1W];         ln1b = base + o[PARAM_LN1B];
        qkvw = base + o[PARAM_QKVW];         qkvb = base + o[PARAM_QKVB];
        attprojw = base + o[PARAM_ATTPROJW]; attprojb = base + o[PARAM_ATTPROJB];
        ln2w = base + o[PARAM_LN2W];         ln2b = base + o[PARAM_LN2B];
        fcw = base + o[PARAM_FCW];           fcb = base + o[PARAM_FCB];
        fcprojw = base + o[PARAM_FCPROJW];   fcprojb = base + o[PARAM_FCPROJB];
        lnfw = base + o[PARAM_LNFW];         lnfb = base + o[PARAM_LNFB];
        C = cfg.channels;
    }

    // layer l's slices
    LayerParams<Real> layer(int l) const {
        const size_t n = (size_t)l * C;
        return {ln1w + n,         ln1b + n,         qkvw + 3 * C * n,    qkvb + 3 * n,
                attprojw + C * n, attprojb + n,     ln2w + n,            ln2b + n,
                fcw + 4 * C * n,  fcb + 4 * n,      fcprojw + 4 * C * n, fcprojb + n};
    }
};
