// bench_tokenizer: measures GPT-2 encode (and decode) throughput on one core.
//   ./tokenizer/bench_tokenizer FILE [--tokenizer DIR]
// Encodes the whole file (UTF-8 text) several times and prints MB/s (1 MB = 1e6 bytes), by wall
// clock and by this thread's CPU time (the latter is steadier on a busy machine).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "tokenizer/gpt2_tokenizer.h"

int main(int argc, char** argv) {
    std::string path, dir = default_tokenizer_dir();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) path.clear(), argc = 0;
        else path = argv[i];
    }
    if (path.empty()) {
        fprintf(stderr, "usage: bench_tokenizer FILE [--tokenizer DIR]  (FILE: UTF-8 text; prints encode MB/s on one core)\n");
        return 1;
    }
    GPT2Tokenizer tok;
    std::string err, text;
    if (!tok.load(dir, &err)) { fprintf(stderr, "bench_tokenizer: %s\n", err.c_str()); return 1; }
    if (!read_whole_file(path, &text)) { fprintf(stderr, "bench_tokenizer: cannot read %s\n", path.c_str()); return 1; }
    auto now = [] { return std::chrono::steady_clock::now(); };
    auto cpu_seconds = [] {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec + 1e-9 * ts.tv_nsec;
    };
    auto t0 = now();
    double cpu0 = cpu_seconds();
    std::vector<int32_t> ids;
    int runs = 0;
    double encode_s = 0;
    while (runs < 3 || encode_s < 1.0) {  // at least 3 runs and 1 second
        if (!tok.encode(text, &ids, &err)) { fprintf(stderr, "bench_tokenizer: %s: %s\n", path.c_str(), err.c_str()); return 1; }
        runs++;
        encode_s = std::chrono::duration<double>(now() - t0).count();
    }
    double encode_cpu_s = cpu_seconds() - cpu0;
    t0 = now();
    std::string back = tok.decode(ids.data(), ids.size());
    double decode_s = std::chrono::duration<double>(now() - t0).count();
    double mb = text.size() / 1e6;
    printf("%s: %.2f MB, %zu tokens (%.2f bytes/token)\n", path.c_str(), mb, ids.size(), (double)text.size() / ids.size());
    printf("encode: %.1f MB/s wall, %.1f MB/s CPU time (%d runs, one thread)\n", mb * runs / encode_s, mb * runs / encode_cpu_s, runs);
    printf("decode: %.1f MB/s, round trip %s\n", mb / decode_s, back == text ? "exact" : "DIFFERS");
    return back == text ? 0 : 1;
}
