// Parsing JSON text read from a file, with every way it can fail turned into a message: the one
// place prepare_dpo's lines, Hugging Face config.json / index files and safetensors headers are
// parsed. Beyond the JSON library's own checks it refuses
//   - nesting deeper than JSON_MAX_DEPTH levels (found by a scan before parsing, so neither the
//     parser nor later recursive code — comparison, dump — can overflow the stack),
//   - a raw NUL byte (the library would take it as the end of the text and ignore what follows),
// and it catches every nlohmann::json::exception (parse errors, numbers out of range like 1e400).
#pragma once
#include <string>
#include <nlohmann/json.hpp>

// Deepest nesting of arrays and objects accepted. Real data (chat messages, configs, headers)
// nests a handful of levels; 256 leaves room and keeps recursion far from the stack's end.
static const int JSON_MAX_DEPTH = 256;

// Byte offset where the nesting first goes deeper than max_depth, or std::string::npos.
static inline size_t json_too_deep_at(const std::string& text, int max_depth) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < text.size(); i++) {
        char ch = text[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (ch == '\\') escaped = true;
            else if (ch == '"') in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max_depth) return i;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return std::string::npos;
}

// Parses `text` into *out. On failure returns false, sets *why to what is wrong (starting with
// "malformed JSON", "raw NUL byte", "nesting deeper" or "bad JSON value") and *at to the byte
// offset within `text` it concerns (for parse errors the library's count of bytes read, which
// is one past the offending byte), or std::string::npos when the library gives none. Callers add
// the file and the line or offset of the text's start.
static inline bool json_parse_text(const std::string& text, nlohmann::json* out, std::string* why, size_t* at) {
    auto without_prefix = [](const std::string& what) {  // "[json.exception.parse_error.101] parse error ..."
        size_t close = what.find("] ");
        return close == std::string::npos ? what : what.substr(close + 2);
    };
    *at = text.find('\0');
    if (*at != std::string::npos) {
        *why = "raw NUL byte at byte " + std::to_string(*at) + " (JSON text cannot hold one; write \\u0000 inside a string)";
        return false;
    }
    *at = json_too_deep_at(text, JSON_MAX_DEPTH);
    if (*at != std::string::npos) {
        *why = "nesting deeper than " + std::to_string(JSON_MAX_DEPTH) + " levels at byte " + std::to_string(*at);
        return false;
    }
    try {
        *out = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        *at = e.byte;
        *why = "malformed JSON: " + without_prefix(e.what());
        return false;
    } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range.406: a number like 1e400
        *why = "bad JSON value: " + without_prefix(e.what());
        return false;
    }
    return true;
}
