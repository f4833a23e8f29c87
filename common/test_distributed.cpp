// Tests of common/distributed.h: the ZeRO-1 shards cover the flat buffer exactly once, start
// aligned and are as even as the alignment allows, for small and GPT-2-sized buffers and 1 to 9
// ranks; rank slices cover a range and differ by at most one; the ranks' step sums and the rank
// that owns a NaN.
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "common/distributed.h"
#include "common/model_config.h"
#include "dev/test_util.h"

static ModelConfig gpt2_shape(int L, int NH, int C) {
    ModelConfig c;
    c.num_layers = L; c.num_heads = NH; c.channels = C; c.max_seq_len = 1024;
    c.vocab_size = 50257; c.padded_vocab_size = 50304;
    return c;
}

int main() {
    // sizes: empty, below one alignment unit, around it, odd, and GPT-2 124M and 1.5B
    std::vector<size_t> sizes = {0, 1, 63, 64, 65, 1000, 4099, num_parameters(gpt2_shape(12, 12, 768)),
                                 num_parameters(gpt2_shape(48, 25, 1600))};
    bool cover = true, aligned = true, even = true;
    char why[256] = "";
    for (size_t n : sizes) {
        for (int world = 1; world <= 9; world++) {
            ZeroShards s(n, world);
            size_t next = 0;
            for (int r = 0; r < world; r++) {
                if (s.begin(r) != next || s.end(r) < s.begin(r) || s.count(r) > s.shard) {
                    cover = false;
                    snprintf(why, sizeof why, "n=%zu world=%d rank %d: [%zu, %zu) after %zu", n, world, r,
                             s.begin(r), s.end(r), next);
                }
                if (s.count(r) > 0 && s.begin(r) % ZERO_SHARD_ALIGN != 0) aligned = false;
                next = s.end(r);
            }
            if (next != n || s.padded() < n || s.padded() % world != 0) {
                cover = false;
                snprintf(why, sizeof why, "n=%zu world=%d: shards end at %zu, padded %zu", n, world, next,
                         s.padded());
            }
            // no more padding than the alignment needs: shard - ceil(n / world) < ZERO_SHARD_ALIGN
            if (s.shard - (n + world - 1) / world >= ZERO_SHARD_ALIGN) even = false;
        }
    }
    test_report(cover, "zero_shards_cover_the_buffer_once", "%s", why);
    test_report(aligned, "zero_shards_start_aligned");
    test_report(even, "zero_shards_pad_less_than_the_alignment");
    {   // 124M over 8 ranks: every shard but the last is full, the last holds the rest
        size_t n = num_parameters(gpt2_shape(12, 12, 768));
        ZeroShards s(n, 8);
        bool ok = true;
        for (int r = 0; r < 7; r++) ok &= s.count(r) == s.shard;
        ok &= s.count(7) == n - 7 * s.shard && s.count(7) > 0;
        test_report(ok, "zero_shards_uneven_remainder_on_the_last_rank", "shard %zu, last %zu", s.shard, s.count(7));
    }

    // rank slices: contiguous, covering, sizes differ by at most one
    bool slices_ok = true;
    for (int64_t n : {0, 1, 5, 10, 31, 32, 1000}) {
        for (int world = 1; world <= 9; world++) {
            int64_t next = 0, smallest = n, largest = 0;
            for (int r = 0; r < world; r++) {
                int64_t lo, hi;
                rank_slice(n, r, world, &lo, &hi);
                slices_ok &= lo == next && hi >= lo;
                smallest = std::min(smallest, hi - lo); largest = std::max(largest, hi - lo);
                next = hi;
            }
            slices_ok &= next == n && largest - smallest <= 1;
        }
    }
    test_report(slices_ok, "rank_slices_cover_and_differ_by_at_most_one");

    // step sums: three ranks with 3, 3 and 4 pairs; the loss is the mean over all 10 pairs
    std::vector<double> all(3 * StepPartial::SIZE);
    const double pairs[3] = {3, 3, 4}, loss_sums[3] = {2.1, 1.5, 3.2}, sumsq[3] = {0.25, 0.5, 1.0};
    for (int r = 0; r < 3; r++) {
        StepPartial p;
        p.metrics.pairs = pairs[r]; p.metrics.loss = loss_sums[r]; p.shard_sumsq = sumsq[r];
        p.grad_sumsq = 1.0; p.real_tokens = 100 + r;
        p.to_doubles(&all[(size_t)r * StepPartial::SIZE]);
    }
    StepPartial total = sum_step_partials(all, 3);
    test_report(total.metrics.pairs == 10 && std::fabs(total.metrics.mean(total.metrics.loss) - 0.68) < 1e-12 &&
                    std::fabs(std::sqrt(total.shard_sumsq) - std::sqrt(1.75)) < 1e-12 && total.real_tokens == 303,
                "step_sums_weight_ranks_by_pairs", "pairs %g, loss %.17g, norm^2 %.17g", total.metrics.pairs,
                total.metrics.mean(total.metrics.loss), total.shard_sumsq);
    test_report(first_nonfinite_rank(all, 3) == -1, "no_nonfinite_rank_when_all_finite");
    all[2 * StepPartial::SIZE + 1] = std::numeric_limits<double>::quiet_NaN();  // rank 2's loss sum
    all[1 * StepPartial::SIZE + 11] = std::numeric_limits<double>::infinity();  // rank 1's gradient
    test_report(first_nonfinite_rank(all, 3) == 1, "first_nonfinite_rank_is_named", "got %d",
                first_nonfinite_rank(all, 3));
    return test_exit();
}
