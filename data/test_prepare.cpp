// Tests of data/prepare_dpo: the text rules of data/prepare_text.h on hand-made examples
// (implicit prompt, message rendering, UTF-8, truncation), then the tool itself on the vendored
// HH-RLHF split and on data/testdata/: decoded tokens give back the input text, the validation
// split is deterministic and disjoint, every kind of bad line stops the tool with FILE:LINE and
// no output, --skip-bad and the truncation policies count what they do.
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>
#include <zlib.h>
#include "data/pairfile.h"
#include "data/prepare_text.h"
#include "dev/test_util.h"
#include "tokenizer/gpt2_tokenizer.h"

static std::string g_dir;  // scratch directory
static const int32_t EOT = 50256;

static std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}
static void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
}
static bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs data/prepare_dpo with `args`; returns its exit status, stdout in *out, stderr in *err.
static int run_tool(const std::string& args, std::string* out, std::string* err) {
    std::string cmd = "./data/prepare_dpo " + args + " >" + g_dir + "/stdout.txt 2>" + g_dir + "/stderr.txt";
    int status = system(cmd.c_str());
    *out = read_text(g_dir + "/stdout.txt");
    *err = read_text(g_dir + "/stderr.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static std::vector<std::string> read_gz_lines(const std::string& path) {
    std::vector<std::string> lines;
    gzFile gz = gzopen(path.c_str(), "rb");
    if (!gz) return lines;
    std::string all;
    char buf[1 << 16];
    int n;
    while ((n = gzread(gz, buf, sizeof buf)) > 0) all.append(buf, n);
    gzclose(gz);
    std::stringstream ss(all);
    std::string line;
    while (std::getline(ss, line)) lines.push_back(line);
    return lines;
}

// ---------------------------------------------------------------------------------------------
// prepare_text.h on hand-made examples

static void test_implicit_rule() {
    PairText t;
    LineError e;
    // two turns: the prompt runs to the second "\n\nAssistant:"
    bool ok = implicit_prompt_split("\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: Knock knock",
                                    "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: No.", &t, &e);
    test_report(ok && t.prompt == "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant:" &&
                    t.chosen == " Knock knock" && t.rejected == " No.",
                "implicit_two_turns", "prompt '%s' chosen '%s' rejected '%s'", t.prompt.c_str(), t.chosen.c_str(),
                t.rejected.c_str());
    // the common prefix runs past the marker ("Yes, "): cut back to the marker
    ok = implicit_prompt_split("\n\nHuman: Safe?\n\nAssistant: Yes, it is.",
                               "\n\nHuman: Safe?\n\nAssistant: Yes, but careful.", &t, &e);
    test_report(ok && t.prompt == "\n\nHuman: Safe?\n\nAssistant:" && t.chosen == " Yes, it is." &&
                    t.rejected == " Yes, but careful.",
                "implicit_prefix_past_marker", "prompt '%s'", t.prompt.c_str());
    // the common prefix ends inside a later marker: the last COMPLETE marker counts
    ok = implicit_prompt_split("\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
                               "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssist", &t, &e);
    test_report(ok && t.prompt == "\n\nHuman: a\n\nAssistant:" && t.chosen == " b\n\nHuman: c\n\nAssistant: d" &&
                    t.rejected == " b\n\nHuman: c\n\nAssist",
                "implicit_partial_marker", "prompt '%s'", t.prompt.c_str());
    // no marker: cut before the last whitespace of the common prefix
    ok = implicit_prompt_split("The capital of Italy is Rome.", "The capital of Italy is Milan.", &t, &e);
    test_report(ok && t.prompt == "The capital of Italy is" && t.chosen == " Rome." && t.rejected == " Milan.",
                "implicit_whitespace_fallback", "prompt '%s'", t.prompt.c_str());
    ok = implicit_prompt_split("Yes", "No", &t, &e);
    test_report(!ok && e.reason == "no shared prompt", "implicit_no_shared_prompt", "reason '%s'", e.reason.c_str());
    ok = implicit_prompt_split("\n\nHuman: x\n\nAssistant:", "\n\nHuman: x\n\nAssistant: y", &t, &e);
    test_report(!ok && e.reason == "empty response", "implicit_empty_response", "reason '%s'", e.reason.c_str());
}

static void test_messages_rule() {
    PairText t;
    LineError e;
    auto j = nlohmann::json::parse(R"({"prompt": [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Bye."}, {"role": "user", "content": "Why?"}]})");
    bool ok = pair_from_json(j, FORMAT_AUTO, &t, &e);
    test_report(ok && t.format == FORMAT_MESSAGES && t.prompt == "\n\nSystem: Be brief.\n\nUser: Hi\n\nAssistant:" &&
                    t.chosen == " Hello!" && t.rejected == " Bye.\n\nUser: Why?",
                "messages_render", "%s prompt '%s' rejected '%s'", e.message.c_str(), t.prompt.c_str(), t.rejected.c_str());
    j = nlohmann::json::parse(R"({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
        "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}]})");
    ok = pair_from_json(j, FORMAT_AUTO, &t, &e);
    test_report(ok && t.prompt == "\n\nUser: Q\n\nAssistant:" && t.chosen == " A" && t.rejected == " B",
                "messages_shared_prompt", "%s prompt '%s'", e.message.c_str(), t.prompt.c_str());
    j = nlohmann::json::parse(R"({"prompt": [{"role": "user", "content": "Q"}],
        "chosen": [{"role": "user", "content": "A"}], "rejected": [{"role": "assistant", "content": "B"}]})");
    test_report(!pair_from_json(j, FORMAT_AUTO, &t, &e) && e.reason == "bad message", "messages_response_role",
                "reason '%s'", e.reason.c_str());
    j = nlohmann::json::parse(R"({"prompt": "Q", "chosen": " A", "rejected": " B"})");
    test_report(!pair_from_json(j, FORMAT_MESSAGES, &t, &e) && e.reason == "bad message", "messages_forced_on_strings",
                "reason '%s'", e.reason.c_str());
    j = nlohmann::json::parse(R"({"chosen": "x y", "rejected": "x z"})");
    test_report(!pair_from_json(j, FORMAT_EXPLICIT, &t, &e) && e.reason == "missing field" && contains(e.message, "\"prompt\""),
                "explicit_forced_needs_prompt", "'%s'", e.message.c_str());
}

