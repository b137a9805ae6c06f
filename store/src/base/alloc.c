/* SPDX-License-Identifier: MIT */
/* alloc.c - the allocator seam with an injectable failure. */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fractio.h"

/* atomic: counters shared by all threads; relaxed, they only pick which call fails. */
static unsigned long alloc_cnt;
static unsigned long alloc_fail_at;

void fr_alloc_fail_at(unsigned long n)
{
	__atomic_store_n(&alloc_cnt, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&alloc_fail_at, n, __ATOMIC_RELAXED);
}

unsigned long fr_alloc_count(void)
{
	return __atomic_load_n(&alloc_cnt, __ATOMIC_RELAXED);
}

static int alloc_should_fail(void)
{
	unsigned long at = __atomic_load_n(&alloc_fail_at, __ATOMIC_RELAXED);
	unsigned long c = __atomic_add_fetch(&alloc_cnt, 1, __ATOMIC_RELAXED);
	return at != 0 && c == at;
}

void *fr_malloc(size_t n)
{
	if (alloc_should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *fr_calloc(size_t cnt, size_t size)
{
	if (size && cnt > SIZE_MAX / size)
		return NULL;
	if (alloc_should_fail())
		return NULL;
	return calloc(cnt ? cnt : 1, size ? size : 1);
}

void *fr_realloc(void *p, size_t n)
{
	if (alloc_should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void fr_free(void *p)
{
	free(p);
}

void *fr_memdup(const void *p, size_t n)
{
	void *q = fr_malloc(n);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

char *fr_strdup(const char *s)
{
	return fr_memdup(s, strlen(s) + 1);
}
