# dev: build fragment included by the top-level Makefile.

# CPU step benchmark (GPT-2 124M, B=4 T=64): not a test; run dev/bench_cpu.sh
ALL_BINS += dev/bench_cpu_step
dev/bench_cpu_step: dev/bench_cpu_step.cpp $(MODEL_HEADERS) common/train_config.h common/launch.h cpu/adamw.h kernels/adamw_math.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(BLAS_LIBS) $(LDLIBS)

# Benchmarks (not tests): prefix sharing vs baseline on HH-RLHF, and the 124M step vs llm.c.
.PHONY: bench-cpu bench-cpu-step
bench-cpu: train_dpo_cpu data/prepare_dpo
	./dev/bench_cpu.sh
bench-cpu-step: dev/bench_cpu_step
	./dev/bench_cpu_step.sh
TEST_BINS += dev/test_plot.sh

# Prefix sharing on and off, same model and pairs: loss difference, time ratio, plots (not a test).
.PHONY: compare
compare: train_dpo_cpu data/prepare_dpo
	./dev/compare_layouts.sh

# The dataloader's micro-batches as text (dev/bench_torch_dpo.py --self-test compares its Python
# packer with them; dev/test_bench.sh).
ALL_BINS += dev/dump_batches
dev/dump_batches: dev/dump_batches.cpp data/dataloader.h data/batch.h data/pairfile.h data/pairs.h common/flags.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)
TEST_BINS += dev/test_bench.sh
