/* SPDX-License-Identifier: MIT */
/*
 * test_ftab.c - the table of open files: 100 files read at random by 4 threads through a table
 * of 16, with the process's descriptors counted (in /proc/self/fd) inside every read and never
 * more than the baseline plus 16; the same with more threads than slots; least recently used
 * closing; forget closing the descriptor; errors (missing file, bad size) leaving no slot taken.
 *
 * Reads go through a wrapper of the real file system that counts opens per path and samples the
 * descriptor count while the read is in progress, which is when the table holds the most.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "io/ftab.h"
#include "io/io.h"
#include "testutil.h"

#define FILE_CNT 100
#define FILE_LEN 8192

/* ---- a counting, sampling wrapper of io_posix ---- */

struct probe_io {
	struct fr_io base; /* first */
	struct fr_io *inner;
	pthread_mutex_t mu; /* one /proc scan at a time: a scan holds a descriptor itself */
	int baseline;       /* descriptors before the table opened anything */
	int max_seen;       /* under mu */
	int open_calls[FILE_CNT + 1]; /* under mu: by file number, parsed from the name */
	bool sample;
};

struct probe_file {
	struct io_file base; /* first */
	struct io_file *inner;
};

/* Open descriptors of this process, not counting the one the scan itself uses. */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static int file_num(const char *path)
{
	const char *s = strrchr(path, '/');
	int n = atoi(s ? s + 1 : path);

	return n >= 0 && n <= FILE_CNT ? n : 0;
}

static fr_status pr_open(struct fr_io *io, const char *path, int flags, struct io_file **out,
			 fr_error *err)
{
	struct probe_io *p = (struct probe_io *)io;
	struct probe_file *f = calloc(1, sizeof(*f));
	fr_status rc;

	assert_non_null(f);
	pthread_mutex_lock(&p->mu);
	p->open_calls[file_num(path)]++;
	pthread_mutex_unlock(&p->mu);
	rc = io_open(p->inner, path, flags, &f->inner, err);
	if (rc) {
		free(f);
		return rc;
	}
	f->base.io = io;
	*out = &f->base;
	return FR_OK;
}

static fr_status pr_pread(struct io_file *file, void *buf, size_t len, uint64_t off, size_t *got,
			  fr_error *err)
{
	struct probe_file *f = (struct probe_file *)file;
	struct probe_io *p = (struct probe_io *)file->io;

	if (p->sample) {
		pthread_mutex_lock(&p->mu);
		int n = fd_count() - p->baseline;
		if (n > p->max_seen)
			p->max_seen = n;
		pthread_mutex_unlock(&p->mu);
	}
	return io_pread(f->inner, buf, len, off, got, err);
}

static fr_status pr_size(struct io_file *file, uint64_t *out, fr_error *err)
{
	return io_size(((struct probe_file *)file)->inner, out, err);
}

static void pr_close(struct io_file *file)
{
	struct probe_file *f = (struct probe_file *)file;

	io_close(f->inner);
	free(f);
}

static const struct io_ops probe_ops = {
	.open = pr_open,
	.pread = pr_pread,
	.size = pr_size,
	.close = pr_close,
};

static void probe_init(struct probe_io *p, bool sample)
{
	memset(p, 0, sizeof(*p));
	p->base.ops = &probe_ops;
	p->inner = io_posix();
	pthread_mutex_init(&p->mu, NULL);
	p->sample = sample;
	p->baseline = fd_count();
}

