/* SPDX-License-Identifier: MIT */
/*
 * test_version.c - version edits (builders, encoding round trip, truncation, bit flips, garbage
 * and allocation failures while decoding), lazily opened table readers and the level iterator
 * over real tables compared with a sorted model, and the read environment of a vset: tables
 * replayed before vset_set_read_env and tables added after it read through its block cache and
 * file table, the level iterator's SST_ITER_NO_FILL, and an obsolete table's file forgotten by
 * the file table before it is deleted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/coding.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "io/ftab.h"
#include "io/io.h"
#include "sst/cache.h"
#include "sst/sst.h"
#include "testutil.h"
#include "version/version.h"
#include "version/version_int.h"

/* ---- version edits ---- */

static void meta_set(struct sst_meta *m, uint64_t id, const char *lo, const char *hi)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->file_size = 1000 + id * 7;
	m->entry_cnt = 10 + id;
	m->tombstone_cnt = id % 3;
	m->range_del_cnt = id % 2;
	m->min_seqno = id * 100;
	m->max_seqno = id * 100 + 50;
	m->created_s = id * 1000 + 7;
	m->smallest = (uint8_t *)(uintptr_t)lo;
	m->smallest_len = strlen(lo);
	m->largest = (uint8_t *)(uintptr_t)hi;
	m->largest_len = strlen(hi);
}

/* An edit with every kind of field, large values included. */
static void full_edit(struct vedit *e)
{
	struct sst_meta m;

	vedit_init(e);
	meta_set(&m, 7, "apple", "banana");
	assert_int_equal(vedit_add_table(e, 1, 0, &m), FR_OK);
	meta_set(&m, 8, "", "zz");
	m.file_size = UINT64_MAX;
	m.max_seqno = SEQNO_MAX;
	assert_int_equal(vedit_add_table(e, UINT32_MAX, LEVEL_CNT - 1, &m), FR_OK);
	meta_set(&m, 1ull << 40, "k\0ey", "m");
	m.smallest_len = 4;
	assert_int_equal(vedit_add_table(e, 2, 3, &m), FR_OK);
	assert_int_equal(vedit_del_table(e, 1, 2, 3), FR_OK);
	assert_int_equal(vedit_del_table(e, 9, 6, UINT64_MAX), FR_OK);
	assert_int_equal(vedit_set_flushed(e, 1, 500), FR_OK);
	assert_int_equal(vedit_set_flushed(e, 4, 0), FR_OK);
	assert_int_equal(vedit_drop_tree(e, 5), FR_OK);
	assert_int_equal(vedit_drop_tree(e, 6), FR_OK);
	e->has_next_file_id = true;
	e->next_file_id = 12345;
	e->has_last_seqno = true;
	e->last_seqno = 987654321;
}

static void assert_meta_equal(const struct sst_meta *a, const struct sst_meta *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->file_size, b->file_size);
	assert_int_equal(a->entry_cnt, b->entry_cnt);
	assert_int_equal(a->tombstone_cnt, b->tombstone_cnt);
	assert_int_equal(a->range_del_cnt, b->range_del_cnt);
	assert_int_equal(a->min_seqno, b->min_seqno);
	assert_int_equal(a->max_seqno, b->max_seqno);
	assert_int_equal(a->created_s, b->created_s);
	assert_int_equal(a->smallest_len, b->smallest_len);
	assert_int_equal(a->largest_len, b->largest_len);
	if (a->smallest_len)
		assert_memory_equal(a->smallest, b->smallest, a->smallest_len);
	if (a->largest_len)
		assert_memory_equal(a->largest, b->largest, a->largest_len);
}

