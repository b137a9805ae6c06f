/* SPDX-License-Identifier: MIT */
/*
 * test_merge_iter.c - the merging iterator (compact/merge_iter.h) against a sorted in-memory
 * model. Children are vec_iter test doubles: a sorted array of internal keys with every kv_iter
 * op, which can be told to fail on its Nth positioning call. Random runs print their seed
 * (FR_SEED repeats one).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "compact/merge_iter.h"
#include "testutil.h"

/* ---- vec_iter: a kv_iter over a sorted array ---- */

struct vent {
	uint8_t *key; /* internal key */
	size_t key_len;
	uint8_t *val;
	size_t val_len;
};

struct vec_iter {
	struct kv_iter base;
	struct vent *e; /* strictly increasing by ikey_cmp */
	size_t n;
	size_t pos;       /* meaningful when base.valid */
	unsigned id;      /* child index, for messages */
	unsigned long fail_at; /* fail on this positioning call (1-based), 0 never */
	unsigned long calls;
	int *freed;       /* incremented on free, if set */
};

static void vec_set(struct vec_iter *v, bool valid, size_t pos)
{
	v->base.valid = valid;
	v->pos = pos;
	if (valid) {
		v->base.key = v->e[pos].key;
		v->base.key_len = v->e[pos].key_len;
		v->base.val = v->e[pos].val;
		v->base.val_len = v->e[pos].val_len;
	} else {
		v->base.key = NULL;
		v->base.key_len = 0;
		v->base.val = NULL;
		v->base.val_len = 0;
	}
}

/* Counts a positioning call; false if the iterator has failed (now or before). */
static bool vec_call(struct vec_iter *v)
{
	v->calls++;
	if (v->base.status == FR_OK && v->fail_at && v->calls >= v->fail_at)
		v->base.status = FR_ERR(&v->base.err, FR_IO, "vec child %u failed at call %lu",
					v->id, v->calls);
	if (v->base.status != FR_OK) {
		vec_set(v, false, 0);
		return false;
	}
	return true;
}

