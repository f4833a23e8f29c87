// GPT-2 checkpoints in and out of the project's parameter layout (common/model_config.h):
//   load_hf_model    a Hugging Face GPT-2 directory: config.json + model.safetensors
//                    (or sharded: model.safetensors.index.json + its shards), F32/F16/BF16
//   load_llmc_model  llm.c's gpt2_124M.bin (version 3, fp32) / gpt2_124M_bf16.bin (version 5)
//   load_model_any   picks one of the two from the path; says "not recognized" for anything else
//                    (the project's own checkpoints are read by common/checkpoint.h)
//   export_hf_model  writes a directory that transformers' GPT2LMHeadModel.from_pretrained loads
// Hugging Face's GPT-2 uses Conv1D layers whose weights are stored [in, out]; ours are [out, in]
// (y = x W^T + b), so c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj are transposed on the way in
// and out. Every loader validates the files against each other and names what is wrong;
// non-finite weights are reported as warnings (to `warnings` if given, else to stderr).
// See common/INTEROP.md for the formats and a worked example.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "common/json_read.h"
#include "common/atomic_file.h"
#include "common/model_config.h"
#include "common/safetensors.h"

enum { LLMC_MAGIC = 20240326, LLMC_VERSION_FP32 = 3, LLMC_VERSION_BF16 = 5, LLMC_HEADER_INTS = 256 };
static const int GPT2_EOS_TOKEN = 50256;

static inline void model_io_warn(std::vector<std::string>* warnings, const std::string& message) {
    if (warnings) warnings->push_back(message);
    else fprintf(stderr, "warning: %s\n", message.c_str());
}

// Warns once per tensor that holds NaN or Inf, with the first bad index and the count.
static inline void warn_non_finite(const float* x, size_t n, const std::string& what,
                                   std::vector<std::string>* warnings) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (!std::isfinite(x[i])) { if (bad == 0) first = i; bad++; }
    if (bad == 0) return;
    model_io_warn(warnings, what + ": " + std::to_string(bad) + " non-finite value(s) (NaN/Inf), first at element " +
                            std::to_string(first) + " (" + std::to_string(x[first]) + ")");
}

// dst [cols, rows] = src [rows, cols] transposed, in 64 x 64 tiles, so that both sides' lines stay
// in the cache while a tile is copied (row by row, one side strides a whole row per element and
// misses the cache: d48's 192 Conv1D weights took 4.4 s of CPU instead of 2.4 s).
static inline void transpose_matrix(float* dst, const float* src, size_t rows, size_t cols) {
    const size_t tile = 64;
    for (size_t r0 = 0; r0 < rows; r0 += tile)
        for (size_t c0 = 0; c0 < cols; c0 += tile) {
            const size_t r1 = std::min(rows, r0 + tile), c1 = std::min(cols, c0 + tile);
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
        }
}

// ----------------------------------------------------------------------------
// Hugging Face GPT-2 tensor names <-> our layout

struct HfTensorSpec {
    std::string name;            // without the "transformer." prefix, e.g. "h.3.attn.c_attn.weight"
    std::vector<int64_t> shape;  // as Hugging Face stores it
    ParamTensor param;           // which of our 16 tensors
    int layer;                   // layer index (0 for tensors without layers)
    bool transpose;              // Conv1D weight: stored [in, out], ours [out, in]
};

