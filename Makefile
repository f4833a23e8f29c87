# dpo.cu: a from-scratch DPO trainer with prefix sharing.
#   make            build every program (CPU trainer, tools, kernel tests)
#   make test       build and run every test this machine can run
#   make run        build and train the embedded default (on the GPU if there is one, else the CPU)
# Each subdirectory adds its programs and tests in its own fragment (*.mk below).

# Builds run JOBS at a time (default: one per core; `make JOBS=1` for one at a time). The tests
# themselves run one after another (dev/run_tests.sh), after every program is built.
JOBS ?= $(shell nproc)
MAKEFLAGS += -j$(JOBS)

CXX      ?= g++
NVCC     ?= $(shell command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)
CXXFLAGS ?= -O3 -march=native -fopenmp
CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp
LDLIBS   += -lm
# OpenBLAS built on OpenMP: BLAS calls share the trainer's OpenMP threads instead of fighting
# them for the cores (the pthread build's threads and OpenMP's spinning workers oversubscribe).
BLAS_DIR  = /usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS_LIBS = -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas

ALL_BINS  :=
TEST_BINS :=

# Precision of the CUDA builds (kernels, their tests, the GPU trainer): PRECISION=BF16 (default)
# makes floatX __nv_bfloat16; PRECISION=FP32 adds -DENABLE_FP32 (floatX float, for tight tests).
# build/precision remembers the last value; CUDA builds depend on it, so switching rebuilds them.
# nvcc builds that call cuBLASLt link CUDA_LIBS; those that call NCCL (kernels/nccl_common.h) NCCL_LIBS.
PRECISION ?= BF16
ifeq ($(PRECISION),FP32)
PRECISION_FLAGS := -DENABLE_FP32
else ifeq ($(PRECISION),BF16)
PRECISION_FLAGS :=
else
$(error PRECISION=$(PRECISION): use BF16 (the default) or FP32)
endif
PRECISION_STAMP := build/precision
$(shell mkdir -p build && { [ "$$(cat $(PRECISION_STAMP) 2>/dev/null)" = "$(PRECISION)" ] || echo "$(PRECISION)" > $(PRECISION_STAMP); })
CUDA_LIBS := -lcublasLt -lcublas
NCCL_LIBS := -L/usr/local/cuda/lib64 -lnccl

.PHONY: all test run deps clean
all:

# Missing Debian packages (JSON, zlib, OpenBLAS, Boost.Context) are installed before anything is
# built: the check runs when make reads this file (headers only; apt-get only when absent), unless
# every goal named is one that builds nothing (clean, deps itself).
NO_DEPS_GOALS := clean deps
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
DEPS_STATUS := $(shell ./dev/install_deps.sh >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error dev/install_deps.sh could not install the Debian packages the build needs (see above))
endif
endif
deps:
	@./dev/install_deps.sh

# dev/simt/simt.mk last: it makes the rules for the kernel tests the fragments before it list.
include common/common.mk tokenizer/tokenizer.mk data/data.mk \
        dev/dev.mk dev/cuda/cuda.mk dev/simt/simt.mk train_dpo.mk
include fuzz/fuzz.mk

all: $(ALL_BINS)

test: $(ALL_BINS) $(TEST_BINS)
	@./dev/run_tests.sh $(TEST_BINS)

# Test scripts (*.sh) are in TEST_BINS but are sources: never removed.
clean:
	rm -f $(filter-out %.sh,$(ALL_BINS) $(TEST_BINS)) $(CLEAN_FILES)
