/* Unit tests for broker/arena: blocks from an arena and from the heap are both released
 * correctly whichever arena is current at free time; a cJSON tree parsed inside an arena lives
 * in it; arenas grow past their first chunk. Runs with the hooks installed (not under ASan,
 * where arenas are inert by design: then only the heap path is exercised). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <string.h>

#include "arena.h"

static int setup(void **state)
{
    (void)state;
    arena_install_cjson_hooks();
    return 0;
}

static void test_tree_in_arena_and_heap(void **state)
{
    (void)state;
    rh_arena_t *a = arena_new();
    assert_non_null(a);
    cJSON *heap_tree = cJSON_Parse("{\"x\": [1, 2, 3], \"s\": \"heap\"}"); /* no arena: heap */
    rh_arena_t *prev = arena_enter(a);
    assert_null(prev);
    cJSON *t = cJSON_Parse("{\"SenderID\": \"000202\", \"GWInfo\": [{\"RSSI\": -80}]}");
    assert_non_null(t);
    assert_string_equal(cJSON_GetObjectItem(t, "SenderID")->valuestring, "000202");
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(arena_used(a) > 0);
#endif
    char *printed = cJSON_PrintUnformatted(t);
    assert_string_equal(printed, "{\"SenderID\":\"000202\",\"GWInfo\":[{\"RSSI\":-80}]}");
    cJSON_free(printed);
    /* a heap tree freed while an arena is current goes back to the heap */
    cJSON_Delete(heap_tree);
    arena_enter(NULL);
    /* an arena tree freed with no arena current is a no-op until the arena goes */
    cJSON_Delete(t);
    arena_free(a);
}

static void test_growth(void **state)
{
    (void)state;
    rh_arena_t *a = arena_new();
    arena_enter(a);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < 5000; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString("a string long enough to fill chunks"));
    assert_int_equal(cJSON_GetArraySize(arr), 5000);
    assert_string_equal(cJSON_GetArrayItem(arr, 4999)->valuestring,
                        "a string long enough to fill chunks");
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(arena_used(a) > 16 * 1024);
#endif
    cJSON_Delete(arr);
    arena_enter(NULL);
    arena_free(a);
    arena_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_in_arena_and_heap),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
