/* SPDX-License-Identifier: MIT */
/*
 * testutil_kv.h - pieces shared by the store tests that write numbered keys with generated
 * values and kill writer processes: the key and random value of key k at a version, a count of
 * the files of a directory by suffix, a sleep, and one kill cycle of a child that commits and
 * reports what was acknowledged.
 *
 * Header-only for the reason testutil_db.h gives. Include after <cmocka.h>.
 */
#ifndef FRACTIO_TESTS_TESTUTIL_KV_H
#define FRACTIO_TESTS_TESTUTIL_KV_H

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fractio.h"
#include "testutil.h"
#include "testutil_db.h"

/* The key of number k; buf holds 16 bytes. */
static inline void tu_kv_key(char *buf, uint64_t k)
{
	snprintf(buf, 16, "k%06" PRIu64, k);
}

/* The n random (incompressible) bytes of key k at version ver. */
static inline void tu_kv_fill_random(uint8_t *p, size_t n, uint64_t k, uint64_t ver)
{
	uint64_t s = (k + 1) * 0x9e3779b97f4a7c15ull ^ (ver + 7) * 0xbf58476d1ce4e5b9ull;
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			s = tu_rand(&s);
		p[i] = (uint8_t)(s >> (i % 8 * 8));
	}
}

/* Makes the n-byte value of key k at version ver (malloc'd; the caller frees it). */
typedef uint8_t *tu_kv_maker(size_t n, uint64_t k, uint64_t ver);

/* The database at dir through io (NULL: the default), with background work on or off; fails
 * the test when it does not open. */
static inline fr_db *tu_kv_open_db(const char *dir, struct fr_io *io, bool background)
{
	fr_db_options o;
	fr_db_options_init(&o);
	o.background = background;
	o.io = io;
	fr_db *db;
	fr_error e;
	fr_status rc = fr_db_open(dir, &o, &db, &e);
	if (rc)
		fail_msg("open %s: %s", dir, e.msg);
	return db;
}

/* Keyspace "kv" with the blob threshold given (the stored one wins on reopen). */
static inline fr_keyspace *tu_kv_open_ks(fr_db *db, uint32_t threshold)
{
	fr_keyspace_options ko;
	fr_keyspace_options_init(&ko);
	ko.blob_threshold = threshold;
	fr_keyspace *ks;
	fr_error e;
	TU_OK(fr_keyspace_open(db, "kv", &ko, &ks, &e), e);
	return ks;
}

/* fr_get's status for key k, failing the test when found with another value than make's n
 * bytes of version ver. */
static inline fr_status tu_kv_get_check(fr_keyspace *ks, tu_kv_maker *make, uint64_t k,
					size_t n, uint64_t ver, fr_error *e)
{
	char key[16];
	tu_kv_key(key, k);
	void *v;
	size_t got;
	fr_status rc = fr_get(ks, key, strlen(key), &v, &got, e);
	if (rc)
		return rc;
	uint8_t *want = make(n, k, ver);
	if (got != n || memcmp(v, want, n))
		fail_msg("get %s: wrong value (%zu bytes, want %zu of version %" PRIu64 ")", key,
			 got, n, ver);
	free(want);
	fr_free(v);
	return FR_OK;
}

/* Fails the test unless key k holds make's n bytes of version ver. */
static inline void tu_kv_check_get(fr_keyspace *ks, tu_kv_maker *make, uint64_t k, size_t n,
				   uint64_t ver)
{
	fr_error e;
	fr_status rc = tu_kv_get_check(ks, make, k, n, ver, &e);
	if (rc)
		fail_msg("get %" PRIu64 ": %s (%s)", k, fr_status_str(rc), e.msg);
}

/* Walks ks (at snap, unless NULL) both ways: keys 0 .. cnt - 1, key k with make's size_of(k)
 * bytes of version ver. */
static inline void tu_kv_check_iter(fr_keyspace *ks, const fr_snapshot *snap, uint64_t cnt,
				    size_t (*size_of)(uint64_t), tu_kv_maker *make, uint64_t ver)
{
	for (int rev = 0; rev < 2; rev++) {
		fr_iter_options io = {.reverse = rev, .snapshot = snap};
		fr_iter *it;
		fr_error e;
		TU_OK(fr_iter_open(ks, &io, &it, &e), e);
		uint64_t seen = 0;
		while (fr_iter_valid(it)) {
			uint64_t k = rev ? cnt - 1 - seen : seen;
			char key[16];
			tu_kv_key(key, k);
			size_t kl, vl;
			const void *kp = fr_iter_key(it, &kl), *vp = fr_iter_value(it, &vl);
			assert_int_equal(kl, strlen(key));
			assert_memory_equal(kp, key, kl);
			uint8_t *want = make(size_of(k), k, ver);
			assert_int_equal(vl, size_of(k));
			assert_memory_equal(vp, want, vl);
			free(want);
			seen++;
			TU_OK(fr_iter_next(it, &e), e);
		}
		assert_int_equal(seen, cnt);
		fr_iter_close(it);
	}
}

/* How many files of dir end in suffix (0 when dir cannot be read); bytes, unless NULL, gets
 * their total size. */
static inline uint64_t tu_count_files(const char *dir, const char *suffix, uint64_t *bytes)
{
	DIR *d = opendir(dir);
	uint64_t n = 0;
	if (bytes)
		*bytes = 0;
	if (!d)
		return 0;
	for (struct dirent *de; (de = readdir(d));) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (l <= sl || strcmp(de->d_name + l - sl, suffix))
			continue;
		n++;
		if (bytes) {
			char p[1024];
			struct stat st;
			int pl = snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (pl > 0 && (size_t)pl < sizeof(p) && !stat(p, &st))
				*bytes += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return n;
}

static inline void tu_sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Written to the pipe by a child whose open or commit failed. */
#define TU_CHILD_FAILED UINT64_MAX

/* A child of tu_kill_cycle: commits batches first, first + 1, ... in dir, writes each one's
 * number to fd once it is acknowledged (TU_CHILD_FAILED, then exits, when something fails), and
 * runs until it is killed. */
typedef void tu_kill_child(const char *dir, uint64_t first, int fd);

/* One crash: forks child(dir, r + 1, fd), kills it with SIGKILL after ms milliseconds and reads
 * the batches it acknowledged, which must follow r one by one. Fails the test (naming cycle)
 * when the child failed or ended by itself. Returns the last acknowledged batch (r when none);
 * cnt gets how many were acknowledged. */
static inline uint64_t tu_kill_cycle(const char *dir, uint64_t r, uint64_t ms,
				     tu_kill_child *child, uint64_t cycle, uint64_t *cnt)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child(dir, r + 1, p[1]);
		_exit(5);
	}
	close(p[1]);
	tu_sleep_ms(ms);
	kill(pid, SIGKILL);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	uint64_t acked = r, n;
	ssize_t got;
	*cnt = 0;
	while ((got = read(p[0], &n, sizeof(n))) == (ssize_t)sizeof(n)) {
		if (n == TU_CHILD_FAILED)
			fail_msg("cycle %" PRIu64 ": the child failed (see stderr)", cycle);
		if (n != acked + 1)
			fail_msg("acknowledged %" PRIu64 " after %" PRIu64, n, acked);
		acked = n;
		(*cnt)++;
	}
	assert_int_equal(got, 0);
	close(p[0]);
	if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL)
		fail_msg("cycle %" PRIu64 ": the child ended by itself (status 0x%x)", cycle, ws);
	return acked;
}

#endif