/* The first index whose key is >= target (upper: > target). */
static size_t vec_bound(const struct vec_iter *v, const uint8_t *k, size_t n, bool upper)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ikey_cmp(v->e[mid].key, v->e[mid].key_len, k, n);

		if (c < 0 || (upper && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void vec_seek_first(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;

	if (vec_call(v))
		vec_set(v, v->n > 0, 0);
}

static void vec_seek_last(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;

	if (vec_call(v))
		vec_set(v, v->n > 0, v->n ? v->n - 1 : 0);
}

static void vec_seek(struct kv_iter *it, const uint8_t *k, size_t n)
{
	struct vec_iter *v = (struct vec_iter *)it;

	if (vec_call(v)) {
		size_t i = vec_bound(v, k, n, false);

		vec_set(v, i < v->n, i);
	}
}

static void vec_seek_prev(struct kv_iter *it, const uint8_t *k, size_t n)
{
	struct vec_iter *v = (struct vec_iter *)it;

	if (vec_call(v)) {
		size_t i = vec_bound(v, k, n, true);

		vec_set(v, i > 0, i ? i - 1 : 0);
	}
}

static void vec_next(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;

	assert_true(v->base.valid); /* the merged iterator never steps an invalid child */
	if (vec_call(v))
		vec_set(v, v->pos + 1 < v->n, v->pos + 1);
}

static void vec_prev(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;

	assert_true(v->base.valid);
	if (vec_call(v))
		vec_set(v, v->pos > 0, v->pos ? v->pos - 1 : 0);
}

static void vec_free(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;

	if (v->freed)
		(*v->freed)++;
	for (size_t i = 0; i < v->n; i++) {
		free(v->e[i].key);
		free(v->e[i].val);
	}
	free(v->e);
	free(v);
}

static const struct kv_iter_ops vec_ops = {
	.seek_first = vec_seek_first,
	.seek_last = vec_seek_last,
	.seek = vec_seek,
	.seek_prev = vec_seek_prev,
	.next = vec_next,
	.prev = vec_prev,
	.free = vec_free,
};

static struct vec_iter *vec_new(unsigned id)
{
	struct vec_iter *v = calloc(1, sizeof(*v));

	assert_non_null(v);
	v->base.ops = &vec_ops;
	v->id = id;
	return v;
}

static uint8_t *ikey_make(const char *ukey, size_t ulen, uint64_t seqno, uint8_t type,
			  size_t *len)
{
	uint8_t *k = malloc(ulen + IKEY_TRAILER_LEN);

	assert_non_null(k);
	ikey_encode(k, ukey, ulen, seqno, type);
	*len = ulen + IKEY_TRAILER_LEN;
	return k;
}

/* Appends an entry (keys must be appended in increasing order; checked). Value "c<id>:<pos>". */
static void vec_add(struct vec_iter *v, const char *ukey, size_t ulen, uint64_t seqno,
		    uint8_t type)
{
	struct vent *e;
	char buf[32];

	v->e = realloc(v->e, (v->n + 1) * sizeof(*v->e));
	assert_non_null(v->e);
	e = &v->e[v->n];
	e->key = ikey_make(ukey, ulen, seqno, type, &e->key_len);
	if (v->n)
		assert_true(ikey_cmp(v->e[v->n - 1].key, v->e[v->n - 1].key_len, e->key,
				     e->key_len) < 0);
	snprintf(buf, sizeof(buf), "c%u:%zu", v->id, v->n);
	e->val_len = strlen(buf);
	e->val = (uint8_t *)strdup(buf);
	assert_non_null(e->val);
	v->n++;
}

/* ---- the model: every entry of every child sorted by (ikey, child) ---- */

struct ment {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *val;
	size_t val_len;
	unsigned child;
};

struct model {
	struct ment *e;
	size_t n;
};

static int ment_cmp(const void *pa, const void *pb)
{
	const struct ment *a = pa, *b = pb;
	int c = ikey_cmp(a->key, a->key_len, b->key, b->key_len);

	if (c)
		return c;
	return a->child < b->child ? -1 : a->child > b->child;
}

static void model_build(struct model *m, struct vec_iter **v, size_t cnt)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < cnt; i++)
		n += v[i]->n;
	m->e = calloc(n ? n : 1, sizeof(*m->e));
	assert_non_null(m->e);
	for (size_t i = 0; i < cnt; i++)
		for (size_t j = 0; j < v[i]->n; j++) {
			m->e[k].key = v[i]->e[j].key;
			m->e[k].key_len = v[i]->e[j].key_len;
			m->e[k].val = v[i]->e[j].val;
			m->e[k].val_len = v[i]->e[j].val_len;
			m->e[k].child = v[i]->id;
			k++;
		}
	m->n = n;
	qsort(m->e, n, sizeof(*m->e), ment_cmp);
}

