/* SPDX-License-Identifier: MIT */
/*
 * bg.c - background work: flushing sealed memtables into L0 tables and running the compactions
 * each tree's strategy picks (compact/pick.h), on a pool of worker threads (or inline when the
 * database runs without them). Flushes go before compactions; one flush and one compaction
 * per tree run at a time, different trees in parallel. A failed flush or compaction poisons
 * the database: writes return FR_POISONED until reopen. Closing abandons a running
 * compaction cleanly (its outputs are deleted, nothing is published) and finishes a flush.
 *
 * Blob GC (KV separation): every compaction relocates the values of the tree's blob files past
 * the stale threshold that its inputs refer to; when the strategy has nothing to do and such a
 * file remains, a relocation plan rewrites one table referring to it in place (pick_blob_gc),
 * until no table refers to it and it leaves the version.
 *
 * Seek compaction (leveled): iterators count the forward seeks whose key lies in two or more
 * L0 tables, and point reads those that looked in two or more L0 tables (bg_note_l0_seek);
 * past a budget they ask for L0 to be compacted although it is below its trigger (pick_seek),
 * so that a read-mostly tree stops paying a block load or filter probe per L0 table on every
 * read. It comes after everything the strategy finds due.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/log.h"
#include "blob/blob.h"
#include "compact/compact.h"
#include "compact/merge_iter.h"
#include "compact/rdset.h"
#include "db/db.h"
#include "io/io.h"
#include "journal/journal.h"
#include "memtable/memtable.h"
#include "version/version.h"

void db_poison(fr_db *db, fr_status rc, const fr_error *err)
{
	fr_mutex_lock(&db->mu);
	if (!db->poisoned) {
		if (err)
			db->poison_err = *err;
		else
			fr_err_set(&db->poison_err, rc, 0, 0, __FILE__, __LINE__, "%s",
				   fr_status_str(rc));
		atomic_store_rel_bool(&db->poisoned, true);
		FR_LOG(FR_LOG_ERR, "database %s poisoned: %s", db->path, db->poison_err.msg);
	}
	fr_cond_broadcast(&db->done_cv);
	fr_mutex_unlock(&db->mu);
}

fr_status db_check_writable(fr_db *db, fr_error *err)
{
	if (atomic_load_acq_bool(&db->poisoned)) {
		fr_mutex_lock(&db->mu);
		fr_status rc = fr_err_set(err, FR_POISONED, 0, 0, __FILE__, __LINE__,
					  "database poisoned: %s", db->poison_err.msg);
		fr_mutex_unlock(&db->mu);
		return rc;
	}
	if (db->opts.read_only)
		return FR_ERR(err, FR_INVALID, "database opened read-only");
	return FR_OK;
}

fr_status db_snapshot_list(fr_db *db, uint64_t **out, size_t *cnt)
{
	fr_mutex_lock(&db->mu);
	size_t n = db->snap_cnt;
	uint64_t *a = fr_calloc(n + 1, sizeof(*a));
	if (!a) {
		fr_mutex_unlock(&db->mu);
		return FR_NOMEM;
	}
	size_t i = 0;
	for (struct fr_snapshot *s = db->snaps.next; s != &db->snaps; s = s->next)
		a[i++] = s->seqno;
	fr_mutex_unlock(&db->mu);
	*out = a;
	*cnt = i;
	return FR_OK;
}

/* oldest seqno not yet in a table, 0 when the tree has nothing unflushed */
static uint64_t tree_min_unflushed(struct tree *t)
{
	fr_mutex_lock(&t->mu);
	uint64_t m = t->sealed_cnt ? t->sealed_min_seqno[0] : 0;
	if (!m)
		m = t->active_min_seqno;
	fr_mutex_unlock(&t->mu);
	return m;
}

