/* SPDX-License-Identifier: MIT */
/*
 * write.c - the write path. Committers queue on db->write_mu; the one at the head becomes the
 * leader, takes the batches queued behind it (group commit), gives each batch one seqno,
 * appends them to the journal with one write and one sync, applies them to the memtables and
 * then publishes the new visible seqno. Keyspace creation and deletion inside a batch are
 * resolved by the leader into catalog writes, so they commit atomically with the batch.
 *
 * A journal or memtable failure after seqnos were handed out poisons the database: the state
 * on disk can no longer be trusted to match what callers were told.
 *
 * Optimistic transactions (oracle.h): a group holding one is validated and recorded in the
 * oracle, writer by writer, before seqnos are handed out, so no commit slips in between a
 * transaction's check and its own commit; a loser gets FR_CONFLICT and no seqno. Any other
 * group is recorded after it became visible, and only when a transaction is open: one load.
 */
#include "db/write.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/ikey.h"
#include "base/log.h"
#include "base/sync.h"
#include "blob/blob.h"
#include "db/db.h"
#include "db/oracle.h"
#include "journal/journal.h"
#include "memtable/memtable.h"
#include "tx/batch.h"
#include "version/version.h"

#define GROUP_MAX_BYTES (4u << 20)
/* write-back of direct blob files is started every this many bytes, as the journal's is */
#define BLOB_WRITEBACK_MIN (2u << 20)
#define GROUP_MAX_WRITERS 128

struct writer {
	fr_batch *b;
	fr_persist mode;
	fr_status (*fn)(fr_db *db, void *ctx, fr_error *err); /* exclusive work instead */
	void *ctx;
	bool done;
	bool conflict; /* not written: an optimistic transaction lost its validation, or the
			* batch could not be resolved (own_rc; err says why) */
	fr_status own_rc;
	fr_status rc;
	fr_error err;
	uint64_t seqno;
	struct fr_cond cv;
	struct writer *next;
};

/* A copy of a[0..alen) followed by b[0..blen), freed with lo (lo_reset). NULL on out of memory. */
static uint8_t *lo_own(struct leader_ops *lo, const void *a, size_t alen, const void *b,
		       size_t blen)
{
	if (lo->owned_cnt == lo->owned_cap) {
		size_t cap = lo->owned_cap ? lo->owned_cap * 2 : 8;
		void **ow = fr_realloc(lo->owned, cap * sizeof(*ow));
		if (!ow)
			return NULL;
		lo->owned = ow;
		lo->owned_cap = cap;
	}
	uint8_t *mem = fr_malloc(alen + blen);
	if (!mem)
		return NULL;
	if (alen)
		memcpy(mem, a, alen);
	if (blen)
		memcpy(mem + alen, b, blen);
	lo->owned[lo->owned_cnt++] = mem;
	return mem;
}

fr_status lo_add(struct leader_ops *lo, uint8_t op, uint32_t tree_id, const void *k, size_t klen,
		 const void *v, size_t vlen, bool copy)
{
	if (lo->cnt == lo->cap) {
		size_t cap = lo->cap ? lo->cap * 2 : 16;
		struct batch_op *o = fr_realloc(lo->ops, cap * sizeof(*o));
		if (!o)
			return FR_NOMEM;
		lo->ops = o;
		lo->cap = cap;
	}
	if (copy) {
		uint8_t *mem = lo_own(lo, k, klen, v, vlen);
		if (!mem)
			return FR_NOMEM;
		k = mem;
		v = mem + klen;
	}
	lo->ops[lo->cnt++] = (struct batch_op){.op = op, .tree_id = tree_id, .key = k,
					       .key_len = klen, .val = v, .val_len = vlen};
	return FR_OK;
}

void lo_reset(struct leader_ops *lo)
{
	for (size_t i = 0; i < lo->owned_cnt; i++)
		fr_free(lo->owned[i]);
	for (size_t i = 0; i < lo->dropped_cnt; i++)
		fr_free(lo->dropped[i].name);
	lo->owned_cnt = 0;
	lo->dropped_cnt = 0;
	lo->cnt = 0;
}

void lo_fini(struct leader_ops *lo)
{
	lo_reset(lo);
	fr_free(lo->ops);
	fr_free(lo->owned);
	fr_free(lo->dropped);
	memset(lo, 0, sizeof(*lo));
}

/* ---- public batch building ---- */

fr_status batch_add(fr_batch *b, uint8_t op, fr_keyspace *ks, const void *k, size_t klen,
		    const void *v, size_t vlen)
{
	if (b->cnt == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		struct bop *o = fr_realloc(b->ops, cap * sizeof(*o));
		if (!o)
			return FR_NOMEM;
		b->ops = o;
		b->cap = cap;
	}
	struct bop *o = &b->ops[b->cnt];
	memset(o, 0, sizeof(*o));
	o->op = op;
	o->key_off = b->data.len;
	size_t plen = ks ? KS_PREFIX_LEN : 0;
	if (buf_reserve(&b->data, plen + klen + vlen))
		return FR_NOMEM;
	if (ks)
		buf_append(&b->data, ks->prefix, KS_PREFIX_LEN);
	buf_append(&b->data, k, klen);
	o->key_len = plen + klen;
	o->val_off = b->data.len;
	if (op == BOP_RANGE_DEL && ks)
		buf_append(&b->data, ks->prefix, KS_PREFIX_LEN);
	else
		plen = 0;
	buf_append(&b->data, v, vlen);
	o->val_len = plen + vlen;
	if (ks) {
		fr_mutex_lock(&ks->db->cat_mu);
		ks->refs++;
		fr_mutex_unlock(&ks->db->cat_mu);
		o->ks = ks;
		o->tree_id = ks->tree->id;
	}
	b->cnt++;
	b->ks_drop_cnt += op == BOP_KS_DROP;
	b->user_bytes += klen + vlen;
	return FR_OK;
}

