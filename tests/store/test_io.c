/* SPDX-License-Identifier: MIT */
/*
 * test_io.c - the I/O interface: one set of semantic checks run against io_posix (in a temporary
 * directory), io_mem and io_fault (unarmed, over io_mem); the small-file helpers; io_mem power
 * cuts (what survives and what does not); io_fault injection (Nth call, sticky, ENOSPC budget,
 * counters and the fault loop they enable).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/io_mem.h"
#include "testutil.h"

/*
 * Helpers
 */

static const char *pj(char *buf, const char *base, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", base, name);
	assert_true(n > 0 && n < PATH_MAX);
	return buf;
}

static struct io_file *open_ok(struct fr_io *io, const char *path, int flags)
{
	struct io_file *f = NULL;
	fr_error err = {0};
	fr_status rc = io_open(io, path, flags, &f, &err);
	if (rc)
		fprintf(stderr, "open %s: %s\n", path, err.msg);
	assert_int_equal(rc, FR_OK);
	assert_non_null(f);
	return f;
}

static void write_file(struct fr_io *io, const char *path, const char *s, bool sync)
{
	struct io_file *f = open_ok(io, path, IO_RDWR | IO_CREATE | IO_TRUNC);
	assert_int_equal(io_pwrite(f, s, strlen(s), 0, NULL), FR_OK);
	if (sync)
		assert_int_equal(io_sync(f, FR_PERSIST_SYNC_DATA, NULL), FR_OK);
	io_close(f);
}

/* asserts path holds exactly the string s */
static void assert_contents(struct fr_io *io, const char *path, const char *s)
{
	void *data = NULL;
	size_t len = 0;
	fr_error err = {0};
	fr_status rc = io_read_file(io, path, &data, &len, &err);
	if (rc)
		fprintf(stderr, "read %s: %s\n", path, err.msg);
	assert_int_equal(rc, FR_OK);
	assert_int_equal(len, strlen(s));
	assert_memory_equal(data, s, len);
	fr_free(data);
}

static bool exists(struct fr_io *io, const char *path)
{
	bool e = false;
	assert_int_equal(io_exists(io, path, &e, NULL), FR_OK);
	return e;
}

struct names {
	char v[16][64];
	int cnt;
	int stop_after; /* 0: never stop */
};

