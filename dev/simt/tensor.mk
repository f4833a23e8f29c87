# dev/simt/tensor.mk: bf16 and tensor-core parts of the CPU execution layer (included at the end of
# dev/simt/simt.mk): the bf16 exactness test, the mma/ldmatrix/GEMM-tile tests, the instruction probes.

# bf16.h against the toolkit's own host code; the toolkit header is compiled in its own unit.
dev/cuda/bf16_toolkit_ref.o: dev/cuda/bf16_toolkit_ref.cpp
	$(CXX) $(CXXFLAGS) -I/usr/local/cuda/include -c $< -o $@
dev/cuda/test_bf16: dev/cuda/test_bf16.cpp dev/cuda/bf16_toolkit_ref.o dev/simt/bf16.h dev/test_util.h
	$(CXX) $(CXXFLAGS) $< dev/cuda/bf16_toolkit_ref.o -o $@ $(LDLIBS)
TEST_BINS += dev/cuda/test_bf16
CLEAN_FILES += dev/cuda/bf16_toolkit_ref.o
