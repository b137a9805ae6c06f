/* SPDX-License-Identifier: MIT */
/*
 * sst_write.c - writing a table (FORMAT.md §4). Entries go into a data block builder; when the
 * block reaches the target size it is stored (LZ4 when it pays, trailer with xxh3) and its last
 * internal key and handle go into the index builder. The bloom filter is built at the end from
 * one xxh3 hash per distinct user key. finish() appends filter, range tombstones, index,
 * properties and footer, in that order, then fdatasyncs.
 *
 * The index is built in partitions (§4.4.1): once the one being built reaches the partition
 * size it is closed and kept in memory (the whole index was kept in memory before partitions
 * existed, so this costs nothing more), and a new one begins. finish() writes a table whose
 * index fit in one partition exactly as format version 1 did; otherwise it stores every
 * partition after the range tombstones and then a top-level index of (last key, handle) per
 * partition, and the footer says version 2, as it does when data blocks carry hash indexes.
 *
 * Stored blocks gather in an output buffer and reach the file in writes of about 256 KiB.
 * A failure while storing a block poisons the writer: later calls repeat the error.
 */
#include "sst/sst.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/ikey.h"
#include "io/io.h"
#include "sst/block.h"
#include "sst/filter.h"
#include "sst/format.h"

#define SST_WRITE_CHUNK (256 * 1024)
#define SST_BLOCK_SIZE_MAX (1u << 30)

/* A closed index partition: contents parts[off, off + len), last key part_keys[key_off, ...). */
struct wpart {
	size_t off;
	size_t len;
	size_t key_off;
	size_t key_len;
};

/* A range tombstone owned by the writer: start and end share one allocation. */
struct wrd {
	uint8_t *mem; /* start, then end */
	size_t start_len;
	size_t end_len;
	uint64_t seqno;
};

struct sst_writer {
	struct fr_io *io;
	char *path;
	uint64_t id;
	struct sst_options o;
	struct io_file *f;
	uint64_t written;  /* bytes written to the file */
	struct fr_buf out; /* stored blocks past `written`, not yet written */
	struct blk_builder data;
	struct blk_builder index; /* the index partition being built */
	uint32_t part_size;	  /* close a partition at this size */
	struct fr_buf parts;	  /* the closed partitions' contents, back to back */
	struct fr_buf part_keys;  /* their last keys, back to back */
	struct wpart *pv;	  /* where each closed partition and its key are */
	size_t part_cnt;
	size_t part_cap;
	struct fr_buf last_key; /* the last internal key added */
	struct fr_buf first_ukey;
	uint64_t *hashes; /* bloom_hash of each distinct user key */
	size_t hash_cnt;
	size_t hash_cap;
	struct wrd *rds;
	size_t rd_cnt;
	size_t rd_cap;
	uint64_t entry_cnt;
	uint64_t tombstone_cnt;
	uint64_t min_seqno;
	uint64_t max_seqno;
	uint64_t data_block_cnt;
	fr_status failed; /* sticky: FR_OK until storing a block failed */
};

void sst_options_default(struct sst_options *o)
{
	o->block_size = 4096;
	o->restart_interval = 16;
	o->bloom_bits_per_key = 10;
	o->compress = true;
	o->hash_index = false;
	o->index_partition_size = 0;
}

static void writer_free(struct sst_writer *w)
{
	io_close(w->f);
	blk_builder_fini(&w->data);
	blk_builder_fini(&w->index);
	buf_fini(&w->parts);
	buf_fini(&w->part_keys);
	fr_free(w->pv);
	buf_fini(&w->out);
	buf_fini(&w->last_key);
	buf_fini(&w->first_ukey);
	for (size_t i = 0; i < w->rd_cnt; i++)
		fr_free(w->rds[i].mem);
	fr_free(w->rds);
	fr_free(w->hashes);
	fr_free(w->path);
	fr_free(w);
}

