# common/: the CPU reference model, the DPO loss and the CPU trainer's shared host code.
MODEL_HEADERS = common/gpt2.h common/dpo.h common/model_config.h common/rng.h data/batch.h \
                kernels/gelu.cuh kernels/dpo_loss.cuh kernels/host_device.h

TEST_BINS += common/test_model
common/test_model: common/test_model.cpp $(MODEL_HEADERS) data/pairs.h dev/test_util.h
	$(CXX) $(CXXFLAGS) -o $@ $< $(BLAS_LIBS) $(LDLIBS)