static void assert_edit_equal(const struct vedit *a, const struct vedit *b)
{
	assert_int_equal(a->add_cnt, b->add_cnt);
	for (size_t i = 0; i < a->add_cnt; i++) {
		assert_int_equal(a->adds[i].tree_id, b->adds[i].tree_id);
		assert_int_equal(a->adds[i].level, b->adds[i].level);
		assert_meta_equal(&a->adds[i].meta, &b->adds[i].meta);
	}
	assert_int_equal(a->del_cnt, b->del_cnt);
	for (size_t i = 0; i < a->del_cnt; i++) {
		assert_int_equal(a->dels[i].tree_id, b->dels[i].tree_id);
		assert_int_equal(a->dels[i].level, b->dels[i].level);
		assert_int_equal(a->dels[i].table_id, b->dels[i].table_id);
	}
	assert_int_equal(a->flushed_cnt, b->flushed_cnt);
	for (size_t i = 0; i < a->flushed_cnt; i++) {
		assert_int_equal(a->flushed[i].tree_id, b->flushed[i].tree_id);
		assert_int_equal(a->flushed[i].seqno, b->flushed[i].seqno);
	}
	assert_int_equal(a->dropped_cnt, b->dropped_cnt);
	for (size_t i = 0; i < a->dropped_cnt; i++)
		assert_int_equal(a->dropped_trees[i], b->dropped_trees[i]);
	assert_int_equal(a->has_next_file_id, b->has_next_file_id);
	if (a->has_next_file_id)
		assert_int_equal(a->next_file_id, b->next_file_id);
	assert_int_equal(a->has_last_seqno, b->has_last_seqno);
	if (a->has_last_seqno)
		assert_int_equal(a->last_seqno, b->last_seqno);
}

static void test_version_edit_round_trip(void **state)
{
	struct vedit e, d;
	struct fr_buf b, b2;
	fr_error err;

	(void)state;
	full_edit(&e);
	buf_init(&b);
	buf_init(&b2);
	assert_int_equal(vedit_encode(&e, &b), FR_OK);
	assert_int_equal(vedit_decode(b.data, b.len, &d, "MANIFEST-1", 24, &err), FR_OK);
	assert_edit_equal(&e, &d);
	/* encoding is deterministic */
	assert_int_equal(vedit_encode(&d, &b2), FR_OK);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	vedit_fini(&d);

	/* the empty edit is empty */
	struct vedit z;
	vedit_init(&z);
	buf_clear(&b2);
	assert_int_equal(vedit_encode(&z, &b2), FR_OK);
	assert_int_equal(b2.len, 0);
	assert_int_equal(vedit_decode(b2.data, 0, &d, "x", 0, &err), FR_OK);
	assert_edit_equal(&z, &d);
	vedit_fini(&d);
	vedit_fini(&e);
	vedit_fini(&e); /* fini twice is harmless */
	buf_fini(&b);
	buf_fini(&b2);
}

static void test_version_edit_builders(void **state)
{
	struct vedit e;

	(void)state;
	vedit_init(&e);
	assert_int_equal(vedit_set_flushed(&e, 3, 10), FR_OK);
	assert_int_equal(vedit_set_flushed(&e, 3, 20), FR_OK);
	assert_int_equal(vedit_set_flushed(&e, 4, 5), FR_OK);
	assert_int_equal(e.flushed_cnt, 2);
	assert_int_equal(e.flushed[0].seqno, 20);
	assert_int_equal(vedit_drop_tree(&e, 9), FR_OK);
	assert_int_equal(vedit_drop_tree(&e, 9), FR_OK);
	assert_int_equal(e.dropped_cnt, 1);
	/* many entries: the arrays grow */
	char key[16];
	for (int i = 0; i < 1000; i++) {
		struct sst_meta m;

		snprintf(key, sizeof(key), "k%04d", i);
		meta_set(&m, (uint64_t)i + 1, key, key);
		assert_int_equal(vedit_add_table(&e, 1, 1, &m), FR_OK);
		assert_int_equal(vedit_del_table(&e, 1, 2, (uint64_t)i), FR_OK);
	}
	key[0] = 'X'; /* the builder copied the keys */
	assert_int_equal(e.add_cnt, 1000);
	assert_int_equal(e.del_cnt, 1000);
	assert_memory_equal(e.adds[999].meta.smallest, "k0999", 5);
	assert_int_equal(e.dels[999].table_id, 999);
	vedit_fini(&e);
	assert_int_equal(e.add_cnt, 0);
}

