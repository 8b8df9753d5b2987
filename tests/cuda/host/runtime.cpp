/*
 * runtime.cpp — the host execution model behind cuda_host.h and the wmma stand-in: a
 * persistent pool of worker threads runs a grid block by block, one worker per CUDA thread,
 * with real barriers for __syncthreads/__syncwarp and shuffles through a warp buffer.
 *
 * Why threads (and not a loop over thread indices): the kernels' correctness depends on
 * which values are visible at which barrier; separate threads that block on real barriers
 * reproduce that, including the failure modes (a missing barrier reads stale shared memory,
 * a barrier skipped by some threads hangs or trips a check). The pool is created once and
 * reused for every block and launch: creating 128 threads per block costs more than the
 * kernel itself.
 *
 * Checks made here (each a contract of the device that the host could otherwise miss):
 *   - launch configuration (grid and block limits) → cudaErrorInvalidConfiguration from
 *     cudaGetLastError, as a device launch would;
 *   - every lane of a warp performed the same sequence of wmma operations (same pointer
 *     and ldm) by each warp and block barrier and by the end of the block; a mismatch means
 *     a collective op ran under divergence, and aborts with the warp named;
 *   - shuffles and __syncwarp with a partial mask, or shuffle widths other than 32, abort:
 *     they are not modelled.
 * A thread that returns from the kernel leaves its barriers (arrive_and_drop), so threads
 * still running are not held by it, as on the device where exited threads no longer count.
 */
#include "cuda_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <barrier>
#include <memory>
#include <thread>
#include <vector>

thread_local uint3 rr_host_thread_idx, rr_host_block_idx;
thread_local dim3 rr_host_block_dim, rr_host_grid_dim;

namespace
{

constexpr unsigned kWarp = 32;
constexpr size_t kExchange = 256; /* bytes per lane of rr_host_warp_exchange */

struct Pool;

/* Barrier completions: run once per phase, by the last thread to arrive, while every other
 * participant is still blocked; the right place to compare the lanes' op signatures. */
struct WarpDone {
    Pool *p;
    unsigned warp;
    void operator()() noexcept;
};
struct BlockDone {
    Pool *p;
    void operator()() noexcept;
};
struct BlockEnd {
    Pool *p;
    void operator()() noexcept;
};

struct Pool {
    explicit Pool(unsigned threads)
        : n(threads), sig(threads), xch(2 * threads), xbytes(2 * threads * kExchange),
          start(threads + 1), done(threads + 1), end(threads, BlockEnd{this})
    {
        make_block_barriers();
        for (unsigned t = 0; t < n; t++)
            workers.emplace_back([this, t] { work(t); });
    }

    ~Pool()
    {
        quit = true;
        start.arrive_and_wait();
        for (auto &w : workers)
            w.join();
    }

    void make_block_barriers()
    {
        sync = std::make_unique<std::barrier<BlockDone>>(n, BlockDone{this});
        warps.clear();
        for (unsigned w = 0; w < n / kWarp; w++)
            warps.push_back(std::make_unique<std::barrier<WarpDone>>(kWarp, WarpDone{this, w}));
    }

    void check_warp(unsigned w) const
    {
        for (unsigned l = 1; l < kWarp; l++) {
            if (sig[w * kWarp + l] != sig[w * kWarp]) {
                fprintf(stderr,
                        "block (%u, %u) warp %u: lane %u and lane 0 performed different wmma "
                        "operations (a collective op under divergence)\n",
                        grid_block.x, grid_block.y, w, l);
                abort();
            }
        }
    }

    void work(unsigned t)
    {
        const unsigned w = t / kWarp;
        rr_host_thread_idx = make_uint3(t, 0, 0);
        for (;;) {
            start.arrive_and_wait();
            if (quit) return;
            rr_host_block_dim = dim3(n, 1, 1);
            rr_host_grid_dim = grid;
            for (unsigned by = 0; by < grid.y; by++) {
                for (unsigned bx = 0; bx < grid.x; bx++) {
                    rr_host_block_idx = make_uint3(bx, by, 0);
                    parity = 0;
                    (*job)();
                    sync->arrive_and_drop();
                    warps[w]->arrive_and_drop();
                    end.arrive_and_wait();
                }
            }
            done.arrive_and_wait();
        }
    }

