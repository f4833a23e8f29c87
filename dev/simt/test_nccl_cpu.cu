// dev/simt/test_nccl_cpu.cu: the NCCL calls the trainer makes, checked on every rank against
// results the test computes itself. With g++ it tests dev/simt/nccl_cpu.h (the stand-in over MPI;
// dev/simt/test_nccl_cpu.sh runs it alone and under mpirun with 1, 2 and 3 processes); with nvcc
// the same checks run against real NCCL on a GPU (dev/gpu_check.sh runs it as one rank).
//
// Every rank's data is a function of (seed, call number, rank, element), so each rank computes
// every peer's data and the expected result itself. The seed comes from the ncclUniqueId all
// ranks share (KERNEL_TEST_SEED=<n> replays). Each call runs out of place and in place (NCCL's
// in-place forms), for float32, bfloat16, float64, int32, int8, uint8 and counts 1, 63, 1000.
// Tolerances: the stand-in sums in rank order, so its results must equal the rank-order sums
// exactly; real NCCL sums in its ring/tree order (bf16 rounded at each hop), so on a GPU a sum
// may differ by world * (the type's epsilon) * sum|x|; copies and integers exact everywhere.
// The error checks that real NCCL does not make (buffer sizes, in-place pointers, peers that
// disagree) run on the stand-in only.
//
// Rank, world and the id exchange: under g++ started by mpirun, MPI (MPI_Bcast) unless
// NCCL_TEST_ID_FILE is set; otherwise the launcher's variables (OMPI_COMM_WORLD_RANK/SIZE) and,
// for more than one rank, rank 0 writes the id to $NCCL_TEST_ID_FILE and the others read it.
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dev/cuda/expect_exit.h"
#include "dev/simt/kernel_test.h"
#include "kernels/nccl_common.h"

static int g_rank = 0, g_world = 1;
static uint64_t g_seed = 0;
static ncclComm_t g_comm = nullptr;
static cudaStream_t g_stream = nullptr;
#if SIMT_CPU
static bool g_test_started_mpi = false;
#endif

// A check's name with this rank, so that a FAIL line says where.
static std::string on_rank(const char* name) {
    return std::string(name) + " (rank " + std::to_string(g_rank) + " of " + std::to_string(g_world) + ")";
}

// ---------------------------------------------------------------------------------------------
// Start-up: who am I, and rank 0's ncclUniqueId on every rank.
static int env_int(const char* name, int fallback) {
    const char* v = getenv(name);
    return v ? atoi(v) : fallback;
}

