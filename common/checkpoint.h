// The trainer's own checkpoint: model configuration, weights, AdamW moments and the training
// position, written atomically (temp file, then rename), so a crash never leaves a half-written
// checkpoint and `--resume` continues exactly where the run stopped. Two forms, told apart by the
// first 8 bytes of the checkpoint path (OUT/checkpoint.bin):
//
// 1. One file ("DPOCKPT1"): single-rank runs and --zero 0. Layout (little-endian):
//   header, 256 bytes: char magic[8] = "DPOCKPT1"; uint32 version = 2; uint32 header_bytes = 256;
//     int32 max_seq_len, vocab_size, padded_vocab_size, num_layers, num_heads, channels;
//     float layernorm_eps; int64 step (optimizer steps done); uint64 seed;
//     uint64 ref_model_hash (the initial weights the reference log-probs came from);
//     uint64 train_data_hash; uint32 has_optimizer; uint64 num_params; uint64 payload_hash;
//     zeros up to byte 248; uint64 header_hash (fnv1a64 of bytes 0-247)
//   payload: float params[num_params], then if has_optimizer == 1: float m[num_params], v[num_params]
//   has_optimizer: 0 = weights only, 1 = with the moments, 2 = the weights file of a sharded
//   checkpoint (form 2: weights only here, the moments in its shard files).
// Version 1 (this layout with zeros in place of header_hash) is still read. Every field is
// bounded before it is used: the configuration by model_config_error (common/model_config.h),
// step in [0, CHECKPOINT_MAX_STEP], has_optimizer 0, 1 or 2, num_params equal to what the
// configuration needs, the file size exact; so a damaged header is an error, never a huge
// allocation or an out-of-range step.
//
// 2. Sharded (ZeRO-1 runs with world > 1): the checkpoint path holds a text manifest, and the
// data lies in files next to it, named after it, the step S and H, the first 8 hex digits of the
// weights' payload hash (PATH = .../checkpoint.bin):
//   PATH.step<S>-<H>.weights          rank 0's: form 1 with has_optimizer = 2 (loads as a --model)
//   PATH.step<S>-<H>.shard<r>of<W>    rank r's AdamW moments [begin, end) of the flat parameters:
//     header, 128 bytes: char magic[8] = "DPOSHRD1"; uint32 version = 1; uint32 header_bytes = 128;
//       int64 step; int32 rank, world; uint64 begin, end, num_params;
//       uint64 weights_hash (payload_hash of the weights file of the same save, so shards of
//       different saves never mix); uint64 payload_hash (hash_bytes of m, then v);
//       zeros up to byte 120; uint64 header_hash (fnv1a64 of bytes 0-119)
//     payload: float m[end - begin], v[end - begin]
//   PATH, the manifest, one line each (numbers in decimal, hashes as 16 hex digits):
//     DPOCKPTM sharded checkpoint manifest, version 1
//     step S
//     world W
//     num_params N
//     weights <payload hash> <file name>
//     shard <r> <begin> <end> <payload hash> <file name>      W lines, r = 0..W-1, in order;
//                                                             the ranges tile [0, N)
//     checksum <hash_bytes of every byte before this line>
// The commit rule: rank 0 writes the weights file, every rank its shard (each atomically), and
// only when every shard is durable does rank 0 check their headers and write the manifest
// (atomically): that rename is the commit point. Files of older saves (PATH.step*) are removed
// only after it. A crash at any point leaves the previous manifest and the files it names intact,
// so the previous checkpoint still loads; a manifest whose files are missing, damaged or of
// another save is an error naming the file.
//
// Loading (load_checkpoint) reads either form and returns the moments of the part the caller
// asks for: all n (single rank, --zero 0), none (--model), or rank r's shard of ZeroShards(n, W')
// (common/distributed.h). With W' = W that is exactly this rank's own shard file; with another
// world size the shards overlapping the new range are read and re-cut. Resharding is exact: the
// moments are per element, so cutting them at other bounds loses nothing, and a run resumed with
// another world size differs from one that kept its world size only by the order of the
// gradient sums (as any change of world size does).
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "common/atomic_file.h"
#include "common/distributed.h"
#include "common/hash.h"
#include "common/model_config.h"