void db_release_segments(fr_db *db)
{
	/* one release at a time: between listing the segments and dropping them it writes to
	 * the manifest without db->mu */
	fr_mutex_lock(&db->seg_mu);
	fr_mutex_lock(&db->mu);
	uint64_t min = UINT64_MAX;
	for (size_t i = 0; i < db->tree_cap; i++) {
		if (!db->trees[i])
			continue;
		uint64_t m = tree_min_unflushed(db->trees[i]);
		if (m && m < min)
			min = m;
	}
	size_t drop = 0;
	/* never the newest segment: the journal writes to it */
	while (drop + 1 < db->seg_cnt && db->segs[drop].max_seqno < min)
		drop++;
	uint64_t *ids = drop ? fr_calloc(drop, sizeof(*ids)) : NULL;
	if (!ids) {
		fr_mutex_unlock(&db->mu);
		fr_mutex_unlock(&db->seg_mu);
		return;
	}
	for (size_t i = 0; i < drop; i++)
		ids[i] = db->segs[i].id;
	fr_mutex_unlock(&db->mu);
	/* The edit that flushed this data may be the manifest's last record, and a damaged last
	 * record reads as a torn tail (a crash during its append), which recovery drops, going
	 * back to the journal for the data. Once the journal is gone that would lose the data
	 * silently: an empty edit after it makes damage there corruption that open reports. */
	struct vedit seal;
	vedit_init(&seal);
	fr_error e;
	fr_status rc = vset_apply(db->vs, &seal, &e);
	vedit_fini(&seal);
	if (rc) {
		FR_LOG(FR_LOG_WARN, "keeping journal segments: %s", e.msg);
		fr_mutex_unlock(&db->seg_mu);
		fr_free(ids);
		return;
	}
	fr_mutex_lock(&db->mu);
	/* only this function removes segments (under seg_mu): the first `drop` are still the
	 * ones listed */
	memmove(db->segs, db->segs + drop, (db->seg_cnt - drop) * sizeof(*db->segs));
	db->seg_cnt -= drop;
	fr_mutex_unlock(&db->mu);
	fr_mutex_unlock(&db->seg_mu);
	for (size_t i = 0; i < drop; i++) {
		if (jnl_segment_delete(db->io, db->jnl_dir, ids[i], &e) &&
		    e.code != FR_NOT_FOUND)
			FR_LOG(FR_LOG_WARN, "deleting journal segment: %s", e.msg);
	}
	fr_free(ids);
}

struct rd_vec {
	struct range_del *a;
	size_t cnt, cap;
	bool nomem;
};

static void rd_push(void *ctx, const struct range_del *rd)
{
	struct rd_vec *v = ctx;
	if (v->cnt == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct range_del *a = fr_realloc(v->a, cap * sizeof(*a));
		if (!a) {
			v->nomem = true;
			return;
		}
		v->a = a;
		v->cap = cap;
	}
	v->a[v->cnt++] = *rd;
}

/* The table options of level `level` of t. */
static void level_opts(struct tree *t, uint32_t level, struct sst_options *out)
{
	fr_mutex_lock(&t->mu);
	*out = t->opts.level[level];
	fr_mutex_unlock(&t->mu);
}

/* The blob files of v past the tree's GC threshold, ascending (fr_free; NULL when none). */
static fr_status stale_blobs(struct tree *t, const struct tree_version *v, uint64_t **out,
			     size_t *cnt)
{
	fr_mutex_lock(&t->mu);
	uint32_t pct = t->opts.blob.gc_stale_pct;
	fr_mutex_unlock(&t->mu);
	*out = NULL;
	*cnt = 0;
	if (!v->blob_cnt || !pct)
		return FR_OK;
	uint64_t *ids = fr_calloc(v->blob_cnt, sizeof(*ids)), *live = NULL;
	if (!ids || tv_blob_live_all(v, &live)) {
		fr_free(ids);
		return FR_NOMEM;
	}
	size_t n = 0;
	for (size_t i = 0; i < v->blob_cnt; i++)
		if (tv_blob_live_is_stale(v->blobs[i], live[i], pct))
			ids[n++] = v->blobs[i]->meta.id; /* v->blobs is ascending */
	fr_free(live);
	if (!n) {
		fr_free(ids);
		return FR_OK;
	}
	*out = ids;
	*cnt = n;
	return FR_OK;
}

/* Where a job's blob values go, and which blob files it rewrites (src holds them). */
struct job_blobs {
	struct tree *t;
	const struct tree_version *src;
	const uint64_t *reloc;
	size_t reloc_cnt;
};

/* A compaction is abandoned when the database closes; a flush (bounded by a memtable) is
 * finished. */
