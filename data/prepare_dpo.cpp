// prepare_dpo: turns preference data in JSONL (optionally gzipped) into the binary pair file the
// trainers read (data/pairfile.h). Reads the explicit, implicit (HH-RLHF) and chat-message
// formats, tokenises prompt and responses separately with GPT-2's BPE, appends EOS to responses,
// fits pairs into --max-len by an explicit policy, splits off a deterministic validation set,
// and prints what it did. Bad lines stop it with FILE:LINE and nothing written (or, with
// --skip-bad, are skipped and counted). Usage: data/prepare_dpo --help; details in data/README.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>
#include <sys/stat.h>
#include <zlib.h>
#include <nlohmann/json.hpp>
#include "common/flags.h"
#include "common/progress.h"
#include "common/rng.h"
#include "data/pairfile.h"
#include "data/pairs.h"
#include "data/prepare_text.h"
#include "tokenizer/gpt2_tokenizer.h"

static const char* USAGE =
    "usage: data/prepare_dpo --input FILE.jsonl[.gz] --output FILE.bin [options]\n"
    "  --input FILE         JSONL preference data, plain or gzipped, one JSON object per line\n"
    "  --output FILE        binary pair file to write (data/pairfile.h, data/README.md)\n"
    "  --tokenizer DIR      GPT-2 BPE files: encoder.json + vocab.bpe (default: $DPO_TOKENIZER_DIR,\n"
    "                       else tokenizer/gpt2 from here or beside the program)\n"
    "  --format F           auto | explicit | implicit | messages (default auto, decided per line):\n"
    "                         explicit  {\"prompt\": str, \"chosen\": str, \"rejected\": str}\n"
    "                         implicit  {\"chosen\": str, \"rejected\": str}, prompt = shared start up to\n"
    "                                   the last \"\\n\\nAssistant:\" (Anthropic HH-RLHF)\n"
    "                         messages  {[\"prompt\": [msg]], \"chosen\": [msg], \"rejected\": [msg]},\n"
    "                                   msg = {\"role\": \"system|user|assistant\", \"content\": str}\n"
    "  --max-len N          bound on a pair's shared unit length P + C + 1 + R (default: none)\n"
    "  --truncate POLICY    for pairs over --max-len: keep-end (default: drop the prompt's start,\n"
    "                       then cut the responses), keep-start (cut the responses, then the\n"
    "                       prompt's end) or drop (drop the pair); every change is counted\n"
    "  --val-output FILE    also write a validation pair file ...\n"
    "  --val-fraction F     ... with about this fraction of the lines (0 < F < 1)\n"
    "  --seed S             seed of the validation split (default 1); the same seed, the same split\n"
    "  --max-line-bytes N   longest line accepted, in bytes (default 67108864 = 64 MiB); a longer\n"
    "                       line stops the tool (memory is proportional to this bound)\n"
    "  --skip-bad           skip bad lines and count them (default: stop at the first, write nothing)\n"
    "  --no-eos             do not append <|endoftext|> (50256) to each response\n"
    "  --bos                prepend <|endoftext|> to each prompt\n"
    "  --quiet              no progress lines while reading\n"
    "  --help               this text\n";

struct Options {
    std::string input, output, tokenizer_dir, val_output;  // tokenizer_dir "": default_tokenizer_dir()
    InputFormat format = FORMAT_AUTO;
    size_t max_len = 0;  // 0: no bound
    size_t max_line_bytes = (size_t)64 << 20;
    TruncatePolicy truncate = TRUNCATE_KEEP_END;
    double val_fraction = 0;
    uint64_t seed = 1;
    bool skip_bad = false, eos = true, bos = false, quiet = false;
};

[[noreturn]] static void usage_error(const std::string& what) {
    fprintf(stderr, "prepare_dpo: %s\nrun data/prepare_dpo --help for the options\n", what.c_str());
    exit(2);
}

// What a path names, for telling whether two paths are one file: "device:inode" for an existing
// file (so hard links, symlinks and "./x" vs "x" compare equal), else the path with its existing
// directories resolved.
static std::string file_identity(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0)
        return std::to_string((unsigned long long)st.st_dev) + ":" + std::to_string((unsigned long long)st.st_ino);
    std::error_code ec;
    std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
    return ec ? path : resolved.string();
}

