/* SPDX-License-Identifier: MIT */
/*
 * test_keyspace.c - keyspace creation and deletion that the commit leader resolves before the
 * batches of a commit group are applied: a create or drop must see the catalog as the same
 * batch's earlier operations and the group's earlier batches leave it. The first tests drive
 * the resolvers with hand-built leader operations (what write.c's lo_build passes them); the
 * later ones go through the public interface, in one batch and in real commit groups of
 * several threads, and check the outcome again after reopening.
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

#include "base/sync.h"

#include "db/db.h"
#include "db/write.h"
#include "fractio.h"
#include "testutil.h"
#include "testutil_db.h"

static fr_error E;

#define OK(call) TU_OK(call, E)

static int setup(void **state)
{
	*state = tu_fx_new("keyspace", false);
	return *state ? 0 : -1;
}

static uint64_t ks_len(fr_keyspace *ks)
{
	uint64_t n = UINT64_MAX;
	OK(fr_len(ks, &n, &E));
	return n;
}

/* ---- the resolvers, with hand-built leader operations ---- */

/* catalog key (tag, name), as keyspace.c builds it (FORMAT.md §6) */
static size_t cat_key_of(uint8_t *out, char tag, const char *name)
{
	memset(out, 0, KS_PREFIX_LEN);
	out[KS_PREFIX_LEN] = (uint8_t)tag;
	memcpy(out + KS_PREFIX_LEN + 1, name, strlen(name));
	return KS_PREFIX_LEN + 1 + strlen(name);
}

/* The newest op of lo on catalog entry (tag, name), or NULL. */
static const struct batch_op *cat_op(const struct leader_ops *lo, char tag, const char *name)
{
	uint8_t key[KS_PREFIX_LEN + 1 + FR_KEYSPACE_NAME_MAX];
	size_t klen = cat_key_of(key, tag, name);
	for (size_t i = lo->cnt; i-- > 0;) {
		const struct batch_op *o = &lo->ops[i];
		if (o->tree_id == CATALOG_TREE && o->key_len == klen && !memcmp(o->key, key, klen))
			return o;
	}
	return NULL;
}

/* The newest 'k' record lo puts for name: its keyspace id (and tree id). Fails if lo has
 * none, or deletes it last. */
