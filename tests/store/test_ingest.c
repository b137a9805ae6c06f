/* SPDX-License-Identifier: MIT */
/*
 * test_ingest.c - bulk ingestion (fr_ingest_*): the table reader's global seqno, the manifest
 * record that carries it, and through the public interface: visibility at one seqno (gets,
 * iterators, snapshots, reopen), shadowing in both directions, compaction, refused input, the
 * level the tables land in, a keyspace in a shared tree, crashes before and after finish, and
 * a random model check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/sync.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "db/db.h"
#include "fractio.h"
#include "io/io.h"
#include "sst/sst.h"
#include "testutil.h"
#include "testutil_db.h"
#include "version/version.h"

static fr_error E;

#define OK(call) TU_OK(call, E)

/* this file's names for the shared fixture's helpers (testutil_db.h) */
#define teardown tu_fx_teardown
#define fx_open tu_fx_open
#define fx_close tu_fx_close

static int setup(void **state)
{
	*state = tu_fx_new("ingest", false);
	return *state ? 0 : -1;
}

static int setup_inline(void **state)
{
	*state = tu_fx_new("ingest", true);
	return *state ? 0 : -1;
}

static fr_keyspace *fx_ks(struct tu_fx *f, const char *name, uint64_t target, const char *tree)
{
	fr_keyspace_options o;
	fr_keyspace *ks;
	fr_keyspace_options_init(&o);
	if (target)
		o.table_target_size = target;
	o.tree = tree;
	OK(fr_keyspace_open(f->db, name, &o, &ks, &E));
	return ks;
}

static const char *key_of(char *buf, int i)
{
	snprintf(buf, 32, "key%06d", i);
	return buf;
}

static void put(fr_keyspace *ks, int i, const char *val)
{
	char k[32];
	key_of(k, i);
	OK(fr_put(ks, k, strlen(k), val, strlen(val), &E));
}

/* Expects key i to read as val (NULL: absent), at snapshot s (NULL: now). */
static void expect_at(fr_keyspace *ks, const fr_snapshot *s, int i, const char *val)
{
	char k[32];
	void *v = NULL;
	size_t n = 0;
	key_of(k, i);
	fr_status rc = s ? fr_snapshot_get(s, ks, k, strlen(k), &v, &n, &E)
			 : fr_get(ks, k, strlen(k), &v, &n, &E);
	if (!val) {
		if (rc != FR_NOT_FOUND)
			fail_msg("%s: want absent, got %s (%.*s)", k, fr_status_str(rc),
				 rc ? 0 : (int)n, rc ? "" : (char *)v);
	} else {
		if (rc != FR_OK)
			fail_msg("%s: want %s, got %s: %s", k, val, fr_status_str(rc), E.msg);
		if (n != strlen(val) || memcmp(v, val, n))
			fail_msg("%s: want %s, got %.*s", k, val, (int)n, (char *)v);
	}
	fr_free(v);
}

static void expect(fr_keyspace *ks, int i, const char *val)
{
	expect_at(ks, NULL, i, val);
}

static size_t sst_files(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/tables", dir);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		n += len > 4 && !strcmp(e->d_name + len - 4, ".sst");
	}
	closedir(d);
	return n;
}

static uint64_t table_cnt(fr_db *db)
{
	fr_db_stats st;
	OK(fr_db_stats_get(db, &st, &E));
	return st.table_cnt;
}

/* Ingests keys lo, lo+step, ... < hi with value "<tag>-<i>" (tombstones where del(i)). */
static fr_seqno ingest_range(fr_keyspace *ks, int lo, int hi, int step, const char *tag,
			     bool (*del)(int i))
{
	fr_ingest *in;
	char k[32], v[64];
	fr_seqno s = 0;
	OK(fr_ingest_start(ks, &in, &E));
	for (int i = lo; i < hi; i += step) {
		key_of(k, i);
		if (del && del(i)) {
			OK(fr_ingest_remove(in, k, strlen(k), &E));
		} else {
			snprintf(v, sizeof(v), "%s-%d", tag, i);
			OK(fr_ingest_put(in, k, strlen(k), v, strlen(v), &E));
		}
	}
	OK(fr_ingest_finish(in, &s, &E));
	return s;
}

/* Checks an iterator over [lo, hi) keys (-1: unbounded) against key i -> "tag-i" for i in
 * want[], in the iterator's direction. */
static void expect_iter(fr_keyspace *ks, const fr_snapshot *s, int lo, int hi, bool reverse,
			const int *want, size_t cnt, const char *tag)
{
	char lk[32], hk[32], v[64];
	fr_iter_options o;
	fr_iter *it;
	memset(&o, 0, sizeof(o));
	if (lo >= 0) {
		o.lower = key_of(lk, lo);
		o.lower_len = strlen(lk);
	}
	if (hi >= 0) {
		o.upper = key_of(hk, hi);
		o.upper_len = strlen(hk);
	}
	o.reverse = reverse;
	o.snapshot = s;
	OK(fr_iter_open(ks, &o, &it, &E));
	for (size_t j = 0; j < cnt; j++) {
		size_t idx = reverse ? cnt - 1 - j : j;
		char k[32];
		size_t kl, vl;
		if (!fr_iter_valid(it))
			fail_msg("iterator ended after %zu of %zu", j, cnt);
		const void *kp = fr_iter_key(it, &kl);
		const void *vp = fr_iter_value(it, &vl);
		key_of(k, want[idx]);
		snprintf(v, sizeof(v), "%s-%d", tag, want[idx]);
		if (kl != strlen(k) || memcmp(kp, k, kl))
			fail_msg("entry %zu: key %.*s, want %s", j, (int)kl, (const char *)kp, k);
		if (vl != strlen(v) || memcmp(vp, v, vl))
			fail_msg("entry %zu: value %.*s, want %s", j, (int)vl, (const char *)vp, v);
		OK(fr_iter_next(it, &E));
	}
	assert_false(fr_iter_valid(it));
	fr_iter_close(it);
}

