/* SPDX-License-Identifier: MIT */
/*
 * test_bloom.c - the bloom filter: no false negatives, a false-positive rate within 1.5x of the
 * theory at 10 bits per key, the choice of k, encoding checks, and tables written without a
 * filter (bits_per_key 0), whose may_contain is always true.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/ikey.h"
#include "io/io.h"
#include "sst/filter.h"
#include "sst/sst.h"
#include "testutil.h"

static uint64_t key_hash(const char *fmt, unsigned long i)
{
	char k[32];
	int n = snprintf(k, sizeof(k), fmt, i);
	return bloom_hash(k, (size_t)n);
}

static void test_bloom_k(void **state)
{
	(void)state;
	assert_int_equal(bloom_k(0), 1);
	assert_int_equal(bloom_k(1), 1);
	assert_int_equal(bloom_k(2), 1);   /* 1.386 */
	assert_int_equal(bloom_k(3), 2);   /* 2.079 */
	assert_int_equal(bloom_k(10), 7);  /* 6.931 */
	assert_int_equal(bloom_k(16), 11); /* 11.09 */
	assert_int_equal(bloom_k(43), 30); /* 29.8 */
	assert_int_equal(bloom_k(100), BLOOM_K_MAX);
}

static void test_bloom_fp_rate(void **state)
{
	(void)state;
	const size_t n = 100000, probes = 200000;
	uint64_t *h = malloc(n * sizeof(*h));
	struct fr_buf f;

	assert_non_null(h);
	for (size_t i = 0; i < n; i++)
		h[i] = key_hash("key%08lu", i);
	buf_init(&f);
	assert_int_equal(bloom_build(h, n, 10, &f), FR_OK);
	assert_int_equal(f.len, n * 10 / 8 + 1);
	assert_true(bloom_is_valid(f.data, f.len));
	assert_int_equal(f.data[f.len - 1], 7);

	for (size_t i = 0; i < n; i++)
		assert_true(bloom_may_contain(f.data, f.len, h[i]));
	size_t fp = 0;
	for (size_t i = 0; i < probes; i++)
		fp += bloom_may_contain(f.data, f.len, key_hash("other%08lu", i));
	double rate = (double)fp / (double)probes;
	/* (1 - e^(-k n / m))^k with k = 7, m / n = 10 (no libm in the test link) */
	const double theory = 0.0081939;
	fprintf(stderr, "# bloom fp rate %.4f%% (theory %.4f%%)\n", rate * 100, theory * 100);
	assert_true(rate < 1.5 * theory);
	assert_true(rate > 0.0); /* a filter that says no to everything is broken too */
	buf_fini(&f);
	free(h);
}

static void test_bloom_small_sets(void **state)
{
	(void)state;
	uint64_t h[200];
	struct fr_buf f;
	buf_init(&f);
	for (size_t n = 0; n <= 200; n += 7) {
		for (uint32_t bits = 1; bits <= 20; bits += 3) {
			for (size_t i = 0; i < n; i++)
				h[i] = key_hash("s%lu", i);
			buf_clear(&f);
			assert_int_equal(bloom_build(h, n, bits, &f), FR_OK);
			assert_true(f.len >= 9); /* at least 64 bits */
			assert_true(bloom_is_valid(f.data, f.len));
			for (size_t i = 0; i < n; i++)
				assert_true(bloom_may_contain(f.data, f.len, h[i]));
		}
	}
	/* an empty filter rejects everything */
	buf_clear(&f);
	assert_int_equal(bloom_build(h, 0, 10, &f), FR_OK);
	for (unsigned long i = 0; i < 100; i++)
		assert_false(bloom_may_contain(f.data, f.len, key_hash("x%lu", i)));
	buf_fini(&f);
}

