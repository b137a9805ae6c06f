/* SPDX-License-Identifier: MIT */
/*
 * db.c - opening (create or recover), closing, snapshots and statistics of a database.
 *
 * Directory layout (FORMAT.md §7): LOCK (flock), FORMAT (format version), CURRENT and
 * MANIFEST-<n> (version.h), tables/<id>.sst, journal/<id>.jnl.
 *
 * Recovery: check FORMAT, rebuild every tree's tables from the manifest, replay the journal
 * into memtables (skipping what each tree has already flushed), start a new journal segment,
 * read the keyspace catalog, delete orphan files, start background work.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"
#include "db/db.h"
#include "db/oracle.h"
#include "io/ftab.h"
#include "io/io.h"
#include "journal/journal.h"
#include "memtable/memtable.h"
#include "sst/cache.h"
#include "version/version.h"

#define FORMAT_FILE "FORMAT"
#define FORMAT_TEXT "fractio 1\n"

void fr_db_options_init(fr_db_options *o)
{
	memset(o, 0, sizeof(*o));
	o->journal_segment_max = 16u << 20;
	o->memtable_max = 16u << 20;
	o->write_buffer_max = 64u << 20;
	o->journal_max = 512u << 20;
	o->block_cache_bytes = 64u << 20;
	o->max_open_files = 512;
	o->worker_threads = 2;
	o->default_persist = FR_PERSIST_BUFFER;
	o->create_if_missing = true;
	o->background = true;
}

fr_status db_write_format(struct fr_io *io, const char *dir, fr_error *err)
{
	return io_write_file_atomic(io, dir, FORMAT_FILE, FORMAT_TEXT, strlen(FORMAT_TEXT), err);
}

static fr_status check_format(fr_db *db, bool *fresh, fr_error *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", db->path, FORMAT_FILE);
	/* CURRENT appears (by an atomic rename) before the journal exists, so before anything
	 * can be committed: FORMAT without CURRENT is a creation cut short, done again */
	bool cur;
	char cpath[PATH_MAX];
	snprintf(cpath, sizeof(cpath), "%s/CURRENT", db->path);
	fr_status rc = io_exists(db->io, cpath, &cur, err);
	if (rc)
		return rc;
	void *data;
	size_t len;
	rc = io_read_file(db->io, path, &data, &len, err);
	if (rc == FR_NOT_FOUND) {
		if (cur)
			return FR_CORRUPT(err, path, 0, "missing format file");
		if (!db->opts.create_if_missing || db->opts.read_only)
			return FR_ERR(err, FR_NOT_FOUND, "no database at %s", db->path);
		*fresh = true;
		return db_write_format(db->io, db->path, err);
	}
	if (rc)
		return rc;
	bool ok = len == strlen(FORMAT_TEXT) && !memcmp(data, FORMAT_TEXT, len);
	bool ours = len > 8 && !memcmp(data, "fractio ", 8);
	fr_free(data);
	if (!ok)
		return FR_ERR(err, ours ? FR_INVALID : FR_CORRUPTION,
			      "%s: unsupported database format version (this build reads %.*s)",
			      path, (int)strlen(FORMAT_TEXT) - 1, FORMAT_TEXT);
	*fresh = !cur && db->opts.create_if_missing && !db->opts.read_only;
	return FR_OK;
}

static fr_status replay_fn(void *ctx, uint64_t seg_id, const uint8_t *rec, size_t len,
			   fr_error *err)
{
	return db_replay_record(ctx, seg_id, rec, len, err);
}