void batch_reset(fr_batch *b)
{
	for (size_t i = 0; i < b->cnt; i++)
		if (b->ops[i].ks)
			ks_unref(b->ops[i].ks);
	for (size_t i = 0; i < b->ks_opt_cnt; i++)
		fr_free(b->ks_tree_names[i]);
	b->ks_opt_cnt = 0;
	b->ks_drop_cnt = 0;
	b->cnt = 0;
	b->user_bytes = 0;
	buf_clear(&b->data);
}

/* ---- leader ---- */

static uint64_t op_hash(uint32_t tree, const uint8_t *k, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ tree;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return h;
}

/* Drops operations of the batch that a later one of the same batch overrides: the last write
 * of a key wins, and a range delete removes earlier writes it covers. */
static fr_status lo_dedup(struct leader_ops *lo)
{
	if (lo->cnt < 2)
		return FR_OK;
	size_t cap = 16;
	while (cap < lo->cnt * 2)
		cap *= 2;
	struct batch_op **tab = fr_calloc(cap, sizeof(*tab));
	bool *keep = fr_calloc(lo->cnt, sizeof(*keep));
	if (!tab || !keep) {
		fr_free(tab);
		fr_free(keep);
		return FR_NOMEM;
	}
	for (size_t i = lo->cnt; i-- > 0;) {
		struct batch_op *o = &lo->ops[i];
		if (o->op == BOP_RANGE_DEL) {
			keep[i] = true;
			continue;
		}
		bool dup = false;
		for (size_t j = i + 1; j < lo->cnt && !dup; j++) {
			const struct batch_op *r = &lo->ops[j];
			dup = r->op == BOP_RANGE_DEL && r->tree_id == o->tree_id &&
			      bytes_cmp(r->key, r->key_len, o->key, o->key_len) <= 0 &&
			      bytes_cmp(o->key, o->key_len, r->val, r->val_len) < 0;
		}
		size_t h = (size_t)op_hash(o->tree_id, o->key, o->key_len) & (cap - 1);
		for (; tab[h]; h = (h + 1) & (cap - 1)) {
			if (tab[h]->tree_id == o->tree_id &&
			    bytes_cmp(tab[h]->key, tab[h]->key_len, o->key, o->key_len) == 0) {
				dup = true;
				break;
			}
		}
		if (!tab[h])
			tab[h] = o;
		keep[i] = !dup;
	}
	size_t n = 0;
	for (size_t i = 0; i < lo->cnt; i++)
		if (keep[i])
			lo->ops[n++] = lo->ops[i];
	lo->cnt = n;
	fr_free(tab);
	fr_free(keep);
	return FR_OK;
}

/* Turns a public batch into tree operations (resolving keyspace operations); prev holds the
 * operations of the group's earlier batches. Keyspace operations resolve against the catalog as
 * the batch's earlier operations and those batches leave it, none of which is applied yet. */
static fr_status lo_build(fr_db *db, fr_batch *b, struct leader_ops *lo,
			  const struct leader_ops *prev, size_t prev_cnt, fr_error *err)
{
	bool prev_drops = false;
	for (size_t i = 0; i < prev_cnt && !prev_drops; i++)
		prev_drops = prev[i].dropped_cnt != 0;
	/* the handle last found alive; a batch mostly writes through one (only this thread sets
	 * a handle's dropped flag, in ks_after_drop, so it cannot change meanwhile) */
	const fr_keyspace *live = NULL;
	for (size_t i = 0; i < b->cnt; i++) {
		const struct bop *o = &b->ops[i];
		const uint8_t *data = b->data.data;
		fr_status rc;
		if (o->op == BOP_KS_CREATE) {
			rc = ks_resolve_create(db, (const char *)data + o->key_off,
					       &b->ks_opts[o->opt_off], b->ks_tree_names[o->opt_off],
					       lo, prev, prev_cnt, err);
		} else if (o->op == BOP_KS_DROP) {
			rc = ks_resolve_drop(db, (const char *)data + o->key_off, lo, prev, prev_cnt,
					     err);
			live = NULL;
		} else {
			/* a write through a handle whose keyspace an earlier drop of the group
			 * deleted would land under an id the catalog no longer has */
			if (o->ks && o->ks != live &&
			    (atomic_load_acq_bool(&o->ks->dropped) ||
			     ((prev_drops || lo->dropped_cnt) &&
			      ks_is_dropped_in_group(o->ks, lo, prev, prev_cnt))))
				return FR_ERR(err, FR_NOT_FOUND, "keyspace %s was deleted",
					      o->ks->name);
			if (o->ks)
				live = o->ks;
			rc = lo_add(lo, o->op, o->tree_id, data + o->key_off, o->key_len,
				    data + o->val_off, o->val_len, false);
			if (rc)
				rc = FR_ERR(err, rc, "batch");
		}
		if (rc)
			return rc;
	}
	fr_status rc = lo_dedup(lo);
	return rc ? FR_ERR(err, rc, "batch") : FR_OK;
}

/* The tree of id, looked up (under db->mu) only when it is not the one the group used last
 * (*last, NULL at first): a group mostly writes to one tree. Trees are freed only with the
 * database, so the pointer stays good. */
static fr_status group_tree(fr_db *db, uint32_t id, bool create, struct tree **last,
			    struct tree **out)
{
	if (*last && (*last)->id == id) {
		*out = *last;
		return FR_OK;
	}
	fr_status rc = tree_get(db, id, create, out);
	if (!rc)
		*last = *out;
	return rc;
}

