// Tests for common/model_io.h and common/safetensors.h: Hugging Face and llm.c checkpoints written
// by an independent writer (common/tools/tiny_gpt2.py, Python standard library only) load to
// exactly the values that writer put in them; every malformed file fails with an error naming the
// problem; non-finite weights warn with the tensor's name; export -> import is bit-exact and the
// exported file has GPT-2's tensor names and shapes and reads back through the Python reader; the
// tiled transpose against its definition.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include "common/model_io.h"
#include "dev/test_util.h"

namespace fs = std::filesystem;

// The tiny model tiny_gpt2.py writes.
static const int TINY_L = 2, TINY_C = 32, TINY_NH = 4, TINY_V = 100, TINY_T = 16, TINY_VP = 128;

static bool read_floats(const std::string& path, std::vector<float>* out) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    out->clear();
    float buf[4096];
    size_t n;
    while ((n = fread(buf, sizeof(float), 4096, f)) > 0) out->insert(out->end(), buf, buf + n);
    fclose(f);
    return true;
}

static std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Bitwise comparison; on a mismatch says which of the 16 tensors and which element.
static bool same_bits(const ModelConfig& cfg, const std::vector<float>& got, const std::vector<float>& want,
                      std::string* why) {
    if (got.size() != want.size()) {
        *why = "size " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
        return false;
    }
    size_t offsets[NUM_PARAM_TENSORS], sizes[NUM_PARAM_TENSORS];
    param_offsets(cfg, offsets);
    param_sizes(cfg, sizes);
    for (int t = 0; t < NUM_PARAM_TENSORS; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            size_t k = offsets[t] + i;
            if (bits_from_float(got[k]) != bits_from_float(want[k])) {
                char buf[160];
                snprintf(buf, sizeof(buf), "%s[%zu]: got %.9g, want %.9g", PARAM_TENSOR_NAMES[t], i, got[k], want[k]);
                *why = buf;
                return false;
            }
        }
    return true;
}

static bool is_tiny(const ModelConfig& c) {
    return c.num_layers == TINY_L && c.channels == TINY_C && c.num_heads == TINY_NH && c.vocab_size == TINY_V &&
           c.max_seq_len == TINY_T && c.padded_vocab_size == TINY_VP && c.layernorm_eps == 1e-5f;
}

static bool has_all(const std::string& text, std::initializer_list<const char*> parts) {
    for (const char* p : parts) if (text.find(p) == std::string::npos) return false;
    return true;
}

// ----------------------------------------------------------------------------
// loading the Python writer's files

static void check_loads_exactly(const std::string& fixtures, const char* name) {
    std::string dir = fixtures + "/" + name, err, test = std::string("hf_load_") + name;
    ModelConfig cfg;
    std::vector<float> params, expected;
    std::vector<std::string> warnings;
    if (!load_hf_model(dir, &cfg, &params, &err, &warnings)) { test_report(false, test.c_str(), "%s", err.c_str()); return; }
    if (!read_floats(dir + "/expected.f32", &expected)) { test_report(false, test.c_str(), "no expected.f32"); return; }
    std::string why;
    test_report(is_tiny(cfg), (test + "_config").c_str(), "L=%d C=%d NH=%d V=%d T=%d Vp=%d", cfg.num_layers,
                cfg.channels, cfg.num_heads, cfg.vocab_size, cfg.max_seq_len, cfg.padded_vocab_size);
    bool same = same_bits(cfg, params, expected, &why);  // before why.c_str() is taken
    test_report(same, (test + "_values").c_str(), "%s", why.c_str());
    test_report(warnings.empty(), (test + "_no_warnings").c_str(), "%s", warnings.empty() ? "" : warnings[0].c_str());
}

static void check_warns(const std::string& fixtures, const char* name, std::initializer_list<const char*> parts) {
    std::string dir = fixtures + "/" + name, err, test = std::string("hf_warn_") + name;
    ModelConfig cfg;
    std::vector<float> params;
    std::vector<std::string> warnings;
    bool ok = load_hf_model(dir, &cfg, &params, &err, &warnings);
    std::string all;
    for (const auto& w : warnings) all += w + " | ";
    test_report(ok && warnings.size() == 1 && has_all(all, parts), test.c_str(), "loaded=%d err='%s' warnings='%s'",
                (int)ok, err.c_str(), all.c_str());
}

