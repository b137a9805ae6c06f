/* SPDX-License-Identifier: MIT */
/*
 * api.c - every public fr_* function of fractio.h: argument checks, then the internal call.
 * Keeping the public surface in one file makes it auditable (STYLE.md §3.1).
 */
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "db/db.h"
#include "db/iter_int.h"
#include "memtable/memtable.h"
#include "tx/batch.h"
#include "version/version.h"


static uint64_t visible(fr_db *db)
{
	/* pairs with the release store in leader_write */
	return atomic_load_acq_u64(&db->visible_seqno);
}

fr_status api_check_key(const void *k, size_t n, fr_error *err)
{
	if (!k && n)
		return FR_ERR(err, FR_INVALID, "key is NULL");
	if (n > KEY_MAX)
		return FR_ERR(err, FR_INVALID, "key of %zu bytes exceeds %u", n, KEY_MAX);
	return FR_OK;
}

fr_status api_check_val(const void *v, size_t n, fr_error *err)
{
	if (!v && n)
		return FR_ERR(err, FR_INVALID, "value is NULL");
	if (n > VAL_MAX)
		return FR_ERR(err, FR_INVALID, "value of %zu bytes exceeds %u", n, VAL_MAX);
	return FR_OK;
}

static fr_status check_ks(const fr_keyspace *ks, fr_error *err)
{
	if (!ks)
		return FR_ERR(err, FR_INVALID, "keyspace is NULL");
	if (atomic_load_acq_bool(&((fr_keyspace *)ks)->dropped))
		return FR_ERR(err, FR_NOT_FOUND, "keyspace %s was deleted", ks->name);
	return FR_OK;
}

fr_status tkey_make(struct tkey *t, const fr_keyspace *ks, const void *k, size_t n,
		    fr_error *err)
{
	t->len = KS_PREFIX_LEN + n;
	t->p = t->len <= sizeof(t->buf) ? t->buf : fr_malloc(t->len);
	if (!t->p)
		return FR_ERR(err, FR_NOMEM, "key");
	memcpy(t->p, ks->prefix, KS_PREFIX_LEN);
	if (n)
		memcpy(t->p + KS_PREFIX_LEN, k, n);
	return FR_OK;
}

void tkey_fini(struct tkey *t)
{
	if (t->p != t->buf)
		fr_free(t->p);
}

/* ---- database ---- */

fr_status fr_db_open(const char *path, const fr_db_options *o, fr_db **out, fr_error *err)
{
	if (!path || !*path || !out)
		return FR_ERR(err, FR_INVALID, "fr_db_open needs a path and an out pointer");
	*out = NULL;
	return db_open(path, o, out, err);
}

fr_status fr_db_close(fr_db *db, fr_error *err)
{
	if (!db)
		return FR_OK;
	return db_close(db, err);
}

static fr_status persist_fn(fr_db *db, void *ctx, fr_error *err)
{
	fr_persist mode = *(fr_persist *)ctx;
	fr_status rc = db_check_writable(db, err);
	if (rc)
		return rc;
	return db_journal_sync(db, mode, err);
}

fr_status fr_db_persist(fr_db *db, fr_persist mode, fr_error *err)
{
	if (!db || mode > FR_PERSIST_SYNC_ALL)
		return FR_ERR(err, FR_INVALID, "fr_db_persist: bad arguments");
	if (db->opts.read_only)
		return FR_OK;
	return db_exclusive(db, persist_fn, &mode, err);
}

static fr_status seal_all_fn(fr_db *db, void *ctx, fr_error *err)
{
	(void)ctx;
	return db_seal_all(db, false, err);
}

fr_status fr_db_flush(fr_db *db, fr_error *err)
{
	if (!db)
		return FR_ERR(err, FR_INVALID, "db is NULL");
	if (db->opts.read_only)
		return FR_OK;
	fr_status rc = db_exclusive(db, seal_all_fn, NULL, err);
	if (!rc)
		rc = bg_drain(db, err);
	return rc;
}

fr_status fr_db_wait_idle(fr_db *db, fr_error *err)
{
	if (!db)
		return FR_ERR(err, FR_INVALID, "db is NULL");
	return bg_drain(db, err);
}

fr_seqno fr_db_seqno(fr_db *db)
{
	return db ? visible(db) : 0;
}

