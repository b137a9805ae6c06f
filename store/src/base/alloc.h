/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - every allocation of the engine goes through here, so tests can fail the Nth call
 * (FR_TESTING builds). Callers return FR_NOMEM on NULL; nothing aborts.
 */
#ifndef FRACTIO_BASE_ALLOC_H
#define FRACTIO_BASE_ALLOC_H

#include <stddef.h>

void *fr_malloc(size_t n);
void *fr_calloc(size_t cnt, size_t size); /* zeroed; NULL on overflow */
void *fr_realloc(void *p, size_t n);
/* fr_free(void *) is public (fractio.h). */
void *fr_memdup(const void *p, size_t n);
char *fr_strdup(const char *s);

/* Test hook: the n-th allocation from now fails (0 disables). Returns allocations counted. */
void fr_alloc_fail_at(unsigned long n);
unsigned long fr_alloc_count(void);

#endif
