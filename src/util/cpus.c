/*
 * cpus.c — rr_cpu_count: how many CPUs this process may actually use, the default for the
 * CPU engine's threads and the tokenizer workers. In a container, sysconf(_SC_NPROCESSORS_ONLN)
 * reports the host's CPUs; a thread per host CPU under a 2-CPU quota spends its time being
 * throttled. So: the affinity mask (taskset, cpuset), capped by the CFS bandwidth quota of
 * the cgroup (docker --cpus, Kubernetes limits.cpu), the tighter of the two.
 *
 * The quota is read from files, in the two layouts:
 *   cgroup v2: /proc/self/cgroup has "0::/path"; <root>/path/cpu.max holds "max PERIOD" (no
 *              quota) or "QUOTA PERIOD" in microseconds.
 *   cgroup v1: a line "N:cpu,cpuacct:/path" (any controller list naming cpu); under the
 *              controller's mount <root>/<controller list> (or <root>/cpu), the files
 *              path/cpu.cfs_quota_us (-1: no quota) and path/cpu.cfs_period_us.
 * A quota binds every cgroup below it, so the cgroup and each of its ancestors up to the
 * hierarchy's root are read and the smallest quota wins. Walking up also covers a container
 * without a cgroup namespace, whose /proc/self/cgroup names a host path (/docker/<id>) that
 * does not exist under its own mount, where the container's cgroup is the mount's root.
 * When a v1 cpu line is present (hybrid hosts) the cpu controller lives there, not in v2.
 * Missing or unreadable files, or content that does not parse, mean "no quota at that level":
 * never fewer CPUs than the affinity allows because of a file we do not understand.
 *
 * No allocation: fixed buffers, read(2) rather than stdio. Paths longer than the buffers are
 * treated as unreadable.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096

/* Reads at most cap - 1 bytes of `path` into buf, NUL-terminated. Returns the byte count, or
 * -1 when the file cannot be opened or read; *whole is set when the file ended within them. */
static long read_small(const char *path, char *buf, size_t cap, int *whole)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    *whole = 0;
    while (n < cap - 1) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k < 0) {
            close(fd);
            return -1;
        }
        if (k == 0) {
            *whole = 1;
            break;
        }
        n += (size_t)k;
    }
    close(fd);
    buf[n] = 0;
    return (long)n;
}

/* A positive decimal integer at *s followed by the end, whitespace or nothing else; advances
 * *s past it. Returns 0 when there is none or it overflows. */
static long long parse_positive(const char **s)
{
    char *end;
    if (**s < '0' || **s > '9') return 0;
    long long v = strtoll(*s, &end, 10);
    if (v <= 0 || v == LLONG_MAX) return 0;
    if (*end && *end != ' ' && *end != '\n') return 0;
    *s = end;
    return v;
}

/* ceil(quota / period), at least 1, at most INT_MAX. */
static int quota_cpus(long long quota, long long period)
{
    long long c = quota / period + (quota % period != 0);
    if (c < 1) c = 1;
    return c > INT_MAX ? INT_MAX : (int)c;
}

/* cgroup v2: dir/cpu.max. Returns CPUs, or 0 for no quota (or no file, or garbage). */
static int quota_v2(const char *dir)
{
    char path[PATH_CAP], buf[128];
    int whole;
    if (snprintf(path, sizeof path, "%s/cpu.max", dir) >= (int)sizeof path) return 0;
    if (read_small(path, buf, sizeof buf, &whole) <= 0 || !whole) return 0;
    const char *s = buf;
    long long quota = parse_positive(&s); /* "max" leaves 0 */
    if (!quota || *s != ' ') return 0;
    s++;
    long long period = parse_positive(&s);
    if (!period || (*s && *s != '\n')) return 0;
    return quota_cpus(quota, period);
}

/* One integer file of cgroup v1 (cpu.cfs_quota_us, cpu.cfs_period_us); 0 when the file is
 * missing, holds -1 or garbage. */
static long long read_v1_number(const char *dir, const char *name)
{
    char path[PATH_CAP], buf[64];
    int whole;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    if (read_small(path, buf, sizeof buf, &whole) <= 0 || !whole) return 0;
    const char *s = buf;
    long long v = parse_positive(&s);
    return v && (!*s || *s == '\n') ? v : 0;
}

