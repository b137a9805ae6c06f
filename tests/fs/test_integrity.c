/* SPDX-License-Identifier: MIT */
/*
 * test_integrity.c - a random file exerciser on the mounted filesystem, checked against an
 * in-memory model after every operation.
 *
 * A few files are driven by a seeded PRNG (FR_SEED repeats a run; the seed is printed) through
 * FR_FS_OPS operations (default 20000): pwrite at a random offset (sizes skewed small, up to
 * 8 MiB, offsets up to 256 MiB so files are sparse), pread, ftruncate up and down, fallocate
 * PUNCH_HOLE|KEEP_SIZE, append through an O_APPEND descriptor, writes and reads through a shared
 * mapping (msync), reopen (sometimes with O_TRUNC) and fsync. The model keeps each file as a
 * table of 64 KiB pages allocated on demand (NULL reads as zeros), with the invariant that no
 * byte at or past the size is non-zero, so growing a file exposes zeros as POSIX demands.
 *
 * After every operation: st_size equals the model's size, and the touched region and a random
 * region read back equal the model (a read past the end must come back short). Every 1000
 * operations every file is compared whole (files over 64 MiB by SEEK_DATA/SEEK_HOLE after an
 * fdatasync: data ranges read in full, each hole must be zeros in the model and is sampled). At
 * half time the filesystem is unmounted and mounted again, and at the end every file is read
 * whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

#define NFILES 4
#define PG_LEN (64u * 1024)
#define FILE_MAX (256ull << 20)
#define NPG ((size_t)(FILE_MAX / PG_LEN))
#define WRITE_MAX (8u << 20)
#define IO_LEN (1u << 20)	    /* the unit of whole-file compares */
#define SAMPLE_MAX (128u * 1024)    /* the random region checked after each operation */
#define FULL_EVERY 1000
#define FULL_READ_MAX (64ull << 20) /* larger files are compared by SEEK_DATA/SEEK_HOLE */
#define DEFAULT_OPS 20000

struct mfile {
	char path[PATH_MAX];
	int fd;	 /* O_RDWR */
	int afd; /* O_WRONLY | O_APPEND */
	uint64_t size;
	uint8_t **pg; /* NPG pages, NULL = zeros */
};

struct integ {
	struct mnt m;
	bool set_up;
	struct mfile f[NFILES];
	uint64_t rng;
	uint64_t seed;
	uint64_t op; /* index of the operation being done */
	const char *what;
	uint64_t written;
	uint64_t full_cmp_bytes;
	uint8_t *wbuf; /* data to write, WRITE_MAX */
	uint8_t *rbuf; /* data read back, WRITE_MAX */
	uint8_t *zero; /* PG_LEN zeros */
	long pagesz;
};

/* ---- the model ---- */

static void model_write(struct mfile *f, uint64_t off, const uint8_t *src, size_t len)
{
	while (len) {
		size_t i = (size_t)(off / PG_LEN), in = (size_t)(off % PG_LEN);
		size_t n = PG_LEN - in < len ? PG_LEN - in : len;
		if (!f->pg[i]) {
			f->pg[i] = calloc(1, PG_LEN);
			assert_non_null(f->pg[i]);
		}
		memcpy(f->pg[i] + in, src, n);
		off += n;
		src += n;
		len -= n;
	}
}

/* Zeroes [off, off+len) in the model (pages that become wholly zero are freed). */
static void model_zero(struct mfile *f, uint64_t off, uint64_t len)
{
	if (off >= FILE_MAX)
		return;
	if (len > FILE_MAX - off)
		len = FILE_MAX - off;
	while (len) {
		size_t i = (size_t)(off / PG_LEN), in = (size_t)(off % PG_LEN);
		size_t n = PG_LEN - in < len ? PG_LEN - in : (size_t)len;
		if (f->pg[i]) {
			if (n == PG_LEN) {
				free(f->pg[i]);
				f->pg[i] = NULL;
			} else {
				memset(f->pg[i] + in, 0, n);
			}
		}
		off += n;
		len -= n;
	}
}

static void model_truncate(struct mfile *f, uint64_t size)
{
	if (size < f->size)
		model_zero(f, size, f->size - size);
	f->size = size;
}

