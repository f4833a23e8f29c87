// The `sample` subcommand of both trainers (train_dpo_cpu, train_dpo): continuations of prompts
// from a model's fp32 weights on the CPU, with a KV cache (cpu/sample.h). Prompts as text
// (GPT-2's tokenizer) or as token ids.
//   <trainer> sample --model M --prompt TEXT [--max-tokens N --temperature T --top-k K --top-p P]
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/trainer.h"
#include "cpu/sample.h"
#include "tokenizer/gpt2_tokenizer.h"

inline int run_sample(int argc, char** argv) {
    std::string model_path, prompts_file, tokenizer_dir;
    std::vector<std::string> prompts;
    std::vector<std::vector<int>> id_prompts;
    cpu::SampleSettings ss;
    ss.max_new_tokens = 64;
    FlagParser f(argc, argv, 2, "sample");  // after "<trainer> sample"
    while (f.next()) {
        std::string v;
        std::vector<int> ids;
        if (f.is("--model")) f.text(&model_path);
        else if (f.is("--prompt")) { if (f.text(&v)) prompts.push_back(v); }
        else if (f.is("--prompts")) f.text(&prompts_file);
        else if (f.is("--prompt-ids")) { if (f.integer_list(&ids, 0, INT32_MAX)) id_prompts.push_back(ids); }
        else if (f.is("--tokenizer")) f.text(&tokenizer_dir);
        else if (f.is("--max-tokens")) f.integer(&ss.max_new_tokens, 0, MAX_FLAG_SAMPLE_TOKENS);
        else if (f.is("--temperature")) f.number(&ss.temperature, NumberRange::at_least(0));
        else if (f.is("--top-k")) f.integer(&ss.top_k, 0, INT32_MAX);
        else if (f.is("--top-p")) f.number(&ss.top_p, {0, 1, true, false});
        else if (f.is("--greedy")) ss.greedy = true;
        else if (f.is("--seed")) f.seed(&ss.seed);
        else if (f.is("--eos-id")) f.integer(&ss.eos_token, -1, INT32_MAX);
        else if (f.is("--help") || f.is("-h")) { print_usage(argv[0]); return 0; }
        else f.unknown();
    }
    if (!f.ok()) fatal(f.error());
    if (model_path.empty()) fatal("sample needs --model (see --help)");
    if (!prompts_file.empty()) {
        std::ifstream in(prompts_file);
        if (!in) fatal("sample: cannot read " + prompts_file);
        std::string line;
        while (std::getline(in, line)) if (!line.empty()) prompts.push_back(line);
    }
    if (prompts.empty() && id_prompts.empty()) fatal("sample needs --prompt TEXT, --prompts FILE or --prompt-ids \"1 2 3\"");
    if (ss.temperature <= 0) ss.greedy = true;
    ModelConfig cfg;
    std::vector<float> params;
    load_model_params(model_path, 50257, 0, &cfg, &params);
    GPT2Tokenizer tok;
    std::string err;
    std::vector<std::vector<int>> inputs;
    if (!prompts.empty()) {
        if (!tok.load(tokenizer_dir.empty() ? default_tokenizer_dir() : tokenizer_dir, &err)) fatal("sample: " + err);
        if (tok.vocab_size() > cfg.vocab_size)
            fatal("sample: the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens, the model " +
                  std::to_string(cfg.vocab_size) + "; use --prompt-ids for models with other vocabularies");
        for (const std::string& p : prompts) {
            std::vector<int32_t> ids;
            if (!tok.encode(p, &ids, &err)) fatal("sample: prompt '" + p + "': " + err);
            inputs.push_back(std::vector<int>(ids.begin(), ids.end()));
        }
    }
    for (const std::vector<int>& ids : id_prompts) inputs.push_back(ids);
    TokenPrinter printer;
    printer.init(cfg.vocab_size);
    cpu::Sampler sampler(cfg, params.data(), ss);
    for (const std::vector<int>& ids : inputs) {
        std::string too_long = check_seq_len((long long)ids.size(), cfg, "sample: a prompt of " +
                                             std::to_string(ids.size()) + " tokens");
        if (!too_long.empty()) fatal(too_long);
        cpu::SampleResult r = sampler.generate(ids);
        if (r.stop == cpu::SampleStop::bad_prompt)
            fatal("sample: a prompt is empty, longer than the context of " + std::to_string(cfg.max_seq_len) +
                  " tokens, or has ids outside the vocabulary");
        printf("--- prompt: %s\n%s\n", printer.show(ids).c_str(), printer.show(r.tokens).c_str());
    }
    return 0;
}