// GPT-2's tensors in the order of the Hugging Face module tree (the order export writes them).
static inline std::vector<HfTensorSpec> hf_gpt2_tensor_specs(const ModelConfig& cfg) {
    int64_t C = cfg.channels, V = cfg.vocab_size, T = cfg.max_seq_len;
    std::vector<HfTensorSpec> specs = {{"wte.weight", {V, C}, PARAM_WTE, 0, false},
                                       {"wpe.weight", {T, C}, PARAM_WPE, 0, false}};
    for (int l = 0; l < cfg.num_layers; l++) {
        std::string h = "h." + std::to_string(l) + ".";
        std::vector<HfTensorSpec> layer = {
            {h + "ln_1.weight", {C}, PARAM_LN1W, l, false},
            {h + "ln_1.bias", {C}, PARAM_LN1B, l, false},
            {h + "attn.c_attn.weight", {C, 3 * C}, PARAM_QKVW, l, true},
            {h + "attn.c_attn.bias", {3 * C}, PARAM_QKVB, l, false},
            {h + "attn.c_proj.weight", {C, C}, PARAM_ATTPROJW, l, true},
            {h + "attn.c_proj.bias", {C}, PARAM_ATTPROJB, l, false},
            {h + "ln_2.weight", {C}, PARAM_LN2W, l, false},
            {h + "ln_2.bias", {C}, PARAM_LN2B, l, false},
            {h + "mlp.c_fc.weight", {C, 4 * C}, PARAM_FCW, l, true},
            {h + "mlp.c_fc.bias", {4 * C}, PARAM_FCB, l, false},
            {h + "mlp.c_proj.weight", {4 * C, C}, PARAM_FCPROJW, l, true},
            {h + "mlp.c_proj.bias", {C}, PARAM_FCPROJB, l, false}};
        specs.insert(specs.end(), layer.begin(), layer.end());
    }
    specs.push_back({"ln_f.weight", {C}, PARAM_LNFW, 0, false});
    specs.push_back({"ln_f.bias", {C}, PARAM_LNFB, 0, false});
    return specs;
}

// Where a spec's tensor starts in the flat buffer.
static inline size_t hf_spec_offset(const ModelConfig& cfg, const HfTensorSpec& s) {
    size_t offsets[NUM_PARAM_TENSORS], sizes[NUM_PARAM_TENSORS];
    param_offsets(cfg, offsets);
    param_sizes(cfg, sizes);
    return offsets[s.param] + (size_t)s.layer * (sizes[s.param] / cfg.num_layers);  // layer is 0 if unlayered
}

static inline std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// True for the causal-mask buffers older transformers versions saved: h.{i}.attn.bias / .masked_bias.
static inline bool hf_is_attention_buffer(const std::string& name) {
    auto ends_with = [&](const char* suffix) {
        size_t n = strlen(suffix);
        return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
    };
    return name.rfind("h.", 0) == 0 && (ends_with(".attn.bias") || ends_with(".attn.masked_bias"));
}

// Lists at most 8 names, then how many more.
static inline std::string name_list(const std::vector<std::string>& names) {
    std::string s;
    for (size_t i = 0; i < names.size() && i < 8; i++) s += (i ? ", " : "") + names[i];
    if (names.size() > 8) s += " and " + std::to_string(names.size() - 8) + " more";
    return s;
}

// ----------------------------------------------------------------------------
// config.json

static inline bool read_json_file(const std::string& path, nlohmann::json* out, std::string* err) {
    std::ifstream in(path, std::ios::binary);
    if (!in) { *err = path + ": cannot open: " + strerror(errno); return false; }
    std::stringstream text;
    text << in.rdbuf();
    std::string why;
    size_t at;
    if (!json_parse_text(text.str(), out, &why, &at)) {
        *err = path + ": not valid JSON" + (at == std::string::npos ? std::string() : " (byte " + std::to_string(at) + ")") +
               ": " + why;
        return false;
    }
    if (!out->is_object()) { *err = path + ": expected a JSON object"; return false; }
    return true;
}