/* Decodes; the result must be OK or FR_CORRUPTION naming the path and an offset in range. */
static fr_status decode_checked(const uint8_t *p, size_t len, uint64_t base_off)
{
	struct vedit d;
	fr_error err;
	fr_status rc;

	memset(&err, 0, sizeof(err));
	rc = vedit_decode(p, len, &d, "/x/MANIFEST-7", base_off, &err);
	if (rc == FR_OK) {
		vedit_fini(&d);
		return rc;
	}
	assert_int_equal(rc, FR_CORRUPTION);
	assert_int_equal(err.code, FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "/x/MANIFEST-7"));
	assert_true(err.offset >= base_off && err.offset <= base_off + len);
	assert_int_equal(d.add_cnt, 0); /* left empty on failure */
	vedit_fini(&d);
	return rc;
}

static void test_version_edit_truncated(void **state)
{
	struct vedit e, d;
	struct fr_buf b, re;
	fr_error err;
	size_t ok = 0;

	(void)state;
	full_edit(&e);
	buf_init(&b);
	buf_init(&re);
	assert_int_equal(vedit_encode(&e, &b), FR_OK);
	for (size_t n = 0; n < b.len; n++) {
		/* a copy of exactly n bytes, so ASan sees any read past it */
		uint8_t *p = malloc(n ? n : 1);

		assert_non_null(p);
		memcpy(p, b.data, n);
		if (decode_checked(p, n, 100) == FR_OK) {
			/* only a cut at a field boundary decodes, to a prefix of the edit */
			assert_int_equal(vedit_decode(p, n, &d, "t", 0, &err), FR_OK);
			buf_clear(&re);
			assert_int_equal(vedit_encode(&d, &re), FR_OK);
			assert_int_equal(re.len, n);
			if (n)
				assert_memory_equal(re.data, p, n);
			vedit_fini(&d);
			ok++;
		}
		free(p);
	}
	/* 0 bytes, and the ends of all but the last of the 11 fields */
	assert_int_equal(ok, 11);
	vedit_fini(&e);
	buf_fini(&b);
	buf_fini(&re);
}

static void test_version_edit_bit_flips(void **state)
{
	struct vedit e;
	struct fr_buf b;
	size_t bad = 0;

	(void)state;
	full_edit(&e);
	buf_init(&b);
	assert_int_equal(vedit_encode(&e, &b), FR_OK);
	uint8_t *p = malloc(b.len);
	assert_non_null(p);
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(p, b.data, b.len);
			p[i] ^= (uint8_t)(1u << bit);
			bad += decode_checked(p, b.len, 1000) != FR_OK;
		}
		/* and every value of the byte at the first tag */
		if (i == 0) {
			for (int v = 0; v < 256; v++) {
				memcpy(p, b.data, b.len);
				p[0] = (uint8_t)v;
				decode_checked(p, b.len, 0);
			}
		}
	}
	assert_true(bad > 0);
	free(p);
	vedit_fini(&e);
	buf_fini(&b);
}

static void test_version_edit_garbage(void **state)
{
	uint64_t rs = tu_seed();
	uint8_t buf[64];

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)tu_rand_below(&rs, sizeof(buf) + 1);

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)tu_rand(&rs);
		/* small tags and values more often, so decoding gets deep */
		for (size_t k = 0; k < n; k++)
			if (tu_rand_below(&rs, 2))
				buf[k] &= 0x07;
		decode_checked(buf, n, 5);
	}
}