struct CheckpointState {
    ModelConfig cfg;
    long step = 0;
    uint64_t seed = 0, ref_model_hash = 0, train_data_hash = 0;
    std::vector<float> params;
    // AdamW moments of the parameters [moments_begin, moments_begin + m.size()): all n, one ZeRO
    // shard, or none (empty: no optimizer state, or none asked for)
    std::vector<float> m, v;
    size_t moments_begin = 0;
    bool has_moments = false;  // the checkpoint holds moments (m, v: the part asked for; may be empty)
    int shard_world = 0;  // read from the sharded form: the world size that wrote it; 0 = one file
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

struct CheckpointShardHeader {
    char magic[8];
    uint32_t version, header_bytes;
    int64_t step;
    int32_t rank, world;
    uint64_t begin, end, num_params;
    uint64_t weights_hash, payload_hash;
    char reserved[128 - 8 - 8 - 8 - 8 - 24 - 16 - 8];
    uint64_t header_hash;  // fnv1a64 of the 120 bytes before it
};
#pragma pack(pop)
static_assert(sizeof(CheckpointHeader) == 256, "checkpoint header is 256 bytes");
static_assert(sizeof(CheckpointShardHeader) == 128, "checkpoint shard header is 128 bytes");

static const char CHECKPOINT_MAGIC[8] = {'D', 'P', 'O', 'C', 'K', 'P', 'T', '1'};
static const char CHECKPOINT_SHARD_MAGIC[8] = {'D', 'P', 'O', 'S', 'H', 'R', 'D', '1'};
static const char CHECKPOINT_MANIFEST_MAGIC[8] = {'D', 'P', 'O', 'C', 'K', 'P', 'T', 'M'};
static const char* const CHECKPOINT_MANIFEST_FIRST_LINE = "DPOCKPTM sharded checkpoint manifest, version 1";
static const uint32_t CHECKPOINT_VERSION = 2;
static const uint32_t CHECKPOINT_SHARD_VERSION = 1;
static const int64_t CHECKPOINT_MAX_STEP = INT32_MAX;  // far above any --steps (common/train_config.h)
static const int CHECKPOINT_MAX_WORLD = 1 << 16;
static const long long CHECKPOINT_MAX_MANIFEST_BYTES = 16 << 20;  // ~150 bytes per rank
enum : uint32_t { CHECKPOINT_WEIGHTS_ONLY = 0, CHECKPOINT_WITH_MOMENTS = 1, CHECKPOINT_MOMENTS_IN_SHARDS = 2 };

inline uint64_t checkpoint_header_hash(const CheckpointHeader& h) {
    return fnv1a64(FNV1A64_OFFSET, &h, offsetof(CheckpointHeader, header_hash));
}
inline uint64_t checkpoint_shard_header_hash(const CheckpointShardHeader& h) {
    return fnv1a64(FNV1A64_OFFSET, &h, offsetof(CheckpointShardHeader, header_hash));
}

// hash_bytes of params, then (if given) m and v: the payload checksum of either file kind
inline uint64_t checkpoint_payload_hash(const float* params, size_t n_params, const float* m, const float* v,
                                        size_t n_moments) {
    uint64_t h = hash_bytes(params, n_params * sizeof(float));
    if (n_moments > 0) {
        h = hash_bytes(m, n_moments * sizeof(float), h);
        h = hash_bytes(v, n_moments * sizeof(float), h);
    }
    return h;
}
inline uint64_t checkpoint_payload_hash(const CheckpointState& s) {
    return checkpoint_payload_hash(s.params.data(), s.params.size(), s.m.data(), s.v.data(), s.m.size());
}

// ---------------------------------------------------------------------------------------------
// File names of the sharded form: siblings of the manifest, named after it.

inline std::string checkpoint_dir(const std::string& path) {
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}
inline std::string checkpoint_base(const std::string& path) {
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}
inline std::string checkpoint_sibling(const std::string& path, const std::string& name) {
    return checkpoint_dir(path) + "/" + name;
}
// PATH.step<S>-<H>: H = the first 8 hex digits of the weights' payload hash, so that a save of
// other weights at the same step (a new run in the same directory) never overwrites the files of
// the committed checkpoint before its own manifest is committed.
inline std::string checkpoint_step_prefix(const std::string& path, long step, uint64_t weights_hash) {
    char h[9];
    snprintf(h, sizeof h, "%08llx", (unsigned long long)(weights_hash >> 32));
    return checkpoint_base(path) + ".step" + std::to_string(step) + "-" + h;
}
inline std::string checkpoint_weights_name(const std::string& path, long step, uint64_t weights_hash) {
    return checkpoint_step_prefix(path, step, weights_hash) + ".weights";
}
inline std::string checkpoint_shard_name(const std::string& path, long step, uint64_t weights_hash, int rank, int world) {
    return checkpoint_step_prefix(path, step, weights_hash) + ".shard" + std::to_string(rank) + "of" + std::to_string(world);
}

// Removes PATH.step* files (of older saves, or left by a crash) except those named in `keep`.
// Called only after the checkpoint at PATH is committed; a file that cannot be removed is a
// warning, never a failed save.
inline void remove_old_checkpoint_files(const std::string& path, const std::vector<std::string>& keep) {
    const std::string dir = checkpoint_dir(path), prefix = checkpoint_base(path) + ".step";
    DIR* d = opendir(dir.c_str());
    if (!d) return;  // nothing to clean: the checkpoint itself was just written there
    std::vector<std::string> old;
    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name.compare(0, prefix.size(), prefix) != 0) continue;
        bool kept = false;
        for (const std::string& k : keep) kept = kept || k == name;
        if (!kept) old.push_back(name);
    }
    closedir(d);
    for (const std::string& name : old) {
        const std::string file = dir + "/" + name;
        struct stat st;
        if (lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // only files we wrote
        if (unlink(file.c_str()) != 0)
            fprintf(stderr, "warning: cannot remove the old checkpoint file %s: %s\n", file.c_str(), strerror(errno));
    }
}

