/* SPDX-License-Identifier: MIT */
/*
 * tree.c - one LSM tree in memory: its memtables, the read view (memtables plus the current
 * table version, pinned together) and point lookups.
 *
 * A point lookup walks the versions of a key newest first across the sources (active memtable,
 * sealed memtables newest first, L0 newest first, then each level): a range tombstone newer
 * than a version hides it and everything older; a tombstone ends the walk; a weak tombstone
 * cancels exactly the next older value.
 */
#include "db/db.h"

#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/ikey.h"
#include "blob/blob.h"
#include "memtable/memtable.h"
#include "version/version.h"

void tree_free(struct tree *t)
{
	if (!t)
		return;
	blob_direct_unref(t->direct);
	mem_unref(t->active);
	for (size_t i = 0; i < t->sealed_cnt; i++)
		mem_unref(t->sealed[i]);
	fr_free(t->sealed);
	fr_free(t->sealed_upto);
	fr_free(t->sealed_min_seqno);
	fr_mutex_fini(&t->mu);
	fr_free(t);
}

fr_status tree_get(fr_db *db, uint32_t id, bool create, struct tree **out)
{
	fr_mutex_lock(&db->mu);
	if (id < db->tree_cap && db->trees[id]) {
		*out = db->trees[id];
		fr_mutex_unlock(&db->mu);
		return FR_OK;
	}
	fr_status rc = FR_NOT_FOUND;
	if (!create)
		goto out;
	rc = FR_NOMEM;
	if (id >= db->tree_cap) {
		size_t cap = db->tree_cap ? db->tree_cap : 16;
		while (cap <= id)
			cap *= 2;
		struct tree **tt = fr_realloc(db->trees, cap * sizeof(*tt));
		if (!tt)
			goto out;
		memset(tt + db->tree_cap, 0, (cap - db->tree_cap) * sizeof(*tt));
		db->trees = tt;
		db->tree_cap = cap;
	}
	struct tree *t = fr_calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->id = id;
	tree_opts_default(&t->opts);
	t->cpt_dirty = true;
	fr_mutex_init(&t->mu);
	t->active = mem_new(db->next_mem_id++);
	t->sealed_cap = SEALED_MAX + 4;
	t->sealed = fr_calloc(t->sealed_cap, sizeof(*t->sealed));
	t->sealed_upto = fr_calloc(t->sealed_cap, sizeof(uint64_t));
	t->sealed_min_seqno = fr_calloc(t->sealed_cap, sizeof(uint64_t));
	if (!t->active || !t->sealed || !t->sealed_upto || !t->sealed_min_seqno) {
		tree_free(t);
		goto out;
	}
	db->trees[id] = t;
	db->st.tree_cnt++;
	*out = t;
	rc = FR_OK;
out:
	fr_mutex_unlock(&db->mu);
	return rc;
}

fr_status tree_view(fr_db *db, struct tree *t, struct read_view *v)
{
	fr_mutex_lock(&t->mu);
	size_t n = 1 + t->sealed_cnt;
	v->mems = n <= sizeof(v->inline_mems) / sizeof(v->inline_mems[0])
			  ? v->inline_mems
			  : fr_calloc(n, sizeof(*v->mems));
	if (!v->mems) {
		fr_mutex_unlock(&t->mu);
		return FR_NOMEM;
	}
	v->mem_cnt = 0;
	/* the version is taken under t->mu: a flush publishes its table before it drops the
	 * memtable (under t->mu), so no entry can be missed; a sealed memtable the version
	 * already holds as a table is left out, so that no entry is seen twice either (a weak
	 * tombstone cancels one version: a duplicate would show through) */
	v->ver = vset_current(db->vs, t->id);
	mem_ref(t->active);
	v->mems[v->mem_cnt++] = t->active;
	for (size_t i = t->sealed_cnt; i-- > 0;) {
		if (t->sealed_upto[i] <= v->ver->flushed_seqno)
			continue;
		mem_ref(t->sealed[i]);
		v->mems[v->mem_cnt++] = t->sealed[i];
	}
	fr_mutex_unlock(&t->mu);
	return FR_OK;
}

void read_view_release(struct read_view *v)
{
	for (size_t i = 0; i < v->mem_cnt; i++)
		mem_unref(v->mems[i]);
	if (v->mems != v->inline_mems)
		fr_free(v->mems);
	v->mems = NULL;
	v->mem_cnt = 0;
	tv_unref(v->ver);
	v->ver = NULL;
}

struct cover_ctx {
	const uint8_t *k;
	size_t klen;
	uint64_t snap;
	uint64_t max; /* starts at the found version's seqno: only newer tombstones matter */
};

static void cover_fn(void *ctx, const struct range_del *rd)
{
	struct cover_ctx *c = ctx;
	if (rd->seqno <= c->snap && rd->seqno > c->max &&
	    range_del_covers(rd, c->k, c->klen, 0, c->snap))
		c->max = rd->seqno;
}

