// The trainer's own checkpoint: model configuration, weights, AdamW moments and the training
// position, in one file written atomically (temp file, then rename), so a crash never leaves a
// half-written checkpoint and `--resume` continues exactly where the run stopped.
//
// Layout (little-endian):
//   header, 256 bytes: char magic[8] = "DPOCKPT1"; uint32 version = 2; uint32 header_bytes = 256;
//     int32 max_seq_len, vocab_size, padded_vocab_size, num_layers, num_heads, channels;
//     float layernorm_eps; int64 step (optimizer steps done); uint64 seed;
//     uint64 ref_model_hash (the initial weights the reference log-probs came from);
//     uint64 train_data_hash; uint32 has_optimizer; uint64 num_params; uint64 payload_hash;
//     zeros up to byte 248; uint64 header_hash (fnv1a64 of bytes 0-247)
//   payload: float params[num_params], then if has_optimizer: float m[num_params], v[num_params]
// Version 1 (this layout with zeros in place of header_hash) is still read. Every field is
// bounded before it is used: the configuration by model_config_error (common/model_config.h),
// step in [0, CHECKPOINT_MAX_STEP], has_optimizer 0 or 1, num_params equal to what the
// configuration needs, the file size exact; so a damaged header is an error, never a huge
// allocation or an out-of-range step.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/model_config.h"

struct CheckpointState {
    ModelConfig cfg;
    long step = 0;
    uint64_t seed = 0, ref_model_hash = 0, train_data_hash = 0;
    std::vector<float> params, m, v;  // m, v empty = no optimizer state
};

#pragma pack(push, 1)
struct CheckpointHeader {
    char magic[8];
    uint32_t version, header_bytes;
    int32_t max_seq_len, vocab_size, padded_vocab_size, num_layers, num_heads, channels;
    float layernorm_eps;
    int64_t step;
    uint64_t seed, ref_model_hash, train_data_hash;
    uint32_t has_optimizer;
    uint64_t num_params, payload_hash;
    char reserved[256 - 8 - 8 - 24 - 4 - 8 - 24 - 4 - 16 - 8];
    uint64_t header_hash;  // version 2: fnv1a64 of the 248 bytes before it
};
#pragma pack(pop)
static_assert(sizeof(CheckpointHeader) == 256, "checkpoint header is 256 bytes");

static const char CHECKPOINT_MAGIC[8] = {'D', 'P', 'O', 'C', 'K', 'P', 'T', '1'};
static const uint32_t CHECKPOINT_VERSION = 2;
static const int64_t CHECKPOINT_MAX_STEP = INT32_MAX;  // far above any --steps (common/train_config.h)

inline uint64_t checkpoint_header_hash(const CheckpointHeader& h) {
    return fnv1a64(FNV1A64_OFFSET, &h, offsetof(CheckpointHeader, header_hash));
}

inline uint64_t checkpoint_payload_hash(const CheckpointState& s) {
    uint64_t h = hash_bytes(s.params.data(), s.params.size() * sizeof(float));
    if (!s.m.empty()) {
        h = hash_bytes(s.m.data(), s.m.size() * sizeof(float), h);
        h = hash_bytes(s.v.data(), s.v.size() * sizeof(float), h);
    }
    return h;
}

inline bool save_checkpoint(const std::string& path, const CheckpointState& s, std::string* err) {
    CheckpointHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CHECKPOINT_MAGIC, 8);
    h.version = CHECKPOINT_VERSION; h.header_bytes = sizeof h;
    h.max_seq_len = s.cfg.max_seq_len; h.vocab_size = s.cfg.vocab_size;
    h.padded_vocab_size = s.cfg.padded_vocab_size; h.num_layers = s.cfg.num_layers;
    h.num_heads = s.cfg.num_heads; h.channels = s.cfg.channels; h.layernorm_eps = s.cfg.layernorm_eps;
    h.step = s.step; h.seed = s.seed; h.ref_model_hash = s.ref_model_hash;
    h.train_data_hash = s.train_data_hash; h.has_optimizer = s.m.empty() ? 0 : 1;
    h.num_params = s.params.size(); h.payload_hash = checkpoint_payload_hash(s);
    h.header_hash = checkpoint_header_hash(h);
    std::vector<std::pair<const void*, size_t>> parts = {{&h, sizeof h},
        {s.params.data(), s.params.size() * sizeof(float)}};
    if (!s.m.empty()) {
        parts.push_back({s.m.data(), s.m.size() * sizeof(float)});
        parts.push_back({s.v.data(), s.v.size() * sizeof(float)});
    }
    return write_file_atomic(path, parts, err);
}

