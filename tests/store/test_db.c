/* SPDX-License-Identifier: MIT */
/*
 * test_db.c - the documented behaviour of the engine through its public interface (fractio.h):
 * opening and locking, the format file, keyspaces (own and shared trees), point operations,
 * range deletes, batches, snapshots, iterators, journal replay and odd directory contents.
 * Several tests also run with background work off and an 8 KiB memtable, so that flushes and
 * compactions really happen inline (the "_inline" variants).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "db/write.h"
#include "fractio.h"
#include "testutil.h"
#include "testutil_db.h"

/* the error of the last failed call checked with OK() */
static fr_error E;

#define OK(call) TU_OK(call, E)

/* this file's names for the shared fixture's helpers (testutil_db.h) */
#define teardown tu_fx_teardown
#define t_db_open tu_fx_open
#define t_db_close tu_fx_close
#define t_db_reopen tu_fx_reopen
#define t_ks_open tu_fx_ks
#define t_ks_exists tu_ks_exists
#define put_s tu_put_s
#define expect_s tu_expect_s

static int setup(void **state)
{
	*state = tu_fx_new("db", false);
	return *state ? 0 : -1;
}

static int setup_inline(void **state)
{
	*state = tu_fx_new("db", true);
	return *state ? 0 : -1;
}

static void del_s(fr_keyspace *ks, const char *k)
{
	OK(fr_remove(ks, k, strlen(k), &E));
}

static void snap_expect_s(const fr_snapshot *s, fr_keyspace *ks, const char *k, const char *v)
{
	void *val = NULL;
	size_t n = 0;
	bool has = !v;
	fr_status rc = fr_snapshot_get(s, ks, k, strlen(k), &val, &n, &E);
	OK(fr_snapshot_contains(s, ks, k, strlen(k), &has, &E));
	if (!v) {
		if (rc != FR_NOT_FOUND)
			fail_msg("snapshot %s/%s: expected absent, got %s", fr_keyspace_name(ks), k,
				 fr_status_str(rc));
		assert_false(has);
		return;
	}
	if (rc != FR_OK)
		fail_msg("snapshot %s/%s: expected %s, got %s", fr_keyspace_name(ks), k, v,
			 fr_status_str(rc));
	if (n != strlen(v) || memcmp(val, v, n))
		fail_msg("snapshot %s/%s: expected %s, got %.*s", fr_keyspace_name(ks), k, v,
			 (int)n, (char *)val);
	assert_true(has);
	fr_free(val);
}

/* ---- iterator results as strings: "k1=v1,k2=v2" (non-printable bytes as \xHH) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const void *data, size_t n, bool escape)
{
	const uint8_t *d = data;
	for (size_t i = 0; i < n; i++) {
		if (b->len + 8 >= b->cap) {
			b->cap = b->cap ? b->cap * 2 : 256;
			b->p = realloc(b->p, b->cap);
			assert_non_null(b->p);
		}
		if (escape && (d[i] < 0x20 || d[i] >= 0x7f || d[i] == '\\'))
			b->len += (size_t)sprintf(b->p + b->len, "\\x%02x", d[i]);
		else
			b->p[b->len++] = (char)d[i];
	}
	if (!b->p) {
		b->p = malloc(1);
		assert_non_null(b->p);
	}
	b->p[b->len] = 0;
}

/* The rest of an iterator from its current position. Caller frees. */
static char *iter_rest(fr_iter *it, bool vals)
{
	struct sbuf b = {0};
	sb_add(&b, "", 0, false);
	bool first = true;
	while (fr_iter_valid(it)) {
		size_t kl, vl;
		const void *k = fr_iter_key(it, &kl);
		const void *v = fr_iter_value(it, &vl);
		if (!first)
			sb_add(&b, ",", 1, false);
		first = false;
		sb_add(&b, k, kl, true);
		if (vals) {
			sb_add(&b, "=", 1, false);
			sb_add(&b, v, vl, true);
		}
		OK(fr_iter_next(it, &E));
	}
	return b.p;
}

static char *iter_str(fr_keyspace *ks, const fr_iter_options *o, bool vals)
{
	fr_iter *it;
	OK(fr_iter_open(ks, o, &it, &E));
	char *s = iter_rest(it, vals);
	fr_iter_close(it);
	return s;
}

#define ASSERT_ITER(ks, o, vals, want)                                                     \
	do {                                                                               \
		char *got_ = iter_str((ks), (o), (vals));                                  \
		if (strcmp(got_, (want)))                                                  \
			fail_msg("line %d: iteration: expected [%s], got [%s]", __LINE__,      \
				 (want), got_);                                            \
		free(got_);                                                                \
	} while (0)

static uint64_t iter_count(fr_keyspace *ks, bool reverse, const fr_snapshot *s)
{
	fr_iter_options o = {.reverse = reverse, .snapshot = s};
	fr_iter *it;
	OK(fr_iter_open(ks, &o, &it, &E));
	uint64_t n = 0;
	size_t pl = 0;
	char prev[64] = {0};
	while (fr_iter_valid(it)) {
		size_t kl;
		const char *k = fr_iter_key(it, &kl);
		assert_true(kl < sizeof(prev));
		if (n) {
			int c = memcmp(k, prev, kl < pl ? kl : pl);
			if (!c)
				c = kl < pl ? -1 : kl > pl;
			if (reverse ? c >= 0 : c <= 0)
				fail_msg("iteration out of order at %.*s", (int)kl, k);
		}
		memcpy(prev, k, kl);
		pl = kl;
		n++;
		OK(fr_iter_next(it, &E));
	}
	fr_iter_close(it);
	return n;
}

