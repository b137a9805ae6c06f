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

#endif
