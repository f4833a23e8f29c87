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
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/checkpoint.h"
#include "common/model_io.h"
#include "common/ref_cache.h"
#include "common/train_config.h"
#include "common/train_log.h"
#include "common/trainer.h"
#include "cpu/adamw.h"
#include "cpu/dpo.h"
#include "cpu/sample_command.h"
#include "data/dataloader.h"
#include "data/pairfile.h"
#include "tokenizer/gpt2_tokenizer.h"

static void set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
    openblas_set_num_threads(omp_get_max_threads());
}

// --model (common/trainer.h: load_model_params) into the CPU model.
static void load_model(const std::string& spec, int data_vocab, uint64_t seed, cpu::GPT2<float>* model) {
    ModelConfig cfg;
    std::vector<float> params;
    load_model_params(spec, data_vocab, seed, &cfg, &params);
    model->setup(cfg);
    std::copy(params.begin(), params.end(), model->params.begin());
}

// Log-probs of every pair of a set under the model, forward only, in dataset order.
// With skip_overlong, pairs longer than a row are left out (their n_chosen stays 0).
static SetLogps compute_set_logps(cpu::GPT2<float>& model, const PairSet& set, Layout layout,
                                  bool packing, int B, int T, bool skip_overlong) {
    std::vector<Batch> batches;
    std::string err;
    if (!eval_batches(set, B, T, layout, packing, &batches, &err, skip_overlong)) fatal(err);
    SetLogps out;
    out.chosen.assign(set.size(), 0); out.rejected.assign(set.size(), 0);
    out.n_chosen.assign(set.size(), 0); out.n_rejected.assign(set.size(), 0);
    for (const Batch& b : batches) {
        model.forward(b);
        std::vector<PairLogps> lp = cpu::gather_pair_logps(model, b.n_slots());
        for (int s = 0; s < b.n_slots(); s++) {
            int64_t i = b.pair_ids[s];
            out.chosen[i] = lp[s].chosen; out.rejected[i] = lp[s].rejected;
            out.n_chosen[i] = lp[s].n_chosen; out.n_rejected[i] = lp[s].n_rejected;
        }
    }
    return out;
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
    SetLogps lp = compute_set_logps(model, set, a.sharing ? LAYOUT_SHARED : LAYOUT_BASELINE, a.packing, a.B, T, false);
    write_score_tsv(a.out_path, lp);
    return 0;
}