static fr_status db_recover(fr_db *db, fr_error *err)
{
	bool fresh = false;
	fr_status rc = check_format(db, &fresh, err);
	if (rc)
		return rc;
	rc = vset_open(db->io, db->path, fresh, db->opts.read_only, &db->vs, err);
	if (rc)
		return rc;
	rc = blk_cache_new(db->opts.block_cache_bytes, BLK_CACHE_SHARD_BITS, &db->bcache);
	if (rc)
		return FR_ERR(err, rc, "block cache");
	rc = ftab_new(db->io, db->opts.max_open_files, &db->ftab, err);
	if (rc)
		return rc;
	vset_set_read_env(db->vs, &(struct sst_read_env){.cache = db->bcache, .files = db->ftab});
	db->seqno = vset_last_seqno(db->vs);
	uint32_t *ids;
	size_t n;
	if (vset_tree_ids(db->vs, &ids, &n))
		return FR_ERR(err, FR_NOMEM, "tree list");
	for (size_t i = 0; i < n && !rc; i++) {
		struct tree *t;
		rc = tree_get(db, ids[i], true, &t);
		if (!rc && ids[i] + 1 > db->next_tree_id)
			db->next_tree_id = ids[i] + 1;
	}
	fr_free(ids);
	if (rc)
		return FR_ERR(err, rc, "trees");
	rc = tree_get(db, CATALOG_TREE, true, &db->catalog);
	if (rc)
		return FR_ERR(err, rc, "catalog");
	uint64_t max_seg = 0;
	uint64_t first_start = 0, mf_last = vset_last_seqno(db->vs);
	rc = jnl_replay_from(db->io, db->jnl_dir, replay_fn, db, &max_seg, &first_start, err);
	if (rc && rc != FR_NOT_FOUND)
		return rc;
	rc = FR_OK;
	/* Journal segments go only after the manifest records their data as flushed, so the
	 * manifest reaches at least to where the oldest segment left starts. If it does not, its
	 * last edits were lost (a damaged tail reads as a torn one): that is corruption, not a
	 * state to open. */
	if (first_start > 1 && mf_last + 1 < first_start)
		return fr_err_set(err, FR_CORRUPTION, 0, 0, __FILE__, __LINE__,
				  "%s: the manifest ends at seqno %llu but the journal starts at "
				  "%llu: manifest edits are missing",
				  db->path, (unsigned long long)mf_last,
				  (unsigned long long)first_start);
	atomic_store_rel_u64(&db->visible_seqno, db->seqno);
	rc = ks_load_tree_options(db, err);
	if (rc)
		return rc;
	if (db->opts.read_only)
		return FR_OK;
	rc = jnl_open(db->io, db->jnl_dir, max_seg + 1, db->opts.journal_segment_max, &db->jnl,
		      err);
	if (!rc)
		rc = jnl_mark_start(db->jnl, db->seqno + 1, err);
	if (rc)
		return rc;
	fr_mutex_lock(&db->mu);
	rc = db_seg_push(db, max_seg + 1, db->seqno);
	fr_mutex_unlock(&db->mu);
	if (rc)
		return FR_ERR(err, rc, "journal segment list");
	jnl_set_presync(db->jnl, db_blob_presync, db);
	/* segments replayed but entirely flushed already can go now */
	db_release_segments(db);
	/* the unfinished direct blob files the replay attached stay; any other is a leftover of
	 * commits the journal lost with its torn tail */
	return vset_delete_orphans_keep(db->vs, db->blob_recovered, db->blob_recovered_cnt, err);
}

static void db_free(fr_db *db)
{
	if (!db)
		return;
	ks_table_free(db);
	db_write_scratch_free(db);
	db_blob_lists_free(db);
	jnl_close(db->jnl, NULL);
	for (size_t i = 0; i < db->tree_cap; i++)
		tree_free(db->trees[i]);
	fr_free(db->trees);
	vset_close(db->vs);
	/* after the tables: their readers hold cache entries and use the file table */
	ftab_free(db->ftab);
	blk_cache_free(db->bcache);
	io_close(db->lock);
	fr_free(db->segs);
	fr_free(db->path);
	fr_free(db->jnl_dir);
	fr_mutex_fini(&db->write_mu);
	fr_mutex_fini(&db->cat_mu);
	fr_mutex_fini(&db->mu);
	fr_mutex_fini(&db->seg_mu);
	fr_cond_fini(&db->bg_cv);
	fr_cond_fini(&db->done_cv);
	fr_mutex_fini(&db->tx_mu);
	fr_cond_fini(&db->tx_cv);
	orc_free(db->orc);
	fr_free(db);
}

