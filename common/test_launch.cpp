// Tests of common/launch.h: the rank, world size and local rank from flags and from fake launcher
// environments (each source, the precedence, conflicts, bad values), the launch flags in the
// trainer's parser, and the rendezvous: N = 2 and 3 forked processes exchange a fresh random
// 128-byte blob through file: and tcp:, a world where one rank never starts ends with an error
// naming it within the timeout (1 s here), files left by an earlier job are never taken, a port in
// use and ranks started with different world sizes are clear errors at once; then mpi: under
// mpirun (this program again, 2 processes), and train_dpo_cpu refusing rank flags without mpirun.
// Every child is killed if it outlives its limit, so a hang is a FAIL, never a stuck test.
#include <arpa/inet.h>
#include <csignal>
#include <dirent.h>
#include <map>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

#include "common/launch.h"
#include "common/train_config.h"
#include "dev/test_util.h"

using launch_detail::Deadline;
using launch_detail::wait_fd;

static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- who am I ------------------------------------------------------------------------------------

using FakeEnv = std::map<std::string, std::string>;

static EnvGetter fake_env(const FakeEnv& vars) {
    return [vars](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    };
}

struct WhoCase {
    const char* name;
    FakeEnv env;
    LaunchFlags flags;
    bool ok;
    int world, rank, local_rank;
    const char* expect;  // a part of the source (ok) or of the error (not ok)
};

static LaunchFlags rank_flags(int world, int rank, int local_rank = -1) {
    LaunchFlags f;
    f.world = world;
    f.rank = rank;
    f.local_rank = local_rank;
    return f;
}

