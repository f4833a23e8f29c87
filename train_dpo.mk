# The GPU trainer (train_dpo.cu) and its tests; included after dev/simt/simt.mk (it uses its variables).
#   train_dpo              nvcc, for this machine's GPU (nvidia-smi's compute capability) or sm_80 + sm_90
#   train_dpo_simt         the same source with g++ on the CPU through dev/simt and the cuBLASLt
#                          stand-in (slow; for tests); train_dpo_simt_fp32 always all-fp32
#   test_dpo, test_dpo_fp32  test_dpo.cu through dev/simt in bf16 and in fp32 (in make test)
# PRECISION=FP32 (Makefile) builds train_dpo and train_dpo_simt all-fp32.

GPU_ARCH := $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
ifeq ($(GPU_ARCH),)
TRAIN_DPO_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
else
TRAIN_DPO_ARCH := -arch=sm_$(GPU_ARCH)
endif
TRAIN_DPO_DEPS := $(TRAIN_HEADERS) $(SIMT_KERNEL_HEADERS) kernels/cuda_common.h $(PRECISION_STAMP)
# no BLAS library and no OpenMP: the CPU sampler's one BLAS call is in train_dpo.cu (cblas.h only)
TRAIN_DPO_NVCC_FLAGS := -O3 -std=c++17 -I. $(TRAIN_DPO_ARCH) $(PRECISION_FLAGS)

train_dpo: train_dpo.cu $(TRAIN_DPO_DEPS)
	$(NVCC) $(TRAIN_DPO_NVCC_FLAGS) $< -o $@ $(CUDA_LIBS) $(LDLIBS)

# g++ through dev/simt: the launch-rewritten copy in build/cpu, kernels rewritten likewise
TRAIN_DPO_SIMT_DEPS := build/cpu/train_dpo.cu $(SIMT_REWRITTEN) $(SIMT_HEADERS) $(TRAIN_DPO_DEPS)
# MPI: the NCCL stand-in (kernels/nccl_common.h under g++ is dev/simt/nccl_cpu.h, over MPI)
TRAIN_DPO_SIMT_CXX = $(CXX) $(CXXFLAGS) $(SIMT_CXXFLAGS) $(MPI_CFLAGS) -iquote build/cpu -x c++ $< -x none -o $@ \
                     $(MPI_LIBS) $(LDLIBS) -lboost_context
train_dpo_simt: $(TRAIN_DPO_SIMT_DEPS)
	$(TRAIN_DPO_SIMT_CXX) $(PRECISION_FLAGS)
train_dpo_simt_fp32: $(TRAIN_DPO_SIMT_DEPS)
	$(TRAIN_DPO_SIMT_CXX) -DENABLE_FP32
test_dpo: build/cpu/test_dpo.cu $(TRAIN_DPO_SIMT_DEPS) dev/test_util.h
	$(TRAIN_DPO_SIMT_CXX)
test_dpo_fp32: build/cpu/test_dpo.cu $(TRAIN_DPO_SIMT_DEPS) dev/test_util.h
	$(TRAIN_DPO_SIMT_CXX) -DENABLE_FP32
ALL_BINS += train_dpo_simt_fp32
TEST_BINS += test_dpo_fp32 test_dpo test_train_dpo.sh
test_train_dpo.sh: train_dpo_simt_fp32 train_dpo_cpu

# both sources in the nvcc compile check (dev/simt/test_nvcc_build); test_dpo.cu includes train_dpo.cu
SIMT_NVCC_STATUS += build/nvcc/train_dpo.status build/nvcc/test_dpo.status
dev/simt/test_nvcc_build: build/nvcc/train_dpo.status build/nvcc/test_dpo.status
build/nvcc/train_dpo.status build/nvcc/test_dpo.status: $(TRAIN_HEADERS)
build/nvcc/test_dpo.status: train_dpo.cu

# make run: the GPU trainer where nvidia-smi lists a GPU and it builds, else the CPU trainer
run: train_dpo_cpu
	@if nvidia-smi -L 2>/dev/null | grep -q '^GPU' && $(MAKE) --no-print-directory train_dpo; then \
	  echo "make run: a GPU is present: ./train_dpo"; ./train_dpo; \
	else \
	  echo "make run: no GPU (nvidia-smi -L lists none) or train_dpo did not build: ./train_dpo_cpu"; ./train_dpo_cpu; \
	fi
