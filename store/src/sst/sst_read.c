/* SPDX-License-Identifier: MIT */
/*
 * sst_read.c - reading a table (FORMAT.md §4): open checks the footer and loads the index,
 * filter, range tombstones and properties, verifying every checksum and walking the whole index
 * once; blocks are fetched by fetch_block(), the one place blocks come off disk, and the one
 * place the block cache sits. Point reads and the table iterator (a kv_iter) seek the index for
 * the first block whose last key is >= the target and move to the next block when a block runs
 * out, which covers a key whose versions span many blocks.
 *
 * With a block cache, the index and filter are cache entries like data blocks, so every byte a
 * reader holds beyond a few handles is bounded by the cache. A point read then makes up to three
 * cache lookups (filter, index, data block), each a shard mutex and a hash probe; the index and
 * filter of a table in use are touched by every read of it and so stay at the hot end of the
 * LRU. A block is checked (checksum, then the restart array of a sorted block or the shape of a
 * filter) before it is inserted, so a cached block is used through an O(1) view (blk_view)
 * instead of blk_init's walk of its restart array, which for an index (a restart per entry)
 * would cost as much as the lookup it serves.
 *
 * The one exception to "only in the cache" is the top level of a partitioned index, which the
 * reader keeps as it keeps the properties: one entry per 64 KiB of index, about 40 bytes per
 * 6 MiB of table, and it spares every read of the table a fourth cache lookup (the three are
 * then filter, partition, data block).
 *
 * A partitioned index (§4.4.1) is read through an index cursor (struct icur) that both point
 * reads and iterators use: a cursor over the top level picks the partition, which is fetched
 * like any block, and a second cursor walks it, so the rest of the reader sees one sequence of
 * index entries either way. A partition is checked entry by entry each time it is read from
 * disk, before the cache may keep it (the checks open makes of a single index); the bounds that
 * check needs (the keys of this and the previous partition) come from the top level.
 *
 * A point read in a table whose data blocks carry hash indexes (§4.3.1) computes the user key's
 * XXH3 once, for the filter and the block's hash index alike.
 *
 * The reader is immutable after open; concurrent readers share it and each get or iterator
 * keeps its own cursors and block handles, so no lock is needed. The reference count is atomic.
 */
#include "sst/sst.h"

#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/sync.h"
#include "io/ftab.h"
#include "io/io.h"
#include "sst/block.h"
#include "sst/cache.h"
#include "sst/filter.h"
#include "sst/format.h"

/* An index partition kept by a reader without a cache. */
struct rpart {
	uint64_t off; /* its handle's offset */
	uint8_t *mem;
	struct blk b;
};

/* A block's contents and what holds them: a pinned cache entry, memory of our own (mem, or a
 * cache entry not put yet: fresh), or (all NULL) the reader's own copy. */
struct sst_blockref {
	struct blk_cache_entry *ent;
	struct blk_cache *cache; /* ent's cache */
	struct blk_cache_entry *fresh;
	uint8_t *mem;
	const uint8_t *data;
	size_t len;
};

struct sst_reader {
	uint32_t refs; /* atomic: acq_rel add/sub, the unref that reaches 0 frees */
	struct fr_io *io;
	char *path;
	struct sst_read_env env; /* borrowed, immutable */
	struct io_file *f;       /* pread only: safe from many threads; NULL with env.files */
	uint64_t meta_off;       /* data blocks lie in [0, meta_off) */
	uint64_t footer_off;     /* every block lies in [0, footer_off) */
	struct sst_meta meta;
	struct sst_options o; /* as recorded in the properties */
	uint64_t data_block_cnt;
	uint32_t version;	 /* the footer's */
	uint64_t index_parts;	 /* 0: the index is one block; else partitions (§4.4.1) */
	uint64_t part_lo;	 /* partitions lie in [part_lo, part_hi) */
	uint64_t part_hi;
	bool data_hash;		 /* data blocks may carry hash indexes (§4.3.1) */
	struct sst_handle index_h; /* the single or top-level index */
	struct sst_handle filter_h;
	bool has_filter;
	/* The index (the top level of a partitioned one) and the filter, for the reader's life:
	 * its own copies without a cache; with one, entries of the cache pinned (charged to the
	 * cache, never evicted while the table is open). Every point read uses both, and a
	 * lookup per read would make their shards the hottest locks of the cache. Partitions
	 * are the reader's own (by offset) only without a cache. */
	uint8_t *index_mem;
	struct blk index;
	struct rpart *parts;
	uint8_t *filter_mem;
	const uint8_t *filter; /* the bloom encoding */
	size_t filter_len;
	struct sst_blockref index_pin, filter_pin; /* the pinned entries, ent NULL when none */
	uint8_t *rd_mem;
	struct range_del *rds;
	size_t rd_cnt;
	uint64_t gseq; /* 0, or the seqno every entry reads as (sst_reader_set_global_seqno) */
};

static void block_release(struct sst_blockref *b)
{
	blk_cache_release(b->cache, b->ent);
	blk_cache_entry_discard(b->fresh);
	fr_free(b->mem);
	memset(b, 0, sizeof(*b));
}

/* Checks that stored block h (plus trailer) lies inside [0, limit). */
static bool handle_fits(const struct sst_handle *h, uint64_t limit)
{
	return h->size <= limit && limit - h->size >= SST_BLOCK_TRAILER_LEN &&
	       h->off <= limit - h->size - SST_BLOCK_TRAILER_LEN;
}

/* Reads exactly len bytes at off, through the file table when there is one. */
static fr_status reader_pread(const struct sst_reader *r, void *buf, size_t len, uint64_t off,
			      fr_error *err)
{
	size_t got = 0;
	fr_status rc;

	if (!r->env.files)
		return io_pread_exact(r->f, r->path, buf, len, off, err);
	rc = ftab_pread(r->env.files, r->meta.id, r->path, buf, len, off, &got, err);
	/* the file may have to be opened again: its loss is damage, never "no such key" */
	if (rc == FR_NOT_FOUND)
		return FR_CORRUPT(err, r->path, off, "table file is missing");
	if (!rc && got != len)
		return FR_CORRUPT(err, r->path, off + got, "file ends early");
	return rc;
}

/* The memory read_block puts a block in: a fresh cache entry (keep) or a plain allocation. */
static void *blockmem_new(bool keep, size_t n)
{
	return keep ? (void *)blk_cache_entry_new(n) : fr_malloc(n);
}

static uint8_t *blockmem_bytes(bool keep, void *m)
{
	return keep ? blk_cache_entry_mem(m) : m;
}

static void blockmem_free(bool keep, void *m)
{
	if (keep)
		blk_cache_entry_discard(m);
	else
		fr_free(m);
}

/*
 * Reads and unwraps the stored block at h (FORMAT.md §4.2) into memory of its own: a fresh
 * cache entry (out->fresh) when keep is set and the reader has a cache, for cache_keep to put
 * after the checks, else a plain allocation (out->mem). A small stored block is read on the
 * stack, a bigger one into that memory; a compressed one (the usual kind) is then decompressed
 * into the block's memory, and a small uncompressed one copied there, so that a block costs one
 * allocation, two when it is big and compressed.
 * h must have passed handle_fits(h, r->footer_off).
 */
static fr_status read_block(const struct sst_reader *r, const struct sst_handle *h, bool keep,
			    struct sst_blockref *out, fr_error *err)
{
	size_t n = (size_t)h->size + SST_BLOCK_TRAILER_LEN;
	uint8_t small[8192], *stored = small;
	void *sm = NULL, *m = NULL; /* the memory of the stored bytes (when not small), the block's */
	struct blk_stored sb = {0};
	fr_status rc;

