/* SPDX-License-Identifier: MIT */
/*
 * iter.c - tree iterators (iter_int.h). The sources of a read view (memtables, L0 tables, one
 * lazy iterator per deeper level) are merged in internal key order; the versions of one user
 * key are then adjacent, newest first, and are resolved the way a point lookup resolves them:
 * versions above the snapshot are skipped, a range tombstone newer than a version hides it,
 * a tombstone hides the key, a weak tombstone cancels the next older value.
 *
 * A transaction's iterator adds its own writes as one more source (an overlay) whose versions
 * carry seqno SEQNO_MAX: newer than everything, and visible whatever the snapshot.
 *
 * Going forward the versions of a key are resolved as they are read, newest first, and the
 * merged iterator stops on the winning version: its value is handed out as the source's own
 * view, and the next step skips the rest of the key's versions. Going backward the group is
 * read oldest first, so it is collected (values copied) and then resolved.
 */
#include "db/iter_int.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "compact/merge_iter.h"
#include "compact/rdset.h"
#include "db/db.h"
#include "memtable/memtable.h"
#include "version/version.h"

struct version_ent {
	uint64_t seqno;
	uint8_t type;
	size_t val_off; /* into group_vals */
	size_t val_len;
};

/* A bound of the iterator: bytes in the titer's own allocation, fixed at open. */
struct bound {
	const uint8_t *data;
	size_t len;
};

/* User keys of up to this many bytes are held without an allocation. */
#define TITER_KEY_INLINE 64

struct titer {
	fr_db *db;
	struct tree *tree;
	struct read_view view;
	struct kv_iter *merged;
	struct rdset *rds;
	uint64_t snap;
	bool own;                  /* an overlay of a transaction's writes is merged in */
	struct kv_iter *overlay;   /* until build_sources hands it to the merge */
	bool reverse;
	bool keys_only; /* leave blob values unread */
	struct bound lo, hi;
	bool has_hi;
	bool valid;
	/* the current user key: data is key_inl, or a heap buffer once a key outgrew it. Going
	 * forward, while valid, the merged iterator is on the version of key that won. */
	struct fr_buf key;
	const uint8_t *vdata; /* the current value: a source's view, or val's bytes */
	size_t vlen;
	struct fr_buf val;	   /* a value read from a blob file, or resolved going backward */
	struct version_ent *group; /* reverse: versions of one key, oldest first */
	size_t group_cnt, group_cap;
	struct fr_buf group_vals;
	fr_status status;
	/* not zeroed at open: err is written only on failure, key_inl before it is read */
	fr_error err;
	uint8_t key_inl[TITER_KEY_INLINE];
	/* then the bytes of lo and hi */
};

static bool overlaps(const struct table *tb, const struct titer *it)
{
	if (bytes_cmp(tb->meta.largest, tb->meta.largest_len, it->lo.data, it->lo.len) < 0)
		return false;
	return !it->has_hi ||
	       bytes_cmp(tb->meta.smallest, tb->meta.smallest_len, it->hi.data, it->hi.len) < 0;
}

struct rd_list {
	struct range_del *a;
	size_t cnt, cap;
	uint64_t snap;
	const struct titer *it; /* its bounds */
	bool nomem;
};

static void rd_collect(void *ctx, const struct range_del *rd)
{
	struct rd_list *l = ctx;
	const struct titer *it = l->it;
	if (rd->seqno > l->snap)
		return;
	/* A tombstone outside the bounds hides no key the iterator returns. In a tree shared by
	 * many keyspaces (one per directory, each dropped with a tombstone) the set would
	 * otherwise hold, and sort, every keyspace's tombstones at each iterator open. */
	if (bytes_cmp(rd->end, rd->end_len, it->lo.data, it->lo.len) <= 0 ||
	    (it->has_hi && bytes_cmp(rd->start, rd->start_len, it->hi.data, it->hi.len) >= 0))
		return;
	if (l->cnt == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct range_del *a = fr_realloc(l->a, cap * sizeof(*a));
		if (!a) {
			l->nomem = true;
			return;
		}
		l->a = a;
		l->cap = cap;
	}
	l->a[l->cnt++] = *rd;
}