// ---------------------------------------------------------------------------------------------
// Form 1: one file.

// Writes s (moments: all n or none) with the given has_optimizer flag; *payload_hash = its checksum.
inline bool write_checkpoint_file(const std::string& path, const CheckpointState& s, uint32_t has_optimizer,
                                  uint64_t* payload_hash, std::string* err) {
    const bool moments = has_optimizer == CHECKPOINT_WITH_MOMENTS;
    if (moments && (s.moments_begin != 0 || s.m.size() != s.params.size() || s.v.size() != s.params.size())) {
        *err = path + ": a one-file checkpoint holds all " + std::to_string(s.params.size()) + " moments, not " +
               std::to_string(s.m.size()) + " from " + std::to_string(s.moments_begin);
        return false;
    }
    CheckpointHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CHECKPOINT_MAGIC, 8);
    h.version = CHECKPOINT_VERSION; h.header_bytes = sizeof h;
    h.max_seq_len = s.cfg.max_seq_len; h.vocab_size = s.cfg.vocab_size;
    h.padded_vocab_size = s.cfg.padded_vocab_size; h.num_layers = s.cfg.num_layers;
    h.num_heads = s.cfg.num_heads; h.channels = s.cfg.channels; h.layernorm_eps = s.cfg.layernorm_eps;
    h.step = s.step; h.seed = s.seed; h.ref_model_hash = s.ref_model_hash;
    h.train_data_hash = s.train_data_hash; h.has_optimizer = has_optimizer;
    h.num_params = s.params.size();
    h.payload_hash = checkpoint_payload_hash(s.params.data(), s.params.size(), s.m.data(), s.v.data(),
                                             moments ? s.m.size() : 0);
    h.header_hash = checkpoint_header_hash(h);
    *payload_hash = h.payload_hash;
    std::vector<std::pair<const void*, size_t>> parts = {{&h, sizeof h},
        {s.params.data(), s.params.size() * sizeof(float)}};
    if (moments) {
        parts.push_back({s.m.data(), s.m.size() * sizeof(float)});
        parts.push_back({s.v.data(), s.v.size() * sizeof(float)});
    }
    return write_file_atomic(path, parts, err);
}

// The one-file form at path (with all moments, or none if s.m is empty). It replaces whatever
// checkpoint was at path, so the files of an earlier sharded checkpoint there are removed after.
inline bool save_checkpoint(const std::string& path, const CheckpointState& s, std::string* err) {
    uint64_t payload_hash;
    if (!write_checkpoint_file(path, s, s.m.empty() ? CHECKPOINT_WEIGHTS_ONLY : CHECKPOINT_WITH_MOMENTS,
                               &payload_hash, err))
        return false;
    remove_old_checkpoint_files(path, {});
    return true;
}

// True if the file starts with the checkpoint magic of either form (so --model can tell formats apart).
inline bool is_checkpoint_file(const std::string& path) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    char magic[8] = {0};
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    return n == 8 && (memcmp(magic, CHECKPOINT_MAGIC, 8) == 0 || memcmp(magic, CHECKPOINT_MANIFEST_MAGIC, 8) == 0);
}

// The moments [*lo, *hi) that part `part` of `parts` asks for: parts = 0 none, 1 all n, else
// rank `part`'s shard of ZeroShards(n, parts).
inline bool checkpoint_part_range(size_t n, int part, int parts, size_t* lo, size_t* hi, std::string* err) {
    if (parts < 0 || parts > CHECKPOINT_MAX_WORLD || (parts > 0 && (part < 0 || part >= parts))) {
        *err = "checkpoint: part " + std::to_string(part) + " of " + std::to_string(parts) + " asked for";
        return false;
    }
    ZeroShards shards(n, parts > 0 ? parts : 1);
    *lo = parts == 0 ? 0 : shards.begin(part);
    *hi = parts == 0 ? 0 : shards.end(part);
    return true;
}

