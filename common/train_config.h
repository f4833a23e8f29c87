// The trainer's settings and their command line, shared by the CPU and the GPU trainer, plus the
// model presets for random initialisation and the learning-rate schedule.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "kernels/dpo_loss_math.h"

struct TrainConfig {
    std::string train_file = "data/synthetic/sort_train.bin";
    std::string val_file = "data/synthetic/sort_val.bin";
    std::string model = "tiny";     // a preset name, a checkpoint, a Hugging Face dir, an llm.c .bin
    std::string out_dir = "out";
    std::string resume;             // "" = fresh run; "auto" = OUT/checkpoint.bin
    std::string ref_cache;          // "" = OUT/ref_logps_{train,val}.bin
    std::string export_hf;          // "" = none; else export the final model to this directory
    long steps = 150;
    long stop_after = 0;            // > 0: stop after this step as if interrupted (checkpoint, exit)
    uint64_t seed = 1337;
    bool prefix_sharing = true;
    bool packing = true;
    LossSpec loss;
    int pairs_per_step = 32;        // the global batch, in pairs (mean of the loss over these)
    int micro_rows = 8;             // B: rows per micro-batch
    int seq_len = 0;                // T: tokens per row (0 = the model's max_seq_len)
    float lr = 1e-3f, min_lr_frac = 0.1f, weight_decay = 0.0f, grad_clip = 1.0f;
    float beta1 = 0.9f, beta2 = 0.999f, adam_eps = 1e-8f;
    int warmup = 10;
    int eval_every = 50, log_every = 10, checkpoint_every = 50;
    int threads = 0;                // 0 = OpenMP's default
    int sample_every = 50, sample_prompts = 2, sample_tokens = 32;  // greedy samples during training
    bool skip_overlong = false;
    bool shuffle = true;
};

// lr at step (0-based): linear warmup to lr, then cosine decay to lr * min_lr_frac at the end
inline float learning_rate_at(const TrainConfig& c, long step) {
    if (step < c.warmup) return c.lr * (float)(step + 1) / (float)c.warmup;
    long decay_steps = c.steps - c.warmup;
    if (decay_steps <= 0) return c.lr;
    double progress = (double)(step - c.warmup) / (double)decay_steps;
    if (progress > 1) progress = 1;
    double min_lr = (double)c.lr * c.min_lr_frac;
    return (float)(min_lr + 0.5 * ((double)c.lr - min_lr) * (1 + std::cos(M_PI * progress)));
}

// Named model shapes for random initialisation (GPT-2's sizes and small ones for tests).
// The vocabulary comes from the training data.
inline bool model_preset(const std::string& name, ModelConfig* c) {
    struct Preset { const char* name; int L, NH, C, T; };
    static const Preset presets[] = {
        {"tiny", 2, 4, 64, 64},     {"small", 4, 4, 128, 256}, {"d6", 6, 6, 384, 1024},
        {"d12", 12, 12, 768, 1024}, {"d24", 24, 16, 1024, 1024}, {"d36", 36, 20, 1280, 1024},
        {"d48", 48, 25, 1600, 1024}};
    for (const Preset& p : presets) {
        if (name == p.name) {
            c->num_layers = p.L; c->num_heads = p.NH; c->channels = p.C; c->max_seq_len = p.T;
            return true;
        }
    }
    return false;
}