static void test_version_edit_rejects(void **state)
{
	struct vedit d;
	fr_error err;
	uint8_t p[32];
	size_t n;

	(void)state;
	/* unknown tag 99 after a valid field: blamed at the tag's offset */
	n = 0;
	n += enc_varint(p + n, 5);
	n += enc_varint(p + n, 77);
	n += enc_varint(p + n, 99);
	n += enc_varint(p + n, 1);
	assert_int_equal(vedit_decode(p, n, &d, "M", 40, &err), FR_CORRUPTION);
	assert_int_equal(err.offset, 42);
	assert_non_null(strstr(err.msg, "unknown field tag"));
	/* level out of range */
	n = 0;
	n += enc_varint(p + n, 2);
	n += enc_varint(p + n, 1);
	n += enc_varint(p + n, LEVEL_CNT);
	n += enc_varint(p + n, 3);
	assert_int_equal(vedit_decode(p, n, &d, "M", 0, &err), FR_CORRUPTION);
	assert_int_equal(err.offset, 2);
	/* tree id above 32 bits */
	n = 0;
	n += enc_varint(p + n, 4);
	n += enc_varint(p + n, 1ull << 32);
	assert_int_equal(vedit_decode(p, n, &d, "M", 0, &err), FR_CORRUPTION);
	/* repeated next_file_id */
	n = 0;
	n += enc_varint(p + n, 5);
	n += enc_varint(p + n, 1);
	n += enc_varint(p + n, 5);
	n += enc_varint(p + n, 2);
	assert_int_equal(vedit_decode(p, n, &d, "M", 0, &err), FR_CORRUPTION);
	/* key length beyond the record */
	n = 0;
	for (int i = 0; i < 10; i++)
		n += enc_varint(p + n, i == 0 ? 1 : 1);
	n += enc_varint(p + n, 200);
	p[n++] = 'a';
	assert_int_equal(vedit_decode(p, n, &d, "M", 0, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "smallest"));
	/* an overlong varint */
	memset(p, 0xff, 11);
	p[11] = 0;
	assert_int_equal(vedit_decode(p, 12, &d, "M", 0, &err), FR_CORRUPTION);
}

static void test_version_edit_nomem(void **state)
{
	struct vedit e, d;
	struct fr_buf b;
	fr_error err;
	fr_status rc;

	(void)state;
	full_edit(&e);
	buf_init(&b);
	assert_int_equal(vedit_encode(&e, &b), FR_OK);
	for (unsigned long n = 1;; n++) {
		fr_alloc_fail_at(n);
		rc = vedit_decode(b.data, b.len, &d, "M", 0, &err);
		fr_alloc_fail_at(0);
		if (rc == FR_OK) {
			assert_edit_equal(&e, &d);
			vedit_fini(&d);
			assert_true(n > 3);
			break;
		}
		assert_int_equal(rc, FR_NOMEM);
		assert_int_equal(d.add_cnt, 0);
	}
	vedit_fini(&e);
	buf_fini(&b);
}

/* ---- tables and the level iterator ---- */

struct entry {
	uint8_t *ikey;
	size_t ilen;
	char val[32];
};

struct fixture {
	char *dir;
	struct table *tables[8];
	size_t cnt;
	struct entry *model; /* all point entries, in internal key order */
	size_t model_cnt;
};

static void add_entry(struct fixture *fx, const char *uk, uint64_t seqno)
{
	struct entry *en;

	fx->model = realloc(fx->model, (fx->model_cnt + 1) * sizeof(*fx->model));
	assert_non_null(fx->model);
	en = &fx->model[fx->model_cnt++];
	en->ilen = strlen(uk) + IKEY_TRAILER_LEN;
	en->ikey = malloc(en->ilen);
	assert_non_null(en->ikey);
	ikey_encode(en->ikey, uk, strlen(uk), seqno, VT_PUT);
	snprintf(en->val, sizeof(en->val), "v-%s-%llu", uk, (unsigned long long)seqno);
}

/* Writes table `id` holding the model entries [from, to) (none: one range tombstone). */
static void make_table(struct fixture *fx, uint64_t id, size_t from, size_t to, const char *rd_lo,
		       const char *rd_hi)
{
	struct sst_options o;
	struct sst_writer *w;
	struct sst_meta m;
	char path[PATH_MAX];
	fr_error err;

	sst_options_default(&o);
	o.block_size = 256; /* several blocks per table */
	snprintf(path, sizeof(path), "%s/%llu.sst", fx->dir, (unsigned long long)id);
	assert_int_equal(sst_writer_open(io_posix(), path, id, &o, &w, &err), FR_OK);
	for (size_t i = from; i < to; i++) {
		struct entry *en = &fx->model[i];

		assert_int_equal(sst_writer_add(w, en->ikey, en->ilen, en->val, strlen(en->val),
						&err),
				 FR_OK);
	}
	if (rd_lo) {
		struct range_del rd = { (const uint8_t *)rd_lo, strlen(rd_lo),
					(const uint8_t *)rd_hi, strlen(rd_hi), 5 };

		assert_int_equal(sst_writer_add_range_del(w, &rd, &err), FR_OK);
	}
	assert_int_equal(sst_writer_finish(w, &m, &err), FR_OK);
	assert_int_equal(m.id, id);
	assert_int_equal(table_new(io_posix(), path, 1, &m, &fx->tables[fx->cnt++]), FR_OK);
	sst_meta_fini(&m);
}

