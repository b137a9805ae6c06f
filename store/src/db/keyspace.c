/* SPDX-License-Identifier: MIT */
/*
 * keyspace.c - the keyspace catalog and keyspace handles.
 *
 * The catalog is tree 0, keyspace 0 (fs/SCHEMA-like layout in FORMAT.md §6):
 *   'k' name          -> u32 ks_id, u32 tree_id           (a keyspace)
 *   'T' be32 tree_id  -> u8 shared, lenbytes tree name, table options (a tree)
 *   't' name          -> u32 tree_id                      (a shared tree by name)
 *   'n'               -> u32 next_ks_id, u32 next_tree_id (id counters)
 * Every key of keyspace N in its tree starts with N as 4 big-endian bytes, so dropping a
 * keyspace is one range tombstone [N, N+1) and a catalog delete, committed in one batch.
 */
#include <string.h>

#include "base/alloc.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/ikey.h"
#include "db/db.h"
#include "db/iter_int.h"
#include "db/write.h"
#include "memtable/memtable.h"

#define KS_ID_MAX 0xfffffff0u

void ks_prefix(uint32_t ks_id, uint8_t out[KS_PREFIX_LEN])
{
	enc_be32(out, ks_id);
}

/* catalog key: prefix 0, tag, then payload */
static size_t cat_key(uint8_t *out, char tag, const void *p, size_t n)
{
	ks_prefix(CATALOG_KS, out);
	out[KS_PREFIX_LEN] = (uint8_t)tag;
	if (n)
		memcpy(out + KS_PREFIX_LEN + 1, p, n);
	return KS_PREFIX_LEN + 1 + n;
}

static uint64_t db_visible(fr_db *db)
{
	/* pairs with the release store in leader_write */
	return atomic_load_acq_u64(&db->visible_seqno);
}

/* Reads catalog entry (tag, payload) at snap. */
static fr_status cat_get(fr_db *db, char tag, const void *p, size_t n, uint64_t snap, void **val,
			 size_t *vlen, fr_error *err)
{
	uint8_t key[KS_PREFIX_LEN + 1 + FR_KEYSPACE_NAME_MAX + 8];
	size_t klen = cat_key(key, tag, p, n);
	return tree_get_value(db, db->catalog, key, klen, snap, val, vlen, err);
}

/* Decodes a 'k' record (v, n): the keyspace's id and its tree's. Frees v. */
static fr_status ks_record_decode(void *v, size_t n, uint32_t *ks_id, uint32_t *tree_id,
				  fr_error *err)
{
	if (n < 8) {
		fr_free(v);
		return FR_CORRUPT(err, "catalog", 0, "bad keyspace record");
	}
	*ks_id = dec_u32(v);
	*tree_id = dec_u32((uint8_t *)v + 4);
	fr_free(v);
	return FR_OK;
}

/* The 'k' record of keyspace `name` at snap: its id and its tree's. */
static fr_status cat_get_ks(fr_db *db, const char *name, uint64_t snap, uint32_t *ks_id,
			    uint32_t *tree_id, fr_error *err)
{
	void *v;
	size_t n;
	fr_status rc = cat_get(db, 'k', name, strlen(name), snap, &v, &n, err);
	return rc ? rc : ks_record_decode(v, n, ks_id, tree_id, err);
}

/* ---- tree options: the tail of a 'T' record (FORMAT.md §6) ---- */

#define SST_OPTS_LEN 13
#define POLICY_LEN 33
#define OPTS_EXT_VERSION 1
/* the version-1 record (the keyspace's table options), then the extension */
#define OPTS_LEN (SST_OPTS_LEN + 1 + POLICY_LEN + LEVEL_CNT * SST_OPTS_LEN)
/* then, optionally, the blob extension: u8 version, u32 threshold, u64 file target, u8 flags
 * (bit 0: compress), u32 GC stale percentage (FORMAT.md §6) */
#define BLOB_OPTS_VERSION 1
#define BLOB_OPTS_LEN 18

void tree_opts_default(struct tree_opts *o)
{
	for (int l = 0; l < LEVEL_CNT; l++)
		sst_options_default(&o->level[l]);
	compact_policy_default(&o->policy);
	o->blob = (struct tree_blob_opts){.threshold = 0, .file_target = BLOB_FILE_TARGET_DEFAULT,
					  .compress = true,
					  .gc_stale_pct = BLOB_GC_STALE_PCT_DEFAULT};
}

