/* SPDX-License-Identifier: MIT */
/*
 * test_posix.c - POSIX (and Linux) behaviour of fractiofs, checked through the kernel: every
 * operation the daemon serves, with the results and errno values that Linux's own filesystems
 * give. The same binary runs on a plain directory when $FRACTIO_TEST_DIR is set (mountutil.h),
 * which is how the expectations here are checked against ext4 and tmpfs.
 *
 * One cmocka group: the daemon is mounted once (as root with allow_other, so that children that
 * switch to an unprivileged uid may use the mount) and every test works in its own directory.
 * Checks that need another uid run in a forked child (as_user), which reports failures on stderr
 * and through its exit status, never through cmocka. Tests that need root skip otherwise.
 * $FRACTIO_TEST_OPTS adds mount options (e.g. "sync" or "no_writeback"); FR_SEED repeats the
 * random parts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

#define OLD_SEC 1000000000L /* 2001-09-09: "long ago" for the time-update checks */
#define NOBODY 65534	    /* the unprivileged uid and gid of the as_user children */
#define OTHER_GID 4242	    /* a group that NOBODY is not in */
#define KiB 1024
#define MiB (1024 * 1024)

static struct mnt M;
static bool is_root;

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

/* expr must succeed (>= 0); evaluates to its value. */
#define OK(expr)                                                                              \
	({                                                                                    \
		errno = 0;                                                                    \
		__typeof__(expr) ok_r = (expr);                                               \
		if (ok_r < 0)                                                                 \
			fail_msg("%s failed: %s (%s)", #expr, ename(errno), strerror(errno)); \
		ok_r;                                                                         \
	})

/* expr must fail with -1 and errno eno. */
#define ERR(expr, eno)                                                                       \
	do {                                                                                 \
		errno = 0;                                                                   \
		__typeof__(expr) err_r = (expr);                                             \
		int err_e = errno;                                                           \
		if (err_r != -1 || err_e != (eno))                                           \
			print_error("%s: returned %lld errno %s, want -1 errno %s\n", #expr, \
				    (long long)err_r, ename(err_e), ename(eno));             \
		assert_int_equal(err_r, -1);                                                 \
		assert_int_equal(err_e, (eno));                                              \
	} while (0)

/* In an as_user child: report and exit 1 instead of asserting. */
#define C_OK(expr)                                                                           \
	do {                                                                                 \
		errno = 0;                                                                   \
		if ((expr) < 0) {                                                            \
			fprintf(stderr, "child %s:%d: %s failed: %s\n", __FILE__, __LINE__,  \
				#expr, ename(errno));                                        \
			return 1;                                                            \
		}                                                                            \
	} while (0)
#define C_ERR(expr, eno)                                                                      \
	do {                                                                                  \
		errno = 0;                                                                    \
		long long c_r = (expr);                                                       \
		int c_e = errno;                                                              \
		if (c_r != -1 || c_e != (eno)) {                                              \
			fprintf(stderr, "child %s:%d: %s: returned %lld errno %s, want %s\n", \
				__FILE__, __LINE__, #expr, c_r, ename(c_e), ename(eno));      \
			return 1;                                                             \
		}                                                                             \
	} while (0)
#define C_TRUE(cond)                                                                          \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "child %s:%d: %s is false\n", __FILE__, __LINE__, #cond); \
			return 1;                                                             \
		}                                                                             \
	} while (0)

static void vpath(char *out, const char *fmt, va_list ap)
{
	char rel[PATH_MAX];
	int n = vsnprintf(rel, sizeof(rel), fmt, ap);

	if (n < 0 || n >= (int)sizeof(rel))
		abort();
	mnt_path(&M, rel, out);
}

/* The path of rel (printf-formatted) inside the mount, into out (PATH_MAX). Thread-safe. */
static char *PJ(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *PJ(char *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vpath(out, fmt, ap);
	va_end(ap);
	return out;
}

/* The same in one of 16 rotating buffers: main thread only. */
static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
	static char bufs[16][PATH_MAX];
	static unsigned next;
	char *out = bufs[next++ % 16];
	va_list ap;

	va_start(ap, fmt);
	vpath(out, fmt, ap);
	va_end(ap);
	return out;
}

static void pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(tu_rand(&s) >> 56);
}

/* Buffers of the current test, freed by test_teardown when a failure skips the test's free. */
static void *test_bufs[16];

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	assert_non_null(p);
	for (int i = 0; i < 16; i++) {
		if (!test_bufs[i]) {
			test_bufs[i] = p;
			break;
		}
	}
	return p;
}

static void xfree(void *p)
{
	for (int i = 0; i < 16; i++) {
		if (test_bufs[i] == p)
			test_bufs[i] = NULL;
	}
	free(p);
}

static void write_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = OK(pwrite(fd, p, len, off));

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
		off += n;
	}
}

/* Reads up to len bytes at off, looping over short reads; returns the count (short at EOF). */
static size_t read_all(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = OK(pread(fd, p + got, len - got, off + (off_t)got));

		if (n == 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void put(const char *path, const void *buf, size_t len)
{
	int fd = OK(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));

	write_all(fd, buf, len, 0);
	OK(close(fd));
}

static void put_str(const char *path, const char *s)
{
	put(path, s, strlen(s));
}

/* The whole file must be exactly want[0..len). */
static void expect_content(const char *path, const void *want, size_t len)
{
	int fd = OK(open(path, O_RDONLY));
	unsigned char *got = xmalloc(len + 1);
	size_t n = read_all(fd, got, len + 1, 0);
	struct stat st;

	OK(fstat(fd, &st));
	OK(close(fd));
	assert_int_equal(st.st_size, len);
	assert_int_equal(n, len);
	if (len && memcmp(got, want, len) != 0) {
		size_t i = 0;

		while (got[i] == ((const unsigned char *)want)[i])
			i++;
		fail_msg("%s differs first at byte %zu (got 0x%02x want 0x%02x)", path, i, got[i],
			 ((const unsigned char *)want)[i]);
	}
	xfree(got);
}

static void expect_str(const char *path, const char *s)
{
	expect_content(path, s, strlen(s));
}

static bool all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i])
			return false;
	}
	return true;
}

static struct stat st_of(const char *path)
{
	struct stat st;

	OK(stat(path, &st));
	return st;
}

static struct stat lst_of(const char *path)
{
	struct stat st;

	OK(lstat(path, &st));
	return st;
}

static void set_times(const char *path, long sec)
{
	struct timespec ts[2] = { { sec, 0 }, { sec, 0 } };

	OK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW));
}

static int ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	if (a.tv_nsec != b.tv_nsec)
		return a.tv_nsec < b.tv_nsec ? -1 : 1;
	return 0;
}

static struct timespec now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* t is "now" as a filesystem sets it: within slack_s seconds of [lo, hi] (clock granularity). */
static void assert_time_near(struct timespec t, struct timespec lo, struct timespec hi,
			     long slack_s)
{
	if (t.tv_sec < lo.tv_sec - slack_s || t.tv_sec > hi.tv_sec + slack_s)
		fail_msg("time %lld.%09ld not within [%lld, %lld] +- %ld s", (long long)t.tv_sec,
			 t.tv_nsec, (long long)lo.tv_sec, (long long)hi.tv_sec, slack_s);
}

/* Runs fn(arg) in a child with uid/gid (and no supplementary groups); its exit status. */
static int as_user(uid_t uid, gid_t gid, int (*fn)(const char *arg), const char *arg)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = OK(fork());
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(uid, uid, uid) != 0) {
			fprintf(stderr, "child: cannot become %d:%d: %s\n", (int)uid, (int)gid,
				strerror(errno));
			_exit(2);
		}
		_exit(fn(arg));
	}
	OK(waitpid(pid, &status, 0));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Directory streams open in the current test, closed by test_teardown if it fails. */
static DIR *open_dirs[8];

static DIR *xopendir(const char *path)
{
	DIR *d = opendir(path);

	if (!d)
		fail_msg("opendir %s: %s", path, ename(errno));
	for (int i = 0; i < 8; i++) {
		if (!open_dirs[i]) {
			open_dirs[i] = d;
			break;
		}
	}
	return d;
}

static void xclosedir(DIR *d)
{
	for (int i = 0; i < 8; i++) {
		if (open_dirs[i] == d)
			open_dirs[i] = NULL;
	}
	OK(closedir(d));
}

static void need_root(void)
{
	if (!is_root) {
		print_message("needs root, skipped\n");
		skip();
	}
}

/* ---- open and create ---- */

