/*
 * cuda_host.h — the CUDA built-ins a kernel file uses, re-expressed for the host, so that
 * the real source of a kernel (a kernel file of cuda/, turned into a host translation unit by
 * gen_host.cmake) compiles with g++ and runs on the CPU in test_attention_host.
 *
 * Model (runtime.cpp): a block runs as blockDim.x fibers on the launching thread, blocks one
 * after another; one CUDA thread runs at a time, in a fixed order (rr_host_set_order), and
 * control passes only at __syncthreads (a block barrier), __syncwarp, shuffles and
 * rr_host_warp_exchange (warp collectives) and at exit, so a missing barrier reads stale
 * shared memory on every run. __shared__ becomes `static`, which is right because only one
 * block runs at a time (shared memory is NOT cleared between blocks, as on the device).
 * What is not modelled is refused rather than given
 * made-up semantics: partial warp masks abort, and built-ins not declared here (atomics,
 * other intrinsics) fail to compile. The vector types, fp16/bf16 and their host conversions
 * come from the toolkit headers; no device code and no libcudart are involved.
 */
#ifndef RR_TEST_CUDA_HOST_H
#define RR_TEST_CUDA_HOST_H

/* Kernel headers that wrap device-only instructions in inline PTX (cuda/mma.cuh) test this
 * and call the host stand-ins of host/ instead (mma_sync.h). */
#define RR_CUDA_HOST_EMULATION 1

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>

#include <stdio.h>
#include <stdlib.h>

#include <functional>
#include <tuple>

/* Host g++ already sees __device__/__global__ as empty (crt/host_defines.h); these two have
 * device meaning that must become host meaning. */
#undef __shared__
#define __shared__ static
#undef __launch_bounds__
#define __launch_bounds__(...)

/* Per-thread indices, set by the runtime whenever it switches threads. */
extern thread_local uint3 rr_host_thread_idx, rr_host_block_idx;
extern thread_local dim3 rr_host_block_dim, rr_host_grid_dim;
#define threadIdx rr_host_thread_idx
#define blockIdx rr_host_block_idx
#define blockDim rr_host_block_dim
#define gridDim rr_host_grid_dim

void __syncthreads();
/* Only the full mask is modelled (the kernels use nothing else); others abort. */
void __syncwarp(unsigned mask = 0xffffffffu);
float __shfl_sync(unsigned mask, float v, int src_lane, int width = 32);
float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width = 32);
unsigned __shfl_sync(unsigned mask, unsigned v, int src_lane, int width = 32);
unsigned __shfl_xor_sync(unsigned mask, unsigned v, int lane_mask, int width = 32);
int __shfl_sync(unsigned mask, int v, int src_lane, int width = 32);
int __shfl_xor_sync(unsigned mask, int v, int lane_mask, int width = 32);

/* Warp-collective exchange for stand-ins of warp-wide instructions (mma.sync, ldmatrix):
 * every lane of the calling warp contributes `bytes` bytes at `mine` and receives all 32
 * contributions, lane-major, at `all` (32·bytes). It synchronizes the warp's execution as
 * the instruction does (all lanes must call it, convergence is checked like a shuffle) and
 * is not a memory fence for anything else. bytes ≤ 256. */
void rr_host_warp_exchange(const void *mine, size_t bytes, void *all);

/* Run order of the threads of a block between synchronization points: at each one the
 * ready thread that comes first runs. Bit 0: lanes of a warp from 31 down to 0; bit 1: warps
 * from the last down to the first. A test runs its cases under ASCENDING and DESCENDING, so a
 * read of data that a lower or a higher thread writes without a barrier is caught either
 * way. Default: the RR_HOST_ORDER environment variable (asc, desc or 0…3), else ascending.
 * C linkage so that C tests linked against rr_cuda_host can declare and call it. */
enum {
    RR_HOST_ORDER_ASCENDING = 0,
    RR_HOST_ORDER_LANES_DESC = 1,
    RR_HOST_ORDER_WARPS_DESC = 2,
    RR_HOST_ORDER_DESCENDING = 3
};
extern "C" void rr_host_set_order(unsigned order);
extern "C" unsigned rr_host_get_order(void);

/* Device intrinsics that are not in the host math library; common.cuh names rsqrtf in a
 * template, so it must at least be declared. */
inline float rsqrtf(float x)
{
    return 1.0f / sqrtf(x);
}

/* Runs `block` for every block of `grid` as `threads` fibers, now; records a launch
 * error (returned by cudaGetLastError, defined in runtime.cpp) instead of running when the
 * configuration would not launch on a device. */
void rr_host_run_grid(dim3 grid, unsigned threads, size_t dyn_smem,
                      const std::function<void()> &block);

/* Validates a launch configuration as a device launch would: false, with the error recorded
 * for cudaGetLastError, when it would not launch. */
bool rr_host_launch_ok(dim3 grid, unsigned threads, size_t dyn_smem);

/* Where a launch goes: by default it runs at once (the host has no queue). A fake CUDA
 * runtime (streams, graph capture) installs a hook that queues or records the work instead;
 * the work owns copies of the kernel's parameters, so it may run later, as a captured
 * graph node does. */
typedef void (*rr_host_submit_hook)(cudaStream_t stream, std::function<void()> work);
extern rr_host_submit_hook rr_host_submit_via;
inline void rr_host_submit(cudaStream_t stream, std::function<void()> work)
{
    if (rr_host_submit_via)
        rr_host_submit_via(stream, std::move(work));
    else
        work();
}

/* Stand-in for `kernel<<<grid, threads, smem, stream>>>(args...)`, which gen_host.cmake
 * rewrites into `kernel * rr_host_config(grid, threads, smem, stream)(args...)`: the call
 * collects references to the arguments (alive until the end of the launch statement), and
 * operator* converts them to the kernel's parameter types once, as a launch copies them,
 * then runs the grid. Block and grid may be dim3 or integers, as with <<< >>>; only 1-D
 * blocks are modelled (rr_host_run_grid refuses others). */
struct rr_host_config_t {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
};

template <typename... A> struct rr_host_call {
    rr_host_config_t cfg;
    std::tuple<A &&...> args;
};

struct rr_host_config {
    rr_host_config_t cfg;
    rr_host_config(dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = 0)
        : cfg{grid, block, smem, stream}
    {
    }
    template <typename... A> rr_host_call<A...> operator()(A &&...args) const
    {
        return {cfg, std::forward_as_tuple(std::forward<A>(args)...)};
    }
};

template <typename... P, typename... A>
void operator*(void (*kernel)(P...), rr_host_call<A...> &&call)
{
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with a wrong argument count");
    if (call.cfg.block.y != 1 || call.cfg.block.z != 1) {
        fprintf(stderr, "host launch: only 1-D blocks are modelled\n");
        abort();
    }
    auto params = std::apply([](A &&...a) { return std::tuple<P...>(static_cast<P>(a)...); },
                             std::move(call.args));
    if (!rr_host_launch_ok(call.cfg.grid, call.cfg.block.x, call.cfg.smem)) return;
    const rr_host_config_t c = call.cfg;
    rr_host_submit(c.stream, [kernel, params, c] {
        rr_host_run_grid(c.grid, c.block.x, c.smem, [&] { std::apply(kernel, params); });
    });
}

#endif /* RR_TEST_CUDA_HOST_H */