/* ---- the table reader's global seqno and the manifest record ---- */

static void test_ingest_reader_global_seqno(void **state)
{
	struct tu_fx *f = *state;
	char path[PATH_MAX];
	struct sst_options so;
	struct sst_writer *w;
	struct sst_meta meta;
	uint8_t ik[64];
	snprintf(path, sizeof(path), "%s/t.sst", f->dir);
	sst_options_default(&so);
	so.block_size = 256; /* many blocks */
	OK(sst_writer_open(io_posix(), path, 1, &so, &w, &E));
	for (int i = 0; i < 500; i++) {
		char k[32];
		key_of(k, 2 * i);
		ikey_encode(ik, k, strlen(k), 0, i % 7 ? VT_PUT : VT_DEL);
		OK(sst_writer_add(w, ik, strlen(k) + IKEY_TRAILER_LEN, k, i % 7 ? strlen(k) : 0,
				  &E));
	}
	OK(sst_writer_finish(w, &meta, &E));
	assert_int_equal(meta.max_seqno, 0);
	sst_meta_fini(&meta);

	struct sst_reader *r;
	OK(sst_reader_open(io_posix(), path, 1, &r, &E));
	assert_int_equal(sst_reader_set_global_seqno(r, 0, &E), FR_CORRUPTION);
	OK(sst_reader_set_global_seqno(r, 40, &E));
	assert_int_equal(sst_reader_meta(r)->min_seqno, 40);
	assert_int_equal(sst_reader_meta(r)->max_seqno, 40);
	for (int i = 0; i < 500; i += 13) {
		char k[32];
		uint8_t type;
		uint64_t seq;
		void *v;
		size_t vl;
		key_of(k, 2 * i);
		assert_int_equal(sst_reader_get(r, k, strlen(k), 39, &type, &seq, &v, &vl, &E),
				 FR_NOT_FOUND);
		OK(sst_reader_get(r, k, strlen(k), 40, &type, &seq, &v, &vl, &E));
		assert_int_equal(seq, 40);
		assert_int_equal(type, i % 7 ? VT_PUT : VT_DEL);
		fr_free(v);
	}
	struct kv_iter *it;
	OK(sst_iter_new(r, &it, &E));
	int n = 0;
	for (kv_seek_first(it); it->valid; kv_next(it), n++) {
		assert_int_equal(ikey_seqno(it->key, it->key_len), 40);
		assert_int_equal(ikey_type(it->key, it->key_len), n % 7 ? VT_PUT : VT_DEL);
	}
	assert_int_equal(it->status, FR_OK);
	assert_int_equal(n, 500);
	n = 0;
	for (kv_seek_last(it); it->valid; kv_prev(it))
		n++;
	assert_int_equal(n, 500);
	/* seeks: a target below the global seqno steps over the key, at or above it finds it */
	for (int i = 0; i < 500; i += 11) {
		char k[32], nk[32];
		key_of(k, 2 * i);
		key_of(nk, 2 * i + 2);
		size_t kl = strlen(k);
		ikey_encode(ik, k, kl, 40, VT_SEEK);
		kv_seek(it, ik, kl + IKEY_TRAILER_LEN);
		assert_true(it->valid);
		assert_memory_equal(it->key, k, kl);
		ikey_encode(ik, k, kl, 39, VT_SEEK);
		kv_seek(it, ik, kl + IKEY_TRAILER_LEN);
		if (i == 499) {
			assert_false(it->valid);
		} else {
			assert_true(it->valid);
			assert_memory_equal(it->key, nk, kl);
		}
		/* seek_prev to (k, 39): the entry (k, 40) sorts before it and is the answer */
		kv_seek_prev(it, ik, kl + IKEY_TRAILER_LEN);
		assert_true(it->valid);
		assert_memory_equal(it->key, k, kl);
		assert_int_equal(ikey_seqno(it->key, it->key_len), 40);
		/* seek_prev to (k, 41): (k, 40) sorts after it; the previous key is the answer */
		ikey_encode(ik, k, kl, 41, VT_SEEK);
		kv_seek_prev(it, ik, kl + IKEY_TRAILER_LEN);
		if (i == 0) {
			assert_false(it->valid);
		} else {
			char pk[32];
			key_of(pk, 2 * i - 2);
			assert_true(it->valid);
			assert_memory_equal(it->key, pk, kl);
		}
	}
	assert_int_equal(it->status, FR_OK);
	kv_free(it);
	sst_reader_unref(r);

	/* a table holding real seqnos cannot be given a global one */
	snprintf(path, sizeof(path), "%s/u.sst", f->dir);
	OK(sst_writer_open(io_posix(), path, 2, &so, &w, &E));
	ikey_encode(ik, "a", 1, 5, VT_PUT);
	OK(sst_writer_add(w, ik, 1 + IKEY_TRAILER_LEN, "x", 1, &E));
	OK(sst_writer_finish(w, &meta, &E));
	sst_meta_fini(&meta);
	OK(sst_reader_open(io_posix(), path, 2, &r, &E));
	assert_int_equal(sst_reader_set_global_seqno(r, 9, &E), FR_CORRUPTION);
	sst_reader_unref(r);
}