static fr_status apply_op(fr_db *db, uint64_t seqno, const struct batch_op *o, struct tree **last,
			  fr_error *err)
{
	struct tree *t;
	fr_status rc = group_tree(db, o->tree_id, true, last, &t);
	if (rc)
		return FR_ERR(err, rc, "tree %u", o->tree_id);
	switch (o->op) {
	case BOP_PUT:
		rc = mem_put(t->active, o->key, o->key_len, seqno, VT_PUT, o->val, o->val_len);
		break;
	case BOP_DEL:
		rc = mem_put(t->active, o->key, o->key_len, seqno, VT_DEL, NULL, 0);
		break;
	case BOP_WEAK_DEL:
		rc = mem_put(t->active, o->key, o->key_len, seqno, VT_WEAK_DEL, NULL, 0);
		break;
	case BOP_RANGE_DEL:
		rc = mem_add_range_del(t->active, o->key, o->key_len, o->val, o->val_len, seqno);
		break;
	case BOP_PUT_HANDLE:
		rc = mem_put(t->active, o->key, o->key_len, seqno, VT_BLOB, o->val, o->val_len);
		break;
	default:
		return FR_CORRUPT(err, "batch", 0, "unknown operation");
	}
	if (rc)
		return FR_ERR(err, rc, "memtable insert");
	if (!t->active_min_seqno) {
		fr_mutex_lock(&t->mu);
		t->active_min_seqno = seqno;
		fr_mutex_unlock(&t->mu);
	}
	return FR_OK;
}

/* The trees that need their memtable sealed after a write: full ones, the largest when the
 * write buffer budget is exceeded, and those pinning the oldest journal segment once the
 * journal is long. Sealed memtables are flushed in the background (or here, when the database
 * runs without a background thread). */
/* Seals t's memtable. Its flush will make its part of each batch durable apart from the
 * other trees' parts, so the journal must hold those batches durably first (synced once per
 * call, *synced): else a power cut could leave a BUFFER batch half in one tree's table. */
static fr_status leader_seal_one(fr_db *db, struct tree *t, bool *synced, fr_error *err)
{
	if (!*synced) {
		fr_status rc = jnl_commit(db->jnl, FR_PERSIST_SYNC_DATA, err);
		if (rc)
			return rc;
		*synced = true;
	}
	if (tree_seal(db, t))
		return FR_ERR(err, FR_NOMEM, "sealing a memtable");
	return FR_OK;
}

/* The largest active memtable of any tree (a full scan: only when over the budget). */
static struct tree *largest_active(fr_db *db)
{
	struct tree *big = NULL;
	uint64_t most = 0;
	fr_mutex_lock(&db->mu);
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (t && !mem_is_empty(t->active) && t->wb_seen > most) {
			most = t->wb_seen;
			big = t;
		}
	}
	fr_mutex_unlock(&db->mu);
	return big;
}

/* Seals the active memtables of trees holding data of the oldest journal segment once the
 * journal passes journal_max, so that segment can go (once per oldest segment). */
static fr_status leader_unpin_journal(fr_db *db, bool *synced, bool *sealed_any, fr_error *err)
{
	fr_mutex_lock(&db->mu);
	uint64_t oldest = db->seg_cnt > 1 ? db->segs[0].id : 0;
	uint64_t pin = db->seg_cnt > 1 ? db->segs[0].max_seqno : 0;
	/* summed only while the oldest segment is still to be looked at */
	bool due = oldest && oldest != db->pin_checked_seg &&
		   db_seg_bytes(db) > db->opts.journal_max;
	size_t cap = db->tree_cap;
	fr_mutex_unlock(&db->mu);
	if (!due)
		return FR_OK;
	db->pin_checked_seg = oldest;
	for (size_t i = 0; i < cap; i++) {
		fr_mutex_lock(&db->mu);
		struct tree *t = i < db->tree_cap ? db->trees[i] : NULL;
		fr_mutex_unlock(&db->mu);
		if (!t || !t->active_min_seqno || t->active_min_seqno > pin)
			continue;
		fr_status rc = leader_seal_one(db, t, synced, err);
		if (rc)
			return rc;
		*sealed_any = true;
	}
	return FR_OK;
}

/* After a group was applied: seals the memtables it filled, keeps all memtables within the
 * write-buffer budget (the largest active one goes first) and the journal within its limit. */
static fr_status leader_seal(fr_db *db, const struct leader_ops *los, size_t n,
			     struct tree **last, fr_error *err)
{
	bool synced = false, sealed_any = false;
	fr_status rc;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < los[i].cnt; j++) {
			const struct batch_op *o = &los[i].ops[j];
			struct tree *t;
			if ((j && o->tree_id == los[i].ops[j - 1].tree_id) ||
			    group_tree(db, o->tree_id, false, last, &t))
				continue;
			uint64_t bytes = mem_bytes(t->active);
			if (bytes > t->wb_seen) {
				atomic_add_u64(&db->wb_active, bytes - t->wb_seen);
				t->wb_seen = bytes;
			}
			/* the values in direct files count as if they were in the memtable: the
			 * flushes come as often as before, and recovery reads at most a
			 * memtable's worth of them per memtable */
			if (bytes + mem_blob_bytes(t->active) >= db->opts.memtable_max) {
				rc = leader_seal_one(db, t, &synced, err);
				if (rc)
					return rc;
				sealed_any = true;
			}
		}
	}
	uint64_t active = atomic_load_acq_u64(&db->wb_active);
	uint64_t sealed = atomic_load_acq_u64(&db->wb_sealed);
	uint64_t budget = db->opts.write_buffer_max;
	/* Sealing helps only while the active memtables hold a fair part of the memory: when
	 * flushes lag it would just cut tiny tables. */
	if (active + sealed > budget && sealed < budget && active >= budget / 8) {
		struct tree *big = largest_active(db);
		if (big) {
			rc = leader_seal_one(db, big, &synced, err);
			if (rc)
				return rc;
			sealed_any = true;
		}
	}
	rc = leader_unpin_journal(db, &synced, &sealed_any, err);
	if (rc)
		return rc;
	if (sealed_any && db->worker_cnt)
		bg_kick(db);
	/* without worker threads the flushes (and the compactions they make due) run here; the
	 * commit itself is done, so a failure only poisons the database for the next write */
	if (sealed_any && !db->worker_cnt)
		(void)bg_drain(db, NULL);
	return FR_OK;
}