static int probe_opens(struct probe_io *p, int num)
{
	pthread_mutex_lock(&p->mu);
	int n = p->open_calls[num];
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* ---- fixture: FILE_CNT files whose byte i of file n is content(n, i) ---- */

static uint8_t content(uint64_t n, size_t i)
{
	return (uint8_t)(n * 37 + i * 11 + (i >> 7));
}

struct fixture {
	char *dir;
	char paths[FILE_CNT + 1][512];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	uint8_t buf[FILE_LEN];

	if (!fx)
		return -1;
	fx->dir = tu_tmpdir("ftab");
	for (int n = 1; n <= FILE_CNT; n++) {
		snprintf(fx->paths[n], sizeof(fx->paths[n]), "%s/%06d.sst", fx->dir, n);
		for (size_t i = 0; i < FILE_LEN; i++)
			buf[i] = content((uint64_t)n, i);
		FILE *f = fopen(fx->paths[n], "wb");
		if (!f || fwrite(buf, 1, FILE_LEN, f) != FILE_LEN || fclose(f))
			return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	tu_rmtree_free(fx->dir);
	free(fx);
	return 0;
}

/* Reads [off, off + len) of file n through t and checks every byte. */
static bool read_ok(struct ftab *t, const struct fixture *fx, int n, uint64_t off, size_t len)
{
	uint8_t buf[FILE_LEN];
	size_t got = 0;
	fr_error err;

	if (ftab_pread(t, (uint64_t)n, fx->paths[n], buf, len, off, &got, &err))
		return false;
	if (got != (off + len <= FILE_LEN ? len : FILE_LEN - off))
		return false;
	for (size_t i = 0; i < got; i++)
		if (buf[i] != content((uint64_t)n, (size_t)off + i))
			return false;
	return true;
}

/* ---- the bound under concurrent random reads ---- */

struct job {
	struct ftab *t;
	const struct fixture *fx;
	uint64_t seed;
	int reads;
	int bad;
};

static void *reader(void *arg)
{
	struct job *j = arg;

	for (int i = 0; i < j->reads; i++) {
		int n = 1 + (int)tu_rand_below(&j->seed, FILE_CNT);
		uint64_t off = tu_rand_below(&j->seed, FILE_LEN);
		size_t len = 1 + (size_t)tu_rand_below(&j->seed, 600);

		if (!read_ok(j->t, j->fx, n, off, len))
			j->bad++;
	}
	return NULL;
}

static void run_bounded(const struct fixture *fx, size_t max_open, int threads)
{
	struct probe_io p;
	struct ftab *t;
	fr_error err;
	uint64_t rs = tu_seed();
	pthread_t th[8];
	struct job jobs[8];

	probe_init(&p, true);
	assert_int_equal(ftab_new(&p.base, max_open, &t, &err), FR_OK);
	for (int i = 0; i < threads; i++) {
		jobs[i] = (struct job){t, fx, rs + 7919 * (uint64_t)(i + 1), 1500, 0};
		assert_int_equal(pthread_create(&th[i], NULL, reader, &jobs[i]), 0);
	}
	for (int i = 0; i < threads; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].bad, 0);
	}
	if (p.max_seen > (int)max_open)
		fail_msg("%d descriptors open in a read, bound %zu", p.max_seen, max_open);
	/* the table did hold files open: the bound was reached, not avoided */
	assert_int_equal(p.max_seen, (int)max_open);
	assert_int_equal(ftab_open_cnt(t), max_open);
	assert_int_equal(fd_count() - p.baseline, (int)max_open);
	ftab_free(t);
	assert_int_equal(fd_count(), p.baseline);
	pthread_mutex_destroy(&p.mu);
}

static void test_ftab_bound_concurrent(void **state)
{
	run_bounded(*state, 16, 4);
}

/* More callers than slots: they wait for a slot instead of passing the bound. */
static void test_ftab_bound_more_threads_than_slots(void **state)
{
	run_bounded(*state, 2, 6);
}

/* ---- single-threaded behaviour ---- */

