# data: build fragment included by the top-level Makefile.
# The pair file format (data/pairfile.h), the preprocessing tool data/prepare_dpo and their tests.

TEST_BINS += data/test_pairfile data/test_pairfile_asan

data/test_pairfile: data/test_pairfile.cpp data/pairfile.h data/pairs.h dev/test_util.h
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)

# the same test under AddressSanitizer: loading damaged files must never read out of bounds
data/test_pairfile_asan: data/test_pairfile.cpp data/pairfile.h data/pairs.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer $< -o $@ $(LDLIBS)
