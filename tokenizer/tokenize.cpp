// tokenize: command-line GPT-2 tokenizer.
//   tokenize encode [--tokenizer DIR]   UTF-8 text on stdin -> one line of space-separated ids
//   tokenize decode [--tokenizer DIR]   whitespace-separated ids on stdin -> the text (raw bytes)
// DIR defaults to $DPO_TOKENIZER_DIR, else tokenizer/gpt2 of the repository (found from the
// current directory or from where this program lives; see default_tokenizer_dir()).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/flags.h"
#include "tokenizer/gpt2_tokenizer.h"

static void print_usage(FILE* f) {
    fprintf(f,
            "usage: tokenize encode|decode [--tokenizer DIR]\n"
            "  encode   read UTF-8 text on stdin, print its GPT-2 token ids as one line of\n"
            "           space-separated integers (exactly tiktoken's \"gpt2\" encode_ordinary;\n"
            "           \"<|endoftext|>\" in the text is ordinary text)\n"
            "  decode   read whitespace-separated token ids on stdin, write the text they stand for\n"
            "  --tokenizer DIR  directory with encoder.json + vocab.bpe or vocab.json + merges.txt\n"
            "           (default: $DPO_TOKENIZER_DIR if set, else the repository's tokenizer/gpt2)\n");
}

static std::string read_stdin() {
    std::string text;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), stdin)) > 0) text.append(buf, got);
    return text;
}

int main(int argc, char** argv) {
    std::string mode, dir = default_tokenizer_dir();
    FlagParser f(argc, argv, 1, "tokenize");
    while (f.next()) {
        if (f.is("--help") || f.is("-h")) { print_usage(stdout); return 0; }
        if (f.is("--tokenizer")) f.text(&dir);
        else if (mode.empty() && (f.is("encode") || f.is("decode"))) mode = f.flag();
        else f.fail("unknown argument '" + f.flag() + "'");
    }
    if (!f.ok()) {
        fprintf(stderr, "%s\n", f.error().c_str());
        print_usage(stderr);
        return 1;
    }
    if (mode.empty()) { print_usage(stderr); return 1; }

    GPT2Tokenizer tok;
    std::string err;
    if (!tok.load(dir, &err)) { fprintf(stderr, "tokenize: %s\n", err.c_str()); return 1; }
    std::string input = read_stdin();

    if (mode == "encode") {
        std::vector<int32_t> ids;
        if (!tok.encode(input, &ids, &err)) { fprintf(stderr, "tokenize: stdin: %s\n", err.c_str()); return 1; }
        std::string line;
        for (size_t i = 0; i < ids.size(); i++) {
            if (i) line += ' ';
            line += std::to_string(ids[i]);
        }
        line += '\n';
        fwrite(line.data(), 1, line.size(), stdout);
        return 0;
    }

    // decode: parse whitespace-separated integers, naming the position of anything malformed.
    std::vector<int32_t> ids;
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    size_t i = 0, n = input.size();
    while (true) {
        while (i < n && is_space(input[i])) i++;
        if (i >= n) break;
        size_t word_start = i;
        while (i < n && !is_space(input[i])) i++;
        std::string word = input.substr(word_start, i - word_start);
        char* end = nullptr;
        long long v = strtoll(word.c_str(), &end, 10);
        if (end != word.c_str() + word.size() || word.size() > 12) {  // the whole word: "12\0zz" is not 12
            std::string shown;  // the word, with control bytes (a NUL, ...) shown as \xNN
            for (unsigned char c : word.substr(0, 40)) {
                char hex[8];
                snprintf(hex, sizeof hex, "\\x%02x", c);
                shown += c < 32 || c == 127 ? std::string(hex) : std::string(1, (char)c);
            }
            fprintf(stderr, "tokenize: stdin: id %zu (byte offset %zu) is '%s', not an integer; decode reads whitespace-separated token ids\n",
                    ids.size(), word_start, shown.c_str());
            return 1;
        }
        if (v < 0 || v >= tok.vocab_size()) {
            fprintf(stderr, "tokenize: stdin: id %zu (byte offset %zu) is %lld, out of range [0, %d) for %s\n", ids.size(),
                    word_start, v, tok.vocab_size(), tok.identity().c_str());
            return 1;
        }
        ids.push_back((int32_t)v);
    }
    std::string text = tok.decode(ids.data(), ids.size());
    fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}