static void test_fs_posix_open_create(void **state)
{
	struct stat st;
	int fd;

	(void)state;
	OK(mkdir(P("open"), 0755));
	fd = OK(open(P("open/f"), O_CREAT | O_EXCL | O_RDWR, 0644));
	OK(close(fd));
	ERR(open(P("open/f"), O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);
	/* O_CREAT without O_EXCL opens the existing file and leaves its mode alone. */
	fd = OK(open(P("open/f"), O_CREAT | O_RDWR, 0600));
	OK(fstat(fd, &st));
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(OK(read(fd, &st, 0)), 0);
	OK(close(fd));
	/* The umask (022, set in main) applies to the requested mode. */
	fd = OK(open(P("open/m"), O_CREAT | O_EXCL | O_WRONLY, 0777));
	OK(fstat(fd, &st));
	assert_int_equal(st.st_mode & 07777, 0755);
	ERR(read(fd, &st, 1), EBADF); /* opened write-only */
	OK(close(fd));
	fd = OK(open(P("open/f"), O_RDONLY));
	ERR(write(fd, "x", 1), EBADF);
	OK(close(fd));

	ERR(open(P("open/missing"), O_RDONLY), ENOENT);
	ERR(open(P("open/nodir/f"), O_CREAT | O_RDWR, 0644), ENOENT);
	ERR(open(P("open/f/x"), O_CREAT | O_RDWR, 0644), ENOTDIR);
	ERR(open(P("open/f/x"), O_RDONLY), ENOTDIR);
	ERR(open(P("open/f"), O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(open(P("open"), O_WRONLY), EISDIR);
	ERR(open(P("open"), O_RDWR), EISDIR);
	ERR(open(P("open"), O_CREAT | O_RDWR, 0644), EISDIR);
	fd = OK(open(P("open"), O_RDONLY | O_DIRECTORY));
	OK(close(fd));

	/* Through symlinks: O_EXCL never follows one; plain O_CREAT creates its target. */
	OK(symlink("target", P("open/dangling")));
	ERR(open(P("open/dangling"), O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);
	ERR(open(P("open/dangling"), O_RDONLY), ENOENT);
	ERR(open(P("open/dangling"), O_RDONLY | O_NOFOLLOW), ELOOP);
	fd = OK(open(P("open/dangling"), O_CREAT | O_RDWR, 0644));
	OK(close(fd));
	st = lst_of(P("open/target"));
	assert_true(S_ISREG(st.st_mode));
}

static void test_fs_posix_trunc_append(void **state)
{
	unsigned char *big = xmalloc(200 * KiB);
	unsigned char buf[64];
	struct stat st;
	int fd, fd2;

	(void)state;
	OK(mkdir(P("ta"), 0755));
	put_str(P("ta/f"), "hello world");
	fd = OK(open(P("ta/f"), O_RDWR | O_TRUNC));
	OK(fstat(fd, &st));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	OK(close(fd));
	assert_int_equal(st_of(P("ta/f")).st_size, 0);

	/* O_APPEND: every write lands at the end whatever the offset. */
	put_str(P("ta/f"), "hello world");
	fd = OK(open(P("ta/f"), O_WRONLY | O_APPEND));
	assert_int_equal(OK(write(fd, "abc", 3)), 3);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 14);
	OK(lseek(fd, 0, SEEK_SET));
	assert_int_equal(OK(write(fd, "def", 3)), 3);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 17);
	/* ... including the end that another descriptor just moved. */
	fd2 = OK(open(P("ta/f"), O_RDWR));
	write_all(fd2, "ABCDEFGHIJKLMNOPQRSTU", 21, 0);
	OK(close(fd2));
	assert_int_equal(OK(write(fd, "xy", 2)), 2);
	OK(close(fd));
	expect_str(P("ta/f"), "ABCDEFGHIJKLMNOPQRSTUxy");

	/* O_TRUNC of a large file: nothing of the old data comes back when it grows again. */
	pattern(big, 200 * KiB, 1);
	put(P("ta/big"), big, 200 * KiB);
	fd = OK(open(P("ta/big"), O_RDWR | O_TRUNC));
	write_all(fd, "z", 1, 150000);
	OK(close(fd));
	memset(big, 0, 150000);
	big[150000] = 'z';
	expect_content(P("ta/big"), big, 150001);
	xfree(big);
}

/* ---- read and write ---- */

#define RW_MAX (1536 * KiB)

static void test_fs_posix_read_write(void **state)
{
	unsigned char *model = xmalloc(RW_MAX);
	unsigned char *buf = xmalloc(RW_MAX);
	uint64_t rs = tu_seed() ^ 0x7277;
	size_t size = 0;
	int fd;

	(void)state;
	memset(model, 0, RW_MAX);
	OK(mkdir(P("rw"), 0755));
	fd = OK(open(P("rw/f"), O_CREAT | O_EXCL | O_RDWR, 0644));

	/* Hand-picked offsets: the inline limit (4 KiB), a chunk boundary (64 KiB), a gap. */
	pattern(model, 100, 2);
	assert_int_equal(OK(write(fd, model, 100)), 100);
	pattern(model + 4090, 10, 3);
	write_all(fd, model + 4090, 10, 4090);
	pattern(model + 65530, 20, 4);
	write_all(fd, model + 65530, 20, 65530);
	pattern(model + MiB + 10, 5, 5);
	write_all(fd, model + MiB + 10, 5, MiB + 10);
	size = MiB + 15;
	assert_int_equal(read_all(fd, buf, RW_MAX, 0), size);
	assert_memory_equal(buf, model, size);
	assert_true(all_zero(buf + 100, 4090 - 100));
	assert_true(all_zero(buf + 65550, MiB + 10 - 65550));
	/* At and past the end a read returns 0; across the end it is short. */
	assert_int_equal(OK(pread(fd, buf, 10, (off_t)size)), 0);
	assert_int_equal(OK(pread(fd, buf, 10, (off_t)size + 1000)), 0);
	assert_int_equal(OK(pread(fd, buf, 100, (off_t)size - 3)), 3);
	assert_memory_equal(buf, model + size - 3, 3);
	OK(lseek(fd, 0, SEEK_END));
	assert_int_equal(OK(read(fd, buf, 10)), 0);
	/* One write over several chunks, overwriting the middle of the existing data. */
	pattern(model + 12345, 300000, 6);
	write_all(fd, model + 12345, 300000, 12345);
	assert_int_equal(read_all(fd, buf, RW_MAX, 0), size);
	assert_memory_equal(buf, model, size);

	/* Random writes and truncations against a model. */
	for (int op = 0; op < 300; op++) {
		uint64_t kind = tu_rand_below(&rs, 10);

		if (kind == 0) {
			size_t ns = (size_t)tu_rand_below(&rs, RW_MAX / 2);

			OK(ftruncate(fd, (off_t)ns));
			if (ns > size)
				memset(model + size, 0, ns - size);
			else
				memset(model + ns, 0, size - ns);
			size = ns;
		} else {
			size_t len = kind < 7 ? 1 + tu_rand_below(&rs, 5000)
					      : 1 + tu_rand_below(&rs, 140000);
			size_t off = (size_t)tu_rand_below(&rs, RW_MAX - len);

			pattern(model + off, len, tu_rand(&rs));
			write_all(fd, model + off, len, (off_t)off);
			if (off + len > size)
				size = off + len;
		}
		if (op % 50 == 49) {
			size_t off = (size_t)tu_rand_below(&rs, size + 1);
			size_t len = (size_t)tu_rand_below(&rs, 200000);
			size_t want = off + len > size ? size - off : len;

			assert_int_equal(read_all(fd, buf, len, (off_t)off), want);
			assert_memory_equal(buf, model + off, want);
		}
	}
	OK(close(fd));
	expect_content(P("rw/f"), model, size);
	xfree(model);
	xfree(buf);
}

static void test_fs_posix_stat_fields(void **state)
{
	unsigned char *buf = xmalloc(100 * KiB);
	struct timespec t0, t1;
	struct stat st, fst, dst, st2;
	int fd;

	(void)state;
	OK(mkdir(P("st"), 0755));
	t0 = now_real();
	fd = OK(open(P("st/f"), O_CREAT | O_EXCL | O_RDWR, 0640));
	t1 = now_real();
	st = st_of(P("st/f"));
	OK(fstat(fd, &fst));
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(st.st_gid, getegid());
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_blocks, 0);
	assert_true(st.st_blksize > 0);
	assert_int_equal(fst.st_ino, st.st_ino);
	assert_int_equal(fst.st_dev, st.st_dev);
	assert_int_equal(fst.st_mode, st.st_mode);
	assert_time_near(st.st_mtim, t0, t1, 2);
	assert_time_near(st.st_ctim, t0, t1, 2);
	assert_time_near(st.st_atim, t0, t1, 2);

	/* A written file occupies about its size once closed (FUSE's writeback cache keeps the
	 * attributes of a file open for writing, st_blocks included, until then). */
	pattern(buf, 100 * KiB, 7);
	write_all(fd, buf, 100 * KiB, 0);
	OK(fsync(fd));
	OK(close(fd));
	fst = st_of(P("st/f"));
	assert_int_equal(fst.st_size, 100 * KiB);
	if (fst.st_blocks * 512 < 100 * KiB || fst.st_blocks * 512 > 100 * KiB + 256 * KiB)
		fail_msg("st_blocks %lld for a 100 KiB file", (long long)fst.st_blocks);

	/* A sparse file (one byte at 16 MiB) never reports more than its size. (fractiofs
	 * derives st_blocks from the size, fs/SCHEMA.md §3.4, so it cannot promise less; ext4
	 * and tmpfs report a few blocks.) */
	fd = OK(open(P("st/sparse"), O_CREAT | O_EXCL | O_RDWR, 0644));
	write_all(fd, "x", 1, 16 * MiB);
	OK(fsync(fd));
	OK(close(fd));
	fst = st_of(P("st/sparse"));
	assert_int_equal(fst.st_size, 16 * MiB + 1);
	if (fst.st_blocks * 512 > 16 * MiB + 64 * KiB)
		fail_msg("st_blocks %lld for a 1-byte-at-16-MiB sparse file",
			 (long long)fst.st_blocks);
	assert_int_not_equal(fst.st_ino, st.st_ino);
	assert_int_equal(fst.st_dev, st.st_dev);

	/* Directories: nlink is 2 plus one per subdirectory; files do not count. */
	dst = st_of(P("st"));
	assert_true(S_ISDIR(dst.st_mode));
	assert_int_equal(dst.st_mode & 07777, 0755);
	assert_int_equal(dst.st_nlink, 2);
	assert_int_equal(dst.st_dev, st.st_dev);
	OK(mkdir(P("st/d1"), 0700));
	OK(mkdir(P("st/d2"), 0700));
	assert_int_equal(st_of(P("st")).st_nlink, 4);
	st2 = st_of(P("st/d1"));
	assert_int_equal(st2.st_nlink, 2);
	assert_int_equal(st2.st_mode & 07777, 0700);
	assert_int_equal(st2.st_uid, geteuid());
	OK(rmdir(P("st/d2")));
	assert_int_equal(st_of(P("st")).st_nlink, 3);
	xfree(buf);
}

/* ---- attributes ---- */

static int child_chmod_chown(const char *f)
{
	C_ERR(chmod(f, 0777), EPERM);
	C_ERR(chown(f, NOBODY, NOBODY), EPERM);
	C_ERR(chown(f, (uid_t)-1, NOBODY), EPERM);
	return 0;
}

static void test_fs_posix_chmod_chown(void **state)
{
	struct stat st;
	int fd;

	(void)state;
	OK(mkdir(P("ch"), 0755));
	put_str(P("ch/f"), "data");
	OK(chmod(P("ch/f"), 0600));
	st = st_of(P("ch/f"));
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	OK(chmod(P("ch/f"), 04755));
	assert_int_equal(st_of(P("ch/f")).st_mode & 07777, 04755);
	OK(chmod(P("ch/f"), 01604));
	assert_int_equal(st_of(P("ch/f")).st_mode & 07777, 01604);
	fd = OK(open(P("ch/f"), O_RDONLY));
	OK(fchmod(fd, 0640));
	OK(fstat(fd, &st));
	OK(close(fd));
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	OK(chmod(P("ch"), 0750));
	assert_int_equal(st_of(P("ch")).st_mode, S_IFDIR | 0750);
	OK(chmod(P("ch"), 0755));
	/* chmod through a symlink changes the target. */
	OK(symlink("f", P("ch/l")));
	OK(chmod(P("ch/l"), 0604));
	assert_int_equal(st_of(P("ch/f")).st_mode & 07777, 0604);
	assert_int_equal(lst_of(P("ch/l")).st_mode, S_IFLNK | 0777);
	ERR(chmod(P("ch/missing"), 0644), ENOENT);

	need_root();
	OK(chown(P("ch/f"), 1234, 5678));
	st = st_of(P("ch/f"));
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	OK(chown(P("ch/f"), (uid_t)-1, 42));
	st = st_of(P("ch/f"));
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 42);
	OK(chown(P("ch/f"), 1235, (gid_t)-1));
	st = st_of(P("ch/f"));
	assert_int_equal(st.st_uid, 1235);
	assert_int_equal(st.st_gid, 42);
	/* lchown changes the link itself, chown follows it. */
	OK(lchown(P("ch/l"), 77, 88));
	st = lst_of(P("ch/l"));
	assert_int_equal(st.st_uid, 77);
	assert_int_equal(st.st_gid, 88);
	assert_int_equal(st_of(P("ch/f")).st_uid, 1235);
	OK(chown(P("ch/l"), 99, 98));
	assert_int_equal(st_of(P("ch/f")).st_uid, 99);
	assert_int_equal(lst_of(P("ch/l")).st_uid, 77);
	fd = OK(open(P("ch/f"), O_RDONLY));
	OK(fchown(fd, 0, 0));
	OK(fstat(fd, &st));
	OK(close(fd));
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	OK(mkdir(P("ch/d"), 0755));
	OK(chown(P("ch/d"), 500, 501));
	st = st_of(P("ch/d"));
	assert_int_equal(st.st_uid, 500);
	assert_int_equal(st.st_gid, 501);
	/* Not the owner: no chmod, no chown. */
	assert_int_equal(as_user(NOBODY, NOBODY, child_chmod_chown, P("ch/f")), 0);
}

static void test_fs_posix_utimens(void **state)
{
	struct timespec ts[2];
	struct timespec t0, t1;
	struct stat st, before;
	int fd;

	(void)state;
	OK(mkdir(P("ut"), 0755));
	put_str(P("ut/f"), "x");
	/* Explicit times to the nanosecond, after 2038 and before 1970 too. */
	ts[0] = (struct timespec){ 1234567890, 123456789 };
	ts[1] = (struct timespec){ 1500000000, 987654321 };
	OK(utimensat(AT_FDCWD, P("ut/f"), ts, 0));
	st = st_of(P("ut/f"));
	assert_int_equal(st.st_atim.tv_sec, 1234567890);
	assert_int_equal(st.st_atim.tv_nsec, 123456789);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	assert_int_equal(st.st_mtim.tv_nsec, 987654321);
	ts[0] = (struct timespec){ 4000000000L, 1 };
	ts[1] = (struct timespec){ -86400L * 365, 500 };
	OK(utimensat(AT_FDCWD, P("ut/f"), ts, 0));
	st = st_of(P("ut/f"));
	assert_int_equal(st.st_atim.tv_sec, 4000000000L);
	assert_int_equal(st.st_atim.tv_nsec, 1);
	assert_int_equal(st.st_mtim.tv_sec, -86400L * 365);
	assert_int_equal(st.st_mtim.tv_nsec, 500);

	/* UTIME_OMIT keeps one, UTIME_NOW takes the clock. */
	ts[0] = (struct timespec){ 0, UTIME_OMIT };
	ts[1] = (struct timespec){ 1600000000, 0 };
	OK(utimensat(AT_FDCWD, P("ut/f"), ts, 0));
	st = st_of(P("ut/f"));
	assert_int_equal(st.st_atim.tv_sec, 4000000000L);
	assert_int_equal(st.st_atim.tv_nsec, 1);
	assert_int_equal(st.st_mtim.tv_sec, 1600000000);
	assert_int_equal(st.st_mtim.tv_nsec, 0);
	ts[0] = (struct timespec){ 0, UTIME_NOW };
	ts[1] = (struct timespec){ 0, UTIME_OMIT };
	t0 = now_real();
	OK(utimensat(AT_FDCWD, P("ut/f"), ts, 0));
	t1 = now_real();
	st = st_of(P("ut/f"));
	assert_time_near(st.st_atim, t0, t1, 2);
	assert_int_equal(st.st_mtim.tv_sec, 1600000000);
	assert_time_near(st.st_ctim, t0, t1, 2);
	ts[0] = (struct timespec){ 0, UTIME_OMIT };
	ts[1] = (struct timespec){ 0, UTIME_NOW };
	OK(utimensat(AT_FDCWD, P("ut/f"), ts, 0));
	st = st_of(P("ut/f"));
	assert_time_near(st.st_mtim, t0, now_real(), 2);
	/* NULL means both now; futimens works on a descriptor. */
	set_times(P("ut/f"), OLD_SEC);
	t0 = now_real();
	OK(utimensat(AT_FDCWD, P("ut/f"), NULL, 0));
	st = st_of(P("ut/f"));
	assert_time_near(st.st_atim, t0, now_real(), 2);
	assert_time_near(st.st_mtim, t0, now_real(), 2);
	fd = OK(open(P("ut/f"), O_RDONLY));
	ts[0] = (struct timespec){ 1111111111, 0 };
	ts[1] = (struct timespec){ 1222222222, 0 };
	OK(futimens(fd, ts));
	OK(fstat(fd, &st));
	OK(close(fd));
	assert_int_equal(st.st_atim.tv_sec, 1111111111);
	assert_int_equal(st.st_mtim.tv_sec, 1222222222);

	/* AT_SYMLINK_NOFOLLOW sets the link's own times. */
	OK(symlink("f", P("ut/l")));
	before = st_of(P("ut/f"));
	ts[0] = (struct timespec){ 1300000000, 0 };
	ts[1] = (struct timespec){ 1300000001, 0 };
	OK(utimensat(AT_FDCWD, P("ut/l"), ts, AT_SYMLINK_NOFOLLOW));
	assert_int_equal(lst_of(P("ut/l")).st_mtim.tv_sec, 1300000001);
	assert_int_equal(st_of(P("ut/f")).st_mtim.tv_sec, before.st_mtim.tv_sec);
	/* Directories too. */
	OK(utimensat(AT_FDCWD, P("ut"), ts, 0));
	assert_int_equal(st_of(P("ut")).st_mtim.tv_sec, 1300000001);
	ERR(utimensat(AT_FDCWD, P("ut/missing"), ts, 0), ENOENT);
	ts[1] = (struct timespec){ 0, 1000000000L };
	ERR(utimensat(AT_FDCWD, P("ut/f"), ts, 0), EINVAL);
}

