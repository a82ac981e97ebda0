/* Unit tests for broker/runtime: the file descriptor budget (connection caps that fit
 * RLIMIT_NOFILE) and raising the soft limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rh_log.h"
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

/* rh_log.h promises that libevent's messages reach the log (issue 16 #10). */
static void test_libevent_messages_in_the_log(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    rh_log_set_fd(fds[1]);
    rh_log_set_level_name("debug");
    rt_route_libevent_log();
    event_enable_debug_logging(EVENT_DBG_ALL);
    struct event_base *b = event_base_new();
    struct event *e = event_new(b, -1, 0, NULL, NULL);
    event_free(e);
    event_base_free(b);
    event_enable_debug_logging(EVENT_DBG_NONE);
    char buf[8192];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = 0;
    assert_non_null(strstr(buf, "level=debug sub=libevent msg=\"libevent message\" text="));
    rh_log_set_fd(2);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_fits_the_limit),
        cmocka_unit_test(test_raise_nofile_to_hard),
        cmocka_unit_test(test_libevent_messages_in_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
