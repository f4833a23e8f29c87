// libFuzzer target: a Hugging Face directory (config.json + model.safetensors) through
// common/model_io.h's load_hf_model, which parses both with common/json_read.h and validates
// the safetensors header (common/safetensors.h) against the file and the configuration.
// Input: uint16 n (little-endian), n bytes of config.json, then the bytes of model.safetensors.
#include <sys/stat.h>
#include "common/model_io.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    size_t n = std::min<size_t>(data[0] | (size_t)data[1] << 8, size - 2);
    std::string dir = fuzz_scratch_file("hf_marker", data, 0) + "_dir";
    mkdir(dir.c_str(), 0755);
    std::string config = dir + "/config.json", weights = dir + "/model.safetensors";
    FILE* f = fopen(config.c_str(), "wb");
    if (!f || (n && fwrite(data + 2, 1, n, f) != n)) abort();
    fclose(f);
    f = fopen(weights.c_str(), "wb");
    size_t rest = size - 2 - n;
    if (!f || (rest && fwrite(data + 2 + n, 1, rest, f) != rest)) abort();
    fclose(f);
    ModelConfig cfg;
    std::vector<float> params;
    std::string err;
    if (load_hf_model(dir, &cfg, &params, &err)) {
        if (!model_config_error(cfg).empty() || params.size() != num_parameters(cfg)) abort();
    } else {
        fuzz_check_error(err, dir);
    }
    SafetensorsFile file;  // the safetensors reader alone, on the same bytes
    if (!safetensors_open(weights, &file, &err)) fuzz_check_error(err, weights);
    return 0;
}
