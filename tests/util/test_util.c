/*
 * test_util.c — the request path's building blocks in src/util: the arena (alignment,
 * growth, reuse without allocation after a reset, the retain cap, allocation failure), the
 * metrics histograms (bucket edges inclusive as Prometheus wants, cumulative reads, sums in
 * the reported unit, concurrent observers losing nothing), and rr_cpu_count: the cgroup quota
 * reader on fixture folders (v2 and v1 layouts, parents tighter than children, no quota,
 * missing files, garbage), then the real thing in a child process pinned by taskset.
 *
 * `test_util --print-cpus` prints rr_cpu_count() and exits: the mode the taskset check runs.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "util/arena.h"
#include "util/hist.h"
#include "util/util.h"

static void test_arena(void)
{
    rr_arena a;
    rr_arena_init(&a, 1 << 20);
    /* A message-like pattern: many small strings and a few larger arrays. */
    long before = rr_alloc_count();
    char *p[2000];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(i % 97) + 1;
        p[i] = rr_arena_alloc(&a, n);
        CHECK(p[i] != NULL && ((uintptr_t)p[i] & 15) == 0);
        memset(p[i], i & 0xff, n);
    }
    for (int i = 0; i < 2000; i++)
        CHECK((unsigned char)p[i][0] == (i & 0xff)); /* no overlap */
    long grew = rr_alloc_count() - before;
    CHECK_MSG(grew > 0 && grew < 10, "%ld chunk allocations for 2000 strings", grew);
    size_t held = rr_arena_held(&a);

    /* The same shape again after a reset: no allocation at all. */
    for (int round = 0; round < 3; round++) {
        rr_arena_reset(&a);
        before = rr_alloc_count();
        for (int i = 0; i < 2000; i++)
            CHECK(rr_arena_alloc(&a, (size_t)(i % 97) + 1) != NULL);
        CHECK_MSG(rr_alloc_count() == before, "round %d allocated %ld times", round,
                  rr_alloc_count() - before);
        CHECK(rr_arena_held(&a) == held);
    }

    /* A large allocation gets a chunk of its own size; zero bytes is a valid pointer. */
    void *big = rr_arena_alloc(&a, 3 << 20);
    CHECK(big != NULL);
    memset(big, 1, 3 << 20);
    CHECK(rr_arena_alloc(&a, 0) != NULL);
    /* The retain cap (1 MiB) drops chunks beyond it on reset. */
    rr_arena_reset(&a);
    CHECK_MSG(rr_arena_held(&a) <= (1 << 20), "%zu bytes held after reset", rr_arena_held(&a));

    /* Allocation failure: NULL, and the arena stays usable. */
    rr_arena_free(&a);
    rr_alloc_fail_after(0);
    CHECK(rr_arena_alloc(&a, 16) == NULL);
    rr_alloc_fail_after(-1);
    CHECK(rr_arena_alloc(&a, 16) != NULL);
    rr_arena_free(&a);
    CHECK(rr_arena_held(&a) == 0);
}

static rr_hist shared;

static void *observer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        rr_hist_observe(&shared, (uint64_t)(i % 3) * 1000000); /* 0, 1, 2 ms */
    return NULL;
}