static void sst_opts_encode(uint8_t *out, const struct sst_options *o)
{
	enc_u32(out, o->block_size);
	enc_u32(out + 4, o->restart_interval);
	enc_u32(out + 8, o->bloom_bits_per_key);
	out[12] = (o->compress ? 1 : 0) | (o->hash_index ? 2 : 0);
}

static bool sst_opts_decode(const uint8_t *p, struct sst_options *o)
{
	o->block_size = dec_u32(p);
	o->restart_interval = dec_u32(p + 4);
	o->bloom_bits_per_key = dec_u32(p + 8);
	o->compress = (p[12] & 1) != 0;
	o->hash_index = (p[12] & 2) != 0;
	return o->block_size >= 64 && o->restart_interval >= 1 && o->bloom_bits_per_key <= 100 &&
	       p[12] <= 3;
}

static size_t opts_encode(uint8_t *out, const struct tree_opts *o)
{
	const struct compact_policy *p = &o->policy;
	size_t n = 0;
	sst_opts_encode(out, &o->level[0]);
	n += SST_OPTS_LEN;
	out[n++] = OPTS_EXT_VERSION;
	out[n++] = (uint8_t)p->strategy;
	enc_u32(out + n, p->l0_trigger);
	enc_u32(out + n + 4, p->level_ratio);
	enc_u64(out + n + 8, p->table_target_size);
	enc_u64(out + n + 16, p->fifo_limit_bytes);
	enc_u64(out + n + 24, p->fifo_ttl_s);
	n += POLICY_LEN - 1;
	for (int l = 0; l < LEVEL_CNT; l++, n += SST_OPTS_LEN)
		sst_opts_encode(out + n, &o->level[l]);
	/* a tree without KV separation keeps the record older readers know */
	if (!o->blob.threshold)
		return n;
	out[n] = BLOB_OPTS_VERSION;
	enc_u32(out + n + 1, o->blob.threshold);
	enc_u64(out + n + 5, o->blob.file_target);
	out[n + 13] = o->blob.compress ? 1 : 0;
	enc_u32(out + n + 14, o->blob.gc_stale_pct);
	return n + BLOB_OPTS_LEN;
}

static bool blob_opts_valid(const struct tree_blob_opts *b)
{
	return b->file_target >= 4096 && b->gc_stale_pct <= 100;
}

static bool policy_valid(const struct compact_policy *p)
{
	return p->strategy <= CS_FIFO && p->l0_trigger >= 1 && p->l0_trigger < L0_STOP &&
	       p->level_ratio >= 2 && p->level_ratio <= 1000 && p->table_target_size >= 4096;
}

/* A record of 13 bytes is the version-1 form: table options only, the rest default. */
static fr_status opts_decode(const uint8_t *p, size_t n, struct tree_opts *o)
{
	tree_opts_default(o);
	if (n < SST_OPTS_LEN || !sst_opts_decode(p, &o->level[0]))
		return FR_CORRUPTION;
	for (int l = 1; l < LEVEL_CNT; l++)
		o->level[l] = o->level[0];
	if (n == SST_OPTS_LEN)
		return FR_OK;
	if ((n != OPTS_LEN && n != OPTS_LEN + BLOB_OPTS_LEN) || p[SST_OPTS_LEN] != OPTS_EXT_VERSION)
		return FR_CORRUPTION;
	const uint8_t *q = p + SST_OPTS_LEN + 1;
	struct compact_policy *pol = &o->policy;
	pol->strategy = (enum compact_strategy)q[0];
	pol->l0_trigger = dec_u32(q + 1);
	pol->level_ratio = dec_u32(q + 5);
	pol->table_target_size = dec_u64(q + 9);
	pol->fifo_limit_bytes = dec_u64(q + 17);
	pol->fifo_ttl_s = dec_u64(q + 25);
	if (q[0] > CS_FIFO || !policy_valid(pol))
		return FR_CORRUPTION;
	q += POLICY_LEN;
	for (int l = 0; l < LEVEL_CNT; l++, q += SST_OPTS_LEN)
		if (!sst_opts_decode(q, &o->level[l]))
			return FR_CORRUPTION;
	if (n == OPTS_LEN)
		return FR_OK; /* written before KV separation: off */
	struct tree_blob_opts *b = &o->blob;
	if (q[0] != BLOB_OPTS_VERSION || q[13] > 1)
		return FR_CORRUPTION;
	b->threshold = dec_u32(q + 1);
	b->file_target = dec_u64(q + 5);
	b->compress = q[13] != 0;
	b->gc_stale_pct = dec_u32(q + 14);
	return blob_opts_valid(b) ? FR_OK : FR_CORRUPTION;
}