static void test_fs_posix_truncate(void **state)
{
	const size_t n = 100 * KiB;
	unsigned char *data = xmalloc(200000);
	unsigned char *want = xmalloc(200000);
	struct stat st;
	int fd;

	(void)state;
	OK(mkdir(P("tr"), 0755));
	pattern(data, n, 8);
	put(P("tr/f"), data, n);
	/* Down across a chunk boundary, then up: the tail reads zeros. */
	OK(truncate(P("tr/f"), 70000));
	expect_content(P("tr/f"), data, 70000);
	OK(truncate(P("tr/f"), 200000));
	memcpy(want, data, 70000);
	memset(want + 70000, 0, 200000 - 70000);
	expect_content(P("tr/f"), want, 200000);
	/* Down into the inline range and up again: no stale bytes come back. */
	OK(truncate(P("tr/f"), 3000));
	OK(truncate(P("tr/f"), 10000));
	memset(want + 3000, 0, 10000 - 3000);
	expect_content(P("tr/f"), want, 10000);
	OK(truncate(P("tr/f"), 10));
	fd = OK(open(P("tr/f"), O_RDWR));
	write_all(fd, "Q", 1, 5000);
	memset(want + 10, 0, 5000 - 10);
	want[5000] = 'Q';
	OK(close(fd));
	expect_content(P("tr/f"), want, 5001);
	OK(truncate(P("tr/f"), 0));
	assert_int_equal(st_of(P("tr/f")).st_size, 0);

	/* ftruncate, on a descriptor open for writing only. */
	put(P("tr/g"), data, n);
	fd = OK(open(P("tr/g"), O_RDWR));
	OK(ftruncate(fd, 65536));
	OK(fstat(fd, &st));
	assert_int_equal(st.st_size, 65536);
	OK(ftruncate(fd, 65537));
	assert_int_equal(read_all(fd, want, 200000, 0), 65537);
	assert_memory_equal(want, data, 65536);
	assert_int_equal(want[65536], 0);
	ERR(ftruncate(fd, -1), EINVAL);
	OK(close(fd));
	fd = OK(open(P("tr/g"), O_RDONLY));
	ERR(ftruncate(fd, 10), EINVAL);
	OK(close(fd));
	assert_int_equal(st_of(P("tr/g")).st_size, 65537);

	ERR(truncate(P("tr/missing"), 0), ENOENT);
	ERR(truncate(P("tr"), 0), EISDIR);
	ERR(truncate(P("tr/g"), -1), EINVAL);
	xfree(data);
	xfree(want);
}

/* ---- special files and directories ---- */

static int child_mknod(const char *dir)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/cdev", dir);
	C_ERR(mknod(p, S_IFCHR | 0644, makedev(1, 3)), EPERM);
	return 0;
}

static void test_fs_posix_mknod(void **state)
{
	struct stat st;

	(void)state;
	OK(mkdir(P("mk"), 0777));
	OK(chmod(P("mk"), 0777));
	OK(mknod(P("mk/fifo"), S_IFIFO | 0644, 0));
	st = lst_of(P("mk/fifo"));
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, 0);
	OK(mkfifo(P("mk/fifo2"), 0600));
	assert_int_equal(lst_of(P("mk/fifo2")).st_mode, S_IFIFO | 0600);
	OK(mknod(P("mk/sock"), S_IFSOCK | 0755, 0));
	assert_int_equal(lst_of(P("mk/sock")).st_mode, S_IFSOCK | 0755);
	OK(mknod(P("mk/reg"), S_IFREG | 0640, 0));
	st = lst_of(P("mk/reg"));
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_size, 0);
	ERR(mknod(P("mk/fifo"), S_IFIFO | 0644, 0), EEXIST);
	ERR(mknod(P("mk/dir"), S_IFDIR | 0755, 0), EPERM);
	ERR(mknod(P("mk/no/fifo"), S_IFIFO | 0644, 0), ENOENT);

	need_root();
	OK(mknod(P("mk/null"), S_IFCHR | 0666, makedev(1, 3)));
	st = lst_of(P("mk/null"));
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644); /* umask */
	assert_int_equal(st.st_rdev, makedev(1, 3));
	OK(mknod(P("mk/loop"), S_IFBLK | 0600, makedev(7, 0)));
	st = lst_of(P("mk/loop"));
	assert_true(S_ISBLK(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(7, 0));
	/* A large major and minor (the 32-bit encoding with a 12-bit major, 20-bit minor). */
	OK(mknod(P("mk/big"), S_IFCHR | 0600, makedev(300, 70000)));
	st = lst_of(P("mk/big"));
	assert_int_equal(major(st.st_rdev), 300);
	assert_int_equal(minor(st.st_rdev), 70000);
	assert_int_equal(as_user(NOBODY, NOBODY, child_mknod, P("mk")), 0);
}

static void test_fs_posix_mkdir_rmdir(void **state)
{
	char path[PATH_MAX];
	size_t len;
	struct stat st;

	(void)state;
	OK(mkdir(P("md"), 0755));
	OK(mkdir(P("md/a"), 0777));
	st = st_of(P("md/a"));
	assert_int_equal(st.st_mode, S_IFDIR | 0755);
	assert_int_equal(st.st_nlink, 2);
	OK(mkdir(P("md/sticky"), 01777));
	assert_int_equal(st_of(P("md/sticky")).st_mode & 07777, 01755);
	OK(mkdir(P("md/slash/"), 0755));
	assert_int_equal(st_of(P("md")).st_nlink, 5);
	put_str(P("md/file"), "f");
	ERR(mkdir(P("md/a"), 0755), EEXIST);
	ERR(mkdir(P("md/file"), 0755), EEXIST);
	ERR(mkdir(P("md/none/x"), 0755), ENOENT);
	ERR(mkdir(P("md/file/x"), 0755), ENOTDIR);

	put_str(P("md/a/x"), "x");
	ERR(rmdir(P("md/a")), ENOTEMPTY);
	OK(unlink(P("md/a/x")));
	OK(mkdir(P("md/a/sub"), 0755));
	ERR(rmdir(P("md/a")), ENOTEMPTY);
	ERR(rmdir(P("md/a/sub/.")), EINVAL);
	OK(rmdir(P("md/a/sub")));
	assert_int_equal(st_of(P("md/a")).st_nlink, 2);
	OK(rmdir(P("md/a")));
	ERR(stat(P("md/a"), &st), ENOENT);
	ERR(rmdir(P("md/a")), ENOENT);
	ERR(rmdir(P("md/file")), ENOTDIR);
	OK(symlink("slash", P("md/dirlink")));
	ERR(rmdir(P("md/dirlink")), ENOTDIR);
	assert_int_equal(st_of(P("md")).st_nlink, 4);

	/* A deep chain of directories, then removed from the bottom. */
	len = (size_t)snprintf(path, sizeof(path), "md/deep");
	OK(mkdir(P("%s", path), 0755));
	for (int i = 0; i < 30; i++) {
		len += (size_t)snprintf(path + len, sizeof(path) - len, "/d%d", i);
		OK(mkdir(P("%s", path), 0755));
	}
	assert_true(S_ISDIR(st_of(P("%s", path)).st_mode));
	put_str(P("%s/leaf", path), "leaf");
	expect_str(P("%s/leaf", path), "leaf");
	OK(unlink(P("%s/leaf", path)));
	for (int i = 29; i >= 0; i--) {
		OK(rmdir(P("%s", path)));
		*strrchr(path, '/') = '\0';
	}
	OK(rmdir(P("md/deep")));
}

static void test_fs_posix_unlink(void **state)
{
	unsigned char *big = xmalloc(200 * KiB);
	unsigned char *buf = xmalloc(200 * KiB);
	char small[16];
	struct stat st;
	int fd;

	(void)state;
	OK(mkdir(P("ul"), 0755));
	put_str(P("ul/f"), "f");
	OK(unlink(P("ul/f")));
	ERR(stat(P("ul/f"), &st), ENOENT);
	ERR(unlink(P("ul/f")), ENOENT);
	OK(mkdir(P("ul/d"), 0755));
	ERR(unlink(P("ul/d")), EISDIR);
	put_str(P("ul/g"), "g");
	ERR(unlink(P("ul/g/x")), ENOTDIR);
	ERR(unlink(P("ul/none/x")), ENOENT);
	/* Unlinking a symlink leaves its target. */
	OK(symlink("g", P("ul/l")));
	OK(unlink(P("ul/l")));
	expect_str(P("ul/g"), "g");

	/* An open file outlives its last name. */
	pattern(big, 200 * KiB, 9);
	put(P("ul/open"), big, 200 * KiB);
	fd = OK(open(P("ul/open"), O_RDWR));
	OK(unlink(P("ul/open")));
	ERR(stat(P("ul/open"), &st), ENOENT);
	OK(fstat(fd, &st));
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(st.st_size, 200 * KiB);
	assert_int_equal(read_all(fd, buf, 200 * KiB, 0), 200 * KiB);
	assert_memory_equal(buf, big, 200 * KiB);
	write_all(fd, "tail", 4, 200 * KiB);
	assert_int_equal(read_all(fd, buf, 16, 200 * KiB), 4);
	assert_memory_equal(buf, "tail", 4);
	/* The name is free again: a new file there is empty. */
	put_str(P("ul/open"), "new");
	expect_str(P("ul/open"), "new");
	assert_int_equal(read_all(fd, small, 4, 200 * KiB), 4);
	OK(close(fd));
	xfree(big);
	xfree(buf);
}