// Form 1 at path: weights and moments [lo, hi) (none if the file has none); *has_optimizer and
// *payload_hash from its header.
inline bool load_checkpoint_file(const std::string& path, CheckpointState* s, int part, int parts,
                                 uint32_t* has_optimizer, uint64_t* payload_hash, std::string* err) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) { *err = "cannot open checkpoint " + path + ": " + strerror(errno); return false; }
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
    if (h.has_optimizer > CHECKPOINT_MOMENTS_IN_SHARDS)
        return fail("has_optimizer " + std::to_string(h.has_optimizer) + " at offset 76 is not 0, 1 or 2; the file is corrupt");
    if (h.has_optimizer == CHECKPOINT_MOMENTS_IN_SHARDS && parts > 0)
        return fail("holds only the weights of a sharded checkpoint (has_optimizer 2 at offset 76): its AdamW moments are "
                    "in the shard files its manifest names; resume from the manifest (the checkpoint.bin written with "
                    "it), or use this file as a --model");
    if (h.num_params != num_parameters(c))
        return fail("header says " + std::to_string(h.num_params) + " parameters, the configuration needs " +
                    std::to_string(num_parameters(c)) + " (offset 80); the file is corrupt");
    const bool moments = h.has_optimizer == CHECKPOINT_WITH_MOMENTS;
    long long want = (long long)sizeof h + (long long)h.num_params * 4 * (moments ? 3 : 1);  // < 2^58
    if (size != want)
        return fail("is " + std::to_string(size) + " bytes, expected " + std::to_string(want) +
                    " for this configuration; the file is truncated or corrupt (was the run killed while copying it?)");
    size_t lo = 0, hi = 0;
    if (!checkpoint_part_range(h.num_params, part, parts, &lo, &hi, err)) { fclose(f); return false; }
    s->cfg = c;
    s->step = h.step; s->seed = h.seed; s->ref_model_hash = h.ref_model_hash;
    s->train_data_hash = h.train_data_hash;
    s->params.resize(h.num_params);
    s->moments_begin = 0;
    s->has_moments = moments;
    s->shard_world = 0;
    bool ok = fread(s->params.data(), 4, h.num_params, f) == h.num_params;
    if (moments) {
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
    if (moments) {  // keep [lo, hi) only
        s->m = std::vector<float>(s->m.begin() + lo, s->m.begin() + hi);
        s->v = std::vector<float>(s->v.begin() + lo, s->v.begin() + hi);
        s->moments_begin = lo;
    }
    *has_optimizer = h.has_optimizer;
    *payload_hash = h.payload_hash;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Form 2: the shards and the manifest.

struct CheckpointManifest {
    struct Shard {
        uint64_t begin = 0, end = 0, payload_hash = 0;
        std::string file;  // a name in the manifest's directory
    };
    long step = 0;
    int world = 0;
    uint64_t num_params = 0;
    std::string weights_file;
    uint64_t weights_hash = 0;
    std::vector<Shard> shards;  // [world], rank order
};

inline std::string checkpoint_hex(uint64_t x) {
    char buf[17];
    snprintf(buf, sizeof buf, "%016llx", (unsigned long long)x);
    return buf;
}

inline std::string manifest_text(const CheckpointManifest& mf) {
    std::string t = std::string(CHECKPOINT_MANIFEST_FIRST_LINE) + "\n";
    t += "step " + std::to_string(mf.step) + "\n";
    t += "world " + std::to_string(mf.world) + "\n";
    t += "num_params " + std::to_string(mf.num_params) + "\n";
    t += "weights " + checkpoint_hex(mf.weights_hash) + " " + mf.weights_file + "\n";
    for (size_t r = 0; r < mf.shards.size(); r++) {
        const CheckpointManifest::Shard& sh = mf.shards[r];
        t += "shard " + std::to_string(r) + " " + std::to_string(sh.begin) + " " + std::to_string(sh.end) + " " +
             checkpoint_hex(sh.payload_hash) + " " + sh.file + "\n";
    }
    t += "checksum " + checkpoint_hex(hash_bytes(t.data(), t.size())) + "\n";
    return t;
}

// What is wrong with the manifest's contents (not its syntax), or "" if nothing.
inline std::string manifest_error(const CheckpointManifest& mf) {
    auto bad_name = [](const std::string& f) {
        return f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos;
    };
    if (mf.step < 0 || mf.step > CHECKPOINT_MAX_STEP) return "step " + std::to_string(mf.step) + " is out of range";
    if (mf.world < 1 || mf.world > CHECKPOINT_MAX_WORLD) return "world " + std::to_string(mf.world) + " is out of range";
    if (mf.shards.size() != (size_t)mf.world)
        return std::to_string(mf.shards.size()) + " shard lines for world " + std::to_string(mf.world);
    if (bad_name(mf.weights_file)) return "the weights file name '" + mf.weights_file + "' is not a plain file name";
    uint64_t next = 0;
    for (size_t r = 0; r < mf.shards.size(); r++) {
        const CheckpointManifest::Shard& sh = mf.shards[r];
        if (sh.begin != next || sh.end < sh.begin || sh.end > mf.num_params)
            return "shard " + std::to_string(r) + " covers [" + std::to_string(sh.begin) + ", " + std::to_string(sh.end) +
                   "): the shards must tile [0, " + std::to_string(mf.num_params) + ") in rank order";
        if (bad_name(sh.file)) return "shard " + std::to_string(r) + "'s file name '" + sh.file + "' is not a plain file name";
        next = sh.end;
    }
    if (next != mf.num_params)
        return "the shards end at " + std::to_string(next) + ", not at num_params " + std::to_string(mf.num_params);
    return "";
}

inline bool parse_manifest(const std::string& path, CheckpointManifest* mf, std::string* err) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) { *err = "cannot open checkpoint " + path + ": " + strerror(errno); return false; }
    fseek(f, 0, SEEK_END);
    long long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    std::string text(size > 0 && size <= CHECKPOINT_MAX_MANIFEST_BYTES ? (size_t)size : 0, '\0');
    bool read_ok = fread(&text[0], 1, text.size(), f) == text.size();
    fclose(f);
    if (size > CHECKPOINT_MAX_MANIFEST_BYTES || !read_ok) {
        *err = path + ": " + (read_ok ? "a manifest of " + std::to_string(size) + " bytes is too large" : "read error") +
               "; the file is damaged";
        return false;
    }
    // split into lines; the last must be the checksum of everything before it
    std::vector<std::string> lines;
    size_t checksum_at = 0;
    for (size_t at = 0; at < text.size();) {
        size_t nl = text.find('\n', at);
        if (nl == std::string::npos) { *err = path + ": the last line has no newline; the manifest is truncated"; return false; }
        checksum_at = at;
        lines.push_back(text.substr(at, nl - at));
        at = nl + 1;
    }
    auto fail = [&](size_t line, const std::string& what) {
        *err = path + " line " + std::to_string(line + 1) + ": " + what +
               "; the manifest is damaged, resume from another checkpoint";
        return false;
    };
    auto words = [](const std::string& line) {
        std::vector<std::string> w;
        for (size_t at = 0; at <= line.size();) {
            size_t sp = line.find(' ', at);
            if (sp == std::string::npos) sp = line.size();
            w.push_back(line.substr(at, sp - at));
            at = sp + 1;
        }
        return w;
    };
    auto number = [](const std::string& w, uint64_t* x) {
        if (w.empty() || w.size() > 19) return false;
        *x = 0;
        for (char c : w) {
            if (c < '0' || c > '9') return false;
            *x = *x * 10 + (uint64_t)(c - '0');
        }
        return true;
    };
    auto hex = [](const std::string& w, uint64_t* x) {
        if (w.size() != 16) return false;
        *x = 0;
        for (char c : w) {
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return false;
            *x = *x << 4 | (uint64_t)d;
        }
        return true;
    };
    if (lines.empty() || lines[0] != CHECKPOINT_MANIFEST_FIRST_LINE)
        return fail(0, "expected '" + std::string(CHECKPOINT_MANIFEST_FIRST_LINE) + "'");
    std::vector<std::string> last = words(lines.back());
    uint64_t checksum = 0;
    if (lines.size() < 2 || last.size() != 2 || last[0] != "checksum" || !hex(last[1], &checksum))
        return fail(lines.size() - 1, "expected 'checksum <16 hex digits>' as the last line (is the manifest truncated?)");
    if (checksum != hash_bytes(text.data(), checksum_at))
        return fail(lines.size() - 1, "the checksum does not match the lines before it");
    // the checksum holds, so the lines are as written; still, every field is checked
    uint64_t x = 0;
    const char* const keys[3] = {"step", "world", "num_params"};
    uint64_t values[3] = {0, 0, 0};
    for (size_t i = 1; i <= 3; i++) {
        std::vector<std::string> w = i < lines.size() - 1 ? words(lines[i]) : std::vector<std::string>();
        if (w.size() != 2 || w[0] != keys[i - 1] || !number(w[1], &values[i - 1]))
            return fail(i, std::string("expected '") + keys[i - 1] + " <number>'");
    }
    if (values[0] > (uint64_t)CHECKPOINT_MAX_STEP) return fail(1, "step " + std::to_string(values[0]) + " is out of range");
    if (values[1] < 1 || values[1] > (uint64_t)CHECKPOINT_MAX_WORLD)
        return fail(2, "world " + std::to_string(values[1]) + " is not in [1, " + std::to_string(CHECKPOINT_MAX_WORLD) + "]");
    mf->step = (long)values[0]; mf->world = (int)values[1]; mf->num_params = values[2];
    if (lines.size() != 5 + (size_t)mf->world + 1)
        return fail(lines.size() - 1, std::to_string(lines.size()) + " lines, expected " +
                                          std::to_string(6 + mf->world) + " for world " + std::to_string(mf->world));
    std::vector<std::string> w = words(lines[4]);
    if (w.size() != 3 || w[0] != "weights" || !hex(w[1], &mf->weights_hash))
        return fail(4, "expected 'weights <16 hex digits> <file name>'");
    mf->weights_file = w[2];
    mf->shards.assign(mf->world, CheckpointManifest::Shard());
    for (int r = 0; r < mf->world; r++) {
        CheckpointManifest::Shard& sh = mf->shards[r];
        w = words(lines[5 + r]);
        if (w.size() != 6 || w[0] != "shard" || !number(w[1], &x) || x != (uint64_t)r || !number(w[2], &sh.begin) ||
            !number(w[3], &sh.end) || !hex(w[4], &sh.payload_hash))
            return fail(5 + r, "expected 'shard " + std::to_string(r) + " <begin> <end> <16 hex digits> <file name>'");
        sh.file = w[5];
    }
    std::string bad = manifest_error(*mf);
    if (!bad.empty()) { *err = path + ": " + bad + "; the manifest is damaged, resume from another checkpoint"; return false; }
    return true;
}