/* The tree options a keyspace's options ask for, with every default and inheritance
 * resolved. */
static void tree_opts_from(struct tree_opts *t, const fr_keyspace_options *o)
{
	tree_opts_default(t);
	if (!o)
		return;
	struct sst_options base = t->level[0];
	if (o->block_size)
		base.block_size = o->block_size;
	if (o->restart_interval)
		base.restart_interval = o->restart_interval;
	base.bloom_bits_per_key = o->bloom_bits_per_key;
	base.compress = o->compress;
	base.hash_index = o->hash_index;
	for (int l = 0; l < LEVEL_CNT; l++) {
		const fr_level_options *lo = &o->level[l];
		struct sst_options *s = &t->level[l];
		*s = base;
		if (lo->block_size)
			s->block_size = lo->block_size;
		if (lo->restart_interval)
			s->restart_interval = lo->restart_interval;
		if (lo->bloom_bits_per_key >= 0)
			s->bloom_bits_per_key = (uint32_t)lo->bloom_bits_per_key;
		if (lo->compress >= 0)
			s->compress = lo->compress != 0;
		if (lo->hash_index >= 0)
			s->hash_index = lo->hash_index != 0;
	}
	struct compact_policy *p = &t->policy;
	p->strategy = (enum compact_strategy)o->compaction;
	if (o->l0_trigger)
		p->l0_trigger = o->l0_trigger;
	if (o->level_ratio)
		p->level_ratio = o->level_ratio;
	if (o->table_target_size)
		p->table_target_size = o->table_target_size;
	if (o->fifo_limit_bytes)
		p->fifo_limit_bytes = o->fifo_limit_bytes;
	p->fifo_ttl_s = o->fifo_ttl_seconds;
	t->blob.threshold = o->blob_threshold;
	if (o->blob_file_target)
		t->blob.file_target = o->blob_file_target;
	t->blob.compress = o->blob_compress;
	t->blob.gc_stale_pct = o->blob_gc_stale_pct;
}

fr_status ks_options_check(const fr_keyspace_options *o, fr_error *err)
{
	if (!o)
		return FR_OK;
	struct tree_opts t;
	tree_opts_from(&t, o);
	if ((unsigned)o->compaction > FR_COMPACTION_FIFO || !policy_valid(&t.policy))
		return FR_ERR(err, FR_INVALID, "keyspace options: bad compaction settings");
	if (!blob_opts_valid(&t.blob))
		return FR_ERR(err, FR_INVALID,
			      "keyspace options: blob_file_target below 4096 or blob_gc_stale_pct "
			      "above 100");
	for (int l = 0; l < LEVEL_CNT; l++) {
		const struct sst_options *s = &t.level[l];
		if (s->block_size < 64 || s->block_size > (64u << 20) || s->restart_interval < 1 ||
		    s->bloom_bits_per_key > 100 || o->level[l].compress > 1 ||
		    o->level[l].compress < -1 || o->level[l].bloom_bits_per_key < -1 ||
		    o->level[l].hash_index < -1 || o->level[l].hash_index > 1)
			return FR_ERR(err, FR_INVALID, "keyspace options: bad table options of L%d",
				      l);
	}
	return FR_OK;
}

/* Loads tree t's options from its 'T' record. */
static fr_status tree_load_options(fr_db *db, struct tree *t, uint64_t snap, fr_error *err)
{
	uint8_t id[4];
	enc_be32(id, t->id);
	void *v;
	size_t n;
	fr_status rc = cat_get(db, 'T', id, 4, snap, &v, &n, err);
	if (rc == FR_NOT_FOUND)
		return FR_OK; /* the catalog itself, or a tree known only to the manifest */
	if (rc)
		return rc;
	const uint8_t *p = v, *end = p + n, *name;
	size_t name_len;
	struct tree_opts o;
	if (n < 1 || (p++, !dec_lenbytes(&p, end, &name, &name_len)) ||
	    opts_decode(p, (size_t)(end - p), &o)) {
		fr_free(v);
		return FR_CORRUPT(err, "catalog", 0, "bad tree record");
	}
	fr_free(v);
	fr_mutex_lock(&t->mu);
	t->opts = o;
	fr_mutex_unlock(&t->mu);
	return FR_OK;
}

