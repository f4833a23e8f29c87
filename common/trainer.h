// Host code that the CPU trainer (train_dpo_cpu.cpp) and the GPU trainer (train_dpo.cu) share:
// errors, loading the pairs and the model (presets, checkpoints, Hugging Face, llm.c), the
// vocabulary check, the score flags and output, the metrics of an evaluation, the step record of
// log.jsonl and the step line, and the token printer. The training driver that uses them is
// common/train_loop.h. Host only: no BLAS, OpenMP or CUDA here (each trainer brings its own forward).
#pragma once
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/checkpoint.h"
#include "common/flags.h"
#include "common/model_init.h"
#include "common/model_io.h"
#include "common/ref_cache.h"
#include "common/train_config.h"
#include "common/train_log.h"
#include "data/dataloader.h"
#include "data/pairfile.h"
#include "tokenizer/gpt2_tokenizer.h"

// A trainer that must clean up before an error ends the process sets this (train_dpo_cpu under
// mpirun: print the rank and end every rank with MPI_Abort); it does not return.
inline void (*fatal_handler)(const std::string& msg) = nullptr;

[[noreturn]] static inline void fatal(const std::string& msg) {
    if (fatal_handler) fatal_handler(msg);
    fprintf(stderr, "error: %s\n", msg.c_str());
    exit(1);
}

static inline double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// --model: a preset (random init; vocabulary from the data), a checkpoint of this trainer,
// a Hugging Face GPT-2 directory or an llm.c .bin. Fills the configuration and the fp32 weights.
static inline void load_model_params(const std::string& spec, int data_vocab, uint64_t seed,
                                     ModelConfig* cfg, std::vector<float>* params) {
    ModelConfig c;
    if (model_preset(spec, &c)) {
        c.vocab_size = data_vocab;
        c.padded_vocab_size = pad_vocab(data_vocab);
        params->assign(num_parameters(c), 0.0f);
        gpt2_init_params(c, seed, params->data());
        *cfg = c;
        printf("model: preset %s, random init (seed %llu)\n", spec.c_str(), (unsigned long long)seed);
        return;
    }
    std::string err;
    if (is_checkpoint_file(spec)) {
        CheckpointState s;
        if (!load_checkpoint(spec, &s, &err, 0, 0)) fatal(err);  // the weights only (parts 0)
        *cfg = s.cfg;
        *params = std::move(s.params);
        printf("model: checkpoint %s (step %ld)\n", spec.c_str(), s.step);
        return;
    }
    std::vector<std::string> warnings;
    ModelLoad r = load_model_any(spec, &c, params, &err, &warnings);
    for (auto& w : warnings) fprintf(stderr, "warning: %s\n", w.c_str());
    if (r == ModelLoad::not_recognized)
        fatal(err + "; --model takes a preset (tiny small d6 d12 d24 d36 d48), a checkpoint of this "
                    "trainer, a Hugging Face GPT-2 directory or an llm.c .bin");
    if (r == ModelLoad::failed) fatal(err);
    *cfg = c;
    printf("model: %s\n", spec.c_str());
}

static inline void print_model(const ModelConfig& c) {
    printf("model: L=%d NH=%d C=%d maxT=%d V=%d (padded %d), %.2fM parameters\n", c.num_layers,
           c.num_heads, c.channels, c.max_seq_len, c.vocab_size, c.padded_vocab_size,
           num_parameters(c) / 1e6);
}

static inline void check_vocabulary(const PairSet& set, const std::string& path, const ModelConfig& cfg) {
    if (set.vocab_size > cfg.vocab_size)
        fatal(path + ": made with a vocabulary of " + std::to_string(set.vocab_size) + " tokens (" +
              set.tokenizer_id + ") but the model has " + std::to_string(cfg.vocab_size) +
              "; prepare the data with the model's tokenizer");
}

static inline PairSet load_pairs(const std::string& path, const char* what) {
    PairSet set;
    std::string err;
    if (!load_pair_file(path, &set, &err)) fatal(std::string(what) + " data: " + err);
    return set;
}

