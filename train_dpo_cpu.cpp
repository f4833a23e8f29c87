// train_dpo_cpu: DPO training of GPT-2 on the CPU (fp32, OpenMP, a BLAS for the matrix
// products). The executable specification of the math that the GPU trainer is tested against,
// and the trainer for machines without a GPU.
//
//   ./train_dpo_cpu                       the bundled synthetic task with a tiny model
//   ./train_dpo_cpu --train T.bin --val V.bin --model gpt2/ --out run1 ...
//   ./train_dpo_cpu score --model M --data PAIRS.bin --out LOGPS.tsv
//   ./train_dpo_cpu sample --model M --prompt "TEXT"
//
// One optimizer step: the dataloader gives this step's pairs packed into micro-batches
// (data/dataloader.h); for each micro-batch the model runs forward, the DPO loss of every pair
// is taken against the cached reference log-probs, and the backward accumulates gradients
// scaled by 1 / pairs-per-step; then clip by global norm and AdamW.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/checkpoint.h"
#include "common/demo_task.h"
#include "cpu/exact_match.h"
#include "common/model_io.h"
#include "common/ref_cache.h"
#include "common/train_config.h"
#include "common/train_log.h"
#include "cpu/adamw.h"
#include "cpu/data_parallel.h"
#include "cpu/dpo.h"
#include "cpu/sample.h"
#include "cpu/sample_command.h"
#include "common/trainer.h"
#include "data/dataloader.h"
#include "data/pairfile.h"
#include "tokenizer/gpt2_tokenizer.h"

// This process's place in a data-parallel job (rank 0 of 1 unless started by mpirun).
static cpu::MpiComm g_comm;

// An error ends every rank of the job (MPI_Abort), naming the rank that hit it: the handler of
// common/trainer.h's fatal().
static void fatal_on_rank(const std::string& msg) {
    if (g_comm.world > 1) fprintf(stderr, "error: rank %d of %d: %s\n", g_comm.rank, g_comm.world, msg.c_str());
    else fprintf(stderr, "error: %s\n", msg.c_str());
    g_comm.abort(1);
}

// An error every rank finds at the same point (after a collective): rank 0 reports it once and
// every rank stops cleanly.
[[noreturn]] static void fatal_all_ranks(const std::string& msg) {
    if (g_comm.rank == 0) fprintf(stderr, "error: %s\n", msg.c_str());
    fflush(stdout);
    fflush(stderr);
    g_comm.finish();
    exit(1);
}

static void set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
    openblas_set_num_threads(omp_get_max_threads());
}

// --model (common/trainer.h's load_model_params) into the CPU model.
static void load_model(const std::string& spec, int data_vocab, uint64_t seed, cpu::GPT2<float>* model) {
    ModelConfig cfg;
    std::vector<float> params;
    load_model_params(spec, data_vocab, seed, &cfg, &params);
    model->setup(cfg);
    std::copy(params.begin(), params.end(), model->params.begin());
}

// With skip_overlong, pairs longer than a row are left out (their n_chosen stays 0).
// Several ranks split the set by whole packing chunks (so every pair is packed exactly as by one
// process and gets the same bits) and all-gather the results.
// progress (may be null) is told the pairs done after each micro-batch.
static SetLogps compute_set_logps(cpu::GPT2<float>& model, const PairSet& set, Layout layout,
                                  bool packing, int B, int T, bool skip_overlong, Progress* progress) {
    std::vector<Batch> batches;
    std::string err;
    std::vector<int64_t> bounds(g_comm.world + 1);  // pairs [bounds[r], bounds[r+1]) on rank r
    const int64_t n_chunks = ((int64_t)set.size() + kEvalChunk - 1) / kEvalChunk;
    for (int r = 0; r < g_comm.world; r++) {
        int64_t lo, hi;
        rank_slice(n_chunks, r, g_comm.world, &lo, &hi);
        bounds[r] = std::min((int64_t)set.size(), lo * kEvalChunk);
        bounds[r + 1] = std::min((int64_t)set.size(), hi * kEvalChunk);
    }
    if (!eval_batches(set, B, T, layout, packing, &batches, &err, skip_overlong, nullptr,
                      bounds[g_comm.rank], bounds[g_comm.rank + 1]))
        fatal(err);
    SetLogps out;
    out.chosen.assign(set.size(), 0); out.rejected.assign(set.size(), 0);
    out.n_chosen.assign(set.size(), 0); out.n_rejected.assign(set.size(), 0);
    long done = 0;
    for (const Batch& b : batches) {
        model.forward(b);
        // several ranks: rank 0's share, scaled to the whole set (the ranks advance together)
        done += b.n_slots();
        if (progress) progress->update((double)done * set.size() / std::max<int64_t>(1, bounds[g_comm.rank + 1] - bounds[g_comm.rank]));
        std::vector<PairLogps> lp = cpu::gather_pair_logps(model, b.n_slots());
        for (int s = 0; s < b.n_slots(); s++) {
            int64_t i = b.pair_ids[s];
            out.chosen[i] = lp[s].chosen; out.rejected[i] = lp[s].rejected;
            out.n_chosen[i] = lp[s].n_chosen; out.n_rejected[i] = lp[s].n_rejected;
        }
    }
    if (g_comm.world > 1) {
        std::vector<double> nc(out.n_chosen.begin(), out.n_chosen.end()), nr(out.n_rejected.begin(), out.n_rejected.end());
        for (std::vector<double>* v : {&out.chosen, &out.rejected, &nc, &nr}) g_comm.all_gather_pieces(v->data(), bounds);
        out.n_chosen.assign(nc.begin(), nc.end()); out.n_rejected.assign(nr.begin(), nr.end());
    }
    return out;
}