/* The children of the merge: a few inline (most views are a memtable or two, up to four L0
 * tables and a few levels), more on the heap. */
#define KIDS_INLINE 16

struct kids {
	struct kv_iter **a;
	size_t cnt, cap;
	struct kv_iter *inl[KIDS_INLINE];
};

static fr_status add_child(struct kids *k, struct kv_iter *c)
{
	if (k->cnt == k->cap) {
		size_t cap = k->cap * 2;
		struct kv_iter **a = k->a == k->inl ? fr_malloc(cap * sizeof(*a))
						     : fr_realloc(k->a, cap * sizeof(*a));
		if (!a)
			return FR_NOMEM;
		if (k->a == k->inl)
			memcpy(a, k->inl, k->cnt * sizeof(*a));
		k->a = a;
		k->cap = cap;
	}
	k->a[k->cnt++] = c;
	return FR_OK;
}

/* Builds the merged input and the range tombstone set of the view. */
static fr_status build_sources(struct titer *it, fr_error *err)
{
	struct kids kids;
	kids.a = kids.inl;
	kids.cnt = 0;
	kids.cap = KIDS_INLINE;
	struct rd_list rl = {.snap = it->snap, .it = it};
	struct sst_reader **readers = NULL; /* pinned while rdset copies their tombstones */
	size_t rcnt = 0;
	fr_status rc = FR_OK;
	const struct tree_version *v = it->view.ver;

	if (it->overlay) {
		rc = add_child(&kids, it->overlay);
		if (rc)
			rc = FR_ERR(err, rc, "iterator");
		else
			it->overlay = NULL;
	}
	for (size_t i = 0; i < it->view.mem_cnt && !rc; i++) {
		/* An empty memtable is left out: the snapshot was taken before the view, and
		 * whatever is written to the memtable from now on is newer than it. */
		if (mem_is_empty(it->view.mems[i]))
			continue;
		struct kv_iter *m = mem_iter_new(it->view.mems[i]);
		rc = m ? add_child(&kids, m) : FR_NOMEM;
		if (rc) {
			kv_free(m);
			rc = FR_ERR(err, rc, "iterator");
		} else {
			mem_range_dels_each(it->view.mems[i], rd_collect, &rl);
		}
	}
	for (int l = 0; l < LEVEL_CNT && !rc; l++) {
		size_t first = v->level_cnt[l], last = 0;
		for (size_t i = 0; i < v->level_cnt[l] && !rc; i++) {
			struct table *tb = v->levels[l][i];
			if (!overlaps(tb, it))
				continue;
			if (i < first)
				first = i;
			last = i + 1;
			if (tb->meta.range_del_cnt) {
				if (!readers) {
					readers = fr_calloc(tv_table_cnt(v), sizeof(*readers));
					if (!readers) {
						rc = FR_ERR(err, FR_NOMEM, "iterator");
						break;
					}
				}
				struct sst_reader *r;
				rc = table_reader(tb, &r, err);
				if (rc)
					break;
				readers[rcnt++] = r;
				const struct range_del *rds;
				size_t n = sst_reader_range_dels(r, &rds);
				for (size_t j = 0; j < n; j++)
					rd_collect(&rl, &rds[j]);
			}
			if (l == 0) {
				struct sst_reader *r;
				struct kv_iter *k = NULL;
				rc = table_reader(tb, &r, err);
				if (!rc) {
					rc = sst_iter_new(r, &k, err);
					sst_reader_unref(r);
				}
				if (!rc && add_child(&kids, k)) {
					kv_free(k);
					rc = FR_ERR(err, FR_NOMEM, "iterator");
				}
			}
		}
		if (l > 0 && !rc && first < last) {
			struct kv_iter *k;
			/* the view pins v, and v its level arrays and tables */
			rc = level_iter_new_flags(v->levels[l] + first, last - first,
						  LEVEL_ITER_BORROW, &k, err);
			if (!rc && add_child(&kids, k)) {
				kv_free(k);
				rc = FR_ERR(err, FR_NOMEM, "iterator");
			}
		}
	}
	if (!rc && rl.nomem)
		rc = FR_ERR(err, FR_NOMEM, "iterator");
	if (!rc && rl.cnt && rdset_new(rl.a, rl.cnt, &it->rds))
		rc = FR_ERR(err, FR_NOMEM, "iterator");
	for (size_t i = 0; i < rcnt; i++)
		sst_reader_unref(readers[i]);
	fr_free(readers);
	fr_free(rl.a);
	if (!rc && kids.cnt == 1) {
		/* one source needs no merging: its own order is the merged order */
		it->merged = kids.a[0];
	} else if (!rc) {
		it->merged = merge_iter_new(kids.a, kids.cnt);
		if (!it->merged)
			rc = FR_ERR(err, FR_NOMEM, "iterator");
	} else {
		for (size_t i = 0; i < kids.cnt; i++)
			kv_free(kids.a[i]);
	}
	if (kids.a != kids.inl)
		fr_free(kids.a);
	return rc;
}

