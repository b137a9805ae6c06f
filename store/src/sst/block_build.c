/* SPDX-License-Identifier: MIT */
/*
 * block_build.c - building sorted blocks (FORMAT.md §4.3) and wrapping block contents into their
 * stored form (§4.2): LZ4 when it pays, then the compression byte and the xxh3 checksum.
 */
#include "sst/block.h"

#include <limits.h>
#include <lz4.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "sst/format.h"

void blk_builder_init(struct blk_builder *b, uint32_t restart_interval)
{
	buf_init(&b->buf);
	buf_init(&b->restarts);
	buf_init(&b->last_key);
	b->interval = restart_interval ? restart_interval : 1;
	b->run = 0;
	b->entry_cnt = 0;
}

void blk_builder_fini(struct blk_builder *b)
{
	buf_fini(&b->buf);
	buf_fini(&b->restarts);
	buf_fini(&b->last_key);
}

void blk_builder_reset(struct blk_builder *b)
{
	buf_clear(&b->buf);
	buf_clear(&b->restarts);
	buf_clear(&b->last_key);
	b->run = 0;
	b->entry_cnt = 0;
}

size_t blk_builder_size(const struct blk_builder *b)
{
	return b->buf.len + b->restarts.len + 4;
}

fr_status blk_builder_add(struct blk_builder *b, const uint8_t *key, size_t klen, const void *val,
			  size_t vlen)
{
	size_t shared = 0;
	bool restart = b->entry_cnt == 0 || b->run >= b->interval;
	fr_status rc;

	if (!restart) {
		size_t n = klen < b->last_key.len ? klen : b->last_key.len;
		while (shared < n && key[shared] == b->last_key.data[shared])
			shared++;
	}
	/* Offsets in the restart array are u32: the whole block must stay below 4 GiB. */
	uint64_t grow = 3 * VARINT_MAX + (uint64_t)(klen - shared) + vlen + 4;
	if (grow > UINT32_MAX || blk_builder_size(b) + grow > UINT32_MAX)
		return FR_INVALID;
	if (restart) {
		rc = buf_put_u32(&b->restarts, (uint32_t)b->buf.len);
		if (rc)
			return rc;
		b->run = 0;
	}
	rc = buf_reserve(&b->buf, 3 * VARINT_MAX + (klen - shared) + vlen);
	if (rc)
		goto out_undo;
	uint8_t *p = b->buf.data + b->buf.len;
	p += enc_varint(p, shared);
	p += enc_varint(p, klen - shared);
	p += enc_varint(p, vlen);
	if (klen > shared)
		memcpy(p, key + shared, klen - shared);
	p += klen - shared;
	if (vlen)
		memcpy(p, val, vlen);
	p += vlen;
	size_t old_len = b->buf.len;
	b->buf.len = (size_t)(p - b->buf.data);
	buf_clear(&b->last_key);
	rc = buf_append(&b->last_key, key, klen);
	if (rc) {
		b->buf.len = old_len;
		goto out_undo;
	}
	b->run++;
	b->entry_cnt++;
	return FR_OK;

out_undo:
	if (restart)
		b->restarts.len -= 4;
	return rc;
}

fr_status blk_builder_finish(struct blk_builder *b, const uint8_t **data, size_t *len)
{
	fr_status rc = buf_reserve(&b->buf, b->restarts.len + 4);
	if (rc)
		return rc;
	if (b->restarts.len)
		memcpy(b->buf.data + b->buf.len, b->restarts.data, b->restarts.len);
	enc_u32(b->buf.data + b->buf.len + b->restarts.len, (uint32_t)(b->restarts.len / 4));
	*data = b->buf.data;
	*len = b->buf.len + b->restarts.len + 4;
	/* the entries stay in buf.len; the restart array is only appended past it */
	return FR_OK;
}

/* Appends the trailer for the payload out[payload_off..len) of compression `type`. */
static fr_status put_trailer(struct fr_buf *out, size_t payload_off, uint8_t type)
{
	fr_status rc = buf_put_u8(out, type);
	if (rc)
		return rc;
	/* FORMAT.md §4.2: the checksum covers the stored payload and the type byte */
	uint64_t sum = fr_xxh3(out->data + payload_off, out->len - payload_off);
	return buf_put_u64(out, sum);
}

fr_status blk_stored_encode(const uint8_t *raw, size_t len, bool compress, struct fr_buf *out)
{
	size_t start = out->len;
	fr_status rc;

	if (compress && len > 0 && len <= LZ4_MAX_INPUT_SIZE) {
		int bound = LZ4_compressBound((int)len);
		rc = buf_reserve(out, VARINT_MAX + (size_t)bound + SST_BLOCK_TRAILER_LEN);
		if (rc)
			return rc;
		uint8_t *p = out->data + start;
		size_t hdr = enc_varint(p, len);
		int clen =
			LZ4_compress_default((const char *)raw, (char *)p + hdr, (int)len, bound);
		uint64_t stored = hdr + (uint64_t)(clen > 0 ? clen : 0);
		/* keep LZ4 only when it saves at least 12.5% of the raw size */
		if (clen > 0 && stored < len && 8 * ((uint64_t)len - stored) >= len) {
			out->len = start + (size_t)stored;
			rc = put_trailer(out, start, SST_COMP_LZ4);
			if (rc)
				out->len = start;
			return rc;
		}
	}
	rc = buf_append(out, raw, len);
	if (rc)
		return rc;
	rc = put_trailer(out, start, SST_COMP_NONE);
	if (rc)
		out->len = start;
	return rc;
}