static void test_ftab_lru(void **state)
{
	struct fixture *fx = *state;
	struct probe_io p;
	struct ftab *t;
	fr_error err;

	probe_init(&p, false);
	assert_int_equal(ftab_new(&p.base, 2, &t, &err), FR_OK);
	assert_true(read_ok(t, fx, 1, 0, 10));
	assert_true(read_ok(t, fx, 2, 0, 10));
	assert_true(read_ok(t, fx, 1, 100, 10)); /* 2 is now the least recently used */
	assert_true(read_ok(t, fx, 3, 0, 10));   /* closes 2 */
	assert_int_equal(ftab_open_cnt(t), 2);
	assert_true(read_ok(t, fx, 1, 200, 10));
	assert_true(read_ok(t, fx, 3, 200, 10));
	assert_int_equal(probe_opens(&p, 1), 1);
	assert_int_equal(probe_opens(&p, 3), 1);
	assert_int_equal(probe_opens(&p, 2), 1);
	assert_true(read_ok(t, fx, 2, 0, 10)); /* reopened; closes 1 */
	assert_int_equal(probe_opens(&p, 2), 2);
	assert_true(read_ok(t, fx, 3, 0, 10));
	assert_int_equal(probe_opens(&p, 3), 1);
	assert_true(read_ok(t, fx, 1, 0, 10));
	assert_int_equal(probe_opens(&p, 1), 2);
	/* a read at the end is short, not an error */
	assert_true(read_ok(t, fx, 1, FILE_LEN - 5, 10));
	uint64_t size = 0;
	assert_int_equal(ftab_size(t, 4, fx->paths[4], &size, &err), FR_OK);
	assert_int_equal(size, FILE_LEN);
	assert_int_equal(ftab_open_cnt(t), 2);
	ftab_free(t);
	assert_int_equal(fd_count(), p.baseline);
	pthread_mutex_destroy(&p.mu);
}

static void test_ftab_forget(void **state)
{
	struct fixture *fx = *state;
	struct ftab *t;
	fr_error err;
	uint8_t buf[16];
	size_t got;
	int base = fd_count();

	assert_int_equal(ftab_new(io_posix(), 4, &t, &err), FR_OK);
	assert_true(read_ok(t, fx, 5, 0, 16));
	assert_true(read_ok(t, fx, 6, 0, 16));
	assert_int_equal(ftab_open_cnt(t), 2);
	assert_int_equal(fd_count(), base + 2);
	ftab_forget(t, 5);
	assert_int_equal(ftab_open_cnt(t), 1);
	assert_int_equal(fd_count(), base + 1);
	ftab_forget(t, 5);   /* twice: nothing */
	ftab_forget(t, 999); /* never known: nothing */
	assert_int_equal(ftab_open_cnt(t), 1);
	/* after forgetting, the deleted file is really gone: a new read finds no file */
	assert_int_equal(unlink(fx->paths[5]), 0);
	assert_int_equal(ftab_pread(t, 5, fx->paths[5], buf, sizeof(buf), 0, &got, &err),
			 FR_NOT_FOUND);
	assert_non_null(strstr(err.msg, fx->paths[5]));
	assert_int_equal(ftab_open_cnt(t), 1); /* the failed open took no slot */
	/* without forget, an unlinked file stays readable through its descriptor: which is why
	 * forget must come before deleting */
	assert_int_equal(unlink(fx->paths[6]), 0);
	assert_true(read_ok(t, fx, 6, 100, 16));
	ftab_forget(t, 6);
	assert_int_equal(ftab_open_cnt(t), 0);
	assert_int_equal(fd_count(), base);
	ftab_free(t);
}

static void test_ftab_errors(void **state)
{
	struct fixture *fx = *state;
	struct ftab *t;
	fr_error err;
	uint64_t size;

	assert_int_equal(ftab_new(io_posix(), 0, &t, &err), FR_INVALID);
	assert_null(t);
	for (unsigned long n = 1;; n++) {
		fr_alloc_fail_at(n);
		fr_status rc = ftab_new(io_posix(), 1, &t, &err);
		fr_alloc_fail_at(0);
		if (!rc)
			break;
		assert_int_equal(rc, FR_NOMEM);
		assert_null(t);
	}
	assert_int_equal(ftab_size(t, 77, "/nonexistent/dir/77.sst", &size, &err), FR_NOT_FOUND);
	assert_int_equal(ftab_open_cnt(t), 0);
	/* the one slot is still free for a file that exists */
	assert_true(read_ok(t, fx, 7, 0, 100));
	/* a new entry that cannot be allocated: FR_NOMEM, nothing held */
	fr_alloc_fail_at(1);
	assert_int_equal(ftab_size(t, 8, fx->paths[8], &size, &err), FR_NOMEM);
	fr_alloc_fail_at(0);
	assert_true(read_ok(t, fx, 8, 0, 100));
	assert_int_equal(ftab_open_cnt(t), 1);
	ftab_free(t);
	ftab_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ftab_bound_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ftab_bound_more_threads_than_slots, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ftab_lru, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ftab_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ftab_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