static fr_status run_job(fr_db *db, struct compact_job *j, struct kv_iter *in,
			 struct rd_vec *rv, const struct sst_options *so, bool bottom,
			 uint64_t target, bool cancellable, const struct job_blobs *jb,
			 fr_error *err)
{
	uint64_t *snaps = NULL;
	size_t snap_cnt = 0;
	struct rdset *rds = NULL;
	fr_status rc = FR_OK;
	memset(j, 0, sizeof(*j));
	if (rv->nomem || db_snapshot_list(db, &snaps, &snap_cnt) ||
	    rdset_new(rv->a, rv->cnt, &rds)) {
		rc = FR_ERR(err, FR_NOMEM, "flush or compaction");
		goto out;
	}
	j->io = db->io;
	j->vs = db->vs;
	j->opts = *so;
	j->input = in;
	j->rds = rds;
	j->snaps = snaps;
	j->snap_cnt = snap_cnt;
	j->bottom = bottom;
	j->target_size = target;
	j->cancel = cancellable ? &db->closing : NULL;
	fr_mutex_lock(&jb->t->mu);
	j->blob_threshold = jb->t->opts.blob.threshold;
	j->blob_file_target = jb->t->opts.blob.file_target;
	j->blob_compress = jb->t->opts.blob.compress;
	fr_mutex_unlock(&jb->t->mu);
	j->blob_src = jb->src;
	j->blob_reloc = jb->reloc;
	j->blob_reloc_cnt = jb->reloc_cnt;
	rc = compact_run(j, err);
out:
	rdset_free(rds);
	fr_free(snaps);
	return rc;
}

/* Adds the blob files a job wrote to its edit. */
static fr_status add_blob_outs(struct vedit *e, struct tree *t, const struct compact_job *j)
{
	for (size_t i = 0; i < j->blob_out_cnt; i++) {
		fr_status rc = vedit_add_blob(e, t->id, &j->blob_outs[i]);
		if (rc)
			return rc;
	}
	return FR_OK;
}

/* After an edit of t's version: refresh what stalls and the picker look at. */
static void tree_version_changed(fr_db *db, struct tree *t)
{
	struct tree_version *v = vset_current(db->vs, t->id);
	atomic_store_rel_u32(&t->l0_cnt, (uint32_t)v->level_cnt[0]);
	tv_unref(v);
	fr_mutex_lock(&db->mu);
	t->cpt_dirty = true;
	fr_mutex_unlock(&db->mu);
}

fr_status bg_flush_tree(fr_db *db, struct tree *t, fr_error *err)
{
	fr_mutex_lock(&t->mu);
	if (!t->sealed_cnt) {
		fr_mutex_unlock(&t->mu);
		return FR_OK;
	}
	struct mem *m = t->sealed[0];
	uint64_t upto = t->sealed_upto[0];
	mem_ref(m);
	fr_mutex_unlock(&t->mu);

	struct compact_job j;
	memset(&j, 0, sizeof(j));
	struct rd_vec rv = {0};
	fr_status rc = FR_OK;
	uint64_t direct_bytes = 0; /* written at commit; counted as flushed, once, here */
	struct vedit e;
	vedit_init(&e);
	if (!mem_is_empty(m)) {
		struct kv_iter *in = mem_iter_new(m);
		if (!in) {
			rc = FR_ERR(err, FR_NOMEM, "flush");
			goto out;
		}
		mem_range_dels_each(m, rd_push, &rv);
		struct sst_options so;
		level_opts(t, 0, &so);
		struct job_blobs jb = {.t = t};
		rc = run_job(db, &j, in, &rv, &so, false, UINT64_MAX, false, &jb, err);
		kv_free(in);
		if (rc)
			goto out;
	}
	rc = add_blob_outs(&e, t, &j);
	if (rc) {
		rc = FR_ERR(err, rc, "flush");
		goto out;
	}
	/* the memtable's direct blob files (written at commit) are finished now and installed
	 * with the table that refers to them; on failure they stay for the next open */
	for (size_t i = 0; i < mem_blob_cnt(m); i++) {
		struct blob_meta bm;
		rc = blob_direct_finish(mem_blob_at(m, i), &bm, err);
		if (rc)
			goto out;
		direct_bytes += bm.file_size;
		rc = vedit_add_blob(&e, t->id, &bm);
		if (rc) {
			rc = FR_ERR(err, rc, "flush");
			goto out;
		}
	}
	for (size_t i = 0; i < j.out_cnt && !rc; i++)
		rc = vedit_add_table(&e, t->id, 0, &j.outs[i]);
	if (!rc)
		rc = vedit_set_flushed(&e, t->id, upto);
	if (rc) {
		rc = FR_ERR(err, rc, "flush");
		goto out;
	}
	e.has_last_seqno = true;
	e.last_seqno = upto;
	rc = vset_apply(db->vs, &e, err);
	if (rc) {
		/* the edit may have reached the manifest: the files stay, the next open's orphan
		 * pass decides */
		j.out_cnt_keep = true;
		goto out;
	}
	/* the table is published: now the memtable may go (see tree_view) */
	fr_mutex_lock(&t->mu);
	fr_assert(t->sealed[0] == m);
	mem_unref(t->sealed[0]);
	t->sealed_cnt--;
	memmove(t->sealed, t->sealed + 1, t->sealed_cnt * sizeof(*t->sealed));
	memmove(t->sealed_upto, t->sealed_upto + 1, t->sealed_cnt * sizeof(uint64_t));
	memmove(t->sealed_min_seqno, t->sealed_min_seqno + 1, t->sealed_cnt * sizeof(uint64_t));
	fr_mutex_unlock(&t->mu);
	atomic_sub_u64(&db->flushes_pending, 1);
	atomic_sub_u64(&db->wb_sealed, mem_bytes(m));
	atomic_add_u64(&db->st.flushes_done, 1);
	atomic_add_u64(&db->st.flush_write_bytes, j.bytes_written + direct_bytes);
	atomic_add_u64(&t->st.flush_write_bytes, j.bytes_written + direct_bytes);
	tree_version_changed(db, t);
	db_release_segments(db);
out:
	if (rc && !j.out_cnt_keep)
		compact_job_delete_outputs(&j);
	compact_job_fini(&j);
	vedit_fini(&e);
	fr_free(rv.a);
	mem_unref(m);
	return rc;
}