// Rank 0's part of a sharded save: the weights (s.params, all n) to PATH.step<S>.weights, with
// has_optimizer = 2 (s.m and s.v are not written). *weights_hash = its payload hash, which every
// shard of this save carries.
inline bool save_checkpoint_weights(const std::string& path, const CheckpointState& s, uint64_t* weights_hash,
                                    std::string* err) {
    const uint64_t hash = checkpoint_payload_hash(s.params.data(), s.params.size(), nullptr, nullptr, 0);
    return write_checkpoint_file(checkpoint_sibling(path, checkpoint_weights_name(path, s.step, hash)), s,
                                 CHECKPOINT_MOMENTS_IN_SHARDS, weights_hash, err);
}

// One shard file's identity: what its header says, or what a reader expects it to say.
struct CheckpointShardInfo {
    long step = 0;
    int rank = 0, world = 1;
    uint64_t begin = 0, end = 0, num_params = 0;
    uint64_t weights_hash = 0, payload_hash = 0;
};

// Every rank's part of a sharded save: its moments m, v of the parameters [info.begin, info.end)
// to PATH.step<S>.shard<r>of<W>. Sets info->payload_hash (for the manifest).
inline bool save_checkpoint_shard(const std::string& path, CheckpointShardInfo* info, const float* m, const float* v,
                                  std::string* err) {
    const size_t count = info->end - info->begin;
    CheckpointShardHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CHECKPOINT_SHARD_MAGIC, 8);
    h.version = CHECKPOINT_SHARD_VERSION; h.header_bytes = sizeof h;
    h.step = info->step; h.rank = info->rank; h.world = info->world;
    h.begin = info->begin; h.end = info->end; h.num_params = info->num_params;
    h.weights_hash = info->weights_hash;
    h.payload_hash = info->payload_hash = checkpoint_payload_hash(nullptr, 0, m, v, count);
    h.header_hash = checkpoint_shard_header_hash(h);
    const std::string file = checkpoint_sibling(path, checkpoint_shard_name(path, info->step, info->weights_hash, info->rank, info->world));
    return write_file_atomic(file, {{&h, sizeof h}, {m, count * sizeof(float)}, {v, count * sizeof(float)}}, err);
}

