/* SPDX-License-Identifier: MIT */
/*
 * test_cache.c - the block cache: CLOCK order and eviction in one shard (marked entries get a
 * second chance, a hot block outlives a cold stream, pins survive every sweep, every entry
 * stays reachable in a table churned by evictions), the one-allocation entry API, usage within the
 * capacity after thousands of inserts of varied sizes, pinned entries surviving eviction (and
 * the documented overshoot while everything is pinned), exact hit and miss counts for a
 * scripted sequence, duplicate inserts sharing one entry, capacity 0, allocation failure, and
 * four threads looking up and inserting at once with every byte they get back checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "sst/cache.h"
#include "testutil.h"

/* The bytes block (file, off) holds in these tests: a length and a pattern both drawn from the
 * key, so any mix-up between entries shows. */
static size_t pat_len(uint64_t file, uint64_t off, size_t max)
{
	return 1 + (size_t)((file * 7919 + off * 104729) % max);
}

static uint8_t pat_byte(uint64_t file, uint64_t off, size_t i)
{
	return (uint8_t)(file * 31 + off * 17 + i * 13 + (i >> 8));
}

static uint8_t *pat_new(uint64_t file, uint64_t off, size_t len)
{
	uint8_t *p = fr_malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = pat_byte(file, off, i);
	return p;
}

