/* SPDX-License-Identifier: MIT */
/*
 * test_sst.c - tables against an in-memory sorted model: 100k entries with several versions per
 * key read back by point gets at many snapshots, full forward and backward iteration, seek and
 * seek_prev on random targets; the MVCC slab (10k versions of one key in 1 KiB blocks); range
 * tombstones; compression on and off; properties; misuse (FR_INVALID); I/O faults; and
 * corruption: flipped data, index, filter, properties and footer bytes, a future version and
 * truncation all give FR_CORRUPTION naming the file. Readers with a read environment (block
 * cache, file table, both, and a cache small enough to evict) give exactly the answers of a
 * reader without, hold no descriptor of their own with a file table, leave the cache alone
 * when iterating with SST_ITER_NO_FILL, and never cache a damaged block.
 *
 * Format version 2: a version 1 table written by the old writer (embedded) still reads, and
 * today's writer still writes it byte for byte; partitioned indexes (forced small) answer
 * gets, seeks and scans both ways like the model with and without caches, read their
 * partitions on demand through a cache, and refuse a damaged partition (flipped bytes, or
 * resealed wrong keys and handles) with FR_CORRUPTION at its offset when it is used, or at
 * open without a cache; hash indexes in data blocks (many versions per key across restart runs
 * and blocks, one-entry blocks) give exactly the answers without them, and the test counters
 * show the binary search skipped for most lookups; the byte-flip sweep covers a version 2
 * table; footer and properties must agree on what version 2 added.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "io/ftab.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "sst/block.h"
#include "sst/cache.h"
#include "sst/format.h"
#include "sst/sst.h"
#include "testutil.h"

/* ---- the model: entries sorted by internal key ---- */

struct ent {
	uint8_t *ik;
	size_t iklen;
	uint8_t *val;
	size_t vlen;
};

struct model {
	struct ent *e;
	size_t n;
	size_t cap;
};

static void model_add(struct model *m, const void *ukey, size_t ulen, uint64_t seqno, uint8_t type,
		      const void *val, size_t vlen)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 1024;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		assert_non_null(m->e);
	}
	struct ent *e = &m->e[m->n++];
	e->iklen = ulen + IKEY_TRAILER_LEN;
	e->ik = malloc(e->iklen);
	assert_non_null(e->ik);
	ikey_encode(e->ik, ukey, ulen, seqno, type);
	e->vlen = vlen;
	e->val = malloc(vlen ? vlen : 1);
	assert_non_null(e->val);
	if (vlen)
		memcpy(e->val, val, vlen);
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].ik);
		free(m->e[i].val);
	}
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* first entry >= t (upper: first entry > t) */
static size_t model_bound(const struct model *m, const uint8_t *t, size_t tlen, bool upper)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ikey_cmp(m->e[mid].ik, m->e[mid].iklen, t, tlen);
		if (c < 0 || (upper && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t make_ukey(char *buf, uint64_t num, size_t suffix, char c)
{
	int n = snprintf(buf, 40, "u%09llu", (unsigned long long)num);
	for (size_t i = 0; i < suffix; i++)
		buf[n + i] = c;
	return (size_t)n + suffix;
}

static int seq_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

/* nkeys user keys "u<i*10 + 0..4><suffix>" with 1..7 versions each (distinct seqnos below
 * 1e6, newest first), mostly puts with values half compressible, half random. */
static void gen_model(struct model *m, size_t nkeys, uint64_t *rs)
{
	uint8_t val[256];
	for (size_t i = 0; i < nkeys; i++) {
		char k[64];
		size_t klen = make_ukey(k, i * 10 + tu_rand_below(rs, 5), tu_rand_below(rs, 12),
					(char)('a' + i % 26));
		uint64_t seqs[7];
		size_t nv = 1 + tu_rand_below(rs, 7);
		for (size_t v = 0; v < nv; v++)
			seqs[v] = 1 + tu_rand_below(rs, 1000000);
		qsort(seqs, nv, sizeof(seqs[0]), seq_desc);
		for (size_t v = 0; v < nv; v++) {
			if (v && seqs[v] == seqs[v - 1])
				continue;
			uint64_t r = tu_rand_below(rs, 100);
			uint8_t type = r < 85 ? VT_PUT : r < 95 ? VT_DEL : VT_WEAK_DEL;
			size_t vlen = type == VT_PUT ? tu_rand_below(rs, 200) : 0;
			bool squash = tu_rand_below(rs, 2);
			for (size_t j = 0; j < vlen; j++)
				val[j] = squash ? (uint8_t)('A' + (j / 16) % 3)
						: (uint8_t)tu_rand(rs);
			model_add(m, k, klen, seqs[v], type, val, vlen);
		}
	}
}

/* ---- helpers ---- */

struct fixture {
	char *dir;
	char path[512];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->dir = tu_tmpdir("sst");
	snprintf(fx->path, sizeof(fx->path), "%s/000042.sst", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	tu_rmtree_free(fx->dir);
	free(fx);
	return 0;
}

static void write_table(const char *path, const struct model *m, const struct sst_options *o,
			const struct range_del *rds, size_t nrd, struct sst_meta *meta)
{
	struct sst_writer *w;
	fr_error err;
	assert_int_equal(sst_writer_open(io_posix(), path, 42, o, &w, &err), FR_OK);
	for (size_t i = 0; i < m->n; i++) {
		fr_status rc = sst_writer_add(w, m->e[i].ik, m->e[i].iklen, m->e[i].val,
					      m->e[i].vlen, &err);
		if (rc)
			fail_msg("add %zu: %s", i, err.msg);
		/* the writer's size grows and counts the pending block */
		if (i == m->n / 2)
			assert_true(sst_writer_size(w) > 0);
	}
	for (size_t i = 0; i < nrd; i++)
		assert_int_equal(sst_writer_add_range_del(w, &rds[i], &err), FR_OK);
	assert_int_equal(sst_writer_entry_cnt(w), m->n);
	fr_status rc = sst_writer_finish(w, meta, &err);
	if (rc)
		fail_msg("finish: %s", err.msg);
}

static struct sst_reader *open_table(const char *path)
{
	struct sst_reader *r;
	fr_error err;
	fr_status rc = sst_reader_open(io_posix(), path, 42, &r, &err);
	if (rc)
		fail_msg("open: %s", err.msg);
	return r;
}

static void expect_ent(const struct kv_iter *it, const struct ent *e)
{
	assert_true(it->valid);
	assert_int_equal(it->status, FR_OK);
	assert_int_equal(it->key_len, e->iklen);
	assert_memory_equal(it->key, e->ik, e->iklen);
	assert_int_equal(it->val_len, e->vlen);
	if (e->vlen)
		assert_memory_equal(it->val, e->val, e->vlen);
}

/* get(ukey of e, snap) must return e (or NOT_FOUND for e == NULL) */
static void expect_get(struct sst_reader *r, const uint8_t *ukey, size_t ulen, uint64_t snap,
		       const struct ent *e)
{
	uint8_t type = 0xee;
	uint64_t seq = 0;
	void *v = (void *)1;
	size_t vl = 12345;
	fr_error err;
	fr_status rc = sst_reader_get(r, ukey, ulen, snap, &type, &seq, &v, &vl, &err);
	if (!e) {
		assert_int_equal(rc, FR_NOT_FOUND);
		assert_null(v);
		return;
	}
	if (rc)
		fail_msg("get: %d %s", rc, rc == FR_NOT_FOUND ? "not found" : err.msg);
	assert_int_equal(type, ikey_type(e->ik, e->iklen));
	assert_int_equal(seq, ikey_seqno(e->ik, e->iklen));
	assert_int_equal(vl, e->vlen);
	if (e->vlen)
		assert_memory_equal(v, e->val, e->vlen);
	fr_free(v);
}

/* Every version at its own seqno, one below it, and the newest at SEQNO_MAX. */
static void check_gets(struct sst_reader *r, const struct model *m, size_t stride)
{
	for (size_t i = 0; i < m->n; i += stride) {
		const struct ent *e = &m->e[i];
		size_t ulen = ikey_user_len(e->iklen);
		uint64_t s = ikey_seqno(e->ik, e->iklen);
		bool first = i == 0 || bytes_cmp(m->e[i - 1].ik, ikey_user_len(m->e[i - 1].iklen),
						 e->ik, ulen) != 0;
		bool last =
			i + 1 == m->n || bytes_cmp(m->e[i + 1].ik, ikey_user_len(m->e[i + 1].iklen),
						   e->ik, ulen) != 0;
		expect_get(r, e->ik, ulen, s, e);
		expect_get(r, e->ik, ulen, s - 1, last ? NULL : &m->e[i + 1]);
		if (first)
			expect_get(r, e->ik, ulen, SEQNO_MAX, e);
	}
}

static void check_iter_full(struct sst_reader *r, const struct model *m)
{
	struct kv_iter *it;
	fr_error err;
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	size_t i = 0;
	for (kv_seek_first(it); it->valid; kv_next(it))
		expect_ent(it, &m->e[i++]);
	assert_int_equal(it->status, FR_OK);
	assert_int_equal(i, m->n);
	for (kv_seek_last(it); it->valid; kv_prev(it))
		expect_ent(it, &m->e[--i]);
	assert_int_equal(it->status, FR_OK);
	assert_int_equal(i, 0);
	kv_free(it);
}

/* seek and seek_prev to random targets (present keys at other seqnos, absent keys), then step. */
static void check_seeks(struct sst_reader *r, const struct model *m, size_t cnt, uint64_t *rs)
{
	static const uint8_t types[] = {VT_DEL, VT_PUT, VT_WEAK_DEL, VT_SEEK};
	struct kv_iter *it;
	fr_error err;
	uint8_t t[128];
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	for (size_t n = 0; n < cnt; n++) {
		const struct ent *e = &m->e[tu_rand_below(rs, m->n)];
		size_t ulen = ikey_user_len(e->iklen);
		uint64_t seq = ikey_seqno(e->ik, e->iklen);
		switch (tu_rand_below(rs, 4)) {
		case 0: /* exactly an entry */
			memcpy(t, e->ik, e->iklen);
			break;
		case 1: /* same key, nearby seqno, any type */
			seq += tu_rand_below(rs, 5);
			seq -= tu_rand_below(rs, 5) < seq ? tu_rand_below(rs, 3) : 0;
			ikey_encode(t, e->ik, ulen, seq, types[tu_rand_below(rs, 4)]);
			break;
		case 2: /* an absent key just after it */
			memcpy(t, e->ik, ulen);
			t[ulen] = 0;
			ulen++;
			ikey_encode(t, t, ulen, tu_rand_below(rs, SEQNO_MAX), VT_SEEK);
			break;
		default: /* a shorter prefix, random seqno */
			ulen = tu_rand_below(rs, ulen + 1);
			ikey_encode(t, e->ik, ulen, tu_rand_below(rs, 2000000), VT_SEEK);
			break;
		}
		size_t tlen = ulen + IKEY_TRAILER_LEN;
		if (tu_rand_below(rs, 2) == 0) {
			size_t j = model_bound(m, t, tlen, false);
			kv_seek(it, t, tlen);
			for (int s = 0; s < 3; s++, j++) {
				if (j >= m->n) {
					assert_false(it->valid);
					break;
				}
				expect_ent(it, &m->e[j]);
				kv_next(it);
			}
		} else {
			size_t j = model_bound(m, t, tlen, true);
			kv_seek_prev(it, t, tlen);
			for (int s = 0; s < 3; s++, j--) {
				if (j == 0) {
					assert_false(it->valid);
					break;
				}
				expect_ent(it, &m->e[j - 1]);
				kv_prev(it);
			}
		}
		assert_int_equal(it->status, FR_OK);
	}
	/* the extremes */
	uint8_t lo[IKEY_TRAILER_LEN], hi[16];
	ikey_encode(lo, "", 0, SEQNO_MAX, VT_SEEK);
	memset(hi, 0xff, 8);
	ikey_encode(hi, hi, 8, 0, VT_DEL);
	kv_seek(it, lo, sizeof(lo));
	expect_ent(it, &m->e[0]);
	kv_seek_prev(it, lo, sizeof(lo));
	assert_false(it->valid);
	kv_seek(it, hi, sizeof(hi));
	assert_false(it->valid);
	kv_seek_prev(it, hi, sizeof(hi));
	expect_ent(it, &m->e[m->n - 1]);
	assert_int_equal(it->status, FR_OK);
	kv_free(it);
}

static void check_meta_equal(const struct sst_meta *a, const struct sst_meta *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->file_size, b->file_size);
	assert_int_equal(a->entry_cnt, b->entry_cnt);
	assert_int_equal(a->tombstone_cnt, b->tombstone_cnt);
	assert_int_equal(a->range_del_cnt, b->range_del_cnt);
	assert_int_equal(a->min_seqno, b->min_seqno);
	assert_int_equal(a->max_seqno, b->max_seqno);
	/* the writer stamps the creation time and the reader reads it back (property 13) */
	assert_true(a->created_s >= 1700000000);
	assert_int_equal(a->created_s, b->created_s);
	assert_int_equal(a->smallest_len, b->smallest_len);
	assert_memory_equal(a->smallest, b->smallest, a->smallest_len);
	assert_int_equal(a->largest_len, b->largest_len);
	assert_memory_equal(a->largest, b->largest, a->largest_len);
}

static void check_meta_model(const struct sst_meta *mt, const struct model *m)
{
	uint64_t tomb = 0, lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < m->n; i++) {
		uint8_t t = ikey_type(m->e[i].ik, m->e[i].iklen);
		uint64_t s = ikey_seqno(m->e[i].ik, m->e[i].iklen);
		tomb += t == VT_DEL || t == VT_WEAK_DEL;
		lo = s < lo ? s : lo;
		hi = s > hi ? s : hi;
	}
	assert_int_equal(mt->id, 42);
	assert_int_equal(mt->entry_cnt, m->n);
	assert_int_equal(mt->tombstone_cnt, tomb);
	assert_int_equal(mt->min_seqno, lo);
	assert_int_equal(mt->max_seqno, hi);
	const struct ent *f = &m->e[0], *l = &m->e[m->n - 1];
	assert_int_equal(mt->smallest_len, ikey_user_len(f->iklen));
	assert_memory_equal(mt->smallest, f->ik, mt->smallest_len);
	assert_int_equal(mt->largest_len, ikey_user_len(l->iklen));
	assert_memory_equal(mt->largest, l->ik, mt->largest_len);
}

static void check_absent(struct sst_reader *r, size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i += 3) {
		char k[64];
		size_t kl = make_ukey(k, i * 10 + 7, 0, 'x');
		expect_get(r, (const uint8_t *)k, kl, SEQNO_MAX, NULL);
	}
}