static uint32_t put_ks_id(const struct leader_ops *lo, const char *name, uint32_t *tree_id)
{
	const struct batch_op *o = cat_op(lo, 'k', name);
	if (!o || o->op != BOP_PUT || o->val_len != 8)
		fail_msg("no 'k' record put for %s", name);
	const uint8_t *v = o->val;
	if (tree_id)
		*tree_id = (uint32_t)v[4] | (uint32_t)v[5] << 8 | (uint32_t)v[6] << 16 |
			   (uint32_t)v[7] << 24;
	return (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 |
	       (uint32_t)v[3] << 24;
}

static void assert_deletes(const struct leader_ops *lo, const char *name)
{
	const struct batch_op *o = cat_op(lo, 'k', name);
	if (!o || o->op != BOP_DEL)
		fail_msg("the 'k' record of %s is not deleted last", name);
}

static void los_fini(struct leader_ops *los, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lo_fini(&los[i]);
}

/* Batch 1 of a group creates x, batch 2 drops it; and the same in one batch. The drop must
 * find the pending keyspace and delete it (recording the id it got for ks_after_drop). */
static void test_keyspace_resolve_create_then_drop(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	struct leader_ops lo[2] = {{0}};
	OK(ks_resolve_create(f->db, "x", NULL, NULL, &lo[0], NULL, 0, &E));
	uint32_t id = put_ks_id(&lo[0], "x", NULL);
	OK(ks_resolve_drop(f->db, "x", &lo[1], lo, 1, &E));
	assert_deletes(&lo[1], "x");
	assert_int_equal(lo[1].dropped_cnt, 1);
	assert_string_equal(lo[1].dropped[0].name, "x");
	assert_int_equal(lo[1].dropped[0].ks_id, id);
	los_fini(lo, 2);

	struct leader_ops one = {0};
	OK(ks_resolve_create(f->db, "y", NULL, NULL, &one, NULL, 0, &E));
	id = put_ks_id(&one, "y", NULL);
	OK(ks_resolve_drop(f->db, "y", &one, NULL, 0, &E));
	assert_deletes(&one, "y");
	assert_int_equal(one.dropped_cnt, 1);
	assert_int_equal(one.dropped[0].ks_id, id);
	lo_fini(&one);
}

/* x exists; batch 1 drops it, batch 2 creates it again: the create must not take the pending
 * drop's keyspace for a live one, and gives x a new id. The same in one batch. */
static void test_keyspace_resolve_drop_then_create(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	fr_keyspace *x = tu_fx_ks(f, "x", NULL);
	uint32_t old = x->ks_id;
	struct leader_ops lo[2] = {{0}};
	OK(ks_resolve_drop(f->db, "x", &lo[0], NULL, 0, &E));
	assert_deletes(&lo[0], "x");
	OK(ks_resolve_create(f->db, "x", NULL, NULL, &lo[1], lo, 1, &E));
	uint32_t id = put_ks_id(&lo[1], "x", NULL);
	assert_int_not_equal(id, old);
	/* a write through the old handle after the drop is refused: its id is gone */
	assert_true(ks_is_dropped_in_group(x, &lo[1], lo, 1));
	assert_true(ks_is_dropped_in_group(x, &lo[0], NULL, 0));
	/* as does a new keyspace of its name alone */
	assert_true(ks_is_dropped_in_group(x, &lo[1], NULL, 0));
	los_fini(lo, 2);

	struct leader_ops one = {0};
	assert_false(ks_is_dropped_in_group(x, &one, NULL, 0));
	OK(ks_resolve_drop(f->db, "x", &one, NULL, 0, &E));
	OK(ks_resolve_create(f->db, "x", NULL, NULL, &one, NULL, 0, &E));
	id = put_ks_id(&one, "x", NULL);
	assert_int_not_equal(id, old);
	assert_int_equal(one.dropped_cnt, 1);
	assert_int_equal(one.dropped[0].ks_id, old);
	assert_true(ks_is_dropped_in_group(x, &one, NULL, 0));
	lo_fini(&one);
	fr_keyspace_close(x);
}

/* Two batches of a group, and two operations of one batch, create the same keyspace: the
 * second finds the first pending and does nothing, so one id is handed out and the catalog
 * record is written once. */
static void test_keyspace_resolve_create_twice(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	uint32_t ks0 = f->db->next_ks_id, tree0 = f->db->next_tree_id;
	struct leader_ops lo[2] = {{0}};
	OK(ks_resolve_create(f->db, "x", NULL, NULL, &lo[0], NULL, 0, &E));
	uint32_t id = put_ks_id(&lo[0], "x", NULL);
	OK(ks_resolve_create(f->db, "x", NULL, NULL, &lo[1], lo, 1, &E));
	assert_int_equal(lo[1].cnt, 0);
	assert_int_equal(f->db->next_ks_id, ks0 + 1);
	assert_int_equal(f->db->next_tree_id, tree0 + 1);
	/* and a drop in a third batch finds the first batch's record */
	struct leader_ops lo3[3] = {lo[0], lo[1], {0}};
	OK(ks_resolve_drop(f->db, "x", &lo3[2], lo3, 2, &E));
	assert_int_equal(lo3[2].dropped_cnt, 1);
	assert_int_equal(lo3[2].dropped[0].ks_id, id);
	lo_fini(&lo3[2]);
	los_fini(lo, 2);

	struct leader_ops one = {0};
	OK(ks_resolve_create(f->db, "y", NULL, NULL, &one, NULL, 0, &E));
	size_t cnt = one.cnt;
	OK(ks_resolve_create(f->db, "y", NULL, NULL, &one, NULL, 0, &E));
	assert_int_equal(one.cnt, cnt);
	assert_int_equal(f->db->next_ks_id, ks0 + 2);
	lo_fini(&one);
}

/* Two keyspaces of one new shared tree created in one group (and in one batch): both must
 * live in the one tree the name stands for, not each in a tree of its own. */
static void test_keyspace_resolve_shared_tree_once(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	fr_keyspace_options o;
	fr_keyspace_options_init(&o);
	uint32_t tree0 = f->db->next_tree_id;
	struct leader_ops lo[2] = {{0}};
	OK(ks_resolve_create(f->db, "a", &o, "s", &lo[0], NULL, 0, &E));
	OK(ks_resolve_create(f->db, "b", &o, "s", &lo[1], lo, 1, &E));
	uint32_t ta, tb;
	put_ks_id(&lo[0], "a", &ta);
	put_ks_id(&lo[1], "b", &tb);
	assert_int_equal(ta, tb);
	assert_null(cat_op(&lo[1], 't', "s"));
	assert_int_equal(f->db->next_tree_id, tree0 + 1);
	los_fini(lo, 2);

	struct leader_ops one = {0};
	OK(ks_resolve_create(f->db, "c", &o, "u", &one, NULL, 0, &E));
	OK(ks_resolve_create(f->db, "d", &o, "u", &one, NULL, 0, &E));
	put_ks_id(&one, "c", &ta);
	put_ks_id(&one, "d", &tb);
	assert_int_equal(ta, tb);
	assert_int_equal(f->db->next_tree_id, tree0 + 2);
	lo_fini(&one);
}

/* A write into the dropped keyspace earlier in the drop's own batch (of a keyspace with
 * nothing committed) needs the range tombstone too: the batch drops the write it covers. */
static void test_keyspace_resolve_drop_after_own_write(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	fr_keyspace *e = tu_fx_ks(f, "e", NULL);
	struct leader_ops lo = {0};
	uint8_t key[KS_PREFIX_LEN + 1];
	memcpy(key, e->prefix, KS_PREFIX_LEN);
	key[KS_PREFIX_LEN] = 'k';
	OK(lo_add(&lo, BOP_PUT, e->tree->id, key, sizeof(key), "v", 1, true));
	OK(ks_resolve_drop(f->db, "e", &lo, NULL, 0, &E));
	bool range = false;
	for (size_t i = 0; i < lo.cnt; i++)
		range |= lo.ops[i].op == BOP_RANGE_DEL && lo.ops[i].tree_id == e->tree->id;
	assert_true(range);
	lo_fini(&lo);

	/* and committed: the write is not left behind under the dropped id */
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_put(b, e, "k", 1, "v", 1));
	OK(fr_batch_drop_keyspace(b, "e"));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	fr_batch_free(b);
	uint32_t tree_id = e->tree->id;
	fr_keyspace_close(e);
	for (int round = 0; round < 2; round++) {
		struct tree *t;
		fr_status rc = tree_get(f->db, tree_id, false, &t);
		if (rc == FR_OK)
			rc = tree_get_value(f->db, t, key, sizeof(key), f->db->visible_seqno, NULL,
					    NULL, &E);
		assert_int_equal(rc, FR_NOT_FOUND);
		tu_fx_reopen(f);
	}
}

