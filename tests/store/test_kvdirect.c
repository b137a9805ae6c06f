/* SPDX-License-Identifier: MIT */
/*
 * test_kvdirect.c - values of at least a keyspace's blob threshold written to a direct blob
 * file at commit (FORMAT.md §3.3 PUT_HANDLE, §8): read back from the memtable (get, snapshot,
 * iterator, a transaction), after flush and after reopen; the journal holds handles, not the
 * bytes; a sync commit makes the blob data durable before the journal record (power cuts
 * with the syncs failing one by one never leave a record whose value is lost); a torn direct
 * file fails only its cut value; failing writes and syncs (with or without a power cut) never
 * lose an acknowledged value nor leave a corrupt one; a process killed without sync loses no
 * acknowledged value; a checkpoint of a database with unflushed large values holds them.
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

#include "fractio.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/io_mem.h"
#include "testutil.h"
#include "testutil_db.h"
#include "testutil_kv.h"

#define THRESHOLD 1024
#define BIG (64u << 10) /* the file system's chunk size */

/* The value of key k at version ver, n bytes, incompressible. */
static uint8_t *make_val(size_t n, uint64_t k, uint64_t ver)
{
	uint8_t *p = malloc(n ? n : 1);
	tu_kv_fill_random(p, n, k, ver);
	return p;
}

/* The status of committing key k at version ver (n bytes) alone in a batch. */
static fr_status commit_one(fr_db *db, fr_keyspace *ks, uint64_t k, size_t n, uint64_t ver,
			    fr_persist mode, fr_error *e)
{
	char key[16];
	tu_kv_key(key, k);
	uint8_t *v = make_val(n, k, ver);
	fr_batch *b;
	TU_OK(fr_batch_new(db, &b), *e);
	TU_OK(fr_batch_put(b, ks, key, strlen(key), v, n), *e);
	fr_status rc = fr_batch_commit(b, mode, NULL, e);
	fr_batch_free(b);
	free(v);
	return rc;
}

static void put(fr_db *db, fr_keyspace *ks, uint64_t k, size_t n, uint64_t ver, fr_persist mode)
{
	fr_error e = {0};
	TU_OK(commit_one(db, ks, k, n, ver, mode, &e), e);
}

/* The end of a fault run's first life: a power cut when cut, the faults off, the handles
 * dropped (the database may be poisoned); then *db and *ks opened again on mem alone. */
static void fault_reopen(struct fr_io *mem, struct fr_io *fio, const char *path, bool cut,
			 fr_db **db, fr_keyspace **ks)
{
	if (cut)
		io_mem_power_cut(mem);
	io_fault_clear(fio);
	fr_keyspace_close(*ks);
	fr_db_close(*db, NULL);
	*db = tu_kv_open_db(path, mem, false);
	*ks = tu_kv_open_ks(*db, THRESHOLD);
}

/* Sizes around the threshold: below ones stay in the journal and the memtable. */
static size_t size_of(uint64_t k)
{
	static const size_t s[] = {10, THRESHOLD - 1, THRESHOLD, BIG, 1u << 20, BIG + 7};
	return s[k % (sizeof(s) / sizeof(s[0]))];
}

/* The one .blob file of dir/blobs (fails when there is not exactly one). */
static void only_blob(const char *dir, char *out, size_t n)
{
	char blobs[1024];
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	assert_int_equal(tu_count_files(blobs, ".blob", NULL), 1);
	DIR *d = opendir(blobs);
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));) {
		if (!strstr(de->d_name, ".blob"))
			continue;
		assert_true(strlen(blobs) + 1 + strlen(de->d_name) < n);
		strcpy(out, blobs);
		strcat(out, "/");
		strcat(out, de->d_name);
	}
	closedir(d);
}

#define RP_KEYS 30

