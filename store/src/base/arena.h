/* SPDX-License-Identifier: MIT */
/*
 * arena.h - a bump allocator for memtables. Memory is freed only as a whole, by arena_fini.
 * Allocation is one thread at a time; memory handed out may be read by any thread once
 * published by the caller. arena_bytes may be read from any thread.
 */
#ifndef FRACTIO_BASE_ARENA_H
#define FRACTIO_BASE_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct arena_block;

struct arena {
	struct arena_block *blocks;
	uint8_t *cur;
	size_t left;
	uint64_t bytes; /* atomic: total reserved, read by other threads for statistics */
};

void arena_init(struct arena *a);
void arena_fini(struct arena *a);
/* n bytes aligned to 8; NULL on out of memory */
void *arena_alloc(struct arena *a, size_t n);
uint64_t arena_bytes(const struct arena *a);

#endif
