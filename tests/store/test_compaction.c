/* SPDX-License-Identifier: MIT */
/*
 * test_compaction.c - the engine under sustained load, through the public API plus a look at
 * the internals where the public API cannot see: compaction strategies (leveled spreads data
 * over disjoint levels, FIFO drops only the oldest tables, by size and by age), tree options
 * kept across reopens, snapshots held across compactions, write stalls (a halted writer resumes
 * when compaction catches up, and gets the error when the database is poisoned instead), the
 * write-buffer budget, the journal limit, and closing while work runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/sync.h"
#include "db/db.h"
#include "fractio.h"
#include "testutil.h"
#include "version/version.h"

#define OK(x) assert_int_equal((x), FR_OK)

static void key_of(char *buf, size_t cap, const char *pfx, uint64_t i)
{
	snprintf(buf, cap, "%s%010llu", pfx, (unsigned long long)i);
}

static void put_n(fr_keyspace *ks, const char *pfx, uint64_t from, uint64_t n, size_t vlen)
{
	char k[64];
	char *v = malloc(vlen + 1);
	assert_non_null(v);
	for (uint64_t i = from; i < from + n; i++) {
		key_of(k, sizeof(k), pfx, i);
		for (size_t j = 0; j < vlen; j++)
			v[j] = (char)('a' + (i + j) % 26);
		OK(fr_put(ks, k, strlen(k), v, vlen, NULL));
	}
	free(v);
}

static bool has_key(fr_keyspace *ks, const char *pfx, uint64_t i)
{
	char k[64];
	bool b = false;
	key_of(k, sizeof(k), pfx, i);
	OK(fr_contains(ks, k, strlen(k), &b, NULL));
	return b;
}

/* Levels >= 1 of the keyspace's tree are sorted and disjoint. */
static void check_levels_disjoint(fr_keyspace *ks)
{
	struct tree_version *v = vset_current(ks->db->vs, ks->tree->id);
	for (int l = 1; l < LEVEL_CNT; l++) {
		for (size_t i = 1; i < v->level_cnt[l]; i++) {
			const struct sst_meta *a = &v->levels[l][i - 1]->meta;
			const struct sst_meta *b = &v->levels[l][i]->meta;
			size_t n = a->largest_len < b->smallest_len ? a->largest_len : b->smallest_len;
			int c = memcmp(a->largest, b->smallest, n);
			assert_true(c < 0 || (c == 0 && a->largest_len < b->smallest_len));
		}
	}
	tv_unref(v);
}

static fr_db *open_db(const char *dir, size_t memtable_max, uint32_t workers)
{
	fr_db_options o;
	fr_db_options_init(&o);
	o.memtable_max = memtable_max;
	o.worker_threads = workers;
	o.background = workers > 0;
	fr_db *db = NULL;
	OK(fr_db_open(dir, &o, &db, NULL));
	return db;
}

/* Closes ks, then db (which must succeed), and removes dir. */
static void close_all(fr_db *db, fr_keyspace *ks, char *dir)
{
	fr_keyspace_close(ks);
	OK(fr_db_close(db, NULL));
	tu_rmtree_free(dir);
}

static void test_leveled_spreads(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("leveled");
	fr_db *db = open_db(dir, 32u << 10, 2);
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.table_target_size = 32u << 10;
	ko.level_ratio = 4;
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "k", &ko, &ks, NULL));
	uint64_t rng = tu_seed();
	const uint64_t n = 20000;
	/* random order so that every level overlaps every other */
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = tu_rand_below(&rng, n);
		put_n(ks, "k", x, 1, 40);
	}
	put_n(ks, "k", 0, n, 40); /* and every key at least once */
	OK(fr_db_flush(db, NULL));
	OK(fr_db_wait_idle(db, NULL));
	fr_keyspace_stats st;
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_true(st.level_table_cnt[0] < 4);
	int deep = 0;
	for (int l = 1; l < LEVEL_CNT; l++)
		deep += st.level_table_cnt[l] > 0;
	assert_true(deep >= 2); /* data moved down more than one level */
	assert_true(st.compactions_done > 0);
	assert_true(st.compaction_write_bytes > 0);
	check_levels_disjoint(ks);
	for (uint64_t i = 0; i < n; i += 97)
		assert_true(has_key(ks, "k", i));
	/* a major compaction leaves one sorted run in the last level, everything still there */
	OK(fr_major_compact(ks, NULL));
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	for (int l = 0; l < LEVEL_CNT - 1; l++)
		assert_int_equal(st.level_table_cnt[l], 0);
	assert_true(st.level_table_cnt[LEVEL_CNT - 1] > 0);
	check_levels_disjoint(ks);
	uint64_t len = 0;
	OK(fr_len(ks, &len, NULL));
	assert_int_equal(len, n);
	close_all(db, ks, dir);
}

