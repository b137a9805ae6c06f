/* SPDX-License-Identifier: MIT */
/*
 * test_kvsep.c - KV separation through the public API: values around the blob threshold read
 * back from memtables, after flush, compaction and reopen, through iterators both ways and
 * snapshots; blob GC brings disk usage back near the live data; a snapshot held across GC
 * keeps its values; a crash during GC loses nothing; a corrupt blob fails only its own keys;
 * orphan blob files go at open; the stats count blob files, bytes and stale bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "fractio.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/io_mem.h"
#include "testutil.h"
#include "testutil_kv.h"

#define THRESHOLD 1024

/* The value of key k at version ver, n bytes: random bytes for odd keys, compressible text for
 * even ones (so blob compression is exercised both ways). */
static void fill(uint8_t *p, size_t n, uint64_t k, uint64_t ver)
{
	if (k % 2) {
		tu_kv_fill_random(p, n, k, ver);
		return;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)('a' + (k + ver + i / 50) % 26);
}

static uint8_t *make_val(size_t n, uint64_t k, uint64_t ver)
{
	uint8_t *p = malloc(n ? n : 1);
	fill(p, n, k, ver);
	return p;
}

static void put(fr_keyspace *ks, uint64_t k, size_t n, uint64_t ver)
{
	char key[16];
	tu_kv_key(key, k);
	uint8_t *v = make_val(n, k, ver);
	fr_error e;
	fr_status rc = fr_put(ks, key, strlen(key), v, n, &e);
	if (rc)
		fail_msg("put: %s", e.msg);
	free(v);
}

static void check_snap(fr_snapshot *s, fr_keyspace *ks, uint64_t k, size_t n, uint64_t ver)
{
	char key[16];
	tu_kv_key(key, k);
	void *v;
	size_t got;
	fr_error e;
	fr_status rc = fr_snapshot_get(s, ks, key, strlen(key), &v, &got, &e);
	if (rc)
		fail_msg("snapshot get %s: %s (%s)", key, fr_status_str(rc), e.msg);
	uint8_t *want = make_val(n, k, ver);
	if (got != n || memcmp(v, want, n))
		fail_msg("snapshot get %s: wrong value", key);
	free(want);
	fr_free(v);
}

/* The sizes around the threshold, and one large value. */
static const size_t sizes[] = {0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 1u << 20, 5000};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static size_t size_at(uint64_t k)
{
	return sizes[k];
}

static void check_all(fr_keyspace *ks, uint64_t ver)
{
	for (uint64_t k = 0; k < NSIZES; k++)
		tu_kv_check_get(ks, make_val, k, sizes[k], ver);
}