static void test_ingest_vedit_global_seqno(void **state)
{
	(void)state;
	struct vedit e, d;
	struct sst_meta m;
	struct fr_buf b;
	memset(&m, 0, sizeof(m));
	m.id = 12;
	m.file_size = 4096;
	m.entry_cnt = 3;
	m.min_seqno = m.max_seqno = m.global_seqno = 77;
	m.smallest = (uint8_t *)"a";
	m.smallest_len = 1;
	m.largest = (uint8_t *)"z";
	m.largest_len = 1;
	vedit_init(&e);
	OK(vedit_add_table(&e, 3, 6, &m));
	m.id = 13;
	m.min_seqno = 1;
	m.max_seqno = 5;
	m.global_seqno = 0;
	OK(vedit_add_table(&e, 3, 5, &m));
	buf_init(&b);
	OK(vedit_encode(&e, &b));
	assert_int_equal(b.data[0], 11); /* tag 11 for the ingested table */
	OK(vedit_decode(b.data, b.len, &d, "test", 0, &E));
	assert_int_equal(d.add_cnt, 2);
	assert_int_equal(d.adds[0].meta.global_seqno, 77);
	assert_int_equal(d.adds[0].meta.max_seqno, 77);
	assert_int_equal(d.adds[0].level, 6);
	assert_int_equal(d.adds[1].meta.global_seqno, 0);
	assert_int_equal(d.adds[1].meta.max_seqno, 5);
	vedit_fini(&d);
	/* the bytes on disk (FORMAT.md §5.2): tag 11, tree 3, level 6, id 12, size 4096, 3
	 * entries, 0 tombstones, 0 range tombstones, seqnos 77..77, "a".."z", created 0, global
	 * seqno 77; today's encoder writes exactly these */
	static const uint8_t golden[] = {0x0b, 0x03, 0x06, 0x0c, 0x80, 0x20, 0x03, 0x00, 0x00,
					 0x4d, 0x4d, 0x01, 0x61, 0x01, 0x7a, 0x00, 0x4d};
	OK(vedit_decode(golden, sizeof(golden), &d, "golden", 0, &E));
	assert_int_equal(d.add_cnt, 1);
	assert_int_equal(d.adds[0].tree_id, 3);
	assert_int_equal(d.adds[0].meta.id, 12);
	assert_int_equal(d.adds[0].meta.file_size, 4096);
	assert_int_equal(d.adds[0].meta.global_seqno, 77);
	assert_memory_equal(d.adds[0].meta.largest, "z", 1);
	buf_clear(&b);
	OK(vedit_encode(&d, &b));
	assert_int_equal(b.len, sizeof(golden));
	assert_memory_equal(b.data, golden, sizeof(golden));
	vedit_fini(&d);
	/* truncated before the global seqno */
	assert_int_equal(vedit_decode(golden, sizeof(golden) - 1, &d, "golden", 0, &E),
			 FR_CORRUPTION);
	/* a global seqno that disagrees with the table's seqno range is corruption */
	e.adds[0].meta.max_seqno = 78;
	buf_clear(&b);
	OK(vedit_encode(&e, &b));
	assert_int_equal(vedit_decode(b.data, b.len, &d, "test", 0, &E), FR_CORRUPTION);
	vedit_fini(&e);
	buf_fini(&b);
}

/* ---- through the public interface ---- */

static int evens[500];

static void test_ingest_visible(void **state)
{
	struct tu_fx *f = *state;
	fx_open(f);
	fr_keyspace *ks = fx_ks(f, "a", 0, NULL);
	put(ks, 3, "old-3"); /* odd keys are not ingested */
	fr_snapshot *before, *during, *after;
	OK(fr_snapshot_open(f->db, &before, &E));
	fr_ingest *in;
	OK(fr_ingest_start(ks, &in, &E));
	char k[32], v[64];
	for (int i = 0; i < 1000; i += 2) {
		key_of(k, i);
		snprintf(v, sizeof(v), "ing-%d", i);
		OK(fr_ingest_put(in, k, strlen(k), v, strlen(v), &E));
		if (i == 500)
			OK(fr_snapshot_open(f->db, &during, &E));
	}
	expect(ks, 0, NULL); /* nothing before finish */
	fr_seqno s = 0, seen = fr_db_seqno(f->db);
	OK(fr_ingest_finish(in, &s, &E));
	assert_int_equal(s, seen + 1);
	assert_int_equal(fr_db_seqno(f->db), s);
	OK(fr_remove(ks, "key000003", 9, &E));
	OK(fr_snapshot_open(f->db, &after, &E));
	for (int i = 0; i < 500; i++)
		evens[i] = 2 * i;
	for (int i = 0; i < 1000; i++) {
		snprintf(v, sizeof(v), "ing-%d", i);
		const char *want = i % 2 ? NULL : v;
		expect(ks, i, want);
		expect_at(ks, after, i, want);
		expect_at(ks, before, i, i == 3 ? "old-3" : NULL);
		expect_at(ks, during, i, i == 3 ? "old-3" : NULL);
	}
	expect_iter(ks, NULL, -1, -1, false, evens, 500, "ing");
	expect_iter(ks, NULL, -1, -1, true, evens, 500, "ing");
	expect_iter(ks, NULL, 100, 201, false, evens + 50, 51, "ing");
	expect_iter(ks, NULL, 101, 200, true, evens + 51, 49, "ing");
	expect_iter(ks, after, 0, 1000, false, evens, 500, "ing");
	expect_iter(ks, before, 4, -1, false, NULL, 0, "ing");
	expect_iter(ks, during, 4, -1, true, NULL, 0, "ing");
	/* a seek lands on ingested keys */
	fr_iter *it;
	OK(fr_iter_open(ks, NULL, &it, &E));
	OK(fr_iter_seek(it, "key000101", 9, &E));
	assert_true(fr_iter_valid(it));
	size_t kl;
	assert_memory_equal(fr_iter_key(it, &kl), "key000102", 9);
	fr_iter_close(it);
	fr_snapshot_close(before);
	fr_snapshot_close(during);
	fr_snapshot_close(after);
	fr_keyspace_close(ks);

	/* reopened: the same, and the next commit comes after the ingestion */
	fx_close(f);
	fx_open(f);
	ks = fx_ks(f, "a", 0, NULL);
	assert_true(fr_db_seqno(f->db) >= s);
	OK(fr_snapshot_open(f->db, &after, &E));
	for (int i = 0; i < 1000; i++) {
		snprintf(v, sizeof(v), "ing-%d", i);
		expect(ks, i, i % 2 ? NULL : v);
		expect_at(ks, after, i, i % 2 ? NULL : v);
	}
	expect_iter(ks, after, -1, -1, true, evens, 500, "ing");
	fr_batch *b;
	fr_seqno s2;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_put(b, ks, "key000000", 9, "new", 3));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, &s2, &E));
	fr_batch_free(b);
	assert_true(s2 > s);
	expect(ks, 0, "new");
	expect_at(ks, after, 0, "ing-0");
	fr_snapshot_close(after);
	fr_keyspace_close(ks);
}