    void run(dim3 g, const std::function<void()> &block)
    {
        grid = g;
        job = &block;
        grid_block = make_uint3(0, 0, 0);
        start.arrive_and_wait();
        done.arrive_and_wait();
    }

    const unsigned n;
    std::vector<uint64_t> sig;         /* per thread: running hash of its wmma operations */
    std::vector<float> xch;            /* shuffle exchange, double-buffered per thread */
    std::vector<unsigned char> xbytes; /* rr_host_warp_exchange, double-buffered */
    std::barrier<> start, done;
    std::barrier<BlockEnd> end;
    std::unique_ptr<std::barrier<BlockDone>> sync;
    std::vector<std::unique_ptr<std::barrier<WarpDone>>> warps;
    std::vector<std::thread> workers;
    dim3 grid;
    uint3 grid_block; /* block being run, for messages (advanced by BlockEnd) */
    const std::function<void()> *job = nullptr;
    bool quit = false;
    static thread_local unsigned parity; /* which half of xch this lane's next shuffle uses */
};

thread_local unsigned Pool::parity;

void WarpDone::operator()() noexcept
{
    p->check_warp(warp);
}

void BlockDone::operator()() noexcept
{
    for (unsigned w = 0; w < p->n / kWarp; w++)
        p->check_warp(w);
}

/* All threads have left the kernel: check, then start the next block from clean barriers
 * (the drops of exited threads only apply to the block they exited). */
void BlockEnd::operator()() noexcept
{
    for (unsigned w = 0; w < p->n / kWarp; w++)
        p->check_warp(w);
    for (auto &s : p->sig)
        s = 0;
    p->make_block_barriers();
    if (++p->grid_block.x == p->grid.x) p->grid_block.x = 0, p->grid_block.y++;
}

std::unique_ptr<Pool> the_pool;
cudaError_t last_error = cudaSuccess;

Pool &pool(unsigned threads)
{
    if (!the_pool || the_pool->n != threads) {
        the_pool.reset();
        the_pool = std::make_unique<Pool>(threads);
    }
    return *the_pool;
}

Pool &current()
{
    return *the_pool;
}

void require_full_mask(const char *what, unsigned mask)
{
    if (mask != 0xffffffffu) {
        fprintf(stderr, "%s: partial mask 0x%08x is not modelled by the host runtime\n", what,
                mask);
        abort();
    }
}

float shuffle(float v, unsigned src)
{
    Pool &p = current();
    const unsigned t = rr_host_thread_idx.x, w = t / kWarp;
    /* Two buffers used alternately: a lane can only write a buffer again after the barrier
     * of the next shuffle, which every lane reaches after reading this one. */
    float *buf = &p.xch[(size_t)Pool::parity * p.n];
    Pool::parity ^= 1;
    buf[t] = v;
    p.warps[w]->arrive_and_wait();
    return buf[w * kWarp + src % kWarp];
}

} // namespace

rr_host_submit_hook rr_host_submit_via = nullptr;

bool rr_host_launch_ok(dim3 grid, unsigned threads, size_t dyn_smem)
{
    (void)dyn_smem;
    if (grid.x < 1 || grid.x > 0x7fffffffu || grid.y < 1 || grid.y > 65535 || grid.z != 1 ||
        threads < 1 || threads > 1024) {
        last_error = cudaErrorInvalidConfiguration;
        return false;
    }
    return true;
}

void rr_host_run_grid(dim3 grid, unsigned threads, size_t dyn_smem,
                      const std::function<void()> &block)
{
    if (!rr_host_launch_ok(grid, threads, dyn_smem)) return;
    if (threads % kWarp != 0 || dyn_smem != 0) {
        fprintf(stderr,
                "host launch: %u threads, %zu B dynamic shared memory: only whole "
                "warps and static shared memory are modelled\n",
                threads, dyn_smem);
        abort();
    }
    pool(threads).run(grid, block);
}

