// libFuzzer target: common/ref_cache.h's load_ref_cache on arbitrary bytes. The expected model,
// data and pair count are taken from the file's own header when it has one (as a run whose
// model and data match would pass them), so the fuzzer reaches the payload checks.
#include "common/ref_cache.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string path = fuzz_scratch_file("ref.bin", data, size), err;
    RefCacheHeader h;
    memset(&h, 0, sizeof h);
    memcpy(&h, data, std::min(size, sizeof h));
    RefCache c;
    bool found = false;
    if (load_ref_cache(path, h.model_hash, h.data_hash, h.n_pairs, &c, &found, &err)) {
        if (!found || c.chosen.size() != h.n_pairs || c.rejected.size() != h.n_pairs) abort();
    } else {
        fuzz_check_error(err, path);
    }
    return 0;
}
