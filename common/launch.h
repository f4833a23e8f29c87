// Who this process is in a data-parallel job (rank, world size, local rank), and the one exchange
// every job needs before NCCL can start: rank 0's bytes (the 128-byte ncclUniqueId) to every rank.
// Host code only (POSIX files and sockets); MPI only where the build defines DIST_WITH_MPI.
//
//   LaunchInfo info;
//   if (!resolve_launch(tc.launch, tc.out_dir, process_environment, &info, &err)) fatal(err);
//   printf("launch: %s\n", launch_summary(info).c_str());
//   if (!rendezvous_broadcast(info, &id, sizeof id, &err)) fatal(err);     // every rank
//
// Who (resolve_launch). --world-size and --rank (both, or neither) win; --local-rank defaults to
// the launcher's local rank, else to the rank (right on one machine). Without the flags, the
// launcher's environment:
//   Open MPI (mpirun)   OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
//   PMI (MPICH, srun --mpi=pmi2)  PMI_RANK, PMI_SIZE, MPI_LOCALRANKID (if set)
//   torchrun-style      RANK, WORLD_SIZE, LOCAL_RANK
//   Slurm (srun)        SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; only inside an srun step
//                       (SLURM_STEP_ID set): a batch script itself has SLURM_PROCID=0 and the
//                       allocation's SLURM_NTASKS, and is one process.
// The first three start each process themselves, so they win over Slurm's variables, which also
// reach processes that mpirun or torchrun start inside an allocation. Two of the first three that
// disagree are an error, as are a half-set source (RANK without WORLD_SIZE), a value that is not
// a whole number, rank >= world, world < 1 and local rank < 0. No source: one process.
//
// The exchange (--dist-init; rendezvous_broadcast), each wait bounded by --dist-timeout:
//   file:PATH      a path every rank sees (a shared filesystem). Rank r > 0 writes PATH.rank<r>
//                  with a fresh random 64-bit nonce; when every rank's request is there, rank 0
//                  writes PATH: the world size, every rank's nonce and the bytes; rank r takes
//                  the bytes only from a PATH that carries its own nonce and confirms in
//                  PATH.rank<r>.ok (the nonce again); rank 0 waits for every confirmation, then
//                  removes all these files. Files left by an earlier job that died can therefore
//                  never be taken: an old PATH carries other nonces, and rank 0 removes old PATH
//                  and .ok files when it starts (no rank of this job can have confirmed yet).
//                  An old request is harmless: its rank overwrites it when it starts, and rank 0
//                  rewrites PATH when a request changes. Every file is written atomically
//                  (common/atomic_file.h). The formats are text lines (below); on NFS a new
//                  file can take up to a minute to appear on another machine.
//   tcp:HOST:PORT  rank 0 listens on PORT (all its interfaces, SO_REUSEADDR); HOST is rank
//                  0's machine as the others reach it ([::1] brackets for IPv6 literals). Each
//                  rank connects (retrying while refused), sends its rank, world size and byte
//                  count, and gets the bytes or the reason it was refused (another world size, a
//                  rank given twice), then confirms with one byte.
//   mpi            MPI_Bcast on MPI_COMM_WORLD (MPI_Init first if needed; the program calls
//                  MPI_Finalize). No timeout: mpirun ends the job when a rank dies.
//   auto           (the default) mpi when started by mpirun or a PMI launcher and the build
//                  has MPI, else file:OUT/rendezvous (OUT must be shared by the machines anyway,
//                  for checkpoints and the reference cache).
// A world of one exchanges nothing.
#pragma once
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/atomic_file.h"
#include "common/flags.h"

#ifdef DIST_WITH_MPI
#include <mpi.h>
static const bool DIST_BUILD_HAS_MPI = true;
#else
static const bool DIST_BUILD_HAS_MPI = false;
#endif

static const double DEFAULT_DIST_TIMEOUT_S = 300;
static const double MAX_DIST_TIMEOUT_S = 7 * 86400;
static const int MAX_WORLD_SIZE = 1 << 20;
static const size_t MAX_RENDEZVOUS_BYTES = 1 << 20;

// What the command line said (common/train_config.h fills it).
struct LaunchFlags {
    int world = 0;                  // --world-size; 0 = not given
    int rank = -1;                  // --rank; -1 = not given
    int local_rank = -1;            // --local-rank; -1 = not given
    std::string init = "auto";      // --dist-init
    double timeout_s = DEFAULT_DIST_TIMEOUT_S;  // --dist-timeout
};

// This process's place in the job (resolve_launch fills it).
struct LaunchInfo {
    int world = 1, rank = 0, local_rank = 0;
    std::string init;               // "file:PATH", "tcp:HOST:PORT" or "mpi"; "" when world == 1
    double timeout_s = DEFAULT_DIST_TIMEOUT_S;
    std::string source;             // where rank and world came from, for the start-up line
};

// ---- --dist-init ---------------------------------------------------------------------------------

enum class DistInitKind { Auto, File, Tcp, Mpi };

struct DistInit {
    DistInitKind kind = DistInitKind::Auto;
    std::string path;               // file:
    std::string host;               // tcp: (IPv6 literals without their brackets)
    int port = 0;
};

