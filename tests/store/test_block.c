/* SPDX-License-Identifier: MIT */
/*
 * test_block.c - sorted blocks and their stored form: round trips at several restart intervals,
 * seeks to every key and between keys against a sorted model, next/prev, LZ4 wrapping, and
 * corruption sweeps (every byte flipped, every truncation) that must give FR_CORRUPTION or data,
 * never a crash (run under ASan: blocks are copied into exactly-sized heap buffers).
 *
 * The hash index of data blocks: point reads through it give exactly the binary search's answer
 * (and position, when the key is in the block) for keys with many versions across restart runs,
 * absent keys, one-entry blocks and buckets that every key collides in; the test counters show
 * the binary search was skipped; every flipped bit and truncation of a hashed block is
 * FR_CORRUPTION or data, and bad tails are refused.
 *
 * Keys longer than the iterator's inline key space, with shared prefixes of up to thousands of
 * bytes, read back whole from fresh and reused iterators.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/ikey.h"
#include "sst/block.h"
#include "sst/format.h"
#include "testutil.h"

struct kv {
	uint8_t key[48];
	size_t klen;
	uint8_t val[40];
	size_t vlen;
};

static int bcmp_fn(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return bytes_cmp(a, alen, b, blen);
}

static int kv_qcmp(const void *pa, const void *pb)
{
	const struct kv *a = pa, *b = pb;
	return bytes_cmp(a->key, a->klen, b->key, b->klen);
}

/* n sorted, distinct keys sharing prefixes of various lengths; random values (some empty). */
static size_t make_kvs(struct kv *kv, size_t n, uint64_t *rs)
{
	static const char *const pfx[] = {"", "a", "app", "apple", "apple/pie/", "b", "zz/zz/"};
	for (size_t i = 0; i < n; i++) {
		const char *p = pfx[tu_rand_below(rs, sizeof(pfx) / sizeof(pfx[0]))];
		size_t pl = strlen(p), tail = 1 + tu_rand_below(rs, 20);
		memcpy(kv[i].key, p, pl);
		for (size_t j = 0; j < tail; j++)
			kv[i].key[pl + j] = (uint8_t)('a' + tu_rand_below(rs, 4));
		kv[i].klen = pl + tail;
		kv[i].vlen = tu_rand_below(rs, sizeof(kv[i].val) + 1);
		for (size_t j = 0; j < kv[i].vlen; j++)
			kv[i].val[j] = (uint8_t)tu_rand(rs);
	}
	qsort(kv, n, sizeof(*kv), kv_qcmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!m || kv_qcmp(&kv[m - 1], &kv[i]) != 0)
			kv[m++] = kv[i];
	return m;
}

/* Builds a block of kv[0..n) and returns a heap copy of exactly its size. */
static uint8_t *build_block(const struct kv *kv, size_t n, uint32_t interval, size_t *len)
{
	struct blk_builder b;
	const uint8_t *data;
	blk_builder_init(&b, interval);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(blk_builder_add(&b, kv[i].key, kv[i].klen, kv[i].val, kv[i].vlen),
				 FR_OK);
	assert_int_equal(blk_builder_finish(&b, &data, len), FR_OK);
	assert_int_equal(*len, blk_builder_size(&b));
	uint8_t *copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, data, *len);
	blk_builder_fini(&b);
	return copy;
}

static void expect_at(const struct blk_iter *it, const struct kv *kv)
{
	assert_true(it->valid);
	assert_int_equal(blk_iter_key_len(it), kv->klen);
	assert_memory_equal(blk_iter_key(it), kv->key, kv->klen);
	assert_int_equal(it->val_len, kv->vlen);
	if (kv->vlen)
		assert_memory_equal(it->val, kv->val, kv->vlen);
}

