// The training driver that both trainers run: train_dpo_cpu.cpp with the CPU model over MPI,
// train_dpo.cu with the GPU model. Everything from "parse the flags" to "the final checkpoint"
// lives here once, and reads top to bottom as the training script; the trainers bring only their
// model (the backend) and their communicator:
//
//   TrainConfig tc;
//   bool demo;
//   if (!parse_train_flags(argc, argv, &tc, &demo)) return 0;  // --help
//   ... the communicator from tc.launch ...
//   int status = train_loop(tc, demo, comm, backend);          // training
//   int status = score_loop(argc, argv, backend);              // the score subcommand
//
// Comm: the host collectives of a data-parallel job (cpu::MpiComm; LocalComm below for one
// process; the GPU's NCCL communicator later). Every member is called by every rank at the same
// point unless said otherwise.
//   int rank, world;                                       this process, the number of processes
//   void all_gather(const double* mine, int count, std::vector<double>* out)
//       out[r*count + i] = rank r's mine[i], on every rank
//   void broadcast(void* buf, size_t n)                    rank 0's n bytes to every rank
//   void all_gather_pieces(double* buf, const std::vector<int64_t>& bounds)
//       in place: rank r's buf[bounds[r], bounds[r+1]) to every rank (bounds: world + 1 entries)
//   void barrier()
//   [[noreturn]] void abort(int code)                      ends every rank (called by one rank)
// (the driver itself needs no barrier or abort today; they are for the backends and the error
// handlers: the GPU's collectives watchdog, a rank that fails alone)
//
// Backend: one model replica and its share of the optimizer. B x T is the micro-batch capacity,
// N = B*T tokens, n = num_parameters(cfg) fp32 weights in common/model_config.h's layout.
//   void start(const TrainConfig& tc)
//       once, before setup: the machine (CPU: tc.threads OpenMP/BLAS threads, 0 = default; GPU:
//       finds the device, prints it, takes tc.head_chunk). Not called by a --steps 0 --export-hf
//       conversion. score passes a TrainConfig with the score flags' threads and head_chunk.
//   void setup(const ModelConfig& cfg, int B, int T, std::vector<float>* weights)
//       the model of cfg with these n fp32 weights (taken over: *weights may be emptied) for
//       micro-batches of at most B x T; a clear error when it does not fit (GPU memory).
//   void init_optimizer(const TrainConfig& tc, std::vector<float>* m, std::vector<float>* v)
//       training only, after setup: this rank's AdamW moments (empty: zeros), as load_checkpoint
//       returns them from a checkpoint of any world size: with tc.zero and world > 1 the rank's
//       ZeRO-1 shard [ZeroShards(n, world).begin(rank), .end(rank)), else all n; taken over.
//       tc.zero picks ZeRO-1 or the plain all-reduce.
//   std::vector<PairLogps> batch_logps(const Batch& b)
//       forward only: the per-slot log-prob sums of micro-batch b (b.n_slots() entries, summed in
//       double in token order). Local to the rank.
//   void zero_grad()
//   std::vector<PairResult> dpo_step(const Batch& b, const std::vector<double>& ref_chosen,
//                                    const std::vector<double>& ref_rejected, const LossSpec& spec,
//                                    double scale, bool last)
//       forward, DPO loss against the reference log-probs of b's slots, backward; accumulates
//       this rank's fp32 gradients scaled by `scale` (1 / pairs of the whole step). Local.
//       last: b is this rank's last micro-batch of the step (a backend may start reducing the
//       gradients during its backward; reduce follows in any case, also on a rank with none).
//   StepPartial reduce(StepPartial mine, int* bad_rank)
//       collective, after the backward of every micro-batch: sums the ranks' gradients (to what
//       update needs) and the ranks' StepPartials (metrics, tokens); fills grad_sumsq and
//       shard_sumsq so that sqrt(result.shard_sumsq) is the global gradient norm, the same on
//       every rank; *bad_rank = the first rank whose loss or gradient is not finite, or -1.
//   void update(const TrainConfig& tc, float lr, float clip, long t)
//       collective: AdamW step t (1, 2, ...) with the gradient scaled by clip (the reduced one),
//       then whatever makes every rank's weights equal again (the ZeRO-1 all-gather); returns
//       when the step is done (the driver times it).
//   const float* host_weights()
//       collective: the n fp32 weights on the host, valid on rank 0 at least, until the next
//       update or host_weights call.
//   void moments(std::vector<float>* m, std::vector<float>* v, size_t* begin)
//       local (no collective): a copy of this rank's AdamW moments, the same part init_optimizer
//       took (ZeRO-1 with world > 1: its shard, from *begin; else all n, *begin = 0). The driver
//       saves the shards of all ranks as one sharded checkpoint (common/checkpoint.h).
//   double exact_match_rate(const float* weights, const PairSet& set, long n)
//   std::vector<int> greedy_continuation(const float* weights, const std::vector<int>& prompt,
//                                        int max_new_tokens, int eos_token)
//       greedy generation from host fp32 weights (both trainers: the CPU sampler, cpu/sample.h
//       and cpu/exact_match.h, which need BLAS and OpenMP and so stay out of this header): the
//       exact match of the first n pairs of set, the continuation of a prompt. Local (rank 0).
//   optional: void step_extras(const std::vector<Batch>& batches, double seconds,
//                              std::string* record, std::string* line)
//       more for the step's log.jsonl record (", \"mfu\": ...") and its step line (" | mfu ...");
//       the GPU's MFU and memory. A backend without it adds nothing.
//
// Errors: fatal() (common/trainer.h) where one rank can find the problem; a trainer under MPI
// installs a fatal_handler that ends every rank. An error every rank finds at the same point (a
// NaN after the reduction) is reported once by rank 0 and train_loop returns 1 on every rank.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "common/checkpoint.h"
#include "common/demo_task.h"
#include "common/distributed.h"
#include "common/progress.h"
#include "common/ref_cache.h"
#include "common/train_config.h"
#include "common/train_log.h"
#include "common/trainer.h"
#include "data/dataloader.h"