/* The seek budget of L0 (bg_note_l0_seek): 100 seeks plus one per 16 KiB of L0 tables. */
static uint64_t l0_seek_budget(fr_keyspace *ks)
{
	struct tree_version *v = vset_current(ks->db->vs, ks->tree->id);
	uint64_t b = 100;
	for (size_t i = 0; i < v->level_cnt[0]; i++)
		b += v->levels[0][i]->meta.file_size / (16u << 10);
	tv_unref(v);
	return b;
}

/* A database whose work runs in fr_db_wait_idle (deterministic) with a keyspace "k" of two
 * overlapping L0 tables: keys 0 to n-1 with 30-byte values, then every step-th of them again
 * with 31-byte values. */
static fr_db *open_two_l0(const char *dir, uint64_t n, uint64_t step, fr_keyspace **ks)
{
	fr_db *db = open_db(dir, 4u << 20, 0);
	OK(fr_keyspace_open(db, "k", NULL, ks, NULL));
	put_n(*ks, "k", 0, n, 30);
	OK(fr_db_flush(db, NULL));
	for (uint64_t i = 0; i < n; i += step)
		put_n(*ks, "k", i, 1, 31);
	OK(fr_db_flush(db, NULL));
	return db;
}

/* Forward seeks whose key lies in two or more L0 tables pay for each of them: past their
 * budget they compact L0 although it is below its trigger. Seeks that find one L0 table, and
 * seeks below the budget, leave L0 alone. */
static void test_seek_compaction(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("seekcpt");
	fr_keyspace *ks;
	const uint64_t n = 2000;
	fr_db *db = open_two_l0(dir, n, 1, &ks); /* every key again in the second table */
	put_n(ks, "z", 0, 10, 30); /* a third table that no seek below finds together with another */
	OK(fr_db_flush(db, NULL));
	OK(fr_db_wait_idle(db, NULL));
	fr_keyspace_stats st;
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 3); /* below the trigger of 4: nothing due */

	char k[64];
	fr_iter *it;
	/* many seeks into the table of its own: no compaction */
	for (int i = 0; i < 500; i++) {
		key_of(k, sizeof(k), "z", (uint64_t)i % 10);
		OK(fr_iter_open(ks, NULL, &it, NULL));
		OK(fr_iter_seek(it, k, strlen(k), NULL));
		assert_true(fr_iter_valid(it));
		fr_iter_close(it);
	}
	OK(fr_db_wait_idle(db, NULL));
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 3);

	/* seeks into the two overlapping tables: one short of the budget, then the last one */
	uint64_t budget = l0_seek_budget(ks);
	OK(fr_iter_open(ks, NULL, &it, NULL));
	for (uint64_t i = 0; i + 1 < budget; i++) {
		key_of(k, sizeof(k), "k", (i * 7919) % n);
		OK(fr_iter_seek(it, k, strlen(k), NULL));
		assert_true(fr_iter_valid(it));
	}
	OK(fr_db_wait_idle(db, NULL));
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 3);
	key_of(k, sizeof(k), "k", 5);
	OK(fr_iter_seek(it, k, strlen(k), NULL));
	fr_iter_close(it);
	OK(fr_db_wait_idle(db, NULL));
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 0); /* the whole of L0 went down */
	uint64_t deep = 0;
	for (int l = 1; l < LEVEL_CNT; l++)
		deep += st.level_table_cnt[l];
	assert_true(deep > 0);
	assert_true(st.compactions_done > 0);
	check_levels_disjoint(ks);

	/* the newest versions survived: every value is the second, longer one */
	uint64_t cnt = 0;
	OK(fr_iter_open(ks, NULL, &it, NULL));
	for (; fr_iter_valid(it); OK(fr_iter_next(it, NULL))) {
		size_t kl, vl;
		const char *kk = fr_iter_key(it, &kl);
		fr_iter_value(it, &vl);
		assert_int_equal(vl, kk[0] == 'k' ? 31 : 30);
		cnt++;
	}
	fr_iter_close(it);
	assert_int_equal(cnt, n + 10);
	close_all(db, ks, dir);
}

/* Point reads that look in two or more L0 tables count against the same budget (as LevelDB
 * charges a Get that consults a second file): reads the newest L0 table answers leave L0
 * alone; past the budget, reads that go on into an older table compact L0. */