/* first index with key >= target */
static size_t model_lower(const struct kv *kv, size_t n, const uint8_t *t, size_t tlen)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bytes_cmp(kv[mid].key, kv[mid].klen, t, tlen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void check_block(const struct kv *kv, size_t n, uint32_t interval, uint64_t *rs)
{
	size_t len;
	uint8_t *data = build_block(kv, n, interval, &len);
	struct blk b;
	struct blk_iter it;
	fr_error err;

	assert_int_equal(blk_init(&b, data, len, bcmp_fn, 0, "mem", 0, &err), FR_OK);
	assert_int_equal(b.restart_cnt, (n + interval - 1) / interval);
	blk_iter_init(&it, &b);

	/* forward and backward */
	size_t i = 0;
	for (assert_int_equal(blk_iter_seek_first(&it, &err), FR_OK); it.valid;
	     assert_int_equal(blk_iter_next(&it, &err), FR_OK))
		expect_at(&it, &kv[i++]);
	assert_int_equal(i, n);
	for (assert_int_equal(blk_iter_seek_last(&it, &err), FR_OK); it.valid;
	     assert_int_equal(blk_iter_prev(&it, &err), FR_OK))
		expect_at(&it, &kv[--i]);
	assert_int_equal(i, 0);

	for (i = 0; i < n; i++) {
		/* the key itself */
		assert_int_equal(blk_iter_seek(&it, kv[i].key, kv[i].klen, &err), FR_OK);
		expect_at(&it, &kv[i]);
		/* just after it (its immediate successor key) */
		uint8_t t[64];
		memcpy(t, kv[i].key, kv[i].klen);
		t[kv[i].klen] = 0;
		assert_int_equal(blk_iter_seek(&it, t, kv[i].klen + 1, &err), FR_OK);
		if (i + 1 < n)
			expect_at(&it, &kv[i + 1]);
		else
			assert_false(it.valid);
		/* just before it: the key minus its last byte, which sorts at or before */
		size_t j = model_lower(kv, n, kv[i].key, kv[i].klen - 1);
		assert_int_equal(blk_iter_seek(&it, kv[i].key, kv[i].klen - 1, &err), FR_OK);
		expect_at(&it, &kv[j]);
		/* and step around from there */
		assert_int_equal(blk_iter_prev(&it, &err), FR_OK);
		if (j > 0)
			expect_at(&it, &kv[j - 1]);
		else
			assert_false(it.valid);
		assert_int_equal(blk_iter_seek(&it, kv[i].key, kv[i].klen, &err), FR_OK);
		assert_int_equal(blk_iter_next(&it, &err), FR_OK);
		if (i + 1 < n)
			expect_at(&it, &kv[i + 1]);
		else
			assert_false(it.valid);
	}
	/* random targets against the model */
	for (int r = 0; r < 2000; r++) {
		uint8_t t[24];
		size_t tl = tu_rand_below(rs, sizeof(t) + 1);
		for (size_t k = 0; k < tl; k++)
			t[k] = (uint8_t)("aabpz/"[tu_rand_below(rs, 6)]);
		size_t j = model_lower(kv, n, t, tl);
		assert_int_equal(blk_iter_seek(&it, t, tl, &err), FR_OK);
		if (j < n)
			expect_at(&it, &kv[j]);
		else
			assert_false(it.valid);
	}
	/* past the end; before the start */
	uint8_t hi[] = {0xff, 0xff};
	assert_int_equal(blk_iter_seek(&it, hi, sizeof(hi), &err), FR_OK);
	assert_false(it.valid);
	assert_int_equal(blk_iter_seek(&it, NULL, 0, &err), FR_OK);
	expect_at(&it, &kv[0]);

	blk_iter_fini(&it);
	free(data);
}

static void test_block_roundtrip(void **state)
{
	(void)state;
	uint64_t rs = tu_seed();
	struct kv *kv = calloc(3000, sizeof(*kv));
	assert_non_null(kv);
	size_t n = make_kvs(kv, 3000, &rs);
	assert_true(n > 1000);
	static const uint32_t intervals[] = {1, 2, 16, 5000};
	for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++)
		check_block(kv, n, intervals[i], &rs);
	/* tiny blocks: one and two entries */
	check_block(kv, 1, 16, &rs);
	check_block(kv, 2, 1, &rs);
	free(kv);
}

/* Keys around and far past the iterator's inline key space (BLK_KEY_INLINE): a key that
 * outgrows it moves to the heap keeping its shared prefix, and one iterator keeps working on
 * long and short keys across blocks. Lengths ascend and descend inside restart runs, so every
 * growth keeps a prefix of a different length. */
/* Walks block b with it forward, backward and by seeks to each of keys[0..n). */
static void check_long_keys(struct blk_iter *it, const struct blk *b, uint8_t *const *keys,
			    const size_t *klen, size_t n)
{
	fr_error err;
	size_t i = 0;
	blk_iter_set_block(it, b);
	for (assert_int_equal(blk_iter_seek_first(it, &err), FR_OK); it->valid;
	     assert_int_equal(blk_iter_next(it, &err), FR_OK), i++) {
		assert_true(i < n);
		assert_int_equal(blk_iter_key_len(it), klen[i]);
		assert_memory_equal(blk_iter_key(it), keys[i], klen[i]);
	}
	assert_int_equal(i, n);
	for (assert_int_equal(blk_iter_seek_last(it, &err), FR_OK); it->valid;
	     assert_int_equal(blk_iter_prev(it, &err), FR_OK)) {
		assert_true(i > 0);
		i--;
		assert_int_equal(blk_iter_key_len(it), klen[i]);
		assert_memory_equal(blk_iter_key(it), keys[i], klen[i]);
	}
	assert_int_equal(i, 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(blk_iter_seek(it, keys[i], klen[i], &err), FR_OK);
		assert_true(it->valid);
		assert_int_equal(blk_iter_key_len(it), klen[i]);
		assert_memory_equal(blk_iter_key(it), keys[i], klen[i]);
	}
}