// Parses "auto", "mpi", "file:PATH", "tcp:HOST:PORT" (HOST may be [IPv6]).
inline bool parse_dist_init(const std::string& s, DistInit* out, std::string* err) {
    const std::string usage = " (give file:PATH, tcp:HOST:PORT, mpi or auto)";
    *out = DistInit();
    if (s == "auto") return true;
    if (s == "mpi") { out->kind = DistInitKind::Mpi; return true; }
    if (s.compare(0, 5, "file:") == 0) {
        out->kind = DistInitKind::File;
        out->path = s.substr(5);
        if (out->path.empty() || out->path.back() == '/') {
            *err = "--dist-init " + s + ": give the path of a file to create, e.g. file:/shared/run1/rendezvous";
            return false;
        }
        return true;
    }
    if (s.compare(0, 4, "tcp:") == 0) {
        out->kind = DistInitKind::Tcp;
        std::string rest = s.substr(4), port;
        if (!rest.empty() && rest[0] == '[') {
            size_t close = rest.find(']');
            if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
                *err = "--dist-init " + s + ": write an IPv6 address as tcp:[ADDRESS]:PORT";
                return false;
            }
            out->host = rest.substr(1, close - 1);
            port = rest.substr(close + 2);
        } else {
            size_t colon = rest.rfind(':');
            if (colon == std::string::npos) { *err = "--dist-init " + s + ": no port" + usage; return false; }
            out->host = rest.substr(0, colon);
            port = rest.substr(colon + 1);
            if (out->host.find(':') != std::string::npos) {
                *err = "--dist-init " + s + ": write an IPv6 address in brackets, tcp:[ADDRESS]:PORT";
                return false;
            }
        }
        int64_t p;
        if (out->host.empty()) { *err = "--dist-init " + s + ": no host (rank 0's machine)" + usage; return false; }
        if (!parse_int64(port, &p) || p < 1 || p > 65535) {
            *err = "--dist-init " + s + ": the port '" + port + "' is not a whole number in [1, 65535]";
            return false;
        }
        out->port = (int)p;
        return true;
    }
    *err = "--dist-init " + s + ": unknown form" + usage;
    return false;
}

// ---- who am I ------------------------------------------------------------------------------------

// Reads one environment variable; tests pass a fake environment.
using EnvGetter = std::function<const char*(const char*)>;
inline const char* process_environment(const char* name) { return getenv(name); }

namespace launch_detail {  // the helpers below; the interface is outside this namespace

// A launcher that sets rank and size (and perhaps the local rank) in environment variables.
struct EnvSource {
    const char* name;
    const char* rank_var;
    const char* size_var;
    const char* local_var;
};

struct EnvPlace {
    bool found = false;
    int rank = 0, world = 1, local_rank = 0;
    bool local_given = false;
};

// Reads `src` from the environment; false with *err on a half-set source or a bad value.
inline bool read_env_source(const EnvSource& src, const EnvGetter& env, EnvPlace* place, std::string* err) {
    *place = EnvPlace();
    const char* rank_s = env(src.rank_var);
    const char* size_s = env(src.size_var);
    const char* local_s = env(src.local_var);
    const std::string hint = "; unset the stale variable, or give --world-size and --rank (flags win)";
    if (!rank_s && !size_s) return true;
    if (!rank_s || !size_s) {
        const char* set = rank_s ? src.rank_var : src.size_var;
        const char* unset = rank_s ? src.size_var : src.rank_var;
        *err = std::string("environment: ") + set + "=" + (rank_s ? rank_s : size_s) + " is set but " + unset +
               " is not (" + src.name + " sets both)" + hint;
        return false;
    }
    auto whole = [&](const char* var, const char* value, int64_t lo, int64_t hi, int* out) {
        int64_t x;
        if (parse_int64(value, &x) && x >= lo && x <= hi) { *out = (int)x; return true; }
        *err = std::string("environment: ") + var + "=" + value + " (" + src.name + "): give a whole number in [" +
               std::to_string(lo) + ", " + std::to_string(hi) + "]" + hint;
        return false;
    };
    if (!whole(src.size_var, size_s, 1, MAX_WORLD_SIZE, &place->world)) return false;
    if (!whole(src.rank_var, rank_s, 0, place->world - 1, &place->rank)) return false;
    place->local_rank = place->rank;
    if (local_s) {
        if (!whole(src.local_var, local_s, 0, place->world - 1, &place->local_rank)) return false;
        place->local_given = true;
    }
    place->found = true;
    return true;
}

// "Open MPI (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK)"
inline std::string describe_env_source(const EnvSource& src, const EnvPlace& p) {
    std::string s = std::string(src.name) + " (" + src.rank_var + ", " + src.size_var;
    return s + (p.local_given ? std::string(", ") + src.local_var + ")" : "; no " + std::string(src.local_var) +
                                                                               ": local rank = rank)");
}

}  // namespace launch_detail

// The rank flags together: --world-size and --rank both or neither, --local-rank only with them,
// ranks below the world size.
inline bool check_launch_flags(const LaunchFlags& flags, std::string* err) {
    if (flags.world <= 0 && flags.rank < 0 && flags.local_rank < 0) return true;
    if (flags.world <= 0 || flags.rank < 0) {
        *err = std::string(flags.world > 0 ? "--world-size without --rank" : flags.rank >= 0
                               ? "--rank without --world-size" : "--local-rank without --world-size and --rank") +
               ": give --world-size and --rank together (or neither, to take them from the launcher)";
        return false;
    }
    if (flags.rank >= flags.world) {
        *err = "--rank " + std::to_string(flags.rank) + " with --world-size " + std::to_string(flags.world) +
               ": ranks are 0.." + std::to_string(flags.world - 1);
        return false;
    }
    if (flags.local_rank >= flags.world) {
        *err = "--local-rank " + std::to_string(flags.local_rank) + " with --world-size " +
               std::to_string(flags.world) + ": a local rank is below the world size";
        return false;
    }
    return true;
}