static char ukey_buf[32];
static const char *ukey(size_t i)
{
	snprintf(ukey_buf, sizeof(ukey_buf), "key%05zu", i);
	return ukey_buf;
}

/* 5 tables: 4 with point entries (1 to 3 versions per key) and, in the middle, one holding
 * only a range tombstone, so the iterator has to step over a table with no entries. */
static int setup_tables(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	size_t bounds[5];
	size_t k = 0;

	assert_non_null(fx);
	fx->dir = tu_tmpdir("level");
	for (int t = 0; t < 4; t++) {
		size_t keys = t == 2 ? 1 : 60 + 15 * (size_t)t;

		bounds[t] = fx->model_cnt;
		for (size_t i = 0; i < keys; i++, k++) {
			int versions = 1 + (int)(k % 3);

			for (int v = versions; v >= 1; v--)
				add_entry(fx, ukey(k), 10 * (uint64_t)v + k % 7);
		}
		if (t == 1)
			k += 10; /* a gap where the tombstone-only table goes */
	}
	bounds[4] = fx->model_cnt;
	make_table(fx, 1, bounds[0], bounds[1], NULL, NULL);
	make_table(fx, 2, bounds[1], bounds[2], NULL, NULL);
	{
		char lo[32], hi[32];
		size_t gap = 60 + 75; /* first key of the gap */

		snprintf(lo, sizeof(lo), "key%05zu", gap + 1);
		snprintf(hi, sizeof(hi), "key%05zu", gap + 8);
		make_table(fx, 3, 0, 0, lo, hi);
	}
	make_table(fx, 4, bounds[2], bounds[3], NULL, NULL);
	make_table(fx, 5, bounds[3], bounds[4], NULL, NULL);
	*state = fx;
	return 0;
}

static int teardown_tables(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < fx->cnt; i++)
		table_unref(fx->tables[i]);
	for (size_t i = 0; i < fx->model_cnt; i++)
		free(fx->model[i].ikey);
	free(fx->model);
	tu_rmtree_free(fx->dir);
	free(fx);
	return 0;
}

static void assert_at(const struct kv_iter *it, const struct fixture *fx, size_t i)
{
	assert_true(it->valid);
	assert_int_equal(it->status, FR_OK);
	assert_int_equal(it->key_len, fx->model[i].ilen);
	assert_memory_equal(it->key, fx->model[i].ikey, it->key_len);
	assert_int_equal(it->val_len, strlen(fx->model[i].val));
	assert_memory_equal(it->val, fx->model[i].val, it->val_len);
}

static void test_version_level_iter_scan(void **state)
{
	struct fixture *fx = *state;
	struct kv_iter *it;
	fr_error err;
	size_t i;

	assert_int_equal(level_iter_new(fx->tables, fx->cnt, &it, &err), FR_OK);
	kv_seek_first(it);
	for (i = 0; i < fx->model_cnt; i++) {
		assert_at(it, fx, i);
		kv_next(it);
	}
	assert_false(it->valid);
	assert_int_equal(it->status, FR_OK);
	kv_next(it); /* stays invalid */
	assert_false(it->valid);

	kv_seek_last(it);
	for (i = fx->model_cnt; i-- > 0;) {
		assert_at(it, fx, i);
		kv_prev(it);
	}
	assert_false(it->valid);
	assert_int_equal(it->status, FR_OK);
	kv_free(it);

	/* an empty level */
	assert_int_equal(level_iter_new(NULL, 0, &it, &err), FR_OK);
	kv_seek_first(it);
	assert_false(it->valid);
	kv_seek(it, fx->model[0].ikey, fx->model[0].ilen);
	assert_false(it->valid);
	kv_seek_prev(it, fx->model[0].ikey, fx->model[0].ilen);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_OK);
	kv_free(it);
}

/* The model's answer to seek (first >= target) or seek_prev (last <= target); model_cnt or
 * SIZE_MAX when there is none. */
