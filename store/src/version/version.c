/* SPDX-License-Identifier: MIT */
/*
 * version.c - refcounted tables and tree versions, and the level iterator.
 *
 * A table is shared by every version that lists it and by iterators; it frees itself at its
 * last table_unref and, when it was marked obsolete (it left the current version), deletes its
 * file too. Its sst_reader is opened on first use: table_reader takes one of a small set of
 * striped locks (keyed by the table's address), so concurrent first users of one table open
 * the file once, while users of already open tables take no lock at all. The reader is opened
 * with the table's read environment (block cache, file table), and an obsolete table forgets
 * its file in the file table before deleting it.
 *
 * The level iterator walks the tables of one level >= 1 (sorted by key, disjoint) as one
 * sequence, with only one table's iterator open at a time.
 */
#include "version/version.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/log.h"
#include "base/sync.h"
#include "io/ftab.h"
#include "io/io.h"
#include "version/version_int.h"

/* ---- tables ---- */

#define TBL_LOCK_CNT 64
_Static_assert(TBL_LOCK_CNT == 64, "tbl_lock takes the top 6 bits of a hash");

/* Guard table->reader while it is opened (see the file comment); initialised once. */
static struct fr_mutex tbl_locks[TBL_LOCK_CNT];
static pthread_once_t tbl_locks_once = PTHREAD_ONCE_INIT;

static void tbl_locks_init(void)
{
	for (size_t i = 0; i < TBL_LOCK_CNT; i++)
		fr_mutex_init(&tbl_locks[i]);
}

static struct fr_mutex *tbl_lock(const struct table *t)
{
	uint64_t h = (uint64_t)(uintptr_t)t * UINT64_C(0x9e3779b97f4a7c15);

	pthread_once(&tbl_locks_once, tbl_locks_init);
	return &tbl_locks[h >> 58]; /* the top 6 bits: TBL_LOCK_CNT == 64 */
}

fr_status table_new_env(struct fr_io *io, const struct sst_read_env *env, const char *path,
			uint32_t tree_id, const struct sst_meta *m, struct table **out)
{
	struct table *t = fr_calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return FR_NOMEM;
	t->path = fr_strdup(path);
	if (!t->path || sst_meta_copy(&t->meta, m)) {
		fr_free(t->path);
		fr_free(t);
		return FR_NOMEM;
	}
	t->refs = 1;
	t->tree_id = tree_id;
	t->io = io;
	if (env)
		t->env = *env;
	*out = t;
	return FR_OK;
}

fr_status table_new(struct fr_io *io, const char *path, uint32_t tree_id,
		    const struct sst_meta *m, struct table **out)
{
	return table_new_env(io, NULL, path, tree_id, m, out);
}

/* Deletes the file of a table or blob file that left the current version, once its last
 * reference is gone: no descriptor in the file table may keep the deleted file's space. */
static void delete_obsolete(struct fr_io *io, struct ftab *files, uint64_t id, const char *path,
			    const char *what)
{
	fr_error e;
	fr_status rc;

	if (files)
		ftab_forget(files, id);
	rc = io_unlink(io, path, &e);
	if (rc && rc != FR_NOT_FOUND)
		FR_LOG(FR_LOG_WARN, "could not delete obsolete %s: %s", what, e.msg);
}

void table_ref(struct table *t)
{
	atomic_add_u32(&t->refs, 1);
}

void table_unref(struct table *t)
{
	if (!t || atomic_sub_u32(&t->refs, 1) != 0)
		return;
	/* The last reference: nobody else can reach t, so plain reads are fine from here. */
	if (t->reader)
		sst_reader_unref(t->reader);
	/* pairs with the release store in vset_apply's publication; the reader above was the
	 * last to read through the file table */
	if (atomic_load_acq_bool(&t->obsolete))
		delete_obsolete(t->io, t->env.files, t->meta.id, t->path, "table");
	sst_meta_fini(&t->meta);
	fr_free(t->path);
	fr_free(t);
}

