# dev/simt: build fragment included by the top-level Makefile, last (it makes the rules for the
# lists that the fragments before it fill).
# Kernel tests (SIMT_KERNEL_TESTS: dev/cuda/<layer>, dev/simt/test_*) are built three ways:
#   T          g++ on the CPU execution layer, from the launch-rewritten copy build/cpu/T.cu
#   T_asan     the same with AddressSanitizer
#   nvcc       `nvcc -c` for sm_80 and sm_90 (status in build/nvcc/, reported by test_nvcc_build)
# and those also listed in SIMT_KERNEL_TESTS_FP32 a fourth way:
#   T_fp32     the CPU build with -DENABLE_FP32 (floatX = float, as `make PRECISION=FP32`)
# Other programs on the CPU layer (SIMT_PROGRAMS: probes, benchmarks) are built the first way only.
# To add one from a fragment included before this one: SIMT_KERNEL_TESTS += T (or SIMT_PROGRAMS).
# The emulator's own tests: warp intrinsics, diagnostics, mma/ldmatrix wrappers (kernel tests),
# the launch rewrite, the runtime stand-ins, bf16 against the toolkit's host code.
# Every kernels/*.cuh is rewritten and is a prerequisite of every kernel test.

SIMT_HEADERS := dev/simt/simt.h dev/simt/cuda_runtime_cpu.h kernels/cuda_common.h \
                dev/simt/kernel_test.h dev/test_util.h $(wildcard dev/simt/bf16.h) \
                dev/simt/cublaslt_cpu.h dev/simt/nccl_cpu.h dev/cuda/expect_exit.h $(PRECISION_STAMP)
