/* SPDX-License-Identifier: MIT */
/*
 * block.c - reading sorted blocks (FORMAT.md §4.3) and unwrapping stored blocks (§4.2).
 *
 * Seeking binary-searches the restart array for the last restart key below the target, then
 * scans forward; stepping back re-scans from the restart point before the current entry, as in
 * LevelDB's Block::Iter. Every varint, length and offset is checked against the end of the
 * entry area before it is used.
 *
 * A point read in a block with a hash index (§4.3.1) looks up its user key's bucket instead of
 * binary-searching: the bucket names the restart run of the key's first entry, and the scan
 * from there is the one a seek would have made. blk_init checks every bucket, so a bucket is
 * always a valid restart index or a marker.
 */
#include "sst/block.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/ikey.h"
#include "io/compress.h"
#include "sst/format.h"

/* Per thread, so that counting costs no shared cache line. */
static _Thread_local struct blk_test_counts test_counts;

#ifdef FR_TESTING
static inline void count(uint64_t *c)
{
	(*c)++;
}
#else
static inline void count(uint64_t *c)
{
	(void)c;
}
#endif

void blk_test_counts(struct blk_test_counts *out)
{
	*out = test_counts;
}

fr_status blk_stored_check(const uint8_t *stored, size_t len, const char *path, uint64_t off,
			   struct blk_stored *out, fr_error *err)
{
	if (len < SST_BLOCK_TRAILER_LEN)
		return FR_CORRUPT(err, path, off, "block shorter than its trailer");
	size_t n = len - SST_BLOCK_TRAILER_LEN;
	uint8_t type = stored[n];
	/* FORMAT.md §4.2: xxh3 over the payload and the type byte */
	if (fr_xxh3(stored, n + 1) != dec_u64(stored + n + 1))
		return FR_CORRUPT(err, path, off, "block checksum mismatch");
	if (type == SST_COMP_NONE) {
		*out = (struct blk_stored){stored, n, false, n};
		return FR_OK;
	}
	if (type != SST_COMP_LZ4)
		return fr_err_set(err, FR_CORRUPTION, 0, off, __FILE__, __LINE__,
				  "%s at offset %llu: unknown block compression type %u", path,
				  (unsigned long long)off, type);

	const uint8_t *p = stored, *end = stored + n;
	uint64_t raw_len;
	if (!dec_varint(&p, end, &raw_len))
		return FR_CORRUPT(err, path, off, "bad uncompressed length of an LZ4 block");
	size_t clen = (size_t)(end - p);
	/* LZ4 cannot expand more than 255 times: anything larger is a lie, not a big block */
	if (clen > INT_MAX || raw_len > INT_MAX || raw_len > (uint64_t)clen * 255 + 64)
		return FR_CORRUPT(err, path, off,
				  "implausible uncompressed length of an LZ4 block");
	*out = (struct blk_stored){p, clen, true, (size_t)raw_len};
	return FR_OK;
}

fr_status blk_stored_unpack(const struct blk_stored *s, uint8_t *dst, const char *path,
			    uint64_t off, fr_error *err)
{
	if (!s->lz4) {
		memcpy(dst, s->payload, s->raw_len);
		return FR_OK;
	}
	if (!fr_lz4_decompress(s->payload, s->payload_len, dst, s->raw_len))
		return FR_CORRUPT(err, path, off, "LZ4 block does not decompress");
	return FR_OK;
}

fr_status blk_stored_decode(const uint8_t *stored, size_t len, const char *path, uint64_t off,
			    const uint8_t **data, size_t *data_len, uint8_t **owned, fr_error *err)
{
	struct blk_stored s = {0};
	fr_status rc = blk_stored_check(stored, len, path, off, &s, err);

	*owned = NULL;
	if (rc)
		return rc;
	if (!s.lz4) {
		*data = stored;
		*data_len = s.raw_len;
		return FR_OK;
	}
	uint8_t *out = fr_malloc(s.raw_len);
	if (!out)
		return FR_ERR(err, FR_NOMEM, "decompress block of %s at offset %llu", path,
			      (unsigned long long)off);
	rc = blk_stored_unpack(&s, out, path, off, err);
	if (rc) {
		fr_free(out);
		return rc;
	}
	*owned = out;
	*data = out;
	*data_len = s.raw_len;
	return FR_OK;
}

int blk_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return ikey_cmp(a, alen, b, blen);
}