static void test_kvdirect_read_paths(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvdirect-read");
	fr_db *db = tu_kv_open_db(dir, NULL, true);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	fr_error e;
	uint64_t big_bytes = 0;
	for (uint64_t k = 0; k < RP_KEYS; k++) {
		put(db, ks, k, size_of(k), 1, FR_PERSIST_BUFFER);
		if (size_of(k) >= THRESHOLD)
			big_bytes += size_of(k);
	}
	fr_snapshot *snap;
	TU_OK(fr_snapshot_open(db, &snap, &e), e);
	/* version 2 over the snapshot: the snapshot still reads version 1 from the memtable */
	for (uint64_t k = 0; k < RP_KEYS; k++)
		put(db, ks, k, size_of(k), 2, FR_PERSIST_BUFFER);
	for (uint64_t k = 0; k < RP_KEYS; k++)
		tu_kv_check_get(ks, make_val, k, size_of(k), 2);
	tu_kv_check_iter(ks, NULL, RP_KEYS, size_of, make_val, 2);
	tu_kv_check_iter(ks, snap, RP_KEYS, size_of, make_val, 1);

	/* the journal holds handles: far fewer bytes than the values */
	fr_db_stats st;
	TU_OK(fr_db_stats_get(db, &st, &e), e);
	assert_true(st.user_write_bytes >= 2 * big_bytes);
	if (st.journal_write_bytes * 20 > 2 * big_bytes)
		fail_msg("journal %" PRIu64 " bytes for %" PRIu64 " bytes of large values",
			 st.journal_write_bytes, 2 * big_bytes);
	fr_keyspace_stats ks_st;
	TU_OK(fr_keyspace_stats_get(ks, &ks_st, &e), e);
	assert_int_equal(ks_st.blob_file_cnt, 0); /* not installed before the flush */

	/* a transaction reads its own large write and the committed ones */
	fr_tx *tx;
	TU_OK(fr_tx_begin(db, FR_TX_OPTIMISTIC, &tx, &e), e);
	uint8_t *v3 = make_val(BIG, 3, 3);
	char key[16];
	tu_kv_key(key, 3);
	TU_OK(fr_tx_put(tx, ks, key, strlen(key), v3, BIG, &e), e);
	void *got;
	size_t gl;
	TU_OK(fr_tx_get(tx, ks, key, strlen(key), &got, &gl, &e), e);
	assert_int_equal(gl, BIG);
	assert_memory_equal(got, v3, BIG);
	fr_free(got);
	tu_kv_key(key, 4);
	TU_OK(fr_tx_get(tx, ks, key, strlen(key), &got, &gl, &e), e);
	uint8_t *v4 = make_val(size_of(4), 4, 2);
	assert_int_equal(gl, size_of(4));
	assert_memory_equal(got, v4, gl);
	fr_free(got);
	free(v4);
	TU_OK(fr_tx_commit(tx, FR_PERSIST_BUFFER, NULL, &e), e);
	tu_kv_check_get(ks, make_val, 3, BIG, 3);
	put(db, ks, 3, size_of(3), 2, FR_PERSIST_BUFFER);
	free(v3);

	/* flushed: the direct file is installed and the values read from the table */
	TU_OK(fr_db_flush(db, &e), e);
	for (uint64_t k = 0; k < RP_KEYS; k++)
		tu_kv_check_get(ks, make_val, k, size_of(k), 2);
	tu_kv_check_iter(ks, snap, RP_KEYS, size_of, make_val, 1);
	TU_OK(fr_keyspace_stats_get(ks, &ks_st, &e), e);
	assert_true(ks_st.blob_file_cnt >= 1);
	assert_true(ks_st.blob_bytes >= 2 * big_bytes);
	/* the direct file counts as flushed once, so write amplification sees its bytes */
	TU_OK(fr_db_stats_get(db, &st, &e), e);
	assert_true(st.flush_write_bytes >= 2 * big_bytes);
	fr_snapshot_close(snap);

	/* unflushed large values, then a reopen: replayed from the journal's handles */
	for (uint64_t k = 0; k < RP_KEYS; k++)
		put(db, ks, k, size_of(k), 4, FR_PERSIST_BUFFER);
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	db = tu_kv_open_db(dir, NULL, true);
	ks = tu_kv_open_ks(db, THRESHOLD);
	for (uint64_t k = 0; k < RP_KEYS; k++)
		tu_kv_check_get(ks, make_val, k, size_of(k), 4);
	tu_kv_check_iter(ks, NULL, RP_KEYS, size_of, make_val, 4);
	/* the recovered file is finished and installed by the next flush */
	TU_OK(fr_db_flush(db, &e), e);
	TU_OK(fr_blob_gc(ks, &e), e);
	for (uint64_t k = 0; k < RP_KEYS; k++)
		tu_kv_check_get(ks, make_val, k, size_of(k), 4);
	TU_OK(fr_keyspace_stats_get(ks, &ks_st, &e), e);
	assert_int_equal(ks_st.blob_stale_bytes, 0);
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	db = tu_kv_open_db(dir, NULL, false);
	ks = tu_kv_open_ks(db, THRESHOLD);
	for (uint64_t k = 0; k < RP_KEYS; k++)
		tu_kv_check_get(ks, make_val, k, size_of(k), 4);
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	tu_rmtree_free(dir);
}

