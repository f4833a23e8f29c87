// The reference model's log-probs, computed once before training (forward only, initial
// weights) and cached per pair, so training needs neither a second model nor a second forward.
// The file records which model and which data it belongs to; a cache for another model or
// other data is an error, never silently reused.
//
// Layout (little-endian): char magic[8] = "DPOREFLP"; uint32 version = 1; uint32 n_pairs;
//   uint64 model_hash (configuration + initial weights); uint64 data_hash (the pair file's
//   content hash); uint64 payload_hash; then double logp[n_pairs][2] (chosen, rejected).
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/checkpoint.h"
#include "common/hash.h"

struct RefCache {
    uint64_t model_hash = 0, data_hash = 0;
    std::vector<double> chosen, rejected;  // [n_pairs]
};

#pragma pack(push, 1)
struct RefCacheHeader {
    char magic[8];
    uint32_t version, n_pairs;
    uint64_t model_hash, data_hash, payload_hash;
};
#pragma pack(pop)

static const char REF_CACHE_MAGIC[8] = {'D', 'P', 'O', 'R', 'E', 'F', 'L', 'P'};

inline std::vector<double> ref_cache_payload(const RefCache& c) {
    std::vector<double> out(2 * c.chosen.size());
    for (size_t i = 0; i < c.chosen.size(); i++) { out[2 * i] = c.chosen[i]; out[2 * i + 1] = c.rejected[i]; }
    return out;
}

inline bool save_ref_cache(const std::string& path, const RefCache& c, std::string* err) {
    std::vector<double> payload = ref_cache_payload(c);
    RefCacheHeader h;
    memcpy(h.magic, REF_CACHE_MAGIC, 8);
    h.version = 1; h.n_pairs = (uint32_t)c.chosen.size();
    h.model_hash = c.model_hash; h.data_hash = c.data_hash;
    h.payload_hash = hash_bytes(payload.data(), payload.size() * sizeof(double));
    return write_file_atomic(path, {{&h, sizeof h}, {payload.data(), payload.size() * sizeof(double)}}, err);
}

// Loads the cache at `path` if it exists. Returns false with *err set when the file exists but
// is unreadable, corrupt, or belongs to another model or other data; *found tells if it existed.
inline bool load_ref_cache(const std::string& path, uint64_t model_hash, uint64_t data_hash,
                           size_t n_pairs, RefCache* c, bool* found, std::string* err) {
    *found = false;
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return true;
    *found = true;
    RefCacheHeader h;
    fseek(f, 0, SEEK_END);
    long long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    bool ok = size >= (long long)sizeof h && fread(&h, sizeof h, 1, f) == 1 &&
              memcmp(h.magic, REF_CACHE_MAGIC, 8) == 0 && h.version == 1;
    if (!ok) {
        fclose(f);
        *err = path + ": not a reference log-prob cache (bad header); delete it or pass another --ref-cache";
        return false;
    }
    if (h.model_hash != model_hash || h.data_hash != data_hash || h.n_pairs != n_pairs) {
        fclose(f);
        char buf[512];
        snprintf(buf, sizeof buf,
                 "%s: this reference cache belongs to another %s (cache: model %016llx, data %016llx, %u pairs; "
                 "this run: model %016llx, data %016llx, %zu pairs); delete it to recompute, or pass another --ref-cache",
                 path.c_str(), h.model_hash != model_hash ? "model" : "dataset",
                 (unsigned long long)h.model_hash, (unsigned long long)h.data_hash, h.n_pairs,
                 (unsigned long long)model_hash, (unsigned long long)data_hash, n_pairs);
        *err = buf;
        return false;
    }
    if (size != (long long)(sizeof h + 2 * n_pairs * sizeof(double))) {  // before allocating anything
        fclose(f);
        *err = path + ": is " + std::to_string(size) + " bytes, expected " +
               std::to_string(sizeof h + 2 * n_pairs * sizeof(double)) + " for " + std::to_string(n_pairs) +
               " pairs: truncated or corrupt reference cache; delete it to recompute";
        return false;
    }
    std::vector<double> payload(2 * n_pairs);
    if (fread(payload.data(), sizeof(double), payload.size(), f) != payload.size() ||
        hash_bytes(payload.data(), payload.size() * sizeof(double)) != h.payload_hash) {
        fclose(f);
        *err = path + ": truncated or corrupt reference cache; delete it to recompute";
        return false;
    }
    fclose(f);
    c->model_hash = model_hash; c->data_hash = data_hash;
    c->chosen.resize(n_pairs); c->rejected.resize(n_pairs);
    for (size_t i = 0; i < n_pairs; i++) { c->chosen[i] = payload[2 * i]; c->rejected[i] = payload[2 * i + 1]; }
    return true;
}

inline uint64_t model_hash(const ModelConfig& cfg, const float* params, size_t n) {
    int32_t shape[6] = {cfg.max_seq_len, cfg.vocab_size, cfg.padded_vocab_size, cfg.num_layers,
                        cfg.num_heads, cfg.channels};
    uint64_t h = hash_bytes(shape, sizeof shape);
    return hash_bytes(params, n * sizeof(float), h);
}
