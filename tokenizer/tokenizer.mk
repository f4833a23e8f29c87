# tokenizer: build fragment included by the top-level Makefile.
# GPT-2 byte-level BPE (tokenizer/gpt2_tokenizer.h), the tokenize CLI, its test and benchmark.
TOKENIZER_HEADERS = tokenizer/gpt2_tokenizer.h tokenizer/unicode_tables.h common/hash.h

ALL_BINS  += tokenizer/tokenize tokenizer/bench_tokenizer
TEST_BINS += tokenizer/test_tokenizer

tokenizer/tokenize: tokenizer/tokenize.cpp $(TOKENIZER_HEADERS) common/flags.h
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)

tokenizer/bench_tokenizer: tokenizer/bench_tokenizer.cpp $(TOKENIZER_HEADERS)
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)

# The test drives the CLI too, so it depends on it.
tokenizer/test_tokenizer: tokenizer/test_tokenizer.cpp $(TOKENIZER_HEADERS) dev/test_util.h | tokenizer/tokenize
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)