// Fills *info from the flags, else the environment (the rules at the top of this file), and
// resolves --dist-init auto (out_dir: the run's output directory). False with *err on a bad or
// inconsistent setting.
inline bool resolve_launch(const LaunchFlags& flags, const std::string& out_dir, const EnvGetter& env,
                           LaunchInfo* info, std::string* err) {
    *info = LaunchInfo();
    info->timeout_s = flags.timeout_s;
    if (!(flags.timeout_s > 0 && flags.timeout_s <= MAX_DIST_TIMEOUT_S)) {
        *err = "--dist-timeout " + format_number(flags.timeout_s) + ": give a number of seconds in (0, " +
               format_number(MAX_DIST_TIMEOUT_S) + "]";
        return false;
    }
    DistInit init;
    if (!parse_dist_init(flags.init, &init, err)) return false;

    if (!check_launch_flags(flags, err)) return false;
    bool mpi_launcher = false;
    if (flags.world > 0) {
        info->world = flags.world;
        info->rank = flags.rank;
        info->local_rank = flags.local_rank >= 0 ? flags.local_rank : flags.rank;
        info->source = flags.local_rank >= 0 ? "flags" : "flags (no --local-rank: local rank = rank)";
    } else {
        // launchers that start every process themselves, in order of preference
        using launch_detail::EnvPlace;
        using launch_detail::EnvSource;
        static const EnvSource direct[] = {
            {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
            {"PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
            {"torchrun-style", "RANK", "WORLD_SIZE", "LOCAL_RANK"}};
        static const EnvSource slurm = {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"};
        const EnvSource* chosen = nullptr;
        EnvPlace place;
        for (int k = 0; k < 3; k++) {
            EnvPlace p;
            if (!launch_detail::read_env_source(direct[k], env, &p, err)) return false;
            if (!p.found) continue;
            if (!chosen) { chosen = &direct[k]; place = p; mpi_launcher = k < 2; continue; }
            if (p.rank != place.rank || p.world != place.world) {
                *err = "the environment names two places for this process: " + std::string(chosen->name) + " says rank " +
                       std::to_string(place.rank) + " of " + std::to_string(place.world) + " (" + chosen->rank_var +
                       ", " + chosen->size_var + "), " + direct[k].name + " says rank " + std::to_string(p.rank) +
                       " of " + std::to_string(p.world) + " (" + direct[k].rank_var + ", " + direct[k].size_var +
                       "); unset the stale variables, or give --world-size and --rank (flags win)";
                return false;
            }
        }
        bool slurm_step = env("SLURM_STEP_ID") != nullptr;
        if (!chosen && slurm_step) {
            EnvPlace p;
            if (!launch_detail::read_env_source(slurm, env, &p, err)) return false;
            if (p.found) { chosen = &slurm; place = p; }
        }
        if (chosen) {
            info->world = place.world;
            info->rank = place.rank;
            info->local_rank = place.local_rank;
            info->source = launch_detail::describe_env_source(*chosen, place);
        } else {
            info->source = env("SLURM_PROCID") && !slurm_step
                               ? "no launcher: one process (a Slurm batch script outside srun; SLURM_PROCID ignored)"
                               : "no launcher: one process";
        }
    }
    if (info->world == 1) return true;  // nothing to exchange

    switch (init.kind) {
    case DistInitKind::Auto:
        info->init = mpi_launcher && DIST_BUILD_HAS_MPI
                         ? "mpi" : "file:" + (out_dir.empty() ? std::string(".") : out_dir) + "/rendezvous";
        break;
    case DistInitKind::Mpi:
#ifndef DIST_WITH_MPI
        *err = "--dist-init mpi: this program was built without MPI; give --dist-init file:PATH (a shared "
               "filesystem) or tcp:HOST:PORT (rank 0's machine)";
        return false;
#else
        info->init = "mpi";
        break;
#endif
    case DistInitKind::File:
    case DistInitKind::Tcp: info->init = flags.init; break;
    }
    return true;
}

// "rank 1 of 4 (local rank 1) from Slurm (...); rendezvous file:out/rendezvous, timeout 300 s"
inline std::string launch_summary(const LaunchInfo& info) {
    std::string s = "rank " + std::to_string(info.rank) + " of " + std::to_string(info.world) + " (local rank " +
                    std::to_string(info.local_rank) + ") from " + info.source;
    if (info.world > 1) s += "; rendezvous " + info.init + ", timeout " + format_number(info.timeout_s) + " s";
    return s;
}

namespace launch_detail {

// ---- waiting, bounded ----------------------------------------------------------------------------

struct Deadline {
    std::chrono::steady_clock::time_point end;
    explicit Deadline(double seconds)
        : end(std::chrono::steady_clock::now() +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds))) {}
    double left_s() const {
        double s = std::chrono::duration<double>(end - std::chrono::steady_clock::now()).count();
        return s > 0 ? s : 0;
    }
    bool passed() const { return left_s() <= 0; }
    int left_ms() const { return (int)(left_s() * 1000 + 0.999); }
    Deadline sooner(double seconds) const { Deadline d(seconds); if (end < d.end) d.end = end; return d; }
};

// Sleeps *delay (never past the deadline) and lengthens it by half, up to half a second.
inline void backoff_sleep(double* delay, const Deadline& deadline) {
    double s = std::min(*delay, deadline.left_s());
    if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
    *delay = std::min(*delay * 1.5, 0.5);
}

// "1", "1 and 3", "1, 2 and 5"
inline std::string list_ranks(const std::vector<int>& ranks) {
    std::string s;
    for (size_t k = 0; k < ranks.size(); k++)
        s += (k == 0 ? "" : k + 1 == ranks.size() ? " and " : ", ") + std::to_string(ranks[k]);
    return s;
}

inline std::string ranks_did_not(const std::vector<int>& ranks, const char* what) {
    return (ranks.size() == 1 ? "rank " : "ranks ") + list_ranks(ranks) + " " + what;
}

// ---- file:PATH -----------------------------------------------------------------------------------
// PATH            "dpo-rendezvous blob world=W bytes=N\n" "nonces=X1 X2 ... X(W-1)\n" then N bytes
// PATH.rank<r>    "dpo-rendezvous request rank=R world=W bytes=N nonce=X\n"
// PATH.rank<r>.ok "dpo-rendezvous ack rank=R nonce=X\n"
// (X: 16 lowercase hex digits)

inline uint64_t random_nonce() {
    uint64_t x = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &x, sizeof x) != (ssize_t)sizeof x) x = 0;
        close(fd);
    }
    // mixed with the clock and the pid, in case /dev/urandom is missing (splitmix64's finaliser)
    x ^= (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count() ^ ((uint64_t)getpid() << 32);
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

inline std::string hex64(uint64_t x) {
    char b[17];
    snprintf(b, sizeof b, "%016llx", (unsigned long long)x);
    return b;
}

inline bool parse_hex64(const std::string& s, uint64_t* out) {
    if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
    *out = strtoull(s.c_str(), nullptr, 16);
    return true;
}

// The whole file, if it exists and is at most max_bytes.
inline bool read_small_file(const std::string& path, size_t max_bytes, std::string* out) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    out->clear();
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && out->size() <= max_bytes) out->append(buf, n);
    bool ok = !ferror(f) && out->size() <= max_bytes;
    fclose(f);
    return ok;
}