static void check_fails(const std::string& fixtures, const char* name, std::initializer_list<const char*> parts) {
    std::string path = fixtures + "/" + name, err, test = std::string("load_rejects_") + name;
    ModelConfig cfg;
    std::vector<float> params;
    std::vector<std::string> warnings;
    ModelLoad r = load_model_any(path, &cfg, &params, &err, &warnings);
    test_report(r == ModelLoad::failed && has_all(err, parts), test.c_str(), "status=%d err='%s'", (int)r, err.c_str());
    if (getenv("VERBOSE")) printf("    %s\n", err.c_str());
}

static void check_llmc(const std::string& fixtures, const char* name) {
    std::string path = fixtures + "/" + name + ".bin", err, test = std::string("llmc_load_") + name;
    ModelConfig cfg;
    std::vector<float> params, expected;
    std::vector<std::string> warnings;
    ModelLoad r = load_model_any(path, &cfg, &params, &err, &warnings);
    if (r != ModelLoad::loaded) { test_report(false, test.c_str(), "%s", err.c_str()); return; }
    read_floats(fixtures + "/" + name + ".expected.f32", &expected);
    std::string why;
    test_report(is_tiny(cfg), (test + "_config").c_str(), "wrong dimensions");
    bool same = same_bits(cfg, params, expected, &why);
    if (!warnings.empty()) why += " warning: " + warnings[0];
    test_report(same && warnings.empty(), (test + "_values").c_str(), "%s", why.c_str());
}

static void test_fixtures(const std::string& fixtures) {
    check_loads_exactly(fixtures, "f32_prefix_lmhead_buffers");
    check_loads_exactly(fixtures, "f16_plain");
    check_loads_exactly(fixtures, "bf16_prefix_buffers_lmhead");
    check_loads_exactly(fixtures, "f32_sharded");

    check_warns(fixtures, "warn_nan", {"h.1.ln_2.weight", "NaN"});
    check_warns(fixtures, "warn_inf", {"wpe.weight", "element 5"});
    check_warns(fixtures, "warn_untied_lm_head", {"lm_head.weight", "differs"});
    check_warns(fixtures, "warn_gelu", {"activation_function", "gelu"});

    check_fails(fixtures, "bad_truncated", {"model.safetensors", "ln_f.bias", "truncated"});
    check_fails(fixtures, "bad_header_length", {"header length 1099511627776", "exceeds"});
    check_fails(fixtures, "bad_json", {"not valid JSON", "byte 40"});
    check_fails(fixtures, "bad_overlap", {"h.0.ln_1.weight", "h.0.ln_1.bias", "overlap"});
    check_fails(fixtures, "bad_out_of_range", {"ln_f.bias", "extend past the end"});
    check_fails(fixtures, "bad_byte_count", {"ln_f.weight", "124 bytes", "needs 128"});
    check_fails(fixtures, "bad_shape", {"h.1.attn.c_attn.weight", "[96, 32]", "expected [32, 96]"});
    check_fails(fixtures, "bad_dtype_unknown", {"h.0.ln_2.bias", "unknown dtype 'Q4_K'"});
    check_fails(fixtures, "bad_dtype_f64", {"ln_f.bias", "F64"});
    check_fails(fixtures, "bad_missing", {"missing", "h.1.mlp.c_fc.bias"});
    check_fails(fixtures, "bad_unexpected", {"unexpected", "h.0.attn.rotary_emb.inv_freq"});
    check_fails(fixtures, "bad_config_missing", {"config.json", "n_embd", "missing"});
    check_fails(fixtures, "bad_config_layers", {"config.json", "n_layer 100000"});
    check_fails(fixtures, "bad_config_model_type", {"config.json", "\"llama\""});
    check_fails(fixtures, "bad_config_positions", {"wpe.weight", "[16, 32]", "expected [32, 32]"});

    check_llmc(fixtures, "llmc_v3");
    check_llmc(fixtures, "llmc_v5");
    check_fails(fixtures, "llmc_bad_version.bin", {"version 4", "bytes 4-7"});
    check_fails(fixtures, "llmc_truncated.bin", {"needs exactly", "truncated"});
    // a wrong magic is not llm.c at all: the caller gets to try its own formats
    std::string err;
    ModelConfig cfg;
    std::vector<float> params;
    ModelLoad r = load_model_any(fixtures + "/llmc_bad_magic.bin", &cfg, &params, &err);
    test_report(r == ModelLoad::not_recognized, "load_any_bad_magic_not_recognized", "status=%d", (int)r);
    bool rejected = !load_llmc_model(fixtures + "/llmc_bad_magic.bin", &cfg, &params, &err);
    test_report(rejected && has_all(err, {"bad magic 20240520"}), "llmc_rejects_bad_magic", "%s", err.c_str());
    r = load_model_any(fixtures + "/not_a_model.bin", &cfg, &params, &err);
    test_report(r == ModelLoad::not_recognized, "load_any_unknown_file", "status=%d", (int)r);
    r = load_model_any(fixtures + "/f16_plain/model.safetensors", &cfg, &params, &err);
    test_report(r == ModelLoad::loaded && is_tiny(cfg), "load_any_safetensors_path", "%s", err.c_str());
    r = load_model_any(fixtures + "/does_not_exist", &cfg, &params, &err);
    test_report(r == ModelLoad::failed && has_all(err, {"does_not_exist"}), "load_any_missing_path", "%s",
                err.c_str());
}

