// libFuzzer target: common/model_io.h's llm.c loader on arbitrary bytes.
#include "common/model_io.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string path = fuzz_scratch_file("model.bin", data, size), err;
    ModelConfig cfg;
    std::vector<float> params;
    if (load_llmc_model(path, &cfg, &params, &err)) {
        if (!model_config_error(cfg).empty() || params.size() != num_parameters(cfg)) abort();
    } else {
        fuzz_check_error(err, path);
    }
    return 0;
}