static void test_who() {
    const FakeEnv ompi = {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}};
    const FakeEnv slurm_step = {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                {"SLURM_STEP_ID", "0"}, {"SLURM_JOB_ID", "77"}};
    FakeEnv ompi_in_slurm = slurm_step;
    ompi_in_slurm.insert(ompi.begin(), ompi.end());
    const WhoCase cases[] = {
        {"who_no_launcher", {}, {}, true, 1, 0, 0, "no launcher"},
        {"who_open_mpi", ompi, {}, true, 4, 1, 1, "Open MPI"},
        {"who_slurm_step", slurm_step, {}, true, 8, 5, 1, "Slurm"},
        {"who_slurm_batch_script_is_one_process",
         {{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}, {"SLURM_JOB_ID", "77"}}, {},
         true, 1, 0, 0, "outside srun"},
        {"who_torchrun", {{"RANK", "2"}, {"WORLD_SIZE", "3"}, {"LOCAL_RANK", "0"}}, {}, true, 3, 2, 0, "torchrun"},
        {"who_pmi_local_rank_defaults_to_rank", {{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}}, {}, true, 2, 1, 1,
         "local rank = rank"},
        {"who_pmi_local_rank", {{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "1"}}, {}, true, 4, 3, 1,
         "MPI_LOCALRANKID"},
        {"who_mpirun_inside_slurm_wins", ompi_in_slurm, {}, true, 4, 1, 1, "Open MPI"},
        {"who_flags_win", ompi, rank_flags(2, 0, 0), true, 2, 0, 0, "flags"},
        {"who_flags_local_rank_defaults_to_rank", {}, rank_flags(3, 2), true, 3, 2, 2, "local rank = rank"},
        {"who_agreeing_sources", {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"PMI_RANK", "1"},
                                  {"PMI_SIZE", "2"}}, {}, true, 2, 1, 1, "Open MPI"},
        // errors
        {"who_conflicting_sources", {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"RANK", "0"},
                                     {"WORLD_SIZE", "4"}}, {}, false, 0, 0, 0,
         "Open MPI says rank 1 of 4 (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE), torchrun-style says rank 0 of 4"},
        {"who_half_set_source", {{"RANK", "3"}}, {}, false, 0, 0, 0, "RANK=3 is set but WORLD_SIZE is not"},
        {"who_not_a_number", {{"RANK", "abc"}, {"WORLD_SIZE", "2"}}, {}, false, 0, 0, 0, "RANK=abc"},
        {"who_trailing_space", {{"RANK", "1 "}, {"WORLD_SIZE", "2"}}, {}, false, 0, 0, 0, "RANK=1 "},
        {"who_world_zero", {{"PMI_RANK", "0"}, {"PMI_SIZE", "0"}}, {}, false, 0, 0, 0, "PMI_SIZE=0"},
        {"who_rank_not_below_world", {{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_ID", "1"}}, {},
         false, 0, 0, 0, "SLURM_PROCID=4 (Slurm): give a whole number in [0, 3]"},
        {"who_negative_local_rank", {{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                     {"OMPI_COMM_WORLD_LOCAL_RANK", "-1"}}, {}, false, 0, 0, 0,
         "OMPI_COMM_WORLD_LOCAL_RANK=-1"},
        {"who_flag_rank_without_world", {}, rank_flags(0, 1), false, 0, 0, 0, "--rank without --world-size"},
        {"who_flag_world_without_rank", {}, rank_flags(2, -1), false, 0, 0, 0, "--world-size without --rank"},
        {"who_flag_local_rank_alone", {}, rank_flags(0, -1, 0), false, 0, 0, 0, "--local-rank without"},
        {"who_flag_rank_not_below_world", {}, rank_flags(2, 2), false, 0, 0, 0, "--rank 2 with --world-size 2"},
    };
    for (const WhoCase& c : cases) {
        LaunchInfo info;
        std::string err;
        bool ok = resolve_launch(c.flags, "out", fake_env(c.env), &info, &err);
        if (c.ok)
            test_report(ok && info.world == c.world && info.rank == c.rank && info.local_rank == c.local_rank &&
                            contains(info.source, c.expect),
                        c.name, "ok %d, rank %d of %d, local %d, source '%s', error '%s'", ok, info.rank, info.world,
                        info.local_rank, info.source.c_str(), err.c_str());
        else
            test_report(!ok && contains(err, c.expect), c.name, "ok %d, error '%s' (expected it to contain '%s')", ok,
                        err.c_str(), c.expect);
    }

    // --dist-init auto and the explicit forms
    struct InitCase { const char* name; FakeEnv env; const char* init; const char* expect; };
    const InitCase inits[] = {
        {"init_auto_under_slurm_is_a_file_in_out", slurm_step, "auto", "file:out/rendezvous"},
        {"init_auto_under_mpirun", ompi, "auto", DIST_BUILD_HAS_MPI ? "mpi" : "file:out/rendezvous"},
        {"init_tcp_kept", slurm_step, "tcp:node1:29500", "tcp:node1:29500"},
        {"init_file_kept", slurm_step, "file:/shared/x", "file:/shared/x"},
        {"init_world_1_exchanges_nothing", {}, "tcp:node1:29500", ""},
    };
    for (const InitCase& c : inits) {
        LaunchFlags f;
        f.init = c.init;
        LaunchInfo info;
        std::string err;
        bool ok = resolve_launch(f, "out", fake_env(c.env), &info, &err);
        test_report(ok && info.init == c.expect, c.name, "ok %d, init '%s', error '%s'", ok, info.init.c_str(), err.c_str());
    }
    const char* bad_inits[][2] = {
        {"tcp:node1", "no port"}, {"tcp:node1:0", "[1, 65535]"}, {"tcp:node1:70000", "[1, 65535]"},
        {"tcp::29500", "no host"}, {"tcp:::1:29500", "brackets"}, {"tcp:[::1:29500", "tcp:[ADDRESS]:PORT"},
        {"file:", "give the path"}, {"nfs:/x", "unknown form"}, {"", "unknown form"}};
    for (auto& b : bad_inits) {
        DistInit d;
        std::string err;
        bool ok = parse_dist_init(b[0], &d, &err);
        test_report(!ok && contains(err, b[1]) && contains(err, std::string("--dist-init ") + b[0]),
                    ("init_rejects_" + std::string(b[0])).c_str(), "ok %d, error '%s'", ok, err.c_str());
    }
    DistInit v6;
    std::string err;
    test_report(parse_dist_init("tcp:[::1]:29500", &v6, &err) && v6.host == "::1" && v6.port == 29500,
                "init_tcp_ipv6_brackets", "host '%s' port %d: %s", v6.host.c_str(), v6.port, err.c_str());
    LaunchFlags f;
    f.init = "mpi";
    LaunchInfo info;
    bool ok = resolve_launch(f, "out", fake_env(ompi), &info, &err);
    if (DIST_BUILD_HAS_MPI) test_report(ok && info.init == "mpi", "init_mpi_with_mpi", "%s", err.c_str());
    else test_report(!ok && contains(err, "built without MPI"), "init_mpi_without_mpi", "%s", err.c_str());

    // the summary line names everything
    resolve_launch(rank_flags(2, 1, 0), "run1", fake_env({}), &info, &err);
    std::string line = launch_summary(info);
    test_report(line == "rank 1 of 2 (local rank 0) from flags; rendezvous file:run1/rendezvous, timeout 300 s",
                "summary_line", "'%s'", line.c_str());

    // the CPU trainer: MPI only
    const FakeEnv none;
    struct CpuCase {
        const char* name;
        LaunchFlags flags;
        FakeEnv env;
        bool mpi;
        int mpi_rank, mpi_world;
        bool ok;
        const char* expect;
    };
    LaunchFlags tcp2 = rank_flags(0, -1);
    tcp2.init = "tcp:h:1";
    const CpuCase cpu[] = {
        {"cpu_alone_ok", LaunchFlags(), none, false, 0, 1, true, ""},
        {"cpu_flags_without_mpirun_refused", rank_flags(2, 0), none, false, 0, 1, false, "not started by an MPI launcher"},
        {"cpu_srun_without_mpi_refused", LaunchFlags(), slurm_step, false, 0, 1, false, "rank 5 of 8 from Slurm, but"},
        {"cpu_mpirun_ok", LaunchFlags(), ompi, true, 1, 4, true, ""},
        {"cpu_mpirun_flags_agree", rank_flags(4, 1), ompi, true, 1, 4, true, ""},
        {"cpu_mpirun_flags_disagree", rank_flags(4, 2), ompi, true, 1, 4, false, "disagree with MPI's rank 1 of 4"},
        {"cpu_mpirun_tcp_refused", tcp2, ompi, true, 1, 4, false,
         "--dist-init tcp:h:1: train_dpo_cpu's ranks talk over MPI"},
    };
    for (const CpuCase& c : cpu) {
        err.clear();
        ok = check_mpi_only_launch(c.flags, c.mpi, c.mpi_rank, c.mpi_world, fake_env(c.env), &err);
        test_report(ok == c.ok && contains(err, c.expect), c.name, "ok %d, error '%s'", ok, err.c_str());
    }
}

// The launch flags in the trainer's parser.
static bool parse(std::vector<std::string> args, TrainConfig* c, std::string* err) {
    std::vector<char*> argv = {(char*)"train_dpo"};
    for (std::string& a : args) argv.push_back(&a[0]);
    return parse_train_args((int)argv.size(), argv.data(), 1, c, err);
}

static void test_flags() {
    TrainConfig c;
    std::string err;
    bool ok = parse({"--world-size", "4", "--rank", "3", "--local-rank", "1", "--dist-init", "tcp:node1:29500",
                     "--dist-timeout", "2.5"}, &c, &err);
    test_report(ok && c.launch.world == 4 && c.launch.rank == 3 && c.launch.local_rank == 1 &&
                    c.launch.init == "tcp:node1:29500" && c.launch.timeout_s == 2.5,
                "flags_launch_values", "%s", err.c_str());
    TrainConfig d;
    ok = parse({}, &d, &err);
    test_report(ok && d.launch.world == 0 && d.launch.rank == -1 && d.launch.init == "auto" && d.launch.timeout_s == 300,
                "flags_launch_defaults", "%s", err.c_str());
    const std::vector<std::string> bad[] = {
        {"--world-size", "0"}, {"--rank", "-1"}, {"--dist-timeout", "0"}, {"--dist-timeout", "nan"},
        {"--dist-timeout", "1e9"}, {"--dist-init", "tcp:x"}, {"--rank", "1"}, {"--world-size", "2", "--rank", "2"}};
    const char* expect[] = {"--world-size 0", "--rank -1", "--dist-timeout 0", "--dist-timeout nan",
                            "--dist-timeout 1e9", "--dist-init tcp:x", "--rank without --world-size",
                            "--rank 2 with --world-size 2"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        TrainConfig e;
        err.clear();
        ok = parse(bad[k], &e, &err);
        test_report(!ok && contains(err, expect[k]), ("flags_reject_" + std::to_string(k)).c_str(),
                    "ok %d, error '%s' (expected '%s')", ok, err.c_str(), expect[k]);
    }
}

// ---- the rendezvous in forked processes ----------------------------------------------------------

struct Child { pid_t pid = -1; int fd = -1; };
struct Outcome { bool finished = false, ok = false; double seconds = 0; std::string err; std::vector<unsigned char> blob; };

// Forks a rank that sleeps delay_s, runs the rendezvous (rank 0 sends `blob`; the others start
// from 0xAA bytes) and reports through a pipe.
static Child start_rank(const LaunchInfo& info, const std::vector<unsigned char>& blob, double delay_s) {
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); exit(1); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (delay_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(delay_s));
        std::vector<unsigned char> buf = info.rank == 0 ? blob : std::vector<unsigned char>(blob.size(), 0xAA);
        std::string err;
        double t0 = now_s();
        unsigned char ok = rendezvous_broadcast(info, buf.data(), buf.size(), &err);
        double seconds = now_s() - t0;
        uint32_t len = (uint32_t)err.size();
        std::string msg((const char*)&ok, 1);
        msg.append((const char*)&seconds, sizeof seconds).append((const char*)&len, 4).append(err);
        msg.append((const char*)buf.data(), buf.size());
        for (size_t off = 0; off < msg.size();) {
            ssize_t k = write(p[1], msg.data() + off, msg.size() - off);
            if (k <= 0) break;
            off += (size_t)k;
        }
        _exit(0);
    }
    close(p[1]);
    return {pid, p[0]};
}

