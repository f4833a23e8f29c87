# dpo.cu: a from-scratch DPO trainer with prefix sharing.
#   make            build every program (CPU trainer, tools, kernel tests)
#   make test       build and run every test this machine can run
#   make run        build and train the embedded default on the CPU
# Each subdirectory adds its programs and tests in its own fragment (*.mk below).

CXX      ?= g++
NVCC     ?= $(shell command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)
CXXFLAGS ?= -O3 -march=native -fopenmp
CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread
LDLIBS   += -lm
BLAS_LIBS = -lopenblas

ALL_BINS  :=
TEST_BINS :=

.PHONY: all test run deps clean
all: deps

# Install missing Debian packages (headers checked each time; apt-get only when absent).
deps:
	@./dev/install_deps.sh

include common/common.mk common/interop.mk tokenizer/tokenizer.mk data/data.mk data/loader.mk \
        dev/dev.mk dev/simt/simt.mk

all: $(ALL_BINS)

test: deps $(ALL_BINS) $(TEST_BINS)
	@./dev/run_tests.sh $(TEST_BINS)

clean:
	rm -f $(ALL_BINS) $(TEST_BINS) $(CLEAN_FILES)