// Log-probs of every pair of a set under the model, forward only, in dataset order
// (common/train_loop.h's set_logps).
struct SetLogps {
    std::vector<double> chosen, rejected;
    std::vector<int> n_chosen, n_rejected;
};
// The flags of the score subcommand (the forward is the trainer's own).
struct ScoreArgs {
    std::string model_path, data_path, out_path;
    bool sharing = true, packing = true, quiet = false;
    int B = 8, T = 0, threads = 0;  // T = 0: the model's context
    int head_chunk = 8192;          // GPU: scored tokens per LM-head chunk (as TrainConfig's)
};

// Returns false after printing the usage for --help; a bad flag is fatal.
static inline bool parse_score_args(int argc, char** argv, ScoreArgs* a) {
    FlagParser f(argc, argv, 2, "score");  // after "<trainer> score"
    while (f.next()) {
        if (f.is("--model")) f.text(&a->model_path);
        else if (f.is("--data")) f.text(&a->data_path);
        else if (f.is("--out")) f.text(&a->out_path);
        else if (f.is("--prefix-sharing")) f.on_off(&a->sharing);
        else if (f.is("--packing")) f.on_off(&a->packing);
        else if (f.is("--seq-len")) f.integer(&a->T, 2, MAX_FLAG_SEQ_LEN);
        else if (f.is("--micro-rows")) f.integer(&a->B, 1, MAX_FLAG_ROWS);
        else if (f.is("--head-chunk")) f.integer(&a->head_chunk, 1, MAX_FLAG_HEAD_CHUNK);
        else if (f.is("--threads")) f.integer(&a->threads, 0, MAX_FLAG_THREADS);
        else if (f.is("--quiet")) a->quiet = true;
        else if (f.is("--help") || f.is("-h")) { print_usage(argv[0]); return false; }
        else f.unknown();
    }
    if (!f.ok()) fatal(f.error());
    if (a->model_path.empty() || a->data_path.empty() || a->out_path.empty())
        fatal("score needs --model, --data and --out (see --help)");
    return true;
}

// score's output: index, logp_chosen, logp_rejected, n_chosen, n_rejected per pair (TSV).
static inline void write_score_tsv(const std::string& path, const SetLogps& lp) {
    AtomicFile out;
    std::string err;
    if (!out.open(path, &err)) fatal("score: " + err);
    bool ok = fprintf(out.file(), "index\tlogp_chosen\tlogp_rejected\tn_chosen\tn_rejected\n") > 0;
    for (size_t i = 0; ok && i < lp.chosen.size(); i++)
        ok = fprintf(out.file(), "%zu\t%.9g\t%.9g\t%d\t%d\n", i, lp.chosen[i], lp.rejected[i], lp.n_chosen[i],
                     lp.n_rejected[i]) > 0;
    if (!out.commit(&err, ok)) fatal("score: " + err);
    printf("scored %zu pairs -> %s\n", lp.chosen.size(), path.c_str());
}

// --export-hf: writes the fp32 weights as a Hugging Face GPT-2 directory (with GPT-2's tokenizer
// files); `what` names the model in the closing line.
static inline void export_hf_or_die(const std::string& dir, const ModelConfig& cfg, const float* params,
                                    const std::string& what) {
    std::string err;
    std::vector<std::string> warnings;
    if (!export_hf_model(dir, cfg, params, &err, "tokenizer/gpt2", &warnings)) fatal(err);
    for (auto& w : warnings) fprintf(stderr, "warning: %s\n", w.c_str());
    printf("exported %s as Hugging Face GPT-2 -> %s\n", what.c_str(), dir.c_str());
}

// The validation pairs of --val (an empty set for 'none'), checked against the model's vocabulary;
// with --overlong skip it says how many do not fit a row of B x T (evaluation skips them).
static inline PairSet load_validation(const TrainConfig& tc, const ModelConfig& cfg, int B, int T, Layout layout) {
    PairSet val;
    if (tc.val_file == "none" || tc.val_file.empty()) return val;
    val = load_pairs(tc.val_file, "validation");
    check_vocabulary(val, tc.val_file, cfg);
    if (tc.skip_overlong) {
        long n = 0;
        for (size_t i = 0; i < val.size(); i++) n += !pair_fits(val, (int64_t)i, B, T, layout);
        if (n > 0) printf("note: %ld validation pairs do not fit a row; evaluation skips them\n", n);
    }
    return val;
}

