// Data parallelism of the CPU trainer's optimizer step over MPI (cpu/mpi_comm.h), with the
// ZeRO-1 partition of common/distributed.h. Every rank has run the forward and backward of its
// slice of the step's pairs, scaled by 1 / (pairs of the whole step), into its gradient buffer.
//   ZeRO-1 (default): reduce-scatter of the fp32 gradients; every rank computes the squared norm
//     of its shard, the ranks' sums make the global norm (so every rank clips by the same factor);
//     each rank runs AdamW on its shard of the parameters with the moments of its shard only;
//     then an all-gather of the parameters.
//   --zero 0: the gradients are all-reduced (the same reduce-scatter, then an all-gather of the
//     summed gradient) and every rank runs AdamW on all parameters with all moments.
// Both give bit-identical parameters: the same sums in the same order, the same norm (shard by
// shard, in rank order), the same element-wise update. The flat buffers (params, grads, m, v) are
//   [n] = [num_parameters(cfg)] in the layout of common/model_config.h.
#pragma once
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "common/distributed.h"
#include "common/model_config.h"
#include "cpu/adamw.h"
#include "cpu/mpi_comm.h"

namespace cpu {

// AdamW step t over the parameters [lo, hi) of the flat buffer; m, v and grads hold that range
// only (m[0] is parameter lo's). Weight decay per tensor as in adamw_update_model.
inline void adamw_update_range(const ModelConfig& cfg, float* params, float* m, float* v, const float* grads,
                               size_t lo, size_t hi, float grad_scale, const AdamWSettings& s, long t) {
    size_t sizes[NUM_PARAM_TENSORS], off = 0;
    param_sizes(cfg, sizes);
    for (int i = 0; i < NUM_PARAM_TENSORS; off += sizes[i], i++) {
        size_t a = std::max(lo, off), b = std::min(hi, off + sizes[i]);
        if (a >= b) continue;
        adamw_update(params + a, m + (a - lo), v + (a - lo), grads + (a - lo), b - a, grad_scale, s,
                     param_tensor_decays(i), t);
    }
}

struct DataParallel {
    MpiComm* comm = nullptr;
    ModelConfig cfg;
    ZeroShards shards;
    bool zero = true;               // ZeRO-1, else the plain all-reduce
    std::vector<float> m, v;        // AdamW moments: this rank's shard (ZeRO-1) or all n
    std::vector<float> grad_shard;  // this rank's shard of the summed gradient (several ranks)
    std::vector<double> partials;   // [world][StepPartial::SIZE]: every rank's numbers of the last step
    int bad_rank = -1;              // first rank whose loss or gradient was not finite, or -1

    // m_in, v_in: this rank's AdamW moments as common/checkpoint.h's load_checkpoint returns them
    // for this run (ZeRO-1 with several ranks: the shard ZeroShards(n, world) of this rank, else
    // all n), or empty for zeros; taken over. Returns false with *err when they do not fit, or the
    // model is too large for MPI's int counts.
    bool init(MpiComm* c, const ModelConfig& config, bool zero1, std::vector<float>* m_in,
              std::vector<float>* v_in, std::string* err) {
        comm = c; cfg = config; zero = zero1;
        const size_t n = num_parameters(cfg);
        if (comm->world > 1 && n >= (size_t)INT_MAX) {
            *err = std::to_string(n) + " parameters: over MPI the flat buffers must stay below 2^31 elements";
            return false;
        }
        shards = ZeroShards(n, comm->world);
        const size_t count = sharded() ? shards.count(comm->rank) : n;
        if (m_in->empty()) { m_in->assign(count, 0.0f); v_in->assign(count, 0.0f); }
        if (m_in->size() != count || v_in->size() != count) {
            *err = "rank " + std::to_string(comm->rank) + " was given " + std::to_string(m_in->size()) +
                   " AdamW moments, it keeps " + std::to_string(count);
            return false;
        }
        m.swap(*m_in);
        v.swap(*v_in);
        if (comm->world > 1) grad_shard.resize(shards.count(comm->rank));
        return true;
    }

    // ZeRO-1 over several ranks: each rank keeps only its shard of the moments.
    bool sharded() const { return zero && comm->world > 1; }
    // The first parameter whose moments m[0], v[0] are.
    size_t moments_begin() const { return sharded() ? shards.begin(comm->rank) : 0; }

    // After the backward: sums the ranks' gradients (ZeRO-1: this rank's shard into grad_shard;
    // else all of grads, in place) and the ranks' StepPartials (every rank gets the same sums).
    // Sets bad_rank. The global gradient norm is sqrt(result.shard_sumsq).
    StepPartial reduce(std::vector<float>& grads, StepPartial mine) {
        const int rank = comm->rank, world = comm->world;
        const size_t lo = shards.begin(rank), hi = shards.end(rank);
        const float* reduced = grads.data() + lo;  // this rank's shard of the summed gradient
        if (world > 1) {
            mine.grad_sumsq = sum_of_squares(grads.data(), grads.size());  // to name a rank with a NaN
            comm->reduce_scatter(grads.data(), shards, grad_shard.data());
            reduced = grad_shard.data();
            if (!zero) {
                std::copy(grad_shard.begin(), grad_shard.end(), grads.begin() + lo);
                comm->all_gather_shards(grads.data(), shards);
            }
        }
        mine.shard_sumsq = sum_of_squares(reduced, hi - lo);
        if (world == 1) mine.grad_sumsq = mine.shard_sumsq;
        double mine_v[StepPartial::SIZE];
        mine.to_doubles(mine_v);
        comm->all_gather(mine_v, StepPartial::SIZE, &partials);
        bad_rank = first_nonfinite_rank(partials, world);
        return sum_step_partials(partials, world);
    }

    // AdamW step t on the parameters this rank updates, then (ZeRO-1) the all-gather of the
    // parameters. grads: the buffer reduce() summed.
    void update(float* params, const std::vector<float>& grads, float grad_scale, const AdamWSettings& s, long t) {
        if (sharded()) {
            const size_t lo = shards.begin(comm->rank), hi = shards.end(comm->rank);
            adamw_update_range(cfg, params, m.data(), v.data(), grad_shard.data(), lo, hi, grad_scale, s, t);
            comm->all_gather_shards(params, shards);
        } else {
            adamw_update_range(cfg, params, m.data(), v.data(), grads.data(), 0, shards.n, grad_scale, s, t);
        }
    }
};

}  // namespace cpu