fr_status ks_load_tree_options(fr_db *db, fr_error *err)
{
	uint64_t snap = db->seqno;
	for (size_t i = 1; i < db->tree_cap; i++) {
		struct tree *t = db->trees[i];
		if (!t)
			continue;
		fr_status rc = tree_load_options(db, t, snap, err);
		if (rc)
			return rc;
	}
	void *v;
	size_t n;
	fr_status rc = cat_get(db, 'n', NULL, 0, snap, &v, &n, err);
	if (rc == FR_NOT_FOUND)
		return FR_OK;
	if (rc)
		return rc;
	if (n < 8) {
		fr_free(v);
		return FR_CORRUPT(err, "catalog", 0, "bad id counters");
	}
	db->next_ks_id = dec_u32(v);
	db->next_tree_id = dec_u32((uint8_t *)v + 4);
	fr_free(v);
	return FR_OK;
}

/* ---- handle table: open addressing on the name, under db->cat_mu ---- */

static size_t name_hash(const char *s)
{
	size_t h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static fr_keyspace **tab_slot(fr_db *db, const char *name)
{
	size_t mask = db->ks_tab_cap - 1;
	for (size_t h = name_hash(name) & mask;; h = (h + 1) & mask) {
		fr_keyspace **s = &db->ks_tab[h];
		if (!*s || !strcmp((*s)->name, name))
			return s;
	}
}

static fr_status tab_insert(fr_db *db, fr_keyspace *ks)
{
	if ((db->ks_tab_cnt + 1) * 2 > db->ks_tab_cap) {
		size_t cap = db->ks_tab_cap ? db->ks_tab_cap * 2 : 64;
		fr_keyspace **old = db->ks_tab;
		size_t old_cap = db->ks_tab_cap;
		db->ks_tab = fr_calloc(cap, sizeof(*db->ks_tab));
		if (!db->ks_tab) {
			db->ks_tab = old;
			return FR_NOMEM;
		}
		db->ks_tab_cap = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i])
				*tab_slot(db, old[i]->name) = old[i];
		fr_free(old);
	}
	*tab_slot(db, ks->name) = ks;
	db->ks_tab_cnt++;
	return FR_OK;
}

/* The table's handle of name, or NULL. */
static fr_keyspace *tab_find(fr_db *db, const char *name)
{
	return db->ks_tab_cap ? *tab_slot(db, name) : NULL;
}

/* Empties slot s (a tab_slot holding a handle) and re-inserts the rest of its probe run. */
static void tab_remove(fr_db *db, fr_keyspace **s)
{
	*s = NULL;
	db->ks_tab_cnt--;
	size_t mask = db->ks_tab_cap - 1;
	for (size_t h = ((size_t)(s - db->ks_tab) + 1) & mask; db->ks_tab[h]; h = (h + 1) & mask) {
		fr_keyspace *x = db->ks_tab[h];
		db->ks_tab[h] = NULL;
		*tab_slot(db, x->name) = x;
	}
}

static void ks_free(fr_keyspace *ks)
{
	fr_free(ks->name);
	fr_free(ks);
}

void ks_unref(fr_keyspace *ks)
{
	if (!ks)
		return;
	fr_db *db = ks->db;
	fr_mutex_lock(&db->cat_mu);
	bool last = --ks->refs == 0;
	fr_mutex_unlock(&db->cat_mu);
	if (last)
		ks_free(ks);
}

void ks_table_free(fr_db *db)
{
	for (size_t i = 0; i < db->ks_tab_cap; i++)
		if (db->ks_tab[i])
			ks_unref(db->ks_tab[i]);
	fr_free(db->ks_tab);
	db->ks_tab = NULL;
	db->ks_tab_cap = db->ks_tab_cnt = 0;
}

static fr_status name_check(const char *name, fr_error *err)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > FR_KEYSPACE_NAME_MAX)
		return FR_ERR(err, FR_INVALID, "keyspace name must be 1 to %d bytes",
			      FR_KEYSPACE_NAME_MAX);
	return FR_OK;
}

