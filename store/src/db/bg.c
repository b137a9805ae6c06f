/* SPDX-License-Identifier: MIT */
/*
 * bg.c - background work: flushing sealed memtables into L0 tables and compacting a tree's
 * tables when L0 grows, on one thread (or inline when the database runs without it).
 * A failed flush or compaction poisons the database: writes return FR_POISONED until reopen.
 */
#include <limits.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/log.h"
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
		return;
	}
	for (size_t i = 0; i < drop; i++)
		ids[i] = db->segs[i].id;
	memmove(db->segs, db->segs + drop, (db->seg_cnt - drop) * sizeof(*db->segs));
	db->seg_cnt -= drop;
	fr_mutex_unlock(&db->mu);
	for (size_t i = 0; i < drop; i++) {
		fr_error e;
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

static fr_status run_job(fr_db *db, struct tree *t, struct compact_job *j, struct kv_iter *in,
			 struct rd_vec *rv, bool bottom, uint64_t target, fr_error *err)
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
	fr_mutex_lock(&t->mu);
	j->opts = t->opts;
	fr_mutex_unlock(&t->mu);
	j->input = in;
	j->rds = rds;
	j->snaps = snaps;
	j->snap_cnt = snap_cnt;
	j->bottom = bottom;
	j->target_size = target;
	rc = compact_run(j, err);
out:
	rdset_free(rds);
	fr_free(snaps);
	return rc;
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
	struct vedit e;
	vedit_init(&e);
	if (!mem_is_empty(m)) {
		struct kv_iter *in = mem_iter_new(m);
		if (!in) {
			rc = FR_ERR(err, FR_NOMEM, "flush");
			goto out;
		}
		mem_range_dels_each(m, rd_push, &rv);
		rc = run_job(db, t, &j, in, &rv, false, UINT64_MAX, err);
		kv_free(in);
		if (rc)
			goto out;
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
	atomic_add_u64(&db->st.flushes_done, 1);
	atomic_add_u64(&db->st.flush_write_bytes, j.bytes_written);
	db_release_segments(db);
out:
	if (rc && !j.out_cnt_keep) {
		/* the outputs are not in any version: delete them */
		char path[PATH_MAX];
		for (size_t i = 0; i < j.out_cnt; i++) {
			vset_table_path(db->vs, j.outs[i].id, path, sizeof(path));
			io_unlink(db->io, path, NULL);
		}
	}
	compact_job_fini(&j);
	vedit_fini(&e);
	fr_free(rv.a);
	mem_unref(m);
	return rc;
}

fr_status bg_compact_tree(fr_db *db, struct tree *t, bool major, fr_error *err)
{
	(void)major;
	struct tree_version *v = vset_current(db->vs, t->id);
	struct kv_iter **kids = fr_calloc(tv_table_cnt(v) + LEVEL_CNT + 1, sizeof(*kids));
	size_t cnt = 0;
	struct rd_vec rv = {0};
	struct sst_reader **readers = fr_calloc(tv_table_cnt(v) + 1, sizeof(*readers));
	size_t rcnt = 0;
	struct compact_job j;
	memset(&j, 0, sizeof(j));
	struct vedit e;
	vedit_init(&e);
	fr_status rc = FR_OK;
	if (!kids || !readers) {
		rc = FR_ERR(err, FR_NOMEM, "compaction");
		goto out;
	}
	if (tv_table_cnt(v) == 0)
		goto out;
	for (int l = 0; l < LEVEL_CNT && !rc; l++) {
		for (size_t i = 0; i < v->level_cnt[l] && !rc; i++) {
			struct table *tb = v->levels[l][i];
			struct sst_reader *r;
			rc = table_reader(tb, &r, err);
			if (rc)
				break;
			readers[rcnt++] = r;
			const struct range_del *rds;
			size_t n = sst_reader_range_dels(r, &rds);
			for (size_t k = 0; k < n; k++)
				rd_push(&rv, &rds[k]);
			if (l == 0)
				rc = sst_iter_new(r, &kids[cnt++], err);
			if (!rc)
				rc = vedit_del_table(&e, t->id, (uint32_t)l, tb->meta.id);
		}
		if (!rc && l > 0 && v->level_cnt[l])
			rc = level_iter_new(v->levels[l], v->level_cnt[l], &kids[cnt++], err);
	}
	if (rc)
		goto out_kids;
	struct kv_iter *in = merge_iter_new(kids, cnt);
	cnt = 0;
	if (!in) {
		rc = FR_ERR(err, FR_NOMEM, "compaction");
		goto out;
	}
	uint64_t t0 = fr_now_ns();
	rc = run_job(db, t, &j, in, &rv, true, TABLE_TARGET_SIZE, err);
	kv_free(in);
	if (rc)
		goto out;
	for (size_t i = 0; i < j.out_cnt && !rc; i++)
		rc = vedit_add_table(&e, t->id, LEVEL_CNT - 1, &j.outs[i]);
	if (rc) {
		rc = FR_ERR(err, rc, "compaction");
		goto out;
	}
	rc = vset_apply(db->vs, &e, err);
	if (rc) {
		j.out_cnt_keep = true; /* as in bg_flush_tree */
		goto out;
	}
	atomic_add_u64(&db->st.compactions_done, 1);
	atomic_add_u64(&db->st.compaction_read_bytes, j.bytes_read);
	atomic_add_u64(&db->st.compaction_write_bytes, j.bytes_written);
	FR_LOG(FR_LOG_INFO, "tree %u compacted %zu tables into %zu in %llu ms", t->id, rcnt,
	       j.out_cnt, (unsigned long long)((fr_now_ns() - t0) / 1000000));
	goto out;
out_kids:
	for (size_t i = 0; i < cnt; i++)
		kv_free(kids[i]);
out:
	if (rc && !j.out_cnt_keep) {
		char path[PATH_MAX];
		for (size_t i = 0; i < j.out_cnt; i++) {
			vset_table_path(db->vs, j.outs[i].id, path, sizeof(path));
			io_unlink(db->io, path, NULL);
		}
	}
	for (size_t i = 0; i < rcnt; i++)
		sst_reader_unref(readers[i]);
	fr_free(readers);
	fr_free(kids);
	fr_free(rv.a);
	compact_job_fini(&j);
	vedit_fini(&e);
	tv_unref(v);
	return rc;
}

/* Picks work under db->mu: a flush first, else a compaction. */
static struct tree *pick(fr_db *db, bool *flush)
{
	fr_mutex_assert_held(&db->mu);
	/* L0 far past its trigger: compact before flushing more, so L0 stays bounded and
	 * writers wait on sealed memtables instead (the stall in leader_stall) */
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t || t->compacting)
			continue;
		struct tree_version *v = vset_current(db->vs, t->id);
		bool urgent = v->level_cnt[0] >= L0_STOP_FLUSH;
		tv_unref(v);
		if (urgent) {
			*flush = false;
			return t;
		}
	}
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t || t->flushing)
			continue;
		fr_mutex_lock(&t->mu);
		size_t sealed = t->sealed_cnt;
		fr_mutex_unlock(&t->mu);
		if (sealed) {
			*flush = true;
			return t;
		}
	}
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t || t->compacting)
			continue;
		struct tree_version *v = vset_current(db->vs, t->id);
		bool need = v->level_cnt[0] >= L0_COMPACT_TRIGGER ||
			    (t->force_compact && tv_table_cnt(v) > 0);
		tv_unref(v);
		if (need) {
			*flush = false;
			return t;
		}
		t->force_compact = false;
	}
	return NULL;
}