static Options parse_options(int argc, char** argv) {
    Options o;
    bool have_fraction = false;
    FlagParser f(argc, argv, 1);
    while (f.next()) {
        int k = 0;
        if (f.is("--help") || f.is("-h")) { fputs(USAGE, stdout); exit(0); }
        else if (f.is("--skip-bad")) o.skip_bad = true;
        else if (f.is("--no-eos")) o.eos = false;
        else if (f.is("--bos")) o.bos = true;
        else if (f.is("--quiet")) o.quiet = true;
        else if (f.is("--input")) f.text(&o.input);
        else if (f.is("--output")) f.text(&o.output);
        else if (f.is("--tokenizer")) f.text(&o.tokenizer_dir);
        else if (f.is("--val-output")) f.text(&o.val_output);
        else if (f.is("--format")) {
            if (f.choice(&k, {FORMAT_NAMES[0], FORMAT_NAMES[1], FORMAT_NAMES[2], FORMAT_NAMES[3]})) o.format = (InputFormat)k;
        } else if (f.is("--truncate")) {
            if (f.choice(&k, {TRUNCATE_NAMES[0], TRUNCATE_NAMES[1], TRUNCATE_NAMES[2]})) o.truncate = (TruncatePolicy)k;
        } else if (f.is("--max-len")) {
            f.integer(&o.max_len, 4, 1000000000, "a unit needs at least one prompt token, the copy of it, "
                                                  "and one token per response");
        } else if (f.is("--max-line-bytes")) {
            f.integer(&o.max_line_bytes, 2, (size_t)1 << 32, "a line of JSON needs at least \"{}\"");
        } else if (f.is("--val-fraction")) {
            if (f.number(&o.val_fraction, {0, 1, true, true})) have_fraction = true;
        } else if (f.is("--seed")) f.seed(&o.seed);
        else f.fail("unknown option " + f.flag());
    }
    if (!f.ok()) usage_error(f.error());
    if (o.input.empty() || o.output.empty()) usage_error("--input and --output are required");
    if (o.val_output.empty() != !have_fraction)
        usage_error("--val-output and --val-fraction go together: give both or neither");
    const std::string in_id = file_identity(o.input), out_id = file_identity(o.output);
    if (in_id == out_id || (!o.val_output.empty() && (file_identity(o.val_output) == in_id ||
                                                      file_identity(o.val_output) == out_id)))
        usage_error("--input, --output and --val-output name the same file (compared after resolving links and "
                    "\"./\"); give each its own path");
    if (o.tokenizer_dir.empty()) o.tokenizer_dir = default_tokenizer_dir();
    return o;
}

// Whether line `line` (1-based) goes to the validation set: a hash of (seed, line) read as a
// number in [0, 1), compared with the fraction. Depends on nothing else, so the split of a line
// does not change when other lines are added, skipped or dropped.
static bool in_validation(uint64_t seed, uint64_t line, double fraction) {
    return (double)(splitmix64(splitmix64(seed) ^ line) >> 11) * 0x1.0p-53 < fraction;
}

// The bytes of a plain or gzipped file (gzip: by its magic 1f 8b). Gzip members may follow one
// another (as `cat a.gz b.gz` makes); anything else after the end of a member is an error, as
// are a corrupt or truncated stream, each naming the offset in the compressed file.
struct ByteSource {
    FILE* f = nullptr;
    bool gzip = false, member_done = false;
    z_stream zs{};
    std::vector<unsigned char> in = std::vector<unsigned char>(1 << 18);
    uint64_t file_bytes_read = 0;  // of the (compressed) file