/* Builds a handle from the catalog record of name; FR_NOT_FOUND when absent. */
static fr_status ks_load(fr_db *db, const char *name, fr_keyspace **out, fr_error *err)
{
	uint32_t ks_id = 0, tree_id = 0; /* set when found; quiets -Wmaybe-uninitialized */
	fr_status rc = cat_get_ks(db, name, db_visible(db), &ks_id, &tree_id, err);
	if (rc)
		return rc;
	bool fresh = false;
	struct tree *t;
	fr_mutex_lock(&db->mu);
	fresh = !(tree_id < db->tree_cap && db->trees[tree_id]);
	fr_mutex_unlock(&db->mu);
	rc = tree_get(db, tree_id, true, &t);
	if (rc)
		return FR_ERR(err, rc, "tree %u", tree_id);
	if (fresh && (rc = tree_load_options(db, t, db_visible(db), err)))
		return rc;
	fr_keyspace *ks = fr_calloc(1, sizeof(*ks));
	if (!ks || !(ks->name = fr_strdup(name))) {
		fr_free(ks);
		return FR_ERR(err, FR_NOMEM, "keyspace handle");
	}
	ks->db = db;
	ks->ks_id = ks_id;
	ks->tree = t;
	ks_prefix(ks_id, ks->prefix);
	*out = ks;
	return FR_OK;
}

fr_status ks_open(fr_db *db, const char *name, const fr_keyspace_options *o, bool create,
		  fr_keyspace **out, fr_error *err)
{
	fr_status rc = name_check(name, err);
	if (rc)
		return rc;
	bool created = false;
	for (;;) {
		fr_mutex_lock(&db->cat_mu);
		fr_keyspace *ks = tab_find(db, name);
		if (ks) {
			ks->refs++;
			fr_mutex_unlock(&db->cat_mu);
			*out = ks;
			return FR_OK;
		}
		uint64_t gen = db->ks_drop_gen;
		fr_mutex_unlock(&db->cat_mu);
		rc = ks_load(db, name, &ks, err);
		if (rc == FR_NOT_FOUND && create && !created) {
			fr_batch *b;
			if (fr_batch_new(db, &b))
				return FR_ERR(err, FR_NOMEM, "batch");
			rc = fr_batch_create_keyspace(b, name, o);
			if (!rc)
				rc = db_commit(db, b, db->opts.default_persist, NULL, err);
			fr_batch_free(b);
			if (rc)
				return rc;
			created = true;
			continue;
		}
		if (rc)
			return rc == FR_NOT_FOUND ? FR_ERR(err, rc, "no keyspace %s", name) : rc;
		fr_mutex_lock(&db->cat_mu);
		fr_keyspace *other = tab_find(db, name);
		if (other) { /* another thread loaded it first */
			other->refs++;
			fr_mutex_unlock(&db->cat_mu);
			ks_free(ks);
			*out = other;
			return FR_OK;
		}
		/* A drop made visible since the table was looked at may have deleted the record
		 * just read (read before the drop was visible) and found no handle to forget:
		 * entering this one would keep a deleted keyspace open by name. Read again. */
		if (db->ks_drop_gen != gen) {
			fr_mutex_unlock(&db->cat_mu);
			ks_free(ks);
			continue;
		}
		ks->refs = 2; /* the table's and the caller's */
		rc = tab_insert(db, ks);
		fr_mutex_unlock(&db->cat_mu);
		if (rc) {
			ks_free(ks);
			return FR_ERR(err, rc, "keyspace table");
		}
		*out = ks;
		return FR_OK;
	}
}

fr_status ks_exists(fr_db *db, const char *name, bool *out, fr_error *err)
{
	fr_status rc = name_check(name, err);
	if (rc)
		return rc;
	rc = cat_get(db, 'k', name, strlen(name), db_visible(db), NULL, NULL, err);
	if (rc && rc != FR_NOT_FOUND)
		return rc;
	*out = rc == FR_OK;
	return FR_OK;
}