static void test_read_compaction(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("readcpt");
	fr_keyspace *ks;
	const uint64_t n = 2000;
	/* the even keys again: a newer table spanning the odd ones */
	fr_db *db = open_two_l0(dir, n, 2, &ks);
	OK(fr_db_wait_idle(db, NULL));
	fr_keyspace_stats st;
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 2);

	uint64_t budget = l0_seek_budget(ks);
	assert_true(2 * budget < n);
	/* even keys: the newest table holds them, one table looked in */
	for (uint64_t i = 0; i < 2 * budget; i++)
		assert_true(has_key(ks, "k", 2 * i % n));
	OK(fr_db_wait_idle(db, NULL));
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 2);
	/* odd keys: past the newest table into the older one; one short of the budget */
	for (uint64_t i = 0; i + 1 < budget; i++)
		assert_true(has_key(ks, "k", 2 * i + 1));
	OK(fr_db_wait_idle(db, NULL));
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 2);
	/* and the last one: a read that finds nothing counts as well */
	char k[64];
	key_of(k, sizeof(k), "k", 1001);
	size_t kl = strlen(k);
	k[kl - 1] = 'x'; /* "k000000100x": after k0000001009, before k0000001010: no table */
	bool b = true;
	OK(fr_contains(ks, k, kl, &b, NULL));
	assert_false(b);
	OK(fr_db_wait_idle(db, NULL));
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_int_equal(st.level_table_cnt[0], 0); /* the whole of L0 went down */
	assert_true(st.compactions_done > 0);
	check_levels_disjoint(ks);
	/* the newest versions survived */
	for (uint64_t i = 0; i < n; i += 7) {
		void *v;
		size_t vl;
		key_of(k, sizeof(k), "k", i);
		OK(fr_get(ks, k, strlen(k), &v, &vl, NULL));
		assert_int_equal(vl, i % 2 ? 30 : 31);
		fr_free(v);
	}
	close_all(db, ks, dir);
}

static void test_options_persist(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("optpersist");
	fr_db *db = open_db(dir, 1u << 20, 1);
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.compaction = FR_COMPACTION_FIFO;
	ko.fifo_limit_bytes = 123456789;
	ko.fifo_ttl_seconds = 77;
	ko.l0_trigger = 6;
	ko.level_ratio = 8;
	ko.table_target_size = 1u << 20;
	ko.block_size = 8192;
	ko.level[LEVEL_CNT - 1].bloom_bits_per_key = 0;
	ko.level[2].compress = 0;
	ko.level[3].block_size = 16384;
	ko.level[4].restart_interval = 4;
	ko.hash_index = true;
	ko.level[5].hash_index = 0;
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "fifo", &ko, &ks, NULL));
	fr_keyspace_close(ks);
	/* a bad option is refused, creating nothing */
	fr_keyspace_options bad;
	fr_keyspace_options_init(&bad);
	bad.compaction = (fr_compaction)9;
	assert_int_equal(fr_keyspace_open(db, "bad", &bad, &ks, NULL), FR_INVALID);
	fr_keyspace_options_init(&bad);
	bad.level_ratio = 1;
	assert_int_equal(fr_keyspace_open(db, "bad", &bad, &ks, NULL), FR_INVALID);
	fr_keyspace_options_init(&bad);
	bad.level[1].hash_index = 2;
	assert_int_equal(fr_keyspace_open(db, "bad", &bad, &ks, NULL), FR_INVALID);
	fr_keyspace_options_init(&bad);
	bad.level[1].compress = 5;
	assert_int_equal(fr_keyspace_open(db, "bad", &bad, &ks, NULL), FR_INVALID);
	bool ex = true;
	OK(fr_keyspace_exists(db, "bad", &ex, NULL));
	assert_false(ex);
	OK(fr_db_close(db, NULL));

	for (int round = 0; round < 2; round++) {
		db = open_db(dir, 1u << 20, 1);
		OK(fr_keyspace_open(db, "fifo", NULL, &ks, NULL)); /* options of creation stay */
		const struct tree_opts *t = &ks->tree->opts;
		assert_int_equal(t->policy.strategy, CS_FIFO);
		assert_int_equal(t->policy.fifo_limit_bytes, 123456789);
		assert_int_equal(t->policy.fifo_ttl_s, 77);
		assert_int_equal(t->policy.l0_trigger, 6);
		assert_int_equal(t->policy.level_ratio, 8);
		assert_int_equal(t->policy.table_target_size, 1u << 20);
		assert_int_equal(t->level[0].block_size, 8192);
		assert_int_equal(t->level[0].bloom_bits_per_key, 10);
		assert_int_equal(t->level[LEVEL_CNT - 1].bloom_bits_per_key, 0);
		assert_true(t->level[1].compress);
		assert_false(t->level[2].compress);
		assert_int_equal(t->level[3].block_size, 16384);
		assert_int_equal(t->level[4].restart_interval, 4);
		assert_int_equal(t->level[5].restart_interval, 16);
		assert_true(t->level[0].hash_index);
		assert_true(t->level[4].hash_index);
		assert_false(t->level[5].hash_index);
		fr_keyspace_close(ks);
		OK(fr_db_close(db, NULL));
	}
	tu_rmtree_free(dir);
}