static void test_utf8() {
    struct { const char* text; size_t bad; } cases[] = {
        {"plain ascii", std::string::npos},
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8C\xB8", std::string::npos},  // é € 🌸
        {"ab\xC0\x80", 2},          // overlong NUL
        {"a\xED\xA0\x80", 1},       // UTF-16 surrogate
        {"abc\xE2\x82", 3},         // cut short at the end
        {"\xF5\x80\x80\x80", 0},    // beyond U+10FFFF
        {"x\x80y", 1},              // stray continuation byte
        {"ok\xF4\x90\x80\x80", 2},  // U+110000
    };
    bool all = true;
    for (auto& c : cases) {
        size_t got = utf8_invalid_at(c.text);
        if (got != c.bad) {
            all = false;
            printf("  utf8 case '%s': got %zu, expected %zu\n", c.text, got, c.bad);
        }
    }
    test_report(all, "utf8_validation");
}

static std::vector<int32_t> seq(int from, int n) {
    std::vector<int32_t> v(n);
    for (int i = 0; i < n; i++) v[i] = from + i;
    return v;
}

static void test_fit_pair() {
    // keep-end: 10 + 5 + 1 + 5 = 21 > 16, the prompt loses its first 5 tokens
    auto p = seq(0, 10), c = seq(100, 5), r = seq(200, 5);
    unsigned done = fit_pair(&p, &c, &r, 16, TRUNCATE_KEEP_END, 0);
    test_report(done == FIT_PROMPT_START_CUT && p == seq(5, 5) && c == seq(100, 5) && r == seq(200, 5),
                "fit_keep_end_prompt", "done %u P %zu", done, p.size());
    // keep-end down to one prompt token, then the longer response is cut: 2 + 10 + 1 + 3 = 16 > 10
    p = seq(0, 2); c = seq(100, 10); r = seq(200, 3);
    done = fit_pair(&p, &c, &r, 10, TRUNCATE_KEEP_END, 0);
    test_report(done == (FIT_PROMPT_START_CUT | FIT_RESPONSES_CUT) && p == seq(1, 1) && c == seq(100, 5) &&
                    r == seq(200, 3),
                "fit_keep_end_responses", "done %u P %zu C %zu R %zu", done, p.size(), c.size(), r.size());
    // keep-start on the same pair: responses cut to 7 tokens in all, the prompt kept
    p = seq(0, 2); c = seq(100, 10); r = seq(200, 3);
    done = fit_pair(&p, &c, &r, 10, TRUNCATE_KEEP_START, 0);
    test_report(done == FIT_RESPONSES_CUT && p == seq(0, 2) && c == seq(100, 4) && r == seq(200, 3),
                "fit_keep_start_responses", "done %u P %zu C %zu R %zu", done, p.size(), c.size(), r.size());
    // keep-start with a long prompt: responses to one token each, then the prompt's end goes
    p = seq(0, 8); c = seq(100, 3); r = seq(200, 3);
    done = fit_pair(&p, &c, &r, 8, TRUNCATE_KEEP_START, 0);
    test_report(done == (FIT_RESPONSES_CUT | FIT_PROMPT_END_CUT) && p == seq(0, 5) && c == seq(100, 1) &&
                    r == seq(200, 1),
                "fit_keep_start_prompt_end", "done %u P %zu C %zu R %zu", done, p.size(), c.size(), r.size());
    // a short chosen and a long rejected: the rejected is cut
    p = seq(0, 1); c = seq(100, 2); r = seq(200, 10);
    done = fit_pair(&p, &c, &r, 8, TRUNCATE_KEEP_END, 0);
    test_report(done == FIT_RESPONSES_CUT && c == seq(100, 2) && r == seq(200, 4), "fit_long_rejected",
                "done %u C %zu R %zu", done, c.size(), r.size());
    // both responses long: split the budget evenly
    p = seq(0, 1); c = seq(100, 20); r = seq(200, 20);
    done = fit_pair(&p, &c, &r, 10, TRUNCATE_KEEP_END, 0);
    test_report(done == FIT_RESPONSES_CUT && c == seq(100, 4) && r == seq(200, 4), "fit_even_split",
                "done %u C %zu R %zu", done, c.size(), r.size());
    // keep-end keeps a BOS at the prompt's head
    p = {EOT, 1, 2, 3, 4, 5}; c = {100}; r = {200};
    done = fit_pair(&p, &c, &r, 6, TRUNCATE_KEEP_END, 1);
    test_report(done == FIT_PROMPT_START_CUT && p == std::vector<int32_t>({EOT, 4, 5}), "fit_keep_end_keeps_bos",
                "P %zu", p.size());
    // drop, and a pair that fits is left alone
    p = seq(0, 10); c = seq(100, 5); r = seq(200, 5);
    test_report(fit_pair(&p, &c, &r, 20, TRUNCATE_DROP, 0) == FIT_DROPPED && p.size() == 10, "fit_drop");
    test_report(fit_pair(&p, &c, &r, 21, TRUNCATE_KEEP_END, 0) == 0 && p.size() == 10 && c.size() == 5,
                "fit_exact_length_untouched");
}

