/*
 * test_host_runtime.cpp — the contract of the host block runtime (runtime.cpp) that the
 * kernel tests rely on, checked on small blocks written as lambdas:
 *   - threads run one at a time in the chosen order and switch only at synchronization
 *     points, so a read of another thread's shared-memory write without a barrier is stale
 *     on every run (lower threads' data in one order, higher threads' in the other);
 *   - __syncwarp and __syncthreads make earlier writes visible; a shuffle delivers every
 *     lane's value but does not make writes after it visible to lanes that ran before;
 *   - exited threads leave barriers; rr_host_warp_exchange delivers all 32 contributions;
 *   - a barrier that can never complete, a shuffle from an exited lane and lanes meeting at
 *     different collectives abort with the block and warp named (checked in a child).
 */
#include "cuda_host.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test.h"

namespace
{

const unsigned kOrders[] = {RR_HOST_ORDER_ASCENDING, RR_HOST_ORDER_LANES_DESC,
                            RR_HOST_ORDER_WARPS_DESC, RR_HOST_ORDER_DESCENDING};

void run(unsigned threads, const std::function<void()> &body, unsigned blocks = 1)
{
    rr_host_run_grid(dim3(blocks), threads, 0, body);
}

/* The order of the first segment is the order itself: thread t's turn is recorded. */
void test_order()
{
    for (unsigned o : kOrders) {
        rr_host_set_order(o);
        std::vector<unsigned> seen;
        run(64, [&] { seen.push_back(threadIdx.x); });
        std::vector<unsigned> want;
        for (unsigned p = 0; p < 64; p++) {
            const unsigned w = (o & 2) ? 1 - p / 32 : p / 32, l = (o & 1) ? 31 - p % 32 : p % 32;
            want.push_back(w * 32 + l);
        }
        CHECK_MSG(seen == want, "order %u: threads did not run in the documented order", o);
    }
}

/* Lane l writes s[l], then reads s[(l + 1) % 32] with or without __syncwarp in between. */
void test_missing_syncwarp()
{
    for (unsigned o : {RR_HOST_ORDER_ASCENDING, RR_HOST_ORDER_LANES_DESC}) {
        rr_host_set_order(o);
        for (int sync = 0; sync < 2; sync++) {
            int s[32] = {0}, got[32] = {0};
            run(32, [&] {
                const unsigned l = threadIdx.x;
                s[l] = (int)l + 1;
                if (sync) __syncwarp();
                got[l] = s[(l + 1) % 32];
            });
            int stale = 0, stale_lane = -1;
            for (int l = 0; l < 32; l++)
                if (got[l] != (l + 1) % 32 + 1) stale++, stale_lane = l;
            if (sync)
                CHECK_MSG(stale == 0, "order %u: %d lanes stale after __syncwarp", o, stale);
            else if (o == RR_HOST_ORDER_ASCENDING) /* every lane reads a later lane's slot */
                CHECK_MSG(stale == 31 && got[31] == 1, "ascending, no barrier: %d stale", stale);
            else /* only lane 31 reads a slot (0) written after it ran */
                CHECK_MSG(stale == 1 && stale_lane == 31, "descending, no barrier: %d stale",
                          stale);
        }
    }
}

/* Warp 0 writes, warp 1 reads; only __syncthreads orders them (the warps' own barriers do
 * not), whichever warp runs first. */
void test_missing_syncthreads()
{
    for (unsigned o : kOrders) {
        rr_host_set_order(o);
        for (int sync = 0; sync < 2; sync++) {
            int s[32] = {0}, got[32] = {0};
            run(64, [&] {
                const unsigned t = threadIdx.x;
                if (t < 32) s[t] = (int)t + 7;
                __syncwarp();
                if (sync) __syncthreads();
                if (t >= 32) got[t - 32] = s[t - 32];
            });
            int fresh = 0;
            for (int l = 0; l < 32; l++)
                fresh += got[l] == l + 7;
            const bool warp1_first = (o & 2) != 0;
            CHECK_MSG(fresh == (sync || !warp1_first ? 32 : 0),
                      "order %u sync %d: %d of 32 reads fresh", o, sync, fresh);
        }
    }
}

/* Shuffles deliver every lane's value; a write made after a shuffle is not visible to a
 * lane that ran earlier in the same segment. */
void test_shuffle()
{
    for (unsigned o : {RR_HOST_ORDER_ASCENDING, RR_HOST_ORDER_LANES_DESC}) {
        rr_host_set_order(o);
        float sums[32] = {0};
        int idx[32] = {0}, late[32] = {0}, s[32] = {0};
        run(32, [&] {
            const unsigned l = threadIdx.x;
            float v = (float)l;
            for (int k = 16; k > 0; k >>= 1)
                v += __shfl_xor_sync(0xffffffffu, v, k);
            sums[l] = v;
            idx[l] = __shfl_sync(0xffffffffu, (int)l * 3, (int)(31 - l));
            s[l] = 1;
            late[l] = s[l ^ 1];
        });
        int ok_sum = 0, ok_idx = 0, stale = 0;
        for (int l = 0; l < 32; l++) {
            ok_sum += sums[l] == 496.0f;
            ok_idx += idx[l] == (31 - l) * 3;
            stale += late[l] == 0;
        }
        CHECK_MSG(ok_sum == 32 && ok_idx == 32, "order %u: shuffles %d/%d right", o, ok_sum,
                  ok_idx);
        CHECK_MSG(stale == 16,
                  "order %u: %d lanes saw their pair's post-shuffle write stale "
                  "(16 expected: the first of each pair)",
                  o, stale);
    }
    rr_host_set_order(RR_HOST_ORDER_ASCENDING);
}

/* Exited threads leave barriers: warp 1 returns at once, warp 0 keeps synchronizing. Half
 * of warp 0's lanes exit before a __syncwarp that the rest still pass. */
void test_exit_leaves_barriers()
{
    int passes = 0;
    run(64, [&] {
        if (threadIdx.x >= 32) return;
        __syncthreads();
        __syncthreads();
        if (threadIdx.x >= 16) return;
        __syncwarp();
        passes++;
    });
    CHECK_MSG(passes == 16, "%d lanes passed the barriers (16 expected)", passes);
}

void test_exchange()
{
    int bad = 0;
    run(64, [&] {
        const uint32_t mine[2] = {threadIdx.x, threadIdx.x * 1000u};
        uint32_t all[64];
        rr_host_warp_exchange(mine, sizeof mine, all);
        const unsigned base = threadIdx.x / 32 * 32;
        for (unsigned l = 0; l < 32; l++)
            bad += all[2 * l] != base + l || all[2 * l + 1] != (base + l) * 1000u;
    });
    CHECK_MSG(bad == 0, "%d wrong exchange words", bad);
}

/* Runs body in a child; true when it aborted and its stderr contained every needle. */
bool aborts_with(const std::function<void()> &body, const std::vector<std::string> &needles)
{
    int fd[2];
    if (pipe(fd) != 0) return false;
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        body();
        _exit(0);
    }
    close(fd[1]);
    std::string err;
    char buf[512];
    ssize_t n;
    while ((n = read(fd[0], buf, sizeof buf)) > 0)
        err.append(buf, (size_t)n);
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    bool ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    for (const auto &s : needles)
        ok = ok && err.find(s) != std::string::npos;
    if (!ok) fprintf(stderr, "child status 0x%x, stderr:\n%s", st, err.c_str());
    return ok;
}

