/*
 * test_client_alloc.c — the client pool under allocation failure (issue 16 item 9: pool_free
 * dereferenced conns/reqs through NULL when pool_new's calloc failed). This executable is linked
 * with -Wl,--wrap=calloc (tests/CMakeLists.txt: unit tests named *_alloc), so every calloc of the
 * libraries can be made to fail: the k-th calloc after arming returns NULL, for k = 0, 1, 2, ...
 * until a post succeeds. Each post must then fail cleanly with RH_ENOMEM (ASan: no leak, no
 * invalid access) or succeed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "peer_client.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static long fail_in = -1; /* calls left before the failing one; -1 = never fail */

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_in == 0) {
        fail_in = -1;
        return NULL;
    }
    if (fail_in > 0)
        fail_in--;
    return __real_calloc(n, size);
}

static int calls;
static void on_done(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    (void)status;
    (void)http_status;
    (void)body;
    (void)len;
    (void)arg;
    calls++;
}

static void test_pool_creation_failures(void **state)
{
    (void)state;
    Roamhub__V1__Endpoint rec = ROAMHUB__V1__ENDPOINT__INIT;
    rec.id = "alloc";
    rec.net_id = 0x13;
    rec.url = "http://127.0.0.1:9/";
    rec.max_in_flight = 8;
    peer_endpoint_t *ep = NULL;
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, NULL), RH_OK);
    int succeeded = 0;
    for (long k = 0; k < 64 && !succeeded; k++) {
        struct event_base *base = event_base_new();
        peer_client_t *c = NULL;
        assert_int_equal(peer_client_new(base, NULL, &c), RH_OK);
        calls = 0;
        fail_in = k;
        int rc = peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, NULL);
        int failed_alloc = fail_in == -1; /* the armed calloc was reached */
        fail_in = -1;
        if (rc == RH_OK) {
            succeeded = !failed_alloc;
        } else {
            assert_int_equal(rc, RH_ENOMEM);
            assert_true(failed_alloc);
        }
        peer_client_free(c); /* completes an accepted request with RH_EIO */
        assert_int_equal(calls, rc == RH_OK ? 1 : 0);
        event_base_free(base);
    }
    assert_true(succeeded); /* every calloc of the path was made to fail once */
    peer_endpoint_free(ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_creation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
