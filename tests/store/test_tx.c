/* SPDX-License-Identifier: MIT */
/*
 * test_tx.c - transactions (fractio.h "transactions"): read-your-own-writes across keyspaces
 * (own and shared trees) for point reads and iterators, the composite updates, rollback, the
 * single writer's exclusivity, the classic anomalies caught as conflicts by optimistic
 * transactions, bank transfers on four threads with both kinds, a history check (no write of
 * a key a winner read lands between its read seqno and its commit, with plain writers racing
 * its begin), the oracle's bound and durability across a reopen.
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

#include "base/sync.h"
#include "db/db.h"
#include "db/oracle.h"
#include "fractio.h"
#include "testutil.h"
#include "testutil_db.h"

static __thread fr_error E;

#define OK(call) TU_OK(call, E)

/* this file's names for the shared fixture's helpers (testutil_db.h) */
#define teardown tu_fx_teardown
#define t_ks tu_fx_ks
#define put_s tu_put_s

static void next_ok(fr_iter *it)
{
	OK(fr_iter_next(it, &E));
}

static int setup(void **state)
{
	struct tu_fx *f = tu_fx_new("tx", false);
	if (!f)
		return -1;
	if (fr_db_open(f->dir, &f->o, &f->db, NULL)) {
		tu_fx_free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static void tput(fr_tx *tx, fr_keyspace *ks, const char *k, const char *v)
{
	OK(fr_tx_put(tx, ks, k, strlen(k), v, strlen(v), &E));
}

static void tdel(fr_tx *tx, fr_keyspace *ks, const char *k)
{
	OK(fr_tx_remove(tx, ks, k, strlen(k), &E));
}

/* Expects k to read as v (NULL: absent) through the plain API. */
static void expect(fr_keyspace *ks, const char *k, const char *v)
{
	void *got = NULL;
	size_t n = 0;
	fr_status rc = fr_get(ks, k, strlen(k), &got, &n, &E);
	if (!v) {
		assert_int_equal(rc, FR_NOT_FOUND);
		return;
	}
	assert_int_equal(rc, FR_OK);
	assert_int_equal(n, strlen(v));
	assert_memory_equal(got, v, n);
	fr_free(got);
}

/* The same through a transaction. */
static void texpect(fr_tx *tx, fr_keyspace *ks, const char *k, const char *v)
{
	void *got = NULL;
	size_t n = 0;
	fr_status rc = fr_tx_get(tx, ks, k, strlen(k), &got, &n, &E);
	bool has;
	OK(fr_tx_contains(tx, ks, k, strlen(k), &has, &E));
	assert_int_equal(has, v != NULL);
	if (!v) {
		assert_int_equal(rc, FR_NOT_FOUND);
		assert_null(got);
		return;
	}
	assert_int_equal(rc, FR_OK);
	assert_int_equal(n, strlen(v));
	assert_memory_equal(got, v, n);
	fr_free(got);
}

/* Iterates it to the end and compares with "k=v,k=v" in order. */
static void iter_expect(fr_iter *it, const char *want)
{
	char got[512] = "";
	size_t len = 0;
	for (; fr_iter_valid(it); next_ok(it)) {
		size_t kl, vl;
		const char *k = fr_iter_key(it, &kl), *v = fr_iter_value(it, &vl);
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%.*s=%.*s",
					len ? "," : "", (int)kl, k, (int)vl, v);
	}
	assert_string_equal(got, want);
}

static void tx_iter_expect(fr_tx *tx, fr_keyspace *ks, const fr_iter_options *o,
			   const char *want)
{
	fr_iter *it = NULL;
	OK(fr_tx_iter_open(tx, ks, o, &it, &E));
	iter_expect(it, want);
	fr_iter_close(it);
}

/* One round of writes and reads inside a transaction, with (outside) or without writes made
 * by others after it began. An optimistic transaction that read what others wrote loses. */
static void ryow_round(struct tu_fx *f, fr_keyspace *a, fr_keyspace *b, fr_keyspace *c, int kind,
		       bool outside)
{
	{
		fr_tx *tx;
		OK(fr_tx_begin(f->db, (fr_tx_kind)kind, &tx, &E));
		/* an iterator opened before the writes sees none of them */
		fr_iter *early;
		OK(fr_tx_iter_open(tx, c, NULL, &early, &E));
		assert_false(fr_iter_valid(early));
		tput(tx, a, "k0", "0");     /* insert */
		tdel(tx, a, "k2");          /* remove */
		tput(tx, a, "k3", "33");    /* overwrite */
		tput(tx, b, "y", "by");
		tput(tx, c, "x", "cx");     /* same user key as b's x, same tree */
		tput(tx, c, "z", "z1");
		tput(tx, c, "z", "z2");
		tput(tx, c, "z", "z3");     /* three writes: the last wins */
		iter_expect(early, "");
		fr_iter_close(early);
		/* a write from outside after begin is not seen */
		if (outside) {
			put_s(a, "k4", "4");
			put_s(b, "w", "bw");
		}

		texpect(tx, a, "k0", "0");
		texpect(tx, a, "k1", "1");
		texpect(tx, a, "k2", NULL);
		texpect(tx, a, "k3", "33");
		texpect(tx, a, "k4", NULL);
		texpect(tx, b, "x", "bx");
		texpect(tx, b, "y", "by");
		texpect(tx, b, "w", NULL);
		texpect(tx, c, "x", "cx");
		texpect(tx, c, "y", NULL);
		texpect(tx, c, "z", "z3");
		/* nothing is visible outside before commit */
		expect(a, "k0", NULL);
		expect(a, "k2", "2");
		expect(c, "x", NULL);

		fr_iter_options o;
		memset(&o, 0, sizeof(o));
		tx_iter_expect(tx, a, NULL, "k0=0,k1=1,k3=33");
		o.reverse = true;
		tx_iter_expect(tx, a, &o, "k3=33,k1=1,k0=0");
		tx_iter_expect(tx, b, NULL, "x=bx,y=by");
		tx_iter_expect(tx, c, NULL, "x=cx,z=z3");
		tx_iter_expect(tx, c, &o, "z=z3,x=cx");
		memset(&o, 0, sizeof(o));
		o.lower = "k1";
		o.lower_len = 2;
		o.upper = "k3";
		o.upper_len = 2;
		tx_iter_expect(tx, a, &o, "k1=1");
		o.reverse = true;
		tx_iter_expect(tx, a, &o, "k1=1");
		memset(&o, 0, sizeof(o));
		o.lower = "k0";
		o.lower_len = 2;
		o.upper = "k2";
		o.upper_len = 2;
		o.reverse = true;
		tx_iter_expect(tx, a, &o, "k1=1,k0=0");
		memset(&o, 0, sizeof(o));
		o.prefix = "k";
		o.prefix_len = 1;
		tx_iter_expect(tx, a, &o, "k0=0,k1=1,k3=33");
		o.prefix = "k3";
		o.prefix_len = 2;
		tx_iter_expect(tx, a, &o, "k3=33");
		/* seek forward and backward over own writes and removes */
		fr_iter *it;
		OK(fr_tx_iter_open(tx, a, NULL, &it, &E));
		OK(fr_iter_seek(it, "k2", 2, &E));
		iter_expect(it, "k3=33");
		fr_iter_close(it);
		memset(&o, 0, sizeof(o));
		o.reverse = true;
		OK(fr_tx_iter_open(tx, a, &o, &it, &E));
		OK(fr_iter_seek(it, "k2", 2, &E));
		iter_expect(it, "k1=1,k0=0");
		fr_iter_close(it);
		/* a snapshot option is refused */
		fr_snapshot *s;
		OK(fr_snapshot_open(f->db, &s, &E));
		o.snapshot = s;
		assert_int_equal(fr_tx_iter_open(tx, a, &o, &it, &E), FR_INVALID);
		fr_snapshot_close(s);

		fr_seqno at = 0;
		if (outside && kind == FR_TX_OPTIMISTIC) {
			/* it read k4 and iterated over it: the commit conflicts, writing nothing */
			assert_int_equal(fr_tx_commit(tx, FR_PERSIST_BUFFER, &at, &E),
					 FR_CONFLICT);
			expect(a, "k0", NULL);
			expect(a, "k2", "2");
			expect(a, "k3", "3");
			expect(b, "y", NULL);
			expect(c, "x", NULL);
			expect(c, "z", NULL);
			OK(fr_remove(a, "k4", 2, &E));
			OK(fr_remove(b, "w", 1, &E));
			return;
		}
		OK(fr_tx_commit(tx, FR_PERSIST_BUFFER, &at, &E));
		assert_true(at > 0);
		expect(a, "k0", "0");
		expect(a, "k1", "1");
		expect(a, "k2", NULL);
		expect(a, "k3", "33");
		expect(a, "k4", outside ? "4" : NULL);
		expect(b, "x", "bx");
		expect(b, "y", "by");
		expect(c, "x", "cx");
		expect(c, "z", "z3");
		/* back to the start for the other kind */
		fr_batch *bt;
		OK(fr_batch_new(f->db, &bt));
		OK(fr_batch_remove(bt, a, "k0", 2));
		OK(fr_batch_put(bt, a, "k2", 2, "2", 1));
		OK(fr_batch_put(bt, a, "k3", 2, "3", 1));
		OK(fr_batch_remove(bt, a, "k4", 2));
		OK(fr_batch_remove(bt, b, "y", 1));
		OK(fr_batch_remove(bt, b, "w", 1));
		OK(fr_batch_remove(bt, c, "x", 1));
		OK(fr_batch_remove(bt, c, "z", 1));
		OK(fr_batch_commit(bt, FR_PERSIST_BUFFER, NULL, &E));
		fr_batch_free(bt);
	}
}

static void test_tx_read_own_writes(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	fr_keyspace *b = t_ks(f, "b", "shared");
	fr_keyspace *c = t_ks(f, "c", "shared");
	put_s(a, "k1", "1");
	put_s(a, "k2", "2");
	put_s(a, "k3", "3");
	put_s(b, "x", "bx");
	ryow_round(f, a, b, c, FR_TX_SINGLE_WRITER, true);
	ryow_round(f, a, b, c, FR_TX_OPTIMISTIC, true);
	/* again with the stored data in tables rather than memtables */
	OK(fr_db_flush(f->db, &E));
	ryow_round(f, a, b, c, FR_TX_OPTIMISTIC, false);
	ryow_round(f, a, b, c, FR_TX_SINGLE_WRITER, false);
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	fr_keyspace_close(c);
}


/* ---- the composite updates ---- */

struct upd {
	char buf[32];
	bool remove;
	fr_status fail; /* returned instead of updating */
	int calls;
};

/* Adds one to a decimal value (absent: 0), or removes the key, or fails. */
static fr_status add_one(void *ctx, const void *old, size_t old_len, bool found,
			 const void **new_val, size_t *new_len, bool *remove)
{
	struct upd *u = ctx;
	u->calls++;
	if (u->fail)
		return u->fail;
	char tmp[32] = "0";
	if (found) {
		assert_true(old_len < sizeof(tmp));
		memcpy(tmp, old, old_len);
		tmp[old_len] = 0;
	} else {
		assert_null(old);
	}
	snprintf(u->buf, sizeof(u->buf), "%d", atoi(tmp) + 1);
	*new_val = u->buf;
	*new_len = strlen(u->buf);
	*remove = u->remove;
	return FR_OK;
}

static void test_tx_updates(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	put_s(a, "n", "5");
	put_s(a, "t", "taken");
	put_s(a, "w", "weak");
	for (int kind = 0; kind < 2; kind++) {
		fr_tx *tx;
		OK(fr_tx_begin(f->db, (fr_tx_kind)kind, &tx, &E));
		/* take: the old value comes back and the key is gone */
		void *v = NULL;
		size_t n = 0;
		OK(fr_tx_take(tx, a, "t", 1, &v, &n, &E));
		assert_int_equal(n, 5);
		assert_memory_equal(v, "taken", 5);
		fr_free(v);
		texpect(tx, a, "t", NULL);
		assert_int_equal(fr_tx_take(tx, a, "t", 1, &v, &n, &E), FR_NOT_FOUND);
		assert_null(v);
		assert_int_equal(fr_tx_take(tx, a, "none", 4, NULL, NULL, &E), FR_NOT_FOUND);
		/* fetch_update returns the value before, update_fetch the value after */
		struct upd u = {0};
		bool found = false;
		OK(fr_tx_fetch_update(tx, a, "n", 1, add_one, &u, &v, &n, &found, &E));
		assert_true(found);
		assert_int_equal(n, 1);
		assert_memory_equal(v, "5", 1);
		fr_free(v);
		texpect(tx, a, "n", "6");
		OK(fr_tx_update_fetch(tx, a, "n", 1, add_one, &u, &v, &n, &found, &E));
		assert_true(found);
		assert_int_equal(n, 1);
		assert_memory_equal(v, "7", 1);
		fr_free(v);
		texpect(tx, a, "n", "7");
		/* absent keys: found false going in; NULL outputs are fine */
		OK(fr_tx_fetch_update(tx, a, "m", 1, add_one, &u, &v, &n, &found, &E));
		assert_false(found);
		assert_null(v);
		texpect(tx, a, "m", "1");
		OK(fr_tx_update_fetch(tx, a, "m", 1, add_one, &u, NULL, NULL, NULL, &E));
		texpect(tx, a, "m", "2");
		/* an update that removes */
		u.remove = true;
		OK(fr_tx_update_fetch(tx, a, "m", 1, add_one, &u, &v, &n, &found, &E));
		assert_false(found);
		assert_null(v);
		texpect(tx, a, "m", NULL);
		u.remove = false;
		/* a failing update writes nothing and its status comes back */
		u.fail = FR_INVALID;
		int calls = u.calls;
		assert_int_equal(
			fr_tx_fetch_update(tx, a, "n", 1, add_one, &u, &v, &n, &found, &E),
			FR_INVALID);
		assert_null(v);
		assert_int_equal(
			fr_tx_update_fetch(tx, a, "q", 1, add_one, &u, &v, &n, &found, &E),
			FR_INVALID);
		assert_int_equal(u.calls, calls + 2);
		texpect(tx, a, "n", "7");
		texpect(tx, a, "q", NULL);
		u.fail = FR_OK;
		/* a weak remove of a key written once */
		OK(fr_tx_remove_weak(tx, a, "w", 1, &E));
		texpect(tx, a, "w", NULL);
		tx_iter_expect(tx, a, NULL, "n=7");
		OK(fr_tx_commit(tx, FR_PERSIST_SYNC_DATA, NULL, &E));
		expect(a, "n", "7");
		expect(a, "t", NULL);
		expect(a, "w", NULL);
		expect(a, "m", NULL);
		expect(a, "q", NULL);
		put_s(a, "n", "5");
		put_s(a, "t", "taken");
		put_s(a, "w", "weak");
	}
	fr_keyspace_close(a);
}

static void test_tx_rollback(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	put_s(a, "keep", "1");
	for (int kind = 0; kind < 2; kind++) {
		fr_tx *tx;
		OK(fr_tx_begin(f->db, (fr_tx_kind)kind, &tx, &E));
		tput(tx, a, "new", "x");
		tdel(tx, a, "keep");
		texpect(tx, a, "new", "x");
		fr_seqno before = fr_db_seqno(f->db);
		fr_tx_rollback(tx);
		assert_int_equal(fr_db_seqno(f->db), before);
		expect(a, "new", NULL);
		expect(a, "keep", "1");
		/* an empty transaction commits trivially */
		OK(fr_tx_begin(f->db, (fr_tx_kind)kind, &tx, &E));
		texpect(tx, a, "keep", "1");
		OK(fr_tx_commit(tx, FR_PERSIST_BUFFER, NULL, &E));
		assert_int_equal(fr_db_seqno(f->db), before);
	}
	fr_tx_rollback(NULL);
	fr_keyspace_close(a);
}

/* ---- single writer ---- */

struct sw {
	fr_db *db;
	fr_keyspace *ks;
	struct fr_mutex mu;
	struct fr_cond cv;
	bool about_to_begin;
	bool begun;     /* atomic */
	fr_status rc;
	bool saw_first; /* what the second transaction read */
};

static void *second_writer(void *arg)
{
	struct sw *s = arg;
	fr_mutex_lock(&s->mu);
	s->about_to_begin = true;
	fr_cond_signal(&s->cv);
	fr_mutex_unlock(&s->mu);
	fr_tx *tx;
	s->rc = fr_tx_begin(s->db, FR_TX_SINGLE_WRITER, &tx, NULL);
	if (s->rc)
		return NULL;
	atomic_store_rel_bool(&s->begun, true);
	s->saw_first = fr_tx_get(tx, s->ks, "first", 5, NULL, NULL, NULL) == FR_OK;
	s->rc = fr_tx_put(tx, s->ks, "second", 6, "2", 1, NULL);
	if (!s->rc)
		s->rc = fr_tx_commit(tx, FR_PERSIST_BUFFER, NULL, NULL);
	else
		fr_tx_rollback(tx);
	return NULL;
}

static void test_tx_single_writer_exclusive(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	struct sw s = {.db = f->db, .ks = a};
	fr_mutex_init(&s.mu);
	fr_cond_init(&s.cv);
	fr_tx *tx;
	OK(fr_tx_begin(f->db, FR_TX_SINGLE_WRITER, &tx, &E));
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, second_writer, &s), 0);
	fr_mutex_lock(&s.mu);
	while (!s.about_to_begin)
		fr_cond_wait(&s.cv, &s.mu);
	fr_mutex_unlock(&s.mu);
	/* readers, plain writes and optimistic transactions go on meanwhile */
	put_s(a, "plain", "p");
	expect(a, "plain", "p");
	fr_tx *o;
	OK(fr_tx_begin(f->db, FR_TX_OPTIMISTIC, &o, &E));
	tput(o, a, "opt", "o");
	OK(fr_tx_commit(o, FR_PERSIST_BUFFER, NULL, &E));
	for (int i = 0; i < 100; i++)
		tput(tx, a, "first", "1");
	assert_false(atomic_load_acq_bool(&s.begun));
	OK(fr_tx_commit(tx, FR_PERSIST_BUFFER, NULL, &E));
	pthread_join(th, NULL);
	assert_int_equal(s.rc, FR_OK);
	/* the second began only after the first committed */
	assert_true(s.saw_first);
	expect(a, "second", "2");
	expect(a, "opt", "o");
	fr_mutex_fini(&s.mu);
	fr_cond_fini(&s.cv);
	fr_keyspace_close(a);
}