// ---------------------------------------------------------------------------------------------
// The tool

// Checks that pair i of `s` decodes to prompt + chosen and prompt + rejected, with EOS at the end
// of each response.
static bool pair_decodes_to(const GPT2Tokenizer& tok, const PairSet& s, size_t i, const std::string& prompt,
                            const std::string& chosen, const std::string& rejected, bool eos, std::string* why) {
    const PairRef& ref = s.pairs[i];
    int e = eos ? 1 : 0;
    if (eos && (s.chosen(i)[ref.C - 1] != EOT || s.rejected(i)[ref.R - 1] != EOT)) { *why = "no EOS"; return false; }
    std::string p = tok.decode(s.prompt(i), ref.P), c = tok.decode(s.chosen(i), ref.C - e),
                r = tok.decode(s.rejected(i), ref.R - e);
    if (p == prompt && c == chosen && r == rejected) return true;
    *why = "pair " + std::to_string(i) + " decodes to prompt '" + p + "' chosen '" + c + "' rejected '" + r + "'";
    return false;
}

static void test_hh_rlhf(const GPT2Tokenizer& tok) {
    const std::string in = "data/hh-rlhf/harmless-base-test.jsonl.gz", bin = g_dir + "/hh.bin";
    std::string out, err, why;
    int rc = run_tool("--input " + in + " --output " + bin, &out, &err);
    PairSet s;
    uint32_t flags = 0;
    bool loaded = rc == 0 && load_pair_file(bin, &s, &why, &flags);
    // 2312 lines, all usable under the implicit rule (counted independently with Python's
    // json + os.path.commonprefix when this test was written)
    test_report(loaded && s.size() == 2312 && contains(out, "pairs written     2312 (train 2312, val 0)"),
                "hh_rlhf_pair_count", "rc %d, %zu pairs, %s %s", rc, s.size(), why.c_str(), err.c_str());
    if (!loaded) return;
    test_report(s.tokenizer_id == tok.identity() && flags == PAIRFILE_FLAG_EOS && s.vocab_size == 50257,
                "hh_rlhf_header", "tokenizer '%s' flags %u", s.tokenizer_id.c_str(), flags);

    std::vector<std::string> lines = read_gz_lines(in);
    std::mt19937_64 rng(std::random_device{}());
    std::vector<size_t> picks = {0, s.size() - 1};
    for (int k = 0; k < 30; k++) picks.push_back(rng() % s.size());
    int bad = 0;
    std::string first;
    for (size_t i : picks) {
        auto j = nlohmann::json::parse(lines[i]);
        std::string chosen = j["chosen"], rejected = j["rejected"];
        const PairRef& ref = s.pairs[i];
        std::string p = tok.decode(s.prompt(i), ref.P), c = tok.decode(s.chosen(i), ref.C - 1),
                    r = tok.decode(s.rejected(i), ref.R - 1);
        // the texts come back exactly; the prompt ends at a marker, and the two responses share
        // no further complete "\n\nAssistant:"
        size_t lcp = 0;
        while (lcp < c.size() && lcp < r.size() && c[lcp] == r[lcp]) lcp++;
        bool good = p + c == chosen && p + r == rejected && s.chosen(i)[ref.C - 1] == EOT &&
                    s.rejected(i)[ref.R - 1] == EOT && p.size() >= 12 &&
                    p.compare(p.size() - 12, 12, "\n\nAssistant:") == 0 &&
                    c.substr(0, lcp).find("\n\nAssistant:") == std::string::npos;
        if (!good && !bad++) first = "pair " + std::to_string(i) + ": prompt '" + p.substr(p.size() > 60 ? p.size() - 60 : 0) + "'";
    }
    test_report(bad == 0, "hh_rlhf_decode_round_trip", "%d of %zu pairs differ, first %s", bad, picks.size(), first.c_str());

    // the plain (uncompressed) file gives the same bytes
    std::string plain = g_dir + "/hh.jsonl", bin2 = g_dir + "/hh_plain.bin";
    std::string all;
    for (auto& l : lines) all += l + "\n";
    write_text(plain, all);
    rc = run_tool("--input " + plain + " --output " + bin2, &out, &err);
    test_report(rc == 0 && read_text(bin) == read_text(bin2), "hh_rlhf_plain_equals_gzip", "rc %d", rc);

    // validation split: deterministic for a seed, disjoint, together exactly the full set in order
    std::string t1 = g_dir + "/t1.bin", v1 = g_dir + "/v1.bin", t2 = g_dir + "/t2.bin", v2 = g_dir + "/v2.bin",
                t3 = g_dir + "/t3.bin", v3 = g_dir + "/v3.bin";
    int rc1 = run_tool("--input " + in + " --output " + t1 + " --val-output " + v1 + " --val-fraction 0.1 --seed 7", &out, &err);
    int rc2 = run_tool("--input " + in + " --output " + t2 + " --val-output " + v2 + " --val-fraction 0.1 --seed 7", &out, &err);
    int rc3 = run_tool("--input " + in + " --output " + t3 + " --val-output " + v3 + " --val-fraction 0.1 --seed 8", &out, &err);
    test_report(rc1 == 0 && rc2 == 0 && read_text(t1) == read_text(t2) && read_text(v1) == read_text(v2),
                "val_split_deterministic", "rc %d %d", rc1, rc2);
    test_report(rc3 == 0 && read_text(v1) != read_text(v3), "val_split_seed_matters");
    PairSet train, val;
    bool both = load_pair_file(t1, &train, &why) && load_pair_file(v1, &val, &why);
    // walk the full set: every pair is the next one of exactly one of train and val
    auto same = [&](const PairSet& x, size_t xi, size_t i) {
        const PairRef &rx = x.pairs[xi], &ri = s.pairs[i];
        return rx.P == ri.P && rx.C == ri.C && rx.R == ri.R &&
               std::equal(x.prompt(xi), x.prompt(xi) + rx.P + rx.C + rx.R, s.prompt(i));
    };
    size_t a = 0, b = 0;
    bool merge = both;
    for (size_t i = 0; merge && i < s.size(); i++) {
        bool in_train = a < train.size() && same(train, a, i), in_val = b < val.size() && same(val, b, i);
        if (in_train == in_val) merge = false;  // in neither, or (for HH-RLHF, which has no duplicate pairs) both
        else if (in_train) a++;
        else b++;
    }
    merge = merge && a == train.size() && b == val.size();
    test_report(merge, "val_split_disjoint_and_complete", "train %zu val %zu (walked %zu/%zu) %s", train.size(),
                val.size(), a, b, why.c_str());
    test_report(both && val.size() > 0.05 * s.size() && val.size() < 0.15 * s.size(), "val_split_fraction",
                "%zu of %zu in val", val.size(), s.size());
}