/* ks_after_drop forgets the handle of the dropped id only: once the name stands for a newer
 * keyspace (created after the drop in the same batch), that one's handle stays. */
static void test_keyspace_after_drop_keeps_newer(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	fr_keyspace *x = tu_fx_ks(f, "x", NULL);
	uint32_t stale = x->ks_id - 1; /* an older keyspace of the same name */
	ks_after_drop(f->db, "x", stale);
	tu_put_s(x, "k", "v");
	fr_keyspace *again = tu_fx_ks(f, "x", NULL);
	assert_ptr_equal(again, x);
	fr_keyspace_close(again);
	ks_after_drop(f->db, "x", x->ks_id);
	assert_int_equal(fr_put(x, "k", 1, "v", 1, &E), FR_NOT_FOUND);
	fr_keyspace_close(x);
}

/* ---- one batch, through the public interface ---- */

/* The outcome of the scenarios of test_keyspace_batch_in_order (however they were split over
 * batches), live and after reopening: y created then dropped, x (whose old handle is closed
 * here) dropped then created anew, z created twice, a and c in one new tree s. ks0 and tree0
 * are the next ids before. */
static void check_in_order(struct tu_fx *f, fr_keyspace *x, uint32_t ks0, uint32_t tree0)
{
	/* ids: x, z, a, c; trees: y's, x's, z's, s */
	assert_int_equal(f->db->next_ks_id, ks0 + 5);
	assert_int_equal(f->db->next_tree_id, tree0 + 4);
	for (int round = 0; round < 2; round++) {
		assert_false(tu_ks_exists(f->db, "y"));
		assert_true(tu_ks_exists(f->db, "x"));
		assert_true(tu_ks_exists(f->db, "z"));
		/* the old handle of x is dropped; x opens empty, under a new id */
		if (!round) {
			assert_int_equal(fr_put(x, "k", 1, "v", 1, &E), FR_NOT_FOUND);
			fr_keyspace_close(x);
		}
		fr_keyspace *nx = tu_fx_ks(f, "x", NULL);
		assert_int_equal(nx->ks_id, ks0 + 1);
		tu_expect_s(nx, "old", NULL);
		if (!round)
			tu_put_s(nx, "new", "2");
		tu_expect_s(nx, "new", "2");
		assert_int_equal(ks_len(nx), 1);
		fr_keyspace *z = tu_fx_ks(f, "z", NULL);
		assert_int_equal(z->ks_id, ks0 + 2);
		if (!round)
			tu_put_s(z, "zk", "zv");
		tu_expect_s(z, "zk", "zv");
		fr_keyspace *a = tu_fx_ks(f, "a", "s"), *c = tu_fx_ks(f, "c", "s");
		assert_ptr_equal(a->tree, c->tree);
		fr_keyspace_close(a);
		fr_keyspace_close(c);
		fr_keyspace_close(z);
		fr_keyspace_close(nx);
		tu_fx_reopen(f);
		assert_int_equal(f->db->next_ks_id, ks0 + 5);
		assert_int_equal(f->db->next_tree_id, tree0 + 4);
	}
}