// The reference log-probs of a set: from the cache file if it belongs to this model and data,
// else computed (forward only) and written.
static RefCache reference_logps(cpu::GPT2<float>& model, uint64_t ref_hash, const PairSet& set,
                                const std::string& path, Layout layout, bool packing, int B, int T,
                                bool skip_overlong, bool quiet) {
    RefCache cache;
    bool found = false;
    std::string err;
    if (g_comm.rank == 0 && !load_ref_cache(path, ref_hash, set.content_hash, set.size(), &cache, &found, &err))
        fatal(err);
    cpu::broadcast_ref_cache(g_comm, &found, &cache);  // rank 0 alone reads and writes OUT
    if (found) {
        printf("reference log-probs: %s (cached, %zu pairs)\n", path.c_str(), set.size());
        return cache;
    }
    double t0 = now_seconds();
    Progress progress("reference log-probs", (double)set.size(), "pairs", quiet);
    SetLogps lp = compute_set_logps(model, set, layout, packing, B, T, skip_overlong, &progress);
    progress.finish();
    cache.model_hash = ref_hash; cache.data_hash = set.content_hash;
    cache.chosen = lp.chosen; cache.rejected = lp.rejected;
    if (g_comm.rank == 0 && !save_ref_cache(path, cache, &err)) fatal(err);
    printf("reference log-probs: computed for %zu pairs in %.1fs -> %s\n", set.size(),
           now_seconds() - t0, path.c_str());
    return cache;
}

static PairMetrics evaluate(cpu::GPT2<float>& model, const PairSet& set, const RefCache& ref,
                            const LossSpec& spec, Layout layout, bool packing, int B, int T,
                            bool skip_overlong, bool quiet) {
    Progress progress("eval", (double)set.size(), "pairs", quiet);
    SetLogps lp = compute_set_logps(model, set, layout, packing, B, T, skip_overlong, &progress);
    progress.finish();
    return evaluate_logps(lp, ref, spec);
}

// ----------------------------------------------------------------------------------------------
// score: log-probs of every pair under a model, as TSV

static int run_score(int argc, char** argv) {
    ScoreArgs a;
    if (!parse_score_args(argc, argv, &a)) return 0;  // --help
    set_threads(a.threads);
    PairSet set = load_pairs(a.data_path, "score");
    cpu::GPT2<float> model;
    load_model(a.model_path, set.vocab_size, 0, &model);
    check_vocabulary(set, a.data_path, model.cfg);
    const int T = a.T == 0 ? model.cfg.max_seq_len : a.T;
    std::string too_long = check_seq_len(T, model.cfg, "score: --seq-len " + std::to_string(T));
    if (!too_long.empty()) fatal(too_long);
    Progress progress("score", (double)set.size(), "pairs", a.quiet);
    SetLogps lp = compute_set_logps(model, set, a.sharing ? LAYOUT_SHARED : LAYOUT_BASELINE, a.packing, a.B, T,
                                    false, &progress);
    progress.finish();
    write_score_tsv(a.out_path, lp);
    return 0;
}

// ----------------------------------------------------------------------------------------------

