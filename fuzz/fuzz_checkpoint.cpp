// libFuzzer target: common/checkpoint.h's load_checkpoint on arbitrary bytes. A checkpoint that
// loads has a valid configuration, a bounded step and exactly the parameters it needs.
#include "common/checkpoint.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string path = fuzz_scratch_file("checkpoint.bin", data, size), err;
    CheckpointState s;
    if (load_checkpoint(path, &s, &err)) {
        if (!model_config_error(s.cfg).empty() || s.step < 0 || s.params.size() != num_parameters(s.cfg) ||
            (!s.m.empty() && (s.m.size() != s.params.size() || s.v.size() != s.params.size())))
            abort();
    } else {
        fuzz_check_error(err, path);
    }
    return 0;
}