static void test_bloom_bad_args_and_encodings(void **state)
{
	(void)state;
	uint64_t h = 1;
	struct fr_buf f;
	buf_init(&f);
	assert_int_equal(bloom_build(&h, 1, 0, &f), FR_INVALID);
	assert_int_equal(bloom_build(&h, 1, BLOOM_BITS_PER_KEY_MAX + 1, &f), FR_INVALID);
	assert_int_equal(f.len, 0);
	uint8_t e1[] = {7};
	uint8_t e2[] = {0xff, 0};
	uint8_t e3[] = {0xff, 31};
	uint8_t ok[] = {0xff, 30};
	assert_false(bloom_is_valid(e1, 0));
	assert_false(bloom_is_valid(e1, sizeof(e1)));
	assert_false(bloom_is_valid(e2, sizeof(e2)));
	assert_false(bloom_is_valid(e3, sizeof(e3)));
	assert_true(bloom_is_valid(ok, sizeof(ok)));
	assert_true(bloom_may_contain(ok, sizeof(ok), 12345)); /* all bits set */
	buf_fini(&f);
}

/* Writes a table of keys "k0000".."k0999" (step 2) with the given bloom bits. */
static struct sst_reader *bloom_table(const char *path, uint32_t bits)
{
	struct sst_options o;
	struct sst_writer *w;
	struct sst_reader *r;
	struct sst_meta m;
	fr_error err;
	uint8_t ik[32];

	sst_options_default(&o);
	o.bloom_bits_per_key = bits;
	assert_int_equal(sst_writer_open(io_posix(), path, 1, &o, &w, &err), FR_OK);
	for (unsigned i = 0; i < 1000; i += 2) {
		char k[8];
		snprintf(k, sizeof(k), "k%04u", i);
		ikey_encode(ik, k, 5, i + 1, VT_PUT);
		assert_int_equal(sst_writer_add(w, ik, 5 + IKEY_TRAILER_LEN, "v", 1, &err), FR_OK);
	}
	assert_int_equal(sst_writer_finish(w, &m, &err), FR_OK);
	sst_meta_fini(&m);
	assert_int_equal(sst_reader_open(io_posix(), path, 1, &r, &err), FR_OK);
	return r;
}

static void test_bloom_table_bits(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("bloom");
	char p0[512], p10[512];
	snprintf(p0, sizeof(p0), "%s/nofilter.sst", dir);
	snprintf(p10, sizeof(p10), "%s/filter.sst", dir);
	struct sst_reader *r0 = bloom_table(p0, 0), *r10 = bloom_table(p10, 10);
	size_t rejected0 = 0, rejected10 = 0;

	for (unsigned i = 0; i < 1000; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%04u", i);
		bool present = i % 2 == 0;
		bool m0 = sst_reader_may_contain(r0, k, 5), m10 = sst_reader_may_contain(r10, k, 5);
		assert_true(m0); /* no filter: always maybe */
		if (present)
			assert_true(m10);
		rejected0 += !m0;
		rejected10 += !m10;
		/* get agrees with the data either way */
		uint8_t type;
		uint64_t seq;
		void *v;
		size_t vl;
		fr_error err;
		fr_status want = present ? FR_OK : FR_NOT_FOUND;
		assert_int_equal(sst_reader_get(r0, k, 5, SEQNO_MAX, &type, &seq, &v, &vl, &err),
				 want);
		fr_free(v);
		assert_int_equal(sst_reader_get(r10, k, 5, SEQNO_MAX, &type, &seq, &v, &vl, &err),
				 want);
		fr_free(v);
	}
	assert_int_equal(rejected0, 0);
	assert_true(rejected10 > 450); /* ~99% of the 500 absent keys */
	/* the table without a filter is smaller by about 500 * 10 bits */
	assert_true(sst_reader_meta(r10)->file_size > sst_reader_meta(r0)->file_size + 500);
	sst_reader_unref(r0);
	sst_reader_unref(r10);
	tu_rmtree_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bloom_k),
		cmocka_unit_test(test_bloom_fp_rate),
		cmocka_unit_test(test_bloom_small_sets),
		cmocka_unit_test(test_bloom_bad_args_and_encodings),
		cmocka_unit_test(test_bloom_table_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