fr_status table_reader(struct table *t, struct sst_reader **out, fr_error *err)
{
	/* acquire pairs with the release store below: a reader seen here is fully built */
	struct sst_reader *r = atomic_load_acq_ptr((void *const *)&t->reader);
	fr_status rc = FR_OK;

	*out = NULL;
	if (!r) {
		struct fr_mutex *mu = tbl_lock(t);

		/* Held across the open: whoever waits here wants this very file (or shares the
		 * stripe, rarely), and would otherwise open it a second time. */
		fr_mutex_lock(mu);
		r = t->reader;
		if (!r) {
			rc = sst_reader_open_env(t->io, t->path, t->meta.id, &t->env, &r, err);
			/* an ingested table's seqno lives in the manifest, not in the file */
			if (!rc && t->meta.global_seqno) {
				rc = sst_reader_set_global_seqno(r, t->meta.global_seqno, err);
				if (rc)
					sst_reader_unref(r);
			}
			if (!rc)
				atomic_store_rel_ptr((void **)&t->reader, r);
			else if (rc == FR_NOT_FOUND) /* never "no such key" to a lookup */
				rc = FR_CORRUPT(err, t->path, 0,
						"table of the current version is missing");
		}
		fr_mutex_unlock(mu);
		if (rc)
			return rc;
	}
	sst_reader_ref(r);
	*out = r;
	return FR_OK;
}

/* ---- blob files ---- */

fr_status blob_file_new(struct fr_io *io, struct ftab *files, const char *path, uint32_t tree_id,
			const struct blob_meta *m, struct blob_file **out)
{
	struct blob_file *b = fr_calloc(1, sizeof(*b));

	*out = NULL;
	if (!b)
		return FR_NOMEM;
	b->path = fr_strdup(path);
	if (!b->path) {
		fr_free(b);
		return FR_NOMEM;
	}
	b->refs = 1;
	b->tree_id = tree_id;
	b->meta = *m;
	b->io = io;
	b->files = files;
	*out = b;
	return FR_OK;
}

void blob_file_ref(struct blob_file *b)
{
	atomic_add_u32(&b->refs, 1);
}

void blob_file_unref(struct blob_file *b)
{
	if (!b || atomic_sub_u32(&b->refs, 1) != 0)
		return;
	/* pairs with the release store in vset_apply's publication */
	if (atomic_load_acq_bool(&b->obsolete))
		delete_obsolete(b->io, b->files, b->meta.id, b->path, "blob file");
	fr_free(b->path);
	fr_free(b);
}

void vset_set_read_env(struct vset *vs, const struct sst_read_env *env)
{
	/* apply_mu: no edit is making tables from the old value meanwhile; mu: the tables of the
	 * current versions, and whoever reaches them through vset_current later sees the update */
	fr_mutex_lock(&vs->apply_mu);
	fr_mutex_lock(&vs->mu);
	memset(&vs->read_env, 0, sizeof(vs->read_env));
	if (env)
		vs->read_env = *env;
	for (size_t i = 0; i < vs->tree_cnt; i++) {
		struct tree_version *v = vs->trees[i];

		for (size_t l = 0; l < LEVEL_CNT; l++)
			for (size_t k = 0; k < v->level_cnt[l]; k++)
				v->levels[l][k]->env = vs->read_env;
		for (size_t k = 0; k < v->blob_cnt; k++)
			v->blobs[k]->files = vs->read_env.files;
	}
	fr_mutex_unlock(&vs->mu);
	fr_mutex_unlock(&vs->apply_mu);
}

/* ---- tree versions ---- */

/* Handed out by vset_current for an unknown tree when even an empty version cannot be
 * allocated; never freed (tv_unref ignores it). */
static struct tree_version tv_empty_static = { .refs = 1, .tree_id = UINT32_MAX };

struct tree_version *tv_new(uint32_t tree_id)
{
	struct tree_version *v = fr_calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->refs = 1;
	v->tree_id = tree_id;
	return v;
}

struct tree_version *tv_empty_fallback(void)
{
	return &tv_empty_static;
}

void tv_ref(struct tree_version *v)
{
	if (v != &tv_empty_static)
		atomic_add_u32(&v->refs, 1);
}

void tv_unref(struct tree_version *v)
{
	if (!v || v == &tv_empty_static || atomic_sub_u32(&v->refs, 1) != 0)
		return;
	for (size_t l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v->level_cnt[l]; i++)
			table_unref(v->levels[l][i]);
		fr_free(v->levels[l]);
	}
	for (size_t i = 0; i < v->blob_cnt; i++)
		blob_file_unref(v->blobs[i]);
	fr_free(v->blobs);
	fr_free(v);
}