static size_t model_seek(const struct fixture *fx, const uint8_t *t, size_t tlen, bool prev)
{
	if (!prev) {
		for (size_t i = 0; i < fx->model_cnt; i++)
			if (ikey_cmp(fx->model[i].ikey, fx->model[i].ilen, t, tlen) >= 0)
				return i;
		return fx->model_cnt;
	}
	for (size_t i = fx->model_cnt; i-- > 0;)
		if (ikey_cmp(fx->model[i].ikey, fx->model[i].ilen, t, tlen) <= 0)
			return i;
	return SIZE_MAX;
}

static void test_version_level_iter_seek(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct kv_iter *it;
	uint8_t target[64];
	fr_error err;

	assert_int_equal(level_iter_new(fx->tables, fx->cnt, &it, &err), FR_OK);
	for (int round = 0; round < 3000; round++) {
		/* user keys in and around the tables (including the gap and both ends) */
		size_t k = (size_t)tu_rand_below(&rs, 270);
		const char *uk = round % 50 == 0 ? "a" : round % 50 == 1 ? "zzz" : ukey(k);
		size_t ulen = strlen(uk);
		uint64_t seq = tu_rand_below(&rs, 40);
		bool prev = tu_rand_below(&rs, 2);
		size_t want;

		ikey_encode(target, uk, ulen, seq, tu_rand_below(&rs, 2) ? VT_SEEK : VT_PUT);
		want = model_seek(fx, target, ulen + IKEY_TRAILER_LEN, prev);
		if (prev)
			kv_seek_prev(it, target, ulen + IKEY_TRAILER_LEN);
		else
			kv_seek(it, target, ulen + IKEY_TRAILER_LEN);
		if (want == SIZE_MAX || want == fx->model_cnt) {
			assert_false(it->valid);
			assert_int_equal(it->status, FR_OK);
			continue;
		}
		assert_at(it, fx, want);
		/* then a few steps either way */
		size_t pos = want;
		for (int s = 0; s < 6; s++) {
			if (tu_rand_below(&rs, 2)) {
				kv_next(it);
				if (++pos == fx->model_cnt) {
					assert_false(it->valid);
					break;
				}
			} else {
				kv_prev(it);
				if (pos-- == 0) {
					assert_false(it->valid);
					break;
				}
			}
			assert_at(it, fx, pos);
		}
	}
	kv_free(it);
}

static void test_version_level_iter_error(void **state)
{
	struct fixture *fx = *state;
	struct table *tabs[3], *missing;
	struct kv_iter *it;
	char path[PATH_MAX];
	fr_error err;

	/* a table whose file is gone, between two good ones */
	snprintf(path, sizeof(path), "%s/404.sst", fx->dir);
	assert_int_equal(table_new(io_posix(), path, 1, &fx->tables[2]->meta, &missing), FR_OK);
	tabs[0] = fx->tables[0];
	tabs[1] = missing;
	tabs[2] = fx->tables[3];
	assert_int_equal(level_iter_new(tabs, 3, &it, &err), FR_OK);
	table_unref(missing); /* the iterator holds its own reference */
	kv_seek_first(it);
	size_t n = 0;
	while (it->valid) {
		n++;
		kv_next(it);
	}
	assert_true(n > 0);
	assert_int_not_equal(it->status, FR_OK);
	assert_non_null(strstr(it->err.msg, "404.sst"));
	/* failed for good */
	kv_seek_first(it);
	assert_false(it->valid);
	assert_int_not_equal(it->status, FR_OK);
	kv_free(it);
}

static void test_version_table_reader_lazy(void **state)
{
	struct fixture *fx = *state;
	struct table *t = fx->tables[0];
	struct sst_reader *r1, *r2;
	fr_error err;

	assert_int_equal(table_reader(t, &r1, &err), FR_OK);
	assert_non_null(t->reader);
	assert_int_equal(table_reader(t, &r2, &err), FR_OK);
	assert_ptr_equal(r1, r2);
	assert_int_equal(sst_reader_meta(r1)->id, t->meta.id);
	sst_reader_unref(r1);
	sst_reader_unref(r2);
	/* the table keeps its own reference */
	assert_ptr_equal(t->reader, r1);
	assert_int_equal(sst_reader_meta(t->reader)->entry_cnt, t->meta.entry_cnt);
}

