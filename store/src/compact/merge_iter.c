/* SPDX-License-Identifier: MIT */
/*
 * merge_iter.c - the merging iterator: a binary heap of child iterators ordered by (internal
 * key, child index), a min-heap while moving forwards and a max-heap while moving backwards, as
 * in LevelDB's MergingIterator. The merged order is the total order of (internal key, child
 * index) pairs, which assumes (as every real source guarantees) that the internal keys within
 * one child strictly increase.
 *
 * Moving in the current direction advances the child on top of the heap and sifts it down:
 * O(log n) comparisons per step. Changing direction repositions every other child just past
 * (or just before) the current entry with one seek each, then rebuilds the heap: O(n) seeks.
 *
 * A child that fails (status != FR_OK after a positioning call) fails the merged iterator for
 * good: it becomes invalid, copies the child's status and err, and ignores later calls.
 */
#include "compact/merge_iter.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/alloc.h"
#include "base/fr_assert.h"
#include "base/ikey.h"
#include "base/kv_iter.h"

enum mi_dir {
	MI_FWD = 0, /* heap top = smallest (key, index); children sit at or after the cursor */
	MI_REV = 1, /* heap top = largest (key, index); children sit at or before the cursor */
};

struct merge_iter {
	struct kv_iter base; /* first: the kv_iter handed out is this */
	struct kv_iter **child; /* owned, cnt entries; child and heap follow the struct */
	size_t cnt;
	size_t *heap;       /* indexes into child of the valid children, heap ordered */
	size_t heap_cnt;
	enum mi_dir dir;
};

static struct merge_iter *mi_of(struct kv_iter *it)
{
	return (struct merge_iter *)it;
}

/* True when child a's entry comes before child b's in the current direction. */
static bool mi_before(const struct merge_iter *mi, size_t a, size_t b)
{
	const struct kv_iter *x = mi->child[a], *y = mi->child[b];
	int c = ikey_cmp(x->key, x->key_len, y->key, y->key_len);

	if (!c)
		c = a < b ? -1 : a > b;
	return mi->dir == MI_FWD ? c < 0 : c > 0;
}

static void mi_sift_down(struct merge_iter *mi, size_t pos)
{
	size_t *h = mi->heap, n = mi->heap_cnt, v = h[pos];

	for (;;) {
		size_t l = 2 * pos + 1, best;

		if (l >= n)
			break;
		best = l;
		if (l + 1 < n && mi_before(mi, h[l + 1], h[l]))
			best = l + 1;
		if (!mi_before(mi, h[best], v))
			break;
		h[pos] = h[best];
		pos = best;
	}
	h[pos] = v;
}

/* Publishes the heap top (or invalidity) in the base fields. */
static void mi_publish(struct merge_iter *mi)
{
	struct kv_iter *it = &mi->base;

	if (mi->heap_cnt) {
		const struct kv_iter *c = mi->child[mi->heap[0]];

		it->valid = true;
		it->key = c->key;
		it->key_len = c->key_len;
		it->val = c->val;
		it->val_len = c->val_len;
	} else {
		it->valid = false;
		it->key = NULL;
		it->key_len = 0;
		it->val = NULL;
		it->val_len = 0;
	}
}

/* Fails the merged iterator with child c's status and error. */
static void mi_fail(struct merge_iter *mi, const struct kv_iter *c)
{
	mi->heap_cnt = 0;
	mi_publish(mi);
	mi->base.status = c->status;
	mi->base.err = c->err;
}

/* Checks child i after a positioning call; false (and the merged iterator failed) if it failed. */
static bool mi_child_ok(struct merge_iter *mi, size_t i)
{
	const struct kv_iter *c = mi->child[i];

	if (c->status == FR_OK)
		return true;
	mi_fail(mi, c);
	return false;
}

/* Rebuilds the heap from every valid child, in direction dir, and publishes the top. */
static void mi_rebuild(struct merge_iter *mi, enum mi_dir dir)
{
	size_t n = 0;

	mi->dir = dir;
	for (size_t i = 0; i < mi->cnt; i++)
		if (mi->child[i]->valid)
			mi->heap[n++] = i;
	mi->heap_cnt = n;
	for (size_t i = n / 2; i-- > 0;)
		mi_sift_down(mi, i);
	mi_publish(mi);
}

static void mi_seek_first(struct kv_iter *it)
{
	struct merge_iter *mi = mi_of(it);

	if (it->status != FR_OK)
		return;
	for (size_t i = 0; i < mi->cnt; i++) {
		kv_seek_first(mi->child[i]);
		if (!mi_child_ok(mi, i))
			return;
	}
	mi_rebuild(mi, MI_FWD);
}

static void mi_seek_last(struct kv_iter *it)
{
	struct merge_iter *mi = mi_of(it);

	if (it->status != FR_OK)
		return;
	for (size_t i = 0; i < mi->cnt; i++) {
		kv_seek_last(mi->child[i]);
		if (!mi_child_ok(mi, i))
			return;
	}
	mi_rebuild(mi, MI_REV);
}

static void mi_seek(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct merge_iter *mi = mi_of(it);

	if (it->status != FR_OK)
		return;
	for (size_t i = 0; i < mi->cnt; i++) {
		kv_seek(mi->child[i], ikey, len);
		if (!mi_child_ok(mi, i))
			return;
	}
	mi_rebuild(mi, MI_FWD);
}