static int collect(void *ctx, const char *name)
{
	struct names *n = ctx;
	assert_true(n->cnt < 16);
	snprintf(n->v[n->cnt++], sizeof(n->v[0]), "%s", name);
	return n->stop_after && n->cnt >= n->stop_after;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* lists dir and returns the names sorted and joined with ',' into out */
static void list_sorted(struct fr_io *io, const char *dir, char *out, size_t out_len)
{
	struct names n = {0};
	assert_int_equal(io_list(io, dir, collect, &n, NULL), FR_OK);
	qsort(n.v, (size_t)n.cnt, sizeof(n.v[0]), name_cmp);
	out[0] = 0;
	for (int i = 0; i < n.cnt; i++) {
		if (i)
			strncat(out, ",", out_len - strlen(out) - 1);
		strncat(out, n.v[i], out_len - strlen(out) - 1);
	}
}

/*
 * The shared semantic checks: io with an existing, empty directory base.
 */

static void check_open_read_write(struct fr_io *io, const char *base)
{
	char p[PATH_MAX];
	fr_error err = {0};
	struct io_file *f = NULL;
	pj(p, base, "missing");
	assert_int_equal(io_open(io, p, IO_RDONLY, &f, &err), FR_NOT_FOUND);
	assert_null(f);
	assert_int_equal(err.code, FR_NOT_FOUND);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_non_null(strstr(err.msg, p));

	pj(p, base, "f");
	f = open_ok(io, p, IO_RDWR | IO_CREATE);
	assert_int_equal(io_pwrite(f, "hello", 5, 0, NULL), FR_OK);
	assert_int_equal(io_append(f, " world", 6, NULL), FR_OK);
	uint64_t size = 0;
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 11);
	char buf[64];
	size_t got = 0;
	assert_int_equal(io_pread(f, buf, sizeof(buf), 0, &got, NULL), FR_OK);
	assert_int_equal(got, 11);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(io_pread(f, buf, 3, 6, &got, NULL), FR_OK);
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "wor", 3);
	assert_int_equal(io_pread(f, buf, sizeof(buf), 6, &got, NULL), FR_OK);
	assert_int_equal(got, 5);
	assert_int_equal(io_pread(f, buf, sizeof(buf), 100, &got, NULL), FR_OK);
	assert_int_equal(got, 0);

	/* a write past the end leaves a zero-filled gap */
	assert_int_equal(io_pwrite(f, "x", 1, 20, NULL), FR_OK);
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 21);
	assert_int_equal(io_pread(f, buf, sizeof(buf), 0, &got, NULL), FR_OK);
	assert_int_equal(got, 21);
	assert_memory_equal(buf, "hello world\0\0\0\0\0\0\0\0\0x", 21);
	/* an empty write does not extend */
	assert_int_equal(io_pwrite(f, "", 0, 100, NULL), FR_OK);
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 21);

	/* truncate down, then up (zeros) */
	assert_int_equal(io_truncate(f, 5, NULL), FR_OK);
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 5);
	assert_int_equal(io_truncate(f, 8, NULL), FR_OK);
	assert_int_equal(io_pread(f, buf, sizeof(buf), 0, &got, NULL), FR_OK);
	assert_int_equal(got, 8);
	assert_memory_equal(buf, "hello\0\0\0", 8);
	assert_int_equal(io_sync(f, FR_PERSIST_SYNC_ALL, NULL), FR_OK);
	assert_int_equal(io_sync(f, FR_PERSIST_SYNC_DATA, NULL), FR_OK);
	assert_int_equal(io_sync(f, FR_PERSIST_BUFFER, NULL), FR_OK);
	io_close(f);
	io_close(NULL);

	/* IO_EXCL on an existing file */
	f = NULL;
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_open(io, p, IO_RDWR | IO_CREATE | IO_EXCL, &f, &err), FR_INVALID);
	assert_null(f);
	assert_int_equal(err.sys_errno, EEXIST);

	/* read-only handles cannot write */
	f = open_ok(io, p, IO_RDONLY);
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_pwrite(f, "z", 1, 0, &err), FR_IO);
	assert_int_not_equal(err.sys_errno, 0);
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 8);
	io_close(f);

	/* IO_TRUNC empties it */
	f = open_ok(io, p, IO_RDWR | IO_TRUNC);
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 0);
	io_close(f);

	/* create inside a missing directory */
	pj(p, base, "nodir/f");
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_open(io, p, IO_RDWR | IO_CREATE, &f, &err), FR_NOT_FOUND);
	assert_int_equal(err.sys_errno, ENOENT);

	/* an unlinked file stays readable through an open handle */
	pj(p, base, "ghost");
	write_file(io, p, "boo", false);
	f = open_ok(io, p, IO_RDONLY);
	assert_int_equal(io_unlink(io, p, NULL), FR_OK);
	assert_false(exists(io, p));
	assert_int_equal(io_pread(f, buf, sizeof(buf), 0, &got, NULL), FR_OK);
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "boo", 3);
	io_close(f);
}

