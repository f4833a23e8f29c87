// kernels/zero.cuh: data parallelism of the GPU trainer (train_dpo.cu) over NCCL, with the ZeRO-1
// partition of common/distributed.h (the CPU trainer's, cpu/data_parallel.h: same shards, same
// step sums, same semantics).
//
//   NcclComm   the job's communicator: start-up (the ncclUniqueId through the launcher's
//              rendezvous, ncclCommInitRank), the host collectives the training driver needs
//              (all_gather of doubles, broadcast of bytes, all_gather_pieces, barrier, abort) over
//              small device staging buffers, the typed device collectives the optimizer uses, and
//              the watchdog: every wait for a collective polls the stream with a deadline
//              (--dist-timeout) and, past it or on an NCCL error, aborts the communicator and ends
//              the process with "rank R: <what> did not complete within S s".
//   ZeroGPU    the optimizer step of several ranks. Each rank has the fp32 gradient of its own
//              micro-batches, grads[n] (n = num_parameters, flat, tensor-major as
//              common/model_config.h). After the backward of a step's last micro-batch:
//              ZeRO-1 (default): each parameter range is summed onto the rank whose shard holds it
//                (ncclReduce, root = owner) into grad_sum[shard] (out of place: grads stays this
//                rank's own gradient, whose sum of squares names a rank with a NaN, as the CPU);
//                AdamW runs on the shard (fp32 master and moments of the shard only), writing the
//                shard's floatX parameters; an in-place ncclAllGather of the floatX parameters
//                (buffer padded to ZeroShards::padded()) gives every rank the whole model.
//              --zero 0: the same ranges all-reduced into grad_sum[n] (ncclAllReduce, out of place
//                for the same reason: the price is a second fp32 gradient buffer), every rank
//                updates all parameters with full master and moments.
//              Either way the norm is each rank's sum of squares over its shard of the summed
//              gradient, the ranks' StepPartials (doubles) all-gathered and summed in rank order.
//
// Overlap: the reductions are issued per group of parameters whose gradient is final, on a
// second stream that waits for an event recorded on the main stream: group 0 = lnfw, lnfb
// (after the final LayerNorm's backward), group 1 + (L-1-l) = layer l's slices of the 12
// per-layer tensors [off_t + l*size_t/L, +size_t/L) (after layer l's backward), group L+1 = wte,
// wpe (after the encoder's backward; wte also gets the LM head's gradient, earlier). So the
// reduction of layer l runs while layers l-1 .. 0 compute their backward. Every rank issues the
// groups in this order and the calls inside a group in the same order (NCCL needs both). A rank
// whose step had no micro-batch, or a caller that does not say which micro-batch is the last,
// issues every group in reduce(): the same sums, without overlap.
//
// Without NCCL (USE_NCCL=0, e.g. no nccl.h on the machine) the single-GPU trainer builds and runs
// as before; starting it with world > 1 is an error that says so. One rank normally talks to
// nobody; started with an explicit --world-size 1 it runs the whole NCCL path with one rank (the
// GPU check does, on a machine with one GPU).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/distributed.h"
#include "common/model_config.h"
#include "kernels/adamw.cuh"
#include "kernels/cuda_common.h"

// USE_NCCL=1 (the Makefile's, when it finds nccl.h; under dev/simt the stand-in over MPI): the
// NCCL code; link -lnccl (or MPI for the stand-in). Without it, one GPU only.
#ifndef USE_NCCL
#define USE_NCCL 0
#endif
#if USE_NCCL
#include "kernels/nccl_common.h"
#endif

// ----------------------------------------------------------------------------------------------
// The communicator

#if USE_NCCL
template <class T> inline ncclDataType_t nccl_type();
template <> inline ncclDataType_t nccl_type<float>() { return ncclFloat32; }
template <> inline ncclDataType_t nccl_type<double>() { return ncclFloat64; }
template <> inline ncclDataType_t nccl_type<uint8_t>() { return ncclUint8; }
#if !defined(ENABLE_FP32)
template <> inline ncclDataType_t nccl_type<__nv_bfloat16>() { return ncclBfloat16; }
#endif
#endif