/* First model index with key >= target (upper: > target). */
static size_t model_bound(const struct model *m, const uint8_t *k, size_t n, bool upper)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ikey_cmp(m->e[mid].key, m->e[mid].key_len, k, n);

		if (c < 0 || (upper && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Asserts that the merged iterator sits at model position pos (-1 or m->n: invalid). */
static void check_at(const struct kv_iter *it, const struct model *m, long pos,
		     unsigned long step)
{
	if (pos < 0 || (size_t)pos >= m->n) {
		if (it->valid)
			fail_msg("step %lu: merged iterator valid, model exhausted", step);
		assert_int_equal(it->status, FR_OK);
		return;
	}
	if (!it->valid)
		fail_msg("step %lu: merged iterator invalid, model at %ld of %zu", step, pos, m->n);
	assert_int_equal(it->status, FR_OK);
	const struct ment *e = &m->e[pos];
	if (it->key_len != e->key_len || memcmp(it->key, e->key, e->key_len) ||
	    it->val_len != e->val_len || memcmp(it->val, e->val, e->val_len))
		fail_msg("step %lu: at model %ld expected %.*s got %.*s", step, pos,
			 (int)e->val_len, (const char *)e->val, (int)it->val_len,
			 (const char *)it->val);
}

static struct kv_iter *merge_of(struct vec_iter **v, size_t cnt)
{
	struct kv_iter *kids[64];
	struct kv_iter *it;

	assert_true(cnt <= 64);
	for (size_t i = 0; i < cnt; i++)
		kids[i] = &v[i]->base;
	it = merge_iter_new(cnt ? kids : NULL, cnt);
	assert_non_null(it);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_OK);
	return it;
}

/* ---- random children ---- */

static const char ALPHA[] = "abcd";

static size_t rand_ukey(uint64_t *rs, char *out)
{
	size_t n = (size_t)tu_rand_below(rs, 4); /* 0..3 chars: the empty user key included */

	for (size_t i = 0; i < n; i++)
		out[i] = ALPHA[tu_rand_below(rs, 4)];
	return n;
}

static uint8_t rand_type(uint64_t *rs)
{
	return (uint8_t)tu_rand_below(rs, 3); /* VT_DEL, VT_PUT, VT_WEAK_DEL */
}

struct spec {
	char ukey[4];
	size_t ulen;
	uint64_t seqno;
	uint8_t type;
	uint8_t *ik;
	size_t ik_len;
};

static int spec_cmp(const void *pa, const void *pb)
{
	const struct spec *a = pa, *b = pb;

	return ikey_cmp(a->ik, a->ik_len, b->ik, b->ik_len);
}

/* A child with up to max random entries (duplicates across children are likely). */
static struct vec_iter *rand_child(uint64_t *rs, unsigned id, size_t max)
{
	struct vec_iter *v = vec_new(id);
	size_t n = (size_t)tu_rand_below(rs, max + 1);
	struct spec *s = calloc(n ? n : 1, sizeof(*s));

	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		s[i].ulen = rand_ukey(rs, s[i].ukey);
		s[i].seqno = tu_rand_below(rs, 6);
		if (tu_rand_below(rs, 50) == 0)
			s[i].seqno = SEQNO_MAX;
		s[i].type = rand_type(rs);
		s[i].ik = ikey_make(s[i].ukey, s[i].ulen, s[i].seqno, s[i].type, &s[i].ik_len);
	}
	qsort(s, n, sizeof(*s), spec_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || spec_cmp(&s[i - 1], &s[i]) != 0)
			vec_add(v, s[i].ukey, s[i].ulen, s[i].seqno, s[i].type);
	}
	for (size_t i = 0; i < n; i++)
		free(s[i].ik);
	free(s);
	return v;
}

/* A seek target: an existing key (half the time, when any) or a random one, maybe VT_SEEK. */
static uint8_t *rand_target(uint64_t *rs, const struct model *m, size_t *len)
{
	if (m->n && tu_rand_below(rs, 2)) {
		const struct ment *e = &m->e[tu_rand_below(rs, m->n)];
		uint8_t *k = malloc(e->key_len);

		assert_non_null(k);
		memcpy(k, e->key, e->key_len);
		*len = e->key_len;
		return k;
	}
	char u[4];
	size_t ulen = rand_ukey(rs, u);
	uint8_t type = tu_rand_below(rs, 4) ? rand_type(rs) : VT_SEEK;

	return ikey_make(u, ulen, tu_rand_below(rs, 7), type, len);
}

