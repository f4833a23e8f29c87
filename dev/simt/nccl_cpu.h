// dev/simt/nccl_cpu.h: a CPU stand-in for exactly the NCCL calls the GPU trainer makes, over MPI,
// so that its communication code (buffer offsets, shard boundaries, grouped calls) runs under
// dev/simt with 1, 2 and 3 processes started by mpirun. g++ only; kernels/nccl_common.h includes
// it under dev/simt and <nccl.h> under nvcc.
//
// One rank per MPI process: ncclCommInitRank needs nranks == the MPI job's size and rank == the
// MPI rank (without an MPI launcher: nranks 1, rank 0, and MPI is never called). Every
// communicator spans the whole job (its own duplicate of MPI_COMM_WORLD).
// Calls: ncclGetUniqueId, ncclCommInitRank, ncclCommDestroy, ncclCommAbort,
// ncclCommGetAsyncError, ncclGetErrorString, ncclGetLastError, ncclGroupStart, ncclGroupEnd,
// ncclAllReduce, ncclReduce, ncclReduceScatter, ncclAllGather, ncclBroadcast; types float32,
// bfloat16, float64, int32, int8, uint8; op ncclSum. Anything else is an error naming the call and
// the argument (ncclInvalidArgument / ncclInvalidUsage, the message in ncclGetLastError), as are:
// a buffer that is not inside a cudaMalloc allocation or too small for the call, send and receive
// buffers that overlap without being NCCL's documented in-place form, a root or rank out of range,
// a destroyed communicator.
//
// Semantics (NCCL's documentation), with "device" memory being host memory here:
// - in place: sendbuff == recvbuff for AllReduce, Reduce, Broadcast; for AllGather
//   sendbuff == recvbuff + rank*sendcount; for ReduceScatter recvbuff == sendbuff + rank*recvcount.
// - Reduce writes recvbuff on the root only; Broadcast reads sendbuff on the root only.
// - Sums run in rank order (every rank's piece is gathered, then summed locally), so results are
//   deterministic whatever MPI's algorithm: float32 in float, bfloat16 in float rounded once at the
//   end, float64 in double, integers with wrap-around (as on a GPU).
// - Streams: dev/simt runs work at once on the calling thread, so a collective runs when called;
//   between ncclGroupStart and ncclGroupEnd (nestable) calls are queued and run at the outermost
//   ncclGroupEnd, in the order issued (every rank must issue them in the same order, as NCCL asks).
//
// Where this differs from NCCL, on purpose:
// - Every collective first exchanges a small header (the call, count, type, op, root, and whether
//   this rank's arguments passed their checks). A rank that calls another collective or count than
//   its peers, or whose arguments were rejected, makes every rank return an error naming the rank;
//   real NCCL would hang or compute garbage.
// - ncclCommAbort cannot abort one communicator while a peer waits in MPI: under an MPI launcher it
//   ends the whole job (MPI_Abort); without one it destroys the communicator.
// - ncclCommGetAsyncError always reports ncclSuccess: nothing runs asynchronously here.
// - ncclCommInitRank inside a group, and communicators over a subset of the processes, are not
//   implemented. One MPI transfer moves at most 2^31-1 bytes per rank (larger calls are rejected).
// - NCCL_CHECK (kernels/nccl_common.h) ends the whole MPI job on failure (MPI_Abort with status 1),
//   since a rank that exits alone would leave its peers waiting.
// MPI: started (MPI_Init_thread, MPI_THREAD_MULTIPLE requested so that a watchdog thread may call
// ncclCommAbort) by the first ncclCommInitRank if a launcher started the process and nobody
// initialised MPI yet; then finalized once at exit, unless the program finalized it itself. A
// program that also uses MPI initialises it before ncclCommInitRank.
#pragma once
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dev/simt/bf16.h"
#include "dev/simt/cuda_runtime_cpu.h"

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;

// NCCL's names and values (nccl.h), so code written for NCCL compiles; only some are implemented.
typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
    ncclNumResults = 8
} ncclResult_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4, ncclNumOps = 5 } ncclRedOp_t;
typedef enum {
    ncclInt8 = 0, ncclChar = 0,
    ncclUint8 = 1,
    ncclInt32 = 2, ncclInt = 2,
    ncclUint32 = 3,
    ncclInt64 = 4,
    ncclUint64 = 5,
    ncclFloat16 = 6, ncclHalf = 6,
    ncclFloat32 = 7, ncclFloat = 7,
    ncclFloat64 = 8, ncclDouble = 8,
    ncclBfloat16 = 9,
    ncclNumTypes = 12
} ncclDataType_t;

