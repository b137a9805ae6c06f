/* SPDX-License-Identifier: MIT */
/*
 * test_crash.c - process-crash tests of the engine on the real file system.
 *
 * A forked child opens the database and commits numbered batches in a loop with
 * FR_PERSIST_BUFFER (the mode that promises survival of the death of the process). Batch N puts
 * K keys "b<N>-<i>" spread over two keyspaces (so over two trees), overwrites "counter-<c>" keys
 * in both with N, and deletes the keys of older batches by a deterministic rule (single removes,
 * a per-batch range delete and a range delete of everything old), so that whether a key must be
 * present is a function of (key, last batch recovered). A small memtable limit keeps flushes and
 * compactions running in the background. After each commit returns FR_OK the child writes N to a
 * pipe.
 *
 * The parent kills the child with SIGKILL after a random 5-150 ms, collects every acknowledged N,
 * reopens the database and checks that the recovered state is exactly the state after batch R,
 * where R is the last acknowledged batch or the one in flight: every acknowledged batch whole
 * (with its deletions applied), nothing of any later batch, nothing partial. Then the next cycle
 * continues the same database from R + 1. FR_CRASH_CYCLES sets the number of cycles (default 50),
 * FR_SEED the random delays.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fractio.h"
#include "testutil.h"
#include "testutil_kv.h"

#define KEYS_PER_BATCH 6
#define COUNTERS 3
#define NO_DELETE UINT64_MAX

/* ---- the deterministic workload ---- */

static void batch_key(uint64_t m, unsigned i, char *out, size_t n)
{
	snprintf(out, n, "b%010" PRIu64 "-%02u", m, i);
}

static size_t batch_val(uint64_t m, unsigned i, char *out)
{
	size_t len = 16 + (size_t)((m * 31 + i * 17) % 150);
	int k = snprintf(out, 32, "v%" PRIu64 ".%u:", m, i);
	for (size_t j = (size_t)k; j < len; j++)
		out[j] = (char)('a' + (m * 7 + i * 3 + j) % 26);
	return len;
}

/* The first batch that deletes the keys of batch m (every batch deletes by these rules):
 *  - batch D with D % 5 == 0 removes the keys of D - 10 one by one;
 *  - batch D with D % 7 == 0 range-deletes the keys of D - 20;
 *  - batch D with D % 100 == 0 range-deletes every key of a batch below D - 50. */
static uint64_t deleter(uint64_t m)
{
	uint64_t d = ((m + 50) / 100 + 1) * 100;
	if (m % 5 == 0 && m + 10 < d)
		d = m + 10;
	if ((m + 20) % 7 == 0 && m + 20 < d)
		d = m + 20;
	return d;
}

static bool batch_live(uint64_t m, uint64_t r)
{
	return m >= 1 && m <= r && deleter(m) > r;
}

/* "beta" keeps values of 80 bytes and more (about half of them) in blob files, so crashes hit
 * flushes, compactions and blob GC of a tree with KV separation too. */
static uint64_t max_blob_files; /* seen after a crash, to show the blob path was taken */

static const fr_keyspace_options *ks_opts(int k)
{
	static fr_keyspace_options o;
	fr_keyspace_options_init(&o);
	o.blob_threshold = k ? 80 : 0;
	o.blob_file_target = 16u << 10;
	return &o;
}

/* ---- the child ---- */

static void child_die(const char *what, fr_status rc, const fr_error *e, int wfd)
{
	uint64_t x = TU_CHILD_FAILED;
	fprintf(stderr, "crash child: %s: %s (%s)\n", what, fr_status_str(rc), e ? e->msg : "");
	if (write(wfd, &x, sizeof(x)) < 0)
		perror("write");
	_exit(3);
}

static void range_of_batch(uint64_t m, char *lo, char *hi, size_t n)
{
	snprintf(lo, n, "b%010" PRIu64 "-", m);
	snprintf(hi, n, "b%010" PRIu64 ".", m);
}