/* The model's bytes at [off, off+len) (the range lies below FILE_MAX). */
static const uint8_t *model_at(const struct integ *s, const struct mfile *f, uint64_t off,
			       size_t *n)
{
	size_t i = (size_t)(off / PG_LEN), in = (size_t)(off % PG_LEN);
	if (*n > PG_LEN - in)
		*n = PG_LEN - in;
	return f->pg[i] ? f->pg[i] + in : s->zero + in;
}

/* Compares got[0..len) with the model at off; on a difference fails the test, naming it. */
static void model_cmp(const struct integ *s, int k, uint64_t off, const uint8_t *got, size_t len)
{
	const struct mfile *f = &s->f[k];
	size_t done = 0;
	while (done < len) {
		size_t n = len - done;
		const uint8_t *want = model_at(s, f, off + done, &n);
		if (memcmp(want, got + done, n) != 0) {
			size_t j = 0;
			while (want[j] == got[done + j])
				j++;
			fail_msg("op %" PRIu64 " (%s) file %d: byte %" PRIu64 " is 0x%02x, model "
				 "0x%02x (size %" PRIu64 ", seed %" PRIu64 ")",
				 s->op, s->what, k, off + done + j, got[done + j], want[j], f->size,
				 s->seed);
		}
		done += n;
	}
}

static bool model_is_zero(const struct integ *s, const struct mfile *f, uint64_t off,
			  uint64_t len, uint64_t *bad)
{
	while (len) {
		size_t n = len > PG_LEN ? PG_LEN : (size_t)len;
		const uint8_t *p = model_at(s, f, off, &n);
		if (p < s->zero || p >= s->zero + PG_LEN) {
			for (size_t j = 0; j < n; j++) {
				if (p[j]) {
					*bad = off + j;
					return false;
				}
			}
		}
		off += n;
		len -= n;
	}
	return true;
}

/* ---- checks against the real file ---- */