void titer_close(struct titer *it)
{
	if (!it)
		return;
	kv_free(it->merged);
	kv_free(it->overlay);
	rdset_free(it->rds);
	if (it->view.ver)
		read_view_release(&it->view);
	buf_fini_inl(&it->key, it->key_inl, sizeof(it->key_inl));
	buf_fini(&it->val);
	buf_fini(&it->group_vals);
	fr_free(it->group);
	fr_free(it);
}

fr_status titer_open(fr_db *db, struct tree *t, const uint8_t *lo, size_t lo_len,
		     const uint8_t *hi, size_t hi_len, bool reverse, uint64_t snap,
		     struct titer **out, fr_error *err)
{
	return titer_open_overlay(db, t, lo, lo_len, hi, hi_len, reverse, snap, NULL, out, err);
}

fr_status titer_open_overlay(fr_db *db, struct tree *t, const uint8_t *lo, size_t lo_len,
			     const uint8_t *hi, size_t hi_len, bool reverse, uint64_t snap,
			     struct kv_iter *overlay, struct titer **out, fr_error *err)
{
	/* one allocation for the iterator, its first keys and both bounds */
	if (!hi)
		hi_len = 0;
	struct titer *it = NULL;
	if (lo_len <= SIZE_MAX - sizeof(*it) - hi_len)
		it = fr_malloc(sizeof(*it) + lo_len + hi_len);
	if (!it) {
		kv_free(overlay);
		return FR_ERR(err, FR_NOMEM, "iterator");
	}
	memset(it, 0, offsetof(struct titer, err));
	it->overlay = overlay;
	it->own = overlay != NULL;
	it->db = db;
	it->tree = t;
	it->snap = snap;
	it->reverse = reverse;
	it->has_hi = hi != NULL;
	buf_init_inl(&it->key, it->key_inl, sizeof(it->key_inl));
	uint8_t *bytes = (uint8_t *)(it + 1);
	if (lo_len)
		memcpy(bytes, lo, lo_len);
	it->lo = (struct bound){bytes, lo_len};
	if (hi_len)
		memcpy(bytes + lo_len, hi, hi_len);
	it->hi = (struct bound){bytes + lo_len, hi_len};
	fr_status rc = tree_view(db, t, &it->view);
	if (rc) {
		titer_close(it);
		return FR_ERR(err, rc, "iterator");
	}
	rc = build_sources(it, err);
	if (rc) {
		titer_close(it);
		return rc;
	}
	*out = it;
	return FR_OK;
}

static bool below_hi(const struct titer *it, const uint8_t *k, size_t n)
{
	return !it->has_hi || bytes_cmp(k, n, it->hi.data, it->hi.len) < 0;
}