static fr_status table_cover(struct table *tb, struct cover_ctx *c, fr_error *err)
{
	if (!tb->meta.range_del_cnt || tb->meta.max_seqno <= c->max)
		return FR_OK;
	struct sst_reader *r;
	fr_status rc = table_reader(tb, &r, err);
	if (rc)
		return rc;
	const struct range_del *rds;
	size_t n = sst_reader_range_dels(r, &rds);
	for (size_t i = 0; i < n; i++) {
		if (bytes_cmp(rds[i].start, rds[i].start_len, c->k, c->klen) > 0)
			break;
		cover_fn(c, &rds[i]);
	}
	sst_reader_unref(r);
	return FR_OK;
}

/* The first table of level l >= 1 whose largest key is >= k. */
static size_t level_find(const struct tree_version *ver, int l, const uint8_t *k, size_t klen)
{
	size_t lo = 0, hi = ver->level_cnt[l];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct table *tb = ver->levels[l][mid];
		if (bytes_cmp(tb->meta.largest, tb->meta.largest_len, k, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The tables of a version whose key span holds k, newest first: every L0 table spanning k,
 * then in each deeper level the one or few (range tombstone clipping can make neighbours
 * share a boundary key) found by binary search. */
struct span_walk {
	const struct tree_version *ver;
	const uint8_t *k;
	size_t klen;
	int level;
	size_t i;
};

static void span_start(struct span_walk *w, const struct tree_version *ver, const uint8_t *k,
		       size_t klen)
{
	*w = (struct span_walk){.ver = ver, .k = k, .klen = klen};
}

static struct table *span_next(struct span_walk *w)
{
	const struct tree_version *ver = w->ver;
	while (w->level < LEVEL_CNT) {
		if (w->i < ver->level_cnt[w->level]) {
			struct table *tb = ver->levels[w->level][w->i++];
			if (table_spans(tb, w->k, w->klen))
				return tb;
			if (w->level == 0)
				continue;
		}
		/* the level is done: a deeper one is sorted, so past k nothing spans it */
		if (++w->level < LEVEL_CNT)
			w->i = level_find(ver, w->level, w->k, w->klen);
	}
	return NULL;
}

/* Whether a range tombstone with seqno in (seqno, snap] covers k in the view. Sources whose
 * newest entry is not newer than the found version cannot hold one, and only the tables
 * spanning k can. */
static fr_status view_covered(struct read_view *v, const uint8_t *k, size_t klen, uint64_t snap,
			      uint64_t seqno, bool *out, fr_error *err)
{
	struct cover_ctx c = {k, klen, snap, seqno};
	for (size_t i = 0; i < v->mem_cnt; i++)
		if (mem_range_del_cnt(v->mems[i]) && mem_max_seqno(v->mems[i]) > seqno)
			mem_range_dels_each(v->mems[i], cover_fn, &c);
	struct span_walk w;
	span_start(&w, v->ver, k, klen);
	for (struct table *tb; (tb = span_next(&w));) {
		fr_status rc = table_cover(tb, &c, err);
		if (rc)
			return rc;
	}
	*out = c.max > seqno;
	return FR_OK;
}

/* A found version: value either a view (memtable) or owned (table). */
struct found {
	uint8_t type;
	uint64_t seqno;
	const uint8_t *view;
	void *owned;
	size_t len;
};

static fr_status table_lookup(struct table *tb, const uint8_t *k, size_t klen, uint64_t snap,
			      struct found *f, fr_error *err)
{
	struct sst_reader *r;
	fr_status rc = table_reader(tb, &r, err);
	if (rc)
		return rc;
	rc = sst_reader_get(r, k, klen, snap, &f->type, &f->seqno, &f->owned, &f->len, err);
	sst_reader_unref(r);
	return rc;
}

/* The newest version of k with seqno <= snap in the view; *l0_reads counts the L0 tables it
 * looked in. */
static fr_status view_lookup(struct read_view *v, const uint8_t *k, size_t klen, uint64_t snap,
			     struct found *f, size_t *l0_reads, fr_error *err)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < v->mem_cnt; i++) {
		if (mem_get(v->mems[i], k, klen, snap, &f->type, &f->seqno, &f->view, &f->len) ==
		    FR_OK)
			return FR_OK;
	}
	struct span_walk w;
	span_start(&w, v->ver, k, klen);
	for (struct table *tb; (tb = span_next(&w));) {
		if (tb->meta.min_seqno > snap)
			continue; /* written after the snapshot */
		*l0_reads += w.level == 0;
		fr_status rc = table_lookup(tb, k, klen, snap, f, err);
		if (rc != FR_NOT_FOUND)
			return rc;
	}
	return FR_NOT_FOUND;
}

fr_status tree_get_value(fr_db *db, struct tree *t, const uint8_t *k, size_t klen, uint64_t snap,
			 void **val, size_t *vlen, fr_error *err)
{
	struct read_view v;
	fr_status rc = tree_view(db, t, &v);
	if (rc)
		return FR_ERR(err, rc, "read view");
	uint64_t pending_weak = 0;
	const uint64_t read_snap = snap; /* tombstones visible to the read; snap moves below */
	size_t l0_reads = 0;
	while (!rc) {
		struct found f;
		rc = view_lookup(&v, k, klen, snap, &f, &l0_reads, err);
		if (rc)
			break;
		bool covered = false;
		if (f.type != VT_DEL)
			rc = view_covered(&v, k, klen, read_snap, f.seqno, &covered, err);
		if (rc || covered || f.type == VT_DEL) {
			fr_free(f.owned);
			if (!rc)
				rc = FR_NOT_FOUND;
			break;
		}
		if (f.type == VT_WEAK_DEL || pending_weak) {
			pending_weak += f.type == VT_WEAK_DEL ? 1 : (uint64_t)-1;
			fr_free(f.owned);
			if (f.seqno == 0) {
				rc = FR_NOT_FOUND;
				break;
			}
			snap = f.seqno - 1;
			continue;
		}
		if (f.type == VT_BLOB) {
			/* a table entry whose value is in a blob file of the pinned version, or
			 * a memtable entry whose value is in the memtable's direct blob file */
			void *bv = NULL;
			size_t bn = 0;
			if (val || vlen)
				rc = view_blob_read(&v, f.owned ? f.owned : f.view, f.len, &bv,
						    &bn, err);
			fr_free(f.owned);
			if (rc)
				break;
			f.owned = bv;
			f.len = bn;
			if (!val) {
				fr_free(bv);
				f.owned = NULL;
			}
		}
		if (val) {
			if (f.owned) {
				*val = f.owned;
			} else {
				*val = fr_memdup(f.view, f.len);
				if (!*val) {
					rc = FR_ERR(err, FR_NOMEM, "value copy");
					break;
				}
			}
		} else {
			fr_free(f.owned);
		}
		if (vlen)
			*vlen = f.len;
		break;
	}
	/* a read that had to look in two or more L0 tables counts towards compacting L0, as a
	 * seek does (LevelDB charges a Get that consults a second file the same way) */
	if (l0_reads >= 2)
		bg_note_l0_seek(db, t, v.ver);
	read_view_release(&v);
	return rc;
}

fr_status view_blob_read(const struct read_view *v, const uint8_t *handle, size_t len,
			 void **val, size_t *vlen, fr_error *err)
{
	struct blob_handle h;
	if (!blob_handle_decode(handle, len, &h))
		return FR_CORRUPT(err, "memtable", 0, "malformed blob handle");
	/* a memtable's own descriptor first: it reads even after the version let the file go */
	for (size_t i = 0; i < v->mem_cnt; i++) {
		struct blob_direct *d = mem_blob_find(v->mems[i], h.file_id);
		if (d)
			return blob_direct_read(d, &h, val, vlen, err);
	}
	return tv_blob_read_handle(v->ver, &h, val, vlen, err);
}

fr_status tree_seal(fr_db *db, struct tree *t)
{
	if (mem_is_empty(t->active))
		return FR_OK;
	/* the journal sync before every seal synced the direct files: the flush alone uses them
	 * from now on */
	fr_assert(db->blob_dirty_cnt == 0);
	struct mem *m = mem_new(db->next_mem_id++);
	if (!m)
		return FR_NOMEM;
	fr_mutex_lock(&t->mu);
	if (t->sealed_cnt == t->sealed_cap) {
		size_t cap = t->sealed_cap * 2;
		struct mem **s = fr_realloc(t->sealed, cap * sizeof(*s));
		if (s)
			t->sealed = s;
		uint64_t *u = s ? fr_realloc(t->sealed_upto, cap * sizeof(*u)) : NULL;
		if (u)
			t->sealed_upto = u;
		uint64_t *mn = u ? fr_realloc(t->sealed_min_seqno, cap * sizeof(*mn)) : NULL;
		if (!mn) {
			fr_mutex_unlock(&t->mu);
			mem_unref(m);
			return FR_NOMEM;
		}
		t->sealed_min_seqno = mn;
		t->sealed_cap = cap;
	}
	t->sealed[t->sealed_cnt] = t->active;
	t->sealed_upto[t->sealed_cnt] = db->seqno;
	t->sealed_min_seqno[t->sealed_cnt] = t->active_min_seqno;
	t->sealed_cnt++;
	uint64_t bytes = mem_bytes(t->active);
	t->active = m;
	t->active_min_seqno = 0;
	fr_mutex_unlock(&t->mu);
	blob_direct_unref(t->direct); /* the sealed memtable keeps it */
	t->direct = NULL;
	atomic_sub_u64(&db->wb_active, t->wb_seen);
	t->wb_seen = 0;
	atomic_add_u64(&db->wb_sealed, bytes);
	atomic_add_u64(&db->flushes_pending, 1);
	return FR_OK;
}
