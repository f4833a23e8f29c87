# dev/simt/tensor.mk: bf16 and tensor-core parts of the CPU execution layer, included by
# dev/simt/simt.mk (which supplies the kernel-test rules: CPU, ASan and nvcc builds).
#   dev/cuda/test_bf16       dev/simt/bf16.h against the toolkit's own host code
#   dev/cuda/test_mma        mma/ldmatrix wrappers and the GEMM tile kernel (a kernel test)
#   dev/cuda/probe_*         instruction probes, CPU build; dev/gpu_check.sh runs the GPU build
#   dev/cuda/probe_compare   compares a probe's GPU output with its CPU output
#   make probe-outputs       runs the CPU probes into build/probes-cpu/ (for dev/gpu_check.sh)

# bf16.h against the toolkit's host code; the toolkit header is compiled in its own unit.
dev/cuda/bf16_toolkit_ref.o: dev/cuda/bf16_toolkit_ref.cpp
	$(CXX) $(CXXFLAGS) -I/usr/local/cuda/include -c $< -o $@
dev/cuda/test_bf16: dev/cuda/test_bf16.cpp dev/cuda/bf16_toolkit_ref.o dev/simt/bf16.h dev/test_util.h
	$(CXX) $(CXXFLAGS) $< dev/cuda/bf16_toolkit_ref.o -o $@ $(LDLIBS)
TEST_BINS += dev/cuda/test_bf16
CLEAN_FILES += dev/cuda/bf16_toolkit_ref.o

SIMT_KERNEL_TESTS += dev/cuda/test_mma

TENSOR_PROBES := dev/cuda/probe_mma dev/cuda/probe_ldmatrix dev/cuda/probe_bf16
$(TENSOR_PROBES): %: build/cpu/%.cu $(SIMT_REWRITTEN) $(SIMT_HEADERS)
	$(CXX) $(CXXFLAGS) -iquote build/cpu -x c++ $< -x none -o $@ $(LDLIBS) -lboost_context
dev/cuda/probe_compare: dev/cuda/probe_compare.cpp
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)
ALL_BINS += $(TENSOR_PROBES) dev/cuda/probe_compare
SIMT_NVCC_STATUS += $(patsubst %,build/nvcc/%.status,$(TENSOR_PROBES))

.PHONY: probe-outputs
probe-outputs: $(TENSOR_PROBES)
	@mkdir -p build/probes-cpu
	@for p in $(TENSOR_PROBES); do ./$$p > build/probes-cpu/$$(basename $$p).txt || exit 1; done
	@echo "wrote build/probes-cpu/: $(notdir $(TENSOR_PROBES))"
