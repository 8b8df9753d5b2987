/*
 * mma_sync.h — host stand-ins for the warp-wide instructions of cuda/mma.cuh (mma.sync
 * m16n8k16 with fp32 accumulators, ldmatrix .x4 / .x4.trans), used when a kernel file is
 * compiled as host C++ (RR_CUDA_HOST_EMULATION, cuda_host.h). Implemented in mma_sync.cpp
 * from the PTX ISA's fragment layouts, on top of rr_host_warp_exchange only, so they keep
 * working whatever the runtime's thread scheduling is.
 *
 * Both are collective: every lane of the warp must call the same one (checked: lanes that
 * call different stand-ins at the same exchange abort with the warp named). Each lane gets
 * back only its own fragment, as on the device.
 */
#ifndef RR_TEST_HOST_MMA_SYNC_H
#define RR_TEST_HOST_MMA_SYNC_H

#include <stdint.h>

/* n mma.sync m16n8k16 sharing A: d[4i … 4i+3] += a · b[2i … 2i+1] for i < n ≤ 8, with the
 * fp16 (bf16 = false) or bf16 products exact in fp32 and summed in fp32 in k order after the
 * accumulator. One exchange for all n (they are independent instructions). */
void rr_host_mma_16816_n(float *d, const uint32_t a[4], const uint32_t *b, int n, bool bf16);

/* n ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: load i uses this lane's row address
 * `row` + i·stride bytes (each must be 16-byte aligned, else abort) and fills r[4i … 4i+3];
 * memory is read when the instructions execute. */
void rr_host_ldmatrix_x4_n(uint32_t *r, const void *row, int stride, int n, bool trans);

#endif /* RR_TEST_HOST_MMA_SYNC_H */
