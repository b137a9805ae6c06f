/* SPDX-License-Identifier: MIT */
/* test_batch.c - the batch record codec (tx/batch.c) and the range tombstone set (rdset). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/ikey.h"
#include "compact/rdset.h"
#include "testutil.h"
#include "tx/batch.h"

struct seen {
	struct batch_op ops[16];
	size_t cnt;
	uint64_t seqno;
};

static fr_status collect(void *ctx, uint64_t seqno, const struct batch_op *op, fr_error *err)
{
	(void)err;
	struct seen *s = ctx;
	s->seqno = seqno;
	s->ops[s->cnt++] = *op;
	return FR_OK;
}

static void test_batch_roundtrip(void **state)
{
	(void)state;
	struct batch_op ops[] = {
		{.op = BOP_PUT, .tree_id = 3, .key = (const uint8_t *)"k1", .key_len = 2,
		 .val = (const uint8_t *)"value", .val_len = 5},
		{.op = BOP_DEL, .tree_id = 0, .key = (const uint8_t *)"k2", .key_len = 2},
		{.op = BOP_WEAK_DEL, .tree_id = 70000, .key = (const uint8_t *)"", .key_len = 0},
		{.op = BOP_RANGE_DEL, .tree_id = 1, .key = (const uint8_t *)"a", .key_len = 1,
		 .val = (const uint8_t *)"c", .val_len = 1},
	};
	struct fr_buf b;
	buf_init(&b);
	assert_int_equal(batch_encode(42, ops, 4, &b), FR_OK);
	struct seen s = {0};
	uint64_t seqno = 0;
	fr_error err;
	assert_int_equal(batch_decode(b.data, b.len, collect, &s, &seqno, "t", &err), FR_OK);
	assert_int_equal(seqno, 42);
	assert_int_equal(s.cnt, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(s.ops[i].op, ops[i].op);
		assert_int_equal(s.ops[i].tree_id, ops[i].tree_id);
		assert_int_equal(s.ops[i].key_len, ops[i].key_len);
		assert_memory_equal(s.ops[i].key, ops[i].key, ops[i].key_len);
		if (ops[i].op == BOP_PUT || ops[i].op == BOP_RANGE_DEL) {
			assert_int_equal(s.ops[i].val_len, ops[i].val_len);
			assert_memory_equal(s.ops[i].val, ops[i].val, ops[i].val_len);
		}
	}
	/* every truncation and every flipped byte: an error or a decode, never a crash */
	for (size_t n = 0; n < b.len; n++) {
		s.cnt = 0;
		fr_status rc = batch_decode(b.data, n, collect, &s, &seqno, "t", &err);
		assert_int_equal(rc, FR_CORRUPTION);
		assert_non_null(strstr(err.msg, "t at offset"));
	}
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x5a;
		s.cnt = 0;
		fr_status rc = batch_decode(b.data, b.len, collect, &s, &seqno, "t", &err);
		assert_true(rc == FR_OK || rc == FR_CORRUPTION);
		assert_true(s.cnt <= 4);
		b.data[i] ^= 0x5a;
	}
	buf_fini(&b);
}

static struct range_del rd(const char *s, const char *e, uint64_t seqno)
{
	return (struct range_del){(const uint8_t *)s, strlen(s), (const uint8_t *)e, strlen(e),
				  seqno};
}

static uint64_t cover(const struct rdset *s, const char *k, uint64_t snap)
{
	return rdset_max_cover(s, (const uint8_t *)k, strlen(k), snap);
}

static void test_batch_rdset_cover(void **state)
{
	(void)state;
	struct range_del in[] = {rd("b", "f", 10), rd("d", "h", 20), rd("a", "c", 5),
				 rd("x", "x", 99) /* empty: ignored */};
	struct rdset *s;
	assert_int_equal(rdset_new(in, 4, &s), FR_OK);
	assert_non_null(s);
	assert_int_equal(cover(s, "a", 100), 5);
	assert_int_equal(cover(s, "b", 100), 10);
	assert_int_equal(cover(s, "c", 100), 10);
	assert_int_equal(cover(s, "d", 100), 20);
	assert_int_equal(cover(s, "d", 15), 10); /* the newer one is above the snapshot */
	assert_int_equal(cover(s, "e", 9), 0);
	assert_int_equal(cover(s, "g", 100), 20);
	assert_int_equal(cover(s, "h", 100), 0); /* end is exclusive */
	assert_int_equal(cover(s, "", 100), 0);
	assert_int_equal(cover(s, "x", 100), 0);
	const struct range_del *all;
	assert_int_equal(rdset_all(s, &all), 3);
	assert_memory_equal(all[0].start, "a", 1);
	rdset_free(s);
	assert_int_equal(rdset_new(in, 0, &s), FR_OK);
	assert_null(s);
	assert_int_equal(cover(NULL, "a", 1), 0);
}

/* random tombstones against a brute-force answer */
static void test_batch_rdset_random(void **state)
{
	(void)state;
	uint64_t r = tu_seed();
	for (int round = 0; round < 50; round++) {
		struct range_del in[40];
		char keys[80][4];
		size_t n = 1 + tu_rand_below(&r, 40);
		for (size_t i = 0; i < n; i++) {
			snprintf(keys[2 * i], 4, "%02d", (int)tu_rand_below(&r, 50));
			snprintf(keys[2 * i + 1], 4, "%02d", (int)tu_rand_below(&r, 50));
			in[i] = rd(keys[2 * i], keys[2 * i + 1], 1 + tu_rand_below(&r, 30));
		}
		struct rdset *s;
		assert_int_equal(rdset_new(in, n, &s), FR_OK);
		for (int k = 0; k < 52; k++) {
			char key[4];
			snprintf(key, 4, "%02d", k);
			uint64_t snap = 1 + tu_rand_below(&r, 32);
			uint64_t want = 0;
			for (size_t i = 0; i < n; i++)
				if (range_del_covers(&in[i], (const uint8_t *)key, 2, 0, snap) &&
				    in[i].seqno > want)
					want = in[i].seqno;
			assert_int_equal(cover(s, key, snap), want);
		}
		rdset_free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_roundtrip),
		cmocka_unit_test(test_batch_rdset_cover),
		cmocka_unit_test(test_batch_rdset_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