static void test_fs_posix_symlink(void **state)
{
	static const char odd[] = "dir with space/\xff\xfe/\xc3\xbc";
	char buf[PATH_MAX + 1];
	char *long_target = xmalloc(PATH_MAX + 1);
	struct stat st;

	(void)state;
	OK(mkdir(P("sl"), 0755));
	put_str(P("sl/file"), "content");
	OK(symlink("file", P("sl/l")));
	st = lst_of(P("sl/l"));
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0777);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(OK(readlink(P("sl/l"), buf, sizeof(buf))), 4);
	assert_memory_equal(buf, "file", 4);
	/* stat and open follow it. */
	st = st_of(P("sl/l"));
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_ino, lst_of(P("sl/file")).st_ino);
	expect_str(P("sl/l"), "content");
	/* A short buffer truncates, without a NUL. */
	memset(buf, '#', 8);
	assert_int_equal(OK(readlink(P("sl/l"), buf, 3)), 3);
	assert_memory_equal(buf, "fil#", 4);
	/* Targets are bytes, kept verbatim; a dangling one only fails when followed. */
	OK(symlink(odd, P("sl/odd")));
	assert_int_equal(OK(readlink(P("sl/odd"), buf, sizeof(buf))), strlen(odd));
	assert_memory_equal(buf, odd, strlen(odd));
	assert_int_equal(lst_of(P("sl/odd")).st_size, strlen(odd));
	ERR(stat(P("sl/odd"), &st), ENOENT);
	OK(symlink("/absolute/elsewhere", P("sl/abs")));
	assert_int_equal(lst_of(P("sl/abs")).st_size, 19);
	/* The longest target, PATH_MAX - 1 bytes. */
	memset(long_target, 'a', PATH_MAX - 1);
	long_target[PATH_MAX - 1] = '\0';
	OK(symlink(long_target, P("sl/long")));
	assert_int_equal(lst_of(P("sl/long")).st_size, PATH_MAX - 1);
	assert_int_equal(OK(readlink(P("sl/long"), buf, sizeof(buf))), PATH_MAX - 1);
	assert_memory_equal(buf, long_target, PATH_MAX - 1);
	long_target[PATH_MAX - 1] = 'a';
	long_target[PATH_MAX] = '\0';
	ERR(symlink(long_target, P("sl/toolong")), ENAMETOOLONG);

	ERR(symlink("x", P("sl/l")), EEXIST);
	ERR(symlink("x", P("sl/file")), EEXIST);
	ERR(symlink("", P("sl/empty")), ENOENT);
	ERR(readlink(P("sl/file"), buf, sizeof(buf)), EINVAL);
	ERR(readlink(P("sl"), buf, sizeof(buf)), EINVAL);
	ERR(readlink(P("sl/missing"), buf, sizeof(buf)), ENOENT);
	OK(symlink("loop2", P("sl/loop1")));
	OK(symlink("loop1", P("sl/loop2")));
	ERR(stat(P("sl/loop1"), &st), ELOOP);
	/* A symlink to a directory resolves through it. */
	OK(mkdir(P("sl/dir"), 0755));
	put_str(P("sl/dir/inner"), "in");
	OK(symlink("dir", P("sl/dl")));
	expect_str(P("sl/dl/inner"), "in");
	xfree(long_target);
}

static void test_fs_posix_link(void **state)
{
	struct stat a, b, st;

	(void)state;
	OK(mkdir(P("ln"), 0755));
	OK(mkdir(P("ln/sub"), 0755));
	put_str(P("ln/a"), "shared");
	OK(link(P("ln/a"), P("ln/b")));
	a = st_of(P("ln/a"));
	b = st_of(P("ln/b"));
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	assert_int_equal(b.st_nlink, 2);
	OK(link(P("ln/b"), P("ln/sub/c")));
	assert_int_equal(st_of(P("ln/a")).st_nlink, 3);
	/* One inode: a write through one name shows through the others. */
	put_str(P("ln/sub/c"), "changed");
	expect_str(P("ln/a"), "changed");
	OK(unlink(P("ln/a")));
	st = st_of(P("ln/b"));
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_ino, a.st_ino);
	OK(unlink(P("ln/b")));
	assert_int_equal(st_of(P("ln/sub/c")).st_nlink, 1);
	expect_str(P("ln/sub/c"), "changed");
	/* The directory's own link count ignores file links. */
	assert_int_equal(st_of(P("ln")).st_nlink, 3);

	ERR(link(P("ln/sub"), P("ln/dirlink")), EPERM);
	put_str(P("ln/x"), "x");
	ERR(link(P("ln/x"), P("ln/sub/c")), EEXIST);
	ERR(link(P("ln/missing"), P("ln/y")), ENOENT);
	ERR(link(P("ln/x"), P("ln/none/y")), ENOENT);
	/* link() does not follow a symlink: the new name is the link itself. */
	OK(symlink("x", P("ln/sym")));
	OK(link(P("ln/sym"), P("ln/sym2")));
	st = lst_of(P("ln/sym2"));
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_ino, lst_of(P("ln/sym")).st_ino);
	assert_int_equal(st_of(P("ln/x")).st_nlink, 1);
}

/* ---- rename ---- */

static int rename2(const char *from, const char *to, unsigned flags)
{
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
}

/* The d_ino of ".." in a listing of dir. */
static ino_t dotdot_ino(const char *dir)
{
	DIR *d = xopendir(dir);
	struct dirent *e;
	ino_t ino = 0;

	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, "..") == 0)
			ino = e->d_ino;
	}
	xclosedir(d);
	return ino;
}