# what the kernel tests' references include: the CPU layers, the batch layout and packer
SIMT_HEADERS += $(wildcard cpu/*.h data/*.h common/*.h)
SIMT_KERNEL_HEADERS := $(wildcard kernels/*.cuh kernels/*.h)
SIMT_REWRITTEN := $(patsubst %,build/cpu/%,$(filter %.cuh,$(SIMT_KERNEL_HEADERS)))
SIMT_REWRITE := dev/simt/rewrite_launches.py
SIMT_CXXFLAGS := -fstack-clash-protection $(PRECISION_FLAGS)
# -fsanitize-recover=address: a test may run a child with ASAN_OPTIONS=halt_on_error=0 to see
# every report (dev/simt/test_simt_checks); without that option the first report still aborts.
SIMT_ASAN_FLAGS := -O1 -g -fsanitize=address -fsanitize-recover=address -fno-omit-frame-pointer
SIMT_NVCC_FLAGS := -std=c++17 -I. -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                   $(PRECISION_FLAGS) -I/usr/include/x86_64-linux-gnu/openblas-openmp

SIMT_KERNEL_TESTS += dev/simt/test_warp_intrinsics dev/simt/test_simt_diagnostics dev/simt/test_mma \
                     dev/simt/test_cp_async dev/simt/test_wgmma \
                     dev/simt/test_rewrite_launches dev/simt/test_simt_checks

# the cuBLASLt stand-in (dev/simt/cublaslt_cpu.h) against double loops, and its error reports
SIMT_KERNEL_TESTS += dev/simt/test_cublaslt_cpu

# The NCCL stand-in (dev/simt/nccl_cpu.h, over MPI: builds that include kernels/nccl_common.h
# need MPI_CFLAGS and MPI_LIBS from common/common.mk) against results the test computes itself:
# the program alone (one rank, no MPI) and dev/simt/test_nccl_cpu.sh (mpirun -np 1, 2, 3); plus
# the nvcc compile check against real NCCL. No ASan build: Open MPI's own allocations at exit
# would read as leaks; the stand-in checks buffer bounds itself.
dev/simt/test_nccl_cpu: dev/simt/test_nccl_cpu.cu $(SIMT_HEADERS) kernels/nccl_common.h
	$(CXX) $(CXXFLAGS) $(SIMT_CXXFLAGS) $(MPI_CFLAGS) -x c++ $< -x none -o $@ $(MPI_LIBS) $(LDLIBS) -lboost_context
TEST_BINS += dev/simt/test_nccl_cpu dev/simt/test_nccl_cpu.sh
dev/simt/test_nccl_cpu.sh: dev/simt/test_nccl_cpu
SIMT_NVCC_STATUS += build/nvcc/dev/simt/test_nccl_cpu.status

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

# Speed of the emulator: reducing 1M floats with 256-thread blocks.
SIMT_PROGRAMS += dev/simt/bench_reduce
$(SIMT_PROGRAMS): %: build/cpu/%.cu $(SIMT_REWRITTEN) $(SIMT_KERNEL_HEADERS) $(SIMT_HEADERS)
	$(CXX) $(CXXFLAGS) -iquote build/cpu -x c++ $< -x none -o $@ $(LDLIBS) -lboost_context
ALL_BINS += $(SIMT_PROGRAMS)

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

# Programs that use Hopper's wgmma (kernels/ptx.cuh): also compiled for sm_90a, the only target
# with the instructions (build/nvcc/T.sm90a.status); the sm_80/sm_90 check compiles their trap.
SIMT_NVCC_SM90A += dev/simt/test_wgmma
dev/simt/test_wgmma dev/simt/test_wgmma_asan build/nvcc/dev/simt/test_wgmma.status: dev/simt/wgmma_cases.h
build/nvcc/%.sm90a.status: %.cu $(SIMT_KERNEL_HEADERS) kernels/cuda_common.h dev/simt/kernel_test.h dev/test_util.h dev/simt/wgmma_cases.h $(PRECISION_STAMP)
	@mkdir -p $(dir $@)
	@if [ ! -x "$(NVCC)" ]; then echo "SKIP nvcc not found at $(NVCC)" > $@; \
	elif $(NVCC) $(filter-out -gencode arch=%,$(SIMT_NVCC_FLAGS)) -gencode arch=compute_90a,code=sm_90a -c $< -o $(basename $@).o > $@.log 2>&1; \
	then echo PASS > $@; cat $@.log >> $@; rm -f $@.log $(basename $@).o; \
	else echo FAIL > $@; cat $@.log >> $@; rm -f $@.log; fi
SIMT_NVCC_STATUS += $(patsubst %,build/nvcc/%.sm90a.status,$(SIMT_NVCC_SM90A))

# Reports the nvcc compile check of every kernel test, one PASS/FAIL line per file.
dev/simt/test_nvcc_build: dev/simt/test_nvcc_build.cpp $(SIMT_NVCC_STATUS) dev/test_util.h
	$(CXX) $(CXXFLAGS) '-DSIMT_NVCC_STATUS="$(SIMT_NVCC_STATUS)"' $< -o $@ $(LDLIBS)
TEST_BINS += dev/simt/test_nvcc_build

# The CPU stand-ins for the CUDA runtime (a plain g++ test: no launches to rewrite).
dev/simt/test_cuda_runtime_cpu: dev/simt/test_cuda_runtime_cpu.cpp $(SIMT_HEADERS)
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS) -lboost_context
TEST_BINS += dev/simt/test_cuda_runtime_cpu

# bf16.h against the toolkit's host code; the toolkit header is compiled in its own unit.
dev/simt/bf16_toolkit_ref.o: dev/simt/bf16_toolkit_ref.cpp
	$(CXX) $(CXXFLAGS) -I/usr/local/cuda/include -c $< -o $@
dev/simt/test_bf16: dev/simt/test_bf16.cpp dev/simt/bf16_toolkit_ref.o dev/simt/bf16.h dev/test_util.h
	$(CXX) $(CXXFLAGS) $< dev/simt/bf16_toolkit_ref.o -o $@ $(LDLIBS)
TEST_BINS += dev/simt/test_bf16

CLEAN_FILES += $(SIMT_NVCC_STATUS) dev/simt/bf16_toolkit_ref.o
