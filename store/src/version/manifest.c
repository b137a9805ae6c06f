/* SPDX-License-Identifier: MIT */
/*
 * manifest.c - the version set: the current tree_version of every tree, and the manifest that
 * makes changes to it durable (FORMAT.md §5).
 *
 * <dir>/CURRENT holds "MANIFEST-<n>\n" and names the live manifest, a record file (record.h)
 * whose records are version edits. Opening replays every edit of the live manifest (a torn
 * last record is an edit that was never acknowledged and is ignored), then writes
 * MANIFEST-<n+1> holding one edit with the whole state and switches CURRENT to it with an
 * atomic rename. vset_apply appends one synced record per edit and starts a fresh manifest the
 * same way once the live one passes MFST_ROLL_BYTES.
 *
 * An edit is turned into new versions of the trees it touches before anything is written
 * (copy-on-write arrays of table pointers, one reference per version), so a bad or
 * unallocatable edit fails without side effects; after the manifest record is synced, the new
 * versions are published by a pointer swap under vs->mu. Tables that left the current version
 * are marked obsolete and deleted at their last unref (version.c). A failed manifest write
 * leaves it unknown whether the edit is durable, so the vset refuses every later edit
 * (FR_POISONED) until it is reopened.
 */
#include "version/version.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/log.h"
#include "base/sync.h"
#include "io/io.h"
#include "io/record.h"
#include "version/version_int.h"

#define CURRENT_NAME "CURRENT"
#define MFST_PREFIX "MANIFEST-"

/* ---- small helpers ---- */

