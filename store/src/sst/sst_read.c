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
	struct sst_handle index_h;
	struct sst_handle filter_h;
	bool has_filter;
	/* The reader's own copies of index and filter: only without a cache. */
	uint8_t *index_mem;
	struct blk index;
	uint8_t *filter_mem;
	const uint8_t *filter; /* the bloom encoding; NULL: no copy */
	size_t filter_len;
	uint8_t *rd_mem;
	struct range_del *rds;
	size_t rd_cnt;
};

/* A block's contents and what holds them: a pinned cache entry, memory of our own, or (mem and
 * ent both NULL) the reader's own copy. */
struct sst_blockref {
	struct blk_cache_entry *ent;
	struct blk_cache *cache; /* ent's cache */
	uint8_t *mem;
	const uint8_t *data;
	size_t len;
};

static void block_release(struct sst_blockref *b)
{
	blk_cache_release(b->cache, b->ent);
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

/*
 * Reads and unwraps the stored block at h into memory of its own (FORMAT.md §4.2).
 * h must have passed handle_fits(h, r->footer_off).
 */
static fr_status read_block(const struct sst_reader *r, const struct sst_handle *h,
			    struct sst_blockref *out, fr_error *err)
{
	size_t n = (size_t)h->size + SST_BLOCK_TRAILER_LEN;
	uint8_t *stored, *owned;
	fr_status rc;

	memset(out, 0, sizeof(*out));
	stored = fr_malloc(n);
	if (!stored)
		return FR_ERR(err, FR_NOMEM, "table %s: block of %zu bytes", r->path, n);
	rc = reader_pread(r, stored, n, h->off, err);
	if (!rc)
		rc = blk_stored_decode(stored, n, r->path, h->off, &out->data, &out->len, &owned,
				       err);
	if (rc) {
		fr_free(stored);
		return rc;
	}
	if (owned) {
		fr_free(stored);
		out->mem = owned;
	} else {
		out->mem = stored;
	}
	return FR_OK;
}

static int ikey_cmp_fn(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return ikey_cmp(a, alen, b, blen);
}

/* A view of sorted block contents that blk_init has accepted before: the same struct blk, in
 * O(1) instead of a walk of the restart array. */
static void blk_view(struct blk *b, const struct sst_reader *r, const uint8_t *data, size_t len,
		     uint64_t off)
{
	uint32_t cnt = dec_u32(data + len - 4);

	b->data = data;
	b->len = len;
	b->cmp = ikey_cmp_fn;
	b->min_key_len = IKEY_TRAILER_LEN;
	b->path = r->path;
	b->file_off = off;
	b->restart_cnt = cnt;
	b->restarts_off = len - 4 - (size_t)cnt * 4;
}

/* The checks a block passes before anyone uses it, or the cache keeps it. */
static fr_status check_block(const struct sst_reader *r, enum sst_block_kind kind,
			     const struct sst_handle *h, const uint8_t *data, size_t len,
			     fr_error *err)
{
	struct blk b;

	if (kind != SST_BLOCK_FILTER)
		return blk_init(&b, data, len, ikey_cmp_fn, IKEY_TRAILER_LEN, r->path, h->off,
				err);
	/* FORMAT.md §4.5: u8 filter type, then the bloom encoding */
	if (len < 1 || data[0] != SST_FILTER_BLOOM)
		return FR_CORRUPT(err, r->path, h->off, "unknown filter type");
	if (!bloom_is_valid(data + 1, len - 1))
		return FR_CORRUPT(err, r->path, h->off, "malformed bloom filter");
	return FR_OK;
}

/* Moves a checked block of our own into the cache (unless it has none); on FR_NOMEM for the
 * entry the block simply stays ours. */
static void cache_keep(const struct sst_reader *r, const struct sst_handle *h,
		       struct sst_blockref *b)
{
	struct blk_cache_entry *e;

	if (!r->env.cache || !b->mem)
		return;
	/* charge what the entry holds: the allocation (stored blocks keep their trailer) and
	 * the entry's bookkeeping */
	size_t charge = b->len + SST_BLOCK_TRAILER_LEN + BLK_CACHE_ENTRY_OVERHEAD;
	if (blk_cache_insert(r->env.cache, r->meta.id, h->off, b->mem, b->len, charge, &e))
		return;
	b->mem = NULL;
	b->ent = e;
	b->cache = r->env.cache;
	b->data = blk_cache_data(e);
	b->len = blk_cache_len(e);
}

/*
 * The checked contents of block h of the given kind: from the cache if it holds them, else
 * from disk, then kept in the cache when `fill` is set. A block that fails a check is never
 * kept, so it fails the same way on every read. h must have passed handle_fits(h,
 * r->footer_off).
 */
static fr_status fetch_block(const struct sst_reader *r, const struct sst_handle *h,
			     enum sst_block_kind kind, bool fill, struct sst_blockref *out,
			     fr_error *err)
{
	fr_status rc;

	if (r->env.cache) {
		struct blk_cache_entry *e = blk_cache_lookup(r->env.cache, r->meta.id, h->off);

		if (e) {
			memset(out, 0, sizeof(*out));
			out->ent = e;
			out->cache = r->env.cache;
			out->data = blk_cache_data(e);
			out->len = blk_cache_len(e);
			return FR_OK;
		}
	}
	rc = read_block(r, h, out, err);
	if (rc)
		return rc;
	rc = check_block(r, kind, h, out->data, out->len, err);
	if (rc) {
		block_release(out);
		return rc;
	}
	if (fill)
		cache_keep(r, h, out);
	return FR_OK;
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

/* The index as a block: the reader's copy, or the cache's (pinned in *ref until released). */
static fr_status load_index(const struct sst_reader *r, bool fill, struct sst_blockref *ref,
			    struct blk *b, fr_error *err)
{
	memset(ref, 0, sizeof(*ref));
	if (!r->env.cache) {
		*b = r->index;
		return FR_OK;
	}
	fr_status rc = fetch_block(r, &r->index_h, SST_BLOCK_INDEX, fill, ref, err);
	if (!rc)
		blk_view(b, r, ref->data, ref->len, r->index_h.off);
	return rc;
}

static fr_status index_handle(const struct sst_reader *r, const struct blk_iter *ii,
			      struct sst_handle *h, fr_error *err)
{
	if (!sst_handle_decode(ii->val, ii->val + ii->val_len, h))
		return FR_CORRUPT(err, r->path, r->index_h.off, "bad block handle in the index");
	return FR_OK;
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
	if (f->version != SST_FORMAT_VERSION)
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
		if (tag > SST_PROP_CREATED)
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
	    (p->entry_cnt + p->range_del_cnt && p->min_seqno > p->max_seqno))
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
	m->smallest = NULL;
	m->largest = NULL;
	m->smallest_len = 0;
	m->largest_len = 0;
}

fr_status sst_meta_copy(struct sst_meta *dst, const struct sst_meta *src)
{
	struct sst_meta m = *src;
	m.smallest = fr_memdup(src->smallest, src->smallest_len);
	m.largest = fr_memdup(src->largest, src->largest_len);
	if (!m.smallest || !m.largest) {
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
	fr_status rc = read_block(r, h, &ref, err);
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
	r->data_block_cnt = p.data_block_cnt; /* checked against the index in open_index */
out:
	block_release(&ref);
	return rc;
}

/* Loads the index and walks it: keys strictly ascending, handles in order inside the data
 * area, as many entries as the properties promise. Then keeps it: in the cache if there is one
 * (the first read of the table needs it), else as the reader's own copy. */
static fr_status open_index(struct sst_reader *r, const struct sst_handle *h, fr_error *err)
{
	struct sst_blockref ref;
	struct blk b;
	struct blk_iter ii;
	struct fr_buf prev;
	uint64_t cnt = 0, data_end = 0;
	fr_status rc = read_block(r, h, &ref, err);
	if (rc)
		return rc;
	rc = blk_init(&b, ref.data, ref.len, ikey_cmp_fn, IKEY_TRAILER_LEN, r->path, h->off, err);
	if (rc) {
		block_release(&ref);
		return rc;
	}
	buf_init(&prev);
	blk_iter_init(&ii, &b);
	for (rc = blk_iter_seek_first(&ii, err); !rc && ii.valid; rc = blk_iter_next(&ii, err)) {
		struct sst_handle dh = {0};
		rc = index_handle(r, &ii, &dh, err);
		if (rc)
			break;
		if (cnt && ikey_cmp(prev.data, prev.len, ii.key.data, ii.key.len) >= 0) {
			rc = FR_CORRUPT(err, r->path, h->off, "index keys out of order");
			break;
		}
		if (!handle_fits(&dh, r->meta_off) || dh.off < data_end) {
			rc = FR_CORRUPT(err, r->path, h->off, "index handle out of range");
			break;
		}
		data_end = dh.off + dh.size + SST_BLOCK_TRAILER_LEN;
		buf_clear(&prev);
		rc = buf_append(&prev, ii.key.data, ii.key.len);
		if (rc) {
			FR_ERR(err, rc, "table %s: index", r->path);
			break;
		}
		cnt++;
	}
	if (!rc && cnt != r->data_block_cnt)
		rc = FR_CORRUPT(err, r->path, h->off, "index and properties disagree on blocks");
	blk_iter_fini(&ii);
	buf_fini(&prev);
	if (!rc && !r->env.cache) {
		r->index_mem = ref.mem;
		r->index = b;
		return FR_OK;
	}
	if (!rc)
		cache_keep(r, h, &ref);
	block_release(&ref);
	return rc;
}

static fr_status open_filter(struct sst_reader *r, const struct sst_handle *h, fr_error *err)
{
	struct sst_blockref ref;
	fr_status rc = read_block(r, h, &ref, err);
	if (!rc)
		rc = check_block(r, SST_BLOCK_FILTER, h, ref.data, ref.len, err);
	if (!rc && !r->env.cache) {
		r->filter_mem = ref.mem;
		r->filter = ref.data + 1;
		r->filter_len = ref.len - 1;
		return FR_OK;
	}
	if (!rc)
		cache_keep(r, h, &ref);
	block_release(&ref);
	return rc;
}

static fr_status open_range_dels(struct sst_reader *r, const struct sst_handle *h, fr_error *err)
{
	struct sst_blockref ref;
	uint64_t cnt;
	fr_status rc = read_block(r, h, &ref, err);
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
	fr_free(r->filter_mem);
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

/* Asks the filter (*may false: ukey is certainly absent); without a filter, *may is true. */
static fr_status filter_check(const struct sst_reader *r, const void *ukey, size_t ulen,
			      bool *may, fr_error *err)
{
	struct sst_blockref ref;
	fr_status rc;

	*may = true;
	if (!r->has_filter)
		return FR_OK;
	if (!r->env.cache) {
		*may = bloom_may_contain(r->filter, r->filter_len, bloom_hash(ukey, ulen));
		return FR_OK;
	}
	rc = fetch_block(r, &r->filter_h, SST_BLOCK_FILTER, true, &ref, err);
	if (rc)
		return rc;
	*may = bloom_may_contain(ref.data + 1, ref.len - 1, bloom_hash(ukey, ulen));
	block_release(&ref);
	return FR_OK;
}

bool sst_reader_may_contain(const struct sst_reader *r, const void *ukey, size_t ulen)
{
	bool may;

	return filter_check(r, ukey, ulen, &may, NULL) || may;
}

/* ---- point reads ---- */

fr_status sst_reader_get(struct sst_reader *r, const void *ukey, size_t ulen, uint64_t snap,
			 uint8_t *type, uint64_t *seqno, void **val, size_t *vlen, fr_error *err)
{
	uint8_t small[256], *target = small;
	struct sst_blockref ref = {0}, iref = {0};
	struct blk db, ib;
	struct blk_iter ii, di;
	fr_status rc;
	bool first = true, may;

	*val = NULL;
	rc = filter_check(r, ukey, ulen, &may, err);
	if (rc)
		return rc;
	if (!may)
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

	rc = load_index(r, true, &iref, &ib, err);
	if (rc) {
		if (target != small)
			fr_free(target);
		return rc;
	}
	blk_iter_init(&ii, &ib);
	blk_iter_init(&di, &db);
	rc = blk_iter_seek(&ii, target, tlen, err);
	/* the first block whose last key is >= target; a block that ends without a match (a
	 * shortened index key) passes on to the next one */
	while (!rc && ii.valid) {
		struct sst_handle h;
		rc = index_handle(r, &ii, &h, err);
		if (!rc)
			rc = load_data_block(r, &h, true, &ref, &db, err);
		if (rc)
			break;
		blk_iter_set_block(&di, &db);
		rc = first ? blk_iter_seek(&di, target, tlen, err) : blk_iter_seek_first(&di, err);
		first = false;
		if (rc)
			break;
		if (di.valid)
			break;
		block_release(&ref);
		rc = blk_iter_next(&ii, err);
	}
	if (rc)
		goto out;
	if (!ii.valid || !di.valid ||
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
	*seqno = ikey_seqno(di.key.data, di.key.len);
out:
	blk_iter_fini(&di);
	blk_iter_fini(&ii);
	block_release(&ref);
	block_release(&iref);
	if (target != small)
		fr_free(target);
	return rc;
}

/* ---- the table iterator ---- */

struct sst_iter {
	struct kv_iter base; /* first: the kv_iter handed out is this */
	struct sst_reader *r;
	bool fill;          /* put blocks read from disk in the cache */
	bool index_ready;   /* index (and iref) loaded: from the first positioning call on */
	struct sst_blockref iref;
	struct blk index;
	struct blk_iter ii; /* over index */
	struct sst_blockref ref;
	struct blk db;	    /* the loaded data block */
	struct blk_iter di; /* over db */
	bool loaded;
	uint64_t loaded_off;
};

static struct sst_iter *si_of(struct kv_iter *it)
{
	return (struct sst_iter *)it;
}

/* Loads the data block the index cursor is on (unless it is loaded already); di unpositioned. */
static fr_status si_load(struct sst_iter *si)
{
	struct sst_handle h;
	fr_status rc = index_handle(si->r, &si->ii, &h, &si->base.err);
	if (rc)
		return rc;
	if (si->loaded && si->loaded_off == h.off) {
		blk_iter_set_block(&si->di, &si->db);
		return FR_OK;
	}
	blk_iter_set_block(&si->di, NULL);
	block_release(&si->ref);
	si->loaded = false;
	rc = load_data_block(si->r, &h, si->fill, &si->ref, &si->db, &si->base.err);
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
	while (!rc && !si->di.valid && si->ii.valid) {
		rc = blk_iter_next(&si->ii, &si->base.err);
		if (!rc && si->ii.valid) {
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
	while (!rc && !si->di.valid && si->ii.valid) {
		rc = blk_iter_prev(&si->ii, &si->base.err);
		if (!rc && si->ii.valid) {
			rc = si_load(si);
			if (!rc)
				rc = blk_iter_seek_last(&si->di, &si->base.err);
		}
	}
	return rc;
}

/* Publishes the outcome of a positioning call in the kv_iter fields. */
static void si_settle(struct sst_iter *si, fr_status rc)
{
	struct kv_iter *it = &si->base;
	if (rc) {
		it->status = rc;
		it->valid = false;
		si->di.valid = false;
		si->ii.valid = false;
	} else {
		it->valid = si->di.valid && si->ii.valid;
	}
	if (it->valid) {
		it->key = si->di.key.data;
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
	fr_status rc = blk_iter_seek_first(&si->ii, &si->base.err);
	if (!rc && si->ii.valid) {
		rc = si_load(si);
		if (!rc)
			rc = blk_iter_seek_first(&si->di, &si->base.err);
	}
	return rc ? rc : si_skip_forward(si);
}

static fr_status si_seek_last(struct sst_iter *si)
{
	si->di.valid = false;
	fr_status rc = blk_iter_seek_last(&si->ii, &si->base.err);
	if (!rc && si->ii.valid) {
		rc = si_load(si);
		if (!rc)
			rc = blk_iter_seek_last(&si->di, &si->base.err);
	}
	return rc ? rc : si_skip_backward(si);
}

static fr_status si_seek(struct sst_iter *si, const uint8_t *k, size_t n)
{
	si->di.valid = false;
	fr_status rc = blk_iter_seek(&si->ii, k, n, &si->base.err);
	if (!rc && si->ii.valid) {
		rc = si_load(si);
		if (!rc)
			rc = blk_iter_seek(&si->di, k, n, &si->base.err);
	}
	return rc ? rc : si_skip_forward(si);
}

/* Loads the index on the first positioning call (which, unlike the constructor, reports its
 * errors through the iterator); it stays pinned for the iterator's life. */
static fr_status si_index(struct sst_iter *si)
{
	if (si->index_ready)
		return FR_OK;
	fr_status rc = load_index(si->r, si->fill, &si->iref, &si->index, &si->base.err);
	if (rc)
		return rc;
	blk_iter_set_block(&si->ii, &si->index);
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
		si_settle(si, si_seek(si, k, n));
}

static void sst_iter_seek_prev(struct kv_iter *it, const uint8_t *k, size_t n)
{
	struct sst_iter *si = si_of(it);
	if (!si_usable(si, k, n))
		return;
	/* the first entry >= target; if it is not the target itself, the one before it */
	fr_status rc = si_seek(si, k, n);
	if (!rc && si->di.valid && ikey_cmp(si->di.key.data, si->di.key.len, k, n) != 0) {
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
	blk_iter_fini(&si->ii);
	block_release(&si->ref);
	block_release(&si->iref);
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
	struct sst_iter *si = fr_calloc(1, sizeof(*si));

	*out = NULL;
	if (!si)
		return FR_ERR(err, FR_NOMEM, "table %s: iterator", r->path);
	si->base.ops = &sst_iter_ops;
	si->base.status = FR_OK;
	si->r = r;
	si->fill = !(flags & SST_ITER_NO_FILL);
	blk_iter_init(&si->ii, NULL);
	blk_iter_init(&si->di, &si->db);
	sst_reader_ref(r);
	*out = &si->base;
	return FR_OK;
}

fr_status sst_iter_new(struct sst_reader *r, struct kv_iter **out, fr_error *err)
{
	return sst_iter_new_flags(r, 0, out, err);
}
