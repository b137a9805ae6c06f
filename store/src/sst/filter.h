/* SPDX-License-Identifier: MIT */
/*
 * filter.h - the bloom filter of a table (FORMAT.md §4.5), over user keys. A key is reduced to
 * one 64-bit xxh3 hash; its k probes are bit (h1 + i * h2) mod nbits for i = 0..k-1, with
 * h1 = the low and h2 = the high 32 bits of the hash (double hashing, Kirsch-Mitzenmacher).
 * k = round(bits_per_key * ln 2), clamped to 1..30.
 *
 * Encoding: nbits / 8 bytes of bits (bit j is bit j % 8 of byte j / 8), then u8 k.
 *
 * A built filter is immutable: any number of threads may probe it.
 */
#ifndef FRACTIO_SST_FILTER_H
#define FRACTIO_SST_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct fr_buf;

#define BLOOM_K_MAX 30
#define BLOOM_BITS_PER_KEY_MAX 100

/* The hash a key is filtered by. */
uint64_t bloom_hash(const void *key, size_t len);
/* Probes per key for bits_per_key (>= 1). */
uint32_t bloom_k(uint32_t bits_per_key);
/* Appends the filter for hashes[0..n) at bits_per_key (1..BLOOM_BITS_PER_KEY_MAX, else
 * FR_INVALID) to out. Duplicate hashes are harmless. FR_NOMEM. */
fr_status bloom_build(const uint64_t *hashes, size_t n, uint32_t bits_per_key, struct fr_buf *out);
/* True when f[0..len) is a well-formed encoding (at least one byte of bits, 1 <= k <= 30). */
bool bloom_is_valid(const uint8_t *f, size_t len);
/* False only when the key with this hash was certainly not added. f must be valid. */
bool bloom_may_contain(const uint8_t *f, size_t len, uint64_t hash);

#endif