static void check_names(struct fr_io *io, const char *base)
{
	char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], l[PATH_MAX], sub[PATH_MAX];
	fr_error err = {0};
	pj(a, base, "a");
	pj(b, base, "b");
	pj(c, base, "c");
	pj(l, base, "l");
	pj(sub, base, "sub");

	assert_true(exists(io, base));
	assert_false(exists(io, a));
	write_file(io, a, "AAA", false);
	write_file(io, c, "CCC", false);
	assert_true(exists(io, a));

	/* rename to a new name, then over an existing one */
	assert_int_equal(io_rename(io, a, b, NULL), FR_OK);
	assert_false(exists(io, a));
	assert_contents(io, b, "AAA");
	assert_int_equal(io_rename(io, b, c, NULL), FR_OK);
	assert_false(exists(io, b));
	assert_contents(io, c, "AAA");
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(io_rename(io, a, b, &err), FR_OK);
	assert_int_equal(err.sys_errno, ENOENT);

	/* hard link: two names, one file */
	assert_int_equal(io_link(io, c, l, NULL), FR_OK);
	assert_contents(io, l, "AAA");
	struct io_file *f = open_ok(io, l, IO_RDWR);
	assert_int_equal(io_append(f, "+", 1, NULL), FR_OK);
	io_close(f);
	assert_contents(io, c, "AAA+");
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_link(io, c, l, &err), FR_IO);
	assert_int_equal(err.sys_errno, EEXIST);
	assert_int_equal(io_unlink(io, c, NULL), FR_OK);
	assert_contents(io, l, "AAA+");

	/* unlink of a missing file */
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_unlink(io, c, &err), FR_NOT_FOUND);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_non_null(strstr(err.msg, c));

	/* mkdir (twice is fine) and list */
	assert_int_equal(io_mkdir(io, sub, NULL), FR_OK);
	assert_int_equal(io_mkdir(io, sub, NULL), FR_OK);
	assert_true(exists(io, sub));
	char in_sub[PATH_MAX];
	write_file(io, pj(in_sub, sub, "x"), "X", false);
	write_file(io, a, "A", false);
	char got[256];
	list_sorted(io, base, got, sizeof(got));
	assert_string_equal(got, "a,f,l,sub");
	list_sorted(io, sub, got, sizeof(got));
	assert_string_equal(got, "x");
	struct names n = {.stop_after = 1};
	assert_int_equal(io_list(io, base, collect, &n, NULL), FR_OK);
	assert_int_equal(n.cnt, 1);
	char missing[PATH_MAX];
	memset(&err, 0, sizeof(err));
	pj(missing, base, "nodir");
	assert_int_equal(io_list(io, missing, collect, &n, &err), FR_NOT_FOUND);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_int_equal(io_sync_dir(io, base, NULL), FR_OK);
	assert_int_not_equal(io_sync_dir(io, missing, NULL), FR_OK);
	/* rmdir: only of an empty directory */
	write_file(io, in_sub, "X", false);
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_rmdir(io, sub, &err), FR_IO);
	assert_int_equal(err.sys_errno, ENOTEMPTY);
	assert_true(exists(io, in_sub));
	assert_int_equal(io_unlink(io, in_sub, NULL), FR_OK);
	list_sorted(io, sub, got, sizeof(got));
	assert_string_equal(got, "");
	assert_int_equal(io_rmdir(io, sub, NULL), FR_OK);
	assert_false(exists(io, sub));
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_rmdir(io, sub, &err), FR_NOT_FOUND);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_int_equal(io_rmdir(io, a, &err), FR_IO);
	assert_int_equal(err.sys_errno, ENOTDIR);
	assert_true(exists(io, a));
	assert_int_equal(io_mkdir(io, sub, NULL), FR_OK); /* made again, it is empty */
	list_sorted(io, sub, got, sizeof(got));
	assert_string_equal(got, "");
}

static void check_lock(struct fr_io *io, const char *base)
{
	char p[PATH_MAX];
	pj(p, base, "LOCK");
	struct io_file *l1 = NULL, *l2 = NULL;
	fr_error err = {0};
	assert_int_equal(io_lock(io, p, &l1, &err), FR_OK);
	assert_non_null(l1);
	assert_true(exists(io, p));
	assert_int_equal(io_lock(io, p, &l2, &err), FR_BUSY);
	assert_null(l2);
	assert_int_equal(err.code, FR_BUSY);
	assert_non_null(strstr(err.msg, p));
	io_close(l1);
	assert_int_equal(io_lock(io, p, &l2, NULL), FR_OK);
	io_close(l2);
}

static void check_small_files(struct fr_io *io, const char *base)
{
	char p[PATH_MAX], tmp[PATH_MAX];
	pj(p, base, "CURRENT");
	pj(tmp, base, "CURRENT.tmp");
	assert_int_equal(io_write_file_atomic(io, base, "CURRENT", "MANIFEST-000001\n", 16, NULL),
			 FR_OK);
	assert_contents(io, p, "MANIFEST-000001\n");
	assert_false(exists(io, tmp));
	assert_int_equal(io_write_file_atomic(io, base, "CURRENT", "M2", 2, NULL), FR_OK);
	assert_contents(io, p, "M2");
	assert_int_equal(io_write_file_atomic(io, base, "EMPTY", "", 0, NULL), FR_OK);
	assert_contents(io, pj(p, base, "EMPTY"), "");

	void *data = (void *)1;
	size_t len = 0;
	fr_error err = {0};
	assert_int_equal(io_read_file(io, pj(p, base, "nope"), &data, &len, &err), FR_NOT_FOUND);
	assert_null(data);

	/* io_pread_exact on a short file */
	pj(p, base, "short");
	write_file(io, p, "0123456789", false);
	struct io_file *f = open_ok(io, p, IO_RDONLY);
	char buf[32];
	assert_int_equal(io_pread_exact(f, p, buf, 4, 2, NULL), FR_OK);
	assert_memory_equal(buf, "2345", 4);
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_pread_exact(f, p, buf, 16, 4, &err), FR_CORRUPTION);
	assert_int_equal(err.code, FR_CORRUPTION);
	assert_int_equal(err.offset, 10);
	assert_non_null(strstr(err.msg, p));
	io_close(f);
}