static void test_fs_posix_rename_file(void **state)
{
	struct stat a, st;
	char buf[16];
	int fd;

	(void)state;
	OK(mkdir(P("rf"), 0755));
	OK(mkdir(P("rf/other"), 0755));
	put_str(P("rf/a"), "AAA");
	a = st_of(P("rf/a"));
	OK(rename(P("rf/a"), P("rf/b")));
	ERR(stat(P("rf/a"), &st), ENOENT);
	assert_int_equal(st_of(P("rf/b")).st_ino, a.st_ino);
	expect_str(P("rf/b"), "AAA");
	OK(rename(P("rf/b"), P("rf/other/b2")));
	ERR(stat(P("rf/b"), &st), ENOENT);
	expect_str(P("rf/other/b2"), "AAA");
	OK(rename(P("rf/other/b2"), P("rf/a")));

	/* Over an existing file that has a second link: the old target loses one link. */
	put_str(P("rf/t"), "TTT");
	OK(link(P("rf/t"), P("rf/t2")));
	OK(rename(P("rf/a"), P("rf/t")));
	ERR(stat(P("rf/a"), &st), ENOENT);
	st = st_of(P("rf/t"));
	assert_int_equal(st.st_ino, a.st_ino);
	assert_int_equal(st.st_nlink, 1);
	expect_str(P("rf/t"), "AAA");
	st = st_of(P("rf/t2"));
	assert_int_equal(st.st_nlink, 1);
	expect_str(P("rf/t2"), "TTT");
	/* Over the last link of a file that is open: the descriptor still reads it. */
	fd = OK(open(P("rf/t2"), O_RDONLY));
	put_str(P("rf/n"), "NNN");
	OK(rename(P("rf/n"), P("rf/t2")));
	OK(fstat(fd, &st));
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(read_all(fd, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "TTT", 3);
	OK(close(fd));
	expect_str(P("rf/t2"), "NNN");

	/* Onto itself, or onto another link of the same inode: nothing happens. */
	OK(rename(P("rf/t"), P("rf/t")));
	expect_str(P("rf/t"), "AAA");
	OK(link(P("rf/t"), P("rf/same")));
	OK(rename(P("rf/t"), P("rf/same")));
	assert_int_equal(st_of(P("rf/t")).st_nlink, 2);
	assert_int_equal(st_of(P("rf/same")).st_nlink, 2);

	ERR(rename(P("rf/missing"), P("rf/x")), ENOENT);
	ERR(rename(P("rf/t"), P("rf/none/x")), ENOENT);
	ERR(rename(P("rf/t"), P("rf/t2/x")), ENOTDIR);
	assert_int_equal(st_of(P("rf")).st_nlink, 3);
}

static void test_fs_posix_rename_flags(void **state)
{
	struct stat a, b, d, st;
	nlink_t n1, n2;

	(void)state;
	OK(mkdir(P("rx"), 0755));
	put_str(P("rx/a"), "A");
	put_str(P("rx/b"), "B");
	a = st_of(P("rx/a"));
	b = st_of(P("rx/b"));
	ERR(rename2(P("rx/a"), P("rx/b"), RENAME_NOREPLACE), EEXIST);
	expect_str(P("rx/a"), "A");
	expect_str(P("rx/b"), "B");
	OK(rename2(P("rx/a"), P("rx/c"), RENAME_NOREPLACE));
	OK(rename2(P("rx/c"), P("rx/a"), RENAME_NOREPLACE));

	/* Two files swap names. */
	OK(rename2(P("rx/a"), P("rx/b"), RENAME_EXCHANGE));
	expect_str(P("rx/a"), "B");
	expect_str(P("rx/b"), "A");
	assert_int_equal(st_of(P("rx/a")).st_ino, b.st_ino);
	assert_int_equal(st_of(P("rx/b")).st_ino, a.st_ino);
	ERR(rename2(P("rx/a"), P("rx/missing"), RENAME_EXCHANGE), ENOENT);
	ERR(rename2(P("rx/a"), P("rx/b"), RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);

	/* A file and a directory in one parent swap; the parent's link count stays. */
	OK(mkdir(P("rx/d"), 0755));
	put_str(P("rx/d/inner"), "I");
	d = st_of(P("rx/d"));
	n1 = st_of(P("rx")).st_nlink;
	OK(rename2(P("rx/a"), P("rx/d"), RENAME_EXCHANGE));
	assert_true(S_ISDIR(st_of(P("rx/a")).st_mode));
	assert_int_equal(st_of(P("rx/a")).st_ino, d.st_ino);
	expect_str(P("rx/a/inner"), "I");
	expect_str(P("rx/d"), "B");
	assert_int_equal(st_of(P("rx")).st_nlink, n1);

	/* Across parents: p1 gains the directory, p2 loses it; ".." follows. */
	OK(mkdir(P("rx/p1"), 0755));
	OK(mkdir(P("rx/p2"), 0755));
	put_str(P("rx/p1/f"), "F");
	OK(mkdir(P("rx/p2/dir"), 0755));
	put_str(P("rx/p2/dir/x"), "X");
	n1 = st_of(P("rx/p1")).st_nlink;
	n2 = st_of(P("rx/p2")).st_nlink;
	OK(rename2(P("rx/p1/f"), P("rx/p2/dir"), RENAME_EXCHANGE));
	assert_int_equal(st_of(P("rx/p1")).st_nlink, n1 + 1);
	assert_int_equal(st_of(P("rx/p2")).st_nlink, n2 - 1);
	expect_str(P("rx/p1/f/x"), "X");
	expect_str(P("rx/p2/dir"), "F");
	assert_int_equal(st_of(P("rx/p1/f/..")).st_ino, st_of(P("rx/p1")).st_ino);
	assert_int_equal(dotdot_ino(P("rx/p1/f")), st_of(P("rx/p1")).st_ino);
	/* Two directories across parents: counts stay, each ".." is the new parent. */
	OK(mkdir(P("rx/p2/e"), 0755));
	n1 = st_of(P("rx/p1")).st_nlink;
	n2 = st_of(P("rx/p2")).st_nlink;
	OK(rename2(P("rx/p1/f"), P("rx/p2/e"), RENAME_EXCHANGE));
	assert_int_equal(st_of(P("rx/p1")).st_nlink, n1);
	assert_int_equal(st_of(P("rx/p2")).st_nlink, n2);
	expect_str(P("rx/p2/e/x"), "X");
	assert_int_equal(st_of(P("rx/p2/e/..")).st_ino, st_of(P("rx/p2")).st_ino);
	assert_int_equal(st_of(P("rx/p1/f/..")).st_ino, st_of(P("rx/p1")).st_ino);
	assert_int_equal(dotdot_ino(P("rx/p2/e")), st_of(P("rx/p2")).st_ino);
	assert_int_equal(dotdot_ino(P("rx/p1/f")), st_of(P("rx/p1")).st_ino);
	ERR(stat(P("rx/p2/e/none"), &st), ENOENT);
}

static void test_fs_posix_rename_dir(void **state)
{
	struct stat d, st;
	nlink_t n;

	(void)state;
	OK(mkdir(P("rd"), 0755));
	OK(mkdir(P("rd/p1"), 0755));
	OK(mkdir(P("rd/p2"), 0755));
	OK(mkdir(P("rd/p1/d"), 0755));
	OK(mkdir(P("rd/p1/d/s"), 0755));
	put_str(P("rd/p1/d/x"), "x");
	d = st_of(P("rd/p1/d"));
	assert_int_equal(st_of(P("rd/p1")).st_nlink, 3);
	assert_int_equal(st_of(P("rd/p2")).st_nlink, 2);
	OK(rename(P("rd/p1/d"), P("rd/p2/d")));
	assert_int_equal(st_of(P("rd/p1")).st_nlink, 2);
	assert_int_equal(st_of(P("rd/p2")).st_nlink, 3);
	st = st_of(P("rd/p2/d"));
	assert_int_equal(st.st_ino, d.st_ino);
	assert_int_equal(st.st_nlink, 3);
	assert_int_equal(st_of(P("rd/p2/d/..")).st_ino, st_of(P("rd/p2")).st_ino);
	assert_int_equal(dotdot_ino(P("rd/p2/d")), st_of(P("rd/p2")).st_ino);
	expect_str(P("rd/p2/d/x"), "x");
	assert_true(S_ISDIR(st_of(P("rd/p2/d/s")).st_mode));
	ERR(stat(P("rd/p1/d"), &st), ENOENT);
	/* In the same parent: counts stay. */
	OK(rename(P("rd/p2/d"), P("rd/p2/e")));
	assert_int_equal(st_of(P("rd/p2")).st_nlink, 3);

	/* Into its own subtree. */
	ERR(rename(P("rd/p2"), P("rd/p2/e/s/inside")), EINVAL);
	ERR(rename(P("rd/p2/e"), P("rd/p2/e/new")), EINVAL);
	/* Over directories: a non-empty one refuses, an empty one is replaced. */
	OK(mkdir(P("rd/p1/full"), 0755));
	put_str(P("rd/p1/full/f"), "f");
	ERR(rename(P("rd/p2/e"), P("rd/p1/full")), ENOTEMPTY);
	OK(mkdir(P("rd/p1/empty"), 0755));
	n = st_of(P("rd/p1")).st_nlink;
	OK(rename(P("rd/p2/e"), P("rd/p1/empty")));
	assert_int_equal(st_of(P("rd/p1")).st_nlink, n);
	assert_int_equal(st_of(P("rd/p2")).st_nlink, 2);
	assert_int_equal(st_of(P("rd/p1/empty")).st_ino, d.st_ino);
	expect_str(P("rd/p1/empty/x"), "x");
	/* Type mismatches. */
	put_str(P("rd/p1/file"), "f");
	ERR(rename(P("rd/p1/empty"), P("rd/p1/file")), ENOTDIR);
	ERR(rename(P("rd/p1/file"), P("rd/p1/empty")), EISDIR);
	ERR(rename2(P("rd/p1/file"), P("rd/p1/full"), RENAME_NOREPLACE), EEXIST);
	assert_true(S_ISDIR(st_of(P("rd/p1/empty")).st_mode));
	assert_true(S_ISREG(st_of(P("rd/p1/file")).st_mode));
}

/* ---- names and listings ---- */

static void test_fs_posix_name_max(void **state)
{
	char n255[256], m255[256], n256[257], u255[256];
	char buf[300];
	struct stat st;
	DIR *d;
	struct dirent *e;
	bool seen = false;
	int fd;

	(void)state;
	memset(n255, 'n', 255);
	n255[255] = '\0';
	memset(m255, 'm', 255);
	m255[255] = '\0';
	memset(n256, 'n', 256);
	n256[256] = '\0';
	for (int i = 0; i < 254; i += 2)
		memcpy(u255 + i, "\xc3\xa9", 2);
	u255[254] = 'x';
	u255[255] = '\0';
	OK(mkdir(P("nm"), 0755));
	fd = OK(open(P("nm/%s", n255), O_CREAT | O_EXCL | O_WRONLY, 0644));
	OK(close(fd));
	OK(stat(P("nm/%s", n255), &st));
	d = xopendir(P("nm"));
	while ((e = readdir(d)) != NULL)
		seen |= strcmp(e->d_name, n255) == 0;
	xclosedir(d);
	assert_true(seen);
	OK(rename(P("nm/%s", n255), P("nm/%s", m255)));
	OK(link(P("nm/%s", m255), P("nm/%s", n255)));
	OK(unlink(P("nm/%s", m255)));
	OK(mkdir(P("nm/%s", m255), 0755));
	OK(rmdir(P("nm/%s", m255)));
	OK(symlink(n255, P("nm/%s", m255)));
	assert_int_equal(OK(readlink(P("nm/%s", m255), buf, sizeof(buf))), 255);
	OK(mknod(P("nm/%s", u255), S_IFIFO | 0644, 0));
	assert_true(S_ISFIFO(lst_of(P("nm/%s", u255)).st_mode));

	ERR(open(P("nm/%s", n256), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	ERR(stat(P("nm/%s", n256), &st), ENAMETOOLONG);
	ERR(mkdir(P("nm/%s", n256), 0755), ENAMETOOLONG);
	ERR(mknod(P("nm/%s", n256), S_IFIFO | 0644, 0), ENAMETOOLONG);
	ERR(symlink("x", P("nm/%s", n256)), ENAMETOOLONG);
	ERR(link(P("nm/%s", n255), P("nm/%s", n256)), ENAMETOOLONG);
	ERR(rename(P("nm/%s", n255), P("nm/%s", n256)), ENAMETOOLONG);
	ERR(unlink(P("nm/%s", n256)), ENAMETOOLONG);
	OK(stat(P("nm/%s", n255), &st));
}

struct want_ent {
	const char *name;
	unsigned char type;
	bool seen;
};

static void test_fs_posix_readdir_exact(void **state)
{
	static char n255[256];
	struct want_ent want[] = {
		{ ".", DT_DIR, false },	      { "..", DT_DIR, false },
		{ "a", DT_REG, false },	      { "b b", DT_REG, false },
		{ "\xff\xfe", DT_REG, false }, { "\xc3\xbc", DT_REG, false },
		{ "..x", DT_REG, false },     { ".hidden", DT_REG, false },
		{ "-", DT_REG, false },	      { "sub", DT_DIR, false },
		{ "lnk", DT_LNK, false },     { "ff", DT_FIFO, false },
		{ n255, DT_REG, false },
	};
	const size_t nwant = sizeof(want) / sizeof(want[0]);
	char names[64][256];
	long pos;
	int cnt, again;
	DIR *d;
	struct dirent *e;

	(void)state;
	memset(n255, 'z', 255);
	OK(mkdir(P("ls"), 0755));
	OK(mkdir(P("ls_empty"), 0755));
	for (size_t i = 2; i < nwant; i++) {
		if (want[i].type == DT_REG)
			put_str(P("ls/%s", want[i].name), want[i].name);
	}
	OK(mkdir(P("ls/sub"), 0755));
	OK(symlink("a", P("ls/lnk")));
	OK(mkfifo(P("ls/ff"), 0644));

	d = xopendir(P("ls"));
	while ((e = readdir(d)) != NULL) {
		size_t i;
		struct stat st;

		for (i = 0; i < nwant; i++) {
			if (strcmp(e->d_name, want[i].name) == 0)
				break;
		}
		if (i == nwant)
			fail_msg("unexpected entry \"%s\"", e->d_name);
		if (want[i].seen)
			fail_msg("entry \"%s\" listed twice", e->d_name);
		want[i].seen = true;
		if (e->d_type != want[i].type)
			fail_msg("entry \"%s\" has d_type %d, want %d", e->d_name, e->d_type,
				 want[i].type);
		if (strcmp(e->d_name, "..") == 0)
			st = st_of(P("ls/.."));
		else
			st = lst_of(P("ls/%s", e->d_name));
		if (e->d_ino != st.st_ino)
			fail_msg("entry \"%s\" has d_ino %llu, stat says %llu", e->d_name,
				 (unsigned long long)e->d_ino, (unsigned long long)st.st_ino);
	}
	for (size_t i = 0; i < nwant; i++) {
		if (!want[i].seen)
			fail_msg("entry \"%s\" not listed", want[i].name);
	}

	/* rewinddir sees changes made since; telldir/seekdir resume where they were. */
	OK(unlink(P("ls/a")));
	put_str(P("ls/new"), "new");
	rewinddir(d);
	cnt = 0;
	again = 0;
	while ((e = readdir(d)) != NULL) {
		assert_string_not_equal(e->d_name, "a");
		again += strcmp(e->d_name, "new") == 0;
		cnt++;
	}
	assert_int_equal(again, 1);
	assert_int_equal(cnt, (int)nwant);
	rewinddir(d);
	for (int i = 0; i < 4; i++)
		assert_non_null(readdir(d));
	pos = telldir(d);
	cnt = 0;
	while ((e = readdir(d)) != NULL && cnt < 64)
		strcpy(names[cnt++], e->d_name);
	seekdir(d, pos);
	for (int i = 0; i < cnt; i++) {
		e = readdir(d);
		assert_non_null(e);
		assert_string_equal(e->d_name, names[i]);
	}
	assert_null(readdir(d));
	xclosedir(d);

	/* An empty directory lists only . and .. */
	d = xopendir(P("ls_empty"));
	cnt = 0;
	while ((e = readdir(d)) != NULL) {
		assert_true(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0);
		cnt++;
	}
	xclosedir(d);
	assert_int_equal(cnt, 2);
	ERR(opendir(P("ls/new")) ? 0 : -1, ENOTDIR);
	ERR(opendir(P("ls/missing")) ? 0 : -1, ENOENT);
}

#define RD_KEEP 2000

struct churn {
	char dir[PATH_MAX];
	atomic_int stop;
	atomic_long done;
	atomic_int errors;
};

/* Creates and removes names other than the k* ones, as fast as it can, until told to stop. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	char p[PATH_MAX + 32], q[PATH_MAX + 32]; /* room for dir + "/x<n>" */

	for (long i = 0; !atomic_load(&c->stop); i++) {
		snprintf(p, sizeof(p), "%s/x%ld", c->dir, i);
		if (mknod(p, S_IFREG | 0644, 0) != 0)
			atomic_fetch_add(&c->errors, 1);
		if (i % 3 == 0) {
			snprintf(q, sizeof(q), "%s/y%ld", c->dir, i);
			if (rename(p, q) != 0 || unlink(q) != 0)
				atomic_fetch_add(&c->errors, 1);
		} else if (i >= 4) {
			snprintf(p, sizeof(p), "%s/x%ld", c->dir, i - 4);
			if ((i - 4) % 3 != 0 && unlink(p) != 0)
				atomic_fetch_add(&c->errors, 1);
		}
		atomic_fetch_add(&c->done, 1);
	}
	return NULL;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static void test_fs_posix_readdir_concurrent(void **state)
{
	static unsigned char seen[RD_KEEP];
	char buf[1024] __attribute__((aligned(8)));
	static struct churn c;
	pthread_t th;
	int fd, calls = 0;

	(void)state;
	memset(seen, 0, sizeof(seen));
	memset(&c, 0, sizeof(c));
	OK(mkdir(P("rc"), 0755));
	for (int i = 0; i < RD_KEEP; i++)
		OK(mknod(P("rc/k%04d", i), S_IFREG | 0644, 0));
	PJ(c.dir, "rc");
	fd = OK(open(c.dir, O_RDONLY | O_DIRECTORY));
	assert_int_equal(pthread_create(&th, NULL, churn_main, &c), 0);
	for (;;) {
		/* Small reads, and the other thread makes progress between them. */
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		long mark = atomic_load(&c.done);

		if (n < 0)
			fail_msg("getdents64: %s", ename(errno));
		if (n == 0)
			break;
		calls++;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + off);
			int k;

			if (e->d_name[0] == 'k') {
				k = atoi(e->d_name + 1);
				assert_true(k >= 0 && k < RD_KEEP);
				if (seen[k]++)
					fail_msg("k%04d listed twice", k);
			}
			off += e->d_reclen;
		}
		for (int w = 0; w < 200 && atomic_load(&c.done) < mark + 3; w++)
			sleep_ms(1);
	}
	atomic_store(&c.stop, 1);
	pthread_join(th, NULL);
	OK(close(fd));
	print_message("readdir: %d getdents calls, %ld churn steps\n", calls,
		      (long)atomic_load(&c.done));
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_true(calls > 20);
	assert_true(atomic_load(&c.done) > calls);
	for (int i = 0; i < RD_KEEP; i++) {
		if (seen[i] != 1)
			fail_msg("k%04d listed %d times", i, seen[i]);
	}
}

/* ---- extended attributes ---- */

/* The user.* names in a listxattr result, sorted, joined with ','. */
static void user_names(const char *list, ssize_t len, char *out, size_t cap)
{
	const char *names[64];
	int n = 0;
	size_t o = 0;

	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
		if (strncmp(list + i, "user.", 5) == 0 && n < 64)
			names[n++] = list + i;
	}
	for (int i = 1; i < n; i++) {
		for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	}
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", names[i]);
}

static void test_fs_posix_xattr(void **state)
{
	char val[2048], list[4096], names[4096], name[300];
	unsigned char bin[1000];
	const char *f;
	ssize_t n;

	(void)state;
	OK(mkdir(P("xa"), 0755));
	put_str(P("xa/f"), "data");
	f = P("xa/f");
	ERR(getxattr(f, "user.a", val, sizeof(val)), ENODATA);
	OK(setxattr(f, "user.a", "v1", 2, 0));
	assert_int_equal(OK(getxattr(f, "user.a", NULL, 0)), 2);
	assert_int_equal(OK(getxattr(f, "user.a", val, sizeof(val))), 2);
	assert_memory_equal(val, "v1", 2);
	ERR(getxattr(f, "user.a", val, 1), ERANGE);
	ERR(setxattr(f, "user.a", "v2", 2, XATTR_CREATE), EEXIST);
	ERR(setxattr(f, "user.b", "v2", 2, XATTR_REPLACE), ENODATA);
	OK(setxattr(f, "user.a", "longer value", 12, XATTR_REPLACE));
	assert_int_equal(OK(getxattr(f, "user.a", val, sizeof(val))), 12);
	assert_memory_equal(val, "longer value", 12);
	OK(setxattr(f, "user.b", "", 0, XATTR_CREATE));
	assert_int_equal(OK(getxattr(f, "user.b", val, sizeof(val))), 0);
	pattern(bin, sizeof(bin), 10);
	bin[0] = 0;
	OK(setxattr(f, "user.bin", bin, sizeof(bin), 0));
	assert_int_equal(OK(getxattr(f, "user.bin", val, sizeof(val))), sizeof(bin));
	assert_memory_equal(val, bin, sizeof(bin));

	/* listxattr: a size query, a short buffer, then the names. */
	n = OK(listxattr(f, NULL, 0));
	assert_true(n >= (ssize_t)sizeof("user.a\0user.b\0user.bin"));
	ERR(listxattr(f, list, 3), ERANGE);
	assert_int_equal(OK(listxattr(f, list, sizeof(list))), n);
	user_names(list, n, names, sizeof(names));
	assert_string_equal(names, "user.a,user.b,user.bin");

	OK(removexattr(f, "user.b"));
	ERR(getxattr(f, "user.b", val, sizeof(val)), ENODATA);
	ERR(removexattr(f, "user.b"), ENODATA);
	n = OK(listxattr(f, list, sizeof(list)));
	user_names(list, n, names, sizeof(names));
	assert_string_equal(names, "user.a,user.bin");

	/* Name and value limits (XATTR_NAME_MAX 255, XATTR_SIZE_MAX 64 KiB). */
	memset(name, 'q', sizeof(name));
	memcpy(name, "user.", 5);
	name[255] = '\0';
	OK(setxattr(f, name, "n", 1, 0));
	assert_int_equal(OK(getxattr(f, name, val, sizeof(val))), 1);
	OK(removexattr(f, name));
	name[255] = 'q';
	name[256] = '\0';
	ERR(setxattr(f, name, "n", 1, 0), ERANGE);
	{
		char *huge = xmalloc(65537);

		memset(huge, 'h', 65537);
		ERR(setxattr(f, "user.huge", huge, 65537, 0), E2BIG);
		xfree(huge);
	}

	/* user.* is for files and directories only. */
	OK(mkdir(P("xa/d"), 0755));
	OK(setxattr(P("xa/d"), "user.dir", "D", 1, 0));
	assert_int_equal(OK(getxattr(P("xa/d"), "user.dir", val, sizeof(val))), 1);
	OK(symlink("f", P("xa/l")));
	ERR(lsetxattr(P("xa/l"), "user.x", "1", 1, 0), EPERM);
	/* ... and follows a symlink when asked to. */
	assert_int_equal(OK(getxattr(P("xa/l"), "user.a", val, sizeof(val))), 12);

	/* Attributes go with the inode: kept across rename, gone with a new file of the name. */
	OK(rename(f, P("xa/g")));
	assert_int_equal(OK(getxattr(P("xa/g"), "user.a", val, sizeof(val))), 12);
	OK(unlink(P("xa/g")));
	put_str(P("xa/g"), "new");
	ERR(getxattr(P("xa/g"), "user.a", val, sizeof(val)), ENODATA);
	n = OK(listxattr(P("xa/g"), list, sizeof(list)));
	user_names(list, n, names, sizeof(names));
	assert_string_equal(names, "");
	ERR(getxattr(P("xa/missing"), "user.a", val, sizeof(val)), ENOENT);
}

/* ---- permissions ---- */

static int child_access(const char *base)
{
	char p[PATH_MAX], q[PATH_MAX];
	int fd;

#define CP(rel) (snprintf(p, sizeof(p), "%s/%s", base, rel), p)
#define CQ(rel) (snprintf(q, sizeof(q), "%s/%s", base, rel), q)
	C_ERR(access(CP("r0640"), R_OK), EACCES);
	C_ERR(open(CP("r0640"), O_RDONLY), EACCES);
	C_OK(access(CP("r0644"), R_OK));
	C_ERR(access(CP("r0644"), W_OK), EACCES);
	C_ERR(access(CP("r0644"), R_OK | W_OK), EACCES);
	C_ERR(open(CP("r0644"), O_WRONLY), EACCES);
	C_ERR(truncate(CP("r0644"), 0), EACCES);
	C_OK(access(CP("x0755"), X_OK));
	C_OK(access(CP("x0755"), R_OK | X_OK));
	C_ERR(access(CP("r0644"), X_OK), EACCES);
	C_ERR(access(CP("missing"), F_OK), ENOENT);
	/* The owner class applies to the owner even when "other" would allow. */
	C_ERR(access(CP("own0066"), R_OK), EACCES);
	C_ERR(open(CP("own0066"), O_RDONLY), EACCES);
	/* Search permission guards the names inside a directory. */
	C_ERR(access(CP("priv/f"), F_OK), EACCES);
	C_ERR(open(CP("priv/f"), O_RDONLY), EACCES);
	C_ERR(opendir(CP("priv")) ? 0 : -1, EACCES);
	/* Write permission on the directory guards creating and removing names. */
	C_ERR(open(CP("ro/new"), O_CREAT | O_WRONLY, 0644), EACCES);
	C_ERR(mkdir(CP("ro/newdir"), 0755), EACCES);
	C_ERR(unlink(CP("ro/f")), EACCES);
	C_ERR(rename(CP("ro/f"), CQ("ro/g")), EACCES);
	C_ERR(symlink("x", CP("ro/sym")), EACCES);
	C_OK(access(CP("ro/f"), R_OK));
	/* Sticky directory: only one's own files may be removed. */
	C_ERR(unlink(CP("sticky/rootfile")), EPERM);
	C_ERR(rename(CP("sticky/rootfile"), CQ("sticky/moved")), EPERM);
	C_OK(fd = open(CP("sticky/mine"), O_CREAT | O_EXCL | O_WRONLY, 0644));
	close(fd);
	C_OK(rename(CP("sticky/mine"), CQ("sticky/mine2")));
	C_OK(unlink(CP("sticky/mine2")));
	/* Writing is allowed by the mode bits alone. */
	C_OK(fd = open(CP("w0666"), O_WRONLY));
	C_TRUE(write(fd, "w", 1) == 1);
	close(fd);
	return 0;
#undef CP
#undef CQ
}

static void test_fs_posix_access(void **state)
{
	int fd;

	(void)state;
	OK(mkdir(P("ac"), 0755));
	put_str(P("ac/r0640"), "x");
	OK(chmod(P("ac/r0640"), 0640));
	put_str(P("ac/r0644"), "x");
	put_str(P("ac/x0755"), "x");
	OK(chmod(P("ac/x0755"), 0755));
	put_str(P("ac/w0666"), "x");
	OK(chmod(P("ac/w0666"), 0666));
	put_str(P("ac/zero"), "x");
	OK(chmod(P("ac/zero"), 0));
	OK(mkdir(P("ac/priv"), 0700));
	put_str(P("ac/priv/f"), "x");
	OK(mkdir(P("ac/ro"), 0755));
	put_str(P("ac/ro/f"), "x");
	OK(mkdir(P("ac/sticky"), 0755));
	OK(chmod(P("ac/sticky"), 01777));
	put_str(P("ac/sticky/rootfile"), "x");
	OK(chmod(P("ac/sticky/rootfile"), 0666));

	OK(access(P("ac/r0644"), R_OK | W_OK));
	OK(access(P("ac/x0755"), X_OK));
	ERR(access(P("ac/missing"), F_OK), ENOENT);
	ERR(access(P("ac/r0644/x"), F_OK), ENOTDIR);
	if (!is_root) {
		ERR(access(P("ac/zero"), R_OK), EACCES);
		ERR(open(P("ac/zero"), O_RDONLY), EACCES);
		ERR(access(P("ac/r0644"), X_OK), EACCES);
		return;
	}
	/* Root reads and writes anything, but executes only what has an x bit. */
	OK(access(P("ac/zero"), R_OK | W_OK));
	fd = OK(open(P("ac/zero"), O_RDWR));
	OK(close(fd));
	ERR(access(P("ac/r0644"), X_OK), EACCES);
	ERR(access(P("ac/zero"), X_OK), EACCES);
	put_str(P("ac/own0066"), "x");
	OK(chown(P("ac/own0066"), NOBODY, 0));
	OK(chmod(P("ac/own0066"), 0066));
	assert_int_equal(as_user(NOBODY, NOBODY, child_access, P("ac")), 0);
	expect_str(P("ac/w0666"), "w");
	expect_str(P("ac/sticky/rootfile"), "x");
}

/* ---- durability calls, statfs ---- */

static void test_fs_posix_sync(void **state)
{
	int fd, dfd;

	(void)state;
	OK(mkdir(P("sy"), 0755));
	fd = OK(open(P("sy/f"), O_CREAT | O_RDWR, 0644));
	write_all(fd, "sync me", 7, 0);
	OK(fsync(fd));
	write_all(fd, "again", 5, 100000);
	OK(fdatasync(fd));
	OK(syncfs(fd));
	OK(close(fd));
	fd = OK(open(P("sy/f"), O_RDONLY));
	OK(fsync(fd));
	OK(fdatasync(fd));
	OK(close(fd));
	dfd = OK(open(P("sy"), O_RDONLY | O_DIRECTORY));
	OK(fsync(dfd));
	OK(fdatasync(dfd));
	OK(close(dfd));
	sync();
	assert_int_equal(st_of(P("sy/f")).st_size, 100005);
	ERR(fsync(-1), EBADF);
}

static void test_fs_posix_statfs(void **state)
{
	struct statfs sf;
	struct statvfs sv;

	(void)state;
	OK(statfs(M.dir, &sf));
	assert_true(sf.f_bsize > 0);
	assert_true(sf.f_blocks > 0);
	assert_true(sf.f_blocks >= sf.f_bfree);
	assert_true(sf.f_bfree >= sf.f_bavail);
	assert_true(sf.f_files > 0);
	assert_true(sf.f_ffree <= sf.f_files);
	assert_int_equal(sf.f_namelen, 255);
	OK(statvfs(M.dir, &sv));
	assert_int_equal(sv.f_namemax, 255);
	assert_true(sv.f_frsize > 0);
	assert_true(sv.f_blocks >= sv.f_bfree);
	ERR(statfs(P("missing"), &sf), ENOENT);
}

/* ---- fallocate, holes, copy_file_range, mmap ---- */

static void test_fs_posix_fallocate(void **state)
{
	const size_t n = 200000;
	unsigned char *data = xmalloc(n);
	unsigned char *got = xmalloc(n + 1);
	struct stat st;
	int fd;

	(void)state;
	OK(mkdir(P("fa"), 0755));
	fd = OK(open(P("fa/f"), O_CREAT | O_RDWR, 0644));
	OK(fallocate(fd, 0, 0, 100000));
	OK(fstat(fd, &st));
	assert_int_equal(st.st_size, 100000);
	assert_int_equal(read_all(fd, got, n, 0), 100000);
	assert_true(all_zero(got, 100000));
	/* Inside the file nothing changes; KEEP_SIZE past the end keeps the size. */
	write_all(fd, "abc", 3, 50000);
	OK(fallocate(fd, 0, 49000, 2000));
	OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 100000, 50000));
	OK(fstat(fd, &st));
	assert_int_equal(st.st_size, 100000);
	assert_int_equal(read_all(fd, got, 4, 50000), 4);
	assert_memory_equal(got, "abc", 4);
	ERR(fallocate(fd, 0, 0, 0), EINVAL);
	ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
	OK(close(fd));
	fd = OK(open(P("fa/f"), O_RDONLY));
	ERR(fallocate(fd, 0, 0, 10), EBADF);
	OK(close(fd));

	/* Punching: the range reads zeros, the size and the rest stay. */
	pattern(data, n, 11);
	put(P("fa/p"), data, n);
	fd = OK(open(P("fa/p"), O_RDWR));
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5000, 150000));
	memset(data + 5000, 0, 150000);
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10, 10));
	memset(data + 10, 0, 10);
	/* Over the end: zeros up to it, the size stays. */
	OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, n - 100, 1000));
	memset(data + n - 100, 0, 100);
	OK(fstat(fd, &st));
	assert_int_equal(st.st_size, n);
	OK(close(fd));
	expect_content(P("fa/p"), data, n);
	xfree(data);
	xfree(got);
}