fr_status sst_writer_open(struct fr_io *io, const char *path, uint64_t id,
			  const struct sst_options *o, struct sst_writer **out, fr_error *err)
{
	struct sst_writer *w;
	fr_status rc;

	*out = NULL;
	if (o && (o->block_size == 0 || o->block_size > SST_BLOCK_SIZE_MAX ||
		  o->restart_interval == 0 || o->bloom_bits_per_key > BLOOM_BITS_PER_KEY_MAX))
		return FR_ERR(err, FR_INVALID,
			      "table %s: bad options (block_size %u, restart_interval %u, "
			      "bloom_bits_per_key %u)",
			      path, o->block_size, o->restart_interval, o->bloom_bits_per_key);
	w = fr_calloc(1, sizeof(*w));
	if (!w)
		return FR_ERR(err, FR_NOMEM, "table %s: writer", path);
	w->path = fr_strdup(path);
	if (!w->path) {
		fr_free(w);
		return FR_ERR(err, FR_NOMEM, "table %s: writer", path);
	}
	w->io = io;
	w->id = id;
	if (o)
		w->o = *o;
	else
		sst_options_default(&w->o);
	buf_init(&w->out);
	buf_init(&w->last_key);
	buf_init(&w->first_ukey);
	blk_builder_init(&w->data, w->o.restart_interval);
	blk_builder_set_hash(&w->data, w->o.hash_index);
	blk_builder_init(&w->index, 1); /* FORMAT.md §4.4: every index key is a restart */
	buf_init(&w->parts);
	buf_init(&w->part_keys);
	w->part_size = w->o.index_partition_size ? w->o.index_partition_size
						 : SST_INDEX_PARTITION_SIZE;
	w->min_seqno = UINT64_MAX;
	rc = io_open(io, path, IO_RDWR | IO_CREATE | IO_EXCL, &w->f, err);
	if (rc)
		goto out_free;
	*out = w;
	return FR_OK;

out_free:
	writer_free(w);
	return rc;
}

/* Hands the buffered stored blocks to the file. */
static fr_status write_out(struct sst_writer *w, fr_error *err)
{
	if (!w->out.len)
		return FR_OK;
	fr_status rc = io_pwrite(w->f, w->out.data, w->out.len, w->written, err);
	if (rc)
		return rc;
	w->written += w->out.len;
	buf_clear(&w->out);
	return FR_OK;
}

/* Stores block contents raw[0..len) (§4.2) and returns where they went. */
static fr_status put_block(struct sst_writer *w, const uint8_t *raw, size_t len,
			   struct sst_handle *h, fr_error *err)
{
	size_t start = w->out.len;
	fr_status rc = blk_stored_encode(raw, len, w->o.compress, &w->out);
	if (rc)
		return FR_ERR(err, rc, "table %s: storing a block", w->path);
	h->off = w->written + start;
	h->size = w->out.len - start - SST_BLOCK_TRAILER_LEN;
	if (w->out.len >= SST_WRITE_CHUNK)
		return write_out(w, err);
	return FR_OK;
}

/* Closes the index partition being built (§4.4.1) and keeps it for finish(). */
static fr_status cut_partition(struct sst_writer *w, fr_error *err)
{
	const uint8_t *raw;
	size_t len;
	fr_status rc;

	if (w->part_cnt == w->part_cap) {
		size_t cap = w->part_cap ? 2 * w->part_cap : 16;
		struct wpart *p =
			cap > SIZE_MAX / sizeof(*p) ? NULL : fr_realloc(w->pv, cap * sizeof(*p));
		if (!p)
			return FR_ERR(err, FR_NOMEM, "table %s: index partitions", w->path);
		w->pv = p;
		w->part_cap = cap;
	}
	rc = blk_builder_finish(&w->index, &raw, &len);
	if (rc)
		return FR_ERR(err, rc, "table %s: index partition", w->path);
	struct wpart *p = &w->pv[w->part_cnt];
	p->off = w->parts.len;
	p->len = len;
	p->key_off = w->part_keys.len;
	p->key_len = w->index.last_key.len;
	rc = buf_append(&w->parts, raw, len);
	if (!rc)
		rc = buf_append(&w->part_keys, w->index.last_key.data, w->index.last_key.len);
	if (rc) {
		w->parts.len = p->off;
		w->part_keys.len = p->key_off;
		return FR_ERR(err, rc, "table %s: index partition", w->path);
	}
	w->part_cnt++;
	blk_builder_reset(&w->index);
	return FR_OK;
}

/* Stores the pending data block and indexes it under its last key (§4.4). */
static fr_status flush_data(struct sst_writer *w, fr_error *err)
{
	const uint8_t *raw;
	size_t len, n;
	struct sst_handle h;
	uint8_t hv[2 * VARINT_MAX];
	fr_status rc;

	rc = blk_builder_finish(&w->data, &raw, &len);
	if (rc)
		return FR_ERR(err, rc, "table %s: finishing a data block", w->path);
	rc = put_block(w, raw, len, &h, err);
	if (rc)
		return rc;
	n = sst_handle_encode(hv, &h);
	rc = blk_builder_add(&w->index, w->data.last_key.data, w->data.last_key.len, hv, n);
	if (rc)
		return FR_ERR(err, rc, "table %s: index entry", w->path);
	blk_builder_reset(&w->data);
	w->data_block_cnt++;
	if (blk_builder_size(&w->index) >= w->part_size)
		return cut_partition(w, err);
	return FR_OK;
}