// Reads the child's report; kills it if it is still running after limit_s.
static Outcome finish_rank(Child c, size_t bytes, double limit_s) {
    Outcome out;
    std::string msg;
    Deadline deadline(limit_s);
    char buf[4096];
    while (true) {
        if (!wait_fd(c.fd, POLLIN, deadline)) break;
        ssize_t k = read(c.fd, buf, sizeof buf);
        if (k <= 0) break;
        msg.append(buf, (size_t)k);
    }
    close(c.fd);
    if (deadline.passed()) kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    if (msg.size() < 13) return out;
    uint32_t len;
    out.ok = msg[0] == 1;
    memcpy(&out.seconds, msg.data() + 1, 8);
    memcpy(&len, msg.data() + 9, 4);
    if (msg.size() != 13 + len + bytes) return out;
    out.err = msg.substr(13, len);
    out.blob.assign(msg.begin() + 13 + len, msg.end());
    out.finished = true;
    return out;
}

static std::vector<unsigned char> random_blob(size_t n) {
    std::random_device dev;
    std::mt19937_64 rng(((uint64_t)dev() << 32) ^ dev());
    std::vector<unsigned char> b(n);
    for (unsigned char& x : b) x = (unsigned char)rng();
    return b;
}

static LaunchInfo place(int world, int rank, const std::string& init, double timeout_s) {
    LaunchInfo info;
    info.world = world;
    info.rank = rank;
    info.local_rank = rank;
    info.init = init;
    info.timeout_s = timeout_s;
    info.source = "test";
    return info;
}