fr_status bg_flush_sealed(fr_db *db, struct tree *t, fr_error *err)
{
	for (;;) {
		fr_mutex_lock(&db->mu);
		while (t->flushing && !atomic_load_acq_bool(&db->poisoned))
			fr_cond_wait(&db->done_cv, &db->mu);
		fr_mutex_lock(&t->mu);
		size_t sealed = t->sealed_cnt;
		fr_mutex_unlock(&t->mu);
		if (!sealed || atomic_load_acq_bool(&db->poisoned)) {
			fr_mutex_unlock(&db->mu);
			return db_check_writable(db, err);
		}
		/* claimed like a worker claims it (bg_step), so no worker flushes t meanwhile */
		t->flushing = true;
		db->jobs_active++;
		fr_mutex_unlock(&db->mu);

		fr_error e;
		fr_status rc = bg_flush_tree(db, t, &e);
		if (rc)
			db_poison(db, rc, &e);
		fr_mutex_lock(&db->mu);
		t->flushing = false;
		db->jobs_active--;
		fr_cond_broadcast(&db->done_cv);
		fr_cond_broadcast(&db->bg_cv);
		fr_mutex_unlock(&db->mu);
		if (rc) {
			if (err)
				*err = e;
			return rc;
		}
	}
}

/* A planned compaction of one tree, holding the version its plan was made from. */
struct cjob {
	struct tree *t;
	struct tree_version *v;
	struct compact_pick pk;
	bool major;
	bool seek; /* the plan answers t->seek_compact */
};

static void cjob_fini(struct cjob *cj)
{
	compact_pick_fini(&cj->pk);
	tv_unref(cj->v);
	memset(cj, 0, sizeof(*cj));
}

/* The merged input of a PICK_MERGE: one iterator per L0 table, one per deeper level (its inputs
 * are adjacent tables of one sorted run), and every input's range tombstones in rv. The
 * inputs' readers (kept for the tombstones' memory) go to *readers. */