/* Write stalls, per tree the batch writes to: halts while the tree has SEALED_MAX sealed
 * memtables or L0_STOP tables in L0, and throttles (a short sleep per commit, longer the
 * deeper L0 is) from L0_SLOWDOWN on. A poisoned database ends the wait with its error. */
static fr_status leader_stall(fr_db *db, const struct leader_ops *lo, struct tree **last,
			      fr_error *err)
{
	uint64_t t0 = 0;
	uint32_t throttle_ms = 0;
	fr_status rc = FR_OK;
	for (size_t i = 0; i < lo->cnt && !rc; i++) {
		struct tree *t;
		if (i && lo->ops[i].tree_id == lo->ops[i - 1].tree_id)
			continue;
		if (group_tree(db, lo->ops[i].tree_id, false, last, &t))
			continue;
		for (;;) {
			fr_mutex_lock(&t->mu);
			size_t sealed = t->sealed_cnt;
			/* FIFO never merges L0: its size is bounded by the limit instead */
			bool fifo = t->opts.policy.strategy == CS_FIFO;
			fr_mutex_unlock(&t->mu);
			uint32_t l0 = fifo ? 0 : atomic_load_acq_u32(&t->l0_cnt);
			if (sealed < SEALED_MAX && l0 < L0_STOP) {
				if (l0 >= L0_SLOWDOWN && l0 - L0_SLOWDOWN + 1 > throttle_ms)
					throttle_ms = l0 - L0_SLOWDOWN + 1;
				break;
			}
			if (!t0)
				t0 = fr_now_ns();
			rc = db_check_writable(db, err);
			if (rc)
				break;
			if (!db->worker_cnt) {
				rc = bg_drain(db, err);
				if (rc)
					break;
				continue;
			}
			fr_mutex_lock(&db->mu);
			bg_kick(db);
			fr_cond_timedwait(&db->done_cv, &db->mu, 100000000ull);
			fr_mutex_unlock(&db->mu);
		}
	}
	if (!rc && throttle_ms) {
		if (!t0)
			t0 = fr_now_ns();
		struct timespec ts = {0, (long)(throttle_ms > 10 ? 10 : throttle_ms) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (t0) {
		atomic_add_u64(&db->stall_us, (fr_now_ns() - t0) / 1000);
		atomic_add_u64(&db->stalls, 1);
	}
	return rc;
}

/* ---- direct blob files (FORMAT.md §8: values written at commit) ---- */

fr_status db_blob_presync(void *ctx, fr_error *err)
{
	fr_db *db = ctx;
	fr_status rc = FR_OK;
	size_t i = 0;
	for (; i < db->blob_dirty_cnt && !rc; i++)
		rc = blob_direct_sync(db->blob_dirty[i], err);
	if (rc)
		return rc; /* the journal sync fails too, and that poisons the database */
	for (i = 0; i < db->blob_dirty_cnt; i++)
		blob_direct_unref(db->blob_dirty[i]);
	db->blob_dirty_cnt = 0;
	return FR_OK;
}

void db_blob_lists_free(fr_db *db)
{
	for (size_t i = 0; i < db->blob_dirty_cnt; i++)
		blob_direct_unref(db->blob_dirty[i]);
	fr_free(db->blob_dirty);
	db->blob_dirty = NULL;
	db->blob_dirty_cnt = db->blob_dirty_cap = 0;
	fr_free(db->blob_recovered);
	db->blob_recovered = NULL;
	db->blob_recovered_cnt = db->blob_recovered_cap = 0;
}

/* Appends d (referenced) to db->blob_dirty unless it is there already. */
static fr_status dirty_add(fr_db *db, struct blob_direct *d)
{
	for (size_t i = 0; i < db->blob_dirty_cnt; i++)
		if (db->blob_dirty[i] == d)
			return FR_OK;
	if (db->blob_dirty_cnt == db->blob_dirty_cap) {
		size_t c = db->blob_dirty_cap ? db->blob_dirty_cap * 2 : 4;
		struct blob_direct **a = fr_realloc(db->blob_dirty, c * sizeof(*a));
		if (!a)
			return FR_NOMEM;
		db->blob_dirty = a;
		db->blob_dirty_cap = c;
	}
	blob_direct_ref(d);
	db->blob_dirty[db->blob_dirty_cnt++] = d;
	return FR_OK;
}

/* The direct blob file of t's active memtable, created (and attached to the memtable) on the
 * first large value, and again whenever the current one reached the blob file target: the
 * files come out as large as a flush would cut them. A full one stays attached, written, and
 * is finished by the memtable's flush like the others. */
static fr_status tree_direct(fr_db *db, struct tree *t, struct blob_direct **out, fr_error *err)
{
	if (t->direct && blob_direct_size(t->direct) < t->direct_max) {
		*out = t->direct;
		return FR_OK;
	}
	blob_direct_unref(t->direct); /* the memtable keeps it */
	t->direct = NULL;
	fr_mutex_lock(&t->mu);
	bool compress = t->opts.blob.compress;
	uint64_t target = t->opts.blob.file_target;
	fr_mutex_unlock(&t->mu);
	char path[PATH_MAX];
	uint64_t id = vset_new_file_id(db->vs);
	vset_blob_path(db->vs, id, path, sizeof(path));
	struct blob_direct *d;
	fr_status rc = blob_direct_create(db->io, path, id, compress, &d, err);
	if (rc)
		return rc;
	if (mem_blob_attach(t->active, d)) {
		blob_direct_unref(d); /* leaves an empty file for the next open's orphan pass */
		return FR_ERR(err, FR_NOMEM, "direct blob file");
	}
	t->direct = d;
	t->direct_max = target;
	*out = d;
	return FR_OK;
}

/* Moves the values of at least their tree's blob threshold of one batch's puts into direct
 * blob files: each such op becomes BOP_PUT_HANDLE with the handle as its value (owned by lo).
 * *last caches the tree, *thr the threshold of tree *thr_t. Requires: the commit leader, seqnos
 * handed out (a failure poisons). */
static fr_status lo_direct(fr_db *db, struct leader_ops *lo, struct tree **last,
			   struct tree **thr_t, uint32_t *thr, fr_error *err)
{
	for (size_t j = 0; j < lo->cnt; j++) {
		struct batch_op *o = &lo->ops[j];
		if (o->op != BOP_PUT || o->tree_id == CATALOG_TREE)
			continue;
		struct tree *t;
		fr_status rc = group_tree(db, o->tree_id, true, last, &t);
		if (rc)
			return FR_ERR(err, rc, "tree %u", o->tree_id);
		if (t != *thr_t) {
			fr_mutex_lock(&t->mu);
			*thr = t->opts.blob.threshold;
			fr_mutex_unlock(&t->mu);
			*thr_t = t;
		}
		if (!*thr || o->val_len < *thr)
			continue;
		struct blob_direct *d;
		rc = tree_direct(db, t, &d, err);
		if (rc)
			return rc;
		struct blob_handle h;
		rc = blob_direct_add(d, o->key, o->key_len, o->val, o->val_len, &h, err);
		if (rc)
			return rc;
		uint8_t hb[BLOB_HANDLE_MAX];
		size_t hn = blob_handle_encode(&h, hb);
		if (dirty_add(db, d))
			return FR_ERR(err, FR_NOMEM, "direct blob list");
		/* the handle is kept like a copied op's bytes: freed with lo */
		uint8_t *hm = lo_own(lo, hb, hn, NULL, 0);
		if (!hm)
			return FR_ERR(err, FR_NOMEM, "batch");
		o->op = BOP_PUT_HANDLE;
		o->val = hm;
		o->val_len = hn;
	}
	return FR_OK;
}

/* Hands the group's direct blob records to the OS: before the journal records that refer to
 * them, so a journal record that survives a crash of the process finds its values. */
static fr_status direct_write_all(fr_db *db, fr_error *err)
{
	for (size_t i = 0; i < db->blob_dirty_cnt; i++) {
		fr_status rc = blob_direct_write(db->blob_dirty[i], BLOB_WRITEBACK_MIN, err);
		if (rc)
			return rc;
	}
	return FR_OK;
}

/* Starts a new journal segment once the current one is full. */
static fr_status leader_rotate(fr_db *db, fr_error *err)
{
	if (!jnl_should_rotate(db->jnl))
		return FR_OK;
	fr_status rc = jnl_rotate(db->jnl, err);
	if (!rc)
		rc = jnl_mark_start(db->jnl, db->seqno + 1, err);
	if (rc)
		return rc;
	fr_mutex_lock(&db->mu);
	rc = db_seg_push(db, jnl_segment_id(db->jnl), db->seqno);
	fr_mutex_unlock(&db->mu);
	return rc ? FR_ERR(err, rc, "journal segment list") : FR_OK;
}

/* Scratch that a large group grew is let go rather than kept for the next one. The record
 * buffer is kept up to 4 MiB: a stream of 1 MiB batches (a file system's writes) would otherwise
 * allocate a fresh one for every group. */
#define SCRATCH_KEEP_OPS 1024
#define SCRATCH_KEEP_BYTES (4u << 20)
/* An encoded operation takes at most this much beside its key and value (FORMAT.md §3.3: op
 * byte, tree id, key and value lengths as varints). */
#define ENC_OP_MAX (1 + 5 + 10 + 10)

/* At least the bytes batch_encode makes of lo: its operations as they are now, so a value that
 * went to a direct blob file counts as its handle, not as the value the batch held. */
static size_t lo_encoded_max(const struct leader_ops *lo)
{
	size_t n = 8 + 10;
	for (size_t i = 0; i < lo->cnt; i++)
		n += ENC_OP_MAX + lo->ops[i].key_len + lo->ops[i].val_len;
	return n;
}

/* The leader's per-writer operation lists for a group of n, from the scratch kept in db:
 * allocates only when a group is larger than any kept one. NULL on out of memory. */
static struct leader_ops *scratch_los(fr_db *db, size_t n)
{
	if (n <= db->lo_scratch_cnt)
		return db->lo_scratch;
	struct leader_ops *los = fr_realloc(db->lo_scratch, n * sizeof(*los));
	if (!los)
		return NULL;
	memset(los + db->lo_scratch_cnt, 0, (n - db->lo_scratch_cnt) * sizeof(*los));
	db->lo_scratch = los;
	db->lo_scratch_cnt = n;
	return los;
}

/* Empties the first n lists and the record buffer for the next group, keeping their memory
 * unless it grew large. */
static void scratch_done(fr_db *db, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (db->lo_scratch[i].cap > SCRATCH_KEEP_OPS)
			lo_fini(&db->lo_scratch[i]);
		else
			lo_reset(&db->lo_scratch[i]);
	}
	if (db->rec_scratch.cap > SCRATCH_KEEP_BYTES)
		buf_fini(&db->rec_scratch);
	buf_clear(&db->rec_scratch);
}

void db_write_scratch_free(fr_db *db)
{
	for (size_t i = 0; i < db->lo_scratch_cnt; i++)
		lo_fini(&db->lo_scratch[i]);
	fr_free(db->lo_scratch);
	db->lo_scratch = NULL;
	db->lo_scratch_cnt = 0;
	buf_fini(&db->rec_scratch);
}

/* Writes a group of batch writers. Each batch gets its own seqno and journal record. */
static fr_status leader_write(fr_db *db, struct writer *first, size_t n, fr_error *err)
{
	struct leader_ops *los = scratch_los(db, n);
	if (!los)
		return FR_ERR(err, FR_NOMEM, "commit");
	struct fr_buf rec = db->rec_scratch;
	fr_persist mode = FR_PERSIST_BUFFER;
	uint64_t user_bytes = 0;
	fr_status rc = db_check_writable(db, err);
	struct tree *last_tree = NULL;
	struct writer *w = first;
#ifdef FR_TESTING
	atomic_add_u64(&db->test_groups, 1);
#endif
	/* The group's links are read without write_mu: stop at its last member, whose next
	 * field a new writer may be setting right now. */
	for (size_t i = 0; i < n && !rc; i++, w = i < n ? w->next : w) {
		/* Nothing of the group is written yet: a batch that cannot be resolved (a write
		 * through a deleted keyspace's handle, say) fails alone, and the batches after it
		 * are resolved without its operations. */
		w->own_rc = lo_build(db, w->b, &los[i], los, i, &w->err);
		if (w->own_rc) {
			w->conflict = true;
			lo_reset(&los[i]);
			continue;
		}
		rc = leader_stall(db, &los[i], &last_tree, err);
		if (w->mode > mode)
			mode = w->mode;
		user_bytes += w->b->user_bytes;
	}
	if (rc)
		goto out;
	uint64_t base = db->seqno, last = base;
	bool recorded = false;
	w = first;
	for (size_t i = 0; i < n && !recorded; i++, w = i < n ? w->next : w)
		recorded = w->b->otx != NULL;
	if (recorded)
		orc_lock(db->orc);
	w = first;
	for (size_t i = 0; i < n; i++, w = i < n ? w->next : w) {
		if (w->conflict)
			continue;
		if (recorded && w->b->otx && orc_conflicts(db->orc, w->b->otx)) {
			w->conflict = true;
			w->own_rc = FR_CONFLICT;
			user_bytes -= w->b->user_bytes;
			FR_ERR(&w->err, FR_CONFLICT,
			       "a newer commit wrote a key the transaction read or wrote");
			continue;
		}
		w->seqno = ++last;
		if (recorded)
			orc_record(db->orc, w->seqno, &los[i]);
	}
	if (recorded)
		orc_unlock(db->orc);
	if (last == base)
		goto out; /* every writer lost its validation: nothing to write */
	/* From here on, seqnos are handed out: any failure poisons the database. */
	struct tree *thr_tree = NULL;
	uint32_t thr = 0;
	w = first;
	for (size_t i = 0; i < n && !rc; i++, w = i < n ? w->next : w)
		if (!w->conflict)
			rc = lo_direct(db, &los[i], &last_tree, &thr_tree, &thr, err);
	if (!rc)
		rc = direct_write_all(db, err);
	if (rc)
		goto out_poison;
	w = first;
	for (size_t i = 0; i < n && !rc; i++, w = i < n ? w->next : w) {
		if (w->conflict)
			continue;
		buf_clear(&rec);
		/* sized once: growing by doubling would copy a large batch over and over */
		rc = buf_reserve(&rec, lo_encoded_max(&los[i]));
		if (!rc)
			rc = batch_encode(w->seqno, los[i].ops, los[i].cnt, &rec);
		if (rc)
			rc = FR_ERR(err, rc, "encoding a batch");
		else
			rc = jnl_add(db->jnl, rec.data, rec.len, err);
	}
	if (!rc)
		rc = jnl_commit(db->jnl, mode, err);
	if (rc)
		goto out_poison;
	atomic_store_rlx_u64(&db->seqno, last); /* fr_db_stats_get reads it unlocked */
	w = first;
	for (size_t i = 0; i < n && !rc; i++, w = i < n ? w->next : w)
		for (size_t j = 0; j < los[i].cnt && !rc && !w->conflict; j++)
			rc = apply_op(db, w->seqno, &los[i].ops[j], &last_tree, err);
	if (rc)
		goto out_poison;
	uint64_t jw = jnl_bytes_written(db->jnl);
	fr_mutex_lock(&db->mu);
	if (db->seg_cnt) {
		db->segs[db->seg_cnt - 1].max_seqno = db->seqno;
		db->segs[db->seg_cnt - 1].bytes += jw - db->jnl_bytes_seen;
	}
	fr_mutex_unlock(&db->mu);
	db->jnl_bytes_seen = jw;
	/* readers see the whole group at once; pairs with the acquire in db_visible. Sequentially
	 * consistent for the oracle: with the load below and the increment and load of
	 * txn_begin, a beginning transaction reads at this seqno or later, or the group is
	 * recorded. */
	atomic_store_sc_u64(&db->visible_seqno, db->seqno);
	if (!recorded && orc_is_active(db->orc)) {
		orc_lock(db->orc);
		w = first;
		for (size_t i = 0; i < n; i++, w = i < n ? w->next : w)
			if (!w->conflict)
				orc_record(db->orc, w->seqno, &los[i]);
		orc_unlock(db->orc);
	}
	atomic_add_u64(&db->st.user_write_bytes, user_bytes);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < los[i].dropped_cnt; j++)
			ks_after_drop(db, los[i].dropped[j].name, los[i].dropped[j].ks_id);
	rc = leader_rotate(db, err);
	if (!rc)
		rc = leader_seal(db, los, n, &last_tree, err);
	if (rc)
		goto out_poison;
	goto out;
out_poison:
	db_poison(db, rc, err);
out:
	db->rec_scratch = rec;
	scratch_done(db, n);
	return rc;
}

