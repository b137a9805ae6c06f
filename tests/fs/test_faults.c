/* SPDX-License-Identifier: MIT */
/*
 * test_faults.c - fractiofs when things go wrong, checked on the mount and in the store itself
 * (opened with libfractio between mounts, schema in fs/SCHEMA.md):
 *  - a file unlinked while open, then the daemon SIGKILLed: the orphan is in the store, and the
 *    next mount reclaims it (its inode, its chunks and its orphan entry go);
 *  - names removed (unlink, rmdir, rename over) while the kernel still holds the inodes but no
 *    handle is open: the inodes are gone from the store at once, no orphan left even when the
 *    daemon is SIGKILLed right after, and the kernel's late requests get sane answers;
 *  - a file unlinked while open and then closed: reclaimed at the close, before any unmount;
 *  - a corrupt inode record: that file gives EIO, its neighbours work, the daemon stays up;
 *  - a full disk (the store on a small tmpfs): the failing call gets ENOSPC, what was written
 *    before stays intact, and once space is freed a new mount shows a consistent tree.
 * Needs the daemon and /dev/fuse (skips otherwise); the full-disk test also needs to mount a
 * tmpfs (root), and skips without it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fractio.h"
#include "mountutil.h"
#include "testutil.h"

#define OK(x) assert_int_equal((x), FR_OK)

/* Incompressible bytes, so that a full disk is reached by volume. */
static void pattern(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(tu_rand(&s) >> 56);
}

static void write_file(const char *path, size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len);
	assert_non_null(b);
	pattern(b, len, seed);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, len), (ssize_t)len);
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(close(fd), 0);
	free(b);
}

static void check_file(const char *path, size_t len, uint64_t seed)
{
	uint8_t *want = malloc(len + 1), *got = malloc(len + 1);
	assert_true(want && got);
	pattern(want, len, seed);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, len + 1), (ssize_t)len);
	assert_memory_equal(got, want, len);
	close(fd);
	free(want);
	free(got);
}

/* Opens the store of a stopped mount with the library. */
static fr_db *store_open(const struct mnt *m)
{
	fr_db_options o;
	fr_db_options_init(&o);
	o.create_if_missing = false;
	fr_db *db = NULL;
	fr_error e;
	if (fr_db_open(m->store, &o, &db, &e))
		fail_msg("opening the store %s: %s", m->store, e.msg);
	return db;
}

static uint64_t ks_count(fr_db *db, const char *name)
{
	fr_keyspace *ks;
	uint64_t n = 0;
	OK(fr_keyspace_open(db, name, NULL, &ks, NULL));
	OK(fr_len(ks, &n, NULL));
	fr_keyspace_close(ks);
	return n;
}

