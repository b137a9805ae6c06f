/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - bulk ingestion: entries given in ascending key order go straight into new table
 * files (no journal, no memtable), which ingest_finish publishes at once in one version edit.
 *
 * Sequence number: the seqno of the ingested entries is known only at publication, so they are
 * written at seqno 0 and the edit that publishes their tables gives each a global seqno S
 * (FORMAT.md §5.2); the table reader hands every entry out at S (sst_reader_set_global_seqno).
 * S is the seqno after every commit so far: the publication runs as the only writer
 * (db_exclusive), so no commit takes a seqno meanwhile, and S becomes visible when the edit is
 * durable. The edit carries S as last_seqno, so a reopen never hands S out again.
 *
 * Read order: a lookup searches the memtables, then L0 newest first, then each level down. The
 * tree's memtables are flushed before publication, so none holds a version older than S that
 * would be found before an ingested one. The tables go to the deepest level at which neither
 * that level nor any above holds a table overlapping the ingested key range, else to L0 (where
 * they sort newest, by max seqno S): every older version of an ingested key is then below
 * them, and every later write lands above. Compactions of the tree are held back while the
 * level is chosen and the edit applied (tree->ingesting), because a running one could place an
 * output table spanning the range in a level above the ingested tables.
 *
 * Values stay inline in the tables, whatever their size.
 *
 * Crash safety: no edit refers to the files before publication; a crash before it leaves them
 * as orphans, which the next open deletes (vset_delete_orphans).
 *
 * An ingestion is used by one thread at a time.
 */
#include "db/db.h"

#include <limits.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/ikey.h"
#include "db/oracle.h"
#include "db/write.h"
#include "io/io.h"
#include "memtable/memtable.h"
#include "sst/sst.h"
#include "version/version.h"

#define INGEST_TARGET_DEFAULT (UINT64_C(64) << 20) /* the picker's default table target */

struct fr_ingest {
	fr_keyspace *ks; /* referenced */
	fr_db *db;
	struct tree *t;
	struct sst_options so; /* L0's: the level is known only at publication */
	uint64_t target;       /* cut tables near this size */
	struct sst_writer *w;  /* the table being written, or NULL */
	struct sst_meta *outs; /* finished tables, in key order */
	size_t out_cnt;
	size_t out_cap;
	struct fr_buf ikey; /* the internal key being added */
	struct fr_buf last; /* the last key added (the caller's, no prefix) */
	uint64_t entry_cnt;
	uint64_t user_bytes;
	fr_status broken; /* sticky: FR_OK until an add failed */
	fr_error broken_err;
	bool keep_files; /* an edit naming them may be durable: the orphan pass decides */
	uint64_t seqno;	 /* S, once published */
};

fr_status ingest_start(fr_keyspace *ks, struct fr_ingest **out, fr_error *err)
{
	fr_db *db = ks->db;
	fr_status rc = db_check_writable(db, err);
	if (rc)
		return rc;
	struct fr_ingest *in = fr_calloc(1, sizeof(*in));
	if (!in)
		return FR_ERR(err, FR_NOMEM, "ingestion");
	in->db = db;
	in->t = ks->tree;
	buf_init(&in->ikey);
	buf_init(&in->last);
	fr_mutex_lock(&in->t->mu);
	in->so = in->t->opts.level[0];
	in->target = in->t->opts.policy.table_target_size;
	fr_mutex_unlock(&in->t->mu);
	if (!in->target)
		in->target = INGEST_TARGET_DEFAULT;
	fr_mutex_lock(&db->cat_mu);
	ks->refs++;
	fr_mutex_unlock(&db->cat_mu);
	in->ks = ks;
	*out = in;
	return FR_OK;
}

/* Deletes the finished tables' files (unless an edit may name them) and frees in. */
static void ingest_free(struct fr_ingest *in)
{
	char path[PATH_MAX];
	sst_writer_abort(in->w);
	for (size_t i = 0; i < in->out_cnt; i++) {
		if (!in->keep_files) {
			vset_table_path(in->db->vs, in->outs[i].id, path, sizeof(path));
			io_unlink(in->db->io, path, NULL);
		}
		sst_meta_fini(&in->outs[i]);
	}
	fr_free(in->outs);
	buf_fini(&in->ikey);
	buf_fini(&in->last);
	ks_unref(in->ks);
	fr_free(in);
}

void ingest_abort(struct fr_ingest *in)
{
	if (in)
		ingest_free(in);
}

