/* SPDX-License-Identifier: MIT */
/* testutil.c - helpers shared by the unit tests. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

char *tu_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	size_t n = strlen(base) + strlen(tag) + 32;
	char *p = malloc(n);
	if (!p)
		abort();
	snprintf(p, n, "%s/fr-%s-XXXXXX", base, tag);
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

void tu_rmtree(const char *path)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", path);
}

void tu_rmtree_free(char *path)
{
	tu_rmtree(path);
	free(path);
}

uint64_t tu_seed(void)
{
	static uint64_t seed;
	if (seed)
		return seed;
	const char *s = getenv("FR_SEED");
	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!seed)
		seed = 1;
	fprintf(stderr, "# seed %llu (set FR_SEED to repeat)\n", (unsigned long long)seed);
	return seed;
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

uint64_t tu_rand_below(uint64_t *state, uint64_t n)
{
	return n ? tu_rand(state) % n : 0;
}
