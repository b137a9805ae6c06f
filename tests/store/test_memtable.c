/* SPDX-License-Identifier: MIT */
/*
 * test_memtable.c - memtables (memtable/memtable.c): point reads at snapshots, range tombstones,
 * counters, the kv_iter over all entries (both directions, against a sorted model), reference
 * counting, allocation failures, and readers running concurrently with the writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/coding.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/sync.h"
#include "blob/blob.h"
#include "io/io.h"
#include "io/io_mem.h"
#include "memtable/memtable.h"
#include "testutil.h"

#define MAXK 24

static int setup(void **state)
{
	struct mem *m = mem_new(42);

	if (!m)
		return -1;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	fr_alloc_fail_at(0);
	mem_unref(*state);
	return 0;
}

static void put(struct mem *m, const char *k, uint64_t seq, uint8_t type, const char *v)
{
	assert_int_equal(mem_put(m, k, strlen(k), seq, type, v, strlen(v)), FR_OK);
}

/* Expects mem_get(k, snap) to find version seq of type `type` holding v. */
static void expect_get(struct mem *m, const char *k, uint64_t snap, uint64_t seq, uint8_t type,
		       const char *v)
{
	uint8_t t = 0xee;
	uint64_t s = 0;
	const uint8_t *val = NULL;
	size_t vlen = 0;

	assert_int_equal(mem_get(m, k, strlen(k), snap, &t, &s, &val, &vlen), FR_OK);
	assert_int_equal(s, seq);
	assert_int_equal(t, type);
	assert_int_equal(vlen, strlen(v));
	assert_memory_equal(val, v, vlen);
}

static void expect_none(struct mem *m, const char *k, uint64_t snap)
{
	uint8_t t;
	uint64_t s;
	const uint8_t *val;
	size_t vlen;

	assert_int_equal(mem_get(m, k, strlen(k), snap, &t, &s, &val, &vlen), FR_NOT_FOUND);
}

static void test_memtable_new_is_empty(void **state)
{
	struct mem *m = *state;
	struct kv_iter *it;

	assert_int_equal(mem_id(m), 42);
	assert_true(mem_is_empty(m));
	assert_int_equal(mem_entry_cnt(m), 0);
	assert_int_equal(mem_max_seqno(m), 0);
	assert_int_equal(mem_range_del_cnt(m), 0);
	expect_none(m, "a", SEQNO_MAX);
	it = mem_iter_new(m);
	assert_non_null(it);
	kv_seek_first(it);
	assert_false(it->valid);
	kv_seek_last(it);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_OK);
	kv_free(it);
	mem_unref(NULL); /* accepted */
}

static void test_memtable_get_at_snapshots(void **state)
{
	struct mem *m = *state;

	put(m, "k", 5, VT_PUT, "v5");
	put(m, "k", 10, VT_PUT, "v10");
	put(m, "k", 15, VT_DEL, "");
	put(m, "k", 20, VT_PUT, "v20");
	put(m, "j", 30, VT_PUT, "j30");
	put(m, "kk", 1, VT_PUT, "kk1");
	put(m, "l", 3, VT_WEAK_DEL, "");

	expect_none(m, "k", 0);
	expect_none(m, "k", 4);
	expect_get(m, "k", 5, 5, VT_PUT, "v5");
	expect_get(m, "k", 9, 5, VT_PUT, "v5");
	expect_get(m, "k", 10, 10, VT_PUT, "v10");
	expect_get(m, "k", 14, 10, VT_PUT, "v10");
	expect_get(m, "k", 15, 15, VT_DEL, ""); /* tombstones are returned as such */
	expect_get(m, "k", 19, 15, VT_DEL, "");
	expect_get(m, "k", 20, 20, VT_PUT, "v20");
	expect_get(m, "k", SEQNO_MAX, 20, VT_PUT, "v20");
	expect_get(m, "k", UINT64_MAX, 20, VT_PUT, "v20"); /* clamped to SEQNO_MAX */
	/* user keys must match exactly: no prefix or neighbour answers */
	expect_none(m, "j", 29);
	expect_get(m, "j", 30, 30, VT_PUT, "j30");
	expect_get(m, "kk", 100, 1, VT_PUT, "kk1");
	expect_none(m, "", 100);
	expect_none(m, "ka", 100);
	expect_none(m, "kkk", 100);
	expect_none(m, "m", 100);
	expect_get(m, "l", 3, 3, VT_WEAK_DEL, "");

	/* the empty user key is a key like any other */
	put(m, "", 7, VT_PUT, "empty");
	expect_get(m, "", 7, 7, VT_PUT, "empty");
	expect_none(m, "", 6);

	assert_int_equal(mem_entry_cnt(m), 8);
	assert_int_equal(mem_max_seqno(m), 30);
	assert_false(mem_is_empty(m));
}