struct ncclComm {
    MPI_Comm mpi = MPI_COMM_NULL;  // this communicator's duplicate of MPI_COMM_WORLD (none without MPI)
    int rank = 0, nranks = 1;
    bool alive = true;             // false after ncclCommDestroy / ncclCommAbort
};
typedef ncclComm* ncclComm_t;

namespace nccl_cpu {

enum class Kind { AllReduce, Reduce, ReduceScatter, AllGather, Broadcast };
inline const char* kind_name(Kind k) {
    switch (k) {
        case Kind::AllReduce: return "ncclAllReduce";
        case Kind::Reduce: return "ncclReduce";
        case Kind::ReduceScatter: return "ncclReduceScatter";
        case Kind::AllGather: return "ncclAllGather";
        case Kind::Broadcast: return "ncclBroadcast";
    }
    return "?";
}

// One collective call. count: elements per rank as NCCL names it (count, recvcount, sendcount).
struct Call {
    Kind kind;
    const void* send;
    void* recv;
    size_t count;
    ncclDataType_t type;
    ncclRedOp_t op;     // ncclSum for AllGather and Broadcast
    int root;           // 0 where the call has none
    ncclComm_t comm;
    ncclResult_t local; // the result of this rank's argument checks
};

inline std::string g_last_error;                     // ncclGetLastError
inline std::vector<std::unique_ptr<ncclComm>> g_comms;  // every communicator made (destroyed ones kept, marked)
inline int g_group_depth = 0;                        // ncclGroupStart nesting
inline std::vector<Call> g_group_calls;              // queued until the outermost ncclGroupEnd
inline uint64_t g_ids_made = 0;                      // ncclGetUniqueId calls (part of each id)
const char ID_MAGIC[] = "dev/simt nccl id";          // the first bytes of every id we make

// Records the message for ncclGetLastError and returns code.
inline ncclResult_t fail(ncclResult_t code, const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_last_error = buf;
    return code;
}

// ---- MPI
inline bool started_by_mpi_launcher() {
    const char* launched[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (const char* v : launched)
        if (getenv(v)) return true;
    return false;
}
inline bool mpi_active() {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    return initialized && !finalized;
}
inline void finalize_mpi_at_exit() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}
// Starts MPI if a launcher started this process and nobody has; finalized at exit.
inline void start_mpi_if_launched() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized || !started_by_mpi_launcher()) return;
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    atexit(finalize_mpi_at_exit);
}
// Ends this process and, under an MPI launcher with peers, the whole job (NCCL_CHECK's exit).
[[noreturn]] inline void exit_job(int code) {
    fflush(stdout);
    fflush(stderr);
    int world = 1;
    if (mpi_active()) MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

// ---- types
inline size_t type_size(ncclDataType_t t) {  // 0: not implemented
    switch (t) {
        case ncclInt8: case ncclUint8: return 1;
        case ncclBfloat16: return 2;
        case ncclInt32: case ncclFloat32: return 4;
        case ncclFloat64: return 8;
        default: return 0;
    }
}
inline const char* type_name(ncclDataType_t t) {
    switch (t) {
        case ncclInt8: return "ncclInt8";
        case ncclUint8: return "ncclUint8";
        case ncclInt32: return "ncclInt32";
        case ncclUint32: return "ncclUint32";
        case ncclInt64: return "ncclInt64";
        case ncclUint64: return "ncclUint64";
        case ncclFloat16: return "ncclFloat16";
        case ncclFloat32: return "ncclFloat32";
        case ncclFloat64: return "ncclFloat64";
        case ncclBfloat16: return "ncclBfloat16";
        default: return "an unknown type";
    }
}

// out[i] = sum over r in rank order of pieces[r][i] (pieces: nranks rows of count elements).
template <class T, class Acc> void sum_rows(const char* pieces, int nranks, size_t count, void* out) {
    const T* rows = (const T*)pieces;
    T* dst = (T*)out;
    for (size_t i = 0; i < count; i++) {
        Acc acc = (Acc)rows[i];
        for (int r = 1; r < nranks; r++) acc = (Acc)(acc + (Acc)rows[(size_t)r * count + i]);
        dst[i] = (T)acc;
    }
}
// bf16: in float, rounded once. Integers: in their unsigned type, so overflow wraps as on a GPU.
inline void sum_pieces(ncclDataType_t t, const char* pieces, int nranks, size_t count, void* out) {
    switch (t) {
        case ncclFloat32: sum_rows<float, float>(pieces, nranks, count, out); break;
        case ncclFloat64: sum_rows<double, double>(pieces, nranks, count, out); break;
        case ncclBfloat16: sum_rows<__nv_bfloat16, float>(pieces, nranks, count, out); break;
        case ncclInt32: sum_rows<uint32_t, uint32_t>(pieces, nranks, count, out); break;
        case ncclInt8: case ncclUint8: sum_rows<uint8_t, uint8_t>(pieces, nranks, count, out); break;
        default: break;  // rejected by check_call
    }
}

// ---- argument checks (this rank's own; the cross-rank ones are in agree)
inline ncclResult_t check_comm(const char* call, ncclComm_t comm) {
    if (!comm) return fail(ncclInvalidArgument, "%s: comm is NULL", call);
    for (const auto& c : g_comms)
        if (c.get() == comm) {
            if (!comm->alive) return fail(ncclInvalidUsage, "%s: comm %p was destroyed (ncclCommDestroy/ncclCommAbort)", call, (void*)comm);
            return ncclSuccess;
        }
    return fail(ncclInvalidArgument, "%s: comm %p was not made by ncclCommInitRank", call, (void*)comm);
}

// A buffer the call uses: non-null, inside a cudaMalloc allocation, with bytes behind it.
inline ncclResult_t check_buffer(const char* call, const char* name, const void* p, size_t bytes) {
    if (!p) return fail(ncclInvalidArgument, "%s: %s is NULL", call, name);
    const long long have = simt::device_bytes_from(p);
    if (have < 0)
        return fail(ncclInvalidArgument, "%s: %s %p is not inside a cudaMalloc allocation (host or freed memory)",
                    call, name, p);
    if ((unsigned long long)have < bytes)
        return fail(ncclInvalidArgument, "%s: %s %p has %lld bytes to the end of its cudaMalloc allocation; the call needs %zu",
                    call, name, p, have, bytes);
    return ncclSuccess;
}

inline ncclResult_t check_call(const Call& c) {
    const char* call = kind_name(c.kind);
    const size_t size = type_size(c.type);
    if (size == 0)
        return fail(ncclInvalidArgument, "%s: datatype %d (%s) is not implemented by the stand-in (ncclFloat32, "
                    "ncclBfloat16, ncclFloat64, ncclInt32, ncclInt8, ncclUint8)", call, (int)c.type, type_name(c.type));
    if (c.op != ncclSum)
        return fail(ncclInvalidArgument, "%s: op %d is %s (the stand-in implements ncclSum only)", call, (int)c.op,
                    (int)c.op >= 0 && c.op < ncclNumOps ? "not implemented" : "not a reduction op");
    const int nranks = c.comm->nranks, rank = c.comm->rank;
    if ((c.kind == Kind::Reduce || c.kind == Kind::Broadcast) && (c.root < 0 || c.root >= nranks))
        return fail(ncclInvalidArgument, "%s: root %d is out of range [0, %d)", call, c.root, nranks);
    if (c.count > (size_t)INT_MAX / size)
        return fail(ncclInvalidArgument, "%s: count %zu of %s is over the stand-in's 2^31-1 bytes per rank", call,
                    c.count, type_name(c.type));
    if (c.count == 0) return ncclSuccess;  // nothing to move: the buffers are not read
    // bytes read from sendbuff and written to recvbuff on this rank (0: not used here)
    const size_t piece = c.count * size;
    size_t send_bytes = piece, recv_bytes = piece;
    if (c.kind == Kind::ReduceScatter) send_bytes = piece * nranks;
    if (c.kind == Kind::AllGather) recv_bytes = piece * nranks;
    if (c.kind == Kind::Reduce && rank != c.root) recv_bytes = 0;
    if (c.kind == Kind::Broadcast && rank != c.root) send_bytes = 0;
    if (send_bytes)
        if (ncclResult_t r = check_buffer(call, "sendbuff", c.send, send_bytes)) return r;
    if (recv_bytes)
        if (ncclResult_t r = check_buffer(call, "recvbuff", c.recv, recv_bytes)) return r;
    if (!send_bytes || !recv_bytes) return ncclSuccess;
    // overlapping buffers must be the documented in-place form
    const char* s = (const char*)c.send;
    const char* r = (const char*)c.recv;
    const char* in_place = s;  // where recvbuff must be for the in-place form
    const char* form = "recvbuff == sendbuff";
    if (c.kind == Kind::ReduceScatter) { in_place = s + (size_t)rank * piece; form = "recvbuff == sendbuff + rank*recvcount"; }
    if (c.kind == Kind::AllGather) { in_place = s - (size_t)rank * piece; form = "sendbuff == recvbuff + rank*sendcount"; }
    const bool overlap = s < r + recv_bytes && r < s + send_bytes;
    if (overlap && r != in_place)
        return fail(ncclInvalidArgument, "%s: sendbuff %p (%zu bytes) and recvbuff %p (%zu bytes) overlap but are not "
                    "the in-place form (%s, here recvbuff %p, rank %d)", call, (const void*)s, send_bytes,
                    (const void*)r, recv_bytes, form, (const void*)in_place, rank);
    return ncclSuccess;
}

// ---- the cross-rank header: every rank learns every rank's call and whether its checks passed.
// Real NCCL does not do this: a rank with another call or count would hang or compute garbage.
inline ncclResult_t agree(const Call& c) {
    const char* call = kind_name(c.kind);
    const int nranks = c.comm->nranks;
    if (nranks == 1) return c.local;
    int64_t mine[6] = {(int64_t)c.kind, (int64_t)c.count, (int64_t)c.type, (int64_t)c.op, (int64_t)c.root,
                       (int64_t)c.local};
    std::vector<int64_t> all((size_t)6 * nranks);
    MPI_Allgather(mine, 6, MPI_INT64_T, all.data(), 6, MPI_INT64_T, c.comm->mpi);
    if (c.local != ncclSuccess) return c.local;  // keep this rank's own message
    for (int r = 0; r < nranks; r++) {
        const int64_t* h = &all[(size_t)6 * r];
        if (h[5] != ncclSuccess)
            return fail(ncclInvalidUsage, "%s: rank %d rejected its arguments (its ncclGetLastError says why); "
                        "every rank fails this call", call, r);
    }
    for (int r = 0; r < nranks; r++) {
        const int64_t* h = &all[(size_t)6 * r];
        if (h[0] != mine[0])
            return fail(ncclInvalidUsage, "%s on rank %d, but rank %d called %s: every rank must issue the same "
                        "collectives in the same order", call, c.comm->rank, r, kind_name((Kind)h[0]));
        if (h[1] != mine[1])
            return fail(ncclInvalidUsage, "%s: count %zu on rank %d but %lld on rank %d", call, c.count,
                        c.comm->rank, (long long)h[1], r);
        if (h[2] != mine[2])
            return fail(ncclInvalidUsage, "%s: datatype %s on rank %d but %s on rank %d", call, type_name(c.type),
                        c.comm->rank, type_name((ncclDataType_t)h[2]), r);
        if (h[4] != mine[4])
            return fail(ncclInvalidUsage, "%s: root %d on rank %d but %lld on rank %d", call, c.root,
                        c.comm->rank, (long long)h[4], r);
    }
    return ncclSuccess;
}

// ---- the collectives (arguments checked and agreed); MPI moves bytes, sums run here
inline void all_reduce(const Call& c) {
    const int n = c.comm->nranks;
    const int bytes = (int)(c.count * type_size(c.type));
    if (n == 1) { memmove(c.recv, c.send, bytes); return; }
    std::vector<char> pieces((size_t)bytes * n);
    MPI_Allgather(c.send, bytes, MPI_BYTE, pieces.data(), bytes, MPI_BYTE, c.comm->mpi);
    sum_pieces(c.type, pieces.data(), n, c.count, c.recv);
}
inline void reduce(const Call& c) {
    const int n = c.comm->nranks;
    const int bytes = (int)(c.count * type_size(c.type));
    if (n == 1) { memmove(c.recv, c.send, bytes); return; }
    const bool root = c.comm->rank == c.root;
    std::vector<char> pieces(root ? (size_t)bytes * n : 0);
    MPI_Gather(c.send, bytes, MPI_BYTE, pieces.data(), bytes, MPI_BYTE, c.root, c.comm->mpi);
    if (root) sum_pieces(c.type, pieces.data(), n, c.count, c.recv);
}
inline void reduce_scatter(const Call& c) {
    const int n = c.comm->nranks;
    const int bytes = (int)(c.count * type_size(c.type));
    const char* mine = (const char*)c.send + (size_t)c.comm->rank * bytes;
    if (n == 1) { memmove(c.recv, mine, bytes); return; }
    // pieces[r] = rank r's block number `rank` of its sendbuff
    std::vector<char> pieces((size_t)bytes * n);
    MPI_Alltoall(c.send, bytes, MPI_BYTE, pieces.data(), bytes, MPI_BYTE, c.comm->mpi);
    sum_pieces(c.type, pieces.data(), n, c.count, c.recv);
}
inline void all_gather(const Call& c) {
    const int n = c.comm->nranks;
    const int bytes = (int)(c.count * type_size(c.type));
    std::vector<char> pieces((size_t)bytes * n);
    if (n == 1) memcpy(pieces.data(), c.send, bytes);
    else MPI_Allgather(c.send, bytes, MPI_BYTE, pieces.data(), bytes, MPI_BYTE, c.comm->mpi);
    memcpy(c.recv, pieces.data(), pieces.size());  // in place: sendbuff is inside recvbuff, copied already
}
inline void broadcast(const Call& c) {
    const int bytes = (int)(c.count * type_size(c.type));
    if (c.comm->rank == c.root) memmove(c.recv, c.send, bytes);
    if (c.comm->nranks > 1) MPI_Bcast(c.recv, bytes, MPI_BYTE, c.root, c.comm->mpi);
}

// Agrees with the peers, then moves the data.
inline ncclResult_t run(const Call& c) {
    if (ncclResult_t r = agree(c)) return r;
    if (c.count == 0) return ncclSuccess;
    switch (c.kind) {
        case Kind::AllReduce: all_reduce(c); break;
        case Kind::Reduce: reduce(c); break;
        case Kind::ReduceScatter: reduce_scatter(c); break;
        case Kind::AllGather: all_gather(c); break;
        case Kind::Broadcast: broadcast(c); break;
    }
    return ncclSuccess;
}

// Every collective's entry: this rank's checks, then run now or queue until ncclGroupEnd. A call
// whose checks fail is still run/queued (with its error) so that the peers learn of it in agree.
inline ncclResult_t issue(Call c) {
    if (ncclResult_t r = check_comm(kind_name(c.kind), c.comm)) return r;  // no communicator to tell
    c.local = check_call(c);
    if (g_group_depth > 0) {
        g_group_calls.push_back(c);
        return c.local;
    }
    return run(c);
}

}  // namespace nccl_cpu