    bool open(const std::string& path, std::string* err) {
        f = fopen(path.c_str(), "rb");
        if (!f) { *err = path + ": cannot open: " + strerror(errno); return false; }
        size_t n = fill();
        gzip = n >= 2 && in[0] == 0x1f && in[1] == 0x8b;
        if (gzip && inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { *err = path + ": out of memory for zlib"; return false; }
        return true;
    }
    ~ByteSource() {
        if (gzip) inflateEnd(&zs);
        if (f) fclose(f);
    }
    // Tops up the input buffer (keeping what is unread); returns the bytes now available.
    size_t fill() {
        if (zs.avail_in > 0 && zs.next_in != in.data()) memmove(in.data(), zs.next_in, zs.avail_in);
        size_t got = fread(in.data() + zs.avail_in, 1, in.size() - zs.avail_in, f);
        file_bytes_read += got;
        zs.next_in = in.data();
        zs.avail_in += (uInt)got;
        return zs.avail_in;
    }
    uint64_t consumed() const { return file_bytes_read - zs.avail_in; }  // offset in the file
    // Up to cap bytes into dst: > 0 bytes, 0 at the end, -1 on an error (*err set).
    long read(char* dst, size_t cap, std::string* err) {
        if (!gzip) {
            if (zs.avail_in > 0) {  // the bytes fill() read to look for the magic
                size_t n = std::min<size_t>(cap, zs.avail_in);
                memcpy(dst, zs.next_in, n);
                zs.next_in += n; zs.avail_in -= (uInt)n;
                return (long)n;
            }
            size_t n = fread(dst, 1, cap, f);
            if (n == 0 && ferror(f)) { *err = std::string("read error: ") + strerror(errno); return -1; }
            return (long)n;
        }
        for (;;) {
            if (member_done) {  // after a member: the end, another member, or garbage
                if (zs.avail_in < 2) fill();
                if (zs.avail_in == 0) return 0;
                if (zs.avail_in < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b) {
                    *err = "bytes after the end of the gzip stream at byte " + std::to_string(consumed()) +
                           " of the compressed file; the file was damaged or appended to: remove the extra bytes";
                    return -1;
                }
                inflateReset(&zs);
                member_done = false;
            }
            if (zs.avail_in == 0 && fill() == 0) {
                *err = "the gzip stream ends early (at byte " + std::to_string(consumed()) +
                       "); the file is truncated or not fully written";
                return -1;
            }
            zs.next_out = (unsigned char*)dst;
            zs.avail_out = (uInt)std::min<size_t>(cap, 1u << 30);
            int rc = inflate(&zs, Z_NO_FLUSH);
            long produced = (long)(std::min<size_t>(cap, 1u << 30) - zs.avail_out);
            if (rc == Z_STREAM_END) member_done = true;
            else if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_in == 0)) {
                *err = std::string("the gzip data is corrupt near byte ") + std::to_string(consumed()) + " (" +
                       (zs.msg ? zs.msg : "zlib error " + std::to_string(rc)) + ")";
                return -1;
            }
            if (produced > 0) return produced;
        }
    }
};

// Reads a plain or gzipped file line by line. A line longer than max_line bytes is an error, so
// memory stays bounded whatever the file holds.
struct LineReader {
    ByteSource source;
    size_t max_line = (size_t)64 << 20;
    std::vector<char> buf = std::vector<char>(1 << 20);
    size_t pos = 0, len = 0;
    bool eof = false;
    uint64_t lines_done = 0;

    bool open(const std::string& path, std::string* err) { return source.open(path, err); }
    // false at the end of the file or on a read error (then *err is set)
    bool next(std::string* line, std::string* err) {
        line->clear();
        for (;;) {
            if (pos == len) {
                if (eof) { if (line->empty()) return false; lines_done++; return true; }
                long n = source.read(buf.data(), buf.size(), err);
                if (n < 0) return false;
                if (n == 0) { eof = true; continue; }
                pos = 0; len = (size_t)n;
            }
            char* start = buf.data() + pos;
            char* nl = (char*)memchr(start, '\n', len - pos);
            size_t take = nl ? (size_t)(nl - start) : len - pos;
            if (line->size() + take > max_line) {
                *err = "line " + std::to_string(lines_done + 1) + " is longer than --max-line-bytes " +
                       std::to_string(max_line) + " (no newline within that many bytes); split the line, or raise "
                       "--max-line-bytes if it is real data";
                return false;
            }
            line->append(start, take);
            pos += take;
            if (nl) { pos++; lines_done++; return true; }
        }
    }
};