fr_status sst_writer_add(struct sst_writer *w, const uint8_t *ikey, size_t iklen, const void *val,
			 size_t vlen, fr_error *err)
{
	fr_status rc;

	if (w->failed)
		return FR_ERR(err, w->failed, "table %s: an earlier write failed", w->path);
	if (iklen < IKEY_TRAILER_LEN || ikey_type(ikey, iklen) == VT_SEEK || (vlen && !val))
		return FR_ERR(err, FR_INVALID, "table %s: not a storable internal key", w->path);
	if (w->entry_cnt && ikey_cmp(ikey, iklen, w->last_key.data, w->last_key.len) <= 0)
		return FR_ERR(err, FR_INVALID, "table %s: keys added out of order", w->path);

	size_t ulen = ikey_user_len(iklen);
	bool new_ukey = !w->entry_cnt || bytes_cmp(ikey, ulen, w->last_key.data,
						   ikey_user_len(w->last_key.len)) != 0;
	/* take every piece of memory first, so a failure leaves the writer as it was */
	rc = buf_reserve(&w->last_key, iklen);
	if (!rc && !w->entry_cnt)
		rc = buf_append(&w->first_ukey, ikey, ulen);
	if (!rc && new_ukey && w->o.bloom_bits_per_key && w->hash_cnt == w->hash_cap) {
		size_t cap = w->hash_cap ? w->hash_cap * 2 : 1024;
		uint64_t *p = cap > SIZE_MAX / sizeof(*p) ? NULL
							  : fr_realloc(w->hashes, cap * sizeof(*p));
		if (!p)
			rc = FR_NOMEM;
		else {
			w->hashes = p;
			w->hash_cap = cap;
		}
	}
	if (!rc)
		rc = blk_builder_add(&w->data, ikey, iklen, val, vlen);
	if (rc) {
		if (!w->entry_cnt)
			buf_clear(&w->first_ukey);
		return FR_ERR(err, rc, "table %s: adding an entry of %zu + %zu bytes", w->path,
			      iklen, vlen);
	}

	buf_clear(&w->last_key);
	buf_append(&w->last_key, ikey, iklen); /* reserved above: cannot fail */
	if (new_ukey && w->o.bloom_bits_per_key)
		w->hashes[w->hash_cnt++] = bloom_hash(ikey, ulen);
	uint64_t seqno = ikey_seqno(ikey, iklen);
	uint8_t type = ikey_type(ikey, iklen);
	w->entry_cnt++;
	if (type == VT_DEL || type == VT_WEAK_DEL)
		w->tombstone_cnt++;
	if (seqno < w->min_seqno)
		w->min_seqno = seqno;
	if (seqno > w->max_seqno)
		w->max_seqno = seqno;

	if (blk_builder_size(&w->data) >= w->o.block_size) {
		rc = flush_data(w, err);
		if (rc)
			w->failed = rc;
	}
	return rc;
}

fr_status sst_writer_add_range_del(struct sst_writer *w, const struct range_del *rd, fr_error *err)
{
	if (w->failed)
		return FR_ERR(err, w->failed, "table %s: an earlier write failed", w->path);
	if ((rd->start_len && !rd->start) || (rd->end_len && !rd->end) ||
	    bytes_cmp(rd->start, rd->start_len, rd->end, rd->end_len) >= 0 || rd->seqno > SEQNO_MAX)
		return FR_ERR(err, FR_INVALID, "table %s: empty or bad range tombstone", w->path);
	if (w->rd_cnt == w->rd_cap) {
		size_t cap = w->rd_cap ? w->rd_cap * 2 : 16;
		struct wrd *p =
			cap > SIZE_MAX / sizeof(*p) ? NULL : fr_realloc(w->rds, cap * sizeof(*p));
		if (!p)
			return FR_ERR(err, FR_NOMEM, "table %s: range tombstone", w->path);
		w->rds = p;
		w->rd_cap = cap;
	}
	if (rd->start_len > SIZE_MAX - rd->end_len)
		return FR_ERR(err, FR_INVALID, "table %s: range tombstone too large", w->path);
	struct wrd *d = &w->rds[w->rd_cnt];
	d->mem = fr_malloc(rd->start_len + rd->end_len);
	if (!d->mem)
		return FR_ERR(err, FR_NOMEM, "table %s: range tombstone", w->path);
	if (rd->start_len)
		memcpy(d->mem, rd->start, rd->start_len);
	memcpy(d->mem + rd->start_len, rd->end, rd->end_len);
	d->start_len = rd->start_len;
	d->end_len = rd->end_len;
	d->seqno = rd->seqno;
	w->rd_cnt++;
	return FR_OK;
}

