/* SPDX-License-Identifier: MIT */
/*
 * test_journal.c - the write-ahead journal (journal/journal.h, FORMAT.md §3): writing across
 * rotations and replaying in order, torn-tail truncation of the newest segment, corruption of
 * older ones, segment listing and deletion, and failed writes and syncs injected with io_fault.
 * Most tests run on the real file system; the rotation test runs on io_mem too. Random sizes
 * print their seed (FR_SEED repeats a run).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/io_mem.h"
#include "io/record.h"
#include "journal/journal.h"
#include "testutil.h"

#define SEG_MAX 4096

struct fixture {
	char *tmp;
	char dir[512]; /* the journal directory, not created yet */
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->tmp = tu_tmpdir("journal");
	snprintf(fx->dir, sizeof(fx->dir), "%s/jnl", fx->tmp);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	fr_log_set(NULL, NULL, FR_LOG_ERR);
	tu_rmtree_free(fx->tmp);
	free(fx);
	return 0;
}

static void seg_path(char *buf, size_t n, const char *dir, uint64_t id)
{
	snprintf(buf, n, "%s/%010llu.jnl", dir, (unsigned long long)id);
}

/* Every other record repeats a short pattern, so the journal stores it compressed; the
 * others are random and stored as they are. */
static void fill_payload(uint8_t *p, size_t len, uint64_t idx)
{
	uint64_t s = idx * 0x9E3779B97F4A7C15ull + 7;
	for (size_t i = 0; i < len; i++)
		p[i] = idx % 2 && i >= 8 ? p[i - 8] : (uint8_t)(tu_rand(&s) >> 56);
}

/* What was written: record i has length len[i] and went to segment seg[i]. */
struct model {
	size_t n;
	size_t len[2048];
	uint64_t seg[2048];
	uint64_t last_seg;
	uint64_t bytes_written;
};

/* Writes n records of random sizes (0..max_len), committing now and then and rotating when
 * due (never after the last record); closes the journal. */
static void write_journal(struct fr_io *io, const char *dir, uint64_t first_seg, size_t n,
			  size_t max_len, uint64_t *s, struct model *m)
{
	fr_error err = {0};
	struct jnl *j;
	uint8_t buf[4096];
	assert_true(max_len <= sizeof(buf));
	assert_true(n <= 2048);
	assert_int_equal(jnl_open(io, dir, first_seg, SEG_MAX, &j, &err), FR_OK);
	assert_int_equal(jnl_segment_id(j), first_seg);
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		size_t len = (size_t)tu_rand_below(s, max_len + 1);
		fill_payload(buf, len, i);
		m->len[i] = len;
		m->seg[i] = jnl_segment_id(j);
		assert_int_equal(jnl_add(j, buf, len, &err), FR_OK);
		if (tu_rand_below(s, 3) == 0 || i + 1 == n) {
			fr_persist mode = tu_rand_below(s, 8) == 0 ? FR_PERSIST_SYNC_DATA :
								      FR_PERSIST_BUFFER;
			assert_int_equal(jnl_commit(j, mode, &err), FR_OK);
			/* the newest segment keeps at least the last record */
			if (jnl_should_rotate(j) && i + 1 < n) {
				uint64_t id = jnl_segment_id(j);
				assert_int_equal(jnl_rotate(j, &err), FR_OK);
				assert_int_equal(jnl_segment_id(j), id + 1);
				assert_false(jnl_should_rotate(j));
			}
		}
	}
	m->last_seg = jnl_segment_id(j);
	m->bytes_written = jnl_bytes_written(j);
	assert_int_equal(jnl_close(j, &err), FR_OK);
}

struct replayed {
	const struct model *m;
	size_t base; /* index of the first record expected */
	size_t seen;
	size_t bad;
	uint64_t first_bad;
};

static fr_status check_replay(void *ctx, uint64_t seg_id, const uint8_t *rec, size_t len,
			      fr_error *err)
{
	struct replayed *r = ctx;
	uint8_t want[4096];
	size_t i = r->base + r->seen++;
	(void)err;
	if (i >= r->m->n || seg_id != r->m->seg[i] || len != r->m->len[i]) {
		if (!r->bad++)
			r->first_bad = i;
		return FR_OK;
	}
	fill_payload(want, len, i);
	if (len && memcmp(want, rec, len) != 0) {
		if (!r->bad++)
			r->first_bad = i;
	}
	return FR_OK;
}

static fr_status replay_from(struct fr_io *io, const char *dir, const struct model *m,
			     size_t base, size_t *seen, uint64_t *max_seg, fr_error *err)
{
	struct replayed r = {.m = m, .base = base};
	fr_status rc = jnl_replay(io, dir, check_replay, &r, max_seg, err);
	if (r.bad)
		fail_msg("replayed record %llu differs (%zu bad)", (unsigned long long)r.first_bad,
			 r.bad);
	*seen = r.seen;
	return rc;
}

