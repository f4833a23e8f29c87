# data: the dataloader and packer (data/dataloader.h) and its test.
TEST_BINS += data/test_dataloader

data/test_dataloader: data/test_dataloader.cpp data/dataloader.h data/batch.h data/pairs.h common/rng.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)