static std::string make_temp_dir() {
    char tmpl[] = "/tmp/test_launch_XXXXXX";
    if (!mkdtemp(tmpl)) { perror("mkdtemp"); exit(1); }
    return tmpl;
}

// The names in dir (recursively), "" if it holds no files.
static std::string files_in(const std::string& dir) {
    std::string names;
    if (DIR* d = opendir(dir.c_str())) {
        while (struct dirent* e = readdir(d)) {
            std::string n = e->d_name;
            if (n == "." || n == "..") continue;
            std::string sub = files_in(dir + "/" + n);
            names += e->d_type == DT_DIR ? sub : " " + n;
        }
        closedir(d);
    }
    return names;
}

static void remove_tree(const std::string& dir) {
    std::string cmd = "rm -rf '" + dir + "'";
    if (system(cmd.c_str()) != 0) fprintf(stderr, "warning: could not remove %s\n", dir.c_str());
}

// A port nobody listens on now: the kernel's pick for port 0.
static int free_port() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr*)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr*)&a, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(s);
    return ntohs(a.sin_port);
}

static bool have_ipv6_loopback() {
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = s >= 0 && bind(s, (struct sockaddr*)&a, sizeof a) == 0;
    if (s >= 0) close(s);
    return ok;
}

static const size_t BLOB = 128;  // an ncclUniqueId