	keep = keep && r->env.cache;
	memset(out, 0, sizeof(*out));
	if (n > sizeof(small)) {
		sm = blockmem_new(keep, n);
		if (!sm)
			return FR_ERR(err, FR_NOMEM, "table %s: block of %zu bytes", r->path, n);
		stored = blockmem_bytes(keep, sm);
	}
	rc = reader_pread(r, stored, n, h->off, err);
	if (!rc)
		rc = blk_stored_check(stored, n, r->path, h->off, &sb, err);
	if (!rc && !sb.lz4 && sm) {
		m = sm; /* the stored bytes are the block: the trailer after it costs no copy */
		sm = NULL;
	} else if (!rc) {
		m = blockmem_new(keep, sb.raw_len);
		if (!m)
			rc = FR_ERR(err, FR_NOMEM, "table %s: block of %zu bytes", r->path,
				    sb.raw_len);
		else
			rc = blk_stored_unpack(&sb, blockmem_bytes(keep, m), r->path, h->off, err);
	}
	blockmem_free(keep, sm);
	if (rc) {
		blockmem_free(keep, m);
		return rc;
	}
	if (keep)
		out->fresh = m;
	else
		out->mem = m;
	out->data = blockmem_bytes(keep, m);
	out->len = sb.raw_len;
	return FR_OK;
}

/* A view of sorted block contents that blk_init has accepted before: the same struct blk, in
 * O(1) instead of a walk of the restart array. */
static void blk_view(struct blk *b, const struct sst_reader *r, const uint8_t *data, size_t len,
		     uint64_t off)
{
	blk_init_checked(b, data, len, blk_ikey_cmp, IKEY_TRAILER_LEN, r->path, off);
}

static fr_status index_handle(const struct sst_reader *r, const struct blk_iter *ii,
			      struct sst_handle *h, fr_error *err)
{
	if (!sst_handle_decode(ii->val, ii->val + ii->val_len, h))
		return FR_CORRUPT(err, r->path, ii->b->file_off, "bad block handle in the index");
	return FR_OK;
}

/* Opens a sorted block of the given kind: its restart array, and a hash index only where one
 * may be (§4.3.1: data blocks of a table that says so). */
static fr_status check_sorted(const struct sst_reader *r, enum sst_block_kind kind,
			      const struct sst_handle *h, const uint8_t *data, size_t len,
			      struct blk *b, fr_error *err)
{
	fr_status rc = blk_init(b, data, len, blk_ikey_cmp, IKEY_TRAILER_LEN, r->path, h->off, err);
	if (rc || !b->bucket_cnt)
		return rc;
	if (kind != SST_BLOCK_DATA)
		return FR_CORRUPT(err, r->path, h->off, "hash index in an index block");
	if (!r->data_hash)
		return FR_CORRUPT(err, r->path, h->off,
				  "hash index in a data block of a table without them");
	return FR_OK;
}

/* What a walk of an index block (single, top level or partition) requires of it. */
struct iwalk {
	uint64_t lo_off; /* every handle inside [lo_off, hi_off), ascending, apart */
	uint64_t hi_off;
	const uint8_t *above; /* every key > above (NULL: no bound) */
	size_t above_len;
	const uint8_t *last; /* the last key equals it (NULL: any) */
	size_t last_len;
	uint64_t cnt;	  /* out: entries */
	uint64_t end_off; /* out: the end of the last handle's block and trailer */
};

/* Walks every entry of index block b (FORMAT.md §4.4): keys strictly ascending and within the
 * bounds of w, every value exactly one handle, handles ascending and apart inside w's area. */
static fr_status walk_index(const struct sst_reader *r, const struct blk *b, struct iwalk *w,
			    fr_error *err)
{
	struct blk_iter ii;
	struct fr_buf prev;
	uint64_t end = w->lo_off;
	fr_status rc;

	w->cnt = 0;
	buf_init(&prev);
	blk_iter_init(&ii, b);
	for (rc = blk_iter_seek_first(&ii, err); !rc && ii.valid; rc = blk_iter_next(&ii, err)) {
		struct sst_handle h = {0};
		const uint8_t *lo = w->cnt ? prev.data : w->above;
		size_t lo_len = w->cnt ? prev.len : w->above_len;

		rc = index_handle(r, &ii, &h, err);
		if (rc)
			break;
		if (lo && ikey_cmp(lo, lo_len, ii.key.data, ii.key.len) >= 0) {
			rc = FR_CORRUPT(err, r->path, b->file_off, "index keys out of order");
			break;
		}
		if (!handle_fits(&h, w->hi_off) || h.off < end) {
			rc = FR_CORRUPT(err, r->path, b->file_off, "index handle out of range");
			break;
		}
		end = h.off + h.size + SST_BLOCK_TRAILER_LEN;
		buf_clear(&prev);
		rc = buf_append(&prev, ii.key.data, ii.key.len);
		if (rc) {
			FR_ERR(err, rc, "table %s: index", r->path);
			break;
		}
		w->cnt++;
	}
	/* §4.4.1: a partition ends at the key the top level files it under */
	if (!rc && w->last && (!w->cnt || ikey_cmp(prev.data, prev.len, w->last, w->last_len)))
		rc = FR_CORRUPT(err, r->path, b->file_off,
				"index partition does not end at its top-level key");
	w->end_off = end;
	blk_iter_fini(&ii);
	buf_fini(&prev);
	return rc;
}

/* The checks a block passes before anyone uses it, or the cache keeps it; a partition's walk
 * needs its bounds w (NULL for other kinds). */
static fr_status check_block(const struct sst_reader *r, enum sst_block_kind kind,
			     const struct sst_handle *h, const uint8_t *data, size_t len,
			     struct iwalk *w, fr_error *err)
{
	struct blk b;
	fr_status rc;

	if (kind != SST_BLOCK_FILTER) {
		rc = check_sorted(r, kind, h, data, len, &b, err);
		if (!rc && kind == SST_BLOCK_INDEX_PART)
			rc = walk_index(r, &b, w, err);
		return rc;
	}
	/* FORMAT.md §4.5: u8 filter type, then the bloom encoding */
	if (len < 1 || data[0] != SST_FILTER_BLOOM)
		return FR_CORRUPT(err, r->path, h->off, "unknown filter type");
	if (!bloom_is_valid(data + 1, len - 1))
		return FR_CORRUPT(err, r->path, h->off, "malformed bloom filter");
	return FR_OK;
}

/* Puts a checked block that read_block read with keep into the reader's cache. Without a
 * cache read_block gave the block memory of our own (b->mem), and it stays ours. */
static void cache_keep(const struct sst_reader *r, const struct sst_handle *h,
		       struct sst_blockref *b)
{
	if (!b->fresh)
		return;
	/* charge what the entry holds: the allocation (stored blocks keep their trailer) and
	 * the entry's bookkeeping */
	size_t charge = b->len + SST_BLOCK_TRAILER_LEN + BLK_CACHE_ENTRY_OVERHEAD;
	struct blk_cache_entry *e =
		blk_cache_put(r->env.cache, r->meta.id, h->off, b->fresh, b->len, charge);
	b->fresh = NULL;
	b->ent = e;
	b->cache = r->env.cache;
	b->data = blk_cache_data(e);
	b->len = blk_cache_len(e);
}

/* Block h from the cache, pinned in *out; false when the cache (if any) does not hold it. */
static bool cache_get(const struct sst_reader *r, const struct sst_handle *h,
		      struct sst_blockref *out)
{
	struct blk_cache_entry *e;

	if (!r->env.cache || !(e = blk_cache_lookup(r->env.cache, r->meta.id, h->off)))
		return false;
	memset(out, 0, sizeof(*out));
	out->ent = e;
	out->cache = r->env.cache;
	out->data = blk_cache_data(e);
	out->len = blk_cache_len(e);
	return true;
}

