/* SPDX-License-Identifier: MIT */
/*
 * iter_int.h - a user-level iterator over one tree: keys in [lo, hi) as tree keys (keyspace
 * prefix included), the newest visible version of each at one seqno, tombstones and range
 * tombstones applied. It pins the memtables and tables it reads. One thread at a time; one
 * direction, chosen at open.
 */
#ifndef FRACTIO_DB_ITER_INT_H
#define FRACTIO_DB_ITER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct kv_iter;
struct tree;
struct titer;

/* A public iterator (api.c): a tree iterator over one keyspace. */
struct fr_iter {
	fr_keyspace *ks;
	struct titer *ti;
};

/* hi NULL: no upper bound. */
fr_status titer_open(fr_db *db, struct tree *t, const uint8_t *lo, size_t lo_len,
		     const uint8_t *hi, size_t hi_len, bool reverse, uint64_t snap,
		     struct titer **out, fr_error *err);
/* The same, with an overlay merged in: internal keys of seqno SEQNO_MAX, visible at any
 * snapshot and newer than every stored version (a transaction's own writes). Takes ownership
 * of overlay, on failure too. */
fr_status titer_open_overlay(fr_db *db, struct tree *t, const uint8_t *lo, size_t lo_len,
			     const uint8_t *hi, size_t hi_len, bool reverse, uint64_t snap,
			     struct kv_iter *overlay, struct titer **out, fr_error *err);
/* The bounds the iterator was opened with (tree keys); *hi NULL: none. */
void titer_bounds(const struct titer *it, const uint8_t **lo, size_t *lo_len,
		  const uint8_t **hi, size_t *hi_len);
/* Opens a public iterator over ks as fr_iter_open does (api.c), reading at snap, with an
 * optional overlay (ownership taken, as titer_open_overlay). */
fr_status api_iter_open(fr_keyspace *ks, const fr_iter_options *o, uint64_t snap,
			struct kv_iter *overlay, fr_iter **out, fr_error *err);
void titer_close(struct titer *it);
/* Positions on the first entry in the iterator's direction. */
fr_status titer_first(struct titer *it, fr_error *err);
fr_status titer_next(struct titer *it, fr_error *err);
/* Forward: first key >= k; reverse: last key <= k (tree keys). */
fr_status titer_seek(struct titer *it, const uint8_t *k, size_t klen, fr_error *err);
bool titer_valid(const struct titer *it);
const uint8_t *titer_key(const struct titer *it, size_t *len);
const uint8_t *titer_value(const struct titer *it, size_t *len);
/* From now on values kept in blob files are not read (titer_value gives an empty value for
 * them): for walks that only count or look at keys. */
void titer_set_keys_only(struct titer *it);

#endif