static void check_all(struct fr_io *io, const char *base)
{
	check_open_read_write(io, base);
	check_names(io, base);
	check_lock(io, base);
	check_small_files(io, base);
}

/*
 * Fixtures: io_posix in a fresh temporary directory, io_mem (base /t), io_fault over io_mem.
 */

struct env {
	struct fr_io *io;    /* the io under test */
	struct fr_io *inner; /* io_fault's inner io, or NULL */
	char *tmp;	     /* posix temporary directory, or NULL */
	char base[PATH_MAX];
};

static int setup_posix(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->io = io_posix();
	e->tmp = tu_tmpdir("io");
	snprintf(e->base, sizeof(e->base), "%s", e->tmp);
	*state = e;
	return 0;
}

static int setup_mem(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->io = io_mem_new();
	assert_non_null(e->io);
	snprintf(e->base, sizeof(e->base), "/t");
	assert_int_equal(io_mkdir(e->io, e->base, NULL), FR_OK);
	*state = e;
	return 0;
}

static int setup_fault_mem(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->inner = io_mem_new();
	assert_non_null(e->inner);
	e->io = io_fault_new(e->inner);
	assert_non_null(e->io);
	snprintf(e->base, sizeof(e->base), "/t");
	assert_int_equal(io_mkdir(e->io, e->base, NULL), FR_OK);
	*state = e;
	return 0;
}

static int setup_fault_posix(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->inner = io_posix();
	e->io = io_fault_new(e->inner);
	assert_non_null(e->io);
	e->tmp = tu_tmpdir("iofault");
	snprintf(e->base, sizeof(e->base), "%s", e->tmp);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	io_destroy(e->io);
	io_destroy(e->inner);
	if (e->tmp) {
		tu_rmtree_free(e->tmp);
	}
	free(e);
	return 0;
}

static void test_io_posix_semantics(void **state)
{
	struct env *e = *state;
	check_all(e->io, e->base);
}

static void test_io_mem_semantics(void **state)
{
	struct env *e = *state;
	check_all(e->io, e->base);
}

static void test_io_fault_unarmed_semantics(void **state)
{
	struct env *e = *state;
	check_all(e->io, e->base);
}

/*
 * io_mem power cuts
 */