static void test_block_long_keys(void **state)
{
	(void)state;
	static const size_t lens[] = {3,   BLK_KEY_INLINE - 1, BLK_KEY_INLINE, BLK_KEY_INLINE + 1,
				      200, 70,		       1000,	       65,
				      5000, 10,		       4097,	       BLK_KEY_INLINE * 3};
	enum { N = sizeof(lens) / sizeof(lens[0]) };
	/* key i: run[i] bytes of 'k', then filler below 'k': keys ascend with the run, and key
	 * i+1 shares all of key i's run, up to thousands of bytes */
	static const size_t run[N] = {1, 2, 60, 63, 64, 65, 150, 151, 900, 901, 4000, 4001};
	uint8_t *keys[N];
	size_t klen[N];
	uint64_t rs = tu_seed();
	for (size_t i = 0; i < N; i++) {
		klen[i] = lens[i] > run[i] ? lens[i] : run[i] + 1;
		keys[i] = malloc(klen[i]);
		assert_non_null(keys[i]);
		memset(keys[i], 'k', run[i]);
		for (size_t j = run[i]; j < klen[i]; j++)
			keys[i][j] = (uint8_t)('a' + tu_rand_below(&rs, 3));
	}
	static const uint32_t intervals[] = {1, 3, 16};
	struct blk_iter it;
	blk_iter_init(&it, NULL);
	fr_error err;
	for (size_t v = 0; v < sizeof(intervals) / sizeof(intervals[0]); v++) {
		struct blk_builder bb;
		const uint8_t *data;
		size_t len;
		blk_builder_init(&bb, intervals[v]);
		for (size_t i = 0; i < N; i++)
			assert_int_equal(blk_builder_add(&bb, keys[i], klen[i], "v", 1), FR_OK);
		assert_int_equal(blk_builder_finish(&bb, &data, &len), FR_OK);
		uint8_t *copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, data, len);
		blk_builder_fini(&bb);
		struct blk b;
		assert_int_equal(blk_init(&b, copy, len, bcmp_fn, 0, "mem", 0, &err), FR_OK);
		/* a fresh iterator grows from its inline space, keeping shared prefixes of up to
		 * 4000 bytes; the reused one keeps the buffer grown on the blocks before */
		struct blk_iter fresh;
		blk_iter_init(&fresh, NULL);
		check_long_keys(&fresh, &b, keys, klen, N);
		blk_iter_fini(&fresh);
		check_long_keys(&it, &b, keys, klen, N);
		free(copy);
	}
	blk_iter_fini(&it);
	for (size_t i = 0; i < N; i++)
		free(keys[i]);
}

/* Prefix compression really happens: shared prefixes cost less than full keys. */
static void test_block_prefix_compression(void **state)
{
	(void)state;
	struct blk_builder b;
	uint8_t key[32];
	blk_builder_init(&b, 16);
	for (int i = 0; i < 160; i++) {
		snprintf((char *)key, sizeof(key), "a/long/common/prefix/%05d", i);
		assert_int_equal(blk_builder_add(&b, key, 26, "", 0), FR_OK);
	}
	/* full keys would take 160 * (26 + 3); deltas are ~5 bytes except at 10 restarts */
	assert_true(blk_builder_size(&b) < 1300);
	blk_builder_fini(&b);
}

static void test_block_empty(void **state)
{
	(void)state;
	struct blk_builder bb;
	struct blk b;
	struct blk_iter it;
	const uint8_t *data;
	size_t len;
	fr_error err;

	blk_builder_init(&bb, 16);
	assert_true(blk_builder_is_empty(&bb));
	assert_int_equal(blk_builder_finish(&bb, &data, &len), FR_OK);
	assert_int_equal(len, 4);
	assert_int_equal(blk_init(&b, data, len, bcmp_fn, 0, "mem", 0, &err), FR_OK);
	blk_iter_init(&it, &b);
	assert_int_equal(blk_iter_seek_first(&it, &err), FR_OK);
	assert_false(it.valid);
	assert_int_equal(blk_iter_seek_last(&it, &err), FR_OK);
	assert_false(it.valid);
	assert_int_equal(blk_iter_seek(&it, (const uint8_t *)"a", 1, &err), FR_OK);
	assert_false(it.valid);
	blk_iter_fini(&it);
	blk_builder_fini(&bb);
}

/* Walks a (possibly damaged) block every way; returns FR_OK or the first failure. */
static fr_status walk(const uint8_t *data, size_t len, const struct kv *kv, size_t n, fr_error *err)
{
	struct blk b;
	struct blk_iter it;
	fr_status rc = blk_init(&b, data, len, bcmp_fn, 0, "walked.sst", 4096, err);
	if (rc)
		return rc;
	blk_iter_init(&it, &b);
	size_t steps = 0;
	for (rc = blk_iter_seek_first(&it, err); !rc && it.valid; rc = blk_iter_next(&it, err))
		assert_true(++steps <= len); /* every entry takes >= 3 bytes: no endless walk */
	steps = 0;
	for (rc = rc ? rc : blk_iter_seek_last(&it, err); !rc && it.valid;
	     rc = blk_iter_prev(&it, err))
		assert_true(++steps <= len);
	for (size_t i = 0; !rc && i < n; i++) {
		rc = blk_iter_seek(&it, kv[i].key, kv[i].klen, err);
		if (!rc && it.valid)
			rc = blk_iter_prev(&it, err);
	}
	blk_iter_fini(&it);
	return rc;
}

