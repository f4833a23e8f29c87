// Reading and writing the safetensors format (Hugging Face's tensor container), header-only.
// A file is:  [8 bytes: N, little-endian uint64] [N bytes: JSON header] [data bytes]
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets
// relative to the start of the data; an optional "__metadata__" entry maps strings to strings.
// Reading validates the header against the file (length, JSON, offsets in range and not
// overlapping, byte counts against shape x dtype) and converts F32, F16 and BF16 to float
// exactly. Writing produces F32 tensors laid out back to back, with the header padded by spaces
// to a multiple of 8 bytes, through a temporary file renamed into place.
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include "common/atomic_file.h"
#include "common/json_read.h"

// ----------------------------------------------------------------------------
// scalar conversions (exact: every F16 and BF16 value is representable as a float)

static inline float float_from_bits(uint32_t bits) { float f; memcpy(&f, &bits, 4); return f; }
static inline uint32_t bits_from_float(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

static inline float bf16_to_float(uint16_t h) { return float_from_bits((uint32_t)h << 16); }

static inline float f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent == 0x1f) return float_from_bits(sign | 0x7f800000u | (mantissa << 13));  // inf, nan
    if (exponent != 0) return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
    float magnitude = (float)mantissa * 5.9604644775390625e-8f;  // subnormal: mantissa * 2^-24
    return sign ? -magnitude : magnitude;
}

// ----------------------------------------------------------------------------
// reading

struct SafetensorsTensor {
    std::string name;
    std::string dtype;            // "F32", "F16", "BF16", ... as written in the file
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte offsets relative to the start of the data section
    size_t numel() const { size_t n = 1; for (int64_t d : shape) n *= (size_t)d; return n; }
};

struct SafetensorsFile {
    std::string path;
    uint64_t file_size = 0;
    uint64_t data_start = 0;  // 8 + header length
    std::vector<SafetensorsTensor> tensors;  // in header order
    nlohmann::json metadata;                 // the "__metadata__" object, or null
};

// Bytes per element of the dtypes the safetensors format defines; 0 for an unknown name.
static inline int safetensors_dtype_size(const std::string& dtype) {
    static const struct { const char* name; int size; } table[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
        {"U16", 2}, {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},
        {"F64", 8}, {"I64", 8}, {"U64", 8}};
    for (const auto& t : table) if (dtype == t.name) return t.size;
    return 0;
}

static inline bool safetensors_dtype_convertible(const std::string& dtype) {
    return dtype == "F32" || dtype == "F16" || dtype == "BF16";
}

static inline uint64_t file_size_of(FILE* f) {
    if (fseeko(f, 0, SEEK_END) != 0) return 0;
    off_t size = ftello(f);
    return size < 0 ? 0 : (uint64_t)size;
}

// Parses and validates the header of a safetensors file. Tensor dtypes are checked to be known
// safetensors dtypes (whether they can be converted to float is the reader's business).
static inline bool safetensors_open(const std::string& path, SafetensorsFile* out, std::string* err) {
    using nlohmann::json;
    *out = SafetensorsFile();
    out->path = path;
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) { *err = path + ": cannot open: " + strerror(errno); return false; }
    out->file_size = file_size_of(f);
    uint8_t len_bytes[8];
    if (out->file_size < 8 || fseeko(f, 0, SEEK_SET) != 0 || fread(len_bytes, 1, 8, f) != 8) {
        fclose(f);
        *err = path + ": file is " + std::to_string(out->file_size) +
               " bytes, too short for a safetensors header (8-byte length + JSON); truncated download?";
        return false;
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | len_bytes[i];
    if (header_len > out->file_size - 8) {
        fclose(f);
        *err = path + ": header length " + std::to_string(header_len) + " (bytes 0-7) exceeds the " +
               std::to_string(out->file_size - 8) + " bytes after it: not a safetensors file, or truncated";
        return false;
    }
    if (header_len > 100000000) {
        fclose(f);
        *err = path + ": header length " + std::to_string(header_len) + " is over 100 MB: not a safetensors file";
        return false;
    }
    std::string header(header_len, '\0');
    bool read_ok = fread(&header[0], 1, header_len, f) == header_len;
    fclose(f);
    if (!read_ok) { *err = path + ": cannot read the " + std::to_string(header_len) + "-byte header"; return false; }
    out->data_start = 8 + header_len;
    uint64_t data_size = out->file_size - out->data_start;

    json root;
    std::string why;
    size_t at;
    if (!json_parse_text(header, &root, &why, &at)) {
        *err = path + ": header is not valid JSON" +
               (at == std::string::npos ? std::string() : " (byte " + std::to_string(8 + at) + " of the file)") +
               ": " + why;
        return false;
    }
    if (!root.is_object()) { *err = path + ": header JSON is not an object"; return false; }
    try {  // the checks below guard every access; this catches what they might miss
        for (auto it = root.begin(); it != root.end(); ++it) {
            const std::string& name = it.key();
            const json& v = it.value();
            if (name == "__metadata__") {
                if (!v.is_object()) { *err = path + ": __metadata__ is not an object"; return false; }
                out->metadata = v;
                continue;
            }
            std::string where = path + ": tensor '" + name + "': ";
            if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
                *err = where + "entry needs \"dtype\", \"shape\" and \"data_offsets\"";
                return false;
            }
            SafetensorsTensor t;
            t.name = name;
            const json& dtype = v["dtype"];
            const json& shape = v["shape"];
            const json& offsets = v["data_offsets"];
            if (!dtype.is_string()) { *err = where + "dtype is not a string"; return false; }
            t.dtype = dtype.get<std::string>();
            int elem_size = safetensors_dtype_size(t.dtype);
            if (elem_size == 0) { *err = where + "unknown dtype '" + t.dtype + "'"; return false; }
            if (!shape.is_array()) { *err = where + "shape is not an array"; return false; }
            size_t numel = 1;
            for (const json& d : shape) {
                if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t)1 << 40) {
                    *err = where + "shape " + shape.dump() + " has an invalid dimension";
                    return false;
                }
                t.shape.push_back(d.get<int64_t>());
                uint64_t dim = (uint64_t)d.get<int64_t>();
                if (dim != 0 && numel > ((uint64_t)1 << 40) / dim) {  // checked before multiplying: never wraps
                    *err = where + "shape " + shape.dump() + " has over 2^40 elements";
                    return false;
                }
                numel *= dim;
            }
            if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
                !offsets[1].is_number_unsigned()) {
                *err = where + "data_offsets must be [begin, end] (non-negative integers), got " + offsets.dump();
                return false;
            }
            t.begin = offsets[0].get<uint64_t>();
            t.end = offsets[1].get<uint64_t>();
            if (t.begin > t.end) { *err = where + "data_offsets " + offsets.dump() + " has begin > end"; return false; }
            if (t.end > data_size) {
                *err = where + "data_offsets " + offsets.dump() + " extend past the end of the data (" +
                       std::to_string(data_size) + " bytes after the header, which starts at file offset " +
                       std::to_string(out->data_start) + "; file size " + std::to_string(out->file_size) +
                       "): file truncated or header corrupt";
                return false;
            }
            if (t.end - t.begin != numel * (uint64_t)elem_size) {
                *err = where + "data_offsets " + offsets.dump() + " span " + std::to_string(t.end - t.begin) +
                       " bytes but shape " + shape.dump() + " of " + t.dtype + " needs " +
                       std::to_string(numel * elem_size);
                return false;
            }
            out->tensors.push_back(t);
        }
    } catch (const json::exception& e) {
        *err = path + ": unexpected value in the header: " + e.what();
        return false;
    }
    // no two tensors may share bytes
    std::vector<const SafetensorsTensor*> by_offset;
    for (const auto& t : out->tensors) if (t.end > t.begin) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->begin < b->begin; });
    for (size_t i = 1; i < by_offset.size(); i++) {
        if (by_offset[i]->begin < by_offset[i - 1]->end) {
            *err = path + ": tensors '" + by_offset[i - 1]->name + "' [" + std::to_string(by_offset[i - 1]->begin) +
                   ", " + std::to_string(by_offset[i - 1]->end) + ") and '" + by_offset[i]->name + "' [" +
                   std::to_string(by_offset[i]->begin) + ", " + std::to_string(by_offset[i]->end) +
                   ") overlap: header corrupt";
            return false;
        }
    }
    return true;
}