static uint64_t ks_len(fr_keyspace *ks)
{
	uint64_t n = UINT64_MAX;
	OK(fr_len(ks, &n, &E));
	return n;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static bool file_exists(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static fr_db_stats t_db_stats(fr_db *db)
{
	fr_db_stats st;
	OK(fr_db_stats_get(db, &st, &E));
	return st;
}

/* ---- opening ---- */

static void test_db_open_busy_reopen(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	assert_true(file_exists(f->dir, "FORMAT"));
	fr_db *db2 = (fr_db *)&E;
	assert_int_equal(fr_db_open(f->dir, &f->o, &db2, &E), FR_BUSY);
	assert_null(db2);
	assert_int_equal(E.code, FR_BUSY);
	assert_true(E.msg[0] != 0);
	/* the same directory under another spelling is the same lock */
	char alias[PATH_MAX];
	snprintf(alias, sizeof(alias), "%s/.", f->dir);
	assert_int_equal(fr_db_open(alias, &f->o, &db2, &E), FR_BUSY);

	fr_keyspace *ks = t_ks_open(f, "a", NULL);
	put_s(ks, "k", "v");
	fr_keyspace_close(ks);
	t_db_close(f);
	t_db_open(f);
	ks = t_ks_open(f, "a", NULL);
	expect_s(ks, "k", "v");
	assert_int_equal(fr_db_open(f->dir, &f->o, &db2, &E), FR_BUSY);
	fr_keyspace_close(ks);
	t_db_close(f);
	/* a failed second open must not have disturbed the lock's release */
	t_db_open(f);
}

static void test_db_format_unknown_version(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "a", NULL);
	put_s(ks, "k", "v");
	fr_keyspace_close(ks);
	t_db_close(f);

	write_file(f->dir, "FORMAT", "fractio 99\n");
	fr_db *db = (fr_db *)&E;
	memset(&E, 0, sizeof(E));
	fr_status rc = fr_db_open(f->dir, &f->o, &db, &E);
	assert_int_not_equal(rc, FR_OK);
	assert_null(db);
	assert_int_equal(E.code, rc);
	assert_non_null(strstr(E.msg, "format"));

	write_file(f->dir, "FORMAT", "garbage");
	rc = fr_db_open(f->dir, &f->o, &db, &E);
	assert_int_not_equal(rc, FR_OK);
	assert_null(db);

	/* put back: the data was not touched by the failed opens */
	write_file(f->dir, "FORMAT", "fractio 1\n");
	t_db_open(f);
	ks = t_ks_open(f, "a", NULL);
	expect_s(ks, "k", "v");
	fr_keyspace_close(ks);
	t_db_close(f);

	/* a fresh directory holding only a future format file */
	char *d = tu_tmpdir("db-fmt");
	write_file(d, "FORMAT", "fractio 99\n");
	rc = fr_db_open(d, &f->o, &db, &E);
	assert_int_not_equal(rc, FR_OK);
	assert_null(db);
	tu_rmtree_free(d);
}

static void test_db_open_missing_no_create(void **state)
{
	struct tu_fx *f = *state;
	f->o.create_if_missing = false;
	fr_db *db = (fr_db *)&E;
	assert_int_equal(fr_db_open(f->dir, &f->o, &db, &E), FR_NOT_FOUND);
	assert_null(db);
	assert_false(file_exists(f->dir, "FORMAT"));

	char sub[PATH_MAX];
	snprintf(sub, sizeof(sub), "%s/nope", f->dir);
	assert_int_equal(fr_db_open(sub, &f->o, &db, &E), FR_NOT_FOUND);
	assert_false(file_exists(f->dir, "nope"));

	/* an existing database opens without create_if_missing */
	f->o.create_if_missing = true;
	t_db_open(f);
	t_db_close(f);
	f->o.create_if_missing = false;
	t_db_open(f);
}

/* ---- keyspaces ---- */

static int list_cb(void *ctx, const char *name)
{
	struct sbuf *b = ctx;
	if (b->len)
		sb_add(b, ",", 1, false);
	sb_add(b, name, strlen(name), true);
	return 0;
}

static int list_stop_cb(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
	return 1;
}

static void assert_list(fr_db *db, const char *want)
{
	struct sbuf b = {0};
	sb_add(&b, "", 0, false);
	OK(fr_keyspace_list(db, list_cb, &b, &E));
	if (strcmp(b.p, want))
		fail_msg("keyspace list: expected [%s], got [%s]", want, b.p);
	free(b.p);
}

static void test_db_keyspace_lifecycle(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	assert_list(f->db, "");
	assert_false(t_ks_exists(f->db, "b"));
	fr_keyspace *b = t_ks_open(f, "b", NULL);
	fr_keyspace *a = t_ks_open(f, "a", NULL);
	fr_keyspace *c = t_ks_open(f, "c", "shared");
	fr_keyspace *aa = t_ks_open(f, "aa", "shared");
	assert_string_equal(fr_keyspace_name(b), "b");
	assert_true(t_ks_exists(f->db, "a"));
	assert_true(t_ks_exists(f->db, "b"));
	assert_true(t_ks_exists(f->db, "c"));
	assert_false(t_ks_exists(f->db, "d"));
	assert_list(f->db, "a,aa,b,c");
	int calls = 0;
	OK(fr_keyspace_list(f->db, list_stop_cb, &calls, &E));
	assert_int_equal(calls, 1);

	put_s(b, "k1", "v1");
	put_s(b, "k2", "v2");
	put_s(a, "k1", "a1");
	OK(fr_keyspace_delete(f->db, "b", &E));
	assert_false(t_ks_exists(f->db, "b"));
	assert_list(f->db, "a,aa,c");
	/* the old handle is dead */
	void *v;
	size_t n;
	assert_int_equal(fr_get(b, "k1", 2, &v, &n, &E), FR_NOT_FOUND);
	assert_int_equal(fr_put(b, "k3", 2, "x", 1, &E), FR_NOT_FOUND);
	fr_iter *it;
	assert_int_equal(fr_iter_open(b, NULL, &it, &E), FR_NOT_FOUND);
	fr_batch *bt;
	OK(fr_batch_new(f->db, &bt));
	assert_int_not_equal(fr_batch_put(bt, b, "k", 1, "v", 1), FR_OK);
	fr_batch_free(bt);
	fr_keyspace_close(b);
	assert_int_equal(fr_keyspace_delete(f->db, "b", &E), FR_NOT_FOUND);
	/* the other keyspaces are intact */
	expect_s(a, "k1", "a1");

	/* a new keyspace of the same name starts empty */
	b = t_ks_open(f, "b", NULL);
	assert_int_equal(ks_len(b), 0);
	expect_s(b, "k1", NULL);
	put_s(b, "new", "1");

	/* delete a shared-tree keyspace while its handle is open */
	put_s(c, "x", "1");
	put_s(aa, "x", "2");
	OK(fr_keyspace_delete(f->db, "c", &E));
	assert_int_equal(fr_get(c, "x", 1, &v, &n, &E), FR_NOT_FOUND);
	expect_s(aa, "x", "2");
	fr_keyspace_close(c);
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	fr_keyspace_close(aa);

	t_db_reopen(f);
	assert_list(f->db, "a,aa,b");
	b = t_ks_open(f, "b", NULL);
	ASSERT_ITER(b, NULL, true, "new=1");
	fr_keyspace_close(b);
	c = t_ks_open(f, "c", "shared");
	assert_int_equal(ks_len(c), 0);
	fr_keyspace_close(c);
	OK(fr_keyspace_delete(f->db, "a", &E));
	t_db_reopen(f);
	assert_list(f->db, "aa,b,c");
	a = t_ks_open(f, "a", NULL);
	expect_s(a, "k1", NULL);
	fr_keyspace_close(a);
}

/* A keyspace whose keys were all removed is dropped without a range tombstone: its old
 * values (in tables, under point tombstones) stay unreachable through a stale handle, a
 * keyspace of the same name made later, compaction and reopening; its neighbours keep theirs. */
static void test_db_keyspace_drop_emptied(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *e = t_ks_open(f, "e", "sh");
	fr_keyspace *n = t_ks_open(f, "n", "sh");
	put_s(e, "k1", "old1");
	put_s(e, "k2", "old2");
	put_s(n, "k1", "n1");
	OK(fr_db_flush(f->db, &E));
	OK(fr_remove(e, "k1", 2, &E));
	OK(fr_remove(e, "k2", 2, &E));
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_drop_keyspace(b, "e"));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	fr_batch_free(b);
	assert_false(t_ks_exists(f->db, "e"));
	void *v;
	size_t len;
	assert_int_equal(fr_get(e, "k1", 2, &v, &len, &E), FR_NOT_FOUND);
	fr_keyspace_close(e);
	e = t_ks_open(f, "e", "sh");
	assert_int_equal(ks_len(e), 0);
	expect_s(n, "k1", "n1");
	OK(fr_db_flush(f->db, &E));
	OK(fr_major_compact(n, &E));
	assert_int_equal(ks_len(e), 0);
	expect_s(e, "k2", NULL);
	fr_keyspace_close(e);
	fr_keyspace_close(n);
	t_db_reopen(f);
	e = t_ks_open(f, "e", "sh");
	n = t_ks_open(f, "n", "sh");
	assert_int_equal(ks_len(e), 0);
	ASSERT_ITER(n, NULL, true, "k1=n1");
	fr_keyspace_close(e);
	fr_keyspace_close(n);
}

/* A commit group resolves all its batches before applying any: a drop finds its keyspace
 * empty in the tree, yet an earlier batch of the same group writes into it, so it must still
 * get its range tombstone (else that write would outlive the drop, unreachable and never
 * reclaimed). */
static bool lo_has_range_del(const struct leader_ops *lo, uint32_t tree_id)
{
	for (size_t i = 0; i < lo->cnt; i++)
		if (lo->ops[i].op == BOP_RANGE_DEL && lo->ops[i].tree_id == tree_id)
			return true;
	return false;
}

static void test_db_keyspace_drop_after_group_write(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *e = t_ks_open(f, "e", "sh");
	fr_keyspace *n = t_ks_open(f, "n", "sh");
	uint32_t tree_id = e->tree->id;
	uint8_t key[KS_PREFIX_LEN + 1];
	struct leader_ops prev = {0}, lo = {0};
	/* an earlier batch of the group writes into the other keyspace: no tombstone needed */
	memcpy(key, n->prefix, KS_PREFIX_LEN);
	key[KS_PREFIX_LEN] = 'k';
	OK(lo_add(&prev, BOP_PUT, tree_id, key, sizeof(key), "v", 1, true));
	OK(ks_resolve_drop(f->db, "e", &lo, &prev, 1, &E));
	assert_false(lo_has_range_del(&lo, tree_id));
	lo_fini(&lo);
	/* one writes into the dropped keyspace itself */
	memset(&lo, 0, sizeof(lo));
	memcpy(key, e->prefix, KS_PREFIX_LEN);
	OK(lo_add(&prev, BOP_PUT, tree_id, key, sizeof(key), "v", 1, true));
	OK(ks_resolve_drop(f->db, "e", &lo, &prev, 1, &E));
	assert_true(lo_has_range_del(&lo, tree_id));
	lo_fini(&lo);
	/* and without earlier batches the empty keyspace gets none */
	memset(&lo, 0, sizeof(lo));
	OK(ks_resolve_drop(f->db, "e", &lo, NULL, 0, &E));
	assert_false(lo_has_range_del(&lo, tree_id));
	lo_fini(&lo);
	lo_fini(&prev);
	fr_keyspace_close(e);
	fr_keyspace_close(n);
}

static void test_db_keyspace_options_persist(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace_options o;
	fr_keyspace_options_init(&o);
	o.compress = false;
	o.block_size = 1024;
	o.restart_interval = 4;
	o.bloom_bits_per_key = 0;
	fr_keyspace *plain;
	OK(fr_keyspace_open(f->db, "plain", &o, &plain, &E));
	fr_keyspace *packed = t_ks_open(f, "packed", NULL);
	fr_keyspace_close(plain);
	fr_keyspace_close(packed);
	t_db_reopen(f);

	/* different options on reopen are ignored: the stored ones apply */
	fr_keyspace_options_init(&o);
	o.block_size = 8192;
	OK(fr_keyspace_open(f->db, "plain", &o, &plain, &E));
	assert_false(plain->tree->opts.level[0].compress);
	assert_int_equal(plain->tree->opts.level[0].block_size, 1024);
	assert_int_equal(plain->tree->opts.level[0].restart_interval, 4);
	assert_int_equal(plain->tree->opts.level[0].bloom_bits_per_key, 0);
	o.compress = false;
	OK(fr_keyspace_open(f->db, "packed", &o, &packed, &E));
	assert_true(packed->tree->opts.level[0].compress);
	assert_int_equal(packed->tree->opts.level[0].block_size, 4096);

	/* and visibly: the same compressible data takes far more room uncompressed */
	char val[1000];
	memset(val, 'z', sizeof(val));
	for (int i = 0; i < 200; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", i);
		OK(fr_put(plain, k, strlen(k), val, sizeof(val), &E));
		OK(fr_put(packed, k, strlen(k), val, sizeof(val), &E));
	}
	OK(fr_db_flush(f->db, &E));
	fr_keyspace_stats sp, sk;
	OK(fr_keyspace_stats_get(plain, &sp, &E));
	OK(fr_keyspace_stats_get(packed, &sk, &E));
	assert_true(sp.table_cnt > 0 && sk.table_cnt > 0);
	if (sp.table_bytes < 2 * sk.table_bytes)
		fail_msg("uncompressed %llu bytes vs compressed %llu",
			 (unsigned long long)sp.table_bytes, (unsigned long long)sk.table_bytes);
	fr_keyspace_close(plain);
	fr_keyspace_close(packed);
}