static fr_status run_writer(fr_db *db, struct writer *w, fr_persist mode_unused, uint64_t *seqno,
			    fr_error *err)
{
	(void)mode_unused;
	fr_cond_init(&w->cv);
	fr_mutex_lock(&db->write_mu);
	w->next = NULL;
	if (db->wq_tail)
		db->wq_tail->next = w;
	else
		db->wq_head = w;
	db->wq_tail = w;
	while (!w->done && db->wq_head != w)
		fr_cond_wait(&w->cv, &db->write_mu);
	if (w->done)
		goto out_done;
	/* leader: take a group of plain batches behind us (exclusive work runs alone; a batch
	 * with keyspace operations too: its resolution reads the group's pending catalog
	 * writes correctly (ks_resolve_*), but each lookup scans them, so a group of many large
	 * batches would make it costly) */
	bool ks_alone = true;
#ifdef FR_TESTING
	ks_alone = !atomic_load_acq_bool(&db->test_group_ks_ops);
#endif
	size_t n = 1, bytes = w->b ? w->b->data.len : 0;
	struct writer *last = w;
	bool alone = w->fn || w->b->cnt == 0 ||
		     (ks_alone && (w->b->ks_opt_cnt || w->b->ks_drop_cnt));
	while (!alone && last->next && n < GROUP_MAX_WRITERS && bytes < GROUP_MAX_BYTES) {
		struct writer *x = last->next;
		if (x->fn || x->b->cnt == 0 || (ks_alone && (x->b->ks_opt_cnt || x->b->ks_drop_cnt)))
			break;
		bytes += x->b->data.len;
		last = x;
		n++;
	}
	fr_mutex_unlock(&db->write_mu);

	fr_error gerr;
	fr_status rc;
	if (w->fn)
		rc = w->fn(db, w->ctx, &gerr);
	else if (w->b->cnt == 0)
		rc = db_check_writable(db, &gerr);
	else
		rc = leader_write(db, w, n, &gerr);

	fr_mutex_lock(&db->write_mu);
	struct writer *x = w;
	for (size_t i = 0; i < n; i++) {
		struct writer *nx = x->next;
		x->rc = rc ? rc : x->conflict ? x->own_rc : FR_OK;
		if (rc)
			x->err = gerr;
		x->done = true;
		if (x != w)
			fr_cond_signal(&x->cv);
		x = nx;
	}
	db->wq_head = x;
	if (!x)
		db->wq_tail = NULL;
	else
		fr_cond_signal(&x->cv);
out_done:
	fr_mutex_unlock(&db->write_mu);
	fr_cond_fini(&w->cv);
	if (w->rc && err)
		*err = w->err;
	if (!w->rc && seqno)
		*seqno = w->seqno;
	return w->rc;
}