static void test_io_mem_power_cut(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char d[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
	pj(d, e->base, "db");
	assert_int_equal(io_mkdir(io, d, NULL), FR_OK);

	/* a, c, e, t and LOCK: contents synced, names made durable by sync_dir */
	struct io_file *fa = open_ok(io, pj(p, d, "a"), IO_RDWR | IO_CREATE);
	assert_int_equal(io_append(fa, "durable", 7, NULL), FR_OK);
	assert_int_equal(io_sync(fa, FR_PERSIST_SYNC_DATA, NULL), FR_OK);
	write_file(io, pj(p, d, "c"), "ccc", true);
	write_file(io, pj(p, d, "e"), "eee", true);
	write_file(io, pj(p, d, "t"), "old", true);
	struct io_file *lk = NULL, *lk2 = NULL;
	assert_int_equal(io_lock(io, pj(p, d, "LOCK"), &lk, NULL), FR_OK);
	assert_int_equal(io_sync_dir(io, d, NULL), FR_OK);

	/* unsynced bytes appended to a synced file */
	assert_int_equal(io_append(fa, "-lost", 5, NULL), FR_OK);
	/* a rename followed by sync_dir */
	assert_int_equal(io_rename(io, pj(p, d, "e"), pj(q, d, "e2"), NULL), FR_OK);
	assert_int_equal(io_sync_dir(io, d, NULL), FR_OK);
	/* a file whose contents were synced but whose directory was not */
	write_file(io, pj(p, d, "b"), "bbb", true);
	/* a rename without sync_dir */
	assert_int_equal(io_rename(io, pj(p, d, "c"), pj(q, d, "c2"), NULL), FR_OK);
	/* contents rewritten without a sync */
	write_file(io, pj(p, d, "t"), "brand new", false);

	char names[256];
	list_sorted(io, d, names, sizeof(names));
	assert_string_equal(names, "LOCK,a,b,c2,e2,t");
	assert_contents(io, pj(p, d, "a"), "durable-lost");

	io_mem_power_cut(io);

	list_sorted(io, d, names, sizeof(names));
	assert_string_equal(names, "LOCK,a,c,e2,t");
	assert_contents(io, pj(p, d, "a"), "durable");
	assert_false(exists(io, pj(p, d, "b")));
	assert_contents(io, pj(p, d, "c"), "ccc");
	assert_false(exists(io, pj(p, d, "c2")));
	assert_contents(io, pj(p, d, "e2"), "eee");
	assert_false(exists(io, pj(p, d, "e")));
	assert_contents(io, pj(p, d, "t"), "old");
	assert_true(exists(io, d)); /* directories are durable once created */
	assert_int_equal(io_mem_bytes(io), 7 + 3 + 3 + 3);

	/* handles from before the cut are stale; the lock was released */
	fr_error err = {0};
	char buf[16];
	size_t got;
	assert_int_equal(io_pread(fa, buf, sizeof(buf), 0, &got, &err), FR_IO);
	assert_int_equal(err.sys_errno, EIO);
	assert_int_equal(io_append(fa, "x", 1, NULL), FR_IO);
	assert_int_equal(io_sync(fa, FR_PERSIST_SYNC_DATA, NULL), FR_IO);
	uint64_t size;
	assert_int_equal(io_size(fa, &size, NULL), FR_IO);
	io_close(fa);
	assert_int_equal(io_lock(io, pj(p, d, "LOCK"), &lk2, NULL), FR_OK);
	io_close(lk);
	io_close(lk2);
	assert_contents(io, pj(p, d, "a"), "durable");

	/* the io is usable after the cut: write, sync, cut again */
	fa = open_ok(io, pj(p, d, "a"), IO_RDWR);
	assert_int_equal(io_append(fa, "+2", 2, NULL), FR_OK);
	assert_int_equal(io_sync(fa, FR_PERSIST_SYNC_DATA, NULL), FR_OK);
	io_close(fa);
	io_mem_power_cut(io);
	assert_contents(io, pj(p, d, "a"), "durable+2");
}

static void test_io_mem_power_cut_releases_locks(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char p[PATH_MAX];
	pj(p, e->base, "LOCK");
	struct io_file *lk = NULL, *lk2 = NULL;
	assert_int_equal(io_lock(io, p, &lk, NULL), FR_OK);
	assert_int_equal(io_sync_dir(io, e->base, NULL), FR_OK);
	assert_int_equal(io_lock(io, p, &lk2, NULL), FR_BUSY);
	io_mem_power_cut(io);
	assert_true(exists(io, p));
	assert_int_equal(io_lock(io, p, &lk2, NULL), FR_OK);
	io_close(lk); /* stale: must not release the new holder's lock */
	struct io_file *lk3 = NULL;
	assert_int_equal(io_lock(io, p, &lk3, NULL), FR_BUSY);
	io_close(lk2);
	assert_int_equal(io_lock(io, p, &lk3, NULL), FR_OK);
	io_close(lk3);
}

static void test_io_mem_unlink_durability(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char p[PATH_MAX], q[PATH_MAX];
	pj(p, e->base, "x");
	pj(q, e->base, "y");
	write_file(io, p, "xx", true);
	assert_int_equal(io_sync_dir(io, e->base, NULL), FR_OK);
	/* unlink without sync_dir comes back */
	assert_int_equal(io_unlink(io, p, NULL), FR_OK);
	io_mem_power_cut(io);
	assert_contents(io, p, "xx");
	/* unlink with sync_dir is gone; a link made durable keeps the file */
	assert_int_equal(io_link(io, p, q, NULL), FR_OK);
	assert_int_equal(io_unlink(io, p, NULL), FR_OK);
	assert_int_equal(io_sync_dir(io, e->base, NULL), FR_OK);
	io_mem_power_cut(io);
	assert_false(exists(io, p));
	assert_contents(io, q, "xx");
	/* truncate without sync is undone */
	struct io_file *f = open_ok(io, q, IO_RDWR);
	assert_int_equal(io_truncate(f, 0, NULL), FR_OK);
	assert_int_equal(io_mem_bytes(io), 0);
	io_close(f);
	io_mem_power_cut(io);
	assert_contents(io, q, "xx");
	assert_int_equal(io_mem_bytes(io), 2);
}

static void test_io_mem_bytes_and_open_unlinked(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char p[PATH_MAX];
	pj(p, e->base, "big");
	assert_int_equal(io_mem_bytes(io), 0);
	struct io_file *f = open_ok(io, p, IO_RDWR | IO_CREATE);
	char buf[4096];
	memset(buf, 7, sizeof(buf));
	for (int i = 0; i < 16; i++)
		assert_int_equal(io_append(f, buf, sizeof(buf), NULL), FR_OK);
	assert_int_equal(io_mem_bytes(io), 16 * 4096);
	assert_int_equal(io_unlink(io, p, NULL), FR_OK);
	assert_int_equal(io_mem_bytes(io), 16 * 4096); /* still open */
	io_close(f);
	assert_int_equal(io_mem_bytes(io), 0);
}

static void test_io_mem_dir_rename(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX];
	pj(a, e->base, "ckpt.tmp");
	pj(b, e->base, "ckpt");
	assert_int_equal(io_mkdir(io, a, NULL), FR_OK);
	write_file(io, pj(p, a, "f"), "F", true);
	assert_int_equal(io_sync_dir(io, a, NULL), FR_OK);
	assert_int_equal(io_rename(io, a, b, NULL), FR_OK);
	assert_false(exists(io, a));
	assert_contents(io, pj(p, b, "f"), "F");
	io_mem_power_cut(io);
	assert_contents(io, pj(p, b, "f"), "F");
	/* odd spellings of a path name the same file */
	assert_contents(io, pj(p, e->base, "/ckpt/./f"), "F");
	assert_contents(io, pj(p, e->base, "x/../ckpt/f/"), "F");
}