// ----------------------------------------------------------------------------
// export

// GPT-2's tensor names and shapes in Hugging Face's layout, written out here independently.
static std::map<std::string, std::vector<int64_t>> gpt2_hf_shapes(int L, int64_t C, int64_t V, int64_t T) {
    std::map<std::string, std::vector<int64_t>> m = {
        {"wte.weight", {V, C}}, {"wpe.weight", {T, C}}, {"ln_f.weight", {C}}, {"ln_f.bias", {C}}};
    for (int l = 0; l < L; l++) {
        std::string h = "h." + std::to_string(l) + ".";
        m[h + "ln_1.weight"] = {C};          m[h + "ln_1.bias"] = {C};
        m[h + "attn.c_attn.weight"] = {C, 3 * C}; m[h + "attn.c_attn.bias"] = {3 * C};
        m[h + "attn.c_proj.weight"] = {C, C};     m[h + "attn.c_proj.bias"] = {C};
        m[h + "ln_2.weight"] = {C};          m[h + "ln_2.bias"] = {C};
        m[h + "mlp.c_fc.weight"] = {C, 4 * C};    m[h + "mlp.c_fc.bias"] = {4 * C};
        m[h + "mlp.c_proj.weight"] = {4 * C, C};  m[h + "mlp.c_proj.bias"] = {C};
    }
    return m;
}

static std::vector<float> random_params(const ModelConfig& cfg, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> p(num_parameters(cfg));
    for (float& x : p) x = u(rng);
    for (size_t i = (size_t)cfg.vocab_size * cfg.channels; i < (size_t)cfg.padded_vocab_size * cfg.channels; i++)
        p[i] = 0.0f;  // padded vocabulary rows are zero by convention (export drops them)
    p[5] = 1e-45f;    // a float subnormal and a negative zero survive too
    p[6] = -0.0f;
    return p;
}

