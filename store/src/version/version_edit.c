/* SPDX-License-Identifier: MIT */
/*
 * version_edit.c - version edits: the builders that collect one atomic change to the table
 * sets of the trees, and its encoding as a tagged field list (FORMAT.md §5.2). Each field is a
 * varint tag followed by the tag's payload; decoding checks every length, rejects unknown tags,
 * out-of-range values and repeated singleton fields with FR_CORRUPTION naming the file and the
 * byte offset, and never reads past the record.
 */
#include "version/version.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/ikey.h"
#include "version/version_int.h"

/* Field tags, FORMAT.md §5.2. On disk: never renumber, never reuse a retired value. */
enum {
	VE_TAG_ADD_TABLE = 1,
	VE_TAG_DEL_TABLE = 2,
	VE_TAG_FLUSHED = 3,
	VE_TAG_DROP_TREE = 4,
	VE_TAG_NEXT_FILE_ID = 5,
	VE_TAG_LAST_SEQNO = 6,
	VE_TAG_ADD_TABLE2 = 7, /* ADD_TABLE, then varint created_s */
	VE_TAG_ADD_TABLE_BLOBS = 8, /* ADD_TABLE2, then the table's blob references */
	VE_TAG_ADD_BLOB = 9,
	/* 10: reserved for blob files */
	VE_TAG_ADD_TABLE_INGESTED = 11, /* ADD_TABLE2, then varint global_seqno */
	/* 12: reserved */
};

void vedit_init(struct vedit *e)
{
	memset(e, 0, sizeof(*e));
}

void vedit_fini(struct vedit *e)
{
	for (size_t i = 0; i < e->add_cnt; i++)
		sst_meta_fini(&e->adds[i].meta);
	fr_free(e->adds);
	fr_free(e->dels);
	fr_free(e->flushed);
	fr_free(e->dropped_trees);
	fr_free(e->blob_adds);
	vedit_init(e);
}

/* Makes room in array arr (cnt elements of size sz) for one more; *out is the array to use
 * from now on (arr itself, or its reallocation). The capacity is implied by cnt: 4 while
 * cnt <= 4, else the next power of two >= cnt, so no capacity field is needed. */
static fr_status grow(void *arr, size_t cnt, size_t sz, void **out)
{
	*out = arr;
	if (cnt != 0 && (cnt < 4 || (cnt & (cnt - 1))))
		return FR_OK;
	size_t cap = cnt ? cnt * 2 : 4;
	if (cap < cnt || cap > SIZE_MAX / sz)
		return FR_NOMEM;
	void *p = fr_realloc(arr, cap * sz);
	if (!p)
		return FR_NOMEM;
	*out = p;
	return FR_OK;
}

fr_status vedit_add_table(struct vedit *e, uint32_t tree_id, uint32_t level,
			  const struct sst_meta *m)
{
	void *p;

	if (grow(e->adds, e->add_cnt, sizeof(*e->adds), &p))
		return FR_NOMEM;
	e->adds = p;
	struct vedit_add *a = &e->adds[e->add_cnt];
	if (sst_meta_copy(&a->meta, m))
		return FR_NOMEM;
	a->tree_id = tree_id;
	a->level = level;
	e->add_cnt++;
	return FR_OK;
}

fr_status vedit_del_table(struct vedit *e, uint32_t tree_id, uint32_t level, uint64_t table_id)
{
	void *p;

	if (grow(e->dels, e->del_cnt, sizeof(*e->dels), &p))
		return FR_NOMEM;
	e->dels = p;
	e->dels[e->del_cnt++] = (struct vedit_del){ tree_id, level, table_id };
	return FR_OK;
}

/* Appends without looking for an earlier entry of the tree: the decoder keeps what the file
 * says (a later entry for the same tree wins when applied), in linear time. */
static fr_status push_flushed(struct vedit *e, uint32_t tree_id, uint64_t seqno)
{
	void *p;

	if (grow(e->flushed, e->flushed_cnt, sizeof(*e->flushed), &p))
		return FR_NOMEM;
	e->flushed = p;
	e->flushed[e->flushed_cnt++] = (struct vedit_flushed){ tree_id, seqno };
	return FR_OK;
}

fr_status vedit_set_flushed(struct vedit *e, uint32_t tree_id, uint64_t seqno)
{
	for (size_t i = 0; i < e->flushed_cnt; i++) {
		if (e->flushed[i].tree_id == tree_id) {
			e->flushed[i].seqno = seqno;
			return FR_OK;
		}
	}
	return push_flushed(e, tree_id, seqno);
}