// Reads a GPT2Config; padded_vocab_size becomes pad_vocab(vocab_size).
static inline bool hf_read_config_json(const std::string& path, const nlohmann::json& j, ModelConfig* cfg,
                                       std::string* err, std::vector<std::string>* warnings) {
    auto get_int = [&](const char* key, int* out) {
        if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0 ||
            j[key].get<int64_t>() > (1 << 24)) {
            *err = path + ": \"" + key + "\" must be a positive integer" +
                   (j.contains(key) ? std::string(", got ") + j[key].dump() : std::string(" (missing)"));
            return false;
        }
        *out = (int)j[key].get<int64_t>();
        return true;
    };
    if (j.contains("model_type") && j["model_type"] != "gpt2") {
        *err = path + ": model_type is " + j["model_type"].dump() + ", only \"gpt2\" models are supported";
        return false;
    }
    ModelConfig c;
    const char* positions_key = j.contains("n_positions") ? "n_positions" : "n_ctx";
    if (!get_int("n_embd", &c.channels) || !get_int("n_head", &c.num_heads) || !get_int("n_layer", &c.num_layers) ||
        !get_int(positions_key, &c.max_seq_len) || !get_int("vocab_size", &c.vocab_size))
        return false;
    if (c.num_layers > 4096) {
        *err = path + ": n_layer " + std::to_string(c.num_layers) + " is implausible (over 4096)";
        return false;
    }
    if (c.channels % c.num_heads != 0) {
        *err = path + ": n_embd " + std::to_string(c.channels) + " is not divisible by n_head " +
               std::to_string(c.num_heads);
        return false;
    }
    c.padded_vocab_size = pad_vocab(c.vocab_size);
    c.layernorm_eps = 1e-5f;
    if (j.contains("layer_norm_epsilon")) {
        if (!j["layer_norm_epsilon"].is_number() || !(j["layer_norm_epsilon"].get<double>() > 0)) {
            *err = path + ": layer_norm_epsilon must be a positive number, got " + j["layer_norm_epsilon"].dump();
            return false;
        }
        c.layernorm_eps = (float)j["layer_norm_epsilon"].get<double>();
    }
    if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"] != 4 * c.channels) {
        *err = path + ": n_inner " + j["n_inner"].dump() + " is not 4*n_embd; only the standard MLP is supported";
        return false;
    }
    if (j.value("scale_attn_by_inverse_layer_idx", false) == true || j.value("scale_attn_weights", true) == false ||
        j.value("add_cross_attention", false) == true) {
        *err = path + ": scale_attn_by_inverse_layer_idx, scale_attn_weights=false or add_cross_attention "
                      "change GPT-2's math and are not supported";
        return false;
    }
    std::string bad = model_config_error(c);
    if (!bad.empty()) {
        *err = path + ": " + bad + " (n_positions, vocab_size, n_layer, n_embd, n_head); not a GPT-2 this project runs";
        return false;
    }
    std::string activation = j.value("activation_function", std::string("gelu_new"));
    if (activation != "gelu_new")
        model_io_warn(warnings, path + ": activation_function is \"" + activation +
                                    "\"; this model computes GPT-2's tanh GELU (gelu_new)");
    *cfg = c;
    return true;
}

static inline bool hf_read_config(const std::string& path, ModelConfig* cfg, std::string* err,
                                  std::vector<std::string>* warnings) {
    nlohmann::json j;
    if (!read_json_file(path, &j, err)) return false;
    try {
        return hf_read_config_json(path, j, cfg, err, warnings);
    } catch (const nlohmann::json::exception& e) {  // a field of the wrong JSON type
        *err = path + ": unexpected value type: " + e.what();
        return false;
    }
}

// ----------------------------------------------------------------------------
// Hugging Face loader

// Opens model.safetensors, or the shards named by model.safetensors.index.json.
static inline bool hf_open_weights(const std::string& dir, std::vector<SafetensorsFile>* files, std::string* err) {
    namespace fs = std::filesystem;
    std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
    files->clear();
    if (fs::exists(single)) {
        files->emplace_back();
        return safetensors_open(single, &files->back(), err);
    }
    if (!fs::exists(index)) {
        *err = dir + ": no model.safetensors (or model.safetensors.index.json)";
        if (fs::exists(dir + "/pytorch_model.bin"))
            *err += "; only pytorch_model.bin (pickle) is there: convert it with transformers "
                    "(GPT2LMHeadModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True))";
        return false;
    }
    nlohmann::json j;
    if (!read_json_file(index, &j, err)) return false;
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
        *err = index + ": has no \"weight_map\" object";
        return false;
    }
    std::map<std::string, std::vector<std::string>> names_by_shard;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it.value().is_string() || it.value().get<std::string>().find('/') != std::string::npos) {
            *err = index + ": weight_map[\"" + it.key() + "\"] must be a file name in the same directory";
            return false;
        }
        names_by_shard[it.value().get<std::string>()].push_back(it.key());
    }
    for (const auto& shard : names_by_shard) {
        files->emplace_back();
        if (!safetensors_open(dir + "/" + shard.first, &files->back(), err)) return false;
        for (const std::string& name : shard.second) {
            bool found = false;
            for (const auto& t : files->back().tensors) found = found || t.name == name;
            if (!found) {
                *err = index + ": maps '" + name + "' to " + shard.first + ", which does not contain it";
                return false;
            }
        }
    }
    return true;
}