// Reads the exported file's header with nothing but the format's definition.
static void check_exported_header(const std::string& dir, const ModelConfig& cfg) {
    std::string bytes = read_text(dir + "/model.safetensors");
    uint64_t n = 0;
    for (int i = 7; i >= 0 && bytes.size() >= 8; i--) n = (n << 8) | (uint8_t)bytes[i];
    bool framed = bytes.size() >= 8 + n && (8 + n) % 8 == 0;
    test_report(framed, "export_header_aligned", "header length %llu, file %zu", (unsigned long long)n, bytes.size());
    if (!framed) return;
    nlohmann::json h;
    try { h = nlohmann::json::parse(bytes.substr(8, n)); } catch (...) {}
    test_report(h.is_object(), "export_header_json");
    if (!h.is_object()) return;
    test_report(h.contains("__metadata__") && h["__metadata__"].value("format", "") == "pt", "export_metadata_format_pt");
    auto want = gpt2_hf_shapes(cfg.num_layers, cfg.channels, cfg.vocab_size, cfg.max_seq_len);
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    std::string problem;
    size_t tensors = 0;
    for (auto it = h.begin(); it != h.end(); ++it) {
        if (it.key() == "__metadata__") continue;
        tensors++;
        auto w = want.find(it.key());
        if (w == want.end()) { problem += " unexpected " + it.key(); continue; }
        if (it.value()["dtype"] != "F32") problem += " dtype of " + it.key();
        if (it.value()["shape"].get<std::vector<int64_t>>() != w->second) problem += " shape of " + it.key();
        spans.push_back({it.value()["data_offsets"][0].get<uint64_t>(), it.value()["data_offsets"][1].get<uint64_t>()});
    }
    if (tensors != want.size()) problem += " " + std::to_string(tensors) + " tensors, want " + std::to_string(want.size());
    std::sort(spans.begin(), spans.end());
    uint64_t at = 0;
    for (auto& s : spans) { if (s.first != at) problem += " gap/overlap at " + std::to_string(at); at = s.second; }
    if (at != bytes.size() - 8 - n) problem += " data ends at " + std::to_string(at);
    test_report(problem.empty(), "export_names_shapes_offsets", "%s", problem.c_str());

    nlohmann::json c;
    try { c = nlohmann::json::parse(read_text(dir + "/config.json")); } catch (...) {}
    bool config_ok = c.is_object() && c["model_type"] == "gpt2" && c["architectures"][0] == "GPT2LMHeadModel" &&
                     c["activation_function"] == "gelu_new" && c["n_embd"] == cfg.channels &&
                     c["n_head"] == cfg.num_heads && c["n_layer"] == cfg.num_layers &&
                     c["n_positions"] == cfg.max_seq_len && c["n_ctx"] == cfg.max_seq_len &&
                     c["vocab_size"] == cfg.vocab_size && c["layer_norm_epsilon"] == 1e-5 &&
                     c["eos_token_id"] == 50256 && c["tie_word_embeddings"] == true;
    test_report(config_ok, "export_config_json", "%s", c.dump().c_str());
}

