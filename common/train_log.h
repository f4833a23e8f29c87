// The llm.c-style step line on stdout and the machine-readable log OUT/log.jsonl of the metrics
// of common/metrics.h (one JSON object per line: step records, and eval records whose metric
// names carry the prefix "eval_").
#pragma once
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/progress.h"  // format_duration

// OUT/log.jsonl. A fresh run truncates it; a resumed run keeps the records up to the step it
// resumes from (drops those a crashed run wrote after its last checkpoint) and appends.
struct JsonlLog {
    FILE* f = nullptr;

    bool open(const std::string& path, bool resume, long resume_step, std::string* err) {
        if (resume) {
            std::ifstream in(path);
            std::vector<std::string> keep;
            std::string line;
            while (std::getline(in, line)) {
                size_t at = line.find("\"step\": ");
                if (at == std::string::npos) continue;
                // every record of a step up to the checkpoint's was written before the checkpoint
                if (atol(line.c_str() + at + 8) <= resume_step) keep.push_back(line);
            }
            f = fopen(path.c_str(), "w");
            if (!f) { *err = "cannot write " + path; return false; }
            for (auto& l : keep) fprintf(f, "%s\n", l.c_str());
        } else {
            f = fopen(path.c_str(), "w");
            if (!f) { *err = "cannot write " + path; return false; }
        }
        fflush(f);
        return true;
    }
    void write(const std::string& record) {
        if (!f) return;
        fprintf(f, "{%s}\n", record.c_str());
        fflush(f);
    }
    ~JsonlLog() { if (f) fclose(f); }
};