static fr_status fail(struct titer *it, fr_error *err)
{
	it->valid = false;
	if (it->merged->status) {
		it->status = it->merged->status;
		it->err = it->merged->err;
	}
	if (err)
		*err = it->err;
	return it->status;
}

/* Makes k[0..n) the current user key. */
static fr_status key_set(struct titer *it, const uint8_t *k, size_t n)
{
	if (n > it->key.cap && buf_grow_inl(&it->key, it->key_inl, n, 0))
		return FR_NOMEM;
	memcpy(it->key.data, k, n);
	it->key.len = n;
	return FR_OK;
}

/* Whether the merged iterator's entry is a version of the current user key. */
static bool at_key(const struct titer *it, const struct kv_iter *m)
{
	return ikey_user_len(m->key_len) == it->key.len &&
	       !memcmp(m->key, it->key.data, it->key.len);
}

/* Whether version seqno s is visible to the iterator. */
static bool ver_visible(const struct titer *it, uint64_t s)
{
	return s <= it->snap || (it->own && s == SEQNO_MAX);
}

/* Resolves versions (newest first) of one key: index of the winning value or -1. */
static long resolve(const struct titer *it, const uint8_t *k, size_t klen,
		    const struct version_ent *vs, size_t n, bool newest_first)
{
	uint64_t cover = rdset_max_cover(it->rds, k, klen, it->snap);
	uint64_t pending = 0;
	for (size_t j = 0; j < n; j++) {
		size_t i = newest_first ? j : n - 1 - j;
		const struct version_ent *e = &vs[i];
		if (!ver_visible(it, e->seqno))
			continue;
		if (e->seqno < cover || e->type == VT_DEL)
			return -1;
		if (e->type == VT_WEAK_DEL) {
			pending++;
			continue;
		}
		if (pending) {
			pending--;
			continue;
		}
		return (long)i;
	}
	return -1;
}

/* The value behind blob handle h into it->val (nothing with keys only: the handle is no value
 * to show), read through the view the iterator pins (a memtable's direct blob files, or the
 * version's). A bad blob fails this key's step with FR_CORRUPTION and leaves the iterator
 * unpositioned. */
static fr_status read_blob(struct titer *it, const uint8_t *h, size_t hlen, fr_error *err)
{
	buf_clear(&it->val);
	if (it->keys_only)
		return FR_OK;
	void *bv;
	size_t bn;
	fr_status rc = view_blob_read(&it->view, h, hlen, &bv, &bn, err);
	if (rc)
		return rc;
	rc = buf_append(&it->val, bv, bn);
	fr_free(bv);
	return rc ? FR_ERR(err, FR_NOMEM, "iterator") : FR_OK;
}

/* Makes version w of the collected group the iterator's current value. */
static fr_status take_version(struct titer *it, long w, fr_error *err)
{
	const struct version_ent *e = &it->group[w];
	if (e->type == VT_BLOB) {
		fr_status rc = read_blob(it, it->group_vals.data + e->val_off, e->val_len, err);
		if (rc)
			return rc;
	} else if (e->val_off == 0 && e->val_len == it->group_vals.len) {
		/* the only value collected: hand the buffer over instead of copying it (the
		 * next step clears group_vals before it collects again) */
		struct fr_buf t = it->val;
		it->val = it->group_vals;
		it->group_vals = t;
	} else {
		buf_clear(&it->val);
		if (buf_append(&it->val, it->group_vals.data + e->val_off, e->val_len))
			return FR_ERR(err, FR_NOMEM, "iterator");
	}
	it->vdata = it->val.data;
	it->vlen = it->val.len;
	it->valid = true;
	return FR_OK;
}

/* Forward: makes the merged iterator's entry, the version of it->key that won, the current
 * one. The merged iterator stays there, so a stored value is handed out as its view. */