static fr_status merge_input(struct cjob *cj, struct rd_vec *rv, struct sst_reader ***readers,
			     size_t *rcnt, struct kv_iter **out, fr_error *err)
{
	const struct compact_pick *pk = &cj->pk;
	struct kv_iter **kids = fr_calloc(pk->in_cnt + 1, sizeof(*kids));
	struct table **run = fr_calloc(pk->in_cnt + 1, sizeof(*run));
	struct sst_reader **rs = fr_calloc(pk->in_cnt + 1, sizeof(*rs));
	size_t cnt = 0, n = 0;
	fr_status rc = FR_OK;
	*out = NULL;
	if (!kids || !run || !rs) {
		rc = FR_ERR(err, FR_NOMEM, "compaction");
		goto out;
	}
	for (; n < pk->in_cnt && !rc; n++) {
		rc = table_reader(pk->in[n].t, &rs[n], err);
		if (rc)
			break;
		const struct range_del *rds;
		size_t k = sst_reader_range_dels(rs[n], &rds);
		for (size_t x = 0; x < k; x++)
			rd_push(rv, &rds[x]);
	}
	/* compaction reads every block once: it would only push hot ones out of the cache */
	for (size_t i = 0; i < pk->in_cnt && !rc;) {
		uint32_t level = pk->in[i].level;
		if (level == 0) {
			rc = sst_iter_new_flags(rs[i++], SST_ITER_NO_FILL, &kids[cnt++], err);
			continue;
		}
		size_t m = 0;
		while (i < pk->in_cnt && pk->in[i].level == level)
			run[m++] = pk->in[i++].t;
		rc = level_iter_new_flags(run, m, SST_ITER_NO_FILL, &kids[cnt++], err);
	}
	if (!rc) {
		*out = merge_iter_new(kids, cnt);
		if (!*out)
			rc = FR_ERR(err, FR_NOMEM, "compaction");
		cnt = 0; /* the merge owns them, or freed them on failure */
	}
out:
	for (size_t i = 0; i < cnt; i++)
		kv_free(kids[i]);
	fr_free(kids);
	fr_free(run);
	*readers = rs;
	*rcnt = rs ? n : 0;
	return rc;
}

static fr_status run_compaction(fr_db *db, struct cjob *cj, fr_error *err)
{
	struct tree *t = cj->t;
	const struct compact_pick *pk = &cj->pk;
	struct compact_job j;
	memset(&j, 0, sizeof(j));
	struct rd_vec rv = {0};
	struct sst_reader **readers = NULL;
	size_t rcnt = 0;
	struct vedit e;
	vedit_init(&e);
	uint64_t t0 = fr_now_ns();
	fr_status rc = FR_OK;
	uint64_t *reloc = NULL;
	size_t reloc_cnt = 0;

	for (size_t i = 0; i < pk->in_cnt && !rc; i++) {
		const struct pick_input *in = &pk->in[i];
		rc = vedit_del_table(&e, t->id, in->level, in->t->meta.id);
		if (!rc && pk->kind == PICK_MOVE)
			rc = vedit_add_table(&e, t->id, pk->out_level, &in->t->meta);
	}
	if (rc) {
		rc = FR_ERR(err, rc, "compaction");
		goto out;
	}
	if (pk->kind == PICK_MERGE) {
		struct kv_iter *in;
		rc = merge_input(cj, &rv, &readers, &rcnt, &in, err);
		if (rc)
			goto out;
		struct sst_options so;
		level_opts(t, pk->out_level, &so);
		/* every compaction moves the values out of the blob files GC wants gone */
		if (stale_blobs(t, cj->v, &reloc, &reloc_cnt)) {
			kv_free(in);
			rc = FR_ERR(err, FR_NOMEM, "compaction");
			goto out;
		}
		struct job_blobs jb = {
			.t = t, .src = cj->v, .reloc = reloc, .reloc_cnt = reloc_cnt};
		rc = run_job(db, &j, in, &rv, &so, pk->bottom, pk->target_size, true, &jb, err);
		kv_free(in);
		if (rc)
			goto out;
		rc = add_blob_outs(&e, t, &j);
		for (size_t i = 0; i < j.out_cnt && !rc; i++)
			rc = vedit_add_table(&e, t->id, pk->out_level, &j.outs[i]);
		if (rc) {
			rc = FR_ERR(err, rc, "compaction");
			goto out;
		}
	}
	rc = vset_apply(db->vs, &e, err);
	if (rc) {
		j.out_cnt_keep = true; /* as in bg_flush_tree */
		goto out;
	}
	uint64_t us = (fr_now_ns() - t0) / 1000;
	atomic_add_u64(&db->st.compactions_done, 1);
	atomic_add_u64(&db->st.compaction_read_bytes, j.bytes_read);
	atomic_add_u64(&db->st.compaction_write_bytes, j.bytes_written);
	atomic_add_u64(&db->compaction_time_us, us);
	atomic_add_u64(&t->st.compactions_done, 1);
	atomic_add_u64(&t->st.compaction_read_bytes, j.bytes_read);
	atomic_add_u64(&t->st.compaction_write_bytes, j.bytes_written);
	if (cj->v->blob_cnt) {
		struct tree_version *nv = vset_current(db->vs, t->id);
		uint64_t gone = 0;
		for (size_t i = 0; i < cj->v->blob_cnt; i++)
			gone += !tv_blob(nv, cj->v->blobs[i]->meta.id);
		tv_unref(nv);
		atomic_add_u64(&t->st.blob_gc_done, gone);
	}
	FR_LOG(FR_LOG_DEBUG, "tree %u: %s of %zu tables to L%u (%zu out) in %llu ms", t->id,
	       pk->kind == PICK_MERGE ? "merge" : pk->kind == PICK_MOVE ? "move" : "drop",
	       pk->in_cnt, pk->out_level, j.out_cnt, (unsigned long long)(us / 1000));
	tree_version_changed(db, t);
out:
	if (rc && !j.out_cnt_keep)
		compact_job_delete_outputs(&j);
	for (size_t i = 0; i < rcnt; i++)
		sst_reader_unref(readers[i]);
	fr_free(readers);
	fr_free(rv.a);
	fr_free(reloc);
	compact_job_fini(&j);
	vedit_fini(&e);
	return rc;
}

