/*
 * runtime.cpp — the host execution model behind cuda_host.h and the wmma stand-in: a block
 * runs as blockDim.x fibers (one per CUDA thread) on the launching host thread, exactly one
 * at a time, in a fixed order, switching only at synchronization points.
 *
 * Why a deterministic scheduler (and not concurrent threads, the model before): the kernels'
 * correctness depends on which shared-memory values are visible at which barrier. With real
 * threads racing, a missing barrier shows only by luck of timing, and a shuffle implemented
 * as a full warp barrier hid, for example, a deleted __syncwarp() before attention's P·V.
 * Here a thread runs until it reaches a synchronization point; only then does another run,
 * so a thread that reads shared memory another thread of the same segment writes sees the
 * stale value every time. Running the block once with lanes and warps ascending and once
 * descending (rr_host_set_order) catches reads of a lower and of a higher thread's data.
 *
 * Scheduling rule: at every synchronization point the ready thread that comes first in the
 * order runs. Switch points: __syncthreads, __syncwarp, shuffles, rr_host_warp_exchange and
 * the thread's exit. A wmma op is not one (on the device it does not synchronize memory).
 *   - __syncthreads completes when every thread of the block that has not exited arrived;
 *   - a warp collective (__syncwarp, shuffle, exchange) completes when every lane of the
 *     warp that has not exited arrived at the same kind of collective; a shuffle delivers
 *     the posted values then, so every lane posts before any lane reads (the convergence
 *     the device guarantees). It gives no other ordering: whatever a lane wrote to shared
 *     memory after the collective is invisible to the lanes that ran earlier;
 *   - an exited thread leaves every barrier (the device no longer waits for it); reading a
 *     shuffle value from an exited lane aborts (the value is undefined on the device);
 *   - a barrier that can never complete (threads waiting while nothing is ready) aborts at
 *     once with the block, each warp and what its lanes wait at, instead of hanging.
 * Memory model consequence: execution between switch points is sequentially consistent, so
 * a shuffle orders shared memory accesses that lie on both sides of it (it happens to, here;
 * on the device only __syncwarp/__syncthreads do). A barrier whose only job is to order
 * accesses already separated by a shuffle is therefore not needed by this model.
 *
 * Why fibers rather than threads handing a token around: a switch costs nanoseconds instead
 * of a kernel wake-up, which on a loaded CI machine may wait a whole time slice; and a
 * single host thread makes the run reproducible by construction. On x86-64 a switch is the
 * ten instructions of rr_host_fiber_switch below (callee-saved registers, MXCSR and the x87
 * control word, then the stack pointer: ~25 ns); elsewhere it is ucontext's swapcontext,
 * whose signal-mask system call made it ~330 ns, a third of the CPU time of the
 * shuffle-heavy head kernel's test.
 * Fibers are created once per host thread that launches (up to 1024, 256 KiB of reserved
 * stack each, a guard page below) and parked between blocks. ASan and TSan are told about
 * every switch (the sanitizer fiber API), so the sanitizer builds run these tests too.
 *
 * Other checks made here (each a contract of the device that the host could otherwise miss):
 *   - launch configuration (grid and block limits) → cudaErrorInvalidConfiguration from
 *     cudaGetLastError, as a device launch would;
 *   - every lane of a warp performed the same sequence of wmma operations (same pointer and
 *     ldm) by each completed warp collective and block barrier and by the end of the block;
 *     a mismatch means a collective op ran under divergence, and aborts with the warp named;
 *   - shuffles and __syncwarp with a partial mask, shuffle widths other than 32, and lanes
 *     of one warp meeting at different kinds of collective abort: they are not modelled.
 */
#include "cuda_host.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define RR_HOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RR_HOST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define RR_HOST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RR_HOST_TSAN 1
#endif
#endif
#ifdef RR_HOST_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RR_HOST_TSAN
#include <sanitizer/tsan_interface.h>
#endif

thread_local uint3 rr_host_thread_idx, rr_host_block_idx;
thread_local dim3 rr_host_block_dim, rr_host_grid_dim;

