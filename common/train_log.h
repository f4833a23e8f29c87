// Training metrics with TRL's names, the llm.c-style step line on stdout and the machine-readable
// log OUT/log.jsonl (one JSON object per line: step records, and eval records whose metric
// names carry the prefix "eval_").
#pragma once
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// The policy's log-probs of one pair (common/dpo.h sums them from the scored tokens).
struct PairLogps {
    double chosen = 0, rejected = 0;           // sums of response-token log-probs
    int n_chosen = 0, n_rejected = 0;          // scored tokens of each response
    double logit_chosen = 0, logit_rejected = 0;  // sums over tokens of the mean logit
};

// Everything the logs need about one pair after a training forward.
struct PairResult {
    PairLogps policy;
    double ref_chosen = 0, ref_rejected = 0;
    double loss = 0;
};

// Sums over the pairs of a step (or of an evaluation); means on output.
struct PairMetrics {
    double pairs = 0, loss = 0, reward_chosen = 0, reward_rejected = 0, correct = 0;
    double logp_chosen = 0, logp_rejected = 0;
    double logit_chosen = 0, logit_rejected = 0, tokens_chosen = 0, tokens_rejected = 0;

    void add(const PairResult& r, double beta) {
        double rc = beta * (r.policy.chosen - r.ref_chosen);
        double rr = beta * (r.policy.rejected - r.ref_rejected);
        pairs += 1;
        loss += r.loss;
        reward_chosen += rc;
        reward_rejected += rr;
        correct += rc > rr ? 1 : 0;
        logp_chosen += r.policy.chosen;
        logp_rejected += r.policy.rejected;
        logit_chosen += r.policy.logit_chosen;
        logit_rejected += r.policy.logit_rejected;
        tokens_chosen += r.policy.n_chosen;
        tokens_rejected += r.policy.n_rejected;
    }
    double mean(double s) const { return pairs > 0 ? s / pairs : 0.0; }
    double accuracy() const { return mean(correct); }
    double margin() const { return mean(reward_chosen - reward_rejected); }

    // the metrics as JSON members (no braces), names prefixed by `prefix`
    std::string json(const std::string& prefix) const {
        char buf[1024];
        snprintf(buf, sizeof buf,
                 "\"%sloss\": %.9g, \"%srewards/chosen\": %.9g, \"%srewards/rejected\": %.9g, "
                 "\"%srewards/accuracies\": %.9g, \"%srewards/margins\": %.9g, \"%slogps/chosen\": %.9g, "
                 "\"%slogps/rejected\": %.9g, \"%slogits/chosen\": %.9g, \"%slogits/rejected\": %.9g",
                 prefix.c_str(), mean(loss), prefix.c_str(), mean(reward_chosen), prefix.c_str(),
                 mean(reward_rejected), prefix.c_str(), accuracy(), prefix.c_str(), margin(),
                 prefix.c_str(), mean(logp_chosen), prefix.c_str(), mean(logp_rejected), prefix.c_str(),
                 tokens_chosen > 0 ? logit_chosen / tokens_chosen : 0.0, prefix.c_str(),
                 tokens_rejected > 0 ? logit_rejected / tokens_rejected : 0.0);
        return buf;
    }
};

inline std::string format_duration(double seconds) {
    char buf[64];
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, sizeof buf, "%lds", s);
    return buf;
}

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