/* Create and drop of one name in one batch, in both orders, a second create and two
 * keyspaces of one new shared tree: the outcome is that of the operations in order, for the
 * live database, its handles and after reopening. */
static void test_keyspace_batch_in_order(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	fr_keyspace *x = tu_fx_ks(f, "x", NULL);
	tu_put_s(x, "old", "1");
	uint32_t ks0 = f->db->next_ks_id, tree0 = f->db->next_tree_id;
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_create_keyspace(b, "y", NULL)); /* y: created, then dropped */
	OK(fr_batch_drop_keyspace(b, "y"));
	OK(fr_batch_drop_keyspace(b, "x")); /* x: dropped, then created anew */
	OK(fr_batch_create_keyspace(b, "x", NULL));
	OK(fr_batch_create_keyspace(b, "z", NULL)); /* z: created twice */
	OK(fr_batch_create_keyspace(b, "z", NULL));
	fr_keyspace_options o;
	fr_keyspace_options_init(&o);
	o.tree = "s"; /* a and c: one new shared tree */
	OK(fr_batch_create_keyspace(b, "a", &o));
	OK(fr_batch_create_keyspace(b, "c", &o));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	check_in_order(f, x, ks0, tree0);
	fr_batch_free(b);
}

/* A batch that drops a keyspace and then writes through a handle of it (or of the keyspace
 * it replaced) is refused whole: the write would land under an id no keyspace has. */