// Running totals for the summary.
struct Stats {
    uint64_t lines = 0, blank = 0, train = 0, val = 0;
    std::map<std::string, uint64_t> skipped;      // by reason
    std::map<std::string, uint64_t> format_count;
    uint64_t prompt_start_cut = 0, prompt_end_cut = 0, responses_cut = 0, truncated = 0, dropped = 0;
    uint64_t sum_P = 0, sum_C = 0, sum_R = 0, max_unit = 0;
};

int main(int argc, char** argv) {
    Options opt = parse_options(argc, argv);
    auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    std::string err;
    GPT2Tokenizer tok;
    if (!tok.load(opt.tokenizer_dir, &err)) {
        fprintf(stderr, "prepare_dpo: %s\n", err.c_str());
        return 1;
    }
    if ((opt.eos || opt.bos) && tok.eot_id() < 0) {
        fprintf(stderr, "prepare_dpo: the tokenizer in %s has no <|endoftext|> token for EOS/BOS; pass --no-eos "
                "(and no --bos)\n", opt.tokenizer_dir.c_str());
        return 1;
    }
    LineReader reader;
    reader.max_line = opt.max_line_bytes;
    if (!reader.open(opt.input, &err)) { fprintf(stderr, "prepare_dpo: %s\n", err.c_str()); return 1; }

    PairSet train, val;
    for (PairSet* s : {&train, &val}) { s->vocab_size = tok.vocab_size(); s->tokenizer_id = tok.identity(); }
    Stats st;
    std::string line;
    std::vector<int32_t> p, c, r;
    const int32_t eot = tok.eot_id();

    std::error_code size_err;  // progress in bytes of the input on disk (compressed if gzipped)
    const double input_mb = std::filesystem::file_size(opt.input, size_err) / 1e6;
    Progress progress("prepare_dpo: reading " + opt.input, size_err ? 0.0 : input_mb, "MB", opt.quiet, stderr);
    while (reader.next(&line, &err)) {
        uint64_t line_no = ++st.lines;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line_no == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 byte order mark
        progress.update(reader.source.consumed() / 1e6, std::to_string(line_no) + " lines");
        if (line.find_first_not_of(" \t") == std::string::npos) { st.blank++; continue; }

        LineError bad;
        PairText text;
        bool ok = pair_from_line(line, line_no == 1, opt.format, &text, &bad);
        if (ok) {
            const std::string* parts[3] = {&text.prompt, &text.chosen, &text.rejected};
            std::vector<int32_t>* ids[3] = {&p, &c, &r};
            const char* names[3] = {"prompt", "chosen", "rejected"};
            for (int k = 0; k < 3 && ok; k++) {
                std::string why;
                if (!tok.encode(*parts[k], ids[k], &why))
                    ok = line_error(&bad, "tokenizer error", std::string("cannot tokenise the ") + names[k] + ": " + why);
            }
        }
        if (!ok) {
            if (!opt.skip_bad) {
                fprintf(stderr, "%s:%llu: %s\nprepare_dpo: stopped at the first bad line; nothing written. Fix the "
                        "line, or pass --skip-bad to skip and count bad lines.\n", opt.input.c_str(),
                        (unsigned long long)line_no, bad.message.c_str());
                return 1;
            }
            st.skipped[bad.reason]++;
            continue;
        }

        if (opt.bos) p.insert(p.begin(), eot);
        if (opt.eos) { c.push_back(eot); r.push_back(eot); }
        if (opt.max_len) {
            unsigned done = fit_pair(&p, &c, &r, opt.max_len, opt.truncate, opt.bos ? 1 : 0);
            if (done & FIT_DROPPED) { st.dropped++; continue; }
            if (done) st.truncated++;
            if (done & FIT_PROMPT_START_CUT) st.prompt_start_cut++;
            if (done & FIT_PROMPT_END_CUT) st.prompt_end_cut++;
            if (done & FIT_RESPONSES_CUT) st.responses_cut++;
        }
        st.format_count[FORMAT_NAMES[text.format]]++;
        bool to_val = !opt.val_output.empty() && in_validation(opt.seed, line_no, opt.val_fraction);
        (to_val ? val : train).add(p, c, r);
        (to_val ? st.val : st.train)++;
        st.sum_P += p.size(); st.sum_C += c.size(); st.sum_R += r.size();
        st.max_unit = std::max<uint64_t>(st.max_unit, p.size() + c.size() + 1 + r.size());
    }
    progress.finish();
    if (!err.empty()) {
        fprintf(stderr, "%s: after line %llu: %s\nprepare_dpo: nothing written.\n", opt.input.c_str(),
                (unsigned long long)st.lines, err.c_str());
        return 1;
    }
    if (st.train == 0 || (!opt.val_output.empty() && st.val == 0)) {
        fprintf(stderr, "prepare_dpo: %s: no pairs for the %s set (%llu lines read); nothing written%s\n",
                opt.input.c_str(), st.train == 0 ? "training" : "validation", (unsigned long long)st.lines,
                st.train == 0 ? "" : ". Raise --val-fraction");
        return 1;
    }

    uint32_t flags = (opt.eos ? PAIRFILE_FLAG_EOS : 0) | (opt.bos ? PAIRFILE_FLAG_BOS : 0);
    uint64_t train_hash = 0, val_hash = 0;
    if (!write_pair_file(opt.output, train, flags, &err, &train_hash)) {
        fprintf(stderr, "prepare_dpo: %s\n", err.c_str());
        return 1;
    }
    if (!opt.val_output.empty() && !write_pair_file(opt.val_output, val, flags, &err, &val_hash)) {
        remove(opt.output.c_str());
        fprintf(stderr, "prepare_dpo: %s\nprepare_dpo: removed %s too, so no half result is left\n", err.c_str(),
                opt.output.c_str());
        return 1;
    }

    // summary
    uint64_t n = st.train + st.val, skipped = 0;
    for (auto& kv : st.skipped) skipped += kv.second;
    printf("prepare_dpo: %s -> %s", opt.input.c_str(), opt.output.c_str());
    if (!opt.val_output.empty()) printf(" + %s", opt.val_output.c_str());
    printf(" (%.1f s)\n", seconds());
    printf("  lines read        %llu (%llu blank)\n", (unsigned long long)st.lines, (unsigned long long)st.blank);
    printf("  pairs written     %llu (train %llu, val %llu)\n", (unsigned long long)n, (unsigned long long)st.train,
           (unsigned long long)st.val);
    printf("  formats          ");
    for (auto& kv : st.format_count) printf(" %s %llu", kv.first.c_str(), (unsigned long long)kv.second);
    printf("\n  skipped bad lines %llu", (unsigned long long)skipped);
    for (auto& kv : st.skipped) printf(", %s %llu", kv.first.c_str(), (unsigned long long)kv.second);
    printf("\n  truncated         %llu (prompt start cut %llu, responses cut %llu, prompt end cut %llu; policy %s, "
           "max-len %s)\n", (unsigned long long)st.truncated, (unsigned long long)st.prompt_start_cut,
           (unsigned long long)st.responses_cut, (unsigned long long)st.prompt_end_cut, TRUNCATE_NAMES[opt.truncate],
           opt.max_len ? std::to_string(opt.max_len).c_str() : "none");
    printf("  dropped too long  %llu\n", (unsigned long long)st.dropped);
    printf("  tokens            %llu (prompt %llu, chosen %llu, rejected %llu; EOS %s, BOS %s)\n",
           (unsigned long long)(st.sum_P + st.sum_C + st.sum_R), (unsigned long long)st.sum_P,
           (unsigned long long)st.sum_C, (unsigned long long)st.sum_R, opt.eos ? "on" : "off", opt.bos ? "on" : "off");
    printf("  mean P / C / R    %.1f / %.1f / %.1f tokens; longest unit P+C+1+R = %llu\n", (double)st.sum_P / n,
           (double)st.sum_C / n, (double)st.sum_R / n, (unsigned long long)st.max_unit);
    printf("  ideal prefix-sharing speedup (2P+C+R)/(P+C+R+1) = %.3f\n",
           (double)(2 * st.sum_P + st.sum_C + st.sum_R) / (double)(st.sum_P + st.sum_C + st.sum_R + n));
    printf("  tokenizer %s, content hash %016llx", tok.identity().c_str(), (unsigned long long)train_hash);
    if (!opt.val_output.empty()) printf(" (val %016llx)", (unsigned long long)val_hash);
    printf("\n");
    return 0;
}