static fr_status replay(struct fr_io *io, const char *dir, const struct model *m, size_t *seen,
			uint64_t *max_seg, fr_error *err)
{
	return replay_from(io, dir, m, 0, seen, max_seg, err);
}

static uint64_t file_size(struct fr_io *io, const char *path)
{
	fr_error err = {0};
	struct io_file *f;
	uint64_t size;
	assert_int_equal(io_open(io, path, IO_RDONLY, &f, &err), FR_OK);
	assert_int_equal(io_size(f, &size, &err), FR_OK);
	io_close(f);
	return size;
}

static void load(const char *path, uint8_t **img, size_t *len)
{
	fr_error err = {0};
	void *p;
	assert_int_equal(io_read_file(io_posix(), path, &p, len, &err), FR_OK);
	*img = p;
}

static void store(const char *path, const void *data, size_t len)
{
	fr_error err = {0};
	struct io_file *f;
	assert_int_equal(io_open(io_posix(), path, IO_RDWR | IO_CREATE | IO_TRUNC, &f, &err),
			 FR_OK);
	if (len)
		assert_int_equal(io_pwrite(f, data, len, 0, &err), FR_OK);
	io_close(f);
}

/* Offset of the last record in a segment file. */
static uint64_t last_record_off(const char *path)
{
	struct rec_read_result res;
	fr_error err = {0};
	uint64_t last = 0;
	uint8_t *img;
	size_t len;
	assert_int_equal(rec_read_file(io_posix(), path, JNL_MAGIC2, NULL, NULL, &res, &err), FR_OK);
	assert_true(res.records > 0);
	load(path, &img, &len);
	for (uint64_t off = REC_FILE_HEADER_LEN; off < res.valid_len;) {
		last = off;
		off += REC_HEADER_LEN + (img[off] | (img[off + 1] << 8) | (img[off + 2] << 16) |
					 ((uint64_t)img[off + 3] << 24));
	}
	fr_free(img);
	return last;
}

/* Log capture */
struct logcap {
	int warns;
	char last[512];
};

static void log_sink(void *ctx, fr_log_level level, const char *line)
{
	struct logcap *c = ctx;
	if (level == FR_LOG_WARN)
		c->warns++;
	snprintf(c->last, sizeof(c->last), "%s", line);
}

/* ---- tests ---- */

static fr_status count_fn(void *ctx, uint64_t seg_id, const uint8_t *rec, size_t len,
			  fr_error *err)
{
	(void)seg_id;
	(void)rec;
	(void)len;
	(void)err;
	(*(size_t *)ctx)++;
	return FR_OK;
}