static void test_small_formats(const GPT2Tokenizer& tok) {
    std::string out, err, why, bin = g_dir + "/small.bin";
    PairSet s;
    uint32_t flags = 0;
    bool ok = run_tool("--input data/testdata/explicit.jsonl --output " + bin, &out, &err) == 0 &&
              load_pair_file(bin, &s, &why, &flags) && s.size() == 4 &&
              pair_decodes_to(tok, s, 0, "What is the capital of France?", " Paris.", " London.", true, &why) &&
              pair_decodes_to(tok, s, 1, "Translate 'chat' to English:", " cat", " dog", true, &why) &&
              pair_decodes_to(tok, s, 2, "\xC3\x89" "cris un ha\xC3\xAF" "ku \xF0\x9F\x8C\xB8", "\nLe vent du matin", "\nNon.", true, &why);
    test_report(ok && flags == PAIRFILE_FLAG_EOS, "format_explicit", "%s %s", why.c_str(), err.c_str());

    ok = run_tool("--input data/testdata/messages.jsonl --output " + bin, &out, &err) == 0 &&
         load_pair_file(bin, &s, &why) && s.size() == 3 &&
         pair_decodes_to(tok, s, 0, "\n\nSystem: Be brief.\n\nUser: Hi there\n\nAssistant:", " Hello!", " Go away.", true, &why) &&
         pair_decodes_to(tok, s, 1, "\n\nUser: 2+2?\n\nAssistant:", " 4", " 5", true, &why) &&
         pair_decodes_to(tok, s, 2, "\n\nUser: Name a color\n\nAssistant:", " Blue\n\nUser: Another?\n\nAssistant: Red", " No", true, &why);
    test_report(ok, "format_messages", "%s %s", why.c_str(), err.c_str());

    ok = run_tool("--input data/testdata/implicit.jsonl --output " + bin + " --format implicit", &out, &err) == 0 &&
         load_pair_file(bin, &s, &why) && s.size() == 3 &&
         pair_decodes_to(tok, s, 0, "\n\nHuman: Hi\n\nAssistant: Hello, how can I help?\n\nHuman: Tell me a joke\n\nAssistant:",
                         " Why did the chicken cross the road?", " No.", true, &why) &&
         pair_decodes_to(tok, s, 1, "\n\nHuman: Is it safe?\n\nAssistant:", " Yes, it is.", " Yes, but be careful.", true, &why) &&
         pair_decodes_to(tok, s, 2, "The capital of Italy is", " Rome.", " Milan.", true, &why);
    test_report(ok, "format_implicit", "%s %s", why.c_str(), err.c_str());

    // a byte order mark and CRLF line ends
    std::string crlf = g_dir + "/crlf.jsonl";
    write_text(crlf, "\xEF\xBB\xBF{\"prompt\": \"Q\", \"chosen\": \" yes\", \"rejected\": \" no\"}\r\n\r\n"
                     "{\"prompt\": \"R\", \"chosen\": \" a\", \"rejected\": \" b\"}\r\n");
    ok = run_tool("--input " + crlf + " --output " + bin, &out, &err) == 0 && load_pair_file(bin, &s, &why) &&
         s.size() == 2 && pair_decodes_to(tok, s, 0, "Q", " yes", " no", true, &why) &&
         pair_decodes_to(tok, s, 1, "R", " a", " b", true, &why);
    test_report(ok, "bom_and_crlf", "%s %s", why.c_str(), err.c_str());

    // --no-eos and --bos
    ok = run_tool("--input data/testdata/explicit.jsonl --output " + bin + " --no-eos --bos", &out, &err) == 0 &&
         load_pair_file(bin, &s, &why, &flags) && s.prompt(0)[0] == EOT &&
         tok.decode(s.prompt(0) + 1, s.pairs[0].P - 1) == "What is the capital of France?" &&
         tok.decode(s.chosen(0), s.pairs[0].C) == " Paris." && tok.decode(s.rejected(0), s.pairs[0].R) == " London.";
    test_report(ok && flags == PAIRFILE_FLAG_BOS, "flags_no_eos_bos", "flags %u %s %s", flags, why.c_str(), err.c_str());
}