/* A relocation plan (blob GC): the first blob file of v past the stale threshold, and one table
 * that refers to it, rewritten into its own level (so levels stay disjoint; its outputs fall
 * inside its span). The compaction relocates the file's values (run_compaction passes every
 * stale file), and once no table refers to the file it leaves the version. PICK_NONE when no
 * file is past the threshold. */
static fr_status pick_blob_gc(struct tree *t, const struct tree_version *v,
			      const struct compact_policy *pol, struct compact_pick *pk)
{
	uint64_t *ids;
	size_t cnt;
	memset(pk, 0, sizeof(*pk));
	if (stale_blobs(t, v, &ids, &cnt))
		return FR_NOMEM;
	for (size_t b = 0; b < cnt && pk->kind == PICK_NONE; b++) {
		for (uint32_t l = 0; l < LEVEL_CNT && pk->kind == PICK_NONE; l++) {
			for (size_t i = 0; i < v->level_cnt[l]; i++) {
				const struct sst_meta *m = &v->levels[l][i]->meta;
				bool refers = false;
				for (size_t r = 0; r < m->blob_ref_cnt && !refers; r++)
					refers = m->blob_refs[r].file_id == ids[b];
				if (!refers)
					continue;
				pk->in = fr_calloc(1, sizeof(*pk->in));
				if (!pk->in) {
					fr_free(ids);
					return FR_NOMEM;
				}
				pk->in[0] = (struct pick_input){.level = l, .t = v->levels[l][i]};
				pk->in_cnt = 1;
				pk->kind = PICK_MERGE;
				pk->out_level = l;
				/* L0 tables are ordered by seqno: one output keeps that order */
				pk->target_size = l ? pol->table_target_size : UINT64_MAX;
				pk->score = 0.5;
				break;
			}
		}
	}
	fr_free(ids);
	return FR_OK;
}

/* The L0 compaction seeks asked for (bg_note_l0_seek), when nothing is due otherwise: the plan
 * of a leveled tree whose L0 trigger were the number of tables L0 holds now, if that plan is
 * an L0 one (a lower trigger also lowers L1's target). A request with nothing to do lapses;
 * one that makes a plan is cleared when the plan runs (bg_step). Under db->mu. */
static fr_status pick_seek(struct tree *t, const struct tree_version *v,
			   const struct compact_policy *pol, uint64_t now_s, struct compact_pick *pk)
{
	if (!t->seek_compact)
		return FR_OK;
	if (pol->strategy == CS_LEVELED && v->level_cnt[0] >= 2) {
		struct compact_policy p = *pol;
		p.l0_trigger = (uint32_t)v->level_cnt[0];
		fr_status rc = compact_pick(v, &p, now_s, false, pk);
		if (rc)
			return rc;
		if (pk->kind != PICK_NONE && pk->in_cnt && pk->in[0].level == 0)
			return FR_OK;
		compact_pick_fini(pk);
	}
	t->seek_compact = false;
	return FR_OK;
}

static void tree_policy(struct tree *t, struct compact_policy *p)
{
	fr_mutex_lock(&t->mu);
	*p = t->opts.policy;
	fr_mutex_unlock(&t->mu);
}