static void atomic_max_u64(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	/* acq_rel: pairs with the acquire loads of vset_last_seqno and vset_new_file_id */
	while (cur < v &&
	       !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

static fr_status mfst_path(const struct vset *vs, uint64_t n, char *buf, size_t len, fr_error *err)
{
	if (snprintf(buf, len, "%s/" MFST_PREFIX "%" PRIu64, vs->dir, n) >= (int)len)
		return FR_ERR(err, FR_INVALID, "path too long: %s", vs->dir);
	return FR_OK;
}

void vset_table_path(const struct vset *vs, uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%" PRIu64 ".sst", vs->tables_dir, id);
}

void vset_blob_path(const struct vset *vs, uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%" PRIu64 ".blob", vs->blobs_dir, id);
}

/* Parses a non-empty run of decimal digits that fills [s, s + len); false on anything else. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Index in vs->trees of tree_id, or of where it would go; *found tells which. */
static size_t tree_pos(struct tree_version *const *trees, size_t cnt, uint32_t tree_id,
		       bool *found)
{
	size_t lo = 0, hi = cnt;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (trees[mid]->tree_id < tree_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < cnt && trees[lo]->tree_id == tree_id;
	return lo;
}

/* ---- turning an edit into new versions ---- */

/* Where an edit error is blamed: on the manifest record while replaying (FR_CORRUPTION),
 * on the caller in vset_apply (FR_INVALID). */
struct blame {
	const char *path; /* NULL: the caller's edit */
	uint64_t off;
	fr_error *err;
};

static fr_status bad_edit(const struct blame *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static fr_status bad_edit(const struct blame *b, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (b->path)
		return FR_CORRUPT(b->err, b->path, b->off, what);
	return FR_ERR(b->err, FR_INVALID, "version edit: %s", what);
}

/* An edit ready to publish: the new version of each touched tree, the tables that left, and
 * the tree array to install. Everything that can fail happened while building it. */
struct vchange {
	uint32_t *ids;            /* touched trees, ascending */
	struct tree_version **nv; /* per touched tree: its new version, NULL when dropped */
	size_t cnt;
	struct table **removed;   /* tables no new version holds; one reference each */
	size_t removed_cnt;
	struct blob_file **removed_blobs; /* blob files that left; one reference each */
	size_t removed_blob_cnt;
	struct tree_version **trees; /* the array to install, filled by change_publish */
	size_t tree_cnt;
	uint64_t max_add_id;         /* largest id added + 1, 0 when nothing was added */
};

/* Capacity of a pointer array holding cnt entries: 4 up to 4, then the next power of two. */
static size_t cap_for(size_t cnt)
{
	size_t c = 4;

	while (c < cnt)
		c *= 2;
	return c;
}

/* The array arr of cnt elements of elem bytes, whose capacity is cap_for(cnt), with room for
 * one more: arr itself, or a reallocation of it; NULL (arr untouched) when out of memory. */
static void *grow_for_one(void *arr, size_t cnt, size_t elem)
{
	size_t cap = cap_for(cnt + 1);

	if (arr && cap <= cap_for(cnt))
		return arr;
	if (cap > SIZE_MAX / elem)
		return NULL;
	return fr_realloc(arr, cap * elem);
}

/* Appends t to the table array *arr of *cnt entries (capacity cap_for(*cnt)). */
static fr_status tbl_push(struct table ***arr, size_t *cnt, struct table *t)
{
	struct table **a = grow_for_one(*arr, *cnt, sizeof(*a));

	if (!a)
		return FR_NOMEM;
	*arr = a;
	a[(*cnt)++] = t;
	return FR_OK;
}

/* Appends b to the blob file array *arr of *cnt entries (capacity cap_for(*cnt)). */
static fr_status blob_push(struct blob_file ***arr, size_t *cnt, struct blob_file *b)
{
	struct blob_file **a = grow_for_one(*arr, *cnt, sizeof(*a));

	if (!a)
		return FR_NOMEM;
	*arr = a;
	a[(*cnt)++] = b;
	return FR_OK;
}

static void change_fini(struct vchange *c)
{
	for (size_t i = 0; i < c->cnt; i++)
		tv_unref(c->nv[i]);
	for (size_t i = 0; i < c->removed_cnt; i++)
		table_unref(c->removed[i]);
	for (size_t i = 0; i < c->removed_blob_cnt; i++)
		blob_file_unref(c->removed_blobs[i]);
	fr_free(c->removed_blobs);
	fr_free(c->ids);
	fr_free(c->nv);
	fr_free(c->removed);
	fr_free(c->trees);
	memset(c, 0, sizeof(*c));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* L0: newest first, by max seqno then by id. */
static int cmp_l0(const void *a, const void *b)
{
	const struct table *x = *(struct table *const *)a, *y = *(struct table *const *)b;

	if (x->meta.max_seqno != y->meta.max_seqno)
		return x->meta.max_seqno > y->meta.max_seqno ? -1 : 1;
	return x->meta.id > y->meta.id ? -1 : x->meta.id < y->meta.id;
}

/* Levels >= 1: by smallest user key (then id, to be deterministic). */
static int cmp_level(const void *a, const void *b)
{
	const struct table *x = *(struct table *const *)a, *y = *(struct table *const *)b;
	int c = bytes_cmp(x->meta.smallest, x->meta.smallest_len, y->meta.smallest,
			  y->meta.smallest_len);

	if (c)
		return c;
	return x->meta.id < y->meta.id ? -1 : x->meta.id > y->meta.id;
}

/* The sorted, de-duplicated ids of the trees e touches. */
static fr_status touched_trees(const struct vedit *e, struct vchange *c)
{
	size_t n = e->add_cnt + e->del_cnt + e->flushed_cnt + e->dropped_cnt + e->blob_add_cnt;
	size_t k = 0;

	c->ids = fr_calloc(n ? n : 1, sizeof(*c->ids));
	c->nv = fr_calloc(n ? n : 1, sizeof(*c->nv));
	if (!c->ids || !c->nv)
		return FR_NOMEM;
	for (size_t i = 0; i < e->add_cnt; i++)
		c->ids[k++] = e->adds[i].tree_id;
	for (size_t i = 0; i < e->del_cnt; i++)
		c->ids[k++] = e->dels[i].tree_id;
	for (size_t i = 0; i < e->flushed_cnt; i++)
		c->ids[k++] = e->flushed[i].tree_id;
	for (size_t i = 0; i < e->dropped_cnt; i++)
		c->ids[k++] = e->dropped_trees[i];
	for (size_t i = 0; i < e->blob_add_cnt; i++)
		c->ids[k++] = e->blob_adds[i].tree_id;
	qsort(c->ids, n, sizeof(*c->ids), cmp_u32);
	c->cnt = 0;
	for (size_t i = 0; i < n; i++)
		if (!c->cnt || c->ids[c->cnt - 1] != c->ids[i])
			c->ids[c->cnt++] = c->ids[i];
	return FR_OK;
}

static size_t id_index(const struct vchange *c, uint32_t tree_id)
{
	const uint32_t *p = bsearch(&tree_id, c->ids, c->cnt, sizeof(*c->ids), cmp_u32);

	return (size_t)(p - c->ids);
}

/* The edit's entries for one tree: index lists into e's arrays, and the rest. */
struct tree_ops {
	size_t *adds, add_cnt;
	size_t *dels, del_cnt;
	bool dropped;
	bool has_flushed;
	uint64_t flushed; /* the last entry for the tree wins (the decoder keeps repeats) */
};

/* Groups e by tree: ops[i] gets what concerns c->ids[i]; idx has room for add_cnt + del_cnt
 * indexes and is carved up between the trees. */
static void group_ops(const struct vedit *e, const struct vchange *c, struct tree_ops *ops,
		      size_t *idx)
{
	size_t off = 0;

	for (size_t i = 0; i < e->add_cnt; i++)
		ops[id_index(c, e->adds[i].tree_id)].add_cnt++;
	for (size_t i = 0; i < e->del_cnt; i++)
		ops[id_index(c, e->dels[i].tree_id)].del_cnt++;
	for (size_t t = 0; t < c->cnt; t++) {
		ops[t].adds = idx + off;
		off += ops[t].add_cnt;
		ops[t].dels = idx + off;
		off += ops[t].del_cnt;
		ops[t].add_cnt = 0;
		ops[t].del_cnt = 0;
	}
	for (size_t i = 0; i < e->add_cnt; i++) {
		struct tree_ops *o = &ops[id_index(c, e->adds[i].tree_id)];

		o->adds[o->add_cnt++] = i;
	}
	for (size_t i = 0; i < e->del_cnt; i++) {
		struct tree_ops *o = &ops[id_index(c, e->dels[i].tree_id)];

		o->dels[o->del_cnt++] = i;
	}
	for (size_t i = 0; i < e->flushed_cnt; i++) {
		struct tree_ops *o = &ops[id_index(c, e->flushed[i].tree_id)];

		o->has_flushed = true;
		o->flushed = e->flushed[i].seqno;
	}
	for (size_t i = 0; i < e->dropped_cnt; i++)
		ops[id_index(c, e->dropped_trees[i])].dropped = true;
}

/* Copies base's levels into v, one reference per table. */
static fr_status tv_copy_levels(struct tree_version *v, const struct tree_version *base)
{
	v->flushed_seqno = base->flushed_seqno;
	for (size_t l = 0; l < LEVEL_CNT; l++) {
		size_t n = base->level_cnt[l];

		if (!n)
			continue;
		v->levels[l] = fr_malloc(cap_for(n) * sizeof(*v->levels[l]));
		if (!v->levels[l])
			return FR_NOMEM;
		for (size_t i = 0; i < n; i++) {
			table_ref(base->levels[l][i]);
			v->levels[l][i] = base->levels[l][i];
		}
		v->level_cnt[l] = n;
	}
	if (base->blob_cnt) {
		v->blobs = fr_malloc(cap_for(base->blob_cnt) * sizeof(*v->blobs));
		if (!v->blobs)
			return FR_NOMEM;
		for (size_t i = 0; i < base->blob_cnt; i++) {
			blob_file_ref(base->blobs[i]);
			v->blobs[i] = base->blobs[i];
		}
		v->blob_cnt = base->blob_cnt;
	}
	return FR_OK;
}

/* Makes room for n more entries in c->removed_blobs (exactly sized: it only grows here). */
static fr_status removed_reserve(struct vchange *c, size_t n)
{
	size_t want = c->removed_blob_cnt + n;
	struct blob_file **a;

	if (want < n || want > SIZE_MAX / sizeof(*a))
		return FR_NOMEM;
	a = fr_realloc(c->removed_blobs, want * sizeof(*a));
	if (!a)
		return FR_NOMEM;
	c->removed_blobs = a;
	return FR_OK;
}

static int cmp_blob(const void *a, const void *b)
{
	const struct blob_file *x = *(struct blob_file *const *)a;
	const struct blob_file *y = *(struct blob_file *const *)b;

	return x->meta.id < y->meta.id ? -1 : x->meta.id > y->meta.id;
}

/* Adds the edit's blob files of tree v->tree_id to v, then checks that every blob file a
 * table refers to is there and moves the blob files no table refers to any more to
 * c->removed_blobs (FORMAT.md §5.2: a blob file lives while a table refers to it). */
static fr_status tree_apply_blobs(struct vset *vs, const struct vedit *e, struct tree_version *v,
				  struct vchange *c, const struct blame *b)
{
	char path[PATH_MAX];
	size_t keep = 0;
	bool *used = NULL;
	fr_status rc = FR_OK;

	for (size_t i = 0; i < e->blob_add_cnt; i++) {
		const struct vedit_blob *a = &e->blob_adds[i];
		struct blob_file *bf;

		if (a->tree_id != v->tree_id)
			continue;
		if (a->meta.id == 0)
			return bad_edit(b, "adds blob file id 0");
		vset_blob_path(vs, a->meta.id, path, sizeof(path));
		if (blob_file_new(vs->io, vs->read_env.files, path, a->tree_id, &a->meta, &bf))
			return FR_ERR(b->err, FR_NOMEM, "applying a version edit");
		if (blob_push(&v->blobs, &v->blob_cnt, bf)) {
			blob_file_unref(bf);
			return FR_ERR(b->err, FR_NOMEM, "applying a version edit");
		}
		if (a->meta.id + 1 > c->max_add_id)
			c->max_add_id = a->meta.id + 1;
	}
	if (!v->blob_cnt) {
		for (size_t l = 0; l < LEVEL_CNT; l++)
			for (size_t i = 0; i < v->level_cnt[l]; i++)
				if (v->levels[l][i]->meta.blob_ref_cnt)
					return bad_edit(b, "table %" PRIu64 " refers to a blob file"
							   " tree %" PRIu32 " lacks",
							v->levels[l][i]->meta.id, v->tree_id);
		return FR_OK;
	}
	qsort(v->blobs, v->blob_cnt, sizeof(*v->blobs), cmp_blob);
	for (size_t i = 1; i < v->blob_cnt; i++)
		if (v->blobs[i]->meta.id == v->blobs[i - 1]->meta.id)
			return bad_edit(b, "blob file %" PRIu64 " twice in tree %" PRIu32,
					v->blobs[i]->meta.id, v->tree_id);
	used = fr_calloc(v->blob_cnt, sizeof(*used));
	if (!used)
		return FR_ERR(b->err, FR_NOMEM, "applying a version edit");
	for (size_t l = 0; l < LEVEL_CNT && !rc; l++) {
		for (size_t i = 0; i < v->level_cnt[l] && !rc; i++) {
			const struct sst_meta *m = &v->levels[l][i]->meta;

			for (size_t r = 0; r < m->blob_ref_cnt && !rc; r++) {
				size_t k = tv_blob_index(v, m->blob_refs[r].file_id);

				if (k == v->blob_cnt)
					rc = bad_edit(b, "table %" PRIu64 " refers to blob file %"
						      PRIu64 " not in tree %" PRIu32, m->id,
						      m->blob_refs[r].file_id, v->tree_id);
				else
					used[k] = true;
			}
		}
	}
	size_t gone = 0;
	for (size_t i = 0; i < v->blob_cnt; i++)
		gone += !used[i];
	if (!rc && gone && removed_reserve(c, gone))
		rc = FR_ERR(b->err, FR_NOMEM, "applying a version edit");
	if (rc) {
		fr_free(used);
		return rc;
	}
	for (size_t i = 0; i < v->blob_cnt; i++) {
		if (used[i])
			v->blobs[keep++] = v->blobs[i];
		else /* the version's reference moves to the removed list */
			c->removed_blobs[c->removed_blob_cnt++] = v->blobs[i];
	}
	v->blob_cnt = keep;
	fr_free(used);
	return FR_OK;
}

/* Applies the dels and adds of one tree to v (a copy of its old version). */
static fr_status tree_apply(struct vset *vs, const struct vedit *e, const struct tree_ops *op,
			    struct tree_version *v, struct vchange *c, const struct blame *b)
{
	char path[PATH_MAX];
	fr_status rc;

	for (size_t k = 0; k < op->del_cnt; k++) {
		const struct vedit_del *d = &e->dels[op->dels[k]];
		struct table **lv;
		size_t n, i;

		if (d->level >= LEVEL_CNT)
			return bad_edit(b, "deletes from level %" PRIu32, d->level);
		lv = v->levels[d->level];
		n = v->level_cnt[d->level];
		for (i = 0; i < n && lv[i]->meta.id != d->table_id; i++)
			;
		if (i == n)
			return bad_edit(b, "deletes table %" PRIu64 " not in tree %" PRIu32
					   " level %" PRIu32, d->table_id, d->tree_id, d->level);
		struct table *t = lv[i];
		memmove(lv + i, lv + i + 1, (n - i - 1) * sizeof(*lv));
		v->level_cnt[d->level]--;
		/* the version's reference moves to the removed list */
		rc = tbl_push(&c->removed, &c->removed_cnt, t);
		if (rc) {
			table_unref(t);
			return FR_ERR(b->err, FR_NOMEM, "applying a version edit");
		}
	}
	for (size_t k = 0; k < op->add_cnt; k++) {
		const struct vedit_add *a = &e->adds[op->adds[k]];
		struct table *t = NULL;

		if (a->level >= LEVEL_CNT)
			return bad_edit(b, "adds to level %" PRIu32, a->level);
		if (a->meta.id == 0)
			return bad_edit(b, "adds table id 0");
		/* a table deleted in this edit and added again is moved, not replaced */
		for (size_t i = 0; i < c->removed_cnt; i++) {
			if (c->removed[i]->meta.id != a->meta.id)
				continue;
			if (c->removed[i]->tree_id != a->tree_id)
				return bad_edit(b, "moves table %" PRIu64 " between trees",
						a->meta.id);
			t = c->removed[i];
			c->removed[i] = c->removed[--c->removed_cnt];
			break;
		}
		if (!t) {
			vset_table_path(vs, a->meta.id, path, sizeof(path));
			if (table_new_env(vs->io, &vs->read_env, path, a->tree_id, &a->meta, &t))
				return FR_ERR(b->err, FR_NOMEM, "applying a version edit");
		}
		if (tbl_push(&v->levels[a->level], &v->level_cnt[a->level], t)) {
			table_unref(t);
			return FR_ERR(b->err, FR_NOMEM, "applying a version edit");
		}
		if (a->meta.id + 1 > c->max_add_id)
			c->max_add_id = a->meta.id + 1;
	}
	return FR_OK;
}

/* Sorts v's levels and checks them: no table twice, levels >= 1 disjoint. */
static fr_status tree_check(struct tree_version *v, const struct blame *b)
{
	size_t n = tv_table_cnt(v), k = 0;
	uint64_t *ids = fr_calloc(n ? n : 1, sizeof(*ids));
	fr_status rc = FR_OK;

	if (!ids)
		return FR_ERR(b->err, FR_NOMEM, "applying a version edit");
	for (size_t l = 0; l < LEVEL_CNT; l++) {
		struct table **lv = v->levels[l];

		for (size_t i = 0; i < v->level_cnt[l]; i++)
			ids[k++] = lv[i]->meta.id;
		if (v->level_cnt[l] < 2)
			continue;
		qsort(lv, v->level_cnt[l], sizeof(*lv), l ? cmp_level : cmp_l0);
		for (size_t i = 1; l && i < v->level_cnt[l]; i++) {
			const struct sst_meta *p = &lv[i - 1]->meta, *q = &lv[i]->meta;
			int c = bytes_cmp(p->largest, p->largest_len, q->smallest, q->smallest_len);

			/* a shared boundary key is allowed: a key's versions may span two tables */
			if (c > 0) {
				rc = bad_edit(b, "tables %" PRIu64 " and %" PRIu64
						 " overlap in tree %" PRIu32 " level %zu",
					      p->id, q->id, v->tree_id, l);
				goto out;
			}
		}
	}
	qsort(ids, n, sizeof(*ids), cmp_u64);
	for (size_t i = 1; i < n; i++) {
		if (ids[i] == ids[i - 1]) {
			rc = bad_edit(b, "table %" PRIu64 " twice in tree %" PRIu32, ids[i],
				      v->tree_id);
			goto out;
		}
	}
out:
	fr_free(ids);
	return rc;
}

/* Builds the new versions e produces from the published state. Requires: vs->apply_mu held
 * (or the vset not yet shared), so vs->trees cannot change meanwhile. */
static fr_status change_build(struct vset *vs, const struct vedit *e, struct vchange *c,
			      const struct blame *b)
{
	struct tree_ops *ops = NULL;
	size_t *idx = NULL;
	fr_status rc;

	memset(c, 0, sizeof(*c));
	if (touched_trees(e, c))
		goto nomem;
	ops = fr_calloc(c->cnt ? c->cnt : 1, sizeof(*ops));
	idx = fr_calloc(e->add_cnt + e->del_cnt + 1, sizeof(*idx));
	if (!ops || !idx)
		goto nomem;
	group_ops(e, c, ops, idx);

	size_t tree_cnt = vs->tree_cnt;
	for (size_t t = 0; t < c->cnt; t++) {
		uint32_t tree_id = c->ids[t];
		bool found, dropped = ops[t].dropped;
		size_t pos = tree_pos(vs->trees, vs->tree_cnt, tree_id, &found);
		const struct tree_version *old = found ? vs->trees[pos] : NULL;
		struct tree_version *v;

		if (dropped && old) {
			/* every table of the dropped tree leaves, unless re-added below */
			for (size_t l = 0; l < LEVEL_CNT; l++) {
				for (size_t i = 0; i < old->level_cnt[l]; i++) {
					struct table *tb = old->levels[l][i];

					if (tbl_push(&c->removed, &c->removed_cnt, tb))
						goto nomem;
					table_ref(tb);
				}
			}
			if (old->blob_cnt && removed_reserve(c, old->blob_cnt))
				goto nomem;
			for (size_t i = 0; i < old->blob_cnt; i++) {
				blob_file_ref(old->blobs[i]);
				c->removed_blobs[c->removed_blob_cnt++] = old->blobs[i];
			}
		}
		if (dropped && !ops[t].add_cnt && !ops[t].del_cnt && !ops[t].has_flushed) {
			c->nv[t] = NULL;
			tree_cnt -= found;
			continue;
		}
		v = tv_new(tree_id);
		if (!v)
			goto nomem;
		c->nv[t] = v;
		tree_cnt += !found;
		if (old && !dropped && tv_copy_levels(v, old))
			goto nomem;
		rc = tree_apply(vs, e, &ops[t], v, c, b);
		if (!rc)
			rc = tree_apply_blobs(vs, e, v, c, b);
		if (rc)
			goto out;
		if (ops[t].has_flushed)
			v->flushed_seqno = ops[t].flushed;
		rc = tree_check(v, b);
		if (rc)
			goto out;
	}
	c->trees = fr_calloc(tree_cnt ? tree_cnt : 1, sizeof(*c->trees));
	if (!c->trees)
		goto nomem;
	c->tree_cnt = tree_cnt;
	rc = FR_OK;
	goto out;
nomem:
	rc = FR_ERR(b->err, FR_NOMEM, "applying a version edit");
out:
	fr_free(ops);
	fr_free(idx);
	if (rc)
		change_fini(c);
	return rc;
}

/* Installs c as the published state: takes vs->mu for the swap only. The replaced versions
 * and the removed tables' references are left in c for change_fini, which must run without
 * vs->mu held (dropping them may delete files). With mark_obsolete, tables that left the
 * current state delete their files at their last unref. */
static void change_publish(struct vset *vs, struct vchange *c, bool mark_obsolete)
{
	struct tree_version **old_arr;
	size_t i = 0, t = 0, k = 0;

	if (mark_obsolete) {
		/* release: pairs with the acquire load in table_unref */
		for (size_t r = 0; r < c->removed_cnt; r++)
			atomic_store_rel_bool(&c->removed[r]->obsolete, true);
		for (size_t r = 0; r < c->removed_blob_cnt; r++)
			atomic_store_rel_bool(&c->removed_blobs[r]->obsolete, true);
	}
	fr_mutex_lock(&vs->mu);
	/* merge the old array with the touched trees, both ascending by id */
	while (i < vs->tree_cnt || t < c->cnt) {
		if (t == c->cnt || (i < vs->tree_cnt && vs->trees[i]->tree_id < c->ids[t])) {
			c->trees[k++] = vs->trees[i++];
			continue;
		}
		if (i < vs->tree_cnt && vs->trees[i]->tree_id == c->ids[t]) {
			if (c->nv[t])
				c->trees[k++] = c->nv[t];
			/* the vset's reference on the old version goes to change_fini */
			c->nv[t++] = vs->trees[i++];
			continue;
		}
		if (c->nv[t])
			c->trees[k++] = c->nv[t];
		c->nv[t++] = NULL;
	}
	fr_assert(k == c->tree_cnt);
	old_arr = vs->trees;
	vs->trees = c->trees;
	vs->tree_cnt = k;
	fr_mutex_unlock(&vs->mu);
	c->trees = old_arr; /* freed by change_fini */
}

/* Updates next_file_id and last_seqno after e was made durable. */
static void note_counters(struct vset *vs, const struct vedit *e, const struct vchange *c)
{
	if (e->has_next_file_id)
		atomic_max_u64(&vs->next_file_id, e->next_file_id);
	atomic_max_u64(&vs->next_file_id, c->max_add_id);
	if (e->has_last_seqno)
		atomic_max_u64(&vs->last_seqno, e->last_seqno);
}

/* ---- writing manifests ---- */

/* The state of the versions trees[0..cnt) as one edit. The metas are shallow copies borrowed
 * from the tables, so the edit is released with full_edit_fini, not vedit_fini. */
static fr_status state_edit(struct tree_version *const *trees, size_t cnt, uint64_t next_file_id,
			    uint64_t last_seqno, struct vedit *e)
{
	size_t n = 0, k = 0, nb = 0;

	vedit_init(e);
	for (size_t i = 0; i < cnt; i++) {
		n += tv_table_cnt(trees[i]);
		nb += trees[i]->blob_cnt;
	}
	e->adds = fr_calloc(n ? n : 1, sizeof(*e->adds));
	e->flushed = fr_calloc(cnt ? cnt : 1, sizeof(*e->flushed));
	e->blob_adds = fr_calloc(nb ? nb : 1, sizeof(*e->blob_adds));
	if (!e->adds || !e->flushed || !e->blob_adds) {
		fr_free(e->adds);
		fr_free(e->flushed);
		fr_free(e->blob_adds);
		return FR_NOMEM;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct tree_version *v = trees[i];

		for (size_t j = 0; j < v->blob_cnt; j++)
			e->blob_adds[e->blob_add_cnt++] =
				(struct vedit_blob){ v->tree_id, v->blobs[j]->meta };
		e->flushed[i] = (struct vedit_flushed){ v->tree_id, v->flushed_seqno };
		for (uint32_t l = 0; l < LEVEL_CNT; l++)
			for (size_t j = 0; j < v->level_cnt[l]; j++)
				e->adds[k++] = (struct vedit_add){ v->tree_id, l,
								   v->levels[l][j]->meta };
	}
	e->add_cnt = n;
	e->flushed_cnt = cnt;
	e->has_next_file_id = true;
	e->next_file_id = next_file_id;
	e->has_last_seqno = true;
	e->last_seqno = last_seqno;
	return FR_OK;
}

/* The whole state as one edit (see state_edit). Requires: vs->apply_mu held. */
static fr_status full_edit(struct vset *vs, struct vedit *e)
{
	return state_edit(vs->trees, vs->tree_cnt, atomic_load_acq_u64(&vs->next_file_id),
			  atomic_load_acq_u64(&vs->last_seqno), e);
}

static void full_edit_fini(struct vedit *e)
{
	fr_free(e->adds);
	fr_free(e->flushed);
	fr_free(e->blob_adds);
	vedit_init(e);
}

/* Creates manifest `path` (MANIFEST-<n>, which must not be live) holding e as its one record,
 * synced; *out is its writer, left open for more edits. On failure the file is removed. */
static fr_status mfst_create(struct fr_io *io, const char *path, uint64_t n, const struct vedit *e,
			     struct rec_writer **out, size_t *state_len, fr_error *err)
{
	struct rec_writer *w = NULL;
	struct fr_buf b;
	fr_status rc;

	*out = NULL;
	buf_init(&b);
	rc = vedit_encode(e, &b);
	if (rc) {
		rc = FR_ERR(err, rc, "encoding the state for %s", path);
		goto out;
	}
	/* a leftover of an earlier attempt that never became CURRENT */
	io_unlink(io, path, NULL);
	rc = rec_writer_open(io, path, MFST_MAGIC, n, &w, err);
	if (rc)
		goto out;
	rc = rec_writer_add(w, b.data, b.len, err);
	if (!rc)
		rc = rec_writer_sync(w, FR_PERSIST_SYNC_ALL, err);
	if (rc) {
		rec_writer_close(w, NULL);
		io_unlink(io, path, NULL);
		goto out;
	}
	*out = w;
	*state_len = b.len;
out:
	buf_fini(&b);
	return rc;
}

/* Points <dir>/CURRENT at MANIFEST-<n> (atomically, directory synced). */
static fr_status current_write(struct fr_io *io, const char *dir, uint64_t n, fr_error *err)
{
	char cur[64];
	int cur_len = snprintf(cur, sizeof(cur), MFST_PREFIX "%" PRIu64 "\n", n);

	return io_write_file_atomic(io, dir, CURRENT_NAME, cur, (size_t)cur_len, err);
}

/* Writes MANIFEST-<n> holding the whole state, syncs it, points CURRENT at it and makes it the
 * live manifest. On failure the previous manifest stays live (if CURRENT could not be written
 * for certain, the new file is kept: CURRENT may name it). Requires: vs->apply_mu held. */
static fr_status manifest_roll(struct vset *vs, uint64_t n, fr_error *err)
{
	char path[PATH_MAX];
	struct rec_writer *w;
	struct vedit e;
	size_t state_len = 0;
	fr_status rc;

	rc = mfst_path(vs, n, path, sizeof(path), err);
	if (rc)
		return rc;
	if (full_edit(vs, &e))
		return FR_ERR(err, FR_NOMEM, "writing %s", path);
	rc = mfst_create(vs->io, path, n, &e, &w, &state_len, err);
	full_edit_fini(&e);
	if (rc)
		return rc;
	rc = current_write(vs->io, vs->dir, n, err);
	if (rc) {
		rec_writer_close(w, NULL);
		return rc;
	}
	rec_writer_close(vs->mfst, NULL);
	vs->mfst = w;
	vs->mfst_num = n;
	atomic_store_rel_u64(&vs->mfst_bytes, rec_writer_size(w));
	FR_LOG(FR_LOG_INFO, "manifest %s: %zu bytes of state", path, state_len);
	return FR_OK;
}

fr_status vset_write_state(struct vset *vs, const char *dir, struct tree_version *const *vers,
			   size_t cnt, uint64_t last_seqno, fr_error *err)
{
	char path[PATH_MAX];
	struct rec_writer *w;
	struct vedit e;
	size_t state_len = 0;
	fr_status rc;

	if (snprintf(path, sizeof(path), "%s/" MFST_PREFIX "1", dir) >= (int)sizeof(path))
		return FR_ERR(err, FR_INVALID, "path too long: %s", dir);
	/* every id the versions hold came from this counter, so it is past all of them */
	if (state_edit(vers, cnt, atomic_load_acq_u64(&vs->next_file_id), last_seqno, &e))
		return FR_ERR(err, FR_NOMEM, "writing %s", path);
	rc = mfst_create(vs->io, path, 1, &e, &w, &state_len, err);
	full_edit_fini(&e);
	if (rc)
		return rc;
	rc = rec_writer_close(w, err);
	if (!rc)
		rc = current_write(vs->io, dir, 1, err);
	return rc;
}

fr_status vset_apply(struct vset *vs, const struct vedit *e, fr_error *err)
{
	struct blame bl = { NULL, 0, err };
	struct vchange c;
	struct fr_buf b;
	struct vedit w;
	fr_status rc;

	buf_init(&b);
	fr_mutex_lock(&vs->apply_mu);
	if (vs->read_only) {
		rc = FR_ERR(err, FR_INVALID, "version set of %s is read-only", vs->dir);
		goto out_unlock;
	}
	if (vs->failed) {
		rc = FR_ERR(err, FR_POISONED, "an earlier manifest write in %s failed", vs->dir);
		goto out_unlock;
	}
	rc = change_build(vs, e, &c, &bl);
	if (rc)
		goto out_unlock;

	/* Files may exist under ids not yet in any edit (vset_new_file_id): persist the counter
	 * with every edit, so a reopen never hands out an id twice. */
	w = *e;
	w.has_next_file_id = true;
	w.next_file_id = atomic_load_acq_u64(&vs->next_file_id);
	if (e->has_next_file_id && e->next_file_id > w.next_file_id)
		w.next_file_id = e->next_file_id;
	if (c.max_add_id > w.next_file_id)
		w.next_file_id = c.max_add_id;
	if (vedit_encode(&w, &b)) {
		rc = FR_ERR(err, FR_NOMEM, "encoding a version edit");
		goto out_change;
	}

	/* The names of added tables must be durable before an edit that refers to them is:
	 * after a power cut, a synced table without its directory entry would be missing. */
	if (e->add_cnt) {
		rc = io_sync_dir(vs->io, vs->tables_dir, err);
		if (rc)
			goto out_fail; /* a failed fsync cannot be retried safely */
	}
	if (e->blob_add_cnt) {
		rc = io_sync_dir(vs->io, vs->blobs_dir, err);
		if (rc)
			goto out_fail;
	}
	/* The manifest is written under apply_mu on purpose: edits must reach it one at a
	 * time and in the order they are published. Readers only ever take vs->mu. */
	if (rec_writer_size(vs->mfst) >= vs->mfst_roll_bytes) {
		rc = manifest_roll(vs, vs->mfst_num + 1, err);
		if (rc)
			goto out_fail;
	}
	rc = rec_writer_add(vs->mfst, b.data, b.len, err);
	if (!rc)
		rc = rec_writer_sync(vs->mfst, FR_PERSIST_SYNC_DATA, err);
	if (rc)
		goto out_fail;
	atomic_store_rel_u64(&vs->mfst_bytes, rec_writer_size(vs->mfst));
	change_publish(vs, &c, true);
	note_counters(vs, &w, &c);
	goto out_change;

out_fail:
	vs->failed = rc;
	FR_LOG(FR_LOG_ERR, "manifest write in %s failed, no more version edits: %s", vs->dir,
	       err ? err->msg : fr_status_str(rc));
out_change:
	fr_mutex_unlock(&vs->apply_mu);
	/* old versions and removed tables are dropped outside the locks: may delete files */
	change_fini(&c);
	buf_fini(&b);
	return rc;
out_unlock:
	fr_mutex_unlock(&vs->apply_mu);
	buf_fini(&b);
	return rc;
}

/* ---- opening ---- */

struct replay_ctx {
	struct vset *vs;
	const char *path;
	uint64_t edits;
};

static fr_status replay_rec(void *ctx, const uint8_t *rec, size_t len, uint64_t off,
			    fr_error *err)
{
	struct replay_ctx *r = ctx;
	struct blame bl = { r->path, off, err };
	struct vchange c;
	struct vedit e;
	fr_status rc;

	rc = vedit_decode(rec, len, &e, r->path, off, err);
	if (rc)
		return rc;
	rc = change_build(r->vs, &e, &c, &bl);
	if (!rc) {
		change_publish(r->vs, &c, false);
		note_counters(r->vs, &e, &c);
		change_fini(&c);
		r->edits++;
	}
	vedit_fini(&e);
	return rc;
}

/* Reads CURRENT: *n = the live manifest's number, 0 when there is no CURRENT. */
static fr_status read_current(struct vset *vs, uint64_t *n, fr_error *err)
{
	char path[PATH_MAX];
	size_t len, pre = strlen(MFST_PREFIX);
	void *data;
	fr_status rc;

	*n = 0;
	if (snprintf(path, sizeof(path), "%s/" CURRENT_NAME, vs->dir) >= (int)sizeof(path))
		return FR_ERR(err, FR_INVALID, "path too long: %s", vs->dir);
	rc = io_read_file(vs->io, path, &data, &len, err);
	if (rc == FR_NOT_FOUND)
		return FR_OK;
	if (rc)
		return rc;
	const char *s = data;
	if (len < pre + 2 || memcmp(s, MFST_PREFIX, pre) || s[len - 1] != '\n' ||
	    !parse_u64(s + pre, len - pre - 1, n) || *n == 0)
		rc = FR_CORRUPT(err, path, 0, "not \"MANIFEST-<n>\\n\"");
	fr_free(data);
	return rc;
}

static fr_status replay(struct vset *vs, uint64_t n, fr_error *err)
{
	struct rec_read_result res;
	char path[PATH_MAX];
	struct replay_ctx r = { vs, path, 0 };
	fr_status rc;

	rc = mfst_path(vs, n, path, sizeof(path), err);
	if (rc)
		return rc;
	memset(&res, 0, sizeof(res));
	rc = rec_read_file(vs->io, path, MFST_MAGIC, replay_rec, &r, &res, err);
	if (rc == FR_NOT_FOUND)
		return FR_ERR(err, FR_CORRUPTION, "%s/" CURRENT_NAME " names %s, which is missing",
			      vs->dir, path);
	if (rc)
		return rc;
	/* a manifest becomes live only after its first edit (the whole state) is synced */
	if (!res.records)
		return FR_CORRUPT(err, path, res.valid_len, "manifest holds no edit");
	if (res.file_id != n)
		return FR_CORRUPT(err, path, 0, "file header names another manifest");
	if (res.torn)
		FR_LOG(FR_LOG_WARN, "%s: ignoring a torn last edit at offset %" PRIu64, path,
		       res.valid_len);
	vs->mfst_bytes = res.valid_len;
	FR_LOG(FR_LOG_INFO, "%s: replayed %" PRIu64 " edits, %zu trees", path, r.edits,
	       vs->tree_cnt);
	return FR_OK;
}

fr_status vset_open(struct fr_io *io, const char *dir, bool create, bool read_only,
		    struct vset **out, fr_error *err)
{
	struct vset *vs;
	uint64_t n;
	size_t dlen = strlen(dir);
	fr_status rc;

	*out = NULL;
	vs = fr_calloc(1, sizeof(*vs));
	if (!vs)
		return FR_ERR(err, FR_NOMEM, "opening the version set of %s", dir);
	fr_mutex_init(&vs->apply_mu);
	fr_mutex_init(&vs->mu);
	vs->io = io;
	vs->read_only = read_only;
	vs->next_file_id = 1;
	vs->mfst_roll_bytes = MFST_ROLL_BYTES;
	vs->dir = fr_strdup(dir);
	vs->tables_dir = fr_malloc(dlen + sizeof("/" TABLES_SUBDIR));
	vs->blobs_dir = fr_malloc(dlen + sizeof("/" BLOBS_SUBDIR));
	if (!vs->dir || !vs->tables_dir || !vs->blobs_dir) {
		rc = FR_ERR(err, FR_NOMEM, "opening the version set of %s", dir);
		goto fail;
	}
	memcpy(vs->tables_dir, dir, dlen);
	memcpy(vs->tables_dir + dlen, "/" TABLES_SUBDIR, sizeof("/" TABLES_SUBDIR));
	memcpy(vs->blobs_dir, dir, dlen);
	memcpy(vs->blobs_dir + dlen, "/" BLOBS_SUBDIR, sizeof("/" BLOBS_SUBDIR));

	rc = read_current(vs, &n, err);
	if (rc)
		goto fail;
	if (!n && !create) {
		rc = FR_ERR(err, FR_NOT_FOUND, "no database in %s (no " CURRENT_NAME ")", dir);
		goto fail;
	}
	if (n) {
		rc = replay(vs, n, err);
		if (rc)
			goto fail;
	}
	vs->mfst_num = n;
	if (!read_only) {
		if (!n)
			rc = io_mkdir(io, dir, err);
		if (!rc)
			rc = io_mkdir(io, vs->tables_dir, err);
		if (!rc)
			rc = io_mkdir(io, vs->blobs_dir, err);
		if (!rc)
			rc = manifest_roll(vs, n + 1, err);
		if (rc)
			goto fail;
	}
	*out = vs;
	return FR_OK;
fail:
	vset_close(vs);
	return rc;
}

void vset_close(struct vset *vs)
{
	if (!vs)
		return;
	for (size_t i = 0; i < vs->tree_cnt; i++)
		tv_unref(vs->trees[i]);
	fr_free(vs->trees);
	rec_writer_close(vs->mfst, NULL);
	fr_mutex_fini(&vs->mu);
	fr_mutex_fini(&vs->apply_mu);
	fr_free(vs->dir);
	fr_free(vs->tables_dir);
	fr_free(vs->blobs_dir);
	fr_free(vs);
}

/* ---- queries ---- */

struct tree_version *vset_current(struct vset *vs, uint32_t tree_id)
{
	struct tree_version *v = NULL;
	bool found;
	size_t pos;

	fr_mutex_lock(&vs->mu);
	pos = tree_pos(vs->trees, vs->tree_cnt, tree_id, &found);
	if (found) {
		v = vs->trees[pos];
		tv_ref(v);
	}
	fr_mutex_unlock(&vs->mu);
	if (!v)
		v = tv_new(tree_id);
	return v ? v : tv_empty_fallback();
}

fr_status vset_tree_ids(struct vset *vs, uint32_t **ids, size_t *cnt)
{
	uint32_t *a;

	*ids = NULL;
	*cnt = 0;
	fr_mutex_lock(&vs->mu);
	a = fr_calloc(vs->tree_cnt ? vs->tree_cnt : 1, sizeof(*a));
	if (!a) {
		fr_mutex_unlock(&vs->mu);
		return FR_NOMEM;
	}
	for (size_t i = 0; i < vs->tree_cnt; i++)
		a[i] = vs->trees[i]->tree_id;
	*cnt = vs->tree_cnt;
	fr_mutex_unlock(&vs->mu);
	*ids = a;
	return FR_OK;
}

void vset_note_file_id(struct vset *vs, uint64_t id)
{
	atomic_max_u64(&vs->next_file_id, id + 1);
}

uint64_t vset_new_file_id(struct vset *vs)
{
	return atomic_add_u64(&vs->next_file_id, 1) - 1;
}

uint64_t vset_last_seqno(struct vset *vs)
{
	/* pairs with atomic_max_u64 in note_counters */
	return atomic_load_acq_u64(&vs->last_seqno);
}

uint64_t vset_manifest_bytes(struct vset *vs)
{
	return atomic_load_acq_u64(&vs->mfst_bytes);
}

void vset_set_roll_bytes(struct vset *vs, uint64_t bytes)
{
	fr_mutex_lock(&vs->apply_mu);
	vs->mfst_roll_bytes = bytes;
	fr_mutex_unlock(&vs->apply_mu);
}

uint64_t vset_manifest_num(struct vset *vs)
{
	uint64_t n;

	fr_mutex_lock(&vs->apply_mu);
	n = vs->mfst_num;
	fr_mutex_unlock(&vs->apply_mu);
	return n;
}

/* ---- orphans ---- */

struct name_list {
	char **names;
	size_t cnt;
	bool nomem;
};

static int collect_name(void *ctx, const char *name)
{
	struct name_list *nl = ctx;
	char *s = fr_strdup(name);

	if (s) {
		char **a = grow_for_one(nl->names, nl->cnt, sizeof(*a));

		if (a) {
			nl->names = a;
		} else {
			fr_free(s);
			s = NULL;
		}
	}
	if (!s) {
		nl->nomem = true;
		return 1;
	}
	nl->names[nl->cnt++] = s;
	return 0;
}

static void name_list_fini(struct name_list *nl)
{
	for (size_t i = 0; i < nl->cnt; i++)
		fr_free(nl->names[i]);
	fr_free(nl->names);
}

static fr_status list_names(struct vset *vs, const char *dir, struct name_list *nl,
			    fr_error *err)
{
	fr_status rc;

	memset(nl, 0, sizeof(*nl));
	rc = io_list(vs->io, dir, collect_name, nl, err);
	if (!rc && nl->nomem)
		rc = FR_ERR(err, FR_NOMEM, "listing %s", dir);
	return rc;
}

static bool ends_with(const char *s, size_t len, const char *suf)
{
	size_t n = strlen(suf);

	return len >= n && !memcmp(s + len - n, suf, n);
}

/* Deletes dir/name; a missing file is fine. Keeps the first error in *first. */
static void unlink_in(struct vset *vs, const char *dir, const char *name, fr_status *first,
		      fr_error *err)
{
	char path[PATH_MAX];
	fr_error e;
	fr_status rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return;
	rc = io_unlink(vs->io, path, &e);
	if (!rc)
		FR_LOG(FR_LOG_INFO, "deleted orphan %s", path);
	if (rc && rc != FR_NOT_FOUND && !*first) {
		*first = rc;
		if (err)
			*err = e;
	}
}

/* The ids of the tables and blob files of the current versions, ascending. Requires:
 * vs->apply_mu held. */
static fr_status live_ids(struct vset *vs, uint64_t **out, size_t *cnt)
{
	size_t n = 0, k = 0;
	uint64_t *ids;

	for (size_t i = 0; i < vs->tree_cnt; i++)
		n += tv_table_cnt(vs->trees[i]) + vs->trees[i]->blob_cnt;
	ids = fr_calloc(n ? n : 1, sizeof(*ids));
	if (!ids)
		return FR_NOMEM;
	for (size_t i = 0; i < vs->tree_cnt; i++) {
		const struct tree_version *v = vs->trees[i];

		for (size_t l = 0; l < LEVEL_CNT; l++)
			for (size_t j = 0; j < v->level_cnt[l]; j++)
				ids[k++] = v->levels[l][j]->meta.id;
		/* file ids are unique across tables and blob files */
		for (size_t j = 0; j < v->blob_cnt; j++)
			ids[k++] = v->blobs[j]->meta.id;
	}
	qsort(ids, n, sizeof(*ids), cmp_u64);
	*out = ids;
	*cnt = n;
	return FR_OK;
}

fr_status vset_delete_orphans(struct vset *vs, fr_error *err)
{
	return vset_delete_orphans_keep(vs, NULL, 0, err);
}

fr_status vset_delete_orphans_keep(struct vset *vs, const uint64_t *keep, size_t keep_cnt,
				   fr_error *err)
{
	struct name_list nl = { 0 };
	uint64_t *ids = NULL, id;
	size_t id_cnt = 0;
	fr_status rc, first = FR_OK;

	if (vs->read_only)
		return FR_OK;
	/* held throughout so that no edit adds a table between the snapshot and the deletes */
	fr_mutex_lock(&vs->apply_mu);
	if (live_ids(vs, &ids, &id_cnt)) {
		rc = FR_ERR(err, FR_NOMEM, "deleting orphans in %s", vs->dir);
		goto out;
	}
	rc = list_names(vs, vs->tables_dir, &nl, err);
	if (rc == FR_NOT_FOUND)
		rc = FR_OK;
	if (rc)
		goto out;
	for (size_t i = 0; i < nl.cnt; i++) {
		const char *s = nl.names[i];
		size_t len = strlen(s);

		if (ends_with(s, len, ".tmp") ||
		    (ends_with(s, len, ".sst") && parse_u64(s, len - 4, &id) &&
		     !bsearch(&id, ids, id_cnt, sizeof(*ids), cmp_u64)))
			unlink_in(vs, vs->tables_dir, s, &first, err);
	}
	name_list_fini(&nl);

	rc = list_names(vs, vs->blobs_dir, &nl, err);
	if (rc == FR_NOT_FOUND)
		rc = FR_OK;
	if (rc)
		goto out;
	for (size_t i = 0; i < nl.cnt; i++) {
		const char *s = nl.names[i];
		size_t len = strlen(s);

		if (!ends_with(s, len, ".blob") || !parse_u64(s, len - 5, &id) ||
		    bsearch(&id, ids, id_cnt, sizeof(*ids), cmp_u64))
			continue;
		bool kept = false;
		for (size_t k = 0; k < keep_cnt && !kept; k++)
			kept = keep[k] == id;
		if (!kept)
			unlink_in(vs, vs->blobs_dir, s, &first, err);
	}
	name_list_fini(&nl);

	rc = list_names(vs, vs->dir, &nl, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < nl.cnt; i++) {
		const char *s = nl.names[i];
		size_t pre = strlen(MFST_PREFIX);

		if (!strncmp(s, MFST_PREFIX, pre) && parse_u64(s + pre, strlen(s) - pre, &id) &&
		    id != vs->mfst_num)
			unlink_in(vs, vs->dir, s, &first, err);
	}
	rc = first;
out:
	fr_mutex_unlock(&vs->apply_mu);
	name_list_fini(&nl);
	fr_free(ids);
	return rc;
}
