/* SPDX-License-Identifier: MIT */
/*
 * memtable.h - an in-memory table of internal entries: a skiplist in an arena (skiplist.h),
 * plus the range tombstones written to it.
 *
 * Thread-safety: writes (mem_put, mem_add_range_del) from one thread at a time; reads and
 * iterators from any number of threads concurrently with that writer, without locks (entries
 * are published with release stores). A memtable is refcounted: mem_ref needs an existing
 * reference; the last mem_unref frees it.
 */
#ifndef FRACTIO_MEMTABLE_MEMTABLE_H
#define FRACTIO_MEMTABLE_MEMTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct blob_direct;
struct kv_iter;
struct range_del;
struct mem;

/* A new empty memtable with one reference; NULL on out of memory. */
struct mem *mem_new(uint64_t id);
void mem_ref(struct mem *m);
void mem_unref(struct mem *m);
uint64_t mem_id(const struct mem *m);

/* Adds version (ukey, seqno, type) with value val (empty for tombstones). The same
 * (ukey, seqno) is never added twice. FR_NOMEM on failure (nothing added). */
fr_status mem_put(struct mem *m, const void *ukey, size_t ulen, uint64_t seqno, uint8_t type,
		  const void *val, size_t vlen);
/* Adds a range tombstone [start, end) at seqno. */
fr_status mem_add_range_del(struct mem *m, const void *start, size_t slen, const void *end,
			    size_t elen, uint64_t seqno);

/* The newest version of ukey with seqno <= snap (any type). FR_OK with *type, *seqno and a
 * value view valid while the caller holds a reference to m; FR_NOT_FOUND if none. Range
 * tombstones are not applied here. */
fr_status mem_get(struct mem *m, const void *ukey, size_t ulen, uint64_t snap, uint8_t *type,
		  uint64_t *seqno, const uint8_t **val, size_t *vlen);

/* Calls fn for every range tombstone added so far; views valid while m is referenced. */
typedef void (*mem_range_del_fn)(void *ctx, const struct range_del *rd);
void mem_range_dels_each(struct mem *m, mem_range_del_fn fn, void *ctx);
size_t mem_range_del_cnt(const struct mem *m);

/* An iterator over all internal entries (every version), in internal key order; it holds a
 * reference to m until kv_free. NULL on out of memory. */
struct kv_iter *mem_iter_new(struct mem *m);

/* Direct blob files (blob.h) whose handles the memtable's VT_BLOB entries hold: attached by the
 * writer before the entries that refer to them (takes a reference, dropped with the memtable);
 * found by any reader. FR_NOMEM. */
fr_status mem_blob_attach(struct mem *m, struct blob_direct *d);
/* The attached file of id `id`, or NULL; valid while m is referenced. */
struct blob_direct *mem_blob_find(struct mem *m, uint64_t id);
size_t mem_blob_cnt(struct mem *m);
/* The i-th attached file, newest first (NULL past the end). */
struct blob_direct *mem_blob_at(struct mem *m, size_t i);
/* Bytes in the attached files (blob_direct_size: only their writer may ask). */
uint64_t mem_blob_bytes(struct mem *m);

uint64_t mem_bytes(const struct mem *m);     /* arena bytes in use */
uint64_t mem_entry_cnt(const struct mem *m); /* point entries */
uint64_t mem_max_seqno(const struct mem *m); /* 0 when empty */
bool mem_is_empty(const struct mem *m);      /* no entries and no range tombstones */

#endif