/* 3 keyspaces x 200 keys through 10 reopens, with updates and flushes in between */
static void test_db_keyspaces_survive_reopens(void **state)
{
	struct tu_fx *f = *state;
	static const char *names[3] = {"alpha", "beta", "gamma"};
	static const char *trees[3] = {NULL, "t", "t"};
	int ver[3][200] = {{0}};
	uint64_t flushes = 0, compactions = 0;
	t_db_open(f);
	for (int r = 0; r <= 10; r++) {
		fr_keyspace *ks[3];
		for (int i = 0; i < 3; i++)
			ks[i] = t_ks_open(f, names[i], trees[i]);
		for (int i = 0; i < 3; i++) {
			for (int k = 0; k < 200; k++) {
				char key[16], val[32];
				snprintf(key, sizeof(key), "key%03d", k);
				if (r)
					snprintf(val, sizeof(val), "%s-%03d-v%d", names[i], k,
						 ver[i][k]);
				expect_s(ks[i], key, r ? val : NULL);
				/* round 0 writes every key, later rounds a tenth of them */
				if (r < 10 && (r == 0 || (k + r) % 10 == 0)) {
					ver[i][k] = r + 1;
					snprintf(val, sizeof(val), "%s-%03d-v%d", names[i], k,
						 ver[i][k]);
					put_s(ks[i], key, val);
				}
			}
			if (r)
				assert_int_equal(ks_len(ks[i]), 200);
		}
		if (r % 3 == 1)
			OK(fr_db_flush(f->db, &E));
		fr_db_stats st = t_db_stats(f->db);
		flushes += st.flushes_done;
		compactions += st.compactions_done;
		for (int i = 0; i < 3; i++)
			fr_keyspace_close(ks[i]);
		t_db_reopen(f);
	}
	assert_true(flushes > 0);
	if (!f->o.background)
		assert_true(compactions > 0);
}

static void test_db_shared_tree(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *s[3], *solo = t_ks_open(f, "solo", NULL);
	char name[8];
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		s[i] = t_ks_open(f, name, "shared");
	}
	for (int k = 0; k < 100; k++) {
		char key[16], val[32];
		snprintf(key, sizeof(key), "k%03d", k);
		for (int i = 0; i < 3; i++) {
			snprintf(val, sizeof(val), "s%d-%d", i, k);
			put_s(s[i], key, val);
		}
		snprintf(val, sizeof(val), "solo-%d", k);
		put_s(solo, key, val);
	}
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 3; i++) {
			if (round >= 1 && i == 1) {
				/* deleted in round 1 */
				expect_s(s[i], "k000", NULL);
				assert_int_equal(ks_len(s[i]), 0);
				continue;
			}
			assert_int_equal(ks_len(s[i]), 100);
			assert_int_equal(iter_count(s[i], true, NULL), 100);
			void *k, *v;
			size_t kl, vl;
			OK(fr_first(s[i], &k, &kl, &v, &vl, &E));
			assert_int_equal(kl, 4);
			assert_memory_equal(k, "k000", 4);
			char want[32];
			snprintf(want, sizeof(want), "s%d-0", i);
			assert_int_equal(vl, strlen(want));
			assert_memory_equal(v, want, vl);
			fr_free(k);
			fr_free(v);
			OK(fr_last(s[i], &k, &kl, NULL, NULL, &E));
			assert_memory_equal(k, "k099", 4);
			fr_free(k);
			snprintf(want, sizeof(want), "s%d-42", i);
			expect_s(s[i], "k042", want);
		}
		assert_int_equal(ks_len(solo), 100);
		expect_s(solo, "k042", "solo-42");
		if (round == 0) {
			OK(fr_keyspace_delete(f->db, "s1", &E));
			assert_int_equal(fr_len(s[1], &(uint64_t){0}, &E), FR_NOT_FOUND);
			fr_keyspace_close(s[1]);
			s[1] = t_ks_open(f, "s1", "shared"); /* a new, empty s1 */
		} else if (round == 1) {
			OK(fr_major_compact(s[0], &E));
		} else if (round == 2) {
			for (int i = 0; i < 3; i++)
				fr_keyspace_close(s[i]);
			fr_keyspace_close(solo);
			t_db_reopen(f);
			solo = t_ks_open(f, "solo", NULL);
			assert_true(t_ks_exists(f->db, "s1")); /* the new one */
			for (int i = 0; i < 3; i++) {
				snprintf(name, sizeof(name), "s%d", i);
				s[i] = t_ks_open(f, name, "shared");
			}
		}
	}
	/* a keyspace and its neighbours in the tree: clear one, the others stay */
	OK(fr_keyspace_clear(s[0], &E));
	assert_int_equal(ks_len(s[0]), 0);
	assert_int_equal(ks_len(s[2]), 100);
	fr_keyspace_stats st0, st2;
	OK(fr_keyspace_stats_get(s[0], &st0, &E));
	OK(fr_keyspace_stats_get(s[2], &st2, &E));
	assert_int_equal(st0.table_cnt, st2.table_cnt); /* one tree */
	for (int i = 0; i < 3; i++)
		fr_keyspace_close(s[i]);
	fr_keyspace_close(solo);
}

/* ---- single operations ---- */

static void test_db_point_ops(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "p", NULL);
	expect_s(ks, "a", NULL);
	put_s(ks, "a", "1");
	expect_s(ks, "a", "1");
	put_s(ks, "a", "2");
	expect_s(ks, "a", "2");
	put_s(ks, "empty", "");
	expect_s(ks, "empty", "");
	OK(fr_put(ks, "", 0, "root", 4, &E));
	void *v;
	size_t n;
	OK(fr_get(ks, "", 0, &v, &n, &E));
	assert_int_equal(n, 4);
	assert_memory_equal(v, "root", 4);
	fr_free(v);
	/* presence only */
	OK(fr_get(ks, "a", 1, NULL, NULL, &E));
	uint8_t bin[3] = {0x00, 0xff, 0x00};
	OK(fr_put(ks, bin, 3, bin, 3, &E));
	OK(fr_get(ks, bin, 3, &v, &n, &E));
	assert_int_equal(n, 3);
	assert_memory_equal(v, bin, 3);
	fr_free(v);
	assert_int_equal(fr_get(ks, bin, 2, &v, &n, &E), FR_NOT_FOUND);
	assert_null(v);

	del_s(ks, "a");
	expect_s(ks, "a", NULL);
	del_s(ks, "never"); /* removing an absent key is fine */
	expect_s(ks, "empty", "");

	/* weak delete of a key written once */
	put_s(ks, "w", "once");
	OK(fr_remove_weak(ks, "w", 1, &E));
	expect_s(ks, "w", NULL);
	/* ... also when the value is already in a table */
	put_s(ks, "w2", "once");
	OK(fr_db_flush(f->db, &E));
	OK(fr_remove_weak(ks, "w2", 2, &E));
	expect_s(ks, "w2", NULL);
	OK(fr_db_flush(f->db, &E));
	expect_s(ks, "w2", NULL);
	/* written once after a delete */
	put_s(ks, "w3", "x");
	put_s(ks, "w3", "y");
	del_s(ks, "w3");
	put_s(ks, "w3", "z");
	OK(fr_remove_weak(ks, "w3", 2, &E));
	expect_s(ks, "w3", NULL);
	OK(fr_major_compact(ks, &E));
	expect_s(ks, "w", NULL);
	expect_s(ks, "w2", NULL);
	expect_s(ks, "w3", NULL);
	put_s(ks, "w", "again");
	expect_s(ks, "w", "again");
	fr_keyspace_close(ks);
	t_db_reopen(f);
	ks = t_ks_open(f, "p", NULL);
	expect_s(ks, "w", "again");
	expect_s(ks, "w2", NULL);
	expect_s(ks, "a", NULL);
	expect_s(ks, "empty", "");
	fr_keyspace_close(ks);
}

/* a weak delete over a key written several times before a strong delete, the tombstone, the
 * rewrite and the weak delete flushed together (older versions in older tables) */
static void test_db_weak_after_delete_flushed(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "w", NULL);
	put_s(ks, "k", "v1");
	OK(fr_db_flush(f->db, &E));
	put_s(ks, "k", "v2");
	OK(fr_db_flush(f->db, &E));
	del_s(ks, "k");
	put_s(ks, "k", "v3");
	OK(fr_remove_weak(ks, "k", 1, &E));
	expect_s(ks, "k", NULL);
	OK(fr_db_flush(f->db, &E));
	expect_s(ks, "k", NULL);
	ASSERT_ITER(ks, NULL, false, "");
	OK(fr_major_compact(ks, &E));
	expect_s(ks, "k", NULL);
	fr_keyspace_close(ks);
}

/* a flush keeps what a later weak delete uncovers, when snapshots split a key's versions */
static void test_db_weak_snapshot_stripes(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "w", NULL);
	fr_iter_options rev = {.reverse = true};
	/* 1: v1 in a table; then delete, v2, a snapshot, and a weak delete of v2 */
	put_s(ks, "a", "v1");
	OK(fr_db_flush(f->db, &E));
	del_s(ks, "a");
	put_s(ks, "a", "v2");
	fr_snapshot *s1;
	OK(fr_snapshot_open(f->db, &s1, &E));
	OK(fr_remove_weak(ks, "a", 1, &E));
	OK(fr_db_flush(f->db, &E));
	expect_s(ks, "a", NULL);
	snap_expect_s(s1, ks, "a", "v2");
	ASSERT_ITER(ks, NULL, false, "");
	ASSERT_ITER(ks, &rev, false, "");
	fr_snapshot_close(s1);
	/* 2: b written once and weak-deleted across a snapshot, written again, weak-deleted */
	put_s(ks, "b", "v1");
	OK(fr_snapshot_open(f->db, &s1, &E));
	OK(fr_remove_weak(ks, "b", 1, &E));
	put_s(ks, "b", "v2");
	OK(fr_db_flush(f->db, &E));
	snap_expect_s(s1, ks, "b", "v1");
	fr_snapshot_close(s1);
	OK(fr_remove_weak(ks, "b", 1, &E));
	expect_s(ks, "b", NULL);
	ASSERT_ITER(ks, NULL, false, "");
	OK(fr_db_flush(f->db, &E));
	expect_s(ks, "b", NULL);
	ASSERT_ITER(ks, &rev, false, "");
	OK(fr_major_compact(ks, &E));
	expect_s(ks, "a", NULL);
	expect_s(ks, "b", NULL);
	ASSERT_ITER(ks, NULL, false, "");
	fr_keyspace_close(ks);
}