static void mi_seek_prev(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct merge_iter *mi = mi_of(it);

	if (it->status != FR_OK)
		return;
	for (size_t i = 0; i < mi->cnt; i++) {
		kv_seek_prev(mi->child[i], ikey, len);
		if (!mi_child_ok(mi, i))
			return;
	}
	mi_rebuild(mi, MI_REV);
}

/*
 * Steps the top child one entry in the current direction and restores the heap. The child's
 * key view dies with the step, so nothing may hold it across the call.
 */
static void mi_step_top(struct merge_iter *mi)
{
	size_t top = mi->heap[0];
	struct kv_iter *c = mi->child[top];

	if (mi->dir == MI_FWD)
		kv_next(c);
	else
		kv_prev(c);
	if (!mi_child_ok(mi, top))
		return;
	if (!c->valid)
		mi->heap[0] = mi->heap[--mi->heap_cnt];
	if (mi->heap_cnt > 1)
		mi_sift_down(mi, 0);
	mi_publish(mi);
}

/*
 * Backward to forward at current entry (K, cur): every other child j moves to its first entry
 * after (K, cur) in merged order, that is key > K when j < cur and key >= K when j > cur; the
 * current child then steps forward. K is the current child's view, untouched until last.
 */
static void mi_turn_forward(struct merge_iter *mi)
{
	size_t cur = mi->heap[0];
	const struct kv_iter *cc = mi->child[cur];
	const uint8_t *k = cc->key;
	size_t klen = cc->key_len;

	for (size_t j = 0; j < mi->cnt; j++) {
		struct kv_iter *c = mi->child[j];

		if (j == cur)
			continue;
		kv_seek(c, k, klen);
		if (!mi_child_ok(mi, j))
			return;
		if (j < cur && c->valid && !ikey_cmp(c->key, c->key_len, k, klen)) {
			kv_next(c);
			if (!mi_child_ok(mi, j))
				return;
		}
	}
	kv_next(mi->child[cur]);
	if (!mi_child_ok(mi, cur))
		return;
	mi_rebuild(mi, MI_FWD);
}

/*
 * Forward to backward at current entry (K, cur): every other child j moves to its last entry
 * before (K, cur), that is key <= K when j < cur and key < K when j > cur; the current child
 * then steps back.
 */
static void mi_turn_backward(struct merge_iter *mi)
{
	size_t cur = mi->heap[0];
	const struct kv_iter *cc = mi->child[cur];
	const uint8_t *k = cc->key;
	size_t klen = cc->key_len;

	for (size_t j = 0; j < mi->cnt; j++) {
		struct kv_iter *c = mi->child[j];

		if (j == cur)
			continue;
		kv_seek_prev(c, k, klen);
		if (!mi_child_ok(mi, j))
			return;
		if (j > cur && c->valid && !ikey_cmp(c->key, c->key_len, k, klen)) {
			kv_prev(c);
			if (!mi_child_ok(mi, j))
				return;
		}
	}
	kv_prev(mi->child[cur]);
	if (!mi_child_ok(mi, cur))
		return;
	mi_rebuild(mi, MI_REV);
}

static void mi_next(struct kv_iter *it)
{
	struct merge_iter *mi = mi_of(it);

	if (!it->valid)
		return;
	if (mi->dir == MI_FWD)
		mi_step_top(mi);
	else
		mi_turn_forward(mi);
}

static void mi_prev(struct kv_iter *it)
{
	struct merge_iter *mi = mi_of(it);

	if (!it->valid)
		return;
	if (mi->dir == MI_REV)
		mi_step_top(mi);
	else
		mi_turn_backward(mi);
}

static void mi_free(struct kv_iter *it)
{
	struct merge_iter *mi = mi_of(it);

	if (!mi)
		return;
	for (size_t i = 0; i < mi->cnt; i++)
		kv_free(mi->child[i]);
	fr_free(mi); /* child and heap live in the same allocation */
}

static const struct kv_iter_ops merge_iter_ops = {
	.seek_first = mi_seek_first,
	.seek_last = mi_seek_last,
	.seek = mi_seek,
	.seek_prev = mi_seek_prev,
	.next = mi_next,
	.prev = mi_prev,
	.free = mi_free,
};

/* NULL entries of children are skipped (the others keep their relative order). */
struct kv_iter *merge_iter_new(struct kv_iter **children, size_t cnt)
{
	struct merge_iter *mi;
	size_t n = 0;

	for (size_t i = 0; i < cnt; i++)
		if (children[i])
			n++;
	/* one allocation for the iterator and its two arrays: a user iterator makes one merge
	 * per open */
	if (n > (SIZE_MAX - sizeof(*mi)) / (sizeof(*mi->child) + sizeof(*mi->heap)))
		goto out_free_children;
	mi = fr_malloc(sizeof(*mi) + n * (sizeof(*mi->child) + sizeof(*mi->heap)));
	if (!mi)
		goto out_free_children;
	kv_iter_init(&mi->base, &merge_iter_ops);
	mi->dir = MI_FWD;
	mi->child = (struct kv_iter **)(mi + 1);
	mi->heap = (size_t *)(mi->child + n);
	mi->cnt = 0;
	mi->heap_cnt = 0;
	for (size_t i = 0; i < cnt; i++)
		if (children[i])
			mi->child[mi->cnt++] = children[i];
	return &mi->base;

out_free_children:
	for (size_t i = 0; i < cnt; i++)
		kv_free(children[i]);
	return NULL;
}