/* cgroup v1: dir/cpu.cfs_quota_us over dir/cpu.cfs_period_us; 0 for none. */
static int quota_v1(const char *dir)
{
    long long quota = read_v1_number(dir, "cpu.cfs_quota_us");
    if (!quota) return 0;
    long long period = read_v1_number(dir, "cpu.cfs_period_us");
    return period ? quota_cpus(quota, period) : 0;
}

/* The smallest quota over dir and its parents, up to and including its first base_len
 * characters (the hierarchy's mount). dir is cut down in place. 0 when none sets one. */
static int quota_walk(char *dir, size_t base_len, int v1)
{
    int best = 0;
    size_t n = strlen(dir);
    while (n > base_len && dir[n - 1] == '/')
        dir[--n] = 0;
    for (;;) {
        int q = v1 ? quota_v1(dir) : quota_v2(dir);
        if (q > 0 && (best == 0 || q < best)) best = q;
        if (n <= base_len) break;
        /* Up one level: drop the last component and the slashes before it. */
        while (n > base_len && dir[n - 1] != '/')
            n--;
        while (n > base_len && dir[n - 1] == '/')
            n--;
        dir[n] = 0;
    }
    return best;
}

/* Whether the comma-separated controller list [s, s + len) names the cpu controller. */
static int lists_cpu(const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        size_t k = comma ? (size_t)(comma - s) : (size_t)(end - s);
        if (k == 3 && memcmp(s, "cpu", 3) == 0) return 1;
        s += k + 1;
    }
    return 0;
}

int rr_cpu_quota_at(const char *proc_self_cgroup, const char *cgroup_root)
{
    char buf[8192], dir[PATH_CAP];
    int whole;
    if (read_small(proc_self_cgroup, buf, sizeof buf, &whole) <= 0) return 0;

    /* Find the v2 line and the v1 cpu line; lines cut off by the buffer are ignored. */
    const char *v2_path = NULL, *v1_path = NULL, *v1_ctl = NULL;
    size_t v2_len = 0, v1_len = 0, v1_ctl_len = 0;
    for (char *line = buf; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl && !whole) break;
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *c1 = memchr(line, ':', len);
        char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
        if (c2 && c2[1] == '/') {
            size_t path_len = len - (size_t)(c2 + 1 - line);
            if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1) {
                v2_path = c2 + 1;
                v2_len = path_len;
            } else if (lists_cpu(c1 + 1, (size_t)(c2 - c1 - 1))) {
                v1_ctl = c1 + 1;
                v1_ctl_len = (size_t)(c2 - c1 - 1);
                v1_path = c2 + 1;
                v1_len = path_len;
            }
        }
        if (!nl) break;
        line = nl + 1;
    }

    size_t root_len = strlen(cgroup_root);
    while (root_len > 0 && cgroup_root[root_len - 1] == '/')
        root_len--;
    if (v1_path) {
        /* The controller's mount: <root>/cpu,cpuacct as listed, else the usual <root>/cpu. */
        struct stat sb;
        int base = snprintf(dir, sizeof dir, "%.*s/%.*s", (int)root_len, cgroup_root,
                            (int)v1_ctl_len, v1_ctl);
        if (base >= (int)sizeof dir) return 0;
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            base = snprintf(dir, sizeof dir, "%.*s/cpu", (int)root_len, cgroup_root);
        if (snprintf(dir + base, sizeof dir - (size_t)base, "%.*s", (int)v1_len, v1_path) >=
            (int)(sizeof dir - (size_t)base))
            return 0;
        return quota_walk(dir, (size_t)base, 1);
    }
    if (v2_path) {
        if (snprintf(dir, sizeof dir, "%.*s%.*s", (int)root_len, cgroup_root, (int)v2_len,
                     v2_path) >= (int)sizeof dir)
            return 0;
        return quota_walk(dir, root_len, 0);
    }
    return 0;
}

int rr_cpu_count(void)
{
    int n = 0;
    cpu_set_t set;
    /* A fixed cpu_set_t covers 1024 CPUs; beyond that the call fails and we fall back. */
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        n = k > 0 ? (int)k : 1;
    }
    int q = rr_cpu_quota_at("/proc/self/cgroup", "/sys/fs/cgroup");
    if (q > 0 && q < n) n = q;
    return n;
}
