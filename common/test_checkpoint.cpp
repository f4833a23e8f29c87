// Tests of common/checkpoint.h: the one-file form read whole or by parts, and the sharded form of
// ZeRO-1 runs. Three ranks (threads of this process, with their own collectives below) save
// sharded; loading with world 3 gives each rank exactly its shard (from its own file alone), with
// world 2 and 1 the re-cut moments equal the full ones bit for bit; a crash before the manifest
// leaves the previous checkpoint loadable; missing, damaged, mixed-step and wrong-world shards, a
// damaged manifest and a rank that cannot write are errors naming the file. The expected moments
// are the random vectors the test made, never values read back through the code under test.
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/checkpoint.h"
#include "dev/test_util.h"

// ---- `world` ranks as threads: broadcast and all_gather through shared memory
struct ThreadGroup {
    int world;
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0;
    long generation = 0;
    std::vector<std::vector<char>> slots;
    explicit ThreadGroup(int w) : world(w), slots(w) {}
    void barrier() {
        std::unique_lock<std::mutex> lock(mu);
        long gen = generation;
        if (++arrived == world) { arrived = 0; generation++; cv.notify_all(); return; }
        cv.wait(lock, [&] { return generation != gen; });
    }
};
struct ThreadComm {
    ThreadGroup* group;
    int rank, world;
    void broadcast(void* buf, size_t n) {
        if (rank == 0) group->slots[0].assign((char*)buf, (char*)buf + n);
        group->barrier();
        if (rank != 0) memcpy(buf, group->slots[0].data(), n);
        group->barrier();
    }
    void all_gather(const double* mine, int count, std::vector<double>* out) {
        group->slots[rank].assign((const char*)mine, (const char*)(mine + count));
        group->barrier();
        out->resize((size_t)count * world);
        for (int r = 0; r < world; r++) memcpy(out->data() + (size_t)r * count, group->slots[r].data(), count * sizeof(double));
        group->barrier();
    }
};

static ModelConfig tiny_config() {
    ModelConfig c;
    c.max_seq_len = 16; c.vocab_size = 100; c.padded_vocab_size = 128;
    c.num_layers = 2; c.num_heads = 4; c.channels = 32; c.layernorm_eps = 1e-5f;
    return c;
}

// A full training state at `step`, random (never zeros) and different for every step.
static CheckpointState random_state(long step) {
    CheckpointState s;
    s.cfg = tiny_config();
    s.step = step; s.seed = 1337; s.ref_model_hash = 11; s.train_data_hash = 22;
    const size_t n = num_parameters(s.cfg);
    std::mt19937 rng((unsigned)step);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    s.params.resize(n); s.m.resize(n); s.v.resize(n);
    for (size_t i = 0; i < n; i++) {
        s.params[i] = normal(rng);
        s.m[i] = 1e-3f * normal(rng);
        s.v[i] = 1e-6f * std::fabs(normal(rng)) + 1e-9f;
    }
    s.has_moments = true;
    return s;
}

// Every rank of `world` saves full's step sharded by ZeroShards(n, world), as a ZeRO-1 run does.
// Rank `failing_rank` (if any) finds its shard's path blocked. Returns how many ranks succeeded;
// *err0 = rank 0's error, *errs = every rank's.
static int save_with_world(const std::string& path, const CheckpointState& full, int world,
                           std::vector<std::string>* errs, int failing_rank = -1) {
    ThreadGroup group(world);
    const ZeroShards shards(full.params.size(), world);
    errs->assign(world, "");
    std::vector<int> ok(world, 0);
    std::vector<std::thread> threads;
    for (int r = 0; r < world; r++) {
        threads.emplace_back([&, r] {
            ThreadComm comm{&group, r, world};
            CheckpointState mine;
            mine.cfg = full.cfg; mine.step = full.step; mine.seed = full.seed;
            mine.ref_model_hash = full.ref_model_hash; mine.train_data_hash = full.train_data_hash;
            if (r == 0) mine.params = full.params;  // the other ranks' weights are not written
            mine.moments_begin = shards.begin(r);
            mine.m.assign(full.m.begin() + shards.begin(r), full.m.begin() + shards.end(r));
            mine.v.assign(full.v.begin() + shards.begin(r), full.v.begin() + shards.end(r));
            if (r == failing_rank) mine.m.push_back(0.0f);  // moments that do not fit the model
            ok[r] = save_checkpoint_sharded(comm, path, mine, &(*errs)[r]) ? 1 : 0;
        });
    }
    for (auto& t : threads) t.join();
    int n_ok = 0;
    for (int r = 0; r < world; r++) n_ok += ok[r];
    return n_ok;
}