/* weak deletes seen by iterators in both directions, the value and the weak tombstone in
 * different sources */
static void test_db_weak_iter_directions(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "w", "t");
	fr_iter_options rev = {.reverse = true};
	put_s(ks, "a", "1");
	put_s(ks, "b", "2");
	put_s(ks, "c", "3");
	OK(fr_db_flush(f->db, &E));
	OK(fr_remove_weak(ks, "b", 1, &E));
	ASSERT_ITER(ks, NULL, true, "a=1,c=3");
	ASSERT_ITER(ks, &rev, true, "c=3,a=1");
	put_s(ks, "d", "4");
	OK(fr_db_flush(f->db, &E));
	OK(fr_remove_weak(ks, "d", 1, &E));
	ASSERT_ITER(ks, NULL, true, "a=1,c=3");
	ASSERT_ITER(ks, &rev, true, "c=3,a=1");
	OK(fr_db_flush(f->db, &E));
	ASSERT_ITER(ks, NULL, true, "a=1,c=3");
	ASSERT_ITER(ks, &rev, true, "c=3,a=1");
	OK(fr_major_compact(ks, &E));
	ASSERT_ITER(ks, NULL, true, "a=1,c=3");
	ASSERT_ITER(ks, &rev, true, "c=3,a=1");
	fr_keyspace_close(ks);
}

static void delete_range_check(fr_keyspace *ks, const char *b)
{
	expect_s(ks, "a", NULL);
	expect_s(ks, "ab", NULL);
	expect_s(ks, "b", b);
	expect_s(ks, "bz", NULL);
	expect_s(ks, "c", "3");
	expect_s(ks, "d", "4");
	fr_iter_options rev = {.reverse = true};
	if (b) {
		ASSERT_ITER(ks, NULL, true, "b=new,c=3,d=4");
		ASSERT_ITER(ks, &rev, true, "d=4,c=3,b=new");
	} else {
		ASSERT_ITER(ks, NULL, true, "c=3,d=4");
		ASSERT_ITER(ks, &rev, true, "d=4,c=3");
	}
	void *k;
	size_t kl;
	OK(fr_first(ks, &k, &kl, NULL, NULL, &E));
	assert_memory_equal(k, b ? "b" : "c", 1);
	fr_free(k);
	OK(fr_last(ks, &k, &kl, NULL, NULL, &E));
	assert_memory_equal(k, "d", 1);
	fr_free(k);
	assert_int_equal(ks_len(ks), b ? 3 : 2);
}

static void test_db_delete_range(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	/* mode 0: all in memtables; 1: keys and tombstone flushed to separate tables;
	 * 2: and then compacted */
	for (int mode = 0; mode < 3; mode++) {
		char name[8];
		snprintf(name, sizeof(name), "dr%d", mode);
		fr_keyspace *ks = t_ks_open(f, name, NULL);
		fr_keyspace *nb = t_ks_open(f, "neighbour", NULL);
		put_s(ks, "a", "1");
		put_s(ks, "ab", "x");
		put_s(ks, "b", "2");
		put_s(ks, "bz", "x");
		put_s(ks, "c", "3");
		put_s(ks, "d", "4");
		put_s(nb, "b", "nb");
		if (mode)
			OK(fr_db_flush(f->db, &E));
		OK(fr_delete_range(ks, "a", 1, "c", 1, &E));
		if (mode)
			OK(fr_db_flush(f->db, &E));
		if (mode == 2)
			OK(fr_major_compact(ks, &E));
		delete_range_check(ks, NULL);
		expect_s(nb, "b", "nb");
		/* an empty range removes nothing */
		OK(fr_delete_range(ks, "c", 1, "c", 1, &E));
		expect_s(ks, "c", "3");
		put_s(ks, "b", "new");
		if (mode)
			OK(fr_db_flush(f->db, &E));
		if (mode == 2)
			OK(fr_major_compact(ks, &E));
		delete_range_check(ks, "new");
		fr_keyspace_close(ks);
		fr_keyspace_close(nb);
		t_db_reopen(f);
		ks = t_ks_open(f, name, NULL);
		delete_range_check(ks, "new");
		fr_keyspace_close(ks);
	}
}

/* Bounded iterators only gather the range tombstones that meet their bounds: one straddling
 * a bound still hides the keys inside, forward and reverse, in memtables and in tables, and
 * tombstones of a neighbouring keyspace of the same tree hide nothing. */
static void test_db_iter_bounds_range_del(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	for (int mode = 0; mode < 2; mode++) {
		char name[8];
		snprintf(name, sizeof(name), "ib%d", mode);
		fr_keyspace *ks = t_ks_open(f, name, "shared");
		fr_keyspace *nb = t_ks_open(f, mode ? "nb1" : "nb0", "shared");
		const char *keys[] = {"a", "c", "d", "e", "g", "w", "x", "y", "z"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			put_s(ks, keys[i], keys[i]);
			put_s(nb, keys[i], keys[i]);
		}
		OK(fr_delete_range(ks, "c", 1, "e", 1, &E)); /* straddles the lower bound d */
		OK(fr_delete_range(ks, "x", 1, "zz", 2, &E)); /* straddles the upper bound y */
		OK(fr_delete_range(ks, "0", 1, "b", 1, &E));  /* below the bounds */
		OK(fr_delete_range(nb, "a", 1, "zz", 2, &E)); /* another keyspace */
		if (mode)
			OK(fr_db_flush(f->db, &E));
		fr_iter_options o = {.lower = "d", .lower_len = 1, .upper = "y", .upper_len = 1};
		ASSERT_ITER(ks, &o, false, "e,g,w");
		o.reverse = true;
		ASSERT_ITER(ks, &o, false, "w,g,e");
		ASSERT_ITER(ks, NULL, false, "e,g,w");
		ASSERT_ITER(nb, NULL, false, "");
		fr_keyspace_close(ks);
		fr_keyspace_close(nb);
	}
}

static void test_db_first_last_len(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "fl", "t");
	fr_keyspace *other = t_ks_open(f, "fm", "t"); /* the next id in the same tree */
	void *k = NULL, *v = NULL;
	size_t kl, vl;
	assert_int_equal(fr_first(ks, &k, &kl, &v, &vl, &E), FR_NOT_FOUND);
	assert_int_equal(fr_last(ks, &k, &kl, &v, &vl, &E), FR_NOT_FOUND);
	assert_null(k);
	assert_int_equal(ks_len(ks), 0);
	put_s(other, "0", "o");
	put_s(other, "zzz", "o");
	assert_int_equal(fr_first(ks, NULL, NULL, NULL, NULL, &E), FR_NOT_FOUND);
	put_s(ks, "m", "vm");
	put_s(ks, "c", "vc");
	put_s(ks, "x", "vx");
	OK(fr_first(ks, &k, &kl, &v, &vl, &E));
	assert_true(kl == 1 && !memcmp(k, "c", 1) && vl == 2 && !memcmp(v, "vc", 2));
	fr_free(k);
	fr_free(v);
	OK(fr_last(ks, &k, &kl, &v, &vl, &E));
	assert_true(kl == 1 && !memcmp(k, "x", 1) && vl == 2 && !memcmp(v, "vx", 2));
	fr_free(k);
	fr_free(v);
	assert_int_equal(ks_len(ks), 3);
	assert_true(fr_approximate_len(ks) >= 3);
	del_s(ks, "x");
	del_s(ks, "c");
	OK(fr_last(ks, &k, &kl, NULL, NULL, &E));
	assert_memory_equal(k, "m", 1);
	fr_free(k);
	OK(fr_first(ks, &k, &kl, NULL, NULL, &E));
	assert_memory_equal(k, "m", 1);
	fr_free(k);
	assert_int_equal(ks_len(ks), 1);
	assert_true(fr_approximate_len(ks) >= 1);
	OK(fr_db_flush(f->db, &E));
	assert_int_equal(ks_len(ks), 1);
	assert_int_equal(ks_len(other), 2);
	fr_keyspace_close(ks);
	fr_keyspace_close(other);
}

static void test_db_clear(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *s1 = t_ks_open(f, "s1", "shared"), *s2 = t_ks_open(f, "s2", "shared");
	fr_keyspace *o1 = t_ks_open(f, "o1", NULL);
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", i);
		put_s(s1, k, "s1");
		put_s(s2, k, "s2");
		put_s(o1, k, "o1");
	}
	OK(fr_db_flush(f->db, &E));
	put_s(s1, "late", "s1");
	fr_snapshot *snap;
	OK(fr_snapshot_open(f->db, &snap, &E));
	OK(fr_keyspace_clear(s1, &E));
	OK(fr_keyspace_clear(o1, &E));
	assert_int_equal(ks_len(s1), 0);
	assert_int_equal(ks_len(o1), 0);
	assert_int_equal(ks_len(s2), 100);
	expect_s(s1, "k050", NULL);
	expect_s(s1, "late", NULL);
	assert_int_equal(fr_first(s1, NULL, NULL, NULL, NULL, &E), FR_NOT_FOUND);
	/* the snapshot still sees everything */
	snap_expect_s(snap, s1, "k050", "s1");
	snap_expect_s(snap, s1, "late", "s1");
	assert_int_equal(iter_count(s1, false, snap), 101);
	assert_int_equal(iter_count(o1, true, snap), 100);
	OK(fr_db_flush(f->db, &E));
	assert_int_equal(iter_count(s1, false, snap), 101);
	fr_snapshot_close(snap);
	put_s(s1, "after", "1");
	expect_s(s1, "after", "1");
	fr_keyspace_close(s1);
	fr_keyspace_close(s2);
	fr_keyspace_close(o1);
	t_db_reopen(f);
	s1 = t_ks_open(f, "s1", "shared");
	s2 = t_ks_open(f, "s2", "shared");
	o1 = t_ks_open(f, "o1", NULL);
	ASSERT_ITER(s1, NULL, true, "after=1");
	assert_int_equal(ks_len(s2), 100);
	assert_int_equal(ks_len(o1), 0);
	OK(fr_major_compact(s1, &E));
	OK(fr_major_compact(o1, &E));
	ASSERT_ITER(s1, NULL, true, "after=1");
	assert_int_equal(ks_len(s2), 100);
	assert_int_equal(ks_len(o1), 0);
	expect_s(s2, "k099", "s2");
	fr_keyspace_close(s1);
	fr_keyspace_close(s2);
	fr_keyspace_close(o1);
}