fr_status vedit_drop_tree(struct vedit *e, uint32_t tree_id)
{
	for (size_t i = 0; i < e->dropped_cnt; i++)
		if (e->dropped_trees[i] == tree_id)
			return FR_OK;
	void *p;

	if (grow(e->dropped_trees, e->dropped_cnt, sizeof(*e->dropped_trees), &p))
		return FR_NOMEM;
	e->dropped_trees = p;
	e->dropped_trees[e->dropped_cnt++] = tree_id;
	return FR_OK;
}

fr_status vedit_add_blob(struct vedit *e, uint32_t tree_id, const struct blob_meta *m)
{
	void *p;

	if (grow(e->blob_adds, e->blob_add_cnt, sizeof(*e->blob_adds), &p))
		return FR_NOMEM;
	e->blob_adds = p;
	e->blob_adds[e->blob_add_cnt++] = (struct vedit_blob){ tree_id, *m };
	return FR_OK;
}

/* ---- encoding (FORMAT.md §5.2) ---- */

fr_status vedit_encode(const struct vedit *e, struct fr_buf *out)
{
	fr_status rc = FR_OK;

	for (size_t i = 0; i < e->dropped_cnt && !rc; i++) {
		rc = buf_put_varint(out, VE_TAG_DROP_TREE);
		if (!rc)
			rc = buf_put_varint(out, e->dropped_trees[i]);
	}
	for (size_t i = 0; i < e->del_cnt && !rc; i++) {
		const struct vedit_del *d = &e->dels[i];

		rc = buf_put_varint(out, VE_TAG_DEL_TABLE);
		if (!rc)
			rc = buf_put_varint(out, d->tree_id);
		if (!rc)
			rc = buf_put_varint(out, d->level);
		if (!rc)
			rc = buf_put_varint(out, d->table_id);
	}
	for (size_t i = 0; i < e->add_cnt && !rc; i++) {
		const struct vedit_add *a = &e->adds[i];
		const struct sst_meta *m = &a->meta;
		/* the plain tag unless the table needs more: older builds read it */
		const uint64_t tag = m->global_seqno   ? VE_TAG_ADD_TABLE_INGESTED
				     : m->blob_ref_cnt ? VE_TAG_ADD_TABLE_BLOBS
						       : VE_TAG_ADD_TABLE2;
		/* an ingested table holds inline values only, until compaction rewrites it */
		if (m->global_seqno && m->blob_ref_cnt)
			return FR_INVALID;
		const uint64_t nums[] = { tag,		    a->tree_id,		 a->level,
					  m->id,	    m->file_size,	 m->entry_cnt,
					  m->tombstone_cnt, m->range_del_cnt, m->min_seqno,
					  m->max_seqno };

		for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]) && !rc; k++)
			rc = buf_put_varint(out, nums[k]);
		if (!rc)
			rc = buf_put_lenbytes(out, m->smallest, m->smallest_len);
		if (!rc)
			rc = buf_put_lenbytes(out, m->largest, m->largest_len);
		if (!rc)
			rc = buf_put_varint(out, m->created_s);
		if (!rc && m->global_seqno)
			rc = buf_put_varint(out, m->global_seqno);
		if (!rc && m->blob_ref_cnt) {
			rc = buf_put_varint(out, m->blob_ref_cnt);
			for (size_t r = 0; r < m->blob_ref_cnt && !rc; r++) {
				rc = buf_put_varint(out, m->blob_refs[r].file_id);
				if (!rc)
					rc = buf_put_varint(out, m->blob_refs[r].bytes);
			}
		}
	}
	/* the blob files the edit adds (decoding reads the whole edit before applying it) */
	for (size_t i = 0; i < e->blob_add_cnt && !rc; i++) {
		const struct vedit_blob *b = &e->blob_adds[i];
		const uint64_t nums[] = { VE_TAG_ADD_BLOB,   b->tree_id,
					  b->meta.id,	     b->meta.file_size,
					  b->meta.value_cnt, b->meta.value_bytes };

		for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]) && !rc; k++)
			rc = buf_put_varint(out, nums[k]);
	}
	for (size_t i = 0; i < e->flushed_cnt && !rc; i++) {
		rc = buf_put_varint(out, VE_TAG_FLUSHED);
		if (!rc)
			rc = buf_put_varint(out, e->flushed[i].tree_id);
		if (!rc)
			rc = buf_put_varint(out, e->flushed[i].seqno);
	}
	if (!rc && e->has_next_file_id) {
		rc = buf_put_varint(out, VE_TAG_NEXT_FILE_ID);
		if (!rc)
			rc = buf_put_varint(out, e->next_file_id);
	}
	if (!rc && e->has_last_seqno) {
		rc = buf_put_varint(out, VE_TAG_LAST_SEQNO);
		if (!rc)
			rc = buf_put_varint(out, e->last_seqno);
	}
	return rc;
}

