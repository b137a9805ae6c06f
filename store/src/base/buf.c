/* SPDX-License-Identifier: MIT */
/* buf.c - growable byte buffer. */
#include "buf.h"

#include <string.h>

#include "alloc.h"
#include "coding.h"

void buf_fini(struct fr_buf *b)
{
	fr_free(b->data);
	buf_init(b);
}

fr_status buf_grow_inl(struct fr_buf *b, const uint8_t *inl, size_t need, size_t keep)
{
	if (need <= b->cap)
		return FR_OK;
	size_t cap = b->cap * 2;
	if (cap < need)
		cap = need;
	uint8_t *p = fr_malloc(cap);
	if (!p)
		return FR_NOMEM;
	memcpy(p, b->data, keep);
	if (b->data != inl)
		fr_free(b->data);
	b->data = p;
	b->cap = cap;
	return FR_OK;
}

void buf_fini_inl(struct fr_buf *b, uint8_t *inl, size_t inl_cap)
{
	if (b->data != inl)
		fr_free(b->data);
	buf_init_inl(b, inl, inl_cap);
}

fr_status buf_reserve(struct fr_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return FR_NOMEM;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return FR_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *p = fr_realloc(b->data, cap);
	if (!p)
		return FR_NOMEM;
	b->data = p;
	b->cap = cap;
	return FR_OK;
}

fr_status buf_append(struct fr_buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n))
		return FR_NOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return FR_OK;
}

fr_status buf_put_u8(struct fr_buf *b, uint8_t v)
{
	return buf_append(b, &v, 1);
}

fr_status buf_put_u32(struct fr_buf *b, uint32_t v)
{
	uint8_t t[4];
	enc_u32(t, v);
	return buf_append(b, t, 4);
}

fr_status buf_put_u64(struct fr_buf *b, uint64_t v)
{
	uint8_t t[8];
	enc_u64(t, v);
	return buf_append(b, t, 8);
}

fr_status buf_put_varint(struct fr_buf *b, uint64_t v)
{
	uint8_t t[VARINT_MAX];
	return buf_append(b, t, enc_varint(t, v));
}

fr_status buf_put_lenbytes(struct fr_buf *b, const void *p, size_t n)
{
	if (buf_put_varint(b, n))
		return FR_NOMEM;
	return buf_append(b, p, n);
}
