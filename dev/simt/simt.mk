# dev/simt: build fragment included by the top-level Makefile.
# Kernel tests (dev/cuda/test_*.cu and others listed in SIMT_KERNEL_TESTS) are built three ways:
#   T          g++ on the CPU execution layer, from the launch-rewritten copy build/cpu/T.cu
#   T_asan     the same with AddressSanitizer
#   nvcc       `nvcc -c` for sm_80 and sm_90 (status in build/nvcc/, reported by test_nvcc_build)
# and those also listed in SIMT_KERNEL_TESTS_FP32 a fourth way:
#   T_fp32     the CPU build with -DENABLE_FP32 (floatX = float, as `make PRECISION=FP32`)
# To add a kernel test from another fragment included before this one: SIMT_KERNEL_TESTS += T.
# Every kernels/*.cuh is rewritten and is a prerequisite of every kernel test.

SIMT_HEADERS := dev/simt/simt.h dev/simt/cuda_runtime_cpu.h kernels/cuda_common.h \
                dev/simt/kernel_test.h dev/test_util.h $(wildcard dev/simt/bf16.h) \
                dev/simt/cublaslt_cpu.h dev/cuda/expect_exit.h $(PRECISION_STAMP)
SIMT_KERNEL_HEADERS := $(wildcard kernels/*.cuh kernels/*.h)
SIMT_REWRITTEN := $(patsubst %,build/cpu/%,$(filter %.cuh,$(SIMT_KERNEL_HEADERS)))
SIMT_REWRITE := dev/simt/rewrite_launches.py
SIMT_CXXFLAGS := -fstack-clash-protection $(PRECISION_FLAGS)
SIMT_ASAN_FLAGS := -O1 -g -fsanitize=address -fno-omit-frame-pointer
SIMT_NVCC_FLAGS := -std=c++17 -I. -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                   $(PRECISION_FLAGS) -I/usr/include/x86_64-linux-gnu/openblas-openmp

SIMT_KERNEL_TESTS += dev/cuda/test_reduce dev/cuda/test_softmax dev/cuda/test_warp_intrinsics \
                     dev/cuda/test_simt_diagnostics dev/simt/test_rewrite_launches
# GPU trainer layers (issue 11): each also built all-fp32 (floatX = float) as T_fp32
SIMT_KERNEL_TESTS += dev/cuda/attention dev/cuda/logprob
SIMT_KERNEL_TESTS_FP32 += dev/cuda/attention dev/cuda/logprob

# The GPU trainer's layers (issue 11), in bf16 and all-fp32.
SIMT_KERNEL_TESTS += dev/cuda/encoder dev/cuda/layernorm dev/cuda/adamw dev/cuda/dpo_loss
SIMT_KERNEL_TESTS_FP32 += dev/cuda/encoder dev/cuda/layernorm dev/cuda/adamw dev/cuda/dpo_loss

-include dev/simt/tensor.mk

# matmul (cuBLASLt; the CPU build runs dev/simt/cublaslt_cpu.h, tested by test_cublaslt_cpu) and
# GELU, each in both precisions:
# T_fp32.cu includes T.cu with ENABLE_FP32, so it also needs T's rewritten copy and source.
SIMT_KERNEL_TESTS += dev/cuda/matmul dev/cuda/matmul_fp32 dev/cuda/gelu dev/cuda/gelu_fp32 dev/simt/test_cublaslt_cpu
dev/cuda/matmul_fp32 dev/cuda/matmul_fp32_asan: build/cpu/dev/cuda/matmul.cu cpu/matmul.h cpu/parallel.h
dev/cuda/matmul dev/cuda/matmul_asan: cpu/matmul.h cpu/parallel.h
dev/cuda/gelu_fp32 dev/cuda/gelu_fp32_asan: build/cpu/dev/cuda/gelu.cu
build/nvcc/dev/cuda/matmul_fp32.status: dev/cuda/matmul.cu
build/nvcc/dev/cuda/gelu_fp32.status: dev/cuda/gelu.cu

# Launch rewrite for the CPU build (output never committed; build/ is git-ignored).
build/cpu/%.cu: %.cu $(SIMT_REWRITE)
	@mkdir -p $(dir $@)
	python3 $(SIMT_REWRITE) $< $@
build/cpu/%.cuh: %.cuh $(SIMT_REWRITE)
	@mkdir -p $(dir $@)
	python3 $(SIMT_REWRITE) $< $@

# nvcc compile check of one source: writes "PASS" or "FAIL" and nvcc's messages to the status
# file; never fails the build, so that test_nvcc_build can report each file.
build/nvcc/%.status: %.cu $(SIMT_KERNEL_HEADERS) kernels/cuda_common.h dev/simt/kernel_test.h dev/test_util.h dev/cuda/expect_exit.h $(PRECISION_STAMP)
	@mkdir -p $(dir $@)
	@if [ ! -x "$(NVCC)" ]; then echo "SKIP nvcc not found at $(NVCC)" > $@; \
	elif $(NVCC) $(SIMT_NVCC_FLAGS) -c $< -o $(basename $@).o > $@.log 2>&1; \
	then echo PASS > $@; cat $@.log >> $@; rm -f $@.log $(basename $@).o; \
	else echo FAIL > $@; cat $@.log >> $@; rm -f $@.log; fi

define SIMT_KERNEL_TEST_RULES
$(1): build/cpu/$(1).cu $$(SIMT_REWRITTEN) $$(SIMT_KERNEL_HEADERS) $$(SIMT_HEADERS)
	$$(CXX) $$(CXXFLAGS) $$(SIMT_CXXFLAGS) -iquote build/cpu -x c++ $$< -x none -o $$@ $$(LDLIBS) -lboost_context
$(1)_asan: build/cpu/$(1).cu $$(SIMT_REWRITTEN) $$(SIMT_KERNEL_HEADERS) $$(SIMT_HEADERS)
	$$(CXX) $$(CXXFLAGS) $$(SIMT_CXXFLAGS) $$(SIMT_ASAN_FLAGS) -iquote build/cpu -x c++ $$< -x none -o $$@ $$(LDLIBS) -lboost_context
TEST_BINS += $(1) $(1)_asan
SIMT_NVCC_STATUS += build/nvcc/$(1).status
endef
$(foreach t,$(SIMT_KERNEL_TESTS),$(eval $(call SIMT_KERNEL_TEST_RULES,$(t))))

# The all-fp32 build (-DENABLE_FP32, as `make PRECISION=FP32`) of a kernel test: T_fp32 on the CPU
# layer, and its nvcc compile check (build/nvcc/T.fp32.status).
build/nvcc/%.fp32.status: %.cu $(SIMT_KERNEL_HEADERS) kernels/cuda_common.h dev/simt/kernel_test.h dev/test_util.h
	@mkdir -p $(dir $@)
	@if [ ! -x "$(NVCC)" ]; then echo "SKIP nvcc not found at $(NVCC)" > $@; \
	elif $(NVCC) $(SIMT_NVCC_FLAGS) -DENABLE_FP32 -c $< -o $(basename $@).o > $@.log 2>&1; \
	then echo PASS > $@; cat $@.log >> $@; rm -f $@.log $(basename $@).o; \
	else echo FAIL > $@; cat $@.log >> $@; rm -f $@.log; fi
define SIMT_KERNEL_TEST_FP32_RULES
$(1)_fp32: build/cpu/$(1).cu $$(SIMT_REWRITTEN) $$(SIMT_KERNEL_HEADERS) $$(SIMT_HEADERS)
	$$(CXX) $$(CXXFLAGS) $$(SIMT_CXXFLAGS) -DENABLE_FP32 -iquote build/cpu -x c++ $$< -x none -o $$@ $$(LDLIBS) -lboost_context
TEST_BINS += $(1)_fp32
SIMT_NVCC_STATUS += build/nvcc/$(1).fp32.status
endef
$(foreach t,$(SIMT_KERNEL_TESTS_FP32),$(eval $(call SIMT_KERNEL_TEST_FP32_RULES,$(t))))

# Reports the nvcc compile check of every kernel test, one PASS/FAIL line per file.
dev/simt/test_nvcc_build: dev/simt/test_nvcc_build.cpp $(SIMT_NVCC_STATUS) dev/test_util.h
	$(CXX) $(CXXFLAGS) '-DSIMT_NVCC_STATUS="$(SIMT_NVCC_STATUS)"' $< -o $@ $(LDLIBS)
TEST_BINS += dev/simt/test_nvcc_build

# The CPU stand-ins for the CUDA runtime (a plain g++ test: no launches to rewrite).
dev/simt/test_cuda_runtime_cpu: dev/simt/test_cuda_runtime_cpu.cpp $(SIMT_HEADERS)
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS) -lboost_context
TEST_BINS += dev/simt/test_cuda_runtime_cpu

# Speed of the emulator: reducing 1M floats with 256-thread blocks.
dev/simt/bench_reduce: build/cpu/dev/simt/bench_reduce.cu $(SIMT_REWRITTEN) $(SIMT_KERNEL_HEADERS) $(SIMT_HEADERS)
	$(CXX) $(CXXFLAGS) -iquote build/cpu -x c++ $< -x none -o $@ $(LDLIBS) -lboost_context
ALL_BINS += dev/simt/bench_reduce

CLEAN_FILES += $(SIMT_NVCC_STATUS)