fr_status fr_db_checkpoint(fr_db *db, const char *dir, fr_error *err)
{
	struct cpt_stats st;

	if (!db || !dir || !*dir)
		return FR_ERR(err, FR_INVALID, "fr_db_checkpoint needs a database and a directory");
	return db_checkpoint(db, dir, &st, err);
}

fr_status fr_db_stats_get(fr_db *db, fr_db_stats *out, fr_error *err)
{
	if (!db || !out)
		return FR_ERR(err, FR_INVALID, "fr_db_stats_get: bad arguments");
	return db_stats(db, out);
}

/* ---- keyspaces ---- */

void fr_keyspace_options_init(fr_keyspace_options *o)
{
	memset(o, 0, sizeof(*o));
	o->block_size = 4096;
	o->restart_interval = 16;
	o->bloom_bits_per_key = 10;
	o->compress = true;
	for (int l = 0; l < FR_LEVEL_CNT; l++)
		o->level[l] = (fr_level_options){
			.bloom_bits_per_key = -1, .compress = -1, .hash_index = -1};
	o->compaction = FR_COMPACTION_LEVELED;
	o->l0_trigger = 4;
	o->level_ratio = 10;
	o->table_target_size = 64u << 20;
	o->fifo_limit_bytes = 1u << 30;
	o->blob_threshold = 0;
	o->blob_file_target = BLOB_FILE_TARGET_DEFAULT;
	o->blob_compress = true;
	o->blob_gc_stale_pct = BLOB_GC_STALE_PCT_DEFAULT;
}

fr_status fr_keyspace_open(fr_db *db, const char *name, const fr_keyspace_options *o,
			   fr_keyspace **out, fr_error *err)
{
	if (!db || !out)
		return FR_ERR(err, FR_INVALID, "fr_keyspace_open: bad arguments");
	*out = NULL;
	fr_keyspace_options def;
	if (!o) {
		fr_keyspace_options_init(&def);
		o = &def;
	}
	fr_status rc = ks_options_check(o, err);
	if (rc)
		return rc;
	return ks_open(db, name, o, !db->opts.read_only, out, err);
}

void fr_keyspace_close(fr_keyspace *ks)
{
	ks_unref(ks);
}

fr_status fr_keyspace_exists(fr_db *db, const char *name, bool *out, fr_error *err)
{
	if (!db || !out)
		return FR_ERR(err, FR_INVALID, "fr_keyspace_exists: bad arguments");
	return ks_exists(db, name, out, err);
}

fr_status fr_keyspace_delete(fr_db *db, const char *name, fr_error *err)
{
	if (!db || !name)
		return FR_ERR(err, FR_INVALID, "fr_keyspace_delete: bad arguments");
	bool exists;
	fr_status rc = ks_exists(db, name, &exists, err);
	if (rc)
		return rc;
	if (!exists)
		return FR_ERR(err, FR_NOT_FOUND, "no keyspace %s", name);
	fr_batch *b;
	if (fr_batch_new(db, &b))
		return FR_ERR(err, FR_NOMEM, "batch");
	rc = fr_batch_drop_keyspace(b, name);
	if (!rc)
		rc = db_commit(db, b, db->opts.default_persist, NULL, err);
	fr_batch_free(b);
	return rc;
}

fr_status fr_keyspace_list(fr_db *db, fr_keyspace_list_fn fn, void *ctx, fr_error *err)
{
	if (!db || !fn)
		return FR_ERR(err, FR_INVALID, "fr_keyspace_list: bad arguments");
	return ks_list(db, fn, ctx, err);
}

const char *fr_keyspace_name(const fr_keyspace *ks)
{
	return ks ? ks->name : NULL;
}

/* ---- single operations ---- */

static fr_status single(fr_keyspace *ks, uint8_t op, const void *k, size_t klen, const void *v,
			size_t vlen, fr_error *err)
{
	fr_status rc = check_ks(ks, err);
	if (!rc)
		rc = api_check_key(k, klen, err);
	if (!rc && op == BOP_RANGE_DEL)
		rc = api_check_key(v, vlen, err);
	if (!rc && op == BOP_PUT)
		rc = api_check_val(v, vlen, err);
	if (rc)
		return rc;
	/* One operation and, for small ones, its bytes on the stack: a put allocates nothing
	 * here. batch_add reserves at most two prefixes and the key and value, so a buffer of
	 * that capacity is never reallocated. */
	fr_batch b;
	struct bop one;
	uint8_t small[256];
	memset(&b, 0, sizeof(b));
	b.db = ks->db;
	b.ops = &one;
	b.cap = 1;
	bool on_stack = klen + vlen <= sizeof(small) - 2 * KS_PREFIX_LEN;
	if (on_stack) {
		b.data.data = small;
		b.data.cap = sizeof(small);
	}
	rc = batch_add(&b, op, ks, k, klen, v, vlen);
	if (rc)
		rc = FR_ERR(err, rc, "batch");
	else
		rc = db_commit(ks->db, &b, ks->db->opts.default_persist, NULL, err);
	batch_reset(&b);
	if (!on_stack)
		buf_fini(&b.data);
	return rc;
}