static void test_fs_posix_seek_data_hole(void **state)
{
	const off_t second = MiB + 4096;
	const off_t size = second + 4096;
	unsigned char blk[4096];
	off_t r;
	int fd;

	(void)state;
	memset(blk, 0xab, sizeof(blk));
	OK(mkdir(P("sk"), 0755));
	fd = OK(open(P("sk/f"), O_CREAT | O_RDWR, 0644));
	write_all(fd, blk, sizeof(blk), 0);
	write_all(fd, blk, sizeof(blk), second);
	OK(fsync(fd));
	/* What holds on any filesystem, hole-aware or not. */
	assert_int_equal(OK(lseek(fd, 0, SEEK_DATA)), 0);
	r = OK(lseek(fd, 0, SEEK_HOLE));
	assert_true(r >= 4096 && r <= size);
	r = OK(lseek(fd, 8192, SEEK_DATA));
	assert_true(r >= 8192 && r <= second);
	r = OK(lseek(fd, 8192, SEEK_HOLE));
	assert_true(r >= 8192 && r <= size);
	assert_int_equal(OK(lseek(fd, size - 1, SEEK_DATA)), size - 1);
	assert_int_equal(OK(lseek(fd, size - 1, SEEK_HOLE)), size);
	r = OK(lseek(fd, second + 100, SEEK_HOLE));
	assert_int_equal(r, size);
	assert_int_equal(OK(lseek(fd, second + 100, SEEK_DATA)), second + 100);
	ERR(lseek(fd, size, SEEK_DATA), ENXIO);
	ERR(lseek(fd, size + 100, SEEK_DATA), ENXIO);
	ERR(lseek(fd, size, SEEK_HOLE), ENXIO);
	OK(close(fd));
}

