/* SPDX-License-Identifier: MIT */
/*
 * block_build.c - building sorted blocks (FORMAT.md §4.3), with an optional hash index (§4.3.1),
 * and wrapping block contents into their stored form (§4.2): LZ4 when it pays, then the
 * compression byte and the xxh3 checksum.
 *
 * With a hash index the builder remembers, for each distinct user key, its hash and the restart
 * run of its first entry; the bucket count depends on how many there are, so the buckets are
 * laid out only when the block is finished.
 */
#include "sst/block.h"

#include <limits.h>
#include <lz4.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/ikey.h"
#include "io/compress.h"
#include "sst/format.h"

/* One record of b->ukeys: u64 hash, u32 restart run. */
#define UKEY_REC_LEN 12

void blk_builder_init(struct blk_builder *b, uint32_t restart_interval)
{
	buf_init(&b->buf);
	buf_init(&b->restarts);
	buf_init(&b->last_key);
	buf_init(&b->ukeys);
	b->interval = restart_interval ? restart_interval : 1;
	b->run = 0;
	b->entry_cnt = 0;
	b->hash = false;
}

void blk_builder_set_hash(struct blk_builder *b, bool on)
{
	b->hash = on;
}

void blk_builder_fini(struct blk_builder *b)
{
	buf_fini(&b->buf);
	buf_fini(&b->restarts);
	buf_fini(&b->last_key);
	buf_fini(&b->ukeys);
}

void blk_builder_reset(struct blk_builder *b)
{
	buf_clear(&b->buf);
	buf_clear(&b->restarts);
	buf_clear(&b->last_key);
	buf_clear(&b->ukeys);
	b->run = 0;
	b->entry_cnt = 0;
}

/* FORMAT.md §4.3.1: two slots per distinct user key, odd so that hashes with a common factor
 * still spread, at most what the u16 count holds. A key falls back to the binary search when a
 * key of another restart run shares its slot: at this load at most 1 - e^(-1/2) = 39% of keys,
 * fewer as keys share runs (about 20% of lookups in the tests); RocksDB's default of 4/3 slots
 * per key would give up to 53%, for 2/3 of a byte less per key. */
static uint32_t bucket_cnt(size_t ukey_cnt)
{
	uint64_t n = 2 * (uint64_t)ukey_cnt;
	return n >= UINT16_MAX ? UINT16_MAX : (uint32_t)(n | 1);
}

/* Bytes the hash index adds to the finished block: 0 when it has none. */
static size_t hash_len(const struct blk_builder *b)
{
	size_t restarts = b->restarts.len / 4;
	if (!b->hash || restarts == 0 || restarts > SST_HASH_RESTART_MAX + 1)
		return 0;
	return bucket_cnt(b->ukeys.len / UKEY_REC_LEN) + 2;
}

size_t blk_builder_size(const struct blk_builder *b)
{
	return b->buf.len + b->restarts.len + 4 + hash_len(b);
}

fr_status blk_builder_add(struct blk_builder *b, const uint8_t *key, size_t klen, const void *val,
			  size_t vlen)
{
	size_t shared = 0;
	bool restart = b->entry_cnt == 0 || b->run >= b->interval;
	bool new_ukey = false;
	fr_status rc;

	if (b->hash) {
		if (klen < IKEY_TRAILER_LEN)
			return FR_INVALID;
		size_t ulen = ikey_user_len(klen);
		new_ukey = b->entry_cnt == 0 || ikey_user_len(b->last_key.len) != ulen ||
			   memcmp(b->last_key.data, key, ulen) != 0;
		/* reserved now, written last: nothing can fail after the entry is in */
		if (new_ukey && (rc = buf_reserve(&b->ukeys, UKEY_REC_LEN)))
			return rc;
	}
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
	if (new_ukey) {
		/* the run holding this entry, the user key's first in the block */
		buf_put_u64(&b->ukeys, fr_xxh3(key, ikey_user_len(klen)));
		buf_put_u32(&b->ukeys, (uint32_t)(b->restarts.len / 4 - 1));
	}
	return FR_OK;

out_undo:
	if (restart)
		b->restarts.len -= 4;
	return rc;
}

/* Lays out the hash index (§4.3.1) at p: buckets, then their u16 count. */
static void put_hash_index(const struct blk_builder *b, uint8_t *p)
{
	size_t n = b->ukeys.len / UKEY_REC_LEN;
	uint32_t cnt = bucket_cnt(n);

	memset(p, SST_HASH_NONE, cnt);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *rec = b->ukeys.data + i * UKEY_REC_LEN;
		uint8_t run = (uint8_t)dec_u32(rec + 8);
		uint8_t *slot = &p[dec_u64(rec) % cnt];
		/* keys sharing a bucket and a run still have one answer */
		if (*slot == SST_HASH_NONE)
			*slot = run;
		else if (*slot != run)
			*slot = SST_HASH_COLLISION;
	}
	enc_u16(p + cnt, (uint16_t)cnt);
}

fr_status blk_builder_finish(struct blk_builder *b, const uint8_t **data, size_t *len)
{
	size_t hlen = hash_len(b);
	uint32_t cnt = (uint32_t)(b->restarts.len / 4);
	fr_status rc = buf_reserve(&b->buf, b->restarts.len + hlen + 4);
	if (rc)
		return rc;
	uint8_t *p = b->buf.data + b->buf.len;
	if (b->restarts.len)
		memcpy(p, b->restarts.data, b->restarts.len);
	p += b->restarts.len;
	if (hlen) {
		put_hash_index(b, p);
		p += hlen;
		cnt |= SST_BLOCK_HASH_FLAG;
	}
	enc_u32(p, cnt);
	*data = b->buf.data;
	*len = b->buf.len + b->restarts.len + hlen + 4;
	/* the entries stay in buf.len; the tail is only appended past it */
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
		int clen = fr_lz4_compress(raw, (int)len, p + hdr, bound);
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
