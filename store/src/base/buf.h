/* SPDX-License-Identifier: MIT */
/*
 * buf.h - a growable byte buffer. One thread at a time. The functions that grow it return
 * FR_NOMEM and leave the contents intact on failure.
 */
#ifndef FRACTIO_BASE_BUF_H
#define FRACTIO_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct fr_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

static inline void buf_init(struct fr_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
void buf_fini(struct fr_buf *b);
fr_status buf_reserve(struct fr_buf *b, size_t extra);
fr_status buf_append(struct fr_buf *b, const void *p, size_t n);
fr_status buf_put_u8(struct fr_buf *b, uint8_t v);
fr_status buf_put_u32(struct fr_buf *b, uint32_t v);
fr_status buf_put_u64(struct fr_buf *b, uint64_t v);
fr_status buf_put_varint(struct fr_buf *b, uint64_t v);
/* varint length, then the bytes */
fr_status buf_put_lenbytes(struct fr_buf *b, const void *p, size_t n);
static inline void buf_clear(struct fr_buf *b)
{
	b->len = 0;
}

/*
 * A buffer whose storage starts as its owner's array inl[inl_cap], so that short contents cost
 * no allocation: it moves to the heap once contents outgrow inl, doubling, and stays there
 * until buf_fini_inl, which leaves it empty on inl again. inl is never freed, so the owner is
 * never copied or moved while b points into it. Not for buf_reserve and buf_append.
 */
static inline void buf_init_inl(struct fr_buf *b, uint8_t *inl, size_t inl_cap)
{
	b->data = inl;
	b->len = 0;
	b->cap = inl_cap;
}
/* Room for need bytes, keeping the first keep (<= len); FR_NOMEM leaves b as it was. */
fr_status buf_grow_inl(struct fr_buf *b, const uint8_t *inl, size_t need, size_t keep);
void buf_fini_inl(struct fr_buf *b, uint8_t *inl, size_t inl_cap);

#endif