// The value of "key=" in a line of space-separated key=value words ("" if absent).
inline std::string line_field(const std::string& line, const std::string& key) {
    size_t at = (" " + line).find(" " + key + "=");
    if (at == std::string::npos) return "";
    size_t begin = at + key.size() + 1, end = line.find(' ', begin);
    return line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

inline bool line_int(const std::string& line, const std::string& key, int64_t* out) {
    return parse_int64(line_field(line, key), out);
}

inline std::string rendezvous_request_path(const std::string& path, int r) { return path + ".rank" + std::to_string(r); }
inline std::string rendezvous_ack_path(const std::string& path, int r) { return rendezvous_request_path(path, r) + ".ok"; }

// Creates the directory that holds `path` (and its parents) if missing.
inline bool make_parent_dirs(const std::string& path, std::string* err) {
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
        std::string dir = path.substr(0, slash);
        if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
            *err = dir + ": cannot create the directory: " + strerror(errno);
            return false;
        }
    }
    return true;
}

inline bool parent_dir_exists(const std::string& path) {
    size_t slash = path.find_last_of('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    struct stat st;
    return stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

inline bool rendezvous_file_root(const LaunchInfo& info, const std::string& path, const void* blob, size_t bytes,
                                 std::string* err) {
    const int W = info.world;
    const std::string where = "rendezvous file:" + path + ": ";
    Deadline deadline(info.timeout_s);
    if (!make_parent_dirs(path, err)) { *err = where + *err; return false; }
    // An answer or confirmations already here are an earlier job's (none of this job's ranks can
    // have confirmed anything yet). Requests may be this job's own, from ranks that started first.
    remove(path.c_str());
    for (int r = 1; r < W; r++) remove(rendezvous_ack_path(path, r).c_str());

    std::vector<uint64_t> nonce(W, 0), written;  // the requests' nonces; those in PATH now
    std::vector<bool> requested(W, false), seen(W, false), confirmed(W, false);  // seen: ever requested
    std::vector<std::string> refused(W);  // why a request file there was not this job's
    double delay = 0.005;
    while (true) {
        for (int r = 1; r < W; r++) {
            if (confirmed[r]) continue;
            std::string text;
            int64_t rank, world, n;
            requested[r] = false;
            refused[r].clear();
            if (!read_small_file(rendezvous_request_path(path, r), 4096, &text)) continue;
            text = text.substr(0, text.find('\n'));
            uint64_t x;
            if (text.compare(0, 23, "dpo-rendezvous request ") != 0 || !line_int(text, "rank", &rank) || rank != r ||
                !line_int(text, "world", &world) || !line_int(text, "bytes", &n) ||
                !parse_hex64(line_field(text, "nonce"), &x)) {
                refused[r] = "is not a request of this trainer";
            } else if (world != W || (size_t)n != bytes) {
                refused[r] = "says world size " + std::to_string(world) + " and " + std::to_string(n) +
                             " bytes (rank 0: " + std::to_string(W) + " and " + std::to_string(bytes) + ")";
            } else {
                requested[r] = seen[r] = true;
                nonce[r] = x;
            }
        }
        bool all_requested = true;
        for (int r = 1; r < W; r++) all_requested = all_requested && (confirmed[r] || requested[r]);
        if (all_requested && nonce != written) {
            std::string head = "dpo-rendezvous blob world=" + std::to_string(W) + " bytes=" + std::to_string(bytes) +
                               "\nnonces=";
            for (int r = 1; r < W; r++) head += (r > 1 ? " " : "") + hex64(nonce[r]);
            head += "\n";
            if (!write_file_atomic(path, {{head.data(), head.size()}, {blob, bytes}}, err)) {
                *err = where + *err;
                return false;
            }
            written = nonce;
        }
        bool all_confirmed = !written.empty();
        for (int r = 1; r < W && !written.empty(); r++) {
            std::string text;
            uint64_t x;
            if (!confirmed[r] && read_small_file(rendezvous_ack_path(path, r), 4096, &text) &&
                text.compare(0, 19, "dpo-rendezvous ack ") == 0 &&
                parse_hex64(line_field(text.substr(0, text.find('\n')), "nonce"), &x) && x == written[r] && x == nonce[r])
                confirmed[r] = true;
            all_confirmed = all_confirmed && confirmed[r];
        }
        if (all_confirmed) {
            remove(path.c_str());
            for (int r = 1; r < W; r++) {
                remove(rendezvous_request_path(path, r).c_str());
                remove(rendezvous_ack_path(path, r).c_str());
            }
            return true;
        }
        if (deadline.passed()) break;
        backoff_sleep(&delay, deadline);
    }
    // timed out: name the ranks that never arrived, and those that arrived but never confirmed
    std::vector<int> absent, silent;
    std::string notes;
    for (int r = 1; r < W; r++) {
        if (confirmed[r]) continue;
        // a rank that arrived waits for the answer, written only once every rank has arrived
        if (!seen[r]) absent.push_back(r);
        else if (!written.empty()) silent.push_back(r);
        if (!refused[r].empty())
            notes += "; " + rendezvous_request_path(path, r) + " " + refused[r] + " (an earlier job's file, or that "
                     "rank was started with other flags)";
    }
    remove(path.c_str());
    for (int r = 1; r < W; r++) remove(rendezvous_ack_path(path, r).c_str());
    *err = where;
    *err += absent.empty() ? ranks_did_not(silent, "arrived but did not confirm the answer")
                           : ranks_did_not(absent, "did not arrive");
    *err += " within " + format_number(info.timeout_s) + " s (are they running? the same --dist-init path on a "
            "shared filesystem?)" + notes;
    return false;
}

inline bool rendezvous_file_rank(const LaunchInfo& info, const std::string& path, void* blob, size_t bytes,
                                 std::string* err) {
    const int W = info.world, r = info.rank;
    const std::string where = "rendezvous file:" + path + ": rank " + std::to_string(r) + ": ";
    const std::string request = rendezvous_request_path(path, r);
    const uint64_t mine = random_nonce();
    Deadline deadline(info.timeout_s);
    double delay = 0.005;
    // the request; the directory may not exist until rank 0 creates it
    while (!parent_dir_exists(path)) {
        if (deadline.passed()) {
            *err = where + "the directory of the path did not appear within " + format_number(info.timeout_s) +
                   " s (is rank 0 running? is the path on a filesystem every machine shares?)";
            return false;
        }
        backoff_sleep(&delay, deadline);
    }
    std::string text = "dpo-rendezvous request rank=" + std::to_string(r) + " world=" + std::to_string(W) +
                       " bytes=" + std::to_string(bytes) + " nonce=" + hex64(mine) + "\n";
    if (!write_file_atomic(request, text, err)) { *err = where + *err; return false; }
    // the answer: rank 0's PATH that carries this rank's nonce
    std::string other;  // what a PATH that was not for this rank said, for the error
    delay = 0.005;
    while (true) {
        std::string file;
        if (read_small_file(path, MAX_RENDEZVOUS_BYTES + 64 * (size_t)W + 4096, &file)) {
            size_t end1 = file.find('\n'), end2 = end1 == std::string::npos ? end1 : file.find('\n', end1 + 1);
            int64_t world, n;
            bool ours = false;
            if (end2 != std::string::npos && file.compare(0, 20, "dpo-rendezvous blob ") == 0 &&
                line_int(file.substr(0, end1), "world", &world) && line_int(file.substr(0, end1), "bytes", &n)) {
                std::string nonces = file.substr(end1 + 1, end2 - end1 - 1);
                size_t at = 7 + (size_t)(r - 1) * 17;  // "nonces=" then 16 hex digits and a space each
                uint64_t x;
                ours = world == W && (size_t)n == bytes && nonces.compare(0, 7, "nonces=") == 0 &&
                       nonces.size() == 7 + (size_t)(W - 1) * 17 - 1 && parse_hex64(nonces.substr(at, 16), &x) &&
                       x == mine && file.size() == end2 + 1 + bytes;
                if (!ours) other = "; " + path + " is there but is not for this rank (world size " +
                                   std::to_string(world) + ", " + std::to_string(n) + " bytes, other nonces: an "
                                   "earlier job's file, or another job uses the same path)";
            } else {
                other = "; " + path + " is there but is not a rendezvous file of this trainer";
            }
            if (ours) {
                memcpy(blob, file.data() + end2 + 1, bytes);
                std::string ack = "dpo-rendezvous ack rank=" + std::to_string(r) + " nonce=" + hex64(mine) + "\n";
                if (!write_file_atomic(rendezvous_ack_path(path, r), ack, err)) { *err = where + *err; return false; }
                return true;
            }
        }
        if (deadline.passed()) break;
        backoff_sleep(&delay, deadline);
    }
    remove(request.c_str());
    *err = where + "rank 0 did not answer within " + format_number(info.timeout_s) + " s (is it running? the same "
           "--dist-init path and --world-size on every rank, on a shared filesystem?)" + other;
    return false;
}

// ---- tcp:HOST:PORT -------------------------------------------------------------------------------
// hello (rank r -> rank 0): "dporzv01", then rank, world (u32) and bytes (u64), little-endian
// reply (rank 0 -> rank r): "dporzv01", status (u32: 0 = the bytes follow, 1 = a refusal's text
// follows), length (u32), then that many bytes; then rank r sends one byte to confirm.

static const char RENDEZVOUS_MAGIC[8] = {'d', 'p', 'o', 'r', 'z', 'v', '0', '1'};

inline void put_le(unsigned char* p, uint64_t x, int n) {
    for (int k = 0; k < n; k++) p[k] = (unsigned char)(x >> (8 * k));
}
inline uint64_t get_le(const unsigned char* p, int n) {
    uint64_t x = 0;
    for (int k = 0; k < n; k++) x |= (uint64_t)p[k] << (8 * k);
    return x;
}

// Waits until fd is ready for `events`; false at the deadline.
inline bool wait_fd(int fd, short events, const Deadline& deadline) {
    while (true) {
        struct pollfd p = {fd, events, 0};
        int ms = deadline.left_ms();
        int n = poll(&p, 1, ms);
        if (n > 0) return true;
        if (n == 0 || (n < 0 && errno != EINTR)) return false;
    }
}

// Sends or receives exactly n bytes on a non-blocking socket before the deadline; "" or why not.
inline std::string send_all(int fd, const void* data, size_t n, const Deadline& deadline) {
    const char* p = (const char*)data;
    while (n > 0) {
        if (!wait_fd(fd, POLLOUT, deadline)) return "timed out";
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
        if (k <= 0) return strerror(errno);
        p += k;
        n -= (size_t)k;
    }
    return "";
}

inline std::string recv_all(int fd, void* data, size_t n, const Deadline& deadline) {
    char* p = (char*)data;
    while (n > 0) {
        if (!wait_fd(fd, POLLIN, deadline)) return "timed out";
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
        if (k == 0) return "the connection was closed";
        if (k < 0) return strerror(errno);
        p += k;
        n -= (size_t)k;
    }
    return "";
}

inline void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The reply header and payload; status 0 = the bytes, 1 = a refusal.
inline std::string send_reply(int fd, uint32_t status, const void* payload, size_t n, const Deadline& deadline) {
    unsigned char head[16];
    memcpy(head, RENDEZVOUS_MAGIC, 8);
    put_le(head + 8, status, 4);
    put_le(head + 12, n, 4);
    std::string why = send_all(fd, head, sizeof head, deadline);
    return why.empty() ? send_all(fd, payload, n, deadline) : why;
}

inline std::string peer_address(const struct sockaddr_storage& a, socklen_t len) {
    char host[NI_MAXHOST] = "?";
    getnameinfo((const struct sockaddr*)&a, len, host, sizeof host, nullptr, 0, NI_NUMERICHOST);
    return host;
}

// A socket listening on `port` of every interface: IPv6 and IPv4 together where the machine has
// IPv6, else IPv4 only. -1 with errno set on failure.
inline int listen_any(int port) {
    for (int family : {AF_INET6, AF_INET}) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            if (family == AF_INET6) continue;  // no IPv6 here
            return -1;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_storage addr;
        memset(&addr, 0, sizeof addr);
        socklen_t len;
        if (family == AF_INET6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 too, as ::ffff:a.b.c.d
            struct sockaddr_in6* a6 = (struct sockaddr_in6*)&addr;
            a6->sin6_family = AF_INET6;
            a6->sin6_addr = in6addr_any;
            a6->sin6_port = htons((uint16_t)port);
            len = sizeof *a6;
        } else {
            struct sockaddr_in* a4 = (struct sockaddr_in*)&addr;
            a4->sin_family = AF_INET;
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
            a4->sin_port = htons((uint16_t)port);
            len = sizeof *a4;
        }
        if (bind(fd, (struct sockaddr*)&addr, len) == 0 && listen(fd, SOMAXCONN) == 0) return fd;
        int e = errno;
        close(fd);
        errno = e;
        if (family == AF_INET6 && e == EADDRNOTAVAIL) continue;  // IPv6 present but disabled
        return -1;
    }
    return -1;
}

inline bool rendezvous_tcp_root(const LaunchInfo& info, const DistInit& at, const void* blob, size_t bytes,
                                std::string* err) {
    const int W = info.world;
    const std::string where = "rendezvous " + info.init + ": rank 0: ";
    Deadline deadline(info.timeout_s);
    int listener = listen_any(at.port);
    if (listener < 0) {
        int e = errno;
        *err = where + (e == EADDRINUSE ? "port " + std::to_string(at.port) + " is already in use on this machine "
                                          "(another job, or an earlier run's rank 0 still alive?); give another "
                                          "--dist-init port"
                                        : "cannot listen on port " + std::to_string(at.port) + ": " + strerror(e));
        return false;
    }
    set_nonblocking(listener);
    std::vector<bool> served(W, false);
    std::vector<std::string> served_from(W);
    served[0] = true;
    int left = W - 1;
    bool ok = true;
    while (left > 0 && ok) {
        if (!wait_fd(listener, POLLIN, deadline)) break;
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int c = accept(listener, (struct sockaddr*)&peer, &peer_len);
        if (c < 0) {  // the peer gave up, a signal, or out of descriptors: wait a little, again
            double pause = 0.01;
            backoff_sleep(&pause, deadline);
            continue;
        }
        set_nonblocking(c);
        // a rank sends its hello at once; a silent or foreign connection is dropped after 10 s
        Deadline conn = deadline.sooner(10);
        unsigned char hello[24];
        if (!recv_all(c, hello, sizeof hello, conn).empty() || memcmp(hello, RENDEZVOUS_MAGIC, 8) != 0) {
            close(c);
            continue;
        }
        const uint64_t r = get_le(hello + 8, 4), world = get_le(hello + 12, 4), n = get_le(hello + 16, 8);
        const std::string from = peer_address(peer, peer_len);
        std::string refusal;
        if (world != (uint64_t)W || n != bytes)
            refusal = "rank " + std::to_string(r) + " (at " + from + ") was started with world size " +
                      std::to_string(world) + " for " + std::to_string(n) + " bytes, rank 0 with " + std::to_string(W) +
                      " for " + std::to_string(bytes) + ": give every rank the same --world-size";
        else if (r < 1 || r >= (uint64_t)W)
            refusal = "a process at " + from + " says it is rank " + std::to_string(r) + " of " + std::to_string(W);
        else if (served[r])
            refusal = "rank " + std::to_string(r) + " arrived twice (from " + served_from[r] + " and " + from +
                      "): two processes were given the same --rank";
        if (!refusal.empty()) {
            send_reply(c, 1, refusal.data(), refusal.size(), conn);
            close(c);
            *err = where + refusal;
            ok = false;
            break;
        }
        unsigned char confirm;
        if (send_reply(c, 0, blob, bytes, conn).empty() && recv_all(c, &confirm, 1, conn).empty()) {
            served[r] = true;
            served_from[r] = from;
            left--;
        }
        close(c);
    }
    close(listener);
    if (!ok) return false;
    if (left > 0) {
        std::vector<int> absent;
        for (int r = 1; r < W; r++) if (!served[r]) absent.push_back(r);
        *err = where + ranks_did_not(absent, "did not arrive") + " within " + format_number(info.timeout_s) +
               " s (are they running? the same --dist-init " + info.init + " on every rank, and can they reach "
               "this machine as " + at.host + "?)";
        return false;
    }
    return true;
}

inline bool rendezvous_tcp_rank(const LaunchInfo& info, const DistInit& at, void* blob, size_t bytes, std::string* err) {
    const std::string where = "rendezvous " + info.init + ": rank " + std::to_string(info.rank) + ": ";
    Deadline deadline(info.timeout_s);
    double delay = 0.01;
    std::string last = "no attempt";
    int fd = -1;
    while (fd < 0) {
        struct addrinfo hints, *list = nullptr;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int g = getaddrinfo(at.host.c_str(), std::to_string(at.port).c_str(), &hints, &list);
        if (g != 0 && g != EAI_AGAIN) {
            *err = where + "cannot resolve the host '" + at.host + "': " + gai_strerror(g);
            return false;
        }
        if (g != 0) last = gai_strerror(g);
        for (struct addrinfo* a = list; a && fd < 0; a = a->ai_next) {
            int s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
            if (s < 0) { last = strerror(errno); continue; }
            set_nonblocking(s);
            int e = 0;
            if (connect(s, a->ai_addr, a->ai_addrlen) != 0) {
                e = errno;
                if (e == EINPROGRESS) {
                    socklen_t len = sizeof e;
                    e = wait_fd(s, POLLOUT, deadline.sooner(5)) && getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len) == 0
                            ? e : ETIMEDOUT;
                }
            }
            if (e == 0) fd = s;
            else { last = strerror(e); close(s); }
        }
        if (list) freeaddrinfo(list);
        if (fd >= 0) break;
        if (deadline.passed()) {
            *err = where + "could not reach rank 0 within " + format_number(info.timeout_s) + " s (last error: " + last +
                   "; is rank 0 running, is " + at.host + " its machine, and is port " + std::to_string(at.port) +
                   " open between the machines?)";
            return false;
        }
        backoff_sleep(&delay, deadline);
    }
    unsigned char hello[24], head[16];
    memcpy(hello, RENDEZVOUS_MAGIC, 8);
    put_le(hello + 8, (uint64_t)info.rank, 4);
    put_le(hello + 12, (uint64_t)info.world, 4);
    put_le(hello + 16, bytes, 8);
    std::string why = send_all(fd, hello, sizeof hello, deadline);
    if (why.empty()) why = recv_all(fd, head, sizeof head, deadline);
    if (!why.empty()) {
        close(fd);
        *err = where + "connected, but rank 0 did not answer (" + why + ") within " + format_number(info.timeout_s) +
               " s (did rank 0 stop with an error? see its output)";
        return false;
    }
    const uint64_t status = get_le(head + 8, 4), n = get_le(head + 12, 4);
    if (memcmp(head, RENDEZVOUS_MAGIC, 8) != 0 || status > 1 || (status == 0 && n != bytes) || n > MAX_RENDEZVOUS_BYTES) {
        close(fd);
        *err = where + at.host + ":" + std::to_string(at.port) + " answered, but not as rank 0 of this trainer (another "
               "program on that port?)";
        return false;
    }
    std::string payload(n, '\0');
    why = recv_all(fd, &payload[0], n, deadline);
    if (why.empty() && status == 0) {
        unsigned char confirm = 1;
        why = send_all(fd, &confirm, 1, deadline);
    }
    close(fd);
    if (!why.empty()) { *err = where + "the answer from rank 0 broke off (" + why + ")"; return false; }
    if (status == 1) { *err = where + "rank 0 refused this rank: " + payload; return false; }
    memcpy(blob, payload.data(), bytes);
    return true;
}

