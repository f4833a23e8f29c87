// kernels/nccl_common.h: the one header GPU code includes to get NCCL. Under nvcc it is the real
// library (<nccl.h>; link -lnccl, the Makefile's NCCL_LIBS); under g++ it is dev/simt's stand-in
// over MPI (dev/simt/nccl_cpu.h: the calls the trainer makes, one rank per MPI process; build with
// the Makefile's MPI_CFLAGS / MPI_LIBS), so the same communication code runs in CPU tests.
//   NCCL_CHECK(call)   a call that must succeed: on failure prints file:line, the call, the result's
//                      description and ncclGetLastError's message, and exits with status 1 (the
//                      stand-in ends the whole MPI job, as a rank exiting alone would leave its
//                      peers waiting).
#pragma once
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda_common.h"

#if SIMT_CPU
#include "dev/simt/nccl_cpu.h"
#define NCCL_CHECK_EXIT(code) nccl_cpu::exit_job(code)
#else
#include <nccl.h>
#define NCCL_CHECK_EXIT(code) exit(code)
#endif

#define NCCL_CHECK(call)                                                                         \
    do {                                                                                         \
        ncclResult_t nccl_check_result_ = (call);                                                \
        if (nccl_check_result_ != ncclSuccess) {                                                 \
            fprintf(stderr, "%s:%d: NCCL error in %s: %s (%s)\n", __FILE__, __LINE__, #call,    \
                    ncclGetErrorString(nccl_check_result_), ncclGetLastError(nullptr));          \
            NCCL_CHECK_EXIT(1);                                                                  \
        }                                                                                        \
    } while (0)
