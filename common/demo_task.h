// The bundled demo: what `./train_dpo_cpu` trains when no --train is given (the synthetic
// "sort the digits" task of data/make_synthetic.cpp with the tiny preset). Its pairs teach only
// an order (chosen and rejected hold the same digits), so DPO alone makes the greedy samples
// ascending but not the prompt's digits; the demo therefore trains with the RPO mix, DPO plus
// the SFT loss on the chosen response, for long enough that the greedy samples become exact
// sorts (eval_exact_match, cpu/exact_match.h).
//
// These flags are read before the user's, so any flag given on the command line wins.
#pragma once
#include <string>
#include <vector>

#include "data/pairs.h"

// The pair files of data/make_synthetic (the sort task); exact match is on by default for them.
inline bool is_synthetic_sort_task(const PairSet& set) {
    return set.tokenizer_id.rfind("synthetic-sort", 0) == 0;
}

inline const std::vector<std::string>& demo_task_flags() {
    static const std::vector<std::string> flags = {"--loss", "sigmoid,sft", "--steps", "1000",
                                                   "--eval-every", "250", "--sample-every", "250"};
    return flags;
}

inline std::string join_flags(const std::vector<std::string>& flags) {
    std::string s;
    for (const std::string& f : flags) s += (s.empty() ? "" : " ") + f;
    return s;
}

// argv with the demo's flags inserted before the user's when no --train is given; else argv as is.
// The strings live as long as the returned vector's source (static flags, the process's argv).
inline std::vector<char*> with_demo_flags(int argc, char** argv, bool* is_demo) {
    std::vector<char*> out(argv, argv + argc);
    *is_demo = true;
    for (int i = 1; i < argc; i++)
        if (std::string(argv[i]) == "--train") *is_demo = false;
    if (*is_demo)
        for (size_t k = 0; k < demo_task_flags().size(); k++)
            out.insert(out.begin() + 1 + k, const_cast<char*>(demo_task_flags()[k].c_str()));
    return out;
}