static inline bool load_hf_model(const std::string& dir, ModelConfig* cfg, std::vector<float>* params,
                                 std::string* err, std::vector<std::string>* warnings = nullptr) {
    ModelConfig c;
    if (!hf_read_config(dir + "/config.json", &c, err, warnings)) return false;
    std::vector<SafetensorsFile> files;
    if (!hf_open_weights(dir, &files, err)) return false;

    // match the file's names (with or without "transformer.") to GPT-2's
    std::vector<HfTensorSpec> specs = hf_gpt2_tensor_specs(c);
    std::map<std::string, size_t> spec_index;
    for (size_t i = 0; i < specs.size(); i++) spec_index[specs[i].name] = i;
    std::vector<const SafetensorsTensor*> found(specs.size(), nullptr);
    std::vector<const SafetensorsFile*> found_in(specs.size(), nullptr);
    const SafetensorsTensor* lm_head = nullptr;
    const SafetensorsFile* lm_head_file = nullptr;
    std::vector<std::string> unexpected;
    for (const auto& file : files) {
        for (const auto& t : file.tensors) {
            std::string name = t.name.rfind("transformer.", 0) == 0 ? t.name.substr(12) : t.name;
            if (name == "lm_head.weight") { lm_head = &t; lm_head_file = &file; continue; }
            auto it = spec_index.find(name);
            if (it == spec_index.end()) {
                if (!hf_is_attention_buffer(name)) unexpected.push_back(t.name);
                continue;
            }
            if (found[it->second]) {
                *err = file.path + ": tensor '" + name + "' appears twice (with and without 'transformer.'?)";
                return false;
            }
            found[it->second] = &t;
            found_in[it->second] = &file;
        }
    }
    std::vector<std::string> missing;
    for (size_t i = 0; i < specs.size(); i++) if (!found[i]) missing.push_back(specs[i].name);
    if (!missing.empty() || !unexpected.empty()) {
        *err = files[0].path + ": does not match a GPT-2 with n_layer=" + std::to_string(c.num_layers) + ":";
        if (!missing.empty()) *err += " missing tensor(s) " + name_list(missing) + ".";
        if (!unexpected.empty()) *err += " unexpected tensor(s) " + name_list(unexpected) + ".";
        *err += " Is config.json the one that belongs to these weights?";
        return false;
    }
    for (size_t i = 0; i < specs.size(); i++) {
        const SafetensorsTensor& t = *found[i];
        if (t.shape != specs[i].shape) {
            *err = found_in[i]->path + ": tensor '" + t.name + "' has shape " + shape_string(t.shape) +
                   ", expected " + shape_string(specs[i].shape) + " from config.json";
            return false;
        }
        if (!safetensors_dtype_convertible(t.dtype)) {
            *err = found_in[i]->path + ": tensor '" + t.name + "' has dtype " + t.dtype +
                   "; supported are F32, F16 and BF16";
            return false;
        }
    }

    // read, transposing the Conv1D weights
    std::vector<float> p(num_parameters(c), 0.0f), staging;
    for (size_t i = 0; i < specs.size(); i++) {
        const HfTensorSpec& s = specs[i];
        float* dst = p.data() + hf_spec_offset(c, s);
        size_t n = found[i]->numel();
        if (!s.transpose) {
            if (!safetensors_read_float(*found_in[i], *found[i], dst, err)) return false;
        } else {
            staging.resize(n);
            if (!safetensors_read_float(*found_in[i], *found[i], staging.data(), err)) return false;
            transpose_matrix(dst, staging.data(), (size_t)s.shape[0], (size_t)s.shape[1]);  // stored [in, out]
        }
        warn_non_finite(dst, n, found_in[i]->path + ": tensor '" + found[i]->name + "'", warnings);
    }
    if (lm_head) {
        std::vector<int64_t> want = {c.vocab_size, c.channels};
        if (lm_head->shape != want || !safetensors_dtype_convertible(lm_head->dtype)) {
            *err = lm_head_file->path + ": tensor '" + lm_head->name + "' has shape " + shape_string(lm_head->shape) +
                   " and dtype " + lm_head->dtype + ", expected " + shape_string(want) + " of F32/F16/BF16";
            return false;
        }
        staging.resize(lm_head->numel());
        if (!safetensors_read_float(*lm_head_file, *lm_head, staging.data(), err)) return false;
        if (memcmp(staging.data(), p.data(), staging.size() * sizeof(float)) != 0)
            model_io_warn(warnings, lm_head_file->path + ": tensor '" + lm_head->name +
                                        "' differs from wte.weight; this model ties them and uses wte");
    }
    *cfg = c;
    params->swap(p);
    return true;
}

