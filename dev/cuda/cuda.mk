# dev/cuda: build fragment included by the top-level Makefile before dev/simt/simt.mk (which
# supplies the rules: each kernel test is built for the CPU emulation, under ASan, and checked
# with nvcc).
#   dev/cuda/<layer>          one program per kernel layer, named by its stem (kernels/<layer>.cuh):
#                             no argument runs its checks against a CPU reference (in make test);
#                             `./dev/cuda/<layer> N` benchmarks kernel version N on a GPU
#   dev/cuda/probes/probe_*   instruction probes, CPU build; dev/gpu_check.sh runs the GPU build
#   dev/cuda/probes/probe_compare   compares a probe's GPU output with its CPU output
#   make probe-outputs        runs the CPU probes into build/probes-cpu/ (for dev/gpu_check.sh)

SIMT_KERNEL_TESTS += dev/cuda/reduce dev/cuda/softmax dev/cuda/layernorm dev/cuda/matmul_tile
# GPU trainer layers (issue 11): each also built all-fp32 (floatX = float, -DENABLE_FP32) as X_fp32
SIMT_KERNEL_TESTS += dev/cuda/attention dev/cuda/logprob dev/cuda/matmul dev/cuda/gelu
SIMT_KERNEL_TESTS_FP32 += dev/cuda/attention dev/cuda/logprob dev/cuda/matmul dev/cuda/gelu
SIMT_KERNEL_TESTS += dev/cuda/encoder dev/cuda/adamw dev/cuda/dpo_loss
SIMT_KERNEL_TESTS_FP32 += dev/cuda/encoder dev/cuda/layernorm dev/cuda/adamw dev/cuda/dpo_loss
# their references (cpu/) are prerequisites of every build of them
GPU_LAYER_F_TESTS := dev/cuda/encoder dev/cuda/layernorm dev/cuda/adamw dev/cuda/dpo_loss
$(foreach t,$(GPU_LAYER_F_TESTS),$(t) $(t)_asan $(t)_fp32 build/nvcc/$(t).status build/nvcc/$(t).fp32.status): \
    cpu/encoder.h cpu/layernorm.h cpu/adamw.h cpu/dpo_loss.h cpu/parallel.h common/metrics.h \
    common/model_config.h data/batch.h dev/cuda/expect_exit.h

CUDA_PROBES := dev/cuda/probes/probe_mma dev/cuda/probes/probe_ldmatrix dev/cuda/probes/probe_bf16 \
               dev/cuda/probes/probe_wgmma
SIMT_PROGRAMS += $(CUDA_PROBES)
SIMT_NVCC_STATUS += $(patsubst %,build/nvcc/%.status,$(CUDA_PROBES))
# the wgmma probe runs the cases of the wgmma test; it is also compiled for sm_90a (dev/simt/simt.mk)
SIMT_NVCC_SM90A += dev/cuda/probes/probe_wgmma
dev/cuda/probes/probe_wgmma build/nvcc/dev/cuda/probes/probe_wgmma.status: dev/simt/wgmma_cases.h
# attention's version 4 uses wgmma: attention.cu is compiled for sm_90a too
SIMT_NVCC_SM90A += dev/cuda/attention
build/nvcc/dev/cuda/attention.sm90a.status: dev/cuda/attention_plan.h

dev/cuda/probes/probe_compare: dev/cuda/probes/probe_compare.cpp
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)
ALL_BINS += dev/cuda/probes/probe_compare

.PHONY: probe-outputs
probe-outputs: $(CUDA_PROBES)
	@mkdir -p build/probes-cpu
	@for p in $(CUDA_PROBES); do ./$$p > build/probes-cpu/$$(basename $$p).txt || exit 1; done
	@echo "wrote build/probes-cpu/: $(notdir $(CUDA_PROBES))"

# attention's benchmark suite: its host side (dev/cuda/attention_plan.h, used by dev/cuda/attention)
# tested alone, and the PyTorch comparison's script tested without torch (dev/cuda/test_attention_bench.sh)
ATTENTION_PLAN_HEADERS := dev/cuda/attention_plan.h kernels/attention_mask.h data/dataloader.h data/batch.h data/pairs.h
dev/cuda/attention dev/cuda/attention_asan dev/cuda/attention_fp32 build/nvcc/dev/cuda/attention.status \
    build/nvcc/dev/cuda/attention.fp32.status: dev/cuda/attention_plan.h
dev/cuda/test_attention_plan: dev/cuda/test_attention_plan.cpp $(ATTENTION_PLAN_HEADERS) dev/test_util.h dev/cuda/expect_exit.h
	$(CXX) $(CXXFLAGS) $< -o $@ $(LDLIBS)
TEST_BINS += dev/cuda/test_attention_plan dev/cuda/test_attention_bench.sh
