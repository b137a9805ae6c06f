/* SPDX-License-Identifier: MIT */
/*
 * skiplist.h - an ordered set of internal keys (base/ikey.h), each with a value, living in an
 * arena (base/arena.h); the index of a memtable [LevelDB db/skiplist.h]. Nodes are never
 * removed: the whole list dies with its arena.
 *
 * Thread-safety: inserts from one thread at a time (the caller serialises writers); reads and
 * iterators from any number of threads concurrently with that writer, without locks. A node is
 * fully written before the writer links it with release stores; readers follow links with
 * acquire loads, so a node they reach is complete. skl_fini only when no reader is left.
 *
 * Node layout in the arena (native, never written to disk):
 *	struct skl_node { val_len, key_len, height, { next, sum }[height] } || key bytes || value bytes
 * where link i's sum summarises the key of the node next[i] points to (see skiplist.c); sums
 * are the writer's alone, readers never look at them.
 */
#ifndef FRACTIO_MEMTABLE_SKIPLIST_H
#define FRACTIO_MEMTABLE_SKIPLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

/* Branching 2: with the key summaries (skiplist.c) an insert touches only the nodes it steps
 * onto, about one per level, so more levels of fewer steps each touch fewer nodes than
 * LevelDB's 4: half as many on a 400,000-entry memtable, for about 20 more bytes per entry.
 * The cap allows about a million entries before the top level grows crowded. */
#define SKL_MAX_HEIGHT 20
#define SKL_BRANCHING 2
/* Bound on the shared user key prefix the writer's key summaries skip (a multiple of 4). */
#define SKL_SKIP_MAX 32

struct arena;
struct skl_node;

struct skiplist {
	struct arena *arena;   /* borrowed; allocated from by the writer only */
	struct skl_node *head; /* immutable: a sentinel of SKL_MAX_HEIGHT links, no key */
	uint64_t height;       /* atomic: raised by the writer; read relaxed (see skl_height) */
	uint64_t rnd;          /* writer only: PRNG state for node heights */
	/* writer only: every user key in the list starts with common[0..common_len); the key
	 * summaries in the links are the 8 bytes of a user key from offset skip on (skip is
	 * common_len rounded down to a multiple of 4, at most SKL_SKIP_MAX) */
	uint32_t common_len;
	uint32_t skip;
	uint8_t common[SKL_SKIP_MAX];
};

/* Prepares an empty list whose nodes come from arena a (which must outlive the list). FR_NOMEM
 * on failure. */
fr_status skl_init(struct skiplist *s, struct arena *a);
/* Releases what skl_init allocated (not the arena). Accepts a list skl_init failed on. */
void skl_fini(struct skiplist *s);

/* Two-step insert, so callers can build the key in place: skl_node_new reserves a node with
 * room for klen key bytes and vlen value bytes (NULL on out of memory or when klen exceeds
 * UINT32_MAX or is below the 8-byte trailer); the caller fills skl_node_key_buf and
 * skl_node_val_buf, then skl_node_insert links it. FR_INVALID (node not linked, its space
 * wasted) when an equal internal key is already present. Writer only. */
struct skl_node *skl_node_new(struct skiplist *s, size_t klen, size_t vlen);
uint8_t *skl_node_key_buf(struct skl_node *n);
uint8_t *skl_node_val_buf(struct skl_node *n);
fr_status skl_node_insert(struct skiplist *s, struct skl_node *n);

/* Copies ikey and val into a new node and links it: FR_NOMEM, or FR_INVALID for an ikey
 * shorter than 8 bytes or already present. Writer only. */
fr_status skl_insert(struct skiplist *s, const uint8_t *ikey, size_t klen, const void *val,
		     size_t vlen);

/* Any thread: true when an entry with exactly this internal key is present. */
bool skl_contains(const struct skiplist *s, const uint8_t *ikey, size_t klen);

/*
 * An iterator: a position in the list, valid until the list is finished. Views returned by
 * skl_iter_key/val stay valid as long as the list lives. One thread at a time per iterator.
 * Seek targets are internal keys; a target shorter than 8 bytes is taken as a user key that
 * sorts before every version of itself.
 */
struct skl_iter {
	const struct skiplist *s;
	const struct skl_node *node; /* NULL: not valid */
};

void skl_iter_init(struct skl_iter *it, const struct skiplist *s);
bool skl_iter_valid(const struct skl_iter *it);
void skl_iter_seek_first(struct skl_iter *it);
void skl_iter_seek_last(struct skl_iter *it);
/* the first entry >= target */
void skl_iter_seek(struct skl_iter *it, const uint8_t *target, size_t len);
/* the first entry >= (ukey, trailer): seeks without building the internal key */
void skl_iter_seek_parts(struct skl_iter *it, const uint8_t *ukey, size_t ulen,
			 uint64_t trailer);
/* the last entry <= target */
void skl_iter_seek_prev(struct skl_iter *it, const uint8_t *target, size_t len);
/* Requires a valid iterator. */
void skl_iter_next(struct skl_iter *it);
/* Requires a valid iterator; O(log n): searches for the last entry < the current key. */
void skl_iter_prev(struct skl_iter *it);
/* Requires a valid iterator. */
const uint8_t *skl_iter_key(const struct skl_iter *it, size_t *len);
const uint8_t *skl_iter_val(const struct skl_iter *it, size_t *len);

#endif