static bool pat_ok(const struct blk_cache_entry *e, uint64_t file, uint64_t off, size_t len)
{
	const uint8_t *d = blk_cache_data(e);

	if (blk_cache_len(e) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (d[i] != pat_byte(file, off, i))
			return false;
	return true;
}

/* Inserts block (file, off) of len bytes charged `charge` and returns its pinned handle. */
static struct blk_cache_entry *put(struct blk_cache *c, uint64_t file, uint64_t off, size_t len,
				   size_t charge)
{
	struct blk_cache_entry *e;

	assert_int_equal(blk_cache_insert(c, file, off, pat_new(file, off, len), len, charge, &e),
			 FR_OK);
	assert_non_null(e);
	assert_true(pat_ok(e, file, off, len));
	return e;
}

static void put_release(struct blk_cache *c, uint64_t file, uint64_t off, size_t len,
			size_t charge)
{
	blk_cache_release(c, put(c, file, off, len, charge));
}

/* Looks (file, off) up; true when present (its bytes checked), the pin dropped again. */
static bool present(struct blk_cache *c, uint64_t file, uint64_t off, size_t len)
{
	struct blk_cache_entry *e = blk_cache_lookup(c, file, off);

	if (!e)
		return false;
	assert_true(pat_ok(e, file, off, len));
	blk_cache_release(c, e);
	return true;
}

static struct blk_cache_stats stats(const struct blk_cache *c)
{
	struct blk_cache_stats s;

	blk_cache_stats(c, &s);
	return s;
}

static void test_cache_clock_order(void **state)
{
	struct blk_cache *c;

	(void)state;
	assert_int_equal(blk_cache_new(300, 0, &c), FR_OK); /* one shard: one clock */
	put_release(c, 1, 0, 50, 100);                      /* A */
	put_release(c, 1, 100, 50, 100);                     /* B */
	put_release(c, 1, 200, 50, 100);                     /* C */
	assert_int_equal(stats(c).usage, 300);
	/* A and B used again: C, used only when it came in, is the one to go */
	assert_true(present(c, 1, 0, 50));
	assert_true(present(c, 1, 100, 50));
	put_release(c, 1, 300, 50, 100); /* D evicts C */
	assert_int_equal(stats(c).usage, 300);
	assert_int_equal(stats(c).entry_cnt, 3);
	assert_false(present(c, 1, 200, 50));
	/* marks are a second chance, not a pass: with A, B and D all used again, the sweep
	 * clears every mark and then evicts exactly one of them */
	assert_true(present(c, 1, 0, 50));
	assert_true(present(c, 1, 100, 50));
	assert_true(present(c, 1, 300, 50));
	put_release(c, 2, 0, 10, 100); /* E */
	assert_int_equal(stats(c).entry_cnt, 3);
	int left = present(c, 1, 0, 50) + present(c, 1, 100, 50) + present(c, 1, 300, 50);
	assert_int_equal(left, 2);
	assert_true(present(c, 2, 0, 10));
	/* one big entry pushes out as many as it needs, and nothing more */
	put_release(c, 3, 0, 10, 200);
	assert_int_equal(stats(c).usage, 300);
	assert_int_equal(stats(c).entry_cnt, 2);
	assert_true(present(c, 3, 0, 10));
	/* the same offset in another file is another key */
	assert_false(present(c, 4, 0, 10));
	blk_cache_free(c);
}

/* The policy's point: a block used over and over outlives a stream of blocks used once, which
 * evicts everything else (a FIFO, or a clock that ignored its marks, would drop the hot one
 * once per turn of the stream). */
static void test_cache_hot_survives_cold_stream(void **state)
{
	struct blk_cache *c;

	(void)state;
	assert_int_equal(blk_cache_new(1000, 0, &c), FR_OK); /* ten entries of 100 */
	put_release(c, 9, 0, 30, 100);                       /* hot */
	put_release(c, 9, 100, 30, 100);                     /* used once, like the stream */
	for (uint64_t i = 0; i < 2000; i++) {
		put_release(c, 1, i * 4096, 20, 100);
		assert_true(present(c, 9, 0, 30));
		assert_true(stats(c).usage <= 1000);
	}
	assert_false(present(c, 9, 100, 30));
	/* what is left: the hot block and nine of the stream */
	assert_int_equal(stats(c).entry_cnt, 10);
	uint64_t cold = 0;
	for (uint64_t i = 0; i < 2000; i++)
		cold += present(c, 1, i * 4096, 20);
	assert_int_equal(cold, 9);
	blk_cache_free(c);
}

/* A pinned block that is never looked up again survives any number of sweeps; releasing it
 * makes it an ordinary unmarked entry, the next to go. */
static void test_cache_pinned_never_marked(void **state)
{
	struct blk_cache *c;
	struct blk_cache_entry *p;

	(void)state;
	assert_int_equal(blk_cache_new(500, 0, &c), FR_OK);
	p = put(c, 5, 0, 64, 100);
	for (uint64_t i = 0; i < 500; i++) {
		put_release(c, 6, i, 40, 100);
		assert_true(stats(c).usage <= 500);
		assert_true(pat_ok(p, 5, 0, 64));
	}
	blk_cache_release(c, p);
	assert_int_equal(stats(c).entry_cnt, 5);
	/* mark the other four: the released one, never looked up, is the only candidate left */
	uint64_t others = 0;
	for (uint64_t i = 0; i < 500; i++)
		others += present(c, 6, i, 40);
	assert_int_equal(others, 4);
	put_release(c, 7, 0, 40, 100);
	assert_false(present(c, 5, 0, 64));
	blk_cache_free(c);
}

/* Thousands of inserts and lookups in one shard with many entries, so that evictions shift
 * probe runs back all over the table: every kept entry stays reachable (the entries lookups
 * find are exactly as many as the cache counts), and with no pins left usage stays within
 * the capacity after every operation. */
static void test_cache_table_reachable(void **state)
{
	const size_t cap = 400 * 100, keys = 3000;
	uint64_t rs = tu_seed();
	struct blk_cache *c;

	(void)state;
	assert_int_equal(blk_cache_new(cap, 0, &c), FR_OK);
	for (int n = 0; n < 20000; n++) {
		uint64_t k = tu_rand_below(&rs, keys) * (tu_rand_below(&rs, 4) ? 1 : 7);
		uint64_t file = 1 + k % 3, off = k * 512;
		size_t len = pat_len(file, off, 60);
		size_t charge = 60 + (size_t)tu_rand_below(&rs, 80);

		if (!present(c, file, off, len))
			put_release(c, file, off, len, charge);
		if (stats(c).usage > cap)
			fail_msg("usage %llu above capacity %zu after op %d",
				 (unsigned long long)stats(c).usage, cap, n);
	}
	uint64_t found = 0, entries = stats(c).entry_cnt;
	for (uint64_t k = 0; k < keys * 7; k++) {
		uint64_t file = 1 + k % 3, off = k * 512;

		found += present(c, file, off, pat_len(file, off, 60));
	}
	assert_int_equal(found, entries);
	assert_true(entries > 300);
	blk_cache_free(c);
}

/* The one-allocation path: the caller fills the entry's own memory; a duplicate frees the
 * newcomer and shares the first; a charge above the share is handed back loose. */
static void test_cache_entry_put(void **state)
{
	struct blk_cache *c;
	struct blk_cache_entry *e, *a, *b, *loose;

	(void)state;
	assert_int_equal(blk_cache_new(1000, 1, &c), FR_OK); /* shares of 500 */
	e = blk_cache_entry_new(64);
	assert_non_null(e);
	for (size_t i = 0; i < 40; i++)
		blk_cache_entry_mem(e)[i] = pat_byte(2, 8, i);
	a = blk_cache_put(c, 2, 8, e, 40, 100);
	assert_ptr_equal(a, e);
	assert_true(pat_ok(a, 2, 8, 40));
	e = blk_cache_entry_new(40);
	assert_non_null(e);
	memset(blk_cache_entry_mem(e), 0xee, 40);
	b = blk_cache_put(c, 2, 8, e, 40, 100);
	assert_ptr_equal(b, a);
	assert_true(pat_ok(b, 2, 8, 40));
	assert_int_equal(stats(c).entry_cnt, 1);
	blk_cache_release(c, a);
	blk_cache_release(c, b);
	loose = blk_cache_entry_new(0); /* a zero-length block is a block too */
	assert_non_null(loose);
	assert_ptr_equal(blk_cache_put(c, 2, 16, loose, 0, 501), loose);
	assert_int_equal(blk_cache_len(loose), 0);
	assert_false(present(c, 2, 16, 1));
	assert_int_equal(stats(c).usage, 100);
	blk_cache_release(c, loose);
	blk_cache_entry_discard(blk_cache_entry_new(10)); /* never put */
	assert_true(present(c, 2, 8, 40));
	blk_cache_free(c);
}

static void test_cache_capacity_varied(void **state)
{
	const size_t cap = 64 << 10;
	uint64_t rs = tu_seed();
	struct blk_cache *c;
	size_t kept_max = 0, not_kept = 0;

	(void)state;
	assert_int_equal(blk_cache_new(cap, BLK_CACHE_SHARD_BITS, &c), FR_OK);
	assert_int_equal(stats(c).capacity, cap);
	for (uint64_t i = 0; i < 5000; i++) {
		uint64_t file = 1 + tu_rand_below(&rs, 5), off = i * 4096;
		size_t len = 1 + (size_t)tu_rand_below(&rs, i % 10 == 0 ? 6000 : 2000);
		size_t charge = len + BLK_CACHE_ENTRY_OVERHEAD;
		struct blk_cache_entry *e = put(c, file, off, len, charge);

		blk_cache_release(c, e);
		struct blk_cache_stats s = stats(c);
		if (s.usage > cap)
			fail_msg("usage %llu above capacity %zu after insert %llu",
				 (unsigned long long)s.usage, cap, (unsigned long long)i);
		/* a block above a shard's share (cap / 16) is handed back but not kept */
		if (charge > cap >> BLK_CACHE_SHARD_BITS) {
			assert_false(present(c, file, off, len));
			not_kept++;
		} else if (charge > kept_max) {
			kept_max = charge;
		}
	}
	assert_true(not_kept > 0);
	/* the cache is not trivially empty: a good part of it is in use */
	assert_true(stats(c).usage > cap / 4);
	assert_true(stats(c).entry_cnt > 10);
	blk_cache_free(c);
}

static void test_cache_pinned_survive(void **state)
{
	struct blk_cache *c;
	struct blk_cache_entry *a, *b, *c3, *again;

	(void)state;
	assert_int_equal(blk_cache_new(1000, 0, &c), FR_OK);
	a = put(c, 1, 0, 64, 400);
	/* many inserts that each need room: A is the coldest but pinned, so it stays */
	for (uint64_t i = 1; i <= 50; i++) {
		put_release(c, 1, i * 100, 64, 400);
		assert_true(stats(c).usage <= 1000);
	}
	again = blk_cache_lookup(c, 1, 0);
	assert_ptr_equal(again, a);
	blk_cache_release(c, again);
	assert_true(pat_ok(a, 1, 0, 64));

	/* everything pinned: usage passes the capacity for as long as the pins last */
	b = put(c, 2, 0, 64, 400);
	c3 = put(c, 2, 100, 64, 400);
	assert_int_equal(stats(c).usage, 1200);
	assert_int_equal(stats(c).entry_cnt, 3);
	assert_true(present(c, 1, 0, 64));
	assert_true(present(c, 2, 0, 64));
	assert_true(present(c, 2, 100, 64));
	/* the first release brings it back within the capacity */
	blk_cache_release(c, c3);
	assert_int_equal(stats(c).usage, 800);
	assert_false(present(c, 2, 100, 64));
	blk_cache_release(c, b);
	blk_cache_release(c, a);
	assert_int_equal(stats(c).usage, 800);
	assert_true(present(c, 1, 0, 64));
	assert_true(present(c, 2, 0, 64));
	blk_cache_free(c);
}

static void test_cache_counters(void **state)
{
	struct blk_cache *c;
	struct blk_cache_stats s;

	(void)state;
	assert_int_equal(blk_cache_new(250, 0, &c), FR_OK);
	assert_false(present(c, 7, 0, 10));  /* miss 1 */
	put_release(c, 7, 0, 10, 100);       /* inserts count neither */
	assert_true(present(c, 7, 0, 10));   /* hit 1 */
	assert_false(present(c, 7, 1, 10));  /* miss 2 */
	assert_true(present(c, 7, 0, 10));   /* hit 2 */
	put_release(c, 7, 1, 10, 100);
	put_release(c, 7, 2, 10, 100);       /* evicts (7, 1), the one not used since */
	assert_false(present(c, 7, 1, 10));  /* miss 3 */
	assert_true(present(c, 7, 0, 10));   /* hit 3 */
	assert_true(present(c, 7, 2, 10));   /* hit 4 */
	s = stats(c);
	assert_int_equal(s.hits, 4);
	assert_int_equal(s.misses, 3);
	assert_int_equal(s.usage, 200);
	assert_int_equal(s.entry_cnt, 2);
	assert_int_equal(s.capacity, 250);
	blk_cache_free(c);
}

static void test_cache_duplicate_insert(void **state)
{
	struct blk_cache *c;
	struct blk_cache_entry *a, *b;

	(void)state;
	assert_int_equal(blk_cache_new(1000, 0, &c), FR_OK);
	a = put(c, 3, 300, 40, 100);
	/* a second reader of the same block inserts its own copy: it gets the first one */
	assert_int_equal(blk_cache_insert(c, 3, 300, pat_new(3, 300, 40), 40, 100, &b), FR_OK);
	assert_ptr_equal(a, b);
	assert_int_equal(stats(c).usage, 100);
	assert_int_equal(stats(c).entry_cnt, 1);
	blk_cache_release(c, a);
	blk_cache_release(c, b);
	assert_true(present(c, 3, 300, 40));
	blk_cache_free(c);
}

static void test_cache_capacity_zero(void **state)
{
	struct blk_cache *c;
	struct blk_cache_entry *e;

	(void)state;
	assert_int_equal(blk_cache_new(0, BLK_CACHE_SHARD_BITS, &c), FR_OK);
	assert_false(present(c, 1, 0, 10));
	e = put(c, 1, 0, 10, 0); /* even a free entry is not kept */
	assert_true(pat_ok(e, 1, 0, 10));
	assert_false(present(c, 1, 0, 10));
	blk_cache_release(c, e);
	put_release(c, 1, 0, 10, 100);
	assert_false(present(c, 1, 0, 10));
	struct blk_cache_stats s = stats(c);
	assert_int_equal(s.hits, 0);
	assert_int_equal(s.misses, 3);
	assert_int_equal(s.usage, 0);
	assert_int_equal(s.entry_cnt, 0);
	blk_cache_release(c, NULL);
	blk_cache_free(c);
	blk_cache_free(NULL);
}

static void test_cache_new_and_nomem(void **state)
{
	struct blk_cache *c;
	struct blk_cache_entry *e;

	(void)state;
	assert_int_equal(blk_cache_new(100, BLK_CACHE_SHARD_BITS_MAX + 1, &c), FR_INVALID);
	assert_null(c);
	for (unsigned long n = 1;; n++) {
		fr_alloc_fail_at(n);
		fr_status rc = blk_cache_new(1000, 3, &c);
		fr_alloc_fail_at(0);
		if (rc == FR_OK)
			break;
		assert_int_equal(rc, FR_NOMEM);
		assert_null(c);
	}
	/* no room for the entry: the block stays the caller's and the cache unchanged */
	uint8_t *mem = pat_new(1, 0, 10);
	fr_alloc_fail_at(1);
	assert_int_equal(blk_cache_insert(c, 1, 0, mem, 10, 100, &e), FR_NOMEM);
	fr_alloc_fail_at(0);
	assert_null(e);
	assert_int_equal(stats(c).entry_cnt, 0);
	assert_int_equal(blk_cache_insert(c, 1, 0, mem, 10, 100, &e), FR_OK);
	assert_true(pat_ok(e, 1, 0, 10));
	blk_cache_release(c, e);
	assert_true(present(c, 1, 0, 10));
	blk_cache_free(c);
}

/* ---- concurrency ---- */

#define CONC_THREADS 4
#define CONC_OPS 20000
#define CONC_FILES 4
#define CONC_BLOCKS 600
#define CONC_MAX_LEN 900

struct conc_job {
	struct blk_cache *c;
	uint64_t seed;
	uint64_t lookups;
	uint64_t bad;
};

static void *conc_thread(void *arg)
{
	struct conc_job *j = arg;
	struct blk_cache_entry *held[3] = {0};
	uint64_t held_file[3] = {0}, held_off[3] = {0};

	for (int n = 0; n < CONC_OPS; n++) {
		uint64_t file = 1 + tu_rand_below(&j->seed, CONC_FILES);
		uint64_t off = tu_rand_below(&j->seed, CONC_BLOCKS) * 4096;
		size_t len = pat_len(file, off, CONC_MAX_LEN);
		struct blk_cache_entry *e = blk_cache_lookup(j->c, file, off);

		j->lookups++;
		if (!e) {
			uint8_t *mem = pat_new(file, off, len);

			if (blk_cache_insert(j->c, file, off, mem, len,
					     len + BLK_CACHE_ENTRY_OVERHEAD, &e)) {
				fr_free(mem);
				j->bad++;
				continue;
			}
		}
		if (!pat_ok(e, file, off, len))
			j->bad++;
		/* keep a few pins across other threads' evictions, then check them again */
		size_t slot = (size_t)n % 3;
		if (held[slot]) {
			if (!pat_ok(held[slot], held_file[slot], held_off[slot],
				    pat_len(held_file[slot], held_off[slot], CONC_MAX_LEN)))
				j->bad++;
			blk_cache_release(j->c, held[slot]);
		}
		held[slot] = e;
		held_file[slot] = file;
		held_off[slot] = off;
	}
	for (size_t i = 0; i < 3; i++)
		blk_cache_release(j->c, held[i]);
	return NULL;
}

static void test_cache_concurrent(void **state)
{
	const size_t cap = 256 << 10; /* about half the blocks fit: both hits and evictions */
	uint64_t rs = tu_seed(), lookups = 0;
	struct conc_job jobs[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	struct blk_cache *c;

	(void)state;
	assert_int_equal(blk_cache_new(cap, BLK_CACHE_SHARD_BITS, &c), FR_OK);
	for (int i = 0; i < CONC_THREADS; i++) {
		jobs[i] = (struct conc_job){c, rs + 0x1000 * (uint64_t)(i + 1), 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, conc_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].bad, 0);
		lookups += jobs[i].lookups;
	}
	struct blk_cache_stats s = stats(c);
	assert_int_equal(s.hits + s.misses, lookups);
	assert_true(s.hits > 0 && s.misses > 0);
	assert_true(s.usage <= cap); /* no pins left */
	/* whatever stayed is intact */
	for (uint64_t f = 1; f <= CONC_FILES; f++)
		for (uint64_t b = 0; b < CONC_BLOCKS; b++)
			present(c, f, b * 4096, pat_len(f, b * 4096, CONC_MAX_LEN));
	blk_cache_free(c);
}

/* Four threads pinning blocks of one small shard: more pins than its share holds, so the shard
 * is above its share most of the time and releases (which take no lock unless it is) keep
 * having to evict. Once every pin is dropped it must be back within its share. */
struct over_job {
	struct blk_cache *c;
	pthread_barrier_t *bar;
	uint64_t seed;
	uint64_t bad;
};

static void *over_thread(void *arg)
{
	struct over_job *j = arg;
	struct blk_cache_entry *held[2] = {0};
	uint64_t held_off[2] = {0};

	for (int n = 0; n < 20000; n++) {
		uint64_t off = tu_rand_below(&j->seed, 64);
		size_t len = pat_len(9, off, 64);
		struct blk_cache_entry *e = blk_cache_lookup(j->c, 9, off);

		if (!e && blk_cache_insert(j->c, 9, off, pat_new(9, off, len), len, 100, &e)) {
			j->bad++;
			continue;
		}
		if (!pat_ok(e, 9, off, len))
			j->bad++;
		size_t slot = (size_t)n & 1;
		if (held[slot] && !pat_ok(held[slot], 9, held_off[slot],
					  pat_len(9, held_off[slot], 64)))
			j->bad++;
		blk_cache_release(j->c, held[slot]);
		held[slot] = e;
		held_off[slot] = off;
	}
	/* every thread holds its last two pins at once, then they all let go: nothing but
	 * those releases is left to bring the shard back within its share */
	pthread_barrier_wait(j->bar);
	blk_cache_release(j->c, held[0]);
	blk_cache_release(j->c, held[1]);
	return NULL;
}

static void test_cache_concurrent_overshoot(void **state)
{
	struct over_job jobs[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	pthread_barrier_t bar;
	uint64_t rs = tu_seed();
	struct blk_cache *c;

	(void)state;
	assert_int_equal(pthread_barrier_init(&bar, NULL, CONC_THREADS), 0);
	assert_int_equal(blk_cache_new(400, 0, &c), FR_OK); /* four entries; up to eight pinned */
	for (int i = 0; i < CONC_THREADS; i++) {
		jobs[i] = (struct over_job){c, &bar, rs + 0x777 * (uint64_t)(i + 1), 0};
		assert_int_equal(pthread_create(&th[i], NULL, over_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].bad, 0);
	}
	assert_true(stats(c).usage <= 400);
	assert_true(stats(c).entry_cnt <= 4);
	blk_cache_free(c);
	pthread_barrier_destroy(&bar);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_clock_order),
		cmocka_unit_test(test_cache_hot_survives_cold_stream),
		cmocka_unit_test(test_cache_pinned_never_marked),
		cmocka_unit_test(test_cache_table_reachable),
		cmocka_unit_test(test_cache_entry_put),
		cmocka_unit_test(test_cache_capacity_varied),
		cmocka_unit_test(test_cache_pinned_survive),
		cmocka_unit_test(test_cache_counters),
		cmocka_unit_test(test_cache_duplicate_insert),
		cmocka_unit_test(test_cache_capacity_zero),
		cmocka_unit_test(test_cache_new_and_nomem),
		cmocka_unit_test(test_cache_concurrent),
		cmocka_unit_test(test_cache_concurrent_overshoot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