/* Full scans both ways, then `steps` random operations, all checked against the model. */
static void run_random(uint64_t *rs, size_t cnt, size_t max_per_child, unsigned long steps)
{
	struct vec_iter *v[64];
	struct model m;
	struct kv_iter *it;
	long pos;

	for (size_t i = 0; i < cnt; i++)
		v[i] = rand_child(rs, (unsigned)i, max_per_child);
	model_build(&m, v, cnt);
	it = merge_of(v, cnt);

	/* forward and backward full scans */
	kv_seek_first(it);
	for (pos = 0; (size_t)pos < m.n; pos++) {
		check_at(it, &m, pos, (unsigned long)pos);
		kv_next(it);
	}
	check_at(it, &m, pos, (unsigned long)pos);
	kv_seek_last(it);
	for (pos = (long)m.n - 1; pos >= 0; pos--) {
		check_at(it, &m, pos, (unsigned long)pos);
		kv_prev(it);
	}
	check_at(it, &m, -1, 0);

	/* random walk */
	pos = -1;
	for (unsigned long s = 0; s < steps; s++) {
		uint64_t op = tu_rand_below(rs, 20);
		uint8_t *t;
		size_t tlen;

		if (op == 0) {
			kv_seek_first(it);
			pos = 0;
		} else if (op == 1) {
			kv_seek_last(it);
			pos = (long)m.n - 1;
		} else if (op <= 3) {
			t = rand_target(rs, &m, &tlen);
			kv_seek(it, t, tlen);
			pos = (long)model_bound(&m, t, tlen, false);
			free(t);
		} else if (op <= 5) {
			t = rand_target(rs, &m, &tlen);
			kv_seek_prev(it, t, tlen);
			pos = (long)model_bound(&m, t, tlen, true) - 1;
			free(t);
		} else if (op <= 12) {
			kv_next(it);
			if (pos >= 0 && (size_t)pos < m.n)
				pos++;
		} else {
			kv_prev(it);
			if (pos >= 0 && (size_t)pos < m.n)
				pos--;
		}
		if (pos < 0 || (size_t)pos >= m.n)
			pos = -1;
		check_at(it, &m, pos, s);
	}
	kv_free(it);
	free(m.e);
}

static void test_merge_iter_random_small(void **state)
{
	(void)state;
	uint64_t rs = tu_seed();

	for (int round = 0; round < 300; round++)
		run_random(&rs, (size_t)tu_rand_below(&rs, 5), 40, 3000);
}

static void test_merge_iter_random_many_children(void **state)
{
	(void)state;
	uint64_t rs = tu_seed() ^ 0x9e3779b97f4a7c15ull;

	for (int round = 0; round < 80; round++)
		run_random(&rs, 5 + (size_t)tu_rand_below(&rs, 40), 30, 4000);
}

/* Few distinct keys, many children: long runs of equal internal keys. */
static void test_merge_iter_random_dense_duplicates(void **state)
{
	(void)state;
	uint64_t rs = tu_seed() ^ 0x1234567ull;

	for (int round = 0; round < 40; round++) {
		size_t cnt = 2 + (size_t)tu_rand_below(&rs, 20);
		struct vec_iter *v[64];
		struct model m;
		struct kv_iter *it;
		long pos = -1;

		/* every child holds a random subset of {"", "a", "b"} x seqno {1, 2} as VT_PUT */
		for (size_t i = 0; i < cnt; i++) {
			static const char *uk[] = { "", "a", "b" };

			v[i] = vec_new((unsigned)i);
			for (int k = 0; k < 3; k++)
				for (int sq = 2; sq >= 1; sq--)
					if (tu_rand_below(&rs, 3))
						vec_add(v[i], uk[k], strlen(uk[k]),
							(uint64_t)sq, VT_PUT);
		}
		model_build(&m, v, cnt);
		it = merge_of(v, cnt);
		kv_seek_first(it);
		pos = m.n ? 0 : -1;
		check_at(it, &m, pos, 0);
		for (unsigned long s = 1; s < 3000; s++) {
			if (tu_rand_below(&rs, 2)) {
				kv_next(it);
				if (pos >= 0)
					pos++;
			} else {
				kv_prev(it);
				if (pos >= 0)
					pos--;
			}
			if (pos < 0 || (size_t)pos >= m.n) {
				check_at(it, &m, -1, s);
				/* re-enter from a random end */
				if (tu_rand_below(&rs, 2)) {
					kv_seek_first(it);
					pos = m.n ? 0 : -1;
				} else {
					kv_seek_last(it);
					pos = (long)m.n - 1;
				}
			}
			check_at(it, &m, pos, s);
		}
		kv_free(it);
		free(m.e);
	}
}

