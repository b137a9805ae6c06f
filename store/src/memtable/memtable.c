/* SPDX-License-Identifier: MIT */
/*
 * memtable.c - a memtable (memtable.h): point entries in a skiplist (skiplist.h) and range
 * tombstones in an append-only linked list, both stored in one arena, so the memtable's size is
 * the arena's and everything dies together at the last mem_unref.
 *
 * Concurrency: one writer at a time, readers without locks. The skiplist publishes its nodes
 * itself. A range tombstone is written completely into the arena and then linked with a release
 * store (to rdel_head for the first, to the previous tail's next otherwise); readers walk the
 * list with acquire loads. The counters are published after the data they count, with release
 * stores, so a reader that sees a count (or max seqno) also sees what it covers.
 */
#include "memtable/memtable.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "blob/blob.h"
#include "base/arena.h"
#include "base/fr_assert.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/sync.h"
#include "memtable/skiplist.h"

/* A range tombstone in the arena: rd's views point at bytes in the same arena. */
struct mem_rdel {
	struct range_del rd;
	/* atomic: set with a release store when the next tombstone is appended (mem_add_range_del)
	 * and read with an acquire load (mem_range_dels_each) */
	void *next;
};

struct mem {
	uint32_t refs; /* atomic: acq_rel add/sub; the last unref frees */
	uint64_t id;   /* immutable */
	struct arena arena;     /* writer only (arena_bytes from any thread) */
	struct skiplist skl;    /* one writer, lock-free readers (skiplist.h) */
	void *rdel_head;        /* atomic: first tombstone, release-published, acquire-read */
	struct mem_rdel *rdel_tail; /* writer only */
	uint64_t rdel_cnt;  /* atomic: release store after the tombstone is linked */
	uint64_t entry_cnt; /* atomic: release store after the entry is linked */
	uint64_t max_seqno; /* atomic: release store after the entry or tombstone is linked */
	void *blobs;        /* atomic: the direct blob files (struct mem_blob list), newest first;
			     * release-published by mem_blob_attach, acquire-read */
};

/* A direct blob file the memtable's VT_BLOB entries may refer to (one reference). */
struct mem_blob {
	struct blob_direct *d;
	struct mem_blob *next;
};

/* The iterator over all internal entries; holds a reference to m. */
struct mem_iter {
	struct kv_iter base;
	struct mem *m;
	struct skl_iter si;
};

struct mem *mem_new(uint64_t id)
{
	struct mem *m = fr_calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	arena_init(&m->arena);
	if (skl_init(&m->skl, &m->arena) != FR_OK) {
		fr_free(m);
		return NULL;
	}
	m->refs = 1;
	m->id = id;
	return m;
}

void mem_ref(struct mem *m)
{
	/* atomic: the caller already holds a reference, so m cannot be freed meanwhile */
	atomic_add_u32(&m->refs, 1);
}

void mem_unref(struct mem *m)
{
	if (!m)
		return;
	/* atomic, acq_rel: the release half orders this holder's reads before the free; the
	 * acquire half makes the last holder see every other holder's accesses finished */
	if (atomic_sub_u32(&m->refs, 1) != 0)
		return;
	for (struct mem_blob *b = m->blobs, *n; b; b = n) {
		n = b->next;
		blob_direct_unref(b->d);
		fr_free(b);
	}
	skl_fini(&m->skl);
	arena_fini(&m->arena);
	fr_free(m);
}

fr_status mem_blob_attach(struct mem *m, struct blob_direct *d)
{
	struct mem_blob *b = fr_malloc(sizeof(*b));
	if (!b)
		return FR_NOMEM;
	blob_direct_ref(d);
	b->d = d;
	b->next = atomic_load_rlx_ptr(&m->blobs); /* writer only */
	/* release: pairs with the acquire of the readers (mem_blob_find, mem_blob_at) */
	atomic_store_rel_ptr(&m->blobs, b);
	return FR_OK;
}

struct blob_direct *mem_blob_find(struct mem *m, uint64_t id)
{
	for (struct mem_blob *b = atomic_load_acq_ptr(&m->blobs); b; b = b->next)
		if (blob_direct_id(b->d) == id)
			return b->d;
	return NULL;
}