uint64_t sst_writer_size(const struct sst_writer *w)
{
	uint64_t n = w->written + w->out.len;
	if (!blk_builder_is_empty(&w->data))
		n += blk_builder_size(&w->data);
	return n;
}

uint64_t sst_writer_entry_cnt(const struct sst_writer *w)
{
	return w->entry_cnt;
}

/* Range tombstone order on disk (§4.8): start ascending, then seqno descending, then end. */
static int wrd_cmp(const void *pa, const void *pb)
{
	const struct wrd *a = pa, *b = pb;
	int c = bytes_cmp(a->mem, a->start_len, b->mem, b->start_len);
	if (c)
		return c;
	if (a->seqno != b->seqno)
		return a->seqno > b->seqno ? -1 : 1;
	return bytes_cmp(a->mem + a->start_len, a->end_len, b->mem + b->start_len, b->end_len);
}

static fr_status encode_range_dels(struct sst_writer *w, struct fr_buf *b)
{
	fr_status rc = buf_put_varint(b, w->rd_cnt);
	for (size_t i = 0; !rc && i < w->rd_cnt; i++) {
		const struct wrd *d = &w->rds[i];
		rc = buf_put_lenbytes(b, d->mem, d->start_len);
		if (!rc)
			rc = buf_put_lenbytes(b, d->mem + d->start_len, d->end_len);
		if (!rc)
			rc = buf_put_varint(b, d->seqno);
	}
	return rc;
}

/* The user-key bounds of points and range tombstones (sst.h), copied into meta. */
static fr_status fill_meta(struct sst_writer *w, struct sst_meta *m)
{
	const uint8_t *lo = NULL, *hi = NULL;
	size_t lo_len = 0, hi_len = 0;
	bool have = w->entry_cnt > 0;

	memset(m, 0, sizeof(*m));
	if (have) {
		lo = w->first_ukey.data;
		lo_len = w->first_ukey.len;
		hi = w->last_key.data;
		hi_len = ikey_user_len(w->last_key.len);
	}
	for (size_t i = 0; i < w->rd_cnt; i++) {
		const struct wrd *d = &w->rds[i];
		if (!have || bytes_cmp(d->mem, d->start_len, lo, lo_len) < 0) {
			lo = d->mem;
			lo_len = d->start_len;
		}
		if (!have || bytes_cmp(d->mem + d->start_len, d->end_len, hi, hi_len) > 0) {
			hi = d->mem + d->start_len;
			hi_len = d->end_len;
		}
		have = true;
		if (d->seqno < w->min_seqno)
			w->min_seqno = d->seqno;
		if (d->seqno > w->max_seqno)
			w->max_seqno = d->seqno;
	}
	m->id = w->id;
	m->entry_cnt = w->entry_cnt;
	m->tombstone_cnt = w->tombstone_cnt;
	m->range_del_cnt = w->rd_cnt;
	m->min_seqno = w->min_seqno;
	m->max_seqno = w->max_seqno;
	m->smallest = fr_memdup(lo, lo_len);
	m->largest = fr_memdup(hi, hi_len);
	if (!m->smallest || !m->largest) {
		sst_meta_fini(m);
		return FR_NOMEM;
	}
	m->smallest_len = lo_len;
	m->largest_len = hi_len;
	return FR_OK;
}

/* Stores the index (§4.4): one block when it fits one partition, else the partitions and their
 * top-level index (§4.4.1); *h is what the footer points at, *parts the partition count (0: one
 * block). */