// ---- NCCL's API

inline const char* ncclGetErrorString(ncclResult_t result) {
    switch (result) {
        case ncclSuccess: return "no error";
        case ncclUnhandledCudaError: return "unhandled cuda error";
        case ncclSystemError: return "unhandled system error";
        case ncclInternalError: return "internal error";
        case ncclInvalidArgument: return "invalid argument";
        case ncclInvalidUsage: return "invalid usage";
        case ncclRemoteError: return "remote process exited or there was a network error";
        case ncclInProgress: return "NCCL operation in progress";
        default: return "unknown result code";
    }
}

// The message of the last error (of any communicator; comm may be NULL).
inline const char* ncclGetLastError(ncclComm_t comm) { return nccl_cpu::g_last_error.c_str(); }

// 128 bytes that differ per call: a marker, this process's id, a counter, the time, random bytes.
inline ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
    if (!uniqueId) return nccl_cpu::fail(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
    memset(uniqueId->internal, 0, NCCL_UNIQUE_ID_BYTES);
    char* p = uniqueId->internal;
    memcpy(p, nccl_cpu::ID_MAGIC, sizeof nccl_cpu::ID_MAGIC);
    p += sizeof nccl_cpu::ID_MAGIC;
    const int64_t words[3] = {(int64_t)getpid(), (int64_t)++nccl_cpu::g_ids_made,
                              (int64_t)std::chrono::steady_clock::now().time_since_epoch().count()};
    memcpy(p, words, sizeof words);
    p += sizeof words;
    std::random_device random;
    while (p + 4 <= uniqueId->internal + NCCL_UNIQUE_ID_BYTES) {
        const uint32_t w = random();
        memcpy(p, &w, 4);
        p += 4;
    }
    return ncclSuccess;
}

