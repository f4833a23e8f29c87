// The CPU trainer's communication over MPI: exactly the collectives data parallelism needs, on
// host buffers, with the ZeRO-1 partition of common/distributed.h. A process that was not started
// by an MPI launcher (mpirun, srun with PMI/PMIx) never calls MPI: it is rank 0 of 1 and every
// collective is a copy or nothing, so the single-process trainer behaves as before.
//
// Reductions run in a fixed order, whatever Open MPI's algorithm choice: the gradient
// reduce-scatter is an all-to-all of the shards followed by a sum over the ranks in rank order
// (in double, rounded once to float), and small scalar sums are all-gathers summed locally in rank
// order. MPI counts and offsets are int, so the flat buffers must stay below 2^31 elements (the
// trainer checks). A run is then bit-reproducible for a given world size, and ZeRO-1 and the plain
// all-reduce (reduce-scatter + all-gather of the summed gradient) give bit-identical gradients.
#pragma once
#include <mpi.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/distributed.h"

namespace cpu {

struct MpiComm {
    int rank = 0, world = 1;
    int local_world = 1;     // ranks on this machine (for the default thread count)
    bool active = false;     // MPI initialised (started by a launcher)

    // Starts MPI if an MPI launcher started this process (it sets one of these variables).
    void start(int* argc, char*** argv) {
        const char* launched[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
        bool by_launcher = false;
        for (const char* v : launched) by_launcher |= getenv(v) != nullptr;
        if (!by_launcher) return;
        MPI_Init(argc, argv);
        active = true;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        MPI_Comm local;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
        MPI_Comm_size(local, &local_world);
        MPI_Comm_free(&local);
    }
    void finish() {
        if (active) MPI_Finalize();
        active = false;
    }
    // Ends every rank of the job (a rank that stops alone would leave the others waiting forever).
    [[noreturn]] void abort(int code) {
        fflush(stdout);
        fflush(stderr);
        if (active) MPI_Abort(MPI_COMM_WORLD, code);
        exit(code);
    }

    // Waits until every rank has reached it.
    void barrier() const {
        if (active) MPI_Barrier(MPI_COMM_WORLD);
    }

    // out[r*count + i] = rank r's mine[i], on every rank.
    void all_gather(const double* mine, int count, std::vector<double>* out) const {
        out->resize((size_t)count * world);
        if (!active) { std::copy(mine, mine + count, out->begin()); return; }
        MPI_Allgather(mine, count, MPI_DOUBLE, out->data(), count, MPI_DOUBLE, MPI_COMM_WORLD);
    }

    // Rank 0's n bytes to every rank.
    void broadcast(void* buf, size_t n) const {
        if (!active) return;
        for (size_t off = 0; off < n; off += BROADCAST_CHUNK) {
            int len = (int)std::min(BROADCAST_CHUNK, n - off);
            MPI_Bcast((char*)buf + off, len, MPI_BYTE, 0, MPI_COMM_WORLD);
        }
    }

    // In place: rank r's piece buf[bounds[r], bounds[r+1]) to every rank. bounds: world+1 entries.
    void all_gather_pieces(double* buf, const std::vector<int64_t>& bounds) const {
        if (!active) return;
        std::vector<int> counts(world), displs(world);
        for (int r = 0; r < world; r++) {
            counts[r] = (int)(bounds[r + 1] - bounds[r]);
            displs[r] = (int)bounds[r];
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts.data(), displs.data(), MPI_DOUBLE,
                       MPI_COMM_WORLD);
    }

    // The ZeRO-1 reduce-scatter: shard_out[0, count(rank)) = the sum over the ranks, in rank
    // order, of their grads[begin(rank), end(rank)). An all-to-all brings every rank's piece of
    // this rank's shard here ((N-1)/N of the buffer in and out, as a ring reduce-scatter), then
    // the sum runs locally in double. grads has s.n elements on every rank.
    void reduce_scatter(const float* grads, const ZeroShards& s, float* shard_out) {
        const size_t mine = s.count(rank);
        if (!active) { std::copy(grads + s.begin(rank), grads + s.end(rank), shard_out); return; }
        std::vector<int> send_counts(world), send_displs(world), recv_counts(world), recv_displs(world);
        for (int r = 0; r < world; r++) {
            send_counts[r] = (int)s.count(r);
            send_displs[r] = (int)s.begin(r);
            recv_counts[r] = (int)mine;
            recv_displs[r] = (int)((size_t)r * mine);
        }
        pieces.resize((size_t)world * mine);
        MPI_Alltoallv(grads, send_counts.data(), send_displs.data(), MPI_FLOAT, pieces.data(),
                      recv_counts.data(), recv_displs.data(), MPI_FLOAT, MPI_COMM_WORLD);
        for (size_t i = 0; i < mine; i++) {
            double sum = 0;
            for (int r = 0; r < world; r++) sum += pieces[(size_t)r * mine + i];
            shard_out[i] = (float)sum;
        }
    }

    // In place: every rank's shard buf[begin(r), end(r)) to every rank (the ZeRO-1 all-gather of
    // the updated parameters; the second half of the plain all-reduce).
    void all_gather_shards(float* buf, const ZeroShards& s) const {
        if (!active) return;
        std::vector<int> counts(world), displs(world);
        for (int r = 0; r < world; r++) {
            counts[r] = (int)s.count(r);
            displs[r] = (int)s.begin(r);
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts.data(), displs.data(), MPI_FLOAT,
                       MPI_COMM_WORLD);
    }

  private:
    static constexpr size_t BROADCAST_CHUNK = (size_t)1 << 30;  // bytes per MPI_Bcast (counts are int)
    std::vector<float> pieces;  // [world][count(rank)]: every rank's piece of this rank's shard
};

}  // namespace cpu