static void test_snapshot_across_compactions(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("snapcompact");
	fr_db *db = open_db(dir, 16u << 10, 2);
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.table_target_size = 16u << 10;
	ko.level_ratio = 2;
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "k", &ko, &ks, NULL));
	OK(fr_put(ks, "x", 1, "v1", 2, NULL));
	OK(fr_put(ks, "gone", 4, "here", 4, NULL));
	fr_snapshot *s;
	OK(fr_snapshot_open(db, &s, NULL));
	OK(fr_remove(ks, "gone", 4, NULL));
	for (int r = 0; r < 5; r++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", r + 2);
		OK(fr_put(ks, "x", 1, v, strlen(v), NULL));
		put_n(ks, "fill", (uint64_t)r * 2000, 2000, 30);
		OK(fr_db_flush(db, NULL));
		if (r % 2)
			OK(fr_major_compact(ks, NULL));
	}
	OK(fr_db_wait_idle(db, NULL));
	void *val;
	size_t vlen;
	OK(fr_snapshot_get(s, ks, "x", 1, &val, &vlen, NULL));
	assert_int_equal(vlen, 2);
	assert_memory_equal(val, "v1", 2);
	fr_free(val);
	OK(fr_snapshot_get(s, ks, "gone", 4, &val, &vlen, NULL));
	fr_free(val);
	assert_int_equal(fr_get(ks, "gone", 4, NULL, NULL, NULL), FR_NOT_FOUND);
	OK(fr_get(ks, "x", 1, &val, &vlen, NULL));
	assert_memory_equal(val, "v6", 2);
	fr_free(val);
	fr_snapshot_close(s);
	/* without the snapshot a major compaction drops the old versions and the tombstone */
	OK(fr_major_compact(ks, NULL));
	assert_int_equal(fr_get(ks, "gone", 4, NULL, NULL, NULL), FR_NOT_FOUND);
	close_all(db, ks, dir);
}

static void test_fifo_drops_oldest(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("fifo");
	fr_db *db = open_db(dir, 1u << 20, 1);
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.compaction = FR_COMPACTION_FIFO;
	ko.fifo_limit_bytes = 64u << 10;
	ko.compress = false;
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "q", &ko, &ks, NULL));
	/* 30 tables of ~10 KiB, written in key order: the oldest tables hold the smallest keys */
	for (uint64_t t = 0; t < 30; t++) {
		put_n(ks, "q", t * 100, 100, 100);
		OK(fr_db_flush(db, NULL));
	}
	OK(fr_db_wait_idle(db, NULL));
	fr_keyspace_stats st;
	OK(fr_keyspace_stats_get(ks, &st, NULL));
	assert_true(st.table_bytes <= ko.fifo_limit_bytes);
	assert_true(st.table_cnt >= 3);
	/* what is left is a suffix of the writes: once a key is present, every later one is */
	bool seen = false;
	uint64_t first = 0;
	for (uint64_t i = 0; i < 3000; i++) {
		bool b = has_key(ks, "q", i);
		if (b && !seen) {
			seen = true;
			first = i;
		}
		assert_true(!seen || b);
	}
	assert_true(seen);
	assert_true(first > 0);
	assert_int_equal(first % 100, 0); /* whole tables go */
	close_all(db, ks, dir);
}

static void test_fifo_ttl(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("fifottl");
	fr_db *db = open_db(dir, 1u << 20, 1);
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.compaction = FR_COMPACTION_FIFO;
	ko.fifo_ttl_seconds = 1;
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "t", &ko, &ks, NULL));
	put_n(ks, "old", 0, 100, 10);
	OK(fr_db_flush(db, NULL));
	assert_true(has_key(ks, "old", 5));
	sleep(3); /* creation times are whole seconds: 3 s is past a 1 s TTL for sure */
	put_n(ks, "new", 0, 100, 10);
	OK(fr_db_flush(db, NULL));
	OK(fr_db_wait_idle(db, NULL));
	assert_false(has_key(ks, "old", 5));
	assert_true(has_key(ks, "new", 5));
	close_all(db, ks, dir);
}

struct writer_arg {
	fr_keyspace *ks;
	uint64_t n;
	uint64_t done;   /* atomic: puts finished */
	fr_status rc;    /* of the first failed put */
};