#ifdef FR_TESTING
size_t db_test_queued(fr_db *db)
{
	size_t n = 0;
	fr_mutex_lock(&db->write_mu);
	for (struct writer *x = db->wq_head; x; x = x->next)
		n++;
	fr_mutex_unlock(&db->write_mu);
	return n;
}
#endif

fr_status db_commit(fr_db *db, fr_batch *b, fr_persist mode, uint64_t *seqno, fr_error *err)
{
	struct writer w = {.b = b, .mode = mode};
	fr_status rc = run_writer(db, &w, mode, seqno, err);
	if (!rc && !b->cnt && seqno)
		*seqno = atomic_load_acq_u64(&db->visible_seqno);
	return rc;
}

fr_status db_journal_sync(fr_db *db, fr_persist mode, fr_error *err)
{
	fr_status rc = jnl_commit(db->jnl, mode, err);
	/* a journal that failed a write or sync refuses every later one: poison, so writers get
	 * the cause instead of a journal that is stuck */
	if (rc)
		db_poison(db, rc, err);
	return rc;
}

fr_status db_seal_all(fr_db *db, bool flush, fr_error *err)
{
	fr_status rc = db_check_writable(db, err);
	if (rc)
		return rc;
	/* each tree's flush makes its part of a batch durable apart from the other trees'
	 * parts: the journal must hold the whole batches durably first (see leader_seal_one) */
	rc = db_journal_sync(db, FR_PERSIST_SYNC_DATA, err);
	if (rc)
		return rc;
	for (size_t i = 0;; i++) {
		fr_mutex_lock(&db->mu);
		bool more = i < db->tree_cap;
		struct tree *t = more ? db->trees[i] : NULL;
		fr_mutex_unlock(&db->mu);
		if (!more)
			return FR_OK;
		if (!t)
			continue;
		if (tree_seal(db, t))
			return FR_ERR(err, FR_NOMEM, "sealing a memtable");
		if (flush && (rc = bg_flush_sealed(db, t, err)) != FR_OK)
			return rc;
	}
}