static bool exchange_id_by_file(ncclUniqueId* id, std::string* err) {
    const char* path = getenv("NCCL_TEST_ID_FILE");
    if (!path) { *err = "more than one rank without MPI: set NCCL_TEST_ID_FILE to a path all ranks can read"; return false; }
    if (g_rank == 0) {
        const std::string tmp = std::string(path) + ".tmp";
        FILE* f = fopen(tmp.c_str(), "wb");
        if (!f || fwrite(id->internal, 1, NCCL_UNIQUE_ID_BYTES, f) != NCCL_UNIQUE_ID_BYTES || fclose(f) != 0 ||
            rename(tmp.c_str(), path) != 0) {
            *err = std::string("cannot write ") + path;
            return false;
        }
        return true;
    }
    for (int tries = 0; tries < 6000; tries++) {  // 60 s
        if (FILE* f = fopen(path, "rb")) {
            const size_t got = fread(id->internal, 1, NCCL_UNIQUE_ID_BYTES, f);
            fclose(f);
            if (got == NCCL_UNIQUE_ID_BYTES) return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    *err = std::string("rank 0 did not write ") + path + " within 60 s";
    return false;
}

// Sets g_rank, g_world, g_seed, g_comm.
static void start(int* argc, char*** argv) {
    g_rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    g_world = env_int("OMPI_COMM_WORLD_SIZE", 1);
#if SIMT_CPU
    const bool by_mpi = getenv("OMPI_COMM_WORLD_SIZE") && !getenv("NCCL_TEST_ID_FILE");
    if (by_mpi) {  // this program initialises MPI itself: the stand-in must not finalize it
        MPI_Init(argc, argv);
        g_test_started_mpi = true;
        MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    }
#endif
    CUDA_CHECK(cudaSetDevice(env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0) % [] { int n = 1; cudaGetDeviceCount(&n); return n; }()));
    ncclUniqueId id;
    if (g_rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    std::string err;
    bool ok = true;
#if SIMT_CPU
    if (by_mpi) MPI_Bcast(id.internal, NCCL_UNIQUE_ID_BYTES, MPI_BYTE, 0, MPI_COMM_WORLD);
    else
#endif
    if (g_world > 1) ok = exchange_id_by_file(&id, &err);
    if (!ok) { fprintf(stderr, "test_nccl_cpu rank %d: %s\n", g_rank, err.c_str()); exit(1); }
    // the seed: from the id every rank now holds, unless given
    g_seed = 1469598103934665603ull;
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++) g_seed = (g_seed ^ (uint8_t)id.internal[i]) * 1099511628211ull;
    if (const char* s = getenv("KERNEL_TEST_SEED")) g_seed = strtoull(s, nullptr, 10);
    if (g_rank == 0) printf("seed %llu (KERNEL_TEST_SEED to replay), %d rank(s)\n", (unsigned long long)g_seed, g_world);
    NCCL_CHECK(ncclCommInitRank(&g_comm, g_world, id, g_rank));
    CUDA_CHECK(cudaStreamCreate(&g_stream));
}

// ---------------------------------------------------------------------------------------------
// Data and the expected results.
static uint64_t mix(uint64_t x) {  // splitmix64's finaliser
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
// A number in [-1, 1) for element i of rank r's buffer in call number `call`.
static double unit(int call, int r, size_t i) {
    const uint64_t h = mix(g_seed ^ mix(((uint64_t)call << 40) ^ ((uint64_t)r << 32) ^ i));
    return (double)(h >> 11) / (double)(1ull << 52) - 1.0;
}

// Per type: a value from unit(), the rank-order sum, a double view, the GPU tolerance factor.
template <class T> struct Type;
template <> struct Type<float> {
    static constexpr ncclDataType_t nccl = ncclFloat32;
    static constexpr const char* name = "float32";
    static float make(double u) { return (float)(4.0 * u); }
    static double value(float v) { return v; }
    static float sum(const std::vector<float>& x) { float a = x[0]; for (size_t r = 1; r < x.size(); r++) a += x[r]; return a; }
    static constexpr double gpu_eps = 1.2e-7;
};
template <> struct Type<__nv_bfloat16> {
    static constexpr ncclDataType_t nccl = ncclBfloat16;
    static constexpr const char* name = "bfloat16";
    static __nv_bfloat16 make(double u) { return __float2bfloat16((float)(4.0 * u)); }
    static double value(__nv_bfloat16 v) { return __bfloat162float(v); }
    static __nv_bfloat16 sum(const std::vector<__nv_bfloat16>& x) {  // in float, rounded once
        float a = __bfloat162float(x[0]);
        for (size_t r = 1; r < x.size(); r++) a += __bfloat162float(x[r]);
        return __float2bfloat16(a);
    }
    static constexpr double gpu_eps = 7.9e-3;  // 2^-7: one bf16 rounding per hop, up to ~1 ulp each
};
template <> struct Type<double> {
    static constexpr ncclDataType_t nccl = ncclFloat64;
    static constexpr const char* name = "float64";
    static double make(double u) { return 4.0 * u; }
    static double value(double v) { return v; }
    static double sum(const std::vector<double>& x) { double a = x[0]; for (size_t r = 1; r < x.size(); r++) a += x[r]; return a; }
    static constexpr double gpu_eps = 2.3e-16;
};
template <> struct Type<int32_t> {
    static constexpr ncclDataType_t nccl = ncclInt32;
    static constexpr const char* name = "int32";
    static int32_t make(double u) { return (int32_t)(u * (1 << 28)); }  // 3 ranks cannot overflow
    static double value(int32_t v) { return v; }
    static int32_t sum(const std::vector<int32_t>& x) { int64_t a = 0; for (int32_t v : x) a += v; return (int32_t)a; }
    static constexpr double gpu_eps = 0;
};
template <> struct Type<int8_t> {
    static constexpr ncclDataType_t nccl = ncclInt8;
    static constexpr const char* name = "int8";
    static int8_t make(double u) { return (int8_t)(u * 127.0); }
    static double value(int8_t v) { return v; }
    static int8_t sum(const std::vector<int8_t>& x) {  // wraps modulo 256, as on a GPU
        unsigned a = 0;
        for (int8_t v : x) a += (uint8_t)v;
        const uint8_t low = (uint8_t)a;
        return (int8_t)(low < 128 ? (int)low : (int)low - 256);
    }
    static constexpr double gpu_eps = 0;
};
template <> struct Type<uint8_t> {
    static constexpr ncclDataType_t nccl = ncclUint8;
    static constexpr const char* name = "uint8";
    static uint8_t make(double u) { return (uint8_t)((u + 1.0) * 127.9); }
    static double value(uint8_t v) { return v; }
    static uint8_t sum(const std::vector<uint8_t>& x) { unsigned a = 0; for (uint8_t v : x) a += v; return (uint8_t)(a % 256); }
    static constexpr double gpu_eps = 0;
};

// rank r's buffer of n elements in call number `call`
template <class T> static std::vector<T> data_of(int call, int r, size_t n) {
    std::vector<T> v(n);
    for (size_t i = 0; i < n; i++) v[i] = Type<T>::make(unit(call, r, i));
    return v;
}

// Compares got with want; `sums` allows the GPU tolerance (sums of `world` terms of size <= 4).
// Appends the first difference to *why.
template <class T> static bool same(const std::vector<T>& got, const std::vector<T>& want, bool sums,
                                    const char* what, std::string* why) {
    const double tol = (!SIMT_CPU && sums) ? Type<T>::gpu_eps * g_world * 4.0 * g_world : 0.0;
    for (size_t i = 0; i < want.size(); i++) {
        const double g = Type<T>::value(got[i]), w = Type<T>::value(want[i]);
        const bool ok = tol == 0 ? memcmp(&got[i], &want[i], sizeof(T)) == 0 : std::fabs(g - w) <= tol;
        if (!ok) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s[%zu] is %.9g, expected %.9g (tolerance %.3g)", what, i, g, w, tol);
            *why = buf;
            return false;
        }
    }
    return true;
}

template <class T> static std::vector<T> download(const T* p, size_t n) {
    std::vector<T> h(n);
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}
template <class T> static void upload(T* p, const std::vector<T>& h) {
    CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}
template <class T> static T* device_alloc(size_t n) {
    T* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
    CUDA_CHECK(cudaMemset(p, 0x5A, n * sizeof(T)));  // recognisable: "never written"
    return p;
}

// ---------------------------------------------------------------------------------------------
// The collectives, each out of place and in place, for one type and counts 1, 63, 1000.
enum class Coll { AllReduce, Reduce, ReduceScatter, AllGather, Broadcast };
static const char* coll_name(Coll c) {
    const char* names[] = {"ncclAllReduce", "ncclReduce", "ncclReduceScatter", "ncclAllGather", "ncclBroadcast"};
    return names[(int)c];
}
static int g_call = 0;  // call number: the same sequence on every rank

// Runs one call of `coll` with `count`; returns false with *why on a difference or an error.
template <class T> static bool one_call(Coll coll, bool in_place, size_t count, std::string* why) {
    const int call = ++g_call, W = g_world, me = g_rank;
    const int root = W - 1;  // Reduce and Broadcast: the last rank (rank 0 for one rank)
    const ncclDataType_t type = Type<T>::nccl;
    const size_t send_n = coll == Coll::ReduceScatter ? count * W : count;
    const size_t recv_n = coll == Coll::AllGather ? count * W : coll == Coll::ReduceScatter ? count : count;
    std::vector<std::vector<T>> all(W);  // every rank's send data
    for (int r = 0; r < W; r++) all[r] = data_of<T>(call, r, send_n);
    // buffers: in place, one buffer holding both (NCCL's in-place forms); else two
    const size_t buf_n = std::max(send_n, recv_n);
    T* buf = device_alloc<T>(in_place ? buf_n : send_n);
    T* other = in_place ? nullptr : device_alloc<T>(recv_n);
    T *send = buf, *recv = in_place ? buf : other;
    if (in_place && coll == Coll::AllGather) send = buf + (size_t)me * count;
    if (in_place && coll == Coll::ReduceScatter) recv = buf + (size_t)me * count;
    upload(send, all[me]);
    const std::vector<T> recv_before = download(recv, recv_n);
    ncclResult_t res = ncclSuccess;
    switch (coll) {
        case Coll::AllReduce: res = ncclAllReduce(send, recv, count, type, ncclSum, g_comm, g_stream); break;
        case Coll::Reduce: res = ncclReduce(send, recv, count, type, ncclSum, root, g_comm, g_stream); break;
        case Coll::ReduceScatter: res = ncclReduceScatter(send, recv, count, type, ncclSum, g_comm, g_stream); break;
        case Coll::AllGather: res = ncclAllGather(send, recv, count, type, g_comm, g_stream); break;
        case Coll::Broadcast: res = ncclBroadcast(send, recv, count, type, root, g_comm, g_stream); break;
    }
    bool ok = res == ncclSuccess;
    if (!ok) *why = std::string(ncclGetErrorString(res)) + ": " + ncclGetLastError(g_comm);
    // the expected recvbuff
    std::vector<T> want(recv_n);
    bool sums = true;
    std::vector<T> column(W);
    for (size_t i = 0; i < recv_n && ok; i++) {
        switch (coll) {
            case Coll::AllReduce:
            case Coll::Reduce:
                for (int r = 0; r < W; r++) column[r] = all[r][i];
                want[i] = Type<T>::sum(column);
                break;
            case Coll::ReduceScatter:
                for (int r = 0; r < W; r++) column[r] = all[r][(size_t)me * count + i];
                want[i] = Type<T>::sum(column);
                break;
            case Coll::AllGather: want[i] = all[i / count][i % count]; sums = false; break;
            case Coll::Broadcast: want[i] = all[root][i]; sums = false; break;
        }
    }
    // Reduce writes the root's recvbuff only: elsewhere it keeps what it held (its data in place)
    if (coll == Coll::Reduce && me != root) { want = recv_before; sums = false; }
    char what[64];
    snprintf(what, sizeof what, "count %zu: recvbuff", count);
    if (ok) ok = same(download(recv, recv_n), want, sums, what, why);
    snprintf(what, sizeof what, "count %zu: sendbuff (must not change)", count);
    if (ok && !in_place) ok = same(download(send, send_n), all[me], false, what, why);
    CUDA_CHECK(cudaFree(buf));
    if (other) CUDA_CHECK(cudaFree(other));
    return ok;
}

template <class T> static void check_type() {
    for (Coll coll : {Coll::AllReduce, Coll::Reduce, Coll::ReduceScatter, Coll::AllGather, Coll::Broadcast})
        for (bool in_place : {false, true}) {
            std::string why;
            bool ok = true;
            for (size_t count : {1, 63, 1000})
                if (ok) ok = one_call<T>(coll, in_place, count, &why);
            char name[160];
            snprintf(name, sizeof name, "%s %s %s (rank %d of %d)", coll_name(coll), Type<T>::name,
                     in_place ? "in place" : "out of place", g_rank, g_world);
            test_report(ok, name, "%s", why.c_str());
        }
}

// ---------------------------------------------------------------------------------------------
// Grouped calls: queued, run at the (outermost) ncclGroupEnd in order, reading their buffers then.
static void check_group() {
    const int call = ++g_call, W = g_world, me = g_rank;
    const size_t n = 63;
    float* a = device_alloc<float>(n);                   // AllReduce in place
    __nv_bfloat16* rs_send = device_alloc<__nv_bfloat16>(n * W);  // ReduceScatter out of place
    __nv_bfloat16* rs_recv = device_alloc<__nv_bfloat16>(n);
    int32_t* gathered = device_alloc<int32_t>(n * W);    // AllGather in place
    double* bc = device_alloc<double>(n);                // Broadcast from rank 0, in place
    std::vector<std::vector<float>> fa(W);
    std::vector<std::vector<__nv_bfloat16>> fb(W);
    std::vector<std::vector<int32_t>> fc(W);
    for (int r = 0; r < W; r++) {
        fa[r] = data_of<float>(call, r, n);
        fb[r] = data_of<__nv_bfloat16>(call + 1000000, r, n * W);
        fc[r] = data_of<int32_t>(call + 2000000, r, n);
    }
    const std::vector<double> fd = data_of<double>(call + 3000000, 0, n);
    upload(rs_send, fb[me]);
    upload(gathered + (size_t)me * n, fc[me]);
    upload(bc, me == 0 ? fd : data_of<double>(call + 4000000, me, n));
    // a's data is uploaded after the AllReduce is queued: the group reads it at ncclGroupEnd
    bool ok = true;
    std::string why;
    ok &= ncclGroupStart() == ncclSuccess;
    ok &= ncclAllReduce(a, a, n, ncclFloat32, ncclSum, g_comm, g_stream) == ncclSuccess;
    ok &= ncclGroupStart() == ncclSuccess;  // nested: only the outer end runs the calls
    ok &= ncclReduceScatter(rs_send, rs_recv, n, ncclBfloat16, ncclSum, g_comm, g_stream) == ncclSuccess;
    ok &= ncclGroupEnd() == ncclSuccess;
    ok &= ncclAllGather(gathered + (size_t)me * n, gathered, n, ncclInt32, g_comm, g_stream) == ncclSuccess;
    ok &= ncclBroadcast(bc, bc, n, ncclFloat64, 0, g_comm, g_stream) == ncclSuccess;
    upload(a, fa[me]);
    ok &= ncclGroupEnd() == ncclSuccess;
    if (!ok) why = std::string("a call returned an error: ") + ncclGetLastError(g_comm);
    std::vector<float> want_a(n), ca(W);
    std::vector<__nv_bfloat16> want_b(n), cb(W);
    std::vector<int32_t> want_c(n * W);
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < W; r++) { ca[r] = fa[r][i]; cb[r] = fb[r][(size_t)me * n + i]; }
        want_a[i] = Type<float>::sum(ca);
        want_b[i] = Type<__nv_bfloat16>::sum(cb);
    }
    for (int r = 0; r < W; r++) std::copy(fc[r].begin(), fc[r].end(), want_c.begin() + (size_t)r * n);
    if (ok) ok = same(download(a, n), want_a, true, "AllReduce", &why);
    if (ok) ok = same(download(rs_recv, n), want_b, true, "ReduceScatter", &why);
    if (ok) ok = same(download(gathered, n * W), want_c, false, "AllGather", &why);
    if (ok) ok = same(download(bc, n), fd, false, "Broadcast", &why);
    test_report(ok, on_rank("grouped (and nested) calls run at ncclGroupEnd, reading their buffers then").c_str(), "%s",
                why.c_str());
    CUDA_CHECK(cudaFree(a)); CUDA_CHECK(cudaFree(rs_send)); CUDA_CHECK(cudaFree(rs_recv));
    CUDA_CHECK(cudaFree(gathered)); CUDA_CHECK(cudaFree(bc));
}