static void test_keyspace_batch_write_after_drop(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	fr_keyspace *x = tu_fx_ks(f, "x", NULL), *w = tu_fx_ks(f, "w", NULL);
	fr_batch *b;
	OK(fr_batch_new(f->db, &b));
	OK(fr_batch_put(b, w, "k", 1, "v", 1));
	OK(fr_batch_drop_keyspace(b, "x"));
	OK(fr_batch_put(b, x, "k", 1, "v", 1));
	assert_int_equal(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E), FR_NOT_FOUND);
	OK(fr_batch_drop_keyspace(b, "x"));
	OK(fr_batch_create_keyspace(b, "x", NULL));
	OK(fr_batch_put(b, x, "k", 1, "v", 1));
	assert_int_equal(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E), FR_NOT_FOUND);
	/* nothing of either batch happened */
	assert_true(tu_ks_exists(f->db, "x"));
	tu_expect_s(w, "k", NULL);
	tu_put_s(x, "k", "still");
	/* a write before the drop is fine, and goes with the keyspace */
	OK(fr_batch_put(b, x, "k2", 2, "v", 1));
	OK(fr_batch_drop_keyspace(b, "x"));
	OK(fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, &E));
	assert_false(tu_ks_exists(f->db, "x"));
	fr_keyspace_close(x);
	x = tu_fx_ks(f, "x", NULL);
	assert_int_equal(ks_len(x), 0);
	fr_keyspace_close(x);
	fr_keyspace_close(w);
	fr_batch_free(b);
}

/* ---- real commit groups ---- */

static void short_sleep(void)
{
	struct timespec ts = {0, 100000};
	nanosleep(&ts, NULL);
}

static void wait_queued(fr_db *db, size_t n)
{
	while (db_test_queued(db) < n)
		short_sleep();
}

struct hold {
	fr_db *db;
	size_t want; /* queued writers, the hold itself included, to wait for */
	fr_status rc;
};

static fr_status hold_fn(fr_db *db, void *ctx, fr_error *err)
{
	(void)err;
	struct hold *h = ctx;
	wait_queued(db, h->want);
	return FR_OK;
}

static void *hold_main(void *p)
{
	struct hold *h = p;
	h->rc = db_exclusive(h->db, hold_fn, h, NULL);
	return NULL;
}

struct committer {
	fr_batch *b;
	fr_status rc;
	fr_error err;
};

static void *commit_main(void *p)
{
	struct committer *c = p;
	c->rc = fr_batch_commit(c->b, FR_PERSIST_BUFFER, NULL, &c->err);
	return NULL;
}

#define GROUP_MAX 8

/* Commits batches b[0..n) as one commit group, in that order, and returns each one's status
 * in rcs: exclusive work holds the commit queue until all n are queued behind it, and the
 * first then leads the rest. */
static void commit_group(fr_db *db, fr_batch **b, size_t n, fr_status *rcs)
{
	assert_true(n <= GROUP_MAX);
	uint64_t groups = atomic_load_acq_u64(&db->test_groups);
	struct hold h = {.db = db, .want = n + 1};
	struct committer c[GROUP_MAX];
	pthread_t hth, th[GROUP_MAX];
	assert_int_equal(pthread_create(&hth, NULL, hold_main, &h), 0);
	wait_queued(db, 1);
	for (size_t i = 0; i < n; i++) {
		c[i] = (struct committer){.b = b[i]};
		assert_int_equal(pthread_create(&th[i], NULL, commit_main, &c[i]), 0);
		/* the last one's turn ends the hold, and the queue may be empty again by the
		 * time we would look */
		if (i + 1 < n)
			wait_queued(db, i + 2);
	}
	assert_int_equal(pthread_join(hth, NULL), 0);
	OK(h.rc);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		rcs[i] = c[i].rc;
	}
	/* one group: what the tests below are about */
	assert_int_equal(atomic_load_acq_u64(&db->test_groups), groups + 1);
}