static bool del_mod3(int i)
{
	return i % 3 == 0;
}

/* Keys 0..299: 0..99 in a table, 100..199 in the memtable, 200..299 never written. The
 * ingestion puts or deletes (every third) keys 50..249; later writes overwrite 60..69. */
static void check_shadowing(fr_keyspace *ks)
{
	char v[64];
	for (int i = 0; i < 300; i++) {
		const char *want;
		if (i >= 60 && i < 70) {
			snprintf(v, sizeof(v), "late-%d", i);
			want = v;
		} else if (i >= 50 && i < 250) {
			snprintf(v, sizeof(v), "ing-%d", i);
			want = del_mod3(i) ? NULL : v;
		} else if (i < 200) {
			snprintf(v, sizeof(v), "%s-%d", i < 100 ? "tab" : "mem", i);
			want = v;
		} else {
			want = NULL;
		}
		expect(ks, i, want);
	}
}

static void shadowing(struct tu_fx *f)
{
	fx_open(f);
	fr_keyspace *ks = fx_ks(f, "a", 0, NULL);
	char v[64];
	for (int i = 0; i < 200; i++) {
		snprintf(v, sizeof(v), "%s-%d", i < 100 ? "tab" : "mem", i);
		put(ks, i, v);
		if (i == 99)
			OK(fr_db_flush(f->db, &E));
	}
	ingest_range(ks, 50, 250, 1, "ing", del_mod3);
	for (int i = 60; i < 70; i++) {
		snprintf(v, sizeof(v), "late-%d", i);
		put(ks, i, v);
	}
	check_shadowing(ks);
	OK(fr_major_compact(ks, &E));
	check_shadowing(ks);
	fr_keyspace_stats st;
	OK(fr_keyspace_stats_get(ks, &st, &E));
	assert_int_equal(st.level_table_cnt[6], st.table_cnt); /* all in the last level */
	fr_keyspace_close(ks);
	fx_close(f);
	fx_open(f);
	ks = fx_ks(f, "a", 0, NULL);
	check_shadowing(ks);
	OK(fr_major_compact(ks, &E));
	check_shadowing(ks);
	fr_keyspace_close(ks);
}

static void test_ingest_shadowing(void **state)
{
	shadowing(*state);
}

static void test_ingest_shadowing_inline(void **state)
{
	shadowing(*state);
}

static void test_ingest_refused(void **state)
{
	struct tu_fx *f = *state;
	fx_open(f);
	fr_keyspace *ks = fx_ks(f, "a", 4096, NULL);
	put(ks, 5, "five");
	OK(fr_db_flush(f->db, &E));
	size_t files = sst_files(f->dir);
	fr_seqno s0 = fr_db_seqno(f->db);
	char k[32];
	const int orders[2][4] = {{1, 2, 4, 3}, {1, 2, 4, 4}}; /* unordered, duplicate */
	for (int c = 0; c < 2; c++) {
		fr_ingest *in;
		OK(fr_ingest_start(ks, &in, &E));
		/* enough before the bad key that several tables are finished already */
		for (int i = 0; i < 1000; i++) {
			key_of(k, 1000 + i);
			OK(fr_ingest_put(in, k, strlen(k), "0123456789abcdef", 16, &E));
		}
		assert_true(sst_files(f->dir) > files + 1);
		for (int j = 0; j < 4; j++) {
			key_of(k, 2000 + orders[c][j]);
			fr_status rc = fr_ingest_put(in, k, strlen(k), "v", 1, &E);
			assert_int_equal(rc, j < 3 ? FR_OK : FR_INVALID);
		}
		/* broken: further keys are refused too, and finish publishes nothing */
		key_of(k, 3000);
		assert_int_equal(fr_ingest_put(in, k, strlen(k), "v", 1, &E), FR_INVALID);
		assert_int_equal(fr_ingest_remove(in, k, strlen(k), &E), FR_INVALID);
		fr_seqno s = 99;
		assert_int_equal(fr_ingest_finish(in, &s, &E), FR_INVALID);
		assert_int_equal(s, 99);
		assert_int_equal(sst_files(f->dir), files);
		assert_int_equal(fr_db_seqno(f->db), s0);
		expect(ks, 1000, NULL);
		expect(ks, 2001, NULL);
	}
	/* an empty ingestion publishes nothing and takes no seqno */
	fr_ingest *in;
	fr_seqno s = 0;
	OK(fr_ingest_start(ks, &in, &E));
	OK(fr_ingest_finish(in, &s, &E));
	assert_int_equal(s, s0);
	assert_int_equal(fr_db_seqno(f->db), s0);
	assert_int_equal(sst_files(f->dir), files);
	/* abort deletes what was written */
	OK(fr_ingest_start(ks, &in, &E));
	for (int i = 0; i < 1000; i++) {
		key_of(k, 1000 + i);
		OK(fr_ingest_put(in, k, strlen(k), "0123456789abcdef", 16, &E));
	}
	assert_true(sst_files(f->dir) > files);
	fr_ingest_abort(in);
	fr_ingest_abort(NULL);
	assert_int_equal(sst_files(f->dir), files);
	expect(ks, 1000, NULL);
	expect(ks, 5, "five");
	/* bad arguments */
	assert_int_equal(fr_ingest_start(NULL, &in, &E), FR_INVALID);
	assert_int_equal(fr_ingest_start(ks, NULL, &E), FR_INVALID);
	assert_int_equal(fr_ingest_put(NULL, "a", 1, "b", 1, &E), FR_INVALID);
	assert_int_equal(fr_ingest_finish(NULL, NULL, &E), FR_INVALID);
	/* a keyspace deleted before finish: nothing published, the files go */
	fr_keyspace *gone = fx_ks(f, "gone", 4096, NULL);
	OK(fr_ingest_start(gone, &in, &E));
	for (int i = 0; i < 1000; i++) {
		key_of(k, i);
		OK(fr_ingest_put(in, k, strlen(k), "0123456789abcdef", 16, &E));
	}
	OK(fr_keyspace_delete(f->db, "gone", &E));
	assert_int_equal(fr_ingest_finish(in, NULL, &E), FR_NOT_FOUND);
	assert_int_equal(sst_files(f->dir), files);
	fr_keyspace_close(gone);
	fr_keyspace_close(ks);
	/* nothing left behind across a reopen either */
	fx_close(f);
	fx_open(f);
	assert_int_equal(sst_files(f->dir), table_cnt(f->db));
	/* a read-only database refuses an ingestion */
	fx_close(f);
	f->o.read_only = true;
	fx_open(f);
	ks = fx_ks(f, "a", 0, NULL);
	assert_int_equal(fr_ingest_start(ks, &in, &E), FR_INVALID);
	assert_null(in);
	fr_keyspace_close(ks);
}

