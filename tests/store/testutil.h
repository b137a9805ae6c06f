/* SPDX-License-Identifier: MIT */
/*
 * testutil.h - helpers shared by the unit tests: temporary directories, a seeded PRNG whose seed
 * is printed (and can be set with FR_SEED), and hex keys.
 */
#ifndef FRACTIO_TESTS_TESTUTIL_H
#define FRACTIO_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its path (static storage per
 * call slot is not used: the caller frees with free()). */
char *tu_tmpdir(const char *tag);
/* Removes a directory tree (rm -rf). */
void tu_rmtree(const char *path);
/* tu_rmtree, then frees path (a tu_tmpdir result). */
void tu_rmtree_free(char *path);
/* Seed from $FR_SEED or the clock; printed once to stderr. */
uint64_t tu_seed(void);
/* xorshift64* PRNG */
uint64_t tu_rand(uint64_t *state);
/* uniform in [0, n) */
uint64_t tu_rand_below(uint64_t *state, uint64_t n);

#endif