// world ranks exchange a fresh random blob; delays[r]: when rank r starts. Every rank must
// return true with rank 0's bytes; file: must leave no file behind.
static void exchange(const std::string& name, const std::string& init, const std::vector<double>& delays,
                     const std::string& dir_to_be_empty = "") {
    const int world = (int)delays.size();
    std::vector<unsigned char> blob = random_blob(BLOB);
    std::vector<Child> kids;
    for (int r = 0; r < world; r++) kids.push_back(start_rank(place(world, r, init, 10), blob, delays[r]));
    std::string why;
    for (int r = 0; r < world; r++) {
        Outcome o = finish_rank(kids[r], BLOB, 20);
        if (!o.finished) why += " rank " + std::to_string(r) + " hung or crashed;";
        else if (!o.ok) why += " rank " + std::to_string(r) + ": " + o.err + ";";
        else if (o.blob != blob) why += " rank " + std::to_string(r) + " got other bytes;";
    }
    std::string left = dir_to_be_empty.empty() ? "" : files_in(dir_to_be_empty);
    if (!left.empty()) why += " files left behind:" + left;
    test_report(why.empty(), name.c_str(), "%s (%s)", why.c_str(), init.c_str());
}

static void test_exchanges() {
    std::string dir = make_temp_dir();
    // rank 0 first; the ranks in reverse order (the directory appears only when rank 0 makes it)
    exchange("file_world_2", "file:" + dir + "/a/rendezvous", {0, 0.05}, dir);
    exchange("file_world_3", "file:" + dir + "/b/rendezvous", {0.2, 0.1, 0}, dir);
    exchange("tcp_world_2", "tcp:127.0.0.1:" + std::to_string(free_port()), {0, 0.05});
    exchange("tcp_world_3_rank_0_last", "tcp:localhost:" + std::to_string(free_port()), {0.3, 0, 0.1});
    if (have_ipv6_loopback()) exchange("tcp_world_2_ipv6", "tcp:[::1]:" + std::to_string(free_port()), {0.05, 0});
    else test_skip("tcp_world_2_ipv6", "this machine has no IPv6 loopback (::1)");
    remove_tree(dir);
}

// A world where a rank never starts: the ranks that did end with an error naming the missing one,
// within about the timeout (1 s; up to 3 s allowed for a loaded machine). All cases run at once.
static void test_timeouts() {
    std::string dir = make_temp_dir();
    const std::string file3 = "file:" + dir + "/three", file2 = "file:" + dir + "/two";
    const std::string tcp3 = "tcp:127.0.0.1:" + std::to_string(free_port());
    const std::string tcp2 = "tcp:127.0.0.1:" + std::to_string(free_port());
    std::vector<unsigned char> blob = random_blob(BLOB);
    struct Case { const char* name; LaunchInfo info; bool ok; const char* expect; const char* not_expect; };
    const Case cases[] = {
        {"timeout_file_rank_0_names_rank_2", place(3, 0, file3, 1), false, "rank 2 did not arrive within 1 s", "rank 1"},
        {"timeout_file_rank_1_without_answer", place(3, 1, file3, 1), false, "rank 0 did not answer within 1 s", ""},
        {"timeout_file_rank_0_never_started", place(2, 1, file2, 1), false, "rank 0 did not answer within 1 s", ""},
        {"timeout_tcp_rank_0_names_rank_2", place(3, 0, tcp3, 1), false, "rank 2 did not arrive within 1 s", "rank 1"},
        {"timeout_tcp_rank_1_served", place(3, 1, tcp3, 1), true, "", ""},
        {"timeout_tcp_rank_0_never_started", place(2, 1, tcp2, 1), false, "could not reach rank 0 within 1 s", ""},
    };
    std::vector<Child> kids;
    for (const Case& c : cases) kids.push_back(start_rank(c.info, blob, 0));
    for (size_t k = 0; k < kids.size(); k++) {
        const Case& c = cases[k];
        Outcome o = finish_rank(kids[k], BLOB, 10);
        bool text = c.ok ? o.blob == blob : contains(o.err, c.expect) && (!*c.not_expect || !contains(o.err, c.not_expect));
        bool in_time = c.ok || (o.seconds >= 0.95 && o.seconds <= 3);
        test_report(o.finished && o.ok == c.ok && text && in_time, c.name, "finished %d, ok %d after %.2f s: '%s'",
                    o.finished, o.ok, o.seconds, o.err.c_str());
    }
    remove_tree(dir);
}