// ---- mpi -----------------------------------------------------------------------------------------

#ifdef DIST_WITH_MPI
inline bool rendezvous_mpi(const LaunchInfo& info, void* blob, size_t bytes, std::string* err) {
    int started = 0, rank = 0, world = 1;
    MPI_Initialized(&started);
    if (!started && MPI_Init(nullptr, nullptr) != MPI_SUCCESS) { *err = "rendezvous mpi: MPI_Init failed"; return false; }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (rank != info.rank || world != info.world) {
        *err = "rendezvous mpi: MPI says rank " + std::to_string(rank) + " of " + std::to_string(world) + ", but this "
               "process is rank " + std::to_string(info.rank) + " of " + std::to_string(info.world) + " (" + info.source +
               "); start it with mpirun -np " + std::to_string(info.world) + ", or use file: or tcp:";
        return false;
    }
    if (MPI_Bcast(blob, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
        *err = "rendezvous mpi: MPI_Bcast failed";
        return false;
    }
    return true;
}
#endif

}  // namespace launch_detail

// ---- the exchange --------------------------------------------------------------------------------

// Rank 0's `bytes` bytes at `blob` to every rank's `blob`, through info.init, each wait bounded by
// info.timeout_s. Every rank calls it; false with *err (naming the path or address and the ranks
// that did not arrive) on failure.
inline bool rendezvous_broadcast(const LaunchInfo& info, void* blob, size_t bytes, std::string* err) {
    if (bytes == 0 || bytes > MAX_RENDEZVOUS_BYTES) {
        *err = "rendezvous: " + std::to_string(bytes) + " bytes to send; give 1 to " +
               std::to_string(MAX_RENDEZVOUS_BYTES);
        return false;
    }
    if (info.world == 1) return true;
    DistInit at;
    if (!parse_dist_init(info.init, &at, err)) return false;
    switch (at.kind) {
    case DistInitKind::File:
        return info.rank == 0 ? launch_detail::rendezvous_file_root(info, at.path, blob, bytes, err)
                              : launch_detail::rendezvous_file_rank(info, at.path, blob, bytes, err);
    case DistInitKind::Tcp:
        return info.rank == 0 ? launch_detail::rendezvous_tcp_root(info, at, blob, bytes, err)
                              : launch_detail::rendezvous_tcp_rank(info, at, blob, bytes, err);
    case DistInitKind::Mpi:
#ifdef DIST_WITH_MPI
        return launch_detail::rendezvous_mpi(info, blob, bytes, err);
#else
        *err = "rendezvous mpi: this program was built without MPI; use file:PATH or tcp:HOST:PORT";
        return false;
#endif
    case DistInitKind::Auto: break;
    }
    *err = "rendezvous: --dist-init auto was not resolved (call resolve_launch first)";
    return false;
}