// One process: every collective is a copy or nothing (the GPU trainer, and score in both).
struct LocalComm {
    int rank = 0, world = 1;
    void all_gather(const double* mine, int count, std::vector<double>* out) { out->assign(mine, mine + count); }
    void broadcast(void*, size_t) {}
    void all_gather_pieces(double*, const std::vector<int64_t>&) {}
    void barrier() {}
    [[noreturn]] void abort(int code) {
        fflush(stdout);
        fflush(stderr);
        exit(code);
    }
};

// How a whole set of pairs goes through the model for its log-probs (reference pass, eval, score).
struct SetPass {
    Layout layout = LAYOUT_SHARED;
    bool packing = true;
    int B = 1, T = 1;
    bool skip_overlong = false;  // pairs longer than a row are left out (their n_chosen stays 0)
    bool quiet = false;          // no progress line
};

// Log-probs of every pair of a set, forward only, in dataset order, shown as progress `what`.
// Several ranks split the set by whole packing chunks (so every pair is packed exactly as by one
// process and gets the same bits) and all-gather the results.
template <typename Comm, typename Backend>
SetLogps set_logps(Comm& comm, Backend& model, const PairSet& set, const SetPass& pass, const char* what) {
    std::vector<int64_t> bounds(comm.world + 1);  // pairs [bounds[r], bounds[r+1]) on rank r
    const int64_t n_chunks = ((int64_t)set.size() + kEvalChunk - 1) / kEvalChunk;
    for (int r = 0; r < comm.world; r++) {
        int64_t lo, hi;
        rank_slice(n_chunks, r, comm.world, &lo, &hi);
        bounds[r] = std::min((int64_t)set.size(), lo * kEvalChunk);
        bounds[r + 1] = std::min((int64_t)set.size(), hi * kEvalChunk);
    }
    std::vector<Batch> batches;
    std::string err;
    if (!eval_batches(set, pass.B, pass.T, pass.layout, pass.packing, &batches, &err, pass.skip_overlong, nullptr,
                      bounds[comm.rank], bounds[comm.rank + 1]))
        fatal(err);
    SetLogps out;
    out.chosen.assign(set.size(), 0); out.rejected.assign(set.size(), 0);
    out.n_chosen.assign(set.size(), 0); out.n_rejected.assign(set.size(), 0);
    Progress progress(what, (double)set.size(), "pairs", pass.quiet);
    const int64_t mine = std::max<int64_t>(1, bounds[comm.rank + 1] - bounds[comm.rank]);
    long done = 0;
    for (const Batch& b : batches) {
        std::vector<PairLogps> lp = model.batch_logps(b);
        for (int s = 0; s < b.n_slots(); s++) {
            int64_t i = b.pair_ids[s];
            out.chosen[i] = lp[s].chosen; out.rejected[i] = lp[s].rejected;
            out.n_chosen[i] = lp[s].n_chosen; out.n_rejected[i] = lp[s].n_rejected;
        }
        // several ranks: rank 0's share, scaled to the whole set (the ranks advance together)
        done += b.n_slots();
        progress.update((double)done * set.size() / mine);
    }
    progress.finish();
    if (comm.world > 1) {
        std::vector<double> nc(out.n_chosen.begin(), out.n_chosen.end()), nr(out.n_rejected.begin(), out.n_rejected.end());
        for (std::vector<double>* v : {&out.chosen, &out.rejected, &nc, &nr}) comm.all_gather_pieces(v->data(), bounds);
        out.n_chosen.assign(nc.begin(), nc.end()); out.n_rejected.assign(nr.begin(), nr.end());
    }
    return out;
}