fr_status db_open(const char *path, const fr_db_options *o, fr_db **out, fr_error *err)
{
	fr_db *db = fr_calloc(1, sizeof(*db));
	if (!db)
		return FR_ERR(err, FR_NOMEM, "database");
	fr_mutex_init(&db->write_mu);
	fr_mutex_init(&db->cat_mu);
	fr_mutex_init(&db->mu);
	fr_mutex_init(&db->seg_mu);
	fr_cond_init(&db->bg_cv);
	fr_cond_init(&db->done_cv);
	fr_mutex_init(&db->tx_mu);
	fr_cond_init(&db->tx_cv);
	db->snaps.next = db->snaps.prev = &db->snaps;
	if (o)
		db->opts = *o;
	else
		fr_db_options_init(&db->opts);
	if (db->opts.memtable_max < 4096)
		db->opts.memtable_max = 4096;
	if (db->opts.journal_segment_max < 4096)
		db->opts.journal_segment_max = 4096;
	if (db->opts.max_open_files < 16)
		db->opts.max_open_files = 16;
	if (db->opts.journal_max < 2 * db->opts.journal_segment_max)
		db->opts.journal_max = 2 * db->opts.journal_segment_max;
	db->io = db->opts.io ? db->opts.io : io_posix();
	db->next_ks_id = 1;
	db->next_tree_id = 1;
	db->next_mem_id = 1;
	size_t plen = strlen(path);
	db->path = fr_strdup(path);
	db->jnl_dir = fr_malloc(plen + sizeof("/" JOURNAL_SUBDIR));
	fr_status rc;
	if (!db->path || !db->jnl_dir || orc_new(&db->orc)) {
		rc = FR_ERR(err, FR_NOMEM, "database");
		goto out_free;
	}
	snprintf(db->jnl_dir, plen + sizeof("/" JOURNAL_SUBDIR), "%s/" JOURNAL_SUBDIR, path);
	if (db->opts.create_if_missing && !db->opts.read_only) {
		rc = io_mkdir(db->io, path, err);
		if (rc)
			goto out_free;
	}
	char lpath[PATH_MAX];
	snprintf(lpath, sizeof(lpath), "%s/LOCK", path);
	rc = io_lock(db->io, lpath, &db->lock, err);
	if (rc) {
		if (rc == FR_NOT_FOUND)
			rc = FR_ERR(err, FR_NOT_FOUND, "no database at %s", path);
		goto out_free;
	}
	rc = db_recover(db, err);
	if (rc)
		goto out_free;
	fr_free(db->blob_recovered); /* the orphan pass was its only reader */
	db->blob_recovered = NULL;
	db->blob_recovered_cnt = db->blob_recovered_cap = 0;
	/* what the replay left in the memtables and the tables: the budget and the stalls
	 * start from it */
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t)
			continue;
		t->wb_seen = mem_bytes(t->active);
		db->wb_active += t->wb_seen;
		struct tree_version *v = vset_current(db->vs, t->id);
		t->l0_cnt = (uint32_t)v->level_cnt[0];
		tv_unref(v);
	}
	rc = bg_start(db, err);
	if (rc)
		goto out_free;
	*out = db;
	return FR_OK;
out_free:
	db_free(db);
	return rc;
}

fr_status db_close(fr_db *db, fr_error *err)
{
	bg_stop(db);
	fr_status rc = FR_OK;
	if (db->jnl) {
		rc = jnl_close(db->jnl, err);
		db->jnl = NULL;
	}
	db_free(db);
	return rc;
}

/* ---- snapshots ---- */

