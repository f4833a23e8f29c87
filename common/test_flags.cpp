// Tests of the flag parser (common/flags.h): values typed and bounded, strict lists, NaN and
// wrap-arounds rejected; then every tool with bad flags (train_dpo_cpu's training, score and sample
// flags, data/prepare_dpo): each class of bad value must exit with status 1 or 2 (never a
// signal), name the flag in its message, and leave nothing behind.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "common/flags.h"
#include "common/train_config.h"
#include "dev/test_util.h"

static std::string g_dir;

static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Parses `args` (space-separated; no quoting) with parse_train_args.
static bool parse(const std::vector<std::string>& args, TrainConfig* c, std::string* err) {
    std::vector<char*> argv = {(char*)"train_dpo_cpu"};
    for (const std::string& a : args) argv.push_back((char*)a.c_str());
    return parse_train_args((int)argv.size(), argv.data(), 1, c, err);
}

static void test_parser() {
    // good values land in their fields, typed
    TrainConfig c;
    std::string err;
    bool ok = parse({"--steps", "7", "--lr", "2e-4", "--seed", "18446744073709551615", "--micro-rows", "4096",
                     "--seq-len", "2", "--overlong", "skip", "--packing", "off", "--loss", "sigmoid,sft",
                     "--loss-weights", "1,0.25", "--label-smoothing", "0.1", "--resume", "--final-checkpoint", "0"},
                    &c, &err);
    test_report(ok && c.steps == 7 && c.lr == 2e-4f && c.seed == 18446744073709551615ull && c.micro_rows == 4096 &&
                    c.seq_len == 2 && c.skip_overlong && !c.packing && c.loss.weight[LOSS_SIGMOID] == 1.0f &&
                    c.loss.weight[LOSS_SFT] == 0.25f && c.loss.label_smoothing == 0.1f && c.resume == "auto" &&
                    !c.final_checkpoint,
                "flags_good_values", "%s", err.c_str());

    // each bad value: rejected, and the error names the flag and the value
    struct Bad { std::vector<std::string> args; const char* expect; };
    const Bad bad[] = {
        {{"--log-every", "4294967296"}, "--log-every 4294967296: give a whole number in [1, "},
        {{"--log-every", "0"}, "--log-every 0"},
        {{"--seq-len", "4294967295"}, "--seq-len 4294967295"},
        {{"--micro-rows", "100000000"}, "--micro-rows 100000000"},
        {{"--batch-pairs", "99999999999999999999"}, "--batch-pairs 99999999999999999999"},
        {{"--steps", "1.5"}, "--steps 1.5"},
        {{"--steps", "12x"}, "--steps 12x"},
        {{"--steps", ""}, "--steps ''"},
        {{"--warmup", "-1"}, "--warmup -1"},
        {{"--lr", "1e39"}, "--lr 1e39: give a finite number >= 0 that fits a float"},
        {{"--lr", "inf"}, "--lr inf"},
        {{"--beta", "1e39"}, "--beta 1e39"},
        {{"--beta", "1e-50"}, "--beta 1e-50: give a finite number > 0"},  // 0 as a float
        {{"--label-smoothing", "0.5"}, "--label-smoothing 0.5: give a finite number in [0, 0.5)"},
        {{"--min-lr-frac", "-0.5"}, "--min-lr-frac -0.5"},
        {{"--weight-decay", "nan"}, "--weight-decay nan"},
        {{"--loss-weights", "nan"}, "--loss-weights nan"},
        {{"--loss-weights", "1,,2"}, "--loss-weights 1,,2"},
        {{"--seed", "-1"}, "--seed -1"},
        {{"--seed", "18446744073709551616"}, "--seed 18446744073709551616"},
        {{"--overlong", "maybe"}, "--overlong takes error or skip, not 'maybe'"},
        {{"--packing", "yes"}, "--packing takes on or off, not 'yes'"},
        {{"--final-checkpoint", "no"}, "--final-checkpoint takes 0 or 1, not 'no'"},
        {{"--threads"}, "--threads needs a value"},
        {{"--nope"}, "unknown flag '--nope'"},
    };
    for (const Bad& b : bad) {
        TrainConfig d;
        std::string e;
        bool parsed = parse(b.args, &d, &e);
        std::string name = "flags_reject" + b.args[0] + (b.args.size() > 1 ? "_" + b.args[1] : "");
        test_report(!parsed && contains(e, b.expect), name.c_str(), "parsed %d, error '%s', expected '%s'", parsed,
                    e.c_str(), b.expect);
    }

    // lists: strict, every item checked
    char* argv[] = {(char*)"x", (char*)"--ids", (char*)"3 1\t2  10", (char*)"--ids", (char*)"1 x",
                    (char*)"--ids", (char*)" "};
    FlagParser f(7, argv, 1, "sample");
    std::vector<int> ids;
    bool first = f.next() && f.integer_list(&ids, 0, 100) && ids == std::vector<int>({3, 1, 2, 10});
    bool second = f.next() && !f.integer_list(&ids, 0, 100) && f.error() == "sample: --ids '1 x': 'x' is not a "
                  "whole number in [0, 100]; give whole numbers separated by spaces";
    test_report(first && second, "flags_integer_list_strict", "%s", f.error().c_str());
    FlagParser g(3, argv + 4, 1);
    test_report(g.next() && !g.integer_list(&ids, 0, 100) && contains(g.error(), "at least one"), "flags_integer_list_empty",
                "%s", g.error().c_str());
}