size_t mem_blob_cnt(struct mem *m)
{
	size_t n = 0;
	for (struct mem_blob *b = atomic_load_acq_ptr(&m->blobs); b; b = b->next)
		n++;
	return n;
}

struct blob_direct *mem_blob_at(struct mem *m, size_t i)
{
	struct mem_blob *b = atomic_load_acq_ptr(&m->blobs);
	for (; b && i; i--)
		b = b->next;
	return b ? b->d : NULL;
}

uint64_t mem_blob_bytes(struct mem *m)
{
	uint64_t n = 0;
	for (struct mem_blob *b = atomic_load_acq_ptr(&m->blobs); b; b = b->next)
		n += blob_direct_size(b->d);
	return n;
}

uint64_t mem_id(const struct mem *m)
{
	return m->id;
}

static void note_seqno(struct mem *m, uint64_t seqno)
{
	/* writer only updates; release pairs with the acquire load in mem_max_seqno */
	if (seqno > atomic_load_rlx_u64(&m->max_seqno))
		atomic_store_rel_u64(&m->max_seqno, seqno);
}

fr_status mem_put(struct mem *m, const void *ukey, size_t ulen, uint64_t seqno, uint8_t type,
		  const void *val, size_t vlen)
{
	struct skl_node *n;
	fr_status rc;

	if (seqno > SEQNO_MAX || type == VT_SEEK || ulen > UINT32_MAX - IKEY_TRAILER_LEN)
		return FR_INVALID;
	n = skl_node_new(&m->skl, ulen + IKEY_TRAILER_LEN, vlen);
	if (!n)
		return FR_NOMEM;
	ikey_encode(skl_node_key_buf(n), ukey, ulen, seqno, type);
	if (vlen)
		memcpy(skl_node_val_buf(n), val, vlen);
	rc = skl_node_insert(&m->skl, n);
	if (rc != FR_OK)
		return rc;
	/* release: pairs with the acquire load in mem_entry_cnt; writer is the sole updater */
	atomic_store_rel_u64(&m->entry_cnt, atomic_load_rlx_u64(&m->entry_cnt) + 1);
	note_seqno(m, seqno);
	return FR_OK;
}

fr_status mem_add_range_del(struct mem *m, const void *start, size_t slen, const void *end,
			    size_t elen, uint64_t seqno)
{
	struct mem_rdel *r;
	uint8_t *p;

	if (seqno > SEQNO_MAX)
		return FR_INVALID;
	if (slen > SIZE_MAX - sizeof(*r) || elen > SIZE_MAX - sizeof(*r) - slen)
		return FR_NOMEM;
	r = arena_alloc(&m->arena, sizeof(*r) + slen + elen);
	if (!r)
		return FR_NOMEM;
	p = (uint8_t *)(r + 1);
	if (slen)
		memcpy(p, start, slen);
	if (elen)
		memcpy(p + slen, end, elen);
	r->rd.start = p;
	r->rd.start_len = slen;
	r->rd.end = p + slen;
	r->rd.end_len = elen;
	r->rd.seqno = seqno;
	r->next = NULL; /* not reachable yet: plain store */

	/* release: pairs with the acquire loads in mem_range_dels_each; r is complete */
	if (m->rdel_tail)
		atomic_store_rel_ptr(&m->rdel_tail->next, r);
	else
		atomic_store_rel_ptr(&m->rdel_head, r);
	m->rdel_tail = r;
	/* release: pairs with the acquire load in mem_range_del_cnt */
	atomic_store_rel_u64(&m->rdel_cnt, atomic_load_rlx_u64(&m->rdel_cnt) + 1);
	note_seqno(m, seqno);
	return FR_OK;
}