/* The most urgent compaction of any tree not compacting now, under db->mu. Trees found up to
 * date are not looked at again until their version changes. */
static bool pick_compaction(fr_db *db, struct cjob *out)
{
	fr_mutex_assert_held(&db->mu);
	bool found = false;
	uint64_t now = (uint64_t)time(NULL);
#ifdef FR_TESTING
	if (atomic_load_acq_bool(&db->test_hold_compactions))
		return false;
#endif
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t || t->compacting || t->ingesting ||
		    (!t->cpt_dirty && !t->force_compact && !t->seek_compact))
			continue;
		struct compact_policy pol;
		tree_policy(t, &pol);
		struct cjob cj = {.t = t, .v = vset_current(db->vs, t->id), .major = t->force_compact};
		if (compact_pick(cj.v, &pol, now, cj.major, &cj.pk)) {
			cjob_fini(&cj); /* out of memory: try again at the next wake */
			continue;
		}
		if (cj.pk.kind == PICK_NONE) {
			if (pick_seek(t, cj.v, &pol, now, &cj.pk)) {
				cjob_fini(&cj);
				continue;
			}
			cj.seek = cj.pk.kind != PICK_NONE;
		}
		if (cj.pk.kind == PICK_NONE && pick_blob_gc(t, cj.v, &pol, &cj.pk)) {
			cjob_fini(&cj);
			continue;
		}
		if (cj.pk.kind == PICK_NONE) {
			/* up to date; a FIFO tree with a TTL must be looked at again later */
			t->cpt_dirty = pol.strategy == CS_FIFO && pol.fifo_ttl_s;
			t->force_compact = false;
			cjob_fini(&cj);
			continue;
		}
		if (!found || cj.major > out->major ||
		    (cj.major == out->major && cj.pk.score > out->pk.score)) {
			if (found)
				cjob_fini(out);
			*out = cj;
			found = true;
		} else {
			cjob_fini(&cj);
		}
	}
	return found;
}

/* The tree with the most sealed memtables not being flushed, under db->mu. */
static struct tree *pick_flush(fr_db *db)
{
	fr_mutex_assert_held(&db->mu);
	if (!atomic_load_acq_u64(&db->flushes_pending))
		return NULL;
	struct tree *best = NULL;
	size_t most = 0;
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t || t->flushing)
			continue;
		fr_mutex_lock(&t->mu);
		size_t sealed = t->sealed_cnt;
		fr_mutex_unlock(&t->mu);
		if (sealed > most) {
			most = sealed;
			best = t;
		}
	}
	return best;
}

/* Does one piece of work if there is one, under db->mu (released while it runs); false when
 * there is nothing to do. */
static bool bg_step(fr_db *db)
{
	fr_mutex_assert_held(&db->mu);
	if (db->poisoned || db->closing)
		return false;
	struct cjob cj = {0};
	struct tree *t = pick_flush(db);
	if (t) {
		t->flushing = true;
	} else if (pick_compaction(db, &cj)) {
		t = cj.t;
		t->compacting = true;
		if (cj.seek)
			t->seek_compact = false;
		db->compactions_active++;
	} else {
		return false;
	}
	db->jobs_active++;
	fr_mutex_unlock(&db->mu);
	fr_error err;
	fr_status rc = cj.t ? run_compaction(db, &cj, &err) : bg_flush_tree(db, t, &err);
	bool abandoned = rc == FR_CLOSED && atomic_load_acq_bool(&db->closing);
	if (rc && !abandoned)
		db_poison(db, rc, &err);
	fr_mutex_lock(&db->mu);
	if (cj.t) {
		t->compacting = false;
		if (!rc && cj.major)
			t->force_compact = false;
		db->compactions_active--;
		cjob_fini(&cj);
	} else {
		t->flushing = false;
	}
	db->jobs_active--;
	fr_cond_broadcast(&db->done_cv);
	fr_cond_broadcast(&db->bg_cv); /* the other workers may find work this one made */
	return true;
}

static void *worker_main(void *arg)
{
	fr_db *db = arg;
	fr_mutex_lock(&db->mu);
	while (!db->closing) {
		/* a timed wait: FIFO time-to-live expires with nobody writing */
		if (!bg_step(db))
			fr_cond_timedwait(&db->bg_cv, &db->mu, 1000000000ull);
	}
	db->workers_running--;
	fr_cond_broadcast(&db->done_cv);
	fr_mutex_unlock(&db->mu);
	return NULL;
}