inline void print_usage(const char* prog) {
    printf(
        "usage: %s [options]              train with DPO (defaults: the bundled synthetic task)\n"
        "       %s score --model M --data PAIRS.bin --out LOGPS.tsv [--prefix-sharing on|off]\n"
        "       %s sample --model M --prompt TEXT [--max-tokens N --temperature T --top-k K --top-p P]\n"
        "\n"
        "data and model\n"
        "  --train FILE            training pairs, a binary pair file from data/prepare_dpo\n"
        "                          (default data/synthetic/sort_train.bin)\n"
        "  --val FILE              validation pairs (default data/synthetic/sort_val.bin; 'none' = no eval)\n"
        "  --model M               preset (tiny small d6 d12 d24 d36 d48: random init), a checkpoint\n"
        "                          of this trainer, a Hugging Face GPT-2 directory or an llm.c .bin\n"
        "                          (default tiny)\n"
        "  --out DIR               output directory: log.jsonl, checkpoint.bin, reference cache (default out)\n"
        "  --resume [auto|FILE]    continue from a checkpoint (auto = OUT/checkpoint.bin)\n"
        "  --ref-cache PREFIX      reference log-prob cache files PREFIX_{train,val}.bin\n"
        "                          (default OUT/ref_logps)\n"
        "  --export-hf DIR         at the end, write the model as Hugging Face GPT-2 (with --steps 0: convert only)\n"
        "layout\n"
        "  --prefix-sharing on|off one sequence per pair behind one copy of the prompt (default on)\n"
        "  --packing on|off        several pairs per row (default on)\n"
        "  --seq-len T             tokens per row (default: the model's context length)\n"
        "  --micro-rows B          rows per micro-batch (default 8)\n"
        "  --overlong error|skip   a pair longer than T stops the run (default) or is skipped and counted\n"
        "loss\n"
        "  --loss LIST             comma-separated: sigmoid, ipo, hinge, sft (default sigmoid)\n"
        "  --loss-weights LIST     one weight per loss (default 1 each)\n"
        "  --beta B                DPO temperature (default 0.1)\n"
        "  --label-smoothing E     cDPO label smoothing for sigmoid (default 0)\n"
        "optimisation\n"
        "  --steps N               optimizer steps (default 150)\n"
        "  --stop-after K          stop after step K as if interrupted: checkpoint and exit (for\n"
        "                          job time limits; continue with --resume and the same flags)\n"
        "  --batch-pairs N         pairs per optimizer step, accumulated over micro-batches (default 32)\n"
        "  --lr LR                 peak learning rate (default 1e-3)\n"
        "  --min-lr-frac F         cosine decay ends at lr*F (default 0.1)\n"
        "  --warmup N              linear warmup steps (default 10)\n"
        "  --weight-decay W        AdamW decoupled weight decay on matrices (default 0)\n"
        "  --grad-clip G           clip the global gradient norm (default 1.0; 0 = off)\n"
        "  --seed S                initialisation and shuffling (default 1337)\n"
        "  --no-shuffle            take pairs in file order\n"
        "logging\n"
        "  --eval-every N          evaluate on --val every N steps (default 50; 0 = only at the end)\n"
        "  --log-every N           print a step line every N steps (default 10)\n"
        "  --checkpoint-every N    write OUT/checkpoint.bin every N steps (default 50; 0 = only at the end)\n"
        "  --sample-every N        print greedy continuations of a few validation prompts every N\n"
        "                          steps (default 50; 0 = off)\n"
        "  --sample-prompts K      how many prompts (default 2)    --sample-tokens N  their length (default 32)\n"
        "  --threads N             OpenMP/BLAS threads (default: all cores)\n"
        "\n"
        "score writes index, logp_chosen, logp_rejected, n_chosen, n_rejected per pair (TSV); flags\n"
        "  --prefix-sharing, --packing, --seq-len, --micro-rows, --threads as above.\n"
        "sample --model M (--prompt TEXT | --prompts FILE | --prompt-ids \"1 2 3\") [--max-tokens N (64)]\n"
        "  [--temperature T (1)] [--top-k K] [--top-p P] [--greedy] [--seed S] [--tokenizer DIR]\n"
        "  [--eos-id N (stop token, default 50256)]\n",
        prog, prog, prog);
}