/* b's order; the internal-key order of every table block inline, without the indirect call. */
static inline int blk_cmp(const struct blk *b, const uint8_t *x, size_t xlen, const uint8_t *y,
			  size_t ylen)
{
	if (b->cmp == blk_ikey_cmp)
		return ikey_cmp(x, xlen, y, ylen);
	return b->cmp(x, xlen, y, ylen);
}

/* Bad bytes at byte `at` of block b: the message names the file and the block's offset. */
static fr_status blk_corrupt(const struct blk *b, size_t at, const char *what, fr_error *err)
{
	return fr_err_set(err, FR_CORRUPTION, 0, b->file_off, __FILE__, __LINE__,
			  "%s at offset %llu: %s (block byte %zu)", b->path,
			  (unsigned long long)b->file_off, what, at);
}

uint32_t blk_restart(const struct blk *b, uint32_t i)
{
	return dec_u32(b->data + b->restarts_off + 4 * (size_t)i);
}

/* The tail of a block (§4.3, §4.3.1): restart count, hash index, where the restarts start. */
static void parse_tail(struct blk *b)
{
	uint32_t cnt = dec_u32(b->data + b->len - 4);
	size_t tail = 4;

	b->buckets = NULL;
	b->bucket_cnt = 0;
	if (cnt & SST_BLOCK_HASH_FLAG) {
		cnt &= ~SST_BLOCK_HASH_FLAG;
		b->bucket_cnt = dec_u16(b->data + b->len - 6);
		b->buckets = b->data + b->len - 6 - b->bucket_cnt;
		tail = 6 + (size_t)b->bucket_cnt;
	}
	b->restart_cnt = cnt;
	b->restarts_off = b->len - tail - 4 * (size_t)cnt;
}

void blk_init_checked(struct blk *b, const uint8_t *data, size_t len, blk_cmp_fn cmp,
		      size_t min_key_len, const char *path, uint64_t file_off)
{
	b->data = data;
	b->len = len;
	b->cmp = cmp;
	b->min_key_len = min_key_len;
	b->path = path;
	b->file_off = file_off;
	parse_tail(b);
}

fr_status blk_init(struct blk *b, const uint8_t *data, size_t len, blk_cmp_fn cmp,
		   size_t min_key_len, const char *path, uint64_t file_off, fr_error *err)
{
	b->data = data;
	b->len = len;
	b->cmp = cmp;
	b->min_key_len = min_key_len;
	b->path = path;
	b->file_off = file_off;
	b->restarts_off = 0;
	b->restart_cnt = 0;
	b->buckets = NULL;
	b->bucket_cnt = 0;
	if (len < 4)
		return blk_corrupt(b, 0, "block too short for its restart count", err);
	uint32_t cnt = dec_u32(data + len - 4);
	size_t tail = 4;
	if (cnt & SST_BLOCK_HASH_FLAG) {
		cnt &= ~SST_BLOCK_HASH_FLAG;
		if (len < 6)
			return blk_corrupt(b, 0, "block too short for its hash index", err);
		size_t nb = dec_u16(data + len - 6);
		if (nb == 0 || nb > len - 6)
			return blk_corrupt(b, len - 6, "bad hash index bucket count", err);
		if (cnt == 0 || cnt > SST_HASH_RESTART_MAX + 1)
			return blk_corrupt(b, len - 4,
					   "hash index in a block of too few or too many restarts",
					   err);
		tail = 6 + nb;
	}
	if ((uint64_t)cnt * 4 > len - tail)
		return blk_corrupt(b, len - 4, "restart count larger than the block", err);
	parse_tail(b);
	for (uint32_t i = 0; i < b->bucket_cnt; i++) {
		uint8_t v = b->buckets[i];
		if (v >= cnt && v != SST_HASH_COLLISION && v != SST_HASH_NONE)
			return blk_corrupt(b, (size_t)(b->buckets + i - data),
					   "hash bucket names no restart point", err);
	}
	if (cnt == 0 && b->restarts_off != 0)
		return blk_corrupt(b, len - 4, "entries without restart points", err);
	uint32_t prev = 0;
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t r = blk_restart(b, i);
		if ((i == 0 && r != 0) || (i > 0 && r <= prev) || r >= b->restarts_off)
			return blk_corrupt(b, b->restarts_off + 4 * (size_t)i,
					   "restart offset out of order or out of range", err);
		prev = r;
	}
	return FR_OK;
}