// Rank 0's reference cache (found or not) to every rank.
template <typename Comm>
void broadcast_ref_cache(Comm& comm, bool* found, RefCache* cache) {
    if (comm.world == 1) return;
    uint64_t head[4] = {*found ? 1u : 0u, cache->model_hash, cache->data_hash, cache->chosen.size()};
    comm.broadcast(head, sizeof head);
    *found = head[0] != 0;
    cache->model_hash = head[1]; cache->data_hash = head[2];
    cache->chosen.resize(head[3]); cache->rejected.resize(head[3]);
    comm.broadcast(cache->chosen.data(), head[3] * sizeof(double));
    comm.broadcast(cache->rejected.data(), head[3] * sizeof(double));
}

// The reference log-probs of a set: from the cache file if it belongs to this model and data,
// else computed (forward only, split over the ranks) and written. Rank 0 alone reads and writes
// the file. A resumed run (resumed = true) no longer has the initial weights, so its first run's
// cache must exist.
template <typename Comm, typename Backend>
RefCache reference_logps(Comm& comm, Backend& model, uint64_t ref_hash, const PairSet& set,
                         const std::string& path, const SetPass& pass, bool resumed) {
    RefCache cache;
    bool found = false;
    std::string err;
    if (comm.rank == 0 && !load_ref_cache(path, ref_hash, set.content_hash, set.size(), &cache, &found, &err))
        fatal(err);
    if (comm.rank == 0 && resumed && !found)
        fatal(path + " is missing: a resumed run needs the reference cache of its first run");
    broadcast_ref_cache(comm, &found, &cache);
    if (found) {
        if (!resumed) printf("reference log-probs: %s (cached, %zu pairs)\n", path.c_str(), set.size());
        return cache;
    }
    double t0 = now_seconds();
    SetLogps lp = set_logps(comm, model, set, pass, "reference log-probs");
    cache.model_hash = ref_hash; cache.data_hash = set.content_hash;
    cache.chosen = lp.chosen; cache.rejected = lp.rejected;
    if (comm.rank == 0 && !save_ref_cache(path, cache, &err)) fatal(err);
    printf("reference log-probs: computed for %zu pairs in %.1fs -> %s\n", set.size(),
           now_seconds() - t0, path.c_str());
    return cache;
}

// Whether the backend has the optional step_extras member.
template <typename Backend, typename = void>
struct has_step_extras : std::false_type {};
template <typename Backend>
struct has_step_extras<Backend, std::void_t<decltype(&Backend::step_extras)>> : std::true_type {};