struct opener {
	struct table *t;
	struct sst_reader *r;
	fr_status rc;
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;
	fr_error err;

	o->rc = table_reader(o->t, &o->r, &err);
	return NULL;
}

/* Threads opening one table at once all get the one reader. */
static void test_version_table_reader_race(void **state)
{
	struct fixture *fx = *state;
	struct opener o[4];
	pthread_t th[4];

	for (int round = 0; round < 20; round++) {
		struct table *t;

		assert_int_equal(table_new(io_posix(), fx->tables[1]->path, 1, &fx->tables[1]->meta,
					   &t),
				 FR_OK);
		for (int i = 0; i < 4; i++) {
			o[i] = (struct opener){ t, NULL, FR_IO };
			assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(o[i].rc, FR_OK);
			assert_ptr_equal(o[i].r, o[0].r);
		}
		for (int i = 0; i < 4; i++)
			sst_reader_unref(o[i].r);
		table_unref(t);
	}
}

static void test_version_tv_counts(void **state)
{
	struct fixture *fx = *state;
	struct tree_version *v = tv_new(3);
	uint64_t bytes = 0;

	assert_non_null(v);
	v->levels[1] = fr_malloc(2 * sizeof(*v->levels[1]));
	assert_non_null(v->levels[1]);
	for (int i = 0; i < 2; i++) {
		table_ref(fx->tables[i]);
		v->levels[1][i] = fx->tables[i];
		bytes += fx->tables[i]->meta.file_size;
	}
	v->level_cnt[1] = 2;
	assert_int_equal(tv_table_cnt(v), 2);
	assert_int_equal(tv_table_bytes(v), bytes);
	tv_ref(v);
	tv_unref(v);
	uint32_t refs = fx->tables[0]->refs;
	tv_unref(v);
	assert_int_equal(fx->tables[0]->refs, refs - 1);
}

/* ---- the read environment of a vset ---- */

/* Writes table `id` of vs holding keys "env<from..to)" (seqno 1, values "v<i>") and adds it to
 * tree 1 at level 1. */