/*
 * io_fault
 */

static void test_io_fault_nth_write(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char p[PATH_MAX];
	struct io_file *f = open_ok(io, pj(p, e->base, "w"), IO_RDWR | IO_CREATE);
	io_fault_arm(io, IO_FAULT_WRITE, 3, EIO, false);
	assert_int_equal(io_append(f, "1", 1, NULL), FR_OK);
	assert_int_equal(io_pwrite(f, "2", 1, 1, NULL), FR_OK);
	fr_error err = {0};
	assert_int_equal(io_append(f, "3", 1, &err), FR_IO);
	assert_int_equal(err.code, FR_IO);
	assert_int_equal(err.sys_errno, EIO);
	assert_non_null(strstr(err.msg, p));
	uint64_t size = 0;
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 2); /* the failed write did nothing */
	assert_int_equal(io_append(f, "4", 1, NULL), FR_OK);
	assert_int_equal(io_append(f, "5", 1, NULL), FR_OK);
	io_close(f);
	assert_contents(io, p, "1245");
	assert_int_equal(io_fault_injected(io), 1);
	assert_int_equal(io_fault_count(io, IO_FAULT_WRITE), 5);
}

static void test_io_fault_sticky(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char p[PATH_MAX];
	struct io_file *f = open_ok(io, pj(p, e->base, "s"), IO_RDWR | IO_CREATE);
	io_fault_arm(io, IO_FAULT_WRITE, 2, EIO, true);
	assert_int_equal(io_append(f, "a", 1, NULL), FR_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(io_append(f, "b", 1, NULL), FR_IO);
	assert_int_equal(io_fault_injected(io), 5);
	/* other kinds are not affected */
	assert_int_equal(io_sync(f, FR_PERSIST_SYNC_DATA, NULL), FR_OK);
	io_fault_clear(io);
	assert_int_equal(io_append(f, "c", 1, NULL), FR_OK);
	io_close(f);
	assert_contents(io, p, "ac");

	/* n = 0 disarms */
	f = open_ok(io, p, IO_RDWR);
	io_fault_arm(io, IO_FAULT_WRITE, 1, EIO, true);
	io_fault_arm(io, IO_FAULT_WRITE, 0, EIO, true);
	assert_int_equal(io_append(f, "d", 1, NULL), FR_OK);
	io_close(f);
}

static void test_io_fault_enospc(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	char p[PATH_MAX];
	struct io_file *f = open_ok(io, pj(p, e->base, "full"), IO_RDWR | IO_CREATE);
	io_fault_set_space(io, 10);
	assert_int_equal(io_append(f, "012345", 6, NULL), FR_OK);
	fr_error err = {0};
	assert_int_equal(io_append(f, "abcde", 5, &err), FR_NO_SPACE);
	assert_int_equal(err.code, FR_NO_SPACE);
	assert_int_equal(err.sys_errno, ENOSPC);
	uint64_t size = 0;
	assert_int_equal(io_size(f, &size, NULL), FR_OK);
	assert_int_equal(size, 6); /* nothing of the write that did not fit */
	assert_int_equal(io_pwrite(f, "6789", 4, 6, NULL), FR_OK); /* fits exactly */
	assert_int_equal(io_append(f, "x", 1, NULL), FR_NO_SPACE);
	assert_int_equal(io_append(f, "", 0, NULL), FR_OK);
	assert_int_equal(io_fault_injected(io), 2);
	io_fault_set_space(io, UINT64_MAX);
	assert_int_equal(io_append(f, "!", 1, NULL), FR_OK);
	io_close(f);
	assert_contents(io, p, "0123456789!");

	/* an armed ENOSPC is FR_NO_SPACE too, for any kind */
	io_fault_arm(io, IO_FAULT_SYNC, 1, ENOSPC, false);
	memset(&err, 0, sizeof(err));
	assert_int_equal(io_sync_dir(io, e->base, &err), FR_NO_SPACE);
	assert_int_equal(err.sys_errno, ENOSPC);
}

/* A small workload: returns the first failure (or FR_OK), with err filled. */
static fr_status workload(struct fr_io *io, const char *base, fr_error *err)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct io_file *f;
	char buf[8];
	size_t got;
	pj(p, base, "wl");
	pj(q, base, "wl2");
	fr_status rc = io_open(io, p, IO_RDWR | IO_CREATE | IO_TRUNC, &f, err); /* OPEN 1 */
	if (rc)
		return rc;
	rc = io_append(f, "abc", 3, err); /* WRITE 1 */
	if (!rc)
		rc = io_pwrite(f, "d", 1, 3, err); /* WRITE 2 */
	if (!rc)
		rc = io_append(f, "e", 1, err); /* WRITE 3 */
	if (!rc)
		rc = io_sync(f, FR_PERSIST_SYNC_DATA, err); /* SYNC 1 */
	if (!rc)
		rc = io_pread(f, buf, sizeof(buf), 0, &got, err); /* READ 1 */
	io_close(f);
	if (rc)
		return rc;
	rc = io_rename(io, p, q, err); /* RENAME 1 */
	if (!rc)
		rc = io_sync_dir(io, base, err); /* SYNC 2 */
	if (!rc)
		rc = io_open(io, q, IO_RDONLY, &f, err); /* OPEN 2 */
	if (rc)
		return rc;
	rc = io_pread(f, buf, 5, 0, &got, err); /* READ 2 */
	if (!rc && (got != 5 || memcmp(buf, "abcde", 5)))
		rc = FR_CORRUPTION;
	io_close(f);
	if (!rc)
		rc = io_unlink(io, q, err); /* UNLINK 1 */
	return rc;
}

