# data: build fragment included by the top-level Makefile.
# The pair file format (data/pairfile.h), the preprocessing tool data/prepare_dpo and their tests.

PAIRFILE_HEADERS = data/pairfile.h data/pairs.h common/atomic_file.h common/hash.h
PREPARE_DPO_HEADERS = common/json_read.h data/prepare_text.h $(PAIRFILE_HEADERS) tokenizer/gpt2_tokenizer.h \
                      tokenizer/unicode_tables.h common/rng.h common/flags.h

ALL_BINS  += data/prepare_dpo
TEST_BINS += data/test_pairfile data/test_pairfile_asan data/test_prepare

data/prepare_dpo: data/prepare_dpo.cpp $(PREPARE_DPO_HEADERS)
	$(CXX) $(CXXFLAGS) $< -o $@ -lz $(LDLIBS)

data/test_pairfile: data/test_pairfile.cpp $(PAIRFILE_HEADERS) dev/test_util.h
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)

# the same test under AddressSanitizer: loading damaged files must never read out of bounds
data/test_pairfile_asan: data/test_pairfile.cpp $(PAIRFILE_HEADERS) dev/test_util.h
	$(CXX) $(CXXFLAGS) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer $< -o $@ $(LDLIBS)

# runs data/prepare_dpo, so it depends on it
data/test_prepare: data/test_prepare.cpp $(PREPARE_DPO_HEADERS) dev/test_util.h data/prepare_dpo
	$(CXX) $(CXXFLAGS) $< -o $@ -lz $(LDLIBS)

# ---- the dataloader and packer (data/dataloader.h) and its test.
TEST_BINS += data/test_dataloader

data/test_dataloader: data/test_dataloader.cpp data/dataloader.h data/batch.h data/pairs.h common/rng.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)