// ----------------------------------------------------------------------------------------------

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "score") return run_score(argc, argv);
    if (argc > 1 && std::string(argv[1]) == "sample") return run_sample(argc, argv);
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") { print_usage(argv[0]); return 0; }
    }
    TrainConfig tc;
    std::string err;
    if (!parse_train_args(argc, argv, 1, &tc, &err)) fatal(err);
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
    if (!tc.resume.empty()) {
        std::string path = tc.resume == "auto" ? ckpt_path : tc.resume;
        CheckpointState s;
        if (!load_checkpoint(path, &s, &err)) fatal(err + " (cannot resume)");
        if (s.train_data_hash != train.content_hash)
            fatal(path + ": this checkpoint was trained on other data than " + tc.train_file +
                  "; resume with the same --train, or start a new run");
        if (s.m.empty()) fatal(path + ": has no optimizer state; it can be a --model, not resumed");
        model.setup(s.cfg);
        std::copy(s.params.begin(), s.params.end(), model.params.begin());
        adam_m = s.m; adam_v = s.v;
        start_step = s.step; ref_hash = s.ref_model_hash;
        tc.seed = s.seed;
        printf("resuming from %s at step %ld\n", path.c_str(), start_step);
    } else {
        load_model(tc.model, convert_only ? 50257 : train.vocab_size, tc.seed, &model);
        ref_hash = model_hash(model.cfg, model.params.data(), model.params.size());
        adam_m.assign(model.params.size(), 0.0f);
        adam_v.assign(model.params.size(), 0.0f);
    }
    const ModelConfig& cfg = model.cfg;
    print_model(cfg);
    if (convert_only) {
        std::vector<std::string> warnings;
        if (!export_hf_model(tc.export_hf, cfg, model.params.data(), &err, "tokenizer/gpt2", &warnings)) fatal(err);
        for (auto& w : warnings) fprintf(stderr, "warning: %s\n", w.c_str());
        printf("exported %s as Hugging Face GPT-2 -> %s\n", tc.model.c_str(), tc.export_hf.c_str());
        return 0;
    }
    check_vocabulary(train, tc.train_file, cfg);
    PairSet val;
    const bool has_val = tc.val_file != "none" && !tc.val_file.empty();
    if (has_val) {
        val = load_pairs(tc.val_file, "validation");
        check_vocabulary(val, tc.val_file, cfg);
    }
    const int T = tc.seq_len > 0 ? tc.seq_len : cfg.max_seq_len;
    if (T > cfg.max_seq_len)
        fatal("--seq-len " + std::to_string(T) + " exceeds the model's context of " + std::to_string(cfg.max_seq_len));
    const int B = tc.micro_rows;
    if (has_val && tc.skip_overlong) {
        long n = 0;
        for (size_t i = 0; i < val.size(); i++) n += !pair_fits(val, (int64_t)i, B, T, layout);
        if (n > 0) printf("note: %ld validation pairs do not fit a row; evaluation skips them\n", n);
    }

    LoaderConfig lc;
    lc.B = B; lc.T = T; lc.pairs_per_step = tc.pairs_per_step; lc.layout = layout;
    lc.packing = tc.packing; lc.shuffle = tc.shuffle; lc.seed = tc.seed;
    lc.skip_overlong = tc.skip_overlong;
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
        SetForward forward = [&](const PairSet& set) {
            return compute_set_logps(model, set, layout, tc.packing, B, T, tc.skip_overlong);
        };
        ref_train = reference_logps(forward, ref_hash, train, prefix + "_train.bin", start_step > 0);
        if (has_val) ref_val = reference_logps(forward, ref_hash, val, prefix + "_val.bin", start_step > 0);
    }

    JsonlLog log;
    if (!log.open(tc.out_dir + "/log.jsonl", start_step > 0, start_step, &err)) fatal(err);
    auto run_eval = [&](long step) {
        if (!has_val) return;
        double t0 = now_seconds();
        PairMetrics m = evaluate_logps(compute_set_logps(model, val, layout, tc.packing, B, T, tc.skip_overlong), ref_val, tc.loss);
        printf("eval  step %5ld | loss %.4f | rewards/accuracies %.3f | rewards/margins %.4f | %.1fs\n",
               step, m.mean(m.loss), m.accuracy(), m.margin(), now_seconds() - t0);
        log.write("\"step\": " + std::to_string(step) + ", " + m.json("eval_"));
    };
    auto save = [&](long step) {
        CheckpointState s;
        s.cfg = cfg; s.step = step; s.seed = tc.seed; s.ref_model_hash = ref_hash;
        s.train_data_hash = train.content_hash;
        s.params = model.params; s.m = adam_m; s.v = adam_v;
        if (!save_checkpoint(ckpt_path, s, &err)) fatal(err);
    };
    // a few validation prompts, continued greedily every --sample-every steps
    TokenPrinter printer;
    printer.init(cfg.vocab_size);
    auto run_samples = [&](long step) {
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
        // global gradient norm, clipping, AdamW
        const double grad_norm = cpu::global_grad_norm(model.grads.data(), model.grads.size());
        const double loss = m.mean(m.loss);
        if (!std::isfinite(loss) || !std::isfinite(grad_norm))
            fatal("step " + std::to_string(step + 1) + ": the loss or the gradient is not finite (loss " +
                  std::to_string(loss) + ", grad norm " + std::to_string(grad_norm) +
                  "); lower --lr or check the data; the last good checkpoint is " + ckpt_path);
        const float clip = (tc.grad_clip > 0 && grad_norm > tc.grad_clip) ? (float)(tc.grad_clip / grad_norm) : 1.0f;
        const float lr = learning_rate_at(tc, step);
        cpu::AdamWSettings adamw;
        adamw.lr = lr; adamw.beta1 = tc.beta1; adamw.beta2 = tc.beta2; adamw.eps = tc.adam_eps;
        adamw.weight_decay = tc.weight_decay;
        cpu::adamw_update_model(cfg, model.params.data(), adam_m.data(), adam_v.data(), model.grads.data(),
                                clip, adamw, step + 1);
        const double dt = now_seconds() - t0;
        if (step > start_step) { time_total += dt; timed_steps++; }  // the first step warms up
        const long done = step + 1;
        StepStats st;
        st.done = done; st.steps = tc.steps; st.grad_norm = grad_norm; st.lr = lr; st.seconds = dt;
        st.avg_seconds = timed_steps ? time_total / timed_steps : dt;
        st.pairs = pairs; st.tokens = loader.last_real_tokens;
        st.padding = loader.padding_fraction(); st.epoch = loader.epoch_progress(done);
        log.write(step_record(st, m));
        if (done % tc.log_every == 0 || done == tc.steps || done == start_step + 1) print_step_line(st, m);
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
    if (!tc.export_hf.empty()) {
        std::vector<std::string> warnings;
        if (!export_hf_model(tc.export_hf, cfg, model.params.data(), &err, "tokenizer/gpt2", &warnings)) fatal(err);
        for (auto& w : warnings) fprintf(stderr, "warning: %s\n", w.c_str());
        printf("exported the trained model as Hugging Face GPT-2 -> %s\n", tc.export_hf.c_str());
    }
    return 0;
}