static void commit_group_ok(fr_db *db, fr_batch **b, size_t n)
{
	fr_status rcs[GROUP_MAX];
	commit_group(db, b, n, rcs);
	for (size_t i = 0; i < n; i++)
		if (rcs[i])
			fail_msg("batch %zu of the group: %s", i, fr_status_str(rcs[i]));
}

static void batches_new(fr_db *db, fr_batch **b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		OK(fr_batch_new(db, &b[i]));
}

static void batches_free(fr_batch **b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fr_batch_free(b[i]);
}

/* The scenarios of test_keyspace_batch_in_order, each split over the batches of one commit
 * group: create then drop, drop then create, two creates, two keyspaces of a new shared tree. */
static void test_keyspace_group_in_order(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	atomic_store_rel_bool(&f->db->test_group_ks_ops, true);
	fr_keyspace *x = tu_fx_ks(f, "x", NULL);
	tu_put_s(x, "old", "1");
	uint32_t ks0 = f->db->next_ks_id, tree0 = f->db->next_tree_id;
	fr_keyspace_options o;
	fr_keyspace_options_init(&o);
	o.tree = "s";
	fr_batch *b[8];
	batches_new(f->db, b, 8);
	OK(fr_batch_create_keyspace(b[0], "y", NULL));
	OK(fr_batch_drop_keyspace(b[1], "y"));
	OK(fr_batch_drop_keyspace(b[2], "x"));
	OK(fr_batch_create_keyspace(b[3], "x", NULL));
	OK(fr_batch_create_keyspace(b[4], "z", NULL));
	OK(fr_batch_create_keyspace(b[5], "z", NULL));
	OK(fr_batch_create_keyspace(b[6], "a", &o));
	OK(fr_batch_create_keyspace(b[7], "c", &o));
	commit_group_ok(f->db, b, 8);
	batches_free(b, 8);
	check_in_order(f, x, ks0, tree0);
}

/* A batch of a group that writes through the handle of a keyspace the group's earlier batch
 * dropped fails, alone: the drop and the other batches are written. */
static void test_keyspace_group_write_after_drop(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	atomic_store_rel_bool(&f->db->test_group_ks_ops, true);
	fr_keyspace *x = tu_fx_ks(f, "x", NULL), *w = tu_fx_ks(f, "w", NULL);
	fr_batch *b[3];
	batches_new(f->db, b, 3);
	OK(fr_batch_drop_keyspace(b[0], "x"));
	OK(fr_batch_put(b[1], w, "k1", 2, "v", 1));
	OK(fr_batch_put(b[1], x, "k", 1, "v", 1));
	OK(fr_batch_put(b[2], w, "k2", 2, "v", 1));
	fr_status rcs[3];
	commit_group(f->db, b, 3, rcs);
	assert_int_equal(rcs[0], FR_OK);
	assert_int_equal(rcs[1], FR_NOT_FOUND);
	assert_int_equal(rcs[2], FR_OK);
	for (int round = 0; round < 2; round++) {
		assert_false(tu_ks_exists(f->db, "x"));
		tu_expect_s(w, "k1", NULL);
		tu_expect_s(w, "k2", "v");
		fr_keyspace_close(w);
		if (!round) {
			fr_keyspace_close(x);
			tu_fx_reopen(f);
		}
		w = tu_fx_ks(f, "w", NULL);
	}
	fr_keyspace_close(w);
	batches_free(b, 3);
}

/* With no keyspace operation in the group at all (the default grouping): a batch writing
 * through a handle of a keyspace dropped before fails, and the batches grouped with it do
 * not. */