fr_status fr_put(fr_keyspace *ks, const void *key, size_t key_len, const void *val,
		 size_t val_len, fr_error *err)
{
	return single(ks, BOP_PUT, key, key_len, val, val_len, err);
}

fr_status fr_remove(fr_keyspace *ks, const void *key, size_t key_len, fr_error *err)
{
	return single(ks, BOP_DEL, key, key_len, NULL, 0, err);
}

fr_status fr_remove_weak(fr_keyspace *ks, const void *key, size_t key_len, fr_error *err)
{
	return single(ks, BOP_WEAK_DEL, key, key_len, NULL, 0, err);
}

fr_status fr_delete_range(fr_keyspace *ks, const void *start, size_t start_len, const void *end,
			  size_t end_len, fr_error *err)
{
	return single(ks, BOP_RANGE_DEL, start, start_len, end, end_len, err);
}

fr_status fr_keyspace_clear(fr_keyspace *ks, fr_error *err)
{
	fr_status rc = check_ks(ks, err);
	if (rc)
		return rc;
	/* [prefix, prefix of the next id) as raw tree keys: the empty user key up to the end */
	uint8_t hi[KS_PREFIX_LEN];
	ks_prefix(ks->ks_id + 1, hi);
	fr_batch b;
	memset(&b, 0, sizeof(b));
	b.db = ks->db;
	rc = batch_add(&b, BOP_RANGE_DEL, NULL, ks->prefix, KS_PREFIX_LEN, hi, KS_PREFIX_LEN);
	if (!rc) {
		b.ops[0].tree_id = ks->tree->id;
		rc = db_commit(ks->db, &b, ks->db->opts.default_persist, NULL, err);
	} else {
		rc = FR_ERR(err, rc, "batch");
	}
	batch_reset(&b);
	fr_free(b.ops);
	buf_fini(&b.data);
	return rc;
}

static fr_status get_at(fr_keyspace *ks, uint64_t snap, const void *key, size_t key_len,
			void **val, size_t *val_len, fr_error *err)
{
	fr_status rc = check_ks(ks, err);
	if (!rc)
		rc = api_check_key(key, key_len, err);
	if (rc)
		return rc;
	struct tkey tk;
	if ((rc = tkey_make(&tk, ks, key, key_len, err)))
		return rc;
	void *v = NULL;
	size_t n = 0;
	rc = tree_get_value(ks->db, ks->tree, tk.p, tk.len, snap, val ? &v : NULL, &n, err);
	tkey_fini(&tk);
	if (rc == FR_OK) {
		if (val)
			*val = v;
		if (val_len)
			*val_len = n;
	} else if (val) {
		*val = NULL;
	}
	return rc;
}

fr_status fr_get(fr_keyspace *ks, const void *key, size_t key_len, void **val, size_t *val_len,
		 fr_error *err)
{
	if (!ks)
		return FR_ERR(err, FR_INVALID, "keyspace is NULL");
	return get_at(ks, visible(ks->db), key, key_len, val, val_len, err);
}

fr_status fr_contains(fr_keyspace *ks, const void *key, size_t key_len, bool *out, fr_error *err)
{
	if (!ks || !out)
		return FR_ERR(err, FR_INVALID, "fr_contains: bad arguments");
	fr_status rc = get_at(ks, visible(ks->db), key, key_len, NULL, NULL, err);
	if (rc && rc != FR_NOT_FOUND)
		return rc;
	*out = rc == FR_OK;
	return FR_OK;
}

