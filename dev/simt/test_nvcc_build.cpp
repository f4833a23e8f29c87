// dev/simt/test_nvcc_build.cpp: reports whether every kernel test compiled with nvcc for sm_80
// and sm_90 (and those using wgmma also for sm_90a). Make runs nvcc once per file (rule
// build/nvcc/%.status in dev/simt/simt.mk, build/nvcc/%.fp32.status for a test's -DENABLE_FP32
// build, build/nvcc/%.sm90a.status for sm_90a) and records "PASS", "FAIL" or
// "SKIP why" on the first line of a status file, nvcc's messages below; this program turns each
// status file into one test line (SIMT_NVCC_STATUS lists them).
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>

#include "dev/test_util.h"

int main() {
    std::istringstream files(SIMT_NVCC_STATUS);
    std::string path;
    while (files >> path) {
        std::string source = path.substr(strlen("build/nvcc/"));
        source = source.substr(0, source.size() - strlen(".status"));
        // T.fp32.status: the all-fp32 build of T.cu; T.sm90a.status: T.cu for sm_90a (wgmma)
        auto ends_with = [&](const char* suffix) {
            const size_t n = strlen(suffix);
            return source.size() > n && source.compare(source.size() - n, n, suffix) == 0;
        };
        const bool fp32 = ends_with(".fp32"), sm90a = ends_with(".sm90a");
        if (fp32 || sm90a) source = source.substr(0, source.rfind('.'));
        std::string name = std::string(sm90a ? "nvcc sm_90a " : "nvcc sm_80+sm_90 ") + source + ".cu" +
                           (fp32 ? " -DENABLE_FP32" : "");
        FILE* f = fopen(path.c_str(), "r");
        if (!f) {
            test_report(false, name.c_str(), "no status file %s; run make", path.c_str());
            continue;
        }
        std::string text;
        char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
        fclose(f);
        std::string first = text.substr(0, text.find('\n'));
        std::string messages = text.size() > first.size() ? text.substr(first.size() + 1) : "";
        if (first.rfind("SKIP", 0) == 0) {
            test_skip(name.c_str(), first.substr(5).c_str());
        } else if (first == "PASS") {
            test_report(true, name.c_str());
        } else {
            if (messages.size() > 3000) messages = messages.substr(0, 3000) + "\n...";
            test_report(false, name.c_str(), "nvcc failed (full log: %s):\n%s", path.c_str(),
                        messages.c_str());
        }
    }
    return test_exit();
}