/* Finishes the table being written (synced) and keeps its metadata. */
static fr_status cut_table(struct fr_ingest *in, fr_error *err)
{
	if (in->out_cnt == in->out_cap) {
		size_t cap = in->out_cap ? in->out_cap * 2 : 8;
		struct sst_meta *o = fr_realloc(in->outs, cap * sizeof(*o));
		if (!o)
			return FR_ERR(err, FR_NOMEM, "ingestion");
		in->outs = o;
		in->out_cap = cap;
	}
	struct sst_writer *w = in->w;
	in->w = NULL; /* finish frees it, on failure too (and deletes the file) */
	fr_status rc = sst_writer_finish(w, &in->outs[in->out_cnt], err);
	if (!rc)
		in->out_cnt++;
	return rc;
}

static fr_status add_entry(struct fr_ingest *in, uint8_t type, const void *k, size_t klen,
			   const void *v, size_t vlen, fr_error *err)
{
	if (in->entry_cnt && bytes_cmp(k, klen, in->last.data, in->last.len) <= 0)
		return FR_ERR(err, FR_INVALID,
			      "ingestion into %s: keys must be strictly ascending", in->ks->name);
	size_t iklen = KS_PREFIX_LEN + klen + IKEY_TRAILER_LEN;
	buf_clear(&in->ikey);
	if (buf_reserve(&in->ikey, iklen) || buf_reserve(&in->last, klen))
		return FR_ERR(err, FR_NOMEM, "ingestion");
	uint8_t *p = in->ikey.data;
	memcpy(p, in->ks->prefix, KS_PREFIX_LEN);
	/* seqno 0: the table's global seqno replaces it when read */
	ikey_encode(p + KS_PREFIX_LEN, k, klen, 0, type);
	in->ikey.len = iklen;
	fr_status rc;
	if (!in->w) {
		char path[PATH_MAX];
		uint64_t id = vset_new_file_id(in->db->vs);
		vset_table_path(in->db->vs, id, path, sizeof(path));
		rc = sst_writer_open(in->db->io, path, id, &in->so, &in->w, err);
		if (rc)
			return rc;
	}
	rc = sst_writer_add(in->w, in->ikey.data, iklen, v, vlen, err);
	if (rc)
		return rc;
	buf_clear(&in->last);
	buf_append(&in->last, k, klen); /* reserved above */
	in->entry_cnt++;
	in->user_bytes += klen + vlen;
	/* one version per key: any cut keeps the tables disjoint */
	if (sst_writer_size(in->w) >= in->target)
		return cut_table(in, err);
	return FR_OK;
}

fr_status ingest_add(struct fr_ingest *in, uint8_t type, const void *k, size_t klen,
		     const void *v, size_t vlen, fr_error *err)
{
	if (in->broken)
		return FR_ERR(err, FR_INVALID, "ingestion broken by an earlier failure: %s",
			      in->broken_err.msg);
	fr_error e = {0};
	fr_status rc = add_entry(in, type, k, klen, v, vlen, &e);
	if (rc) {
		in->broken = rc;
		in->broken_err = e;
		if (err)
			*err = e;
	}
	return rc;
}

/* ---- publication ---- */

/* Seals t's active memtable and flushes every sealed one, waiting for a flush a worker runs.
 * Requires: the only writer (db_exclusive). */
static fr_status flush_tree(fr_db *db, struct tree *t, fr_error *err)
{
	if (!mem_is_empty(t->active)) {
		/* the flush makes this tree's part of each batch durable apart from the other
		 * trees' parts: the journal must hold the batches durably first (write.c) */
		fr_status rc = db_journal_sync(db, FR_PERSIST_SYNC_DATA, err);
		if (rc)
			return rc;
		if (tree_seal(db, t))
			return FR_ERR(err, FR_NOMEM, "sealing a memtable");
	}
	return bg_flush_sealed(db, t, err);
}

/* Keeps compactions of t from starting and waits for a running one to end. */
static void hold_compactions(fr_db *db, struct tree *t)
{
	fr_mutex_lock(&db->mu);
	t->ingesting = true;
	while (t->compacting)
		fr_cond_timedwait(&db->done_cv, &db->mu, 100000000ull);
	fr_mutex_unlock(&db->mu);
}

static void release_compactions(fr_db *db, struct tree *t)
{
	struct tree_version *v = vset_current(db->vs, t->id);
	atomic_store_rel_u32(&t->l0_cnt, (uint32_t)v->level_cnt[0]);
	tv_unref(v);
	fr_mutex_lock(&db->mu);
	t->ingesting = false;
	t->cpt_dirty = true;
	bg_kick(db);
	fr_mutex_unlock(&db->mu);
}

static bool overlaps(const struct table *tb, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
		     size_t hi_len)
{
	return bytes_cmp(tb->meta.largest, tb->meta.largest_len, lo, lo_len) >= 0 &&
	       bytes_cmp(tb->meta.smallest, tb->meta.smallest_len, hi, hi_len) <= 0;
}

/* The deepest level such that no table of it or of a level above overlaps [lo, hi]; 0 when
 * L0 does. */
