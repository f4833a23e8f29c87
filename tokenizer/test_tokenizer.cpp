// Tests for the GPT-2 tokenizer (tokenizer/gpt2_tokenizer.h) and the tokenize CLI.
// Expected ids come from tiktoken@1.0.22 (see tokenizer/testdata/make_expected.mjs), never from
// the code under test. Run from the repository root: ./tokenizer/test_tokenizer
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "dev/test_util.h"
#include "tokenizer/gpt2_tokenizer.h"

static const char* kTokenizerDir = "tokenizer/gpt2";

// One line of a testdata file: the text and tiktoken's ids for it.
struct ExpectedCase { std::string text; std::vector<int32_t> ids; int line; };

// Undoes make_expected.mjs's escaping: \\ \t \n \r \u{HEX}.
static bool unescape(const std::string& s, std::string* out) {
    out->clear();
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] != '\\') { out->push_back(s[i]); continue; }
        if (++i >= s.size()) return false;
        char e = s[i];
        if (e == '\\') out->push_back('\\');
        else if (e == 't') out->push_back('\t');
        else if (e == 'n') out->push_back('\n');
        else if (e == 'r') out->push_back('\r');
        else if (e == 'u' && i + 1 < s.size() && s[i + 1] == '{') {
            size_t close = s.find('}', i);
            if (close == std::string::npos) return false;
            utf8_append(out, (uint32_t)strtoul(s.substr(i + 2, close - i - 2).c_str(), nullptr, 16));
            i = close;
        } else return false;
    }
    return true;
}

static std::vector<ExpectedCase> read_cases(const std::string& path) {
    std::vector<ExpectedCase> cases;
    std::string text;
    if (!read_whole_file(path, &text)) { test_report(false, ("read " + path).c_str(), "cannot read the file"); return cases; }
    size_t pos = 0;
    int line_no = 0;
    while (pos < text.size()) {
        size_t eol = text.find('\n', pos);
        std::string line = text.substr(pos, eol - pos);
        pos = eol + 1;
        line_no++;
        size_t tab = line.find('\t');
        ExpectedCase c;
        c.line = line_no;
        if (tab == std::string::npos || !unescape(line.substr(0, tab), &c.text)) {
            test_report(false, ("parse " + path).c_str(), "line %d is malformed", line_no);
            continue;
        }
        const char* p = line.c_str() + tab + 1;
        char* end;
        for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) { c.ids.push_back((int32_t)v); p = end; }
        cases.push_back(c);
    }
    return cases;
}

static std::string ids_to_string(const std::vector<int32_t>& ids, size_t max_count = 12) {
    std::string s;
    for (size_t i = 0; i < ids.size() && i < max_count; i++) s += (i ? " " : "") + std::to_string(ids[i]);
    if (ids.size() > max_count) s += " ... (" + std::to_string(ids.size()) + " ids)";
    return s;
}

static std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s.substr(0, 60)) {
        if (c >= 0x20 && c != 0x7F) out.push_back((char)c);
        else { char buf[8]; snprintf(buf, sizeof(buf), "\\x%02X", c); out += buf; }
    }
    return s.size() > 60 ? out + "..." : out;
}

// Compares encode() with tiktoken's ids on every case; returns the number of mismatches and
// describes the first in *first_failure.
static int count_mismatches(const GPT2Tokenizer& tok, const std::vector<ExpectedCase>& cases, std::string* first_failure) {
    int bad = 0;
    for (const ExpectedCase& c : cases) {
        std::vector<int32_t> ids;
        std::string err;
        bool ok = tok.encode(c.text, &ids, &err);
        if (ok && ids == c.ids) continue;
        if (bad++ == 0) {
            *first_failure = "line " + std::to_string(c.line) + " \"" + printable(c.text) + "\": got " +
                             (ok ? ids_to_string(ids) : "error " + err) + ", tiktoken " + ids_to_string(c.ids);
        }
    }
    return bad;
}