struct NcclComm {
    int rank = 0, world = 1, local_rank = 0;
    bool active = false;           // an NCCL communicator exists (world > 1, or asked for with one rank)
    double timeout_s = 600;        // --dist-timeout: the longest a collective may take
    cudaStream_t stream = nullptr;  // the host collectives' stream
#if USE_NCCL
    ncclComm_t comm = nullptr;
#endif

    // Joins the job: world 1 needs nothing (every collective is then a copy or nothing) unless
    // nccl_for_one. Else the device local_rank, rank 0's ncclUniqueId to every rank through
    // `exchange` (the launcher's rendezvous: it returns false with *err when it fails) and
    // ncclCommInitRank.
    void start(int my_rank, int n_ranks, int my_local_rank, double timeout,
               const std::function<bool(void* blob, size_t bytes, std::string* err)>& exchange,
               bool nccl_for_one = false) {
        rank = my_rank; world = n_ranks; local_rank = my_local_rank; timeout_s = timeout;
        if (world == 1 && !nccl_for_one) return;
#if USE_NCCL
        // the GPU of this rank: local_rank, or the only one visible (a launcher that binds each
        // rank to its GPU, e.g. Slurm's --gpus-per-task, sets CUDA_VISIBLE_DEVICES per rank)
        int devices = 0;
        const cudaError_t found = cudaGetDeviceCount(&devices);
        if (found != cudaSuccess || devices == 0)
            die(std::string("no CUDA GPU found (") + (found != cudaSuccess ? cudaGetErrorString(found) : "0 devices") + ")");
        if (devices > 1 && local_rank >= devices)
            die("local rank " + std::to_string(local_rank) + " but this machine shows " + std::to_string(devices) +
                " GPUs: start at most one rank per GPU (--local-rank, or the launcher's placement)");
        CUDA_CHECK(cudaSetDevice(devices == 1 ? 0 : local_rank));
        ncclUniqueId id;
        if (rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
        std::string err;
        if (!exchange(&id, sizeof id, &err)) die("the rendezvous failed: " + err);
        NCCL_CHECK(ncclCommInitRank(&comm, world, id, rank));
        active = true;
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        CUDA_CHECK(cudaMalloc((void**)&staging, STAGING_BYTES));
#else
        (void)exchange;
        fprintf(stderr, "error: rank %d of %d: this train_dpo was built without NCCL (no nccl.h at build time), so "
                "it runs on one GPU only; install NCCL's development files and rebuild (make train_dpo)\n",
                rank, world);
        exit(1);
#endif
    }

    void finish() {
#if USE_NCCL
        if (comm) NCCL_CHECK(ncclCommDestroy(comm));
        comm = nullptr;
        active = false;
        if (staging) CUDA_CHECK(cudaFree(staging));
        staging = nullptr;
        if (stream) CUDA_CHECK(cudaStreamDestroy(stream));
        stream = nullptr;
#endif
    }

    // Ends this rank; the communicator is aborted first, so that NCCL frees the peers' pending
    // collectives (they then fail or time out on their side and end too).
    [[noreturn]] void abort(int code) {
        fflush(stdout);
        fflush(stderr);
#if USE_NCCL
        if (comm) ncclCommAbort(comm);
        comm = nullptr;
        active = false;
#endif
        exit(code);
    }

    // Waits for the work enqueued on s (collectives among it) with the watchdog: polls the stream
    // and the communicator's asynchronous error; past timeout_s, or on an NCCL error, aborts the
    // communicator and ends the process with a message naming this rank and `what`.
    void wait(cudaStream_t s, const char* what) {
#if USE_NCCL
        if (comm == nullptr) { CUDA_CHECK(cudaStreamSynchronize(s)); return; }
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            cudaError_t e = cudaStreamQuery(s);
            if (e == cudaSuccess) return;
            if (e != cudaErrorNotReady) CUDA_CHECK(e);
            ncclResult_t async = ncclSuccess;
            NCCL_CHECK(ncclCommGetAsyncError(comm, &async));
            if (async != ncclSuccess && async != ncclInProgress)
                die(std::string(what) + " failed: " + ncclGetErrorString(async) + " (" + ncclGetLastError(comm) +
                    "); a rank died or its network failed");
            const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (waited > timeout_s) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s did not complete within %.0f s (a rank died or hangs; --dist-timeout "
                         "sets the limit)", what, timeout_s);
                die(msg);
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
#else
        (void)what;
        CUDA_CHECK(cudaStreamSynchronize(s));
#endif
    }

    // ---- the host collectives of the training driver (cpu::MpiComm's, same semantics) ----

    // out[r*count + i] = rank r's mine[i], on every rank.
    void all_gather(const double* mine, int count, std::vector<double>* out) {
        out->resize((size_t)count * world);
        if (!active) { std::copy(mine, mine + count, out->begin()); return; }
        check_staging((size_t)count * world * sizeof(double), "all_gather");
        double* dev = (double*)staging;
        CUDA_CHECK(cudaMemcpyAsync(dev + (size_t)rank * count, mine, count * sizeof(double), cudaMemcpyHostToDevice,
                                   stream));
        all_gather_device(dev + (size_t)rank * count, dev, (size_t)count, stream);
        CUDA_CHECK(cudaMemcpyAsync(out->data(), dev, out->size() * sizeof(double), cudaMemcpyDeviceToHost, stream));
        wait(stream, "all_gather (the step's sums)");
    }

    // Rank 0's n bytes to every rank, through the staging buffer piece by piece.
    void broadcast(void* buf, size_t n) {
        if (!active) return;
        for (size_t off = 0; off < n; off += STAGING_BYTES) {
            const size_t len = std::min(STAGING_BYTES, n - off);
            uint8_t* dev = (uint8_t*)staging;
            if (rank == 0)
                CUDA_CHECK(cudaMemcpyAsync(dev, (char*)buf + off, len, cudaMemcpyHostToDevice, stream));
            broadcast_device(dev, len, 0, stream);
            CUDA_CHECK(cudaMemcpyAsync((char*)buf + off, dev, len, cudaMemcpyDeviceToHost, stream));
            wait(stream, "broadcast");
        }
    }

    // In place: rank r's piece buf[bounds[r], bounds[r+1]) to every rank; bounds: world+1
    // entries. NCCL's all-gather takes equal pieces: the pieces go in windows of `window`
    // doubles per rank (the longest piece cut to what the staging buffer holds).
    void all_gather_pieces(double* buf, const std::vector<int64_t>& bounds) {
        if (!active) return;
        int64_t longest = 0;
        for (int r = 0; r < world; r++) longest = std::max(longest, bounds[r + 1] - bounds[r]);
        const int64_t window = std::max<int64_t>(1, std::min<int64_t>(longest, STAGING_BYTES / sizeof(double) / world));
        double* dev = (double*)staging;
        std::vector<double> host((size_t)window * world);
        for (int64_t at = 0; at < longest; at += window) {
            const int64_t lo = bounds[rank] + at, hi = std::min(bounds[rank + 1], lo + window);
            if (hi > lo)
                CUDA_CHECK(cudaMemcpyAsync(dev + (size_t)rank * window, buf + lo, (hi - lo) * sizeof(double),
                                           cudaMemcpyHostToDevice, stream));
            all_gather_device(dev + (size_t)rank * window, dev, (size_t)window, stream);
            CUDA_CHECK(cudaMemcpyAsync(host.data(), dev, host.size() * sizeof(double), cudaMemcpyDeviceToHost, stream));
            wait(stream, "all_gather_pieces");
            for (int r = 0; r < world; r++) {
                const int64_t a = bounds[r] + at, b = std::min(bounds[r + 1], a + window);
                if (r != rank && b > a) std::copy(&host[(size_t)r * window], &host[(size_t)r * window] + (b - a), buf + a);
            }
        }
    }

    // Returns when every rank has called it (an all-gather of one value).
    void barrier() {
        double one = 1;
        std::vector<double> all;
        all_gather(&one, 1, &all);
    }

    // ---- device collectives: enqueued on `s`, the caller waits (wait()) ----
    void group_start() {
#if USE_NCCL
        NCCL_CHECK(ncclGroupStart());
#endif
    }
    void group_end() {
#if USE_NCCL
        NCCL_CHECK(ncclGroupEnd());
#endif
    }
    // recv[count] on root = the sum over the ranks of their send[count] (recv unused elsewhere)
    template <class T> void reduce_device(const T* send, T* recv, size_t count, int root, cudaStream_t s) {
        need_nccl("ncclReduce");
#if USE_NCCL
        NCCL_CHECK(ncclReduce(send, recv, count, nccl_type<T>(), ncclSum, root, comm, s));
#else
        (void)send; (void)recv; (void)count; (void)root; (void)s;
#endif
    }
    // recv[count] = the sum over the ranks of their send[count], on every rank
    template <class T> void all_reduce_device(const T* send, T* recv, size_t count, cudaStream_t s) {
        need_nccl("ncclAllReduce");
#if USE_NCCL
        NCCL_CHECK(ncclAllReduce(send, recv, count, nccl_type<T>(), ncclSum, comm, s));
#else
        (void)send; (void)recv; (void)count; (void)s;
#endif
    }
    // recv[world * count]: rank r's send[count] at recv[r * count]; in place when
    // send == recv + rank * count
    template <class T> void all_gather_device(const T* send, T* recv, size_t count, cudaStream_t s) {
        need_nccl("ncclAllGather");
#if USE_NCCL
        NCCL_CHECK(ncclAllGather(send, recv, count, nccl_type<T>(), comm, s));
#else
        (void)send; (void)recv; (void)count; (void)s;
#endif
    }
    // buf[count] of root to every rank
    template <class T> void broadcast_device(T* buf, size_t count, int root, cudaStream_t s) {
        need_nccl("ncclBroadcast");
#if USE_NCCL
        NCCL_CHECK(ncclBroadcast(buf, buf, count, nccl_type<T>(), root, comm, s));
#else
        (void)buf; (void)count; (void)root; (void)s;
#endif
    }

    // Ends this rank (aborting the communicator) with a message naming it.
    [[noreturn]] void die(const std::string& msg) {
        fprintf(stderr, "error: rank %d of %d: %s\n", rank, world, msg.c_str());
        abort(1);
    }

  private:
    static constexpr size_t STAGING_BYTES = (size_t)4 << 20;  // the host collectives' device buffer
    void* staging = nullptr;

    void check_staging(size_t bytes, const char* what) {
        if (bytes > STAGING_BYTES) die(std::string(what) + ": " + std::to_string(bytes) + " bytes exceed the staging buffer");
    }
    void need_nccl(const char* call) {
#if USE_NCCL
        if (comm == nullptr) die(std::string(call) + " without a communicator (world 1)");
#else
        die(std::string(call) + ": built without NCCL");
#endif
    }
};

// ----------------------------------------------------------------------------------------------
// The optimizer step of several ranks

struct ZeroGPU {
    NcclComm* comm = nullptr;
    ModelConfig cfg;
    ZeroShards shards;              // the ZeRO-1 partition of the n parameters over the ranks
    bool zero = true;               // ZeRO-1, else the plain all-reduce
    size_t lo = 0, hi = 0;          // the parameters this rank updates (its shard, or all n)
    size_t shard_lo = 0, shard_hi = 0;  // this rank's shard (the norm's part)
    std::vector<double> partials;   // [world][StepPartial::SIZE]: every rank's numbers of the last step
    int bad_rank = -1;              // first rank whose loss or gradient was not finite, or -1