static fr_status take_current(struct titer *it, uint8_t type, fr_error *err)
{
	const struct kv_iter *m = it->merged;
	if (type == VT_BLOB) {
		fr_status rc = read_blob(it, m->val, m->val_len, err);
		if (rc)
			return rc;
		it->vdata = it->val.data;
		it->vlen = it->val.len;
	} else if (type == VT_PUT) {
		it->vdata = m->val;
		it->vlen = m->val_len;
	} else {
		it->vdata = NULL;
		it->vlen = 0;
	}
	it->valid = true;
	return FR_OK;
}

static fr_status group_push(struct titer *it, const struct kv_iter *m)
{
	if (it->group_cnt == it->group_cap) {
		size_t cap = it->group_cap ? it->group_cap * 2 : 8;
		struct version_ent *g = fr_realloc(it->group, cap * sizeof(*g));
		if (!g)
			return FR_NOMEM;
		it->group = g;
		it->group_cap = cap;
	}
	struct version_ent *e = &it->group[it->group_cnt];
	e->seqno = ikey_seqno(m->key, m->key_len);
	e->type = ikey_type(m->key, m->key_len);
	e->val_off = it->group_vals.len;
	e->val_len = 0;
	if ((e->type == VT_PUT || e->type == VT_BLOB) && ver_visible(it, e->seqno)) {
		if (buf_append(&it->group_vals, m->val, m->val_len))
			return FR_NOMEM;
		e->val_len = m->val_len;
	}
	it->group_cnt++;
	return FR_OK;
}

/* Forward: from the merged position (the newest version of a key, or the end), finds the next
 * visible key and stops on its winning version. The versions are resolved as resolve() does,
 * newest first: invisible ones are passed over, a covering range tombstone or a tombstone
 * hides the key, each weak tombstone cancels the next older value. */
static fr_status fwd_find(struct titer *it, fr_error *err)
{
	struct kv_iter *m = it->merged;
	it->valid = false;
	while (m->valid) {
		size_t ulen = ikey_user_len(m->key_len);
		if (!below_hi(it, m->key, ulen))
			return FR_OK;
		if (key_set(it, m->key, ulen))
			return FR_ERR(err, FR_NOMEM, "iterator");
		uint64_t cover =
			it->rds ? rdset_max_cover(it->rds, it->key.data, it->key.len, it->snap) : 0;
		uint64_t pending = 0;
		bool hidden = false;
		do {
			uint64_t tr = ikey_trailer(m->key, m->key_len);
			uint64_t s = tr >> 8;
			uint8_t type = (uint8_t)tr;
			if (!hidden && ver_visible(it, s)) {
				if (s < cover || type == VT_DEL)
					hidden = true;
				else if (type == VT_WEAK_DEL)
					pending++;
				else if (pending)
					pending--;
				else
					return take_current(it, type, err);
			}
			kv_next(m);
		} while (m->valid && at_key(it, m));
		if (m->status)
			return fail(it, err);
	}
	return m->status ? fail(it, err) : FR_OK;
}

/* Forward step: past the older versions of the current key, then on to the next visible one. */
static fr_status fwd_next(struct titer *it, fr_error *err)
{
	struct kv_iter *m = it->merged;
	do
		kv_next(m);
	while (m->valid && at_key(it, m));
	if (m->status)
		return fail(it, err);
	return fwd_find(it, err);
}

/* Reverse: the merged iterator sits on the oldest version of a key; collect the group going
 * backward and resolve it. */
static fr_status rev_find(struct titer *it, fr_error *err)
{
	struct kv_iter *m = it->merged;
	it->valid = false;
	while (m->valid) {
		size_t ulen = ikey_user_len(m->key_len);
		if (bytes_cmp(m->key, ulen, it->lo.data, it->lo.len) < 0)
			return FR_OK;
		if (key_set(it, m->key, ulen))
			return FR_ERR(err, FR_NOMEM, "iterator");
		bool in_range = below_hi(it, it->key.data, it->key.len);
		it->group_cnt = 0;
		buf_clear(&it->group_vals);
		do {
			if (in_range && group_push(it, m))
				return FR_ERR(err, FR_NOMEM, "iterator");
			kv_prev(m);
		} while (m->valid && at_key(it, m));
		if (m->status)
			return fail(it, err);
		if (!in_range)
			continue;
		/* group is oldest first */
		long w = resolve(it, it->key.data, it->key.len, it->group, it->group_cnt, false);
		if (w >= 0)
			return take_version(it, w, err);
	}
	return m->status ? fail(it, err) : FR_OK;
}