static void cfr_all(int in, off_t off_in, int out, off_t off_out, size_t len, size_t expect)
{
	size_t done = 0;

	while (done < len) {
		loff_t i = off_in + (off_t)done, o = off_out + (off_t)done;
		ssize_t n = OK(copy_file_range(in, &i, out, &o, len - done, 0));

		if (n == 0)
			break;
		done += (size_t)n;
	}
	assert_int_equal(done, expect);
}

static void test_fs_posix_copy_file_range(void **state)
{
	const size_t n = 300000;
	unsigned char *src = xmalloc(n);
	unsigned char *want = xmalloc(n);
	ssize_t r;
	int in, out;

	(void)state;
	OK(mkdir(P("cf"), 0755));
	pattern(src, n, 12);
	put(P("cf/src"), src, n);
	in = OK(open(P("cf/src"), O_RDONLY));

	out = OK(open(P("cf/all"), O_CREAT | O_WRONLY, 0644));
	cfr_all(in, 0, out, 0, n, n);
	/* Explicit offsets leave the descriptors' positions alone. */
	assert_int_equal(lseek(in, 0, SEEK_CUR), 0);
	assert_int_equal(lseek(out, 0, SEEK_CUR), 0);
	OK(close(out));
	expect_content(P("cf/all"), src, n);

	/* Into the middle of existing data, at unaligned offsets over chunk boundaries. */
	pattern(want, 200000, 13);
	put(P("cf/mid"), want, 200000);
	out = OK(open(P("cf/mid"), O_WRONLY));
	cfr_all(in, 1000, out, 70000, 150000, 150000);
	memcpy(want + 70000, src + 1000, 150000);
	OK(close(out));
	expect_content(P("cf/mid"), want, 220000);

	/* Across the source's end the copy is short; at its end, nothing. */
	out = OK(open(P("cf/tail"), O_CREAT | O_WRONLY, 0644));
	cfr_all(in, (off_t)n - 1000, out, 0, 5000, 1000);
	{
		loff_t i = (loff_t)n, o = 0;

		assert_int_equal(OK(copy_file_range(in, &i, out, &o, 100, 0)), 0);
	}
	OK(close(out));
	expect_content(P("cf/tail"), src + n - 1000, 1000);

	/* With NULL offsets the descriptors' positions are used and advance. */
	out = OK(open(P("cf/pos"), O_CREAT | O_WRONLY, 0644));
	OK(lseek(in, 65530, SEEK_SET));
	r = OK(copy_file_range(in, NULL, out, NULL, 20, 0));
	assert_true(r > 0 && r <= 20);
	assert_int_equal(lseek(in, 0, SEEK_CUR), 65530 + r);
	assert_int_equal(lseek(out, 0, SEEK_CUR), r);
	OK(close(out));
	expect_content(P("cf/pos"), src + 65530, (size_t)r);
	OK(close(in));
	xfree(src);
	xfree(want);
}

static void test_fs_posix_mmap(void **state)
{
	const size_t n = 200 * KiB;
	unsigned char *data = xmalloc(n);
	unsigned char *map;
	int fd;

	(void)state;
	OK(mkdir(P("mm"), 0755));
	pattern(data, n, 14);
	fd = OK(open(P("mm/f"), O_CREAT | O_RDWR, 0644));
	OK(ftruncate(fd, (off_t)n));
	map = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	memcpy(map, data, n);
	OK(msync(map, n, MS_SYNC));
	OK(munmap(map, n));
	OK(close(fd));
	expect_content(P("mm/f"), data, n);
	/* And the other way: written with write(), read through a mapping. */
	pattern(data, n, 15);
	put(P("mm/g"), data, n);
	fd = OK(open(P("mm/g"), O_RDONLY));
	map = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	assert_memory_equal(map, data, n);
	OK(munmap(map, n));
	OK(close(fd));
	xfree(data);
}

/* ---- ownership of new inodes, set-id bits ---- */

static int child_create_all(const char *dir)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/file", dir);
	C_OK(fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644));
	C_TRUE(write(fd, "mine", 4) == 4);
	close(fd);
	snprintf(p, sizeof(p), "%s/dir", dir);
	C_OK(mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/sym", dir);
	C_OK(symlink("file", p));
	snprintf(p, sizeof(p), "%s/fifo", dir);
	C_OK(mkfifo(p, 0644));
	return 0;
}

static void test_fs_posix_owner_nonroot(void **state)
{
	static const char *names[] = { "file", "dir", "sym", "fifo" };

	(void)state;
	need_root();
	OK(mkdir(P("ow"), 0777));
	OK(chmod(P("ow"), 0777));
	assert_int_equal(as_user(NOBODY, NOBODY, child_create_all, P("ow")), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stat st = lst_of(P("ow/%s", names[i]));

		if (st.st_uid != NOBODY || st.st_gid != NOBODY)
			fail_msg("%s belongs to %d:%d, want %d:%d", names[i], (int)st.st_uid,
				 (int)st.st_gid, NOBODY, NOBODY);
	}
	assert_int_equal(lst_of(P("ow/file")).st_mode, S_IFREG | 0644);
	expect_str(P("ow/file"), "mine");
}

static int child_sgid(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(p, sizeof(p), "%s/cfile", dir);
	C_OK(fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 02755));
	C_OK(fstat(fd, &st));
	close(fd);
	C_TRUE(st.st_gid == OTHER_GID);
	/* Not a member of the group: the new file does not keep the set-group-ID bit. */
	C_TRUE((st.st_mode & 07777) == 0755);
	snprintf(p, sizeof(p), "%s/cdir", dir);
	C_OK(mkdir(p, 0755));
	C_OK(stat(p, &st));
	C_TRUE(st.st_gid == OTHER_GID);
	C_TRUE(st.st_uid == NOBODY);
	C_TRUE((st.st_mode & S_ISGID) != 0);
	return 0;
}

static void test_fs_posix_setgid_dir(void **state)
{
	struct stat st;
	int fd;

	(void)state;
	need_root();
	OK(mkdir(P("sg"), 0755));
	OK(chown(P("sg"), 0, OTHER_GID));
	OK(chmod(P("sg"), 02777));
	assert_int_equal(st_of(P("sg")).st_mode & 07777, 02777);
	fd = OK(open(P("sg/f"), O_CREAT | O_EXCL | O_WRONLY, 0644));
	OK(fstat(fd, &st));
	OK(close(fd));
	assert_int_equal(st.st_gid, OTHER_GID);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & S_ISGID, 0);
	assert_int_equal(st_of(P("sg/f")).st_gid, OTHER_GID);
	OK(mkdir(P("sg/d"), 0755));
	st = st_of(P("sg/d"));
	assert_int_equal(st.st_gid, OTHER_GID);
	assert_int_equal(st.st_mode & 07777, 02755);
	/* ... and it carries on down. */
	OK(mkdir(P("sg/d/e"), 0700));
	st = st_of(P("sg/d/e"));
	assert_int_equal(st.st_gid, OTHER_GID);
	assert_int_equal(st.st_mode & 07777, 02700);
	OK(mkfifo(P("sg/fifo"), 0644));
	assert_int_equal(lst_of(P("sg/fifo")).st_gid, OTHER_GID);
	OK(symlink("f", P("sg/sym")));
	assert_int_equal(lst_of(P("sg/sym")).st_gid, OTHER_GID);
	assert_int_equal(as_user(NOBODY, NOBODY, child_sgid, P("sg")), 0);
	/* A plain directory does not do this. */
	OK(mkdir(P("sgplain"), 0777));
	OK(chown(P("sgplain"), 0, OTHER_GID));
	fd = OK(open(P("sgplain/f"), O_CREAT | O_EXCL | O_WRONLY, 0644));
	OK(close(fd));
	assert_int_equal(st_of(P("sgplain/f")).st_gid, 0);
}

static int child_write(const char *path)
{
	int fd;

	C_OK(fd = open(path, O_WRONLY));
	C_TRUE(write(fd, "w", 1) == 1);
	C_OK(close(fd));
	return 0;
}

static void test_fs_posix_suid_clear(void **state)
{
	int fd;

	(void)state;
	need_root();
	OK(mkdir(P("su"), 0755));
	/* A write by someone else (without CAP_FSETID) clears set-user-ID ... */
	put_str(P("su/u"), "data");
	OK(chmod(P("su/u"), 04777));
	assert_int_equal(as_user(NOBODY, NOBODY, child_write, P("su/u")), 0);
	assert_int_equal(st_of(P("su/u")).st_mode & 07777, 0777);
	/* ... and set-group-ID when group-execute is set. */
	put_str(P("su/g"), "data");
	OK(chmod(P("su/g"), 02777));
	assert_int_equal(as_user(NOBODY, NOBODY, child_write, P("su/g")), 0);
	assert_int_equal(st_of(P("su/g")).st_mode & 07777, 0777);
	/* Root's own write keeps them. */
	put_str(P("su/r"), "data");
	OK(chmod(P("su/r"), 06755));
	fd = OK(open(P("su/r"), O_WRONLY));
	write_all(fd, "x", 1, 0);
	OK(close(fd));
	assert_int_equal(st_of(P("su/r")).st_mode & 07777, 06755);
	/* chown clears both, even by root. */
	OK(chown(P("su/r"), 1000, 1000));
	assert_int_equal(st_of(P("su/r")).st_mode & 07777, 0755);
	put_str(P("su/o"), "data");
	OK(chmod(P("su/o"), 04755));
	OK(chown(P("su/o"), (uid_t)-1, 1000));
	assert_int_equal(st_of(P("su/o")).st_mode & 07777, 0755);
}

/* ---- time updates ---- */

static void expect_new(const char *what, struct timespec t, struct timespec before)
{
	if (t.tv_sec == OLD_SEC || ts_cmp(t, before) <= 0)
		fail_msg("%s not updated: %lld.%09ld, before %lld.%09ld", what, (long long)t.tv_sec,
			 t.tv_nsec, (long long)before.tv_sec, before.tv_nsec);
}

