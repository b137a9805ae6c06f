/* SPDX-License-Identifier: MIT */
/* checksum.h - the one checksum of every format: the low 64 bits of XXH3 (seed 0). */
#ifndef FRACTIO_BASE_CHECKSUM_H
#define FRACTIO_BASE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

static inline uint64_t fr_xxh3(const void *p, size_t n)
{
	return (uint64_t)XXH3_64bits(p, n);
}
static inline uint64_t fr_xxh3_seed(const void *p, size_t n, uint64_t seed)
{
	return (uint64_t)XXH3_64bits_withSeed(p, n, seed);
}

#endif
