/* SPDX-License-Identifier: MIT */
/*
 * ikey.h - internal keys (FORMAT.md §1.3): the user key followed by an 8-byte little-endian
 * trailer (seqno << 8 | type). Internal keys order by user key ascending (bytewise), then by
 * trailer descending, so the newest version of a key comes first. Seeking to
 * ikey(k, s, VT_SEEK) finds the newest version of k with seqno <= s.
 *
 * Range tombstones are kept apart from point entries. A range tombstone at seqno t hides every
 * version with seqno < t of every user key k with start <= k < end.
 */
#ifndef FRACTIO_BASE_IKEY_H
#define FRACTIO_BASE_IKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/coding.h"

/* Value types: on-disk values, never renumber (FORMAT.md §1.3). */
enum {
	VT_DEL = 0,      /* tombstone */
	VT_PUT = 1,      /* value */
	VT_WEAK_DEL = 2, /* weak (single) tombstone: cancels exactly one older version */
	VT_BLOB = 3,     /* value in a blob file: the entry's value is its handle (FORMAT.md §8.3);
			  * only in tables */
	VT_SEEK = 0xff,  /* used only in seek targets, never stored */
};

#define IKEY_TRAILER_LEN 8
#define SEQNO_MAX ((UINT64_C(1) << 56) - 1)

static inline uint64_t ikey_pack(uint64_t seqno, uint8_t type)
{
	return (seqno << 8) | type;
}
static inline uint64_t ikey_trailer(const uint8_t *ikey, size_t len)
{
	return dec_u64(ikey + len - IKEY_TRAILER_LEN);
}
static inline uint64_t ikey_seqno(const uint8_t *ikey, size_t len)
{
	return ikey_trailer(ikey, len) >> 8;
}
static inline uint8_t ikey_type(const uint8_t *ikey, size_t len)
{
	return (uint8_t)ikey_trailer(ikey, len);
}
static inline size_t ikey_user_len(size_t len)
{
	return len - IKEY_TRAILER_LEN;
}
/* Writes user_key||trailer into out (user_len + 8 bytes). */
static inline void ikey_encode(uint8_t *out, const void *ukey, size_t ulen, uint64_t seqno,
			       uint8_t type)
{
	if (ulen)
		memcpy(out, ukey, ulen);
	enc_u64(out + ulen, ikey_pack(seqno, type));
}
/* Compares two internal keys. Both must be at least 8 bytes long. */
static inline int ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = bytes_cmp(a, alen - IKEY_TRAILER_LEN, b, blen - IKEY_TRAILER_LEN);
	if (c)
		return c;
	uint64_t ta = ikey_trailer(a, alen), tb = ikey_trailer(b, blen);
	return ta > tb ? -1 : ta < tb;
}

/* A range tombstone; the byte views are owned by whoever hands it out. */
struct range_del {
	const uint8_t *start;
	size_t start_len;
	const uint8_t *end;
	size_t end_len;
	uint64_t seqno;
};

/* True when rd hides version `seqno` of user key k (for a reader at snapshot `snap`). */
static inline bool range_del_covers(const struct range_del *rd, const uint8_t *k, size_t klen,
				    uint64_t seqno, uint64_t snap)
{
	return rd->seqno <= snap && seqno < rd->seqno &&
	       bytes_cmp(rd->start, rd->start_len, k, klen) <= 0 &&
	       bytes_cmp(k, klen, rd->end, rd->end_len) < 0;
}

#endif