fr_status ks_list(fr_db *db, fr_keyspace_list_fn fn, void *ctx, fr_error *err)
{
	uint8_t lo[KS_PREFIX_LEN + 1], hi[KS_PREFIX_LEN + 1];
	cat_key(lo, 'k', NULL, 0);
	cat_key(hi, 'k' + 1, NULL, 0);
	struct titer *it;
	fr_status rc = titer_open(db, db->catalog, lo, sizeof(lo), hi, sizeof(hi), false,
				  db_visible(db), &it, err);
	if (rc)
		return rc;
	char name[FR_KEYSPACE_NAME_MAX + 1];
	for (rc = titer_first(it, err); !rc && titer_valid(it); rc = titer_next(it, err)) {
		size_t klen;
		const uint8_t *k = titer_key(it, &klen);
		size_t n = klen - sizeof(lo);
		if (n > FR_KEYSPACE_NAME_MAX)
			n = FR_KEYSPACE_NAME_MAX;
		memcpy(name, k + sizeof(lo), n);
		name[n] = 0;
		if (fn(ctx, name))
			break;
	}
	titer_close(it);
	return rc;
}

/* ---- resolution by the commit leader ---- */

/* The newest write of catalog key k among lo's operations, or NULL. */
static const struct batch_op *lo_find_cat(const struct leader_ops *lo, const uint8_t *k,
					  size_t klen)
{
	for (size_t i = lo->cnt; i-- > 0;) {
		const struct batch_op *o = &lo->ops[i];
		if (o->tree_id == CATALOG_TREE && o->key_len == klen && !memcmp(o->key, k, klen))
			return o;
	}
	return NULL;
}

/* The newest write of catalog key k that the group has not applied yet: of the batch being
 * resolved (lo, its operations so far), then of the earlier batches, the last first. NULL when
 * none. */
static const struct batch_op *cat_pending(const struct leader_ops *lo,
					  const struct leader_ops *prev, size_t prev_cnt,
					  const uint8_t *k, size_t klen)
{
	const struct batch_op *o = lo_find_cat(lo, k, klen);
	for (size_t i = prev_cnt; !o && i-- > 0;)
		o = lo_find_cat(&prev[i], k, klen);
	return o;
}

/* Reads catalog entry (tag, payload) as the commit leader must: as the group's pending writes
 * (cat_pending) leave it, else as committed before the group (db->seqno). Only the leader
 * writes the catalog, and only with puts and deletes. */
static fr_status cat_get_leader(fr_db *db, const struct leader_ops *lo,
				const struct leader_ops *prev, size_t prev_cnt, char tag,
				const void *p, size_t n, void **val, size_t *vlen, fr_error *err)
{
	uint8_t key[KS_PREFIX_LEN + 1 + FR_KEYSPACE_NAME_MAX + 8];
	size_t klen = cat_key(key, tag, p, n);
	const struct batch_op *o = cat_pending(lo, prev, prev_cnt, key, klen);
	if (!o)
		return tree_get_value(db, db->catalog, key, klen, db->seqno, val, vlen, err);
	if (o->op != BOP_PUT)
		return FR_NOT_FOUND;
	if (val) {
		/* catalog values are never empty: no zero-byte allocation */
		if (!(*val = fr_memdup(o->val, o->val_len)))
			return FR_ERR(err, FR_NOMEM, "catalog entry");
		*vlen = o->val_len;
	}
	return FR_OK;
}

bool ks_is_dropped_in_group(const fr_keyspace *ks, const struct leader_ops *lo,
			    const struct leader_ops *prev, size_t prev_cnt)
{
	uint8_t key[KS_PREFIX_LEN + 1 + FR_KEYSPACE_NAME_MAX];
	size_t klen = cat_key(key, 'k', ks->name, strlen(ks->name));
	const struct batch_op *o = cat_pending(lo, prev, prev_cnt, key, klen);
	return o && (o->op != BOP_PUT || o->val_len < 4 || dec_u32(o->val) != ks->ks_id);
}

static fr_status put_counters(fr_db *db, struct leader_ops *lo)
{
	uint8_t key[KS_PREFIX_LEN + 1], val[8];
	size_t klen = cat_key(key, 'n', NULL, 0);
	enc_u32(val, db->next_ks_id);
	enc_u32(val + 4, db->next_tree_id);
	return lo_add(lo, BOP_PUT, CATALOG_TREE, key, klen, val, sizeof(val), true);
}

