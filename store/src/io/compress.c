/* SPDX-License-Identifier: MIT */
#include "io/compress.h"

#include <limits.h>
#include <lz4.h>
#include <stdbool.h>

/* Static storage (no allocation to free at thread exit): about 16 KiB per thread that
 * compresses. */
static _Thread_local LZ4_stream_t tls_stream;
static _Thread_local bool tls_ready;

int fr_lz4_compress(const void *src, int len, void *dst, int cap)
{
	if (len < 0 || len > LZ4_MAX_INPUT_SIZE)
		return 0;
	if (!tls_ready) {
		LZ4_initStream(&tls_stream, sizeof(tls_stream));
		tls_ready = true;
	} else {
		LZ4_resetStream_fast(&tls_stream);
	}
	int n = LZ4_compress_fast_continue(&tls_stream, src, dst, len, cap, 1);
	return n > 0 ? n : 0;
}

bool fr_lz4_decompress(const void *src, size_t slen, void *dst, size_t dlen)
{
	if (slen > INT_MAX || dlen > INT_MAX)
		return false;
	int got = LZ4_decompress_safe(src, dst, (int)slen, (int)dlen);
	return got >= 0 && (size_t)got == dlen;
}