/* ---- tests ---- */

static void test_sst_roundtrip_100k(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	gen_model(&m, 25000, &rs);
	assert_true(m.n > 90000);

	write_table(fx->path, &m, NULL, NULL, 0, &meta);
	struct stat st;
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(meta.file_size, (uint64_t)st.st_size);
	check_meta_model(&meta, &m);

	struct sst_reader *r = open_table(fx->path);
	check_meta_equal(sst_reader_meta(r), &meta);
	const struct range_del *rds;
	assert_int_equal(sst_reader_range_dels(r, &rds), 0);
	check_gets(r, &m, 1);
	check_absent(r, 25000);
	check_iter_full(r, &m);
	check_seeks(r, &m, 20000, &rs);
	sst_reader_unref(r);
	sst_meta_fini(&meta);
	model_free(&m);
}

static void test_sst_compression(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta on, off;
	char path2[600];
	gen_model(&m, 6000, &rs);

	sst_options_default(&o);
	assert_true(o.compress);
	assert_int_equal(o.block_size, 4096);
	assert_int_equal(o.restart_interval, 16);
	assert_int_equal(o.bloom_bits_per_key, 10);
	write_table(fx->path, &m, &o, NULL, 0, &on);
	o.compress = false;
	snprintf(path2, sizeof(path2), "%s/raw.sst", fx->dir);
	write_table(path2, &m, &o, NULL, 0, &off);
	/* half the values are runs of three letters: LZ4 must have paid on many blocks */
	assert_true(on.file_size < off.file_size * 9 / 10);

	struct sst_reader *r1 = open_table(fx->path), *r2 = open_table(path2);
	check_gets(r1, &m, 1);
	check_gets(r2, &m, 1);
	check_iter_full(r1, &m);
	check_iter_full(r2, &m);
	check_seeks(r2, &m, 2000, &rs);
	sst_reader_unref(r1);
	sst_reader_unref(r2);
	sst_meta_fini(&on);
	sst_meta_fini(&off);
	model_free(&m);
}

/* Reads the slab table written by test_sst_slab with options o. */
static void check_slab(const char *path, const struct model *m, const struct sst_options *o,
		       uint64_t *rs)
{
	struct sst_meta meta;

	unlink(path);
	write_table(path, m, o, NULL, 0, &meta);
	assert_int_equal(meta.entry_cnt, 10006);

	struct sst_reader *r = open_table(path);
	const struct ent *slab = &m->e[3]; /* slab versions are m.e[3 .. 10003) */
	/* every snapshot from 0 to past the newest */
	for (uint64_t snap = 0; snap <= 20002; snap++) {
		if (snap < 2) {
			expect_get(r, (const uint8_t *)"slab", 4, snap, NULL);
			continue;
		}
		uint64_t want = snap > 20000 ? 20000 : snap & ~UINT64_C(1);
		expect_get(r, (const uint8_t *)"slab", 4, snap, &slab[(20000 - want) / 2]);
	}
	expect_get(r, (const uint8_t *)"slab", 4, SEQNO_MAX, &slab[0]);
	expect_get(r, (const uint8_t *)"sla", 3, 250000, &m->e[1]);
	expect_get(r, (const uint8_t *)"slac", 4, 99999, NULL);
	expect_get(r, (const uint8_t *)"slaa", 4, SEQNO_MAX, NULL);
	check_iter_full(r, m);
	check_seeks(r, m, 5000, rs);
	sst_reader_unref(r);
	sst_meta_fini(&meta);
}

/* 10k versions of one key in 1 KiB blocks: the versions span many blocks (and, with a small
 * partition size, many index partitions). */
static void test_sst_slab(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	char v[16];

	for (uint64_t s = 3; s >= 1; s--)
		model_add(&m, "sla", 3, s * 100000, VT_PUT, "before", 6);
	for (uint64_t s = 20000; s > 0; s -= 2) { /* seqnos 20000, 19998, ..., 2 */
		int n = snprintf(v, sizeof(v), "v%llu", (unsigned long long)s);
		model_add(&m, "slab", 4, s, s % 10 == 0 ? VT_DEL : VT_PUT, v,
			  s % 10 == 0 ? 0 : (size_t)n);
	}
	for (uint64_t s = 3; s >= 1; s--)
		model_add(&m, "slac", 4, s * 100000, VT_PUT, "after", 5);
	sst_options_default(&o);
	o.block_size = 1024;
	check_slab(fx->path, &m, &o, &rs);
	o.hash_index = true;
	check_slab(fx->path, &m, &o, &rs);
	o.index_partition_size = 200;
	check_slab(fx->path, &m, &o, &rs);
	model_free(&m);
}

static int rd_qcmp(const void *pa, const void *pb)
{
	const struct range_del *a = pa, *b = pb;
	int c = bytes_cmp(a->start, a->start_len, b->start, b->start_len);
	if (c)
		return c;
	return a->seqno > b->seqno ? -1 : a->seqno < b->seqno;
}

static void test_sst_range_dels(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	struct range_del rd[60];
	char keys[60][2][16];

	gen_model(&m, 500, &rs);
	for (size_t i = 0; i < 60; i++) {
		/* random ranges inside the keys, some sharing a start; seqnos distinct */
		uint64_t a = i % 10 == 9 ? 1234 : tu_rand_below(&rs, 4000) + 100;
		uint64_t b = a + 1 + tu_rand_below(&rs, 500);
		rd[i].start_len = make_ukey(keys[i][0], a, 0, 'x');
		rd[i].end_len = make_ukey(keys[i][1], b, 0, 'x');
		rd[i].start = (const uint8_t *)keys[i][0];
		rd[i].end = (const uint8_t *)keys[i][1];
		rd[i].seqno = 2000000 + i * 7;
	}
	/* one that widens the table's bounds on both sides, at the lowest seqno */
	rd[0].start = (const uint8_t *)"a";
	rd[0].start_len = 1;
	rd[0].end = (const uint8_t *)"zzz";
	rd[0].end_len = 3;
	rd[0].seqno = 0;
	write_table(fx->path, &m, NULL, rd, 60, &meta);
	assert_int_equal(meta.range_del_cnt, 60);
	assert_int_equal(meta.min_seqno, 0);
	assert_int_equal(meta.max_seqno, 2000000 + 59 * 7);
	assert_int_equal(meta.smallest_len, 1);
	assert_memory_equal(meta.smallest, "a", 1);
	assert_int_equal(meta.largest_len, 3);
	assert_memory_equal(meta.largest, "zzz", 3);

	struct sst_reader *r = open_table(fx->path);
	check_meta_equal(sst_reader_meta(r), &meta);
	qsort(rd, 60, sizeof(rd[0]), rd_qcmp);
	const struct range_del *got;
	assert_int_equal(sst_reader_range_dels(r, &got), 60);
	for (size_t i = 0; i < 60; i++) {
		assert_int_equal(got[i].start_len, rd[i].start_len);
		assert_memory_equal(got[i].start, rd[i].start, rd[i].start_len);
		assert_int_equal(got[i].end_len, rd[i].end_len);
		assert_memory_equal(got[i].end, rd[i].end, rd[i].end_len);
		assert_int_equal(got[i].seqno, rd[i].seqno);
	}
	/* point reads ignore range tombstones */
	check_gets(r, &m, 1);
	sst_reader_unref(r);
	sst_meta_fini(&meta);

	/* a table of range tombstones only */
	struct sst_writer *w;
	fr_error err;
	char path2[600];
	snprintf(path2, sizeof(path2), "%s/rd-only.sst", fx->dir);
	assert_int_equal(sst_writer_open(io_posix(), path2, 7, NULL, &w, &err), FR_OK);
	assert_int_equal(sst_writer_add_range_del(w, &rd[5], &err), FR_OK);
	assert_int_equal(sst_writer_add_range_del(w, &rd[3], &err), FR_OK);
	assert_int_equal(sst_writer_finish(w, &meta, &err), FR_OK);
	assert_int_equal(meta.entry_cnt, 0);
	assert_int_equal(meta.range_del_cnt, 2);
	assert_int_equal(bytes_cmp(meta.smallest, meta.smallest_len, rd[3].start, rd[3].start_len),
			 0);
	assert_int_equal(sst_reader_open(io_posix(), path2, 7, &r, &err), FR_OK);
	check_meta_equal(sst_reader_meta(r), &meta);
	assert_int_equal(sst_reader_range_dels(r, &got), 2);
	assert_int_equal(got[0].seqno, rd[3].seqno);
	assert_int_equal(got[1].seqno, rd[5].seqno);
	expect_get(r, rd[3].start, rd[3].start_len, SEQNO_MAX, NULL);
	struct kv_iter *it;
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	kv_seek_first(it);
	assert_false(it->valid);
	kv_seek_last(it);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_OK);
	kv_free(it);
	sst_reader_unref(r);
	sst_meta_fini(&meta);
	model_free(&m);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)n);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void write_all(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	fclose(f);
}

static void read_footer(const uint8_t *file, size_t len, struct sst_footer *ft)
{
	fr_error err;
	assert_int_equal(
		sst_footer_decode(file + len - SST_FOOTER_LEN, "t", len - SST_FOOTER_LEN, ft, &err),
		FR_OK);
	assert_true(ft->version == SST_FORMAT_V1 || ft->version == SST_FORMAT_V2);
}

/* An index partition as the top-level index lists it. */
struct part_info {
	struct sst_handle h;
	uint8_t key[64];
	size_t klen;
};

static int ikcmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return ikey_cmp(a, alen, b, blen);
}