// ----------------------------------------------------------------------------
// llm.c loader

static inline bool load_llmc_model(const std::string& path, ModelConfig* cfg, std::vector<float>* params,
                                   std::string* err, std::vector<std::string>* warnings = nullptr) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) { *err = path + ": cannot open: " + strerror(errno); return false; }
    uint64_t file_size = file_size_of(f);
    int32_t header[LLMC_HEADER_INTS];
    if (file_size < sizeof(header) || fseeko(f, 0, SEEK_SET) != 0 || fread(header, sizeof(header), 1, f) != 1) {
        fclose(f);
        *err = path + ": " + std::to_string(file_size) + " bytes, too short for llm.c's 1024-byte header";
        return false;
    }
    if (header[0] != LLMC_MAGIC) {
        fclose(f);
        *err = path + ": bad magic " + std::to_string(header[0]) + " in bytes 0-3 (llm.c checkpoints start with " +
               std::to_string(LLMC_MAGIC) + ")";
        return false;
    }
    int version = header[1];
    if (version != LLMC_VERSION_FP32 && version != LLMC_VERSION_BF16) {
        fclose(f);
        *err = path + ": llm.c version " + std::to_string(version) + " in bytes 4-7 is not supported (3 = fp32, " +
               "5 = bf16); regenerate it with a current llm.c train_gpt2.py";
        return false;
    }
    ModelConfig c;
    c.max_seq_len = header[2]; c.vocab_size = header[3]; c.num_layers = header[4];
    c.num_heads = header[5]; c.channels = header[6]; c.padded_vocab_size = header[7];
    c.layernorm_eps = 1e-5f;
    std::string dims = "maxT=" + std::to_string(c.max_seq_len) + " V=" + std::to_string(c.vocab_size) +
                       " L=" + std::to_string(c.num_layers) + " NH=" + std::to_string(c.num_heads) +
                       " C=" + std::to_string(c.channels) + " Vp=" + std::to_string(c.padded_vocab_size);
    std::string bad_dims = model_config_error(c);
    if (!bad_dims.empty()) {
        fclose(f);
        *err = path + ": implausible dimensions in the header (" + dims + "): " + bad_dims;
        return false;
    }
    size_t n = num_parameters(c), elem = version == LLMC_VERSION_FP32 ? 4 : 2;
    uint64_t want = sizeof(header) + (uint64_t)n * elem;
    if (file_size != want) {
        fclose(f);
        *err = path + ": file is " + std::to_string(file_size) + " bytes, but its header (" + dims + ", " +
               (elem == 4 ? "fp32" : "bf16") + ") needs exactly " + std::to_string(want) +
               (file_size < want ? ": truncated?" : ": trailing bytes?");
        return false;
    }
    std::vector<float> p(n);
    bool ok;
    if (elem == 4) {
        ok = fread(p.data(), sizeof(float), n, f) == n;
    } else {
        std::vector<uint16_t> raw(n);
        ok = fread(raw.data(), sizeof(uint16_t), n, f) == n;
        for (size_t i = 0; ok && i < n; i++) p[i] = bf16_to_float(raw[i]);
    }
    fclose(f);
    if (!ok) { *err = path + ": read failed after the header"; return false; }
    size_t offsets[NUM_PARAM_TENSORS], sizes[NUM_PARAM_TENSORS];
    param_offsets(c, offsets);
    param_sizes(c, sizes);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++)
        warn_non_finite(p.data() + offsets[i], sizes[i], path + ": tensor " + PARAM_TENSOR_NAMES[i], warnings);
    *cfg = c;
    params->swap(p);
    return true;
}

