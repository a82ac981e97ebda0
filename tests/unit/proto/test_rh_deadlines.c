/* rh_deadlines: a FIFO of deadlines on one lazily armed libevent timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <event2/event.h>

#include "rh_deadlines.h"
#include "rh_err.h"
#include "rh_time.h"

typedef struct item {
    rh_deadline_t dl;
    int id;
    uint64_t expired_ms;
} item_t;

typedef struct world {
    struct event_base *base;
    rh_deadlines_t list;
    int order[8];
    int n;
    item_t *add_on_expiry; /* added (50 ms on) by the callback when the first item expires */
} world_t;

static void expired(rh_deadline_t *d, void *arg)
{
    world_t *w = arg;
    item_t *it = (item_t *)(void *)((char *)d - offsetof(item_t, dl));
    assert_false(d->on); /* off the list before the callback */
    it->expired_ms = rh_mono_ms();
    w->order[w->n++] = it->id;
    if (w->add_on_expiry) {
        item_t *more = w->add_on_expiry;
        w->add_on_expiry = NULL;
        assert_true(rh_deadlines_add(&w->list, &more->dl, rh_mono_ms() + 50));
    }
}

static void start(world_t *w)
{
    *w = (world_t){0};
    w->base = event_base_new();
    assert_non_null(w->base);
    assert_int_equal(rh_deadlines_init(&w->list, w->base, expired, w), RH_OK);
}

static void stop(world_t *w)
{
    rh_deadlines_fini(&w->list);
    event_base_free(w->base);
}

/* Items expire in order; a removed one never does; one earlier than the last is refused. */
static void test_fifo_order_and_removal(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    item_t a = {.id = 1}, b = {.id = 2}, c = {.id = 3}, early = {.id = 4};
    uint64_t t0 = rh_mono_ms();
    assert_true(rh_deadlines_add(&w.list, &a.dl, t0 + 10));
    assert_true(rh_deadlines_add(&w.list, &b.dl, t0 + 20));
    assert_true(rh_deadlines_add(&w.list, &c.dl, t0 + 20)); /* same deadline: FIFO */
    assert_false(rh_deadlines_add(&w.list, &early.dl, t0 + 5));
    assert_false(early.dl.on);
    rh_deadlines_remove(&w.list, &b.dl);
    rh_deadlines_remove(&w.list, &b.dl); /* twice: a no-op */
    assert_false(b.dl.on);
    event_base_dispatch(w.base); /* returns once nothing is armed */
    assert_int_equal(w.n, 2);
    assert_int_equal(w.order[0], 1);
    assert_int_equal(w.order[1], 3);
    assert_true(a.expired_ms >= t0 + 10);
    assert_true(c.expired_ms >= t0 + 20);
    assert_null(w.list.head);
    assert_null(w.list.tail);
    stop(&w);
}

/* The timer armed for a head that was removed fires early and re-arms for the new head. */
static void test_rearm_after_head_removed(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    item_t a = {.id = 1}, b = {.id = 2};
    uint64_t t0 = rh_mono_ms();
    assert_true(rh_deadlines_add(&w.list, &a.dl, t0 + 10));
    assert_true(rh_deadlines_add(&w.list, &b.dl, t0 + 60));
    rh_deadlines_remove(&w.list, &a.dl);
    event_base_dispatch(w.base);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.order[0], 2);
    assert_true(b.expired_ms >= t0 + 60);
    stop(&w);
}

/* An item added from the expiry callback waits for its own deadline (the timer re-arms). */
static void test_add_from_callback(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    item_t a = {.id = 1}, more = {.id = 2};
    w.add_on_expiry = &more;
    uint64_t t0 = rh_mono_ms();
    assert_true(rh_deadlines_add(&w.list, &a.dl, t0 + 5));
    event_base_dispatch(w.base);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.order[1], 2);
    assert_true(more.expired_ms >= a.expired_ms + 50);
    stop(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order_and_removal),
        cmocka_unit_test(test_rearm_after_head_removed),
        cmocka_unit_test(test_add_from_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
