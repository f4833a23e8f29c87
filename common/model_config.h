// GPT-2 model configuration and the layout of its parameters in one contiguous buffer
// (the order of llm.c's train_gpt2.c, so llm.c checkpoints map one to one).
//   V = vocab_size, Vp = padded_vocab_size (multiple of 128; rows >= V are never used),
//   maxT = max_seq_len, L = num_layers, NH = num_heads, C = channels.
// Linear weights are [out, in]: y = x W^T + b (Hugging Face's Conv1D stores [in, out]).
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

enum { NUM_PARAM_TENSORS = 16 };
static const char* const PARAM_TENSOR_NAMES[NUM_PARAM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

// Element counts of the 16 tensors, in order:
//   wte [Vp,C]  wpe [maxT,C]  ln1w,ln1b [L,C]  qkvw [L,3C,C]  qkvb [L,3C]  attprojw [L,C,C]
//   attprojb [L,C]  ln2w,ln2b [L,C]  fcw [L,4C,C]  fcb [L,4C]  fcprojw [L,C,4C]  fcprojb [L,C]
//   lnfw,lnfb [C]
static inline void param_sizes(const ModelConfig& c, size_t sizes[NUM_PARAM_TENSORS]) {
    size_t Vp = c.padded_vocab_size, C = c.channels, L = c.num_layers, T = c.max_seq_len;
    sizes[0] = Vp * C;        sizes[1] = T * C;
    sizes[2] = L * C;         sizes[3] = L * C;
    sizes[4] = L * 3 * C * C; sizes[5] = L * 3 * C;
    sizes[6] = L * C * C;     sizes[7] = L * C;
    sizes[8] = L * C;         sizes[9] = L * C;
    sizes[10] = L * 4 * C * C; sizes[11] = L * 4 * C;
    sizes[12] = L * C * 4 * C; sizes[13] = L * C;
    sizes[14] = C;            sizes[15] = C;
}

static inline size_t num_parameters(const ModelConfig& c) {
    size_t s[NUM_PARAM_TENSORS], n = 0;
    param_sizes(c, s);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) n += s[i];
    return n;
}

static inline int pad_vocab(int V) { return (V + 127) / 128 * 128; }

// Weight decay applies to matrices (wte, wpe, qkvw, attprojw, fcw, fcprojw), not to biases
// or LayerNorm parameters.
static inline bool param_tensor_decays(int i) {
    return i == 0 || i == 1 || i == 4 || i == 6 || i == 10 || i == 12;
}