// ----------------------------------------------------------------------------------------------
// score: log-probs of every pair under a model, as TSV (one process)

template <typename Backend>
int score_loop(int argc, char** argv, Backend& model) {
    ScoreArgs a;
    if (!parse_score_args(argc, argv, &a)) return 0;  // --help
    PairSet set = load_pairs(a.data_path, "score");
    ModelConfig cfg;
    std::vector<float> weights;
    load_model_params(a.model_path, set.vocab_size, 0, &cfg, &weights);
    check_vocabulary(set, a.data_path, cfg);
    const int T = a.T == 0 ? cfg.max_seq_len : a.T;
    std::string too_long = check_seq_len(T, cfg, "score: --seq-len " + std::to_string(T));
    if (!too_long.empty()) fatal(too_long);
    TrainConfig machine;  // the score flags that set up the machine
    machine.threads = a.threads;
    machine.head_chunk = a.head_chunk;
    model.start(machine);
    model.setup(cfg, a.B, T, &weights);
    SetPass pass;
    pass.layout = a.sharing ? LAYOUT_SHARED : LAYOUT_BASELINE;
    pass.packing = a.packing; pass.B = a.B; pass.T = T; pass.quiet = a.quiet;
    LocalComm one;
    write_score_tsv(a.out_path, set_logps(one, model, set, pass, "score"));
    return 0;
}

// ----------------------------------------------------------------------------------------------
// training

// The flags of a training run, the demo's first when no --train is given (*demo says so); a bad
// flag is fatal. Returns false after printing the usage for --help.
inline bool parse_train_flags(int argc, char** argv, TrainConfig* tc, bool* demo) {
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") { print_usage(argv[0]); return false; }
    }
    std::string err;
    std::vector<char*> args = with_demo_flags(argc, argv, demo);
    if (!parse_train_args((int)args.size(), args.data(), 1, tc, &err)) fatal(err);
    return true;
}