/* Opens a tree iterator over the keyspace's part of its tree, bounded by lo/hi (user keys). */
static fr_status ks_titer(fr_keyspace *ks, const void *lo, size_t lo_len, const void *hi,
			  size_t hi_len, bool has_hi, bool reverse, uint64_t snap,
			  struct kv_iter *overlay, struct titer **out, fr_error *err)
{
	struct tkey l, h;
	fr_status rc = tkey_make(&l, ks, lo, lo_len, err);
	if (rc) {
		kv_free(overlay);
		return rc;
	}
	if (has_hi) {
		rc = tkey_make(&h, ks, hi, hi_len, err);
	} else {
		/* the end of this keyspace: the next id's prefix */
		h.p = h.buf;
		h.len = KS_PREFIX_LEN;
		ks_prefix(ks->ks_id + 1, h.buf);
	}
	if (!rc) {
		rc = titer_open_overlay(ks->db, ks->tree, l.p, l.len, h.p, h.len, reverse, snap,
					overlay, out, err);
		tkey_fini(&h);
		overlay = NULL;
	}
	kv_free(overlay);
	tkey_fini(&l);
	return rc;
}

static fr_status edge(fr_keyspace *ks, bool reverse, void **key, size_t *key_len, void **val,
		      size_t *val_len, fr_error *err)
{
	fr_status rc = check_ks(ks, err);
	if (rc)
		return rc;
	struct titer *it;
	rc = ks_titer(ks, NULL, 0, NULL, 0, false, reverse, visible(ks->db), NULL, &it, err);
	if (rc)
		return rc;
	if (!val && !val_len)
		titer_set_keys_only(it);
	rc = titer_first(it, err);
	if (!rc && !titer_valid(it))
		rc = FR_NOT_FOUND;
	void *k = NULL, *v = NULL;
	if (!rc) {
		size_t kl, vl;
		const uint8_t *kp = titer_key(it, &kl), *vp = titer_value(it, &vl);
		kl -= KS_PREFIX_LEN;
		if (key && !(k = fr_memdup(kp + KS_PREFIX_LEN, kl)))
			rc = FR_ERR(err, FR_NOMEM, "key");
		if (!rc && val && !(v = fr_memdup(vp, vl)))
			rc = FR_ERR(err, FR_NOMEM, "value");
		if (!rc) {
			if (key)
				*key = k;
			if (key_len)
				*key_len = kl;
			if (val)
				*val = v;
			if (val_len)
				*val_len = vl;
		} else {
			fr_free(k);
			fr_free(v);
		}
	}
	titer_close(it);
	return rc;
}

fr_status fr_first(fr_keyspace *ks, void **key, size_t *key_len, void **val, size_t *val_len,
		   fr_error *err)
{
	return edge(ks, false, key, key_len, val, val_len, err);
}

fr_status fr_last(fr_keyspace *ks, void **key, size_t *key_len, void **val, size_t *val_len,
		  fr_error *err)
{
	return edge(ks, true, key, key_len, val, val_len, err);
}

fr_status fr_len(fr_keyspace *ks, uint64_t *out, fr_error *err)
{
	fr_status rc = check_ks(ks, err);
	if (rc)
		return rc;
	if (!out)
		return FR_ERR(err, FR_INVALID, "out is NULL");
	struct titer *it;
	rc = ks_titer(ks, NULL, 0, NULL, 0, false, false, visible(ks->db), NULL, &it, err);
	if (rc)
		return rc;
	uint64_t n = 0;
	titer_set_keys_only(it); /* counting needs no value from a blob file */
	for (rc = titer_first(it, err); !rc && titer_valid(it); rc = titer_next(it, err))
		n++;
	titer_close(it);
	if (!rc)
		*out = n;
	return rc;
}

uint64_t fr_approximate_len(fr_keyspace *ks)
{
	if (!ks)
		return 0;
	struct read_view v;
	if (tree_view(ks->db, ks->tree, &v))
		return 0;
	uint64_t n = 0;
	for (size_t i = 0; i < v.mem_cnt; i++)
		n += mem_entry_cnt(v.mems[i]);
	for (int l = 0; l < LEVEL_CNT; l++)
		for (size_t i = 0; i < v.ver->level_cnt[l]; i++)
			n += v.ver->levels[l][i]->meta.entry_cnt;
	read_view_release(&v);
	return n;
}