// Opens the shard `file` and checks its header against `want` and its size; on success *f is
// positioned at the payload (the caller closes it).
inline bool open_checkpoint_shard(const std::string& file, const CheckpointShardInfo& want, FILE** f, std::string* err) {
    *f = fopen(file.c_str(), "rb");
    if (!*f) {
        *err = file + ": cannot open shard " + std::to_string(want.rank) + " of " + std::to_string(want.world) + ": " +
               strerror(errno) + "; the checkpoint is incomplete, resume from another one";
        return false;
    }
    auto fail = [&](const std::string& what) {
        fclose(*f);
        *f = nullptr;
        *err = file + ": " + what;
        return false;
    };
    fseek(*f, 0, SEEK_END);
    long long size = ftell(*f);
    fseek(*f, 0, SEEK_SET);
    CheckpointShardHeader h;
    if (size < (long long)sizeof h || fread(&h, sizeof h, 1, *f) != 1)
        return fail("too short for a shard header (" + std::to_string(size) + " bytes); the file is truncated");
    if (memcmp(h.magic, CHECKPOINT_SHARD_MAGIC, 8) != 0) return fail("not a checkpoint shard (bad magic at offset 0)");
    if (h.version != CHECKPOINT_SHARD_VERSION || h.header_bytes != sizeof h)
        return fail("shard version " + std::to_string(h.version) + " / header size " + std::to_string(h.header_bytes) +
                    " (offsets 8, 12) are not 1 / 128; the file is damaged or from a newer build");
    if (h.header_hash != checkpoint_shard_header_hash(h))
        return fail("header checksum mismatch (offset 120); the shard is damaged");
    auto differs = [&](const char* what, uint64_t have, uint64_t expected, bool as_hex) {
        std::string a = as_hex ? checkpoint_hex(have) : std::to_string(have);
        std::string b = as_hex ? checkpoint_hex(expected) : std::to_string(expected);
        return fail(std::string("its header says ") + what + " " + a + ", expected " + b +
                    ": the file belongs to another save, so this checkpoint is incomplete");
    };
    if (h.step != want.step) return differs("step", (uint64_t)h.step, (uint64_t)want.step, false);
    if (h.world != want.world) return differs("world size", (uint64_t)h.world, (uint64_t)want.world, false);
    if (h.rank != want.rank) return differs("rank", (uint64_t)h.rank, (uint64_t)want.rank, false);
    if (h.num_params != want.num_params) return differs("num_params", h.num_params, want.num_params, false);
    if (h.begin != want.begin) return differs("begin", h.begin, want.begin, false);
    if (h.end != want.end) return differs("end", h.end, want.end, false);
    if (h.weights_hash != want.weights_hash) return differs("weights hash", h.weights_hash, want.weights_hash, true);
    if (h.payload_hash != want.payload_hash) return differs("payload hash", h.payload_hash, want.payload_hash, true);
    long long expect = (long long)sizeof h + (long long)(h.end - h.begin) * 8;
    if (size != expect)
        return fail("is " + std::to_string(size) + " bytes, expected " + std::to_string(expect) +
                    "; the shard is truncated or damaged");
    return true;
}

