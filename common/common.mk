# common/: the CPU reference model, the DPO loss and the CPU trainer's shared host code.
MODEL_HEADERS = cpu/gpt2.h cpu/dpo.h cpu/dpo_loss.h cpu/encoder.h cpu/layernorm.h cpu/matmul.h cpu/attention.h \
                cpu/gelu.h cpu/residual.h cpu/logprob.h cpu/parallel.h common/metrics.h \
                common/model_config.h common/model_init.h common/rng.h data/batch.h kernels/attention_mask.h \
                kernels/gelu_math.h kernels/dpo_loss_math.h kernels/host_device.h

TEST_BINS += common/test_model
common/test_model: common/test_model.cpp $(MODEL_HEADERS) data/pairs.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(BLAS_LIBS) $(LDLIBS)

# the threaded random init against the sequential loop (-pthread: std::thread)
TEST_BINS += common/test_model_init
common/test_model_init: common/test_model_init.cpp common/model_init.h common/model_config.h common/rng.h common/hash.h \
                        dev/test_util.h
	$(CXX) $(CXXFLAGS) -pthread -o $@ $< $(LDLIBS)

TRAIN_HEADERS = $(MODEL_HEADERS) common/train_config.h common/launch.h common/train_log.h common/trainer.h common/train_loop.h common/checkpoint.h \
                common/demo_task.h common/progress.h cpu/exact_match.h \
                common/ref_cache.h common/hash.h common/atomic_file.h common/flags.h common/model_io.h common/safetensors.h cpu/sample.h cpu/sample_command.h cpu/adamw.h \
                data/dataloader.h data/pairfile.h data/pairs.h kernels/adamw_math.h tokenizer/gpt2_tokenizer.h \
                tokenizer/unicode_tables.h

# The trainer links Open MPI (data parallelism under mpirun; without mpirun it never calls MPI).
MPI_CFLAGS = $(shell mpicc --showme:compile) -DOMPI_SKIP_MPICXX  # the C API only
MPI_LIBS   = $(shell mpicc --showme:link)
DIST_HEADERS = common/distributed.h cpu/mpi_comm.h cpu/data_parallel.h

ALL_BINS += train_dpo_cpu
train_dpo_cpu: train_dpo_cpu.cpp $(TRAIN_HEADERS) $(DIST_HEADERS)
	$(CXX) $(CXXFLAGS) $(MPI_CFLAGS) -o $@ $< $(BLAS_LIBS) $(MPI_LIBS) $(LDLIBS)

# The bundled synthetic task (data/synthetic/*.bin are committed; this remakes them).
data/make_synthetic: data/make_synthetic.cpp data/pairfile.h data/pairs.h common/atomic_file.h common/hash.h common/rng.h
	$(CXX) $(CXXFLAGS) -o $@ $<
synthetic: data/make_synthetic
	./data/make_synthetic data/synthetic
.PHONY: synthetic

TEST_BINS += common/test_trainer.sh

TEST_BINS += common/test_progress
common/test_progress: common/test_progress.cpp common/progress.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)

# data parallelism: the shard and step-sum arithmetic, then train_dpo_cpu under mpirun with 1, 2
# and 3 processes
TEST_BINS += common/test_distributed common/test_data_parallel.sh
common/test_distributed: common/test_distributed.cpp common/distributed.h common/metrics.h common/model_config.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)

# who am I (flags, launcher environments) and the rendezvous: file: and tcp: with 2 and 3 forked
# processes, timeouts, stale files; mpi under mpirun; train_dpo_cpu refusing rank flags without it
TEST_BINS += common/test_launch
common/test_launch: common/test_launch.cpp common/launch.h common/atomic_file.h common/flags.h common/train_config.h \
                    common/model_config.h kernels/dpo_loss_math.h dev/test_util.h | train_dpo_cpu
	$(CXX) $(CXXFLAGS) $(MPI_CFLAGS) -DDIST_WITH_MPI -o $@ $< $(MPI_LIBS) $(LDLIBS)

TEST_BINS += cpu/test_cpu_layers
cpu/test_cpu_layers: cpu/test_cpu_layers.cpp $(MODEL_HEADERS) cpu/adamw.h kernels/adamw_math.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(BLAS_LIBS) $(LDLIBS)

TEST_BINS += common/test_atomic_file common/test_checkpoint
common/test_checkpoint: common/test_checkpoint.cpp common/checkpoint.h common/atomic_file.h common/distributed.h \
                        common/hash.h common/model_config.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)
common/test_atomic_file: common/test_atomic_file.cpp common/atomic_file.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)

# the flag parser, then every tool given bad flags (so it runs the tools)
TEST_BINS += common/test_flags
common/test_flags: common/test_flags.cpp common/flags.h common/train_config.h common/launch.h common/model_config.h \
                   kernels/dpo_loss_math.h dev/test_util.h | train_dpo_cpu data/prepare_dpo
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)

# each common/ header compiles alone with g++ and nvcc and reaches no BLAS, OpenMP or CUDA header
TEST_BINS += common/test_headers.sh

# ---- interop: Hugging Face / llm.c checkpoint I/O and sampling; see common/INTEROP.md.
MODEL_IO_HEADERS = common/model_io.h common/safetensors.h common/json_read.h common/model_config.h common/atomic_file.h

TEST_BINS += common/test_model_io

common/test_model_io: common/test_model_io.cpp $(MODEL_IO_HEADERS) dev/test_util.h common/tools/tiny_gpt2.py
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)

SAMPLE_HEADERS = cpu/sample.h common/model_config.h common/rng.h kernels/gelu_math.h kernels/host_device.h
TEST_BINS += common/test_sample

common/test_sample: common/test_sample.cpp $(SAMPLE_HEADERS) $(MODEL_HEADERS) dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(BLAS_LIBS) $(LDLIBS)