extern "C" cudaError_t cudaGetLastError(void)
{
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

void __syncthreads()
{
    current().sync->arrive_and_wait();
}

void __syncwarp(unsigned mask)
{
    require_full_mask("__syncwarp", mask);
    current().warps[rr_host_thread_idx.x / kWarp]->arrive_and_wait();
}

float __shfl_sync(unsigned mask, float v, int src_lane, int width)
{
    require_full_mask("__shfl_sync", mask);
    if (width != 32) abort();
    return shuffle(v, (unsigned)src_lane);
}

float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width)
{
    require_full_mask("__shfl_xor_sync", mask);
    if (width != 32) abort();
    return shuffle(v, (rr_host_thread_idx.x % kWarp) ^ (unsigned)lane_mask);
}

/* Shuffles of other 32-bit types move the bits through the float exchange (memcpy, no
 * arithmetic, so every pattern, NaN payloads included, arrives unchanged). */
template <typename V> static V shuffle_bits(V v, unsigned src)
{
    static_assert(sizeof(V) == sizeof(float), "32-bit shuffles only");
    float f;
    memcpy(&f, &v, sizeof f);
    f = shuffle(f, src);
    memcpy(&v, &f, sizeof v);
    return v;
}

unsigned __shfl_sync(unsigned mask, unsigned v, int src_lane, int width)
{
    require_full_mask("__shfl_sync", mask);
    if (width != 32) abort();
    return shuffle_bits(v, (unsigned)src_lane);
}

unsigned __shfl_xor_sync(unsigned mask, unsigned v, int lane_mask, int width)
{
    require_full_mask("__shfl_xor_sync", mask);
    if (width != 32) abort();
    return shuffle_bits(v, (rr_host_thread_idx.x % kWarp) ^ (unsigned)lane_mask);
}

int __shfl_sync(unsigned mask, int v, int src_lane, int width)
{
    require_full_mask("__shfl_sync", mask);
    if (width != 32) abort();
    return shuffle_bits(v, (unsigned)src_lane);
}

int __shfl_xor_sync(unsigned mask, int v, int lane_mask, int width)
{
    require_full_mask("__shfl_xor_sync", mask);
    if (width != 32) abort();
    return shuffle_bits(v, (rr_host_thread_idx.x % kWarp) ^ (unsigned)lane_mask);
}

void rr_host_warp_exchange(const void *mine, size_t bytes, void *all)
{
    if (bytes > kExchange || bytes % 4 != 0) {
        fprintf(stderr, "rr_host_warp_exchange: %zu bytes (at most %zu, whole words)\n", bytes,
                kExchange);
        abort();
    }
    Pool &p = current();
    const unsigned t = rr_host_thread_idx.x, w = t / kWarp;
    /* Double-buffered like the shuffles (same parity, same argument). */
    unsigned char *buf = &p.xbytes[((size_t)Pool::parity * p.n) * kExchange];
    Pool::parity ^= 1;
    memcpy(buf + (size_t)t * kExchange, mine, bytes);
    p.warps[w]->arrive_and_wait();
    for (unsigned l = 0; l < kWarp; l++)
        memcpy((unsigned char *)all + l * bytes, buf + (size_t)(w * kWarp + l) * kExchange, bytes);
}

int rr_host_lane()
{
    return (int)(rr_host_thread_idx.x % kWarp);
}

void rr_host_wmma_op(int kind, const void *p, unsigned ldm, int layout)
{
    uint64_t &s = current().sig[rr_host_thread_idx.x];
    uint64_t h = (uint64_t)kind * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)p;
    h ^= ((uint64_t)ldm << 40) ^ ((uint64_t)layout << 60);
    s = (s ^ h) * 0x100000001b3ull + 0x632be59bd9b4e019ull;
}