static uint32_t pick_level(const struct tree_version *v, const uint8_t *lo, size_t lo_len,
			   const uint8_t *hi, size_t hi_len)
{
	uint32_t level = 0;
	for (uint32_t l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v->level_cnt[l]; i++)
			if (overlaps(v->levels[l][i], lo, lo_len, hi, hi_len))
				return level;
		level = l;
	}
	return level;
}

/* Tells the conflict oracle that commit s wrote every key of tree `tree` from first's
 * smallest to last's largest, as the range [smallest, largest) plus the key largest: an
 * optimistic transaction that read any of them before s then conflicts. */
static void record_conflicts(fr_db *db, uint32_t tree, uint64_t s, const struct sst_meta *first,
			     const struct sst_meta *last)
{
	struct batch_op ops[2] = {
		{
			.op = BOP_RANGE_DEL,
			.tree_id = tree,
			.key = first->smallest,
			.key_len = first->smallest_len,
			.val = last->largest,
			.val_len = last->largest_len,
		},
		{
			.op = BOP_PUT,
			.tree_id = tree,
			.key = last->largest,
			.key_len = last->largest_len,
		},
	};
	struct leader_ops lo = {.ops = ops, .cnt = 2};

	orc_lock(db->orc);
	orc_record(db->orc, s, &lo);
	orc_unlock(db->orc);
}

static fr_status publish(struct fr_ingest *in, fr_error *err)
{
	fr_db *db = in->db;
	struct tree *t = in->t;
	uint64_t s = db->seqno + 1;
	const struct sst_meta *first = &in->outs[0], *last = &in->outs[in->out_cnt - 1];
	struct tree_version *v = vset_current(db->vs, t->id);
	uint32_t level = pick_level(v, first->smallest, first->smallest_len, last->largest,
				    last->largest_len);
	tv_unref(v);
	struct vedit e;
	vedit_init(&e);
	fr_status rc = FR_OK;
	for (size_t i = 0; i < in->out_cnt && !rc; i++) {
		struct sst_meta *m = &in->outs[i];
		m->global_seqno = s;
		m->min_seqno = s;
		m->max_seqno = s;
		rc = vedit_add_table(&e, t->id, level, m);
	}
	/* the memtables were flushed and no commit ran since: all of t up to s is in tables */
	if (!rc)
		rc = vedit_set_flushed(&e, t->id, s);
	if (rc) {
		vedit_fini(&e);
		return FR_ERR(err, rc, "ingestion");
	}
	e.has_last_seqno = true;
	e.last_seqno = s;
	rc = vset_apply(db->vs, &e, err);
	vedit_fini(&e);
	if (rc) {
		/* the edit may have reached the manifest: the seqno can no longer be trusted */
		in->keep_files = true;
		db_poison(db, rc, err);
		return rc;
	}
	in->keep_files = true; /* the version owns them now */
	atomic_store_rlx_u64(&db->seqno, s); /* fr_db_stats_get reads it unlocked */
	/* sequentially consistent, as in leader_write: an optimistic transaction beginning now
	 * either reads at s or finds the ingestion recorded below */
	atomic_store_sc_u64(&db->visible_seqno, s);
	atomic_add_u64(&db->st.user_write_bytes, in->user_bytes);
	in->seqno = s;
	if (orc_is_active(db->orc))
		record_conflicts(db, t->id, s, first, last);
	return FR_OK;
}

/* Runs as the only writer (db_exclusive). */
static fr_status publish_fn(fr_db *db, void *ctx, fr_error *err)
{
	struct fr_ingest *in = ctx;
	fr_status rc = db_check_writable(db, err);
	if (rc)
		return rc;
	if (atomic_load_acq_bool(&in->ks->dropped))
		return FR_ERR(err, FR_NOT_FOUND, "keyspace %s was deleted", in->ks->name);
	rc = flush_tree(db, in->t, err);
	if (rc)
		return rc;
	hold_compactions(db, in->t);
	rc = publish(in, err);
	release_compactions(db, in->t);
	return rc;
}

fr_status ingest_finish(struct fr_ingest *in, uint64_t *seqno, fr_error *err)
{
	fr_status rc = in->broken;
	if (rc) {
		FR_ERR(err, rc, "ingestion into %s broken, nothing published: %s", in->ks->name,
		       in->broken_err.msg);
		goto out;
	}
	if (in->w) {
		rc = cut_table(in, err);
		if (rc)
			goto out;
	}
	if (!in->out_cnt) {
		in->seqno = atomic_load_acq_u64(&in->db->visible_seqno);
		goto out;
	}
	rc = db_exclusive(in->db, publish_fn, in, err);
out:
	if (!rc && seqno)
		*seqno = in->seqno;
	ingest_free(in);
	return rc;
}