void test_aborts()
{
    /* Lane 0 of warp 1 goes to __syncthreads while its warp waits at __syncwarp: no thread
     * can run, the block (grid position 2) and warp 1 are named. */
    CHECK(aborts_with(
        [] {
            run(
                64,
                [] {
                    if (blockIdx.x == 2 && threadIdx.x != 32) __syncwarp();
                    __syncthreads();
                },
                3);
        },
        {"block (2, 0) can never finish", "warp 1: 1 lanes at __syncthreads, 31 at __syncwarp"}));
    /* Reading a shuffle from a lane that has exited. */
    CHECK(aborts_with(
        [] {
            run(32, [] {
                if (threadIdx.x == 5) return;
                (void)__shfl_sync(0xffffffffu, 1.0f, 5);
            });
        },
        {"block (0, 0) warp 0", "from lane 5, which has exited"}));
    /* Half a warp at a shuffle, half at __syncwarp. */
    CHECK(aborts_with(
        [] {
            run(32, [] {
                if (threadIdx.x < 16)
                    (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
                else
                    __syncwarp();
            });
        },
        {"warp 0", "while other lanes wait at"}));
}

} // namespace

int main()
{
    test_order();
    test_missing_syncwarp();
    test_missing_syncthreads();
    test_shuffle();
    rr_host_set_order(RR_HOST_ORDER_ASCENDING);
    test_exit_leaves_barriers();
    test_exchange();
    test_aborts();
    return test_summary("test_host_runtime");
}