/* Reads up to len bytes at off until the end of file. */
static size_t read_full(struct integ *s, int k, uint64_t off, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(s->f[k].fd, buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail_msg("op %" PRIu64 " (%s) file %d: pread %zu at %" PRIu64 ": %s "
				 "(seed %" PRIu64 ")",
				 s->op, s->what, k, len - got, off + got, strerror(errno), s->seed);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* Reads [off, off+len) back (clipped to FILE_MAX) and compares it, and the length of the read,
 * with the model. len <= WRITE_MAX. */
static void check_range(struct integ *s, int k, uint64_t off, uint64_t len)
{
	struct mfile *f = &s->f[k];
	if (off > FILE_MAX)
		off = FILE_MAX;
	if (len > FILE_MAX - off)
		len = FILE_MAX - off;
	if (len > WRITE_MAX)
		len = WRITE_MAX;
	size_t want = off >= f->size ? 0 : (size_t)(f->size - off < len ? f->size - off : len);
	size_t got = read_full(s, k, off, s->rbuf, (size_t)len);
	if (got != want)
		fail_msg("op %" PRIu64 " (%s) file %d: read of %" PRIu64 " at %" PRIu64 " returned "
			 "%zu bytes, model size %" PRIu64 " says %zu (seed %" PRIu64 ")",
			 s->op, s->what, k, len, off, got, f->size, want, s->seed);
	model_cmp(s, k, off, s->rbuf, got);
}

static void check_size(struct integ *s, int k)
{
	struct stat st;
	assert_int_equal(fstat(s->f[k].fd, &st), 0);
	if ((uint64_t)st.st_size != s->f[k].size)
		fail_msg("op %" PRIu64 " (%s) file %d: st_size %" PRIu64 ", model %" PRIu64
			 " (seed %" PRIu64 ")",
			 s->op, s->what, k, (uint64_t)st.st_size, s->f[k].size, s->seed);
}

/* Reads the whole of [from, to) in IO_LEN pieces and compares. */
static void check_span(struct integ *s, int k, uint64_t from, uint64_t to)
{
	for (uint64_t off = from; off < to; off += IO_LEN) {
		uint64_t n = to - off < IO_LEN ? to - off : IO_LEN;
		size_t got = read_full(s, k, off, s->rbuf, (size_t)n);
		if (got != n)
			fail_msg("op %" PRIu64 " (%s) file %d: short read at %" PRIu64 ": %zu of %"
				 PRIu64 " (size %" PRIu64 ", seed %" PRIu64 ")",
				 s->op, s->what, k, off, got, n, s->f[k].size, s->seed);
		model_cmp(s, k, off, s->rbuf, got);
		s->full_cmp_bytes += got;
	}
}

/* Compares file k whole: by reading every byte, or (for a large file when whole is false) by
 * walking SEEK_DATA/SEEK_HOLE, reading data ranges in full, requiring zeros in the model under
 * each hole and sampling its two ends. Then the end of file must read as end of file. */
static void check_file(struct integ *s, int k, bool whole)
{
	struct mfile *f = &s->f[k];
	check_size(s, k);
	if (whole || f->size <= FULL_READ_MAX) {
		check_span(s, k, 0, f->size);
	} else {
		/* FUSE does not write back cached dirty pages before asking the daemon for
		 * SEEK_DATA, so make them reach it first. */
		assert_int_equal(fdatasync(f->fd), 0);
		uint64_t pos = 0;
		while (pos < f->size) {
			off_t d = lseek(f->fd, (off_t)pos, SEEK_DATA);
			if (d < 0 && errno == ENXIO)
				d = (off_t)f->size;
			if (d < 0 || (uint64_t)d < pos || (uint64_t)d > f->size)
				fail_msg("op %" PRIu64 " file %d: SEEK_DATA from %" PRIu64 " gave %"
					 PRId64 " (%s), size %" PRIu64 " (seed %" PRIu64 ")",
					 s->op, k, pos, (int64_t)d, d < 0 ? strerror(errno) : "-",
					 f->size, s->seed);
			uint64_t bad;
			if (!model_is_zero(s, f, pos, (uint64_t)d - pos, &bad))
				fail_msg("op %" PRIu64 " file %d: byte %" PRIu64 " is in a hole "
					 "[%" PRIu64 ", %" PRId64 ") but not zero in the model (seed %"
					 PRIu64 ")",
					 s->op, k, bad, pos, (int64_t)d, s->seed);
			uint64_t hole = (uint64_t)d - pos;
			check_span(s, k, pos, pos + (hole < PG_LEN ? hole : PG_LEN));
			if (hole > PG_LEN)
				check_span(s, k, (uint64_t)d - PG_LEN, (uint64_t)d);
			if ((uint64_t)d >= f->size)
				break;
			off_t h = lseek(f->fd, d, SEEK_HOLE);
			if (h <= d || (uint64_t)h > f->size)
				fail_msg("op %" PRIu64 " file %d: SEEK_HOLE from %" PRId64 " gave %"
					 PRId64 ", size %" PRIu64 " (seed %" PRIu64 ")",
					 s->op, k, (int64_t)d, (int64_t)h, f->size, s->seed);
			check_span(s, k, (uint64_t)d, (uint64_t)h);
			pos = (uint64_t)h;
		}
	}
	check_range(s, k, f->size, PG_LEN);
}

static void check_all(struct integ *s, bool whole)
{
	for (int k = 0; k < NFILES; k++)
		check_file(s, k, whole);
}

/* ---- helpers ---- */

static void fill_random(struct integ *s, uint8_t *p, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t v = tu_rand(&s->rng);
		memcpy(p + i, &v, 8);
	}
	if (i < len) {
		uint64_t v = tu_rand(&s->rng);
		memcpy(p + i, &v, len - i);
	}
}

/* A transfer size: mostly a few KiB, sometimes up to 1 MiB, rarely up to WRITE_MAX (about
 * 60 KiB on average, so 20000 operations write some 600 MiB); a fifth of them whole 4 KiB or
 * 64 KiB units (chunk-sized writes avoid read-modify-write). */
static size_t rand_len(struct integ *s)
{
	uint64_t r = tu_rand_below(&s->rng, 1000);
	size_t len;
	if (r < 630)
		len = 1 + (size_t)tu_rand_below(&s->rng, 4096);
	else if (r < 936)
		len = 1 + (size_t)tu_rand_below(&s->rng, 64 * 1024);
	else if (r < 996)
		len = 1 + (size_t)tu_rand_below(&s->rng, 1u << 20);
	else
		len = 1 + (size_t)tu_rand_below(&s->rng, WRITE_MAX);
	if (tu_rand_below(&s->rng, 5) == 0) {
		size_t unit = len >= PG_LEN / 2 && tu_rand_below(&s->rng, 2) ? PG_LEN : 4096;
		len = (len + unit - 1) / unit * unit;
		if (len > WRITE_MAX)
			len = WRITE_MAX;
	}
	return len;
}

/* An offset for an operation of len bytes on f: mostly inside the file or just past it,
 * sometimes in the first 16 MiB, rarely anywhere below FILE_MAX. */
static uint64_t rand_off(struct integ *s, const struct mfile *f, size_t len)
{
	uint64_t r = tu_rand_below(&s->rng, 100), off;
	if (r < 50)
		off = tu_rand_below(&s->rng, f->size + 1);
	else if (r < 75)
		off = tu_rand_below(&s->rng, 16u << 20);
	else if (r < 97)
		off = f->size + tu_rand_below(&s->rng, 1u << 20);
	else
		off = tu_rand_below(&s->rng, FILE_MAX);
	if (tu_rand_below(&s->rng, 5) == 0)
		off &= ~(uint64_t)(tu_rand_below(&s->rng, 2) ? 4095 : PG_LEN - 1);
	if (off + len > FILE_MAX)
		off = FILE_MAX - len;
	return off;
}

static void write_all(struct integ *s, int k, int fd, bool positional, uint64_t off,
		      const uint8_t *p, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = positional ? pwrite(fd, p + done, len - done, (off_t)(off + done))
				       : write(fd, p + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("op %" PRIu64 " (%s) file %d: write of %zu at %" PRIu64 ": %s "
				 "(seed %" PRIu64 ")",
				 s->op, s->what, k, len - done, off + done,
				 r < 0 ? strerror(errno) : "wrote 0", s->seed);
		done += (size_t)r;
	}
	s->written += len;
}

static void open_file(struct integ *s, int k, bool trunc)
{
	struct mfile *f = &s->f[k];
	f->fd = open(f->path, O_RDWR | O_CREAT | (trunc ? O_TRUNC : 0), 0644);
	if (f->fd < 0)
		fail_msg("open %s: %s", f->path, strerror(errno));
	f->afd = open(f->path, O_WRONLY | O_APPEND);
	if (f->afd < 0)
		fail_msg("open %s O_APPEND: %s", f->path, strerror(errno));
}

static void close_file(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	int fd = f->fd, afd = f->afd;
	f->fd = f->afd = -1;
	/* close reports the errors of the flush (written-back data) on FUSE */
	if (fd >= 0 && close(fd) != 0)
		fail_msg("op %" PRIu64 " file %d: close: %s", s->op, k, strerror(errno));
	if (afd >= 0 && close(afd) != 0)
		fail_msg("op %" PRIu64 " file %d: close O_APPEND: %s", s->op, k, strerror(errno));
}

/* ---- the operations; each returns the region it touched for the check ---- */

struct touched {
	uint64_t off, len;
};

static struct touched op_pwrite(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	size_t len = rand_len(s);
	uint64_t off = rand_off(s, f, len);
	fill_random(s, s->wbuf, len);
	write_all(s, k, f->fd, true, off, s->wbuf, len);
	model_write(f, off, s->wbuf, len);
	if (off + len > f->size)
		f->size = off + len;
	return (struct touched){off, len};
}

static struct touched op_append(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	size_t len = rand_len(s);
	if (len > FILE_MAX - f->size)
		len = (size_t)(FILE_MAX - f->size);
	uint64_t off = f->size;
	fill_random(s, s->wbuf, len);
	write_all(s, k, f->afd, false, off, s->wbuf, len);
	model_write(f, off, s->wbuf, len);
	f->size += len;
	return (struct touched){off, len};
}

static struct touched op_truncate(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	uint64_t r = tu_rand_below(&s->rng, 100), size;
	if (r < 55)
		size = tu_rand_below(&s->rng, f->size + 1);
	else if (r < 92)
		size = f->size + tu_rand_below(&s->rng, 4u << 20);
	else
		size = tu_rand_below(&s->rng, FILE_MAX + 1);
	if (tu_rand_below(&s->rng, 4) == 0)
		size &= ~(uint64_t)(PG_LEN - 1);
	if (size > FILE_MAX)
		size = FILE_MAX;
	if (ftruncate(f->fd, (off_t)size) != 0)
		fail_msg("op %" PRIu64 " file %d: ftruncate %" PRIu64 ": %s (seed %" PRIu64 ")",
			 s->op, k, size, strerror(errno), s->seed);
	uint64_t lo = size < f->size ? size : f->size, d = size < f->size ? f->size - size
									  : size - f->size;
	model_truncate(f, size);
	lo = lo > 4096 ? lo - 4096 : 0;
	return (struct touched){lo, 8192 + (d < (1u << 20) ? d : (1u << 20))};
}

static struct touched op_punch(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	uint64_t len = rand_len(s);
	uint64_t off = tu_rand_below(&s->rng, 8) ? tu_rand_below(&s->rng, f->size + 1)
						  : rand_off(s, f, (size_t)len);
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) != 0)
		fail_msg("op %" PRIu64 " file %d: fallocate PUNCH_HOLE [%" PRIu64 ", +%" PRIu64
			 "): %s (seed %" PRIu64 ")",
			 s->op, k, off, len, strerror(errno), s->seed);
	if (off < f->size)
		model_zero(f, off, len < f->size - off ? len : f->size - off);
	off = off > 4096 ? off - 4096 : 0;
	return (struct touched){off, len + 8192};
}