// Collective over the MPI job: every process calls it with the same commId (rank 0's, sent by the
// program), nranks == the job's size, rank == its MPI rank. Every rank learns every rank's
// arguments, so a broken id exchange or a wrong rank fails everywhere with the same diagnosis.
inline ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
    using nccl_cpu::fail;
    const char* call = "ncclCommInitRank";
    if (!comm) return fail(ncclInvalidArgument, "%s: comm is NULL", call);
    *comm = nullptr;
    if (nccl_cpu::g_group_depth > 0)
        return fail(ncclInvalidUsage, "%s inside ncclGroupStart/ncclGroupEnd is not implemented by the stand-in", call);
    nccl_cpu::start_mpi_if_launched();
    const bool mpi = nccl_cpu::mpi_active();
    int world = 1, mpi_rank = 0;
    if (mpi) {
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
    }
    ncclResult_t local = ncclSuccess;
    if (nranks < 1) local = fail(ncclInvalidArgument, "%s: nranks %d is below 1", call, nranks);
    else if (rank < 0 || rank >= nranks)
        local = fail(ncclInvalidArgument, "%s: rank %d is out of range [0, nranks = %d)", call, rank, nranks);
    else if (!mpi && nranks > 1)
        local = fail(ncclInvalidUsage, "%s: nranks %d: the stand-in runs one rank per MPI process, and this process "
                     "was not started by an MPI launcher (mpirun -np %d ...)", call, nranks, nranks);
    else if (nranks != world)
        local = fail(ncclInvalidUsage, "%s: nranks %d, but the MPI job has %d processes (the stand-in runs one rank "
                     "per MPI process)", call, nranks, world);
    else if (rank != mpi_rank)
        local = fail(ncclInvalidUsage, "%s: rank %d on the process of MPI rank %d (the stand-in needs rank == MPI rank)",
                     call, rank, mpi_rank);
    else if (memcmp(commId.internal, nccl_cpu::ID_MAGIC, sizeof nccl_cpu::ID_MAGIC) != 0)
        local = fail(ncclInvalidArgument, "%s: commId was not made by ncclGetUniqueId (a broken id exchange?)", call);
    if (mpi) {
        // every rank's result, then every rank's commId, so that all ranks reach the same verdict
        std::vector<int> results(world);
        const int mine = local;
        MPI_Allgather(&mine, 1, MPI_INT, results.data(), 1, MPI_INT, MPI_COMM_WORLD);
        std::vector<char> ids((size_t)NCCL_UNIQUE_ID_BYTES * world);
        MPI_Allgather(commId.internal, NCCL_UNIQUE_ID_BYTES, MPI_BYTE, ids.data(), NCCL_UNIQUE_ID_BYTES, MPI_BYTE,
                      MPI_COMM_WORLD);
        if (local != ncclSuccess) return local;
        for (int r = 0; r < world; r++)
            if (results[r] != ncclSuccess)
                return fail(ncclInvalidUsage, "%s: rank %d rejected its arguments (its ncclGetLastError says why)", call, r);
        for (int r = 1; r < world; r++)
            if (memcmp(&ids[(size_t)NCCL_UNIQUE_ID_BYTES * r], ids.data(), NCCL_UNIQUE_ID_BYTES) != 0)
                return fail(ncclInvalidUsage, "%s: rank %d passed another commId than rank 0 (every rank must pass the "
                            "one id rank 0 made: a broken id exchange?)", call, r);
    }
    if (local != ncclSuccess) return local;
    auto made = std::make_unique<ncclComm>();
    made->rank = rank;
    made->nranks = nranks;
    if (mpi) MPI_Comm_dup(MPI_COMM_WORLD, &made->mpi);
    *comm = made.get();
    nccl_cpu::g_comms.push_back(std::move(made));
    return ncclSuccess;
}