static void rotate_and_replay(struct fr_io *io, const char *dir)
{
	uint64_t s = tu_seed();
	struct model m;
	write_journal(io, dir, 1, 600, 700, &s, &m);
	assert_true(m.last_seg >= 10);

	fr_error err = {0};
	uint64_t *ids;
	size_t cnt;
	assert_int_equal(jnl_list_segments(io, dir, &ids, &cnt, &err), FR_OK);
	assert_int_equal(cnt, m.last_seg);
	uint64_t total = 0;
	for (size_t i = 0; i < cnt; i++) {
		char path[600];
		assert_int_equal(ids[i], i + 1);
		seg_path(path, sizeof(path), dir, ids[i]);
		uint64_t size = file_size(io, path);
		if (i + 1 < cnt)
			assert_true(size >= SEG_MAX);
		total += size;
	}
	fr_free(ids);
	assert_int_equal(total, m.bytes_written);

	size_t seen;
	uint64_t max_seg = 99;
	assert_int_equal(replay(io, dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
	assert_int_equal(max_seg, m.last_seg);

	/* a writer continuing after replay */
	struct jnl *j;
	assert_int_equal(jnl_open(io, dir, max_seg + 1, SEG_MAX, &j, &err), FR_OK);
	assert_int_equal(jnl_add(j, "x", 1, &err), FR_OK);
	assert_int_equal(jnl_close(j, &err), FR_OK);
	size_t n = 0;
	assert_int_equal(jnl_replay(io, dir, count_fn, &n, &max_seg, &err), FR_OK);
	assert_int_equal(n, m.n + 1);
	assert_int_equal(max_seg, m.last_seg + 1);
}

static void test_journal_rotate_and_replay(void **state)
{
	struct fixture *fx = *state;
	rotate_and_replay(io_posix(), fx->dir);
}

static void test_journal_rotate_and_replay_mem(void **state)
{
	(void)state;
	struct fr_io *io = io_mem_new();
	assert_non_null(io);
	rotate_and_replay(io, "/jnl");
	io_destroy(io);
}

static void test_journal_open(void **state)
{
	struct fixture *fx = *state;
	fr_error err = {0};
	struct jnl *j = NULL;
	size_t n = 0;
	uint64_t max_seg = 7;
	/* no directory yet: nothing to replay */
	assert_int_equal(jnl_replay(io_posix(), fx->dir, count_fn, &n, &max_seg, &err), FR_OK);
	assert_int_equal(max_seg, 0);
	assert_int_equal(n, 0);
	/* jnl_open creates the directory */
	assert_int_equal(jnl_open(io_posix(), fx->dir, 5, SEG_MAX, &j, &err), FR_OK);
	assert_int_equal(jnl_segment_id(j), 5);
	assert_int_equal(jnl_bytes_written(j), REC_FILE_HEADER_LEN);
	assert_int_equal(jnl_close(j, &err), FR_OK);
	assert_int_equal(jnl_close(NULL, &err), FR_OK);
	/* the segment exists already */
	assert_int_equal(jnl_open(io_posix(), fx->dir, 5, SEG_MAX, &j, &err), FR_INVALID);
	assert_null(j);
	/* more than ten digits */
	assert_int_equal(jnl_open(io_posix(), fx->dir, 10000000000ull, SEG_MAX, &j, &err),
			 FR_INVALID);
	/* an empty segment replays to nothing */
	assert_int_equal(jnl_replay(io_posix(), fx->dir, count_fn, &n, &max_seg, &err), FR_OK);
	assert_int_equal(max_seg, 5);
	assert_int_equal(n, 0);
}

/* A commit hands records to the OS; before it they are only buffered. */
static void test_journal_commit_modes(void **state)
{
	struct fixture *fx = *state;
	fr_error err = {0};
	struct jnl *j;
	char path[600];
	struct rec_read_result res;
	seg_path(path, sizeof(path), fx->dir, 1);
	assert_int_equal(jnl_open(io_posix(), fx->dir, 1, SEG_MAX, &j, &err), FR_OK);
	fr_persist modes[] = {FR_PERSIST_SYNC_DATA, FR_PERSIST_SYNC_ALL, FR_PERSIST_BUFFER};
	for (size_t k = 0; k < 3; k++) {
		assert_int_equal(jnl_add(j, "hello", 5, &err), FR_OK);
		assert_int_equal(jnl_add(j, "world!", 6, &err), FR_OK);
		assert_int_equal(rec_read_file(io_posix(), path, JNL_MAGIC2, NULL, NULL, &res, &err),
				 FR_OK);
		assert_int_equal(res.records, 2 * k);
		assert_int_equal(jnl_commit(j, modes[k], &err), FR_OK);
		assert_int_equal(rec_read_file(io_posix(), path, JNL_MAGIC2, NULL, NULL, &res, &err),
				 FR_OK);
		assert_int_equal(res.records, 2 * k + 2);
		assert_int_equal(res.file_id, 1);
		assert_false(res.torn);
		assert_int_equal(jnl_bytes_written(j), res.file_len);
	}
	/* a commit with nothing buffered */
	assert_int_equal(jnl_commit(j, FR_PERSIST_SYNC_DATA, &err), FR_OK);
	/* close writes what is buffered */
	assert_int_equal(jnl_add(j, "tail", 4, &err), FR_OK);
	assert_int_equal(jnl_close(j, &err), FR_OK);
	assert_int_equal(rec_read_file(io_posix(), path, JNL_MAGIC2, NULL, NULL, &res, &err), FR_OK);
	assert_int_equal(res.records, 7);
}

/* The newest segment's torn tail is cut off on replay, once. */
static void torn_newest(struct fixture *fx, bool garbage)
{
	uint64_t s = tu_seed();
	struct model m;
	write_journal(io_posix(), fx->dir, 1, 300, 500, &s, &m);
	assert_true(m.last_seg >= 3);
	char path[600];
	seg_path(path, sizeof(path), fx->dir, m.last_seg);
	uint64_t size = file_size(io_posix(), path);
	uint64_t last = last_record_off(path);
	uint8_t *img;
	size_t len;
	load(path, &img, &len);
	size_t lost = 0;
	uint64_t valid = size;
	if (garbage) {
		uint8_t *big = malloc(len + 777);
		assert_non_null(big);
		memcpy(big, img, len);
		for (size_t i = 0; i < 777; i++)
			big[len + i] = (uint8_t)tu_rand(&s);
		store(path, big, len + 777);
		free(big);
	} else {
		/* cut inside the last record (its header when it is tiny) */
		store(path, img, (size_t)(last + (size - last) / 2));
		lost = 1;
		valid = last;
	}
	fr_free(img);
	m.n -= lost;

	struct logcap cap = {0};
	fr_log_set(log_sink, &cap, FR_LOG_WARN);
	fr_error err = {0};
	size_t seen;
	uint64_t max_seg;
	assert_int_equal(replay(io_posix(), fx->dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
	assert_int_equal(max_seg, m.last_seg);
	assert_int_equal(file_size(io_posix(), path), valid);
	assert_int_equal(cap.warns, 1);
	assert_non_null(strstr(cap.last, "torn tail"));
	assert_non_null(strstr(cap.last, path));

	/* the second replay is clean and returns the same records */
	cap.warns = 0;
	assert_int_equal(replay(io_posix(), fx->dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
	assert_int_equal(cap.warns, 0);
	assert_int_equal(file_size(io_posix(), path), valid);
	fr_log_set(NULL, NULL, FR_LOG_ERR);
}

static void test_journal_torn_tail_truncated(void **state)
{
	torn_newest(*state, false);
}

static void test_journal_garbage_tail_truncated(void **state)
{
	torn_newest(*state, true);
}

/* Bad records in a segment that is not the newest are corruption, torn tails included. */
static void test_journal_older_segment_corrupt(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	struct model m;
	write_journal(io_posix(), fx->dir, 1, 300, 500, &s, &m);
	assert_true(m.last_seg >= 4);
	char path[600];
	uint8_t *img;
	size_t len;
	fr_error err = {0};
	size_t n;
	uint64_t max_seg;

	/* a flipped byte in the middle of segment 2 */
	seg_path(path, sizeof(path), fx->dir, 2);
	load(path, &img, &len);
	img[len / 2] ^= 0x01;
	store(path, img, len);
	img[len / 2] ^= 0x01;
	n = 0;
	assert_int_equal(jnl_replay(io_posix(), fx->dir, count_fn, &n, &max_seg, &err),
			 FR_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	store(path, img, len);

	/* a torn tail in segment 2: synced at rotation, so corruption too */
	uint64_t last = last_record_off(path);
	store(path, img, (size_t)last + 5);
	memset(&err, 0, sizeof(err));
	assert_int_equal(jnl_replay(io_posix(), fx->dir, count_fn, &n, &max_seg, &err),
			 FR_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(err.offset, last);
	/* and it was not truncated */
	assert_int_equal(file_size(io_posix(), path), last + 5);

	/* an older segment shorter than its header */
	store(path, img, 10);
	memset(&err, 0, sizeof(err));
	assert_int_equal(jnl_replay(io_posix(), fx->dir, count_fn, &n, &max_seg, &err),
			 FR_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	store(path, img, len);

	/* a segment whose header names another id */
	char other[600];
	seg_path(other, sizeof(other), fx->dir, m.last_seg + 5);
	store(other, img, len);
	memset(&err, 0, sizeof(err));
	assert_int_equal(jnl_replay(io_posix(), fx->dir, count_fn, &n, &max_seg, &err),
			 FR_CORRUPTION);
	assert_non_null(strstr(err.msg, other));
	assert_int_equal(jnl_segment_delete(io_posix(), fx->dir, m.last_seg + 5, &err), FR_OK);
	fr_free(img);

	/* all repaired: the full replay again */
	size_t seen;
	assert_int_equal(replay(io_posix(), fx->dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
}

/* A newest segment cut short before its header was written is dropped. */
static void test_journal_short_newest_dropped(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	struct model m;
	write_journal(io_posix(), fx->dir, 1, 100, 500, &s, &m);
	char path[600];
	seg_path(path, sizeof(path), fx->dir, m.last_seg + 1);
	store(path, "FJNL\1\0\0", 7);
	fr_error err = {0};
	size_t seen;
	uint64_t max_seg;
	bool exists;
	assert_int_equal(replay(io_posix(), fx->dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
	assert_int_equal(max_seg, m.last_seg + 1);
	assert_int_equal(io_exists(io_posix(), path, &exists, &err), FR_OK);
	assert_false(exists);
	/* an empty one too */
	store(path, NULL, 0);
	assert_int_equal(replay(io_posix(), fx->dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
	assert_int_equal(io_exists(io_posix(), path, &exists, &err), FR_OK);
	assert_false(exists);
	/* a writer may start the next segment */
	struct jnl *j;
	assert_int_equal(jnl_open(io_posix(), fx->dir, max_seg + 1, SEG_MAX, &j, &err), FR_OK);
	assert_int_equal(jnl_close(j, &err), FR_OK);
	assert_int_equal(replay(io_posix(), fx->dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
	assert_int_equal(max_seg, m.last_seg + 2);
}

static void test_journal_segment_delete(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	struct model m;
	write_journal(io_posix(), fx->dir, 1, 300, 500, &s, &m);
	assert_true(m.last_seg >= 4);
	fr_error err = {0};
	assert_int_equal(jnl_segment_delete(io_posix(), fx->dir, 1, &err), FR_OK);
	assert_int_equal(jnl_segment_delete(io_posix(), fx->dir, 2, &err), FR_OK);
	assert_int_equal(jnl_segment_delete(io_posix(), fx->dir, 2, &err), FR_NOT_FOUND);
	uint64_t *ids;
	size_t cnt;
	assert_int_equal(jnl_list_segments(io_posix(), fx->dir, &ids, &cnt, &err), FR_OK);
	assert_int_equal(cnt, m.last_seg - 2);
	for (size_t i = 0; i < cnt; i++)
		assert_int_equal(ids[i], i + 3);
	fr_free(ids);
	/* replay starts at segment 3 */
	size_t skip = 0;
	while (skip < m.n && m.seg[skip] < 3)
		skip++;
	assert_true(skip > 0);
	size_t seen;
	uint64_t max_seg;
	assert_int_equal(replay_from(io_posix(), fx->dir, &m, skip, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n - skip);
	assert_int_equal(max_seg, m.last_seg);
}

/* Names other than ten digits + ".jnl" are not segments. */
static void test_journal_stray_files_ignored(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	struct model m;
	write_journal(io_posix(), fx->dir, 3, 100, 500, &s, &m);
	const char *stray[] = {"._0", ".DS_Store", "foo.jnl", "123.jnl", "00000000001.jnl",
			       "0000000001.jnl.tmp", "000000000a.jnl", "0000000001.JNL",
			       "0000000001jnl", "x0000000001.jnl", "9999999999.jn"};
	for (size_t i = 0; i < sizeof(stray) / sizeof(stray[0]); i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", fx->dir, stray[i]);
		store(path, "garbage", 7);
	}
	fr_error err = {0};
	uint64_t *ids;
	size_t cnt;
	assert_int_equal(jnl_list_segments(io_posix(), fx->dir, &ids, &cnt, &err), FR_OK);
	assert_int_equal(cnt, m.last_seg - 2);
	for (size_t i = 0; i < cnt; i++)
		assert_int_equal(ids[i], i + 3);
	fr_free(ids);
	size_t seen;
	uint64_t max_seg;
	assert_int_equal(replay(io_posix(), fx->dir, &m, &seen, &max_seg, &err), FR_OK);
	assert_int_equal(seen, m.n);
	assert_int_equal(max_seg, m.last_seg);
	/* a missing directory has no segments */
	char none[600];
	snprintf(none, sizeof(none), "%s/none", fx->tmp);
	assert_int_equal(jnl_list_segments(io_posix(), none, &ids, &cnt, &err), FR_OK);
	assert_int_equal(cnt, 0);
	fr_free(ids);
}

/* The replay callback's status stops the replay. */
static fr_status stop_fn(void *ctx, uint64_t seg_id, const uint8_t *rec, size_t len,
			 fr_error *err)
{
	(void)seg_id;
	(void)rec;
	(void)len;
	size_t *n = ctx;
	if (++*n == 10)
		return FR_NOMEM;
	(void)err;
	return FR_OK;
}

static void test_journal_replay_callback_stops(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	struct model m;
	write_journal(io_posix(), fx->dir, 1, 100, 100, &s, &m);
	fr_error err = {0};
	size_t n = 0;
	uint64_t max_seg = 5;
	assert_int_equal(jnl_replay(io_posix(), fx->dir, stop_fn, &n, &max_seg, &err), FR_NOMEM);
	assert_int_equal(n, 10);
}

/* Injected failures come back with their status, and the writer stays failed. */
static void test_journal_write_fault(void **state)
{
	struct fixture *fx = *state;
	struct fr_io *io = io_fault_new(io_posix());
	assert_non_null(io);
	fr_error err = {0};
	struct jnl *j;
	assert_int_equal(jnl_open(io, fx->dir, 1, SEG_MAX, &j, &err), FR_OK);
	assert_int_equal(jnl_add(j, "one", 3, &err), FR_OK);
	assert_int_equal(jnl_commit(j, FR_PERSIST_SYNC_DATA, &err), FR_OK);

	/* the write of a commit fails */
	io_fault_arm(io, IO_FAULT_WRITE, 1, EIO, false);
	assert_int_equal(jnl_add(j, "two", 3, &err), FR_OK);
	memset(&err, 0, sizeof(err));
	assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_IO);
	assert_int_equal(err.code, FR_IO);
	assert_int_equal(err.sys_errno, EIO);
	assert_int_equal(io_fault_injected(io), 1);
	/* sticky: nothing more is accepted, the failed record is never written */
	assert_int_equal(jnl_add(j, "three", 5, &err), FR_IO);
	assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_IO);
	assert_int_equal(jnl_rotate(j, &err), FR_IO);
	assert_int_equal(jnl_close(j, &err), FR_IO);
	size_t n = 0;
	uint64_t max_seg;
	assert_int_equal(jnl_replay(io, fx->dir, count_fn, &n, &max_seg, &err), FR_OK);
	assert_int_equal(n, 1);

	/* the sync of a commit fails */
	io_fault_clear(io);
	assert_int_equal(jnl_open(io, fx->dir, 2, SEG_MAX, &j, &err), FR_OK);
	io_fault_arm(io, IO_FAULT_SYNC, 1, EIO, false);
	assert_int_equal(jnl_add(j, "four", 4, &err), FR_OK);
	memset(&err, 0, sizeof(err));
	assert_int_equal(jnl_commit(j, FR_PERSIST_SYNC_DATA, &err), FR_IO);
	assert_int_equal(err.sys_errno, EIO);
	assert_int_equal(jnl_commit(j, FR_PERSIST_SYNC_DATA, &err), FR_IO);
	assert_int_equal(jnl_close(j, &err), FR_IO);

	/* ENOSPC is FR_NO_SPACE */
	io_fault_clear(io);
	assert_int_equal(jnl_open(io, fx->dir, 3, SEG_MAX, &j, &err), FR_OK);
	io_fault_set_space(io, 10);
	assert_int_equal(jnl_add(j, "a record longer than ten bytes", 30, &err), FR_OK);
	assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_NO_SPACE);
	assert_int_equal(jnl_close(j, &err), FR_NO_SPACE);
	io_fault_clear(io);

	/* failed opens leave no writer and no file */
	io_fault_arm(io, IO_FAULT_WRITE, 1, EIO, false);
	j = (struct jnl *)&n;
	assert_int_equal(jnl_open(io, fx->dir, 4, SEG_MAX, &j, &err), FR_IO);
	assert_null(j);
	io_fault_arm(io, IO_FAULT_SYNC, 1, EIO, false);
	assert_int_equal(jnl_open(io, fx->dir, 4, SEG_MAX, &j, &err), FR_IO);
	io_fault_clear(io);
	uint64_t *ids;
	size_t cnt;
	assert_int_equal(jnl_list_segments(io, fx->dir, &ids, &cnt, &err), FR_OK);
	assert_int_equal(cnt, 3);
	assert_int_equal(ids[cnt - 1], 3);
	fr_free(ids);
	io_destroy(io);
}

/* A rotation that cannot start the next segment leaves the writer on the current one. */
static void test_journal_rotate_fault(void **state)
{
	struct fixture *fx = *state;
	struct fr_io *io = io_fault_new(io_posix());
	assert_non_null(io);
	fr_error err = {0};
	struct jnl *j;
	assert_int_equal(jnl_open(io, fx->dir, 1, 64, &j, &err), FR_OK);
	assert_int_equal(jnl_add(j, "0123456789012345678901234567890123456789", 40, &err), FR_OK);
	assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_OK);
	assert_true(jnl_should_rotate(j));
	io_fault_arm(io, IO_FAULT_OPEN, 1, EMFILE, false);
	assert_int_equal(jnl_rotate(j, &err), FR_IO);
	assert_int_equal(jnl_segment_id(j), 1);
	/* the failed rotation synced the segment but did not poison the writer */
	assert_int_equal(jnl_add(j, "more", 4, &err), FR_OK);
	assert_int_equal(jnl_commit(j, FR_PERSIST_SYNC_DATA, &err), FR_OK);
	/* the directory sync of the new segment fails: it is removed again */
	io_fault_arm(io, IO_FAULT_SYNC, 3, EIO, false); /* old segment, new segment, directory */
	assert_int_equal(jnl_rotate(j, &err), FR_IO);
	assert_int_equal(jnl_segment_id(j), 1);
	io_fault_clear(io);
	assert_int_equal(jnl_rotate(j, &err), FR_OK);
	assert_int_equal(jnl_segment_id(j), 2);
	assert_int_equal(jnl_add(j, "next", 4, &err), FR_OK);
	assert_int_equal(jnl_close(j, &err), FR_OK);
	size_t n = 0;
	uint64_t max_seg;
	assert_int_equal(jnl_replay(io, fx->dir, count_fn, &n, &max_seg, &err), FR_OK);
	assert_int_equal(n, 3);
	assert_int_equal(max_seg, 2);
	io_destroy(io);
}

/* Replays of test_journal_compresses: record k holds fill_payload(..., 2k + 1). */
struct odd_replay {
	size_t n;
	size_t len[64];
	size_t seen;
};

static fr_status check_odd(void *ctx, uint64_t seg_id, const uint8_t *rec, size_t len,
			   fr_error *err)
{
	struct odd_replay *o = ctx;
	uint8_t want[3000];
	size_t k = o->seen++;
	(void)seg_id;
	(void)err;
	assert_true(k < o->n);
	assert_int_equal(len, o->len[k]);
	fill_payload(want, len, 2 * k + 1);
	assert_memory_equal(rec, want, len);
	return FR_OK;
}

/* Compressible batches take less room on disk and replay byte for byte. */
static void test_journal_compresses(void **state)
{
	struct fixture *fx = *state;
	fr_error err = {0};
	struct jnl *j;
	uint8_t rec[3000];
	struct odd_replay o = {0};
	assert_int_equal(jnl_open(io_posix(), fx->dir, 1, SEG_MAX, &j, &err), FR_OK);
	uint64_t start = jnl_bytes_written(j), raw = 0;
	for (size_t k = 0; k < 40; k++) {
		size_t len = k * 70 + 1;
		fill_payload(rec, len, 2 * k + 1);
		assert_int_equal(jnl_add(j, rec, len, &err), FR_OK);
		o.len[o.n++] = len;
		raw += len;
	}
	assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_OK);
	assert_true(jnl_bytes_written(j) - start < raw / 2);
	assert_int_equal(jnl_close(j, &err), FR_OK);
	uint64_t max_seg;
	assert_int_equal(jnl_replay(io_posix(), fx->dir, check_odd, &o, &max_seg, &err), FR_OK);
	assert_int_equal(o.seen, 40);
}

/* An io that passes everything to the real file system and records the write-back hints. */
struct wb_io {
	struct fr_io io;
	struct io_ops ops;
	size_t n;
	uint64_t off[64], len[64];
};

static struct wb_io *wb_current;

static void wb_record(struct io_file *f, uint64_t off, uint64_t len)
{
	(void)f;
	assert_true(wb_current->n < 64);
	wb_current->off[wb_current->n] = off;
	wb_current->len[wb_current->n++] = len;
}

static fr_status count_recs(void *ctx, uint64_t seg_id, const uint8_t *rec, size_t len,
			    fr_error *err)
{
	(void)seg_id;
	(void)err;
	size_t *n = ctx;
	uint8_t want[64 << 10];
	fill_payload(want, len, 2 * *n);
	assert_memory_equal(rec, want, len);
	(*n)++;
	return FR_OK;
}

/* Buffered commits start the write-back of what they wrote once 2 MiB or more are pending,
 * each hint going on where the last ended; a synced commit needs none. The records replay. */
static void test_journal_writeback_hints(void **state)
{
	struct fixture *fx = *state;
	static struct wb_io w;
	fr_error err = {0};
	struct jnl *j;
	static uint8_t rec[64 << 10];
	memset(&w, 0, sizeof(w));
	w.ops = *io_posix()->ops;
	w.ops.writeback = wb_record;
	w.io.ops = &w.ops;
	wb_current = &w;
	assert_int_equal(jnl_open(&w.io, fx->dir, 1, 64u << 20, &j, &err), FR_OK);
	size_t k = 0;
	for (; k < 31; k++) { /* just under 2 MiB */
		fill_payload(rec, sizeof(rec), 2 * k);
		assert_int_equal(jnl_add(j, rec, sizeof(rec), &err), FR_OK);
		assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_OK);
	}
	assert_int_equal(w.n, 0);
	for (; k < 200; k++) {
		fill_payload(rec, sizeof(rec), 2 * k);
		assert_int_equal(jnl_add(j, rec, sizeof(rec), &err), FR_OK);
		assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_OK);
	}
	/* 200 records of 64 KiB: about 12.5 MiB, so 6 hints of a little over 2 MiB each */
	assert_int_equal(w.n, 6);
	uint64_t end = 0;
	for (size_t i = 0; i < w.n; i++) {
		assert_int_equal(w.off[i], end);
		assert_true(w.len[i] >= 2u << 20);
		assert_true(w.len[i] < (2u << 20) + (70u << 10));
		end += w.len[i];
	}
	assert_true(end <= jnl_bytes_written(j));
	assert_true(jnl_bytes_written(j) - end < 2u << 20);
	fill_payload(rec, sizeof(rec), 2 * k++);
	assert_int_equal(jnl_add(j, rec, sizeof(rec), &err), FR_OK);
	assert_int_equal(jnl_commit(j, FR_PERSIST_SYNC_DATA, &err), FR_OK);
	assert_int_equal(w.n, 6);
	assert_int_equal(jnl_close(j, &err), FR_OK);
	size_t seen = 0;
	uint64_t max_seg;
	assert_int_equal(jnl_replay(io_posix(), fx->dir, count_recs, &seen, &max_seg, &err),
			 FR_OK);
	assert_int_equal(seen, k);
	wb_current = NULL;
}

/* Incompressible records make the writer stop trying for a while (it is not worth the CPU);
 * compressible ones after them are compressed again soon. */
static void test_journal_compress_backoff(void **state)
{
	struct fixture *fx = *state;
	fr_error err = {0};
	struct jnl *j;
	uint8_t rec[1000];
	assert_int_equal(jnl_open(io_posix(), fx->dir, 1, 64u << 20, &j, &err), FR_OK);
	for (size_t k = 0; k < 200; k++) {
		fill_payload(rec, sizeof(rec), 2 * k); /* even: random */
		assert_int_equal(jnl_add(j, rec, sizeof(rec), &err), FR_OK);
	}
	assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_OK);
	/* tries at 1, 3, 6, 11, ... then one in 65: far fewer than the records */
	assert_true(jnl_compress_tries(j) >= 5);
	assert_true(jnl_compress_tries(j) <= 12);
	uint64_t before = jnl_bytes_written(j);
	for (size_t k = 0; k < 200; k++) {
		fill_payload(rec, sizeof(rec), 2 * k + 1); /* odd: compressible */
		assert_int_equal(jnl_add(j, rec, sizeof(rec), &err), FR_OK);
	}
	assert_int_equal(jnl_commit(j, FR_PERSIST_BUFFER, &err), FR_OK);
	/* at most one backoff's worth (64) of them went uncompressed */
	assert_true(jnl_bytes_written(j) - before < 64 * 1020 + 136 * 600);
	assert_int_equal(jnl_close(j, &err), FR_OK);
}

/* A segment of the first version (magic JNL_MAGIC, bare batches) still replays. */
static void test_journal_v1_segment(void **state)
{
	struct fixture *fx = *state;
	fr_error err = {0};
	char path[600];
	struct rec_writer *w;
	uint8_t rec[3000];
	struct odd_replay o = {0};
	assert_int_equal(io_mkdir(io_posix(), fx->dir, &err), FR_OK);
	seg_path(path, sizeof(path), fx->dir, 3);
	assert_int_equal(rec_writer_open(io_posix(), path, JNL_MAGIC, 3, &w, &err), FR_OK);
	for (size_t k = 0; k < 10; k++) {
		size_t len = k * 100 + 5;
		fill_payload(rec, len, 2 * k + 1);
		assert_int_equal(rec_writer_add(w, rec, len, &err), FR_OK);
		o.len[o.n++] = len;
	}
	assert_int_equal(rec_writer_close(w, &err), FR_OK);
	uint64_t max_seg;
	assert_int_equal(jnl_replay(io_posix(), fx->dir, check_odd, &o, &max_seg, &err), FR_OK);
	assert_int_equal(o.seen, 10);
	assert_int_equal(max_seg, 3);
}

/* A record whose checksum holds but whose frame is bad: corruption, naming file and offset. */
static void test_journal_bad_frame(void **state)
{
	struct fixture *fx = *state;
	static const uint8_t bad_codec[] = {7, 1, 2, 3};
	static const uint8_t bad_lz4[] = {JNL_CODEC_LZ4, 100, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t short_len[] = {JNL_CODEC_LZ4, 3, 0x30, 'a', 'b', 'c'};
	const uint8_t *recs[] = {bad_codec, bad_lz4, short_len};
	const size_t lens[] = {sizeof(bad_codec), sizeof(bad_lz4), sizeof(short_len)};
	for (size_t i = 0; i < 3; i++) {
		fr_error err = {0};
		char path[600];
		struct rec_writer *w;
		tu_rmtree(fx->dir);
		assert_int_equal(io_mkdir(io_posix(), fx->dir, &err), FR_OK);
		seg_path(path, sizeof(path), fx->dir, 1);
		assert_int_equal(rec_writer_open(io_posix(), path, JNL_MAGIC2, 1, &w, &err), FR_OK);
		assert_int_equal(rec_writer_add(w, recs[i], lens[i], &err), FR_OK);
		assert_int_equal(rec_writer_close(w, &err), FR_OK);
		struct odd_replay o = {0};
		uint64_t max_seg;
		assert_int_equal(jnl_replay(io_posix(), fx->dir, check_odd, &o, &max_seg, &err),
				 FR_CORRUPTION);
		assert_int_equal(err.offset, REC_FILE_HEADER_LEN);
		assert_non_null(strstr(err.msg, path));
		assert_int_equal(o.seen, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_rotate_and_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_rotate_and_replay_mem, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_commit_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_torn_tail_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_garbage_tail_truncated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_older_segment_corrupt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_short_newest_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_segment_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_stray_files_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_replay_callback_stops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_write_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_rotate_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_compresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_compress_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_writeback_hints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_v1_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_bad_frame, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