static void env_add_table(struct vset *vs, uint64_t id, size_t from, size_t to)
{
	struct sst_options o;
	struct sst_writer *w;
	struct sst_meta m;
	struct vedit e;
	char path[PATH_MAX];
	fr_error err;

	sst_options_default(&o);
	o.block_size = 512;
	vset_table_path(vs, id, path, sizeof(path));
	assert_int_equal(sst_writer_open(io_posix(), path, id, &o, &w, &err), FR_OK);
	for (size_t i = from; i < to; i++) {
		char k[32], v[32];
		uint8_t ik[48];
		int kl = snprintf(k, sizeof(k), "env%06zu", i);
		int vl = snprintf(v, sizeof(v), "v%zu", i);

		ikey_encode(ik, k, (size_t)kl, 1, VT_PUT);
		assert_int_equal(sst_writer_add(w, ik, (size_t)kl + IKEY_TRAILER_LEN, v, (size_t)vl,
						&err),
				 FR_OK);
	}
	assert_int_equal(sst_writer_finish(w, &m, &err), FR_OK);
	vedit_init(&e);
	assert_int_equal(vedit_add_table(&e, 1, 1, &m), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	sst_meta_fini(&m);
}

static size_t env_scan(struct tree_version *v, unsigned flags)
{
	struct kv_iter *it;
	fr_error err;
	size_t n = 0;

	assert_int_equal(level_iter_new_flags(v->levels[1], v->level_cnt[1], flags, &it, &err),
			 FR_OK);
	for (kv_seek_first(it); it->valid; kv_next(it))
		n++;
	assert_int_equal(it->status, FR_OK);
	kv_free(it);
	return n;
}

static void test_version_read_env(void **state)
{
	char *dir = tu_tmpdir("venv");
	struct sst_read_env env;
	struct blk_cache_stats s0, s1, s2;
	struct tree_version *v;
	struct vset *vs;
	struct vedit e;
	char path1[PATH_MAX];
	fr_error err;
	bool ex;

	(void)state;
	assert_int_equal(vset_open(io_posix(), dir, true, false, &vs, &err), FR_OK);
	uint64_t id1 = vset_new_file_id(vs);
	env_add_table(vs, id1, 0, 300);
	vset_table_path(vs, id1, path1, sizeof(path1));
	vset_close(vs);

	/* reopened: table id1 comes from the manifest, made before the environment is set */
	assert_int_equal(blk_cache_new(1 << 20, BLK_CACHE_SHARD_BITS, &env.cache), FR_OK);
	assert_int_equal(ftab_new(io_posix(), 8, &env.files, &err), FR_OK);
	assert_int_equal(vset_open(io_posix(), dir, false, false, &vs, &err), FR_OK);
	vset_set_read_env(vs, &env);
	uint64_t id2 = vset_new_file_id(vs);
	env_add_table(vs, id2, 300, 600); /* made after it */

	v = vset_current(vs, 1);
	assert_int_equal(v->level_cnt[1], 2);
	for (size_t i = 0; i < 2; i++) {
		struct table *t = v->levels[1][i];
		struct sst_reader *r;
		uint8_t type;
		uint64_t seq;
		void *val;
		size_t vlen;

		assert_ptr_equal(t->env.cache, env.cache);
		assert_ptr_equal(t->env.files, env.files);
		assert_int_equal(table_reader(t, &r, &err), FR_OK);
		fr_status rc = sst_reader_get(r, "env000299", 9, 5, &type, &seq, &val, &vlen, &err);
		assert_int_equal(rc, i == 0 ? FR_OK : FR_NOT_FOUND);
		if (i == 0) {
			assert_int_equal(vlen, 4);
			assert_memory_equal(val, "v299", 4);
			fr_free(val);
		}
		sst_reader_unref(r);
	}
	assert_int_equal(ftab_open_cnt(env.files), 2);
	/* compaction-style scans fill nothing; normal ones fill; both see everything */
	blk_cache_stats(env.cache, &s0);
	assert_int_equal(env_scan(v, SST_ITER_NO_FILL), 600);
	blk_cache_stats(env.cache, &s1);
	assert_int_equal(s1.entry_cnt, s0.entry_cnt);
	assert_true(s1.misses > s0.misses);
	assert_int_equal(env_scan(v, 0), 600);
	blk_cache_stats(env.cache, &s2);
	assert_true(s2.entry_cnt > s1.entry_cnt + 4);

	/* table id1 leaves the version; our version still holds it, so its file stays open */
	vedit_init(&e);
	assert_int_equal(vedit_del_table(&e, 1, 1, id1), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	assert_int_equal(ftab_open_cnt(env.files), 2);
	assert_int_equal(io_exists(io_posix(), path1, &ex, &err), FR_OK);
	assert_true(ex);
	/* the last reference goes: descriptor closed, then the file deleted */
	tv_unref(v);
	assert_int_equal(ftab_open_cnt(env.files), 1);
	assert_int_equal(io_exists(io_posix(), path1, &ex, &err), FR_OK);
	assert_false(ex);

	vset_close(vs);
	/* closing the vset deletes nothing and forgets nothing */
	assert_int_equal(ftab_open_cnt(env.files), 1);
	ftab_free(env.files);
	blk_cache_free(env.cache);
	tu_rmtree_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_edit_round_trip),
		cmocka_unit_test(test_version_edit_builders),
		cmocka_unit_test(test_version_edit_truncated),
		cmocka_unit_test(test_version_edit_bit_flips),
		cmocka_unit_test(test_version_edit_garbage),
		cmocka_unit_test(test_version_edit_rejects),
		cmocka_unit_test(test_version_edit_nomem),
		cmocka_unit_test_setup_teardown(test_version_level_iter_scan, setup_tables,
						teardown_tables),
		cmocka_unit_test_setup_teardown(test_version_level_iter_seek, setup_tables,
						teardown_tables),
		cmocka_unit_test_setup_teardown(test_version_level_iter_error, setup_tables,
						teardown_tables),
		cmocka_unit_test_setup_teardown(test_version_table_reader_lazy, setup_tables,
						teardown_tables),
		cmocka_unit_test(test_version_read_env),
		cmocka_unit_test_setup_teardown(test_version_table_reader_race, setup_tables,
						teardown_tables),
		cmocka_unit_test_setup_teardown(test_version_tv_counts, setup_tables,
						teardown_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