static void test_kvsep_around_threshold(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvsep");
	char blobs[1024];
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	fr_db *db = tu_kv_open_db(dir, NULL, true);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	fr_error e;

	for (uint64_t k = 0; k < NSIZES; k++)
		put(ks, k, sizes[k], 1);
	check_all(ks, 1); /* memtable */
	tu_kv_check_iter(ks, NULL, NSIZES, size_at, make_val, 1);
	fr_snapshot *s1;
	assert_int_equal(fr_snapshot_open(db, &s1, &e), FR_OK);

	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	fr_keyspace_stats st;
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	assert_int_equal(st.blob_file_cnt, 1);
	assert_int_equal(tu_count_files(blobs, ".blob", NULL), 1);
	assert_true(st.blob_bytes > (1u << 20)); /* the large (random) value left the table */
	assert_true(st.table_bytes < 16 * 1024);
	assert_int_equal(st.blob_stale_bytes, 0);
	check_all(ks, 1); /* flushed */
	tu_kv_check_iter(ks, NULL, NSIZES, size_at, make_val, 1);

	/* version 2 of everything, flushed, then compacted: the snapshot keeps version 1 */
	for (uint64_t k = 0; k < NSIZES; k++)
		put(ks, k, sizes[k], 2);
	check_snap(s1, ks, 5, sizes[5], 1);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	assert_int_equal(fr_major_compact(ks, &e), FR_OK);
	check_all(ks, 2);
	tu_kv_check_iter(ks, NULL, NSIZES, size_at, make_val, 2);
	for (uint64_t k = 0; k < NSIZES; k++)
		check_snap(s1, ks, k, sizes[k], 1);
	tu_kv_check_iter(ks, s1, NSIZES, size_at, make_val, 1);
	fr_snapshot_close(s1);

	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	db = tu_kv_open_db(dir, NULL, true);
	ks = tu_kv_open_ks(db, 0); /* the stored options win: the threshold is still THRESHOLD */
	check_all(ks, 2);
	tu_kv_check_iter(ks, NULL, NSIZES, size_at, make_val, 2);
	/* the old blob file left when the compaction dropped version 1 */
	assert_int_equal(fr_major_compact(ks, &e), FR_OK);
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	assert_int_equal(st.blob_file_cnt, tu_count_files(blobs, ".blob", NULL));
	assert_int_equal(st.blob_stale_bytes, 0);
	/* written after reopen: separated as well */
	put(ks, 100, 4000, 9);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	tu_kv_check_get(ks, make_val, 100, 4000, 9);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

#define GC_KEYS 200
#define GC_VAL 8192

static void test_kvsep_gc_space(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvsep-gc");
	char blobs[1024], tables[1024];
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	snprintf(tables, sizeof(tables), "%s/tables", dir);
	fr_db *db = tu_kv_open_db(dir, NULL, true);
	fr_keyspace *ks = tu_kv_open_ks(db, 512);
	fr_error e;
	uint64_t ver[GC_KEYS];

	/* every key 5 times, a flush per round (odd key numbers: incompressible values) */
	for (uint64_t r = 1; r <= 5; r++) {
		for (uint64_t k = 0; k < GC_KEYS; k++) {
			put(ks, 2 * k + 1, GC_VAL, r);
			ver[k] = r;
		}
		assert_int_equal(fr_db_flush(db, &e), FR_OK);
	}
	/* then 60% of them once more: the round-5 file keeps 40% live values */
	for (uint64_t k = 0; k < GC_KEYS * 6 / 10; k++) {
		put(ks, 2 * k + 1, GC_VAL, 6);
		ver[k] = 6;
	}
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	fr_keyspace_stats st;
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	uint64_t live = GC_KEYS * (uint64_t)GC_VAL;
	uint64_t before = st.table_bytes + st.blob_bytes;

	assert_int_equal(fr_blob_gc(ks, &e), FR_OK);
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	uint64_t blob_disk, table_disk;
	assert_int_equal(tu_count_files(blobs, ".blob", &blob_disk), st.blob_file_cnt);
	tu_count_files(tables, ".sst", &table_disk);
	assert_int_equal(blob_disk, st.blob_bytes);
	fprintf(stderr, "# live %" PRIu64 ", before GC %" PRIu64 ", after %" PRIu64
		" (tables %" PRIu64 ", %" PRIu64 " blob files %" PRIu64 ", stale %" PRIu64
		", gc done %" PRIu64 ")\n", live, before, blob_disk + table_disk, table_disk,
		st.blob_file_cnt, blob_disk, st.blob_stale_bytes, st.blob_gc_done);
	assert_true((blob_disk + table_disk) * 10 <= live * 13);
	assert_int_equal(st.blob_stale_bytes, 0);
	assert_true(st.blob_gc_done >= 5);
	fr_db_stats ds;
	assert_int_equal(fr_db_stats_get(db, &ds, &e), FR_OK);
	assert_int_equal(ds.blob_file_cnt, st.blob_file_cnt);
	assert_int_equal(ds.blob_bytes, st.blob_bytes);
	assert_int_equal(ds.blob_stale_bytes, 0);
	for (uint64_t k = 0; k < GC_KEYS; k++)
		tu_kv_check_get(ks, make_val, 2 * k + 1, GC_VAL, ver[k]);

	/* without GC (stale percentage 0) the stale bytes are exactly the overwritten values
	 * of the file that keeps live ones */
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.blob_threshold = 512;
	ko.blob_gc_stale_pct = 0;
	fr_keyspace *ng;
	assert_int_equal(fr_keyspace_open(db, "nogc", &ko, &ng, &e), FR_OK);
	for (uint64_t k = 0; k < GC_KEYS; k++) {
		char key[16];
		tu_kv_key(key, 2 * k + 1);
		uint8_t *v = make_val(GC_VAL, 2 * k + 1, 1);
		assert_int_equal(fr_put(ng, key, strlen(key), v, GC_VAL, &e), FR_OK);
		free(v);
	}
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	for (uint64_t k = 0; k < GC_KEYS * 6 / 10; k++) {
		char key[16];
		tu_kv_key(key, 2 * k + 1);
		uint8_t *v = make_val(GC_VAL, 2 * k + 1, 2);
		assert_int_equal(fr_put(ng, key, strlen(key), v, GC_VAL, &e), FR_OK);
		free(v);
	}
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	assert_int_equal(fr_major_compact(ng, &e), FR_OK);
	assert_int_equal(fr_blob_gc(ng, &e), FR_OK);
	fr_keyspace_stats ns;
	assert_int_equal(fr_keyspace_stats_get(ng, &ns, &e), FR_OK);
	assert_int_equal(ns.blob_file_cnt, 2);
	assert_int_equal(ns.blob_stale_bytes, (uint64_t)GC_KEYS * 6 / 10 * GC_VAL);
	assert_int_equal(fr_db_stats_get(db, &ds, &e), FR_OK);
	assert_int_equal(ds.blob_stale_bytes, ns.blob_stale_bytes);
	assert_int_equal(ds.blob_file_cnt, st.blob_file_cnt + 2);
	fr_keyspace_close(ng);

	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	db = tu_kv_open_db(dir, NULL, true);
	ks = tu_kv_open_ks(db, 512);
	for (uint64_t k = 0; k < GC_KEYS; k++)
		tu_kv_check_get(ks, make_val, 2 * k + 1, GC_VAL, ver[k]);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

static void test_kvsep_snapshot_across_gc(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvsep-snap");
	fr_db *db = tu_kv_open_db(dir, NULL, true);
	fr_keyspace *ks = tu_kv_open_ks(db, 512);
	fr_error e;
	for (uint64_t k = 0; k < 50; k++)
		put(ks, k, 3000, 1);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	fr_snapshot *s;
	assert_int_equal(fr_snapshot_open(db, &s, &e), FR_OK);
	fr_iter *it;
	fr_iter_options io = {0};
	assert_int_equal(fr_iter_open(ks, &io, &it, &e), FR_OK); /* pins the version */
	for (uint64_t k = 0; k < 40; k++)
		put(ks, k, 3000, 2);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	assert_int_equal(fr_blob_gc(ks, &e), FR_OK);
	for (uint64_t k = 0; k < 50; k++) {
		check_snap(s, ks, k, 3000, 1);
		tu_kv_check_get(ks, make_val, k, 3000, k < 40 ? 2 : 1);
	}
	/* the iterator opened before still reads version 1 from the files it pinned */
	uint64_t seen = 0;
	while (fr_iter_valid(it)) {
		size_t vl;
		const void *vp = fr_iter_value(it, &vl);
		uint8_t *want = make_val(3000, seen, 1);
		assert_int_equal(vl, 3000);
		assert_memory_equal(vp, want, vl);
		free(want);
		seen++;
		assert_int_equal(fr_iter_next(it, &e), FR_OK);
	}
	assert_int_equal(seen, 50);
	fr_iter_close(it);
	fr_snapshot_close(s);
	/* once the snapshot is gone GC can drop version 1 */
	assert_int_equal(fr_blob_gc(ks, &e), FR_OK);
	fr_keyspace_stats st;
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	assert_true(st.blob_bytes < 50 * 3000 * 13 / 10);
	for (uint64_t k = 0; k < 50; k++)
		tu_kv_check_get(ks, make_val, k, 3000, k < 40 ? 2 : 1);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

/* ---- a corrupt blob file ---- */

struct victims {
	uint64_t off[64];
	char keys[64][16];
	size_t cnt;
};

static fr_status collect(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			 size_t vlen, const struct blob_handle *h)
{
	(void)val;
	(void)vlen;
	struct victims *v = ctx;
	assert_true(v->cnt < 64 && klen > 4 && klen - 4 < 16);
	v->off[v->cnt] = h->off + h->stored_len / 2;
	memcpy(v->keys[v->cnt], key + 4, klen - 4); /* after the keyspace prefix */
	v->keys[v->cnt][klen - 4] = 0;
	v->cnt++;
	return FR_OK;
}

static void test_kvsep_corrupt_blob(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvsep-bad");
	fr_db *db = tu_kv_open_db(dir, NULL, false);
	fr_keyspace *ks = tu_kv_open_ks(db, 100);
	fr_error e;
	/* two flushes: keys 0-19 in one blob file, 20-39 in another */
	for (uint64_t k = 0; k < 40; k++) {
		put(ks, k, 700, 1);
		if (k == 19)
			assert_int_equal(fr_db_flush(db, &e), FR_OK);
	}
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);

	/* the first blob file: the smaller id */
	char blobs[1024], path[1100];
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	DIR *d = opendir(blobs);
	uint64_t first = UINT64_MAX;
	for (struct dirent *de; (de = readdir(d));)
		if (strstr(de->d_name, ".blob") && strtoull(de->d_name, NULL, 10) < first)
			first = strtoull(de->d_name, NULL, 10);
	closedir(d);
	snprintf(path, sizeof(path), "%s/%" PRIu64 ".blob", blobs, first);
	struct victims v = {0};
	assert_int_equal(blob_scan(io_posix(), path, first, collect, &v, NULL, &e), FR_OK);
	assert_int_equal(v.cnt, 20);
	/* one flipped byte in the middle of the value of every third key of the file */
	FILE *fp = fopen(path, "r+b");
	for (size_t i = 0; i < v.cnt; i += 3) {
		fseek(fp, (long)v.off[i], SEEK_SET);
		int c = fgetc(fp);
		fseek(fp, (long)v.off[i], SEEK_SET);
		fputc(c ^ 0x5a, fp);
	}
	fclose(fp);

	db = tu_kv_open_db(dir, NULL, false);
	ks = tu_kv_open_ks(db, 100);
	size_t bad = 0;
	for (size_t i = 0; i < v.cnt; i++) {
		void *val = NULL;
		size_t n;
		fr_status rc = fr_get(ks, v.keys[i], strlen(v.keys[i]), &val, &n, &e);
		if (i % 3 == 0) {
			assert_int_equal(rc, FR_CORRUPTION);
			assert_non_null(strstr(e.msg, ".blob"));
			bad++;
		} else {
			assert_int_equal(rc, FR_OK);
			fr_free(val);
		}
	}
	assert_int_equal(bad, 7);
	for (uint64_t k = 0; k < 40; k++) {
		char key[16];
		tu_kv_key(key, k);
		bool hit = false;
		for (size_t i = 0; i < v.cnt; i += 3)
			hit |= !strcmp(key, v.keys[i]);
		if (!hit)
			tu_kv_check_get(ks, make_val, k, 700, 1);
	}
	/* counting and the first key read no value: the bad ones do not get in the way */
	uint64_t len = 0;
	assert_int_equal(fr_len(ks, &len, &e), FR_OK);
	assert_int_equal(len, 40);
	void *fk = NULL;
	size_t fkl = 0;
	assert_int_equal(fr_first(ks, &fk, &fkl, NULL, NULL, &e), FR_OK);
	assert_int_equal(fkl, strlen(v.keys[0]));
	assert_memory_equal(fk, v.keys[0], fkl); /* k000000, whose value is bad */
	fr_free(fk);
	/* an iterator meeting a bad value reports corruption rather than a wrong value */
	fr_iter *it;
	fr_iter_options io = {0};
	fr_status rc = fr_iter_open(ks, &io, &it, &e);
	if (rc == FR_OK) {
		while (fr_iter_valid(it) && (rc = fr_iter_next(it, &e)) == FR_OK)
			;
		fr_iter_close(it);
	}
	assert_int_equal(rc, FR_CORRUPTION);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

/* One 6 MiB compressible value: it lands in one blob file, compressed, while the tree's tables
 * hold only its handle (a table of a few hundred bytes); it reads back whole before and after
 * the flush and after reopening. */
static void test_kvsep_one_large_value(void **state)
{
	(void)state;
	const size_t n = 6u << 20;
	char *dir = tu_tmpdir("kvsep-large");
	fr_db *db = tu_kv_open_db(dir, NULL, false);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	fr_error e;
	put(ks, 0, n, 1); /* key 0: compressible text */
	tu_kv_check_get(ks, make_val, 0, n, 1);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	tu_kv_check_get(ks, make_val, 0, n, 1);
	fr_keyspace_stats st;
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	assert_int_equal(st.blob_file_cnt, 1);
	assert_true(st.blob_bytes > 0 && st.blob_bytes < n / 4); /* LZ4 on repetitive text */
	assert_int_equal(st.blob_stale_bytes, 0);
	assert_int_equal(st.table_cnt, 1);
	assert_true(st.table_bytes < 1024);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	char blobs[1024];
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	assert_int_equal(tu_count_files(blobs, ".blob", NULL), 1);
	db = tu_kv_open_db(dir, NULL, false);
	ks = tu_kv_open_ks(db, THRESHOLD);
	tu_kv_check_get(ks, make_val, 0, n, 1);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

static void test_kvsep_orphans(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvsep-orphan");
	fr_db *db = tu_kv_open_db(dir, NULL, false);
	fr_keyspace *ks = tu_kv_open_ks(db, 100);
	fr_error e;
	for (uint64_t k = 0; k < 10; k++)
		put(ks, k, 500, 1);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	char blobs[1024], orphan[1100];
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	assert_int_equal(tu_count_files(blobs, ".blob", NULL), 1);
	/* a left-over of a compaction that never reached the manifest */
	snprintf(orphan, sizeof(orphan), "%s/987654.blob", blobs);
	FILE *fp = fopen(orphan, "wb");
	fputs("partial", fp);
	fclose(fp);
	assert_int_equal(tu_count_files(blobs, ".blob", NULL), 2);
	db = tu_kv_open_db(dir, NULL, false);
	assert_int_equal(tu_count_files(blobs, ".blob", NULL), 1);
	ks = tu_kv_open_ks(db, 100);
	for (uint64_t k = 0; k < 10; k++)
		tu_kv_check_get(ks, make_val, k, 500, 1);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

static void test_kvsep_options(void **state)
{
	(void)state;
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	assert_int_equal(ko.blob_threshold, 0);
	assert_int_equal(ko.blob_file_target, 64u << 20);
	assert_true(ko.blob_compress);
	assert_int_equal(ko.blob_gc_stale_pct, 50);
	char *dir = tu_tmpdir("kvsep-opt");
	fr_db *db = tu_kv_open_db(dir, NULL, false);
	fr_keyspace *ks;
	fr_error e;
	ko.blob_threshold = 10;
	ko.blob_gc_stale_pct = 101;
	assert_int_equal(fr_keyspace_open(db, "x", &ko, &ks, &e), FR_INVALID);
	ko.blob_gc_stale_pct = 50;
	ko.blob_file_target = 100;
	assert_int_equal(fr_keyspace_open(db, "x", &ko, &ks, &e), FR_INVALID);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

/* ---- a crash during GC ---- */

#define CR_KEYS 40

static size_t cr_len(uint64_t k)
{
	return 200 + (size_t)(k * 131 % 3000);
}

/* Batch n rewrites every key at version n; every third batch is followed by a flush and GC. */
static void child_run(const char *dir, uint64_t first, int fd)
{
	fr_db_options o;
	fr_db_options_init(&o);
	o.memtable_max = 64 * 1024;
	fr_db *db;
	fr_keyspace *ks;
	fr_error e;
	if (fr_db_open(dir, &o, &db, &e)) {
		fprintf(stderr, "child open: %s\n", e.msg);
		uint64_t f = TU_CHILD_FAILED;
		(void)!write(fd, &f, sizeof(f));
		_exit(1);
	}
	ks = tu_kv_open_ks(db, 256);
	for (uint64_t n = first;; n++) {
		fr_batch *b;
		fr_batch_new(db, &b);
		for (uint64_t k = 0; k < CR_KEYS; k++) {
			char key[16];
			tu_kv_key(key, k);
			uint8_t *v = make_val(cr_len(k), k, n);
			fr_batch_put(b, ks, key, strlen(key), v, cr_len(k));
			free(v);
		}
		fr_status rc = fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &e);
		fr_batch_free(b);
		if (rc == FR_OK && n % 3 == 0) {
			rc = fr_db_flush(db, &e);
			if (!rc)
				rc = fr_blob_gc(ks, &e);
		}
		if (rc) {
			fprintf(stderr, "child: %s\n", e.msg);
			uint64_t f = TU_CHILD_FAILED;
			(void)!write(fd, &f, sizeof(f));
			_exit(1);
		}
		(void)!write(fd, &n, sizeof(n));
	}
}

/* Every key at one version: the last acknowledged batch or the one in flight. */
static uint64_t check_recovered(const char *dir, uint64_t acked)
{
	fr_db *db = tu_kv_open_db(dir, NULL, false);
	fr_keyspace *ks = tu_kv_open_ks(db, 256);
	fr_error e;
	uint64_t ver = 0;
	for (uint64_t k = 0; k < CR_KEYS && acked; k++) {
		char key[16];
		tu_kv_key(key, k);
		void *v;
		size_t n;
		fr_status rc = fr_get(ks, key, strlen(key), &v, &n, &e);
		if (rc)
			fail_msg("after crash, key %s: %s (%s)", key, fr_status_str(rc), e.msg);
		uint64_t found = 0;
		for (uint64_t c = acked; c <= acked + 1 && !found; c++) {
			uint8_t *want = make_val(cr_len(k), k, c);
			if (n == cr_len(k) && !memcmp(v, want, n))
				found = c;
			free(want);
		}
		fr_free(v);
		if (!found)
			fail_msg("after crash, key %s holds neither batch %" PRIu64 " nor the next",
				 key, acked);
		if (ver && found != ver)
			fail_msg("after crash, keys from two batches (%" PRIu64 " and %" PRIu64 ")",
				 ver, found);
		ver = found;
	}
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	return acked ? ver : 0;
}

static void test_kvsep_crash_during_gc(void **state)
{
	(void)state;
	uint64_t rng = tu_seed() ^ 0x5151;
	char *dir = tu_tmpdir("kvsep-crash");
	uint64_t r = 0, total = 0;
	for (uint64_t cycle = 0; cycle < 12; cycle++) {
		uint64_t cnt;
		uint64_t acked =
			tu_kill_cycle(dir, r, 30 + tu_rand_below(&rng, 300), child_run, cycle, &cnt);
		total += cnt;
		r = check_recovered(dir, acked);
	}
	fprintf(stderr, "# %" PRIu64 " batches acknowledged over 12 crashes, last %" PRIu64 "\n",
		total, r);
	assert_true(total > 12);
	tu_rmtree_free(dir);
}

/* ---- I/O failures during GC ---- */

#define FG_KEYS 120

static void fg_check(struct fr_io *io, const char *what)
{
	fr_db *db = tu_kv_open_db("/fg", io, false);
	fr_keyspace *ks = tu_kv_open_ks(db, 256);
	for (uint64_t k = 0; k < FG_KEYS; k++) {
		char key[16];
		tu_kv_key(key, k);
		void *v;
		size_t n;
		fr_error e;
		fr_status rc = fr_get(ks, key, strlen(key), &v, &n, &e);
		if (rc)
			fail_msg("%s: key %s: %s (%s)", what, key, fr_status_str(rc), e.msg);
		uint8_t *want = make_val(1500, k, k % 2 ? 2 : 1);
		if (n != 1500 || memcmp(v, want, n))
			fail_msg("%s: key %s has a wrong value", what, key);
		free(want);
		fr_free(v);
	}
	fr_keyspace_close(ks);
	fr_error e;
	assert_int_equal(fr_db_close(db, &e), FR_OK);
}

/* One run: a database whose first blob file is mostly stale once compacted (the overwritten odd
 * keys hold the incompressible values, so most of its bytes), then GC with the nth operation of
 * `kind` failing; whatever GC returned, a reopen reads every value, and a second GC without
 * faults still works. Returns whether the fault was reached. */
static bool fg_run(enum io_fault_kind kind, uint64_t n)
{
	struct fr_io *mem = io_mem_new();
	struct fr_io *fio = io_fault_new(mem);
	fr_error e;
	fr_db *db = tu_kv_open_db("/fg", mem, false);
	fr_keyspace *ks = tu_kv_open_ks(db, 256);
	for (uint64_t k = 0; k < FG_KEYS; k++)
		put(ks, k, 1500, 1);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	for (uint64_t k = 1; k < FG_KEYS; k += 2)
		put(ks, k, 1500, 2);
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);

	db = tu_kv_open_db("/fg", fio, false);
	ks = tu_kv_open_ks(db, 256);
	io_fault_arm(fio, kind, n, EIO, false);
	fr_status rc = fr_blob_gc(ks, &e);
	bool hit = io_fault_injected(fio) > 0;
	if (!hit)
		assert_int_equal(rc, FR_OK);
	io_fault_clear(fio);
	fr_keyspace_close(ks);
	fr_db_close(db, &e); /* may report the failure again */
	char what[64];
	snprintf(what, sizeof(what), "fault kind %d at %" PRIu64, kind, n);
	fg_check(mem, what);

	db = tu_kv_open_db("/fg", mem, false);
	ks = tu_kv_open_ks(db, 256);
	assert_int_equal(fr_blob_gc(ks, &e), FR_OK);
	fr_keyspace_stats st;
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	assert_int_equal(st.blob_stale_bytes, 0);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	fg_check(mem, what);
	io_destroy(fio);
	io_destroy(mem);
	return hit;
}

static void test_kvsep_gc_io_faults(void **state)
{
	(void)state;
	const enum io_fault_kind kinds[] = {IO_FAULT_WRITE, IO_FAULT_SYNC, IO_FAULT_OPEN};
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		uint64_t n = 1;
		while (fg_run(kinds[k], n) && n < 500)
			n++;
		fprintf(stderr, "# fault kind %d: %" PRIu64 " failing places in GC\n", kinds[k],
			n - 1);
		assert_true(n > 1); /* GC did some of these */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvsep_around_threshold),
		cmocka_unit_test(test_kvsep_gc_space),
		cmocka_unit_test(test_kvsep_snapshot_across_gc),
		cmocka_unit_test(test_kvsep_corrupt_blob),
		cmocka_unit_test(test_kvsep_one_large_value),
		cmocka_unit_test(test_kvsep_orphans),
		cmocka_unit_test(test_kvsep_options),
		cmocka_unit_test(test_kvsep_crash_during_gc),
		cmocka_unit_test(test_kvsep_gc_io_faults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
