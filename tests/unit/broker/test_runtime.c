/* Unit tests for broker/runtime: the file descriptor budget (connection caps that fit
 * RLIMIT_NOFILE) and raising the soft limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/resource.h>

#include "runtime.h"

static void test_budget_fits_the_limit(void **state)
{
    (void)state;
    /* The README's interactive case: 1024 descriptors against the default 8192 + 8192. */
    rt_fd_budget_t b = rt_fd_budget(1024, 2, 8192, 8192);
    assert_true(b.clamped);
    assert_int_equal(b.reserve, 64 + 16 + 256);
    assert_int_equal(b.admin_max, (1024 - b.reserve) / 8);
    assert_int_equal(b.ts002_max + b.admin_max + b.reserve, 1024);

    /* Plenty of descriptors: nothing changes. */
    b = rt_fd_budget(524288, 8, 8192, 8192);
    assert_false(b.clamped);
    assert_int_equal(b.ts002_max, 8192);
    assert_int_equal(b.admin_max, 8192);

    /* Tiny limits: the reserve is at most half, both listeners keep at least one connection. */
    b = rt_fd_budget(64, 2, 8192, 8192);
    assert_true(b.clamped);
    assert_int_equal(b.reserve, 32);
    assert_int_equal(b.admin_max, 4);
    assert_int_equal(b.ts002_max, 28);
    b = rt_fd_budget(4, 1, 100, 0); /* admin disabled */
    assert_true(b.ts002_max >= 1 && b.ts002_max <= 2);

    /* Every limit: caps + reserve never exceed it (beyond the 1-connection floor). */
    for (uint64_t n = 16; n < 70000; n = n * 5 / 4 + 1) {
        for (unsigned w = 1; w <= 64; w *= 4) {
            b = rt_fd_budget(n, w, 8192, 8192);
            assert_true((uint64_t)b.ts002_max + b.admin_max + b.reserve <= n);
            assert_true(b.ts002_max <= 8192 && b.admin_max <= 8192);
        }
    }
}

static void test_raise_nofile_to_hard(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    struct rlimit low = rl;
    low.rlim_cur = 100 < rl.rlim_max ? 100 : rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    uint64_t got = rt_raise_nofile();
    struct rlimit now;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
    uint64_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
    assert_true(got == want);
    assert_true((uint64_t)now.rlim_cur == want);
    setrlimit(RLIMIT_NOFILE, &rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_fits_the_limit),
        cmocka_unit_test(test_raise_nofile_to_hard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