struct rd_seen {
	size_t cnt;
	struct {
		char start[16];
		char end[16];
		uint64_t seqno;
	} rd[8];
};

static void collect_rd(void *ctx, const struct range_del *rd)
{
	struct rd_seen *s = ctx;

	if (s->cnt < 8) {
		snprintf(s->rd[s->cnt].start, 16, "%.*s", (int)rd->start_len, rd->start);
		snprintf(s->rd[s->cnt].end, 16, "%.*s", (int)rd->end_len, rd->end);
		s->rd[s->cnt].seqno = rd->seqno;
	}
	s->cnt++;
}

static void test_memtable_range_dels_listed(void **state)
{
	struct mem *m = *state;
	struct rd_seen s = { 0 };
	const char *starts[] = { "b", "", "x" }, *ends[] = { "d", "a", "zz" };
	uint64_t seqs[] = { 9, 3, 12 };

	mem_range_dels_each(m, collect_rd, &s);
	assert_int_equal(s.cnt, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(mem_add_range_del(m, starts[i], strlen(starts[i]), ends[i],
						   strlen(ends[i]), seqs[i]),
				 FR_OK);
	/* a memtable holding only range tombstones is not empty */
	assert_false(mem_is_empty(m));
	assert_int_equal(mem_entry_cnt(m), 0);
	assert_int_equal(mem_range_del_cnt(m), 3);
	assert_int_equal(mem_max_seqno(m), 12);
	assert_true(mem_bytes(m) > 0);

	mem_range_dels_each(m, collect_rd, &s);
	assert_int_equal(s.cnt, 3);
	for (int i = 0; i < 3; i++) { /* in the order added */
		assert_string_equal(s.rd[i].start, starts[i]);
		assert_string_equal(s.rd[i].end, ends[i]);
		assert_int_equal(s.rd[i].seqno, seqs[i]);
	}
	/* range tombstones do not hide point entries in mem_get */
	put(m, "c", 2, VT_PUT, "c2");
	expect_get(m, "c", 100, 2, VT_PUT, "c2");
	assert_int_equal(mem_add_range_del(m, "a", 1, "b", 1, SEQNO_MAX + 1), FR_INVALID);
	assert_int_equal(mem_range_del_cnt(m), 3);
}

static void test_memtable_bad_puts(void **state)
{
	struct mem *m = *state;

	assert_int_equal(mem_put(m, "a", 1, SEQNO_MAX + 1, VT_PUT, "", 0), FR_INVALID);
	assert_int_equal(mem_put(m, "a", 1, 1, VT_SEEK, "", 0), FR_INVALID);
	put(m, "a", 1, VT_PUT, "x");
	/* the same (ukey, seqno, type) twice is refused and changes nothing */
	assert_int_equal(mem_put(m, "a", 1, 1, VT_PUT, "y", 1), FR_INVALID);
	expect_get(m, "a", 1, 1, VT_PUT, "x");
	assert_int_equal(mem_entry_cnt(m), 1);
	put(m, "a", SEQNO_MAX, VT_PUT, "max");
	expect_get(m, "a", SEQNO_MAX, SEQNO_MAX, VT_PUT, "max");
	assert_int_equal(mem_max_seqno(m), SEQNO_MAX);
}

/* A model entry: internal key + value. */
struct ment {
	uint8_t key[MAXK];
	size_t len;
	uint8_t val[8];
	size_t vlen;
};

static int ment_cmp(const void *a, const void *b)
{
	const struct ment *x = a, *y = b;

	return ikey_cmp(x->key, x->len, y->key, y->len);
}

static void check_it(const struct kv_iter *it, const struct ment *e)
{
	assert_true(it->valid);
	assert_int_equal(it->status, FR_OK);
	assert_int_equal(it->key_len, e->len);
	assert_memory_equal(it->key, e->key, e->len);
	assert_int_equal(it->val_len, e->vlen);
	if (e->vlen)
		assert_memory_equal(it->val, e->val, e->vlen);
}

static size_t model_lower(const struct ment *m, size_t n, const uint8_t *k, size_t len, bool eq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ikey_cmp(m[mid].key, m[mid].len, k, len);

		if (c < 0 || (eq && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void test_memtable_iter_model(void **state)
{
	struct mem *m = *state;
	const size_t n = 5000;
	struct ment *mod = calloc(n, sizeof(*mod));
	uint64_t rs = tu_seed() ^ 0x99;
	struct kv_iter *it;
	size_t i, pos;
	uint64_t bytes0 = mem_bytes(m);

	assert_non_null(mod);
	for (i = 0; i < n; i++) {
		uint8_t uk[6];
		size_t ulen = (size_t)tu_rand_below(&rs, 5);
		uint8_t type = (uint8_t)tu_rand_below(&rs, 3);

		for (size_t j = 0; j < ulen; j++)
			uk[j] = (uint8_t)('a' + tu_rand_below(&rs, 3));
		mod[i].len = ulen + IKEY_TRAILER_LEN;
		ikey_encode(mod[i].key, uk, ulen, i + 1, type);
		mod[i].vlen = type == VT_PUT ? (size_t)tu_rand_below(&rs, 9) : 0;
		for (size_t j = 0; j < mod[i].vlen; j++)
			mod[i].val[j] = (uint8_t)tu_rand(&rs);
		assert_int_equal(mem_put(m, uk, ulen, i + 1, type, mod[i].val, mod[i].vlen), FR_OK);
	}
	assert_int_equal(mem_entry_cnt(m), n);
	assert_int_equal(mem_max_seqno(m), n);
	assert_true(mem_bytes(m) > bytes0 + n * IKEY_TRAILER_LEN);
	qsort(mod, n, sizeof(*mod), ment_cmp);

	it = mem_iter_new(m);
	assert_non_null(it);
	kv_seek_first(it);
	for (i = 0; i < n; i++) {
		check_it(it, &mod[i]);
		kv_next(it);
	}
	assert_false(it->valid);
	kv_seek_last(it);
	for (i = n; i-- > 0;) {
		check_it(it, &mod[i]);
		kv_prev(it);
	}
	assert_false(it->valid);

	/* random seeks, then a random walk that changes direction */
	for (int r = 0; r < 500; r++) {
		uint8_t t[MAXK];
		size_t tlen;

		if (r % 3 == 0) {
			const struct ment *e = &mod[tu_rand_below(&rs, n)];

			memcpy(t, e->key, e->len);
			tlen = e->len;
		} else {
			uint8_t uk[6];
			size_t ulen = (size_t)tu_rand_below(&rs, 5);

			for (size_t j = 0; j < ulen; j++)
				uk[j] = (uint8_t)('a' + tu_rand_below(&rs, 4));
			ikey_encode(t, uk, ulen, tu_rand_below(&rs, n + 2), VT_SEEK);
			tlen = ulen + IKEY_TRAILER_LEN;
		}
		if (r % 2) {
			kv_seek(it, t, tlen);
			pos = model_lower(mod, n, t, tlen, false);
		} else {
			kv_seek_prev(it, t, tlen);
			pos = model_lower(mod, n, t, tlen, true);
			pos = pos == 0 ? n : pos - 1; /* n: before the first */
		}
		for (int step = 0; step < 20; step++) {
			if (pos >= n) {
				assert_false(it->valid);
				break;
			}
			check_it(it, &mod[pos]);
			if (tu_rand_below(&rs, 2)) {
				kv_next(it);
				pos++;
			} else {
				kv_prev(it);
				pos = pos == 0 ? n : pos - 1;
			}
		}
	}
	kv_free(it);
	free(mod);
}

static void test_memtable_iter_holds_ref(void **state)
{
	struct mem *m = mem_new(7);
	struct kv_iter *it;

	(void)state;
	assert_non_null(m);
	put(m, "a", 1, VT_PUT, "1");
	put(m, "b", 2, VT_PUT, "2");
	it = mem_iter_new(m);
	assert_non_null(it);
	mem_unref(m); /* the iterator's reference keeps m alive (ASan would catch a free) */
	kv_seek_last(it);
	assert_true(it->valid);
	assert_memory_equal(it->key, "b", 1);
	kv_prev(it);
	assert_true(it->valid);
	assert_memory_equal(it->val, "1", 1);
	kv_prev(it);
	assert_false(it->valid);
	kv_free(it); /* last reference: frees m */

	/* mem_ref/mem_unref pair */
	m = mem_new(8);
	assert_non_null(m);
	mem_ref(m);
	mem_unref(m);
	put(m, "x", 1, VT_PUT, "");
	mem_unref(m);
}

static void test_memtable_nomem(void **state)
{
	struct mem *m;
	unsigned long at;
	char big[5000];

	(void)state;
	/* mem_new fails cleanly at each of its allocations */
	for (at = 1;; at++) {
		fr_alloc_fail_at(at);
		m = mem_new(1);
		fr_alloc_fail_at(0);
		if (m)
			break;
	}
	assert_true(at > 1);
	/* a put whose allocation fails adds nothing; the next one works */
	memset(big, 'q', sizeof(big));
	fr_alloc_fail_at(1);
	assert_int_equal(mem_put(m, "k", 1, 1, VT_PUT, big, sizeof(big)), FR_NOMEM);
	fr_alloc_fail_at(1);
	assert_int_equal(mem_add_range_del(m, "a", 1, "b", 1, 2), FR_NOMEM);
	fr_alloc_fail_at(0);
	assert_true(mem_is_empty(m));
	assert_int_equal(mem_max_seqno(m), 0);
	expect_none(m, "k", 10);
	assert_int_equal(mem_put(m, "k", 1, 1, VT_PUT, big, sizeof(big)), FR_OK);
	fr_alloc_fail_at(1);
	assert_null(mem_iter_new(m));
	fr_alloc_fail_at(0);
	assert_int_equal(mem_entry_cnt(m), 1);
	mem_unref(m);
}

/* ---- one writer, three concurrent readers ---- */

#define CW_N 200000
#define CW_READERS 3
#define CW_RDEL_EVERY 5000

struct cw {
	struct mem *m;
	uint64_t published; /* atomic: release by the writer after each put, acquire by readers */
	uint64_t started;   /* atomic: readers that have started */
	bool done;          /* atomic: release by the writer when finished */
	uint64_t errors;    /* atomic */
	uint64_t rounds[CW_READERS];
	uint64_t rounds_during[CW_READERS]; /* rounds begun while the writer was running */
	char msg[CW_READERS][160];
};

struct cw_reader_arg {
	struct cw *c;
	int id;
	uint64_t seed;
};

/* Insert number i writes user key "u" || be32(perm(i)) at seqno i + 1; the value is be32(idx)
 * followed by idx % 13 filler bytes of value idx & 0xff. */
static uint32_t cw_perm(uint64_t i)
{
	return (uint32_t)((i * 7919 + 13) % CW_N); /* 7919 is prime: a permutation of [0, N) */
}

static void cw_ukey(uint8_t *uk, uint32_t idx)
{
	uk[0] = 'u';
	enc_be32(uk + 1, idx);
}

static size_t cw_val(uint8_t *v, uint32_t idx)
{
	size_t n = 4 + idx % 13;

	enc_be32(v, idx);
	memset(v + 4, (int)(idx & 0xff), n - 4);
	return n;
}

static void *cw_writer(void *arg)
{
	struct cw *c = arg;
	uint8_t uk[5], v[20];

	/* wait until the readers run, so they overlap the inserts */
	while (atomic_load_acq_u64(&c->started) < CW_READERS)
		sched_yield();
	for (uint64_t i = 0; i < CW_N; i++) {
		uint32_t idx = cw_perm(i);
		size_t vlen = cw_val(v, idx);

		cw_ukey(uk, idx);
		if (mem_put(c->m, uk, sizeof(uk), i + 1, VT_PUT, v, vlen) != FR_OK)
			atomic_add_u64(&c->errors, 1);
		if (i % CW_RDEL_EVERY == CW_RDEL_EVERY - 1) {
			uint8_t s[5], e[5];

			cw_ukey(s, idx);
			cw_ukey(e, idx + 1);
			if (mem_add_range_del(c->m, s, 5, e, 5, i + 1) != FR_OK)
				atomic_add_u64(&c->errors, 1);
		}
		/* release: pairs with the readers' acquire; insert i is visible */
		atomic_store_rel_u64(&c->published, i + 1);
	}
	atomic_store_rel_bool(&c->done, true);
	return NULL;
}

static void cw_fail(struct cw_reader_arg *a, const char *what, uint64_t x)
{
	atomic_add_u64(&a->c->errors, 1);
	if (!a->c->msg[a->id][0]) /* each reader writes only its own slot */
		snprintf(a->c->msg[a->id], sizeof(a->c->msg[a->id]), "reader %d: %s (%llu)", a->id,
			 what, (unsigned long long)x);
}

/* Checks that the iterator's entry is one the writer made; returns false (and reports) if not. */
static bool cw_check_entry(struct cw_reader_arg *a, const struct kv_iter *it)
{
	uint8_t uk[5], v[20];
	uint64_t sq;
	uint32_t idx;

	if (it->key_len != 5 + IKEY_TRAILER_LEN || it->key[0] != 'u') {
		cw_fail(a, "malformed key", it->key_len);
		return false;
	}
	idx = dec_be32(it->key + 1);
	sq = ikey_seqno(it->key, it->key_len);
	cw_ukey(uk, idx);
	if (idx >= CW_N || sq == 0 || sq > CW_N || cw_perm(sq - 1) != idx ||
	    ikey_type(it->key, it->key_len) != VT_PUT) {
		cw_fail(a, "bad key/seqno", sq);
		return false;
	}
	if (it->val_len != cw_val(v, idx) || memcmp(it->val, v, it->val_len) != 0) {
		cw_fail(a, "bad value", idx);
		return false;
	}
	return true;
}

static void cw_range_del_check(void *ctx, const struct range_del *rd)
{
	struct cw_reader_arg *a = ctx;

	if (rd->start_len != 5 || rd->end_len != 5 || bytes_cmp(rd->start, 5, rd->end, 5) >= 0 ||
	    rd->seqno == 0 || rd->seqno % CW_RDEL_EVERY != 0)
		cw_fail(a, "bad range tombstone", rd->seqno);
}

static void cw_count_rd(void *ctx, const struct range_del *rd)
{
	(void)rd;
	(*(size_t *)ctx)++;
}

static void *cw_reader(void *arg)
{
	struct cw_reader_arg *a = arg;
	struct cw *c = a->c;
	uint64_t rs = a->seed;
	struct kv_iter *it = mem_iter_new(c->m);

	if (!it) {
		cw_fail(a, "no iterator", 0);
		return NULL;
	}
	atomic_add_u64(&c->started, 1);
	for (uint64_t round = 0;; round++) {
		/* acquire: pairs with the writer's release; inserts < known are visible */
		bool done = atomic_load_acq_bool(&c->done);
		uint64_t known = atomic_load_acq_u64(&c->published);
		uint8_t uk[5], t[5 + IKEY_TRAILER_LEN], prev[5 + IKEY_TRAILER_LEN];
		size_t rd_cnt = 0, rd_min = known / CW_RDEL_EVERY;

		c->rounds[a->id]++;
		if (!done)
			c->rounds_during[a->id]++;

		/* point reads of keys published before this round */
		for (int q = 0; known && q < 16; q++) {
			uint64_t i = tu_rand_below(&rs, known);
			uint8_t type;
			uint64_t sq;
			const uint8_t *val;
			size_t vlen;

			cw_ukey(uk, cw_perm(i));
			if (mem_get(c->m, uk, 5, SEQNO_MAX, &type, &sq, &val, &vlen) != FR_OK ||
			    sq != i + 1) {
				cw_fail(a, "published key not found by mem_get", i);
				break;
			}
			/* and not visible below its seqno */
			if (mem_get(c->m, uk, 5, i, &type, &sq, &val, &vlen) != FR_NOT_FOUND) {
				cw_fail(a, "key visible below its seqno", i);
				break;
			}
			/* a seek to it lands on it */
			ikey_encode(t, uk, 5, SEQNO_MAX, VT_SEEK);
			kv_seek(it, t, sizeof(t));
			if (!it->valid || !cw_check_entry(a, it) ||
			    ikey_seqno(it->key, it->key_len) != i + 1) {
				cw_fail(a, "seek missed a published key", i);
				break;
			}
		}

		/* a forward run from a random point: ordered and well formed */
		cw_ukey(uk, (uint32_t)tu_rand_below(&rs, CW_N));
		ikey_encode(t, uk, 5, SEQNO_MAX, VT_SEEK);
		kv_seek(it, t, sizeof(t));
		for (int s = 0; s < 300 && it->valid; s++) {
			if (!cw_check_entry(a, it))
				break;
			if (s && ikey_cmp(prev, sizeof(prev), it->key, it->key_len) >= 0) {
				cw_fail(a, "forward order", s);
				break;
			}
			memcpy(prev, it->key, sizeof(prev));
			kv_next(it);
		}

		/* a backward run from a random point */
		cw_ukey(uk, (uint32_t)tu_rand_below(&rs, CW_N));
		ikey_encode(t, uk, 5, 0, VT_DEL);
		kv_seek_prev(it, t, sizeof(t));
		for (int s = 0; s < 100 && it->valid; s++) {
			if (!cw_check_entry(a, it))
				break;
			if (ikey_cmp(it->key, it->key_len, t, sizeof(t)) > 0 ||
			    (s && ikey_cmp(it->key, it->key_len, prev, sizeof(prev)) >= 0)) {
				cw_fail(a, "backward order", s);
				break;
			}
			memcpy(prev, it->key, sizeof(prev));
			kv_prev(it);
		}

		/* range tombstones: well formed, and at least those published are listed */
		mem_range_dels_each(c->m, cw_range_del_check, a);
		mem_range_dels_each(c->m, cw_count_rd, &rd_cnt);
		if (rd_cnt < rd_min || mem_range_del_cnt(c->m) < rd_min)
			cw_fail(a, "range tombstones missing", rd_cnt);
		if (mem_entry_cnt(c->m) < known || mem_max_seqno(c->m) < known)
			cw_fail(a, "counters behind", known);

		/* now and then (and at the end) a full scan: every published key, in order */
		if (round % 16 == 0 || done) {
			uint64_t seen = 0, total = 0;

			for (kv_seek_first(it); it->valid; kv_next(it), total++) {
				if (!cw_check_entry(a, it))
					break;
				if (total &&
				    ikey_cmp(prev, sizeof(prev), it->key, it->key_len) >= 0) {
					cw_fail(a, "scan order", total);
					break;
				}
				memcpy(prev, it->key, sizeof(prev));
				if (ikey_seqno(it->key, it->key_len) <= known)
					seen++;
			}
			if (seen != known)
				cw_fail(a, "scan missed published keys", known - seen);
			if (done && total != CW_N)
				cw_fail(a, "final scan count", total);
		}
		if (done)
			break;
	}
	kv_free(it);
	return NULL;
}

static void test_memtable_concurrent_readers(void **state)
{
	struct cw *c = calloc(1, sizeof(*c));
	struct cw_reader_arg ra[CW_READERS];
	pthread_t w, r[CW_READERS];
	uint64_t during = 0;

	(void)state;
	assert_non_null(c);
	c->m = mem_new(3);
	assert_non_null(c->m);
	for (int i = 0; i < CW_READERS; i++) {
		uint64_t seed = tu_seed() + 1 + (uint64_t)i;

		ra[i] = (struct cw_reader_arg){ .c = c, .id = i, .seed = seed };
		assert_int_equal(pthread_create(&r[i], NULL, cw_reader, &ra[i]), 0);
	}
	assert_int_equal(pthread_create(&w, NULL, cw_writer, c), 0);
	assert_int_equal(pthread_join(w, NULL), 0);
	for (int i = 0; i < CW_READERS; i++)
		assert_int_equal(pthread_join(r[i], NULL), 0);
	for (int i = 0; i < CW_READERS; i++) {
		if (c->msg[i][0])
			print_error("%s\n", c->msg[i]);
		print_message("# reader %d: %llu rounds, %llu while writing\n", i,
			      (unsigned long long)c->rounds[i],
			      (unsigned long long)c->rounds_during[i]);
		during += c->rounds_during[i];
	}
	assert_int_equal(c->errors, 0);
	assert_true(during > 0); /* the readers really overlapped the writer */
	assert_int_equal(mem_entry_cnt(c->m), CW_N);
	assert_int_equal(mem_max_seqno(c->m), CW_N);
	assert_int_equal(mem_range_del_cnt(c->m), CW_N / CW_RDEL_EVERY);
	mem_unref(c->m);
	free(c);
}


/* Direct blob files attached to a memtable: found by id, listed newest first, and kept open
 * (readable) while the memtable is referenced, though the caller dropped its reference and the
 * file was deleted. */
static void test_memtable_blob_attach(void **state)
{
	(void)state;
	struct fr_io *io = io_mem_new();
	fr_error e;
	assert_int_equal(io_mkdir(io, "/b", &e), FR_OK);
	struct mem *m = mem_new(1);
	assert_non_null(m);
	assert_int_equal(mem_blob_cnt(m), 0);
	assert_null(mem_blob_find(m, 5));
	struct blob_direct *d5, *d9;
	assert_int_equal(blob_direct_create(io, "/b/5.blob", 5, false, &d5, &e), FR_OK);
	assert_int_equal(blob_direct_create(io, "/b/9.blob", 9, false, &d9, &e), FR_OK);
	assert_int_equal(mem_blob_attach(m, d5), FR_OK);
	assert_int_equal(mem_blob_attach(m, d9), FR_OK);
	assert_int_equal(mem_blob_cnt(m), 2);
	assert_ptr_equal(mem_blob_at(m, 0), d9);
	assert_ptr_equal(mem_blob_at(m, 1), d5);
	assert_null(mem_blob_at(m, 2));
	assert_ptr_equal(mem_blob_find(m, 5), d5);
	assert_ptr_equal(mem_blob_find(m, 9), d9);
	assert_null(mem_blob_find(m, 7));
	struct blob_handle h;
	assert_int_equal(blob_direct_add(d5, "k", 1, "value", 5, &h, &e), FR_OK);
	assert_int_equal(blob_direct_write(d5, 1u << 20, &e), FR_OK);
	blob_direct_unref(d5);
	blob_direct_unref(d9);
	assert_int_equal(io_unlink(io, "/b/5.blob", &e), FR_OK);
	void *v;
	size_t n;
	assert_int_equal(blob_direct_read(mem_blob_find(m, 5), &h, &v, &n, &e), FR_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(v, "value", 5);
	fr_free(v);
	mem_unref(m); /* closes both; the sanitizer build sees nothing leak */
	io_destroy(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memtable_new_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memtable_get_at_snapshots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memtable_range_dels_listed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memtable_bad_puts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memtable_iter_model, setup, teardown),
		cmocka_unit_test(test_memtable_iter_holds_ref),
		cmocka_unit_test(test_memtable_nomem),
		cmocka_unit_test(test_memtable_concurrent_readers),
		cmocka_unit_test(test_memtable_blob_attach),
	};

	tu_seed();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
