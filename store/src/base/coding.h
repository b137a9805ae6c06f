/* SPDX-License-Identifier: MIT */
/*
 * coding.h - byte encodings used by every file format (FORMAT.md §1): little-endian fixed-width
 * integers, LEB128 varints, and big-endian u32/u64 for keys that must sort numerically.
 * Decoders never read past `end` and report failure instead.
 */
#ifndef FRACTIO_BASE_CODING_H
#define FRACTIO_BASE_CODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void enc_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void enc_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void enc_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t dec_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t dec_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static inline uint64_t dec_u64(const uint8_t *p)
{
	return (uint64_t)dec_u32(p) | ((uint64_t)dec_u32(p + 4) << 32);
}
static inline void enc_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline void enc_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint32_t dec_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t dec_be64(const uint8_t *p)
{
	return ((uint64_t)dec_be32(p) << 32) | dec_be32(p + 4);
}

#define VARINT_MAX 10

/* Writes v as LEB128 at p; returns bytes written (1..10). */
static inline size_t enc_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}
static inline size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}
/* Reads a varint from [*pp, end); advances *pp. False on truncation or overlong input. */
static inline bool dec_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	for (int shift = 0; shift < 64 && p < end; shift += 7) {
		uint8_t b = *p++;
		if (shift == 63 && b > 1)
			return false;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*pp = p;
			*v = r;
			return true;
		}
	}
	return false;
}
/* Reads a varint length followed by that many bytes. */
static inline bool dec_lenbytes(const uint8_t **pp, const uint8_t *end, const uint8_t **data,
				size_t *len)
{
	uint64_t n;
	if (!dec_varint(pp, end, &n) || n > (uint64_t)(end - *pp))
		return false;
	*data = *pp;
	*len = (size_t)n;
	*pp += n;
	return true;
}

/* Bytewise comparison, shorter first on a common prefix (memcmp order). */
static inline int bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

#endif