// Runs a command; returns its exit status (-signal if it was killed by one), stderr in *err.
static int run(const std::string& args, std::string* err) {
    std::string cmd = args + " >" + g_dir + "/out.txt 2>" + g_dir + "/err.txt";
    int status = system(cmd.c_str());
    std::ifstream f(g_dir + "/err.txt");
    std::stringstream ss;
    ss << f.rdbuf();
    *err = ss.str();
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1000;
}

static void test_tools() {
    const std::string out = g_dir + "/run";
    struct Case { std::string cmd, flag; };
    const Case cases[] = {
        {"./train_dpo_cpu --log-every 4294967296", "--log-every 4294967296"},
        {"./train_dpo_cpu --seq-len 4294967295", "--seq-len 4294967295"},
        {"./train_dpo_cpu --micro-rows 1000000000", "--micro-rows 1000000000"},
        {"./train_dpo_cpu --batch-pairs 4294967297", "--batch-pairs 4294967297"},
        {"./train_dpo_cpu --steps 10000000000", "--steps 10000000000"},
        {"./train_dpo_cpu --warmup 4294967296", "--warmup 4294967296"},
        {"./train_dpo_cpu --lr 1e39", "--lr 1e39"},
        {"./train_dpo_cpu --beta 1e39", "--beta 1e39"},
        {"./train_dpo_cpu --loss-weights nan", "--loss-weights nan"},
        {"./train_dpo_cpu --min-lr-frac -1", "--min-lr-frac -1"},
        {"./train_dpo_cpu --seed -1", "--seed -1"},
        {"./train_dpo_cpu score --model tiny --data x --out y --seq-len 4294967295", "--seq-len 4294967295"},
        {"./train_dpo_cpu score --model tiny --data x --out y --micro-rows -3", "--micro-rows -3"},
        {"./train_dpo_cpu sample --model tiny --prompt-ids '1 x'", "--prompt-ids '1 x'"},
        {"./train_dpo_cpu sample --model tiny --prompt-ids 1 --max-tokens -1", "--max-tokens -1"},
        {"./train_dpo_cpu sample --model tiny --prompt-ids 1 --temperature -0.5", "--temperature -0.5"},
        {"./train_dpo_cpu sample --model tiny --prompt-ids 1 --top-k -1", "--top-k -1"},
        {"./train_dpo_cpu sample --model tiny --prompt-ids 1 --top-p 1.5", "--top-p 1.5"},
        {"./train_dpo_cpu sample --model tiny --prompt-ids 1 --top-p 0", "--top-p 0"},
        {"./train_dpo_cpu sample --model tiny --prompt-ids 1 --seed -1", "--seed -1"},
        {"./data/prepare_dpo --input data/testdata/explicit.jsonl --seed -1", "--seed -1"},
        {"./data/prepare_dpo --input data/testdata/explicit.jsonl --max-len 4294967300", "--max-len 4294967300"},
        {"./data/prepare_dpo --input data/testdata/explicit.jsonl --val-fraction nan", "--val-fraction nan"},
    };
    int k = 0;
    for (const Case& c : cases) {
        std::string err;
        bool is_train = c.cmd.find(" score ") == std::string::npos && c.cmd.find(" sample ") == std::string::npos &&
                        c.cmd.find("train_dpo_cpu") != std::string::npos;
        bool is_prepare = c.cmd.find("prepare_dpo") != std::string::npos;
        std::string cmd = c.cmd + (is_train ? " --out " + out : "") + (is_prepare ? " --output " + out + ".bin" : "");
        int rc = run(cmd, &err);
        bool nothing_written = access(out.c_str(), F_OK) != 0 && access((out + ".bin").c_str(), F_OK) != 0;
        std::string name = "tool_rejects_" + std::to_string(k++) + (is_prepare ? "_prepare" : "_train") + c.flag.substr(0, c.flag.find(' '));
        test_report((rc == 1 || rc == 2) && contains(err, c.flag) && nothing_written, name.c_str(),
                    "'%s': exit %d (negative: signal), stderr '%s'", cmd.c_str(), rc, err.c_str());
    }
}

int main() {
    char tmpl[] = "/tmp/test_flags.XXXXXX";
    g_dir = mkdtemp(tmpl);
    test_parser();
    test_tools();
    std::string cmd = "rm -rf " + g_dir;
    if (system(cmd.c_str()) != 0) printf("note: could not remove %s\n", g_dir.c_str());
    return test_exit();
}