static void test_truncation() {
    // explicit.jsonl: pair 3 ("Count:" + twenty words) is the only one over 24 tokens
    std::string out, err, why, bin = g_dir + "/trunc.bin", in = "data/testdata/explicit.jsonl";
    PairSet full, s;
    run_tool("--input " + in + " --output " + bin, &out, &err);
    load_pair_file(bin, &full, &why);
    const int max_len = 24;
    int over = 0;
    for (size_t i = 0; i < full.size(); i++) over += full.pairs[i].P + full.pairs[i].C + 1 + full.pairs[i].R > max_len;
    test_report(over == 1, "truncation_setup", "%d pairs over %d tokens", over, max_len);

    for (const char* policy : {"keep-end", "keep-start"}) {
        int rc = run_tool("--input " + in + " --output " + bin + " --max-len 24 --truncate " + policy, &out, &err);
        bool ok = rc == 0 && load_pair_file(bin, &s, &why) && s.size() == full.size();
        for (size_t i = 0; ok && i < s.size(); i++) ok = s.pairs[i].P + s.pairs[i].C + 1 + s.pairs[i].R <= max_len;
        ok = ok && contains(out, "truncated         1 (");
        // the long pair: chosen is cut to fit and keeps its start
        ok = ok && s.pairs[3].C < full.pairs[3].C && std::equal(s.chosen(3), s.chosen(3) + s.pairs[3].C, full.chosen(3));
        test_report(ok, (std::string("truncation_") + policy).c_str(), "rc %d %s %s", rc, why.c_str(), out.c_str());
    }
    int rc = run_tool("--input " + in + " --output " + bin + " --max-len 24 --truncate drop", &out, &err);
    bool ok = rc == 0 && load_pair_file(bin, &s, &why) && s.size() == full.size() - 1 &&
              contains(out, "dropped too long  1") && s.pairs[2].C == full.pairs[2].C;
    test_report(ok, "truncation_drop", "rc %d, %zu pairs, %s", rc, s.size(), out.c_str());
    // a prompt-start cut: keep-end with a bound the prompt of pair 2 cannot meet
    rc = run_tool("--input " + in + " --output " + bin + " --max-len 12 --truncate keep-end", &out, &err);
    ok = rc == 0 && load_pair_file(bin, &s, &why);
    for (size_t i = 0; ok && i < s.size(); i++) {
        const PairRef &a = s.pairs[i], &b = full.pairs[i];
        ok = a.P + a.C + 1 + a.R <= 12 &&
             std::equal(s.prompt(i), s.prompt(i) + a.P, full.prompt(i) + (b.P - a.P));  // the prompt's end survives
    }
    test_report(ok && contains(out, "prompt start cut"), "truncation_keep_end_prompt_start", "%s", out.c_str());
}