static void test_fs_posix_times(void **state)
{
	static const char *objs[] = { "c",   "u",   "u/a2", "r1", "r2", "l",  "l/f", "t",
				      "w",   "cm",  "co",   "xa", "m1", "m2", "wv" };
	static const char *keep_mtime[] = { "cm", "co", "xa", "u/a2", "l/f" };
	enum { N = sizeof(objs) / sizeof(objs[0]) };
	struct stat before[N], st;
	struct timespec mark;
	int fd;

	(void)state;
	OK(mkdir(P("tm"), 0755));
	for (const char *d = "c\0u\0r1\0r2\0l\0m1\0m2\0m2/sub\0"; *d; d += strlen(d) + 1)
		OK(mkdir(P("tm/%s", d), 0755));
	put_str(P("tm/u/a"), "a");
	OK(link(P("tm/u/a"), P("tm/u/a2")));
	put_str(P("tm/r1/f"), "f");
	put_str(P("tm/l/f"), "f");
	put_str(P("tm/t"), "truncate me");
	put_str(P("tm/w"), "write me");
	put_str(P("tm/wv"), "write me too");
	put_str(P("tm/cm"), "chmod me");
	put_str(P("tm/co"), "chown me");
	put_str(P("tm/xa"), "xattr me");
	for (int i = 0; i < N; i++) {
		set_times(P("tm/%s", objs[i]), OLD_SEC);
		before[i] = lst_of(P("tm/%s", objs[i]));
		assert_int_equal(before[i].st_mtim.tv_sec, OLD_SEC);
	}
	mark = now_real();
	sleep_ms(50); /* past any coarse clock tick */

	fd = OK(open(P("tm/c/new"), O_CREAT | O_EXCL | O_WRONLY, 0644));
	OK(close(fd));
	OK(unlink(P("tm/u/a")));
	OK(rename(P("tm/r1/f"), P("tm/r2/f")));
	OK(link(P("tm/l/f"), P("tm/l/g")));
	OK(truncate(P("tm/t"), 3));
	fd = OK(open(P("tm/w"), O_WRONLY));
	write_all(fd, "W", 1, 2);
	OK(close(fd));
	fd = OK(open(P("tm/wv"), O_WRONLY));
	write_all(fd, "W", 1, 100);
	OK(fsync(fd));
	OK(close(fd));
	OK(chmod(P("tm/cm"), 0600));
	OK(chown(P("tm/co"), geteuid(), getegid()));
	OK(setxattr(P("tm/xa"), "user.t", "1", 1, 0));
	OK(mkdir(P("tm/m1/sub"), 0755));
	OK(rmdir(P("tm/m2/sub")));

	for (int i = 0; i < N; i++) {
		char what[64];
		const char *o = objs[i];
		/* Attribute and link count changes leave mtime alone. */
		bool mtime = true;

		for (size_t k = 0; k < sizeof(keep_mtime) / sizeof(keep_mtime[0]); k++)
			mtime &= strcmp(o, keep_mtime[k]) != 0;

		st = lst_of(P("tm/%s", o));
		snprintf(what, sizeof(what), "ctime of %s", o);
		expect_new(what, st.st_ctim, before[i].st_ctim);
		if (ts_cmp(st.st_ctim, mark) < 0)
			fail_msg("ctime of %s is before the operations", o);
		snprintf(what, sizeof(what), "mtime of %s", o);
		if (mtime)
			expect_new(what, st.st_mtim, before[i].st_ctim);
		else if (st.st_mtim.tv_sec != OLD_SEC || st.st_mtim.tv_nsec != 0)
			fail_msg("%s changed to %lld, want it kept", what,
				 (long long)st.st_mtim.tv_sec);
	}
	assert_int_equal(st_of(P("tm/u/a2")).st_nlink, 1);
	assert_int_equal(st_of(P("tm/l/f")).st_nlink, 2);
	assert_int_equal(st_of(P("tm/m1")).st_nlink, 3);
	assert_int_equal(st_of(P("tm/m2")).st_nlink, 2);
	assert_int_equal(st_of(P("tm/wv")).st_size, 101);
}

/* ---- concurrency ---- */

#define RACE_FILES 8
#define RACE_DIRS 4
#define RACE_ITERS 5000
#define RACE_NS 2000000000LL

struct racer {
	uint64_t seed;
	long ops;
	long unexpected;
};

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void race_check(struct racer *r, int rc, const char *op, int ok1, int ok2)
{
	if (rc == 0 || errno == ok1 || errno == ok2)
		return;
	if (r->unexpected++ < 5)
		fprintf(stderr, "race: %s: %s\n", op, ename(errno));
}

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	char a[PATH_MAX], b[PATH_MAX];
	long long end = mono_ns() + RACE_NS;
	uint64_t s = r->seed;

	for (int it = 0; it < RACE_ITERS && mono_ns() < end; it++) {
		unsigned i = (unsigned)tu_rand_below(&s, RACE_FILES);
		unsigned j = (unsigned)tu_rand_below(&s, RACE_FILES);
		unsigned di = (unsigned)tu_rand_below(&s, RACE_DIRS);
		unsigned dj = (unsigned)tu_rand_below(&s, RACE_DIRS);
		struct stat st;
		int fd, rc;

		PJ(a, "race/f%u", i);
		PJ(b, "race/f%u", j);
		switch (tu_rand_below(&s, 10)) {
		case 0:
			fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
			race_check(r, fd < 0 ? -1 : 0, "create", EEXIST, EEXIST);
			if (fd >= 0)
				close(fd);
			break;
		case 1:
			race_check(r, unlink(a), "unlink", ENOENT, ENOENT);
			break;
		case 2:
			race_check(r, rename(a, b), "rename", ENOENT, ENOENT);
			break;
		case 3:
			race_check(r, link(a, b), "link", ENOENT, EEXIST);
			break;
		case 4:
			race_check(r, rename2(a, b, RENAME_NOREPLACE), "rename noreplace", ENOENT,
				   EEXIST);
			break;
		case 5:
			race_check(r, rename2(a, b, RENAME_EXCHANGE), "rename exchange", ENOENT,
				   ENOENT);
			break;
		case 6:
			/* (nlink may be seen as 0 here: the unlink can land between the
			 * lookup and the attribute copy.) */
			rc = stat(a, &st);
			race_check(r, rc, "stat", ENOENT, ENOENT);
			if (rc == 0 && !S_ISREG(st.st_mode) && r->unexpected++ < 5)
				fprintf(stderr, "race: f%u: mode 0%o\n", i, (unsigned)st.st_mode);
			break;
		case 7:
			PJ(a, "race/d%u", di);
			race_check(r, mkdir(a, 0755), "mkdir", EEXIST, EEXIST);
			break;
		case 8:
			PJ(a, "race/d%u", di);
			race_check(r, rmdir(a), "rmdir", ENOENT, ENOENT);
			break;
		default:
			PJ(a, "race/d%u", di);
			PJ(b, "race/d%u", dj);
			race_check(r, rename(a, b), "rename dir", ENOENT, ENOENT);
			break;
		}
		r->ops++;
	}
	return NULL;
}

static void test_fs_posix_race(void **state)
{
	struct racer r[2] = { { tu_seed() ^ 1, 0, 0 }, { tu_seed() ^ 2, 0, 0 } };
	pthread_t th[2];
	bool listed[RACE_FILES] = { false };
	struct stat st[RACE_FILES];
	int ndirs = 0, dups = 0;
	DIR *d;
	struct dirent *e;

	(void)state;
	memset(st, 0, sizeof(st));
	OK(mkdir(P("race"), 0755));
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	print_message("race: %ld + %ld operations\n", r[0].ops, r[1].ops);
	assert_int_equal(r[0].unexpected + r[1].unexpected, 0);

	/* Every listed name is there, link counts match the names, unlisted names are gone. */
	d = xopendir(P("race"));
	while ((e = readdir(d)) != NULL) {
		unsigned k;
		char c;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (sscanf(e->d_name, "f%u%c", &k, &c) == 1 && k < RACE_FILES) {
			dups += listed[k];
			listed[k] = true;
			st[k] = lst_of(P("race/%s", e->d_name));
			assert_true(S_ISREG(st[k].st_mode));
		} else if (sscanf(e->d_name, "d%u%c", &k, &c) == 1 && k < RACE_DIRS) {
			assert_true(S_ISDIR(lst_of(P("race/%s", e->d_name)).st_mode));
			ndirs++;
		} else {
			fail_msg("unexpected entry %s", e->d_name);
		}
	}
	xclosedir(d);
	assert_int_equal(dups, 0);
	for (int i = 0; i < RACE_FILES; i++) {
		struct stat x;
		nlink_t names = 0;

		if (!listed[i]) {
			ERR(lstat(P("race/f%d", i), &x), ENOENT);
			continue;
		}
		for (int j = 0; j < RACE_FILES; j++)
			names += listed[j] && st[j].st_ino == st[i].st_ino;
		if (st[i].st_nlink != names)
			fail_msg("f%d has nlink %d but %d names", i, (int)st[i].st_nlink,
				 (int)names);
	}
	assert_int_equal(st_of(P("race")).st_nlink, 2 + ndirs);
	for (int i = 0; i < RACE_FILES; i++) {
		if (listed[i])
			OK(unlink(P("race/f%d", i)));
	}
	for (int i = 0; i < RACE_DIRS; i++) {
		if (rmdir(P("race/d%d", i)) != 0)
			assert_int_equal(errno, ENOENT);
	}
	OK(rmdir(P("race")));
}

/* ---- the group ---- */

/* After each test: close what a failed test left open in the mount, so that one failure does
 * not keep the mount busy (and unmountable) or cascade into the next tests. */
static int test_teardown(void **state)
{
	size_t dlen = strlen(M.dir);
	DIR *fds;
	struct dirent *e;

	(void)state;
	for (int i = 0; i < 16; i++) {
		free(test_bufs[i]);
		test_bufs[i] = NULL;
	}
	for (int i = 0; i < 8; i++) {
		if (open_dirs[i]) {
			closedir(open_dirs[i]);
			open_dirs[i] = NULL;
		}
	}
	fds = opendir("/proc/self/fd");
	if (!fds)
		return 0;
	while ((e = readdir(fds)) != NULL) {
		char link[64], target[PATH_MAX];
		int fd = atoi(e->d_name);
		ssize_t n;

		if (fd <= 2 || fd == dirfd(fds))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, M.dir, dlen) == 0 && (target[dlen] == '/' || !target[dlen])) {
			fprintf(stderr, "# closing descriptor %d left open on %s\n", fd, target);
			close(fd);
		}
	}
	closedir(fds);
	return 0;
}

static int group_setup(void **state)
{
	const char *extra = getenv("FRACTIO_TEST_OPTS");

	(void)state;
	if (mnt_setup(&M, "posix") != 0)
		return -1;
	/* As root, children that switch to another uid must be let into the mount. */
	if (is_root && !mnt_is_plain(&M))
		snprintf(M.opts, sizeof(M.opts), "allow_other");
	if (extra && *extra) {
		size_t n = strlen(M.opts);

		snprintf(M.opts + n, sizeof(M.opts) - n, "%s%s", n ? "," : "", extra);
	}
	if (mnt_start(&M) != 0) {
		mnt_teardown(&M);
		return -1;
	}
	if (chmod(M.dir, 0755) != 0) {
		fprintf(stderr, "chmod %s: %s\n", M.dir, strerror(errno));
		return -1;
	}
	fprintf(stderr, "# testing in %s%s\n", M.dir, mnt_is_plain(&M) ? " (plain directory)" : "");
	return 0;
}

static int group_teardown(void **state)
{
	int rc;

	(void)state;
	rc = mnt_stop(&M);
	if (rc != 0)
		fprintf(stderr, "the daemon did not stop cleanly\n");
	mnt_teardown(&M);
	return rc;
}

int main(void)
{
#define TEST(f) cmocka_unit_test_teardown(f, test_teardown)
	const struct CMUnitTest tests[] = {
		TEST(test_fs_posix_open_create),
		TEST(test_fs_posix_trunc_append),
		TEST(test_fs_posix_read_write),
		TEST(test_fs_posix_stat_fields),
		TEST(test_fs_posix_chmod_chown),
		TEST(test_fs_posix_utimens),
		TEST(test_fs_posix_truncate),
		TEST(test_fs_posix_mknod),
		TEST(test_fs_posix_mkdir_rmdir),
		TEST(test_fs_posix_unlink),
		TEST(test_fs_posix_symlink),
		TEST(test_fs_posix_link),
		TEST(test_fs_posix_rename_file),
		TEST(test_fs_posix_rename_flags),
		TEST(test_fs_posix_rename_dir),
		TEST(test_fs_posix_name_max),
		TEST(test_fs_posix_readdir_exact),
		TEST(test_fs_posix_readdir_concurrent),
		TEST(test_fs_posix_xattr),
		TEST(test_fs_posix_access),
		TEST(test_fs_posix_sync),
		TEST(test_fs_posix_statfs),
		TEST(test_fs_posix_fallocate),
		TEST(test_fs_posix_seek_data_hole),
		TEST(test_fs_posix_copy_file_range),
		TEST(test_fs_posix_mmap),
		TEST(test_fs_posix_owner_nonroot),
		TEST(test_fs_posix_setgid_dir),
		TEST(test_fs_posix_suid_clear),
		TEST(test_fs_posix_times),
		TEST(test_fs_posix_race),
	};
#undef TEST
	int rc;

	umask(022);
	is_root = geteuid() == 0;
	rc = mnt_require_fuse();
	if (rc != 0)
		return rc;
	return cmocka_run_group_tests_name("fs_posix", tests, group_setup, group_teardown);
}