static bool same(const std::vector<float>& a, const float* b, size_t n) {
    return a.size() == n && (n == 0 || memcmp(a.data(), b, n * sizeof(float)) == 0);
}
// s holds full's weights and its moments [lo, hi), bit for bit
static bool holds(const CheckpointState& s, const CheckpointState& full, size_t lo, size_t hi) {
    return s.step == full.step && s.seed == full.seed && s.ref_model_hash == full.ref_model_hash &&
           s.train_data_hash == full.train_data_hash && same(s.params, full.params.data(), full.params.size()) &&
           s.moments_begin == lo && same(s.m, full.m.data() + lo, hi - lo) && same(s.v, full.v.data() + lo, hi - lo);
}
static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
static bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
static std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}
static void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
}
static void flip_byte(const std::string& path, long offset_from_end) {
    std::string b = read_file(path);
    b[b.size() - offset_from_end] ^= 0x40;
    write_file(path, b);
}

// The files of the save of `s` at `path` (named after the step and its weights' hash).
static std::string weights_file(const std::string& path, const CheckpointState& s) {
    return checkpoint_sibling(path, checkpoint_weights_name(path, s.step, hash_bytes(s.params.data(), s.params.size() * 4)));
}
static std::string shard_file(const std::string& path, const CheckpointState& s, int rank, int world) {
    return checkpoint_sibling(path, checkpoint_shard_name(path, s.step, hash_bytes(s.params.data(), s.params.size() * 4),
                                                          rank, world));
}