static void test_block_corrupt_sweep(void **state)
{
	(void)state;
	uint64_t rs = tu_seed();
	struct kv kv[40];
	size_t n = make_kvs(kv, 40, &rs), len;
	for (size_t i = 0; i < n; i++) /* short values: mostly lengths and key bytes to hit */
		kv[i].vlen %= 4;
	uint8_t *good = build_block(kv, n, 4, &len);
	fr_error err;
	size_t corrupt = 0, flips = 0;
	static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};

	assert_int_equal(walk(good, len, kv, n, &err), FR_OK);
	for (size_t off = 0; off < len; off++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			uint8_t *bad = malloc(len);
			assert_non_null(bad);
			memcpy(bad, good, len);
			bad[off] ^= masks[m];
			memset(&err, 0, sizeof(err));
			fr_status rc = walk(bad, len, kv, n, &err);
			assert_true(rc == FR_OK || rc == FR_CORRUPTION);
			/* a restart count of 2^24 or more cannot fit */
			if (off == len - 1)
				assert_int_equal(rc, FR_CORRUPTION);
			if (rc) {
				assert_int_equal(err.code, FR_CORRUPTION);
				assert_non_null(strstr(err.msg, "walked.sst"));
				assert_int_equal(err.offset, 4096);
				corrupt++;
			}
			flips++;
			free(bad);
		}
	}
	fprintf(stderr, "# %zu of %zu flips reported\n", corrupt, flips);
	/* flips in lengths and restart offsets must have been caught */
	assert_true(corrupt > flips / 10);
	/* every truncation */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *bad = malloc(cut ? cut : 1);
		assert_non_null(bad);
		memcpy(bad, good, cut);
		fr_status rc = walk(bad, cut, kv, n, &err);
		assert_true(rc == FR_OK || rc == FR_CORRUPTION);
		free(bad);
	}
	free(good);
}

/* Hand-made bad blocks that must be rejected. */
static void test_block_corrupt_cases(void **state)
{
	(void)state;
	fr_error err;
	struct blk b;
	struct blk_iter it;

	/* restart count larger than the block */
	uint8_t big[] = {0, 0, 0, 0, 0xff, 0, 0, 0};
	assert_int_equal(blk_init(&b, big, sizeof(big), bcmp_fn, 0, "x", 0, &err), FR_CORRUPTION);
	/* too short for a count */
	assert_int_equal(blk_init(&b, big, 3, bcmp_fn, 0, "x", 0, &err), FR_CORRUPTION);
	/* restart offset past the entries */
	uint8_t far[] = {0, 1, 0, 'a', 9, 0, 0, 0, 1, 0, 0, 0};
	assert_int_equal(blk_init(&b, far, sizeof(far), bcmp_fn, 0, "x", 0, &err), FR_CORRUPTION);

	/* shared > previous key length: entry 2 claims 5 shared bytes of a 1-byte key */
	uint8_t shr[] = {0, 1, 0, 'a', 5, 1, 0, 'b', 0, 0, 0, 0, 1, 0, 0, 0};
	assert_int_equal(blk_init(&b, shr, sizeof(shr), bcmp_fn, 0, "x.sst", 77, &err), FR_OK);
	blk_iter_init(&it, &b);
	assert_int_equal(blk_iter_seek_first(&it, &err), FR_OK);
	assert_true(it.valid);
	assert_int_equal(blk_iter_next(&it, &err), FR_CORRUPTION);
	assert_false(it.valid);
	assert_non_null(strstr(err.msg, "x.sst"));
	assert_int_equal(err.offset, 77);

	/* a varint that never ends */
	uint8_t var[] = {0x80, 0x80, 0x80, 0x80, 0, 0, 0, 0, 1, 0, 0, 0};
	assert_int_equal(blk_init(&b, var, sizeof(var), bcmp_fn, 0, "x", 0, &err), FR_OK);
	blk_iter_set_block(&it, &b);
	assert_int_equal(blk_iter_seek_first(&it, &err), FR_CORRUPTION);
	/* value running past the entries */
	uint8_t val[] = {0, 1, 9, 'a', 'v', 0, 0, 0, 0, 1, 0, 0, 0};
	assert_int_equal(blk_init(&b, val, sizeof(val), bcmp_fn, 0, "x", 0, &err), FR_OK);
	blk_iter_set_block(&it, &b);
	assert_int_equal(blk_iter_seek_first(&it, &err), FR_CORRUPTION);
	/* internal-key blocks reject keys shorter than the trailer */
	uint8_t shortk[] = {0, 1, 0, 'a', 0, 0, 0, 0, 1, 0, 0, 0};
	assert_int_equal(
		blk_init(&b, shortk, sizeof(shortk), bcmp_fn, IKEY_TRAILER_LEN, "x", 0, &err),
		FR_OK);
	blk_iter_set_block(&it, &b);
	assert_int_equal(blk_iter_seek_first(&it, &err), FR_CORRUPTION);
	blk_iter_fini(&it);
}