/* Direct files are cut at the blob file target within one memtable, all read from the
 * memtable, all installed by its flush; the memtable is sealed once its direct bytes reach
 * memtable_max (flushes as often as when the values were in the memtable). */
static void test_kvdirect_file_target(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvdirect-target");
	fr_db_options o;
	fr_db_options_init(&o);
	o.background = false;
	o.memtable_max = 4u << 20;
	fr_db *db;
	fr_error e;
	TU_OK(fr_db_open(dir, &o, &db, &e), e);
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.blob_threshold = THRESHOLD;
	ko.blob_file_target = 256u << 10;
	fr_keyspace *ks;
	TU_OK(fr_keyspace_open(db, "kv", &ko, &ks, &e), e);
	for (uint64_t k = 0; k < 32; k++) /* 2 MiB: half a memtable */
		put(db, ks, k, BIG, 1, FR_PERSIST_BUFFER);
	char blobs[1100];
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	assert_true(tu_count_files(blobs, ".blob", NULL) >= 7);
	fr_db_stats st;
	TU_OK(fr_db_stats_get(db, &st, &e), e);
	assert_int_equal(st.flushes_done, 0);
	for (uint64_t k = 0; k < 32; k++)
		tu_kv_check_get(ks, make_val, k, BIG, 1);
	TU_OK(fr_db_flush(db, &e), e);
	fr_keyspace_stats ks_st;
	TU_OK(fr_keyspace_stats_get(ks, &ks_st, &e), e);
	assert_true(ks_st.blob_file_cnt >= 7);
	assert_int_equal(ks_st.table_cnt, 1);
	for (uint64_t k = 0; k < 32; k++)
		tu_kv_check_get(ks, make_val, k, BIG, 1);
	/* 8 MiB of large values: sealed and flushed about twice on the way */
	TU_OK(fr_db_stats_get(db, &st, &e), e);
	uint64_t before = st.flushes_done;
	for (uint64_t k = 0; k < 128; k++)
		put(db, ks, k, BIG, 2, FR_PERSIST_BUFFER);
	TU_OK(fr_db_stats_get(db, &st, &e), e);
	assert_true(st.flushes_done - before >= 1 && st.flushes_done - before <= 2);
	for (uint64_t k = 0; k < 128; k++)
		tu_kv_check_get(ks, make_val, k, BIG, 2);
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	tu_rmtree_free(dir);
}

/* A sync commit of a large value, the syncs failing from the nth on: after a power cut the
 * value is there whole or not at all, never a journal record whose blob bytes were lost. */