inline CheckpointShardInfo manifest_shard_info(const CheckpointManifest& mf, int r) {
    CheckpointShardInfo i;
    i.step = mf.step; i.rank = r; i.world = mf.world; i.num_params = mf.num_params;
    i.begin = mf.shards[r].begin; i.end = mf.shards[r].end;
    i.weights_hash = mf.weights_hash; i.payload_hash = mf.shards[r].payload_hash;
    return i;
}

// Rank 0, once every rank's shard is durable: checks each shard's header on disk, then writes the
// manifest (the commit point), then removes the files of older saves.
inline bool commit_sharded_checkpoint(const std::string& path, const CheckpointManifest& mf, std::string* err) {
    std::string bad = manifest_error(mf);
    if (!bad.empty()) { *err = path + ": cannot commit: " + bad; return false; }
    std::vector<std::string> keep = {mf.weights_file};
    for (int r = 0; r < mf.world; r++) {
        FILE* f = nullptr;
        if (!open_checkpoint_shard(checkpoint_sibling(path, mf.shards[r].file), manifest_shard_info(mf, r), &f, err)) {
            *err += " (not committed; " + path + " still holds the previous checkpoint)";
            return false;
        }
        fclose(f);
        keep.push_back(mf.shards[r].file);
    }
    if (!write_file_atomic(path, manifest_text(mf), err)) return false;
    remove_old_checkpoint_files(path, keep);
    return true;
}

// Form 2 at the manifest `path`: the weights, and the moments of part `part` of `parts`, read
// from the shards that overlap it (exactly this rank's own shard when the partition is the one
// that wrote them).
inline bool load_checkpoint_sharded(const std::string& path, CheckpointState* s, int part, int parts, std::string* err) {
    CheckpointManifest mf;
    if (!parse_manifest(path, &mf, err)) return false;
    const std::string weights = checkpoint_sibling(path, mf.weights_file);
    uint32_t has_optimizer = 0;
    uint64_t weights_hash = 0;
    if (!load_checkpoint_file(weights, s, 0, 0, &has_optimizer, &weights_hash, err)) {
        *err += " (the weights file named by " + path + ")";
        return false;
    }
    if (has_optimizer != CHECKPOINT_MOMENTS_IN_SHARDS || weights_hash != mf.weights_hash || s->step != mf.step ||
        s->params.size() != mf.num_params) {
        *err = weights + ": is not the weights file that " + path + " names (step " + std::to_string(s->step) +
               " vs " + std::to_string(mf.step) + ", checksum " + checkpoint_hex(weights_hash) + " vs " +
               checkpoint_hex(mf.weights_hash) + "): it belongs to another save, so this checkpoint is incomplete";
        return false;
    }
    size_t lo = 0, hi = 0;
    if (!checkpoint_part_range(mf.num_params, part, parts, &lo, &hi, err)) return false;
    s->m.assign(hi - lo, 0.0f);
    s->v.assign(hi - lo, 0.0f);
    std::vector<float> m, v;
    for (int r = 0; r < mf.world; r++) {
        const CheckpointManifest::Shard& sh = mf.shards[r];
        const size_t a = std::max<size_t>(lo, sh.begin), b = std::min<size_t>(hi, sh.end);
        if (a >= b) continue;
        const std::string file = checkpoint_sibling(path, sh.file);
        FILE* f = nullptr;
        if (!open_checkpoint_shard(file, manifest_shard_info(mf, r), &f, err)) {
            *err += " (a shard named by " + path + ")";
            return false;
        }
        const size_t count = sh.end - sh.begin;
        m.resize(count);
        v.resize(count);
        bool ok = fread(m.data(), 4, count, f) == count && fread(v.data(), 4, count, f) == count;
        fclose(f);
        if (!ok) { *err = file + ": read error (a shard named by " + path + ")"; return false; }
        if (checkpoint_payload_hash(nullptr, 0, m.data(), v.data(), count) != sh.payload_hash) {
            *err = file + ": contents do not match the checksum in its header; the shard is damaged (a shard named by " +
                   path + ")";
            return false;
        }
        std::copy(m.begin() + (a - sh.begin), m.begin() + (b - sh.begin), s->m.begin() + (a - lo));
        std::copy(v.begin() + (a - sh.begin), v.begin() + (b - sh.begin), s->v.begin() + (a - lo));
    }
    s->moments_begin = lo;
    s->has_moments = true;
    s->shard_world = mf.world;
    return true;
}