static void test_hist(void)
{
    rr_hist h;
    rr_hist_init(&h, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    rr_hist_observe(&h, 1000000);         /* exactly 1 ms: in le="0.001" (inclusive) */
    rr_hist_observe(&h, 1000001);         /* just over: le="0.0025" */
    rr_hist_observe(&h, 0);               /* the first bucket */
    rr_hist_observe(&h, (uint64_t)120e9); /* 120 s: +Inf only */
    rr_hist_snap s;
    rr_hist_read(&h, &s);
    int i1 = -1, i25 = -1;
    for (int i = 0; i < h.n; i++) {
        if (h.le[i] == 0.001) i1 = i;
        if (h.le[i] == 0.0025) i25 = i;
    }
    CHECK(i1 >= 0 && i25 == i1 + 1);
    CHECK(s.cum[0] == 1);
    CHECK_MSG(s.cum[i1] == 2 && s.cum[i25] == 3, "cum %llu %llu", (unsigned long long)s.cum[i1],
              (unsigned long long)s.cum[i25]);
    CHECK(s.cum[h.n - 1] == 3 && s.cum[h.n] == 4);
    CHECK(fabs(s.sum - (0.002000001 + 120.0)) < 1e-6);
    for (int i = 1; i <= h.n; i++)
        CHECK(s.cum[i] >= s.cum[i - 1]);

    /* Sizes: scale 1, edges exact integers. */
    rr_hist z;
    rr_hist_init(&z, rr_hist_sizes, rr_hist_sizes_n, 1);
    rr_hist_observe(&z, 16384);
    rr_hist_observe(&z, 16385);
    rr_hist_read(&z, &s);
    int i16k = -1;
    for (int i = 0; i < z.n; i++)
        if (z.le[i] == 16384) i16k = i;
    CHECK_MSG(i16k >= 0, "rr_hist_sizes has no 16384 edge");
    if (i16k >= 0)
        CHECK_MSG(s.cum[i16k] == 1 && s.cum[i16k + 1] == 2, "cum %llu %llu",
                  (unsigned long long)s.cum[i16k], (unsigned long long)s.cum[i16k + 1]);

    /* Four threads, 400,000 observations: none lost. */
    rr_hist_init(&shared, rr_hist_seconds, rr_hist_seconds_n, 1e-9);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, observer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    rr_hist_read(&shared, &s);
    CHECK_MSG(s.cum[shared.n] == 400000, "%llu observations", (unsigned long long)s.cum[shared.n]);
    CHECK(fabs(s.sum - 4 * (33333 * 0.001 + 33333 * 0.002)) < 1e-6);
}

static char cg_root[64];

/* Writes `text` to <cg_root>/<rel>, creating the folders on the way. */
static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", cg_root, rel);
    for (char *p = path + strlen(cg_root) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Empties the fixture folder between cases. */
static void reset_root(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", cg_root);
    CHECK(system(cmd) == 0);
}

static void expect_quota(const char *what, const char *proc_cgroup, int want)
{
    char pc[128];
    snprintf(pc, sizeof pc, "%s/proc_self_cgroup", cg_root);
    if (proc_cgroup) put("proc_self_cgroup", proc_cgroup);
    int got = rr_cpu_quota_at(pc, cg_root);
    CHECK_MSG(got == want, "%s: %d CPUs, want %d", what, got, want);
}

static void test_cpu_quota(void)
{
    snprintf(cg_root, sizeof cg_root, "/tmp/rr_cpusXXXXXX");
    CHECK(mkdtemp(cg_root) != NULL);

    /* cgroup v2: the process's own cgroup sets the quota; rounded up. */
    put("kubepods/pod1/c1/cpu.max", "150000 100000\n");
    expect_quota("v2 1.5 CPUs", "0::/kubepods/pod1/c1\n", 2);
    put("kubepods/pod1/c1/cpu.max", "200000 100000\n");
    expect_quota("v2 2 CPUs", NULL, 2);
    put("kubepods/pod1/c1/cpu.max", "1000 100000\n");
    expect_quota("v2 0.01 CPU", NULL, 1);
    put("kubepods/pod1/c1/cpu.max", "max 100000\n");
    expect_quota("v2 max", NULL, 0);
    /* A parent's quota binds its children: the smallest over the path wins, wherever it is. */
    put("kubepods/pod1/cpu.max", "300000 100000\n");
    expect_quota("v2 parent 3, child max", NULL, 3);
    put("kubepods/pod1/c1/cpu.max", "400000 100000\n");
    put("kubepods/pod1/cpu.max", "100000 100000\n");
    put("kubepods/cpu.max", "max 100000\n");
    expect_quota("v2 parent 1 < child 4", NULL, 1);
    put("kubepods/pod1/c1/cpu.max", "250000 100000\n");
    put("kubepods/pod1/cpu.max", "800000 100000\n");
    put("cpu.max", "500000 100000\n");
    expect_quota("v2 child 3 < parent 8 > root 5", NULL, 3);
    put("kubepods/pod1/c1/cpu.max", "max 100000\n");
    expect_quota("v2 quota only at the hierarchy's root", NULL, 5);
    expect_quota("v2 root cgroup \"/\"", "0::/\n", 5);
    char pc[128], slash[80];
    snprintf(pc, sizeof pc, "%s/proc_self_cgroup", cg_root);
    snprintf(slash, sizeof slash, "%s//", cg_root);
    CHECK_MSG(rr_cpu_quota_at(pc, slash) == 5, "root with trailing slashes");
    reset_root();

    /* cgroup v1: under the cpu controller's mount, named as /proc/self/cgroup lists it. */
    const char *v1 = "12:pids:/docker/abc\n"
                     "4:cpu,cpuacct:/docker/abc\n"
                     "3:cpuset:/docker/abc\n"
                     "1:name=systemd:/docker/abc\n"
                     "0::/docker/abc\n";
    put("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
    put("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    expect_quota("v1 2.5 CPUs", v1, 3);
    put("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    expect_quota("v1 -1", NULL, 0);
    put("cpu,cpuacct/docker/cpu.cfs_quota_us", "100000\n");
    put("cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
    expect_quota("v1 parent 1, child -1", NULL, 1);
    reset_root();
    /* A container without a cgroup namespace: its path is the host's, absent under its
     * mount, whose root is the container's cgroup. */
    put("cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
    put("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    expect_quota("v1 host path, quota at the mount", v1, 1);
    reset_root();
    /* Controllers listed in another order, mounted at <root>/cpu (and <root>/cpuacct). */
    put("cpu/a/cpu.cfs_quota_us", "400000\n");
    put("cpu/a/cpu.cfs_period_us", "100000\n");
    expect_quota("v1 cpuacct,cpu at <root>/cpu", "3:cpuacct,cpu:/a\n", 4);
    expect_quota("v1 plain cpu line", "2:cpuacct:/\n1:cpu:/a\n", 4);
    /* cpuacct and cpuset are not cpu; a v2 line beside a v1 cpu line is not consulted. */
    put("cpuacct/a/cpu.cfs_quota_us", "100000\n");
    put("cpuacct/a/cpu.cfs_period_us", "100000\n");
    expect_quota("v1 cpuacct only", "2:cpuacct:/a\n3:cpuset:/a\n", 0);
    put("a/cpu.max", "100000 100000\n");
    expect_quota("hybrid: v1 cpu wins over v2", "1:cpu:/a\n0::/a", 4);
    reset_root();

    /* Missing files and garbage: no quota, never a crash or a made-up number. */
    expect_quota("no /proc/self/cgroup", NULL, 0);
    expect_quota("v2 cgroup folder missing", "0::/nowhere\n", 0);
    expect_quota("v1 mount missing", "4:cpu,cpuacct:/nowhere\n", 0);
    put("cpu/a/cpu.cfs_quota_us", "100000\n");
    expect_quota("v1 period missing", "4:cpu:/a\n", 0);
    expect_quota("empty /proc/self/cgroup", "", 0);
    expect_quota("garbage /proc/self/cgroup", "hello world\n::\n0:\n7\n", 0);
    static const char *const bad[] = {"",
                                      "garbage\n",
                                      "100000\n",
                                      "100000 0\n",
                                      "-5 100000\n",
                                      "100000 100000 7\n",
                                      "1e5 1e5\n",
                                      "100000x 100000\n",
                                      " 100000 100000\n",
                                      "99999999999999999999 100000\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put("g/cpu.max", bad[i]);
        expect_quota(bad[i], "0::/g\n", 0);
    }
    put("g/cpu.max", "100000 100000");
    expect_quota("v2 without the final newline", NULL, 1);
    expect_quota("/proc/self/cgroup without the final newline", "0::/g", 1);
    static const char *const bad1[] = {"", "max\n", "-1\n", "0\n", "12 34\n", "abc\n"};
    for (size_t i = 0; i < sizeof bad1 / sizeof bad1[0]; i++) {
        put("cpu/v/cpu.cfs_quota_us", bad1[i]);
        put("cpu/v/cpu.cfs_period_us", "100000\n");
        expect_quota(bad1[i], "5:cpu:/v\n", 0);
    }

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cg_root);
    CHECK(system(cmd) == 0);
    printf("cgroup quota: v2, v1, parents, missing files and garbage\n");
}

/* rr_cpu_count() of this executable run as `taskset -c <cpus> <exe> --print-cpus`; -1 when
 * it did not run. */
static int cpus_under_taskset(const char *exe, const char *cpus)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "taskset -c %s '%s' --print-cpus", cpus, exe);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (!p) return -1;
    if (fscanf(p, "%d", &n) != 1) n = -1;
    if (pclose(p) != 0) n = -1;
    return n;
}

static void test_cpu_count(void)
{
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    int allowed = CPU_COUNT(&set), n = rr_cpu_count();
    int quota = rr_cpu_quota_at("/proc/self/cgroup", "/sys/fs/cgroup");
    int want = quota > 0 && quota < allowed ? quota : allowed;
    CHECK_MSG(n == want, "rr_cpu_count %d: affinity %d, quota %d", n, allowed, quota);

    if (system("command -v taskset > /dev/null 2>&1") != 0) {
        printf("rr_cpu_count: %d; taskset absent: skipped that part\n", n);
        return;
    }
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(k > 0);
    if (k <= 0) return;
    exe[k] = 0;
    /* The first two CPUs this process may use (CPU 0 unless the test itself is pinned). */
    int first[2] = {-1, -1};
    for (int c = 0, m = 0; c < CPU_SETSIZE && m < 2; c++)
        if (CPU_ISSET(c, &set)) first[m++] = c;
    char one[16], two[32];
    snprintf(one, sizeof one, "%d", first[0]);
    int got1 = cpus_under_taskset(exe, one);
    CHECK_MSG(got1 == 1, "under taskset -c %s: rr_cpu_count %d", one, got1);
    int got2 = -2;
    if (first[1] >= 0) {
        snprintf(two, sizeof two, "%d,%d", first[0], first[1]);
        got2 = cpus_under_taskset(exe, two);
        int want2 = quota > 0 && quota < 2 ? quota : 2;
        CHECK_MSG(got2 == want2, "under taskset -c %s: rr_cpu_count %d, want %d", two, got2, want2);
    }
    printf("rr_cpu_count: %d here (affinity %d, quota %d); %d under taskset -c %s", n, allowed,
           quota, got1, one);
    if (first[1] >= 0) printf(", %d under taskset -c %s", got2, two);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-cpus") == 0) {
        printf("%d\n", rr_cpu_count());
        return 0;
    }
    test_arena();
    test_hist();
    test_cpu_quota();
    test_cpu_count();
    return test_summary("test_util");
}
