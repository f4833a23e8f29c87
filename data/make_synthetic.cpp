// Writes the bundled synthetic preference task that `./train_dpo_cpu` trains on by default:
// "sort the digits". Vocabulary of 12 tokens: 0-9 are digits, 10 is ':' and 11 ends a response.
//   prompt   : n random digits (n in [4, 10]) followed by ':'
//   chosen   : the digits sorted ascending, then the end token
//   rejected : the same sorted digits with two unequal digits swapped, then the end token
// A preference a tiny model can learn in a minute (no descending neighbours), and that it must
// learn from the pairs: the reference model (random init) prefers neither.
//   usage: data/make_synthetic OUT_DIR     writes OUT_DIR/sort_train.bin and OUT_DIR/sort_val.bin
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/rng.h"
#include "data/pairfile.h"

static const int kColon = 10, kEnd = 11, kVocab = 12;

static PairSet make_pairs(int n, uint64_t seed) {
    Rng rng(seed);
    PairSet set;
    set.vocab_size = kVocab;
    set.tokenizer_id = "synthetic-sort-v1";
    while ((int)set.size() < n) {
        int len = 4 + rng.below(7);
        std::vector<int32_t> digits(len);
        for (auto& d : digits) d = rng.below(10);
        std::vector<int32_t> sorted = digits;
        std::sort(sorted.begin(), sorted.end());
        if (sorted.front() == sorted.back()) continue;  // nothing to swap
        std::vector<int32_t> wrong = sorted;
        int i, j;
        do { i = rng.below(len); j = rng.below(len); } while (wrong[i] == wrong[j]);
        std::swap(wrong[i], wrong[j]);
        std::vector<int32_t> prompt = digits;
        prompt.push_back(kColon);
        sorted.push_back(kEnd);
        wrong.push_back(kEnd);
        set.add(prompt, sorted, wrong);
    }
    return set;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR   (writes sort_train.bin and sort_val.bin)\n", argv[0]);
        return 1;
    }
    std::string dir = argv[1], err;
    struct { const char* name; int n; uint64_t seed; } files[] = {{"sort_train.bin", 4000, 1}, {"sort_val.bin", 256, 2}};
    for (auto& f : files) {
        PairSet set = make_pairs(f.n, f.seed);
        std::string path = dir + "/" + f.name;
        if (!write_pair_file(path, set, PAIRFILE_FLAG_EOS, &err)) {
            fprintf(stderr, "make_synthetic: %s\n", err.c_str());
            return 1;
        }
        printf("wrote %s: %d pairs\n", path.c_str(), f.n);
    }
    return 0;
}
