// dev/dump_batches: prints the micro-batches the trainers' dataloader (data/dataloader.h) makes
// for given steps of a pair file, as text, so that other programs can be checked against the
// real packer (dev/bench_torch_dpo.py --self-test rebuilds the same layouts in Python).
//
//   dev/dump_batches PAIRS.bin --micro-rows B --seq-len T --batch-pairs N
//                    [--prefix-sharing on|off] [--packing on|off] [--steps S]
//
// Pairs in file order (the trainers' --no-shuffle). For each step s < S, one line
//   step s batches <n> real_tokens <n> padded_tokens <n>
// then per micro-batch b, one line per field, values separated by spaces:
//   batch b pair_ids ...      [n_slots]  dataset index of each pair slot
//   batch b row_len ...       [B]
//   batch b tokens|pos|target|end|slot|side ...   [B*T] (data/batch.h)
#include <cstdio>
#include <string>
#include <vector>
#include "common/flags.h"
#include "data/dataloader.h"
#include "data/pairfile.h"

template <typename V>
static void print_field(int b, const char* name, const V& values) {
    printf("batch %d %s", b, name);
    for (auto v : values) printf(" %lld", (long long)v);
    printf("\n");
}

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s PAIRS.bin --micro-rows B --seq-len T --batch-pairs N "
                        "[--prefix-sharing on|off] [--packing on|off] [--steps S]\n", argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    int B = 8, T = 1024, N = 32, steps = 1;
    bool sharing = true, packing = true;
    FlagParser f(argc, argv, 2, "dump_batches");
    while (f.next()) {
        if (f.is("--micro-rows")) f.integer(&B, 1, 4096);
        else if (f.is("--seq-len")) f.integer(&T, 2, 1 << 20);
        else if (f.is("--batch-pairs")) f.integer(&N, 1, 1 << 20);
        else if (f.is("--steps")) f.integer(&steps, 1, 1 << 20);
        else if (f.is("--prefix-sharing")) f.on_off(&sharing);
        else if (f.is("--packing")) f.on_off(&packing);
        else f.unknown();
    }
    if (!f.ok()) { fprintf(stderr, "error: %s\n", f.error().c_str()); return 2; }

    PairSet set;
    std::string err;
    if (!load_pair_file(path, &set, &err)) { fprintf(stderr, "error: %s\n", err.c_str()); return 1; }
    LoaderConfig lc;
    lc.B = B; lc.T = T; lc.pairs_per_step = N;
    lc.layout = sharing ? LAYOUT_SHARED : LAYOUT_BASELINE;
    lc.packing = packing; lc.shuffle = false; lc.seed = 0;
    DataLoader loader;
    if (!loader.init(&set, lc, &err)) { fprintf(stderr, "error: %s: %s\n", path.c_str(), err.c_str()); return 1; }
    std::vector<Batch> batches;
    for (int s = 0; s < steps; s++) {
        if (!loader.step_batches(s, &batches, &err)) {
            fprintf(stderr, "error: %s: %s\n", path.c_str(), err.c_str());
            return 1;
        }
        printf("step %d batches %zu real_tokens %ld padded_tokens %ld\n", s, batches.size(),
               loader.last_real_tokens, loader.last_padded_tokens);
        for (size_t b = 0; b < batches.size(); b++) {
            const Batch& x = batches[b];
            print_field((int)b, "pair_ids", x.pair_ids);
            print_field((int)b, "row_len", x.row_len);
            print_field((int)b, "tokens", x.tokens);
            print_field((int)b, "pos", x.pos);
            print_field((int)b, "target", x.target);
            print_field((int)b, "end", x.end);
            print_field((int)b, "slot", x.slot);
            print_field((int)b, "side", x.side);
        }
    }
    return 0;
}