/* The decoder's cursor: where it is, where the record started and where to blame errors. */
struct ve_dec {
	const uint8_t *p;
	const uint8_t *start;
	const uint8_t *end;
	const char *path;
	uint64_t off; /* file offset of start */
	fr_error *err;
};

static fr_status dec_bad(struct ve_dec *d, const uint8_t *at, const char *what)
{
	return FR_CORRUPT(d->err, d->path, d->off + (uint64_t)(at - d->start), what);
}

static fr_status dec_u(struct ve_dec *d, uint64_t *v, const char *what)
{
	const uint8_t *at = d->p;

	if (!dec_varint(&d->p, d->end, v))
		return dec_bad(d, at, what);
	return FR_OK;
}

static fr_status dec_u32v(struct ve_dec *d, uint32_t *v, const char *what)
{
	const uint8_t *at = d->p;
	uint64_t x;

	if (!dec_varint(&d->p, d->end, &x) || x > UINT32_MAX)
		return dec_bad(d, at, what);
	*v = (uint32_t)x;
	return FR_OK;
}

static fr_status dec_level(struct ve_dec *d, uint32_t *v)
{
	const uint8_t *at = d->p;
	uint64_t x;

	if (!dec_varint(&d->p, d->end, &x) || x >= LEVEL_CNT)
		return dec_bad(d, at, "version edit: bad level");
	*v = (uint32_t)x;
	return FR_OK;
}

/* The blob references of an ADD_TABLE_BLOBS: a count, then (file id, bytes) pairs, file ids
 * strictly ascending. */
static fr_status dec_refs(struct ve_dec *d, struct sst_meta *m)
{
	const uint8_t *at = d->p;
	uint64_t n;
	fr_status rc = dec_u(d, &n, "version edit: bad blob reference count");

	if (rc)
		return rc;
	/* each pair takes at least two bytes */
	if (n == 0 || n > (uint64_t)(d->end - d->p) / 2)
		return dec_bad(d, at, "version edit: bad blob reference count");
	m->blob_refs = fr_calloc((size_t)n, sizeof(*m->blob_refs));
	if (!m->blob_refs)
		return FR_ERR(d->err, FR_NOMEM, "decoding a version edit of %s", d->path);
	for (size_t i = 0; i < n && !rc; i++) {
		at = d->p;
		rc = dec_u(d, &m->blob_refs[i].file_id, "version edit: bad blob file id");
		if (!rc)
			rc = dec_u(d, &m->blob_refs[i].bytes, "version edit: bad blob bytes");
		if (!rc && i && m->blob_refs[i].file_id <= m->blob_refs[i - 1].file_id)
			rc = dec_bad(d, at, "version edit: blob references out of order");
	}
	m->blob_ref_cnt = (size_t)n;
	return rc;
}

static fr_status dec_blob(struct ve_dec *d, struct vedit *e)
{
	uint32_t tree_id = 0;
	struct blob_meta m;
	fr_status rc;

	memset(&m, 0, sizeof(m));
	rc = dec_u32v(d, &tree_id, "version edit: bad tree id");
	if (!rc)
		rc = dec_u(d, &m.id, "version edit: bad blob file id");
	if (!rc)
		rc = dec_u(d, &m.file_size, "version edit: bad blob file size");
	if (!rc)
		rc = dec_u(d, &m.value_cnt, "version edit: bad blob value count");
	if (!rc)
		rc = dec_u(d, &m.value_bytes, "version edit: bad blob value bytes");
	if (!rc && vedit_add_blob(e, tree_id, &m))
		rc = FR_ERR(d->err, FR_NOMEM, "decoding a version edit of %s", d->path);
	return rc;
}

