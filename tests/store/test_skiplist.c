/* SPDX-License-Identifier: MIT */
/*
 * test_skiplist.c - the arena (base/arena.c) and the memtable skiplist (memtable/skiplist.c):
 * inserts, seeks and iteration in both directions against a sorted array model with random
 * keys, newest-first order of versions, rejected duplicates, allocation failures, readers
 * running concurrently with the writer, and the writer's key summaries while the prefix shared
 * by all keys shrinks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/coding.h"
#include "base/ikey.h"
#include "base/sync.h"
#include "memtable/skiplist.h"
#include "testutil.h"

#define MAXK 24

/* One model entry: an internal key and the value stored with it. */
struct ment {
	uint8_t key[MAXK];
	size_t len;
	uint32_t val;
};

static int ment_cmp(const void *a, const void *b)
{
	const struct ment *x = a, *y = b;

	return ikey_cmp(x->key, x->len, y->key, y->len);
}

/* Index of the first model entry >= key (cnt when none). */
static size_t model_lower(const struct ment *m, size_t cnt, const uint8_t *key, size_t len)
{
	size_t lo = 0, hi = cnt;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ikey_cmp(m[mid].key, m[mid].len, key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first model entry > key. */
static size_t model_upper(const struct ment *m, size_t cnt, const uint8_t *key, size_t len)
{
	size_t lo = 0, hi = cnt;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ikey_cmp(m[mid].key, m[mid].len, key, len) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t rand_ukey(uint64_t *rs, uint8_t *out)
{
	size_t n = (size_t)tu_rand_below(rs, 7); /* 0..6 bytes from a small alphabet: many dups */

	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)('a' + tu_rand_below(rs, 4));
	return n;
}

static void check_at(const struct skl_iter *it, const struct ment *e)
{
	size_t klen, vlen;
	const uint8_t *k, *v;

	assert_true(skl_iter_valid(it));
	k = skl_iter_key(it, &klen);
	v = skl_iter_val(it, &vlen);
	assert_int_equal(klen, e->len);
	assert_memory_equal(k, e->key, klen);
	assert_int_equal(vlen, 4);
	assert_int_equal(dec_u32(v), e->val);
}

struct fixture {
	struct arena arena;
	struct skiplist skl;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	arena_init(&f->arena);
	if (skl_init(&f->skl, &f->arena) != FR_OK) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fr_alloc_fail_at(0);
	skl_fini(&f->skl);
	arena_fini(&f->arena);
	free(f);
	return 0;
}

static void test_skiplist_arena_alloc(void **state)
{
	struct arena a;
	uint8_t *ptrs[300];
	size_t sizes[300];
	uint64_t total = 0;
	uint64_t rs = tu_seed();

	(void)state;
	arena_init(&a);
	assert_int_equal(arena_bytes(&a), 0);
	for (size_t i = 0; i < 300; i++) {
		/* mostly small, some larger than a quarter block, a few very large */
		sizes[i] = i % 50 == 7 ? 100000
				       : (size_t)tu_rand_below(&rs, i % 10 == 3 ? 3000 : 100);
		ptrs[i] = arena_alloc(&a, sizes[i]);
		assert_non_null(ptrs[i]);
		assert_int_equal((uintptr_t)ptrs[i] % 8, 0);
		memset(ptrs[i], (int)(i & 0xff), sizes[i]);
		total += sizes[i];
	}
	/* nothing overlapped: every allocation still holds its own pattern */
	for (size_t i = 0; i < 300; i++)
		for (size_t j = 0; j < sizes[i]; j++)
			assert_int_equal(ptrs[i][j], i & 0xff);
	assert_true(arena_bytes(&a) >= total);
	arena_fini(&a);
	assert_int_equal(arena_bytes(&a), 0);

	/* out of memory is reported, and the arena stays usable */
	fr_alloc_fail_at(1);
	assert_null(arena_alloc(&a, 16));
	assert_null(arena_alloc(&a, SIZE_MAX - 3));
	fr_alloc_fail_at(0);
	assert_non_null(arena_alloc(&a, 0));
	assert_non_null(arena_alloc(&a, 16));
	arena_fini(&a);
}

static void test_skiplist_empty(void **state)
{
	struct fixture *f = *state;
	struct skl_iter it;
	uint8_t k[IKEY_TRAILER_LEN + 1];

	ikey_encode(k, "a", 1, 5, VT_PUT);
	skl_iter_init(&it, &f->skl);
	assert_false(skl_iter_valid(&it));
	skl_iter_seek_first(&it);
	assert_false(skl_iter_valid(&it));
	skl_iter_seek_last(&it);
	assert_false(skl_iter_valid(&it));
	skl_iter_seek(&it, k, sizeof(k));
	assert_false(skl_iter_valid(&it));
	skl_iter_seek_prev(&it, k, sizeof(k));
	assert_false(skl_iter_valid(&it));
	assert_false(skl_contains(&f->skl, k, sizeof(k)));
	/* an empty list allocates no arena block */
	assert_int_equal(arena_bytes(&f->arena), 0);
}

static void test_skiplist_random_model(void **state)
{
	struct fixture *f = *state;
	const size_t n = 20000;
	struct ment *m = calloc(n, sizeof(*m));
	uint64_t rs = tu_seed() ^ 0x51;
	struct skl_iter it;
	uint8_t v[4];
	size_t i;

	assert_non_null(m);
	for (i = 0; i < n; i++) {
		uint8_t uk[8];
		size_t ulen = rand_ukey(&rs, uk);
		uint8_t type = tu_rand_below(&rs, 3) == 0 ? VT_DEL : VT_PUT;

		/* unique seqnos, inserted in random key order */
		ikey_encode(m[i].key, uk, ulen, (uint64_t)i + 1, type);
		m[i].len = ulen + IKEY_TRAILER_LEN;
		m[i].val = (uint32_t)i;
		enc_u32(v, m[i].val);
		assert_int_equal(skl_insert(&f->skl, m[i].key, m[i].len, v, 4), FR_OK);
	}
	for (i = 0; i < n; i++)
		assert_true(skl_contains(&f->skl, m[i].key, m[i].len));
	/* heights grow like log2(n) (about 14 here) and stay capped */
	assert_true(f->skl.height >= 10 && f->skl.height <= SKL_MAX_HEIGHT);
	qsort(m, n, sizeof(*m), ment_cmp);

	/* forward */
	skl_iter_init(&it, &f->skl);
	skl_iter_seek_first(&it);
	for (i = 0; i < n; i++) {
		check_at(&it, &m[i]);
		skl_iter_next(&it);
	}
	assert_false(skl_iter_valid(&it));

	/* backward */
	skl_iter_seek_last(&it);
	for (i = n; i-- > 0;) {
		check_at(&it, &m[i]);
		skl_iter_prev(&it);
	}
	assert_false(skl_iter_valid(&it));

	/* seeks to random targets (mostly absent) and to present keys */
	for (int r = 0; r < 4000; r++) {
		uint8_t t[MAXK];
		size_t tlen, lo, up;

		if (r % 2) {
			const struct ment *e = &m[tu_rand_below(&rs, n)];

			memcpy(t, e->key, e->len);
			tlen = e->len;
		} else {
			uint8_t uk[8];
			size_t ulen = rand_ukey(&rs, uk);
			uint64_t sq = tu_rand_below(&rs, n + 10);
			uint8_t ty = r % 4 == 0 ? VT_SEEK : (uint8_t)tu_rand_below(&rs, 3);

			ikey_encode(t, uk, ulen, sq, ty);
			tlen = ulen + IKEY_TRAILER_LEN;
		}
		lo = model_lower(m, n, t, tlen);
		skl_iter_seek(&it, t, tlen);
		if (lo == n) {
			assert_false(skl_iter_valid(&it));
		} else {
			check_at(&it, &m[lo]);
			/* and one step back from there is the previous model entry */
			skl_iter_prev(&it);
			if (lo == 0)
				assert_false(skl_iter_valid(&it));
			else
				check_at(&it, &m[lo - 1]);
		}

		up = model_upper(m, n, t, tlen);
		skl_iter_seek_prev(&it, t, tlen);
		if (up == 0) {
			assert_false(skl_iter_valid(&it));
		} else {
			check_at(&it, &m[up - 1]);
			skl_iter_next(&it);
			if (up == n)
				assert_false(skl_iter_valid(&it));
			else
				check_at(&it, &m[up]);
		}
	}

	/* a target shorter than a trailer is a user key placed before all its versions */
	{
		uint8_t t[MAXK];

		ikey_encode(t, "ab", 2, SEQNO_MAX, VT_SEEK);
		skl_iter_seek(&it, (const uint8_t *)"ab", 2);
		i = model_lower(m, n, t, 2 + IKEY_TRAILER_LEN);
		if (i == n)
			assert_false(skl_iter_valid(&it));
		else
			check_at(&it, &m[i]);
	}
	free(m);
}

static void test_skiplist_versions_newest_first(void **state)
{
	struct fixture *f = *state;
	uint64_t rs = tu_seed() ^ 0x77;
	uint64_t seq[50];
	uint8_t k[MAXK];
	struct skl_iter it;
	const uint8_t *p;
	size_t len, vlen;

	for (int i = 0; i < 50; i++)
		seq[i] = (uint64_t)i + 1;
	for (int i = 49; i > 0; i--) { /* shuffle */
		int j = (int)tu_rand_below(&rs, (uint64_t)i + 1);
		uint64_t t = seq[i];

		seq[i] = seq[j];
		seq[j] = t;
	}
	for (int i = 0; i < 50; i++) {
		ikey_encode(k, "k", 1, seq[i], VT_PUT);
		assert_int_equal(skl_insert(&f->skl, k, 9, "x", 1), FR_OK);
	}
	/* neighbours on both sides with higher and lower seqnos */
	ikey_encode(k, "j", 1, 1000, VT_PUT);
	assert_int_equal(skl_insert(&f->skl, k, 9, "", 0), FR_OK);
	ikey_encode(k, "ka", 2, 0, VT_DEL);
	assert_int_equal(skl_insert(&f->skl, k, 10, "", 0), FR_OK);

	skl_iter_init(&it, &f->skl);
	skl_iter_seek_first(&it);
	p = skl_iter_key(&it, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(p, "j", 1);
	for (uint64_t s = 50; s >= 1; s--) {
		skl_iter_next(&it);
		assert_true(skl_iter_valid(&it));
		p = skl_iter_key(&it, &len);
		assert_int_equal(len, 9);
		assert_memory_equal(p, "k", 1);
		assert_int_equal(ikey_seqno(p, len), s);
		assert_int_equal(ikey_type(p, len), VT_PUT);
		skl_iter_val(&it, &vlen);
		assert_int_equal(vlen, 1);
	}
	skl_iter_next(&it);
	p = skl_iter_key(&it, &len);
	assert_int_equal(len, 10);
	assert_memory_equal(p, "ka", 2);
	skl_iter_next(&it);
	assert_false(skl_iter_valid(&it));

	/* seeking (k, 30, VT_SEEK) finds the newest version <= 30 */
	ikey_encode(k, "k", 1, 30, VT_SEEK);
	skl_iter_seek(&it, k, 9);
	p = skl_iter_key(&it, &len);
	assert_int_equal(ikey_seqno(p, len), 30);
	/* the last entry <= (k, 30, VT_SEEK) is version 31 */
	skl_iter_seek_prev(&it, k, 9);
	p = skl_iter_key(&it, &len);
	assert_int_equal(ikey_seqno(p, len), 31);
}

static void test_skiplist_duplicates_and_bad_keys(void **state)
{
	struct fixture *f = *state;
	uint8_t k[MAXK];
	struct skl_iter it;
	size_t cnt = 0;

	ikey_encode(k, "dup", 3, 7, VT_PUT);
	assert_int_equal(skl_insert(&f->skl, k, 11, "a", 1), FR_OK);
	assert_int_equal(skl_insert(&f->skl, k, 11, "b", 1), FR_INVALID);
	/* same user key and seqno with another type is another internal key */
	ikey_encode(k, "dup", 3, 7, VT_DEL);
	assert_int_equal(skl_insert(&f->skl, k, 11, "", 0), FR_OK);
	/* too short to be an internal key */
	assert_int_equal(skl_insert(&f->skl, k, 7, "", 0), FR_INVALID);
	assert_null(skl_node_new(&f->skl, 3, 0));
	/* the empty user key is fine */
	ikey_encode(k, "", 0, 1, VT_PUT);
	assert_int_equal(skl_insert(&f->skl, k, 8, "e", 1), FR_OK);

	skl_iter_init(&it, &f->skl);
	for (skl_iter_seek_first(&it); skl_iter_valid(&it); skl_iter_next(&it))
		cnt++;
	assert_int_equal(cnt, 3);
	skl_iter_seek_first(&it);
	{
		size_t len, vlen;
		const uint8_t *p = skl_iter_key(&it, &len);
		const uint8_t *v = skl_iter_val(&it, &vlen);

		assert_int_equal(len, 8);
		assert_int_equal(ikey_seqno(p, len), 1);
		assert_int_equal(vlen, 1);
		assert_memory_equal(v, "e", 1);
	}
}

/* Long keys for the shared-prefix model: up to 48 user bytes and a trailer. */
#define PK_MAX 56

struct pent {
	uint8_t key[PK_MAX];
	size_t len;
	uint32_t val;
};

static int pent_cmp(const void *a, const void *b)
{
	const struct pent *x = a, *y = b;

	return ikey_cmp(x->key, x->len, y->key, y->len);
}

/* Checks the list against the first cnt model entries (sorted here): order, contents, lookups,
 * seeks to each key, and that re-inserting any of them is refused. */
static void check_prefix_model(struct skiplist *s, struct pent *m, size_t cnt)
{
	struct skl_iter it;
	size_t i = 0;

	qsort(m, cnt, sizeof(*m), pent_cmp);
	skl_iter_init(&it, s);
	for (skl_iter_seek_first(&it); skl_iter_valid(&it); skl_iter_next(&it), i++) {
		size_t klen, vlen;
		const uint8_t *k = skl_iter_key(&it, &klen);
		const uint8_t *v = skl_iter_val(&it, &vlen);

		assert_true(i < cnt);
		assert_int_equal(klen, m[i].len);
		assert_memory_equal(k, m[i].key, klen);
		assert_int_equal(vlen, 4);
		assert_int_equal(dec_u32(v), m[i].val);
	}
	assert_int_equal(i, cnt);
	for (i = 0; i < cnt; i++) {
		size_t klen;

		assert_true(skl_contains(s, m[i].key, m[i].len));
		assert_int_equal(skl_insert(s, m[i].key, m[i].len, "dupl", 4), FR_INVALID);
		skl_iter_seek(&it, m[i].key, m[i].len);
		assert_true(skl_iter_valid(&it));
		assert_memory_equal(skl_iter_key(&it, &klen), m[i].key, m[i].len);
	}
}

static void test_skiplist_shrinking_prefix(void **state)
{
	struct fixture *f = *state;
	/* phases: keys share a prefix of shared[p] bytes (longer than SKL_SKIP_MAX first), then
	 * less and less, so the summaries are recomputed over a full list each time; the last
	 * phase shares nothing */
	static const size_t shared[] = {40, 21, 9, 4, 0};
	const size_t per = 1500, n = per * 5;
	static const uint32_t want_skip[] = {SKL_SKIP_MAX, 20, 8, 4, 0};
	struct pent *m = calloc(n, sizeof(*m));
	uint64_t rs = tu_seed() ^ 0x5eed;
	uint8_t base[48];
	size_t cnt = 0;

	assert_non_null(m);
	/* zero bytes make padded summaries tie with shorter keys; few letters make ties too */
	for (size_t i = 0; i < sizeof(base); i++)
		base[i] = i % 3 ? (uint8_t)('k' + i % 5) : 0;
	for (size_t p = 0; p < 5; p++) {
		for (size_t i = 0; i < per; i++) {
			struct pent *e = &m[cnt];
			uint8_t uk[48];
			size_t ulen = shared[p] + (size_t)tu_rand_below(&rs, 48 - shared[p] + 1);
			uint64_t seqno = cnt + 1;
			uint8_t v[4];

			memcpy(uk, base, shared[p]);
			/* the first key of each phase differs from the longer shared prefix right at
			 * its end; the others mostly repeat the base, with random bytes of {0, 'k',
			 * 'l'} so that many summaries tie and the node's key decides */
			for (size_t j = shared[p]; j < ulen; j++) {
				uint64_t r = tu_rand_below(&rs, 4);

				uk[j] = r == 0 ? base[j] : r == 1 ? 0 : (uint8_t)('k' + r - 2);
			}
			if (i == 0 && p > 0 && ulen > shared[p])
				uk[shared[p]] = (uint8_t)(base[shared[p]] + 1);
			/* a few exact repeats of an earlier user key, as newer versions */
			if (i % 7 == 3 && cnt > 0) {
				const struct pent *o = &m[tu_rand_below(&rs, cnt)];

				ulen = o->len - IKEY_TRAILER_LEN;
				memcpy(uk, o->key, ulen);
			}
			ikey_encode(e->key, uk, ulen, seqno, (uint8_t)(seqno % 3 ? VT_PUT : VT_DEL));
			e->len = ulen + IKEY_TRAILER_LEN;
			e->val = (uint32_t)cnt;
			enc_u32(v, e->val);
			assert_int_equal(skl_insert(&f->skl, e->key, e->len, v, 4), FR_OK);
			cnt++;
		}
		/* the exact shared prefix can be longer than shared[p] (random bytes may match
		 * the base); skip is at most it, rounded down */
		assert_true(f->skl.skip <= want_skip[p] + 4 && f->skl.skip % 4 == 0);
		if (p > 0)
			assert_true(f->skl.skip <= want_skip[p - 1]);
		check_prefix_model(&f->skl, m, cnt);
	}
	assert_int_equal(f->skl.skip, 0);
	free(m);
}

static void test_skiplist_nomem(void **state)
{
	struct fixture *f = *state;
	uint8_t k[MAXK], big[9000];
	int fails = 0;

	memset(big, 0x5a, sizeof(big));
	/* on every other insert the next allocation fails: an insert that needed a new block
	 * reports FR_NOMEM and adds nothing, one that fit in the current block succeeds */
	for (unsigned long at = 1; at < 40; at++) {
		size_t cnt = 0;
		struct skl_iter it;
		fr_status rc;

		ikey_encode(k, "key", 3, at, VT_PUT);
		fr_alloc_fail_at(at % 2);
		rc = skl_insert(&f->skl, k, 11, big, (at % 3) ? 100 : sizeof(big));
		fr_alloc_fail_at(0);
		if (at % 2 == 0)
			assert_int_equal(rc, FR_OK);
		if (rc == FR_NOMEM) {
			fails++;
			assert_false(skl_contains(&f->skl, k, 11));
		} else {
			assert_int_equal(rc, FR_OK);
			assert_true(skl_contains(&f->skl, k, 11));
		}
		skl_iter_init(&it, &f->skl);
		for (skl_iter_seek_first(&it); skl_iter_valid(&it); skl_iter_next(&it))
			cnt++;
		assert_int_equal(cnt, at - (unsigned long)fails);
	}
	/* the first insert and every big value (own block) failed when injected: 1, 3, 9, .. 39 */
	assert_true(fails >= 8);
}

/* ---- one writer, concurrent readers ---- */

#define CW_N 50000
#define CW_READERS 2

struct cw {
	struct skiplist skl;
	struct arena arena;
	uint64_t published; /* atomic: release after each insert, acquire by readers */
	bool done;          /* atomic: release by the writer when finished */
	uint64_t errors;    /* atomic */
	char msg[CW_READERS][160];
};

static uint32_t cw_perm(uint64_t i)
{
	return (uint32_t)((i * 7919 + 13) % CW_N); /* 7919 is prime, so this is a permutation */
}

static void cw_key(uint8_t *k, uint64_t i)
{
	uint8_t uk[4];

	enc_be32(uk, cw_perm(i));
	ikey_encode(k, uk, 4, i + 1, VT_PUT);
}

static void *cw_writer(void *arg)
{
	struct cw *c = arg;
	uint8_t k[12];

	for (uint64_t i = 0; i < CW_N; i++) {
		cw_key(k, i);
		if (skl_insert(&c->skl, k, sizeof(k), k, 4) != FR_OK)
			atomic_add_u64(&c->errors, 1);
		/* release: pairs with the acquire in cw_reader; entry i is linked */
		atomic_store_rel_u64(&c->published, i + 1);
	}
	atomic_store_rel_bool(&c->done, true);
	return NULL;
}

struct cw_reader_arg {
	struct cw *c;
	int id;
	uint64_t seed;
};

static void cw_fail(struct cw_reader_arg *a, const char *what, uint64_t x)
{
	atomic_add_u64(&a->c->errors, 1);
	if (!a->c->msg[a->id][0]) /* each reader writes only its own slot */
		snprintf(a->c->msg[a->id], sizeof(a->c->msg[a->id]), "reader %d: %s (%llu)", a->id,
			 what, (unsigned long long)x);
}

static void *cw_reader(void *arg)
{
	struct cw_reader_arg *a = arg;
	struct cw *c = a->c;
	uint64_t rs = a->seed;
	struct skl_iter it;

	skl_iter_init(&it, &c->skl);
	for (unsigned round = 0;; round++) {
		/* acquire: pairs with the writer's release; entries < known are linked */
		bool done = atomic_load_acq_bool(&c->done);
		uint64_t known = atomic_load_acq_u64(&c->published);
		uint64_t seen = 0;
		uint8_t prev[12] = { 0 };
		bool have_prev = false;

		if (known) {
			uint8_t k[12];
			uint64_t i = tu_rand_below(&rs, known);

			cw_key(k, i);
			if (!skl_contains(&c->skl, k, sizeof(k)))
				cw_fail(a, "published key missing", i);
		}
		/* a full forward scan: ordered, well formed, and holds every published key */
		for (skl_iter_seek_first(&it); skl_iter_valid(&it); skl_iter_next(&it)) {
			size_t len, vlen;
			const uint8_t *p = skl_iter_key(&it, &len);
			const uint8_t *v = skl_iter_val(&it, &vlen);
			uint64_t sq;

			if (len != 12 || vlen != 4 || memcmp(p, v, 4) != 0) {
				cw_fail(a, "malformed entry", len);
				break;
			}
			sq = ikey_seqno(p, len);
			if (sq == 0 || sq > CW_N || dec_be32(p) != cw_perm(sq - 1)) {
				cw_fail(a, "bad seqno for key", sq);
				break;
			}
			if (have_prev && ikey_cmp(prev, 12, p, len) >= 0) {
				cw_fail(a, "out of order", sq);
				break;
			}
			memcpy(prev, p, 12);
			have_prev = true;
			if (sq <= known)
				seen++;
		}
		if (seen != known)
			cw_fail(a, "scan missed published keys", known - seen);
		if (done)
			break;
	}
	return NULL;
}

static void test_skiplist_concurrent_readers(void **state)
{
	struct cw *c = calloc(1, sizeof(*c));
	struct cw_reader_arg ra[CW_READERS];
	pthread_t w, r[CW_READERS];
	struct skl_iter it;
	uint64_t cnt = 0;

	(void)state;
	assert_non_null(c);
	arena_init(&c->arena);
	assert_int_equal(skl_init(&c->skl, &c->arena), FR_OK);
	for (int i = 0; i < CW_READERS; i++) {
		ra[i] = (struct cw_reader_arg){ .c = c, .id = i, .seed = tu_seed() + (uint64_t)i };
		assert_int_equal(pthread_create(&r[i], NULL, cw_reader, &ra[i]), 0);
	}
	assert_int_equal(pthread_create(&w, NULL, cw_writer, c), 0);
	assert_int_equal(pthread_join(w, NULL), 0);
	for (int i = 0; i < CW_READERS; i++)
		assert_int_equal(pthread_join(r[i], NULL), 0);
	for (int i = 0; i < CW_READERS; i++)
		if (c->msg[i][0])
			print_error("%s\n", c->msg[i]);
	assert_int_equal(c->errors, 0);

	skl_iter_init(&it, &c->skl);
	for (skl_iter_seek_first(&it); skl_iter_valid(&it); skl_iter_next(&it))
		cnt++;
	assert_int_equal(cnt, CW_N);
	skl_fini(&c->skl);
	arena_fini(&c->arena);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skiplist_arena_alloc),
		cmocka_unit_test_setup_teardown(test_skiplist_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skiplist_random_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skiplist_versions_newest_first, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_skiplist_duplicates_and_bad_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_skiplist_nomem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skiplist_shrinking_prefix, setup, teardown),
		cmocka_unit_test(test_skiplist_concurrent_readers),
	};

	tu_seed();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