/* The partitions of the table in file[0..len) (0: its index is one block), at most cap. */
static size_t list_parts(const uint8_t *file, size_t len, struct part_info *out, size_t cap)
{
	struct sst_footer ft;
	struct sst_props p;
	struct blk b;
	struct blk_iter it;
	const uint8_t *data;
	size_t dlen, n = 0;
	uint8_t *owned;
	fr_error err;

	read_footer(file, len, &ft);
	const struct sst_handle *ph = &ft.h[SST_FOOTER_PROPS];
	assert_int_equal(blk_stored_decode(file + ph->off, ph->size + SST_BLOCK_TRAILER_LEN, "t",
					   ph->off, &data, &dlen, &owned, &err),
			 FR_OK);
	assert_int_equal(sst_props_decode(data, dlen, "t", ph->off, &p, &err), FR_OK);
	fr_free(owned);
	if (!p.index_parts)
		return 0;
	assert_int_equal(ft.version, SST_FORMAT_V2);
	const struct sst_handle *ih = &ft.h[SST_FOOTER_INDEX];
	assert_int_equal(blk_stored_decode(file + ih->off, ih->size + SST_BLOCK_TRAILER_LEN, "t",
					   ih->off, &data, &dlen, &owned, &err),
			 FR_OK);
	assert_int_equal(blk_init(&b, data, dlen, ikcmp, IKEY_TRAILER_LEN, "t", 0, &err), FR_OK);
	blk_iter_init(&it, &b);
	for (assert_int_equal(blk_iter_seek_first(&it, &err), FR_OK); it.valid;
	     assert_int_equal(blk_iter_next(&it, &err), FR_OK), n++) {
		assert_true(n < cap);
		assert_true(sst_handle_decode(it.val, it.val + it.val_len, &out[n].h));
		assert_true(blk_iter_key_len(&it) <= sizeof(out[n].key));
		out[n].klen = blk_iter_key_len(&it);
		memcpy(out[n].key, blk_iter_key(&it), out[n].klen);
	}
	assert_int_equal(n, p.index_parts);
	blk_iter_fini(&it);
	fr_free(owned);
	return n;
}

static void test_sst_properties(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o = {.block_size = 2048,
				.restart_interval = 4,
				.bloom_bits_per_key = 7,
				.compress = false};
	struct sst_meta meta, copy;
	fr_error err;

	gen_model(&m, 2000, &rs);
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	check_meta_model(&meta, &m);
	assert_int_equal(sst_meta_copy(&copy, &meta), FR_OK);
	check_meta_equal(&copy, &meta);
	sst_meta_fini(&copy);
	assert_null(copy.smallest);
	sst_meta_fini(NULL);

	struct sst_reader *r = open_table(fx->path);
	check_meta_equal(sst_reader_meta(r), &meta);
	check_iter_full(r, &m);
	sst_reader_unref(r);

	/* decode the properties block by hand: the options are recorded */
	size_t len;
	uint8_t *file = read_all(fx->path, &len);
	struct sst_footer ft;
	read_footer(file, len, &ft);
	assert_int_equal(ft.version, SST_FORMAT_V1); /* neither partitions nor hash indexes */
	const struct sst_handle *h = &ft.h[SST_FOOTER_PROPS];
	const uint8_t *data;
	size_t dlen;
	uint8_t *owned;
	struct sst_props p;
	assert_int_equal(blk_stored_decode(file + h->off, h->size + SST_BLOCK_TRAILER_LEN, "t",
					   h->off, &data, &dlen, &owned, &err),
			 FR_OK);
	assert_int_equal(sst_props_decode(data, dlen, "t", h->off, &p, &err), FR_OK);
	assert_int_equal(p.block_size, 2048);
	assert_int_equal(p.restart_interval, 4);
	assert_int_equal(p.bloom_bits, 7);
	assert_int_equal(p.compression, SST_COMP_NONE);
	assert_int_equal(p.entry_cnt, m.n);
	assert_true(p.data_block_cnt > 10);
	assert_int_equal(p.index_parts, 0);
	assert_int_equal(p.data_hash, 0);
	assert_int_equal(p.smallest_len, meta.smallest_len);
	assert_memory_equal(p.smallest, meta.smallest, meta.smallest_len);
	/* properties with a record missing, or out of order, are rejected */
	assert_int_equal(sst_props_decode(data, dlen - 3, "t", h->off, &p, &err), FR_CORRUPTION);
	uint8_t twice[4] = {SST_PROP_ENTRY_CNT, 1, 5, SST_PROP_ENTRY_CNT};
	assert_int_equal(sst_props_decode(twice, sizeof(twice), "t", 0, &p, &err), FR_CORRUPTION);
	fr_free(owned);
	/* an unknown property (tag 99) is skipped by readers of this version */
	struct fr_buf b;
	buf_init(&b);
	assert_int_equal(buf_append(&b, data, dlen), FR_OK);
	assert_int_equal(buf_put_varint(&b, 99), FR_OK);
	assert_int_equal(buf_put_lenbytes(&b, "future", 6), FR_OK);
	assert_int_equal(sst_props_decode(b.data, b.len, "t", 0, &p, &err), FR_OK);
	assert_int_equal(p.bloom_bits, 7);
	buf_fini(&b);
	free(file);
	sst_meta_fini(&meta);
	model_free(&m);
}

static void flip_byte(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t c;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
	c ^= mask;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static void test_sst_corrupt_data_block(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	fr_error err;

	gen_model(&m, 1000, &rs);
	write_table(fx->path, &m, NULL, NULL, 0, &meta);
	flip_byte(fx->path, 10, 0x04); /* inside the first data block */

	struct sst_reader *r = open_table(fx->path); /* data blocks are read on demand */
	const struct ent *e = &m.e[0];
	uint8_t type;
	uint64_t seq;
	void *v;
	size_t vl;
	memset(&err, 0, sizeof(err));
	assert_int_equal(sst_reader_get(r, e->ik, ikey_user_len(e->iklen), SEQNO_MAX, &type, &seq,
					&v, &vl, &err),
			 FR_CORRUPTION);
	assert_null(v);
	assert_int_equal(err.code, FR_CORRUPTION);
	assert_non_null(strstr(err.msg, fx->path));
	assert_int_equal(err.offset, 0);
	/* a key in a later block still reads (at the seqno of its last version) */
	const struct ent *l = &m.e[m.n - 1];
	expect_get(r, l->ik, ikey_user_len(l->iklen), ikey_seqno(l->ik, l->iklen), l);

	struct kv_iter *it;
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	kv_seek_first(it);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_CORRUPTION);
	assert_non_null(strstr(it->err.msg, fx->path));
	/* a failed iterator stays failed */
	kv_seek_last(it);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_CORRUPTION);
	kv_free(it);
	/* backwards from the end, the iterator reaches the bad block and fails there */
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	size_t steps = 0;
	for (kv_seek_last(it); it->valid; kv_prev(it))
		steps++;
	assert_int_equal(it->status, FR_CORRUPTION);
	assert_true(steps > 0 && steps < m.n);
	kv_free(it);
	sst_reader_unref(r);
	sst_meta_fini(&meta);
	model_free(&m);
}

/* Opens, gets every key, iterates both ways: FR_OK if everything matched the model, else the
 * first failure, which must be FR_CORRUPTION naming the file. */
static fr_status probe_table_env(const char *path, const struct model *m,
				 const struct sst_read_env *env)
{
	struct sst_reader *r;
	struct kv_iter *it;
	fr_error err;
	fr_status rc = sst_reader_open_env(io_posix(), path, 42, env, &r, &err);
	if (rc)
		goto out;
	for (size_t i = 0; !rc && i < m->n; i++) {
		const struct ent *e = &m->e[i];
		uint8_t type;
		uint64_t seq;
		void *v;
		size_t vl;
		rc = sst_reader_get(r, e->ik, ikey_user_len(e->iklen), ikey_seqno(e->ik, e->iklen),
				    &type, &seq, &v, &vl, &err);
		if (rc == FR_NOT_FOUND) /* a damaged filter may hide keys; the data must not */
			rc = FR_OK;
		else if (!rc)
			fr_free(v);
	}
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	size_t n = 0;
	for (kv_seek_first(it); !rc && it->valid; kv_next(it))
		n++;
	if (!rc && !it->status)
		for (kv_seek_last(it); it->valid; kv_prev(it))
			n++;
	if (!rc && it->status) {
		rc = it->status;
		err = it->err;
	}
	kv_free(it);
	if (!rc && n != 2 * m->n)
		fail_msg("damaged table iterated %zu entries, not %zu", n, 2 * m->n);
	sst_reader_unref(r);
out:
	if (rc) {
		assert_int_equal(rc, FR_CORRUPTION);
		assert_non_null(strstr(err.msg, path));
	}
	return rc;
}

static fr_status probe_table(const char *path, const struct model *m)
{
	return probe_table_env(path, m, NULL);
}

/* probe_table through a fresh block cache and file table (both cleared between probes: the
 * file is rewritten in place under the same id). */
static fr_status probe_table_cached(const char *path, const struct model *m)
{
	struct sst_read_env env;
	fr_error err;

	assert_int_equal(blk_cache_new(1 << 20, 2, &env.cache), FR_OK);
	assert_int_equal(ftab_new(io_posix(), 2, &env.files, &err), FR_OK);
	fr_status rc = probe_table_env(path, m, &env);
	/* a second pass reads what the first one cached: the same verdict */
	fr_status rc2 = probe_table_env(path, m, &env);
	assert_int_equal(rc, rc2);
	ftab_free(env.files);
	blk_cache_free(env.cache);
	return rc;
}

/* Flips one random bit of every byte of the table at path in turn: each must be reported. */
static void sweep_table(const char *path, const struct model *m, uint64_t *rs)
{
	size_t len;
	uint8_t *good = read_all(path, &len);
	assert_int_equal(probe_table(path, m), FR_OK);
	assert_int_equal(probe_table_cached(path, m), FR_OK);
	for (size_t off = 0; off < len; off++) {
		uint8_t mask = (uint8_t)(1u << tu_rand_below(rs, 8));
		good[off] ^= mask;
		write_all(path, good, len);
		good[off] ^= mask;
		if (probe_table(path, m) != FR_CORRUPTION)
			fail_msg("flipping byte %zu of %zu went unnoticed", off, len);
		if (probe_table_cached(path, m) != FR_CORRUPTION)
			fail_msg("flipping byte %zu of %zu went unnoticed with a cache", off, len);
	}
	free(good);
}

/* Every byte of a small table is covered by a checksum: any flip must be reported. Also of a
 * version 2 table: hashed data blocks, a dozen index partitions and their top level. */
static void test_sst_corrupt_sweep(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta;
	struct range_del rd = {(const uint8_t *)"u", 1, (const uint8_t *)"v", 1, 77};

	gen_model(&m, 25, &rs);
	sst_options_default(&o);
	o.block_size = 256;
	write_table(fx->path, &m, &o, &rd, 1, &meta);
	sweep_table(fx->path, &m, &rs);
	sst_meta_fini(&meta);

	o.hash_index = true;
	o.index_partition_size = 64;
	unlink(fx->path);
	write_table(fx->path, &m, &o, &rd, 1, &meta);
	size_t len;
	uint8_t *file = read_all(fx->path, &len);
	struct sst_footer ft;
	read_footer(file, len, &ft);
	assert_int_equal(ft.version, SST_FORMAT_V2);
	struct part_info parts[64];
	assert_true(list_parts(file, len, parts, 64) >= 8);
	free(file);
	sweep_table(fx->path, &m, &rs);
	sst_meta_fini(&meta);
	model_free(&m);
}

static void test_sst_corrupt_meta_blocks(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	struct sst_reader *r;
	fr_error err;
	struct range_del rd = {(const uint8_t *)"u", 1, (const uint8_t *)"v", 1, 77};

	gen_model(&m, 3000, &rs);
	write_table(fx->path, &m, NULL, &rd, 1, &meta);
	size_t len;
	uint8_t *good = read_all(fx->path, &len);
	struct sst_footer ft;
	read_footer(good, len, &ft);
	/* a flip anywhere in index, filter, range tombstones, properties or footer: open fails */
	for (uint64_t off = ft.h[SST_FOOTER_FILTER].off; off < len;
	     off += 1 + tu_rand_below(&rs, 40)) {
		good[off] ^= 0x40;
		write_all(fx->path, good, len);
		good[off] ^= 0x40;
		memset(&err, 0, sizeof(err));
		assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err),
				 FR_CORRUPTION);
		assert_null(r);
		assert_non_null(strstr(err.msg, fx->path));
	}
	for (uint64_t off = len - SST_FOOTER_LEN; off < len; off++) {
		good[off] ^= 0x01;
		write_all(fx->path, good, len);
		good[off] ^= 0x01;
		assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err),
				 FR_CORRUPTION);
	}
	/* a later format version, or version 0, with a valid footer checksum */
	uint8_t *footer = good + len - SST_FOOTER_LEN, saved[SST_FOOTER_LEN];
	memcpy(saved, footer, SST_FOOTER_LEN);
	enc_u32(footer + SST_FOOTER_VERSION_OFF, 0);
	enc_u64(footer + SST_FOOTER_CHECKSUM_OFF, fr_xxh3(footer, SST_FOOTER_CHECKSUM_OFF));
	write_all(fx->path, good, len);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "unsupported table format version 0"));
	enc_u32(footer + SST_FOOTER_VERSION_OFF, 3);
	enc_u64(footer + SST_FOOTER_CHECKSUM_OFF, fr_xxh3(footer, SST_FOOTER_CHECKSUM_OFF));
	write_all(fx->path, good, len);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "unsupported table format version 3"));
	assert_non_null(strstr(err.msg, fx->path));
	/* not a table at all */
	enc_u32(footer + SST_FOOTER_VERSION_OFF, 1);
	enc_u64(footer + SST_FOOTER_MAGIC_OFF, 0x1234);
	write_all(fx->path, good, len);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "magic"));
	/* and back to the good bytes */
	memcpy(footer, saved, SST_FOOTER_LEN);
	write_all(fx->path, good, len);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_OK);
	sst_reader_unref(r);
	free(good);
	sst_meta_fini(&meta);
	model_free(&m);
}

