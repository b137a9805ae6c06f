/* SPDX-License-Identifier: MIT */
/*
 * merge_iter.h - merges several internal iterators into one in internal key order (ikey.h),
 * forwards and backwards, yielding every entry of every child (no deduplication). When two
 * children hold the same internal key, the one with the lower index comes first. One thread at
 * a time.
 */
#ifndef FRACTIO_COMPACT_MERGE_ITER_H
#define FRACTIO_COMPACT_MERGE_ITER_H

#include <stddef.h>

struct kv_iter;

/* Takes ownership of the children (and of the array's contents, not the array). On out of
 * memory frees the children and returns NULL. A failed child fails the merged iterator (its
 * status and err are copied). */
struct kv_iter *merge_iter_new(struct kv_iter **children, size_t cnt);

#endif