/* ---- optimistic anomalies ---- */

static fr_tx *obegin(struct tu_fx *f)
{
	fr_tx *tx = NULL;
	OK(fr_tx_begin(f->db, FR_TX_OPTIMISTIC, &tx, &E));
	return tx;
}

static void test_tx_lost_update(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	put_s(a, "counter", "0");
	fr_tx *t1 = obegin(f), *t2 = obegin(f);
	struct upd u1 = {0}, u2 = {0};
	OK(fr_tx_fetch_update(t1, a, "counter", 7, add_one, &u1, NULL, NULL, NULL, &E));
	OK(fr_tx_fetch_update(t2, a, "counter", 7, add_one, &u2, NULL, NULL, NULL, &E));
	tput(t2, a, "t2", "was here");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	fr_seqno before = fr_db_seqno(f->db);
	assert_int_equal(fr_tx_commit(t2, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	assert_int_equal(E.code, FR_CONFLICT);
	assert_int_equal(fr_db_seqno(f->db), before);
	expect(a, "counter", "1");
	expect(a, "t2", NULL);
	/* write-write on a key neither read */
	t1 = obegin(f);
	t2 = obegin(f);
	tput(t1, a, "blind", "1");
	tput(t2, a, "blind", "2");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	assert_int_equal(fr_tx_commit(t2, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	expect(a, "blind", "1");
	fr_keyspace_close(a);
}

/* Counts the keys of ks under prefix p through tx. */
static int count_prefix(fr_tx *tx, fr_keyspace *ks, const char *p, const char *only_val)
{
	fr_iter_options o;
	memset(&o, 0, sizeof(o));
	o.prefix = p;
	o.prefix_len = strlen(p);
	fr_iter *it;
	OK(fr_tx_iter_open(tx, ks, &o, &it, &E));
	int n = 0;
	for (; fr_iter_valid(it); next_ok(it)) {
		size_t vl;
		const void *v = fr_iter_value(it, &vl);
		if (!only_val || (vl == strlen(only_val) && !memcmp(v, only_val, vl)))
			n++;
	}
	fr_iter_close(it);
	return n;
}

static void test_tx_write_skew(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	put_s(a, "oncall/alice", "on");
	put_s(a, "oncall/bob", "on");
	fr_tx *t1 = obegin(f), *t2 = obegin(f);
	/* each sees two doctors on call and lets one go: together they would leave none */
	assert_int_equal(count_prefix(t1, a, "oncall/", "on"), 2);
	assert_int_equal(count_prefix(t2, a, "oncall/", "on"), 2);
	tput(t1, a, "oncall/alice", "off");
	tput(t2, a, "oncall/bob", "off");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	assert_int_equal(fr_tx_commit(t2, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	expect(a, "oncall/alice", "off");
	expect(a, "oncall/bob", "on");
	fr_keyspace_close(a);
}

static void test_tx_phantom(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	fr_keyspace *sum = t_ks(f, "sum", NULL);
	put_s(a, "item/1", "x");
	put_s(a, "item/2", "x");
	/* a transaction inserts into the range another one iterated */
	fr_tx *t1 = obegin(f), *t2 = obegin(f);
	assert_int_equal(count_prefix(t1, a, "item/", NULL), 2);
	tput(t1, sum, "count", "2");
	tput(t2, a, "item/3", "x");
	OK(fr_tx_commit(t2, FR_PERSIST_BUFFER, NULL, &E));
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	expect(sum, "count", NULL);
	/* a plain put into the range */
	t1 = obegin(f);
	assert_int_equal(count_prefix(t1, a, "item/", NULL), 3);
	tput(t1, sum, "count", "3");
	put_s(a, "item/4", "x");
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	expect(sum, "count", NULL);
	/* a plain range delete over it, and a keyspace clear */
	t1 = obegin(f);
	assert_int_equal(count_prefix(t1, a, "item/", NULL), 4);
	tput(t1, sum, "count", "4");
	OK(fr_delete_range(a, "item/4", 6, "item/5", 6, &E));
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	t1 = obegin(f);
	texpect(t1, a, "item/1", "x");
	tput(t1, sum, "count", "?");
	OK(fr_keyspace_clear(a, &E));
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	/* a write just outside the iterated range does not conflict */
	put_s(a, "item/1", "x");
	t1 = obegin(f);
	assert_int_equal(count_prefix(t1, a, "item/", NULL), 1);
	tput(t1, sum, "count", "1");
	put_s(a, "itel", "outside");
	put_s(a, "item0", "outside");
	put_s(sum, "other", "x");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	expect(sum, "count", "1");
	fr_keyspace_close(a);
	fr_keyspace_close(sum);
}

static void test_tx_read_missing(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	fr_keyspace *b = t_ks(f, "b", "shared");
	fr_keyspace *c = t_ks(f, "c", "shared");
	/* read a missing key; another transaction inserts it */
	fr_tx *t1 = obegin(f), *t2 = obegin(f);
	texpect(t1, a, "k", NULL);
	tput(t1, a, "derived", "none");
	tput(t2, a, "k", "v");
	OK(fr_tx_commit(t2, FR_PERSIST_BUFFER, NULL, &E));
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	expect(a, "derived", NULL);
	/* a plain put on a key the transaction read */
	t1 = obegin(f);
	texpect(t1, a, "k", "v");
	tput(t1, a, "derived", "v");
	put_s(a, "k", "v2");
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	expect(a, "derived", NULL);
	/* and a plain remove, and a batch */
	t1 = obegin(f);
	texpect(t1, a, "k", "v2");
	tput(t1, a, "derived", "v2");
	OK(fr_remove(a, "k", 1, &E));
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	t1 = obegin(f);
	texpect(t1, b, "x", NULL);
	tput(t1, a, "derived", "x");
	fr_batch *bt;
	OK(fr_batch_new(f->db, &bt));
	OK(fr_batch_put(bt, a, "unrelated", 9, "u", 1));
	OK(fr_batch_put(bt, b, "x", 1, "bx", 2));
	OK(fr_batch_commit(bt, FR_PERSIST_BUFFER, NULL, &E));
	fr_batch_free(bt);
	assert_int_equal(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
	expect(a, "derived", NULL);
	/* the same user key in another keyspace of the same tree is another key */
	t1 = obegin(f);
	texpect(t1, c, "x", NULL);
	tput(t1, c, "derived", "x");
	put_s(b, "x", "bx2");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	/* a transaction that began after the write does not conflict with it */
	put_s(a, "k", "v3");
	t1 = obegin(f);
	texpect(t1, a, "k", "v3");
	tput(t1, a, "derived", "v3");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	expect(a, "derived", "v3");
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	fr_keyspace_close(c);
}

static void test_tx_disjoint(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	put_s(a, "x", "0");
	put_s(a, "y", "0");
	fr_tx *t1 = obegin(f), *t2 = obegin(f), *t3 = obegin(f);
	struct upd u = {0};
	OK(fr_tx_fetch_update(t1, a, "x", 1, add_one, &u, NULL, NULL, NULL, &E));
	OK(fr_tx_fetch_update(t2, a, "y", 1, add_one, &u, NULL, NULL, NULL, &E));
	/* t3 iterates [p, q) and writes z */
	fr_iter_options o;
	memset(&o, 0, sizeof(o));
	o.lower = "p";
	o.lower_len = 1;
	o.upper = "q";
	o.upper_len = 1;
	tx_iter_expect(t3, a, &o, "");
	tput(t3, a, "z", "1");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	OK(fr_tx_commit(t2, FR_PERSIST_BUFFER, NULL, &E));
	OK(fr_tx_commit(t3, FR_PERSIST_BUFFER, NULL, &E));
	expect(a, "x", "1");
	expect(a, "y", "1");
	expect(a, "z", "1");
	/* a read-only transaction never conflicts */
	t1 = obegin(f);
	texpect(t1, a, "x", "1");
	put_s(a, "x", "2");
	OK(fr_tx_commit(t1, FR_PERSIST_BUFFER, NULL, &E));
	fr_keyspace_close(a);
}

/* ---- bank transfers ---- */

#define ACCOUNTS 16
#define START 1000
#define TRANSFERS 100000
#define WORKERS 4

struct bank {
	fr_db *db;
	fr_keyspace *ks;
	fr_tx_kind kind;
	uint64_t seed;
	uint32_t workers_done; /* atomic */
	uint64_t errors;       /* atomic: failures seen by a thread */
	uint64_t bad_totals;   /* atomic */
	uint64_t checks;       /* atomic */
	uint64_t conflicts;    /* atomic */
};

static void acct_key(char *k, int i)
{
	snprintf(k, 16, "acct%02d", i);
}

static fr_status tx_balance(fr_tx *tx, fr_keyspace *ks, int i, int64_t *out)
{
	char k[16];
	acct_key(k, i);
	void *v;
	size_t n;
	fr_status rc = fr_tx_get(tx, ks, k, strlen(k), &v, &n, NULL);
	if (rc)
		return rc;
	if (n != sizeof(*out)) {
		fr_free(v);
		return FR_CORRUPTION;
	}
	memcpy(out, v, sizeof(*out));
	fr_free(v);
	return FR_OK;
}

static fr_status tx_set(fr_tx *tx, fr_keyspace *ks, int i, int64_t val)
{
	char k[16];
	acct_key(k, i);
	return fr_tx_put(tx, ks, k, strlen(k), &val, sizeof(val), NULL);
}

static void *bank_worker(void *arg)
{
	struct bank *b = arg;
	uint64_t rnd = b->seed ^ (uint64_t)(uintptr_t)&rnd;
	for (int t = 0; t < TRANSFERS / WORKERS; t++) {
		int from = (int)tu_rand_below(&rnd, ACCOUNTS);
		int to = (int)tu_rand_below(&rnd, ACCOUNTS - 1);
		if (to >= from)
			to++;
		int64_t amt = (int64_t)tu_rand_below(&rnd, 50) + 1;
		for (;;) {
			fr_tx *tx;
			fr_status rc = fr_tx_begin(b->db, b->kind, &tx, NULL);
			if (rc)
				goto out_err;
			int64_t fb, tb;
			rc = tx_balance(tx, b->ks, from, &fb);
			if (!rc)
				rc = tx_balance(tx, b->ks, to, &tb);
			if (!rc && fb >= amt) {
				rc = tx_set(tx, b->ks, from, fb - amt);
				if (!rc)
					rc = tx_set(tx, b->ks, to, tb + amt);
			}
			if (rc) {
				fr_tx_rollback(tx);
				goto out_err;
			}
			rc = fr_tx_commit(tx, FR_PERSIST_BUFFER, NULL, NULL);
			if (rc == FR_CONFLICT) {
				atomic_add_u64(&b->conflicts, 1);
				continue;
			}
			if (rc)
				goto out_err;
			break;
		}
	}
	atomic_add_u32(&b->workers_done, 1);
	return NULL;
out_err:
	atomic_add_u64(&b->errors, 1);
	atomic_add_u32(&b->workers_done, 1);
	return NULL;
}

/* Sums the accounts through a snapshot and through a transaction's iterator, until the
 * workers are done. */
static void *bank_checker(void *arg)
{
	struct bank *b = arg;
	while (atomic_load_acq_u32(&b->workers_done) < WORKERS) {
		fr_snapshot *s;
		if (fr_snapshot_open(b->db, &s, NULL)) {
			atomic_add_u64(&b->errors, 1);
			break;
		}
		int64_t total = 0;
		for (int i = 0; i < ACCOUNTS; i++) {
			char k[16];
			acct_key(k, i);
			void *v;
			size_t n;
			if (fr_snapshot_get(s, b->ks, k, strlen(k), &v, &n, NULL) || n != 8) {
				atomic_add_u64(&b->errors, 1);
				continue;
			}
			int64_t x;
			memcpy(&x, v, 8);
			fr_free(v);
			total += x;
		}
		fr_snapshot_close(s);
		if (total != ACCOUNTS * START)
			atomic_add_u64(&b->bad_totals, 1);
		/* a read-only optimistic transaction sees a consistent state too */
		fr_tx *tx;
		if (fr_tx_begin(b->db, FR_TX_OPTIMISTIC, &tx, NULL)) {
			atomic_add_u64(&b->errors, 1);
			break;
		}
		fr_iter *it;
		total = 0;
		if (fr_tx_iter_open(tx, b->ks, NULL, &it, NULL)) {
			atomic_add_u64(&b->errors, 1);
		} else {
			for (; fr_iter_valid(it); fr_iter_next(it, NULL)) {
				size_t n;
				const void *v = fr_iter_value(it, &n);
				int64_t x = 0;
				if (n == 8)
					memcpy(&x, v, 8);
				total += x;
			}
			fr_iter_close(it);
		}
		if (fr_tx_commit(tx, FR_PERSIST_BUFFER, NULL, NULL))
			atomic_add_u64(&b->errors, 1);
		if (total != ACCOUNTS * START)
			atomic_add_u64(&b->bad_totals, 1);
		atomic_add_u64(&b->checks, 2);
	}
	return NULL;
}

static void run_bank(struct tu_fx *f, fr_tx_kind kind)
{
	fr_keyspace *ks = t_ks(f, "bank", NULL);
	for (int i = 0; i < ACCOUNTS; i++) {
		char k[16];
		acct_key(k, i);
		int64_t v = START;
		OK(fr_put(ks, k, strlen(k), &v, sizeof(v), &E));
	}
	struct bank b = {.db = f->db, .ks = ks, .kind = kind, .seed = tu_seed()};
	pthread_t w[WORKERS], chk;
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, bank_worker, &b), 0);
	assert_int_equal(pthread_create(&chk, NULL, bank_checker, &b), 0);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(chk, NULL);
	assert_int_equal(b.errors, 0);
	assert_int_equal(b.bad_totals, 0);
	int64_t total = 0;
	for (int i = 0; i < ACCOUNTS; i++) {
		char k[16];
		acct_key(k, i);
		void *v;
		size_t n;
		OK(fr_get(ks, k, strlen(k), &v, &n, &E));
		assert_int_equal(n, 8);
		int64_t x;
		memcpy(&x, v, 8);
		fr_free(v);
		assert_true(x >= 0);
		total += x;
	}
	assert_int_equal(total, ACCOUNTS * START);
	if (kind == FR_TX_SINGLE_WRITER)
		assert_int_equal(b.conflicts, 0);
	fprintf(stderr, "bank (%s): %d transfers, %llu conflicts retried, %llu checks\n",
		kind == FR_TX_OPTIMISTIC ? "optimistic" : "single writer", TRANSFERS,
		(unsigned long long)b.conflicts, (unsigned long long)b.checks);
	fr_keyspace_close(ks);
}

static void test_tx_bank_optimistic(void **state)
{
	run_bank(*state, FR_TX_OPTIMISTIC);
}

static void test_tx_bank_single_writer(void **state)
{
	run_bank(*state, FR_TX_SINGLE_WRITER);
}

/* ---- a history check: no commit lands between a winner's read seqno and its commit ---- */

#define HIST_PLAIN 6000
#define HIST_TX_THREADS 3
#define HIST_TX 3000

struct hist {
	fr_db *db;
	fr_keyspace *ks;
	uint64_t plain[HIST_PLAIN];             /* seqnos of the plain writes of "k" */
	uint64_t read_at[HIST_TX_THREADS][HIST_TX]; /* winners: read seqno */
	uint64_t commit_at[HIST_TX_THREADS][HIST_TX];
	size_t won[HIST_TX_THREADS];
	uint64_t errors; /* atomic */
	uint32_t plain_done; /* atomic */
};

struct hist_arg {
	struct hist *h;
	int id;
};

static void *hist_plain(void *arg)
{
	struct hist *h = arg;
	fr_batch *b;
	if (fr_batch_new(h->db, &b)) {
		atomic_add_u64(&h->errors, 1);
		return NULL;
	}
	for (int i = 0; i < HIST_PLAIN; i++) {
		fr_seqno at = 0;
		if (fr_batch_put(b, h->ks, "k", 1, &i, sizeof(i)) ||
		    fr_batch_put(b, h->ks, "other", 5, &i, sizeof(i)) ||
		    fr_batch_commit(b, FR_PERSIST_BUFFER, &at, NULL))
			atomic_add_u64(&h->errors, 1);
		h->plain[i] = at;
	}
	fr_batch_free(b);
	atomic_store_rel_u32(&h->plain_done, 1);
	return NULL;
}

static void *hist_tx(void *arg)
{
	struct hist_arg *a = arg;
	struct hist *h = a->h;
	for (int i = 0; i < HIST_TX; i++) {
		fr_tx *tx;
		if (fr_tx_begin(h->db, FR_TX_OPTIMISTIC, &tx, NULL)) {
			atomic_add_u64(&h->errors, 1);
			return NULL;
		}
		uint64_t r = fr_tx_seqno(tx);
		fr_status rc = fr_tx_get(tx, h->ks, "k", 1, NULL, NULL, NULL);
		if (rc && rc != FR_NOT_FOUND)
			atomic_add_u64(&h->errors, 1);
		if (fr_tx_put(tx, h->ks, "k", 1, &i, sizeof(i), NULL))
			atomic_add_u64(&h->errors, 1);
		fr_seqno s = 0;
		rc = fr_tx_commit(tx, FR_PERSIST_BUFFER, &s, NULL);
		if (rc == FR_OK) {
			h->read_at[a->id][h->won[a->id]] = r;
			h->commit_at[a->id][h->won[a->id]++] = s;
		} else if (rc != FR_CONFLICT) {
			atomic_add_u64(&h->errors, 1);
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* True when some element of sorted a[0..n) lies strictly between lo and hi. */
static bool any_between(const uint64_t *a, size_t n, uint64_t lo, uint64_t hi)
{
	size_t l = 0, r = n;
	while (l < r) {
		size_t m = l + (r - l) / 2;
		if (a[m] <= lo)
			l = m + 1;
		else
			r = m;
	}
	return l < n && a[l] < hi;
}

static void test_tx_history(void **state)
{
	struct tu_fx *f = *state;
	struct hist *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->db = f->db;
	h->ks = t_ks(f, "h", NULL);
	pthread_t pt, tt[HIST_TX_THREADS];
	struct hist_arg args[HIST_TX_THREADS];
	assert_int_equal(pthread_create(&pt, NULL, hist_plain, h), 0);
	for (int i = 0; i < HIST_TX_THREADS; i++) {
		args[i] = (struct hist_arg){h, i};
		assert_int_equal(pthread_create(&tt[i], NULL, hist_tx, &args[i]), 0);
	}
	pthread_join(pt, NULL);
	for (int i = 0; i < HIST_TX_THREADS; i++)
		pthread_join(tt[i], NULL);
	assert_int_equal(h->errors, 0);
	/* every write of k: the plain ones and the winning transactions' */
	size_t all_cnt = HIST_PLAIN, won = 0;
	uint64_t *all = malloc(sizeof(*all) * (HIST_PLAIN + HIST_TX_THREADS * HIST_TX));
	assert_non_null(all);
	memcpy(all, h->plain, sizeof(h->plain));
	for (int t = 0; t < HIST_TX_THREADS; t++)
		for (size_t i = 0; i < h->won[t]; i++)
			all[all_cnt++] = h->commit_at[t][i];
	qsort(all, all_cnt, sizeof(*all), cmp_u64);
	for (size_t i = 1; i < all_cnt; i++)
		assert_true(all[i] > all[i - 1]); /* one seqno per commit */
	for (int t = 0; t < HIST_TX_THREADS; t++) {
		for (size_t i = 0; i < h->won[t]; i++) {
			uint64_t r = h->read_at[t][i], s = h->commit_at[t][i];
			assert_true(r < s);
			if (any_between(all, all_cnt, r, s))
				fail_msg("a write of k at a seqno in (%llu, %llu) went undetected",
					 (unsigned long long)r, (unsigned long long)s);
			won++;
		}
	}
	assert_true(won > 0);
	fprintf(stderr, "history: %zu of %d transactions won against %d plain writes\n", won,
		HIST_TX_THREADS * HIST_TX, HIST_PLAIN);
	free(all);
	fr_keyspace_close(h->ks);
	free(h);
}

/* ---- the oracle's bound ---- */

static void test_tx_oracle_bounded(void **state)
{
#ifndef FR_TESTING
	skip(); /* the oracle's counters are a test hook */
#else
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	size_t held, most = 0;
	uint64_t rec0, rec;
	orc_test_counts(f->db->orc, &held, &rec0);
	assert_int_equal(held, 0);
	/* overlapping transactions, each outliving a plain commit and the previous one's
	 * commit: every commit is recorded, and dropped once no open transaction needs it */
	fr_tx *prev = obegin(f);
	for (int i = 0; i < 20000; i++) {
		char k[32];
		snprintf(k, sizeof(k), "k%d", i % 100);
		fr_tx *tx = obegin(f);
		put_s(a, "plain", k);
		texpect(tx, a, "nothing", NULL);
		tput(tx, a, k, "v");
		OK(fr_tx_commit(prev, FR_PERSIST_BUFFER, NULL, &E));
		prev = tx;
		orc_test_counts(f->db->orc, &held, &rec);
		if (held > most)
			most = held;
	}
	OK(fr_tx_commit(prev, FR_PERSIST_BUFFER, NULL, &E));
	orc_test_counts(f->db->orc, &held, &rec);
	assert_int_equal(held, 0);
	assert_true(rec - rec0 >= 20000);
	assert_true(most <= 4);
	/* nothing is recorded while no optimistic transaction is open */
	for (int i = 0; i < 100; i++)
		put_s(a, "plain", "p");
	uint64_t rec2;
	orc_test_counts(f->db->orc, &held, &rec2);
	assert_int_equal(rec2, rec);
	assert_int_equal(held, 0);
	fr_keyspace_close(a);
#endif
}

/* ---- durability ---- */

static void test_tx_reopen(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	fr_keyspace *b = t_ks(f, "b", "shared");
	for (int kind = 0; kind < 2; kind++) {
		fr_tx *tx;
		OK(fr_tx_begin(f->db, (fr_tx_kind)kind, &tx, &E));
		tput(tx, a, kind ? "opt" : "sw", "committed");
		tput(tx, b, kind ? "opt" : "sw", "committed b");
		OK(fr_tx_commit(tx, kind ? FR_PERSIST_BUFFER : FR_PERSIST_SYNC_ALL, NULL, &E));
		OK(fr_tx_begin(f->db, (fr_tx_kind)kind, &tx, &E));
		tput(tx, a, kind ? "opt-rb" : "sw-rb", "rolled back");
		tdel(tx, a, kind ? "opt" : "sw");
		fr_tx_rollback(tx);
	}
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	OK(fr_db_close(f->db, &E));
	f->db = NULL;
	OK(fr_db_open(f->dir, &f->o, &f->db, &E));
	a = t_ks(f, "a", NULL);
	b = t_ks(f, "b", "shared");
	expect(a, "sw", "committed");
	expect(a, "opt", "committed");
	expect(b, "sw", "committed b");
	expect(b, "opt", "committed b");
	expect(a, "sw-rb", NULL);
	expect(a, "opt-rb", NULL);
	fr_keyspace_close(a);
	fr_keyspace_close(b);
}

/* An ingestion publishes at a seqno of its own, outside the commit queue: a transaction that
 * read a key inside the ingested range (even a missing one, or one at either end) conflicts;
 * one that read outside it does not. */
static void ingest_keys(fr_keyspace *ks, const char *const *keys, size_t cnt)
{
	fr_ingest *in;
	OK(fr_ingest_start(ks, &in, &E));
	for (size_t i = 0; i < cnt; i++)
		OK(fr_ingest_put(in, keys[i], strlen(keys[i]), "ing", 3, &E));
	OK(fr_ingest_finish(in, NULL, &E));
}

static void test_tx_ingest_conflicts(void **state)
{
	struct tu_fx *f = *state;
	fr_keyspace *a = t_ks(f, "a", NULL);
	fr_keyspace *b = t_ks(f, "b", "shared");
	static const char *const keys[] = {"k1", "k5", "k9"};
	static const char *const read_in[] = {"k1", "k3", "k9"};
	for (size_t i = 0; i < 3; i++) {
		fr_tx *t = obegin(f);
		texpect(t, a, read_in[i], NULL);
		tput(t, a, "derived", read_in[i]);
		ingest_keys(a, keys, 3);
		assert_int_equal(fr_tx_commit(t, FR_PERSIST_BUFFER, NULL, &E), FR_CONFLICT);
		expect(a, "derived", NULL);
		OK(fr_keyspace_clear(a, &E));
	}
	/* outside the range, or in another keyspace of the same tree: no conflict */
	fr_tx *t = obegin(f);
	texpect(t, a, "k91", NULL);
	texpect(t, b, "k5", NULL);
	tput(t, a, "derived", "ok");
	ingest_keys(a, keys, 3);
	OK(fr_tx_commit(t, FR_PERSIST_BUFFER, NULL, &E));
	expect(a, "derived", "ok");
	expect(a, "k5", "ing");
	fr_keyspace_close(a);
	fr_keyspace_close(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tx_read_own_writes),
		T(test_tx_updates),
		T(test_tx_rollback),
		T(test_tx_single_writer_exclusive),
		T(test_tx_lost_update),
		T(test_tx_write_skew),
		T(test_tx_phantom),
		T(test_tx_read_missing),
		T(test_tx_disjoint),
		T(test_tx_bank_optimistic),
		T(test_tx_bank_single_writer),
		T(test_tx_history),
		T(test_tx_oracle_bounded),
		T(test_tx_reopen),
		T(test_tx_ingest_conflicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