static void test_ingest_shared_tree(void **state)
{
	struct tu_fx *f = *state;
	fx_open(f);
	fr_keyspace *a = fx_ks(f, "a", 0, "shared");
	fr_keyspace *b = fx_ks(f, "b", 0, "shared");
	fr_keyspace *c = fx_ks(f, "c", 0, "shared");
	char v[64];
	for (int i = 0; i < 100; i++) {
		snprintf(v, sizeof(v), "a-%d", i);
		put(a, i, v);
		snprintf(v, sizeof(v), "c-%d", i);
		put(c, i, v);
		snprintf(v, sizeof(v), "b-%d", i);
		put(b, 2 * i + 1, v); /* odd keys, not ingested */
	}
	OK(fr_db_flush(f->db, &E));
	ingest_range(b, 0, 200, 2, "ing", NULL);
	int want[100];
	for (int i = 0; i < 100; i++)
		want[i] = i;
	expect_iter(a, NULL, -1, -1, false, want, 100, "a");
	expect_iter(c, NULL, -1, -1, true, want, 100, "c");
	for (int i = 0; i < 200; i++) {
		if (i % 2)
			snprintf(v, sizeof(v), "b-%d", i / 2);
		else
			snprintf(v, sizeof(v), "ing-%d", i);
		expect(b, i, v);
	}
	expect(b, 200, NULL);
	OK(fr_major_compact(b, &E));
	expect_iter(a, NULL, -1, -1, true, want, 100, "a");
	expect_iter(c, NULL, -1, -1, false, want, 100, "c");
	expect(b, 0, "ing-0");
	expect(b, 1, "b-0");
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	fr_keyspace_close(c);
}

static void level_counts(fr_keyspace *ks, uint64_t *cnt)
{
	fr_keyspace_stats st;
	OK(fr_keyspace_stats_get(ks, &st, &E));
	for (int l = 0; l < FR_LEVEL_CNT; l++)
		cnt[l] = st.level_table_cnt[l];
}

static void test_ingest_levels(void **state)
{
	struct tu_fx *f = *state;
	fx_open(f);
	fr_keyspace *ks = fx_ks(f, "a", 4096, NULL);
	uint64_t c[FR_LEVEL_CNT];
	/* a fresh tree: every table in the last level, disjoint */
	ingest_range(ks, 0, 2000, 1, "one", NULL);
	level_counts(ks, c);
	assert_true(c[6] > 5);
	assert_int_equal(c[0] + c[1] + c[2] + c[3] + c[4] + c[5], 0);
	uint64_t first = c[6];
	/* a disjoint range joins them */
	ingest_range(ks, 3000, 4000, 1, "two", NULL);
	level_counts(ks, c);
	assert_true(c[6] > first);
	first = c[6];
	/* overlapping the last level only: one level up */
	ingest_range(ks, 1000, 1500, 1, "three", NULL);
	level_counts(ks, c);
	assert_int_equal(c[6], first);
	assert_true(c[5] > 1);
	uint64_t l5 = c[5];
	/* overlapping an L0 table: L0 */
	put(ks, 1200, "mem");
	OK(fr_db_flush(f->db, &E));
	level_counts(ks, c);
	uint64_t l0 = c[0];
	assert_true(l0 >= 1);
	ingest_range(ks, 1100, 1300, 1, "four", NULL);
	level_counts(ks, c);
	assert_true(c[0] > l0);
	assert_int_equal(c[5], l5);
	char v[64];
	for (int i = 0; i < 4000; i += 7) {
		const char *tag = i >= 1100 && i < 1300   ? "four"
				  : i >= 1000 && i < 1500 ? "three"
				  : i < 2000		  ? "one"
				  : i >= 3000		  ? "two"
							  : NULL;
		snprintf(v, sizeof(v), "%s-%d", tag ? tag : "", i);
		expect(ks, i, tag ? v : NULL);
	}
	OK(fr_major_compact(ks, &E));
	for (int i = 0; i < 4000; i += 7) {
		const char *tag = i >= 1100 && i < 1300   ? "four"
				  : i >= 1000 && i < 1500 ? "three"
				  : i < 2000		  ? "one"
				  : i >= 3000		  ? "two"
							  : NULL;
		snprintf(v, sizeof(v), "%s-%d", tag ? tag : "", i);
		expect(ks, i, tag ? v : NULL);
	}
	fr_keyspace_close(ks);
}