static void test_bad_input() {
    const std::string good = R"({"prompt": "Q", "chosen": " yes", "rejected": " no"})";
    struct Case { const char* name; std::string line; const char* expect; bool blank_before; };
    std::vector<Case> cases = {
        {"malformed_json", R"({"prompt": "Q", "chosen": " yes")", "malformed JSON", false},
        {"not_an_object", R"([1, 2, 3])", "not an object", false},
        {"missing_field", R"({"prompt": "Q", "chosen": " yes", "reject": " no"})", "\"rejected\" is missing", false},
        {"non_string_field", R"({"prompt": "Q", "chosen": 5, "rejected": " no"})", "\"chosen\" is a number", false},
        {"empty_prompt", R"({"prompt": "", "chosen": " yes", "rejected": " no"})", "\"prompt\" is empty", false},
        {"empty_response", R"({"prompt": "Q", "chosen": " yes", "rejected": ""})", "\"rejected\" is empty", true},
        {"identical", R"({"prompt": "Q", "chosen": " same", "rejected": " same"})", "are the same", false},
        {"invalid_utf8", "{\"prompt\": \"Q\", \"chosen\": \" ye\xFFs\", \"rejected\": \" no\"}", "invalid UTF-8 at byte offset 30", false},
        {"unknown_format", R"({"question": "Q", "answer": "A"})", "expected \"chosen\" and", false},
        {"bad_role", R"({"prompt": [{"role": "bot", "content": "Q"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]})", "role \"bot\"", false},
        {"no_shared_prompt", R"({"chosen": "Yes", "rejected": "No"})", "share no prompt", false},
        // issue 10: numbers out of range, deep nesting, a raw NUL, a byte order mark after line 1
        {"number_out_of_range", R"({"prompt": "Q", "chosen": " yes", "rejected": " no", "score": 1e400})",
         "bad JSON value", false},
        {"deep_nesting", R"({"chosen": [{"role": "user", "content": "Q", "x": )" + std::string(100000, '[') +
         std::string(100000, ']') + R"(}, {"role": "assistant", "content": "a"}], "rejected": [])",
         "nesting deeper than 256 levels", false},
        {"raw_nul", std::string(R"({"prompt": "Q", "chosen": " yes", "rejected": " no"})") + std::string("\0zz", 3),
         "raw NUL byte at byte 52", false},
        {"bom_after_line_1", "\xEF\xBB\xBF" + good, "byte order mark", false},
    };
    std::string all_bad = good + "\n";
    for (auto& c : cases) {
        std::string in = g_dir + "/bad_" + c.name + ".jsonl", bin = g_dir + "/bad.bin", out, err;
        write_text(in, good + "\n" + (c.blank_before ? "\n" : "") + c.line + "\n" + good + "\n");
        int line = c.blank_before ? 3 : 2;
        int rc = run_tool("--input " + in + " --output " + bin, &out, &err);
        std::string where = in + ":" + std::to_string(line) + ": ";
        bool ok = rc == 1 && contains(err, where) && contains(err, c.expect) && contains(err, "--skip-bad") &&
                  !exists(bin) && !exists(bin + ".tmp");
        test_report(ok, (std::string("bad_input_") + c.name).c_str(), "rc %d, stderr '%s'", rc, err.c_str());
        all_bad += c.line + "\n" + good + "\n";
    }
    // --skip-bad: every bad line skipped and counted, the good ones kept
    std::string in = g_dir + "/all_bad.jsonl", bin = g_dir + "/skip.bin", out, err, why;
    write_text(in, all_bad);
    int rc = run_tool("--input " + in + " --output " + bin + " --skip-bad", &out, &err);
    PairSet s;
    bool ok = rc == 0 && load_pair_file(bin, &s, &why) && s.size() == cases.size() + 1 &&
              contains(out, "skipped bad lines " + std::to_string(cases.size()) + ",") &&
              contains(out, "malformed JSON 2") && contains(out, "invalid UTF-8 1") && contains(out, "bad message 1") &&
              contains(out, "identical chosen and rejected 1");
    test_report(ok, "skip_bad_counts", "rc %d, %zu pairs, stdout '%s'", rc, s.size(), out.c_str());

    // a file that cannot be read, a truncated gzip, a usage mistake, all bad lines
    rc = run_tool("--input " + g_dir + "/nope.jsonl --output " + bin, &out, &err);
    test_report(rc == 1 && contains(err, g_dir + "/nope.jsonl: cannot open"), "missing_input_file", "rc %d '%s'", rc, err.c_str());
    std::string gz = read_text("data/hh-rlhf/harmless-base-test.jsonl.gz");
    std::string cut = g_dir + "/cut.jsonl.gz", cut_bin = g_dir + "/cut.bin";
    write_text(cut, gz.substr(0, gz.size() / 2));
    rc = run_tool("--input " + cut + " --output " + cut_bin, &out, &err);
    test_report(rc == 1 && contains(err, cut + ": after line") && !exists(cut_bin), "truncated_gzip", "rc %d '%s'", rc, err.c_str());
    rc = run_tool("--input data/testdata/explicit.jsonl --output " + bin + " --val-output " + g_dir + "/v.bin", &out, &err);
    test_report(rc == 2 && contains(err, "--val-fraction"), "usage_val_needs_fraction", "rc %d '%s'", rc, err.c_str());
    rc = run_tool("--input data/testdata/explicit.jsonl --output " + bin + " --max-len 3", &out, &err);
    test_report(rc == 2 && contains(err, "--max-len 3"), "usage_max_len_too_small", "rc %d '%s'", rc, err.c_str());
    write_text(in, cases[0].line + "\n");
    remove(bin.c_str());
    rc = run_tool("--input " + in + " --output " + bin + " --skip-bad", &out, &err);
    test_report(rc == 1 && contains(err, "no pairs") && !exists(bin), "all_lines_bad", "rc %d '%s'", rc, err.c_str());
}