/* ---- fixed cases ---- */

static void all_ops_invalid(struct kv_iter *it)
{
	uint8_t t[IKEY_TRAILER_LEN + 1];
	size_t tlen;

	ikey_encode(t, "a", 1, 5, VT_SEEK);
	tlen = sizeof(t);
	kv_seek_first(it);
	assert_false(it->valid);
	kv_seek_last(it);
	assert_false(it->valid);
	kv_seek(it, t, tlen);
	assert_false(it->valid);
	kv_seek_prev(it, t, tlen);
	assert_false(it->valid);
	kv_next(it);
	assert_false(it->valid);
	kv_prev(it);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_OK);
}

static void test_merge_iter_empty(void **state)
{
	(void)state;
	struct vec_iter *v[3];
	struct kv_iter *it;

	it = merge_of(NULL, 0); /* no children at all */
	all_ops_invalid(it);
	kv_free(it);

	for (unsigned i = 0; i < 3; i++) /* only empty children */
		v[i] = vec_new(i);
	it = merge_of(v, 3);
	all_ops_invalid(it);
	kv_free(it);
}

static void test_merge_iter_single_child(void **state)
{
	(void)state;
	struct vec_iter *v = vec_new(0);
	struct model m;
	struct kv_iter *it;
	uint8_t t[IKEY_TRAILER_LEN + 1];

	vec_add(v, "", 0, 3, VT_PUT);
	vec_add(v, "a", 1, 9, VT_PUT);
	vec_add(v, "a", 1, 4, VT_DEL);
	vec_add(v, "c", 1, 1, VT_PUT);
	model_build(&m, &v, 1);
	it = merge_of(&v, 1);

	kv_seek_first(it);
	for (long p = 0; p < 4; p++) {
		check_at(it, &m, p, 0);
		kv_next(it);
	}
	check_at(it, &m, -1, 0);
	kv_next(it); /* stays exhausted */
	check_at(it, &m, -1, 0);

	kv_seek_last(it);
	for (long p = 3; p >= 0; p--) {
		check_at(it, &m, p, 0);
		kv_prev(it);
	}
	check_at(it, &m, -1, 0);

	ikey_encode(t, "a", 1, 5, VT_SEEK); /* newest "a" with seqno <= 5 */
	kv_seek(it, t, sizeof(t));
	check_at(it, &m, 2, 0);
	kv_prev(it);
	check_at(it, &m, 1, 0);
	kv_seek_prev(it, t, sizeof(t)); /* last entry <= a@5: a@9 */
	check_at(it, &m, 1, 0);
	kv_next(it);
	check_at(it, &m, 2, 0);

	ikey_encode(t, "b", 1, 5, VT_SEEK);
	kv_seek(it, t, sizeof(t));
	check_at(it, &m, 3, 0);
	kv_seek_prev(it, t, sizeof(t));
	check_at(it, &m, 2, 0);
	ikey_encode(t, "d", 1, 0, VT_DEL);
	kv_seek(it, t, sizeof(t));
	check_at(it, &m, -1, 0);
	kv_seek_prev(it, t, 1 + IKEY_TRAILER_LEN);
	check_at(it, &m, 3, 0);

	kv_free(it);
	free(m.e);
}

static void expect_val(const struct kv_iter *it, const char *val)
{
	assert_true(it->valid);
	assert_int_equal(it->val_len, strlen(val));
	assert_memory_equal(it->val, val, it->val_len);
}