static void *writer_main(void *p)
{
	struct writer_arg *w = p;
	char k[64], v[200];
	memset(v, 'v', sizeof(v));
	for (uint64_t i = 0; i < w->n; i++) {
		key_of(k, sizeof(k), "s", i);
		fr_status rc = fr_put(w->ks, k, strlen(k), v, sizeof(v), NULL);
		if (rc) {
			w->rc = rc;
			break;
		}
		atomic_add_u64(&w->done, 1);
	}
	return NULL;
}

/* Starts a writer with compactions held, and waits until it is halted by the L0 stop. */
static void stall_until_halted(fr_db *db, struct writer_arg *w, pthread_t *th)
{
	atomic_store_rel_bool(&db->test_hold_compactions, true);
	assert_int_equal(pthread_create(th, NULL, writer_main, w), 0);
	uint64_t last = UINT64_MAX;
	int still = 0;
	/* halted: L0 at the stop, and no progress for 200 ms (a loaded machine may also pause a
	 * merely throttled writer that long, hence both) */
	for (int i = 0; i < 6000; i++) {
		usleep(20000);
		uint64_t d = atomic_load_acq_u64(&w->done);
		still = d == last ? still + 1 : 0;
		last = d;
		if (still >= 10 && atomic_load_acq_u32(&w->ks->tree->l0_cnt) >= L0_STOP)
			break;
	}
	assert_true(still >= 10);
	assert_true(atomic_load_acq_u64(&w->done) < w->n);
	assert_true(atomic_load_acq_u32(&w->ks->tree->l0_cnt) >= L0_STOP);
	fr_db_stats st;
	OK(fr_db_stats_get(db, &st, NULL));
	assert_true(st.write_stalls > 0);
}

static void test_stall_resumes(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("stall");
	fr_db *db = open_db(dir, 8u << 10, 2);
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "s", NULL, &ks, NULL));
	struct writer_arg w = {.ks = ks, .n = 3000};
	pthread_t th;
	stall_until_halted(db, &w, &th);
	/* compaction catches up: the writer goes on and finishes */
	atomic_store_rel_bool(&db->test_hold_compactions, false);
	fr_mutex_lock(&db->mu);
	ks->tree->cpt_dirty = true;
	bg_kick(db);
	fr_mutex_unlock(&db->mu);
	assert_int_equal(pthread_join(th, NULL), 0);
	OK(w.rc);
	assert_int_equal(w.done, w.n);
	assert_true(atomic_load_acq_u32(&ks->tree->l0_cnt) < L0_STOP);
	for (uint64_t i = 0; i < w.n; i += 37)
		assert_true(has_key(ks, "s", i));
	close_all(db, ks, dir);
}

static void test_stall_poisoned(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("stallpoison");
	fr_db *db = open_db(dir, 8u << 10, 2);
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "s", NULL, &ks, NULL));
	struct writer_arg w = {.ks = ks, .n = 3000};
	pthread_t th;
	stall_until_halted(db, &w, &th);
	/* the work the writer waits for fails instead: it gets the error, it does not hang */
	db_poison(db, FR_IO, NULL);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, FR_POISONED);
	close_all(db, ks, dir);
}

static void test_write_buffer_budget(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("budget");
	fr_db_options o;
	fr_db_options_init(&o);
	o.background = false; /* flushes run inline: the bound holds after every commit */
	o.memtable_max = 16u << 20;
	o.write_buffer_max = 512u << 10;
	fr_db *db;
	OK(fr_db_open(dir, &o, &db, NULL));
	fr_keyspace *ks[8];
	for (int i = 0; i < 8; i++) {
		char name[8];
		snprintf(name, sizeof(name), "b%d", i);
		OK(fr_keyspace_open(db, name, NULL, &ks[i], NULL));
	}
	uint64_t rng = 42;
	char k[64], v[256];
	memset(v, 'x', sizeof(v));
	for (int i = 0; i < 20000; i++) {
		/* skewed: keyspace 0 gets half the writes */
		int t = tu_rand_below(&rng, 2) ? 0 : (int)tu_rand_below(&rng, 8);
		key_of(k, sizeof(k), "b", (uint64_t)i);
		OK(fr_put(ks[t], k, strlen(k), v, sizeof(v), NULL));
		if (i % 100 == 0) {
			fr_db_stats st;
			OK(fr_db_stats_get(db, &st, NULL));
			assert_true(st.memtable_bytes <= o.write_buffer_max + (64u << 10));
		}
	}
	fr_db_stats st;
	OK(fr_db_stats_get(db, &st, NULL));
	assert_true(st.flushes_done > 0);
	for (int i = 0; i < 8; i++)
		fr_keyspace_close(ks[i]);
	OK(fr_db_close(db, NULL));
	tu_rmtree_free(dir);
}

