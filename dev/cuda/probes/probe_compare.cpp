// dev/cuda/probes/probe_compare.cpp: compares the output of an instruction probe (dev/cuda/probes/probe_*.cu) run
// on a GPU with the same probe run on the CPU emulation (dev/simt), for dev/gpu_check.sh.
// A probe prints one value per line: "<what> <index...> 0x<32-bit hex>" (the hex is the value's bit
// pattern, a float or a packed register). Lines must match one to one. Per <what> it prints how many
// values are bit-identical, how many differ only in a NaN's payload, and for the rest the largest
// distance in float ulps. Names that start with a --measure PREFIX (the mma probe: the emulation
// does not model the tensor cores' rounding) are reported as "measured" and never fail; for names
// that start with a --nan-equal PREFIX (bf16 arithmetic: CUDA's host code and the device differ
// in which NaN they return, and a NaN is a NaN to every kernel) two NaNs count as equal.
// Exit status: 0 if every other value is bit-identical, 1 if not, 2 on unreadable or mismatched input.
// usage: probe_compare gpu.txt cpu.txt [--measure PREFIX]... [--nan-equal PREFIX]...
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

struct Line { std::string what, where; uint32_t bits; };

static std::vector<Line> read_probe(const char* path) {
    std::ifstream in(path);
    if (!in) { fprintf(stderr, "probe_compare: cannot open %s\n", path); exit(2); }
    std::vector<Line> lines;
    std::string text;
    int number = 0;
    while (std::getline(in, text)) {
        number++;
        if (text.empty() || text[0] == '#') continue;
        size_t last = text.find_last_of(' ');
        size_t first = text.find(' ');
        if (last == std::string::npos || text.compare(last + 1, 2, "0x") != 0) {
            fprintf(stderr, "probe_compare: %s:%d: expected \"<what> <index...> 0x<hex>\", got \"%s\"\n",
                    path, number, text.c_str());
            exit(2);
        }
        Line l;
        l.what = text.substr(0, first);
        l.where = text.substr(0, last);
        l.bits = (uint32_t)strtoul(text.c_str() + last + 1, nullptr, 16);
        lines.push_back(l);
    }
    return lines;
}

static bool is_nan(uint32_t u) { return (u & 0x7FFFFFFFu) > 0x7F800000u; }

// Distance in units in the last place between two non-NaN floats (on the ordered integer line).
static int64_t ulp_distance(uint32_t a, uint32_t b) {
    auto ordered = [](uint32_t u) -> int64_t { return (u & 0x80000000u) ? -(int64_t)(u & 0x7FFFFFFFu) : (int64_t)u; };
    int64_t d = ordered(a) - ordered(b);
    return d < 0 ? -d : d;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: probe_compare gpu.txt cpu.txt [--measure PREFIX]... [--nan-equal PREFIX]...\n");
        return 2;
    }
    std::vector<std::string> measured, nan_equal;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--measure") && i + 1 < argc) measured.push_back(argv[++i]);
        else if (!strcmp(argv[i], "--nan-equal") && i + 1 < argc) nan_equal.push_back(argv[++i]);
        else { fprintf(stderr, "probe_compare: unknown argument %s\n", argv[i]); return 2; }
    }
    auto starts_with_any = [](const std::string& s, const std::vector<std::string>& prefixes) {
        for (const std::string& p : prefixes)
            if (s.compare(0, p.size(), p) == 0) return true;
        return false;
    };
    std::vector<Line> gpu = read_probe(argv[1]), cpu = read_probe(argv[2]);
    if (gpu.size() != cpu.size()) {
        fprintf(stderr, "probe_compare: %s has %zu values, %s has %zu\n", argv[1], gpu.size(), argv[2], cpu.size());
        return 2;
    }
    struct Tally { long same = 0, nan_payload = 0, differ = 0; int64_t worst = 0; std::string worst_at; uint32_t wg = 0, wc = 0; };
    std::map<std::string, Tally> tallies;
    for (size_t i = 0; i < gpu.size(); i++) {
        if (gpu[i].where != cpu[i].where) {
            fprintf(stderr, "probe_compare: line %zu is \"%s\" on the GPU but \"%s\" on the CPU\n",
                    i + 1, gpu[i].where.c_str(), cpu[i].where.c_str());
            return 2;
        }
        Tally& t = tallies[gpu[i].what];
        uint32_t g = gpu[i].bits, c = cpu[i].bits;
        if (g == c) { t.same++; continue; }
        if (is_nan(g) && is_nan(c)) { t.nan_payload++; continue; }
        t.differ++;
        int64_t d = (is_nan(g) || is_nan(c)) ? INT64_MAX : ulp_distance(g, c);
        if (d > t.worst) { t.worst = d; t.worst_at = gpu[i].where; t.wg = g; t.wc = c; }
    }
    int status = 0;
    for (auto& [what, t] : tallies) {
        bool measure = starts_with_any(what, measured);
        bool ok = measure || (t.differ == 0 && (t.nan_payload == 0 || starts_with_any(what, nan_equal)));
        printf("%-20s %-8s: %ld identical, %ld differ only in NaN payload, %ld differ", what.c_str(),
               measure ? "measured" : ok ? "ok" : "DIFF", t.same, t.nan_payload, t.differ);
        if (t.differ) {
            float g, c;
            memcpy(&g, &t.wg, 4); memcpy(&c, &t.wc, 4);
            printf(" (worst %" PRId64 " ulps at \"%s\": gpu 0x%08x = %.9g, cpu 0x%08x = %.9g)", t.worst,
                   t.worst_at.c_str(), t.wg, g, t.wc, c);
        }
        printf("\n");
        if (!ok) status = 1;
    }
    return status;
}