// Frees the communicator (NULL: nothing to do, as NCCL). Calls queued in an open group on it are
// an error.
inline ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return ncclSuccess;
    if (ncclResult_t r = nccl_cpu::check_comm("ncclCommDestroy", comm)) return r;
    for (const nccl_cpu::Call& c : nccl_cpu::g_group_calls)
        if (c.comm == comm)
            return nccl_cpu::fail(ncclInvalidUsage, "ncclCommDestroy: comm has calls queued in an open group "
                                  "(call ncclGroupEnd first)");
    if (comm->mpi != MPI_COMM_NULL && nccl_cpu::mpi_active()) MPI_Comm_free(&comm->mpi);
    comm->alive = false;
    return ncclSuccess;
}

// Under an MPI launcher: ends the whole job (MPI_Abort; this process too), since one communicator
// cannot be torn down while a peer waits in MPI. Print the reason first. Without MPI: destroys it.
inline ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (!comm) return ncclSuccess;
    if (ncclResult_t r = nccl_cpu::check_comm("ncclCommAbort", comm)) return r;
    if (comm->mpi != MPI_COMM_NULL && nccl_cpu::mpi_active()) {
        fprintf(stderr, "ncclCommAbort (dev/simt/nccl_cpu.h): rank %d ends the MPI job\n", comm->rank);
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    comm->alive = false;
    return ncclSuccess;
}