// The whole training run of the flags tc, on every rank of comm. Returns the exit status.
template <typename Comm, typename Backend>
int train_loop(TrainConfig tc, bool demo, Comm& comm, Backend& model) {
    std::string err;
    // data parallel: rank 0 alone prints
    if (comm.rank > 0 && !freopen("/dev/null", "w", stdout)) fatal("cannot silence stdout");
    if (comm.world > 1)
        printf("data parallel: %d ranks, %s\n", comm.world, tc.zero ? "ZeRO-1 (sharded AdamW state)" : "all-reduce");
    if (demo) printf("demo: the bundled sort task; its flags, before yours: %s\n", join_flags(demo_task_flags()).c_str());
    std::error_code ec;
    std::filesystem::create_directories(tc.out_dir, ec);
    if (ec) fatal("cannot create output directory " + tc.out_dir + ": " + ec.message());
    const Layout layout = tc.prefix_sharing ? LAYOUT_SHARED : LAYOUT_BASELINE;

    // data, model, optimizer state (on the host first)
    const bool convert_only = tc.steps == 0 && !tc.export_hf.empty();
    if (!convert_only) model.start(tc);  // before the data: a machine without a GPU learns at once
    PairSet train;
    if (!convert_only) train = load_pairs(tc.train_file, "training");
    ModelConfig cfg;
    std::vector<float> weights, adam_m, adam_v;
    long start_step = 0;
    uint64_t ref_hash = 0;
    const std::string ckpt_path = tc.out_dir + "/checkpoint.bin";
    const bool sharded = tc.zero && comm.world > 1;  // ZeRO-1: each rank keeps a shard of the moments
    if (!tc.resume.empty()) {
        std::string path = tc.resume == "auto" ? ckpt_path : tc.resume;
        // the moments this rank keeps: its ZeRO-1 shard with several ranks, else all, whatever
        // world size wrote the checkpoint (a sharded one is re-cut when the world size changed)
        CheckpointState s;
        if (!load_checkpoint(path, &s, &err, sharded ? comm.rank : 0, sharded ? comm.world : 1))
            fatal(err + " (cannot resume)");
        if (s.train_data_hash != train.content_hash)
            fatal(path + ": this checkpoint was trained on other data than " + tc.train_file +
                  "; resume with the same --train, or start a new run");
        if (!s.has_moments) fatal(path + ": has no optimizer state; it can be a --model, not resumed");
        cfg = s.cfg;
        weights = std::move(s.params); adam_m = std::move(s.m); adam_v = std::move(s.v);
        start_step = s.step; ref_hash = s.ref_model_hash;
        tc.seed = s.seed;
        const bool resharded = s.shard_world > 0 && sharded && s.shard_world != comm.world;
        printf("resuming from %s at step %ld%s\n", path.c_str(), start_step,
               resharded ? (" (saved by " + std::to_string(s.shard_world) + " ranks, resharded for " +
                            std::to_string(comm.world) + ")").c_str() : "");
    } else {
        load_model_params(tc.model, convert_only ? 50257 : train.vocab_size, tc.seed, &cfg, &weights);
        ref_hash = model_hash(cfg, weights.data(), weights.size());
    }
    print_model(cfg);
    if (convert_only) {
        export_hf_or_die(tc.export_hf, cfg, weights.data(), tc.model);
        return 0;
    }
    check_vocabulary(train, tc.train_file, cfg);
    const int T = tc.seq_len > 0 ? tc.seq_len : cfg.max_seq_len;
    std::string too_long = check_seq_len(T, cfg, "--seq-len " + std::to_string(T));
    if (!too_long.empty()) fatal(too_long);
    const int B = tc.micro_rows;
    const bool has_val = tc.val_file != "none" && !tc.val_file.empty();
    PairSet val = load_validation(tc, cfg, B, T, layout);

    LoaderConfig lc;
    lc.B = B; lc.T = T; lc.pairs_per_step = tc.pairs_per_step; lc.layout = layout;
    lc.packing = tc.packing; lc.shuffle = tc.shuffle; lc.seed = tc.seed;
    lc.skip_overlong = tc.skip_overlong;
    lc.rank = comm.rank; lc.world = comm.world;
    DataLoader loader;
    if (!loader.init(&train, lc, &err)) fatal(tc.train_file + ": " + err);
    if (loader.n_overlong > 0)
        printf("note: %lld training pairs do not fit T=%d; they are skipped and counted (--overlong skip)\n",
               (long long)loader.n_overlong, T);
    printf("data: %zu training pairs (%s), %zu validation pairs; layout %s, packing %s, B=%d T=%d, %d pairs/step\n",
           train.size(), tc.train_file.c_str(), val.size(), tc.prefix_sharing ? "prefix-shared" : "baseline",
           tc.packing ? "on" : "off", B, T, tc.pairs_per_step);

    // the model and the optimizer state: all of it, or this rank's ZeRO-1 shard
    model.setup(cfg, B, T, &weights);
    model.init_optimizer(tc, &adam_m, &adam_v);

    // reference log-probs, from the initial weights (on resume: checked against the cache's key)
    SetPass pass;
    pass.layout = layout; pass.packing = tc.packing; pass.B = B; pass.T = T;
    pass.skip_overlong = tc.skip_overlong; pass.quiet = tc.quiet;
    std::string prefix = tc.ref_cache.empty() ? tc.out_dir + "/ref_logps" : tc.ref_cache;
    RefCache ref_train, ref_val;
    ref_train = reference_logps(comm, model, ref_hash, train, prefix + "_train.bin", pass, start_step > 0);
    if (has_val) ref_val = reference_logps(comm, model, ref_hash, val, prefix + "_val.bin", pass, start_step > 0);

    JsonlLog log;  // rank 0's
    if (comm.rank == 0 && !log.open(tc.out_dir + "/log.jsonl", start_step > 0, start_step, &err)) fatal(err);
    // greedy exact match on the first n_exact validation prompts (default: all, for the sort task),
    // on the CPU from the fp32 weights
    const long n_exact = !has_val ? 0 : tc.exact_match >= 0 ? tc.exact_match : is_synthetic_sort_task(val) ? (long)val.size() : 0;
    auto run_eval = [&](long step) {
        if (!has_val) return;
        double t0 = now_seconds();
        PairMetrics m = evaluate_logps(set_logps(comm, model, val, pass, "eval"), ref_val, tc.loss);
        const float* w = n_exact > 0 ? model.host_weights() : nullptr;
        const double exact = n_exact > 0 && comm.rank == 0 ? model.exact_match_rate(w, val, n_exact) : 0.0;
        printf("eval  step %5ld | loss %.4f | rewards/accuracies %.3f | rewards/margins %.4f%s | %.1fs\n",
               step, m.mean(m.loss), m.accuracy(), m.margin(),
               n_exact > 0 ? (" | exact_match " + std::to_string(exact).substr(0, 5)).c_str() : "", now_seconds() - t0);
        log.write("\"step\": " + std::to_string(step) + ", " + m.json("eval_") +
                  (n_exact > 0 ? ", \"eval_exact_match\": " + std::to_string(exact) : ""));
    };
    bool saved_checkpoint = start_step > 0;  // resumed: the checkpoint it resumed from is a good one
    auto save = [&](long step) {
        CheckpointState s;
        s.cfg = cfg; s.step = step; s.seed = tc.seed; s.ref_model_hash = ref_hash;
        s.train_data_hash = train.content_hash;
        const float* w = model.host_weights();
        if (comm.rank == 0) s.params.assign(w, w + num_parameters(cfg));  // only rank 0 writes the weights
        bool ok = true;
        if (sharded) {  // every rank its shard, rank 0 the weights, then the manifest (common/checkpoint.h)
            model.moments(&s.m, &s.v, &s.moments_begin);
            ok = save_checkpoint_sharded(comm, ckpt_path, s, &err);
        } else if (comm.rank == 0) {  // every rank holds all the moments: rank 0 writes one file
            model.moments(&s.m, &s.v, &s.moments_begin);
            ok = save_checkpoint(ckpt_path, s, &err);
        }
        if (!ok) fatal(err);
        saved_checkpoint = true;
    };
    // a few validation prompts, continued greedily every --sample-every steps (on the CPU, from
    // the fp32 weights)
    TokenPrinter printer;
    printer.init(cfg.vocab_size);
    auto run_samples = [&](long step) {
        const float* w = model.host_weights();
        if (comm.rank > 0) return;
        const PairSet& src = has_val ? val : train;
        const int eos = src.pairs[0].C > 0 ? src.chosen(0)[src.pairs[0].C - 1] : -1;  // the responses' end token
        for (int i = 0; i < tc.sample_prompts && i < (int)src.size(); i++) {
            std::vector<int> prompt(src.prompt(i), src.prompt(i) + src.pairs[i].P);
            std::vector<int> text = model.greedy_continuation(w, prompt, tc.sample_tokens, eos);
            printf("sample step %ld | %s -> %s\n", step, printer.show(prompt).c_str(), printer.show(text).c_str());
        }
    };
    if (start_step == 0) run_eval(0);
    if (start_step == 0 && tc.sample_every > 0) run_samples(0);

    // the training loop
    std::vector<Batch> batches;
    double time_total = 0;
    long timed_steps = 0;
    for (long step = start_step; step < tc.steps; step++) {
        double t0 = now_seconds();
        const std::clock_t cpu0 = std::clock();  // process CPU time, all threads: cpu_ms
        if (!loader.step_batches(step, &batches, &err)) fatal(tc.train_file + ": " + err);
        const int pairs = loader.step_pairs_used(step);  // the loss is the mean over these (all ranks)
        if (pairs == 0) fatal("step " + std::to_string(step + 1) + " has no pairs (all skipped as over-long)");
        model.zero_grad();
        PairMetrics m;
        for (size_t k = 0; k < batches.size(); k++) {
            const Batch& b = batches[k];
            std::vector<double> rc(b.n_slots()), rr(b.n_slots());
            for (int s = 0; s < b.n_slots(); s++) {
                rc[s] = ref_train.chosen[b.pair_ids[s]];
                rr[s] = ref_train.rejected[b.pair_ids[s]];
            }
            const bool last = k + 1 == batches.size();
            for (const PairResult& r : model.dpo_step(b, rc, rr, tc.loss, 1.0 / pairs, last)) m.add(r, tc.loss.beta);
        }
        // the ranks' gradients and metric sums summed (one rank: nothing to sum), global norm
        StepPartial mine;
        mine.metrics = m;
        mine.real_tokens = loader.last_real_tokens; mine.padded_tokens = loader.last_padded_tokens;
        int bad_rank = -1;
        const StepPartial all = model.reduce(mine, &bad_rank);
        m = all.metrics;
        const double grad_norm = std::sqrt(all.shard_sumsq);
        const double loss = m.mean(m.loss);
        std::string stop;  // every rank finds the same here: rank 0 says it once, all return 1
        if (bad_rank >= 0 && comm.world > 1)
            stop = "step " + std::to_string(step + 1) + ": rank " + std::to_string(bad_rank) +
                   "'s loss or gradient is not finite; every rank stops; the last good checkpoint is " + ckpt_path;
        else if (!std::isfinite(loss) || !std::isfinite(grad_norm))
            stop = "step " + std::to_string(step + 1) + ": the loss or the gradient is not finite (loss " +
                   std::to_string(loss) + ", grad norm " + std::to_string(grad_norm) +
                   "); lower --lr or check the data; " +
                   (saved_checkpoint ? "the last good checkpoint is " + ckpt_path : std::string("no checkpoint was written yet"));
        if (!stop.empty()) {
            if (comm.rank == 0) fprintf(stderr, "error: %s\n", stop.c_str());
            fflush(stdout);
            fflush(stderr);
            return 1;
        }
        // clipping, AdamW (and, with several ranks, whatever makes their weights equal again)
        const float clip = (tc.grad_clip > 0 && grad_norm > tc.grad_clip) ? (float)(tc.grad_clip / grad_norm) : 1.0f;
        const float lr = learning_rate_at(tc, step);
        model.update(tc, lr, clip, step + 1);
        const double dt = now_seconds() - t0;
        if (step > start_step) { time_total += dt; timed_steps++; }  // the first step warms up
        const long done = step + 1;
        StepStats st;
        st.done = done; st.steps = tc.steps; st.grad_norm = grad_norm; st.lr = lr; st.seconds = dt;
        st.cpu_seconds = (double)(std::clock() - cpu0) / CLOCKS_PER_SEC;
        st.avg_seconds = timed_steps ? time_total / timed_steps : dt;
        st.pairs = pairs; st.tokens = (long)all.real_tokens;  // all ranks
        const double all_tokens = all.real_tokens + all.padded_tokens;
        st.padding = all_tokens > 0 ? all.padded_tokens / all_tokens : 0.0;
        st.epoch = loader.epoch_progress(done);
        std::string record_extra, line_extra;
        if constexpr (has_step_extras<Backend>::value) model.step_extras(batches, dt, &record_extra, &line_extra);
        log.write(step_record(st, m) + record_extra);
        if (done % tc.log_every == 0 || done == tc.steps || done == start_step + 1) print_step_line(st, m, line_extra);
        if (tc.eval_every > 0 && done % tc.eval_every == 0 && done != tc.steps) run_eval(done);
        if (tc.sample_every > 0 && (done % tc.sample_every == 0 || done == tc.steps)) run_samples(done);
        if (tc.checkpoint_every > 0 && done % tc.checkpoint_every == 0 && done != tc.steps) save(done);
        if (done == tc.stop_after && done != tc.steps) {
            save(done);
            printf("stopped after step %ld (--stop-after); continue with --resume\n", done);
            return 0;
        }
    }
    if (start_step < tc.steps || tc.steps == 0) run_eval(tc.steps);
    if (tc.final_checkpoint) {
        save(std::max(tc.steps, start_step));
        printf("checkpoint: %s\n", ckpt_path.c_str());
    } else {
        printf("checkpoint: none at the end (--final-checkpoint 0)\n");
    }
    if (!tc.export_hf.empty()) {
        const float* w = model.host_weights();
        if (comm.rank == 0) export_hf_or_die(tc.export_hf, cfg, w, "the trained model");
    }
    return 0;
}