// ----------------------------------------------------------------------------
// dispatch

enum class ModelLoad { loaded, failed, not_recognized };

// A directory (or its config.json / model.safetensors) -> Hugging Face; a file starting with
// llm.c's magic -> llm.c; anything else -> not_recognized (err says why), for the caller to try
// its own formats.
static inline ModelLoad load_model_any(const std::string& path, ModelConfig* cfg, std::vector<float>* params,
                                       std::string* err, std::vector<std::string>* warnings = nullptr) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec))
        return load_hf_model(path, cfg, params, err, warnings) ? ModelLoad::loaded : ModelLoad::failed;
    if (!fs::is_regular_file(path, ec)) { *err = path + ": no such file or directory"; return ModelLoad::failed; }
    std::string file = fs::path(path).filename().string();
    if (file == "config.json" || file == "model.safetensors" || file == "model.safetensors.index.json") {
        std::string dir = fs::path(path).parent_path().string();
        return load_hf_model(dir.empty() ? "." : dir, cfg, params, err, warnings) ? ModelLoad::loaded
                                                                                   : ModelLoad::failed;
    }
    int32_t magic = 0;
    FILE* f = fopen(path.c_str(), "rb");
    bool has_magic = f && fread(&magic, 4, 1, f) == 1 && magic == LLMC_MAGIC;
    if (f) fclose(f);
    if (has_magic)
        return load_llmc_model(path, cfg, params, err, warnings) ? ModelLoad::loaded : ModelLoad::failed;
    *err = path + ": neither a Hugging Face GPT-2 directory nor an llm.c checkpoint";
    return ModelLoad::not_recognized;
}

// ----------------------------------------------------------------------------
// Hugging Face export

// The shortest decimal that reads back as the same float (1e-5f -> 1e-05, not 9.99999974737875e-06).
static inline double shortest_decimal(float x) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof(buf), "%.*g", digits, (double)x);
        if (strtof(buf, nullptr) == x) break;
    }
    return strtod(buf, nullptr);
}

static inline nlohmann::json hf_config_json(const ModelConfig& cfg) {
    return {{"architectures", {"GPT2LMHeadModel"}},
            {"model_type", "gpt2"},
            {"activation_function", "gelu_new"},
            {"vocab_size", cfg.vocab_size},
            {"n_positions", cfg.max_seq_len},
            {"n_ctx", cfg.max_seq_len},
            {"n_embd", cfg.channels},
            {"n_head", cfg.num_heads},
            {"n_layer", cfg.num_layers},
            {"n_inner", nullptr},
            {"layer_norm_epsilon", shortest_decimal(cfg.layernorm_eps)},
            {"initializer_range", 0.02},
            {"resid_pdrop", 0.1},
            {"embd_pdrop", 0.1},
            {"attn_pdrop", 0.1},
            {"summary_type", "cls_index"},
            {"summary_use_proj", true},
            {"summary_activation", nullptr},
            {"summary_proj_to_labels", true},
            {"summary_first_dropout", 0.1},
            {"scale_attn_weights", true},
            {"scale_attn_by_inverse_layer_idx", false},
            {"reorder_and_upcast_attn", false},
            {"use_cache", true},
            {"tie_word_embeddings", true},
            {"bos_token_id", GPT2_EOS_TOKEN},
            {"eos_token_id", GPT2_EOS_TOKEN},
            {"torch_dtype", "float32"}};
}