// Reads one F32/F16/BF16 tensor, converted to float, into out[0 .. t.numel()).
static inline bool safetensors_read_float(const SafetensorsFile& file, const SafetensorsTensor& t, float* out,
                                          std::string* err) {
    std::string where = file.path + ": tensor '" + t.name + "': ";
    if (!safetensors_dtype_convertible(t.dtype)) {
        *err = where + "dtype " + t.dtype + " is not supported (F32, F16 or BF16 only)";
        return false;
    }
    FILE* f = fopen(file.path.c_str(), "rb");
    if (!f) { *err = file.path + ": cannot open: " + strerror(errno); return false; }
    size_t n = t.numel(), nbytes = (size_t)(t.end - t.begin);
    bool ok = fseeko(f, (off_t)(file.data_start + t.begin), SEEK_SET) == 0;
    if (ok && t.dtype == "F32") {
        ok = fread(out, 1, nbytes, f) == nbytes;  // little-endian host assumed (x86, ARM)
    } else if (ok) {
        std::vector<uint16_t> raw(n);
        ok = fread(raw.data(), 1, nbytes, f) == nbytes;
        if (ok && t.dtype == "F16") for (size_t i = 0; i < n; i++) out[i] = f16_to_float(raw[i]);
        if (ok && t.dtype == "BF16") for (size_t i = 0; i < n; i++) out[i] = bf16_to_float(raw[i]);
    }
    fclose(f);
    if (!ok) {
        *err = where + "cannot read " + std::to_string(nbytes) + " bytes at file offset " +
               std::to_string(file.data_start + t.begin);
        return false;
    }
    return true;
}

// ----------------------------------------------------------------------------
// writing

struct SafetensorsOutput {
    std::string name;
    std::vector<int64_t> shape;
    const float* data;  // shape's product floats, row-major
};

// Writes (or atomically replaces) path with the given F32 tensors, in the given order.
static inline bool safetensors_write_f32(const std::string& path, const std::vector<SafetensorsOutput>& tensors,
                                         const nlohmann::json& metadata, std::string* err) {
    using nlohmann::json;
    json header = json::object();
    if (!metadata.is_null()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        uint64_t numel = 1;
        for (int64_t d : t.shape) numel *= (uint64_t)d;
        header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + 4 * numel}}};
        offset += 4 * numel;
    }
    std::string text = header.dump();
    while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // the data starts 8-byte aligned
    AtomicFile out;
    if (!out.open(path, err)) return false;
    FILE* f = out.file();
    uint8_t len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (uint8_t)((uint64_t)text.size() >> (8 * i));
    bool ok = fwrite(len_bytes, 1, 8, f) == 8 && fwrite(text.data(), 1, text.size(), f) == text.size();
    for (size_t i = 0; ok && i < tensors.size(); i++) {
        size_t numel = 1;
        for (int64_t d : tensors[i].shape) numel *= (size_t)d;
        ok = fwrite(tensors[i].data, sizeof(float), numel, f) == numel;
    }
    return out.commit(err, ok);
}