static void test_export(const std::string& tmp, bool have_python, const std::string& fixtures) {
    ModelConfig cfg;
    cfg.num_layers = 3; cfg.channels = 24; cfg.num_heads = 3; cfg.vocab_size = 77;
    cfg.padded_vocab_size = pad_vocab(77); cfg.max_seq_len = 10; cfg.layernorm_eps = 1e-5f;
    std::vector<float> params = random_params(cfg, std::random_device{}());
    std::string dir = tmp + "/export", err, why;
    std::vector<std::string> warnings;
    bool ok = export_hf_model(dir, cfg, params.data(), &err, "tokenizer/gpt2", &warnings);
    test_report(ok, "export_writes", "%s", err.c_str());
    if (!ok) return;
    test_report(warnings.size() == 1 && has_all(warnings[0], {"vocab_size 77", "tokenizer files not written"}),
                "export_warns_no_tokenizer_for_other_vocab");
    ModelConfig back;
    std::vector<float> loaded;
    ok = load_hf_model(dir, &back, &loaded, &err);
    test_report(ok && back.num_layers == 3 && back.channels == 24 && back.num_heads == 3 && back.vocab_size == 77 &&
                    back.padded_vocab_size == 128 && back.max_seq_len == 10 && back.layernorm_eps == 1e-5f,
                "export_import_config", "%s", err.c_str());
    ok = ok && same_bits(cfg, loaded, params, &why);
    test_report(ok, "export_import_bit_exact", "%s", why.c_str());
    check_exported_header(dir, cfg);

    // exporting again over the same directory replaces the files and leaves no temporaries
    params[7] = 0.25f;
    ok = export_hf_model(dir, cfg, params.data(), &err, "", &warnings) && load_hf_model(dir, &back, &loaded, &err);
    bool no_tmp = true;
    for (auto& e : fs::directory_iterator(dir)) no_tmp = no_tmp && e.path().extension() != ".tmp";
    test_report(ok && loaded[7] == 0.25f && no_tmp, "export_overwrites_atomically", "%s", err.c_str());

    if (!have_python) {
        test_skip("export_read_by_python", "python3 not found; the independent reader was not run");
    } else {
        std::string cmd = "python3 common/tools/tiny_gpt2.py read " + dir + " " + tmp + "/python_read.f32";
        std::vector<float> python_read;
        ok = system(cmd.c_str()) == 0 && read_floats(tmp + "/python_read.f32", &python_read);
        ok = ok && same_bits(cfg, python_read, params, &why);
        test_report(ok, "export_read_by_python", "%s", why.c_str());

        // import -> export -> import of an F16 file written by Python
        ModelConfig c1, c2;
        std::vector<float> p1, p2;
        ok = load_hf_model(fixtures + "/f16_plain", &c1, &p1, &err) &&
             export_hf_model(tmp + "/reexport", c1, p1.data(), &err, "", nullptr) &&
             load_hf_model(tmp + "/reexport", &c2, &p2, &err);
        ok = ok && is_tiny(c2) && same_bits(c1, p2, p1, &why);
        test_report(ok, "import_export_import_bit_exact", "%s %s",
                    err.c_str(), why.c_str());
    }

    // GPT-2 124M's names and shapes, as the exporter would write them (without writing 500 MB)
    ModelConfig gpt2;
    auto want = gpt2_hf_shapes(12, 768, 50257, 1024);
    std::vector<HfTensorSpec> specs = hf_gpt2_tensor_specs(gpt2);
    bool same = specs.size() == want.size() && want.size() == 148;
    for (const auto& s : specs) same = same && want.count(s.name) && want[s.name] == s.shape;
    size_t total = 0;
    for (const auto& s : specs) { size_t n = 1; for (auto d : s.shape) n *= d; total += n; }
    test_report(same && total == 124439808, "gpt2_124m_tensor_names_shapes", "%zu tensors, %zu parameters",
                specs.size(), total);

    // with GPT-2's vocabulary the tokenizer files are copied beside the model
    if (!fs::exists("tokenizer/gpt2/encoder.json") || !fs::exists("tokenizer/gpt2/vocab.bpe")) {
        test_skip("export_tokenizer_files", "tokenizer/gpt2/encoder.json or vocab.bpe not present");
        return;
    }
    ModelConfig big;
    big.num_layers = 1; big.channels = 8; big.num_heads = 2; big.max_seq_len = 8;
    std::vector<float> p = random_params(big, 7);
    std::string tok_dir = tmp + "/export_tok";
    warnings.clear();
    ok = export_hf_model(tok_dir, big, p.data(), &err, "tokenizer/gpt2", &warnings);
    nlohmann::json tok;
    try { tok = nlohmann::json::parse(read_text(tok_dir + "/tokenizer_config.json")); } catch (...) {}
    test_report(ok && warnings.empty() &&
                    read_text(tok_dir + "/vocab.json") == read_text("tokenizer/gpt2/encoder.json") &&
                    read_text(tok_dir + "/merges.txt") == read_text("tokenizer/gpt2/vocab.bpe") &&
                    tok.is_object() && tok["model_max_length"] == 8,
                "export_tokenizer_files", "%s", err.c_str());
}