/* Maps a region within the size, compares it through the mapping, writes part of it through
 * the mapping and msyncs. */
static struct touched op_mmap(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	if (f->size == 0)
		return (struct touched){0, PG_LEN};
	uint64_t off = tu_rand_below(&s->rng, f->size);
	uint64_t left = f->size - off;
	size_t len = rand_len(s);
	if (len > left)
		len = (size_t)left;
	if (len > (1u << 20))
		len = 1u << 20;
	uint64_t map_off = off & ~(uint64_t)(s->pagesz - 1);
	size_t map_len = (size_t)(off + len - map_off);
	uint8_t *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd,
			  (off_t)map_off);
	if (p == MAP_FAILED)
		fail_msg("op %" PRIu64 " file %d: mmap %zu at %" PRIu64 ": %s (seed %" PRIu64 ")",
			 s->op, k, map_len, map_off, strerror(errno), s->seed);
	uint8_t *at = p + (off - map_off);
	/* copy out before comparing so that a failure does not leave the mapping behind */
	memcpy(s->rbuf, at, len);
	size_t wlen = 1 + (size_t)tu_rand_below(&s->rng, len);
	uint64_t woff = off + tu_rand_below(&s->rng, len - wlen + 1);
	fill_random(s, s->wbuf, wlen);
	memcpy(p + (woff - map_off), s->wbuf, wlen);
	int rc = msync(p, map_len, MS_SYNC);
	int msync_errno = errno;
	munmap(p, map_len);
	model_cmp(s, k, off, s->rbuf, len);
	if (rc != 0)
		fail_msg("op %" PRIu64 " file %d: msync: %s (seed %" PRIu64 ")", s->op, k,
			 strerror(msync_errno), s->seed);
	model_write(f, woff, s->wbuf, wlen);
	s->written += wlen;
	return (struct touched){off, len};
}