// An earlier job of world 2 died mid-rendezvous and left its answer (other bytes, another nonce),
// rank 1's request and its confirmation. A new job on the same path must exchange its own bytes,
// whichever rank starts first, and clean up.
static void write_text(const std::string& path, const std::string& text) {
    FILE* f = fopen(path.c_str(), "wb");
    if (!f || fwrite(text.data(), 1, text.size(), f) != text.size() || fclose(f) != 0) { perror(path.c_str()); exit(1); }
}

static void test_stale_files() {
    for (int rank_0_first = 0; rank_0_first < 2; rank_0_first++) {
        std::string dir = make_temp_dir(), path = dir + "/rendezvous";
        const std::string old_nonce = "0123456789abcdef";
        write_text(path, "dpo-rendezvous blob world=2 bytes=128\nnonces=" + old_nonce + "\n" + std::string(BLOB, '\xEE'));
        write_text(path + ".rank1", "dpo-rendezvous request rank=1 world=2 bytes=128 nonce=" + old_nonce + "\n");
        write_text(path + ".rank1.ok", "dpo-rendezvous ack rank=1 nonce=" + old_nonce + "\n");
        std::vector<double> delays = rank_0_first ? std::vector<double>{0, 0.3} : std::vector<double>{0.3, 0};
        exchange(rank_0_first ? "stale_files_rank_0_first" : "stale_files_rank_1_first", "file:" + path, delays, dir);
        remove_tree(dir);
    }
}

// Clear errors at once, not at the timeout: rank 0's port taken; ranks with different world sizes.
static void test_tcp_errors() {
    int port = free_port();
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)port);
    int one = 1;
    setsockopt(holder, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (holder < 0 || bind(holder, (struct sockaddr*)&a, sizeof a) != 0 || listen(holder, 4) != 0) {
        test_skip("tcp_port_in_use", "could not hold a port for the test");
    } else {
        std::vector<unsigned char> blob = random_blob(BLOB);
        Outcome o = finish_rank(start_rank(place(2, 0, "tcp:127.0.0.1:" + std::to_string(port), 10), blob, 0), BLOB, 15);
        test_report(o.finished && !o.ok && contains(o.err, "port " + std::to_string(port) + " is already in use") &&
                        o.seconds < 1,
                    "tcp_port_in_use", "ok %d after %.2f s: '%s'", o.ok, o.seconds, o.err.c_str());
    }
    close(holder);

    const std::string at = "tcp:127.0.0.1:" + std::to_string(free_port());
    std::vector<unsigned char> blob = random_blob(BLOB);
    Child root = start_rank(place(2, 0, at, 10), blob, 0);
    Child other = start_rank(place(3, 1, at, 10), blob, 0.05);
    Outcome o0 = finish_rank(root, BLOB, 15), o1 = finish_rank(other, BLOB, 15);
    test_report(o0.finished && !o0.ok && contains(o0.err, "world size 3") && o0.seconds < 2, "tcp_world_mismatch_rank_0",
                "ok %d after %.2f s: '%s'", o0.ok, o0.seconds, o0.err.c_str());
    test_report(o1.finished && !o1.ok && contains(o1.err, "rank 0 refused this rank") && o1.seconds < 2,
                "tcp_world_mismatch_rank_1", "ok %d after %.2f s: '%s'", o1.ok, o1.seconds, o1.err.c_str());
}

// ---- programs: this one under mpirun, train_dpo_cpu -----------------------------------------------