fr_status mem_get(struct mem *m, const void *ukey, size_t ulen, uint64_t snap, uint8_t *type,
		  uint64_t *seqno, const uint8_t **val, size_t *vlen)
{
	struct skl_iter it;
	const uint8_t *k;
	size_t klen;

	if (snap > SEQNO_MAX)
		snap = SEQNO_MAX;
	skl_iter_init(&it, &m->skl);
	skl_iter_seek_parts(&it, ukey, ulen, ikey_pack(snap, VT_SEEK));
	if (!skl_iter_valid(&it))
		return FR_NOT_FOUND;
	k = skl_iter_key(&it, &klen);
	if (bytes_cmp(k, ikey_user_len(klen), ukey, ulen) != 0)
		return FR_NOT_FOUND;
	*type = ikey_type(k, klen);
	*seqno = ikey_seqno(k, klen);
	*val = skl_iter_val(&it, vlen);
	return FR_OK;
}

void mem_range_dels_each(struct mem *m, mem_range_del_fn fn, void *ctx)
{
	/* acquire: pairs with the release stores in mem_add_range_del */
	const struct mem_rdel *r = atomic_load_acq_ptr(&m->rdel_head);

	while (r) {
		fn(ctx, &r->rd);
		r = atomic_load_acq_ptr(&r->next);
	}
}

size_t mem_range_del_cnt(const struct mem *m)
{
	/* acquire: pairs with the release store in mem_add_range_del */
	return (size_t)atomic_load_acq_u64(&m->rdel_cnt);
}

uint64_t mem_bytes(const struct mem *m)
{
	return arena_bytes(&m->arena);
}

uint64_t mem_entry_cnt(const struct mem *m)
{
	/* acquire: pairs with the release store in mem_put */
	return atomic_load_acq_u64(&m->entry_cnt);
}

uint64_t mem_max_seqno(const struct mem *m)
{
	/* acquire: pairs with the release store in note_seqno */
	return atomic_load_acq_u64(&m->max_seqno);
}

bool mem_is_empty(const struct mem *m)
{
	return mem_entry_cnt(m) == 0 && mem_range_del_cnt(m) == 0;
}

/* ---- iterator ---- */

static void mi_sync(struct mem_iter *mi)
{
	struct kv_iter *it = &mi->base;

	it->valid = skl_iter_valid(&mi->si);
	if (it->valid) {
		it->key = skl_iter_key(&mi->si, &it->key_len);
		it->val = skl_iter_val(&mi->si, &it->val_len);
	} else {
		it->key = NULL;
		it->key_len = 0;
		it->val = NULL;
		it->val_len = 0;
	}
}

static void mi_seek_first(struct kv_iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;

	skl_iter_seek_first(&mi->si);
	mi_sync(mi);
}

static void mi_seek_last(struct kv_iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;

	skl_iter_seek_last(&mi->si);
	mi_sync(mi);
}

static void mi_seek(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct mem_iter *mi = (struct mem_iter *)it;

	skl_iter_seek(&mi->si, ikey, len);
	mi_sync(mi);
}

static void mi_seek_prev(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct mem_iter *mi = (struct mem_iter *)it;

	skl_iter_seek_prev(&mi->si, ikey, len);
	mi_sync(mi);
}

static void mi_next(struct kv_iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;

	if (FR_NEVER(!skl_iter_valid(&mi->si)))
		return;
	skl_iter_next(&mi->si);
	mi_sync(mi);
}

static void mi_prev(struct kv_iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;

	if (FR_NEVER(!skl_iter_valid(&mi->si)))
		return;
	skl_iter_prev(&mi->si);
	mi_sync(mi);
}

static void mi_free(struct kv_iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;

	mem_unref(mi->m);
	fr_free(mi);
}

static const struct kv_iter_ops mem_iter_ops = {
	.seek_first = mi_seek_first,
	.seek_last = mi_seek_last,
	.seek = mi_seek,
	.seek_prev = mi_seek_prev,
	.next = mi_next,
	.prev = mi_prev,
	.free = mi_free,
};

struct kv_iter *mem_iter_new(struct mem *m)
{
	struct mem_iter *mi = fr_malloc(sizeof(*mi)); /* every field is set below */

	if (!mi)
		return NULL;
	kv_iter_init(&mi->base, &mem_iter_ops);
	mi->m = m;
	mem_ref(m);
	skl_iter_init(&mi->si, &m->skl);
	return &mi->base;
}