// Writes DIR/config.json, DIR/model.safetensors (F32, names as in the hub's "gpt2" checkpoint:
// no "transformer." prefix, no lm_head.weight since it is tied to wte, no attention-mask buffers),
// DIR/generation_config.json and, for the 50257-token vocabulary, GPT-2's tokenizer files
// (tokenizer_dir/encoder.json -> vocab.json, tokenizer_dir/vocab.bpe -> merges.txt,
// tokenizer_config.json). Missing tokenizer files are a warning: the model is still written.
static inline bool export_hf_model(const std::string& dir, const ModelConfig& cfg, const float* params,
                                   std::string* err, const std::string& tokenizer_dir = "tokenizer/gpt2",
                                   std::vector<std::string>* warnings = nullptr) {
    namespace fs = std::filesystem;
    if (cfg.vocab_size <= 0 || cfg.padded_vocab_size < cfg.vocab_size || cfg.channels % cfg.num_heads != 0) {
        *err = "export_hf_model: inconsistent config (V=" + std::to_string(cfg.vocab_size) + ", Vp=" +
               std::to_string(cfg.padded_vocab_size) + ", C=" + std::to_string(cfg.channels) + ", NH=" +
               std::to_string(cfg.num_heads) + ")";
        return false;
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) { *err = dir + ": cannot create directory: " + ec.message(); return false; }

    std::vector<HfTensorSpec> specs = hf_gpt2_tensor_specs(cfg);
    std::vector<std::vector<float>> transposed;  // Conv1D weights in [in, out]
    transposed.reserve(specs.size());
    std::vector<SafetensorsOutput> outputs;
    for (const HfTensorSpec& s : specs) {
        const float* src = params + hf_spec_offset(cfg, s);  // wte: the first V rows of [Vp, C]
        if (s.transpose) {
            size_t rows_in = (size_t)s.shape[0], cols_out = (size_t)s.shape[1];
            transposed.emplace_back(rows_in * cols_out);
            transpose_matrix(transposed.back().data(), src, cols_out, rows_in);  // ours [out, in]
            src = transposed.back().data();
        }
        outputs.push_back({s.name, s.shape, src});
    }
    if (!safetensors_write_f32(dir + "/model.safetensors", outputs, {{"format", "pt"}}, err)) return false;
    if (!write_file_atomic(dir + "/config.json", hf_config_json(cfg).dump(2) + "\n", err)) return false;
    nlohmann::json generation = {{"bos_token_id", GPT2_EOS_TOKEN}, {"eos_token_id", GPT2_EOS_TOKEN}};
    if (!write_file_atomic(dir + "/generation_config.json", generation.dump(2) + "\n", err)) return false;

    if (tokenizer_dir.empty()) return true;
    if (cfg.vocab_size != 50257) {
        model_io_warn(warnings, "export " + dir + ": vocab_size " + std::to_string(cfg.vocab_size) +
                                    " is not GPT-2's 50257; tokenizer files not written");
        return true;
    }
    const char* copies[2][2] = {{"encoder.json", "vocab.json"}, {"vocab.bpe", "merges.txt"}};
    for (auto& copy : copies) {
        std::ifstream in(tokenizer_dir + "/" + copy[0], std::ios::binary);
        if (!in) {
            model_io_warn(warnings, "export " + dir + ": " + tokenizer_dir + "/" + copy[0] +
                                        " not found; tokenizer files not written (copy GPT-2's vocab.json and "
                                        "merges.txt into the directory by hand)");
            return true;
        }
        std::stringstream bytes;
        bytes << in.rdbuf();
        if (!write_file_atomic(dir + "/" + copy[1], bytes.str(), err)) return false;
    }
    nlohmann::json tok = {{"tokenizer_class", "GPT2Tokenizer"}, {"model_max_length", cfg.max_seq_len},
                          {"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"},
                          {"unk_token", "<|endoftext|>"}, {"add_prefix_space", false}};
    return write_file_atomic(dir + "/tokenizer_config.json", tok.dump(2) + "\n", err);
}