static void test_journal_limit(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("jnlmax");
	fr_db_options o;
	fr_db_options_init(&o);
	o.journal_segment_max = 64u << 10;
	o.journal_max = 256u << 10;
	o.memtable_max = 64u << 20; /* size alone would never flush anything */
	o.write_buffer_max = 256u << 20;
	fr_db *db;
	OK(fr_db_open(dir, &o, &db, NULL));
	fr_keyspace *idle, *busy;
	OK(fr_keyspace_open(db, "idle", NULL, &idle, NULL));
	OK(fr_keyspace_open(db, "busy", NULL, &busy, NULL));
	OK(fr_put(idle, "a", 1, "b", 1, NULL)); /* pins the first segment until flushed */
	char k[64], v[200];
	memset(v, 'y', sizeof(v));
	for (int i = 0; i < 20000; i++) {
		key_of(k, sizeof(k), "j", (uint64_t)i);
		OK(fr_put(busy, k, strlen(k), v, sizeof(v), NULL));
		if (i % 500 == 499) {
			OK(fr_db_wait_idle(db, NULL));
			fr_db_stats st;
			OK(fr_db_stats_get(db, &st, NULL));
			/* the limit, plus the segment being written and one sealed behind it */
			assert_true(st.journal_bytes <= o.journal_max + 3 * o.journal_segment_max);
		}
	}
	void *val;
	size_t vlen;
	OK(fr_get(idle, "a", 1, &val, &vlen, NULL));
	fr_free(val);
	fr_keyspace_close(idle);
	fr_keyspace_close(busy);
	OK(fr_db_close(db, NULL));
	/* everything is still there after a reopen */
	OK(fr_db_open(dir, &o, &db, NULL));
	OK(fr_keyspace_open(db, "idle", NULL, &idle, NULL));
	OK(fr_keyspace_open(db, "busy", NULL, &busy, NULL));
	OK(fr_get(idle, "a", 1, &val, &vlen, NULL));
	fr_free(val);
	uint64_t len;
	OK(fr_len(busy, &len, NULL));
	assert_int_equal(len, 20000);
	fr_keyspace_close(idle);
	close_all(db, busy, dir);
}

/* Closing while flushes and compactions run: no hang, nothing lost after reopen. */
static void test_close_during_work(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("closework");
	for (int round = 0; round < 4; round++) {
		fr_db *db = open_db(dir, 16u << 10, 2);
		fr_keyspace_options ko;
		fr_keyspace_options_init(&ko);
		ko.table_target_size = 16u << 10;
		fr_keyspace *ks;
		OK(fr_keyspace_open(db, "c", &ko, &ks, NULL));
		put_n(ks, "c", (uint64_t)round * 5000, 5000, 60);
		fr_keyspace_close(ks);
		OK(fr_db_close(db, NULL)); /* right away, work still queued */
	}
	fr_db *db = open_db(dir, 16u << 10, 2);
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "c", NULL, &ks, NULL));
	uint64_t len;
	OK(fr_len(ks, &len, NULL));
	assert_int_equal(len, 20000);
	OK(fr_db_wait_idle(db, NULL));
	check_levels_disjoint(ks);
	close_all(db, ks, dir);
}

/* Writers, readers (point reads, snapshots, iterators), flushes and major compactions at
 * once; every read is checked. Writer w writes keys "w<w>-<i>" in order with value i, so a
 * reader knows exactly what must be there below a writer's published count. */
#define CW_WRITERS 2
#define CW_READERS 2
#define CW_KEYS 6000

struct cw {
	fr_db *db;
	fr_keyspace *ks;
	uint64_t written[CW_WRITERS]; /* atomic */
	bool stop;                    /* atomic */
	int failures;                 /* atomic */
};

struct cw_arg {
	struct cw *cw;
	int id;
};

static void cw_key(char *k, size_t cap, int w, uint64_t i)
{
	snprintf(k, cap, "w%d-%08llu", w, (unsigned long long)i);
}

static void *cw_writer(void *p)
{
	struct cw_arg *a = p;
	char k[32], v[32];
	for (uint64_t i = 0; i < CW_KEYS; i++) {
		cw_key(k, sizeof(k), a->id, i);
		int n = snprintf(v, sizeof(v), "%llu", (unsigned long long)i);
		if (fr_put(a->cw->ks, k, strlen(k), v, (size_t)n, NULL)) {
			atomic_add_u32((uint32_t *)&a->cw->failures, 1);
			break;
		}
		atomic_store_rel_u64(&a->cw->written[a->id], i + 1);
	}
	return NULL;
}

