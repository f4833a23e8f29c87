// Data parallelism without the communication library: which part of the work and of the
// optimizer state each rank owns, and how the ranks' partial sums make the global step. Host code
// shared by the CPU trainer (over MPI, cpu/mpi_comm.h) and the GPU trainer (over NCCL); it
// includes no MPI, NCCL or CUDA header.
//
// - Pairs: rank r of N takes the contiguous slice [r*P/N, (r+1)*P/N) of every step's P pairs
//   (data/dataloader.h, the same formula as rank_slice below), so the slices differ by at most one
//   pair. The loss is the mean over the global batch's pairs: each rank scales its backward by
//   1 / (pairs of the whole step) and the ranks' gradients are summed; each rank's metric sums
//   (common/metrics.h, sums over its pairs, i.e. its means weighted by its pair count) are summed
//   over the ranks in rank order and divided by the global pair count.
// - ZeRO-1: the flat fp32 parameter buffer of n elements is cut into N shards of `shard`
//   elements, shard = ceil(n / N) rounded up to ZERO_SHARD_ALIGN elements; rank r owns
//   [min(r*shard, n), min((r+1)*shard, n)). Every shard but the last ones is full; the last owner
//   gets the remainder and, when n is small against N*ZERO_SHARD_ALIGN, trailing ranks own nothing.
//   A library that needs equal pieces (NCCL's ReduceScatter, AllGather) pads the buffer to N*shard
//   elements (zeros past n). A rank keeps the AdamW moments of its shard only.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/metrics.h"

// 64 floats = 256 bytes: every shard starts on a 256-byte boundary of an aligned buffer (bf16 or
// fp32, vector loads, NCCL's preferred alignment).
static const size_t ZERO_SHARD_ALIGN = 64;

// The ZeRO-1 partition of a flat buffer of n elements over `world` ranks.
struct ZeroShards {
    size_t n = 0, shard = 0;
    int world = 1;

    ZeroShards() = default;
    ZeroShards(size_t n_elements, int n_ranks) : n(n_elements), world(n_ranks) {
        size_t per_rank = (n + world - 1) / world;
        shard = (per_rank + ZERO_SHARD_ALIGN - 1) / ZERO_SHARD_ALIGN * ZERO_SHARD_ALIGN;
    }
    size_t begin(int rank) const { size_t b = (size_t)rank * shard; return b < n ? b : n; }
    size_t end(int rank) const { size_t e = (size_t)(rank + 1) * shard; return e < n ? e : n; }
    size_t count(int rank) const { return end(rank) - begin(rank); }
    size_t padded() const { return shard * (size_t)world; }  // for equal-piece collectives
};

// Rank r's contiguous slice [*lo, *hi) of n items (pairs of a step, chunks of a pass).
inline void rank_slice(int64_t n, int rank, int world, int64_t* lo, int64_t* hi) {
    *lo = n * rank / world;
    *hi = n * (rank + 1) / world;
}

// ---------------------------------------------------------------------------------------------
// A step's per-rank numbers, exchanged as one small array of doubles: every rank sends its
// StepPartial, gathers everyone's and sums them in rank order (so every rank gets the same bits
// whatever the library's reduction algorithm), and can still see which rank went wrong.

struct StepPartial {
    PairMetrics metrics;        // sums over this rank's pairs
    double grad_sumsq = 0;      // sum of squares of this rank's own gradient (before the reduction)
    double shard_sumsq = 0;     // sum of squares of the reduced gradient on this rank's shard
    double real_tokens = 0;     // tokens of this rank's micro-batches, padding excluded
    double padded_tokens = 0;

    static const int SIZE = 15;
    void to_doubles(double* out) const {
        const PairMetrics& m = metrics;
        const double v[SIZE] = {m.pairs, m.loss, m.reward_chosen, m.reward_rejected, m.correct,
                                m.logp_chosen, m.logp_rejected, m.logit_chosen, m.logit_rejected,
                                m.tokens_chosen, m.tokens_rejected, grad_sumsq, shard_sumsq,
                                real_tokens, padded_tokens};
        for (int i = 0; i < SIZE; i++) out[i] = v[i];
    }
    void from_doubles(const double* v) {
        PairMetrics& m = metrics;
        m.pairs = v[0]; m.loss = v[1]; m.reward_chosen = v[2]; m.reward_rejected = v[3];
        m.correct = v[4]; m.logp_chosen = v[5]; m.logp_rejected = v[6]; m.logit_chosen = v[7];
        m.logit_rejected = v[8]; m.tokens_chosen = v[9]; m.tokens_rejected = v[10];
        grad_sumsq = v[11]; shard_sumsq = v[12]; real_tokens = v[13]; padded_tokens = v[14];
    }
};

// The sum over ranks (in rank order) of world StepPartials laid out as [world][SIZE] doubles.
inline StepPartial sum_step_partials(const std::vector<double>& all, int world) {
    std::vector<double> total(StepPartial::SIZE, 0.0);
    for (int r = 0; r < world; r++)
        for (int i = 0; i < StepPartial::SIZE; i++) total[i] += all[(size_t)r * StepPartial::SIZE + i];
    StepPartial s;
    s.from_doubles(total.data());
    return s;
}

// The first rank whose loss sum or own gradient is not finite, or -1: a NaN on one rank must stop
// every rank at the same step, with a message that names it.
inline int first_nonfinite_rank(const std::vector<double>& all, int world) {
    for (int r = 0; r < world; r++) {
        StepPartial p;
        p.from_doubles(&all[(size_t)r * StepPartial::SIZE]);
        if (!std::isfinite(p.metrics.loss) || !std::isfinite(p.grad_sumsq)) return r;
    }
    return -1;
}
