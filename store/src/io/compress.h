/* SPDX-License-Identifier: MIT */
/*
 * compress.h - LZ4 block compression and decompression for the layers that store compressed
 * blocks (tables, journal records, blob values). Each call compresses one independent block, readable by LZ4_decompress_safe; a
 * per-thread LZ4 state, initialised once and reset cheaply before each call, spares every
 * block the 16 KiB state initialisation of LZ4_compress_default.
 */
#ifndef FRACTIO_IO_COMPRESS_H
#define FRACTIO_IO_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>

/* Compresses src[0..len) into dst (cap bytes); returns the compressed size, or 0 when it does
 * not fit (or len is out of LZ4's range). */
int fr_lz4_compress(const void *src, int len, void *dst, int cap);
/* Decompresses src[0..slen) into dst, which it must fill exactly (dlen bytes); false when the
 * input is not such a block (or a length is out of LZ4's range): the caller reports the damage. */
bool fr_lz4_decompress(const void *src, size_t slen, void *dst, size_t dlen);

#endif
