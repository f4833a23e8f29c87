// The trainer's settings and their command line, shared by the CPU and the GPU trainer, plus the
// model presets for random initialisation and the learning-rate schedule.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/launch.h"
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
    bool final_checkpoint = true;   // false: no OUT/checkpoint.bin after the last step (benchmarks)
    uint64_t seed = 1337;
    bool prefix_sharing = true;
    bool packing = true;
    LossSpec loss;
    int pairs_per_step = 32;        // the global batch, in pairs (mean of the loss over these)
    int micro_rows = 8;             // B: rows per micro-batch
    int seq_len = 0;                // T: tokens per row (0 = the model's max_seq_len)
    int head_chunk = 8192;          // GPU: scored tokens per LM-head chunk (bounds the logits buffer)
    float lr = 1e-3f, min_lr_frac = 0.1f, weight_decay = 0.0f, grad_clip = 1.0f;
    float beta1 = 0.9f, beta2 = 0.999f, adam_eps = 1e-8f;
    int warmup = 10;
    int eval_every = 50, log_every = 10, checkpoint_every = 50;
    int threads = 0;                // 0 = OpenMP's default
    int sample_every = 50, sample_prompts = 2, sample_tokens = 32;  // greedy samples during training
    bool skip_overlong = false;
    bool shuffle = true;
    bool zero = true;               // several ranks: ZeRO-1 (sharded AdamW state), else all-reduce
    bool quiet = false;             // no progress lines for long phases (common/progress.h)
    long exact_match = -1;          // greedy exact match on this many val prompts; -1 = all for the sort task, else off
    LaunchFlags launch;             // --world-size, --rank, --local-rank, --dist-init, --dist-timeout (common/launch.h)
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
        "  --head-chunk K          GPU: logits of at most K scored tokens at a time (default 8192); a\n"
        "                          micro-batch with more recomputes the LM head of all but its last\n"
        "                          chunk in the backward (less memory, a little more compute)\n"
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
        "  --final-checkpoint 1|0  1: write it after the last step too (default); 0: not (benchmarks: at\n"
        "                          d48 it is 18.7 GB with the AdamW moments)\n"
        "  --sample-every N        print greedy continuations of a few validation prompts every N\n"
        "                          steps (default 50; 0 = off)\n"
        "  --sample-prompts K      how many prompts (default 2)    --sample-tokens N  their length (default 32)\n"
        "  --threads N             OpenMP/BLAS threads (default: all cores; under mpirun the\n"
        "                          cores divided by the ranks on the machine)\n"
        "  --exact-match N         at each eval, the fraction of the first N validation prompts whose greedy\n"
        "                          continuation equals the chosen response (default: all for the sort task, else 0)\n"
        "  --quiet                 no progress lines for the reference pass and evaluations\n"
        "several processes (mpirun -np N %s ...; the GPU trainer also srun, torchrun or by hand)\n"
        "  --zero 1|0              1: ZeRO-1, each rank keeps and updates 1/N of the AdamW state\n"
        "                          (default); 0: all-reduce of the gradients, full state per rank\n"
        "  --world-size N --rank R this process's place, both or neither (default: from the launcher's\n"
        "                          environment: mpirun, srun, torchrun-style RANK/WORLD_SIZE, PMI)\n"
        "  --local-rank L          its index on its machine (the GPU it takes; default: the launcher's, else R)\n"
        "  --dist-init M           how the ranks first meet: file:PATH (a shared filesystem), tcp:HOST:PORT\n"
        "                          (rank 0 listens on PORT of HOST), mpi, or auto (default: mpi under\n"
        "                          mpirun in builds with MPI, else file:OUT/rendezvous); train_dpo_cpu:\n"
        "                          mpirun only\n"
        "  --dist-timeout S        seconds before a rendezvous that does not complete is an error (default 300)\n"
        "\n"
        "score writes index, logp_chosen, logp_rejected, n_chosen, n_rejected per pair (TSV); flags\n"
        "  --prefix-sharing, --packing, --seq-len, --micro-rows, --head-chunk, --threads, --quiet as above.\n"
        "sample --model M (--prompt TEXT | --prompts FILE | --prompt-ids \"1 2 3\") [--max-tokens N (64)]\n"
        "  [--temperature T (1)] [--top-k K] [--top-p P] [--greedy] [--seed S] [--tokenizer DIR]\n"
        "  [--eos-id N (stop token, default 50256)]\n"
        "\n"
        "Values are range-checked: a bad one is an error naming the flag and the accepted range.\n",
        prog, prog, prog, prog);
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