/* Block h read from disk and checked (w: a partition's bounds), then kept in the cache when
 * `fill` is set. A block that fails a check is never kept, so it fails the same way on every
 * read. h must have passed handle_fits(h, r->footer_off). */
static fr_status read_checked(const struct sst_reader *r, const struct sst_handle *h,
			      enum sst_block_kind kind, struct iwalk *w, bool fill,
			      struct sst_blockref *out, fr_error *err)
{
	fr_status rc = read_block(r, h, fill, out, err);
	if (rc)
		return rc;
	rc = check_block(r, kind, h, out->data, out->len, w, err);
	if (rc) {
		block_release(out);
		return rc;
	}
	if (fill)
		cache_keep(r, h, out);
	return FR_OK;
}

/* The checked contents of block h of the given kind (not a partition): from the cache if it
 * holds them, else from disk. */
static fr_status fetch_block(const struct sst_reader *r, const struct sst_handle *h,
			     enum sst_block_kind kind, bool fill, struct sst_blockref *out,
			     fr_error *err)
{
	if (cache_get(r, h, out))
		return FR_OK;
	return read_checked(r, h, kind, NULL, fill, out, err);
}

/* Reads data block h (from an index value) and opens it as a block of internal keys. */
static fr_status load_data_block(const struct sst_reader *r, const struct sst_handle *h,
				 bool fill, struct sst_blockref *ref, struct blk *b, fr_error *err)
{
	if (!handle_fits(h, r->meta_off))
		return FR_CORRUPT(err, r->path, h->off, "data block handle out of range");
	fr_status rc = fetch_block(r, h, SST_BLOCK_DATA, fill, ref, err);
	if (!rc)
		blk_view(b, r, ref->data, ref->len, h->off);
	return rc;
}

/* ---- the index cursor ---- */

/*
 * A cursor over a table's index entries, one per data block in file order, whether the index
 * is one block or partitioned (§4.4.1). ti walks the index block (the reader's own, which
 * outlives the cursor) and, when partitioned, pi the partition it is in, which it pins. One thread at a time.
 */
struct icur {
	const struct sst_reader *r;
	bool fill;		  /* put partitions read from disk in the cache */
	struct blk top;
	struct blk_iter ti;
	/* partitioned only */
	struct sst_blockref pref; /* the partition loaded, with a cache */
	struct blk part;
	struct blk_iter pi;
	bool part_loaded;
	uint64_t part_off;
	struct fr_buf above; /* the previous partition's key, to check a partition */
};

static void ic_init(struct icur *c, const struct sst_reader *r, bool fill)
{
	/* field by field: every point read makes one, and most of it is used only when the index
	 * is partitioned */
	c->r = r;
	c->fill = fill;
	memset(&c->pref, 0, sizeof(c->pref));
	blk_iter_init(&c->ti, NULL);
	blk_iter_init(&c->pi, NULL);
	c->part_loaded = false;
	c->part_off = 0;
	buf_init(&c->above);
}

static void ic_fini(struct icur *c)
{
	blk_iter_fini(&c->pi);
	blk_iter_fini(&c->ti);
	block_release(&c->pref);
	buf_fini(&c->above);
}

/* Points the cursor at the index (the top level, when partitioned): the reader keeps it in
 * memory for its whole life, so there is nothing to read or pin. */
static void ic_open(struct icur *c)
{
	c->top = c->r->index;
	blk_iter_set_block(&c->ti, &c->top);
}

static bool ic_valid(const struct icur *c)
{
	return c->ti.valid && (!c->r->index_parts || c->pi.valid);
}

/* The current entry: key and handle of a data block. ic_valid(c) must hold. */
static const struct blk_iter *ic_entry(const struct icur *c)
{
	return c->r->index_parts ? &c->pi : &c->ti;
}