// The checkpoint at `path`, either form: the configuration, position and weights, and the AdamW
// moments of part `part` of `parts` (parts = 1: all n; 0: none, for --model; W: rank `part`'s
// shard of ZeroShards(n, W)), whatever world size wrote it. A one-file checkpoint without
// moments gives empty m and v.
inline bool load_checkpoint(const std::string& path, CheckpointState* s, std::string* err, int part = 0, int parts = 1) {
    char magic[8] = {0};
    if (FILE* f = fopen(path.c_str(), "rb")) {
        size_t n = fread(magic, 1, 8, f);
        fclose(f);
        if (n == 8 && memcmp(magic, CHECKPOINT_MANIFEST_MAGIC, 8) == 0)
            return load_checkpoint_sharded(path, s, part, parts, err);
    }
    uint32_t has_optimizer = 0;
    uint64_t payload_hash = 0;
    return load_checkpoint_file(path, s, part, parts, &has_optimizer, &payload_hash, err);
}

// A sharded save, by every rank of `comm` (a collective: Comm has rank, world,
// broadcast(buf, bytes) of rank 0's bytes and all_gather(doubles, count, out); see
// common/train_loop.h). s: the configuration, step and keys; s.params all n weights (rank 0's
// are written; other ranks may leave them empty); s.m, s.v this rank's moments of the parameters
// [s.moments_begin, s.moments_begin + s.m.size()). Returns on every rank once the manifest is
// committed; false with *err on every rank if any rank failed (the failing rank's error names
// its file; the checkpoint at path is then the previous one).
template <class Comm>
bool save_checkpoint_sharded(Comm& comm, const std::string& path, const CheckpointState& s, std::string* err) {
    const uint64_t n = num_parameters(s.cfg);
    // 1. rank 0: the weights; their payload hash keys every shard of this save
    uint64_t weights[2] = {0, 0};  // ok, hash
    if (comm.rank == 0) weights[0] = save_checkpoint_weights(path, s, &weights[1], err) ? 1 : 0;
    comm.broadcast(weights, sizeof weights);
    if (!weights[0]) {
        if (comm.rank != 0) *err = path + ": rank 0 could not write the weights file (its error says why)";
        return false;
    }
    // 2. every rank: its shard; then every rank learns every rank's bounds, checksum and success
    CheckpointShardInfo mine;
    mine.step = s.step; mine.rank = comm.rank; mine.world = comm.world; mine.num_params = n;
    mine.begin = s.moments_begin; mine.end = s.moments_begin + s.m.size();
    mine.weights_hash = weights[1];
    bool ok = s.v.size() == s.m.size() && mine.end <= n;
    if (!ok) *err = path + ": rank " + std::to_string(comm.rank) + "'s moments do not fit the model";
    ok = ok && save_checkpoint_shard(path, &mine, s.m.data(), s.v.data(), err);
    const double sent[5] = {ok ? 1.0 : 0.0, (double)mine.begin, (double)mine.end,  // < 2^53: exact
                            (double)(mine.payload_hash >> 32), (double)(mine.payload_hash & 0xffffffffu)};
    std::vector<double> all;
    comm.all_gather(sent, 5, &all);
    CheckpointManifest mf;
    mf.step = s.step; mf.world = comm.world; mf.num_params = n;
    mf.weights_file = checkpoint_weights_name(path, s.step, weights[1]);
    mf.weights_hash = weights[1];
    for (int r = 0; r < comm.world; r++) {
        const double* x = &all[(size_t)r * 5];
        if (x[0] != 1.0) {
            if (ok) *err = path + ": rank " + std::to_string(r) + " could not write its optimizer shard (its error says why)";
            return false;
        }
        CheckpointManifest::Shard sh;
        sh.begin = (uint64_t)x[1]; sh.end = (uint64_t)x[2];
        sh.payload_hash = (uint64_t)x[3] << 32 | (uint64_t)x[4];
        sh.file = checkpoint_shard_name(path, s.step, weights[1], r, comm.world);
        mf.shards.push_back(sh);
    }
    // 3. rank 0: the manifest, the commit point
    uint64_t committed = 0;
    if (comm.rank == 0) committed = commit_sharded_checkpoint(path, mf, err) ? 1 : 0;
    comm.broadcast(&committed, sizeof committed);
    if (!committed && comm.rank != 0) *err = path + ": rank 0 could not commit the checkpoint (its error says why)";
    return committed != 0;
}