// issue 10: outputs that are the input under another spelling, outputs that are not regular
// files, and lines longer than --max-line-bytes stop the tool before anything is replaced.
static void test_files_kept_safe() {
    std::string in = g_dir + "/keep.jsonl", out, err;
    std::string text = read_text("data/testdata/explicit.jsonl");
    write_text(in, text);
    int rc = run_tool("--input " + in + " --output " + g_dir + "/./keep.jsonl", &out, &err);
    test_report(rc == 2 && contains(err, "same file") && read_text(in) == text, "output_is_input_by_identity",
                "rc %d '%s'", rc, err.c_str());
    std::string link = g_dir + "/keep_link.jsonl";
    symlink(in.c_str(), link.c_str());
    rc = run_tool("--input " + in + " --output " + link, &out, &err);
    test_report(rc == 2 && contains(err, "same file") && read_text(in) == text, "output_is_input_through_symlink",
                "rc %d '%s'", rc, err.c_str());
    rc = run_tool("--input " + in + " --output " + g_dir + "/t.bin --val-output " + g_dir + "/../" +
                  g_dir.substr(g_dir.rfind('/') + 1) + "/t.bin --val-fraction 0.5", &out, &err);
    test_report(rc == 2 && contains(err, "same file"), "val_output_is_output_by_identity", "rc %d '%s'", rc, err.c_str());
    std::string fifo = g_dir + "/fifo.bin";
    bool made = mkfifo(fifo.c_str(), 0600) == 0;
    rc = run_tool("--input " + in + " --output " + fifo, &out, &err);
    struct stat st;
    test_report(made && rc == 1 && contains(err, "is a FIFO") && stat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode),
                "output_fifo_refused", "rc %d '%s'", rc, err.c_str());
    std::string other = g_dir + "/other.bin", dangling = g_dir + "/dangling.bin";
    symlink(other.c_str(), dangling.c_str());
    rc = run_tool("--input " + in + " --output " + dangling, &out, &err);
    test_report(rc == 1 && contains(err, "symbolic link") && !exists(other) && lstat(dangling.c_str(), &st) == 0 &&
                S_ISLNK(st.st_mode), "output_symlink_refused", "rc %d '%s'", rc, err.c_str());

    // a line over the cap, plain and gzipped (no newline at all): the error names the line
    std::string good = R"({"prompt": "Q", "chosen": " yes", "rejected": " no"})";
    std::string long_in = g_dir + "/long.jsonl", bin = g_dir + "/long.bin";
    write_text(long_in, good + "\n" + good + "\n{\"prompt\": \"" + std::string(5000, 'a') + "\"}\n");
    rc = run_tool("--input " + long_in + " --output " + bin + " --max-line-bytes 1000", &out, &err);
    test_report(rc == 1 && contains(err, "line 3 is longer than --max-line-bytes 1000") && !exists(bin),
                "line_over_max_line_bytes", "rc %d '%s'", rc, err.c_str());
    std::string gz_in = g_dir + "/long.jsonl.gz";
    gzFile gz = gzopen(gz_in.c_str(), "wb");
    std::string block(1 << 16, 'a');
    for (int i = 0; i < 4; i++) gzwrite(gz, block.data(), (unsigned)block.size());
    gzclose(gz);
    rc = run_tool("--input " + gz_in + " --output " + bin + " --max-line-bytes 100000 --skip-bad", &out, &err);
    test_report(rc == 1 && contains(err, "line 1 is longer than --max-line-bytes 100000") && !exists(bin),
                "gzip_without_newline_capped", "rc %d '%s'", rc, err.c_str());
}