void bg_kick(fr_db *db)
{
	fr_cond_broadcast(&db->bg_cv);
}

fr_status bg_start(fr_db *db, fr_error *err)
{
	if (!db->opts.background || db->opts.read_only)
		return FR_OK;
	uint32_t n = db->opts.worker_threads;
	if (n < 1)
		n = 1;
	if (n > WORKERS_MAX)
		n = WORKERS_MAX;
	db->workers = fr_calloc(n, sizeof(*db->workers));
	if (!db->workers)
		return FR_ERR(err, FR_NOMEM, "starting the workers");
	for (uint32_t i = 0; i < n; i++) {
		fr_mutex_lock(&db->mu);
		db->workers_running++;
		fr_mutex_unlock(&db->mu);
		if (pthread_create(&db->workers[i], NULL, worker_main, db)) {
			fr_mutex_lock(&db->mu);
			db->workers_running--;
			fr_mutex_unlock(&db->mu);
			if (i)
				break; /* fewer workers than asked is still a working database */
			fr_free(db->workers);
			db->workers = NULL;
			return FR_ERR(err, FR_NOMEM, "starting the background threads");
		}
		db->worker_cnt++;
	}
	/* whatever the last session left in L0 is looked at at once */
	fr_mutex_lock(&db->mu);
	for (size_t i = 0; i < db->tree_cap; i++)
		if (db->trees[i])
			db->trees[i]->cpt_dirty = true;
	bg_kick(db);
	fr_mutex_unlock(&db->mu);
	return FR_OK;
}

void bg_stop(fr_db *db)
{
	if (!db->worker_cnt)
		return;
	fr_mutex_lock(&db->mu);
	atomic_store_rel_bool(&db->closing, true);
	fr_cond_broadcast(&db->bg_cv);
	fr_mutex_unlock(&db->mu);
	for (uint32_t i = 0; i < db->worker_cnt; i++)
		pthread_join(db->workers[i], NULL);
	fr_free(db->workers);
	db->workers = NULL;
	db->worker_cnt = 0;
}

void bg_request_major(fr_db *db, struct tree *t)
{
	fr_mutex_lock(&db->mu);
	t->force_compact = true;
	bg_kick(db);
	fr_mutex_unlock(&db->mu);
}

/*
 * A seek that must look at k L0 tables costs about k block loads where one would do after a
 * compaction; LevelDB reckons one extra seek costs what compacting 16 KiB does and lets a file
 * take size / 16 KiB of them (at least 100). Here the L0 tables share one budget: their bytes
 * / 16 KiB plus 100 seeks that hit two or more of them.
 */
#define SEEK_COST_BYTES (16u << 10)
#define SEEK_BUDGET_MIN 100u

void bg_note_l0_seek(fr_db *db, struct tree *t, const struct tree_version *v)
{
	if (db->opts.read_only)
		return;
	uint64_t budget = SEEK_BUDGET_MIN;
	for (size_t i = 0; i < v->level_cnt[0]; i++)
		budget += v->levels[0][i]->meta.file_size / SEEK_COST_BYTES;
	if (atomic_add_u64(&t->l0_seeks, 1) < budget)
		return;
	/* racing seeks past the budget may each ask: asking twice is harmless */
	atomic_store_rlx_u64(&t->l0_seeks, 0);
	fr_mutex_lock(&db->mu);
	t->seek_compact = true;
	bg_kick(db);
	fr_mutex_unlock(&db->mu);
}

/* Runs background work on the calling thread until none is left (no worker threads), or waits
 * until the workers have none left. */
fr_status bg_drain(fr_db *db, fr_error *err)
{
	fr_mutex_lock(&db->mu);
	for (;;) {
		if (db->poisoned || db->closing)
			break;
		if (db->worker_cnt) {
			if (!db->jobs_active && !pick_flush(db)) {
				struct cjob cj;
				if (!pick_compaction(db, &cj))
					break;
				/* leave it to a worker: the plan is made again there */
				cj.t->cpt_dirty = true;
				cjob_fini(&cj);
			}
			bg_kick(db);
			fr_cond_timedwait(&db->done_cv, &db->mu, 50000000ull);
		} else if (!bg_step(db)) {
			break;
		}
	}
	fr_mutex_unlock(&db->mu);
	return db_check_writable(db, err) == FR_POISONED ? FR_POISONED : FR_OK;
}