/* ---- batches ---- */

static void test_db_batch_basic(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *k1 = t_ks_open(f, "k1", NULL), *k2 = t_ks_open(f, "k2", "t");
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_put(b, k1, "x", 1, "1", 1));
	OK(fr_batch_put(b, k2, "y", 1, "2", 1));
	assert_int_equal(fr_batch_count(b), 2);
	expect_s(k1, "x", NULL);
	expect_s(k2, "y", NULL);
	fr_seqno s1 = 0, s2 = 0, s3 = 0;
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, &s1, &E));
	assert_int_equal(fr_batch_count(b), 0);
	assert_true(s1 > 0);
	assert_int_equal(fr_db_seqno(f->db), s1);
	expect_s(k1, "x", "1");
	expect_s(k2, "y", "2");

	/* the same key three times: the last wins */
	OK(fr_batch_put(b, k1, "z", 1, "a", 1));
	OK(fr_batch_put(b, k1, "z", 1, "b", 1));
	OK(fr_batch_put(b, k1, "z", 1, "c", 1));
	OK(fr_batch_put(b, k1, "w", 1, "1", 1));
	OK(fr_batch_remove(b, k1, "w", 1));
	OK(fr_batch_remove(b, k1, "x", 1));
	OK(fr_batch_put(b, k1, "x", 1, "back", 4));
	OK(fr_batch_commit(b, FR_PERSIST_SYNC_DATA, &s2, &E));
	assert_true(s2 > s1);
	expect_s(k1, "z", "c");
	expect_s(k1, "w", NULL);
	expect_s(k1, "x", "back");

	/* a range delete and puts around it */
	OK(fr_batch_put(b, k1, "q", 1, "1", 1));
	OK(fr_batch_delete_range(b, k1, "p", 1, "r", 1));
	OK(fr_batch_put(b, k1, "pp", 2, "after", 5));
	OK(fr_batch_put(b, k2, "q", 1, "other", 5));
	OK(fr_batch_commit(b, FR_PERSIST_SYNC_ALL, &s3, &E));
	assert_true(s3 > s2);
	expect_s(k1, "q", NULL);
	expect_s(k1, "pp", "after");
	expect_s(k2, "q", "other");
	/* a batch write of the same key then a weak delete of it */
	OK(fr_batch_put(b, k1, "wk", 2, "1", 1));
	OK(fr_batch_remove_weak(b, k1, "wk", 2));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	expect_s(k1, "wk", NULL);
	fr_batch_free(b);
	fr_keyspace_close(k1);
	fr_keyspace_close(k2);
	t_db_reopen(f);
	k1 = t_ks_open(f, "k1", NULL);
	k2 = t_ks_open(f, "k2", "t");
	assert_int_equal(fr_db_seqno(f->db), s3 + 1);
	ASSERT_ITER(k1, NULL, true, "pp=after,x=back,z=c");
	ASSERT_ITER(k2, NULL, true, "q=other,y=2");
	fr_keyspace_close(k1);
	fr_keyspace_close(k2);
}

struct atomic_ctx {
	fr_db *db;
	fr_keyspace *a, *b;
	int stop; /* atomic: set by the test thread, read by the reader */
	int mismatches;
	int checks;
	fr_status rc;
};

static void *atomic_reader(void *arg)
{
	struct atomic_ctx *c = arg;
	fr_error err;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) && !c->rc) {
		fr_snapshot *s;
		if ((c->rc = fr_snapshot_open(c->db, &s, &err)))
			break;
		void *va = NULL, *vb = NULL;
		size_t la = 0, lb = 0;
		fr_status ra = fr_snapshot_get(s, c->a, "x", 1, &va, &la, &err);
		fr_status rb = fr_snapshot_get(s, c->b, "x", 1, &vb, &lb, &err);
		if (ra != rb || (ra == FR_OK && (la != lb || memcmp(va, vb, la))))
			c->mismatches++;
		if (ra != FR_OK && ra != FR_NOT_FOUND)
			c->rc = ra;
		/* an iterator at the snapshot agrees too */
		fr_iter_options o = {.snapshot = s};
		fr_iter *it;
		if (!c->rc && !(c->rc = fr_iter_open(c->a, &o, &it, &err))) {
			if (fr_iter_valid(it) != (rb == FR_OK))
				c->mismatches++;
			else if (rb == FR_OK) {
				size_t l;
				const void *v = fr_iter_value(it, &l);
				if (l != lb || memcmp(v, vb, l))
					c->mismatches++;
			}
			fr_iter_close(it);
		}
		fr_free(va);
		fr_free(vb);
		fr_snapshot_close(s);
		c->checks++;
	}
	return NULL;
}

static void test_db_batch_atomic_across_keyspaces(void **state)
{
	struct tu_fx *f = *state;
	f->o.memtable_max = 8192;
	t_db_open(f);
	struct atomic_ctx c = {.db = f->db};
	c.a = t_ks_open(f, "a", NULL);
	c.b = t_ks_open(f, "b", "shared");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, atomic_reader, &c), 0);
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	char val[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(val, sizeof(val), "value-%06d-%040d", i, i);
		OK(fr_batch_put(b, c.a, "x", 1, val, strlen(val)));
		OK(fr_batch_put(b, c.b, "x", 1, val, strlen(val)));
		OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(c.rc, FR_OK);
	assert_int_equal(c.mismatches, 0);
	assert_true(c.checks > 0);
	fr_batch_free(b);
	expect_s(c.a, "x", val);
	expect_s(c.b, "x", val);
	fr_keyspace_close(c.a);
	fr_keyspace_close(c.b);
}

static void test_db_batch_create_keyspace(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *k1 = t_ks_open(f, "k1", NULL);
	fr_seqno before = fr_db_seqno(f->db), s;
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_create_keyspace(b, "fresh", NULL));
	fr_keyspace_options o;
	fr_keyspace_options_init(&o);
	o.tree = "tb";
	OK(fr_batch_create_keyspace(b, "fresh2", &o));
	OK(fr_batch_put(b, k1, "k", 1, "v", 1));
	assert_false(t_ks_exists(f->db, "fresh"));
	expect_s(k1, "k", NULL);
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, &s, &E));
	assert_int_equal(s, before + 1);
	assert_int_equal(fr_db_seqno(f->db), s);
	assert_true(t_ks_exists(f->db, "fresh"));
	assert_true(t_ks_exists(f->db, "fresh2"));
	expect_s(k1, "k", "v");
	/* creating an existing keyspace in a batch is a no-op; dropping one with a put */
	fr_keyspace *fr = t_ks_open(f, "fresh", NULL);
	put_s(fr, "a", "1");
	OK(fr_batch_create_keyspace(b, "fresh", NULL));
	OK(fr_batch_put(b, k1, "k2", 2, "v2", 2));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	expect_s(fr, "a", "1");
	OK(fr_batch_drop_keyspace(b, "fresh2"));
	OK(fr_batch_put(b, k1, "k3", 2, "v3", 2));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	assert_false(t_ks_exists(f->db, "fresh2"));
	expect_s(k1, "k3", "v3");
	fr_batch_free(b);
	fr_keyspace_close(fr);
	fr_keyspace_close(k1);
	t_db_reopen(f);
	assert_list(f->db, "fresh,k1");
	k1 = t_ks_open(f, "k1", NULL);
	ASSERT_ITER(k1, NULL, true, "k=v,k2=v2,k3=v3");
	fr = t_ks_open(f, "fresh", NULL);
	ASSERT_ITER(fr, NULL, true, "a=1");
	fr_keyspace_close(fr);
	fr_keyspace_close(k1);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t st = seed | 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tu_rand(&st);
}

static void expect_bytes(fr_keyspace *ks, const char *k, const uint8_t *want, size_t n)
{
	void *v;
	size_t vl;
	OK(fr_get(ks, k, strlen(k), &v, &vl, &E));
	assert_int_equal(vl, n);
	assert_memory_equal(v, want, n);
	fr_free(v);
}

static void test_db_batch_large_value(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "big", NULL);
	size_t n = 768u << 10;
	uint8_t *big = malloc(n);
	assert_non_null(big);
	fill_random(big, n, 768);
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_put(b, ks, "before", 6, "1", 1));
	OK(fr_batch_put(b, ks, "big", 3, big, n));
	OK(fr_batch_put(b, ks, "c", 1, "3", 1));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	fr_batch_free(b);
	expect_bytes(ks, "big", big, n);
	expect_s(ks, "before", "1");
	fr_keyspace_close(ks);
	t_db_reopen(f);
	ks = t_ks_open(f, "big", NULL);
	expect_bytes(ks, "big", big, n);
	OK(fr_db_flush(f->db, &E));
	expect_bytes(ks, "big", big, n);
	fr_iter *it;
	OK(fr_iter_open(ks, NULL, &it, &E));
	OK(fr_iter_seek(it, "big", 3, &E));
	assert_true(fr_iter_valid(it));
	size_t vl;
	const void *v = fr_iter_value(it, &vl);
	assert_int_equal(vl, n);
	assert_memory_equal(v, big, n);
	fr_iter_close(it);
	expect_s(ks, "c", "3");
	fr_keyspace_close(ks);
	free(big);
}