static struct touched op_pread(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	uint64_t off = tu_rand_below(&s->rng, f->size + PG_LEN);
	return (struct touched){off, rand_len(s)};
}

static struct touched op_reopen(struct integ *s, int k)
{
	bool trunc = tu_rand_below(&s->rng, 10) == 0;
	close_file(s, k);
	open_file(s, k, trunc);
	if (trunc)
		model_truncate(&s->f[k], 0);
	return (struct touched){0, PG_LEN};
}

static struct touched op_fsync(struct integ *s, int k)
{
	struct mfile *f = &s->f[k];
	bool data = tu_rand_below(&s->rng, 2);
	if ((data ? fdatasync(f->fd) : fsync(f->fd)) != 0)
		fail_msg("op %" PRIu64 " file %d: %s: %s (seed %" PRIu64 ")", s->op, k,
			 data ? "fdatasync" : "fsync", strerror(errno), s->seed);
	uint64_t off = tu_rand_below(&s->rng, f->size + 1);
	return (struct touched){off, SAMPLE_MAX};
}

struct op {
	const char *name;
	unsigned weight;
	struct touched (*fn)(struct integ *s, int k);
};

static const struct op ops[] = {
	{"pwrite", 30, op_pwrite}, {"pread", 12, op_pread},   {"truncate", 8, op_truncate},
	{"punch", 8, op_punch},	   {"append", 14, op_append}, {"mmap", 10, op_mmap},
	{"reopen", 5, op_reopen},  {"fsync", 4, op_fsync},
};