static bool sync_order_run(uint64_t n)
{
	struct fr_io *mem = io_mem_new();
	struct fr_io *fio = io_fault_new(mem);
	fr_error e;
	fr_db *db = tu_kv_open_db("/so", fio, false);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	put(db, ks, 1, BIG, 1, FR_PERSIST_SYNC_DATA);
	TU_OK(fr_db_flush(db, &e), e); /* keys 2 to 4 then go to a new direct file */
	put(db, ks, 2, BIG, 1, FR_PERSIST_BUFFER);
	io_fault_arm(fio, IO_FAULT_SYNC, n, EIO, true);
	char key[16];
	tu_kv_key(key, 3);
	uint8_t *v = make_val(BIG, 3, 1);
	fr_status rc = fr_put(ks, key, strlen(key), v, BIG, &e);
	free(v);
	if (!rc)
		rc = commit_one(db, ks, 4, BIG, 1, FR_PERSIST_SYNC_DATA, &e);
	bool hit = io_fault_injected(fio) > 0;
	if (!hit)
		assert_int_equal(rc, FR_OK);
	fault_reopen(mem, fio, "/so", true, &db, &ks);
	/* synced before the faults: durable */
	tu_kv_check_get(ks, make_val, 1, BIG, 1);
	/* key 2 (buffered) and key 3 rode on key 4's sync: all there whole, or absent */
	for (uint64_t k = 2; k <= 4; k++) {
		fr_status g = tu_kv_get_check(ks, make_val, k, BIG, 1, &e);
		if (g != FR_OK && g != FR_NOT_FOUND)
			fail_msg("sync fault %" PRIu64 ": key %" PRIu64 " %s (%s)", n, k,
				 fr_status_str(g), e.msg);
		if (!hit && k == 4)
			assert_int_equal(g, FR_OK);
	}
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	io_destroy(fio);
	io_destroy(mem);
	return hit;
}

static void test_kvdirect_sync_order(void **state)
{
	(void)state;
	uint64_t n = 1;
	while (sync_order_run(n) && n < 50)
		n++;
	/* the blob file's data, its name and the journal: three syncs in the last commit */
	assert_true(n > 3);
}

static void test_kvdirect_torn_file(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvdirect-torn");
	fr_db *db = tu_kv_open_db(dir, NULL, false);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	fr_error e;
	for (uint64_t k = 0; k < 5; k++)
		put(db, ks, k, BIG, 1, FR_PERSIST_BUFFER);
	put(db, ks, 9, 100, 1, FR_PERSIST_BUFFER); /* small: in the journal */
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);

	/* the journal is intact, the direct file loses the second half of the last value */
	char path[1100];
	only_blob(dir, path, sizeof(path));
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true((uint64_t)sb.st_size > 5ull * BIG);
	assert_int_equal(truncate(path, sb.st_size - BIG / 2), 0);
	/* an unfinished file no journal record names (its commits were lost): deleted at open */
	char orphan[1100], cmd[2300];
	snprintf(orphan, sizeof(orphan), "%s/blobs/999999.blob", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, orphan);
	assert_int_equal(system(cmd), 0);

	for (int round = 0; round < 3; round++) {
		db = tu_kv_open_db(dir, NULL, false);
		ks = tu_kv_open_ks(db, THRESHOLD);
		assert_int_equal(access(orphan, F_OK), -1);
		if (round < 2)
			assert_int_equal(access(path, F_OK), 0);
		for (uint64_t k = 0; k < 4; k++)
			tu_kv_check_get(ks, make_val, k, BIG, 1);
		tu_kv_check_get(ks, make_val, 9, 100, 1);
		fr_status rc = tu_kv_get_check(ks, make_val, 4, BIG, 1, &e);
		assert_int_equal(rc, FR_CORRUPTION);
		assert_non_null(strstr(e.msg, ".blob"));
		assert_non_null(strstr(e.msg, "offset"));
		if (round == 1) /* finished (footer) and installed; the cut value stays bad */
			TU_OK(fr_db_flush(db, &e), e);
		fr_keyspace_close(ks);
		TU_OK(fr_db_close(db, &e), e);
	}
	tu_rmtree_free(dir);
}

