/* SPDX-License-Identifier: MIT */
/* filter.c - the bloom filter of a table (FORMAT.md §4.5): build, check, probe. */
#include "sst/filter.h"

#include <string.h>

#include "base/buf.h"
#include "base/checksum.h"

uint64_t bloom_hash(const void *key, size_t len)
{
	return fr_xxh3(key, len);
}

uint32_t bloom_k(uint32_t bits_per_key)
{
	/* round(bits * ln 2) in integers: ln 2 ~= 0.693147 */
	uint64_t k = ((uint64_t)bits_per_key * 693147 + 500000) / 1000000;
	if (k < 1)
		k = 1;
	if (k > BLOOM_K_MAX)
		k = BLOOM_K_MAX;
	return (uint32_t)k;
}

static void bloom_set(uint8_t *bits, uint64_t nbits, uint32_t k, uint64_t hash)
{
	uint64_t h1 = (uint32_t)hash, h2 = hash >> 32;
	for (uint32_t i = 0; i < k; i++) {
		uint64_t pos = (h1 + i * h2) % nbits;
		bits[pos / 8] |= (uint8_t)(1u << (pos % 8));
	}
}

fr_status bloom_build(const uint64_t *hashes, size_t n, uint32_t bits_per_key, struct fr_buf *out)
{
	if (bits_per_key < 1 || bits_per_key > BLOOM_BITS_PER_KEY_MAX)
		return FR_INVALID;
	if (n > (SIZE_MAX - 16) / bits_per_key / 8)
		return FR_NOMEM;
	/* at least 64 bits so tiny tables do not saturate; whole bytes */
	uint64_t nbits = (uint64_t)n * bits_per_key;
	if (nbits < 64)
		nbits = 64;
	size_t nbytes = (size_t)((nbits + 7) / 8);
	nbits = (uint64_t)nbytes * 8;
	uint32_t k = bloom_k(bits_per_key);

	fr_status rc = buf_reserve(out, nbytes + 1);
	if (rc)
		return rc;
	uint8_t *bits = out->data + out->len;
	memset(bits, 0, nbytes);
	for (size_t i = 0; i < n; i++)
		bloom_set(bits, nbits, k, hashes[i]);
	bits[nbytes] = (uint8_t)k;
	out->len += nbytes + 1;
	return FR_OK;
}

bool bloom_is_valid(const uint8_t *f, size_t len)
{
	return len >= 2 && f[len - 1] >= 1 && f[len - 1] <= BLOOM_K_MAX;
}

bool bloom_may_contain(const uint8_t *f, size_t len, uint64_t hash)
{
	uint64_t nbits = (uint64_t)(len - 1) * 8;
	uint32_t k = f[len - 1];
	uint64_t h1 = (uint32_t)hash, h2 = hash >> 32;

	for (uint32_t i = 0; i < k; i++) {
		uint64_t pos = (h1 + i * h2) % nbits;
		if (!(f[pos / 8] & (1u << (pos % 8))))
			return false;
	}
	return true;
}