/* Does one piece of work if there is one; false when idle. */
static bool bg_step(fr_db *db)
{
	fr_mutex_assert_held(&db->mu);
	if (db->poisoned)
		return false;
	bool flush = false;
	struct tree *t = pick(db, &flush);
	if (!t)
		return false;
	if (flush)
		t->flushing = true;
	else
		t->compacting = true;
	db->bg_busy = true;
	fr_mutex_unlock(&db->mu);
	fr_error err;
	fr_status rc = flush ? bg_flush_tree(db, t, &err) : bg_compact_tree(db, t, false, &err);
	if (rc)
		db_poison(db, rc, &err);
	fr_mutex_lock(&db->mu);
	if (flush) {
		t->flushing = false;
	} else {
		t->compacting = false;
		t->force_compact = false;
	}
	db->bg_busy = false;
	fr_cond_broadcast(&db->done_cv);
	return true;
}

static void *bg_main(void *arg)
{
	fr_db *db = arg;
	fr_mutex_lock(&db->mu);
	while (!db->closing) {
		if (!bg_step(db))
			fr_cond_wait(&db->bg_cv, &db->mu);
	}
	db->bg_running = false;
	fr_cond_broadcast(&db->done_cv);
	fr_mutex_unlock(&db->mu);
	return NULL;
}

void bg_kick(fr_db *db)
{
	fr_cond_signal(&db->bg_cv);
}

fr_status bg_start(fr_db *db, fr_error *err)
{
	if (!db->opts.background || db->opts.read_only)
		return FR_OK;
	fr_mutex_lock(&db->mu);
	db->bg_running = true;
	fr_mutex_unlock(&db->mu);
	if (pthread_create(&db->bg, NULL, bg_main, db)) {
		db->bg_running = false;
		return FR_ERR(err, FR_NOMEM, "starting the background thread");
	}
	db->bg_started = true;
	return FR_OK;
}

void bg_stop(fr_db *db)
{
	if (!db->bg_started)
		return;
	fr_mutex_lock(&db->mu);
	db->closing = true;
	fr_cond_broadcast(&db->bg_cv);
	fr_mutex_unlock(&db->mu);
	pthread_join(db->bg, NULL);
	db->bg_started = false;
}

/* Runs background work on the calling thread until none is left (no background thread, or
 * waiting for idleness). */
fr_status bg_drain(fr_db *db, fr_error *err)
{
	fr_mutex_lock(&db->mu);
	for (;;) {
		if (db->poisoned)
			break;
		if (db->bg_started) {
			bool flush;
			if (!db->bg_busy && !pick(db, &flush))
				break;
			bg_kick(db);
			fr_cond_timedwait(&db->done_cv, &db->mu, 50000000ull);
		} else if (!bg_step(db)) {
			break;
		}
	}
	fr_mutex_unlock(&db->mu);
	return db_check_writable(db, err) == FR_POISONED ? FR_POISONED : FR_OK;
}