/* A seek whose key lies in two or more L0 tables pays a block load in each: counted towards a
 * compaction of L0 (bg_note_l0_seek). */
static void note_l0_seek(struct titer *it, const uint8_t *k, size_t klen)
{
	const struct tree_version *v = it->view.ver;
	size_t hits = 0;
	for (size_t i = 0; i < v->level_cnt[0] && hits < 2; i++)
		hits += table_spans(v->levels[0][i], k, klen);
	if (hits >= 2)
		bg_note_l0_seek(it->db, it->tree, v);
}

static fr_status seek_ukey(struct titer *it, const uint8_t *k, size_t klen, fr_error *err)
{
	uint8_t stackbuf[256];
	uint8_t *ik = klen + IKEY_TRAILER_LEN <= sizeof(stackbuf)
			      ? stackbuf
			      : fr_malloc(klen + IKEY_TRAILER_LEN);
	if (!ik)
		return FR_ERR(err, FR_NOMEM, "iterator");
	fr_status rc;
	if (!it->reverse) {
		note_l0_seek(it, k, klen);
		ikey_encode(ik, k, klen, SEQNO_MAX, VT_SEEK);
		kv_seek(it->merged, ik, klen + IKEY_TRAILER_LEN);
		rc = fwd_find(it, err);
	} else {
		ikey_encode(ik, k, klen, 0, 0); /* the last internal key of user key k */
		kv_seek_prev(it->merged, ik, klen + IKEY_TRAILER_LEN);
		rc = rev_find(it, err);
	}
	if (ik != stackbuf)
		fr_free(ik);
	return rc;
}

fr_status titer_first(struct titer *it, fr_error *err)
{
	if (it->status)
		return fail(it, err);
	if (!it->reverse)
		return seek_ukey(it, it->lo.data, it->lo.len, err);
	if (!it->has_hi) {
		kv_seek_last(it->merged);
		return rev_find(it, err);
	}
	return seek_ukey(it, it->hi.data, it->hi.len, err);
}

fr_status titer_next(struct titer *it, fr_error *err)
{
	if (it->status)
		return fail(it, err);
	if (!it->valid)
		return FR_OK;
	return it->reverse ? rev_find(it, err) : fwd_next(it, err);
}

fr_status titer_seek(struct titer *it, const uint8_t *k, size_t klen, fr_error *err)
{
	if (it->status)
		return fail(it, err);
	if (!it->reverse) {
		if (bytes_cmp(k, klen, it->lo.data, it->lo.len) < 0) {
			k = it->lo.data;
			klen = it->lo.len;
		}
	} else if (it->has_hi && bytes_cmp(k, klen, it->hi.data, it->hi.len) > 0) {
		k = it->hi.data;
		klen = it->hi.len;
	}
	return seek_ukey(it, k, klen, err);
}

void titer_bounds(const struct titer *it, const uint8_t **lo, size_t *lo_len,
		  const uint8_t **hi, size_t *hi_len)
{
	*lo = it->lo.data;
	*lo_len = it->lo.len;
	*hi = it->has_hi ? it->hi.data : NULL;
	*hi_len = it->hi.len;
}

bool titer_valid(const struct titer *it)
{
	return it->valid;
}

const uint8_t *titer_key(const struct titer *it, size_t *len)
{
	*len = it->key.len;
	return it->key.data;
}

void titer_set_keys_only(struct titer *it)
{
	it->keys_only = true;
}

const uint8_t *titer_value(const struct titer *it, size_t *len)
{
	*len = it->vlen;
	return it->vdata;
}