static void test_keyspace_group_stale_handle_alone(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	fr_keyspace *x = tu_fx_ks(f, "x", NULL), *w = tu_fx_ks(f, "w", NULL);
	fr_batch *b[3];
	batches_new(f->db, b, 3);
	OK(fr_batch_put(b[0], w, "k0", 2, "v", 1));
	OK(fr_batch_put(b[1], x, "k", 1, "v", 1));
	OK(fr_batch_put(b[2], w, "k2", 2, "v", 1));
	OK(fr_keyspace_delete(f->db, "x", &E)); /* after the batch took its handle */
	fr_status rcs[3];
	commit_group(f->db, b, 3, rcs);
	assert_int_equal(rcs[0], FR_OK);
	assert_int_equal(rcs[1], FR_NOT_FOUND);
	assert_int_equal(rcs[2], FR_OK);
	tu_expect_s(w, "k0", "v");
	tu_expect_s(w, "k2", "v");
	fr_keyspace_close(x);
	fr_keyspace_close(w);
	batches_free(b, 3);
}

/* Threads that drop and re-create their keyspaces in one batch, create and drop others in
 * one batch, open them and write through the new handles, all in whatever groups the commit
 * queue forms (keyspace batches allowed in groups); and threads that keep opening a name
 * that one of them keeps replacing. What the live process ends up believing (the keyspace
 * list, each handle's id and contents) must be what a reopen recovers. */
#define STRESS_THREADS 4
#define STRESS_ROUNDS 600

struct stress {
	struct tu_fx *f;
	int id;
	fr_status rc;
	char where[64];
};

static void stress_fail(struct stress *s, fr_status rc, const char *where, int round)
{
	snprintf(s->where, sizeof(s->where), "%s, round %d", where, round);
	s->rc = rc;
}

/* Commits b with a drop of name then its creation, or the other way round. */
static fr_status commit_pair(fr_batch *b, bool drop_first, const char *name, fr_error *err)
{
	fr_status rc = drop_first ? fr_batch_drop_keyspace(b, name)
				  : fr_batch_create_keyspace(b, name, NULL);
	if (!rc)
		rc = drop_first ? fr_batch_create_keyspace(b, name, NULL)
				: fr_batch_drop_keyspace(b, name);
	return rc ? rc : fr_batch_commit(b, FR_PERSIST_BUFFER, NULL, err);
}

static void *stress_main(void *p)
{
	struct stress *s = p;
	fr_db *db = s->f->db;
	char keep[16], gone[16], val[16];
	snprintf(keep, sizeof(keep), "keep%d", s->id);
	snprintf(gone, sizeof(gone), "gone%d", s->id);
	fr_batch *b;
	fr_error err;
	fr_status rc = fr_batch_new(db, &b);
	if (rc) {
		stress_fail(s, rc, "batch", 0);
		return NULL;
	}
	for (int r = 0; r < STRESS_ROUNDS; r++) {
		/* keep<id>: replaced by a new, empty keyspace every round, then written */
		if ((rc = commit_pair(b, true, keep, &err))) {
			stress_fail(s, rc, "replace", r);
			break;
		}
		fr_keyspace *ks;
		if ((rc = fr_keyspace_open(db, keep, NULL, &ks, &err))) {
			stress_fail(s, rc, "open", r);
			break;
		}
		uint64_t n = 1;
		rc = fr_len(ks, &n, &err);
		if (!rc && n)
			rc = FR_CORRUPTION; /* the old keyspace's data showed through */
		snprintf(val, sizeof(val), "%d", r);
		if (!rc)
			rc = fr_put(ks, "round", 5, val, strlen(val), &err);
		fr_keyspace_close(ks);
		if (rc) {
			stress_fail(s, rc, "write", r);
			break;
		}
		/* gone<id>: created and dropped in one batch, never there */
		bool e = true;
		if (!(rc = commit_pair(b, false, gone, &err)) &&
		    !(rc = fr_keyspace_exists(db, gone, &e, &err)) && e)
			rc = FR_CORRUPTION;
		if (rc) {
			stress_fail(s, rc, "create and drop", r);
			break;
		}
		/* thread 0 also replaces "shared", which the opener threads keep opening */
		if (s->id == 0 && (rc = commit_pair(b, true, "shared", &err))) {
			stress_fail(s, rc, "replace shared", r);
			break;
		}
	}
	fr_batch_free(b);
	return NULL;
}