/* A reader's own partition at offset off, or NULL. */
static const struct rpart *find_part(const struct sst_reader *r, uint64_t off)
{
	size_t lo = 0, hi = (size_t)r->index_parts;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->parts[mid].off == off)
			return &r->parts[mid];
		if (r->parts[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* What the partition under the top-level entry ti is on must pass (§4.4.1): data block handles,
 * keys above the previous partition's top-level key and ending at its own. The previous key is
 * one step back on ti (the top level has a restart per entry: a step is one decode). */
static fr_status part_bounds(struct icur *c, struct iwalk *w, fr_error *err)
{
	const struct sst_reader *r = c->r;
	size_t here = c->ti.cur_off;
	fr_status rc;

	memset(w, 0, sizeof(*w));
	w->hi_off = r->meta_off;
	buf_clear(&c->above);
	rc = blk_iter_prev(&c->ti, err);
	if (!rc && c->ti.valid) {
		rc = buf_append(&c->above, c->ti.key.data, c->ti.key.len);
		if (rc)
			return FR_ERR(err, rc, "table %s: index partition", r->path);
		w->above = c->above.data;
		w->above_len = c->above.len;
		rc = blk_iter_next(&c->ti, err);
	} else if (!rc) {
		rc = blk_iter_seek_first(&c->ti, err);
	}
	if (!rc && (!c->ti.valid || c->ti.cur_off != here))
		rc = FR_CORRUPT(err, r->path, r->index_h.off,
				"top-level index entries do not chain");
	w->last = c->ti.key.data;
	w->last_len = c->ti.key.len;
	return rc;
}

/* Loads the partition the top-level entry ti is on (unless it is loaded); pi unpositioned. */
static fr_status ic_load_part(struct icur *c, fr_error *err)
{
	const struct sst_reader *r = c->r;
	struct sst_handle h;
	fr_status rc = index_handle(r, &c->ti, &h, err);
	if (rc)
		return rc;
	if (c->part_loaded && c->part_off == h.off) {
		blk_iter_set_block(&c->pi, &c->part);
		return FR_OK;
	}
	blk_iter_set_block(&c->pi, NULL);
	block_release(&c->pref);
	c->part_loaded = false;
	if (!handle_fits(&h, r->part_hi) || h.off < r->part_lo)
		return FR_CORRUPT(err, r->path, r->index_h.off,
				  "index partition handle out of range");
	if (!r->env.cache) {
		const struct rpart *p = find_part(r, h.off);
		if (!p)
			return FR_CORRUPT(err, r->path, r->index_h.off,
					  "top-level index names no partition");
		c->part = p->b;
	} else {
		if (!cache_get(r, &h, &c->pref)) {
			struct iwalk w;
			rc = part_bounds(c, &w, err);
			if (!rc)
				rc = read_checked(r, &h, SST_BLOCK_INDEX_PART, &w, c->fill,
						  &c->pref, err);
			if (rc)
				return rc;
		}
		blk_view(&c->part, r, c->pref.data, c->pref.len, h.off);
	}
	c->part_loaded = true;
	c->part_off = h.off;
	blk_iter_set_block(&c->pi, &c->part);
	return FR_OK;
}

/* From the top-level entry ti is on, onto the first entry of that partition or a later one. */
static fr_status ic_enter_forward(struct icur *c, fr_error *err)
{
	fr_status rc = FR_OK;
	while (!rc && c->ti.valid) {
		rc = ic_load_part(c, err);
		if (!rc)
			rc = blk_iter_seek_first(&c->pi, err);
		if (rc || c->pi.valid)
			break;
		rc = blk_iter_next(&c->ti, err);
	}
	return rc;
}

/* From the top-level entry ti is on, onto the last entry of that partition or an earlier one. */
static fr_status ic_enter_backward(struct icur *c, fr_error *err)
{
	fr_status rc = FR_OK;
	while (!rc && c->ti.valid) {
		rc = ic_load_part(c, err);
		if (!rc)
			rc = blk_iter_seek_last(&c->pi, err);
		if (rc || c->pi.valid)
			break;
		rc = blk_iter_prev(&c->ti, err);
	}
	return rc;
}

static fr_status ic_seek_first(struct icur *c, fr_error *err)
{
	c->pi.valid = false;
	fr_status rc = blk_iter_seek_first(&c->ti, err);
	if (rc || !c->r->index_parts)
		return rc;
	return ic_enter_forward(c, err);
}

static fr_status ic_seek_last(struct icur *c, fr_error *err)
{
	c->pi.valid = false;
	fr_status rc = blk_iter_seek_last(&c->ti, err);
	if (rc || !c->r->index_parts)
		return rc;
	return ic_enter_backward(c, err);
}

/* The first entry whose key is >= t: the first data block that may hold t. */
static fr_status ic_seek(struct icur *c, const uint8_t *t, size_t tlen, fr_error *err)
{
	c->pi.valid = false;
	fr_status rc = blk_iter_seek(&c->ti, t, tlen, err);
	if (rc || !c->r->index_parts || !c->ti.valid)
		return rc;
	rc = ic_load_part(c, err);
	if (!rc)
		rc = blk_iter_seek(&c->pi, t, tlen, err);
	if (rc || c->pi.valid)
		return rc;
	/* only if a partition ended below its top-level key: the next one's first entry */
	rc = blk_iter_next(&c->ti, err);
	return rc ? rc : ic_enter_forward(c, err);
}

static fr_status ic_next(struct icur *c, fr_error *err)
{
	if (!c->r->index_parts)
		return blk_iter_next(&c->ti, err);
	fr_status rc = blk_iter_next(&c->pi, err);
	if (rc || c->pi.valid)
		return rc;
	rc = blk_iter_next(&c->ti, err);
	return rc ? rc : ic_enter_forward(c, err);
}

static fr_status ic_prev(struct icur *c, fr_error *err)
{
	if (!c->r->index_parts)
		return blk_iter_prev(&c->ti, err);
	fr_status rc = blk_iter_prev(&c->pi, err);
	if (rc || c->pi.valid)
		return rc;
	rc = blk_iter_prev(&c->ti, err);
	return rc ? rc : ic_enter_backward(c, err);
}

static void ic_invalidate(struct icur *c)
{
	c->ti.valid = false;
	c->pi.valid = false;
}

/* ---- footer and properties (FORMAT.md §4.6, §4.7) ---- */

fr_status sst_footer_decode(const uint8_t *p, const char *path, uint64_t off, struct sst_footer *f,
			    fr_error *err)
{
	/* magic, then version, then checksum: a table of a later version with another footer
	 * layout is reported as such, not as a checksum mismatch */
	if (dec_u64(p + SST_FOOTER_MAGIC_OFF) != SST_MAGIC)
		return FR_CORRUPT(err, path, off + SST_FOOTER_MAGIC_OFF,
				  "bad magic: not a table file");
	f->version = dec_u32(p + SST_FOOTER_VERSION_OFF);
	if (f->version < SST_FORMAT_V1 || f->version > SST_FORMAT_VERSION)
		return fr_err_set(err, FR_CORRUPTION, 0, off + SST_FOOTER_VERSION_OFF, __FILE__,
				  __LINE__,
				  "%s at offset %llu: unsupported table format version %u", path,
				  (unsigned long long)(off + SST_FOOTER_VERSION_OFF), f->version);
	if (fr_xxh3(p, SST_FOOTER_CHECKSUM_OFF) != dec_u64(p + SST_FOOTER_CHECKSUM_OFF))
		return FR_CORRUPT(err, path, off, "footer checksum mismatch");
	for (int i = 0; i < SST_FOOTER_HANDLE_CNT; i++) {
		f->h[i].off = dec_u64(p + 16 * i);
		f->h[i].size = dec_u64(p + 16 * i + 8);
	}
	return FR_OK;
}

fr_status sst_props_decode(const uint8_t *data, size_t len, const char *path, uint64_t off,
			   struct sst_props *p, fr_error *err)
{
	const uint8_t *q = data, *end = data + len;
	uint64_t seen = 0, last_tag = 0;
	const uint64_t required = (UINT64_C(1) << (SST_PROP_DATA_BLOCK_CNT + 1)) - 2;

	memset(p, 0, sizeof(*p));
	while (q < end) {
		uint64_t tag, v;
		const uint8_t *val;
		size_t vlen;
		if (!dec_varint(&q, end, &tag) || !dec_lenbytes(&q, end, &val, &vlen))
			return FR_CORRUPT(err, path, off, "truncated property record");
		if (tag <= last_tag)
			return FR_CORRUPT(err, path, off, "property tags out of order");
		last_tag = tag;
		if (tag > SST_PROP_TAG_MAX)
			continue; /* unknown: a later writer's extra, skipped */
		seen |= UINT64_C(1) << tag;
		if (tag == SST_PROP_SMALLEST) {
			p->smallest = val;
			p->smallest_len = vlen;
			continue;
		}
		if (tag == SST_PROP_LARGEST) {
			p->largest = val;
			p->largest_len = vlen;
			continue;
		}
		const uint8_t *vp = val;
		if (!dec_varint(&vp, val + vlen, &v) || vp != val + vlen)
			return FR_CORRUPT(err, path, off, "bad integer property");
		switch (tag) {
		case SST_PROP_ENTRY_CNT:
			p->entry_cnt = v;
			break;
		case SST_PROP_TOMBSTONE_CNT:
			p->tombstone_cnt = v;
			break;
		case SST_PROP_RANGE_DEL_CNT:
			p->range_del_cnt = v;
			break;
		case SST_PROP_MIN_SEQNO:
			p->min_seqno = v;
			break;
		case SST_PROP_MAX_SEQNO:
			p->max_seqno = v;
			break;
		case SST_PROP_BLOCK_SIZE:
			p->block_size = v;
			break;
		case SST_PROP_RESTART_INTERVAL:
			p->restart_interval = v;
			break;
		case SST_PROP_BLOOM_BITS:
			p->bloom_bits = v;
			break;
		case SST_PROP_COMPRESSION:
			p->compression = v;
			break;
		case SST_PROP_CREATED:
			p->created_s = v;
			break;
		case SST_PROP_INDEX_PARTS:
			p->index_parts = v;
			break;
		case SST_PROP_DATA_HASH:
			p->data_hash = v;
			break;
		default:
			p->data_block_cnt = v;
			break;
		}
	}
	if ((seen & required) != required)
		return FR_CORRUPT(err, path, off, "a required property is missing");
	if (p->tombstone_cnt > p->entry_cnt || p->compression > SST_COMP_LZ4 ||
	    p->restart_interval < 1 || p->restart_interval > UINT32_MAX || p->block_size < 1 ||
	    p->block_size > UINT32_MAX || p->bloom_bits > BLOOM_BITS_PER_KEY_MAX ||
	    (p->entry_cnt == 0) != (p->data_block_cnt == 0) ||
	    (p->entry_cnt + p->range_del_cnt && p->min_seqno > p->max_seqno) ||
	    p->data_hash > 1 || p->index_parts == 1 || p->index_parts > p->data_block_cnt)
		return FR_CORRUPT(err, path, off, "inconsistent properties");
	return FR_OK;
}

/* ---- open ---- */

void sst_meta_fini(struct sst_meta *m)
{
	if (!m)
		return;
	fr_free(m->smallest);
	fr_free(m->largest);
	fr_free(m->blob_refs);
	m->smallest = NULL;
	m->largest = NULL;
	m->smallest_len = 0;
	m->largest_len = 0;
	m->blob_refs = NULL;
	m->blob_ref_cnt = 0;
}

fr_status sst_meta_copy(struct sst_meta *dst, const struct sst_meta *src)
{
	struct sst_meta m = *src;
	m.smallest = fr_memdup(src->smallest, src->smallest_len);
	m.largest = fr_memdup(src->largest, src->largest_len);
	m.blob_refs = src->blob_ref_cnt
			      ? fr_memdup(src->blob_refs, src->blob_ref_cnt * sizeof(*m.blob_refs))
			      : NULL;
	if (!m.smallest || !m.largest || (src->blob_ref_cnt && !m.blob_refs)) {
		sst_meta_fini(&m);
		return FR_NOMEM;
	}
	*dst = m;
	return FR_OK;
}

static fr_status open_props(struct sst_reader *r, const struct sst_handle *h, fr_error *err)
{
	struct sst_blockref ref;
	struct sst_props p;
	fr_status rc = read_block(r, h, false, &ref, err);
	if (rc)
		return rc;
	rc = sst_props_decode(ref.data, ref.len, r->path, h->off, &p, err);
	if (rc)
		goto out;
	r->meta.entry_cnt = p.entry_cnt;
	r->meta.tombstone_cnt = p.tombstone_cnt;
	r->meta.range_del_cnt = p.range_del_cnt;
	r->meta.min_seqno = p.min_seqno;
	r->meta.max_seqno = p.max_seqno;
	r->meta.created_s = p.created_s;
	r->meta.smallest = fr_memdup(p.smallest, p.smallest_len);
	r->meta.largest = fr_memdup(p.largest, p.largest_len);
	if (!r->meta.smallest || !r->meta.largest) {
		rc = FR_ERR(err, FR_NOMEM, "table %s: properties", r->path);
		goto out;
	}
	r->meta.smallest_len = p.smallest_len;
	r->meta.largest_len = p.largest_len;
	if (bytes_cmp(p.smallest, p.smallest_len, p.largest, p.largest_len) > 0) {
		rc = FR_CORRUPT(err, r->path, h->off, "smallest key above largest key");
		goto out;
	}
	r->o.block_size = (uint32_t)p.block_size;
	r->o.restart_interval = (uint32_t)p.restart_interval;
	r->o.bloom_bits_per_key = (uint32_t)p.bloom_bits;
	r->o.compress = p.compression == SST_COMP_LZ4;
	r->o.hash_index = p.data_hash != 0;
	r->data_block_cnt = p.data_block_cnt; /* checked against the index in open_index */
	/* §4.10: what version 2 added cannot be in a version 1 table */
	if (r->version == SST_FORMAT_V1 && (p.index_parts || p.data_hash)) {
		rc = FR_CORRUPT(err, r->path, h->off, "version 2 properties in a version 1 table");
		goto out;
	}
	r->index_parts = p.index_parts;
	r->data_hash = p.data_hash != 0;
out:
	block_release(&ref);
	return rc;
}

/* Without a cache: reads every partition of the top-level index `top`, checks it (§4.4.1) and
 * keeps it; their data block handles must ascend across partitions too, and count as many
 * blocks as the properties promise. */
static fr_status open_parts(struct sst_reader *r, const struct blk *top, fr_error *err)
{
	struct blk_iter ti;
	struct fr_buf above;
	uint64_t data_end = 0, blocks = 0;
	size_t i = 0;
	fr_status rc;

	r->parts = fr_calloc((size_t)r->index_parts, sizeof(*r->parts));
	if (!r->parts)
		return FR_ERR(err, FR_NOMEM, "table %s: index partitions", r->path);
	buf_init(&above);
	blk_iter_init(&ti, top);
	for (rc = blk_iter_seek_first(&ti, err); !rc && ti.valid; rc = blk_iter_next(&ti, err)) {
		struct sst_handle h;
		struct sst_blockref ref;
		struct iwalk w = {.lo_off = data_end,
				  .hi_off = r->meta_off,
				  .above = i ? above.data : NULL,
				  .above_len = above.len,
				  .last = ti.key.data,
				  .last_len = ti.key.len};

		rc = index_handle(r, &ti, &h, err); /* in the partition area: open_index walked */
		if (!rc)
			rc = read_block(r, &h, false, &ref, err);
		if (rc)
			break;
		rc = check_block(r, SST_BLOCK_INDEX_PART, &h, ref.data, ref.len, &w, err);
		if (rc) {
			block_release(&ref);
			break;
		}
		r->parts[i].off = h.off;
		r->parts[i].mem = ref.mem;
		blk_view(&r->parts[i].b, r, ref.data, ref.len, h.off);
		i++;
		data_end = w.end_off;
		blocks += w.cnt;
		buf_clear(&above);
		rc = buf_append(&above, ti.key.data, ti.key.len);
		if (rc) {
			FR_ERR(err, rc, "table %s: index", r->path);
			break;
		}
	}
	if (!rc && blocks != r->data_block_cnt)
		rc = FR_CORRUPT(err, r->path, r->index_h.off,
				"index partitions and properties disagree on blocks");
	blk_iter_fini(&ti);
	buf_fini(&above);
	return rc;
}

/* Loads the index and walks it: keys strictly ascending, handles in order inside the data
 * area, as many entries as the properties promise; of a partitioned index, the top level, with
 * handles inside the partition area, and the partitions too unless there is a cache. Then
 * keeps it: a single index in the cache if there is one (the first read of the table needs
 * it), else as the reader's own copy; a top level always as the reader's own. */
static fr_status open_index(struct sst_reader *r, const struct sst_handle *h, fr_error *err)
{
	struct sst_blockref ref;
	struct blk b;
	struct iwalk w = {0};
	/* a top level stays the reader's own, below */
	fr_status rc = read_block(r, h, !r->index_parts, &ref, err);
	if (rc)
		return rc;
	rc = check_sorted(r, SST_BLOCK_INDEX, h, ref.data, ref.len, &b, err);
	if (!rc && !r->index_parts) {
		w.hi_off = r->meta_off;
		rc = walk_index(r, &b, &w, err);
		if (!rc && w.cnt != r->data_block_cnt)
			rc = FR_CORRUPT(err, r->path, h->off,
					"index and properties disagree on blocks");
	} else if (!rc) {
		w.lo_off = r->part_lo;
		w.hi_off = r->part_hi;
		rc = walk_index(r, &b, &w, err);
		if (!rc && w.cnt != r->index_parts)
			rc = FR_CORRUPT(err, r->path, h->off,
					"top-level index and properties disagree on partitions");
		if (!rc && !r->env.cache)
			rc = open_parts(r, &b, err);
	}
	if (rc) {
		block_release(&ref);
		return rc;
	}
	/* a top level is kept like the properties: a few bytes per partition */
	if (r->env.cache && !r->index_parts) {
		cache_keep(r, h, &ref);
		if (ref.ent) {
			r->index_pin = ref;
			blk_view(&r->index, r, ref.data, ref.len, h->off);
			return FR_OK;
		}
	}
	r->index_mem = ref.mem;
	r->index = b;
	return FR_OK;
}

static fr_status open_filter(struct sst_reader *r, const struct sst_handle *h, fr_error *err)
{
	struct sst_blockref ref;
	fr_status rc = read_block(r, h, true, &ref, err);
	if (!rc)
		rc = check_block(r, SST_BLOCK_FILTER, h, ref.data, ref.len, NULL, err);
	if (rc) {
		block_release(&ref);
		return rc;
	}
	cache_keep(r, h, &ref);
	if (ref.ent)
		r->filter_pin = ref;
	else
		r->filter_mem = ref.mem;
	r->filter = ref.data + 1;
	r->filter_len = ref.len - 1;
	return FR_OK;
}

static fr_status open_range_dels(struct sst_reader *r, const struct sst_handle *h, fr_error *err)
{
	struct sst_blockref ref;
	uint64_t cnt;
	fr_status rc = read_block(r, h, false, &ref, err);
	if (rc)
		return rc;
	r->rd_mem = ref.mem;
	const uint8_t *p = ref.data, *end = ref.data + ref.len;
	/* FORMAT.md §4.8: varint count, then (start, end, seqno) each; every entry >= 3 bytes */
	if (!dec_varint(&p, end, &cnt) || cnt > (uint64_t)(end - p) / 3 ||
	    cnt != r->meta.range_del_cnt)
		return FR_CORRUPT(err, r->path, h->off, "bad range tombstone count");
	r->rds = fr_calloc((size_t)cnt, sizeof(*r->rds));
	if (!r->rds)
		return FR_ERR(err, FR_NOMEM, "table %s: range tombstones", r->path);
	for (size_t i = 0; i < cnt; i++) {
		struct range_del *d = &r->rds[i];
		if (!dec_lenbytes(&p, end, &d->start, &d->start_len) ||
		    !dec_lenbytes(&p, end, &d->end, &d->end_len) || !dec_varint(&p, end, &d->seqno))
			return FR_CORRUPT(err, r->path, h->off, "truncated range tombstone");
		if (bytes_cmp(d->start, d->start_len, d->end, d->end_len) >= 0 ||
		    d->seqno > SEQNO_MAX)
			return FR_CORRUPT(err, r->path, h->off, "empty range tombstone");
		if (i) {
			const struct range_del *q = &r->rds[i - 1];
			int c = bytes_cmp(q->start, q->start_len, d->start, d->start_len);
			if (c > 0 || (c == 0 && q->seqno < d->seqno))
				return FR_CORRUPT(err, r->path, h->off,
						  "range tombstones out of order");
		}
		r->rd_cnt++;
	}
	if (p != end)
		return FR_CORRUPT(err, r->path, h->off, "bytes after the range tombstones");
	return FR_OK;
}

static void reader_free(struct sst_reader *r)
{
	io_close(r->f);
	sst_meta_fini(&r->meta);
	fr_free(r->index_mem);
	for (size_t i = 0; r->parts && i < r->index_parts; i++)
		fr_free(r->parts[i].mem);
	fr_free(r->parts);
	fr_free(r->filter_mem);
	block_release(&r->index_pin);
	block_release(&r->filter_pin);
	fr_free(r->rd_mem);
	fr_free(r->rds);
	fr_free(r->path);
	fr_free(r);
}

fr_status sst_reader_open_env(struct fr_io *io, const char *path, uint64_t id,
			      const struct sst_read_env *env, struct sst_reader **out,
			      fr_error *err)
{
	struct sst_reader *r;
	struct sst_footer ft;
	uint8_t fbuf[SST_FOOTER_LEN];
	uint64_t size;
	fr_status rc;

	*out = NULL;
	r = fr_calloc(1, sizeof(*r));
	if (!r)
		return FR_ERR(err, FR_NOMEM, "table %s: reader", path);
	r->path = fr_strdup(path);
	if (!r->path) {
		fr_free(r);
		return FR_ERR(err, FR_NOMEM, "table %s: reader", path);
	}
	r->io = io;
	r->refs = 1;
	r->meta.id = id; /* the key of the table's blocks and file from the first read on */
	if (env)
		r->env = *env;
	if (r->env.files) {
		rc = ftab_size(r->env.files, id, path, &size, err);
	} else {
		rc = io_open(io, path, IO_RDONLY, &r->f, err);
		if (!rc)
			rc = io_size(r->f, &size, err);
	}
	if (rc)
		goto out_free;
	if (size < SST_FOOTER_LEN) {
		rc = FR_CORRUPT(err, path, size, "file too short for a table footer");
		goto out_free;
	}
	r->footer_off = size - SST_FOOTER_LEN;
	rc = reader_pread(r, fbuf, SST_FOOTER_LEN, r->footer_off, err);
	if (!rc)
		rc = sst_footer_decode(fbuf, path, r->footer_off, &ft, err);
	if (rc)
		goto out_free;

	/* FORMAT.md §4.1: data blocks first, then the meta blocks, which all must fit */
	r->has_filter = ft.h[SST_FOOTER_FILTER].off || ft.h[SST_FOOTER_FILTER].size;
	r->meta_off = r->footer_off;
	for (int i = 0; i < SST_FOOTER_HANDLE_CNT; i++) {
		if (i == SST_FOOTER_FILTER && !r->has_filter)
			continue;
		if (!handle_fits(&ft.h[i], r->footer_off)) {
			rc = FR_CORRUPT(err, path, r->footer_off + 16 * (uint64_t)i,
					"footer block handle out of range");
			goto out_free;
		}
		if (ft.h[i].off < r->meta_off)
			r->meta_off = ft.h[i].off;
	}
	r->index_h = ft.h[SST_FOOTER_INDEX];
	r->filter_h = ft.h[SST_FOOTER_FILTER];
	r->version = ft.version;
	/* §4.1: partitions lie between the range tombstones and the top-level index */
	r->part_lo = ft.h[SST_FOOTER_RANGE_DEL].off + ft.h[SST_FOOTER_RANGE_DEL].size +
		     SST_BLOCK_TRAILER_LEN;
	r->part_hi = r->index_h.off;
	rc = open_props(r, &ft.h[SST_FOOTER_PROPS], err);
	if (!rc)
		rc = open_index(r, &r->index_h, err);
	if (!rc && r->has_filter)
		rc = open_filter(r, &r->filter_h, err);
	if (!rc && !r->has_filter && r->o.bloom_bits_per_key)
		rc = FR_CORRUPT(err, path, r->footer_off, "filter block missing");
	if (!rc)
		rc = open_range_dels(r, &ft.h[SST_FOOTER_RANGE_DEL], err);
	if (rc)
		goto out_free;
	r->meta.file_size = size;
	*out = r;
	return FR_OK;

out_free:
	reader_free(r);
	return rc;
}

fr_status sst_reader_open(struct fr_io *io, const char *path, uint64_t id, struct sst_reader **out,
			  fr_error *err)
{
	return sst_reader_open_env(io, path, id, NULL, out, err);
}

fr_status sst_reader_set_global_seqno(struct sst_reader *r, uint64_t seqno, fr_error *err)
{
	if (!seqno || seqno > SEQNO_MAX)
		return FR_CORRUPT(err, r->path, 0, "bad global seqno of an ingested table");
	if (r->meta.entry_cnt + r->meta.range_del_cnt && r->meta.max_seqno != 0)
		return FR_CORRUPT(err, r->path, 0,
				  "table with a global seqno holds entries of other seqnos");
	r->gseq = seqno;
	r->meta.global_seqno = seqno;
	r->meta.min_seqno = seqno;
	r->meta.max_seqno = seqno;
	for (size_t i = 0; i < r->rd_cnt; i++)
		r->rds[i].seqno = seqno;
	return FR_OK;
}

void sst_reader_ref(struct sst_reader *r)
{
	atomic_add_u32(&r->refs, 1);
}

void sst_reader_unref(struct sst_reader *r)
{
	/* acq_rel: the last holder sees every other holder's reads finished before freeing */
	if (r && atomic_sub_u32(&r->refs, 1) == 0)
		reader_free(r);
}

const struct sst_meta *sst_reader_meta(const struct sst_reader *r)
{
	return &r->meta;
}

size_t sst_reader_range_dels(const struct sst_reader *r, const struct range_del **out)
{
	*out = r->rds;
	return r->rd_cnt;
}

/* Whether the user key of this hash (bloom_hash) may be in the table (false: certainly
 * absent); true without a filter. The filter is in memory from the open on: this cannot fail. */
static bool filter_may(const struct sst_reader *r, uint64_t hash)
{
	return !r->has_filter || bloom_may_contain(r->filter, r->filter_len, hash);
}

bool sst_reader_may_contain(const struct sst_reader *r, const void *ukey, size_t ulen)
{
	return filter_may(r, bloom_hash(ukey, ulen));
}

/* ---- point reads ---- */

fr_status sst_reader_get(struct sst_reader *r, const void *ukey, size_t ulen, uint64_t snap,
			 uint8_t *type, uint64_t *seqno, void **val, size_t *vlen, fr_error *err)
{
	uint8_t small[256], *target = small;
	struct sst_blockref ref = {0};
	struct icur ic;
	struct blk db;
	struct blk_iter di;
	uint64_t hash = 0;
	fr_status rc;
	bool first = true;

	*val = NULL;
	/* the filter and the data blocks' hash indexes (§4.3.1) hash the user key alike */
	if (r->has_filter || r->data_hash)
		hash = bloom_hash(ukey, ulen);
	/* every entry of an ingested table is at its global seqno */
	if (!filter_may(r, hash) || (r->gseq && snap < r->gseq))
		return FR_NOT_FOUND;
	if (ulen > sizeof(small) - IKEY_TRAILER_LEN) {
		if (ulen > SIZE_MAX - IKEY_TRAILER_LEN)
			return FR_ERR(err, FR_INVALID, "table %s: key too long", r->path);
		target = fr_malloc(ulen + IKEY_TRAILER_LEN);
		if (!target)
			return FR_ERR(err, FR_NOMEM, "table %s: get", r->path);
	}
	ikey_encode(target, ukey, ulen, snap < SEQNO_MAX ? snap : SEQNO_MAX, VT_SEEK);
	size_t tlen = ulen + IKEY_TRAILER_LEN;

	ic_init(&ic, r, true);
	blk_iter_init(&di, &db);
	ic_open(&ic);
	rc = ic_seek(&ic, target, tlen, err);
	/* the first block whose last key is >= target; a block that ends without a match (a
	 * shortened index key) passes on to the next one */
	while (!rc && ic_valid(&ic)) {
		const struct blk_iter *ie = ic_entry(&ic);
		struct sst_handle h;
		bool absent = false;

		rc = index_handle(r, ie, &h, err);
		if (!rc)
			rc = load_data_block(r, &h, true, &ref, &db, err);
		if (rc)
			break;
		blk_iter_set_block(&di, &db);
		if (!first)
			rc = blk_iter_seek_first(&di, err);
		else if (r->data_hash)
			rc = blk_iter_seek_hash(&di, target, tlen, hash, &absent, err);
		else
			rc = blk_iter_seek(&di, target, tlen, err);
		first = false;
		if (rc || di.valid)
			break;
		/* The block holds no version of the key. A later block can hold one only if this
		 * block's index key, which is >= target, is still of the same user key. */
		if (absent && bytes_cmp(ie->key.data, ikey_user_len(ie->key.len), ukey, ulen) != 0)
			break;
		block_release(&ref);
		rc = ic_next(&ic, err);
	}
	if (rc)
		goto out;
	if (!ic_valid(&ic) || !di.valid ||
	    bytes_cmp(di.key.data, ikey_user_len(di.key.len), ukey, ulen) != 0) {
		rc = FR_NOT_FOUND;
		goto out;
	}
	if (di.val_len) {
		*val = fr_memdup(di.val, di.val_len);
		if (!*val) {
			rc = FR_ERR(err, FR_NOMEM, "table %s: value of %zu bytes", r->path,
				    di.val_len);
			goto out;
		}
	}
	*vlen = di.val_len;
	*type = ikey_type(di.key.data, di.key.len);
	*seqno = r->gseq ? r->gseq : ikey_seqno(di.key.data, di.key.len);
out:
	blk_iter_fini(&di);
	ic_fini(&ic);
	block_release(&ref);
	if (target != small)
		fr_free(target);
	return rc;
}

/* ---- the table iterator ---- */

struct sst_iter {
	struct kv_iter base; /* first: the kv_iter handed out is this */
	struct sst_reader *r;
	bool index_ready; /* ic open: from the first positioning call on */
	struct icur ic;	  /* over the index entries */
	struct sst_blockref ref;
	struct blk db;	    /* the loaded data block */
	struct blk_iter di; /* over db */
	bool loaded;
	uint64_t loaded_off;
	/* of a table with a global seqno: the current key as handed out (its trailer carries the
	 * global seqno) and a seek target translated to the stored keys */
	struct fr_buf gkey;
	struct fr_buf gtarget;
};

static struct sst_iter *si_of(struct kv_iter *it)
{
	return (struct sst_iter *)it;
}

/* Loads the data block the index cursor is on (unless it is loaded already); di unpositioned. */
static fr_status si_load(struct sst_iter *si)
{
	struct sst_handle h;
	fr_status rc = index_handle(si->r, ic_entry(&si->ic), &h, &si->base.err);
	if (rc)
		return rc;
	if (si->loaded && si->loaded_off == h.off) {
		blk_iter_set_block(&si->di, &si->db);
		return FR_OK;
	}
	blk_iter_set_block(&si->di, NULL);
	block_release(&si->ref);
	si->loaded = false;
	rc = load_data_block(si->r, &h, si->ic.fill, &si->ref, &si->db, &si->base.err);
	if (rc)
		return rc;
	si->loaded = true;
	si->loaded_off = h.off;
	blk_iter_set_block(&si->di, &si->db);
	return FR_OK;
}

/* While the data cursor is past its block's end, moves to the next block's first entry. */
static fr_status si_skip_forward(struct sst_iter *si)
{
	fr_status rc = FR_OK;
	while (!rc && !si->di.valid && ic_valid(&si->ic)) {
		rc = ic_next(&si->ic, &si->base.err);
		if (!rc && ic_valid(&si->ic)) {
			rc = si_load(si);
			if (!rc)
				rc = blk_iter_seek_first(&si->di, &si->base.err);
		}
	}
	return rc;
}

/* While the data cursor is before its block's start, moves to the previous block's last. */
static fr_status si_skip_backward(struct sst_iter *si)
{
	fr_status rc = FR_OK;
	while (!rc && !si->di.valid && ic_valid(&si->ic)) {
		rc = ic_prev(&si->ic, &si->base.err);
		if (!rc && ic_valid(&si->ic)) {
			rc = si_load(si);
			if (!rc)
				rc = blk_iter_seek_last(&si->di, &si->base.err);
		}
	}
	return rc;
}

/* The trailer the current entry is handed out with. */
static uint64_t si_trailer(const struct sst_iter *si)
{
	const struct blk_iter *di = &si->di;
	if (!si->r->gseq)
		return ikey_trailer(di->key.data, di->key.len);
	return ikey_pack(si->r->gseq, ikey_type(di->key.data, di->key.len));
}

/* The current entry's internal key, as handed out, against internal key k. */
static int si_cmp(const struct sst_iter *si, const uint8_t *k, size_t n)
{
	const struct blk_iter *di = &si->di;
	int c = bytes_cmp(di->key.data, ikey_user_len(di->key.len), k, ikey_user_len(n));
	if (c)
		return c;
	uint64_t a = si_trailer(si), b = ikey_trailer(k, n);
	return a > b ? -1 : a < b;
}

/* The current key with the global seqno in its trailer, into si->gkey. */
static fr_status si_global_key(struct sst_iter *si)
{
	const struct blk_iter *di = &si->di;
	size_t ulen = ikey_user_len(di->key.len);
	buf_clear(&si->gkey);
	if (buf_reserve(&si->gkey, di->key.len))
		return FR_ERR(&si->base.err, FR_NOMEM, "table %s: iterator key", si->r->path);
	ikey_encode(si->gkey.data, di->key.data, ulen, si->r->gseq,
		    ikey_type(di->key.data, di->key.len));
	si->gkey.len = di->key.len;
	return FR_OK;
}

/* Publishes the outcome of a positioning call in the kv_iter fields. */
static void si_settle(struct sst_iter *si, fr_status rc)
{
	struct kv_iter *it = &si->base;
	if (!rc && si->r->gseq && si->di.valid && ic_valid(&si->ic))
		rc = si_global_key(si);
	if (rc) {
		it->status = rc;
		it->valid = false;
		si->di.valid = false;
		ic_invalidate(&si->ic);
	} else {
		it->valid = si->di.valid && ic_valid(&si->ic);
	}
	if (it->valid) {
		it->key = si->r->gseq ? si->gkey.data : si->di.key.data;
		it->key_len = si->di.key.len;
		it->val = si->di.val;
		it->val_len = si->di.val_len;
	} else {
		it->key = NULL;
		it->key_len = 0;
		it->val = NULL;
		it->val_len = 0;
	}
}

static fr_status si_seek_first(struct sst_iter *si)
{
	si->di.valid = false;
	fr_status rc = ic_seek_first(&si->ic, &si->base.err);
	if (!rc && ic_valid(&si->ic)) {
		rc = si_load(si);
		if (!rc)
			rc = blk_iter_seek_first(&si->di, &si->base.err);
	}
	return rc ? rc : si_skip_forward(si);
}

static fr_status si_seek_last(struct sst_iter *si)
{
	si->di.valid = false;
	fr_status rc = ic_seek_last(&si->ic, &si->base.err);
	if (!rc && ic_valid(&si->ic)) {
		rc = si_load(si);
		if (!rc)
			rc = blk_iter_seek_last(&si->di, &si->base.err);
	}
	return rc ? rc : si_skip_backward(si);
}

static fr_status si_seek(struct sst_iter *si, const uint8_t *k, size_t n)
{
	si->di.valid = false;
	fr_status rc = ic_seek(&si->ic, k, n, &si->base.err);
	if (!rc && ic_valid(&si->ic)) {
		rc = si_load(si);
		if (!rc)
			rc = blk_iter_seek(&si->di, k, n, &si->base.err);
	}
	return rc ? rc : si_skip_forward(si);
}

/* The first entry whose key, as handed out, is >= k. The stored keys of a table with a global
 * seqno order as the handed-out ones do, but a target's trailer means something else there:
 * seek to the first stored version of k's user key, then step over the versions that read as
 * newer than k. */
static fr_status si_seek_at(struct sst_iter *si, const uint8_t *k, size_t n)
{
	if (!si->r->gseq)
		return si_seek(si, k, n);
	size_t ulen = ikey_user_len(n);
	buf_clear(&si->gtarget);
	if (buf_reserve(&si->gtarget, n))
		return FR_ERR(&si->base.err, FR_NOMEM, "table %s: seek", si->r->path);
	ikey_encode(si->gtarget.data, k, ulen, SEQNO_MAX, VT_SEEK);
	si->gtarget.len = n;
	fr_status rc = si_seek(si, si->gtarget.data, n);
	while (!rc && si->di.valid && ic_valid(&si->ic) && si_cmp(si, k, n) < 0) {
		rc = blk_iter_next(&si->di, &si->base.err);
		if (!rc)
			rc = si_skip_forward(si);
	}
	return rc;
}

/* Opens the index cursor on the first positioning call (which, unlike the constructor,
 * reports its errors through the iterator); the index stays pinned for the iterator's life. */
static fr_status si_index(struct sst_iter *si)
{
	if (si->index_ready)
		return FR_OK;
	ic_open(&si->ic);
	si->index_ready = true;
	return FR_OK;
}

static bool si_usable(struct sst_iter *si, const uint8_t *k, size_t n)
{
	if (si->base.status)
		return false;
	fr_status rc = si_index(si);
	if (rc) {
		si->base.status = rc;
		si_settle(si, rc);
		return false;
	}
	if (k && n < IKEY_TRAILER_LEN) {
		si->base.status =
			FR_ERR(&si->base.err, FR_INVALID,
			       "table %s: seek target is not an internal key", si->r->path);
		si_settle(si, si->base.status);
		return false;
	}
	return true;
}

static void sst_iter_seek_first(struct kv_iter *it)
{
	struct sst_iter *si = si_of(it);
	if (si_usable(si, NULL, 0))
		si_settle(si, si_seek_first(si));
}

static void sst_iter_seek_last(struct kv_iter *it)
{
	struct sst_iter *si = si_of(it);
	if (si_usable(si, NULL, 0))
		si_settle(si, si_seek_last(si));
}

static void sst_iter_seek(struct kv_iter *it, const uint8_t *k, size_t n)
{
	struct sst_iter *si = si_of(it);
	if (si_usable(si, k, n))
		si_settle(si, si_seek_at(si, k, n));
}

static void sst_iter_seek_prev(struct kv_iter *it, const uint8_t *k, size_t n)
{
	struct sst_iter *si = si_of(it);
	if (!si_usable(si, k, n))
		return;
	/* the first entry >= target; if it is not the target itself, the one before it */
	fr_status rc = si_seek_at(si, k, n);
	if (!rc && si->di.valid && si_cmp(si, k, n) != 0) {
		rc = blk_iter_prev(&si->di, &si->base.err);
		if (!rc)
			rc = si_skip_backward(si);
	} else if (!rc && !si->di.valid) {
		rc = si_seek_last(si);
	}
	si_settle(si, rc);
}

static void sst_iter_next(struct kv_iter *it)
{
	struct sst_iter *si = si_of(it);
	if (!si_usable(si, NULL, 0) || !it->valid)
		return;
	fr_status rc = blk_iter_next(&si->di, &si->base.err);
	if (!rc)
		rc = si_skip_forward(si);
	si_settle(si, rc);
}

static void sst_iter_prev(struct kv_iter *it)
{
	struct sst_iter *si = si_of(it);
	if (!si_usable(si, NULL, 0) || !it->valid)
		return;
	fr_status rc = blk_iter_prev(&si->di, &si->base.err);
	if (!rc)
		rc = si_skip_backward(si);
	si_settle(si, rc);
}

static void sst_iter_free(struct kv_iter *it)
{
	struct sst_iter *si = si_of(it);
	blk_iter_fini(&si->di);
	ic_fini(&si->ic);
	block_release(&si->ref);
	buf_fini(&si->gkey);
	buf_fini(&si->gtarget);
	sst_reader_unref(si->r);
	fr_free(si);
}

static const struct kv_iter_ops sst_iter_ops = {
	.seek_first = sst_iter_seek_first,
	.seek_last = sst_iter_seek_last,
	.seek = sst_iter_seek,
	.seek_prev = sst_iter_seek_prev,
	.next = sst_iter_next,
	.prev = sst_iter_prev,
	.free = sst_iter_free,
};

fr_status sst_iter_new_flags(struct sst_reader *r, unsigned flags, struct kv_iter **out,
			     fr_error *err)
{
	/* not zeroed: one is made per table a seek touches, and most of it (the error, the
	 * inline key space) is written before it is read */
	struct sst_iter *si = fr_malloc(sizeof(*si));

	*out = NULL;
	if (!si)
		return FR_ERR(err, FR_NOMEM, "table %s: iterator", r->path);
	kv_iter_init(&si->base, &sst_iter_ops);
	si->r = r;
	si->index_ready = false;
	memset(&si->ref, 0, sizeof(si->ref));
	si->loaded = false;
	si->loaded_off = 0;
	ic_init(&si->ic, r, !(flags & SST_ITER_NO_FILL));
	blk_iter_init(&si->di, &si->db);
	buf_init(&si->gkey);
	buf_init(&si->gtarget);
	sst_reader_ref(r);
	*out = &si->base;
	return FR_OK;
}

fr_status sst_iter_new(struct sst_reader *r, struct kv_iter **out, fr_error *err)
{
	return sst_iter_new_flags(r, 0, out, err);
}
