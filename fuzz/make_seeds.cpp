// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) with the project's own
// writers: a tiny model (L=1, C=4, maxT=4, V=8) as checkpoint, Hugging Face directory and llm.c
// file, a tiny pair file and reference cache, the first line of each data/testdata format, and
// a few texts and ids for the tokenizer. Kept small (a few KB) so they can be committed.
// Usage: fuzz/make_seeds DIR (run from the repository root; `make fuzz-seeds`).
#include <filesystem>
#include <fstream>
#include <sstream>
#include "common/checkpoint.h"
#include "common/model_io.h"
#include "common/ref_cache.h"
#include "data/pairfile.h"

static std::string g_out;

static std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}
static void write_seed(const std::string& target, const std::string& name, const std::string& bytes) {
    std::filesystem::create_directories(g_out + "/" + target);
    std::ofstream(g_out + "/" + target + "/" + name, std::ios::binary) << bytes;
}
static void check(bool ok, const std::string& err) {
    if (!ok) { fprintf(stderr, "make_seeds: %s\n", err.c_str()); exit(1); }
}

int main(int argc, char** argv) {
    if (argc != 2) { fprintf(stderr, "usage: fuzz/make_seeds DIR\n"); return 2; }
    g_out = argv[1];
    std::string tmp = g_out + "/.tmp", err;
    std::filesystem::create_directories(tmp);

    ModelConfig cfg;
    cfg.max_seq_len = 4; cfg.vocab_size = 8; cfg.padded_vocab_size = 8;
    cfg.num_layers = 1; cfg.num_heads = 1; cfg.channels = 4;
    std::vector<float> params(num_parameters(cfg));
    for (size_t i = 0; i < params.size(); i++) params[i] = 0.01f * (float)((i * 37) % 101) - 0.5f;

    CheckpointState s;
    s.cfg = cfg; s.step = 3; s.seed = 1; s.params = params;
    check(save_checkpoint(tmp + "/c.bin", s, &err), err);
    write_seed("checkpoint", "no_optimizer", read_all(tmp + "/c.bin"));
    s.m.assign(params.size(), 0.001f); s.v.assign(params.size(), 0.002f);
    check(save_checkpoint(tmp + "/c.bin", s, &err), err);
    write_seed("checkpoint", "with_optimizer", read_all(tmp + "/c.bin"));
    // the sharded form's manifest (its files are not there: the parser is what this seed reaches)
    CheckpointManifest mf;
    mf.step = 3; mf.world = 2; mf.num_params = params.size();
    mf.weights_file = checkpoint_weights_name("c.bin", 3, 1); mf.weights_hash = 1;
    for (int r = 0; r < 2; r++) {
        CheckpointManifest::Shard sh;
        sh.begin = r == 0 ? 0 : params.size() / 2; sh.end = r == 0 ? params.size() / 2 : params.size();
        sh.payload_hash = 2 + r; sh.file = checkpoint_shard_name("c.bin", 3, 1, r, 2);
        mf.shards.push_back(sh);
    }
    write_seed("checkpoint", "sharded_manifest", manifest_text(mf));

    // llm.c: 256 int32 header (magic, version 3 = fp32, maxT, V, L, NH, C, Vp), then the floats
    int32_t header[LLMC_HEADER_INTS] = {LLMC_MAGIC, LLMC_VERSION_FP32, cfg.max_seq_len, cfg.vocab_size,
                                         cfg.num_layers, cfg.num_heads, cfg.channels, cfg.padded_vocab_size};
    write_seed("llmc", "tiny_fp32", std::string((const char*)header, sizeof header) +
                                    std::string((const char*)params.data(), params.size() * sizeof(float)));

    std::vector<std::string> warnings;
    check(export_hf_model(tmp + "/hf", cfg, params.data(), &err, tmp + "/no_tokenizer", &warnings), err);
    std::string config = read_all(tmp + "/hf/config.json");
    std::string hf = std::string(1, (char)(config.size() & 255)) + std::string(1, (char)(config.size() >> 8)) +
                     config + read_all(tmp + "/hf/model.safetensors");
    write_seed("hf_model", "tiny", hf);

    PairSet set;
    set.vocab_size = 8; set.tokenizer_id = "seed";
    set.add({1, 2}, {3}, {4, 5});
    set.add({6}, {7, 0}, {1});
    check(write_pair_file(tmp + "/p.bin", set, PAIRFILE_FLAG_EOS, &err), err);
    write_seed("pairfile", "tiny", read_all(tmp + "/p.bin"));
    RefCache rc;
    rc.model_hash = 11; rc.data_hash = set.content_hash;
    rc.chosen = {-1.5, -2.25}; rc.rejected = {-3.0, -0.5};
    check(save_ref_cache(tmp + "/r.bin", rc, &err), err);
    write_seed("ref_cache", "two_pairs", read_all(tmp + "/r.bin"));

    for (const char* format : {"explicit", "implicit", "messages"}) {
        std::string text = read_all(std::string("data/testdata/") + format + ".jsonl");
        write_seed("jsonl_line", format, text.substr(0, text.find('\n')));
    }
    write_seed("tokenizer", "text", "Hello world! It's 2024:   spaces\n\ttabs, caf\xC3\xA9 \xF0\x9F\x98\x80 <|endoftext|>");
    int32_t ids[] = {15496, 995, 0, 50256, 50257, -1};
    write_seed("tokenizer", "ids", std::string((const char*)ids, sizeof ids));
    std::filesystem::remove_all(tmp);
    return 0;
}