fr_status fr_keyspace_stats_get(fr_keyspace *ks, fr_keyspace_stats *out, fr_error *err)
{
	if (!ks || !out)
		return FR_ERR(err, FR_INVALID, "fr_keyspace_stats_get: bad arguments");
	memset(out, 0, sizeof(*out));
	struct read_view v;
	if (tree_view(ks->db, ks->tree, &v))
		return FR_ERR(err, FR_NOMEM, "stats");
	for (size_t i = 0; i < v.mem_cnt; i++)
		out->memtable_bytes += mem_bytes(v.mems[i]);
	for (int l = 0; l < LEVEL_CNT; l++) {
		out->level_table_cnt[l] = v.ver->level_cnt[l];
		for (size_t i = 0; i < v.ver->level_cnt[l]; i++)
			out->level_bytes[l] += v.ver->levels[l][i]->meta.file_size;
	}
	out->sealed_memtable_cnt = v.mem_cnt ? v.mem_cnt - 1 : 0;
	struct tree *t = ks->tree;
	out->compactions_done = atomic_load_rlx_u64(&t->st.compactions_done);
	out->compaction_read_bytes = atomic_load_rlx_u64(&t->st.compaction_read_bytes);
	out->compaction_write_bytes = atomic_load_rlx_u64(&t->st.compaction_write_bytes);
	out->flush_write_bytes = atomic_load_rlx_u64(&t->st.flush_write_bytes);
	fr_mutex_lock(&ks->db->mu);
	out->compacting = t->compacting;
	fr_mutex_unlock(&ks->db->mu);
	out->table_cnt = tv_table_cnt(v.ver);
	out->table_bytes = tv_table_bytes(v.ver);
	tv_blob_stats(v.ver, &out->blob_file_cnt, &out->blob_bytes, &out->blob_stale_bytes);
	out->blob_gc_done = atomic_load_rlx_u64(&t->st.blob_gc_done);
	read_view_release(&v);
	out->approximate_len = fr_approximate_len(ks);
	return FR_OK;
}

fr_status fr_major_compact(fr_keyspace *ks, fr_error *err)
{
	fr_status rc = check_ks(ks, err);
	if (rc)
		return rc;
	fr_db *db = ks->db;
	rc = fr_db_flush(db, err);
	if (rc)
		return rc;
	bg_request_major(db, ks->tree);
	return bg_drain(db, err);
}

fr_status fr_blob_gc(fr_keyspace *ks, fr_error *err)
{
	/* Staleness is what tables no longer refer to: the major compaction first drops the
	 * overwritten and deleted versions no snapshot needs (relocating the files already past
	 * the threshold as it goes); the picker then plans a relocation of each table still
	 * referring to a file past the threshold until none is left (bg.c), and bg_drain waits
	 * for all of it. */
	return fr_major_compact(ks, err);
}

/* ---- batches ---- */

fr_status fr_batch_new(fr_db *db, fr_batch **out)
{
	if (!db || !out)
		return FR_INVALID;
	fr_batch *b = fr_calloc(1, sizeof(*b));
	if (!b)
		return FR_NOMEM;
	b->db = db;
	*out = b;
	return FR_OK;
}

void fr_batch_free(fr_batch *b)
{
	if (!b)
		return;
	batch_reset(b);
	fr_free(b->ops);
	fr_free(b->ks_opts);
	fr_free(b->ks_tree_names);
	buf_fini(&b->data);
	fr_free(b);
}

static fr_status batch_op(fr_batch *b, uint8_t op, fr_keyspace *ks, const void *k, size_t klen,
			  const void *v, size_t vlen)
{
	if (!b || check_ks(ks, NULL) || api_check_key(k, klen, NULL) || ks->db != b->db)
		return FR_INVALID;
	if (op == BOP_PUT && api_check_val(v, vlen, NULL))
		return FR_INVALID;
	if (op == BOP_RANGE_DEL && api_check_key(v, vlen, NULL))
		return FR_INVALID;
	return batch_add(b, op, ks, k, klen, v, vlen);
}

fr_status fr_batch_put(fr_batch *b, fr_keyspace *ks, const void *key, size_t key_len,
		       const void *val, size_t val_len)
{
	return batch_op(b, BOP_PUT, ks, key, key_len, val, val_len);
}

fr_status fr_batch_remove(fr_batch *b, fr_keyspace *ks, const void *key, size_t key_len)
{
	return batch_op(b, BOP_DEL, ks, key, key_len, NULL, 0);
}

fr_status fr_batch_remove_weak(fr_batch *b, fr_keyspace *ks, const void *key, size_t key_len)
{
	return batch_op(b, BOP_WEAK_DEL, ks, key, key_len, NULL, 0);
}