// Runs argv with extra environment variables (the rest of the environment minus every launcher
// variable); returns the exit status (-1: killed at the limit or a signal) and the output.
static int run_program(const std::vector<std::string>& args, const FakeEnv& extra, double limit_s, std::string* output) {
    int p[2];
    if (pipe(p) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 1);
        dup2(p[1], 2);
        for (const char* v : {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_RANK",
                              "PMI_SIZE", "PMIX_RANK", "RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID",
                              "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_STEP_ID"})
            unsetenv(v);
        for (const auto& kv : extra) setenv(kv.first.c_str(), kv.second.c_str(), 1);
        std::vector<char*> argv;
        for (const std::string& a : args) argv.push_back((char*)a.c_str());
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    close(p[1]);
    Deadline deadline(limit_s);
    char buf[4096];
    while (wait_fd(p[0], POLLIN, deadline)) {
        ssize_t k = read(p[0], buf, sizeof buf);
        if (k <= 0) break;
        output->append(buf, (size_t)k);
    }
    close(p[0]);
    if (deadline.passed()) kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Under mpirun: who am I from Open MPI's variables, --dist-init auto = mpi, and the bytes of a
// pattern from `seed` from rank 0 to the others.
static int mpi_child(uint64_t seed) {
    LaunchInfo info;
    std::string err;
    if (!resolve_launch(LaunchFlags(), "", process_environment, &info, &err)) {
        printf("error: %s\n", err.c_str());
        return 1;
    }
    std::mt19937_64 rng(seed);
    std::vector<unsigned char> expected(BLOB), got(BLOB, 0xAA);
    for (unsigned char& x : expected) x = (unsigned char)rng();
    if (info.rank == 0) got = expected;
    bool ok = rendezvous_broadcast(info, got.data(), got.size(), &err);
    printf("rank %d: %s (%s) %s\n", info.rank, ok && got == expected ? "ok" : "failed", launch_summary(info).c_str(),
           err.c_str());
#ifdef DIST_WITH_MPI
    int finished = 0;
    MPI_Finalized(&finished);
    if (!finished) MPI_Finalize();
#endif
    return ok && got == expected && info.init == "mpi" ? 0 : 1;
}

static bool have_program(const char* name) {
    std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
    return system(cmd.c_str()) == 0;
}

static void test_programs(const char* self) {
    if (!DIST_BUILD_HAS_MPI) test_skip("mpi_rendezvous", "built without DIST_WITH_MPI");
    else if (!have_program("mpirun")) test_skip("mpi_rendezvous", "mpirun is not installed (make deps)");
    else {
        std::string out;
        uint64_t seed = random_blob(8)[0] * 1000003ull + 17;
        int status = run_program({"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", self, "--mpi-child",
                                  std::to_string(seed)}, {}, 60, &out);
        test_report(status == 0 && contains(out, "rank 0: ok") && contains(out, "rank 1: ok"), "mpi_rendezvous_2_ranks",
                    "status %d: %s", status, out.c_str());
    }
    if (access("./train_dpo_cpu", X_OK) != 0) {
        test_skip("train_dpo_cpu_refuses", "./train_dpo_cpu is not built");
        return;
    }
    std::string dir = make_temp_dir();
    struct Case { const char* name; std::vector<std::string> args; FakeEnv env; const char* expect; };
    const Case cases[] = {
        {"train_dpo_cpu_refuses_rank_flags", {"--world-size", "2", "--rank", "1"}, {}, "not started by an MPI launcher"},
        {"train_dpo_cpu_refuses_srun_without_mpi", {},
         {{"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}},
         "rank 1 of 2 from Slurm, but this process was not started by an MPI launcher"},
        {"train_dpo_cpu_rank_flag_alone", {"--rank", "1"}, {}, "--rank without --world-size"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> args = {"./train_dpo_cpu", "--steps", "1", "--out", dir + "/out"};
        args.insert(args.end(), c.args.begin(), c.args.end());
        std::string out;
        int status = run_program(args, c.env, 30, &out);
        test_report(status == 1 && contains(out, c.expect) && files_in(dir).empty(), c.name, "status %d: %s", status,
                    out.c_str());
    }
    remove_tree(dir);
}

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "--mpi-child") return mpi_child(strtoull(argv[2], nullptr, 10));
    double t0 = now_s();
    test_who();
    test_flags();
    test_exchanges();
    test_timeouts();
    test_stale_files();
    test_tcp_errors();
    test_programs(argv[0]);
    printf("test_launch: %.1f s\n", now_s() - t0);
    return test_exit();
}
