/* SPDX-License-Identifier: MIT */
/*
 * rdset.h - a set of range tombstones, fragmented into disjoint intervals so that "the newest
 * tombstone at or below snapshot s covering key k" is a binary search. Owns copies of its
 * keys. Immutable once built; thread-safe for queries.
 */
#ifndef FRACTIO_COMPACT_RDSET_H
#define FRACTIO_COMPACT_RDSET_H

#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct range_del;
struct rdset;

/* Builds the set from cnt tombstones (copied). *out is NULL when cnt is 0. */
fr_status rdset_new(const struct range_del *rds, size_t cnt, struct rdset **out);
void rdset_free(struct rdset *s);
/* The largest tombstone seqno <= snap covering user key k, or 0 when none. NULL set allowed. */
uint64_t rdset_max_cover(const struct rdset *s, const uint8_t *k, size_t klen, uint64_t snap);
/* The original tombstones, sorted by start (views owned by the set). */
size_t rdset_all(const struct rdset *s, const struct range_del **out);

#endif