static void *cw_reader(void *p)
{
	struct cw_arg *a = p;
	struct cw *cw = a->cw;
	uint64_t rng = 1234 + (uint64_t)a->id;
	char k[32];
	while (!atomic_load_acq_bool(&cw->stop)) {
		int w = (int)tu_rand_below(&rng, CW_WRITERS);
		uint64_t n = atomic_load_acq_u64(&cw->written[w]);
		if (n) {
			uint64_t i = tu_rand_below(&rng, n);
			cw_key(k, sizeof(k), w, i);
			void *val = NULL;
			size_t vlen = 0;
			char want[32];
			int wn = snprintf(want, sizeof(want), "%llu", (unsigned long long)i);
			if (fr_get(cw->ks, k, strlen(k), &val, &vlen, NULL) || vlen != (size_t)wn ||
			    memcmp(val, want, vlen))
				atomic_add_u32((uint32_t *)&cw->failures, 1);
			fr_free(val);
		}
		/* a snapshot iterator over one writer's keys sees at least what was written
		 * before it opened, in order, with no gaps */
		if (tu_rand_below(&rng, 50) == 0) {
			uint64_t before = atomic_load_acq_u64(&cw->written[w]);
			fr_snapshot *s;
			if (fr_snapshot_open(cw->db, &s, NULL)) {
				atomic_add_u32((uint32_t *)&cw->failures, 1);
				continue;
			}
			char pfx[8];
			int pn = snprintf(pfx, sizeof(pfx), "w%d-", w);
			fr_iter_options io = {.prefix = pfx, .prefix_len = (size_t)pn, .snapshot = s};
			fr_iter *it;
			uint64_t cnt = 0;
			if (fr_iter_open(cw->ks, &io, &it, NULL) == FR_OK) {
				for (; fr_iter_valid(it); fr_iter_next(it, NULL)) {
					size_t kl;
					const char *kk = fr_iter_key(it, &kl);
					cw_key(k, sizeof(k), w, cnt);
					if (kl != strlen(k) || memcmp(kk, k, kl))
						atomic_add_u32((uint32_t *)&cw->failures, 1);
					cnt++;
				}
				fr_iter_close(it);
			}
			if (cnt < before)
				atomic_add_u32((uint32_t *)&cw->failures, 1);
			fr_snapshot_close(s);
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("concurrent");
	struct cw cw = {0};
	cw.db = open_db(dir, 16u << 10, 2);
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.table_target_size = 16u << 10;
	ko.level_ratio = 3;
	OK(fr_keyspace_open(cw.db, "c", &ko, &cw.ks, NULL));
	pthread_t th[CW_WRITERS + CW_READERS];
	struct cw_arg args[CW_WRITERS + CW_READERS];
	for (int i = 0; i < CW_WRITERS + CW_READERS; i++) {
		args[i] = (struct cw_arg){.cw = &cw, .id = i < CW_WRITERS ? i : i - CW_WRITERS};
		assert_int_equal(pthread_create(&th[i], NULL, i < CW_WRITERS ? cw_writer : cw_reader,
						&args[i]),
				 0);
	}
	/* flushes and major compactions from the test thread while it all runs */
	for (int r = 0; r < 6; r++) {
		usleep(50000);
		OK(fr_db_flush(cw.db, NULL));
		if (r % 2)
			OK(fr_major_compact(cw.ks, NULL));
	}
	for (int i = 0; i < CW_WRITERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	atomic_store_rel_bool(&cw.stop, true);
	for (int i = CW_WRITERS; i < CW_WRITERS + CW_READERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(cw.failures, 0);
	uint64_t len;
	OK(fr_len(cw.ks, &len, NULL));
	assert_int_equal(len, (uint64_t)CW_WRITERS * CW_KEYS);
	close_all(cw.db, cw.ks, dir);
}

static size_t fd_count(void)
{
	size_t n = 0;
	char path[64];
	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/* Many tables, few descriptors and a small cache: reads stay within both bounds. */
static void test_file_and_cache_bounds(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("bounds");
	fr_db_options o;
	fr_db_options_init(&o);
	o.memtable_max = 16u << 10;
	o.max_open_files = 16;
	o.block_cache_bytes = 1u << 20;
	fr_db *db;
	OK(fr_db_open(dir, &o, &db, NULL));
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.compaction = FR_COMPACTION_FIFO; /* never merges: one table per flush */
	ko.fifo_limit_bytes = 1ull << 40;
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "b", &ko, &ks, NULL));
	for (uint64_t t = 0; t < 100; t++) {
		put_n(ks, "b", t * 50, 50, 100);
		OK(fr_db_flush(db, NULL));
	}
	OK(fr_db_wait_idle(db, NULL));
	fr_keyspace_stats ks_st;
	OK(fr_keyspace_stats_get(ks, &ks_st, NULL));
	assert_true(ks_st.table_cnt >= 100);
	/* every table once more, through a fresh database handle: nothing is open yet */
	fr_keyspace_close(ks);
	OK(fr_db_close(db, NULL));
	size_t base = fd_count();
	OK(fr_db_open(dir, &o, &db, NULL));
	OK(fr_keyspace_open(db, "b", NULL, &ks, NULL));
	size_t opened = fd_count(); /* lock, journal, manifest: not table files */
	uint64_t rng = 7;
	size_t most = 0;
	for (int r = 0; r < 3000; r++) {
		uint64_t i = tu_rand_below(&rng, 5000);
		assert_true(has_key(ks, "b", i));
		if (r % 50 == 0) {
			size_t n = fd_count();
			most = n > most ? n : most;
			assert_true(n <= opened + o.max_open_files);
		}
	}
	uint64_t len;
	OK(fr_len(ks, &len, NULL)); /* an iterator over all 100 tables at once */
	assert_int_equal(len, 5000);
	assert_true(most > base);
	fr_db_stats st;
	OK(fr_db_stats_get(db, &st, NULL));
	assert_true(st.open_files <= o.max_open_files);
	assert_int_equal(st.cache_capacity, o.block_cache_bytes);
	assert_true(st.cache_bytes <= st.cache_capacity);
	assert_true(st.cache_misses > 0);
	/* the same few keys again: served from the cache */
	uint64_t hits = st.cache_hits;
	for (int r = 0; r < 100; r++)
		assert_true(has_key(ks, "b", 4999));
	OK(fr_db_stats_get(db, &st, NULL));
	assert_true(st.cache_hits >= hits + 100);
	close_all(db, ks, dir);
}

/* Journal segments were deleted on the strength of manifest edits; a manifest cut back past
 * them must not open to an older state (the journal's start record gives it away). */
static void test_manifest_behind_journal(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("mfcut");
	fr_db_options o;
	fr_db_options_init(&o);
	o.journal_segment_max = 64u << 10;
	o.journal_max = 128u << 10; /* the catalog's memtable must not pin the first segment */
	o.memtable_max = 32u << 10;
	fr_db *db;
	OK(fr_db_open(dir, &o, &db, NULL));
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "m", NULL, &ks, NULL));
	put_n(ks, "m", 0, 5000, 100);
	OK(fr_db_wait_idle(db, NULL));
	put_n(ks, "n", 0, 10, 100); /* a commit after the deletions: their segments are gone */
	fr_db_stats st;
	OK(fr_db_stats_get(db, &st, NULL));
	assert_true(st.journal_write_bytes > 4 * o.journal_segment_max);
	assert_true(st.journal_segment_cnt <= 3); /* segments were deleted */
	fr_keyspace_close(ks);
	OK(fr_db_close(db, NULL));
	/* cut the live manifest back to its first record (the state it started with, written at
	 * open): every later edit gone, a clean cut at a record boundary */
	char path[4096], cur[64] = {0};
	snprintf(path, sizeof(path), "%s/CURRENT", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(cur, sizeof(cur), f));
	fclose(f);
	cur[strcspn(cur, "\n")] = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, cur);
	uint8_t hdr[28];
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	fclose(f);
	uint32_t first = (uint32_t)hdr[24] | (uint32_t)hdr[25] << 8 | (uint32_t)hdr[26] << 16 |
			 (uint32_t)hdr[27] << 24;
	assert_int_equal(truncate(path, 24 + 16 + (off_t)first), 0);
	fr_error e;
	assert_int_equal(fr_db_open(dir, &o, &db, &e), FR_CORRUPTION);
	assert_non_null(strstr(e.msg, "manifest"));
	tu_rmtree_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leveled_spreads),
		cmocka_unit_test(test_seek_compaction),
		cmocka_unit_test(test_read_compaction),
		cmocka_unit_test(test_options_persist),
		cmocka_unit_test(test_snapshot_across_compactions),
		cmocka_unit_test(test_fifo_drops_oldest),
		cmocka_unit_test(test_fifo_ttl),
		cmocka_unit_test(test_stall_resumes),
		cmocka_unit_test(test_stall_poisoned),
		cmocka_unit_test(test_write_buffer_budget),
		cmocka_unit_test(test_journal_limit),
		cmocka_unit_test(test_close_during_work),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_file_and_cache_bounds),
		cmocka_unit_test(test_manifest_behind_journal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