static void test_kvdirect_checkpoint(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("kvdirect-cpt");
	char cpt[1100];
	snprintf(cpt, sizeof(cpt), "%s/cpt", dir);
	char src[1100];
	snprintf(src, sizeof(src), "%s/db", dir);
	fr_db *db = tu_kv_open_db(src, NULL, true);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	fr_error e;
	for (uint64_t k = 0; k < 12; k++)
		put(db, ks, k, size_of(k), 1, FR_PERSIST_BUFFER);
	TU_OK(fr_db_checkpoint(db, cpt, &e), e);
	/* later writes are not in the checkpoint */
	put(db, ks, 0, BIG, 2, FR_PERSIST_BUFFER);
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	db = tu_kv_open_db(cpt, NULL, false);
	ks = tu_kv_open_ks(db, THRESHOLD);
	for (uint64_t k = 0; k < 12; k++)
		tu_kv_check_get(ks, make_val, k, size_of(k), 1);
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	tu_rmtree_free(dir);
}


/* Commits of large values with the nth write (or sync) failing: the database is poisoned from
 * there on, and after a reopen (with, or without, a power cut) every acknowledged value reads
 * back whole (every one after a sync commit survives the cut) and the failed commits' values
 * are absent or whole, never corrupt. */
#define WF_COMMITS 24

static bool write_fault_run(enum io_fault_kind kind, uint64_t n, bool cut)
{
	struct fr_io *mem = io_mem_new();
	struct fr_io *fio = io_fault_new(mem);
	fr_error e;
	fr_db *db = tu_kv_open_db("/wf", fio, false);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	io_fault_arm(fio, kind, n, ENOSPC, true);
	uint64_t acked = 0, synced = 0;
	for (uint64_t k = 0; k < WF_COMMITS; k++) {
		fr_persist mode = k % 5 == 4 ? FR_PERSIST_SYNC_DATA : FR_PERSIST_BUFFER;
		if (commit_one(db, ks, k, size_of(k), 1, mode, &e))
			break;
		acked = k + 1;
		if (mode != FR_PERSIST_BUFFER)
			synced = k + 1;
		if (k % 8 == 7 && fr_db_flush(db, &e))
			break;
	}
	bool hit = io_fault_injected(fio) > 0;
	fault_reopen(mem, fio, "/wf", cut, &db, &ks);
	for (uint64_t k = 0; k < WF_COMMITS; k++) {
		fr_status g = tu_kv_get_check(ks, make_val, k, size_of(k), 1, &e);
		bool must = k < (cut ? synced : acked);
		if (g == FR_OK || (g == FR_NOT_FOUND && !must))
			continue;
		fail_msg("fault kind %d at %" PRIu64 "%s: key %" PRIu64 " (acked %" PRIu64
			 ", synced %" PRIu64 "): %s (%s)",
			 kind, n, cut ? " + power cut" : "", k, acked, synced, fr_status_str(g),
			 e.msg);
	}
	fr_keyspace_close(ks);
	TU_OK(fr_db_close(db, &e), e);
	io_destroy(fio);
	io_destroy(mem);
	return hit;
}

static void test_kvdirect_write_faults(void **state)
{
	(void)state;
	const enum io_fault_kind kinds[] = {IO_FAULT_WRITE, IO_FAULT_SYNC, IO_FAULT_OPEN};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		for (int cut = 0; cut < 2; cut++) {
			uint64_t n = 1;
			while (write_fault_run(kinds[i], n, cut) && n < 400)
				n++;
			assert_true(n > 1);
		}
	}
}

/* ---- a process killed without sync ---- */

#define CR_KEYS 16

static size_t cr_len(uint64_t k)
{
	return k % 4 == 0 ? 300 : BIG + (size_t)(k * 131 % 3000);
}