static fr_status put_tree_record(struct leader_ops *lo, uint32_t tree_id, const char *tree_name,
				 const struct tree_opts *so)
{
	uint8_t key[KS_PREFIX_LEN + 1 + 4];
	uint8_t val[1 + VARINT_MAX + FR_KEYSPACE_NAME_MAX + OPTS_LEN + BLOB_OPTS_LEN];
	uint8_t id[4];
	enc_be32(id, tree_id);
	size_t klen = cat_key(key, 'T', id, 4);
	size_t nlen = tree_name ? strlen(tree_name) : 0;
	size_t n = 0;
	val[n++] = tree_name ? 1 : 0;
	n += enc_varint(val + n, nlen);
	memcpy(val + n, tree_name ? tree_name : "", nlen);
	n += nlen;
	n += opts_encode(val + n, so);
	return lo_add(lo, BOP_PUT, CATALOG_TREE, key, klen, val, n, true);
}

fr_status ks_resolve_create(fr_db *db, const char *name, const fr_keyspace_options *o,
			    const char *tree_name, struct leader_ops *lo,
			    const struct leader_ops *prev, size_t prev_cnt, fr_error *err)
{
	fr_status rc = cat_get_leader(db, lo, prev, prev_cnt, 'k', name, strlen(name), NULL, NULL,
				      err);
	if (rc != FR_NOT_FOUND)
		return rc; /* exists (FR_OK: nothing to do) or failed */
	if (db->next_ks_id >= KS_ID_MAX || db->next_tree_id >= KS_ID_MAX)
		return FR_ERR(err, FR_INVALID, "keyspace ids exhausted");
	struct tree_opts so;
	tree_opts_from(&so, o);
	uint32_t tree_id = 0;
	bool new_tree = true;
	if (tree_name) {
		void *v;
		size_t n;
		rc = cat_get_leader(db, lo, prev, prev_cnt, 't', tree_name, strlen(tree_name), &v,
				    &n, err);
		if (rc == FR_OK) {
			if (n < 4) {
				fr_free(v);
				return FR_CORRUPT(err, "catalog", 0, "bad shared tree record");
			}
			tree_id = dec_u32(v);
			fr_free(v);
			new_tree = false;
		} else if (rc != FR_NOT_FOUND) {
			return rc;
		}
	}
	if (new_tree) {
		tree_id = db->next_tree_id++;
		rc = put_tree_record(lo, tree_id, tree_name, &so);
		if (!rc && tree_name) {
			uint8_t key[KS_PREFIX_LEN + 1 + FR_KEYSPACE_NAME_MAX], val[4];
			size_t klen = cat_key(key, 't', tree_name, strlen(tree_name));
			enc_u32(val, tree_id);
			rc = lo_add(lo, BOP_PUT, CATALOG_TREE, key, klen, val, 4, true);
		}
		struct tree *t;
		if (!rc && !(rc = tree_get(db, tree_id, true, &t))) {
			fr_mutex_lock(&t->mu);
			t->opts = so;
			fr_mutex_unlock(&t->mu);
		}
		if (rc)
			return FR_ERR(err, rc, "creating tree");
	}
	uint8_t key[KS_PREFIX_LEN + 1 + FR_KEYSPACE_NAME_MAX], val[8];
	size_t klen = cat_key(key, 'k', name, strlen(name));
	enc_u32(val, db->next_ks_id++);
	enc_u32(val + 4, tree_id);
	rc = lo_add(lo, BOP_PUT, CATALOG_TREE, key, klen, val, 8, true);
	if (!rc)
		rc = put_counters(db, lo);
	return rc ? FR_ERR(err, rc, "creating keyspace") : FR_OK;
}

/* Whether keyspace prefix [lo_k, hi_k) of tree tree_id holds no live key at snap. */
static fr_status ks_range_empty(fr_db *db, uint32_t tree_id, const uint8_t *lo_k,
				const uint8_t *hi_k, uint64_t snap, bool *out, fr_error *err)
{
	struct tree *t;
	struct titer *it;
	*out = false;
	fr_status rc = tree_get(db, tree_id, false, &t);
	if (rc == FR_NOT_FOUND) {
		*out = true;
		return FR_OK;
	}
	if (rc)
		return FR_ERR(err, rc, "tree %u", tree_id);
	rc = titer_open(db, t, lo_k, KS_PREFIX_LEN, hi_k, KS_PREFIX_LEN, false, snap, &it, err);
	if (rc)
		return rc;
	titer_set_keys_only(it);
	rc = titer_first(it, err);
	if (!rc)
		*out = !titer_valid(it);
	titer_close(it);
	return rc;
}