// ---- the CPU trainer -----------------------------------------------------------------------------

// train_dpo_cpu's ranks talk over MPI only (cpu/mpi_comm.h starts MPI when an MPI launcher started
// the process). So that the launch flags and environment are never silently ignored: under MPI,
// --world-size/--rank must agree with MPI's and --dist-init must be auto or mpi; without MPI, a
// world larger than one (from the flags, srun without --mpi, torchrun) is refused.
inline bool check_mpi_only_launch(const LaunchFlags& flags, bool under_mpi, int mpi_rank, int mpi_world,
                                  const EnvGetter& env, std::string* err) {
    const std::string how = "train_dpo_cpu's ranks talk over MPI only: start it with mpirun -np N (or srun "
                            "--mpi=pmix); the rank flags and file:/tcp: rendezvous are for the GPU trainer";
    if (under_mpi) {
        if ((flags.world > 0 && flags.world != mpi_world) || (flags.rank >= 0 && flags.rank != mpi_rank)) {
            *err = "--world-size/--rank disagree with MPI's rank " + std::to_string(mpi_rank) + " of " +
                   std::to_string(mpi_world) + "; under mpirun leave them out";
            return false;
        }
        if (mpi_world > 1 && flags.init != "auto" && flags.init != "mpi") {
            *err = "--dist-init " + flags.init + ": " + how;
            return false;
        }
        return true;
    }
    LaunchInfo info;
    if (!resolve_launch(flags, "", env, &info, err)) return false;
    if (info.world > 1) {
        *err = "rank " + std::to_string(info.rank) + " of " + std::to_string(info.world) + " from " +
               info.source.substr(0, info.source.find(" (")) + ", but this process was not started by an MPI "
               "launcher; " + how;
        return false;
    }
    return true;
}