void blk_iter_init(struct blk_iter *it, const struct blk *b)
{
	buf_init_inl(&it->key, it->inl, sizeof(it->inl));
	blk_iter_set_block(it, b);
}

void blk_iter_set_block(struct blk_iter *it, const struct blk *b)
{
	it->b = b;
	it->valid = false;
	it->cur_off = 0;
	it->next_off = 0;
	it->restart_idx = 0;
	it->val = NULL;
	it->val_len = 0;
	buf_clear(&it->key);
}

void blk_iter_fini(struct blk_iter *it)
{
	buf_fini_inl(&it->key, it->inl, sizeof(it->inl));
	it->valid = false;
}

static fr_status iter_fail(struct blk_iter *it, fr_status rc)
{
	it->valid = false;
	buf_clear(&it->key);
	return rc;
}

/* An entry's header (FORMAT.md §4.3): three varints, most often one byte each. */
static inline bool dec_header(const uint8_t **pp, const uint8_t *end, uint64_t *shared,
			      uint64_t *unshared, uint64_t *vlen)
{
	const uint8_t *p = *pp;
	if (end - p >= 3 && (p[0] | p[1] | p[2]) < 0x80) {
		*shared = p[0];
		*unshared = p[1];
		*vlen = p[2];
		*pp = p + 3;
		return true;
	}
	return dec_varint(pp, end, shared) && dec_varint(pp, end, unshared) &&
	       dec_varint(pp, end, vlen);
}

/*
 * Decodes the entry at `off` (< restarts_off) on top of the previous key in it->key and makes it
 * current. FORMAT.md §4.3: varint shared, varint unshared, varint value_len, delta, value.
 */
static fr_status decode_at(struct blk_iter *it, size_t off, fr_error *err)
{
	const struct blk *b = it->b;
	const uint8_t *p = b->data + off, *end = b->data + b->restarts_off;
	uint64_t shared, unshared, vlen;

	/* follow the restart runs: the current entry belongs to the last restart <= off */
	while (it->restart_idx + 1 < b->restart_cnt && blk_restart(b, it->restart_idx + 1) <= off)
		it->restart_idx++;
	if (off >= b->restarts_off)
		return iter_fail(it, blk_corrupt(b, off, "entry offset out of range", err));
	if (!dec_header(&p, end, &shared, &unshared, &vlen))
		return iter_fail(it, blk_corrupt(b, off, "truncated entry header", err));
	if (shared > it->key.len)
		return iter_fail(
			it, blk_corrupt(b, off, "shared prefix longer than the previous key", err));
	if (shared && blk_restart(b, it->restart_idx) == off)
		return iter_fail(it, blk_corrupt(b, off, "restart entry shares a prefix", err));
	if (unshared > (uint64_t)(end - p))
		return iter_fail(it, blk_corrupt(b, off, "key runs past the entries", err));
	if (vlen > (uint64_t)(end - p) - unshared)
		return iter_fail(it, blk_corrupt(b, off, "value runs past the entries", err));
	if (shared + unshared < b->min_key_len)
		return iter_fail(it, blk_corrupt(b, off, "key too short", err));
	/* shared + unshared fit: both are bounded by block bytes */
	size_t klen = (size_t)(shared + unshared);
	if (klen > it->key.cap && buf_grow_inl(&it->key, it->inl, klen, (size_t)shared))
		return iter_fail(it, FR_ERR(err, FR_NOMEM, "block of %s at offset %llu", b->path,
					    (unsigned long long)b->file_off));
	memcpy(it->key.data + shared, p, (size_t)unshared);
	it->key.len = klen;
	p += unshared;
	it->val = p;
	it->val_len = (size_t)vlen;
	it->cur_off = off;
	it->next_off = (size_t)(p + vlen - b->data);
	it->valid = true;
	return FR_OK;
}

static fr_status seek_restart(struct blk_iter *it, uint32_t i, fr_error *err)
{
	buf_clear(&it->key);
	it->restart_idx = i;
	return decode_at(it, blk_restart(it->b, i), err);
}

fr_status blk_iter_seek_first(struct blk_iter *it, fr_error *err)
{
	it->valid = false;
	if (it->b->restart_cnt == 0)
		return FR_OK;
	return seek_restart(it, 0, err);
}

fr_status blk_iter_seek_last(struct blk_iter *it, fr_error *err)
{
	it->valid = false;
	if (it->b->restart_cnt == 0)
		return FR_OK;
	fr_status rc = seek_restart(it, it->b->restart_cnt - 1, err);
	while (!rc && it->next_off < it->b->restarts_off)
		rc = decode_at(it, it->next_off, err);
	return rc;
}