static void test_block_stored(void **state)
{
	(void)state;
	uint64_t rs = tu_seed();
	struct fr_buf out;
	uint8_t comp[4096], rnd[4096], *owned;
	const uint8_t *data;
	size_t dlen;
	fr_error err;

	for (size_t i = 0; i < sizeof(comp); i++) {
		comp[i] = (uint8_t)("abcabcabd"[i % 9]);
		rnd[i] = (uint8_t)tu_rand(&rs);
	}
	buf_init(&out);

	/* compressible: LZ4, much smaller, decodes to the original */
	assert_int_equal(blk_stored_encode(comp, sizeof(comp), true, &out), FR_OK);
	assert_true(out.len < sizeof(comp) / 4);
	assert_int_equal(out.data[out.len - SST_BLOCK_TRAILER_LEN], SST_COMP_LZ4);
	assert_int_equal(blk_stored_decode(out.data, out.len, "s", 0, &data, &dlen, &owned, &err),
			 FR_OK);
	assert_non_null(owned);
	assert_int_equal(dlen, sizeof(comp));
	assert_memory_equal(data, comp, dlen);
	fr_free(owned);
	/* every flipped byte is caught by the checksum */
	for (size_t i = 0; i < out.len; i++) {
		out.data[i] ^= 0x20;
		assert_int_equal(blk_stored_decode(out.data, out.len, "s.sst", 123, &data, &dlen,
						   &owned, &err),
				 FR_CORRUPTION);
		assert_null(owned);
		assert_non_null(strstr(err.msg, "s.sst"));
		assert_int_equal(err.offset, 123);
		out.data[i] ^= 0x20;
	}
	/* truncated below the trailer */
	assert_int_equal(blk_stored_decode(out.data, 8, "s", 0, &data, &dlen, &owned, &err),
			 FR_CORRUPTION);

	/* incompressible: stored raw even with compression on */
	buf_clear(&out);
	assert_int_equal(blk_stored_encode(rnd, sizeof(rnd), true, &out), FR_OK);
	assert_int_equal(out.len, sizeof(rnd) + SST_BLOCK_TRAILER_LEN);
	assert_int_equal(out.data[sizeof(rnd)], SST_COMP_NONE);
	assert_int_equal(blk_stored_decode(out.data, out.len, "s", 0, &data, &dlen, &owned, &err),
			 FR_OK);
	assert_null(owned);
	assert_ptr_equal(data, out.data);
	assert_memory_equal(data, rnd, sizeof(rnd));

	/* compressible but compression off */
	buf_clear(&out);
	assert_int_equal(blk_stored_encode(comp, sizeof(comp), false, &out), FR_OK);
	assert_int_equal(out.len, sizeof(comp) + SST_BLOCK_TRAILER_LEN);

	/* a savings of less than 1/8 keeps the raw bytes: half random, half compressible */
	uint8_t mix[4096];
	memcpy(mix, rnd, 3700);
	memset(mix + 3700, 'x', sizeof(mix) - 3700);
	buf_clear(&out);
	assert_int_equal(blk_stored_encode(mix, sizeof(mix), true, &out), FR_OK);
	assert_int_equal(out.data[out.len - SST_BLOCK_TRAILER_LEN], SST_COMP_NONE);

	/* an LZ4 block that lies about its size, with a valid checksum */
	buf_clear(&out);
	assert_int_equal(blk_stored_encode(comp, sizeof(comp), true, &out), FR_OK);
	out.data[0] ^= 0x01; /* varint raw length off by one */
	uint64_t sum = fr_xxh3(out.data, out.len - 8);
	enc_u64(out.data + out.len - 8, sum);
	assert_int_equal(blk_stored_decode(out.data, out.len, "s", 0, &data, &dlen, &owned, &err),
			 FR_CORRUPTION);
	/* an unknown compression type, with a valid checksum */
	out.data[out.len - SST_BLOCK_TRAILER_LEN] = 7;
	sum = fr_xxh3(out.data, out.len - 8);
	enc_u64(out.data + out.len - 8, sum);
	assert_int_equal(blk_stored_decode(out.data, out.len, "s", 0, &data, &dlen, &owned, &err),
			 FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "compression type 7"));
	buf_fini(&out);
}

/* ---- hash index (FORMAT.md §4.3.1) ---- */

/* Internal-key entries of n user keys "h<num>" (numbers ascending, so the keys are sorted), key
 * i with versions[i] versions at seqnos 100 * versions[i], ..., 200, 100 (newest first). */
static size_t make_versioned(struct kv *kv, size_t cap, const size_t *versions, size_t n,
			     const uint64_t *nums)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		char u[32];
		int ul = snprintf(u, sizeof(u), "h%08llu", (unsigned long long)nums[i]);
		for (size_t v = versions[i]; v > 0; v--, m++) {
			struct kv *e = &kv[m];
			assert_true(m < cap);
			ikey_encode(e->key, u, (size_t)ul, 100 * v, v % 5 == 0 ? VT_DEL : VT_PUT);
			e->klen = (size_t)ul + IKEY_TRAILER_LEN;
			e->vlen = (size_t)snprintf((char *)e->val, sizeof(e->val), "%zu.%zu", i, v);
		}
	}
	return m;
}

/* Builds a block of internal keys kv[0..n) with the hash index on; a heap copy of its size. */
static uint8_t *build_hashed(const struct kv *kv, size_t n, uint32_t interval, size_t *len)
{
	struct blk_builder b;
	const uint8_t *data;
	blk_builder_init(&b, interval);
	blk_builder_set_hash(&b, true);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(blk_builder_add(&b, kv[i].key, kv[i].klen, kv[i].val, kv[i].vlen),
				 FR_OK);
	size_t want = blk_builder_size(&b);
	assert_int_equal(blk_builder_finish(&b, &data, len), FR_OK);
	assert_int_equal(*len, want);
	uint8_t *copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, data, *len);
	blk_builder_fini(&b);
	return copy;
}

static int ikcmp_fn(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return ikey_cmp(a, alen, b, blen);
}

static bool has_ukey(const struct blk_iter *it, const uint8_t *u, size_t ulen)
{
	return it->valid && bytes_cmp(it->key.data, ikey_user_len(it->key.len), u, ulen) == 0;
}