static int ikey_cmp_fn(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return ikey_cmp(a, alen, b, blen);
}

/* Rewrites the table with a rebuilt index block (appended before a new footer whose checksum is
 * right), damaged by `mode`: 0 none, 1 last handle onto the filter block, 2 first two keys
 * swapped, 3 last entry dropped, 4 a byte of garbage after a handle. */
static void rewrite_index(const char *path, const uint8_t *file, size_t len, int mode)
{
	struct sst_footer ft;
	struct blk b;
	struct blk_iter it;
	struct blk_builder bb;
	struct fr_buf out;
	const uint8_t *data;
	size_t dlen, cnt = 0;
	uint8_t *owned;
	fr_error err;
	uint8_t keys[2][64], vals[2][32];
	size_t klen[2], vlen[2];

	read_footer(file, len, &ft);
	const struct sst_handle *ih = &ft.h[SST_FOOTER_INDEX];
	assert_int_equal(blk_stored_decode(file + ih->off, ih->size + SST_BLOCK_TRAILER_LEN, "t",
					   ih->off, &data, &dlen, &owned, &err),
			 FR_OK);
	assert_int_equal(blk_init(&b, data, dlen, ikey_cmp_fn, IKEY_TRAILER_LEN, "t", 0, &err),
			 FR_OK);
	blk_iter_init(&it, &b);
	blk_builder_init(&bb, 1);
	for (assert_int_equal(blk_iter_seek_first(&it, &err), FR_OK); it.valid;
	     assert_int_equal(blk_iter_next(&it, &err), FR_OK), cnt++) {
		uint8_t v[32];
		size_t vl = it.val_len;
		memcpy(v, it.val, vl);
		bool last = it.next_off >= b.restarts_off;
		if (mode == 1 && last) {
			vl = sst_handle_encode(v, &ft.h[SST_FOOTER_FILTER]);
		} else if (mode == 4 && cnt == 1) {
			v[vl++] = 0;
		} else if (mode == 3 && last) {
			continue;
		} else if (mode == 2 && cnt < 2) {
			klen[cnt] = blk_iter_key_len(&it);
			memcpy(keys[cnt], blk_iter_key(&it), klen[cnt]);
			vlen[cnt] = vl;
			memcpy(vals[cnt], v, vl);
			if (cnt == 1) {
				assert_int_equal(
					blk_builder_add(&bb, keys[1], klen[1], vals[1], vlen[1]),
					FR_OK);
				assert_int_equal(
					blk_builder_add(&bb, keys[0], klen[0], vals[0], vlen[0]),
					FR_OK);
			}
			continue;
		}
		assert_int_equal(
			blk_builder_add(&bb, blk_iter_key(&it), blk_iter_key_len(&it), v, vl),
			FR_OK);
	}
	assert_true(cnt > 2);
	assert_int_equal(blk_builder_finish(&bb, &data, &dlen), FR_OK);
	buf_init(&out);
	assert_int_equal(buf_append(&out, file, len - SST_FOOTER_LEN), FR_OK);
	ft.h[SST_FOOTER_INDEX].off = out.len;
	assert_int_equal(blk_stored_encode(data, dlen, false, &out), FR_OK);
	ft.h[SST_FOOTER_INDEX].size = out.len - ft.h[SST_FOOTER_INDEX].off - SST_BLOCK_TRAILER_LEN;
	assert_int_equal(buf_reserve(&out, SST_FOOTER_LEN), FR_OK);
	sst_footer_encode(&ft, out.data + out.len);
	out.len += SST_FOOTER_LEN;
	write_all(path, out.data, out.len);
	buf_fini(&out);
	blk_builder_fini(&bb);
	blk_iter_fini(&it);
	fr_free(owned);
}

/* Indexes whose checksums are right but whose contents are wrong are refused at open. */
static void test_sst_corrupt_index(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	struct sst_reader *r;
	fr_error err;

	gen_model(&m, 300, &rs);
	write_table(fx->path, &m, NULL, NULL, 0, &meta);
	size_t len;
	uint8_t *file = read_all(fx->path, &len);
	rewrite_index(fx->path, file, len, 0); /* the control: an intact rebuild reads fine */
	r = open_table(fx->path);
	check_iter_full(r, &m);
	sst_reader_unref(r);
	for (int mode = 1; mode <= 4; mode++) {
		rewrite_index(fx->path, file, len, mode);
		memset(&err, 0, sizeof(err));
		assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err),
				 FR_CORRUPTION);
		assert_non_null(strstr(err.msg, fx->path));
	}
	free(file);
	sst_meta_fini(&meta);
	model_free(&m);
}

static void test_sst_truncated(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	struct sst_reader *r;
	fr_error err;

	gen_model(&m, 500, &rs);
	write_table(fx->path, &m, NULL, NULL, 0, &meta);
	size_t len;
	uint8_t *good = read_all(fx->path, &len);
	size_t cuts[] = {0, 1, SST_FOOTER_LEN - 1, SST_FOOTER_LEN, len / 2,
			 len - SST_FOOTER_LEN, len - 9, len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_all(fx->path, good, cuts[i]);
		memset(&err, 0, sizeof(err));
		assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err),
				 FR_CORRUPTION);
		assert_non_null(strstr(err.msg, fx->path));
	}
	/* the right footer at the end of a file missing its middle: handles run past the data */
	memmove(good + len / 2, good + len - SST_FOOTER_LEN, SST_FOOTER_LEN);
	write_all(fx->path, good, len / 2 + SST_FOOTER_LEN);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	free(good);
	sst_meta_fini(&meta);
	model_free(&m);
}

static void test_sst_writer_misuse(void **state)
{
	struct fixture *fx = *state;
	struct sst_writer *w;
	struct sst_meta meta;
	struct sst_options o;
	fr_error err;
	uint8_t a[9], b[9], c[9], s[9];
	bool ex;

	ikey_encode(a, "a", 1, 5, VT_PUT);
	ikey_encode(b, "b", 1, 5, VT_PUT);
	ikey_encode(c, "b", 1, 4, VT_PUT); /* same key, older: after b */
	ikey_encode(s, "c", 1, 4, VT_SEEK);

	assert_int_equal(sst_writer_open(io_posix(), fx->path, 1, NULL, &w, &err), FR_OK);
	assert_int_equal(sst_writer_add(w, b, 9, "1", 1, &err), FR_OK);
	assert_int_equal(sst_writer_add(w, a, 9, "1", 1, &err), FR_INVALID); /* before */
	assert_int_equal(sst_writer_add(w, b, 9, "1", 1, &err), FR_INVALID); /* equal */
	assert_int_equal(sst_writer_add(w, a, 7, "1", 1, &err), FR_INVALID); /* no trailer */
	assert_int_equal(sst_writer_add(w, s, 9, "1", 1, &err), FR_INVALID); /* VT_SEEK */
	assert_int_equal(sst_writer_add(w, c, 9, NULL, 0, &err), FR_OK);     /* still usable */
	struct range_del empty = {(const uint8_t *)"k", 1, (const uint8_t *)"k", 1, 3};
	assert_int_equal(sst_writer_add_range_del(w, &empty, &err), FR_INVALID);
	assert_int_equal(sst_writer_entry_cnt(w), 2);
	assert_int_equal(sst_writer_finish(w, &meta, &err), FR_OK);
	assert_int_equal(meta.entry_cnt, 2);
	sst_meta_fini(&meta);

	/* the file exists: a second writer may not clobber it */
	assert_int_not_equal(sst_writer_open(io_posix(), fx->path, 1, NULL, &w, &err), FR_OK);
	assert_null(w);
	assert_int_equal(unlink(fx->path), 0);

	/* nothing added: FR_INVALID and no file left behind */
	assert_int_equal(sst_writer_open(io_posix(), fx->path, 1, NULL, &w, &err), FR_OK);
	assert_int_equal(sst_writer_finish(w, &meta, &err), FR_INVALID);
	assert_int_equal(io_exists(io_posix(), fx->path, &ex, &err), FR_OK);
	assert_false(ex);

	/* abort deletes the partial file */
	assert_int_equal(sst_writer_open(io_posix(), fx->path, 1, NULL, &w, &err), FR_OK);
	assert_int_equal(sst_writer_add(w, a, 9, "1", 1, &err), FR_OK);
	sst_writer_abort(w);
	sst_writer_abort(NULL);
	assert_int_equal(io_exists(io_posix(), fx->path, &ex, &err), FR_OK);
	assert_false(ex);

	/* bad options */
	sst_options_default(&o);
	o.restart_interval = 0;
	assert_int_equal(sst_writer_open(io_posix(), fx->path, 1, &o, &w, &err), FR_INVALID);
	sst_options_default(&o);
	o.block_size = 0;
	assert_int_equal(sst_writer_open(io_posix(), fx->path, 1, &o, &w, &err), FR_INVALID);
	sst_options_default(&o);
	o.bloom_bits_per_key = 1000;
	assert_int_equal(sst_writer_open(io_posix(), fx->path, 1, &o, &w, &err), FR_INVALID);
	assert_int_equal(io_exists(io_posix(), fx->path, &ex, &err), FR_OK);
	assert_false(ex);
}

static void test_sst_io_faults(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct fr_io *io = io_fault_new(io_posix());
	struct sst_writer *w;
	struct sst_reader *r;
	struct sst_meta meta;
	fr_error err;
	bool ex;

	gen_model(&m, 300, &rs);
	static const enum io_fault_kind kinds[] = {IO_FAULT_WRITE, IO_FAULT_SYNC};
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(sst_writer_open(io, fx->path, 1, NULL, &w, &err), FR_OK);
		for (size_t i = 0; i < m.n; i++)
			assert_int_equal(sst_writer_add(w, m.e[i].ik, m.e[i].iklen, m.e[i].val,
							m.e[i].vlen, &err),
					 FR_OK);
		io_fault_arm(io, kinds[k], 1, EIO, false);
		assert_int_equal(sst_writer_finish(w, &meta, &err), FR_IO);
		assert_int_equal(err.sys_errno, EIO);
		assert_null(meta.smallest);
		io_fault_clear(io);
		assert_int_equal(io_exists(io, fx->path, &ex, &err), FR_OK);
		assert_false(ex);
	}
	/* ENOSPC comes back as FR_NO_SPACE */
	assert_int_equal(sst_writer_open(io, fx->path, 1, NULL, &w, &err), FR_OK);
	for (size_t i = 0; i < m.n; i++)
		assert_int_equal(
			sst_writer_add(w, m.e[i].ik, m.e[i].iklen, m.e[i].val, m.e[i].vlen, &err),
			FR_OK);
	io_fault_set_space(io, 100);
	assert_int_equal(sst_writer_finish(w, &meta, &err), FR_NO_SPACE);
	io_fault_clear(io);

	/* a read error reaches get and the iterator */
	write_table(fx->path, &m, NULL, NULL, 0, &meta);
	assert_int_equal(sst_reader_open(io, fx->path, 42, &r, &err), FR_OK);
	io_fault_arm(io, IO_FAULT_READ, 1, EIO, true);
	uint8_t type;
	uint64_t seq;
	void *v;
	size_t vl;
	assert_int_equal(sst_reader_get(r, m.e[0].ik, ikey_user_len(m.e[0].iklen), SEQNO_MAX, &type,
					&seq, &v, &vl, &err),
			 FR_IO);
	struct kv_iter *it;
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	kv_seek_first(it);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_IO);
	kv_free(it);
	io_fault_clear(io);
	/* the reader itself is fine afterwards */
	expect_get(r, m.e[0].ik, ikey_user_len(m.e[0].iklen), SEQNO_MAX, &m.e[0]);
	sst_reader_unref(r);
	sst_meta_fini(&meta);
	io_destroy(io);
	model_free(&m);
}

struct reader_job {
	struct sst_reader *r;
	const struct model *m;
	uint64_t seed;
	int failures;
};