int main() {
    char tmpl[] = "/tmp/test_checkpoint.XXXXXX";
    const std::string dir = mkdtemp(tmpl), path = dir + "/checkpoint.bin";
    std::string err;
    std::vector<std::string> errs;
    const CheckpointState s5 = random_state(5), s10 = random_state(10), s15 = random_state(15);
    const size_t n = s5.params.size();

    // ---- the one-file form: whole, by parts, weights only
    {
        const std::string one = dir + "/one.bin";
        CheckpointState s;
        bool ok = save_checkpoint(one, s5, &err) && load_checkpoint(one, &s, &err);
        test_report(ok && s.has_moments && s.shard_world == 0 && holds(s, s5, 0, n), "one_file_round_trip", "%s", err.c_str());
        const ZeroShards z(n, 3);
        ok = true;
        for (int r = 0; r < 3 && ok; r++)
            ok = load_checkpoint(one, &s, &err, r, 3) && holds(s, s5, z.begin(r), z.end(r));
        test_report(ok, "one_file_gives_each_rank_its_shard", "%s", err.c_str());
        ok = load_checkpoint(one, &s, &err, 0, 0) && s.m.empty() && same(s.params, s5.params.data(), n);
        test_report(ok, "one_file_weights_only", "%s", err.c_str());
        remove(one.c_str());
    }

    // ---- sharded, world 3, at step 5: each rank gets exactly its shard; worlds 2 and 1 re-cut
    int saved = save_with_world(path, s5, 3, &errs);
    test_report(saved == 3 && is_checkpoint_file(path) && read_file(path).compare(0, 8, "DPOCKPTM") == 0 &&
                    exists(weights_file(path, s5)) && exists(shard_file(path, s5, 2, 3)),
                "sharded_save_world3_writes_manifest_weights_shards", "%d ranks saved; %s", saved, errs[0].c_str());
    {
        const ZeroShards z(n, 3);
        CheckpointState s;
        bool ok = true;
        for (int r = 0; r < 3 && ok; r++)
            ok = load_checkpoint(path, &s, &err, r, 3) && s.shard_world == 3 && holds(s, s5, z.begin(r), z.end(r));
        test_report(ok, "sharded_world3_resume_world3_each_rank_exact", "%s", err.c_str());

        // a rank of the same world reads its own shard alone: hide the others and it still loads
        rename((shard_file(path, s5, 0, 3)).c_str(), (dir + "/hidden0").c_str());
        rename((shard_file(path, s5, 2, 3)).c_str(), (dir + "/hidden2").c_str());
        ok = load_checkpoint(path, &s, &err, 1, 3) && holds(s, s5, z.begin(1), z.end(1));
        test_report(ok, "sharded_same_world_reads_only_its_own_shard", "%s", err.c_str());
        CheckpointState t;
        bool loaded = load_checkpoint(path, &t, &err, 0, 2);
        test_report(!loaded && contains(err, shard_file(path, s5, 0, 3) + ": cannot open shard 0 of 3"),
                    "sharded_missing_shard_is_an_error_naming_it", "loaded %d, error '%s'", loaded, err.c_str());
        rename((dir + "/hidden0").c_str(), (shard_file(path, s5, 0, 3)).c_str());
        rename((dir + "/hidden2").c_str(), (shard_file(path, s5, 2, 3)).c_str());

        const ZeroShards z2(n, 2);
        ok = true;
        for (int r = 0; r < 2 && ok; r++)
            ok = load_checkpoint(path, &s, &err, r, 2) && holds(s, s5, z2.begin(r), z2.end(r));
        test_report(ok, "sharded_world3_resume_world2_reshards_exactly", "%s", err.c_str());
        ok = load_checkpoint(path, &s, &err) && s.has_moments && holds(s, s5, 0, n);
        test_report(ok, "sharded_world3_resume_world1_all_moments_exact", "%s", err.c_str());
        ok = load_checkpoint(path, &s, &err, 0, 0) && s.m.empty() && same(s.params, s5.params.data(), n);
        test_report(ok, "sharded_weights_only_for_model", "%s", err.c_str());

        // the weights file alone is a --model, and refuses to be resumed from
        ok = load_checkpoint(weights_file(path, s5), &s, &err, 0, 0) && same(s.params, s5.params.data(), n);
        loaded = load_checkpoint(weights_file(path, s5), &t, &err);
        test_report(ok && !loaded && contains(err, weights_file(path, s5) + ": holds only the weights of a sharded checkpoint") &&
                        contains(err, "resume from the manifest"),
                    "sharded_weights_file_loads_as_model_not_resume", "loaded %d, error '%s'", loaded, err.c_str());
    }

    // ---- a new save commits, then removes the old step's files
    saved = save_with_world(path, s10, 3, &errs);
    {
        CheckpointState s;
        bool ok = saved == 3 && load_checkpoint(path, &s, &err) && holds(s, s10, 0, n);
        test_report(ok && !exists(weights_file(path, s5)) && !exists(shard_file(path, s5, 0, 3)) &&
                        !exists(shard_file(path, s5, 2, 3)),
                    "sharded_next_save_removes_old_files_after_commit", "%d saved; %s", saved, err.c_str());
    }

    // ---- a crash after the shards of step 15, before its manifest: step 10 still loads
    {
        const ZeroShards z(n, 3);
        uint64_t weights_hash = 0;
        bool ok = save_checkpoint_weights(path, s15, &weights_hash, &err);
        for (int r = 0; r < 3 && ok; r++) {
            CheckpointShardInfo info;
            info.step = 15; info.rank = r; info.world = 3; info.num_params = n;
            info.begin = z.begin(r); info.end = z.end(r); info.weights_hash = weights_hash;
            ok = save_checkpoint_shard(path, &info, s15.m.data() + z.begin(r), s15.v.data() + z.begin(r), &err);
        }
        CheckpointState s;
        ok = ok && exists(shard_file(path, s15, 1, 3)) && load_checkpoint(path, &s, &err) && holds(s, s10, 0, n);
        for (int r = 0; r < 3 && ok; r++) ok = load_checkpoint(path, &s, &err, r, 3) && holds(s, s10, z.begin(r), z.end(r));
        test_report(ok, "crash_before_manifest_previous_checkpoint_loads", "%s", err.c_str());
    }

    // ---- damaged or foreign files named by the committed manifest (step 10, world 3)
    const std::string shard1 = shard_file(path, s10, 1, 3), saved1 = dir + "/saved1";
    auto restore = [&] { write_file(shard1, read_file(saved1)); };
    write_file(saved1, read_file(shard1));
    auto expect_error = [&](const char* name, int part, int parts, const std::string& want1, const std::string& want2) {
        CheckpointState s;
        bool loaded = load_checkpoint(path, &s, &err, part, parts);
        test_report(!loaded && contains(err, want1) && contains(err, want2), name, "loaded %d, error '%s'", loaded, err.c_str());
    };
    flip_byte(shard1, 5);  // in v
    expect_error("damaged_shard_payload_is_an_error_naming_it", 1, 3, shard1 + ": contents do not match the checksum",
                 "damaged");
    restore();
    flip_byte(shard1, (long)read_file(shard1).size() - 30);  // in the header (begin)
    expect_error("damaged_shard_header_is_an_error_naming_it", 0, 1, shard1 + ": header checksum mismatch", "damaged");
    restore();
    rename((shard_file(path, s15, 1, 3)).c_str(), shard1.c_str());  // the crashed save's shard 1
    expect_error("shard_of_another_step_is_an_error_naming_it", 1, 2, shard1 + ": its header says step 15, expected 10",
                 "belongs to another save");
    {  // a shard 1 written for world 4 (same step, same weights) in place of world 3's
        const ZeroShards z4(n, 4);
        CheckpointState committed;
        load_checkpoint(path, &committed, &err, 0, 0);
        CheckpointShardInfo info;
        info.step = 10; info.rank = 1; info.world = 4; info.num_params = n;
        info.begin = z4.begin(1); info.end = z4.end(1);
        info.weights_hash = hash_bytes(s10.params.data(), n * sizeof(float));
        save_checkpoint_shard(dir + "/w4.bin", &info, s10.m.data() + info.begin, s10.v.data() + info.begin, &err);
        const std::string w4 = dir + "/w4.bin";
        rename(checkpoint_sibling(w4, checkpoint_shard_name(w4, 10, info.weights_hash, 1, 4)).c_str(), shard1.c_str());
        expect_error("shard_of_another_world_size_is_an_error_naming_it", 0, 1,
                     shard1 + ": its header says world size 4, expected 3", "another save");
    }
    restore();
    {
        CheckpointState s;
        bool ok = load_checkpoint(path, &s, &err) && holds(s, s10, 0, n);
        test_report(ok, "restored_shard_loads_again", "%s", err.c_str());
    }
    remove(saved1.c_str());

    // the manifest itself damaged: a changed digit, a cut-off end, a weights file of another save
    const std::string manifest = read_file(path);
    {
        std::string bad = manifest;
        size_t at = bad.find("world 3");
        bad[at + 6] = '2';
        write_file(path, bad);
        expect_error("damaged_manifest_is_an_error_naming_it", 0, 1, path + " line 9: the checksum does not match",
                     "resume from another checkpoint");
        write_file(path, manifest.substr(0, manifest.size() - 10));
        expect_error("truncated_manifest_is_an_error_naming_it", 0, 1, path + ": the last line has no newline", "truncated");
        write_file(path, manifest);
        const std::string w = weights_file(path, s10), w_saved = read_file(w);
        CheckpointState other = s15;
        other.step = 10;
        uint64_t h;
        // other weights saved at the same step (a new run in this directory) go to another file
        bool ok = save_checkpoint_weights(path, other, &h, &err);
        const std::string w_other = weights_file(path, other);
        CheckpointState s;
        ok = ok && w_other != w && exists(w_other) && read_file(w) == w_saved && load_checkpoint(path, &s, &err) &&
             holds(s, s10, 0, n);
        test_report(ok, "same_step_other_weights_leave_committed_files_alone", "%s", err.c_str());
        write_file(w, read_file(w_other));  // ... and put in place of the named one: an error
        expect_error("weights_file_of_another_save_is_an_error_naming_it", 0, 1,
                     w + ": is not the weights file that " + path + " names", "another save");
        write_file(w, w_saved);
        remove(w_other.c_str());
    }

    // ---- a rank that cannot write its shard: no rank commits, the previous checkpoint stays
    saved = save_with_world(path, s15, 3, &errs, 1);
    {
        CheckpointState s;
        bool ok = saved == 0 && contains(errs[1], "rank 1's moments do not fit the model") &&
                  contains(errs[0], "rank 1 could not write its optimizer shard") && read_file(path) == manifest &&
                  load_checkpoint(path, &s, &err) && holds(s, s10, 0, n);
        test_report(ok, "failed_rank_commits_nothing_previous_loads", "%d saved; rank 0 '%s', rank 1 '%s'; %s", saved,
                    errs[0].c_str(), errs[1].c_str(), err.c_str());
    }

    // ---- world 2 at step 20 over world 3; then the one-file form replaces it and its files
    {
        CheckpointState s20 = random_state(20);
        saved = save_with_world(path, s20, 2, &errs);
        const ZeroShards z3(n, 3);
        CheckpointState s;
        bool ok = saved == 2 && exists(shard_file(path, s20, 1, 2)) && !exists(shard_file(path, s10, 0, 3)) &&
                  !exists(weights_file(path, s15));
        for (int r = 0; r < 3 && ok; r++) ok = load_checkpoint(path, &s, &err, r, 3) && holds(s, s20, z3.begin(r), z3.end(r));
        test_report(ok, "sharded_world2_resume_world3_reshards_exactly", "%d saved; %s %s", saved, errs[0].c_str(), err.c_str());
        ok = save_checkpoint(path, s20, &err) && !exists(weights_file(path, s20)) && !exists(shard_file(path, s20, 0, 2)) &&
             load_checkpoint(path, &s, &err) && s.shard_world == 0 && holds(s, s20, 0, n);
        test_report(ok, "one_file_save_replaces_sharded_checkpoint", "%s", err.c_str());
    }

    remove(path.c_str());
    rmdir(dir.c_str());
    return test_exit();
}