/* The inode number a name of the root directory points at (dir.1, SCHEMA.md §5). */
static uint64_t root_entry_ino(fr_db *db, const char *name)
{
	fr_keyspace *ks;
	void *v;
	size_t n;
	OK(fr_keyspace_open(db, "dir.1", NULL, &ks, NULL));
	OK(fr_get(ks, name, strlen(name), &v, &n, NULL));
	assert_int_equal(n, 9);
	uint64_t ino = 0;
	for (int i = 7; i >= 0; i--)
		ino = ino << 8 | ((uint8_t *)v)[i]; /* u64, little-endian */
	fr_free(v);
	fr_keyspace_close(ks);
	return ino;
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void test_orphan_reclaimed_after_crash(void **state)
{
	(void)state;
	struct mnt m;
	char p[PATH_MAX];
	assert_int_equal(mnt_setup(&m, "orphan"), 0);
	assert_int_equal(mnt_start(&m), 0);
	write_file(mnt_path(&m, "keep", p), 100000, 1);
	write_file(mnt_path(&m, "gone", p), 3u << 20, 2); /* chunks in the data keyspace */
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(unlink(p), 0);
	/* still readable through the open descriptor */
	uint8_t b[16];
	assert_int_equal(pread(fd, b, sizeof(b), 1u << 20), (ssize_t)sizeof(b));
	assert_int_equal(mnt_kill(&m), 0);
	close(fd);

	/* the crash left the orphan and its chunks behind */
	fr_db *db = store_open(&m);
	assert_int_equal(ks_count(db, "orphans"), 1);
	uint64_t chunks = ks_count(db, "data");
	assert_true(chunks >= 3u << 20 >> 16);
	OK(fr_db_close(db, NULL));

	/* the next mount reclaims it */
	assert_int_equal(mnt_start(&m), 0);
	check_file(mnt_path(&m, "keep", p), 100000, 1);
	struct stat st;
	assert_int_equal(stat(mnt_path(&m, "gone", p), &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(mnt_stop(&m), 0);
	db = store_open(&m);
	assert_int_equal(ks_count(db, "orphans"), 0);
	assert_true(ks_count(db, "data") < chunks); /* "keep" is inline or a few chunks */
	assert_int_equal(ks_count(db, "inodes"), 2); /* the root and "keep" */
	OK(fr_db_close(db, NULL));
	mnt_teardown(&m);
}

/* Inodes in use as statfs counts them (f_files - f_ffree). */
static unsigned long used_inodes(const char *path)
{
	struct statvfs sv;
	assert_int_equal(statvfs(path, &sv), 0);
	return (unsigned long)(sv.f_files - sv.f_ffree);
}

static void test_unlink_drops_inode_at_once(void **state)
{
	(void)state;
	struct mnt m;
	char p[PATH_MAX], q[PATH_MAX];
	struct stat st;
	assert_int_equal(mnt_setup(&m, "drop"), 0);
	assert_int_equal(mnt_start(&m), 0);
	write_file(mnt_path(&m, "big", p), 3u << 20, 3); /* chunks */
	assert_int_equal(setxattr(p, "user.k", "v", 1, 0), 0);
	write_file(mnt_path(&m, "small", p), 100, 4);   /* inline */
	write_file(mnt_path(&m, "over", p), 200000, 5);
	write_file(mnt_path(&m, "src", p), 10, 6);
	assert_int_equal(mkdir(mnt_path(&m, "d", p), 0755), 0);
	/* O_PATH descriptors: the kernel keeps the inodes, but no handle is open (no OPEN) */
	int big = open(mnt_path(&m, "big", p), O_PATH);
	int over = open(mnt_path(&m, "over", p), O_PATH);
	int dir = open(mnt_path(&m, "d", p), O_PATH | O_DIRECTORY);
	assert_true(big >= 0 && over >= 0 && dir >= 0);
	assert_int_equal(unlink(mnt_path(&m, "big", p)), 0);
	assert_int_equal(unlink(mnt_path(&m, "small", p)), 0);
	assert_int_equal(rename(mnt_path(&m, "src", p), mnt_path(&m, "over", q)), 0);
	assert_int_equal(rmdir(mnt_path(&m, "d", p)), 0);
	/* what the kernel may still ask gets the last attributes, not an error */
	assert_int_equal(fstat(big, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(st.st_size, 3u << 20);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(fstat(over, &st), 0);
	assert_int_equal(st.st_size, 200000);
	assert_int_equal(fstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* no failed time flush was recorded against the filesystem */
	int root = open(m.dir, O_RDONLY | O_DIRECTORY);
	assert_true(root >= 0);
	assert_int_equal(syncfs(root), 0);
	close(root);
	/* reopening through the descriptor finds nothing, and creates nothing */
	char fdpath[64];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", big);
	assert_int_equal(open(fdpath, O_RDONLY), -1);
	check_file(mnt_path(&m, "over", p), 10, 6);
	assert_int_equal(used_inodes(m.dir), 2); /* the root and "over" */
	/* killed with the kernel still holding all three: nothing is left to reclaim */
	assert_int_equal(mnt_kill(&m), 0);
	close(big);
	close(over);
	close(dir);
	fr_db *db = store_open(&m);
	assert_int_equal(ks_count(db, "orphans"), 0);
	assert_int_equal(ks_count(db, "inodes"), 2);
	assert_int_equal(ks_count(db, "data"), 0); /* "over" is inline now */
	assert_int_equal(ks_count(db, "xattr"), 0);
	OK(fr_db_close(db, NULL));
	assert_int_equal(mnt_start(&m), 0);
	check_file(mnt_path(&m, "over", p), 10, 6);
	assert_int_equal(stat(mnt_path(&m, "big", p), &st), -1);
	assert_int_equal(stat(mnt_path(&m, "d", p), &st), -1);
	assert_int_equal(mnt_stop(&m), 0);
	mnt_teardown(&m);
}

static void test_unlinked_open_file_reclaimed_at_close(void **state)
{
	(void)state;
	struct mnt m;
	char p[PATH_MAX];
	struct stat st;
	assert_int_equal(mnt_setup(&m, "close"), 0);
	assert_int_equal(mnt_start(&m), 0);
	write_file(mnt_path(&m, "f", p), 3u << 20, 7);
	int keep = open(p, O_PATH); /* the kernel holds the inode after the close too */
	int fd = open(p, O_RDONLY);
	assert_true(keep >= 0 && fd >= 0);
	assert_int_equal(unlink(p), 0);
	/* readable until closed */
	uint8_t *want = malloc(3u << 20), *got = malloc(3u << 20);
	assert_true(want && got);
	pattern(want, 3u << 20, 7);
	assert_int_equal(pread(fd, got, 3u << 20, 0), (ssize_t)(3u << 20));
	assert_memory_equal(got, want, 3u << 20);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(used_inodes(m.dir), 2);
	assert_int_equal(close(fd), 0);
	/* the release reaches the daemon after close() returns: wait for the reclaim */
	for (int i = 0; i < 1000 && used_inodes(m.dir) != 1; i++)
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	assert_int_equal(used_inodes(m.dir), 1);
	assert_int_equal(fstat(keep, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(mnt_kill(&m), 0);
	close(keep);
	fr_db *db = store_open(&m);
	assert_int_equal(ks_count(db, "orphans"), 0);
	assert_int_equal(ks_count(db, "inodes"), 1);
	assert_int_equal(ks_count(db, "data"), 0);
	OK(fr_db_close(db, NULL));
	free(want);
	free(got);
	mnt_teardown(&m);
}

static void test_corrupt_inode_eio(void **state)
{
	(void)state;
	struct mnt m;
	char p[PATH_MAX];
	assert_int_equal(mnt_setup(&m, "corrupt"), 0);
	assert_int_equal(mnt_start(&m), 0);
	write_file(mnt_path(&m, "bad", p), 5000, 3);
	write_file(mnt_path(&m, "good", p), 200000, 4);
	assert_int_equal(mnt_stop(&m), 0);

	fr_db *db = store_open(&m);
	uint64_t ino = root_entry_ino(db, "bad");
	fr_keyspace *ks;
	OK(fr_keyspace_open(db, "inodes", NULL, &ks, NULL));
	uint8_t k[8];
	be64(k, ino);
	OK(fr_put(ks, k, 8, "garbage", 7, NULL));
	fr_keyspace_close(ks);
	OK(fr_db_close(db, NULL));

	assert_int_equal(mnt_start(&m), 0);
	struct stat st;
	assert_int_equal(stat(mnt_path(&m, "bad", p), &st), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(open(p, O_RDONLY), -1);
	assert_int_equal(errno, EIO);
	/* its neighbour, the directory and the daemon are fine */
	check_file(mnt_path(&m, "good", p), 200000, 4);
	DIR *d = opendir(m.dir);
	assert_non_null(d);
	int names = 0;
	for (struct dirent *e; (e = readdir(d));)
		names += !strcmp(e->d_name, "good") || !strcmp(e->d_name, "bad");
	closedir(d);
	assert_int_equal(names, 2);
	write_file(mnt_path(&m, "new", p), 1000, 5);
	check_file(p, 1000, 5);
	assert_int_equal(mnt_stop(&m), 0);
	mnt_teardown(&m);
}

static void test_full_disk(void **state)
{
	(void)state;
	struct mnt m;
	char p[PATH_MAX], small[PATH_MAX], ballast[PATH_MAX + 16];
	assert_int_equal(mnt_setup(&m, "enospc"), 0);
	/* the store goes on a 48 MiB tmpfs mounted over the store directory */
	snprintf(small, sizeof(small), "%s", m.store);
	if (mount("tmpfs", small, "tmpfs", 0, "size=48m") != 0) {
		fprintf(stderr, "# full-disk test skipped: cannot mount a tmpfs (%s)\n",
			strerror(errno));
		mnt_teardown(&m);
		skip();
	}
	snprintf(ballast, sizeof(ballast), "%s/ballast", small);
	int bfd = open(ballast, O_CREAT | O_WRONLY, 0600);
	assert_true(bfd >= 0);
	uint8_t *buf = malloc(1u << 20);
	assert_non_null(buf);
	memset(buf, 0xb, 1u << 20);
	for (int i = 0; i < 8; i++)
		assert_int_equal(write(bfd, buf, 1u << 20), 1 << 20);
	close(bfd);

	assert_int_equal(mnt_start(&m), 0);
	write_file(mnt_path(&m, "keep", p), 300000, 6);
	/* 1 MiB pieces, each synced, until the disk is full */
	int fd = open(mnt_path(&m, "fill", p), O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	size_t acked = 0;
	int err = 0;
	for (int i = 0; i < 200 && !err; i++) {
		pattern(buf, 1u << 20, 7 + (uint64_t)i);
		if (write(fd, buf, 1u << 20) != 1 << 20 || fsync(fd) != 0)
			err = errno;
		else
			acked += 1u << 20;
	}
	close(fd);
	if (err != ENOSPC) {
		char cmd[3 * PATH_MAX + 64];
		snprintf(cmd, sizeof(cmd), "df -h %s; ls -la %s %s/journal >&2", small, small, small);
		(void)!system(cmd);
		fprintf(stderr, "# acked %zu, err %d\n", acked, err);
	}
	assert_int_equal(err, ENOSPC);
	assert_true(acked > 0);
	/* what was written before is intact and the daemon answers */
	check_file(mnt_path(&m, "keep", p), 300000, 6);
	struct stat st;
	assert_int_equal(stat(mnt_path(&m, "fill", p), &st), 0);
	mnt_stop(&m); /* may report the failed flush: the store refused writes since */

	/* space comes back: a new mount shows both files, "fill" whole up to a size at least
	 * what was acknowledged */
	assert_int_equal(unlink(ballast), 0);
	assert_int_equal(mnt_start(&m), 0);
	check_file(mnt_path(&m, "keep", p), 300000, 6);
	assert_int_equal(stat(mnt_path(&m, "fill", p), &st), 0);
	assert_true((size_t)st.st_size >= acked);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	for (size_t off = 0; off < acked; off += 1u << 20) {
		uint8_t *want = malloc(1u << 20);
		assert_non_null(want);
		pattern(want, 1u << 20, 7 + off / (1u << 20));
		assert_int_equal(pread(fd, buf, 1u << 20, (off_t)off), 1 << 20);
		assert_memory_equal(buf, want, 1u << 20);
		free(want);
	}
	close(fd);
	/* and it takes writes again */
	write_file(mnt_path(&m, "after", p), 4096, 8);
	check_file(p, 4096, 8);
	assert_int_equal(mnt_stop(&m), 0);
	free(buf);
	umount2(small, MNT_DETACH);
	mnt_teardown(&m);
}

int main(void)
{
	int rc = mnt_require_fuse();
	if (rc)
		return rc;
	if (getenv("FRACTIO_TEST_DIR")) {
		fprintf(stderr, "# test_faults needs the daemon: skipped in plain-directory mode\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orphan_reclaimed_after_crash),
		cmocka_unit_test(test_unlink_drops_inode_at_once),
		cmocka_unit_test(test_unlinked_open_file_reclaimed_at_close),
		cmocka_unit_test(test_corrupt_inode_eio),
		cmocka_unit_test(test_full_disk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