/* A point read of user key u at snap, through the binary search (a) and the hash index (h),
 * must give the same answer; when u is in the block, h lands exactly where a does. */
static void expect_same_lookup(struct blk_iter *a, struct blk_iter *h, const uint8_t *u,
			       size_t ulen, uint64_t snap, bool in_block)
{
	uint8_t t[64];
	bool absent;
	fr_error err;

	ikey_encode(t, u, ulen, snap, VT_SEEK);
	assert_int_equal(blk_iter_seek(a, t, ulen + IKEY_TRAILER_LEN, &err), FR_OK);
	assert_int_equal(
		blk_iter_seek_hash(h, t, ulen + IKEY_TRAILER_LEN, fr_xxh3(u, ulen), &absent, &err),
		FR_OK);
	if (absent) {
		assert_false(in_block);
		assert_false(h->valid);
	} else if (in_block) {
		assert_int_equal(h->valid, a->valid);
		if (a->valid)
			assert_int_equal(h->cur_off, a->cur_off);
	}
	assert_int_equal(has_ukey(h, u, ulen), has_ukey(a, u, ulen));
	if (has_ukey(a, u, ulen)) {
		assert_int_equal(blk_iter_key_len(h), blk_iter_key_len(a));
		assert_memory_equal(blk_iter_key(h), blk_iter_key(a), blk_iter_key_len(a));
		assert_int_equal(h->val_len, a->val_len);
	}
}

/* Every user key of kv[0..n) at every interesting snapshot, and keys that are not there. */
static void check_hashed_block(const struct kv *kv, size_t n, uint32_t interval, bool want_hash,
			       struct blk_test_counts *used)
{
	size_t len;
	uint8_t *data = build_hashed(kv, n, interval, &len);
	struct blk b;
	struct blk_iter a, h;
	struct blk_test_counts c0, c1;
	fr_error err;

	assert_int_equal(blk_init(&b, data, len, ikcmp_fn, IKEY_TRAILER_LEN, "h", 0, &err), FR_OK);
	assert_int_equal(b.bucket_cnt > 0, want_hash);
	assert_int_equal(b.restart_cnt, (n + interval - 1) / interval);
	blk_iter_init(&a, &b);
	blk_iter_init(&h, &b);
	/* the hash index changes nothing for iteration */
	size_t i = 0;
	for (assert_int_equal(blk_iter_seek_first(&a, &err), FR_OK); a.valid;
	     assert_int_equal(blk_iter_next(&a, &err), FR_OK))
		expect_at(&a, &kv[i++]);
	assert_int_equal(i, n);
	for (assert_int_equal(blk_iter_seek_last(&a, &err), FR_OK); a.valid;
	     assert_int_equal(blk_iter_prev(&a, &err), FR_OK))
		expect_at(&a, &kv[--i]);

	blk_test_counts(&c0);
	for (i = 0; i < n; i++) {
		const uint8_t *u = kv[i].key;
		size_t ulen = ikey_user_len(kv[i].klen);
		uint64_t s = ikey_seqno(kv[i].key, kv[i].klen);
		expect_same_lookup(&a, &h, u, ulen, s, true);
		expect_same_lookup(&a, &h, u, ulen, s - 1, true);
		expect_same_lookup(&a, &h, u, ulen, s + 1, true);
		expect_same_lookup(&a, &h, u, ulen, 0, true);
		expect_same_lookup(&a, &h, u, ulen, SEQNO_MAX, true);
		/* absent: just after the key, just before it, a prefix of it */
		uint8_t t[40];
		memcpy(t, u, ulen);
		t[ulen] = 0;
		expect_same_lookup(&a, &h, t, ulen + 1, SEQNO_MAX, false);
		t[ulen - 1]--;
		expect_same_lookup(&a, &h, t, ulen, SEQNO_MAX, false);
		expect_same_lookup(&a, &h, u, ulen - 1, 7, false);
	}
	expect_same_lookup(&a, &h, (const uint8_t *)"", 0, SEQNO_MAX, false);
	expect_same_lookup(&a, &h, (const uint8_t *)"zzz", 3, SEQNO_MAX, false);
	blk_test_counts(&c1);
	if (used) {
		used->hash_jump += c1.hash_jump - c0.hash_jump;
		used->hash_absent += c1.hash_absent - c0.hash_absent;
		used->hash_collision += c1.hash_collision - c0.hash_collision;
		used->binary_search += c1.binary_search - c0.binary_search;
	}
	if (!want_hash)
		assert_int_equal(c1.hash_jump + c1.hash_absent + c1.hash_collision,
				 c0.hash_jump + c0.hash_absent + c0.hash_collision);
	blk_iter_fini(&a);
	blk_iter_fini(&h);
	free(data);
}