// A random valid UTF-8 string, heavy on whitespace, apostrophes, digits and all Unicode planes.
static std::string random_utf8(std::mt19937_64& rng) {
    static const uint32_t spaces[] = {' ', ' ', ' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x2000, 0x2028, 0x3000, 0xFEFF};
    static const char* fragments[] = {"'s", "'S", "'re", "'ll", "'d", "'ve", "'m", "'t", "'", "<|endoftext|>", "the", " a", "12"};
    std::string s;
    int n = (int)(rng() % 40);
    for (int k = 0; k < n; k++) {
        uint32_t r = rng() % 100, cp;
        if (r < 30) cp = spaces[rng() % (sizeof(spaces) / sizeof(spaces[0]))];
        else if (r < 45) cp = 0x20 + rng() % 0x5F;  // printable ASCII
        else if (r < 50) cp = rng() % 0x80;  // any ASCII, controls and NUL included
        else if (r < 60) { s += fragments[rng() % (sizeof(fragments) / sizeof(fragments[0]))]; continue; }
        else if (r < 70) cp = 0x80 + rng() % 0x780;  // 2-byte
        else if (r < 85) { do cp = 0x800 + rng() % 0xF800; while (cp >= 0xD800 && cp <= 0xDFFF); }  // 3-byte
        else cp = 0x10000 + rng() % 0x100000;  // 4-byte, planes 1-16
        utf8_append(&s, cp);
    }
    return s;
}

// Runs a shell command, returns its exit status (-1 if it did not exit normally).
static int run_shell(const std::string& cmd) {
    int status = system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool write_file(const std::string& path, const std::string& data) {
    FILE* f = fopen(path.c_str(), "wb");
    if (!f) return false;
    bool ok = fwrite(data.data(), 1, data.size(), f) == data.size();
    return fclose(f) == 0 && ok;
}

// encoder.json with every \uXXXX escape written as raw UTF-8 (as Hugging Face's vocab.json does).
static std::string unescape_json_u(const std::string& json) {
    std::string out;
    for (size_t i = 0; i < json.size(); i++) {
        if (json[i] == '\\' && i + 5 < json.size() && json[i + 1] == 'u') {
            uint32_t cp = (uint32_t)strtoul(json.substr(i + 2, 4).c_str(), nullptr, 16);
            if (cp >= 0x80 && (cp < 0xD800 || cp > 0xDFFF)) { utf8_append(&out, cp); i += 5; continue; }
        }
        if (json[i] == '\\') { out.push_back(json[i++]); }  // keep any other escape pair whole
        out.push_back(json[i]);
    }
    return out;
}

int main() {
    GPT2Tokenizer tok;
    std::string err;
    bool loaded = tok.load(kTokenizerDir, &err);
    test_report(loaded, "load_openai_files", "%s", err.c_str());
    if (!loaded) return test_exit();
    test_report(tok.vocab_size() == 50257, "vocab_size", "got %d, want 50257", tok.vocab_size());
    test_report(tok.eot_id() == 50256, "eot_id", "got %d, want 50256", tok.eot_id());
    std::string identity = tok.identity();
    bool identity_ok = identity.size() == 25 && identity.rfind("gpt2-bpe-", 0) == 0 &&
                       identity.find_first_not_of("0123456789abcdef", 9) == std::string::npos;
    test_report(identity_ok, "identity_format", "got '%s'", identity.c_str());
    // Computed independently by tokenizer/testdata/identity.py.
    test_report(identity == "gpt2-bpe-bb6ebd04c9d85e3d", "identity_matches_independent_hash", "got '%s'", identity.c_str());

    // Code point classes at points whose Unicode 16.0 properties are known.
    struct { uint32_t cp; uint8_t cls; const char* what; } classes[] = {
        {'A', UC_LETTER, "A"}, {0xE9, UC_LETTER, "e acute"}, {0x4E2D, UC_LETTER, "CJK"}, {0x1C89, UC_LETTER, "Cyrillic TJE (new in 16.0)"},
        {'7', UC_NUMBER, "7"}, {0x663, UC_NUMBER, "Arabic-Indic 3"}, {0xBD, UC_NUMBER, "one half"}, {0x216B, UC_NUMBER, "roman XII"},
        {0x16D70, UC_NUMBER, "Kirat Rai digit 0 (new in 16.0)"}, {0x85, UC_SPACE, "NEL"}, {0x3000, UC_SPACE, "ideographic space"},
        {0x2028, UC_SPACE, "line separator"}, {0x0B, UC_SPACE, "vertical tab"}, {0xFEFF, UC_OTHER, "BOM (not White_Space)"},
        {0x180E, UC_OTHER, "Mongolian vowel separator"}, {0x301, UC_OTHER, "combining acute"}, {0x1F600, UC_OTHER, "emoji"},
        {0x10FFFF, UC_OTHER, "last code point"}, {'\'', UC_OTHER, "apostrophe"}, {0, UC_OTHER, "NUL"},
    };
    int class_errors = 0;
    std::string class_failure;
    for (auto& c : classes) {
        if (unicode_class(c.cp) != c.cls && class_errors++ == 0) class_failure = c.what;
    }
    test_report(class_errors == 0, "unicode_classes", "%d wrong, first: %s", class_errors, class_failure.c_str());

    // Hand-picked cases, one check each, then decoding tiktoken's ids gives the text back.
    std::vector<ExpectedCase> cases = read_cases("tokenizer/testdata/expected.tsv");
    test_report(cases.size() >= 40, "expected_cases_present", "only %zu cases", cases.size());
    for (const ExpectedCase& c : cases) {
        std::vector<int32_t> ids;
        bool ok = tok.encode(c.text, &ids, &err);
        std::string name = "encode_matches_tiktoken line " + std::to_string(c.line) + " \"" + printable(c.text.substr(0, 24)) + "\"";
        test_report(ok && ids == c.ids, name.c_str(), "got %s, tiktoken %s", ok ? ids_to_string(ids).c_str() : err.c_str(),
                    ids_to_string(c.ids).c_str());
    }
    std::vector<ExpectedCase> random_cases = read_cases("tokenizer/testdata/random.tsv");
    std::string failure;
    int bad = count_mismatches(tok, random_cases, &failure);
    test_report(random_cases.size() == 200 && bad == 0, "encode_matches_tiktoken_random_200", "%d of %zu differ; first: %s", bad,
                random_cases.size(), failure.c_str());
    int bad_decodes = 0;
    for (const std::vector<ExpectedCase>* set : {&cases, &random_cases})
        for (const ExpectedCase& c : *set) bad_decodes += tok.decode(c.ids.data(), c.ids.size()) != c.text;
    test_report(bad_decodes == 0, "decode_tiktoken_ids", "%d cases decode to a different text", bad_decodes);

    // Round trip on fresh random strings.
    uint64_t seed = std::random_device{}();
    std::mt19937_64 rng(seed);
    int round_trip_failures = 0;
    std::string round_trip_failure;
    for (int i = 0; i < 3000; i++) {
        std::string s = random_utf8(rng);
        std::vector<int32_t> ids;
        bool ok = tok.encode(s, &ids, &err);
        if ((!ok || tok.decode(ids.data(), ids.size()) != s) && round_trip_failures++ == 0)
            round_trip_failure = printable(s) + (ok ? "" : " error: " + err);
    }
    test_report(round_trip_failures == 0, "round_trip_random_utf8", "%d of 3000 failed (seed %llu); first: %s", round_trip_failures,
                (unsigned long long)seed, round_trip_failure.c_str());

    // Invalid UTF-8: a random valid prefix, then a bad sequence; the error names the prefix length.
    struct { const char* bytes; const char* what; } invalid[] = {
        {"\xC0\x80", "overlong C0"}, {"\xC1\xBF", "overlong C1"}, {"\xE0\x80\x80", "overlong 3-byte"}, {"\xE0\x9F\xBF", "overlong 3-byte high"},
        {"\xF0\x80\x80\x80", "overlong 4-byte"}, {"\xF0\x8F\xBF\xBF", "overlong 4-byte high"}, {"\xED\xA0\x80", "surrogate D800"},
        {"\xED\xBF\xBF", "surrogate DFFF"}, {"\xE2\x82", "truncated 3-byte"}, {"\xF0\x9F\x98", "truncated 4-byte"}, {"\xC3", "truncated 2-byte"},
        {"\x80", "stray continuation 80"}, {"\xBF", "stray continuation BF"}, {"\xF4\x90\x80\x80", "above U+10FFFF (F4 90)"},
        {"\xF5\x80\x80\x80", "lead F5"}, {"\xFF", "byte FF"}, {"\xE2\x28\xA1", "bad continuation"},
    };
    for (auto& c : invalid) {
        for (bool at_end : {false, true}) {
            std::string prefix = random_utf8(rng);
            std::string text = prefix + c.bytes + (at_end ? "" : "ok");
            std::vector<int32_t> ids = {1, 2, 3};
            err.clear();
            bool ok = tok.encode(text, &ids, &err);
            std::string want = "byte offset " + std::to_string(prefix.size()) + " ";
            std::string name = std::string("invalid_utf8 ") + c.what + (at_end ? " at end" : " mid-text");
            test_report(!ok && err.find(want) != std::string::npos && ids.empty(), name.c_str(), "ok=%d ids=%zu err='%s' (want '%s')", ok,
                        ids.size(), err.c_str(), want.c_str());
        }
    }

    // decode_checked rejects ids out of range, naming the position.
    {
        std::vector<int32_t> ids = {15496, 995, 50257, 11};
        std::string out;
        bool ok = tok.decode_checked(ids.data(), ids.size(), &out, &err);
        test_report(!ok && err.find("position 2") != std::string::npos, "decode_checked_out_of_range", "ok=%d err='%s'", ok, err.c_str());
        ids = {-1};
        ok = tok.decode_checked(ids.data(), ids.size(), &out, &err);
        test_report(!ok && err.find("position 0") != std::string::npos, "decode_checked_negative", "ok=%d err='%s'", ok, err.c_str());
        ids = {15496, 995, 50256};
        ok = tok.decode_checked(ids.data(), ids.size(), &out, &err);
        test_report(ok && out == "Hello world<|endoftext|>", "decode_checked_valid", "ok=%d out='%s' err='%s'", ok, out.c_str(), err.c_str());
    }

    // Hugging Face file names and formatting give the same vocabulary and the same encodings.
    char dir_template[] = "/tmp/test_tokenizer_XXXXXX";
    std::string tmp = mkdtemp(dir_template) ? dir_template : "";
    std::string encoder_json, vocab_bpe;
    bool files_read = read_whole_file(std::string(kTokenizerDir) + "/encoder.json", &encoder_json) &&
                      read_whole_file(std::string(kTokenizerDir) + "/vocab.bpe", &vocab_bpe);
    if (tmp.empty() || !files_read) {
        test_report(false, "hf_format_setup", "cannot make a temp dir or read the vocabulary files");
    } else {
        std::string merges_txt = "#version: 0.2 - Trained by huggingface/tokenizers\n" + vocab_bpe.substr(vocab_bpe.find('\n') + 1);
        write_file(tmp + "/vocab.json", unescape_json_u(encoder_json));
        write_file(tmp + "/merges.txt", merges_txt);
        GPT2Tokenizer hf;
        bool ok = hf.load(tmp, &err);
        test_report(ok && hf.identity() == tok.identity() && hf.vocab_size() == tok.vocab_size() && hf.eot_id() == tok.eot_id(),
                    "hf_format_loads_same_vocabulary", "ok=%d err='%s' identity %s vs %s", ok, err.c_str(), hf.identity().c_str(),
                    tok.identity().c_str());
        int differ = ok ? count_mismatches(hf, cases, &failure) + count_mismatches(hf, random_cases, &failure) : -1;
        test_report(differ == 0, "hf_format_same_encodings", "%d cases differ; first: %s", differ, failure.c_str());

        // Bad vocabulary directories give errors that name the file and the place.
        GPT2Tokenizer bad_tok;
        ok = bad_tok.load(tmp + "/missing", &err);
        test_report(!ok && err.find("encoder.json") != std::string::npos && err.find("merges.txt") != std::string::npos, "load_missing_dir",
                    "ok=%d err='%s'", ok, err.c_str());
        write_file(tmp + "/vocab.json", encoder_json.substr(0, 5000));
        ok = bad_tok.load(tmp, &err);
        test_report(!ok && err.find("vocab.json: byte offset 5000") != std::string::npos, "load_truncated_json", "ok=%d err='%s'", ok, err.c_str());
        write_file(tmp + "/vocab.json", encoder_json);
        write_file(tmp + "/merges.txt", "#version: 0.2\n\xC4\xA0 t\nzq xj\n");
        ok = bad_tok.load(tmp, &err);
        test_report(!ok && err.find("merges.txt:3") != std::string::npos, "load_merge_not_in_vocab", "ok=%d err='%s'", ok, err.c_str());
        write_file(tmp + "/merges.txt", "#version: 0.2\n\xC4\xA0 t\nthree tokens here\n");
        ok = bad_tok.load(tmp, &err);
        test_report(!ok && err.find("merges.txt:3") != std::string::npos, "load_malformed_merge_line", "ok=%d err='%s'", ok, err.c_str());
    }

    // The CLI: a round trip through a pipe, ids equal to tiktoken's, and clear errors.
    if (access("tokenizer/tokenize", X_OK) != 0) {
        test_skip("cli", "tokenizer/tokenize is not built (make tokenizer/tokenize)");
    } else if (!tmp.empty()) {
        std::string text;
        for (int i = 0; i < 50; i++) text += random_utf8(rng);
        write_file(tmp + "/in.txt", text);
        int rc = run_shell("./tokenizer/tokenize encode < " + tmp + "/in.txt | ./tokenizer/tokenize decode > " + tmp + "/out.txt");
        std::string back;
        read_whole_file(tmp + "/out.txt", &back);
        test_report(rc == 0 && back == text, "cli_round_trip_pipe", "rc=%d, %zu bytes in, %zu bytes back", rc, text.size(), back.size());

        const ExpectedCase& c = cases[10 % cases.size()];
        write_file(tmp + "/case.txt", c.text);
        rc = run_shell("./tokenizer/tokenize encode --tokenizer tokenizer/gpt2 < " + tmp + "/case.txt > " + tmp + "/ids.txt");
        std::string line;
        read_whole_file(tmp + "/ids.txt", &line);
        test_report(rc == 0 && line == ids_to_string(c.ids, SIZE_MAX) + "\n", "cli_encode_matches_tiktoken", "rc=%d got '%s'", rc, line.c_str());

        char cwd[4096];
        std::string repo = getcwd(cwd, sizeof(cwd)) ? cwd : ".";
        rc = run_shell("cd " + tmp + " && env -u DPO_TOKENIZER_DIR " + repo + "/tokenizer/tokenize encode < case.txt > ids2.txt");
        std::string line2;
        read_whole_file(tmp + "/ids2.txt", &line2);
        test_report(rc == 0 && line2 == line, "cli_finds_vocabulary_from_other_dir", "rc=%d got '%s'", rc, line2.c_str());

        write_file(tmp + "/bad.txt", std::string("abc\xC3(", 5));
        rc = run_shell("./tokenizer/tokenize encode < " + tmp + "/bad.txt 2> " + tmp + "/err.txt > /dev/null");
        read_whole_file(tmp + "/err.txt", &line);
        test_report(rc == 1 && line.find("byte offset 3") != std::string::npos, "cli_invalid_utf8", "rc=%d stderr '%s'", rc, line.c_str());
        rc = run_shell("echo '15496 99999 995' | ./tokenizer/tokenize decode 2> " + tmp + "/err.txt > /dev/null");
        read_whole_file(tmp + "/err.txt", &line);
        test_report(rc == 1 && line.find("id 1 ") != std::string::npos, "cli_bad_id", "rc=%d stderr '%s'", rc, line.c_str());
        write_file(tmp + "/nul_ids.txt", std::string("15496 12\0zz 995\n", 16));  // issue 10: not read as 12
        rc = run_shell("./tokenizer/tokenize decode < " + tmp + "/nul_ids.txt 2> " + tmp + "/err.txt > /dev/null");
        read_whole_file(tmp + "/err.txt", &line);
        test_report(rc == 1 && line.find("id 1 (byte offset 6) is '12\\x00zz', not an integer") != std::string::npos,
                    "cli_id_with_nul_byte", "rc=%d stderr '%s'", rc, line.c_str());
        rc = run_shell("echo hi | DPO_TOKENIZER_DIR=" + tmp + "/missing ./tokenizer/tokenize encode 2> " + tmp + "/err.txt > /dev/null");
        read_whole_file(tmp + "/err.txt", &line);
        test_report(rc == 1 && line.find("encoder.json") != std::string::npos, "cli_missing_files", "rc=%d stderr '%s'", rc, line.c_str());
    }
    if (!tmp.empty()) run_shell("rm -rf " + tmp);

    // Long single pieces (runs of one character class) must not take quadratic time.
    std::string long_text = std::string(200000, ' ') + "x" + std::string(200000, '!');
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> long_ids;
    bool ok = tok.encode(long_text, &long_ids, &err);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    test_report(ok && seconds < 2.0 && tok.decode(long_ids.data(), long_ids.size()) == long_text, "long_pieces_fast",
                "ok=%d, %.2f s for 400 kB in two pieces", ok, seconds);
    return test_exit();
}
