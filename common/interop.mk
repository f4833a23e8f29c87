# common (interop): Hugging Face / llm.c checkpoint I/O and sampling; see common/INTEROP.md.
MODEL_IO_HEADERS = common/model_io.h common/safetensors.h common/model_config.h common/atomic_file.h

TEST_BINS += common/test_model_io

common/test_model_io: common/test_model_io.cpp $(MODEL_IO_HEADERS) dev/test_util.h common/tools/tiny_gpt2.py
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)

SAMPLE_HEADERS = cpu/sample.h common/model_config.h common/rng.h kernels/gelu_math.h kernels/host_device.h
TEST_BINS += common/test_sample

common/test_sample: common/test_sample.cpp $(SAMPLE_HEADERS) $(MODEL_HEADERS) dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(BLAS_LIBS) $(LDLIBS)
