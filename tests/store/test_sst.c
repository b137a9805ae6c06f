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
	tu_rmtree(fx->dir);
	free(fx->dir);
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

/* 10k versions of one key in 1 KiB blocks: the versions span many blocks. */
static void test_sst_slab(void **state)
{
	struct fixture *fx = *state;
	uint64_t rs = tu_seed();
	struct model m = {0};
	struct sst_options o;
	struct sst_meta meta;
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
	write_table(fx->path, &m, &o, NULL, 0, &meta);
	assert_int_equal(meta.entry_cnt, 10006);

	struct sst_reader *r = open_table(fx->path);
	const struct ent *slab = &m.e[3]; /* slab versions are m.e[3 .. 10003) */
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
	expect_get(r, (const uint8_t *)"sla", 3, 250000, &m.e[1]);
	expect_get(r, (const uint8_t *)"slac", 4, 99999, NULL);
	expect_get(r, (const uint8_t *)"slaa", 4, SEQNO_MAX, NULL);
	check_iter_full(r, &m);
	check_seeks(r, &m, 5000, &rs);
	sst_reader_unref(r);
	sst_meta_fini(&meta);
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
	assert_int_equal(ft->version, SST_FORMAT_VERSION);
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

/* Every byte of a small table is covered by a checksum: any flip must be reported. */
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
	size_t len;
	uint8_t *good = read_all(fx->path, &len);
	assert_int_equal(probe_table(fx->path, &m), FR_OK);
	assert_int_equal(probe_table_cached(fx->path, &m), FR_OK);
	for (size_t off = 0; off < len; off++) {
		uint8_t mask = (uint8_t)(1u << tu_rand_below(&rs, 8));
		good[off] ^= mask;
		write_all(fx->path, good, len);
		good[off] ^= mask;
		if (probe_table(fx->path, &m) != FR_CORRUPTION)
			fail_msg("flipping byte %zu of %zu went unnoticed", off, len);
		if (probe_table_cached(fx->path, &m) != FR_CORRUPTION)
			fail_msg("flipping byte %zu of %zu went unnoticed with a cache", off, len);
	}
	free(good);
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
	/* a later format version, with a valid footer checksum */
	uint8_t *footer = good + len - SST_FOOTER_LEN, saved[SST_FOOTER_LEN];
	memcpy(saved, footer, SST_FOOTER_LEN);
	enc_u32(footer + SST_FOOTER_VERSION_OFF, 2);
	enc_u64(footer + SST_FOOTER_CHECKSUM_OFF, fr_xxh3(footer, SST_FOOTER_CHECKSUM_OFF));
	write_all(fx->path, good, len);
	assert_int_equal(sst_reader_open(io_posix(), fx->path, 42, &r, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "unsupported table format version 2"));
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
	assert_int_equal(s3.hits - s2.hits, blocks + 1); /* the data blocks and the index */
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