static fr_status write_index(struct sst_writer *w, struct sst_handle *h, uint64_t *parts,
			     fr_error *err)
{
	struct blk_builder top;
	const uint8_t *raw;
	size_t len;
	fr_status rc;

	*parts = 0;
	if (w->part_cnt + !blk_builder_is_empty(&w->index) <= 1) {
		if (w->part_cnt) { /* closed exactly at the last entry: the whole index */
			raw = w->parts.data;
			len = w->pv[0].len;
		} else if ((rc = blk_builder_finish(&w->index, &raw, &len))) {
			return FR_ERR(err, rc, "table %s: index block", w->path);
		}
		return put_block(w, raw, len, h, err);
	}
	if (!blk_builder_is_empty(&w->index) && (rc = cut_partition(w, err)))
		return rc;
	blk_builder_init(&top, 1);
	for (size_t i = 0; i < w->part_cnt; i++) {
		const struct wpart *p = &w->pv[i];
		struct sst_handle ph;
		uint8_t hv[2 * VARINT_MAX];

		rc = put_block(w, w->parts.data + p->off, p->len, &ph, err);
		if (rc)
			goto out;
		size_t n = sst_handle_encode(hv, &ph);
		rc = blk_builder_add(&top, w->part_keys.data + p->key_off, p->key_len, hv, n);
		if (rc) {
			FR_ERR(err, rc, "table %s: top-level index", w->path);
			goto out;
		}
	}
	rc = blk_builder_finish(&top, &raw, &len);
	if (rc) {
		FR_ERR(err, rc, "table %s: top-level index", w->path);
		goto out;
	}
	rc = put_block(w, raw, len, h, err);
	if (!rc)
		*parts = w->part_cnt;
out:
	blk_builder_fini(&top);
	return rc;
}

static fr_status write_meta_blocks(struct sst_writer *w, const struct sst_meta *m, fr_error *err)
{
	struct sst_footer ft;
	struct fr_buf b;
	uint64_t parts;
	fr_status rc;

	memset(&ft, 0, sizeof(ft));
	buf_init(&b);
	if (w->o.bloom_bits_per_key) {
		rc = buf_put_u8(&b, SST_FILTER_BLOOM);
		if (!rc)
			rc = bloom_build(w->hashes, w->hash_cnt, w->o.bloom_bits_per_key, &b);
		if (rc) {
			FR_ERR(err, rc, "table %s: building the filter", w->path);
			goto out;
		}
		rc = put_block(w, b.data, b.len, &ft.h[SST_FOOTER_FILTER], err);
		if (rc)
			goto out;
	}

	if (w->rd_cnt)
		qsort(w->rds, w->rd_cnt, sizeof(*w->rds), wrd_cmp);
	buf_clear(&b);
	rc = encode_range_dels(w, &b);
	if (rc) {
		FR_ERR(err, rc, "table %s: range tombstone block", w->path);
		goto out;
	}
	rc = put_block(w, b.data, b.len, &ft.h[SST_FOOTER_RANGE_DEL], err);
	if (rc)
		goto out;

	rc = write_index(w, &ft.h[SST_FOOTER_INDEX], &parts, err);
	if (rc)
		goto out;
	/* §4.10: version 1 unless a version 2 structure is in the file */
	ft.version = parts || w->o.hash_index ? SST_FORMAT_V2 : SST_FORMAT_V1;

	struct sst_props p = {
		.entry_cnt = m->entry_cnt,
		.tombstone_cnt = m->tombstone_cnt,
		.range_del_cnt = m->range_del_cnt,
		.min_seqno = m->min_seqno,
		.max_seqno = m->max_seqno,
		.smallest = m->smallest,
		.smallest_len = m->smallest_len,
		.largest = m->largest,
		.largest_len = m->largest_len,
		.block_size = w->o.block_size,
		.restart_interval = w->o.restart_interval,
		.bloom_bits = w->o.bloom_bits_per_key,
		.compression = w->o.compress ? SST_COMP_LZ4 : SST_COMP_NONE,
		.data_block_cnt = w->data_block_cnt,
		.created_s = m->created_s,
		.index_parts = parts,
		.data_hash = w->o.hash_index,
	};
	buf_clear(&b);
	rc = sst_props_encode(&p, &b);
	if (rc) {
		FR_ERR(err, rc, "table %s: properties block", w->path);
		goto out;
	}
	rc = put_block(w, b.data, b.len, &ft.h[SST_FOOTER_PROPS], err);
	if (rc)
		goto out;

	rc = buf_reserve(&w->out, SST_FOOTER_LEN);
	if (rc) {
		FR_ERR(err, rc, "table %s: footer", w->path);
		goto out;
	}
	sst_footer_encode(&ft, w->out.data + w->out.len);
	w->out.len += SST_FOOTER_LEN;
	rc = write_out(w, err);
out:
	buf_fini(&b);
	return rc;
}