uint64_t tv_table_bytes(const struct tree_version *v)
{
	uint64_t n = 0;

	for (size_t l = 0; l < LEVEL_CNT; l++)
		for (size_t i = 0; i < v->level_cnt[l]; i++)
			n += v->levels[l][i]->meta.file_size;
	return n;
}

size_t tv_table_cnt(const struct tree_version *v)
{
	size_t n = 0;

	for (size_t l = 0; l < LEVEL_CNT; l++)
		n += v->level_cnt[l];
	return n;
}

fr_status tv_files_each(const struct tree_version *v, tv_file_fn fn, void *ctx, fr_error *err)
{
	char rel[64];

	for (size_t l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v->level_cnt[l]; i++) {
			const struct table *t = v->levels[l][i];
			fr_status rc;

			snprintf(rel, sizeof(rel), TABLES_SUBDIR "/%" PRIu64 ".sst", t->meta.id);
			rc = fn(ctx, t->path, rel, t->meta.file_size, err);
			if (rc)
				return rc;
		}
	}
	for (size_t i = 0; i < v->blob_cnt; i++) {
		const struct blob_file *b = v->blobs[i];
		fr_status rc;

		snprintf(rel, sizeof(rel), BLOBS_SUBDIR "/%" PRIu64 ".blob", b->meta.id);
		rc = fn(ctx, b->path, rel, b->meta.file_size, err);
		if (rc)
			return rc;
	}
	return FR_OK;
}

size_t tv_blob_index(const struct tree_version *v, uint64_t id)
{
	size_t lo = 0, hi = v->blob_cnt;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->blobs[mid]->meta.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->blob_cnt && v->blobs[lo]->meta.id == id ? lo : v->blob_cnt;
}

struct blob_file *tv_blob(const struct tree_version *v, uint64_t id)
{
	size_t k = tv_blob_index(v, id);

	return k < v->blob_cnt ? v->blobs[k] : NULL;
}

uint64_t tv_blob_live_bytes(const struct tree_version *v, uint64_t id)
{
	uint64_t n = 0;

	for (size_t l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v->level_cnt[l]; i++) {
			const struct sst_meta *m = &v->levels[l][i]->meta;

			for (size_t r = 0; r < m->blob_ref_cnt; r++)
				if (m->blob_refs[r].file_id == id)
					n += m->blob_refs[r].bytes;
		}
	}
	return n;
}

/* Unreferenced value bytes of b, given the bytes v's tables refer to. */
static uint64_t stale_of(const struct blob_file *b, uint64_t live)
{
	return live >= b->meta.value_bytes ? 0 : b->meta.value_bytes - live;
}

fr_status tv_blob_live_all(const struct tree_version *v, uint64_t **out)
{
	uint64_t *live = fr_calloc(v->blob_cnt ? v->blob_cnt : 1, sizeof(*live));

	*out = NULL;
	if (!live)
		return FR_NOMEM;
	/* one pass over the tables' references, each found by binary search */
	for (size_t l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v->level_cnt[l]; i++) {
			const struct sst_meta *m = &v->levels[l][i]->meta;

			for (size_t r = 0; r < m->blob_ref_cnt; r++) {
				size_t k = tv_blob_index(v, m->blob_refs[r].file_id);

				if (k < v->blob_cnt)
					live[k] += m->blob_refs[r].bytes;
			}
		}
	}
	*out = live;
	return FR_OK;
}

void tv_blob_stats(const struct tree_version *v, uint64_t *cnt, uint64_t *bytes,
		   uint64_t *stale)
{
	uint64_t *live = NULL;

	*cnt = v->blob_cnt;
	*bytes = *stale = 0;
	if (v->blob_cnt)
		tv_blob_live_all(v, &live);
	for (size_t i = 0; i < v->blob_cnt; i++) {
		const struct blob_file *b = v->blobs[i];

		*bytes += b->meta.file_size;
		*stale += stale_of(b, live ? live[i] : tv_blob_live_bytes(v, b->meta.id));
	}
	fr_free(live);
}

bool tv_blob_live_is_stale(const struct blob_file *b, uint64_t live, uint32_t stale_pct)
{
	if (!stale_pct || !b->meta.value_bytes)
		return false;
	uint64_t stale = stale_of(b, live);
	/* stale / value_bytes > pct / 100, without overflow for any file size */
	return (double)stale * 100.0 > (double)stale_pct * (double)b->meta.value_bytes;
}