static void child_run(const char *dir, uint64_t start, int wfd)
{
	fr_db_options o;
	fr_db *db;
	fr_keyspace *ks[2];
	fr_batch *b;
	fr_error e;
	fr_status rc;
	char key[64], hi[64], val[200];

	fr_db_options_init(&o);
	o.memtable_max = 8192;
	o.write_buffer_max = 32768;
	o.journal_segment_max = 32768;
	rc = fr_db_open(dir, &o, &db, &e);
	if (rc)
		child_die("open", rc, &e, wfd);
	for (int k = 0; k < 2; k++) {
		rc = fr_keyspace_open(db, k ? "beta" : "alpha", ks_opts(k), &ks[k], &e);
		if (rc)
			child_die("keyspace open", rc, &e, wfd);
	}
	if (fr_batch_new(db, &b))
		child_die("batch", FR_NOMEM, NULL, wfd);
	for (uint64_t n = start;; n++) {
		for (unsigned i = 0; i < KEYS_PER_BATCH; i++) {
			batch_key(n, i, key, sizeof(key));
			size_t vl = batch_val(n, i, val);
			if (fr_batch_put(b, ks[i % 2], key, strlen(key), val, vl))
				child_die("batch put", FR_NOMEM, NULL, wfd);
		}
		int cl = snprintf(val, sizeof(val), "%" PRIu64, n);
		for (unsigned c = 0; c < COUNTERS; c++) {
			snprintf(key, sizeof(key), "counter-%u", c);
			for (int k = 0; k < 2; k++)
				if (fr_batch_put(b, ks[k], key, strlen(key), val, (size_t)cl))
					child_die("batch put", FR_NOMEM, NULL, wfd);
		}
		if (n % 5 == 0 && n > 10) {
			for (unsigned i = 0; i < KEYS_PER_BATCH; i++) {
				batch_key(n - 10, i, key, sizeof(key));
				if (fr_batch_remove(b, ks[i % 2], key, strlen(key)))
					child_die("batch remove", FR_NOMEM, NULL, wfd);
			}
		}
		if (n % 7 == 0 && n > 20) {
			range_of_batch(n - 20, key, hi, sizeof(key));
			for (int k = 0; k < 2; k++)
				if (fr_batch_delete_range(b, ks[k], key, strlen(key), hi,
							  strlen(hi)))
					child_die("batch delete_range", FR_NOMEM, NULL, wfd);
		}
		if (n % 100 == 0 && n > 50) {
			snprintf(hi, sizeof(hi), "b%010" PRIu64, n - 50);
			for (int k = 0; k < 2; k++)
				if (fr_batch_delete_range(b, ks[k], "b", 1, hi, strlen(hi)))
					child_die("batch delete_range", FR_NOMEM, NULL, wfd);
		}
		rc = fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &e);
		if (rc)
			child_die("commit", rc, &e, wfd);
		if (write(wfd, &n, sizeof(n)) != (ssize_t)sizeof(n))
			_exit(4);
	}
}

/* ---- the parent's check ---- */