/* Equal internal keys in several children: lower child index first, in both directions. */
static void test_merge_iter_duplicates_across_children(void **state)
{
	(void)state;
	struct vec_iter *v[3];
	struct kv_iter *it;
	uint8_t t[IKEY_TRAILER_LEN + 1];

	for (unsigned i = 0; i < 3; i++)
		v[i] = vec_new(i);
	vec_add(v[1], "a", 1, 7, VT_PUT); /* c1:0 */
	for (unsigned i = 0; i < 3; i++) {
		vec_add(v[i], "a", 1, 5, VT_PUT);
		vec_add(v[i], "b", 1, 3, VT_PUT);
	}
	/* merged: a@7 c1:0 | a@5 c0:0 c1:1 c2:0 | b@3 c0:1 c1:2 c2:1 */
	static const char *fwd[] = { "c1:0", "c0:0", "c1:1", "c2:0", "c0:1", "c1:2", "c2:1" };
	it = merge_of(v, 3);

	kv_seek_first(it);
	for (int i = 0; i < 7; i++) {
		expect_val(it, fwd[i]);
		kv_next(it);
	}
	assert_false(it->valid);
	kv_seek_last(it);
	for (int i = 6; i >= 0; i--) {
		expect_val(it, fwd[i]);
		kv_prev(it);
	}
	assert_false(it->valid);

	/* direction switches inside a run of equal keys */
	ikey_encode(t, "a", 1, 5, VT_PUT);
	kv_seek(it, t, sizeof(t));
	expect_val(it, "c0:0");
	kv_next(it);
	expect_val(it, "c1:1");
	kv_prev(it);
	expect_val(it, "c0:0");
	kv_prev(it);
	expect_val(it, "c1:0");
	kv_next(it);
	expect_val(it, "c0:0");
	kv_next(it);
	expect_val(it, "c1:1");
	kv_next(it);
	expect_val(it, "c2:0");
	kv_prev(it);
	expect_val(it, "c1:1");
	kv_next(it);
	expect_val(it, "c2:0");
	kv_next(it);
	expect_val(it, "c0:1");
	kv_prev(it);
	expect_val(it, "c2:0");

	/* seek_prev to an existing key lands on its last copy */
	kv_seek_prev(it, t, sizeof(t));
	expect_val(it, "c2:0");
	kv_prev(it);
	expect_val(it, "c1:1");
	kv_next(it);
	expect_val(it, "c2:0");
	kv_next(it);
	expect_val(it, "c0:1");

	kv_free(it);
}

/* NULL entries in the children array are skipped; children are freed with the iterator. */
static void test_merge_iter_null_children_and_ownership(void **state)
{
	(void)state;
	int freed = 0;
	struct vec_iter *a = vec_new(0), *b = vec_new(1);
	struct kv_iter *kids[4];
	struct kv_iter *it;

	a->freed = b->freed = &freed;
	vec_add(a, "x", 1, 1, VT_PUT);
	vec_add(b, "x", 1, 1, VT_PUT);
	kids[0] = NULL;
	kids[1] = &a->base;
	kids[2] = NULL;
	kids[3] = &b->base;
	it = merge_iter_new(kids, 4);
	assert_non_null(it);
	kv_seek_last(it);
	expect_val(it, "c1:0");
	kv_prev(it);
	expect_val(it, "c0:0");
	kv_prev(it);
	assert_false(it->valid);
	kv_free(it);
	assert_int_equal(freed, 2);
}

/* Out of memory in merge_iter_new: NULL, and every child freed. */
static void test_merge_iter_nomem(void **state)
{
	(void)state;
	bool done = false;

	for (unsigned long n = 1; !done && n < 100; n++) {
		int freed = 0;
		struct kv_iter *kids[5];
		struct kv_iter *it;

		for (unsigned i = 0; i < 5; i++) {
			struct vec_iter *v = vec_new(i);

			v->freed = &freed;
			vec_add(v, "k", 1, i, VT_PUT);
			kids[i] = &v->base;
		}
		fr_alloc_fail_at(n);
		it = merge_iter_new(kids, 5);
		fr_alloc_fail_at(0);
		if (!it) {
			assert_int_equal(freed, 5);
			continue;
		}
		done = true;
		assert_true(n > 1); /* at least the first allocation must have mattered */
		kv_seek_first(it);
		expect_val(it, "c4:0"); /* k@4 is the newest */
		kv_free(it);
		assert_int_equal(freed, 5);
	}
	assert_true(done);
}