fr_status fr_batch_delete_range(fr_batch *b, fr_keyspace *ks, const void *start,
				size_t start_len, const void *end, size_t end_len)
{
	return batch_op(b, BOP_RANGE_DEL, ks, start, start_len, end, end_len);
}

fr_status fr_batch_create_keyspace(fr_batch *b, const char *name, const fr_keyspace_options *o)
{
	size_t n = name ? strlen(name) : 0;
	if (!b || n == 0 || n > FR_KEYSPACE_NAME_MAX)
		return FR_INVALID;
	if (o && o->tree && (!*o->tree || strlen(o->tree) > FR_KEYSPACE_NAME_MAX))
		return FR_INVALID;
	if (ks_options_check(o, NULL))
		return FR_INVALID;
	fr_keyspace_options *opts = fr_realloc(b->ks_opts, (b->ks_opt_cnt + 1) * sizeof(*opts));
	if (!opts)
		return FR_NOMEM;
	b->ks_opts = opts;
	char **names = fr_realloc(b->ks_tree_names, (b->ks_opt_cnt + 1) * sizeof(*names));
	if (!names)
		return FR_NOMEM;
	b->ks_tree_names = names;
	if (o)
		opts[b->ks_opt_cnt] = *o;
	else
		fr_keyspace_options_init(&opts[b->ks_opt_cnt]);
	names[b->ks_opt_cnt] = NULL;
	if (o && o->tree && !(names[b->ks_opt_cnt] = fr_strdup(o->tree)))
		return FR_NOMEM;
	opts[b->ks_opt_cnt].tree = NULL;
	fr_status rc = batch_add(b, BOP_KS_CREATE, NULL, name, n + 1, NULL, 0);
	if (rc) {
		fr_free(names[b->ks_opt_cnt]);
		return rc;
	}
	b->ops[b->cnt - 1].opt_off = b->ks_opt_cnt++;
	return FR_OK;
}

fr_status fr_batch_drop_keyspace(fr_batch *b, const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (!b || n == 0 || n > FR_KEYSPACE_NAME_MAX)
		return FR_INVALID;
	return batch_add(b, BOP_KS_DROP, NULL, name, n + 1, NULL, 0);
}

size_t fr_batch_count(const fr_batch *b)
{
	return b ? b->cnt : 0;
}

fr_status fr_batch_commit(fr_batch *b, fr_persist mode, fr_seqno *seqno, fr_error *err)
{
	if (!b || mode > FR_PERSIST_SYNC_ALL)
		return FR_ERR(err, FR_INVALID, "fr_batch_commit: bad arguments");
	fr_status rc = db_commit(b->db, b, mode, seqno, err);
	batch_reset(b);
	return rc;
}

/* ---- snapshots ---- */

fr_status fr_snapshot_open(fr_db *db, fr_snapshot **out, fr_error *err)
{
	if (!db || !out)
		return FR_ERR(err, FR_INVALID, "fr_snapshot_open: bad arguments");
	fr_status rc = snap_open(db, out);
	return rc ? FR_ERR(err, rc, "snapshot") : FR_OK;
}

void fr_snapshot_close(fr_snapshot *s)
{
	snap_close(s);
}

fr_seqno fr_snapshot_seqno(const fr_snapshot *s)
{
	return s ? s->seqno : 0;
}

fr_status fr_snapshot_get(const fr_snapshot *s, fr_keyspace *ks, const void *key, size_t key_len,
			  void **val, size_t *val_len, fr_error *err)
{
	if (!s || !ks || s->db != ks->db)
		return FR_ERR(err, FR_INVALID, "fr_snapshot_get: bad arguments");
	return get_at(ks, s->seqno, key, key_len, val, val_len, err);
}

fr_status fr_snapshot_contains(const fr_snapshot *s, fr_keyspace *ks, const void *key,
			       size_t key_len, bool *out, fr_error *err)
{
	if (!s || !ks || !out || s->db != ks->db)
		return FR_ERR(err, FR_INVALID, "fr_snapshot_contains: bad arguments");
	fr_status rc = get_at(ks, s->seqno, key, key_len, NULL, NULL, err);
	if (rc && rc != FR_NOT_FOUND)
		return rc;
	*out = rc == FR_OK;
	return FR_OK;
}

/* ---- iterators ---- */

