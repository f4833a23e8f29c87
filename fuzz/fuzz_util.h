// Shared by the libFuzzer targets in fuzz/: the loaders read files by path, so each input is
// written to a scratch file (one per process, under $FUZZ_TMPDIR, else /dev/shm when there: a
// file system in memory, many times faster than a disk for thousands of small files, else /tmp).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <unistd.h>

// Scratch paths of this process (files, and "<path>_dir" directories), removed at exit.
static inline std::set<std::string>& fuzz_scratch_paths() {
    static std::set<std::string> paths;
    static bool registered = [] {
        atexit([] {
            std::error_code ec;
            for (const std::string& p : fuzz_scratch_paths()) std::filesystem::remove_all(p, ec);
        });
        return true;
    }();
    (void)registered;
    return paths;
}

// Writes data[0..size) to the scratch file `name` of this process and returns its path.
static inline std::string fuzz_scratch_file(const char* name, const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        const char* d = getenv("FUZZ_TMPDIR");
        return std::string(d && *d ? d : access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    }();
    std::string path = dir + "/fuzz_" + std::to_string(getpid()) + "_" + name;
    fuzz_scratch_paths().insert(path);
    fuzz_scratch_paths().insert(path + "_dir");
    FILE* f = fopen(path.c_str(), "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

// A loader that fails must say why, naming the file (an empty or anonymous error is a bug).
static inline void fuzz_check_error(const std::string& err, const std::string& path) {
    if (err.find(path) == std::string::npos) {
        fprintf(stderr, "error does not name the file %s: '%s'\n", path.c_str(), err.c_str());
        abort();
    }
}
