// Per-pair results of a DPO forward and their sums over a step or an evaluation, with TRL's
// metric names. Host code shared by the CPU and GPU trainers (no BLAS, OpenMP or CUDA).
#pragma once
#include <cstdio>
#include <string>

// Log-probs of one pair under the policy, summed over the scored tokens of each response.
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