static void *reader_thread(void *arg)
{
	struct reader_job *j = arg;
	struct kv_iter *it;
	fr_error err;
	for (int n = 0; n < 3000; n++) {
		const struct ent *e = &j->m->e[tu_rand_below(&j->seed, j->m->n)];
		uint8_t type;
		uint64_t seq;
		void *v;
		size_t vl;
		fr_status rc =
			sst_reader_get(j->r, e->ik, ikey_user_len(e->iklen),
				       ikey_seqno(e->ik, e->iklen), &type, &seq, &v, &vl, &err);
		if (rc || seq != ikey_seqno(e->ik, e->iklen) || vl != e->vlen ||
		    (vl && memcmp(v, e->val, vl)))
			j->failures++;
		fr_free(v);
	}
	if (sst_iter_new(j->r, &it, &err)) {
		j->failures++;
		return NULL;
	}
	size_t i = 0;
	for (kv_seek_first(it); it->valid; kv_next(it), i++)
		if (it->key_len != j->m->e[i].iklen || memcmp(it->key, j->m->e[i].ik, it->key_len))
			j->failures++;
	if (i != j->m->n || it->status)
		j->failures++;
	kv_free(it);
	sst_reader_unref(j->r);
	return NULL;
}

static void run_concurrent_readers(const char *path, const struct model *m, uint64_t rs,
				   const struct sst_read_env *env)
{
	pthread_t th[4];
	struct reader_job jobs[4];
	struct sst_reader *r;
	fr_error err;

	assert_int_equal(sst_reader_open_env(io_posix(), path, 42, env, &r, &err), FR_OK);
	for (int i = 0; i < 4; i++) {
		sst_reader_ref(r); /* each thread drops its own reference */
		jobs[i] = (struct reader_job){r, m, rs + (uint64_t)i, 0};
		assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &jobs[i]), 0);
	}
	sst_reader_unref(r); /* the threads keep it alive */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].failures, 0);
	}
}

static void test_sst_concurrent_readers(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	struct sst_read_env env;
	struct blk_cache_stats cs;
	fr_error err;

	gen_model(&m, 3000, &rs);
	write_table(fx->path, &m, NULL, NULL, 0, &meta);
	run_concurrent_readers(fx->path, &m, rs, NULL);
	/* a shared cache small enough to evict under the threads (4 shards of 16 KiB: a few
	 * 4 KiB blocks each), and fewer file slots than threads */
	assert_int_equal(blk_cache_new(64 << 10, 2, &env.cache), FR_OK);
	assert_int_equal(ftab_new(io_posix(), 1, &env.files, &err), FR_OK);
	run_concurrent_readers(fx->path, &m, rs, &env);
	blk_cache_stats(env.cache, &cs);
	assert_true(cs.hits > 0 && cs.misses > 0);
	assert_true(cs.usage <= cs.capacity);
	ftab_free(env.files);
	blk_cache_free(env.cache);
	sst_meta_fini(&meta);

	/* hashed blocks and a partitioned index, whose partitions the threads load on demand
	 * through one cache (racing to insert the same partition) */
	struct sst_options o;
	char path2[600];
	sst_options_default(&o);
	o.hash_index = true;
	o.index_partition_size = 256;
	snprintf(path2, sizeof(path2), "%s/v2.sst", fx->dir);
	write_table(path2, &m, &o, NULL, 0, &meta);
	run_concurrent_readers(path2, &m, rs, NULL);
	assert_int_equal(blk_cache_new(64 << 10, 2, &env.cache), FR_OK);
	env.files = NULL;
	run_concurrent_readers(path2, &m, rs, &env);
	blk_cache_free(env.cache);
	sst_meta_fini(&meta);
	model_free(&m);
}

/* ---- the read environment ---- */

/* get from a and b must agree exactly: status, type, seqno and value */
static void expect_same_get(struct sst_reader *a, struct sst_reader *b, const void *ukey,
			    size_t ulen, uint64_t snap)
{
	uint8_t ta = 0, tb = 0;
	uint64_t sa = 0, sb = 0;
	void *va, *vb;
	size_t la = 0, lb = 0;
	fr_error err;
	fr_status ra = sst_reader_get(a, ukey, ulen, snap, &ta, &sa, &va, &la, &err);
	fr_status rb = sst_reader_get(b, ukey, ulen, snap, &tb, &sb, &vb, &lb, &err);

	assert_int_equal(ra, rb);
	if (ra == FR_OK) {
		assert_int_equal(ta, tb);
		assert_int_equal(sa, sb);
		assert_int_equal(la, lb);
		if (la)
			assert_memory_equal(va, vb, la);
	}
	fr_free(va);
	fr_free(vb);
}

/* Every entry of a and b, forwards, and a few seeks: identical. */
static void expect_same_iter(struct sst_reader *a, struct sst_reader *b, unsigned flags)
{
	struct kv_iter *x, *y;
	fr_error err;
	size_t n = 0;

	assert_int_equal(sst_iter_new(a, &x, &err), FR_OK);
	assert_int_equal(sst_iter_new_flags(b, flags, &y, &err), FR_OK);
	for (kv_seek_first(x), kv_seek_first(y); x->valid; kv_next(x), kv_next(y), n++) {
		assert_true(y->valid);
		assert_int_equal(x->key_len, y->key_len);
		assert_memory_equal(x->key, y->key, x->key_len);
		assert_int_equal(x->val_len, y->val_len);
		if (x->val_len)
			assert_memory_equal(x->val, y->val, x->val_len);
	}
	assert_false(y->valid);
	assert_int_equal(x->status, FR_OK);
	assert_int_equal(y->status, FR_OK);
	assert_true(n > 0);
	kv_free(x);
	kv_free(y);
}

static void test_sst_env_same_results(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta;
	struct blk_cache *big, *tiny;
	struct ftab *ft;
	fr_error err;

	gen_model(&m, 4000, &rs);
	sst_options_default(&o);
	o.block_size = 1024; /* many blocks: a tiny cache has to evict */
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	struct sst_reader *plain = open_table(fx->path);
	assert_int_equal(blk_cache_new(8 << 20, BLK_CACHE_SHARD_BITS, &big), FR_OK);
	assert_int_equal(blk_cache_new(16 << 10, 1, &tiny), FR_OK);
	assert_int_equal(ftab_new(io_posix(), 4, &ft, &err), FR_OK);
	const struct sst_read_env envs[] = {
		{big, NULL},
		{NULL, ft},
		{big, ft},
		{tiny, ft},
	};
	for (size_t k = 0; k < sizeof(envs) / sizeof(envs[0]); k++) {
		const struct sst_read_env *env = &envs[k];
		struct sst_reader *r;
		struct blk_cache_stats before, after;

		if (env->cache)
			blk_cache_stats(env->cache, &before);
		assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 42, env, &r, &err),
				 FR_OK);
		check_meta_equal(sst_reader_meta(r), sst_reader_meta(plain));
		for (size_t i = 0; i < m.n; i++) {
			const struct ent *e = &m.e[i];
			size_t ulen = ikey_user_len(e->iklen);
			uint64_t s = ikey_seqno(e->ik, e->iklen);

			expect_same_get(plain, r, e->ik, ulen, s);
			expect_same_get(plain, r, e->ik, ulen, s - 1);
			expect_same_get(plain, r, e->ik, ulen, SEQNO_MAX);
			/* a key that is absent, and one the filter may or may not rule out */
			expect_same_get(plain, r, e->ik, ulen - 1, SEQNO_MAX);
			assert_int_equal(sst_reader_may_contain(plain, e->ik, ulen - 1),
					 sst_reader_may_contain(r, e->ik, ulen - 1));
		}
		check_gets(r, &m, 7);
		check_absent(r, 4000);
		expect_same_iter(plain, r, 0);
		expect_same_iter(plain, r, SST_ITER_NO_FILL);
		check_iter_full(r, &m);
		check_seeks(r, &m, 300, &rs);
		if (env->cache) {
			blk_cache_stats(env->cache, &after);
			assert_true(after.hits > before.hits);
			assert_true(after.usage <= after.capacity); /* nothing left pinned */
		}
		if (env->files)
			assert_true(ftab_open_cnt(ft) >= 1);
		sst_reader_unref(r);
	}
	ftab_free(ft);
	blk_cache_free(tiny);
	blk_cache_free(big);
	sst_reader_unref(plain);
	sst_meta_fini(&meta);
	model_free(&m);
}

/* Open descriptors of this process (the scan's own not counted). */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;
}

/* With a file table the reader holds no descriptor: forgetting the file closes the only one,
 * and the next read opens it again. With a cache, index and filter are entries of the cache. */
static void test_sst_env_no_private_state(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	struct sst_read_env env;
	struct blk_cache_stats cs;
	struct sst_reader *r, *plain;
	fr_error err;

	gen_model(&m, 2000, &rs);
	write_table(fx->path, &m, NULL, NULL, 0, &meta); /* with a filter (the default) */
	int base = fd_count();
	plain = open_table(fx->path);
	assert_int_equal(fd_count(), base + 1); /* the plain reader's own */
	sst_reader_unref(plain);
	assert_int_equal(fd_count(), base);

	assert_int_equal(blk_cache_new(4 << 20, BLK_CACHE_SHARD_BITS, &env.cache), FR_OK);
	assert_int_equal(ftab_new(io_posix(), 8, &env.files, &err), FR_OK);
	assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 42, &env, &r, &err), FR_OK);
	/* the index and the filter went to the cache */
	blk_cache_stats(env.cache, &cs);
	assert_int_equal(cs.entry_cnt, 2);
	assert_int_equal(fd_count(), base + 1);
	assert_int_equal(ftab_open_cnt(env.files), 1);
	ftab_forget(env.files, 42);
	assert_int_equal(fd_count(), base); /* nothing else held it */
	check_gets(r, &m, 13);
	assert_int_equal(ftab_open_cnt(env.files), 1);
	sst_reader_unref(r);
	assert_int_equal(fd_count(), base + 1); /* the table's, until forgotten */
	ftab_forget(env.files, 42);
	assert_int_equal(fd_count(), base);
	ftab_free(env.files);
	blk_cache_free(env.cache);
	sst_meta_fini(&meta);
	model_free(&m);
}

static size_t count_entries(struct sst_reader *r, unsigned flags)
{
	struct kv_iter *it;
	fr_error err;
	size_t n = 0;

	assert_int_equal(sst_iter_new_flags(r, flags, &it, &err), FR_OK);
	for (kv_seek_first(it); it->valid; kv_next(it))
		n++;
	assert_int_equal(it->status, FR_OK);
	kv_free(it);
	return n;
}

static void test_sst_env_no_fill(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta;
	struct sst_read_env env = {0};
	struct blk_cache_stats s0, s1, s2, s3;
	struct sst_reader *r;
	fr_error err;

	gen_model(&m, 2000, &rs);
	sst_options_default(&o);
	o.block_size = 1024;
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	assert_int_equal(blk_cache_new(8 << 20, BLK_CACHE_SHARD_BITS, &env.cache), FR_OK);
	assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 42, &env, &r, &err), FR_OK);
	blk_cache_stats(env.cache, &s0);
	/* a compaction-style scan reads every block and keeps none */
	assert_int_equal(count_entries(r, SST_ITER_NO_FILL), m.n);
	blk_cache_stats(env.cache, &s1);
	assert_int_equal(s1.entry_cnt, s0.entry_cnt);
	assert_int_equal(s1.usage, s0.usage);
	assert_true(s1.misses > s0.misses + 10);
	/* a normal scan fills the cache with every data block it reads */
	assert_int_equal(count_entries(r, 0), m.n);
	blk_cache_stats(env.cache, &s2);
	uint64_t blocks = s2.entry_cnt - s1.entry_cnt;
	assert_true(blocks > 10);
	assert_int_equal(s2.misses - s1.misses, blocks);
	/* and a NO_FILL scan still uses what is cached: no miss at all */
	assert_int_equal(count_entries(r, SST_ITER_NO_FILL), m.n);
	blk_cache_stats(env.cache, &s3);
	assert_int_equal(s3.misses, s2.misses);
	/* the data blocks only: the reader keeps its index pinned, with no lookup per use */
	assert_int_equal(s3.hits - s2.hits, blocks);
	assert_int_equal(s3.entry_cnt, s2.entry_cnt);
	sst_reader_unref(r);
	blk_cache_free(env.cache);
	sst_meta_fini(&meta);
	model_free(&m);
}