fr_status sst_writer_finish(struct sst_writer *w, struct sst_meta *meta, fr_error *err)
{
	struct sst_meta m;
	fr_status rc;

	memset(meta, 0, sizeof(*meta));
	memset(&m, 0, sizeof(m));
	if (w->failed) {
		rc = FR_ERR(err, w->failed, "table %s: an earlier write failed", w->path);
		goto out_abort;
	}
	if (!w->entry_cnt && !w->rd_cnt) {
		rc = FR_ERR(err, FR_INVALID, "table %s: nothing to write", w->path);
		goto out_abort;
	}
	if (!blk_builder_is_empty(&w->data)) {
		rc = flush_data(w, err);
		if (rc)
			goto out_abort;
	}
	rc = fill_meta(w, &m);
	m.created_s = (uint64_t)time(NULL);
	if (rc) {
		FR_ERR(err, rc, "table %s: metadata", w->path);
		goto out_abort;
	}
	rc = write_meta_blocks(w, &m, err);
	if (rc)
		goto out_fini_meta;
	rc = io_sync(w->f, FR_PERSIST_SYNC_DATA, err);
	if (rc)
		goto out_fini_meta;
	m.file_size = w->written;
	*meta = m;
	writer_free(w);
	return FR_OK;

out_fini_meta:
	sst_meta_fini(&m);
out_abort:
	sst_writer_abort(w);
	return rc;
}

void sst_writer_abort(struct sst_writer *w)
{
	if (!w)
		return;
	io_close(w->f);
	w->f = NULL;
	io_unlink(w->io, w->path, NULL);
	writer_free(w);
}

void sst_footer_encode(const struct sst_footer *f, uint8_t *out)
{
	for (int i = 0; i < SST_FOOTER_HANDLE_CNT; i++) {
		enc_u64(out + 16 * i, f->h[i].off);
		enc_u64(out + 16 * i + 8, f->h[i].size);
	}
	enc_u32(out + SST_FOOTER_VERSION_OFF, f->version);
	enc_u64(out + SST_FOOTER_MAGIC_OFF, SST_MAGIC);
	/* FORMAT.md §4.6: the checksum covers the 76 footer bytes before it */
	enc_u64(out + SST_FOOTER_CHECKSUM_OFF, fr_xxh3(out, SST_FOOTER_CHECKSUM_OFF));
}

static fr_status put_prop_u64(struct fr_buf *b, uint32_t tag, uint64_t v)
{
	fr_status rc = buf_put_varint(b, tag);
	if (!rc)
		rc = buf_put_varint(b, varint_len(v));
	if (!rc)
		rc = buf_put_varint(b, v);
	return rc;
}

static fr_status put_prop_bytes(struct fr_buf *b, uint32_t tag, const uint8_t *p, size_t n)
{
	fr_status rc = buf_put_varint(b, tag);
	if (!rc)
		rc = buf_put_lenbytes(b, p, n);
	return rc;
}

fr_status sst_props_encode(const struct sst_props *p, struct fr_buf *out)
{
	fr_status rc = put_prop_u64(out, SST_PROP_ENTRY_CNT, p->entry_cnt);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_TOMBSTONE_CNT, p->tombstone_cnt);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_RANGE_DEL_CNT, p->range_del_cnt);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_MIN_SEQNO, p->min_seqno);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_MAX_SEQNO, p->max_seqno);
	if (!rc)
		rc = put_prop_bytes(out, SST_PROP_SMALLEST, p->smallest, p->smallest_len);
	if (!rc)
		rc = put_prop_bytes(out, SST_PROP_LARGEST, p->largest, p->largest_len);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_BLOCK_SIZE, p->block_size);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_RESTART_INTERVAL, p->restart_interval);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_BLOOM_BITS, p->bloom_bits);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_COMPRESSION, p->compression);
	if (!rc)
		rc = put_prop_u64(out, SST_PROP_DATA_BLOCK_CNT, p->data_block_cnt);
	if (!rc && p->created_s)
		rc = put_prop_u64(out, SST_PROP_CREATED, p->created_s);
	/* only in version 2 tables, so that version 1 tables stay as they were */
	if (!rc && (p->index_parts || p->data_hash))
		rc = put_prop_u64(out, SST_PROP_INDEX_PARTS, p->index_parts);
	if (!rc && (p->index_parts || p->data_hash))
		rc = put_prop_u64(out, SST_PROP_DATA_HASH, p->data_hash);
	return rc;
}