static bool stress_done; /* atomic */

static void *opener_main(void *p)
{
	struct stress *s = p;
	while (!atomic_load_acq_bool(&stress_done)) {
		fr_keyspace *ks;
		fr_error err;
		fr_status rc = fr_keyspace_open(s->f->db, "shared", NULL, &ks, &err);
		if (rc) {
			stress_fail(s, rc, "open shared", 0);
			break;
		}
		/* a drop may come in between: then the handle is marked, never stale */
		rc = fr_put(ks, "o", 1, "v", 1, &err);
		fr_keyspace_close(ks);
		if (rc && rc != FR_NOT_FOUND) {
			stress_fail(s, rc, "write shared", 0);
			break;
		}
	}
	return NULL;
}

static void test_keyspace_group_stress(void **state)
{
	struct tu_fx *f = *state;
	tu_fx_open(f);
	atomic_store_rel_bool(&f->db->test_group_ks_ops, true);
	fr_keyspace *sh = tu_fx_ks(f, "shared", NULL);
	fr_keyspace_close(sh);
	struct stress st[STRESS_THREADS + 2];
	pthread_t th[STRESS_THREADS + 2];
	atomic_store_rel_bool(&stress_done, false);
	for (int i = 0; i < STRESS_THREADS + 2; i++) {
		st[i] = (struct stress){.f = f, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL,
						i < STRESS_THREADS ? stress_main : opener_main,
						&st[i]),
				 0);
	}
	for (int i = 0; i < STRESS_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	atomic_store_rel_bool(&stress_done, true);
	for (int i = STRESS_THREADS; i < STRESS_THREADS + 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < STRESS_THREADS + 2; i++)
		if (st[i].rc)
			fail_msg("thread %d: %s: %s", i, st[i].where, fr_status_str(st[i].rc));
	/* the live handles: not marked dropped, and with the ids the catalog keeps */
	uint32_t ids[STRESS_THREADS + 1];
	char name[16], last[16];
	snprintf(last, sizeof(last), "%d", STRESS_ROUNDS - 1);
	for (int i = 0; i <= STRESS_THREADS; i++) {
		snprintf(name, sizeof(name), "keep%d", i);
		fr_keyspace *ks = tu_fx_ks(f, i < STRESS_THREADS ? name : "shared", NULL);
		ids[i] = ks->ks_id;
		if (i < STRESS_THREADS)
			tu_expect_s(ks, "round", last);
		tu_put_s(ks, "live", "1");
		fr_keyspace_close(ks);
	}
	tu_fx_reopen(f);
	for (int i = 0; i <= STRESS_THREADS; i++) {
		snprintf(name, sizeof(name), "keep%d", i);
		fr_keyspace *ks = tu_fx_ks(f, i < STRESS_THREADS ? name : "shared", NULL);
		assert_int_equal(ks->ks_id, ids[i]);
		if (i < STRESS_THREADS)
			tu_expect_s(ks, "round", last);
		tu_expect_s(ks, "live", "1");
		fr_keyspace_close(ks);
		snprintf(name, sizeof(name), "gone%d", i);
		assert_false(tu_ks_exists(f->db, name));
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, tu_fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_keyspace_resolve_create_then_drop),
		T(test_keyspace_resolve_drop_then_create),
		T(test_keyspace_resolve_create_twice),
		T(test_keyspace_resolve_shared_tree_once),
		T(test_keyspace_resolve_drop_after_own_write),
		T(test_keyspace_after_drop_keeps_newer),
		T(test_keyspace_batch_in_order),
		T(test_keyspace_batch_write_after_drop),
		T(test_keyspace_group_in_order),
		T(test_keyspace_group_write_after_drop),
		T(test_keyspace_group_stale_handle_alone),
		T(test_keyspace_group_stress),
	};
	if (getenv("FR_TEST_FILTER"))
		cmocka_set_test_filter(getenv("FR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