static void test_block_hash_lookups(void **state)
{
	(void)state;
	uint64_t rs = tu_seed();
	size_t cap = 4000, n = 0;
	struct kv *kv = calloc(cap, sizeof(*kv));
	size_t versions[400];
	uint64_t nums[400];
	struct blk_test_counts used = {0};
	assert_non_null(kv);

	/* many versions per key: runs of one key span several restart intervals */
	for (int round = 0; round < 20; round++) {
		size_t keys = 1 + tu_rand_below(&rs, 60);
		uint64_t num = tu_rand_below(&rs, 1000);
		for (size_t i = 0; i < keys; i++) {
			num += 1 + tu_rand_below(&rs, 3);
			nums[i] = num;
			uint64_t r = tu_rand_below(&rs, 10);
			versions[i] = r < 6 ? 1 : r < 9 ? 1 + tu_rand_below(&rs, 6)
							: 10 + tu_rand_below(&rs, 40);
		}
		n = make_versioned(kv, cap, versions, keys, nums);
		static const uint32_t intervals[] = {1, 2, 3, 4, 16, 5000};
		for (size_t k = 0; k < sizeof(intervals) / sizeof(intervals[0]); k++) {
			uint32_t iv = intervals[k];
			bool hashed = (n + iv - 1) / iv <= SST_HASH_RESTART_MAX + 1;
			check_hashed_block(kv, n, iv, hashed, &used);
		}
	}
	fprintf(stderr, "# hash index: %llu jumps, %llu absent, %llu collisions\n",
		(unsigned long long)used.hash_jump, (unsigned long long)used.hash_absent,
		(unsigned long long)used.hash_collision);
	uint64_t total = used.hash_jump + used.hash_absent + used.hash_collision;
	assert_true(total > 1000);
	/* the binary search is the exception: collisions only */
	assert_true(used.hash_collision * 2 < total);
	assert_true(used.hash_absent > 0);

	/* one entry: one bucket, every lookup goes to restart 0 */
	size_t one = 1;
	uint64_t num1 = 5;
	n = make_versioned(kv, cap, &one, 1, &num1);
	check_hashed_block(kv, n, 16, true, NULL);
	/* one key, 300 versions at interval 1: too many restarts for u8 buckets, no hash index */
	size_t many = 300;
	n = make_versioned(kv, cap, &many, 1, &num1);
	check_hashed_block(kv, n, 1, false, NULL);
	free(kv);
}

/* Keys chosen so that they all share one bucket: with each key in its own restart run the
 * bucket is a collision and every lookup falls back; with all in one run it is not. */
static void test_block_hash_collisions(void **state)
{
	(void)state;
	struct kv kv[64];
	size_t versions[32];
	uint64_t nums[32];
	size_t n = 0;
	uint32_t nb = 2 * 32 + 1; /* the bucket count of 32 distinct keys */

	for (uint64_t num = 0; n < 32; num++) {
		char u[32];
		int ul = snprintf(u, sizeof(u), "h%08llu", (unsigned long long)num);
		if (fr_xxh3(u, (size_t)ul) % nb == 3) {
			nums[n] = num;
			versions[n++] = 2;
		}
	}
	n = make_versioned(kv, 64, versions, 32, nums);
	assert_int_equal(n, 64);

	struct blk_test_counts c0, c1;
	size_t len;
	uint8_t *data = build_hashed(kv, n, 2, &len);
	struct blk b;
	fr_error err;
	assert_int_equal(blk_init(&b, data, len, ikcmp_fn, IKEY_TRAILER_LEN, "h", 0, &err), FR_OK);
	assert_int_equal(b.bucket_cnt, nb);
	for (uint32_t i = 0; i < nb; i++)
		assert_int_equal(b.buckets[i], i == 3 ? SST_HASH_COLLISION : SST_HASH_NONE);
	free(data);
	blk_test_counts(&c0);
	check_hashed_block(kv, n, 2, true, NULL);
	blk_test_counts(&c1);
	assert_int_equal(c1.hash_jump, c0.hash_jump);
	assert_true(c1.hash_collision - c0.hash_collision >= 5 * 32 * 2);

	/* the same keys in one restart run: one answer, no collision */
	data = build_hashed(kv, n, 64, &len);
	assert_int_equal(blk_init(&b, data, len, ikcmp_fn, IKEY_TRAILER_LEN, "h", 0, &err), FR_OK);
	assert_int_equal(b.buckets[3], 0);
	free(data);
	blk_test_counts(&c0);
	check_hashed_block(kv, n, 64, true, NULL);
	blk_test_counts(&c1);
	assert_int_equal(c1.hash_collision, c0.hash_collision);
	assert_true(c1.hash_jump - c0.hash_jump >= 5 * 32 * 2);
}

/* Walks a (possibly damaged) hashed block: every way, and a hashed lookup of every key. */
static fr_status walk_hashed(const uint8_t *data, size_t len, const struct kv *kv, size_t n,
			     fr_error *err)
{
	struct blk b;
	struct blk_iter it;
	bool absent;
	fr_status rc = blk_init(&b, data, len, ikcmp_fn, IKEY_TRAILER_LEN, "hashed.sst", 8192, err);
	if (rc)
		return rc;
	blk_iter_init(&it, &b);
	size_t steps = 0;
	for (rc = blk_iter_seek_first(&it, err); !rc && it.valid; rc = blk_iter_next(&it, err))
		assert_true(++steps <= len);
	for (size_t i = 0; !rc && i < n; i++) {
		size_t ulen = ikey_user_len(kv[i].klen);
		rc = blk_iter_seek_hash(&it, kv[i].key, kv[i].klen, fr_xxh3(kv[i].key, ulen),
					&absent, err);
		if (!rc && it.valid)
			rc = blk_iter_prev(&it, err);
	}
	blk_iter_fini(&it);
	return rc;
}