/* ---- crashes ---- */

/* The child: opens the database, ingests keys 0..n-1 in small tables, finishes if told to,
 * reports (the seqno, or 0 before finish) through fd and waits to be killed. */
static void crash_child(const char *dir, int n, bool finish, int fd)
{
	fr_db_options o;
	fr_db *db;
	fr_keyspace *ks;
	fr_keyspace_options ko;
	fr_ingest *in;
	char k[32];
	uint64_t s = 0;
	fr_db_options_init(&o);
	fr_keyspace_options_init(&ko);
	ko.table_target_size = 4096;
	if (fr_db_open(dir, &o, &db, NULL) || fr_keyspace_open(db, "a", &ko, &ks, NULL) ||
	    fr_ingest_start(ks, &in, NULL))
		_exit(3);
	for (int i = 0; i < n; i++) {
		key_of(k, i);
		if (fr_ingest_put(in, k, strlen(k), "some value bytes", 16, NULL))
			_exit(3);
	}
	if (finish && fr_ingest_finish(in, &s, NULL))
		_exit(3);
	/* a commit after the ingestion, journaled only */
	key_of(k, 999998);
	if (finish && fr_put(ks, k, strlen(k), "after", 5, NULL))
		_exit(3);
	if (write(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
		_exit(3);
	for (;;)
		pause();
}

static void crash(struct tu_fx *f, bool finish)
{
	/* the keyspace exists before, with a key of its own */
	fx_open(f);
	fr_keyspace *ks = fx_ks(f, "a", 4096, NULL);
	put(ks, 999999, "keep");
	OK(fr_db_persist(f->db, FR_PERSIST_SYNC_DATA, &E));
	fr_keyspace_close(ks);
	fx_close(f);
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		crash_child(f->dir, 3000, finish, p[1]);
	}
	close(p[1]);
	uint64_t s = UINT64_MAX;
	assert_int_equal(read(p[0], &s, sizeof(s)), (ssize_t)sizeof(s));
	close(p[0]);
	kill(pid, SIGKILL);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws));
	if (!finish)
		assert_true(sst_files(f->dir) > 2); /* the child had written tables */
	fx_open(f);
	ks = fx_ks(f, "a", 0, NULL);
	expect(ks, 999999, "keep");
	for (int i = 0; i < 3000; i += 17)
		expect(ks, i, finish ? "some value bytes" : NULL);
	expect(ks, 999998, finish ? "after" : NULL);
	if (finish) {
		assert_true(fr_db_seqno(f->db) > s);
		uint64_t n;
		OK(fr_len(ks, &n, &E));
		assert_int_equal(n, 3002);
	}
	/* orphans are gone: every file on disk is a table of the version */
	assert_int_equal(sst_files(f->dir), table_cnt(f->db));
	fr_keyspace_close(ks);
}

static void test_ingest_crash_before_finish(void **state)
{
	crash(*state, false);
}

static void test_ingest_crash_after_finish(void **state)
{
	crash(*state, true);
}

/* ---- concurrency ---- */

#define CONC_KEYS 1000
#define CONC_ROUNDS 25

struct conc {
	fr_db *db;
	fr_keyspace *ks;
	volatile int done; /* set by the ingester when it has finished (read by the others) */
	pthread_mutex_t mu;
	int failures;
	char why[256];
};

static void conc_fail(struct conc *c, const char *fmt, int a, int b)
{
	pthread_mutex_lock(&c->mu);
	if (!c->failures++)
		snprintf(c->why, sizeof(c->why), fmt, a, b);
	pthread_mutex_unlock(&c->mu);
}

static bool conc_done(struct conc *c)
{
	return __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
}

/* The generation of a value "gen-NNNNNN" (not NUL-terminated), -1 for anything else. */
static int gen_of(const void *v, size_t n)
{
	const char *p = v;
	int g = 0;
	if (!p || n != 10 || memcmp(p, "gen-", 4))
		return -1;
	for (size_t i = 4; i < n; i++)
		g = g * 10 + (p[i] - '0');
	return g;
}

static void conc_ingest(struct conc *c, int gen)
{
	fr_ingest *in;
	char k[32], v[32];
	fr_error e;
	if (fr_ingest_start(c->ks, &in, &e)) {
		conc_fail(c, "ingest start %d %d", gen, 0);
		return;
	}
	snprintf(v, sizeof(v), "gen-%06d", gen);
	for (int i = 0; i < CONC_KEYS; i++) {
		key_of(k, i);
		if (fr_ingest_put(in, k, strlen(k), v, strlen(v), &e)) {
			fr_ingest_abort(in);
			conc_fail(c, "ingest put %d %d", gen, i);
			return;
		}
	}
	if (fr_ingest_finish(in, NULL, &e))
		conc_fail(c, "ingest finish %d %d", gen, 0);
}

