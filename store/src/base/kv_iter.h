/* SPDX-License-Identifier: MIT */
/*
 * kv_iter.h - the internal iterator contract over internal keys (ikey.h), implemented by
 * memtables, tables, level concatenations and the merging iterator. One thread at a time.
 *
 * After any positioning call the iterator is either valid (key/val views set, valid until the
 * next call) or invalid; an invalid iterator with a non-OK status has failed and stays failed.
 */
#ifndef FRACTIO_BASE_KV_ITER_H
#define FRACTIO_BASE_KV_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct kv_iter;

struct kv_iter_ops {
	void (*seek_first)(struct kv_iter *it);
	void (*seek_last)(struct kv_iter *it);
	/* the first entry with internal key >= target */
	void (*seek)(struct kv_iter *it, const uint8_t *ikey, size_t len);
	/* the last entry with internal key <= target */
	void (*seek_prev)(struct kv_iter *it, const uint8_t *ikey, size_t len);
	void (*next)(struct kv_iter *it);
	void (*prev)(struct kv_iter *it);
	/* frees the iterator and drops what it pins */
	void (*free)(struct kv_iter *it);
};

struct kv_iter {
	const struct kv_iter_ops *ops;
	bool valid;
	const uint8_t *key; /* internal key */
	size_t key_len;
	const uint8_t *val;
	size_t val_len;
	fr_status status;   /* FR_OK unless the iterator failed; err holds the detail */
	fr_error err;
};

/* Sets up the base of a new iterator, unpositioned and OK. err is left as it is: it is
 * written only when the iterator fails, so an allocation need not zero it. */
static inline void kv_iter_init(struct kv_iter *it, const struct kv_iter_ops *ops)
{
	it->ops = ops;
	it->valid = false;
	it->key = NULL;
	it->key_len = 0;
	it->val = NULL;
	it->val_len = 0;
	it->status = FR_OK;
}

static inline void kv_seek_first(struct kv_iter *it)
{
	it->ops->seek_first(it);
}
static inline void kv_seek_last(struct kv_iter *it)
{
	it->ops->seek_last(it);
}
static inline void kv_seek(struct kv_iter *it, const uint8_t *k, size_t n)
{
	it->ops->seek(it, k, n);
}
static inline void kv_seek_prev(struct kv_iter *it, const uint8_t *k, size_t n)
{
	it->ops->seek_prev(it, k, n);
}
static inline void kv_next(struct kv_iter *it)
{
	it->ops->next(it);
}
static inline void kv_prev(struct kv_iter *it)
{
	it->ops->prev(it);
}
static inline void kv_free(struct kv_iter *it)
{
	if (it)
		it->ops->free(it);
}

#endif