bool tv_blob_is_stale(const struct tree_version *v, const struct blob_file *b,
		      uint32_t stale_pct)
{
	if (!stale_pct || !b->meta.value_bytes)
		return false;
	return tv_blob_live_is_stale(b, tv_blob_live_bytes(v, b->meta.id), stale_pct);
}

fr_status tv_blob_read(const struct tree_version *v, const uint8_t *handle, size_t len,
		       void **val, size_t *vlen, fr_error *err)
{
	struct blob_handle h;

	*val = NULL;
	if (!blob_handle_decode(handle, len, &h))
		return FR_CORRUPT(err, "table", 0, "malformed blob handle");
	return tv_blob_read_handle(v, &h, val, vlen, err);
}

fr_status tv_blob_read_handle(const struct tree_version *v, const struct blob_handle *h,
			      void **val, size_t *vlen, fr_error *err)
{
	const struct blob_file *b = tv_blob(v, h->file_id);

	*val = NULL;
	if (!b)
		return FR_CORRUPT(err, "table", 0, "blob handle names a file not in the version");
	if (h->off + h->stored_len > b->meta.file_size)
		return FR_CORRUPT(err, b->path, h->off, "blob handle past the end of the file");
	return blob_read(b->io, b->files, b->path, h, val, vlen, err);
}

/* ---- level iterator ---- */

struct level_iter {
	struct kv_iter base; /* first: the kv_iter handed out is this */
	unsigned flags;       /* for sst_iter_new_flags */
	bool borrowed;        /* LEVEL_ITER_BORROW: tables is the caller's */
	struct table **tables; /* owned array with one reference on each table, or borrowed */
	size_t cnt;
	size_t cur;           /* index of the table sub iterates; cnt when none is open */
	struct kv_iter *sub;  /* NULL when no table is open */
};

static struct level_iter *li_of(struct kv_iter *it)
{
	return (struct level_iter *)it;
}

static void li_fail(struct level_iter *li, fr_status rc, const fr_error *e)
{
	li->base.valid = false;
	li->base.status = rc;
	if (e)
		li->base.err = *e;
}

static bool li_failed(const struct level_iter *li)
{
	return li->base.status != FR_OK;
}

static void li_close_sub(struct level_iter *li)
{
	kv_free(li->sub);
	li->sub = NULL;
	li->cur = li->cnt;
}

/* Makes table i the one sub iterates; false (and the iterator failed) on error. */
static bool li_open(struct level_iter *li, size_t i)
{
	struct sst_reader *r;
	struct kv_iter *sub;
	fr_error e;
	fr_status rc;

	if (li->sub && li->cur == i)
		return true;
	li_close_sub(li);
	rc = table_reader(li->tables[i], &r, &e);
	if (rc) {
		li_fail(li, rc, &e);
		return false;
	}
	rc = sst_iter_new_flags(r, li->flags, &sub, &e);
	sst_reader_unref(r); /* the iterator holds its own reference */
	if (rc) {
		li_fail(li, rc, &e);
		return false;
	}
	li->sub = sub;
	li->cur = i;
	return true;
}

/* Copies sub's position into base, or fails the iterator when sub failed. */
static void li_publish(struct level_iter *li)
{
	struct kv_iter *s = li->sub;

	if (s->status != FR_OK) {
		li_fail(li, s->status, &s->err);
		return;
	}
	li->base.valid = s->valid;
	if (s->valid) {
		li->base.key = s->key;
		li->base.key_len = s->key_len;
		li->base.val = s->val;
		li->base.val_len = s->val_len;
	}
}

/* sub has run off the end of table cur (or the position was in no table): moves on to the
 * first entry of the next table that has one. */
static void li_skip_fwd(struct level_iter *li)
{
	while (!li_failed(li) && !li->sub->valid && li->sub->status == FR_OK) {
		size_t next = li->cur + 1;

		if (next >= li->cnt) {
			li->base.valid = false;
			return;
		}
		if (!li_open(li, next))
			return;
		kv_seek_first(li->sub);
	}
	if (!li_failed(li))
		li_publish(li);
}

static void li_skip_back(struct level_iter *li)
{
	while (!li_failed(li) && !li->sub->valid && li->sub->status == FR_OK) {
		if (li->cur == 0) {
			li->base.valid = false;
			return;
		}
		if (!li_open(li, li->cur - 1))
			return;
		kv_seek_last(li->sub);
	}
	if (!li_failed(li))
		li_publish(li);
}