// issue 10: hostile JSON and sizes in safetensors headers and config.json give the file's error.
static void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f << bytes;
}
static std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; i++) out[i] = (char)((uint64_t)header.size() >> (8 * i));
    return out + header + std::string(data_bytes, '\0');
}
static void check_header_fails(const std::string& dir, const char* name, const std::string& header,
                               std::initializer_list<const char*> parts) {
    std::string path = dir + "/" + name + ".safetensors", err;
    write_bytes(path, safetensors_bytes(header, 16));
    SafetensorsFile file;
    bool ok = safetensors_open(path, &file, &err);
    test_report(!ok && has_all(err, parts) && err.find(path) == 0, (std::string("safetensors_rejects_") + name).c_str(),
                "opened=%d err='%s'", (int)ok, err.substr(0, 300).c_str());
}
static void test_hostile_headers(const std::string& tmp) {
    std::string dir = tmp + "/hostile";
    fs::create_directories(dir);
    check_header_fails(dir, "number_out_of_range",
                       R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"x": 1e400}})",
                       {"not valid JSON", "bad JSON value", "1e400"});
    check_header_fails(dir, "deep_nesting", R"({"__metadata__": {"x": )" + std::string(200000, '[') +
                       std::string(200000, ']') + "}}", {"nesting deeper than 256 levels", "byte 285 of the file"});
    check_header_fails(dir, "raw_nul", std::string(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})") +
                       std::string("\0 ", 2), {"raw NUL byte"});
    check_header_fails(dir, "element_count_wraps",
                       R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})",
                       {"tensor 'a'", "over 2^40 elements"});
    check_header_fails(dir, "offset_past_end_not_wrapped",
                       R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})",
                       {"extend past the end", "18446744073709551615", "header, which starts at file offset 8"});

    auto config_fails = [&](const char* name, const std::string& json, std::initializer_list<const char*> parts) {
        std::string path = dir + "/" + name + ".json", err;
        write_bytes(path, json);
        ModelConfig cfg;
        bool ok = hf_read_config(path, &cfg, &err, nullptr);
        test_report(!ok && has_all(err, parts) && err.find(path) == 0, (std::string("config_json_rejects_") + name).c_str(),
                    "read=%d err='%s'", (int)ok, err.substr(0, 300).c_str());
    };
    const std::string rest = R"("n_head": 4, "n_layer": 2, "n_positions": 16, "vocab_size": 100)";
    config_fails("number_out_of_range", R"({"n_embd": 1e400, )" + rest + "}", {"bad JSON value"});
    config_fails("deep_nesting", R"({"x": )" + std::string(1000, '[') + std::string(1000, ']') + ", " + rest + "}",
                 {"nesting deeper than 256"});
    config_fails("wrong_type_access", R"({"n_embd": 32, "scale_attn_weights": "yes", )" + rest + "}",
                 {"unexpected value type"});
    config_fails("channels_too_large", R"({"n_embd": 16777216, )" + rest + "}", {"channels must be in [1, 2^16]"});
}

// transpose_matrix (the Conv1D weights' 64 x 64 tiles) against its definition, for shapes with
// partial tiles on both sides, one tile, and a single row or column
static void test_transpose() {
    const size_t shapes[][2] = {{130, 67}, {67, 130}, {64, 64}, {1, 200}, {200, 1}, {5, 3}};
    bool ok = true;
    std::string why;
    for (auto& s : shapes) {
        const size_t rows = s[0], cols = s[1];
        std::vector<float> src(rows * cols), dst(rows * cols, -1.0f);
        for (size_t i = 0; i < src.size(); i++) src[i] = (float)i;
        transpose_matrix(dst.data(), src.data(), rows, cols);
        for (size_t r = 0; r < rows && ok; r++)
            for (size_t c = 0; c < cols && ok; c++)
                if (dst[c * rows + r] != src[r * cols + c]) {
                    ok = false;
                    why = std::to_string(rows) + " x " + std::to_string(cols) + ": element (" + std::to_string(r) +
                          ", " + std::to_string(c) + ") is " + std::to_string(dst[c * rows + r]);
                }
    }
    test_report(ok, "transpose_matrix_tiles", "%s", why.c_str());
}

int main() {
    test_transpose();
    char tmpl[] = "/tmp/test_model_io.XXXXXX";
    if (!mkdtemp(tmpl)) { printf("FAIL test_model_io: mkdtemp failed\n"); return 1; }
    std::string tmp = tmpl, fixtures = tmp + "/fixtures";
    bool have_python = system("command -v python3 >/dev/null 2>&1") == 0;
    if (!have_python) {
        printf("\n*** python3 not found: the loader tests against independently written files are SKIPPED ***\n\n");
        test_skip("hf_and_llmc_fixtures", "python3 not found (needed by common/tools/tiny_gpt2.py)");
    } else {
        std::string cmd = "python3 common/tools/tiny_gpt2.py fixtures " + fixtures;
        bool written = system(cmd.c_str()) == 0;
        test_report(written, "python_writes_fixtures", "%s failed", cmd.c_str());
        if (written) test_fixtures(fixtures);
    }
    test_export(tmp, have_python, fixtures);
    test_hostile_headers(tmp);
    fs::remove_all(tmp);
    return test_exit();
}