/* Batch n writes one key (n % CR_KEYS) at version n; every 7th batch writes all keys. */
static void child_run(const char *dir, uint64_t first, int fd)
{
	fr_db_options o;
	fr_db_options_init(&o);
	o.memtable_max = 1u << 20; /* sealed (and flushed) every 16 large values or so */
	fr_db *db;
	fr_keyspace *ks;
	fr_error e;
	if (fr_db_open(dir, &o, &db, &e)) {
		fprintf(stderr, "child open: %s\n", e.msg);
		uint64_t f = TU_CHILD_FAILED;
		(void)!write(fd, &f, sizeof(f));
		_exit(1);
	}
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.blob_threshold = THRESHOLD;
	ko.blob_file_target = 256u << 10; /* a new direct file every 4 */
	if (fr_keyspace_open(db, "kv", &ko, &ks, &e))
		_exit(1);
	for (uint64_t n = first;; n++) {
		fr_batch *b;
		fr_batch_new(db, &b);
		for (uint64_t k = 0; k < CR_KEYS; k++) {
			if (n % 7 && k != n % CR_KEYS)
				continue;
			char key[16];
			tu_kv_key(key, k);
			uint8_t *v = make_val(cr_len(k), k, n);
			fr_batch_put(b, ks, key, strlen(key), v, cr_len(k));
			free(v);
		}
		fr_status rc = fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &e);
		fr_batch_free(b);
		if (rc) {
			fprintf(stderr, "child: %s\n", e.msg);
			uint64_t f = TU_CHILD_FAILED;
			(void)!write(fd, &f, sizeof(f));
			_exit(1);
		}
		(void)!write(fd, &n, sizeof(n));
	}
}

/* The version key k holds after batch r: the last batch up to r that wrote it. */
static uint64_t version_after(uint64_t k, uint64_t r)
{
	for (uint64_t n = r; n >= 1; n--)
		if (n % 7 == 0 || n % CR_KEYS == k)
			return n;
	return 0;
}

/* Whether every key holds what batch r left (absent when no batch up to r wrote it); any
 * error but FR_NOT_FOUND fails the test. */
static bool state_is(fr_keyspace *ks, uint64_t r)
{
	bool all = true;
	for (uint64_t k = 0; k < CR_KEYS; k++) {
		uint64_t ver = version_after(k, r);
		char key[16];
		tu_kv_key(key, k);
		void *v;
		size_t n;
		fr_error e;
		fr_status rc = fr_get(ks, key, strlen(key), &v, &n, &e);
		if (rc == FR_NOT_FOUND) {
			all = all && !ver;
			continue;
		}
		if (rc)
			fail_msg("after crash, key %s: %s (%s)", key, fr_status_str(rc), e.msg);
		uint8_t *want = make_val(cr_len(k), k, ver);
		all = all && ver && n == cr_len(k) && !memcmp(v, want, n);
		free(want);
		fr_free(v);
	}
	return all;
}

/* Every key as of the last acknowledged batch or the one in flight; returns which. */
static uint64_t check_recovered(const char *dir, uint64_t acked)
{
	fr_db *db = tu_kv_open_db(dir, NULL, false);
	fr_keyspace *ks = tu_kv_open_ks(db, THRESHOLD);
	uint64_t r = acked + 1;
	if (!state_is(ks, r)) {
		r = acked;
		if (!state_is(ks, r))
			fail_msg("after crash: the state is neither batch %" PRIu64 " nor the next",
				 acked);
	}
	fr_keyspace_close(ks);
	fr_error e;
	TU_OK(fr_db_close(db, &e), e);
	return r;
}

static void test_kvdirect_crash(void **state)
{
	(void)state;
	uint64_t rng = tu_seed() ^ 0xd1d1;
	char *dir = tu_tmpdir("kvdirect-crash");
	uint64_t r = 0, total = 0;
	for (uint64_t cycle = 0; cycle < 10; cycle++) {
		uint64_t cnt;
		uint64_t acked =
			tu_kill_cycle(dir, r, 30 + tu_rand_below(&rng, 250), child_run, cycle, &cnt);
		total += cnt;
		r = check_recovered(dir, acked);
		assert_true(r >= acked);
	}
	fprintf(stderr, "# %" PRIu64 " batches acknowledged over 10 crashes, last %" PRIu64 "\n",
		total, r);
	assert_true(total > 10);
	tu_rmtree_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvdirect_read_paths),
		cmocka_unit_test(test_kvdirect_file_target),
		cmocka_unit_test(test_kvdirect_sync_order),
		cmocka_unit_test(test_kvdirect_torn_file),
		cmocka_unit_test(test_kvdirect_checkpoint),
		cmocka_unit_test(test_kvdirect_write_faults),
		cmocka_unit_test(test_kvdirect_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