fr_status db_exclusive(fr_db *db, fr_status (*fn)(fr_db *db, void *ctx, fr_error *err), void *ctx,
		       fr_error *err)
{
	struct writer w = {.fn = fn, .ctx = ctx};
	return run_writer(db, &w, FR_PERSIST_BUFFER, NULL, err);
}

fr_status db_seg_push(fr_db *db, uint64_t id, uint64_t max_seqno)
{
	fr_mutex_assert_held(&db->mu);
	if (db->seg_cnt == db->seg_cap) {
		size_t cap = db->seg_cap ? db->seg_cap * 2 : 8;
		struct seg_info *s = fr_realloc(db->segs, cap * sizeof(*s));
		if (!s)
			return FR_NOMEM;
		db->segs = s;
		db->seg_cap = cap;
	}
	db->segs[db->seg_cnt++] = (struct seg_info){.id = id, .max_seqno = max_seqno};
	return FR_OK;
}

uint64_t db_seg_bytes(const fr_db *db)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < db->seg_cnt; i++)
		bytes += db->segs[i].bytes;
	return bytes;
}

/* ---- recovery ---- */

struct replay_ctx {
	fr_db *db;
	uint64_t seg_id;
};

/* The direct blob file a replayed handle names, opened on its first handle (its torn tail
 * cut, blob_direct_recover) and attached to t's active memtable, whose flush then finishes and
 * installs it. */