static int run_train(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") { print_usage(argv[0]); return 0; }
    }
    TrainConfig tc;
    std::string err;
    bool demo;
    std::vector<char*> args = with_demo_flags(argc, argv, &demo);  // no --train: the demo's flags first
    if (!parse_train_args((int)args.size(), args.data(), 1, &tc, &err)) fatal(err);
    if (!check_mpi_only_launch(tc.launch, g_comm.active, g_comm.rank, g_comm.world, process_environment, &err))
        fatal(err);  // the rank flags and environment, never silently ignored
    // data parallel: rank 0 alone prints; by default the ranks of a machine share its cores
    if (g_comm.rank > 0 && !freopen("/dev/null", "w", stdout)) fatal("cannot silence stdout");
    if (tc.threads == 0 && g_comm.local_world > 1) tc.threads = std::max(1, omp_get_num_procs() / g_comm.local_world);
    if (g_comm.world > 1)
        printf("data parallel: %d ranks, %s\n", g_comm.world, tc.zero ? "ZeRO-1 (sharded AdamW state)" : "all-reduce");
    if (demo) printf("demo: the bundled sort task; its flags, before yours: %s\n", join_flags(demo_task_flags()).c_str());
    set_threads(tc.threads);
    std::error_code ec;
    std::filesystem::create_directories(tc.out_dir, ec);
    if (ec) fatal("cannot create output directory " + tc.out_dir + ": " + ec.message());
    const Layout layout = tc.prefix_sharing ? LAYOUT_SHARED : LAYOUT_BASELINE;

    // data, model, optimizer state
    const bool convert_only = tc.steps == 0 && !tc.export_hf.empty();
    PairSet train;
    if (!convert_only) train = load_pairs(tc.train_file, "training");
    cpu::GPT2<float> model;
    std::vector<float> adam_m, adam_v;
    long start_step = 0;
    uint64_t ref_hash = 0;
    const std::string ckpt_path = tc.out_dir + "/checkpoint.bin";
    const bool sharded = tc.zero && g_comm.world > 1;  // ZeRO-1: each rank keeps a shard of the moments
    if (!tc.resume.empty()) {
        std::string path = tc.resume == "auto" ? ckpt_path : tc.resume;
        // the moments this rank keeps: its ZeRO-1 shard with several ranks, else all, whatever
        // world size wrote the checkpoint (a sharded one is re-cut when the world size changed)
        CheckpointState s;
        if (!load_checkpoint(path, &s, &err, sharded ? g_comm.rank : 0, sharded ? g_comm.world : 1))
            fatal(err + " (cannot resume)");
        if (s.train_data_hash != train.content_hash)
            fatal(path + ": this checkpoint was trained on other data than " + tc.train_file +
                  "; resume with the same --train, or start a new run");
        if (!s.has_moments) fatal(path + ": has no optimizer state; it can be a --model, not resumed");
        model.setup(s.cfg);
        std::copy(s.params.begin(), s.params.end(), model.params.begin());
        adam_m = std::move(s.m); adam_v = std::move(s.v);
        start_step = s.step; ref_hash = s.ref_model_hash;
        tc.seed = s.seed;
        printf("resuming from %s at step %ld%s\n", path.c_str(), start_step,
               s.shard_world == 0 || s.shard_world == g_comm.world || !sharded ? ""
               : (" (saved by " + std::to_string(s.shard_world) + " ranks, resharded for " +
                  std::to_string(g_comm.world) + ")").c_str());
    } else {
        load_model(tc.model, convert_only ? 50257 : train.vocab_size, tc.seed, &model);
        ref_hash = model_hash(model.cfg, model.params.data(), model.params.size());
    }
    const ModelConfig& cfg = model.cfg;
    print_model(cfg);
    if (convert_only) {
        export_hf_or_die(tc.export_hf, cfg, model.params.data(), tc.model);
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
    lc.rank = g_comm.rank; lc.world = g_comm.world;
    DataLoader loader;
    if (!loader.init(&train, lc, &err)) fatal(tc.train_file + ": " + err);
    if (loader.n_overlong > 0)
        printf("note: %lld training pairs do not fit T=%d; they are skipped and counted (--overlong skip)\n",
               (long long)loader.n_overlong, T);
    printf("data: %zu training pairs (%s), %zu validation pairs; layout %s, packing %s, B=%d T=%d, %d pairs/step\n",
           train.size(), tc.train_file.c_str(), val.size(), tc.prefix_sharing ? "prefix-shared" : "baseline",
           tc.packing ? "on" : "off", B, T, tc.pairs_per_step);

    // reference log-probs, from the initial weights (on resume: checked against the cache's key)
    std::string prefix = tc.ref_cache.empty() ? tc.out_dir + "/ref_logps" : tc.ref_cache;
    RefCache ref_train, ref_val;
    {
        auto get = [&](const PairSet& set, const std::string& path) {
            if (start_step == 0)
                return reference_logps(model, ref_hash, set, path, layout, tc.packing, B, T, tc.skip_overlong, tc.quiet);
            // resumed: the weights are no longer the initial ones, so the first run's cache must exist
            RefCache c;
            bool found = false;
            if (g_comm.rank == 0 && !load_ref_cache(path, ref_hash, set.content_hash, set.size(), &c, &found, &err))
                fatal(err);
            if (g_comm.rank == 0 && !found)
                fatal(path + " is missing: a resumed run needs the reference cache of its first run");
            cpu::broadcast_ref_cache(g_comm, &found, &c);
            return c;
        };
        ref_train = get(train, prefix + "_train.bin");
        if (has_val) ref_val = get(val, prefix + "_val.bin");
    }

    // the optimizer state: all of it, or this rank's ZeRO-1 shard (cpu/data_parallel.h)
    cpu::DataParallel dp;
    if (!dp.init(&g_comm, cfg, tc.zero, &adam_m, &adam_v, &err)) fatal(err);

    JsonlLog log;  // rank 0's
    if (g_comm.rank == 0 && !log.open(tc.out_dir + "/log.jsonl", start_step > 0, start_step, &err)) fatal(err);
    // greedy exact match on the first n_exact validation prompts (default: all, for the sort task)
    const long n_exact = !has_val ? 0 : tc.exact_match >= 0 ? tc.exact_match : is_synthetic_sort_task(val) ? (long)val.size() : 0;
    auto run_eval = [&](long step) {
        if (!has_val) return;
        double t0 = now_seconds();
        PairMetrics m = evaluate(model, val, ref_val, tc.loss, layout, tc.packing, B, T, tc.skip_overlong, tc.quiet);
        const double exact = n_exact > 0 ? cpu::exact_match_rate(cfg, model.params.data(), val, n_exact) : 0.0;
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
        if (g_comm.rank == 0) s.params = model.params;  // only rank 0 writes the weights
        std::swap(s.m, dp.m);  // lent to the save, not copied
        std::swap(s.v, dp.v);
        s.moments_begin = dp.moments_begin();
        bool ok = true;
        if (dp.sharded())  // every rank its shard, rank 0 the weights, then the manifest (common/checkpoint.h)
            ok = save_checkpoint_sharded(g_comm, ckpt_path, s, &err);
        else if (g_comm.rank == 0)  // every rank holds all the moments: rank 0 writes one file
            ok = save_checkpoint(ckpt_path, s, &err);
        std::swap(s.m, dp.m);
        std::swap(s.v, dp.v);
        if (!ok) fatal(err);
        saved_checkpoint = true;
    };
    // a few validation prompts, continued greedily every --sample-every steps
    TokenPrinter printer;
    printer.init(cfg.vocab_size);
    auto run_samples = [&](long step) {
        if (g_comm.rank > 0) return;
        const PairSet& src = has_val ? val : train;
        cpu::SampleSettings ss;
        ss.greedy = true;
        ss.max_new_tokens = tc.sample_tokens;
        ss.eos_token = src.pairs[0].C > 0 ? src.chosen(0)[src.pairs[0].C - 1] : -1;  // the responses' end token
        cpu::Sampler sampler(cfg, model.params.data(), ss);
        for (int i = 0; i < tc.sample_prompts && i < (int)src.size(); i++) {
            std::vector<int> prompt(src.prompt(i), src.prompt(i) + src.pairs[i].P);
            cpu::SampleResult r = sampler.generate(prompt);
            printf("sample step %ld | %s -> %s\n", step, printer.show(prompt).c_str(), printer.show(r.tokens).c_str());
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
        for (const Batch& b : batches) {
            std::vector<double> rc(b.n_slots()), rr(b.n_slots());
            for (int s = 0; s < b.n_slots(); s++) {
                rc[s] = ref_train.chosen[b.pair_ids[s]];
                rr[s] = ref_train.rejected[b.pair_ids[s]];
            }
            for (const PairResult& r : cpu::dpo_forward_backward(model, b, rc, rr, tc.loss, 1.0 / pairs))
                m.add(r, tc.loss.beta);
        }
        // the ranks' gradients and metric sums summed (one rank: nothing to sum), global norm
        StepPartial mine;
        mine.metrics = m;
        mine.real_tokens = loader.last_real_tokens; mine.padded_tokens = loader.last_padded_tokens;
        const StepPartial all = dp.reduce(model.grads, mine);
        m = all.metrics;
        const double grad_norm = std::sqrt(all.shard_sumsq);
        const double loss = m.mean(m.loss);
        if (dp.bad_rank >= 0 && g_comm.world > 1)
            fatal_all_ranks("step " + std::to_string(step + 1) + ": rank " + std::to_string(dp.bad_rank) +
                  "'s loss or gradient is not finite; every rank stops; the last good checkpoint is " + ckpt_path);
        if (!std::isfinite(loss) || !std::isfinite(grad_norm))
            fatal_all_ranks("step " + std::to_string(step + 1) + ": the loss or the gradient is not finite (loss " +
                  std::to_string(loss) + ", grad norm " + std::to_string(grad_norm) +
                  "); lower --lr or check the data; " +
                  (saved_checkpoint ? "the last good checkpoint is " + ckpt_path : std::string("no checkpoint was written yet")));
        const float clip = (tc.grad_clip > 0 && grad_norm > tc.grad_clip) ? (float)(tc.grad_clip / grad_norm) : 1.0f;
        const float lr = learning_rate_at(tc, step);
        cpu::AdamWSettings adamw;
        adamw.lr = lr; adamw.beta1 = tc.beta1; adamw.beta2 = tc.beta2; adamw.eps = tc.adam_eps;
        adamw.weight_decay = tc.weight_decay;
        dp.update(model.params.data(), model.grads, clip, adamw, step + 1);  // and the ZeRO-1 all-gather
        const double dt = now_seconds() - t0;
        if (step > start_step) { time_total += dt; timed_steps++; }  // the first step warms up
        const long done = step + 1;
        const long tokens = (long)all.real_tokens;  // all ranks
        const double tok_s = tokens / dt;
        const double padding = all.real_tokens + all.padded_tokens > 0
                                   ? all.padded_tokens / (all.real_tokens + all.padded_tokens) : 0.0;
        char rec[512];
        snprintf(rec, sizeof rec,
                 "\"step\": %ld, %s, \"grad_norm\": %.9g, \"learning_rate\": %.9g, \"step_ms\": %.3f, "
                 "\"cpu_ms\": %.3f, \"pairs\": %d, \"tokens\": %ld, \"tokens_per_sec\": %.1f, \"padding\": %.4f, \"epoch\": %.4f",
                 done, m.json("").c_str(), grad_norm, lr, dt * 1000, 1000.0 * (std::clock() - cpu0) / CLOCKS_PER_SEC, pairs, tokens, tok_s,
                 padding, loader.epoch_progress(done));
        // m.json starts with "loss"; the record is complete
        log.write(rec);
        if (done % tc.log_every == 0 || done == tc.steps || done == start_step + 1) {
            double avg = timed_steps ? time_total / timed_steps : dt;
            printf("step %5ld/%ld | loss %.4f | acc %.3f | margin %.4f | norm %.3f | lr %.2e | %.1f ms | %.0f tok/s | eta %s\n",
                   done, tc.steps, loss, m.accuracy(), m.margin(), grad_norm, lr, dt * 1000, tok_s,
                   format_duration(avg * (tc.steps - done)).c_str());
            fflush(stdout);
        }
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
    save(std::max(tc.steps, start_step));
    printf("checkpoint: %s\n", ckpt_path.c_str());
    if (!tc.export_hf.empty()) export_hf_or_die(tc.export_hf, cfg, model.params.data(), "the trained model");
    return 0;
}

int main(int argc, char** argv) {
    fatal_handler = fatal_on_rank;
    if (argc > 1 && std::string(argv[1]) == "score") return run_score(argc, argv);
    if (argc > 1 && std::string(argv[1]) == "sample") return run_sample(argc, argv);
    g_comm.start(&argc, &argv);  // MPI, when started by mpirun
    int status = run_train(argc, argv);
    g_comm.finish();
    return status;
}