static void test_db_seqno_stable(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "s", NULL);
	fr_seqno last = 0;
	for (int i = 0; i < 30; i++) {
		char k[8];
		snprintf(k, sizeof(k), "%d", i);
		put_s(ks, k, "v");
		fr_seqno s = fr_db_seqno(f->db);
		assert_true(s > last);
		last = s;
	}
	fr_keyspace_close(ks);
	fr_seqno s = fr_db_seqno(f->db);
	for (int r = 0; r < 10; r++) {
		t_db_reopen(f);
		assert_int_equal(fr_db_seqno(f->db), s);
		fr_db_stats st = t_db_stats(f->db);
		assert_int_equal(st.visible_seqno, s);
		if (r == 4)
			OK(fr_db_flush(f->db, &E));
	}
	ks = t_ks_open(f, "s", NULL);
	put_s(ks, "more", "v");
	assert_true(fr_db_seqno(f->db) > s);
	fr_keyspace_close(ks);
}

/* ---- snapshots ---- */

static void snap_check(const fr_snapshot *snap, fr_keyspace *ks)
{
	snap_expect_s(snap, ks, "k1", "v1");
	snap_expect_s(snap, ks, "k2", "v2");
	snap_expect_s(snap, ks, "k3", "v3");
	snap_expect_s(snap, ks, "k4", NULL);
	fr_iter_options o = {.snapshot = snap};
	ASSERT_ITER(ks, &o, true, "k1=v1,k2=v2,k3=v3");
	o.reverse = true;
	ASSERT_ITER(ks, &o, true, "k3=v3,k2=v2,k1=v1");
	o.lower = "k2";
	o.lower_len = 2;
	ASSERT_ITER(ks, &o, true, "k3=v3,k2=v2");
	expect_s(ks, "k1", "new");
	expect_s(ks, "k2", NULL);
	expect_s(ks, "k3", NULL);
	expect_s(ks, "k4", "v4");
	ASSERT_ITER(ks, NULL, true, "k1=new,k4=v4");
}

static void test_db_snapshot_isolation(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "s", NULL);
	put_s(ks, "k1", "v1");
	put_s(ks, "k2", "v2");
	put_s(ks, "k3", "v3");
	fr_snapshot *snap;
	OK(fr_snapshot_open(f->db, &snap, &E));
	assert_int_equal(fr_snapshot_seqno(snap), fr_db_seqno(f->db));
	put_s(ks, "k1", "new");
	del_s(ks, "k2");
	put_s(ks, "k4", "v4");
	OK(fr_delete_range(ks, "k3", 2, "k4", 2, &E));
	snap_check(snap, ks);
	OK(fr_db_flush(f->db, &E));
	snap_check(snap, ks);
	OK(fr_major_compact(ks, &E));
	snap_check(snap, ks);
	/* more churn, more tables */
	for (int i = 0; i < 300; i++) {
		char k[16];
		snprintf(k, sizeof(k), "z%04d", i);
		put_s(ks, k, "filler-filler-filler-filler");
		del_s(ks, k);
	}
	OK(fr_db_flush(f->db, &E));
	OK(fr_major_compact(ks, &E));
	snap_check(snap, ks);
	fr_snapshot_close(snap);
	OK(fr_major_compact(ks, &E));
	ASSERT_ITER(ks, NULL, true, "k1=new,k4=v4");
	fr_keyspace_close(ks);
	t_db_reopen(f);
	ks = t_ks_open(f, "s", NULL);
	ASSERT_ITER(ks, NULL, true, "k1=new,k4=v4");
	fr_keyspace_close(ks);
}

static void test_db_snapshot_release_compacts(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "r", NULL);
	char k[16], v[16];
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		put_s(ks, k, "old");
	}
	fr_snapshot *snap;
	OK(fr_snapshot_open(f->db, &snap, &E));
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		snprintf(v, sizeof(v), "new%d", i);
		put_s(ks, k, v);
	}
	OK(fr_major_compact(ks, &E));
	uint64_t held = fr_approximate_len(ks);
	assert_true(held >= 400);
	for (int i = 0; i < 200; i += 17) {
		snprintf(k, sizeof(k), "k%03d", i);
		snprintf(v, sizeof(v), "new%d", i);
		snap_expect_s(snap, ks, k, "old");
		expect_s(ks, k, v);
	}
	fr_iter_options o = {.snapshot = snap};
	fr_iter *it;
	OK(fr_iter_open(ks, &o, &it, &E));
	fr_snapshot_close(snap);
	/* an open iterator keeps its own view even after the snapshot closed and a compaction */
	OK(fr_major_compact(ks, &E));
	uint64_t n = 0;
	while (fr_iter_valid(it)) {
		size_t vl;
		const void *vv = fr_iter_value(it, &vl);
		assert_true(vl == 3 && !memcmp(vv, "old", 3));
		n++;
		OK(fr_iter_next(it, &E));
	}
	fr_iter_close(it);
	assert_int_equal(n, 200);
	uint64_t freed = fr_approximate_len(ks);
	if (freed != 200)
		fail_msg("approximate_len %llu after compaction without snapshot (was %llu)",
			 (unsigned long long)freed, (unsigned long long)held);
	assert_int_equal(ks_len(ks), 200);
	expect_s(ks, "k007", "new7");
	fr_keyspace_close(ks);
}

/* ---- iterators ---- */

static void test_db_iter_bounds(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "i", "t");
	fr_keyspace *nb = t_ks_open(f, "j", "t");
	const char *keys[] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++)
		put_s(ks, keys[i], keys[i]);
	put_s(nb, "c", "other");
	fr_iter_options o = {0};
	ASSERT_ITER(ks, &o, false, "a,b,c,d,e");
	o.lower = "b";
	o.lower_len = 1;
	o.upper = "d";
	o.upper_len = 1;
	ASSERT_ITER(ks, &o, false, "b,c");
	o.reverse = true;
	ASSERT_ITER(ks, &o, false, "c,b");
	o.lower = "bb";
	o.lower_len = 2;
	o.upper = "dd";
	o.upper_len = 2;
	ASSERT_ITER(ks, &o, false, "d,c");
	o.reverse = false;
	ASSERT_ITER(ks, &o, false, "c,d");
	o.upper = NULL;
	ASSERT_ITER(ks, &o, false, "c,d,e");
	o.lower = NULL;
	o.upper = "c";
	o.upper_len = 1;
	ASSERT_ITER(ks, &o, false, "a,b");
	o.reverse = true;
	ASSERT_ITER(ks, &o, false, "b,a");
	o.lower = "c";
	o.lower_len = 1;
	ASSERT_ITER(ks, &o, false, ""); /* lower == upper */
	o.lower = "d";
	ASSERT_ITER(ks, &o, false, ""); /* lower > upper */
	o.reverse = false;
	ASSERT_ITER(ks, &o, false, "");
	OK(fr_db_flush(f->db, &E));
	memset(&o, 0, sizeof(o));
	o.lower = "b";
	o.lower_len = 1;
	o.upper = "e";
	o.upper_len = 1;
	ASSERT_ITER(ks, &o, true, "b=b,c=c,d=d");
	o.reverse = true;
	ASSERT_ITER(ks, &o, true, "d=d,c=c,b=b");
	fr_keyspace_close(ks);
	fr_keyspace_close(nb);
}

static void test_db_iter_prefix(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "p", "t");
	fr_keyspace *nb = t_ks_open(f, "q", "t");
	const char *keys[] = {"a",        "ab",   "ab1", "ab2",     "abz", "ac",
			      "a\xff\x01", "a\xff", "b",   "\xff",      "\xff\xff",
			      "\xff\xff\x00"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		OK(fr_put(ks, keys[i], i == 11 ? 3 : strlen(keys[i]), "v", 1, &E));
	put_s(nb, "ab", "other");
	put_s(nb, "\xff\xff\xff", "other");
	fr_iter_options o = {.prefix = "ab", .prefix_len = 2};
	for (int pass = 0; pass < 2; pass++) {
		o.prefix = "ab";
		o.prefix_len = 2;
		o.reverse = false;
		ASSERT_ITER(ks, &o, false, "ab,ab1,ab2,abz");
		o.reverse = true;
		ASSERT_ITER(ks, &o, false, "abz,ab2,ab1,ab");
		o.prefix = "a\xff";
		o.reverse = false;
		ASSERT_ITER(ks, &o, false, "a\\xff,a\\xff\\x01");
		o.reverse = true;
		ASSERT_ITER(ks, &o, false, "a\\xff\\x01,a\\xff");
		o.prefix = "\xff";
		o.prefix_len = 1;
		o.reverse = false;
		ASSERT_ITER(ks, &o, false, "\\xff,\\xff\\xff,\\xff\\xff\\x00");
		o.reverse = true;
		ASSERT_ITER(ks, &o, false, "\\xff\\xff\\x00,\\xff\\xff,\\xff");
		o.prefix = "\xff\xff";
		o.prefix_len = 2;
		ASSERT_ITER(ks, &o, false, "\\xff\\xff\\x00,\\xff\\xff");
		o.prefix = "zz";
		ASSERT_ITER(ks, &o, false, "");
		/* prefix and bounds together */
		o.prefix = "ab";
		o.prefix_len = 2;
		o.lower = "ab1";
		o.lower_len = 3;
		o.upper = "abz";
		o.upper_len = 3;
		o.reverse = false;
		ASSERT_ITER(ks, &o, false, "ab1,ab2");
		o.reverse = true;
		ASSERT_ITER(ks, &o, false, "ab2,ab1");
		o.lower = NULL;
		o.upper = NULL;
		OK(fr_db_flush(f->db, &E));
	}
	fr_keyspace_close(ks);
	fr_keyspace_close(nb);
}