// ---------------------------------------------------------------------------------------------
// Errors. expect_error: the call returned `want` and ncclGetLastError contains `text`.
static void expect_error(const char* name, ncclResult_t got, ncclResult_t want, const char* text) {
    const std::string message = ncclGetLastError(g_comm);
    test_report(got == want && message.find(text) != std::string::npos, on_rank(name).c_str(),
                "returned %d (%s), ncclGetLastError \"%s\"; expected %d (%s) and \"%s\"", (int)got,
                ncclGetErrorString(got), message.c_str(), (int)want, ncclGetErrorString(want), text);
}

// Errors real NCCL reports too (on a GPU as well).
static void check_nccl_errors() {
    float* x = device_alloc<float>(64);
    expect_error("ncclBroadcast root out of range", ncclBroadcast(x, x, 64, ncclFloat32, g_world, g_comm, g_stream),
                 ncclInvalidArgument, "");
    expect_error("ncclAllReduce invalid datatype", ncclAllReduce(x, x, 64, (ncclDataType_t)99, ncclSum, g_comm, g_stream),
                 ncclInvalidArgument, "");
    expect_error("ncclGroupEnd without ncclGroupStart", ncclGroupEnd(), ncclInvalidUsage, "");
    ncclResult_t async = ncclInternalError;
    const ncclResult_t got = ncclCommGetAsyncError(g_comm, &async);
    test_report(got == ncclSuccess && async == ncclSuccess, on_rank("ncclCommGetAsyncError reports no error").c_str(),
                "returned %d, asyncError %d", (int)got, (int)async);
    ncclUniqueId a, b;
    const bool made = ncclGetUniqueId(&a) == ncclSuccess && ncclGetUniqueId(&b) == ncclSuccess;
    test_report(made && memcmp(a.internal, b.internal, NCCL_UNIQUE_ID_BYTES) != 0, on_rank("ncclGetUniqueId differs per call").c_str());
    ncclComm_t bad = nullptr;
    expect_error("ncclCommInitRank rank out of range", ncclCommInitRank(&bad, g_world, a, g_world), ncclInvalidArgument, "");
    CUDA_CHECK(cudaFree(x));
}