static void test_sst_env_corrupt_data_block(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_meta meta;
	struct sst_read_env env;
	struct blk_cache_stats cs;
	struct blk_cache_entry *ce;
	struct sst_reader *r;
	struct kv_iter *it;
	fr_error err;

	gen_model(&m, 1000, &rs);
	write_table(fx->path, &m, NULL, NULL, 0, &meta);
	flip_byte(fx->path, 10, 0x04); /* inside the first data block, at offset 0 */
	assert_int_equal(blk_cache_new(4 << 20, BLK_CACHE_SHARD_BITS, &env.cache), FR_OK);
	assert_int_equal(ftab_new(io_posix(), 2, &env.files, &err), FR_OK);
	assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 42, &env, &r, &err), FR_OK);
	const struct ent *e = &m.e[0];
	for (int round = 0; round < 5; round++) {
		uint8_t type;
		uint64_t seq;
		void *v;
		size_t vl;

		memset(&err, 0, sizeof(err));
		assert_int_equal(sst_reader_get(r, e->ik, ikey_user_len(e->iklen), SEQNO_MAX, &type,
						&seq, &v, &vl, &err),
				 FR_CORRUPTION);
		assert_null(v);
		assert_non_null(strstr(err.msg, fx->path));
		assert_non_null(strstr(err.msg, "checksum"));
		assert_int_equal(err.offset, 0);
		assert_null(blk_cache_lookup(env.cache, 42, 0));

		assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
		kv_seek_first(it);
		assert_false(it->valid);
		assert_int_equal(it->status, FR_CORRUPTION);
		assert_non_null(strstr(it->err.msg, fx->path));
		assert_int_equal(it->err.offset, 0);
		kv_free(it);
		assert_null(blk_cache_lookup(env.cache, 42, 0));
	}
	/* a key in a later block reads, and its block is cached */
	blk_cache_stats(env.cache, &cs);
	uint64_t before = cs.entry_cnt;
	const struct ent *l = &m.e[m.n - 1];
	expect_get(r, l->ik, ikey_user_len(l->iklen), ikey_seqno(l->ik, l->iklen), l);
	blk_cache_stats(env.cache, &cs);
	assert_int_equal(cs.entry_cnt, before + 1);
	/* the block cached is good: the damaged one is still refused */
	ce = blk_cache_lookup(env.cache, 42, 0);
	assert_null(ce);
	sst_reader_unref(r);
	ftab_free(env.files);
	blk_cache_free(env.cache);
	sst_meta_fini(&meta);
	model_free(&m);
}

/* ---- format version 1 ---- */

/*
 * A table written before format version 2 existed (FORMAT.md §4.10), by the writer of that
 * time: block_size 128, defaults otherwise, table id 9; entries from golden_entry(), and the
 * range tombstone [gold-k02, gold-k04) at seqno 950.
 */
static const uint8_t golden_v1[] = {
	0x8a, 0x01, 0xf0, 0x00, 0x00, 0x10, 0x04, 0x67, 0x6f, 0x6c, 0x64, 0x2d,
	0x6b, 0x30, 0x30, 0x01, 0xe8, 0x03, 0x00, 0x01, 0x00, 0xa2, 0x76, 0x30,
	0x2e, 0x30, 0x07, 0x09, 0x14, 0x31, 0x01, 0xde, 0x10, 0x00, 0x1f, 0x72,
	0x01, 0x00, 0x00, 0x4f, 0x09, 0x07, 0x15, 0xdd, 0x1e, 0x00, 0x07, 0x72,
	0x72, 0x07, 0x09, 0x04, 0x32, 0x01, 0xd4, 0x21, 0x00, 0x85, 0x76, 0x32,
	0x2e, 0x30, 0x09, 0x07, 0x04, 0xd3, 0x0e, 0x00, 0x55, 0x31, 0x09, 0x07,
	0x04, 0xd2, 0x0e, 0x00, 0x90, 0x32, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x01, 0xa6, 0x76, 0xe0, 0xc1, 0xc2, 0x1c, 0xb2, 0xe9, 0x85,
	0x01, 0xf0, 0x00, 0x00, 0x10, 0x00, 0x67, 0x6f, 0x6c, 0x64, 0x2d, 0x6b,
	0x30, 0x33, 0x00, 0xca, 0x03, 0x00, 0x01, 0x00, 0x62, 0x07, 0x09, 0x04,
	0x34, 0x01, 0xc0, 0x0c, 0x00, 0x85, 0x76, 0x34, 0x2e, 0x30, 0x09, 0x07,
	0x04, 0xbf, 0x0e, 0x00, 0x72, 0x31, 0x07, 0x09, 0x00, 0x35, 0x02, 0xb6,
	0x10, 0x00, 0x52, 0x08, 0x08, 0x15, 0x01, 0xb5, 0x0b, 0x00, 0x1f, 0x72,
	0x01, 0x00, 0x01, 0x4f, 0x09, 0x07, 0x16, 0xb4, 0x1f, 0x00, 0x08, 0x90,
	0x72, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xb7, 0xbc,
	0xdc, 0x67, 0x5e, 0x36, 0xf1, 0xcc, 0x5e, 0xf0, 0x00, 0x00, 0x10, 0x04,
	0x67, 0x6f, 0x6c, 0x64, 0x2d, 0x6b, 0x30, 0x36, 0x01, 0xac, 0x03, 0x00,
	0x01, 0x00, 0xa2, 0x76, 0x36, 0x2e, 0x30, 0x07, 0x09, 0x14, 0x37, 0x01,
	0xa2, 0x10, 0x00, 0x1f, 0x72, 0x01, 0x00, 0x00, 0x4f, 0x09, 0x07, 0x15,
	0xa1, 0x1e, 0x00, 0x07, 0x90, 0x72, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x01, 0x6b, 0x9a, 0xc7, 0xc7, 0x78, 0xee, 0x1b, 0x74, 0x01,
	0x17, 0xce, 0xf6, 0x74, 0x1d, 0x5e, 0x02, 0x07, 0x76, 0x42, 0x07, 0x00,
	0x08, 0xc4, 0x64, 0xa6, 0x25, 0x02, 0x59, 0x32, 0x01, 0x08, 0x67, 0x6f,
	0x6c, 0x64, 0x2d, 0x6b, 0x30, 0x32, 0x08, 0x67, 0x6f, 0x6c, 0x64, 0x2d,
	0x6b, 0x30, 0x34, 0xb6, 0x07, 0x00, 0xa8, 0x36, 0xad, 0x46, 0xf7, 0x80,
	0xa8, 0x65, 0x50, 0xf1, 0x00, 0x00, 0x10, 0x02, 0x67, 0x6f, 0x6c, 0x64,
	0x2d, 0x6b, 0x30, 0x32, 0x01, 0xd2, 0x03, 0x00, 0x01, 0x00, 0x16, 0x56,
	0x15, 0x00, 0x32, 0x35, 0x01, 0xb4, 0x15, 0x00, 0x53, 0x5f, 0x52, 0x00,
	0x10, 0x03, 0x2a, 0x00, 0x32, 0x37, 0x01, 0xa1, 0x15, 0x00, 0x30, 0xba,
	0x01, 0x38, 0x31, 0x00, 0xc0, 0x15, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00,
	0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x78, 0x2c, 0xa7, 0xd3, 0xbc, 0x49,
	0xd0, 0x10, 0x01, 0x01, 0x0f, 0x02, 0x01, 0x02, 0x03, 0x01, 0x01, 0x04,
	0x02, 0xa1, 0x07, 0x05, 0x02, 0xe8, 0x07, 0x06, 0x08, 0x67, 0x6f, 0x6c,
	0x64, 0x2d, 0x6b, 0x30, 0x30, 0x07, 0x08, 0x67, 0x6f, 0x6c, 0x64, 0x2d,
	0x6b, 0x30, 0x37, 0x08, 0x02, 0x80, 0x01, 0x09, 0x01, 0x10, 0x0a, 0x01,
	0x0a, 0x0b, 0x01, 0x01, 0x0c, 0x01, 0x03, 0x0d, 0x05, 0x9c, 0xa6, 0x88,
	0xd8, 0x06, 0x00, 0x3a, 0x90, 0x37, 0x9a, 0xf3, 0x94, 0x53, 0xc1, 0x2e,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0xfb, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x76,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x46, 0x52, 0x41, 0x43, 0x54,
	0x53, 0x53, 0x54, 0x98, 0x55, 0x99, 0x3a, 0x22, 0xf9, 0x1d, 0x5f
};

/* Entry v (newest first) of user key k of the golden table. */
static void golden_entry(int k, int v, struct model *m)
{
	char u[16], val[64];
	int ul = snprintf(u, sizeof(u), "gold-k%02d", k);
	uint64_t seq = (uint64_t)(1000 - 10 * k - v);
	uint8_t type = k == 3 && v == 0 ? VT_DEL : k == 5 && v == 0 ? VT_WEAK_DEL : VT_PUT;
	size_t vlen;
	if (type != VT_PUT)
		vlen = 0;
	else if (k % 2)
		vlen = (size_t)snprintf(val, sizeof(val), "%.*s", 20 + v,
					"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr");
	else
		vlen = (size_t)snprintf(val, sizeof(val), "v%d.%d", k, v);
	model_add(m, u, (size_t)ul, seq, type, val, vlen);
}

static void golden_model(struct model *m)
{
	for (int k = 0; k < 8; k++)
		for (int v = 0; v < 1 + k % 3; v++)
			golden_entry(k, v, m);
}

/* A version 1 table of the old writer still reads, with and without a cache; today's writer
 * still writes version 1 for it, with the same filter, and what it writes reads the same. */
static void test_sst_golden_v1(void **state)
{
	struct fixture *fx = *state;
	struct model m = {0};
	struct sst_footer ft;
	struct sst_options o;
	struct sst_meta meta;
	struct sst_read_env env = {0};
	struct sst_reader *r;
	const struct range_del *rds;
	fr_error err;
	char path2[600];

	golden_model(&m);
	write_all(fx->path, golden_v1, sizeof(golden_v1));
	read_footer(golden_v1, sizeof(golden_v1), &ft);
	assert_int_equal(ft.version, SST_FORMAT_V1);
	assert_int_equal(blk_cache_new(1 << 20, 1, &env.cache), FR_OK);
	for (int cached = 0; cached < 2; cached++) {
		const struct sst_read_env *e = cached ? &env : NULL;
		assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 9, e, &r, &err), FR_OK);
		assert_int_equal(sst_reader_meta(r)->entry_cnt, m.n);
		assert_int_equal(sst_reader_meta(r)->created_s, 1795298076);
		assert_int_equal(sst_reader_range_dels(r, &rds), 1);
		assert_int_equal(rds[0].seqno, 950);
		check_gets(r, &m, 1);
		check_iter_full(r, &m);
		expect_get(r, (const uint8_t *)"gold-k08", 8, SEQNO_MAX, NULL);
		sst_reader_unref(r);
	}
	blk_cache_free(env.cache);

	/* the writer of today: the same table */
	struct range_del rd = {(const uint8_t *)"gold-k02", 8, (const uint8_t *)"gold-k04", 8, 950};
	snprintf(path2, sizeof(path2), "%s/again.sst", fx->dir);
	sst_options_default(&o);
	o.block_size = 128;
	struct sst_writer *w;
	assert_int_equal(sst_writer_open(io_posix(), path2, 9, &o, &w, &err), FR_OK);
	for (size_t i = 0; i < m.n; i++)
		assert_int_equal(
			sst_writer_add(w, m.e[i].ik, m.e[i].iklen, m.e[i].val, m.e[i].vlen, &err),
			FR_OK);
	assert_int_equal(sst_writer_add_range_del(w, &rd, &err), FR_OK);
	assert_int_equal(sst_writer_finish(w, &meta, &err), FR_OK);
	size_t len;
	uint8_t *again = read_all(path2, &len);
	struct sst_footer ft2;
	read_footer(again, len, &ft2);
	assert_int_equal(ft2.version, SST_FORMAT_V1);
	/* the same layout; the LZ4 bytes of a block may differ (the compressor keeps a reused
	 * per-thread state), so the contents are compared by reading them back */
	assert_int_equal(ft2.h[SST_FOOTER_FILTER].size, ft.h[SST_FOOTER_FILTER].size);
	free(again);
	assert_int_equal(sst_reader_open(io_posix(), path2, 9, &r, &err), FR_OK);
	check_gets(r, &m, 1);
	check_iter_full(r, &m);
	sst_reader_unref(r);
	sst_meta_fini(&meta);
	model_free(&m);
}

/* Rewrites a table with its properties block replaced by `mutate`d properties (appended, with a
 * new footer of version `version`). */