static void expect_seek(fr_keyspace *ks, const fr_iter_options *o, const char *key,
			const char *want)
{
	fr_iter *it;
	OK(fr_iter_open(ks, o, &it, &E));
	OK(fr_iter_seek(it, key, strlen(key), &E));
	char *got = iter_rest(it, false);
	if (strcmp(got, want))
		fail_msg("seek %s%s: expected [%s], got [%s]", o->reverse ? "(reverse) " : "", key,
			 want, got);
	free(got);
	/* seeking again on the same iterator, after it ran off the end */
	OK(fr_iter_seek(it, key, strlen(key), &E));
	got = iter_rest(it, false);
	if (strcmp(got, want))
		fail_msg("second seek %s: expected [%s], got [%s]", key, want, got);
	free(got);
	fr_iter_close(it);
}

static void test_db_iter_seek(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "s", NULL);
	const char *keys[] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++)
		put_s(ks, keys[i], keys[i]);
	del_s(ks, "d");
	put_s(ks, "d", "d");
	for (int pass = 0; pass < 2; pass++) {
		fr_iter_options o = {0};
		expect_seek(ks, &o, "c", "c,d,e");
		expect_seek(ks, &o, "bb", "c,d,e");
		expect_seek(ks, &o, "", "a,b,c,d,e");
		expect_seek(ks, &o, "f", "");
		o.reverse = true;
		expect_seek(ks, &o, "c", "c,b,a");
		expect_seek(ks, &o, "cc", "c,b,a");
		expect_seek(ks, &o, "z", "e,d,c,b,a");
		expect_seek(ks, &o, "", "");
		expect_seek(ks, &o, "0", "");
		/* bounds still apply */
		o.lower = "b";
		o.lower_len = 1;
		o.upper = "d";
		o.upper_len = 1;
		expect_seek(ks, &o, "z", "c,b");
		expect_seek(ks, &o, "d", "c,b");
		expect_seek(ks, &o, "a", "");
		o.reverse = false;
		expect_seek(ks, &o, "a", "b,c");
		expect_seek(ks, &o, "c", "c");
		expect_seek(ks, &o, "d", "");
		/* seek in the middle of an iteration */
		fr_iter *it;
		memset(&o, 0, sizeof(o));
		OK(fr_iter_open(ks, &o, &it, &E));
		OK(fr_iter_next(it, &E));
		OK(fr_iter_seek(it, "a", 1, &E));
		char *got = iter_rest(it, true);
		assert_string_equal(got, "a=a,b=b,c=c,d=d,e=e");
		free(got);
		fr_iter_close(it);
		OK(fr_db_flush(f->db, &E));
	}
	fr_keyspace_close(ks);
}

/* Key i of test_db_iter_long_keys: lk_run[i] bytes of 'k', then filler below 'k', lk_len[i]
 * bytes in all: ascending with i, each sharing its predecessor's run of 'k's. */
enum { LK_N = 9 };
static const size_t lk_run[LK_N] = {1, 50, 55, 56, 57, 100, 300, 1000, 3000};
static const size_t lk_len[LK_N] = {3, 51, 120, 57, 64, 101, 2000, 1001, 4000};

static void lk_key(size_t i, uint8_t *k)
{
	memset(k, 'k', lk_run[i]);
	for (size_t j = lk_run[i]; j < lk_len[i]; j++)
		k[j] = (uint8_t)('a' + (j * 7 + i) % 5);
}

/* Where the iterator stands must be key i with value "<i>.<ver>". */
static void lk_expect(fr_iter *it, size_t i, int ver)
{
	uint8_t k[4000];
	char v[16];
	size_t n;
	assert_true(fr_iter_valid(it));
	lk_key(i, k);
	const void *got = fr_iter_key(it, &n);
	assert_int_equal(n, lk_len[i]);
	assert_memory_equal(got, k, n);
	snprintf(v, sizeof(v), "%zu.%d", i, ver);
	got = fr_iter_value(it, &n);
	assert_int_equal(n, strlen(v));
	assert_memory_equal(got, v, n);
}

/* User keys longer than the iterator's inline key space, read forward, backward, by seeks and
 * from a long lower bound, with older versions and a tombstone (key 4) in the way; in the
 * memtable, then from tables. */
static void test_db_iter_long_keys(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "lk", NULL);
	uint8_t k[4000];
	char v[16];
	for (int ver = 0; ver < 2; ver++)
		for (size_t i = 0; i < LK_N; i++) {
			lk_key(i, k);
			snprintf(v, sizeof(v), "%zu.%d", i, ver);
			OK(fr_put(ks, k, lk_len[i], v, strlen(v), &E));
		}
	lk_key(4, k);
	OK(fr_remove(ks, k, lk_len[4], &E));
	for (int pass = 0; pass < 2; pass++) {
		fr_iter *it;
		size_t i = 0, cnt = 0;
		OK(fr_iter_open(ks, NULL, &it, &E));
		while (fr_iter_valid(it)) {
			i += i == 4;
			lk_expect(it, i++, 1);
			cnt++;
			OK(fr_iter_next(it, &E));
		}
		assert_int_equal(i, LK_N);
		assert_int_equal(cnt, LK_N - 1);
		fr_iter_close(it);
		fr_iter_options ro = {.reverse = true};
		OK(fr_iter_open(ks, &ro, &it, &E));
		while (fr_iter_valid(it)) {
			assert_true(i > 0);
			i -= 1 + (i == 5);
			lk_expect(it, i, 1);
			OK(fr_iter_next(it, &E));
		}
		assert_int_equal(i, 0);
		fr_iter_close(it);
		/* seeks, and a long lower bound */
		for (size_t j = 0; j < LK_N; j++) {
			size_t want = j == 4 ? 5 : j;
			lk_key(j, k);
			OK(fr_iter_open(ks, NULL, &it, &E));
			OK(fr_iter_seek(it, k, lk_len[j], &E));
			lk_expect(it, want, 1);
			fr_iter_close(it);
			fr_iter_options lo = {.lower = k, .lower_len = lk_len[j]};
			OK(fr_iter_open(ks, &lo, &it, &E));
			lk_expect(it, want, 1);
			OK(fr_iter_next(it, &E));
			if (want + 1 < LK_N)
				lk_expect(it, want + 1 + (want + 1 == 4), 1);
			else
				assert_false(fr_iter_valid(it));
			fr_iter_close(it);
		}
		OK(fr_db_flush(f->db, &E));
	}
	fr_keyspace_close(ks);
}

static void test_db_iter_isolation(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "i", NULL);
	put_s(ks, "a", "1");
	put_s(ks, "b", "2");
	put_s(ks, "c", "3");
	fr_iter *fwd, *rev;
	fr_iter_options ro = {.reverse = true};
	OK(fr_iter_open(ks, NULL, &fwd, &E));
	OK(fr_iter_open(ks, &ro, &rev, &E));
	put_s(ks, "d", "4");
	del_s(ks, "a");
	put_s(ks, "b", "new");
	put_s(ks, "0", "0");
	OK(fr_delete_range(ks, "c", 1, "cc", 2, &E));
	OK(fr_db_flush(f->db, &E));
	OK(fr_major_compact(ks, &E));
	char *got = iter_rest(fwd, true);
	assert_string_equal(got, "a=1,b=2,c=3");
	free(got);
	got = iter_rest(rev, true);
	assert_string_equal(got, "c=3,b=2,a=1");
	free(got);
	fr_iter_close(fwd);
	fr_iter_close(rev);
	ASSERT_ITER(ks, NULL, true, "0=0,b=new,d=4");
	fr_keyspace_close(ks);
}

/* Rewrites every key while an iterator walks them, with a small memtable so that flushes (and
 * write stalls) happen under the iterator. */
static void test_db_iter_rewrite(void **state)
{
	struct tu_fx *f = *state;
	if (f->o.memtable_max > 16384)
		f->o.memtable_max = 16384;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "rw", NULL);
	const int n = 10000;
	char k[16], v[48];
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "key%06d", i);
		snprintf(v, sizeof(v), "old-%06d-padding-padding", i);
		OK(fr_batch_put(b, ks, k, strlen(k), v, strlen(v)));
		if (i % 100 == 99)
			OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	}
	fr_batch_free(b);
	fr_db_stats st0 = t_db_stats(f->db);
	fr_iter *it;
	OK(fr_iter_open(ks, NULL, &it, &E));
	int i = 0;
	for (; fr_iter_valid(it); i++) {
		size_t kl, vl;
		const char *kp = fr_iter_key(it, &kl);
		const char *vp = fr_iter_value(it, &vl);
		snprintf(k, sizeof(k), "key%06d", i);
		snprintf(v, sizeof(v), "old-%06d-padding-padding", i);
		if (kl != strlen(k) || memcmp(kp, k, kl) || vl != strlen(v) || memcmp(vp, v, vl))
			fail_msg("entry %d: expected %s=%s, got %.*s=%.*s", i, k, v, (int)kl, kp,
				 (int)vl, vp);
		snprintf(v, sizeof(v), "new-%06d-padding-padding", i);
		OK(fr_put(ks, kp, kl, v, strlen(v), &E));
		OK(fr_iter_next(it, &E));
	}
	fr_iter_close(it);
	assert_int_equal(i, n);
	fr_db_stats st = t_db_stats(f->db);
	assert_true(st.flushes_done > st0.flushes_done);
	OK(fr_db_wait_idle(f->db, &E));
	OK(fr_iter_open(ks, NULL, &it, &E));
	for (i = 0; fr_iter_valid(it); i++) {
		size_t vl;
		const char *vp = fr_iter_value(it, &vl);
		snprintf(v, sizeof(v), "new-%06d-padding-padding", i);
		assert_true(vl == strlen(v) && !memcmp(vp, v, vl));
		OK(fr_iter_next(it, &E));
	}
	fr_iter_close(it);
	assert_int_equal(i, n);
	fr_keyspace_close(ks);
}

/* ---- journal ---- */

