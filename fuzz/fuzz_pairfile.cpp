// libFuzzer target: data/pairfile.h's load_pair_file on arbitrary bytes. A file either loads
// into a set that passes check_pair_set or is refused with an error naming the file.
#include "data/pairfile.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string path = fuzz_scratch_file("pairs.bin", data, size), err, why;
    PairSet set;
    if (load_pair_file(path, &set, &err)) {
        if (!check_pair_set(set, &why)) { fprintf(stderr, "loaded an invalid set: %s\n", why.c_str()); abort(); }
    } else {
        fuzz_check_error(err, path);
    }
    return 0;
}