// Upper bounds of the size flags: far above any real run, low enough that a typo is an error
// instead of an allocation failure or a run that never ends.
static const int64_t MAX_FLAG_STEPS = 100000000;     // --steps, --stop-after, --warmup, --*-every
static const int64_t MAX_FLAG_PAIRS = 1 << 20;       // --batch-pairs
static const int64_t MAX_FLAG_ROWS = 4096;           // --micro-rows
static const int64_t MAX_FLAG_SEQ_LEN = 1 << 20;     // --seq-len (also bounded by the model's context)
static const int64_t MAX_FLAG_HEAD_CHUNK = 1 << 30;  // --head-chunk
static const int64_t MAX_FLAG_THREADS = 4096;        // --threads
static const int64_t MAX_FLAG_SAMPLE_TOKENS = 1 << 20;  // --sample-tokens, sample --max-tokens
static const int64_t MAX_FLAG_SAMPLE_PROMPTS = 1 << 20; // --sample-prompts

// Parses the training flags (common/flags.h: every value typed and range-checked). Returns false
// with *err set on a bad flag or value.
inline bool parse_train_args(int argc, char** argv, int first, TrainConfig* c, std::string* err) {
    std::string losses = "sigmoid";
    std::vector<float> weights;
    const NumberRange non_negative = NumberRange::at_least(0);
    FlagParser f(argc, argv, first);
    while (f.next()) {
        if (f.is("--train")) f.text(&c->train_file);
        else if (f.is("--val")) f.text(&c->val_file);
        else if (f.is("--model")) f.text(&c->model);
        else if (f.is("--out")) f.text(&c->out_dir);
        else if (f.is("--ref-cache")) f.text(&c->ref_cache);
        else if (f.is("--export-hf")) f.text(&c->export_hf);
        else if (f.is("--resume")) {
            if (f.value_follows()) f.text(&c->resume);
            else c->resume = "auto";
        }
        else if (f.is("--prefix-sharing")) f.on_off(&c->prefix_sharing);
        else if (f.is("--packing")) f.on_off(&c->packing);
        else if (f.is("--loss")) f.text(&losses);
        else if (f.is("--loss-weights")) f.number_list(&weights, non_negative);
        else if (f.is("--beta")) f.number(&c->loss.beta, NumberRange::above(0));
        else if (f.is("--label-smoothing")) f.number(&c->loss.label_smoothing, {0, 0.5, false, true});
        else if (f.is("--steps")) f.integer(&c->steps, 0, MAX_FLAG_STEPS);
        else if (f.is("--stop-after")) f.integer(&c->stop_after, 1, MAX_FLAG_STEPS);
        else if (f.is("--seed")) f.seed(&c->seed);
        else if (f.is("--batch-pairs")) f.integer(&c->pairs_per_step, 1, MAX_FLAG_PAIRS);
        else if (f.is("--micro-rows")) f.integer(&c->micro_rows, 1, MAX_FLAG_ROWS);
        else if (f.is("--seq-len")) f.integer(&c->seq_len, 2, MAX_FLAG_SEQ_LEN);
        else if (f.is("--head-chunk")) f.integer(&c->head_chunk, 1, MAX_FLAG_HEAD_CHUNK);
        else if (f.is("--lr")) f.number(&c->lr, non_negative);
        else if (f.is("--min-lr-frac")) f.number(&c->min_lr_frac, NumberRange::closed(0, 1));
        else if (f.is("--warmup")) f.integer(&c->warmup, 0, MAX_FLAG_STEPS);
        else if (f.is("--weight-decay")) f.number(&c->weight_decay, non_negative);
        else if (f.is("--grad-clip")) f.number(&c->grad_clip, non_negative);
        else if (f.is("--eval-every")) f.integer(&c->eval_every, 0, MAX_FLAG_STEPS);
        else if (f.is("--log-every")) f.integer(&c->log_every, 1, MAX_FLAG_STEPS);
        else if (f.is("--checkpoint-every")) f.integer(&c->checkpoint_every, 0, MAX_FLAG_STEPS);
        else if (f.is("--final-checkpoint")) {
            int final_checkpoint = 1;
            if (f.choice(&final_checkpoint, {"0", "1"})) c->final_checkpoint = final_checkpoint == 1;
        }
        else if (f.is("--threads")) f.integer(&c->threads, 0, MAX_FLAG_THREADS);
        else if (f.is("--sample-every")) f.integer(&c->sample_every, 0, MAX_FLAG_STEPS);
        else if (f.is("--sample-prompts")) f.integer(&c->sample_prompts, 1, MAX_FLAG_SAMPLE_PROMPTS);
        else if (f.is("--sample-tokens")) f.integer(&c->sample_tokens, 1, MAX_FLAG_SAMPLE_TOKENS);
        else if (f.is("--no-shuffle")) c->shuffle = false;
        else if (f.is("--zero")) {
            int zero = 1;
            if (f.choice(&zero, {"0", "1"})) c->zero = zero == 1;
        }
        else if (f.is("--exact-match")) f.integer(&c->exact_match, 0, MAX_FLAG_PAIRS);
        else if (f.is("--world-size")) f.integer(&c->launch.world, 1, MAX_WORLD_SIZE);
        else if (f.is("--rank")) f.integer(&c->launch.rank, 0, MAX_WORLD_SIZE - 1);
        else if (f.is("--local-rank")) f.integer(&c->launch.local_rank, 0, MAX_WORLD_SIZE - 1);
        else if (f.is("--dist-init")) {
            DistInit init;
            std::string why;
            if (f.text(&c->launch.init) && !parse_dist_init(c->launch.init, &init, &why)) f.fail(why);
        }
        else if (f.is("--dist-timeout")) f.number(&c->launch.timeout_s, {0, MAX_DIST_TIMEOUT_S, true, false});
        else if (f.is("--quiet")) c->quiet = true;
        else if (f.is("--overlong")) {
            int policy = 0;
            if (f.choice(&policy, {"error", "skip"})) c->skip_overlong = policy == 1;
        } else f.unknown();
    }
    if (!f.ok()) { *err = f.error(); return false; }
    if (!check_launch_flags(c->launch, err)) return false;
    // losses and their weights
    std::vector<std::string> names = split_commas(losses);
    if (!weights.empty() && weights.size() != names.size()) {
        *err = "--loss-weights has " + std::to_string(weights.size()) + " values for " +
               std::to_string(names.size()) + " losses";
        return false;
    }
    for (int t = 0; t < NUM_LOSS_TYPES; t++) c->loss.weight[t] = 0;
    static const char* const loss_names[NUM_LOSS_TYPES] = {"sigmoid", "ipo", "hinge", "sft"};
    for (size_t k = 0; k < names.size(); k++) {
        int t = -1;
        for (int j = 0; j < NUM_LOSS_TYPES; j++) if (names[k] == loss_names[j]) t = j;
        if (t < 0) { *err = "unknown loss '" + names[k] + "' (sigmoid, ipo, hinge, sft)"; return false; }
        c->loss.weight[t] += weights.empty() ? 1.0f : weights[k];
    }
    return true;
}