static void test_db_journal_replay_20k(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "j", NULL);
	const uint64_t n = 20000;
	for (uint64_t i = 0; i < n; i++) {
		char k[16], v[16];
		snprintf(k, sizeof(k), "k%06llu", (unsigned long long)(i * 7919 % n));
		snprintf(v, sizeof(v), "v%llu", (unsigned long long)i);
		put_s(ks, k, v);
	}
	fr_keyspace_close(ks);
	for (int r = 0; r < 5; r++) {
		t_db_reopen(f);
		fr_db_stats st = t_db_stats(f->db);
		assert_int_equal(st.table_cnt, 0); /* everything came from the journal */
		ks = t_ks_open(f, "j", NULL);
		assert_int_equal(ks_len(ks), n);
		assert_int_equal(iter_count(ks, false, NULL), n);
		assert_int_equal(iter_count(ks, true, NULL), n);
		expect_s(ks, "k000000", "v0");
		char v[16];
		snprintf(v, sizeof(v), "v%llu", (unsigned long long)(n - 1));
		char k[16];
		snprintf(k, sizeof(k), "k%06llu", (unsigned long long)((n - 1) * 7919 % n));
		expect_s(ks, k, v);
		fr_keyspace_close(ks);
	}
}

static void test_db_journal_big_value(void **state)
{
	struct tu_fx *f = *state;
	size_t n = 128u << 10;
	uint8_t *big = malloc(n);
	assert_non_null(big);
	fill_random(big, n, 128);
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "b", NULL);
	OK(fr_put(ks, "big", 3, big, n, &E));
	put_s(ks, "small", "s");
	fr_keyspace_close(ks);
	t_db_reopen(f);
	assert_int_equal(t_db_stats(f->db).table_cnt, 0);
	ks = t_ks_open(f, "b", NULL);
	expect_bytes(ks, "big", big, n);
	expect_s(ks, "small", "s");
	fr_keyspace_close(ks);
	t_db_close(f);

	/* records larger than a journal segment, several segments */
	f->o.journal_segment_max = 64u << 10;
	t_db_open(f);
	ks = t_ks_open(f, "b", NULL);
	char k[16];
	uint8_t orig0 = big[0];
	for (int i = 0; i < 6; i++) {
		big[0] = (uint8_t)i;
		snprintf(k, sizeof(k), "big%d", i);
		OK(fr_put(ks, k, strlen(k), big, n, &E));
	}
	fr_keyspace_close(ks);
	t_db_reopen(f);
	ks = t_ks_open(f, "b", NULL);
	for (int i = 0; i < 6; i++) {
		big[0] = (uint8_t)i;
		snprintf(k, sizeof(k), "big%d", i);
		expect_bytes(ks, k, big, n);
	}
	big[0] = orig0;
	expect_bytes(ks, "big", big, n);
	fr_keyspace_close(ks);
	free(big);
}

/* ---- the directory ---- */

static size_t dir_entries(const char *dir)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	unsigned long n = 99;
	assert_int_equal(fscanf(p, "%lu", &n), 1);
	pclose(p);
	return n;
}

static void test_db_abs_path_chdir(void **state)
{
	struct tu_fx *f = *state;
	assert_true(f->dir[0] == '/');
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	char *elsewhere = tu_tmpdir("cwd");
	f->o.memtable_max = 8192;
	t_db_open(f);
	assert_int_equal(chdir(elsewhere), 0);
	fr_keyspace *ks = t_ks_open(f, "c", NULL);
	for (int i = 0; i < 500; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", i);
		put_s(ks, k, "value-value-value-value-value");
	}
	OK(fr_db_flush(f->db, &E));
	OK(fr_major_compact(ks, &E));
	fr_keyspace_close(ks);
	t_db_reopen(f);
	ks = t_ks_open(f, "c", NULL);
	assert_int_equal(ks_len(ks), 500);
	fr_keyspace_close(ks);
	t_db_close(f);
	size_t stray = dir_entries(elsewhere);
	assert_int_equal(chdir(cwd), 0);
	tu_rmtree_free(elsewhere);
	assert_int_equal(stray, 0);
}

static void test_db_stray_files(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *ks = t_ks_open(f, "s", NULL);
	put_s(ks, "a", "1");
	OK(fr_db_flush(f->db, &E));
	put_s(ks, "b", "2");
	fr_keyspace_close(ks);
	t_db_close(f);
	static const char *subs[] = {"", "journal/", "tables/"};
	char name[64];
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s.DS_Store", subs[i]);
		write_file(f->dir, name, "junk");
		snprintf(name, sizeof(name), "%s._0", subs[i]);
		write_file(f->dir, name, "junk");
	}
	for (int r = 0; r < 2; r++) {
		t_db_open(f);
		ks = t_ks_open(f, "s", NULL);
		ASSERT_ITER(ks, NULL, true, "a=1,b=2");
		put_s(ks, "c", "3");
		OK(fr_db_flush(f->db, &E));
		OK(fr_major_compact(ks, &E));
		del_s(ks, "c");
		fr_keyspace_close(ks);
		t_db_close(f);
	}
	/* ignored means left alone too */
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s.DS_Store", subs[i]);
		assert_true(file_exists(f->dir, name));
		snprintf(name, sizeof(name), "%s._0", subs[i]);
		assert_true(file_exists(f->dir, name));
	}
}

/* ---- inline background work ---- */

static void test_db_inline_flush_compact(void **state)
{
	struct tu_fx *f = *state;
	t_db_open(f);
	fr_keyspace *a = t_ks_open(f, "a", NULL), *b = t_ks_open(f, "b", "sh");
	fr_keyspace *c = t_ks_open(f, "c", "sh");
	char k[16], v[128];
	enum { N = 3000 };
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "k%05d", i);
		snprintf(v, sizeof(v), "%d-%0100d", i, i);
		put_s(a, k, v);
		put_s(i % 2 ? b : c, k, v);
	}
	for (int i = 0; i < N; i += 3) {
		snprintf(k, sizeof(k), "k%05d", i);
		del_s(a, k);
		put_s(b, k, "rewritten");
	}
	OK(fr_delete_range(c, "k01000", 6, "k02000", 6, &E));
	fr_db_stats st = t_db_stats(f->db);
	assert_true(st.flushes_done > 0);
	assert_true(st.compactions_done > 0);
	assert_true(st.table_cnt > 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			snprintf(k, sizeof(k), "k%05d", i);
			snprintf(v, sizeof(v), "%d-%0100d", i, i);
			expect_s(a, k, i % 3 ? v : NULL);
			expect_s(b, k, i % 3 == 0 ? "rewritten" : i % 2 ? v : NULL);
			expect_s(c, k, i % 2 || (i >= 1000 && i < 2000) ? NULL : v);
		}
		assert_int_equal(ks_len(a), N * 2 / 3);
		assert_int_equal(ks_len(c), N / 2 - 500);
		fr_keyspace_close(a);
		fr_keyspace_close(b);
		fr_keyspace_close(c);
		t_db_reopen(f);
		a = t_ks_open(f, "a", NULL);
		b = t_ks_open(f, "b", "sh");
		c = t_ks_open(f, "c", "sh");
	}
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	fr_keyspace_close(c);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TI(fn) cmocka_unit_test_setup_teardown(fn, setup_inline, teardown)

/* the same bodies with background work off and 8 KiB memtables */
static void test_db_keyspaces_survive_reopens_inline(void **s)
{
	test_db_keyspaces_survive_reopens(s);
}
static void test_db_shared_tree_inline(void **s)
{
	test_db_shared_tree(s);
}
static void test_db_delete_range_inline(void **s)
{
	test_db_delete_range(s);
}
static void test_db_snapshot_isolation_inline(void **s)
{
	test_db_snapshot_isolation(s);
}
static void test_db_iter_rewrite_inline(void **s)
{
	test_db_iter_rewrite(s);
}
static void test_db_clear_inline(void **s)
{
	test_db_clear(s);
}
static void test_db_point_ops_inline(void **s)
{
	test_db_point_ops(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_db_open_busy_reopen),
		T(test_db_format_unknown_version),
		T(test_db_open_missing_no_create),
		T(test_db_keyspace_lifecycle),
		T(test_db_keyspace_options_persist),
		T(test_db_keyspaces_survive_reopens),
		TI(test_db_keyspaces_survive_reopens_inline),
		T(test_db_shared_tree),
		TI(test_db_shared_tree_inline),
		T(test_db_point_ops),
		TI(test_db_point_ops_inline),
		T(test_db_weak_after_delete_flushed),
		T(test_db_weak_iter_directions),
		T(test_db_weak_snapshot_stripes),
		T(test_db_delete_range),
		T(test_db_keyspace_drop_emptied),
		T(test_db_keyspace_drop_after_group_write),
		T(test_db_iter_bounds_range_del),
		TI(test_db_delete_range_inline),
		T(test_db_first_last_len),
		T(test_db_clear),
		TI(test_db_clear_inline),
		T(test_db_batch_basic),
		T(test_db_batch_atomic_across_keyspaces),
		T(test_db_batch_create_keyspace),
		T(test_db_batch_large_value),
		T(test_db_seqno_stable),
		T(test_db_snapshot_isolation),
		TI(test_db_snapshot_isolation_inline),
		T(test_db_snapshot_release_compacts),
		T(test_db_iter_bounds),
		T(test_db_iter_prefix),
		T(test_db_iter_seek),
		T(test_db_iter_long_keys),
		TI(test_db_iter_long_keys),
		T(test_db_iter_isolation),
		T(test_db_iter_rewrite),
		TI(test_db_iter_rewrite_inline),
		T(test_db_journal_replay_20k),
		T(test_db_journal_big_value),
		T(test_db_abs_path_chdir),
		T(test_db_stray_files),
		TI(test_db_inline_flush_compact),
	};
	if (getenv("FR_TEST_FILTER")) /* e.g. FR_TEST_FILTER='test_db_iter_*' */
		cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