// Splits "a,b,c".
inline std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
        size_t comma = s.find(',', start);
        out.push_back(s.substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

// Parses the training flags. Returns false with *err set on a bad flag or value.
inline bool parse_train_args(int argc, char** argv, int first, TrainConfig* c, std::string* err) {
    std::string losses = "sigmoid", weights;
    for (int i = first; i < argc; i++) {
        std::string flag = argv[i];
        auto value = [&](std::string* v) {
            if (i + 1 >= argc) { *err = "flag " + flag + " needs a value (see --help)"; return false; }
            *v = argv[++i];
            return true;
        };
        auto number = [&](double* d) {
            std::string v;
            if (!value(&v)) return false;
            char* end = nullptr;
            *d = strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !std::isfinite(*d)) {
                *err = "flag " + flag + ": '" + v + "' is not a number";
                return false;
            }
            return true;
        };
        auto on_off = [&](bool* b) {
            std::string v;
            if (!value(&v)) return false;
            if (v == "on") *b = true;
            else if (v == "off") *b = false;
            else { *err = "flag " + flag + " takes on or off, not '" + v + "'"; return false; }
            return true;
        };
        auto integer = [&](long* n, long lo) {
            double d;
            if (!number(&d)) return false;
            if (d != (double)(long)d || d < lo) {
                *err = "flag " + flag + " needs an integer >= " + std::to_string(lo);
                return false;
            }
            *n = (long)d;
            return true;
        };
        double d; long n; bool ok = true;
        if (flag == "--train") ok = value(&c->train_file);
        else if (flag == "--val") ok = value(&c->val_file);
        else if (flag == "--model") ok = value(&c->model);
        else if (flag == "--out") ok = value(&c->out_dir);
        else if (flag == "--ref-cache") ok = value(&c->ref_cache);
        else if (flag == "--export-hf") ok = value(&c->export_hf);
        else if (flag == "--resume") {
            if (i + 1 < argc && argv[i + 1][0] != '-') c->resume = argv[++i];
            else c->resume = "auto";
        }
        else if (flag == "--prefix-sharing") ok = on_off(&c->prefix_sharing);
        else if (flag == "--packing") ok = on_off(&c->packing);
        else if (flag == "--loss") ok = value(&losses);
        else if (flag == "--loss-weights") ok = value(&weights);
        else if (flag == "--beta") { ok = number(&d); c->loss.beta = (float)d; }
        else if (flag == "--label-smoothing") { ok = number(&d); c->loss.label_smoothing = (float)d; }
        else if (flag == "--steps") { ok = integer(&n, 0); c->steps = n; }
        else if (flag == "--stop-after") { ok = integer(&n, 1); c->stop_after = n; }
        else if (flag == "--seed") { ok = integer(&n, 0); c->seed = (uint64_t)n; }
        else if (flag == "--batch-pairs") { ok = integer(&n, 1); c->pairs_per_step = (int)n; }
        else if (flag == "--micro-rows") { ok = integer(&n, 1); c->micro_rows = (int)n; }
        else if (flag == "--seq-len") { ok = integer(&n, 2); c->seq_len = (int)n; }
        else if (flag == "--lr") { ok = number(&d); c->lr = (float)d; }
        else if (flag == "--min-lr-frac") { ok = number(&d); c->min_lr_frac = (float)d; }
        else if (flag == "--warmup") { ok = integer(&n, 0); c->warmup = (int)n; }
        else if (flag == "--weight-decay") { ok = number(&d); c->weight_decay = (float)d; }
        else if (flag == "--grad-clip") { ok = number(&d); c->grad_clip = (float)d; }
        else if (flag == "--eval-every") { ok = integer(&n, 0); c->eval_every = (int)n; }
        else if (flag == "--log-every") { ok = integer(&n, 1); c->log_every = (int)n; }
        else if (flag == "--checkpoint-every") { ok = integer(&n, 0); c->checkpoint_every = (int)n; }
        else if (flag == "--threads") { ok = integer(&n, 0); c->threads = (int)n; }
        else if (flag == "--sample-every") { ok = integer(&n, 0); c->sample_every = (int)n; }
        else if (flag == "--sample-prompts") { ok = integer(&n, 1); c->sample_prompts = (int)n; }
        else if (flag == "--sample-tokens") { ok = integer(&n, 1); c->sample_tokens = (int)n; }
        else if (flag == "--no-shuffle") c->shuffle = false;
        else if (flag == "--overlong") {
            std::string v;
            ok = value(&v);
            if (ok && v != "error" && v != "skip") { *err = "--overlong takes error or skip"; ok = false; }
            c->skip_overlong = v == "skip";
        } else {
            *err = "unknown flag '" + flag + "' (see --help)";
            return false;
        }
        if (!ok) return false;
    }
    // losses and their weights
    std::vector<std::string> names = split_commas(losses), ws;
    if (!weights.empty()) ws = split_commas(weights);
    if (!ws.empty() && ws.size() != names.size()) {
        *err = "--loss-weights has " + std::to_string(ws.size()) + " values for " +
               std::to_string(names.size()) + " losses";
        return false;
    }
    for (int t = 0; t < NUM_LOSS_TYPES; t++) c->loss.weight[t] = 0;
    static const char* const loss_names[NUM_LOSS_TYPES] = {"sigmoid", "ipo", "hinge", "sft"};
    for (size_t k = 0; k < names.size(); k++) {
        int t = -1;
        for (int j = 0; j < NUM_LOSS_TYPES; j++) if (names[k] == loss_names[j]) t = j;
        if (t < 0) { *err = "unknown loss '" + names[k] + "' (sigmoid, ipo, hinge, sft)"; return false; }
        float w = 1.0f;
        if (!ws.empty()) {
            char* end = nullptr;
            w = strtof(ws[k].c_str(), &end);
            if (end == ws[k].c_str() || *end) { *err = "--loss-weights: '" + ws[k] + "' is not a number"; return false; }
        }
        c->loss.weight[t] += w;
    }
    if (c->loss.beta <= 0) { *err = "--beta must be > 0"; return false; }
    if (c->loss.label_smoothing < 0 || c->loss.label_smoothing >= 0.5f) {
        *err = "--label-smoothing must be in [0, 0.5)";
        return false;
    }
    if (c->lr < 0) { *err = "--lr must be >= 0"; return false; }
    return true;
}