static void rewrite_props(const char *path, const uint8_t *file, size_t len, uint32_t version,
			  void (*mutate)(struct sst_props *))
{
	struct sst_footer ft;
	struct sst_props p;
	struct fr_buf raw, out;
	const uint8_t *data;
	size_t dlen;
	uint8_t *owned;
	fr_error err;

	read_footer(file, len, &ft);
	const struct sst_handle *h = &ft.h[SST_FOOTER_PROPS];
	assert_int_equal(blk_stored_decode(file + h->off, h->size + SST_BLOCK_TRAILER_LEN, "t",
					   h->off, &data, &dlen, &owned, &err),
			 FR_OK);
	assert_int_equal(sst_props_decode(data, dlen, "t", h->off, &p, &err), FR_OK);
	mutate(&p);
	buf_init(&raw);
	buf_init(&out);
	assert_int_equal(sst_props_encode(&p, &raw), FR_OK);
	assert_int_equal(buf_append(&out, file, len - SST_FOOTER_LEN), FR_OK);
	ft.h[SST_FOOTER_PROPS].off = out.len;
	assert_int_equal(blk_stored_encode(raw.data, raw.len, false, &out), FR_OK);
	ft.h[SST_FOOTER_PROPS].size = out.len - ft.h[SST_FOOTER_PROPS].off - SST_BLOCK_TRAILER_LEN;
	ft.version = version;
	assert_int_equal(buf_reserve(&out, SST_FOOTER_LEN), FR_OK);
	sst_footer_encode(&ft, out.data + out.len);
	out.len += SST_FOOTER_LEN;
	write_all(path, out.data, out.len);
	buf_fini(&out);
	buf_fini(&raw);
	fr_free(owned);
}

static void props_none(struct sst_props *p)
{
	(void)p;
}

static void props_hash(struct sst_props *p)
{
	p->data_hash = 1;
}

static void props_no_hash(struct sst_props *p)
{
	p->data_hash = 0;
	p->index_parts = 0;
}

static void props_one_part(struct sst_props *p)
{
	p->index_parts = 1;
	p->data_hash = 1;
}

static void props_more_parts(struct sst_props *p)
{
	p->index_parts += 1;
}

/* What version 2 added must agree with the footer and with the blocks. */
static void test_sst_version_checks(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta;
	struct sst_reader *r;
	fr_error err;
	size_t len;

	/* the golden table rewritten as it was, as version 1 and as version 2: both read */
	golden_model(&m);
	rewrite_props(fx->path, golden_v1, sizeof(golden_v1), SST_FORMAT_V1, props_none);
	r = open_table(fx->path);
	check_iter_full(r, &m);
	sst_reader_unref(r);
	rewrite_props(fx->path, golden_v1, sizeof(golden_v1), SST_FORMAT_V2, props_none);
	r = open_table(fx->path);
	check_gets(r, &m, 1);
	sst_reader_unref(r);
	/* a version 1 table may not say its blocks are hashed */
	rewrite_props(fx->path, golden_v1, sizeof(golden_v1), SST_FORMAT_V1, props_hash);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "version 2 properties in a version 1 table"));
	assert_non_null(strstr(err.msg, fx->path));
	/* one partition is never written: the single index is */
	rewrite_props(fx->path, golden_v1, sizeof(golden_v1), SST_FORMAT_V2, props_one_part);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	model_free(&m);

	/* hashed blocks in a table whose properties deny them: refused when read */
	gen_model(&m, 300, &rs);
	sst_options_default(&o);
	o.hash_index = true;
	unlink(fx->path);
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	sst_meta_fini(&meta);
	uint8_t *file = read_all(fx->path, &len);
	struct sst_footer ft;
	read_footer(file, len, &ft);
	assert_int_equal(ft.version, SST_FORMAT_V2);
	rewrite_props(fx->path, file, len, SST_FORMAT_V2, props_no_hash);
	r = open_table(fx->path);
	uint8_t type;
	uint64_t seq;
	void *v;
	size_t vl;
	assert_int_equal(sst_reader_get(r, m.e[0].ik, ikey_user_len(m.e[0].iklen), SEQNO_MAX,
					&type, &seq, &v, &vl, &err),
			 FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "hash index in a data block"));
	assert_int_equal(err.offset, 0);
	sst_reader_unref(r);
	free(file);

	/* a partitioned table whose properties promise one partition more than there are */
	o.index_partition_size = 128;
	unlink(fx->path);
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	sst_meta_fini(&meta);
	file = read_all(fx->path, &len);
	rewrite_props(fx->path, file, len, SST_FORMAT_V2, props_more_parts);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "partitions"));
	free(file);
	model_free(&m);
}
/* ---- partitioned index ---- */

/* Everything a reader can be asked, against the model and against a reader without an
 * environment (`plain`, NULL: skip that comparison). */
static void check_all(struct sst_reader *r, struct sst_reader *plain, const struct model *m,
		      size_t nkeys, uint64_t *rs)
{
	if (plain) {
		for (size_t i = 0; i < m->n; i += 3) {
			const struct ent *e = &m->e[i];
			size_t ulen = ikey_user_len(e->iklen);
			uint64_t s = ikey_seqno(e->ik, e->iklen);
			expect_same_get(plain, r, e->ik, ulen, s - 1);
			expect_same_get(plain, r, e->ik, ulen - 1, SEQNO_MAX);
		}
		expect_same_iter(plain, r, 0);
		expect_same_iter(plain, r, SST_ITER_NO_FILL);
	}
	check_gets(r, m, 1);
	check_absent(r, nkeys);
	check_iter_full(r, m);
	check_seeks(r, m, 2000, rs);
}

static void test_sst_partitioned(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta;
	struct sst_footer ft;
	struct blk_cache *big, *tiny;
	struct blk_cache_stats cs;
	struct ftab *files;
	struct sst_reader *plain, *r;
	struct part_info *parts = calloc(4096, sizeof(*parts));
	fr_error err;
	size_t len;

	assert_non_null(parts);
	gen_model(&m, 4000, &rs);
	sst_options_default(&o);
	o.block_size = 512;
	o.index_partition_size = 512;
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	uint8_t *file = read_all(fx->path, &len);
	read_footer(file, len, &ft);
	assert_int_equal(ft.version, SST_FORMAT_V2);
	size_t np = list_parts(file, len, parts, 4096);
	assert_true(np > 20);
	/* FORMAT.md §4.1: back to back, from the range tombstones' end to the top-level index */
	const struct sst_handle *rd = &ft.h[SST_FOOTER_RANGE_DEL];
	uint64_t at = rd->off + rd->size + SST_BLOCK_TRAILER_LEN;
	for (size_t i = 0; i < np; i++) {
		assert_int_equal(parts[i].h.off, at);
		at += parts[i].h.size + SST_BLOCK_TRAILER_LEN;
		/* a partition is about the partition size: closed once it reached it */
		assert_true(parts[i].h.size <= 512 + 64);
	}
	assert_int_equal(at, ft.h[SST_FOOTER_INDEX].off);
	/* the top-level keys are the partitions' last keys, so the last is the table's */
	assert_memory_equal(parts[np - 1].key, m.e[m.n - 1].ik, m.e[m.n - 1].iklen);
	free(file);

	plain = open_table(fx->path); /* reads and checks every partition at open */
	check_meta_equal(sst_reader_meta(plain), &meta);
	check_all(plain, NULL, &m, 4000, &rs);

	assert_int_equal(blk_cache_new(8 << 20, BLK_CACHE_SHARD_BITS, &big), FR_OK);
	assert_int_equal(blk_cache_new(8 << 10, 1, &tiny), FR_OK);
	assert_int_equal(ftab_new(io_posix(), 2, &files, &err), FR_OK);
	/* with a cache, open reads only the top level: partitions come when reads need them */
	struct sst_read_env env = {big, NULL};
	assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 42, &env, &r, &err), FR_OK);
	blk_cache_stats(big, &cs);
	assert_int_equal(cs.entry_cnt, 1); /* the filter (the reader keeps the top level) */
	const struct ent *e = &m.e[m.n / 2];
	expect_get(r, e->ik, ikey_user_len(e->iklen), ikey_seqno(e->ik, e->iklen), e);
	blk_cache_stats(big, &cs);
	assert_int_equal(cs.entry_cnt, 3); /* and one partition and one data block */
	check_all(r, plain, &m, 4000, &rs);
	for (size_t i = 0; i < np; i++) { /* every partition was read, and kept */
		struct blk_cache_entry *ce = blk_cache_lookup(big, 42, parts[i].h.off);
		assert_non_null(ce);
		blk_cache_release(big, ce);
	}
	sst_reader_unref(r);

	const struct sst_read_env envs[] = {{tiny, NULL}, {tiny, files}, {NULL, files}};
	for (size_t k = 0; k < sizeof(envs) / sizeof(envs[0]); k++) {
		assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 42, &envs[k], &r, &err),
				 FR_OK);
		check_all(r, plain, &m, 4000, &rs);
		if (envs[k].cache) {
			blk_cache_stats(envs[k].cache, &cs);
			assert_true(cs.usage <= cs.capacity); /* nothing left pinned */
		}
		sst_reader_unref(r);
	}
	sst_reader_unref(plain);
	sst_meta_fini(&meta);
	model_free(&m);

	/* one index entry per partition */
	gen_model(&m, 300, &rs);
	o.index_partition_size = 1;
	unlink(fx->path);
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	file = read_all(fx->path, &len);
	np = list_parts(file, len, parts, 4096);
	assert_true(np > 10);
	free(file);
	plain = open_table(fx->path);
	check_all(plain, NULL, &m, 300, &rs);
	/* a new cache: the old one holds blocks of the table this one replaced, under its id */
	blk_cache_free(tiny);
	assert_int_equal(blk_cache_new(8 << 10, 1, &tiny), FR_OK);
	env = (struct sst_read_env){tiny, NULL};
	assert_int_equal(sst_reader_open_env(io_posix(), fx->path, 42, &env, &r, &err), FR_OK);
	check_all(r, plain, &m, 300, &rs);
	sst_reader_unref(r);
	sst_reader_unref(plain);
	sst_meta_fini(&meta);
	model_free(&m);

	/* an index of one entry fills one partition: the table stays version 1 */
	model_add(&m, "one", 3, 5, VT_PUT, "v", 1);
	unlink(fx->path);
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	file = read_all(fx->path, &len);
	read_footer(file, len, &ft);
	assert_int_equal(ft.version, SST_FORMAT_V1);
	assert_int_equal(list_parts(file, len, parts, 4096), 0);
	free(file);
	plain = open_table(fx->path);
	check_all(plain, NULL, &m, 1, &rs);
	sst_reader_unref(plain);
	sst_meta_fini(&meta);
	model_free(&m);
	ftab_free(files);
	blk_cache_free(tiny);
	blk_cache_free(big);
	free(parts);
}

/* Rewrites stored block h of an uncompressed table in place after `edit` changed its contents,
 * with a checksum that fits them. */
static void reseal_block(uint8_t *file, const struct sst_handle *h)
{
	uint8_t *p = file + h->off;
	assert_int_equal(p[h->size], SST_COMP_NONE);
	enc_u64(p + h->size + 1, fr_xxh3(p, h->size + 1));
}

/* The model entries that partition k of parts covers: (key k-1, key k]. */
static void part_range(const struct model *m, const struct part_info *parts, size_t k,
		       size_t *lo, size_t *hi)
{
	*lo = k ? model_bound(m, parts[k - 1].key, parts[k - 1].klen, true) : 0;
	*hi = model_bound(m, parts[k].key, parts[k].klen, true);
	assert_true(*lo < *hi);
}

/* Damage in one partition: a reader without a cache refuses the table at open; one with a
 * cache opens it, and every read that needs the partition fails with FR_CORRUPTION naming the
 * file and the partition's offset, while reads elsewhere work, and it is never cached. */
