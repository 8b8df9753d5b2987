/*
 * fake_cuda.h — what the host fakes of the CUDA runtime (fake_cudart.cpp) and of cuBLAS /
 * cuBLASLt (fake_cublas.cpp) share: the device-allocation registry and the stream queues.
 * Internal to tests/cuda/host; the code under test sees only the toolkit's own headers.
 */
#ifndef RR_TEST_FAKE_CUDA_H
#define RR_TEST_FAKE_CUDA_H

#include <cuda_runtime_api.h>

#include <stddef.h>

#include <functional>

/* Aborts with a message naming `what` unless [p, p + bytes) lies inside one live
 * cudaMalloc allocation (bytes 0: p must still point into one, or be NULL). */
void rr_fake_require_device(const void *p, size_t bytes, const char *what);

/* Puts `work` on `stream` as the runtime would: recorded into the graph when the stream
 * captures, else queued behind the stream's earlier work (run at the next synchronization
 * that covers it). Returns cudaErrorInvalidResourceHandle for a stream that does not
 * exist. */
cudaError_t rr_fake_enqueue(cudaStream_t stream, std::function<void()> work);

#endif /* RR_TEST_FAKE_CUDA_H */