/* Whether an op of the group's earlier batches writes under keyspace prefix pfx of tree_id:
 * they are not applied yet when the group's later batches are resolved. */
static bool group_writes_prefix(const struct leader_ops *prev, size_t prev_cnt, uint32_t tree_id,
				const uint8_t *pfx)
{
	for (size_t i = 0; i < prev_cnt; i++)
		for (size_t j = 0; j < prev[i].cnt; j++) {
			const struct batch_op *o = &prev[i].ops[j];
			if (o->tree_id == tree_id && o->key_len >= KS_PREFIX_LEN &&
			    !memcmp(o->key, pfx, KS_PREFIX_LEN))
				return true;
		}
	return false;
}

fr_status ks_resolve_drop(fr_db *db, const char *name, struct leader_ops *lo,
			  const struct leader_ops *prev, size_t prev_cnt, fr_error *err)
{
	uint32_t ks_id = 0, tree_id = 0; /* set when found; quiets -Wmaybe-uninitialized */
	void *v;
	size_t n;
	fr_status rc = cat_get_leader(db, lo, prev, prev_cnt, 'k', name, strlen(name), &v, &n, err);
	if (rc == FR_NOT_FOUND)
		return FR_OK;
	if (rc || (rc = ks_record_decode(v, n, &ks_id, &tree_id, err)))
		return rc;
	uint8_t key[KS_PREFIX_LEN + 1 + FR_KEYSPACE_NAME_MAX];
	size_t klen = cat_key(key, 'k', name, strlen(name));
	uint8_t lo_k[KS_PREFIX_LEN], hi_k[KS_PREFIX_LEN];
	ks_prefix(ks_id, lo_k);
	ks_prefix(ks_id + 1, hi_k);
	/* An empty keyspace needs no range tombstone: ids are never reused, so whatever point
	 * tombstones its prefix holds stay unreachable. One would cost every point read of the
	 * tree a comparison until it is flushed and compacted away, and a tree shared by a
	 * keyspace per directory drops them by the thousand. Writes of the group's earlier
	 * batches are not applied yet, so they count as well, and so do this batch's earlier
	 * ones: the tombstone makes the batch drop them (lo_dedup). */
	bool empty = false;
	rc = ks_range_empty(db, tree_id, lo_k, hi_k, db->seqno, &empty, err);
	if (rc)
		return rc;
	if (empty && (group_writes_prefix(lo, 1, tree_id, lo_k) ||
		      group_writes_prefix(prev, prev_cnt, tree_id, lo_k)))
		empty = false;
	rc = lo_add(lo, BOP_DEL, CATALOG_TREE, key, klen, NULL, 0, true);
	if (!rc && !empty)
		rc = lo_add(lo, BOP_RANGE_DEL, tree_id, lo_k, sizeof(lo_k), hi_k, sizeof(hi_k),
			    true);
	/* without its entry here, the handle of the keyspace would stay open by name after the
	 * drop (ks_after_drop): fail the batch instead, nothing of it is written yet */
	if (!rc) {
		struct lo_drop *d = fr_realloc(lo->dropped, (lo->dropped_cnt + 1) * sizeof(*d));
		if (d)
			lo->dropped = d;
		if (!d || !(d[lo->dropped_cnt].name = fr_strdup(name)))
			rc = FR_NOMEM;
		else
			d[lo->dropped_cnt++].ks_id = ks_id;
	}
	return rc ? FR_ERR(err, rc, "dropping keyspace") : FR_OK;
}

void ks_after_drop(fr_db *db, const char *name, uint32_t ks_id)
{
	fr_mutex_lock(&db->cat_mu);
	fr_keyspace **s = db->ks_tab_cap ? tab_slot(db, name) : NULL;
	fr_keyspace *ks = s ? *s : NULL;
	/* the name may already stand for a keyspace created after the drop (later in the same
	 * batch or group), whose handle an opener loaded once the group was visible */
	if (ks && ks->ks_id == ks_id)
		tab_remove(db, s);
	else
		ks = NULL;
	db->ks_drop_gen++;
	fr_mutex_unlock(&db->cat_mu);
	if (ks) {
		atomic_store_rel_bool(&ks->dropped, true);
		ks_unref(ks);
	}
}