static void test_block_hash_corrupt(void **state)
{
	(void)state;
	struct kv kv[40];
	size_t versions[12] = {1, 3, 1, 1, 7, 1, 2, 1, 1, 5, 1, 1};
	uint64_t nums[12] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233};
	size_t n = make_versioned(kv, 40, versions, 12, nums), len;
	uint8_t *good = build_hashed(kv, n, 4, &len);
	fr_error err;
	size_t corrupt = 0;

	assert_int_equal(walk_hashed(good, len, kv, n, &err), FR_OK);
	for (size_t off = 0; off < len; off++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			uint8_t *bad = malloc(len);
			assert_non_null(bad);
			memcpy(bad, good, len);
			bad[off] ^= (uint8_t)(1u << bit);
			memset(&err, 0, sizeof(err));
			fr_status rc = walk_hashed(bad, len, kv, n, &err);
			assert_true(rc == FR_OK || rc == FR_CORRUPTION);
			if (rc) {
				assert_non_null(strstr(err.msg, "hashed.sst"));
				assert_int_equal(err.offset, 8192);
				corrupt++;
			}
			free(bad);
		}
	}
	assert_true(corrupt > 0);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *bad = malloc(cut ? cut : 1);
		assert_non_null(bad);
		memcpy(bad, good, cut);
		fr_status rc = walk_hashed(bad, cut, kv, n, &err);
		assert_true(rc == FR_OK || rc == FR_CORRUPTION);
		free(bad);
	}

	/* hand-made tails: the bucket count, the restart count, a bucket out of range */
	struct blk b;
	uint8_t *bad = malloc(len);
	assert_non_null(bad);
	size_t nb = dec_u16(good + len - 6);
	uint32_t restarts = dec_u32(good + len - 4) & ~SST_BLOCK_HASH_FLAG;
	assert_true(nb >= 3);
	memcpy(bad, good, len);
	enc_u16(bad + len - 6, 0);
	assert_int_equal(blk_init(&b, bad, len, ikcmp_fn, 8, "x", 0, &err), FR_CORRUPTION);
	enc_u16(bad + len - 6, (uint16_t)(len - 5));
	assert_int_equal(blk_init(&b, bad, len, ikcmp_fn, 8, "x", 0, &err), FR_CORRUPTION);
	memcpy(bad, good, len);
	enc_u32(bad + len - 4, SST_BLOCK_HASH_FLAG);
	assert_int_equal(blk_init(&b, bad, len, ikcmp_fn, 8, "x", 0, &err), FR_CORRUPTION);
	enc_u32(bad + len - 4, SST_BLOCK_HASH_FLAG | (SST_HASH_RESTART_MAX + 2));
	assert_int_equal(blk_init(&b, bad, len, ikcmp_fn, 8, "x", 0, &err), FR_CORRUPTION);
	memcpy(bad, good, len);
	for (size_t i = 0; i < nb; i++) {
		uint8_t *slot = bad + len - 6 - nb + i;
		uint8_t keep = *slot;
		*slot = (uint8_t)restarts; /* one past the last restart */
		assert_int_equal(blk_init(&b, bad, len, ikcmp_fn, 8, "x.sst", 9, &err),
				 FR_CORRUPTION);
		assert_non_null(strstr(err.msg, "hash bucket"));
		*slot = keep;
	}
	assert_int_equal(blk_init(&b, bad, len, ikcmp_fn, 8, "x", 0, &err), FR_OK);
	free(bad);
	free(good);
}

/* blk_init_checked gives the view blk_init gives, with or without a hash index. */
static void test_block_init_checked(void **state)
{
	(void)state;
	struct kv kv[10];
	size_t versions[3] = {2, 3, 1};
	uint64_t nums[3] = {1, 2, 3};
	size_t n = make_versioned(kv, 10, versions, 3, nums);
	for (int hashed = 0; hashed < 2; hashed++) {
		size_t len;
		uint8_t *data = hashed ? build_hashed(kv, n, 2, &len) : build_block(kv, n, 2, &len);
		struct blk a, c;
		fr_error err;
		assert_int_equal(blk_init(&a, data, len, ikcmp_fn, 8, "x", 5, &err), FR_OK);
		blk_init_checked(&c, data, len, ikcmp_fn, 8, "x", 5);
		assert_int_equal(a.restarts_off, c.restarts_off);
		assert_int_equal(a.restart_cnt, c.restart_cnt);
		assert_int_equal(a.bucket_cnt, c.bucket_cnt);
		assert_ptr_equal(a.buckets, c.buckets);
		assert_int_equal(a.bucket_cnt > 0, hashed);
		free(data);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_roundtrip),
		cmocka_unit_test(test_block_prefix_compression),
		cmocka_unit_test(test_block_long_keys),
		cmocka_unit_test(test_block_empty),
		cmocka_unit_test(test_block_corrupt_sweep),
		cmocka_unit_test(test_block_corrupt_cases),
		cmocka_unit_test(test_block_stored),
		cmocka_unit_test(test_block_hash_lookups),
		cmocka_unit_test(test_block_hash_collisions),
		cmocka_unit_test(test_block_hash_corrupt),
		cmocka_unit_test(test_block_init_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
