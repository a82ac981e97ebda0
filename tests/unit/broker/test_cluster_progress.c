/* Unit tests for cluster_progress_check (broker/cluster.c): the watch thread's check that the
 * table consumer delivers what the stream stores — a stall is reported only when a change stored
 * past what the node has is still undelivered one check later with nothing delivered meanwhile;
 * progress, a stream that cannot be asked and a stream with nothing new never are. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cluster.h"

typedef struct fake_stream {
    uint64_t last; /* the stream's last sequence */
    int down;      /* non-zero: cannot be asked */
    int asked;     /* how many times ask_last ran */
} fake_stream_t;

static int ask_last(void *arg, uint64_t *last)
{
    fake_stream_t *s = arg;
    s->asked++;
    if (s->down)
        return -1;
    *last = s->last;
    return 0;
}

/* Delivered changes between checks: never a stall, and the stream is not asked. */
static void test_progress_is_never_a_stall(void **state)
{
    (void)state;
    cluster_progress_t p = {0, 0};
    fake_stream_t s = {.last = 100};
    for (uint64_t have = 1; have <= 50; have++)
        assert_int_equal(cluster_progress_check(&p, have, ask_last, &s), 0);
    assert_int_equal(s.asked, 0);
}

/* Idle and caught up: the stream is asked each check, nothing to recreate. */
static void test_idle_caught_up_is_not_a_stall(void **state)
{
    (void)state;
    cluster_progress_t p = {0, 0};
    fake_stream_t s = {.last = 9};
    assert_int_equal(cluster_progress_check(&p, 9, ask_last, &s), 0); /* progress 0 -> 9 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(cluster_progress_check(&p, 9, ask_last, &s), 0);
    assert_int_equal(s.asked, 5);
}

/* Change 9 stored, the node stuck at 8: not yet at the first check that sees it (it may be on
 * its way), a stall at the next one without progress; then the state starts over. */
static void test_undelivered_change_is_a_stall_one_check_later(void **state)
{
    (void)state;
    cluster_progress_t p = {0, 0};
    fake_stream_t s = {.last = 9};
    assert_int_equal(cluster_progress_check(&p, 8, ask_last, &s), 0); /* progress 0 -> 8 */
    assert_int_equal(cluster_progress_check(&p, 8, ask_last, &s), 0); /* 9 seen past 8 */
    assert_int_equal(cluster_progress_check(&p, 8, ask_last, &s), 1); /* still 8: stalled */
    assert_int_equal(s.asked, 1);
    /* after the recreation: the first check without progress only notes the backlog again */
    assert_int_equal(cluster_progress_check(&p, 8, ask_last, &s), 0);
    assert_int_equal(cluster_progress_check(&p, 8, ask_last, &s), 1);
}

/* The backlog noticed, then the change arrives before the next check: no stall. */
static void test_delivery_after_the_backlog_was_seen_is_not_a_stall(void **state)
{
    (void)state;
    cluster_progress_t p = {0, 0};
    fake_stream_t s = {.last = 12};
    assert_int_equal(cluster_progress_check(&p, 10, ask_last, &s), 0);
    assert_int_equal(cluster_progress_check(&p, 10, ask_last, &s), 0); /* 12 past 10 */
    assert_int_equal(cluster_progress_check(&p, 12, ask_last, &s), 0); /* delivered */
    assert_int_equal(cluster_progress_check(&p, 12, ask_last, &s), 0); /* caught up */
    assert_int_equal(cluster_progress_check(&p, 12, ask_last, &s), 0);
}

/* A stream that cannot be asked (NATS busy or gone) never makes a stall by itself. */
static void test_stream_down_is_not_a_stall(void **state)
{
    (void)state;
    cluster_progress_t p = {0, 0};
    fake_stream_t s = {.last = 20, .down = 1};
    assert_int_equal(cluster_progress_check(&p, 5, ask_last, &s), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cluster_progress_check(&p, 5, ask_last, &s), 0);
    s.down = 0; /* back: the backlog is seen, then reported one check later */
    assert_int_equal(cluster_progress_check(&p, 5, ask_last, &s), 0);
    assert_int_equal(cluster_progress_check(&p, 5, ask_last, &s), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_is_never_a_stall),
        cmocka_unit_test(test_idle_caught_up_is_not_a_stall),
        cmocka_unit_test(test_undelivered_change_is_a_stall_one_check_later),
        cmocka_unit_test(test_delivery_after_the_backlog_was_seen_is_not_a_stall),
        cmocka_unit_test(test_stream_down_is_not_a_stall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
