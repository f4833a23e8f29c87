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
// scaled by 1 / pairs-per-step; then clip by global norm and AdamW. The driver of all that
// (flags, data, reference pass, eval, checkpoints, the step loop) is common/train_loop.h, shared
// with the GPU trainer; this file is its CPU backend: cpu::GPT2 and, under mpirun,
// cpu::DataParallel over cpu::MpiComm.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/train_loop.h"
#include "common/trainer.h"
#include "cpu/adamw.h"
#include "cpu/data_parallel.h"
#include "cpu/dpo.h"
#include "cpu/exact_match.h"
#include "cpu/gpt2.h"
#include "cpu/mpi_comm.h"
#include "cpu/sample.h"
#include "cpu/sample_command.h"

// This process's place in a data-parallel job (rank 0 of 1 unless started by mpirun).
static cpu::MpiComm g_comm;

// An error ends every rank of the job (MPI_Abort), naming the rank that hit it: the handler of
// common/trainer.h's fatal().
static void fatal_on_rank(const std::string& msg) {
    if (g_comm.world > 1) fprintf(stderr, "error: rank %d of %d: %s\n", g_comm.rank, g_comm.world, msg.c_str());
    else fprintf(stderr, "error: %s\n", msg.c_str());
    g_comm.abort(1);
}

// The CPU backend of common/train_loop.h (its top comment lists these members): the fp32 model,
// and the optimizer step of cpu/data_parallel.h (all-reduce or ZeRO-1 over MPI; one process:
// plain AdamW).
struct CpuBackend {
    cpu::MpiComm* comm = nullptr;  // g_comm for training; score runs alone
    cpu::GPT2<float> model;
    cpu::DataParallel dp;

    // threads = 0: OpenMP's default, or the machine's cores shared by the ranks running on it
    void start(const TrainConfig& tc) {
        int threads = tc.threads;
        if (threads == 0 && comm && comm->local_world > 1)
            threads = std::max(1, omp_get_num_procs() / comm->local_world);
        if (threads > 0) omp_set_num_threads(threads);
        openblas_set_num_threads(omp_get_max_threads());
    }
    void setup(const ModelConfig& cfg, int B, int T, std::vector<float>* weights) {
        model.setup(cfg);
        std::copy(weights->begin(), weights->end(), model.params.begin());
        std::vector<float>().swap(*weights);
    }
    void init_optimizer(const TrainConfig& tc, std::vector<float>* m, std::vector<float>* v) {
        std::string err;
        if (!dp.init(comm, model.cfg, tc.zero, m, v, &err)) fatal(err);
    }
    std::vector<PairLogps> batch_logps(const Batch& b) {
        model.forward(b);
        return cpu::gather_pair_logps(model, b.n_slots());
    }
    void zero_grad() { model.zero_grad(); }
    // last: unused (reduce sums the gradients after the backward)
    std::vector<PairResult> dpo_step(const Batch& b, const std::vector<double>& rc, const std::vector<double>& rr,
                                     const LossSpec& spec, double scale, bool last) {
        return cpu::dpo_forward_backward(model, b, rc, rr, spec, scale);
    }
    StepPartial reduce(StepPartial mine, int* bad_rank) {
        StepPartial all = dp.reduce(model.grads, mine);
        *bad_rank = dp.bad_rank;
        return all;
    }
    void update(const TrainConfig& tc, float lr, float clip, long t) {
        cpu::AdamWSettings adamw;
        adamw.lr = lr; adamw.beta1 = tc.beta1; adamw.beta2 = tc.beta2; adamw.eps = tc.adam_eps;
        adamw.weight_decay = tc.weight_decay;
        dp.update(model.params.data(), model.grads, clip, adamw, t);  // and the ZeRO-1 all-gather
    }
    const float* host_weights() { return model.params.data(); }  // every rank has all of them
    void moments(std::vector<float>* m, std::vector<float>* v, size_t* begin) {
        *m = dp.m;
        *v = dp.v;
        *begin = dp.moments_begin();
    }
    // greedy generation on the host (cpu/sample.h, cpu/exact_match.h)
    double exact_match_rate(const float* w, const PairSet& set, long n) {
        return cpu::exact_match_rate(model.cfg, w, set, n);
    }
    std::vector<int> greedy_continuation(const float* w, const std::vector<int>& prompt, int max_new_tokens, int eos) {
        return cpu::greedy_continuation(model.cfg, w, prompt, max_new_tokens, eos);
    }
};

int main(int argc, char** argv) {
    fatal_handler = fatal_on_rank;
    CpuBackend backend;
    if (argc > 1 && std::string(argv[1]) == "score") return score_loop(argc, argv, backend);
    if (argc > 1 && std::string(argv[1]) == "sample") return run_sample(argc, argv);
    g_comm.start(&argc, &argv);  // MPI, when started by mpirun
    TrainConfig tc;
    bool demo;
    int status = 0;
    if (parse_train_flags(argc, argv, &tc, &demo)) {
        std::string err;
        if (!check_mpi_only_launch(tc.launch, g_comm.active, g_comm.rank, g_comm.world, process_environment, &err))
            fatal(err);  // the rank flags and environment, never silently ignored
        backend.comm = &g_comm;
        status = train_loop(tc, demo, g_comm, backend);
    }
    g_comm.finish();
    return status;
}