/*
 * A child failing on its Nth positioning call, for every N until the scenario completes: before
 * the failure the merged iterator matches the model, after it the iterator is invalid with the
 * child's status and message, and stays so whatever is called.
 */
static void test_merge_iter_failing_child(void **state)
{
	(void)state;
	uint64_t rs = tu_seed() ^ 0xfa11ull;
	bool completed = false;

	for (unsigned long n = 1; !completed; n++) {
		uint64_t rs_run = rs;
		struct vec_iter *v[4];
		struct model m;
		struct kv_iter *it;
		long pos = -1;
		bool failed = false;

		assert_true(n < 10000);
		for (unsigned i = 0; i < 4; i++) {
			v[i] = vec_new(i);
			for (int k = 0; k < 12; k++) {
				char u[2] = { (char)('a' + k), 0 };

				if (tu_rand_below(&rs_run, 2))
					vec_add(v[i], u, 1, 1, VT_PUT);
			}
		}
		if (!v[2]->n)
			vec_add(v[2], "m", 1, 1, VT_PUT); /* the failing child has something */
		v[2]->fail_at = n;
		model_build(&m, v, 4);
		it = merge_of(v, 4);

		for (unsigned long s = 0; s < 60 && !failed; s++) {
			uint64_t op = s == 0 ? 0 : tu_rand_below(&rs_run, 8);
			uint8_t t[IKEY_TRAILER_LEN + 1];
			char u = (char)('a' + tu_rand_below(&rs_run, 13));

			ikey_encode(t, &u, 1, 1, VT_PUT);
			switch (op) {
			case 0:
				kv_seek_first(it);
				pos = 0;
				break;
			case 1:
				kv_seek_last(it);
				pos = (long)m.n - 1;
				break;
			case 2:
				kv_seek(it, t, sizeof(t));
				pos = (long)model_bound(&m, t, sizeof(t), false);
				break;
			case 3:
				kv_seek_prev(it, t, sizeof(t));
				pos = (long)model_bound(&m, t, sizeof(t), true) - 1;
				break;
			case 4:
			case 5:
				kv_next(it);
				if (pos >= 0)
					pos++;
				break;
			default:
				kv_prev(it);
				if (pos >= 0)
					pos--;
				break;
			}
			if (pos < 0 || (size_t)pos >= m.n)
				pos = -1;
			if (v[2]->base.status != FR_OK) {
				failed = true;
				assert_false(it->valid);
				assert_int_equal(it->status, FR_IO);
				assert_int_equal(it->err.code, FR_IO);
				assert_string_equal(it->err.msg, v[2]->base.err.msg);
				assert_non_null(strstr(it->err.msg, "vec child 2 failed"));
			} else {
				check_at(it, &m, pos, s);
			}
		}
		if (failed) {
			/* sticky: nothing revives it, not even the child recovering */
			v[2]->base.status = FR_OK;
			v[2]->fail_at = 0;
			kv_seek_first(it);
			assert_false(it->valid);
			assert_int_equal(it->status, FR_IO);
			kv_seek_last(it);
			assert_false(it->valid);
			kv_next(it);
			kv_prev(it);
			assert_false(it->valid);
			assert_int_equal(it->status, FR_IO);
		} else {
			completed = true;
			assert_true(n > 1);
		}
		kv_free(it);
		free(m.e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_iter_empty),
		cmocka_unit_test(test_merge_iter_single_child),
		cmocka_unit_test(test_merge_iter_duplicates_across_children),
		cmocka_unit_test(test_merge_iter_null_children_and_ownership),
		cmocka_unit_test(test_merge_iter_nomem),
		cmocka_unit_test(test_merge_iter_failing_child),
		cmocka_unit_test(test_merge_iter_random_small),
		cmocka_unit_test(test_merge_iter_random_many_children),
		cmocka_unit_test(test_merge_iter_random_dense_duplicates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