fr_status snap_open(fr_db *db, fr_snapshot **out)
{
	fr_snapshot *s = fr_calloc(1, sizeof(*s));
	if (!s)
		return FR_NOMEM;
	s->db = db;
	fr_mutex_lock(&db->mu);
	/* read under db->mu so a compaction listing snapshots sees this one or a newer state */
	s->seqno = atomic_load_acq_u64(&db->visible_seqno);
	s->prev = db->snaps.prev;
	s->next = &db->snaps;
	db->snaps.prev->next = s;
	db->snaps.prev = s;
	db->snap_cnt++;
	fr_mutex_unlock(&db->mu);
	*out = s;
	return FR_OK;
}

void snap_close(fr_snapshot *s)
{
	if (!s)
		return;
	fr_db *db = s->db;
	fr_mutex_lock(&db->mu);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	db->snap_cnt--;
	fr_mutex_unlock(&db->mu);
	fr_free(s);
}

fr_status db_stats(fr_db *db, fr_db_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->flushes_done = atomic_load_rlx_u64(&db->st.flushes_done);
	out->compactions_done = atomic_load_rlx_u64(&db->st.compactions_done);
	out->compaction_read_bytes = atomic_load_rlx_u64(&db->st.compaction_read_bytes);
	out->compaction_write_bytes = atomic_load_rlx_u64(&db->st.compaction_write_bytes);
	out->flush_write_bytes = atomic_load_rlx_u64(&db->st.flush_write_bytes);
	out->user_write_bytes = atomic_load_rlx_u64(&db->st.user_write_bytes);
	out->visible_seqno = atomic_load_acq_u64(&db->visible_seqno);
	out->flushes_pending = atomic_load_acq_u64(&db->flushes_pending);
	out->compaction_time_us = atomic_load_rlx_u64(&db->compaction_time_us);
	out->write_stall_us = atomic_load_rlx_u64(&db->stall_us);
	out->write_stalls = atomic_load_rlx_u64(&db->stalls);
	out->poisoned = atomic_load_acq_bool(&db->poisoned);
	/* the commit leader stores both atomically; no lock, so statistics never wait on it */
	out->seqno = atomic_load_rlx_u64(&db->seqno);
	out->journal_write_bytes = db->jnl ? jnl_bytes_written(db->jnl) : 0;
	fr_mutex_lock(&db->cat_mu);
	out->keyspace_cnt = db->ks_tab_cnt;
	fr_mutex_unlock(&db->cat_mu);
	fr_mutex_lock(&db->mu);
	out->journal_segment_cnt = db->seg_cnt;
	out->journal_bytes = db_seg_bytes(db);
	out->compactions_active = db->compactions_active;
	struct blk_cache_stats cs = {0};
	if (db->bcache)
		blk_cache_stats(db->bcache, &cs);
	out->cache_capacity = cs.capacity;
	out->cache_bytes = cs.usage;
	out->cache_hits = cs.hits;
	out->cache_misses = cs.misses;
	out->open_files = db->ftab ? ftab_open_cnt(db->ftab) : 0;
	for (size_t i = 0; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t)
			continue;
		out->tree_cnt++;
		struct tree_version *v = vset_current(db->vs, t->id);
		out->table_cnt += tv_table_cnt(v);
		out->table_bytes += tv_table_bytes(v);
		uint64_t bc, bb, bs;
		tv_blob_stats(v, &bc, &bb, &bs);
		out->blob_file_cnt += bc;
		out->blob_bytes += bb;
		out->blob_stale_bytes += bs;
		tv_unref(v);
		fr_mutex_lock(&t->mu);
		out->memtable_bytes += mem_bytes(t->active);
		for (size_t j = 0; j < t->sealed_cnt; j++)
			out->memtable_bytes += mem_bytes(t->sealed[j]);
		out->sealed_memtable_cnt += t->sealed_cnt;
		fr_mutex_unlock(&t->mu);
	}
	fr_mutex_unlock(&db->mu);
	fr_error e;
	if (io_space(db->io, db->path, &out->disk_total_bytes, &out->disk_avail_bytes, &e) != FR_OK)
		out->disk_total_bytes = out->disk_avail_bytes = 0; /* unknown, not an error */
	return FR_OK;
}
