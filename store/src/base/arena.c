/* SPDX-License-Identifier: MIT */
/*
 * arena.c - the memtable bump allocator (arena.h). Memory comes from a singly linked list of
 * blocks obtained with fr_malloc; allocations are carved from the current block. Blocks start
 * small (an empty memtable costs nothing, a small one little) and double up to a cap, so a large
 * memtable needs few mallocs. A request larger than a quarter of the block size gets a block of
 * its own and leaves the current block in place, so little space is wasted at block ends
 * [LevelDB util/arena.cc]. Everything is freed at once by arena_fini.
 *
 * Thread-safety: arena_alloc and arena_fini from one thread at a time (the memtable writer);
 * arena_bytes from any thread.
 */
#include "base/arena.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/sync.h"
#include "fractio.h"

#define ARENA_ALIGN 8
#define ARENA_BLOCK_MIN (4u * 1024)
#define ARENA_BLOCK_MAX (64u * 1024)

/* A block header; the usable bytes follow it. 16 bytes on LP64, so data stays 8-aligned. */
struct arena_block {
	struct arena_block *next;
	size_t size; /* usable bytes after the header */
};

_Static_assert(sizeof(struct arena_block) % ARENA_ALIGN == 0, "block data must stay aligned");

void arena_init(struct arena *a)
{
	a->blocks = NULL;
	a->cur = NULL;
	a->left = 0;
	a->bytes = 0;
}

void arena_fini(struct arena *a)
{
	struct arena_block *b = a->blocks;

	while (b) {
		struct arena_block *next = b->next;
		fr_free(b);
		b = next;
	}
	arena_init(a);
}

/* A new block with `size` usable bytes, not yet linked; NULL on out of memory. */
static struct arena_block *arena_block_new(struct arena *a, size_t size)
{
	struct arena_block *b;

	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	b = fr_malloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->size = size;
	b->next = NULL;
	/* atomic: statistics only, read relaxed by arena_bytes; the writer is the sole updater */
	atomic_store_rlx_u64(&a->bytes, atomic_load_rlx_u64(&a->bytes) + sizeof(*b) + size);
	return b;
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b;
	size_t want, bsize;
	uint8_t *p;

	if (n > SIZE_MAX - (ARENA_ALIGN - 1))
		return NULL;
	want = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (want == 0)
		want = ARENA_ALIGN;
	if (want <= a->left) {
		p = a->cur;
		a->cur += want;
		a->left -= want;
		return p;
	}

	/* The next regular block doubles the previous one, up to the cap. */
	bsize = a->blocks ? a->blocks->size * 2 : ARENA_BLOCK_MIN;
	if (bsize > ARENA_BLOCK_MAX)
		bsize = ARENA_BLOCK_MAX;
	if (bsize < ARENA_BLOCK_MIN)
		bsize = ARENA_BLOCK_MIN;

	if (want > bsize / 4) {
		/* A big request gets a block of its own and the current block keeps serving: link
		 * it second, so the list head stays the block small allocations come from. */
		b = arena_block_new(a, want);
		if (!b)
			return NULL;
		if (a->blocks) {
			b->next = a->blocks->next;
			a->blocks->next = b;
		} else {
			a->blocks = b;
		}
		return b + 1;
	}

	b = arena_block_new(a, bsize);
	if (!b)
		return NULL;
	b->next = a->blocks;
	a->blocks = b;
	p = (uint8_t *)(b + 1);
	a->cur = p + want;
	a->left = bsize - want;
	return p;
}

uint64_t arena_bytes(const struct arena *a)
{
	/* atomic: pairs with the relaxed store in arena_block_new; a statistic, no ordering */
	return atomic_load_rlx_u64(&a->bytes);
}