// issue 10: gzip members may follow one another; other bytes after the stream are an error.
static void test_gzip_streams() {
    std::string text = read_text("data/testdata/explicit.jsonl");
    auto gz_bytes = [&](const std::string& name) {
        std::string path = g_dir + "/" + name;
        gzFile gz = gzopen(path.c_str(), "wb");
        gzwrite(gz, text.data(), (unsigned)text.size());
        gzclose(gz);
        return read_text(path);
    };
    std::string one = gz_bytes("one.gz"), out, err, why;
    std::string two = g_dir + "/two.jsonl.gz", bin = g_dir + "/two.bin";
    write_text(two, one + one);
    int rc = run_tool("--input " + two + " --output " + bin, &out, &err);
    PairSet s, single;
    std::string single_bin = g_dir + "/one.bin";
    run_tool("--input data/testdata/explicit.jsonl --output " + single_bin, &out, &err);
    bool ok = rc == 0 && load_pair_file(bin, &s, &why) && load_pair_file(single_bin, &single, &why) &&
              s.size() == 2 * single.size();
    test_report(ok, "gzip_concatenated_members", "rc %d, %zu pairs vs %zu", rc, s.size(), single.size());
    std::string garbage = g_dir + "/garbage.jsonl.gz", gbin = g_dir + "/garbage.bin";
    write_text(garbage, one + "trailing junk");
    rc = run_tool("--input " + garbage + " --output " + gbin, &out, &err);
    test_report(rc == 1 && contains(err, "bytes after the end of the gzip stream at byte " + std::to_string(one.size())) &&
                !exists(gbin), "gzip_trailing_bytes", "rc %d '%s'", rc, err.c_str());
}

int main() {
    char tmpl[] = "/tmp/test_prepare.XXXXXX";
    g_dir = mkdtemp(tmpl);

    test_implicit_rule();
    test_messages_rule();
    test_utf8();
    test_fit_pair();

    GPT2Tokenizer tok;
    std::string err;
    if (!tok.load("tokenizer/gpt2", &err)) {
        test_report(false, "tokenizer_load", "%s", err.c_str());
    } else {
        test_hh_rlhf(tok);
        test_small_formats(tok);
        test_truncation();
        test_bad_input();
        test_files_kept_safe();
        test_gzip_streams();
    }
    std::string cmd = "rm -rf " + g_dir;
    if (system(cmd.c_str()) != 0) printf("note: could not remove %s\n", g_dir.c_str());
    return test_exit();
}