// True if the file starts with the checkpoint magic (so --model can tell formats apart).
inline bool is_checkpoint_file(const std::string& path) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    char magic[8] = {0};
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    return n == 8 && memcmp(magic, CHECKPOINT_MAGIC, 8) == 0;
}

inline bool load_checkpoint(const std::string& path, CheckpointState* s, std::string* err) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) { *err = "cannot open checkpoint " + path; return false; }
    auto fail = [&](const std::string& what) {
        fclose(f);
        *err = path + ": " + what;
        return false;
    };
    fseek(f, 0, SEEK_END);
    long long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    CheckpointHeader h;
    if (size < (long long)sizeof h || fread(&h, sizeof h, 1, f) != 1)
        return fail("too short for a checkpoint header (" + std::to_string(size) + " bytes); the file is truncated or not a checkpoint");
    if (memcmp(h.magic, CHECKPOINT_MAGIC, 8) != 0)
        return fail("not a checkpoint of this trainer (bad magic at offset 0); use --model for Hugging Face or llm.c files");
    if (h.version != 1 && h.version != CHECKPOINT_VERSION)
        return fail("checkpoint version " + std::to_string(h.version) + " at offset 8 is not supported (this build reads "
                    "1 and 2); the file is damaged or from a newer build");
    if (h.header_bytes != sizeof h) return fail("header size " + std::to_string(h.header_bytes) + " at offset 12, expected 256");
    if (h.version >= 2 && h.header_hash != checkpoint_header_hash(h))
        return fail("header checksum mismatch (offset 248); the header is damaged, use another checkpoint");
    ModelConfig c;
    c.max_seq_len = h.max_seq_len; c.vocab_size = h.vocab_size; c.padded_vocab_size = h.padded_vocab_size;
    c.num_layers = h.num_layers; c.num_heads = h.num_heads; c.channels = h.channels;
    c.layernorm_eps = h.layernorm_eps;
    std::string bad_config = model_config_error(c);
    if (!bad_config.empty())
        return fail("invalid model configuration in the header (offsets 16-43): " + bad_config + "; the file is corrupt");
    if (h.step < 0 || h.step > CHECKPOINT_MAX_STEP)
        return fail("step " + std::to_string(h.step) + " at offset 44 is outside [0, " +
                    std::to_string(CHECKPOINT_MAX_STEP) + "]; the file is corrupt");
    if (h.has_optimizer > 1)
        return fail("has_optimizer " + std::to_string(h.has_optimizer) + " at offset 76 is not 0 or 1; the file is corrupt");
    if (h.num_params != num_parameters(c))
        return fail("header says " + std::to_string(h.num_params) + " parameters, the configuration needs " +
                    std::to_string(num_parameters(c)) + " (offset 80); the file is corrupt");
    long long want = (long long)sizeof h + (long long)h.num_params * 4 * (h.has_optimizer ? 3 : 1);  // < 2^58
    if (size != want)
        return fail("is " + std::to_string(size) + " bytes, expected " + std::to_string(want) +
                    " for this configuration; the file is truncated or corrupt (was the run killed while copying it?)");
    s->cfg = c;
    s->step = h.step; s->seed = h.seed; s->ref_model_hash = h.ref_model_hash;
    s->train_data_hash = h.train_data_hash;
    s->params.resize(h.num_params);
    bool ok = fread(s->params.data(), 4, h.num_params, f) == h.num_params;
    if (h.has_optimizer) {
        s->m.resize(h.num_params); s->v.resize(h.num_params);
        ok = ok && fread(s->m.data(), 4, h.num_params, f) == h.num_params;
        ok = ok && fread(s->v.data(), 4, h.num_params, f) == h.num_params;
    } else {
        s->m.clear(); s->v.clear();
    }
    if (!ok) return fail("read error");
    fclose(f);
    if (checkpoint_payload_hash(*s) != h.payload_hash) {
        *err = path + ": contents do not match the checksum in the header; the file is corrupt";
        return false;
    }
    return true;
}
