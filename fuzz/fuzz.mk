# libFuzzer targets for every loader and the tokenizer (README: "What the loaders guarantee").
#   make fuzz                      build them (clang++ with -fsanitize=fuzzer,address,undefined)
#   make fuzz FUZZ_SECONDS=300     ... and run each for that long on its corpus
#   make fuzz-seeds                rewrite the committed seed corpora fuzz/corpus/ (project writers)
# fuzz/test_fuzz.sh (in make test) runs each target for FUZZ_RUNS inputs.
FUZZ_TARGETS := pairfile checkpoint ref_cache hf_model llmc jsonl_line tokenizer
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_CXX     ?= clang++
FUZZ_FLAGS   := -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I.
FUZZ_HEADERS := fuzz/fuzz_util.h $(wildcard common/*.h data/*.h) tokenizer/gpt2_tokenizer.h tokenizer/unicode_tables.h
FUZZ_SECONDS ?=

build/fuzz/fuzz_%: fuzz/fuzz_%.cpp $(FUZZ_HEADERS)
	@mkdir -p build/fuzz
	$(FUZZ_CXX) $(FUZZ_FLAGS) $< -o $@ -lz

.PHONY: fuzz fuzz-build fuzz-seeds
fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
ifneq ($(FUZZ_SECONDS),)
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build/fuzz/corpus/$$t build/fuzz/crashes/$$t; \
	    echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	    build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/crashes/$$t/ \
	        build/fuzz/corpus/$$t fuzz/corpus/$$t || exit 1; \
	done
else
	@echo "fuzz targets built in build/fuzz/; run them with make fuzz FUZZ_SECONDS=300"
endif

fuzz/make_seeds: fuzz/make_seeds.cpp $(FUZZ_HEADERS)
	$(CXX) $(CXXFLAGS) $< -o $@ -lz $(LDLIBS)
fuzz-seeds: fuzz/make_seeds
	rm -rf fuzz/corpus && ./fuzz/make_seeds fuzz/corpus

TEST_BINS   += fuzz/test_fuzz.sh
CLEAN_FILES += fuzz/make_seeds $(FUZZ_BINS)
