/*
 * arena.h — per-transaction memory for cJSON nodes (DESIGN.md §6: per-request memory pools, as
 * h2o and nginx do). Decoding a TS002 message allocates ~100 small cJSON nodes and strings that
 * all die together with the transaction; a bump allocator makes those allocations a pointer
 * increment and their frees no-ops, and the whole arena goes in one free.
 *
 * How: arena_install_cjson_hooks() (once, at start, before other threads use cJSON) routes cJSON's
 * allocations through hooks that put a 16-byte tag before every block: "arena" when the calling
 * thread has an arena entered (arena_enter), "heap" otherwise (plain malloc). The free hook reads
 * the tag, so every block is released correctly whatever arena is current when it is freed; a
 * cJSON tree built inside an arena must simply not outlive that arena (the relay frees a
 * transaction's messages before its arena). Without installed hooks (tests, tools) or in
 * sanitizer builds (ASan must see every allocation), arenas are inert and cJSON uses malloc.
 * Not thread-safe per arena: an arena is used by one thread at a time.
 */
#ifndef RH_ARENA_H
#define RH_ARENA_H

#include <stddef.h>

typedef struct rh_arena rh_arena_t;

/* A new arena (its first 16 KiB chunk allocated with it). NULL on allocation failure. */
rh_arena_t *arena_new(void);

/* Frees the arena and every block allocated from it. NULL is a no-op. */
void arena_free(rh_arena_t *a);

/* Makes `a` (may be NULL) the calling thread's current arena; returns the previous one, to be
 * restored with arena_enter(prev). */
rh_arena_t *arena_enter(rh_arena_t *a);

/* Bytes handed out by the arena so far (tests, metrics). */
size_t arena_used(const rh_arena_t *a);

/* Installs the tagging cJSON hooks process-wide (idempotent). Call before starting threads. */
void arena_install_cjson_hooks(void);

#endif