static void test_io_fault_counters(void **state)
{
	struct env *e = *state;
	struct fr_io *io = e->io;
	static const uint64_t expect[IO_FAULT_KIND_CNT] = {
		[IO_FAULT_OPEN] = 2,   [IO_FAULT_READ] = 2,   [IO_FAULT_WRITE] = 3,
		[IO_FAULT_SYNC] = 2,   [IO_FAULT_RENAME] = 1, [IO_FAULT_UNLINK] = 1,
	};
	io_fault_reset_counts(io);
	assert_int_equal(workload(io, e->base, NULL), FR_OK);
	for (int k = 0; k < IO_FAULT_KIND_CNT; k++)
		assert_int_equal(io_fault_count(io, (enum io_fault_kind)k), expect[k]);
	assert_int_equal(workload(io, e->base, NULL), FR_OK);
	assert_int_equal(io_fault_count(io, IO_FAULT_WRITE), 2 * expect[IO_FAULT_WRITE]);
	io_fault_reset_counts(io);
	assert_int_equal(io_fault_count(io, IO_FAULT_WRITE), 0);
	assert_int_equal(io_fault_injected(io), 0);

	/* the fault loop: every counted call of every kind, failed in turn */
	uint64_t injected = 0;
	for (int k = 0; k < IO_FAULT_KIND_CNT; k++) {
		uint64_t n;
		for (n = 1;; n++) {
			io_fault_arm(io, (enum io_fault_kind)k, n, EIO, false);
			fr_error err = {0};
			fr_status rc = workload(io, e->base, &err);
			if (rc == FR_OK)
				break;
			assert_int_equal(rc, FR_IO);
			assert_int_equal(err.sys_errno, EIO);
			assert_non_null(strstr(err.msg, "injected"));
			assert_int_equal(io_fault_count(io, (enum io_fault_kind)k), n);
			assert_int_equal(io_fault_injected(io), ++injected);
		}
		assert_int_equal(n, expect[k] + 1);
		assert_int_equal(io_fault_injected(io), injected);
		io_fault_arm(io, (enum io_fault_kind)k, 0, 0, false);
	}
	assert_int_equal(workload(io, e->base, NULL), FR_OK);
}

static int count_names(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
	return 0;
}