// Nothing runs asynchronously here: always ncclSuccess.
inline ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
    if (ncclResult_t r = nccl_cpu::check_comm("ncclCommGetAsyncError", comm)) return r;
    if (!asyncError) return nccl_cpu::fail(ncclInvalidArgument, "ncclCommGetAsyncError: asyncError is NULL");
    *asyncError = ncclSuccess;
    return ncclSuccess;
}

inline ncclResult_t ncclGroupStart() {
    nccl_cpu::g_group_depth++;
    return ncclSuccess;
}

// The outermost ncclGroupEnd runs the queued calls in order. The first that fails (on any rank: all
// ranks see the same headers) stops the group; its error is returned and the rest are dropped.
inline ncclResult_t ncclGroupEnd() {
    if (nccl_cpu::g_group_depth == 0)
        return nccl_cpu::fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    if (--nccl_cpu::g_group_depth > 0) return ncclSuccess;
    std::vector<nccl_cpu::Call> calls;
    calls.swap(nccl_cpu::g_group_calls);
    for (const nccl_cpu::Call& c : calls)
        if (ncclResult_t r = nccl_cpu::run(c)) return r;
    return ncclSuccess;
}

inline ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                  ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    return nccl_cpu::issue({nccl_cpu::Kind::AllReduce, sendbuff, recvbuff, count, datatype, op, 0, comm, ncclSuccess});
}

// recvbuff is written (and checked) on the root only.
inline ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                               ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
    return nccl_cpu::issue({nccl_cpu::Kind::Reduce, sendbuff, recvbuff, count, datatype, op, root, comm, ncclSuccess});
}

// sendbuff: nranks blocks of recvcount; rank r gets the sum of every rank's block r.
inline ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                      ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    return nccl_cpu::issue({nccl_cpu::Kind::ReduceScatter, sendbuff, recvbuff, recvcount, datatype, op, 0, comm,
                            ncclSuccess});
}

// recvbuff: nranks blocks of sendcount; block r is rank r's sendbuff.
inline ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                                  ncclComm_t comm, cudaStream_t stream) {
    return nccl_cpu::issue({nccl_cpu::Kind::AllGather, sendbuff, recvbuff, sendcount, datatype, ncclSum, 0, comm,
                            ncclSuccess});
}

// sendbuff is read (and checked) on the root only.
inline ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                  int root, ncclComm_t comm, cudaStream_t stream) {
    return nccl_cpu::issue({nccl_cpu::Kind::Broadcast, sendbuff, recvbuff, count, datatype, ncclSum, root, comm,
                            ncclSuccess});
}