// The metrics of an evaluation from the set's log-probs and its reference log-probs.
static inline PairMetrics evaluate_logps(const SetLogps& lp, const RefCache& ref, const LossSpec& spec) {
    PairMetrics m;
    for (size_t i = 0; i < lp.chosen.size(); i++) {
        if (lp.n_chosen[i] == 0) continue;  // over-long, skipped
        PairResult r;
        r.policy.chosen = lp.chosen[i]; r.policy.rejected = lp.rejected[i];
        r.policy.n_chosen = lp.n_chosen[i]; r.policy.n_rejected = lp.n_rejected[i];
        r.ref_chosen = ref.chosen[i]; r.ref_rejected = ref.rejected[i];
        double dc, dr;
        r.loss = pair_loss<double>(spec, r.policy.chosen, r.policy.rejected, r.ref_chosen,
                                   r.ref_rejected, r.policy.n_chosen, r.policy.n_rejected, &dc, &dr);
        m.add(r, spec.beta);
    }
    return m;
}

// One optimizer step's measurements, for its log.jsonl record and its step line.
struct StepStats {
    long done = 0, steps = 0;  // steps done (this one included), steps of the run
    double grad_norm = 0, lr = 0, seconds = 0, avg_seconds = 0;
    double cpu_seconds = 0;    // process CPU time of the step, all threads
    int pairs = 0;
    long tokens = 0;           // real (non-padding) tokens of the step
    double padding = 0, epoch = 0;
};

// The members of a step record (no braces); m.json starts with "loss".
static inline std::string step_record(const StepStats& s, const PairMetrics& m) {
    char rec[512];
    snprintf(rec, sizeof rec,
             "\"step\": %ld, %s, \"grad_norm\": %.9g, \"learning_rate\": %.9g, \"step_ms\": %.3f, "
             "\"cpu_ms\": %.3f, \"pairs\": %d, \"tokens\": %ld, \"tokens_per_sec\": %.1f, \"padding\": %.4f, \"epoch\": %.4f",
             s.done, m.json("").c_str(), s.grad_norm, s.lr, s.seconds * 1000, s.cpu_seconds * 1000, s.pairs, s.tokens,
             s.tokens / s.seconds, s.padding, s.epoch);
    return rec;
}

// The step line on stdout; `extra` (e.g. " | mfu 41.2%") goes before the ETA.
static inline void print_step_line(const StepStats& s, const PairMetrics& m, const std::string& extra = "") {
    printf("step %5ld/%ld | loss %.4f | acc %.3f | margin %.4f | norm %.3f | lr %.2e | %.1f ms | %.0f tok/s%s | eta %s\n",
           s.done, s.steps, m.mean(m.loss), m.accuracy(), m.margin(), s.grad_norm, s.lr, s.seconds * 1000,
           s.tokens / s.seconds, extra.c_str(), format_duration(s.avg_seconds * (s.steps - s.done)).c_str());
    fflush(stdout);
}

// Text of tokens: GPT-2's BPE when the model has its vocabulary, else the ids in brackets.
struct TokenPrinter {
    GPT2Tokenizer tok;
    bool text = false;
    void init(int vocab_size) {
        std::string err;
        text = vocab_size == 50257 && tok.load(default_tokenizer_dir(), &err);
    }
    std::string show(const std::vector<int>& ids) const {
        if (text) {
            std::vector<int32_t> v(ids.begin(), ids.end());
            return tok.decode(v.data(), v.size());
        }
        std::string s = "[";
        for (size_t i = 0; i < ids.size(); i++) s += (i ? " " : "") + std::to_string(ids[i]);
        return s + "]";
    }
};