/* io_mem under allocation failures: every failure is FR_NOMEM, and nothing leaks or breaks */
static void test_io_mem_alloc_failures(void **state)
{
	(void)state;
	unsigned long n;
	for (n = 1;; n++) {
		struct fr_io *io = io_mem_new();
		if (!io)
			continue; /* the first allocation was the io itself */
		assert_int_equal(io_mkdir(io, "/d", NULL), FR_OK);
		fr_alloc_fail_at(n);
		fr_status rc = workload(io, "/d", NULL);
		if (!rc)
			rc = io_write_file_atomic(io, "/d", "CURRENT", "abc", 3, NULL);
		int cnt = 0;
		if (!rc)
			rc = io_list(io, "/d", count_names, &cnt, NULL);
		struct io_file *lk = NULL;
		if (!rc)
			rc = io_lock(io, "/d/LOCK", &lk, NULL);
		io_close(lk);
		if (!rc)
			rc = io_link(io, "/d/CURRENT", "/d/C2", NULL);
		bool done = fr_alloc_count() < n;
		fr_alloc_fail_at(0);
		if (rc)
			assert_int_equal(rc, FR_NOMEM);
		else
			assert_int_equal(cnt, 1);
		io_mem_power_cut(io);
		if (!rc) {
			assert_contents(io, "/d/CURRENT", "abc");
			assert_int_equal(io_mem_bytes(io), 3);
		}
		io_destroy(io);
		if (done) {
			assert_int_equal(rc, FR_OK);
			break;
		}
	}
	assert_true(n > 5);
}

struct thread_arg {
	struct fr_io *io;
	const char *base;
	int id;
	int failures;
};

#define THREAD_CNT 4
#define THREAD_ROUNDS 200

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	char path[PATH_MAX], dst[PATH_MAX], name[32];
	for (int i = 0; i < THREAD_ROUNDS; i++) {
		snprintf(name, sizeof(name), "t%d-%d", a->id, i % 3);
		pj(path, a->base, name);
		snprintf(name, sizeof(name), "t%d-final", a->id);
		pj(dst, a->base, name);
		struct io_file *f;
		if (io_open(a->io, path, IO_RDWR | IO_CREATE | IO_TRUNC, &f, NULL)) {
			a->failures++;
			continue;
		}
		char buf[8] = {(char)a->id, (char)i};
		size_t got = 0;
		if (io_append(f, buf, 2, NULL) || io_sync(f, FR_PERSIST_SYNC_DATA, NULL) ||
		    io_pread(f, buf + 2, 2, 0, &got, NULL) || got != 2 || buf[2] != (char)a->id)
			a->failures++;
		io_close(f);
		if (io_rename(a->io, path, dst, NULL) || io_sync_dir(a->io, a->base, NULL))
			a->failures++;
	}
	return NULL;
}

static void test_io_mem_threads(void **state)
{
	struct env *e = *state;
	pthread_t th[THREAD_CNT];
	struct thread_arg args[THREAD_CNT];
	io_fault_reset_counts(e->io);
	for (int i = 0; i < THREAD_CNT; i++) {
		args[i] = (struct thread_arg){.io = e->io, .base = e->base, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < THREAD_CNT; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(io_fault_count(e->io, IO_FAULT_WRITE), THREAD_CNT * THREAD_ROUNDS);
	assert_int_equal(io_fault_count(e->io, IO_FAULT_SYNC), 2 * THREAD_CNT * THREAD_ROUNDS);
	char names[256];
	list_sorted(e->io, e->base, names, sizeof(names));
	assert_string_equal(names, "t0-final,t1-final,t2-final,t3-final");
	io_mem_power_cut(e->inner);
	list_sorted(e->io, e->base, names, sizeof(names));
	assert_string_equal(names, "t0-final,t1-final,t2-final,t3-final");
	assert_int_equal(io_mem_bytes(e->inner), THREAD_CNT * 2);
}

#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_io_posix_semantics, setup_posix),
		T(test_io_mem_semantics, setup_mem),
		T(test_io_fault_unarmed_semantics, setup_fault_mem),
		T(test_io_mem_power_cut, setup_mem),
		T(test_io_mem_power_cut_releases_locks, setup_mem),
		T(test_io_mem_unlink_durability, setup_mem),
		T(test_io_mem_bytes_and_open_unlinked, setup_mem),
		T(test_io_mem_dir_rename, setup_mem),
		T(test_io_fault_nth_write, setup_fault_posix),
		T(test_io_fault_sticky, setup_fault_mem),
		T(test_io_fault_enospc, setup_fault_mem),
		T(test_io_fault_counters, setup_fault_mem),
		cmocka_unit_test(test_io_mem_alloc_failures),
		T(test_io_mem_threads, setup_fault_mem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