static void expect_bad_part(const char *path, const struct model *m,
			    const struct part_info *parts, size_t np, size_t k, const char *what)
{
	struct sst_read_env env = {0};
	struct sst_reader *r;
	struct kv_iter *it;
	fr_error err;
	size_t lo, hi;

	memset(&err, 0, sizeof(err));
	assert_int_equal(sst_reader_open(io_posix(), path, 42, &r, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(err.offset, parts[k].h.off);
	if (what)
		assert_non_null(strstr(err.msg, what));

	assert_int_equal(blk_cache_new(4 << 20, 2, &env.cache), FR_OK);
	assert_int_equal(sst_reader_open_env(io_posix(), path, 42, &env, &r, &err), FR_OK);
	part_range(m, parts, k, &lo, &hi);
	for (int round = 0; round < 3; round++) {
		for (size_t i = lo; i < hi; i++) {
			const struct ent *e = &m->e[i];
			uint8_t type;
			uint64_t seq;
			void *v;
			size_t vl;
			memset(&err, 0, sizeof(err));
			assert_int_equal(sst_reader_get(r, e->ik, ikey_user_len(e->iklen),
							ikey_seqno(e->ik, e->iklen), &type, &seq,
							&v, &vl, &err),
					 FR_CORRUPTION);
			assert_null(v);
			assert_non_null(strstr(err.msg, path));
			assert_int_equal(err.offset, parts[k].h.off);
		}
		assert_null(blk_cache_lookup(env.cache, 42, parts[k].h.off));
	}
	/* the neighbours read */
	size_t plo, phi;
	if (k > 0) {
		part_range(m, parts, k - 1, &plo, &phi);
		const struct ent *e = &m->e[phi - 1];
		expect_get(r, e->ik, ikey_user_len(e->iklen), ikey_seqno(e->ik, e->iklen), e);
	}
	if (k + 1 < np) {
		part_range(m, parts, k + 1, &plo, &phi);
		const struct ent *e = &m->e[plo];
		expect_get(r, e->ik, ikey_user_len(e->iklen), ikey_seqno(e->ik, e->iklen), e);
	}
	/* iterators reach it from either side and stop there */
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	size_t n = 0;
	for (kv_seek_first(it); it->valid; kv_next(it))
		expect_ent(it, &m->e[n++]);
	assert_int_equal(it->status, FR_CORRUPTION);
	assert_int_equal(it->err.offset, parts[k].h.off);
	assert_int_equal(n, lo);
	kv_free(it);
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	n = m->n;
	for (kv_seek_last(it); it->valid; kv_prev(it))
		expect_ent(it, &m->e[--n]);
	assert_int_equal(it->status, FR_CORRUPTION);
	assert_int_equal(n, hi);
	kv_free(it);
	assert_int_equal(sst_iter_new(r, &it, &err), FR_OK);
	kv_seek(it, m->e[lo].ik, m->e[lo].iklen);
	assert_false(it->valid);
	assert_int_equal(it->status, FR_CORRUPTION);
	assert_non_null(strstr(it->err.msg, path));
	kv_free(it);
	sst_reader_unref(r);
	blk_cache_free(env.cache);
}

static void test_sst_partition_corrupt(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta;
	struct part_info parts[256];
	struct blk b;
	struct blk_iter it;
	fr_error err;
	size_t len;

	gen_model(&m, 600, &rs);
	sst_options_default(&o);
	o.block_size = 512;
	o.index_partition_size = 400;
	o.compress = false; /* so that a partition can be edited and resealed */
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	uint8_t *good = read_all(fx->path, &len);
	size_t np = list_parts(good, len, parts, 256);
	assert_true(np > 8);
	uint8_t *bad = malloc(len);
	assert_non_null(bad);

	/* a flipped byte in partitions at the start, the middle and the end */
	size_t ks[] = {0, np / 2, np - 1};
	for (size_t i = 0; i < 3; i++) {
		const struct sst_handle *h = &parts[ks[i]].h;
		memcpy(bad, good, len);
		bad[h->off + tu_rand_below(&rs, h->size + SST_BLOCK_TRAILER_LEN)] ^= 0x08;
		write_all(fx->path, bad, len);
		expect_bad_part(fx->path, &m, parts, np, ks[i], NULL);
	}

	/* checksums right, contents wrong: the last key is not the top level's; the keys are out
	 * of order; a handle points past the data blocks */
	size_t k = np / 3;
	const struct sst_handle *h = &parts[k].h;
	for (int mode = 0; mode < 3; mode++) {
		memcpy(bad, good, len);
		uint8_t *data = bad + h->off;
		assert_int_equal(blk_init(&b, data, h->size, ikcmp, 8, "t", 0, &err), FR_OK);
		blk_iter_init(&it, &b);
		if (mode == 0) {
			/* the type byte of the last key: every index key is stored whole */
			assert_int_equal(blk_iter_seek_last(&it, &err), FR_OK);
			data[(size_t)(it.val - data) - 8] ^= 0x01;
		} else if (mode == 1) {
			/* the first key's first byte (after three one-byte varints): far too big */
			assert_int_equal(blk_iter_seek_first(&it, &err), FR_OK);
			assert_int_equal(data[0], 0);
			data[3] = 0xff;
		} else {
			/* two neighbouring handles of the same length swapped: out of order */
			uint8_t *pv = NULL;
			size_t pvl = 0;
			for (assert_int_equal(blk_iter_seek_first(&it, &err), FR_OK); it.valid;
			     assert_int_equal(blk_iter_next(&it, &err), FR_OK)) {
				uint8_t *v = data + (it.val - data), tmp[32];
				if (pv && pvl == it.val_len) {
					memcpy(tmp, v, pvl);
					memcpy(v, pv, pvl);
					memcpy(pv, tmp, pvl);
					break;
				}
				pv = v;
				pvl = it.val_len;
			}
			assert_true(it.valid);
		}
		blk_iter_fini(&it);
		reseal_block(bad, h);
		write_all(fx->path, bad, len);
		static const char *const what[] = {"top-level key", "out of order", "handle"};
		expect_bad_part(fx->path, &m, parts, np, k, what[mode]);
	}
	write_all(fx->path, good, len);
	struct sst_reader *r = open_table(fx->path);
	check_iter_full(r, &m);
	sst_reader_unref(r);
	free(bad);
	free(good);
	sst_meta_fini(&meta);
	model_free(&m);
}

/* ---- hash index in data blocks ---- */

/* nkeys user keys with 1..3 versions mostly, some with tens and a few with hundreds (a slab
 * across restart runs and blocks); short values, so blocks hold many entries. */
static void gen_mvcc_model(struct model *m, size_t nkeys, uint64_t *rs)
{
	for (size_t i = 0; i < nkeys; i++) {
		char k[64], v[32];
		size_t klen =
			make_ukey(k, i * 10 + tu_rand_below(rs, 5), tu_rand_below(rs, 6), 'm');
		uint64_t r = tu_rand_below(rs, 100);
		size_t nv = r < 70 ? 1 + tu_rand_below(rs, 3)
			    : r < 97 ? 4 + tu_rand_below(rs, 30)
				     : 100 + tu_rand_below(rs, 300);
		uint64_t seq = 1000000 + tu_rand_below(rs, 1000);
		for (size_t j = 0; j < nv; j++) {
			seq -= 1 + tu_rand_below(rs, 3);
			uint8_t type = tu_rand_below(rs, 10) ? VT_PUT : VT_DEL;
			int vl = snprintf(v, sizeof(v), "v%zu.%zu", i, j);
			model_add(m, k, klen, seq, type, v, type == VT_PUT ? (size_t)vl : 0);
		}
	}
}

/* Gets of every entry at its seqno, just below and at SEQNO_MAX, and of absent keys. */
static void run_gets(struct sst_reader *a, struct sst_reader *b, const struct model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct ent *e = &m->e[i];
		size_t ulen = ikey_user_len(e->iklen);
		uint64_t s = ikey_seqno(e->ik, e->iklen);
		expect_same_get(a, b, e->ik, ulen, s);
		expect_same_get(a, b, e->ik, ulen, s - 1);
		expect_same_get(a, b, e->ik, ulen, SEQNO_MAX);
		expect_same_get(a, b, e->ik, ulen - 1, SEQNO_MAX);
	}
}

static void count_diff(struct blk_test_counts *d, const struct blk_test_counts *a,
		       const struct blk_test_counts *b)
{
	d->hash_jump = b->hash_jump - a->hash_jump;
	d->hash_absent = b->hash_absent - a->hash_absent;
	d->hash_collision = b->hash_collision - a->hash_collision;
	d->binary_search = b->binary_search - a->binary_search;
}

static void test_sst_hash_index(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta, hmeta;
	struct blk_test_counts c0, c1, plain_cnt, hash_cnt;
	char path2[600];
	fr_error err;

	gen_mvcc_model(&m, 3000, &rs);
	assert_true(m.n > 10000);
	sst_options_default(&o);
	o.block_size = 1024;
	o.restart_interval = 4;
	o.bloom_bits_per_key = 0; /* every absent key reaches the blocks */
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	o.hash_index = true;
	snprintf(path2, sizeof(path2), "%s/hashed.sst", fx->dir);
	write_table(path2, &m, &o, NULL, 0, &hmeta);
	/* a byte or two more per key */
	assert_true(hmeta.file_size > meta.file_size);
	assert_true(hmeta.file_size < meta.file_size + meta.file_size / 10);

	struct sst_reader *plain = open_table(fx->path), *hashed = open_table(path2);
	check_meta_model(sst_reader_meta(hashed), &m);
	/* exactly the same answers, found without the binary search for most */
	blk_test_counts(&c0);
	run_gets(plain, plain, &m);
	blk_test_counts(&c1);
	count_diff(&plain_cnt, &c0, &c1);
	run_gets(plain, hashed, &m);
	blk_test_counts(&c0);
	count_diff(&hash_cnt, &c1, &c0);
	/* the plain table made no hashed lookup; the second run made the plain table's again */
	assert_int_equal(plain_cnt.hash_jump + plain_cnt.hash_absent + plain_cnt.hash_collision, 0);
	uint64_t lookups = hash_cnt.hash_jump + hash_cnt.hash_absent + hash_cnt.hash_collision;
	fprintf(stderr, "# %llu block lookups: %llu jumps, %llu absent, %llu collisions\n",
		(unsigned long long)lookups, (unsigned long long)hash_cnt.hash_jump,
		(unsigned long long)hash_cnt.hash_absent,
		(unsigned long long)hash_cnt.hash_collision);
	assert_true(lookups > 3 * m.n);
	assert_true(hash_cnt.hash_collision * 2 < lookups);
	assert_true(hash_cnt.hash_absent > m.n / 4);
	/* per get: the index seek, and the data block's binary search only where the plain table
	 * made one and the hash index fell back */
	assert_int_equal((int64_t)hash_cnt.binary_search - (int64_t)plain_cnt.binary_search,
			 (int64_t)hash_cnt.hash_collision - (int64_t)lookups);
	check_gets(hashed, &m, 1);
	check_absent(hashed, 3000);
	check_iter_full(hashed, &m);
	check_seeks(hashed, &m, 3000, &rs);

	/* through caches, a tiny one too, and with a partitioned index */
	struct blk_cache *big, *tiny;
	struct sst_reader *r;
	assert_int_equal(blk_cache_new(8 << 20, BLK_CACHE_SHARD_BITS, &big), FR_OK);
	assert_int_equal(blk_cache_new(8 << 10, 1, &tiny), FR_OK);
	for (int k = 0; k < 4; k++) {
		struct sst_read_env env = {k & 1 ? tiny : big, NULL};
		if (k == 2) {
			/* new caches: the old ones hold the blocks of the table replaced */
			blk_cache_free(tiny);
			blk_cache_free(big);
			assert_int_equal(blk_cache_new(8 << 20, BLK_CACHE_SHARD_BITS, &big), FR_OK);
			assert_int_equal(blk_cache_new(8 << 10, 1, &tiny), FR_OK);
			env.cache = big;
			o.index_partition_size = 1024;
			sst_meta_fini(&hmeta);
			unlink(path2);
			write_table(path2, &m, &o, NULL, 0, &hmeta);
			size_t len;
			struct part_info parts[512];
			uint8_t *file = read_all(path2, &len);
			assert_true(list_parts(file, len, parts, 512) > 4);
			free(file);
		}
		assert_int_equal(sst_reader_open_env(io_posix(), path2, 42, &env, &r, &err), FR_OK);
		run_gets(plain, r, &m);
		check_iter_full(r, &m);
		check_seeks(r, &m, 1000, &rs);
		sst_reader_unref(r);
	}
	blk_cache_free(tiny);
	blk_cache_free(big);

	/* blocks of one entry each */
	o.block_size = 1;
	o.index_partition_size = 0;
	sst_meta_fini(&hmeta);
	unlink(path2);
	write_table(path2, &m, &o, NULL, 0, &hmeta);
	r = open_table(path2);
	blk_test_counts(&c0);
	run_gets(plain, r, &m);
	blk_test_counts(&c1);
	assert_true(c1.hash_jump - c0.hash_jump > m.n);
	check_iter_full(r, &m);
	sst_reader_unref(r);

	sst_reader_unref(plain);
	sst_reader_unref(hashed);
	sst_meta_fini(&meta);
	sst_meta_fini(&hmeta);
	model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sst_roundtrip_100k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_compression, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_slab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_range_dels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_properties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_corrupt_data_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_corrupt_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_corrupt_meta_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_corrupt_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_writer_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_io_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_concurrent_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_env_same_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_env_no_private_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_env_no_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_env_corrupt_data_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_golden_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_version_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_partitioned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_partition_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_hash_index, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