static fr_status replay_direct(fr_db *db, struct tree *t, const struct batch_op *o,
			       fr_error *err)
{
	struct blob_handle h;
	if (!blob_handle_decode(o->val, o->val_len, &h))
		return FR_CORRUPT(err, "journal", 0, "malformed blob handle in a batch");
	if (mem_blob_find(t->active, h.file_id))
		return FR_OK;
	/* a finished file the version holds is read from there and never cut */
	struct tree_version *v = vset_current(db->vs, t->id);
	bool installed = tv_blob(v, h.file_id) != NULL;
	tv_unref(v);
	if (installed)
		return FR_OK;
	char path[PATH_MAX];
	vset_blob_path(db->vs, h.file_id, path, sizeof(path));
	for (size_t i = 0; i < db->blob_recovered_cnt; i++)
		if (db->blob_recovered[i] == h.file_id)
			return FR_CORRUPT(err, path, 0,
					  "direct blob file holds values of two trees");
	if (db->blob_recovered_cnt == db->blob_recovered_cap) {
		size_t c = db->blob_recovered_cap ? db->blob_recovered_cap * 2 : 4;
		uint64_t *a = fr_realloc(db->blob_recovered, c * sizeof(*a));
		if (!a)
			return FR_ERR(err, FR_NOMEM, "recovering %s", path);
		db->blob_recovered = a;
		db->blob_recovered_cap = c;
	}
	struct blob_direct *d;
	fr_status rc = blob_direct_recover(db->io, path, h.file_id, !db->opts.read_only, &d, err);
	if (rc == FR_NOT_FOUND)
		return FR_OK; /* read-only and gone: its values read as FR_CORRUPTION */
	if (rc)
		return rc;
	/* the id must not be handed out again, even before the next edit records it */
	vset_note_file_id(db->vs, h.file_id);
	rc = mem_blob_attach(t->active, d);
	if (!rc)
		db->blob_recovered[db->blob_recovered_cnt++] = h.file_id;
	blob_direct_unref(d);
	return rc ? FR_ERR(err, rc, "recovering %s", path) : FR_OK;
}

static fr_status replay_op(void *ctx, uint64_t seqno, const struct batch_op *o, fr_error *err)
{
	fr_db *db = ctx;
	struct tree *t;
	fr_status rc = tree_get(db, o->tree_id, true, &t);
	if (rc)
		return FR_ERR(err, rc, "tree %u", o->tree_id);
	struct tree_version *v = vset_current(db->vs, o->tree_id);
	uint64_t flushed = v->flushed_seqno;
	tv_unref(v);
	if (seqno <= flushed)
		return FR_OK; /* already in a table */
	if (o->op == BOP_PUT_HANDLE) {
		rc = replay_direct(db, t, o, err);
		if (rc)
			return rc;
	}
	return apply_op(db, seqno, o, &t, err);
}

fr_status db_replay_record(fr_db *db, uint64_t seg_id, const uint8_t *rec, size_t len,
			   fr_error *err)
{
	uint64_t seqno = 0;
	char what[64];
	snprintf(what, sizeof(what), "journal segment %llu", (unsigned long long)seg_id);
	fr_status rc = batch_decode(rec, len, replay_op, db, &seqno, what, err);
	if (rc)
		return rc;
	if (seqno > db->seqno)
		db->seqno = seqno;
	fr_mutex_lock(&db->mu);
	if ((!db->seg_cnt || db->segs[db->seg_cnt - 1].id != seg_id) &&
	    db_seg_push(db, seg_id, 0)) {
		fr_mutex_unlock(&db->mu);
		return FR_ERR(err, FR_NOMEM, "journal segment list");
	}
	if (seqno > db->segs[db->seg_cnt - 1].max_seqno)
		db->segs[db->seg_cnt - 1].max_seqno = seqno;
	db->segs[db->seg_cnt - 1].bytes += len + 16; /* the record and its header (§2.2) */
	fr_mutex_unlock(&db->mu);
	return FR_OK;
}