static const struct op *pick_op(struct integ *s)
{
	unsigned total = 0;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		total += ops[i].weight;
	unsigned r = (unsigned)tu_rand_below(&s->rng, total);
	for (size_t i = 0;; i++) {
		if (r < ops[i].weight)
			return &ops[i];
		r -= ops[i].weight;
	}
}

/* ---- the test ---- */

static void remount(struct integ *s)
{
	for (int k = 0; k < NFILES; k++)
		close_file(s, k);
	assert_int_equal(mnt_stop(&s->m), 0);
	assert_int_equal(mnt_start(&s->m), 0);
	for (int k = 0; k < NFILES; k++)
		open_file(s, k, false);
}

static uint64_t env_count(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void test_fs_integrity_random_ops(void **state)
{
	struct integ *s = *state;
	uint64_t nops = env_count("FR_FS_OPS", DEFAULT_OPS);
	uint64_t counts[sizeof(ops) / sizeof(ops[0])] = {0};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int k = 0; k < NFILES; k++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "file%d", k);
		mnt_path(&s->m, rel, s->f[k].path);
		open_file(s, k, true);
	}
	for (s->op = 0; s->op < nops; s->op++) {
		if (s->op == nops / 2 && s->op > 0) {
			s->what = "remount";
			remount(s);
			check_all(s, true);
		}
		int k = (int)tu_rand_below(&s->rng, NFILES);
		const struct op *o = pick_op(s);
		s->what = o->name;
		struct touched t = o->fn(s, k);
		counts[o - ops]++;
		check_size(s, k);
		check_range(s, k, t.off, t.len);
		struct mfile *f = &s->f[k];
		check_range(s, k, tu_rand_below(&s->rng, f->size + 1),
			    1 + tu_rand_below(&s->rng, SAMPLE_MAX));
		if ((s->op + 1) % FULL_EVERY == 0) {
			s->what = "full compare";
			check_all(s, false);
		}
	}
	s->what = "final compare";
	check_all(s, true);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t sizes = 0;
	for (int k = 0; k < NFILES; k++)
		sizes += s->f[k].size;
	printf("# integrity: %" PRIu64 " ops (", nops);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		printf("%s%s %" PRIu64, i ? ", " : "", ops[i].name, counts[i]);
	printf("), %" PRIu64 " MiB written, %" PRIu64 " MiB compared whole, final sizes %" PRIu64
	       " MiB, %.1f s, %s, seed %" PRIu64 "\n",
	       s->written >> 20, s->full_cmp_bytes >> 20, sizes >> 20,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       mnt_is_plain(&s->m) ? "plain directory" : "fractiofs", s->seed);
}

static int teardown(void **state);

static int setup(void **state)
{
	struct integ *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->seed = tu_seed();
	s->rng = s->seed;
	s->pagesz = sysconf(_SC_PAGESIZE);
	s->wbuf = malloc(WRITE_MAX);
	s->rbuf = malloc(WRITE_MAX);
	s->zero = calloc(1, PG_LEN);
	for (int k = 0; k < NFILES; k++) {
		s->f[k].fd = s->f[k].afd = -1;
		s->f[k].pg = calloc(NPG, sizeof(*s->f[k].pg));
		if (!s->f[k].pg)
			goto fail;
	}
	if (!s->wbuf || !s->rbuf || !s->zero)
		goto fail;
	if (mnt_setup(&s->m, "integrity") != 0)
		goto fail;
	s->set_up = true;
	if (mnt_start(&s->m) != 0)
		goto fail;
	*state = s;
	return 0;
fail:
	/* cmocka runs no teardown after a failed setup */
	teardown((void **)&s);
	return -1;
}

static int teardown(void **state)
{
	struct integ *s = *state;
	if (!s)
		return 0;
	for (int k = 0; k < NFILES; k++) {
		if (s->f[k].fd >= 0)
			close(s->f[k].fd);
		if (s->f[k].afd >= 0)
			close(s->f[k].afd);
		if (s->f[k].pg) {
			for (size_t i = 0; i < NPG; i++)
				free(s->f[k].pg[i]);
			free(s->f[k].pg);
		}
	}
	if (s->set_up)
		mnt_teardown(&s->m);
	free(s->wbuf);
	free(s->rbuf);
	free(s->zero);
	free(s);
	return 0;
}

int main(void)
{
	int rc = mnt_require_fuse(); /* 0 in plain-directory mode */
	if (rc)
		return rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_integrity_random_ops, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