namespace
{

constexpr unsigned kWarp = 32;
constexpr unsigned kMaxThreads = 1024;
constexpr size_t kExchange = 256;     /* bytes per lane of rr_host_warp_exchange */
constexpr size_t kStack = 256 * 1024; /* per fiber; attention needs ~12 KiB (more under ASan) */
constexpr size_t kGuard = 64 * 1024;  /* PROT_NONE below each stack: overflow faults */
constexpr unsigned kNoWarpSlot = ~0u;

enum class Wait : uint8_t { none, block, warp, exited };
enum class Coll : uint8_t { none, syncwarp, shuffle, exchange };

const char *coll_name(Coll c)
{
    switch (c) {
    case Coll::syncwarp:
        return "__syncwarp";
    case Coll::shuffle:
        return "a shuffle";
    case Coll::exchange:
        return "rr_host_warp_exchange";
    default:
        return "nothing";
    }
}

/* A parked fiber: where its execution resumes. */
#if defined(__x86_64__) && !defined(RR_HOST_UCONTEXT)
struct Ctx {
    void *sp = nullptr; /* its saved registers lie on its own stack, below sp */
};
#else
struct Ctx {
    ucontext_t uc{};
};
#endif

/* One CUDA thread: its fiber and what it waits at. */
struct Lane {
    Ctx ctx;
    unsigned char *stack = nullptr; /* lowest usable byte (above the guard) */
    void *fake_stack = nullptr;     /* ASan's fake stack of this fiber while it is parked */
    void *tsan_fiber = nullptr;
    uint64_t sig = 0; /* running hash of this lane's wmma operations */
    Wait wait = Wait::none;
    Coll coll = Coll::none;
    uint32_t val = 0, res = 0; /* shuffle: posted bits, delivered bits */
    unsigned src = 0;          /* shuffle: lane read */
    size_t bytes = 0;          /* exchange: contribution size */
    unsigned char mine[kExchange]{};
    void *all = nullptr; /* exchange: where the 32 contributions go */
};

struct WarpState {
    unsigned live = 0, arrived = 0;
    Coll coll = Coll::none;
    size_t bytes = 0;
};

struct Sched;
void lane_main(int t);

#if defined(__x86_64__) && !defined(RR_HOST_UCONTEXT)
/* rr_host_fiber_switch(&from->sp, to->sp): saves the System V callee-saved state on the
 * current stack, stores the stack pointer in *from, loads `to` and restores the same state
 * from there. A new fiber's stack is built by ctx_init so that the first switch to it
 * "returns" into rr_host_fiber_start, which calls entry(arg) from r13/r12. */
extern "C" void rr_host_fiber_switch(void **from, void *to);
extern "C" void rr_host_fiber_start();
asm(R"(
    .text
    .p2align 4
    .globl rr_host_fiber_switch
    .hidden rr_host_fiber_switch
    .type rr_host_fiber_switch, @function
rr_host_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw (%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    fldcw (%rsp)
    ldmxcsr 8(%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size rr_host_fiber_switch, .-rr_host_fiber_switch
    .globl rr_host_fiber_start
    .hidden rr_host_fiber_start
    .type rr_host_fiber_start, @function
rr_host_fiber_start:
    movq %r12, %rdi
    andq $-16, %rsp
    callq *%r13
    ud2
    .size rr_host_fiber_start, .-rr_host_fiber_start
)");

void ctx_init(Ctx &c, unsigned char *stack, size_t size, void (*entry)(int), int arg)
{
    uint64_t *sp = (uint64_t *)(stack + size);
    *--sp = (uint64_t)(uintptr_t)rr_host_fiber_start; /* return address of the first switch */
    *--sp = 0;                                        /* rbp */
    *--sp = 0;                                        /* rbx */
    *--sp = (uint64_t)(unsigned)arg;                  /* r12 */
    *--sp = (uint64_t)(uintptr_t)entry;               /* r13 */
    *--sp = 0;                                        /* r14 */
    *--sp = 0;                                        /* r15 */
    sp -= 2;                                          /* x87 control word, MXCSR */
    uint16_t cw;
    uint32_t mxcsr;
    asm volatile("fnstcw %0" : "=m"(cw));
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    memcpy(sp, &cw, sizeof cw);
    memcpy((unsigned char *)sp + 8, &mxcsr, sizeof mxcsr);
    c.sp = sp;
}

inline void ctx_switch(Ctx &from, const Ctx &to)
{
    rr_host_fiber_switch(&from.sp, to.sp);
}
#else
/* Out of line: g++ 12 reports a false "may be used uninitialized" when getcontext (a
 * returns_twice function) is inlined into a function that builds a unique_ptr. */
[[gnu::noinline]] void ctx_init(Ctx &c, unsigned char *stack, size_t size, void (*entry)(int),
                                int arg)
{
    if (getcontext(&c.uc) != 0) {
        perror("host runtime: getcontext");
        abort();
    }
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, (void (*)())entry, 1, arg);
}

inline void ctx_switch(Ctx &from, const Ctx &to)
{
    swapcontext(&from.uc, &to.uc);
}
#endif

/* The fibers of one host thread and the state of the block they run. */
struct Sched {
    Sched()
    {
#ifdef RR_HOST_TSAN
        main_tsan = __tsan_get_current_fiber();
#endif
    }

    ~Sched()
    {
        for (auto &l : lanes) {
#ifdef RR_HOST_TSAN
            if (l->tsan_fiber) __tsan_destroy_fiber(l->tsan_fiber);
#endif
            munmap(l->stack - kGuard, kGuard + kStack);
        }
    }

    /* Fibers 0 … n-1 exist (created on first use, then parked at their loop's exit). */
    void ensure(unsigned count)
    {
        while (lanes.size() < count) {
            const int t = (int)lanes.size();
            auto l = std::make_unique<Lane>();
            void *m = mmap(nullptr, kGuard + kStack, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
            if (m == MAP_FAILED || mprotect(m, kGuard, PROT_NONE) != 0) {
                perror("host runtime: fiber stack");
                abort();
            }
            l->stack = (unsigned char *)m + kGuard;
            ctx_init(l->ctx, l->stack, kStack, lane_main, t);
#ifdef RR_HOST_TSAN
            l->tsan_fiber = __tsan_create_fiber(0);
#endif
            l->wait = Wait::exited; /* parked until a block wakes it */
            lanes.push_back(std::move(l));
        }
    }

    /* Position p of the run order ↔ thread index. */
    unsigned thread_at(unsigned p) const
    {
        const unsigned w = p / kWarp, l = p % kWarp, nw = n / kWarp;
        return ((order & 2) ? nw - 1 - w : w) * kWarp + ((order & 1) ? kWarp - 1 - l : l);
    }
    unsigned pos_of(unsigned t) const
    {
        return thread_at(t); /* the map is its own inverse */
    }

    void set_ready(unsigned t)
    {
        const unsigned p = pos_of(t);
        ready[p / 64] |= 1ull << (p % 64);
    }
    void clear_ready(unsigned t)
    {
        const unsigned p = pos_of(t);
        ready[p / 64] &= ~(1ull << (p % 64));
    }
    /* The first ready thread in the run order, or kNoWarpSlot. */
    unsigned first_ready() const
    {
        for (unsigned i = 0; i < (n + 63) / 64; i++)
            if (ready[i]) return thread_at(i * 64 + (unsigned)__builtin_ctzll(ready[i]));
        return kNoWarpSlot;
    }

    void check_warp(unsigned w) const
    {
        for (unsigned l = 1; l < kWarp; l++) {
            if (lanes[w * kWarp + l]->sig != lanes[w * kWarp]->sig) {
                fprintf(stderr,
                        "block (%u, %u) warp %u: lane %u and lane 0 performed different wmma "
                        "operations (a collective op under divergence)\n",
                        block.x, block.y, w, l);
                abort();
            }
        }
    }

    [[noreturn]] void deadlock() const
    {
        fprintf(stderr,
                "host runtime: block (%u, %u) can never finish: no thread can run, but not all "
                "have exited (a barrier some threads skipped?)\n",
                block.x, block.y);
        for (unsigned w = 0; w < n / kWarp; w++) {
            unsigned in_block = 0, in_warp = 0, gone = 0;
            for (unsigned l = 0; l < kWarp; l++) {
                const Wait s = lanes[w * kWarp + l]->wait;
                in_block += s == Wait::block;
                in_warp += s == Wait::warp;
                gone += s == Wait::exited;
            }
            fprintf(stderr, "  warp %u: %u lanes at __syncthreads, %u at %s, %u exited\n", w,
                    in_block, in_warp, coll_name(warps[w].coll), gone);
        }
        abort();
    }

    std::vector<std::unique_ptr<Lane>> lanes; /* pointers: a parked context must not move */
    std::vector<WarpState> warps;
    uint64_t ready[kMaxThreads / 64] = {};
    unsigned n = 0, order = 0, live = 0, at_block = 0, cur = 0;
    uint3 block = make_uint3(0, 0, 0);
    const std::function<void()> *job = nullptr;
    Ctx main_ctx;
    void *main_fake = nullptr, *main_tsan = nullptr;
    const void *main_bottom = nullptr;
    size_t main_size = 0;
    bool from_main = false;
};

thread_local std::unique_ptr<Sched> the_sched;
std::mutex launch_mutex; /* __shared__ is static: one grid at a time in the process */
cudaError_t last_error = cudaSuccess;
unsigned run_order = ~0u; /* ~0: not chosen yet (RR_HOST_ORDER or ascending) */

Sched &sched()
{
    return *the_sched;
}

/* After a switch lands in lane `t`: finish the sanitizer's switch and publish the index. */
void landed(Sched &s, unsigned t)
{
#ifdef RR_HOST_ASAN
    const void *bottom = nullptr;
    size_t size = 0;
    __sanitizer_finish_switch_fiber(s.lanes[t]->fake_stack, &bottom, &size);
    if (s.from_main) s.main_bottom = bottom, s.main_size = size;
#endif
    s.from_main = false;
    s.cur = t;
    rr_host_thread_idx = make_uint3(t, 0, 0);
}

/* Switches from the running lane to lane `to`, or to the launching context when to ==
 * kNoWarpSlot; returns when the running lane is resumed. */
void switch_from_lane(Sched &s, unsigned to)
{
    Lane &me = *s.lanes[s.cur];
    const unsigned self = s.cur;
    if (to == kNoWarpSlot) {
#ifdef RR_HOST_ASAN
        __sanitizer_start_switch_fiber(&me.fake_stack, s.main_bottom, s.main_size);
#endif
#ifdef RR_HOST_TSAN
        __tsan_switch_to_fiber(s.main_tsan, 0);
#endif
        ctx_switch(me.ctx, s.main_ctx);
    } else {
        Lane &next = *s.lanes[to];
#ifdef RR_HOST_ASAN
        __sanitizer_start_switch_fiber(&me.fake_stack, next.stack, kStack);
#endif
#ifdef RR_HOST_TSAN
        __tsan_switch_to_fiber(next.tsan_fiber, 0);
#endif
        ctx_switch(me.ctx, next.ctx);
    }
    landed(s, self);
}

/* The running lane has arrived somewhere (or completed something): run whichever thread
 * comes first in the order, which may be the running lane itself. */
void reschedule(Sched &s)
{
    const unsigned next = s.first_ready();
    if (next == s.cur) return;
    if (next == kNoWarpSlot) {
        if (s.live != 0) s.deadlock();
        switch_from_lane(s, kNoWarpSlot); /* block done; resumed by the next block */
        return;
    }
    switch_from_lane(s, next);
}

void complete_block_barrier(Sched &s)
{
    for (unsigned t = 0; t < s.n; t++) {
        Lane &l = *s.lanes[t];
        if (l.wait == Wait::block) l.wait = Wait::none, s.set_ready(t);
    }
    s.at_block = 0;
    for (unsigned w = 0; w < s.n / kWarp; w++)
        s.check_warp(w);
}

void complete_warp(Sched &s, unsigned w)
{
    WarpState &ws = s.warps[w];
    const std::unique_ptr<Lane> *wl = &s.lanes[w * kWarp];
    for (unsigned l = 0; l < kWarp; l++) {
        Lane &x = *wl[l];
        if (x.wait != Wait::warp) continue;
        if (ws.coll == Coll::shuffle) {
            const Lane &from = *wl[x.src];
            if (from.wait != Wait::warp) {
                fprintf(stderr,
                        "block (%u, %u) warp %u: lane %u shuffles from lane %u, which has exited "
                        "(undefined on the device)\n",
                        s.block.x, s.block.y, w, l, x.src);
                abort();
            }
            x.res = from.val;
        } else if (ws.coll == Coll::exchange) {
            for (unsigned k = 0; k < kWarp; k++) {
                if (wl[k]->wait != Wait::warp) {
                    fprintf(stderr,
                            "block (%u, %u) warp %u: rr_host_warp_exchange with lane %u exited\n",
                            s.block.x, s.block.y, w, k);
                    abort();
                }
                memcpy((unsigned char *)x.all + k * ws.bytes, wl[k]->mine, ws.bytes);
            }
        }
    }
    for (unsigned l = 0; l < kWarp; l++) {
        Lane &x = *wl[l];
        if (x.wait == Wait::warp) x.wait = Wait::none, s.set_ready(w * kWarp + l);
    }
    ws.arrived = 0;
    ws.coll = Coll::none;
    s.check_warp(w);
}

/* Completes whatever the lanes still running no longer wait for (after an exit). */
void complete_after_exit(Sched &s, unsigned w)
{
    if (s.at_block != 0 && s.at_block == s.live) complete_block_barrier(s);
    if (s.warps[w].arrived != 0 && s.warps[w].arrived == s.warps[w].live) complete_warp(s, w);
}

void arrive_block()
{
    Sched &s = sched();
    const unsigned t = s.cur;
    s.lanes[t]->wait = Wait::block;
    s.clear_ready(t);
    if (++s.at_block == s.live) complete_block_barrier(s);
    reschedule(s);
}

/* The calling lane joins the warp collective `c`; returns when it has completed. */
void arrive_warp(Coll c, size_t bytes)
{
    Sched &s = sched();
    const unsigned t = s.cur, w = t / kWarp;
    WarpState &ws = s.warps[w];
    if (ws.arrived == 0) {
        ws.coll = c;
        ws.bytes = bytes;
    } else if (ws.coll != c || ws.bytes != bytes) {
        fprintf(stderr,
                "block (%u, %u) warp %u: lane %u reached %s while other lanes wait at %s "
                "(diverged collectives are not modelled)\n",
                s.block.x, s.block.y, w, t % kWarp, coll_name(c), coll_name(ws.coll));
        abort();
    }
    s.lanes[t]->wait = Wait::warp;
    s.clear_ready(t);
    if (++ws.arrived == ws.live) complete_warp(s, w);
    reschedule(s);
}

void lane_exit(Sched &s)
{
    const unsigned t = s.cur, w = t / kWarp;
    s.lanes[t]->wait = Wait::exited;
    s.clear_ready(t);
    s.live--;
    s.warps[w].live--;
    complete_after_exit(s, w);
    reschedule(s);
}

/* A fiber's whole life: run the block's kernel body, exit, wait to be woken for the next
 * block. The Sched is re-read after every switch (it is thread_local, and stays put). */
void lane_main(int t)
{
    landed(sched(), (unsigned)t);
    for (;;) {
        (*sched().job)();
        lane_exit(sched());
    }
}

void run_block(Sched &s)
{
    s.live = s.n;
    s.at_block = 0;
    for (auto &w : s.warps)
        w = WarpState{kWarp, 0, Coll::none, 0};
    memset(s.ready, 0, sizeof s.ready);
    for (unsigned t = 0; t < s.n; t++) {
        Lane &l = *s.lanes[t];
        l.wait = Wait::none;
        l.sig = 0;
        s.set_ready(t);
    }
    const unsigned first = s.first_ready();
    Lane &l = *s.lanes[first];
    s.from_main = true;
#ifdef RR_HOST_ASAN
    __sanitizer_start_switch_fiber(&s.main_fake, l.stack, kStack);
#endif
#ifdef RR_HOST_TSAN
    __tsan_switch_to_fiber(l.tsan_fiber, 0);
#endif
    ctx_switch(s.main_ctx, l.ctx);
#ifdef RR_HOST_ASAN
    __sanitizer_finish_switch_fiber(s.main_fake, nullptr, nullptr);
#endif
    for (unsigned w = 0; w < s.n / kWarp; w++)
        s.check_warp(w);
}

void require_full_mask(const char *what, unsigned mask)
{
    if (mask != 0xffffffffu) {
        fprintf(stderr, "%s: partial mask 0x%08x is not modelled by the host runtime\n", what,
                mask);
        abort();
    }
}

uint32_t shuffle(uint32_t v, unsigned src)
{
    Lane &me = *sched().lanes[sched().cur];
    me.val = v;
    me.src = src % kWarp;
    arrive_warp(Coll::shuffle, 0);
    return me.res;
}

unsigned order_from_env()
{
    const char *e = getenv("RR_HOST_ORDER");
    if (!e || !*e || !strcmp(e, "asc")) return RR_HOST_ORDER_ASCENDING;
    if (!strcmp(e, "desc")) return RR_HOST_ORDER_DESCENDING;
    const unsigned v = (unsigned)strtoul(e, nullptr, 10);
    if (v > 3) {
        fprintf(stderr, "RR_HOST_ORDER=%s: asc, desc or 0…3\n", e);
        abort();
    }
    return v;
}

} // namespace

rr_host_submit_hook rr_host_submit_via = nullptr;

extern "C" void rr_host_set_order(unsigned order)
{
    if (order > 3) {
        fprintf(stderr, "rr_host_set_order(%u): 0…3\n", order);
        abort();
    }
    std::lock_guard<std::mutex> lock(launch_mutex);
    run_order = order;
}

extern "C" unsigned rr_host_get_order(void)
{
    std::lock_guard<std::mutex> lock(launch_mutex);
    if (run_order == ~0u) run_order = order_from_env();
    return run_order;
}

bool rr_host_launch_ok(dim3 grid, unsigned threads, size_t dyn_smem)
{
    (void)dyn_smem;
    if (grid.x < 1 || grid.x > 0x7fffffffu || grid.y < 1 || grid.y > 65535 || grid.z != 1 ||
        threads < 1 || threads > kMaxThreads) {
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
    std::lock_guard<std::mutex> lock(launch_mutex);
    if (run_order == ~0u) run_order = order_from_env();
    if (!the_sched) the_sched = std::make_unique<Sched>();
    Sched &s = *the_sched;
    s.ensure(threads);
    s.n = threads;
    s.order = run_order;
    s.job = &block;
    s.warps.assign(threads / kWarp, WarpState{});
    rr_host_block_dim = dim3(threads, 1, 1);
    rr_host_grid_dim = grid;
    for (unsigned by = 0; by < grid.y; by++) {
        for (unsigned bx = 0; bx < grid.x; bx++) {
            s.block = make_uint3(bx, by, 0);
            rr_host_block_idx = s.block;
            run_block(s);
        }
    }
    s.job = nullptr;
}

extern "C" cudaError_t cudaGetLastError(void)
{
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

void __syncthreads()
{
    arrive_block();
}

void __syncwarp(unsigned mask)
{
    require_full_mask("__syncwarp", mask);
    arrive_warp(Coll::syncwarp, 0);
}

/* Shuffles of every 32-bit type move the bits (memcpy, no arithmetic, so every pattern, NaN
 * payloads included, arrives unchanged). */
template <typename V> static V shuffle_as(V v, unsigned src)
{
    static_assert(sizeof(V) == sizeof(uint32_t), "32-bit shuffles only");
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    b = shuffle(b, src);
    memcpy(&v, &b, sizeof v);
    return v;
}

#define RR_HOST_SHUFFLES(V)                                                                        \
    V __shfl_sync(unsigned mask, V v, int src_lane, int width)                                     \
    {                                                                                              \
        require_full_mask("__shfl_sync", mask);                                                    \
        if (width != 32) abort();                                                                  \
        return shuffle_as(v, (unsigned)src_lane);                                                  \
    }                                                                                              \
    V __shfl_xor_sync(unsigned mask, V v, int lane_mask, int width)                                \
    {                                                                                              \
        require_full_mask("__shfl_xor_sync", mask);                                                \
        if (width != 32) abort();                                                                  \
        return shuffle_as(v, (rr_host_thread_idx.x % kWarp) ^ (unsigned)lane_mask);                \
    }
RR_HOST_SHUFFLES(float)
RR_HOST_SHUFFLES(unsigned)
RR_HOST_SHUFFLES(int)

void rr_host_warp_exchange(const void *mine, size_t bytes, void *all)
{
    if (bytes > kExchange || bytes % 4 != 0) {
        fprintf(stderr, "rr_host_warp_exchange: %zu bytes (at most %zu, whole words)\n", bytes,
                kExchange);
        abort();
    }
    Lane &me = *sched().lanes[sched().cur];
    memcpy(me.mine, mine, bytes);
    me.all = all;
    arrive_warp(Coll::exchange, bytes);
}

int rr_host_lane()
{
    return (int)(rr_host_thread_idx.x % kWarp);
}

void rr_host_wmma_op(int kind, const void *p, unsigned ldm, int layout)
{
    uint64_t &s = sched().lanes[sched().cur]->sig;
    uint64_t h = (uint64_t)kind * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)p;
    h ^= ((uint64_t)ldm << 40) ^ ((uint64_t)layout << 60);
    s = (s ^ h) * 0x100000001b3ull + 0x632be59bd9b4e019ull;
}
