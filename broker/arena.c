/* arena.c — bump allocator for cJSON nodes with tagged blocks (see arena.h).
 * Invariant: every block the hooks return is preceded by a 16-byte header whose first word is
 * TAG_ARENA or TAG_HEAP, so the free hook never guesses where a block came from. */
#include "arena.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#define TAG_ARENA 0x4152454e41ull /* "ARENA" */
#define TAG_HEAP 0x48454150ull    /* "HEAP" */
#define HDR 16u                   /* keeps 16-byte alignment for the caller */
#define FIRST_CHUNK (8u * 1024u - 64u) /* stays in a small allocator size class */

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_DISABLED 1
#endif
#endif

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
} chunk_t;

struct rh_arena {
    chunk_t *head; /* current chunk (newest) */
    size_t total;
};

static _Thread_local rh_arena_t *tl_arena;

static chunk_t *chunk_new(size_t cap)
{
    chunk_t *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

rh_arena_t *arena_new(void)
{
    rh_arena_t *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    a->head = chunk_new(FIRST_CHUNK);
    a->total = 0;
    if (!a->head) {
        free(a);
        return NULL;
    }
    return a;
}

void arena_free(rh_arena_t *a)
{
    if (!a)
        return;
    if (tl_arena == a)
        tl_arena = NULL;
    chunk_t *c = a->head;
    while (c) {
        chunk_t *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

rh_arena_t *arena_enter(rh_arena_t *a)
{
    rh_arena_t *prev = tl_arena;
    tl_arena = a;
    return prev;
}

size_t arena_used(const rh_arena_t *a) { return a ? a->total : 0; }

#ifndef ARENA_DISABLED
static void *arena_alloc(rh_arena_t *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    chunk_t *c = a->head;
    if (c->cap - c->used < n) {
        size_t cap = c->cap * 2;
        while (cap < n)
            cap *= 2;
        chunk_t *nc = chunk_new(cap);
        if (!nc)
            return NULL;
        nc->next = c;
        a->head = nc;
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

static void *hook_malloc(size_t n)
{
    unsigned char *p;
    rh_arena_t *a = tl_arena;
    if (a) {
        p = arena_alloc(a, n + HDR);
        if (!p)
            return NULL;
        *(uint64_t *)p = TAG_ARENA;
    } else {
        p = malloc(n + HDR);
        if (!p)
            return NULL;
        *(uint64_t *)p = TAG_HEAP;
    }
    return p + HDR;
}

static void hook_free(void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - HDR;
    if (*(uint64_t *)p == TAG_HEAP)
        free(p);
    /* TAG_ARENA: released with its arena */
}
#endif

void arena_install_cjson_hooks(void)
{
#ifndef ARENA_DISABLED
    cJSON_Hooks h = {hook_malloc, hook_free};
    cJSON_InitHooks(&h);
#endif
}