fr_status fr_iter_open(fr_keyspace *ks, const fr_iter_options *o, fr_iter **out, fr_error *err)
{
	fr_status rc = check_ks(ks, err);
	if (rc)
		return rc;
	if (!out)
		return FR_ERR(err, FR_INVALID, "out is NULL");
	*out = NULL;
	if (o && o->snapshot && o->snapshot->db != ks->db)
		return FR_ERR(err, FR_INVALID, "snapshot of another database");
	uint64_t snap = o && o->snapshot ? o->snapshot->seqno : visible(ks->db);
	return api_iter_open(ks, o, snap, NULL, out, err);
}

fr_status api_iter_open(fr_keyspace *ks, const fr_iter_options *o, uint64_t snap,
			struct kv_iter *overlay, fr_iter **out, fr_error *err)
{
	fr_status rc;
	fr_iter_options def;
	if (!o) {
		memset(&def, 0, sizeof(def));
		o = &def;
	}
	/* lower = max(lower, prefix); upper = min(upper, prefix successor) */
	const uint8_t *lo = o->lower, *hi = o->upper;
	size_t lo_len = o->lower ? o->lower_len : 0, hi_len = o->upper ? o->upper_len : 0;
	bool has_hi = o->upper != NULL;
	uint8_t *succ = NULL;
	if (o->prefix && o->prefix_len) {
		const uint8_t *p = o->prefix;
		if (!lo || bytes_cmp(lo, lo_len, p, o->prefix_len) < 0) {
			lo = p;
			lo_len = o->prefix_len;
		}
		/* the successor: drop trailing 0xff bytes, increment the last */
		size_t n = o->prefix_len;
		while (n && p[n - 1] == 0xff)
			n--;
		if (n) {
			succ = fr_memdup(p, n);
			if (!succ) {
				kv_free(overlay);
				return FR_ERR(err, FR_NOMEM, "iterator");
			}
			succ[n - 1]++;
			if (!has_hi || bytes_cmp(succ, n, hi, hi_len) < 0) {
				hi = succ;
				hi_len = n;
				has_hi = true;
			}
		}
	}
	fr_iter *it = fr_malloc(sizeof(*it));
	if (!it) {
		fr_free(succ);
		kv_free(overlay);
		return FR_ERR(err, FR_NOMEM, "iterator");
	}
	it->ks = NULL;
	it->ti = NULL;
	rc = ks_titer(ks, lo, lo_len, hi, hi_len, has_hi, o->reverse, snap, overlay, &it->ti, err);
	fr_free(succ);
	if (!rc)
		rc = titer_first(it->ti, err);
	if (rc) {
		titer_close(it->ti);
		fr_free(it);
		return rc;
	}
	fr_mutex_lock(&ks->db->cat_mu);
	ks->refs++;
	fr_mutex_unlock(&ks->db->cat_mu);
	it->ks = ks;
	*out = it;
	return FR_OK;
}

void fr_iter_close(fr_iter *it)
{
	if (!it)
		return;
	titer_close(it->ti);
	ks_unref(it->ks);
	fr_free(it);
}

bool fr_iter_valid(const fr_iter *it)
{
	return it && titer_valid(it->ti);
}

fr_status fr_iter_next(fr_iter *it, fr_error *err)
{
	if (!it)
		return FR_ERR(err, FR_INVALID, "iterator is NULL");
	return titer_next(it->ti, err);
}

fr_status fr_iter_seek(fr_iter *it, const void *key, size_t key_len, fr_error *err)
{
	if (!it)
		return FR_ERR(err, FR_INVALID, "iterator is NULL");
	fr_status rc = api_check_key(key, key_len, err);
	if (rc)
		return rc;
	struct tkey tk;
	if ((rc = tkey_make(&tk, it->ks, key, key_len, err)))
		return rc;
	rc = titer_seek(it->ti, tk.p, tk.len, err);
	tkey_fini(&tk);
	return rc;
}

const void *fr_iter_key(const fr_iter *it, size_t *len)
{
	size_t n;
	const uint8_t *k = titer_key(it->ti, &n);
	if (len)
		*len = n - KS_PREFIX_LEN;
	return k + KS_PREFIX_LEN;
}

const void *fr_iter_value(const fr_iter *it, size_t *len)
{
	size_t n;
	const uint8_t *v = titer_value(it->ti, &n);
	if (len)
		*len = n;
	return v;
}