static void *conc_ingester(void *arg)
{
	struct conc *c = arg;
	for (int g = 2; g <= CONC_ROUNDS; g++)
		conc_ingest(c, g);
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *conc_writer(void *arg)
{
	struct conc *c = arg;
	char k[32], v[64];
	memset(v, 'w', sizeof(v));
	for (int i = 0; !conc_done(c); i++) {
		key_of(k, CONC_KEYS + i % 5000);
		if (fr_put(c->ks, k, strlen(k), v, sizeof(v), NULL))
			conc_fail(c, "put %d %d", i, 0);
	}
	return NULL;
}

/* Every snapshot sees one ingestion whole: all keys at the same generation, never older than
 * one seen before. */
static void *conc_reader(void *arg)
{
	struct conc *c = arg;
	int last = 0;
	char hi[32];
	key_of(hi, CONC_KEYS);
	while (!conc_done(c)) {
		fr_snapshot *s;
		fr_iter *it;
		fr_iter_options o;
		if (fr_snapshot_open(c->db, &s, NULL)) {
			conc_fail(c, "snapshot %d %d", last, 0);
			break;
		}
		memset(&o, 0, sizeof(o));
		o.upper = hi;
		o.upper_len = strlen(hi);
		o.snapshot = s;
		if (fr_iter_open(c->ks, &o, &it, NULL)) {
			conc_fail(c, "iter %d %d", last, 0);
			fr_snapshot_close(s);
			break;
		}
		int n = 0, gen = -1;
		for (; fr_iter_valid(it); n++) {
			size_t vl;
			const char *vp = fr_iter_value(it, &vl);
			int g = gen_of(vp, vl);
			if (gen == -1)
				gen = g;
			if (g != gen || g < last)
				conc_fail(c, "a snapshot saw generation %d beside %d", g, gen);
			if (fr_iter_next(it, NULL))
				break;
		}
		fr_iter_close(it);
		if (n != CONC_KEYS)
			conc_fail(c, "a snapshot saw %d keys of %d", n, CONC_KEYS);
		/* a point read at the snapshot agrees */
		char k[32];
		void *v = NULL;
		size_t vl = 0;
		key_of(k, (int)(gen > 0 ? gen * 37 % CONC_KEYS : 0));
		if (fr_snapshot_get(s, c->ks, k, strlen(k), &v, &vl, NULL) || gen_of(v, vl) != gen)
			conc_fail(c, "a snapshot read of generation %d saw %d", gen, gen_of(v, vl));
		fr_free(v);
		fr_snapshot_close(s);
		if (gen > last)
			last = gen;
	}
	return NULL;
}

static void test_ingest_concurrent(void **state)
{
	struct tu_fx *f = *state;
	f->o.memtable_max = 65536;
	fx_open(f);
	struct conc c = {.db = f->db};
	pthread_mutex_init(&c.mu, NULL);
	c.ks = fx_ks(f, "c", 4096, NULL);
	conc_ingest(&c, 1);
	pthread_t t[3];
	assert_int_equal(pthread_create(&t[0], NULL, conc_ingester, &c), 0);
	assert_int_equal(pthread_create(&t[1], NULL, conc_writer, &c), 0);
	assert_int_equal(pthread_create(&t[2], NULL, conc_reader, &c), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	if (c.failures)
		fail_msg("%d failures, the first: %s", c.failures, c.why);
	/* the ingestions met flushes and compactions */
	fr_db_stats st;
	OK(fr_db_wait_idle(f->db, &E));
	OK(fr_db_stats_get(f->db, &st, &E));
	assert_true(st.flushes_done > 0);
	assert_true(st.compactions_done > 0);
	char v[32];
	snprintf(v, sizeof(v), "gen-%06d", CONC_ROUNDS);
	OK(fr_major_compact(c.ks, &E));
	for (int i = 0; i < CONC_KEYS; i += 7)
		expect(c.ks, i, v);
	fr_keyspace_close(c.ks);
	pthread_mutex_destroy(&c.mu);
}

/* A compaction running while an ingestion is published: its inputs (L0 tables on both sides
 * of the ingested range, none overlapping it) merge into an output spanning the range at the
 * level the ingestion would pick from the version alone. The ingestion must wait for it and
 * go above the output. */
static void test_ingest_during_compaction(void **state)
{
	struct tu_fx *f = *state;
	f->o.memtable_max = 64u << 20;
	f->o.write_buffer_max = 256u << 20;
	f->o.worker_threads = 1;
	fx_open(f);
	fr_keyspace *ks = fx_ks(f, "h", 0, NULL);
	fr_db *db = f->db;
	char v[128];
	memset(v, 'x', sizeof(v));
	atomic_store_rel_bool(&db->test_hold_compactions, true);
	for (int t = 0; t < 4; t++) {
		int base = t < 2 ? 0 : 900000;
		for (int i = 0; i < 30000; i++) {
			char k[32];
			key_of(k, base + i);
			OK(fr_put(ks, k, strlen(k), v, sizeof(v), &E));
		}
		OK(fr_db_flush(db, &E));
	}
	uint64_t c[FR_LEVEL_CNT];
	level_counts(ks, c);
	assert_int_equal(c[0], 4);
	fr_ingest *in;
	OK(fr_ingest_start(ks, &in, &E));
	for (int i = 400000; i < 401000; i++) {
		char k[32], iv[32];
		key_of(k, i);
		snprintf(iv, sizeof(iv), "ing-%d", i);
		OK(fr_ingest_put(in, k, strlen(k), iv, strlen(iv), &E));
	}
	/* let the merge of the four L0 tables start, then publish */
	atomic_store_rel_bool(&db->test_hold_compactions, false);
	bool running = false;
	for (int i = 0; i < 20000 && !running; i++) {
		fr_mutex_lock(&db->mu);
		ks->tree->cpt_dirty = true;
		bg_kick(db);
		running = ks->tree->compacting;
		fr_mutex_unlock(&db->mu);
		if (!running)
			usleep(100);
		level_counts(ks, c);
		if (c[0] < 4)
			break; /* it ran and finished already: still a valid, if weaker, run */
	}
	fr_seqno s;
	OK(fr_ingest_finish(in, &s, &E));
	OK(fr_db_wait_idle(db, &E));
	fr_db_stats st;
	OK(fr_db_stats_get(db, &st, &E));
	assert_false(st.poisoned);
	for (int i = 0; i < 30000; i += 101) {
		char k[32];
		void *gv = NULL;
		size_t n;
		key_of(k, 900000 + i);
		OK(fr_get(ks, k, strlen(k), &gv, &n, &E));
		assert_int_equal(n, sizeof(v));
		fr_free(gv);
	}
	for (int i = 400000; i < 401000; i += 7) {
		snprintf(v, sizeof(v), "ing-%d", i);
		expect(ks, i, v);
	}
	fr_keyspace_close(ks);
	fx_close(f);
	fx_open(f); /* the manifest replays: no two tables of a level overlap */
	ks = fx_ks(f, "h", 0, NULL);
	expect(ks, 400000, "ing-400000");
	fr_keyspace_close(ks);
}

/* ---- the model check ---- */

#define MODEL_KEYS 300

struct mval {
	bool present;
	char v[32];
};

static void model_check(fr_keyspace *ks, const struct mval *m, const char *when, int step)
{
	char k[32];
	for (int i = 0; i < MODEL_KEYS; i++) {
		void *v = NULL;
		size_t n = 0;
		key_of(k, i);
		fr_status rc = fr_get(ks, k, strlen(k), &v, &n, &E);
		bool ok = m[i].present ? rc == FR_OK && n == strlen(m[i].v) && !memcmp(v, m[i].v, n)
				       : rc == FR_NOT_FOUND;
		if (!ok)
			fail_msg("step %d (%s): %s: want %s, got %s %.*s", step, when, k,
				 m[i].present ? m[i].v : "absent", fr_status_str(rc),
				 rc ? 0 : (int)n, rc ? "" : (char *)v);
		fr_free(v);
	}
	fr_iter *it;
	OK(fr_iter_open(ks, NULL, &it, &E));
	for (int i = 0; i < MODEL_KEYS; i++) {
		if (!m[i].present)
			continue;
		size_t kl;
		key_of(k, i);
		if (!fr_iter_valid(it))
			fail_msg("step %d (%s): iterator ended before %s", step, when, k);
		const void *kp = fr_iter_key(it, &kl);
		if (kl != strlen(k) || memcmp(kp, k, kl))
			fail_msg("step %d (%s): iterator at %.*s, want %s", step, when, (int)kl,
				 (const char *)kp, k);
		OK(fr_iter_next(it, &E));
	}
	assert_false(fr_iter_valid(it));
	fr_iter_close(it);
}

static void model(struct tu_fx *f)
{
	uint64_t rs = tu_seed();
	struct mval m[MODEL_KEYS];
	memset(m, 0, sizeof(m));
	fx_open(f);
	fr_keyspace *ks = fx_ks(f, "m", 4096, NULL);
	fr_keyspace *other = fx_ks(f, "other", 0, NULL);
	char k[32];
	for (int step = 0; step < 400; step++) {
		uint64_t op = tu_rand_below(&rs, 100);
		if (op < 35) {
			int i = (int)tu_rand_below(&rs, MODEL_KEYS);
			snprintf(m[i].v, sizeof(m[i].v), "p%d", step);
			m[i].present = true;
			put(ks, i, m[i].v);
			if (op < 5)
				put(other, i, "x"); /* another tree's memtable too */
		} else if (op < 50) {
			int i = (int)tu_rand_below(&rs, MODEL_KEYS);
			m[i].present = false;
			key_of(k, i);
			OK(fr_remove(ks, k, strlen(k), &E));
		} else if (op < 80) {
			/* a random sorted run of puts and tombstones */
			int lo = (int)tu_rand_below(&rs, MODEL_KEYS);
			int len = 1 + (int)tu_rand_below(&rs, MODEL_KEYS - lo);
			int step_by = 1 + (int)tu_rand_below(&rs, 4);
			fr_ingest *in;
			OK(fr_ingest_start(ks, &in, &E));
			for (int i = lo; i < lo + len; i += step_by) {
				key_of(k, i);
				if (tu_rand_below(&rs, 5) == 0) {
					m[i].present = false;
					OK(fr_ingest_remove(in, k, strlen(k), &E));
				} else {
					snprintf(m[i].v, sizeof(m[i].v), "i%d", step);
					m[i].present = true;
					OK(fr_ingest_put(in, k, strlen(k), m[i].v, strlen(m[i].v),
							 &E));
				}
			}
			OK(fr_ingest_finish(in, NULL, &E));
		} else if (op < 88) {
			OK(fr_db_flush(f->db, &E));
		} else if (op < 92) {
			OK(fr_major_compact(ks, &E));
		} else if (op < 96) {
			OK(fr_db_wait_idle(f->db, &E));
		} else {
			fr_keyspace_close(ks);
			fr_keyspace_close(other);
			fx_close(f);
			fx_open(f);
			ks = fx_ks(f, "m", 0, NULL);
			other = fx_ks(f, "other", 0, NULL);
		}
		if (step % 10 == 0)
			model_check(ks, m, "during", step);
	}
	model_check(ks, m, "end", -1);
	OK(fr_major_compact(ks, &E));
	model_check(ks, m, "after a major compaction", -1);
	fr_keyspace_close(ks);
	fr_keyspace_close(other);
}

static void test_ingest_model(void **state)
{
	model(*state);
}

static void test_ingest_model_inline(void **state)
{
	model(*state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ingest_reader_global_seqno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_vedit_global_seqno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_visible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_shadowing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_shadowing_inline, setup_inline,
						teardown),
		cmocka_unit_test_setup_teardown(test_ingest_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_shared_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_levels, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_crash_before_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_crash_after_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_during_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_model_inline, setup_inline, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