static void li_seek_first(struct kv_iter *it)
{
	struct level_iter *li = li_of(it);

	if (li_failed(li))
		return;
	it->valid = false;
	if (!li->cnt || !li_open(li, 0))
		return;
	kv_seek_first(li->sub);
	li_skip_fwd(li);
}

static void li_seek_last(struct kv_iter *it)
{
	struct level_iter *li = li_of(it);

	if (li_failed(li))
		return;
	it->valid = false;
	if (!li->cnt || !li_open(li, li->cnt - 1))
		return;
	kv_seek_last(li->sub);
	li_skip_back(li);
}

/* The user key of a seek target; a target shorter than a trailer is taken whole. */
static size_t li_ulen(size_t len)
{
	return len >= IKEY_TRAILER_LEN ? ikey_user_len(len) : len;
}

static void li_seek(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct level_iter *li = li_of(it);
	size_t ulen = li_ulen(len), lo = 0, hi = li->cnt;

	if (li_failed(li))
		return;
	it->valid = false;
	/* the first table whose largest user key is >= the target's */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct sst_meta *m = &li->tables[mid]->meta;

		if (bytes_cmp(m->largest, m->largest_len, ikey, ulen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= li->cnt) {
		li_close_sub(li);
		return;
	}
	if (!li_open(li, lo))
		return;
	kv_seek(li->sub, ikey, len);
	li_skip_fwd(li);
}

static void li_seek_prev(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct level_iter *li = li_of(it);
	size_t ulen = li_ulen(len), lo = 0, hi = li->cnt;

	if (li_failed(li))
		return;
	it->valid = false;
	/* lo = the number of tables whose smallest user key is <= the target's */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct sst_meta *m = &li->tables[mid]->meta;

		if (bytes_cmp(m->smallest, m->smallest_len, ikey, ulen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0) {
		li_close_sub(li);
		return;
	}
	if (!li_open(li, lo - 1))
		return;
	kv_seek_prev(li->sub, ikey, len);
	li_skip_back(li);
}

static void li_next(struct kv_iter *it)
{
	struct level_iter *li = li_of(it);

	if (li_failed(li) || !it->valid)
		return;
	kv_next(li->sub);
	li_skip_fwd(li);
}

static void li_prev(struct kv_iter *it)
{
	struct level_iter *li = li_of(it);

	if (li_failed(li) || !it->valid)
		return;
	kv_prev(li->sub);
	li_skip_back(li);
}

static void li_free(struct kv_iter *it)
{
	struct level_iter *li = li_of(it);

	kv_free(li->sub);
	if (!li->borrowed) {
		for (size_t i = 0; i < li->cnt; i++)
			table_unref(li->tables[i]);
		fr_free(li->tables);
	}
	fr_free(li);
}

static const struct kv_iter_ops level_iter_ops = {
	.seek_first = li_seek_first,
	.seek_last = li_seek_last,
	.seek = li_seek,
	.seek_prev = li_seek_prev,
	.next = li_next,
	.prev = li_prev,
	.free = li_free,
};

fr_status level_iter_new(struct table **tables, size_t cnt, struct kv_iter **out, fr_error *err)
{
	return level_iter_new_flags(tables, cnt, 0, out, err);
}

fr_status level_iter_new_flags(struct table **tables, size_t cnt, unsigned flags,
			       struct kv_iter **out, fr_error *err)
{
	struct level_iter *li = fr_malloc(sizeof(*li));

	*out = NULL;
	if (!li)
		return FR_ERR(err, FR_NOMEM, "level iterator");
	kv_iter_init(&li->base, &level_iter_ops);
	li->borrowed = flags & LEVEL_ITER_BORROW;
	li->flags = flags & ~LEVEL_ITER_BORROW;
	li->cnt = cnt;
	li->cur = cnt;
	li->sub = NULL;
	if (li->borrowed) {
		li->tables = tables;
	} else {
		li->tables = fr_calloc(cnt ? cnt : 1, sizeof(*li->tables));
		if (!li->tables) {
			fr_free(li);
			return FR_ERR(err, FR_NOMEM, "level iterator over %zu tables", cnt);
		}
		for (size_t i = 0; i < cnt; i++) {
			table_ref(tables[i]);
			li->tables[i] = tables[i];
		}
	}
	*out = &li->base;
	return FR_OK;
}
