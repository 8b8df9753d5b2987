/*
 * test.h — the minimal test harness shared by the C tests: CHECK macros that count, a
 * summary line, and the "skipped" convention (exit code 77, which ctest reports as a skip).
 *
 * Usage: call CHECK/CHECK_MSG as often as needed, end main with `return test_summary("name");`
 * (which fails a test that ran no checks at all).
 */
#ifndef RR_TEST_H
#define RR_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int test_n_pass, test_n_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_n_pass++;                                                                         \
        } else {                                                                                   \
            test_n_fail++;                                                                         \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_n_pass++;                                                                         \
        } else {                                                                                   \
            test_n_fail++;                                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Exit code ctest maps to "skipped" (SKIP_RETURN_CODE 77 is set for every test). */
#define TEST_SKIP_CODE 77

static inline int test_skip(const char *name, const char *why)
{
    printf("%s: skipped: %s\n", name, why);
    return TEST_SKIP_CODE;
}

/* A test that ran no checks fails: a loop over an empty table or a case that silently
 * returned early must not read as a pass. Tests that cannot run say so with test_skip. */
static inline int test_summary(const char *name)
{
    if (test_n_pass + test_n_fail == 0) {
        printf("%s: FAIL: no checks ran\n", name);
        return 1;
    }
    printf("%s: %d passed, %d failed\n", name, test_n_pass, test_n_fail);
    return test_n_fail == 0 ? 0 : 1;
}

/* Directory of the repository (for fixtures) and of the test models; set by CMake. */
#ifndef RR_SOURCE_DIR
#define RR_SOURCE_DIR "."
#endif

#endif /* RR_TEST_H */