    // Sets the partition; no device work yet (attach() does it once the model's buffers exist).
    void init(NcclComm* c, const ModelConfig& config, bool zero1) {
        comm = c; cfg = config; zero = zero1;
        shards = ZeroShards(num_parameters(cfg), comm->world);
        shard_lo = shards.begin(comm->rank); shard_hi = shards.end(comm->rank);
        lo = sharded() ? shard_lo : 0;
        hi = sharded() ? shard_hi : shards.n;
        build_groups();
    }
    bool sharded() const { return zero && comm->active; }
    // elements of the floatX parameter buffer: padded for the in-place all-gather
    size_t params_elements() const { return sharded() ? shards.padded() : shards.n; }

    // The model's fp32 gradient buffer [n] and main stream; allocates the summed gradient
    // (ZeRO-1: the shard; --zero 0: all n; without a communicator: none, grads is the sum), the
    // second stream, the events and the norm's device scalars.
    void attach(float* model_grads, cudaStream_t model_stream) {
        grads = model_grads;
        main_stream = model_stream;
        if (comm->active) {
            CUDA_CHECK(cudaMalloc((void**)&grad_sum, std::max<size_t>(1, sharded() ? hi - lo : shards.n) * sizeof(float)));
            CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream, cudaStreamNonBlocking));
            group_ready_events.resize(groups.size());
            for (cudaEvent_t& e : group_ready_events) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
            CUDA_CHECK(cudaEventCreateWithFlags(&reduced_event, cudaEventDisableTiming));
        }
        CUDA_CHECK(cudaMalloc((void**)&sumsq, 2 * sizeof(float)));
        CUDA_CHECK(cudaMalloc((void**)&sumsq_partials, SUM_SQUARES_BLOCKS * sizeof(float)));
    }

    void free_all() {
        if (grad_sum) CUDA_CHECK(cudaFree(grad_sum));
        if (sumsq) CUDA_CHECK(cudaFree(sumsq));
        if (sumsq_partials) CUDA_CHECK(cudaFree(sumsq_partials));
        for (cudaEvent_t e : group_ready_events) CUDA_CHECK(cudaEventDestroy(e));
        if (reduced_event) CUDA_CHECK(cudaEventDestroy(reduced_event));
        if (comm_stream) CUDA_CHECK(cudaStreamDestroy(comm_stream));
        grad_sum = sumsq = sumsq_partials = nullptr;
        group_ready_events.clear();
        reduced_event = nullptr;
        comm_stream = nullptr;
    }

    int num_groups() const { return (int)groups.size(); }
    // the group of layer l's slices (issued after layer l's backward)
    int layer_group(int l) const { return 1 + (cfg.num_layers - 1 - l); }
    static int lnf_group() { return 0; }
    int embedding_group() const { return cfg.num_layers + 1; }

    // The backward of the step's last micro-batch has finished group g's gradients on the main
    // stream: their reduction starts on the second stream. Groups come in order 0, 1, ...
    void group_ready(int g) {
        if (!comm->active) return;
        if (g != issued) comm->die("group " + std::to_string(g) + " of the gradient reduction out of order");
        CUDA_CHECK(cudaEventRecord(group_ready_events[g], main_stream));
        CUDA_CHECK(cudaStreamWaitEvent(comm_stream, group_ready_events[g], 0));
        comm->group_start();
        for (const Range& r : groups[g]) {
            if (!sharded()) {
                comm->all_reduce_device(grads + r.a, grad_sum + r.a, r.b - r.a, comm_stream);
                continue;
            }
            for (int owner = 0; owner < comm->world; owner++) {  // the range's piece in each shard
                const size_t a = std::max(r.a, shards.begin(owner)), b = std::min(r.b, shards.end(owner));
                if (a >= b) continue;
                // on the owner, into its summed shard; the others' recvbuff is unused (NCCL)
                float* recv = owner == comm->rank ? grad_sum + (a - lo) : grads + a;
                comm->reduce_device(grads + a, recv, b - a, owner, comm_stream);
            }
        }
        comm->group_end();
        issued++;
    }

    // After the backward of the step: issues the groups the hooks did not, waits for the
    // reduction, and sums the ranks' StepPartials (every rank gets the same sums, in rank order).
    // Sets bad_rank. The global gradient norm is sqrt(result.shard_sumsq).
    StepPartial reduce(StepPartial mine) {
        const size_t n = shards.n;
        // this rank's own gradient, before any sum (names the rank with a NaN)
        global_sum_squares(sumsq, sumsq_partials, grads, n, false, main_stream);
        const float* reduced = grads + shard_lo;
        if (comm->active) {
            while (issued < num_groups()) group_ready(issued);
            CUDA_CHECK(cudaEventRecord(reduced_event, comm_stream));
            CUDA_CHECK(cudaStreamWaitEvent(main_stream, reduced_event, 0));
            reduced = sharded() ? grad_sum : grad_sum + shard_lo;
            issued = 0;
        }
        if (comm->active) global_sum_squares(sumsq + 1, sumsq_partials, reduced, shard_hi - shard_lo, false, main_stream);
        float h[2];
        CUDA_CHECK(cudaMemcpyAsync(h, sumsq, sizeof h, cudaMemcpyDeviceToHost, main_stream));
        comm->wait(main_stream, "the gradient reduction");
        mine.grad_sumsq = h[0];
        mine.shard_sumsq = comm->active ? h[1] : h[0];  // alone: the shard is all of grads
        double mine_v[StepPartial::SIZE];
        mine.to_doubles(mine_v);
        comm->all_gather(mine_v, StepPartial::SIZE, &partials);
        bad_rank = first_nonfinite_rank(partials, comm->world);
        return sum_step_partials(partials, comm->world);
    }

    // The gradient AdamW reads for parameter lo + i: grad_source()[i] (after reduce()).
    const float* grad_source() const { return comm->active ? grad_sum : grads; }

    // AdamW step t over this rank's parameters [lo, hi): master, m, v hold that range only
    // (master[0] is parameter lo's), params is the whole floatX buffer; then (ZeRO-1) the
    // in-place all-gather of the floatX parameters. Decay per tensor as the CPU.
    void update(float* master, floatX* params, float* m, float* v, float lr, float beta1, float beta2, float eps,
                float weight_decay, float grad_scale, long t) {
        const float bc1 = 1.0f - std::pow(beta1, (float)t);
        const float bc2 = 1.0f - std::pow(beta2, (float)t);
        size_t sizes[NUM_PARAM_TENSORS], off = 0;
        param_sizes(cfg, sizes);
        const float* g = grad_source();
        for (int i = 0; i < NUM_PARAM_TENSORS; off += sizes[i], i++) {
            const size_t a = std::max(lo, off), b = std::min(hi, off + sizes[i]);
            if (a >= b) continue;
            adamw_update(master + (a - lo), params + a, m + (a - lo), v + (a - lo), g + (a - lo), b - a, lr, beta1,
                         beta2, eps, param_tensor_decays(i) ? weight_decay : 0.0f, bc1, bc2, grad_scale, main_stream);
        }
        if (sharded()) {
            comm->all_gather_device(params + comm->rank * shards.shard, params, shards.shard, main_stream);
            comm->wait(main_stream, "the all-gather of the parameters");
        }
    }

    // All n fp32 values of a buffer of which this rank holds [lo, hi) (the master weights or a
    // moment), on every rank: a collective. The shards go through a device window of at most
    // WINDOW elements per rank (the all-gather takes equal pieces: piece k of every shard).
    std::vector<float> gather(const float* mine) {
        std::vector<float> out(shards.n);
        if (!sharded()) {
            CUDA_CHECK(cudaMemcpy(out.data(), mine, shards.n * sizeof(float), cudaMemcpyDeviceToHost));
            return out;
        }
        const int world = comm->world;
        const size_t window = std::min(shards.shard, WINDOW);
        float* dev = nullptr;
        CUDA_CHECK(cudaMalloc((void**)&dev, window * world * sizeof(float)));
        std::vector<float> host(window * world);
        for (size_t at = 0; at < shards.shard; at += window) {
            const size_t len = std::min(window, shards.shard - at);
            const size_t have = at < hi - lo ? std::min(len, hi - lo - at) : 0;  // real elements of mine here
            if (have < len) CUDA_CHECK(cudaMemsetAsync(dev + comm->rank * window + have, 0, (len - have) * sizeof(float), main_stream));
            if (have > 0)
                CUDA_CHECK(cudaMemcpyAsync(dev + comm->rank * window, mine + at, have * sizeof(float),
                                           cudaMemcpyDeviceToDevice, main_stream));
            comm->all_gather_device(dev + comm->rank * window, dev, window, main_stream);
            CUDA_CHECK(cudaMemcpyAsync(host.data(), dev, host.size() * sizeof(float), cudaMemcpyDeviceToHost, main_stream));
            comm->wait(main_stream, "the gather of the weights or moments");
            for (int r = 0; r < world; r++) {
                const size_t a = shards.begin(r) + at, b = std::min(shards.end(r), a + len);
                if (b > a) std::copy(&host[r * window], &host[r * window] + (b - a), out.begin() + a);
            }
        }
        CUDA_CHECK(cudaFree(dev));
        return out;
    }

  private:
    struct Range { size_t a, b; };
    std::vector<std::vector<Range>> groups;  // the flat ranges of each group, in issue order
    static constexpr size_t WINDOW = (size_t)4 << 20;  // gather(): elements per rank per round (16 MB)
    float* grads = nullptr;                  // the model's gradient [n] (this rank's own)
    float* grad_sum = nullptr;               // the summed gradient: [hi - lo] ZeRO-1, [n] --zero 0
    cudaStream_t main_stream = nullptr, comm_stream = nullptr;
    std::vector<cudaEvent_t> group_ready_events;
    cudaEvent_t reduced_event = nullptr;
    float *sumsq = nullptr, *sumsq_partials = nullptr;  // [2]: own gradient, reduced shard
    int issued = 0;                          // groups issued this step

    void build_groups() {
        size_t sizes[NUM_PARAM_TENSORS], offsets[NUM_PARAM_TENSORS];
        param_sizes(cfg, sizes);
        param_offsets(cfg, offsets);
        const int L = cfg.num_layers;
        groups.assign(L + 2, {});
        groups[lnf_group()] = {{offsets[PARAM_LNFW], offsets[PARAM_LNFW] + sizes[PARAM_LNFW]},
                               {offsets[PARAM_LNFB], offsets[PARAM_LNFB] + sizes[PARAM_LNFB]}};
        for (int l = 0; l < L; l++) {
            for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
                if (!param_tensor_has_layers(t)) continue;
                const size_t per_layer = sizes[t] / L, a = offsets[t] + (size_t)l * per_layer;
                groups[layer_group(l)].push_back({a, a + per_layer});
            }
        }
        groups[embedding_group()] = {{offsets[PARAM_WTE], offsets[PARAM_WTE] + sizes[PARAM_WTE]},
                                     {offsets[PARAM_WPE], offsets[PARAM_WPE] + sizes[PARAM_WPE]}};
    }
};