fr_status blk_iter_next(struct blk_iter *it, fr_error *err)
{
	if (!it->valid)
		return FR_OK;
	if (it->next_off >= it->b->restarts_off) {
		it->valid = false;
		return FR_OK;
	}
	return decode_at(it, it->next_off, err);
}

fr_status blk_iter_prev(struct blk_iter *it, fr_error *err)
{
	if (!it->valid)
		return FR_OK;
	size_t target = it->cur_off;
	if (target == 0) {
		it->valid = false;
		return FR_OK;
	}
	uint32_t r = it->restart_idx;
	if (blk_restart(it->b, r) >= target) {
		if (r == 0)
			return iter_fail(it, blk_corrupt(it->b, target,
							 "entry before the first "
							 "restart point",
							 err));
		r--;
	}
	fr_status rc = seek_restart(it, r, err);
	while (!rc && it->next_off < target)
		rc = decode_at(it, it->next_off, err);
	if (!rc && it->next_off != target)
		return iter_fail(it, blk_corrupt(it->b, target, "entries do not chain", err));
	return rc;
}

/* The key of restart entry i, in place (a restart entry shares nothing with the previous
 * one, so its key is whole in the block): the binary search compares without copying. The
 * checks are decode_at's; a bad entry is left for decode_at to report. */
static bool restart_key(const struct blk *b, uint32_t i, const uint8_t **k, size_t *klen)
{
	size_t off = blk_restart(b, i);
	if (off >= b->restarts_off)
		return false;
	const uint8_t *p = b->data + off, *end = b->data + b->restarts_off;
	uint64_t shared, unshared, vlen;
	if (!dec_header(&p, end, &shared, &unshared, &vlen))
		return false;
	if (shared || unshared > (uint64_t)(end - p) || vlen > (uint64_t)(end - p) - unshared ||
	    unshared < b->min_key_len)
		return false;
	*k = p;
	*klen = (size_t)unshared;
	return true;
}

fr_status blk_iter_seek(struct blk_iter *it, const uint8_t *target, size_t tlen, fr_error *err)
{
	const struct blk *b = it->b;
	fr_status rc;

	count(&test_counts.binary_search);
	it->valid = false;
	if (b->restart_cnt == 0)
		return FR_OK;
	/* the last restart whose key is < target (or restart 0) */
	uint32_t left = 0, right = b->restart_cnt - 1;
	while (left < right) {
		uint32_t mid = left + (right - left + 1) / 2;
		const uint8_t *k;
		size_t klen;
		if (!restart_key(b, mid, &k, &klen)) {
			rc = seek_restart(it, mid, err); /* reports what is wrong with it */
			return rc ? rc : iter_fail(it, blk_corrupt(b, blk_restart(b, mid),
								  "bad restart entry", err));
		}
		if (blk_cmp(b, k, klen, target, tlen) < 0)
			left = mid;
		else
			right = mid - 1;
	}
	rc = seek_restart(it, left, err);
	while (!rc && it->valid && blk_cmp(b, it->key.data, it->key.len, target, tlen) < 0)
		rc = blk_iter_next(it, err);
	return rc;
}

fr_status blk_iter_seek_hash(struct blk_iter *it, const uint8_t *target, size_t tlen,
			     uint64_t hash, bool *absent, fr_error *err)
{
	const struct blk *b = it->b;
	fr_status rc;

	*absent = false;
	if (!b->bucket_cnt)
		return blk_iter_seek(it, target, tlen, err);
	/* FORMAT.md §4.3.1: the bucket of XXH3-64(user key) mod bucket_cnt */
	uint8_t run = b->buckets[hash % b->bucket_cnt];
	if (run == SST_HASH_COLLISION) {
		count(&test_counts.hash_collision);
		return blk_iter_seek(it, target, tlen, err);
	}
	if (run == SST_HASH_NONE) {
		count(&test_counts.hash_absent);
		it->valid = false;
		buf_clear(&it->key);
		*absent = true;
		return FR_OK;
	}
	count(&test_counts.hash_jump);
	/* every entry of the run before the key's first one is of a smaller user key */
	rc = seek_restart(it, run, err);
	while (!rc && it->valid && blk_cmp(b, it->key.data, it->key.len, target, tlen) < 0)
		rc = blk_iter_next(it, err);
	return rc;
}