static fr_status dec_add(struct ve_dec *d, struct vedit *e, bool with_time, bool with_refs,
			 bool with_gseq)
{
	struct sst_meta m;
	uint32_t tree_id = 0, level = 0;
	const uint8_t *at;
	fr_status rc;

	memset(&m, 0, sizeof(m));
	rc = dec_u32v(d, &tree_id, "version edit: bad tree id");
	if (!rc)
		rc = dec_level(d, &level);
	if (!rc)
		rc = dec_u(d, &m.id, "version edit: bad table id");
	if (!rc)
		rc = dec_u(d, &m.file_size, "version edit: bad file size");
	if (!rc)
		rc = dec_u(d, &m.entry_cnt, "version edit: bad entry count");
	if (!rc)
		rc = dec_u(d, &m.tombstone_cnt, "version edit: bad tombstone count");
	if (!rc)
		rc = dec_u(d, &m.range_del_cnt, "version edit: bad range tombstone count");
	if (!rc)
		rc = dec_u(d, &m.min_seqno, "version edit: bad min seqno");
	if (!rc)
		rc = dec_u(d, &m.max_seqno, "version edit: bad max seqno");
	if (rc)
		return rc;
	at = d->p;
	const uint8_t *k;
	if (!dec_lenbytes(&d->p, d->end, &k, &m.smallest_len))
		return dec_bad(d, at, "version edit: bad smallest key");
	m.smallest = (uint8_t *)(uintptr_t)k; /* borrowed: vedit_add_table copies it */
	at = d->p;
	if (!dec_lenbytes(&d->p, d->end, &k, &m.largest_len))
		return dec_bad(d, at, "version edit: bad largest key");
	m.largest = (uint8_t *)(uintptr_t)k;
	if (with_time) {
		rc = dec_u(d, &m.created_s, "version edit: bad creation time");
		if (rc)
			return rc;
	}
	if (with_gseq) {
		/* FORMAT.md §5.2: the table's entries all read as global_seqno */
		at = d->p;
		rc = dec_u(d, &m.global_seqno, "version edit: bad global seqno");
		if (rc)
			return rc;
		if (!m.global_seqno || m.global_seqno > SEQNO_MAX ||
		    m.min_seqno != m.global_seqno || m.max_seqno != m.global_seqno)
			return dec_bad(d, at, "version edit: global seqno out of range");
	}
	if (with_refs) {
		rc = dec_refs(d, &m);
		if (rc) {
			fr_free(m.blob_refs);
			return rc;
		}
	}
	rc = vedit_add_table(e, tree_id, level, &m);
	fr_free(m.blob_refs); /* vedit_add_table copied them */
	if (rc)
		return FR_ERR(d->err, FR_NOMEM, "decoding a version edit of %s", d->path);
	return FR_OK;
}

static fr_status dec_field(struct ve_dec *d, struct vedit *e)
{
	const uint8_t *at = d->p;
	uint64_t tag = 0, a = 0;
	uint32_t tree_id = 0, level = 0;
	fr_status rc;

	rc = dec_u(d, &tag, "version edit: bad field tag");
	if (rc)
		return rc;
	switch (tag) {
	case VE_TAG_ADD_TABLE:
	case VE_TAG_ADD_TABLE2:
	case VE_TAG_ADD_TABLE_BLOBS:
	case VE_TAG_ADD_TABLE_INGESTED:
		return dec_add(d, e, tag != VE_TAG_ADD_TABLE, tag == VE_TAG_ADD_TABLE_BLOBS,
			       tag == VE_TAG_ADD_TABLE_INGESTED);
	case VE_TAG_ADD_BLOB:
		return dec_blob(d, e);
	case VE_TAG_DEL_TABLE:
		rc = dec_u32v(d, &tree_id, "version edit: bad tree id");
		if (!rc)
			rc = dec_level(d, &level);
		if (!rc)
			rc = dec_u(d, &a, "version edit: bad table id");
		if (!rc && vedit_del_table(e, tree_id, level, a))
			rc = FR_ERR(d->err, FR_NOMEM, "decoding a version edit of %s", d->path);
		return rc;
	case VE_TAG_FLUSHED:
		rc = dec_u32v(d, &tree_id, "version edit: bad tree id");
		if (!rc)
			rc = dec_u(d, &a, "version edit: bad flushed seqno");
		if (rc)
			return rc;
		if (push_flushed(e, tree_id, a))
			rc = FR_ERR(d->err, FR_NOMEM, "decoding a version edit of %s", d->path);
		return rc;
	case VE_TAG_DROP_TREE:
		rc = dec_u32v(d, &tree_id, "version edit: bad tree id");
		if (!rc && vedit_drop_tree(e, tree_id))
			rc = FR_ERR(d->err, FR_NOMEM, "decoding a version edit of %s", d->path);
		return rc;
	case VE_TAG_NEXT_FILE_ID:
		if (e->has_next_file_id)
			return dec_bad(d, at, "version edit: next file id repeated");
		rc = dec_u(d, &e->next_file_id, "version edit: bad next file id");
		e->has_next_file_id = !rc;
		return rc;
	case VE_TAG_LAST_SEQNO:
		if (e->has_last_seqno)
			return dec_bad(d, at, "version edit: last seqno repeated");
		rc = dec_u(d, &e->last_seqno, "version edit: bad last seqno");
		e->has_last_seqno = !rc;
		return rc;
	default:
		return dec_bad(d, at, "version edit: unknown field tag");
	}
}

fr_status vedit_decode(const uint8_t *p, size_t len, struct vedit *e, const char *path,
		       uint64_t off, fr_error *err)
{
	struct ve_dec d = { p, p, p + len, path ? path : "version edit", off, err };
	fr_status rc = FR_OK;

	vedit_init(e);
	while (d.p < d.end && !rc)
		rc = dec_field(&d, e);
	if (rc)
		vedit_fini(e);
	return rc;
}