static uint64_t parse_u64(const char *p, size_t n, bool *ok)
{
	uint64_t v = 0;
	*ok = n > 0 && n <= 19;
	for (size_t i = 0; i < n && *ok; i++) {
		if (p[i] < '0' || p[i] > '9')
			*ok = false;
		else
			v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return v;
}

/* Reads counter-0 of alpha: the last batch recovered, 0 when none. */
static uint64_t read_counter(fr_keyspace *ks)
{
	void *v;
	size_t vl;
	fr_error e;
	fr_status rc = fr_get(ks, "counter-0", 9, &v, &vl, &e);
	if (rc == FR_NOT_FOUND)
		return 0;
	if (rc)
		fail_msg("get counter-0: %s (%s)", fr_status_str(rc), e.msg);
	bool ok;
	uint64_t r = parse_u64(v, vl, &ok);
	fr_free(v);
	assert_true(ok);
	return r;
}

/* Iterates keyspace k (0 alpha, 1 beta) and checks it holds exactly the state after batch r. */
static void check_keyspace(fr_keyspace *ks, int k, uint64_t r, uint64_t cycle)
{
	fr_iter *it;
	fr_error e;
	char key[64], val[200];
	uint64_t live = 0, counters = 0, parent_keys = 0;
	fr_status rc = fr_iter_open(ks, NULL, &it, &e);
	if (rc)
		fail_msg("iter open: %s (%s)", fr_status_str(rc), e.msg);
	for (; fr_iter_valid(it); rc = fr_iter_next(it, &e)) {
		if (rc)
			break;
		size_t kl, vl;
		const char *kp = fr_iter_key(it, &kl);
		const char *vp = fr_iter_value(it, &vl);
		bool ok;
		if (kl == 14 && kp[0] == 'b' && kp[11] == '-') {
			uint64_t m = parse_u64(kp + 1, 10, &ok);
			assert_true(ok);
			unsigned i = (unsigned)parse_u64(kp + 12, 2, &ok);
			assert_true(ok);
			if (!batch_live(m, r) || i >= KEYS_PER_BATCH || (int)(i % 2) != k)
				fail_msg("cycle %" PRIu64 ": key %.*s present after batch %" PRIu64
					 " (deleted by %" PRIu64 ")",
					 cycle, (int)kl, kp, r, deleter(m));
			size_t el = batch_val(m, i, val);
			if (vl != el || memcmp(vp, val, el))
				fail_msg("cycle %" PRIu64 ": key %.*s has a wrong value", cycle,
					 (int)kl, kp);
			live++;
		} else if (kl == 9 && !memcmp(kp, "counter-", 8)) {
			uint64_t c = parse_u64(vp, vl, &ok);
			if (!ok || c != r)
				fail_msg("cycle %" PRIu64 ": %.*s = %.*s, expected %" PRIu64, cycle,
					 (int)kl, kp, (int)vl, vp, r);
			counters++;
		} else if (k == 0 && kl == 7 && !memcmp(kp, "p-cycle", 7)) {
			uint64_t c = parse_u64(vp, vl, &ok);
			assert_true(ok);
			assert_int_equal(c, cycle - 1);
			parent_keys++;
		} else {
			fail_msg("cycle %" PRIu64 ": unexpected key %.*s", cycle, (int)kl, kp);
		}
	}
	if (rc)
		fail_msg("iterating: %s (%s)", fr_status_str(rc), e.msg);
	fr_iter_close(it);
	uint64_t want = 0;
	for (uint64_t m = 1; m <= r; m++)
		if (batch_live(m, r))
			want += KEYS_PER_BATCH / 2;
	if (live != want)
		fail_msg("cycle %" PRIu64 ": keyspace %d holds %" PRIu64 " batch keys, expected %"
			 PRIu64 " after batch %" PRIu64, cycle, k, live, want, r);
	assert_int_equal(counters, r ? COUNTERS : 0);
	assert_int_equal(parent_keys, k == 0 && cycle > 1 ? 1 : 0);
	/* a few point reads through the lookup path, for the newest batches */
	for (uint64_t m = r > 30 ? r - 30 : 1; m <= r + 1; m++) {
		for (unsigned i = (unsigned)k; i < KEYS_PER_BATCH; i += 2) {
			batch_key(m, i, key, sizeof(key));
			void *v;
			size_t vl;
			rc = fr_get(ks, key, strlen(key), &v, &vl, &e);
			if (batch_live(m, r)) {
				if (rc)
					fail_msg("cycle %" PRIu64 ": get %s: %s (%s)", cycle, key,
						 fr_status_str(rc), e.msg);
				size_t el = batch_val(m, i, val);
				assert_int_equal(vl, el);
				assert_memory_equal(v, val, el);
				fr_free(v);
			} else if (rc != FR_NOT_FOUND) {
				fail_msg("cycle %" PRIu64 ": get %s: %s, expected not found", cycle,
					 key, fr_status_str(rc));
			}
		}
	}
}

/* Reopens the database after a crash, checks it against the acknowledged batches and returns
 * the last batch recovered. prev is the last batch recovered by the previous cycle. */
static uint64_t check_db(const char *dir, uint64_t prev, uint64_t acked, uint64_t cycle,
			 uint64_t *tables)
{
	fr_db_options o;
	fr_db *db;
	fr_keyspace *ks[2];
	fr_error e;
	fr_db_stats st;

	fr_db_options_init(&o);
	o.memtable_max = 8192;
	fr_status rc = fr_db_open(dir, &o, &db, &e);
	if (rc)
		fail_msg("cycle %" PRIu64 ": open after the crash: %s (%s)", cycle,
			 fr_status_str(rc), e.msg);
	assert_int_equal(fr_db_stats_get(db, &st, &e), FR_OK);
	assert_false(st.poisoned);
	if (st.table_cnt > *tables)
		*tables = st.table_cnt;
	if (st.blob_file_cnt > max_blob_files)
		max_blob_files = st.blob_file_cnt;
	for (int k = 0; k < 2; k++) {
		rc = fr_keyspace_open(db, k ? "beta" : "alpha", ks_opts(k), &ks[k], &e);
		if (rc)
			fail_msg("keyspace open: %s (%s)", fr_status_str(rc), e.msg);
	}
	uint64_t r = read_counter(ks[0]);
	if (getenv("FR_CRASH_DEBUG")) {
		fr_keyspace_stats ks_st;
		fr_keyspace_stats_get(ks[0], &ks_st, &e);
		fprintf(stderr, "cycle %llu: L0 %llu L6 %llu tables %llu compactions\n",
			(unsigned long long)cycle, (unsigned long long)ks_st.level_table_cnt[0],
			(unsigned long long)ks_st.level_table_cnt[6],
			(unsigned long long)st.compactions_done);
	}
	if (r < acked || r > acked + 1 || r < prev)
		fail_msg("cycle %" PRIu64 ": recovered batch %" PRIu64 ", but %" PRIu64
			 " was acknowledged (previous cycle ended at %" PRIu64 ")",
			 cycle, r, acked, prev);
	for (int k = 0; k < 2; k++)
		check_keyspace(ks[k], k, r, cycle);
	/* the database takes writes: record the cycle (read back by the next one) */
	char cv[24];
	int cl = snprintf(cv, sizeof(cv), "%" PRIu64, cycle);
	rc = fr_put(ks[0], "p-cycle", 7, cv, (size_t)cl, &e);
	if (rc)
		fail_msg("put after recovery: %s (%s)", fr_status_str(rc), e.msg);
	assert_int_equal(fr_db_persist(db, FR_PERSIST_SYNC_DATA, &e), FR_OK);
	assert_int_equal(fr_db_stats_get(db, &st, &e), FR_OK);
	assert_false(st.poisoned);
	fr_keyspace_close(ks[0]);
	fr_keyspace_close(ks[1]);
	rc = fr_db_close(db, &e);
	if (rc)
		fail_msg("close: %s (%s)", fr_status_str(rc), e.msg);
	return r;
}

static void test_crash_kill_during_commits(void **state)
{
	(void)state;
	const char *env = getenv("FR_CRASH_CYCLES");
	uint64_t cycles = env ? strtoull(env, NULL, 0) : 50;
	uint64_t rng = tu_seed() ^ 0x9e3779b97f4a7c15ull;
	char *dir = tu_tmpdir("crash");
	uint64_t r = 0, total_acked = 0, in_flight_seen = 0, tables = 0;

	for (uint64_t cycle = 1; cycle <= cycles; cycle++) {
		uint64_t cnt;
		uint64_t acked =
			tu_kill_cycle(dir, r, 5 + tu_rand_below(&rng, 146), child_run, cycle, &cnt);
		uint64_t nr = check_db(dir, r, acked, cycle, &tables);
		in_flight_seen += nr == acked + 1;
		total_acked += cnt;
		r = nr;
	}
	fprintf(stderr, "# %" PRIu64 " cycles, %" PRIu64 " batches acknowledged, last batch %"
		PRIu64 ", in-flight batch recovered %" PRIu64 " times, up to %" PRIu64
		" tables\n", cycles, total_acked, r, in_flight_seen, tables);
	/* the children must have made progress and flushed, or the test proved little */
	assert_true(total_acked > cycles);
	assert_true(tables > 0);
	fprintf(stderr, "# up to %" PRIu64 " blob files\n", max_blob_files);
	assert_true(max_blob_files > 0);
	tu_rmtree_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_kill_during_commits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