#if SIMT_CPU
// Errors only the stand-in reports (real NCCL would compute garbage, read out of bounds or hang).
static void check_stand_in_errors() {
    const int W = g_world, me = g_rank;
    const size_t n = 63;
    float* x = device_alloc<float>(n * W + 1);  // + 1: room for the pointers one element off
    float* y = device_alloc<float>(n * W);
    float* small = device_alloc<float>(n - 1);
    expect_error("ncclAllGather in place off by one element", ncclAllGather(x + (size_t)me * n + 1, x, n, ncclFloat32, g_comm, g_stream),
                 ncclInvalidArgument, "sendbuff == recvbuff + rank*sendcount");
    expect_error("ncclReduceScatter in place off by one element", ncclReduceScatter(x, x + (size_t)me * n + 1, n, ncclFloat32, ncclSum, g_comm, g_stream),
                 ncclInvalidArgument, "recvbuff == sendbuff + rank*recvcount");
    expect_error("ncclAllReduce overlapping buffers", ncclAllReduce(x, x + 1, n, ncclFloat32, ncclSum, g_comm, g_stream),
                 ncclInvalidArgument, "overlap");
    expect_error("ncclAllReduce recvbuff too small", ncclAllReduce(x, small, n, ncclFloat32, ncclSum, g_comm, g_stream),
                 ncclInvalidArgument, "recvbuff");
    expect_error("ncclReduceScatter sendbuff too small for nranks*recvcount", ncclReduceScatter(small, y, (n - 1) / W + 1, ncclFloat32, ncclSum, g_comm, g_stream),
                 ncclInvalidArgument, "sendbuff");
    std::vector<float> host(n);
    expect_error("ncclAllReduce host memory", ncclAllReduce(host.data(), y, n, ncclFloat32, ncclSum, g_comm, g_stream),
                 ncclInvalidArgument, "not inside a cudaMalloc allocation");
    expect_error("ncclAllReduce unsupported op ncclMax", ncclAllReduce(x, y, n, ncclFloat32, ncclMax, g_comm, g_stream),
                 ncclInvalidArgument, "ncclSum only");
    expect_error("ncclAllReduce unsupported type ncclInt64", ncclAllReduce(x, y, n / 2, ncclInt64, ncclSum, g_comm, g_stream),
                 ncclInvalidArgument, "ncclInt64");
    // one rank's mistake: that rank gets its own message, the others name it
    if (W > 1) {
        const ncclResult_t r = ncclAllReduce(x, me == 1 ? small : y, n, ncclFloat32, ncclSum, g_comm, g_stream);
        if (me == 1) expect_error("one rank's too-small buffer fails every rank", r, ncclInvalidArgument, "recvbuff");
        else expect_error("one rank's too-small buffer fails every rank", r, ncclInvalidUsage, "rank 1 rejected its arguments");
        expect_error("counts that differ across ranks", ncclAllReduce(x, y, n - me, ncclFloat32, ncclSum, g_comm, g_stream),
                     ncclInvalidUsage, "count");
        const ncclResult_t k = me == 0 ? ncclAllReduce(x, y, n, ncclFloat32, ncclSum, g_comm, g_stream)
                                       : ncclBroadcast(x, y, n, ncclFloat32, 0, g_comm, g_stream);
        expect_error("different collectives across ranks", k, ncclInvalidUsage, "every rank must issue the same collectives");
    } else {
        test_skip("one rank's too-small buffer fails every rank", "needs 2 ranks");
        test_skip("counts that differ across ranks", "needs 2 ranks");
        test_skip("different collectives across ranks", "needs 2 ranks");
    }
    // a group with a rejected call: the call and ncclGroupEnd fail, the group's other calls do not run
    ncclGroupStart();
    const ncclResult_t queued = ncclAllReduce(x, y, n, ncclFloat32, ncclSum, g_comm, g_stream);
    const ncclResult_t rejected = ncclAllReduce(x, y, n, ncclFloat32, ncclProd, g_comm, g_stream);
    const ncclResult_t end = ncclGroupEnd();
    test_report(queued == ncclSuccess && rejected == ncclInvalidArgument && end == ncclInvalidArgument,
                on_rank("a rejected call in a group fails ncclGroupEnd").c_str(), "returned %d, %d, %d", (int)queued, (int)rejected, (int)end);
    // communicators: a broken id exchange, wrong ranks, a destroyed comm
    ncclUniqueId id, zero;
    memset(zero.internal, 0, NCCL_UNIQUE_ID_BYTES);
    ncclGetUniqueId(&id);  // a different id on every rank
    ncclComm_t c = nullptr;
    if (W > 1)
        expect_error("ncclCommInitRank with another id on each rank", ncclCommInitRank(&c, W, id, me), ncclInvalidUsage, "another commId");
    else
        test_skip("ncclCommInitRank with another id on each rank", "needs 2 ranks");
    expect_error("ncclCommInitRank with an id not from ncclGetUniqueId", ncclCommInitRank(&c, W, zero, me),
                 ncclInvalidArgument, "not made by ncclGetUniqueId");
    expect_error("ncclCommInitRank nranks unlike the MPI job", ncclCommInitRank(&c, W + 1, id, me), ncclInvalidUsage, "nranks");
    if (W > 1)
        expect_error("ncclCommInitRank rank unlike the MPI rank", ncclCommInitRank(&c, W, id, (me + 1) % W), ncclInvalidUsage, "MPI rank");
    else
        test_skip("ncclCommInitRank rank unlike the MPI rank", "needs 2 ranks");
    // a second communicator on one shared id: works, then fails once destroyed
    if (me == 0) ncclGetUniqueId(&id);
    {   // rank 0's id to every rank, through the communicator under test
        uint8_t* dev = device_alloc<uint8_t>(NCCL_UNIQUE_ID_BYTES);
        CUDA_CHECK(cudaMemcpy(dev, id.internal, NCCL_UNIQUE_ID_BYTES, cudaMemcpyHostToDevice));
        NCCL_CHECK(ncclBroadcast(dev, dev, NCCL_UNIQUE_ID_BYTES, ncclUint8, 0, g_comm, g_stream));
        CUDA_CHECK(cudaMemcpy(id.internal, dev, NCCL_UNIQUE_ID_BYTES, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaFree(dev));
    }
    const ncclResult_t made = ncclCommInitRank(&c, W, id, me);
    test_report(made == ncclSuccess, on_rank("a second communicator").c_str(), "%s", ncclGetLastError(nullptr));
    if (made == ncclSuccess) {
        NCCL_CHECK(ncclAllReduce(x, y, n, ncclFloat32, ncclSum, c, g_stream));
        NCCL_CHECK(ncclCommDestroy(c));
        expect_error("a call on a destroyed communicator", ncclAllReduce(x, y, n, ncclFloat32, ncclSum, c, g_stream),
                     ncclInvalidUsage, "destroyed");
    }
    expect_error("a NULL communicator", ncclAllReduce(x, y, n, ncclFloat32, ncclSum, nullptr, g_stream), ncclInvalidArgument, "NULL");
    // NCCL_CHECK's message, in a forked child: not under MPI (a forked MPI process must not call
    // MPI); under mpirun, test_nccl_cpu.sh checks that a failing NCCL_CHECK ends the whole job
    if (!getenv("OMPI_COMM_WORLD_SIZE")) {
        expect_exit_message("NCCL_CHECK names the file and line",
                            "test_nccl_cpu.cu:", [] { NCCL_CHECK(ncclGroupEnd()); });
        expect_exit_message("NCCL_CHECK names the call, the result and ncclGetLastError's message",
                            "NCCL error in ncclGroupEnd(): invalid usage (ncclGroupEnd without ncclGroupStart)",
                            [] { NCCL_CHECK(ncclGroupEnd()); });
    }
    CUDA_CHECK(cudaFree(x)); CUDA_CHECK(cudaFree(y)); CUDA_CHECK(cudaFree(small));
}
#endif

int main(int argc, char** argv) {
    start(&argc, &argv);
    // NCCL_TEST_FAIL_RANK=r (test_nccl_cpu.sh): rank r fails an NCCL_CHECK while its peers wait
    // for it in a collective; the job must end (the stand-in's NCCL_CHECK aborts it), not hang.
    if (getenv("NCCL_TEST_FAIL_RANK")) {
        float* x = device_alloc<float>(1);
        if (g_rank == env_int("NCCL_TEST_FAIL_RANK", 0)) NCCL_CHECK(ncclGroupEnd());
        NCCL_CHECK(ncclAllReduce(x, x, 1, ncclFloat32, ncclSum, g_comm, g_stream));
        return 0;
    }
    check_type<float>();
    check_type<__nv_bfloat16>();
    check_type<double>();
    check_type<int32_t>();
    check_type<int8_t>();
    check_type<uint8_t>();
    check_group();
    check_nccl_errors();
#if SIMT_CPU
    check_stand_in_errors();
#else
    test_skip("the stand-in's own error checks", "real NCCL does not check buffer sizes, in-place pointers or peers");
#endif
    NCCL_CHECK(ncclCommDestroy(g_comm));
    CUDA_CHECK(cudaStreamDestroy(g_stream));
    const int status = test_exit();
#if SIMT_CPU
    if (g_test_started_mpi) MPI_Finalize();
#endif
    return status;
}
