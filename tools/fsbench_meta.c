/* SPDX-License-Identifier: MIT */
/*
 * fsbench_meta.c - the timing helper of tools/fsbench: runs one phase of a file workload in a
 * single process, so that a fork per file does not drown what is measured, and prints the result
 * as one line of JSON. tools/fsbench compiles it with cc into a temporary directory; it is not
 * part of the CMake build.
 *
 * usage: fsbench_meta PHASE DIR [-n FILES] [-d DIRS] [-s BYTES]
 *
 * The many-files phases work on DIR/dNN/fNNNNNNN, file i in directory i % DIRS:
 *   create    make the DIRS directories, then create FILES empty files (open O_CREAT|O_EXCL,
 *             close); mkdir is not counted
 *   write     the same, each file getting BYTES bytes in one write(2)
 *   stat      stat(2) every file by path; each must have BYTES bytes (0 after create)
 *   list      read every directory with readdir(3), without stat; the entries must add up to
 *             FILES; one operation is one entry
 *   read      read every file whole; each must have BYTES bytes
 *   delete    unlink every file, then remove the directories; one operation is one file
 * The streaming phases work on the file DIR/seq.bin:
 *   seqwrite  write BYTES in 1 MiB writes, then fsync(2) (inside the timing)
 *   seqread   read the file in 1 MiB reads; with -s it must have BYTES bytes
 * The data written is pseudo-random, each 4 KiB block stamped with its number, so that neither
 * compression nor deduplication makes it cheaper.
 *
 * Output: {"phase":"create","ops":10000,"bytes":0,"seconds":0.123456,"ops_per_s":81000.0,
 * "mib_per_s":0.00} on one line. Exit status 0, 1 when an operation fails (with a message on
 * stderr), EX_USAGE (64) for a bad command line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define SEQ_NAME "seq.bin"
#define SEQ_BUF_LEN (1u << 20)
#define BLOCK_LEN 4096u

struct bench {
	const char *phase;
	const char *dir;
	unsigned long files;	/* -n */
	unsigned long dirs;	/* -d */
	unsigned long long size; /* -s, bytes */
	bool size_given;
	char *buf;		/* data for writes, room for reads */
	size_t buf_len;
	unsigned long ops;	/* counted by the phase */
	unsigned long long bytes; /* moved by the phase */
};

static const char usage_text[] =
	"usage: fsbench_meta create|write|stat|list|read|delete DIR [-n FILES] [-d DIRS] [-s BYTES]\n"
	"       fsbench_meta seqwrite|seqread DIR [-s BYTES]\n";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fills the buffer with xorshift64 output and stamps each 4 KiB block with blk, blk + 1, ... */
static void fill(char *buf, size_t len, uint64_t *state, uint64_t blk)
{
	uint64_t x = *state;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	for (i = 0; i + 8 <= len; i += BLOCK_LEN, blk++)
		memcpy(buf + i, &blk, 8);
	*state = x;
}

static void dir_path(const struct bench *b, unsigned long d, char *out)
{
	snprintf(out, PATH_MAX, "%s/d%02lu", b->dir, d);
}

static void file_path(const struct bench *b, unsigned long i, char *out)
{
	snprintf(out, PATH_MAX, "%s/d%02lu/f%07lu", b->dir, i % b->dirs, i);
}

/* write(2) all of len bytes. 0 or -1 with errno set. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads fd to its end; the byte count goes to *total. 0 or -1 with errno set. */
static int read_to_end(int fd, char *buf, size_t len, unsigned long long *total)
{
	*total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		*total += (unsigned long long)n;
	}
}

static int make_dirs(const struct bench *b)
{
	char path[PATH_MAX];
	unsigned long d;

	for (d = 0; d < b->dirs; d++) {
		dir_path(b, d, path);
		if (mkdir(path, 0755) == -1) {
			warn("mkdir %s", path);
			return -1;
		}
	}
	return 0;
}

/* create and write: one open, [one write,] one close per file. */
static int phase_create(struct bench *b, bool with_data)
{
	char path[PATH_MAX];
	unsigned long i;
	int fd;

	for (i = 0; i < b->files; i++) {
		file_path(b, i, path);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd == -1) {
			warn("create %s", path);
			return -1;
		}
		if (with_data && write_all(fd, b->buf, (size_t)b->size) == -1) {
			warn("write %s", path);
			close(fd);
			return -1;
		}
		if (close(fd) == -1) {
			warn("close %s", path);
			return -1;
		}
		b->ops++;
		b->bytes += with_data ? b->size : 0;
	}
	return 0;
}

static int phase_stat(struct bench *b)
{
	char path[PATH_MAX];
	struct stat st;
	unsigned long i;

	for (i = 0; i < b->files; i++) {
		file_path(b, i, path);
		if (stat(path, &st) == -1) {
			warn("stat %s", path);
			return -1;
		}
		if (!S_ISREG(st.st_mode) || (unsigned long long)st.st_size != b->size) {
			warnx("stat %s: size %lld, want a regular file of %llu bytes", path,
			      (long long)st.st_size, b->size);
			return -1;
		}
		b->ops++;
	}
	return 0;
}

static int phase_list(struct bench *b)
{
	char path[PATH_MAX];
	struct dirent *e;
	unsigned long d;
	DIR *dh;

	for (d = 0; d < b->dirs; d++) {
		dir_path(b, d, path);
		dh = opendir(path);
		if (!dh) {
			warn("opendir %s", path);
			return -1;
		}
		errno = 0;
		while ((e = readdir(dh)) != NULL) {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				b->ops++;
			errno = 0;
		}
		if (errno != 0) {
			warn("readdir %s", path);
			closedir(dh);
			return -1;
		}
		closedir(dh);
	}
	if (b->ops != b->files) {
		warnx("list: %lu entries, want %lu", b->ops, b->files);
		return -1;
	}
	return 0;
}

static int phase_read(struct bench *b)
{
	char path[PATH_MAX];
	unsigned long long got;
	unsigned long i;
	int fd, rc;

	for (i = 0; i < b->files; i++) {
		file_path(b, i, path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd == -1) {
			warn("open %s", path);
			return -1;
		}
		rc = read_to_end(fd, b->buf, b->buf_len, &got);
		if (rc == -1)
			warn("read %s", path);
		close(fd);
		if (rc == -1)
			return -1;
		if (got != b->size) {
			warnx("read %s: %llu bytes, want %llu", path, got, b->size);
			return -1;
		}
		b->ops++;
		b->bytes += got;
	}
	return 0;
}

static int phase_delete(struct bench *b)
{
	char path[PATH_MAX];
	unsigned long i;

	for (i = 0; i < b->files; i++) {
		file_path(b, i, path);
		if (unlink(path) == -1) {
			warn("unlink %s", path);
			return -1;
		}
		b->ops++;
	}
	for (i = 0; i < b->dirs; i++) {
		dir_path(b, i, path);
		if (rmdir(path) == -1) {
			warn("rmdir %s", path);
			return -1;
		}
	}
	return 0;
}

static int phase_seqwrite(struct bench *b)
{
	char path[PATH_MAX];
	uint64_t state = 0x9e3779b97f4a7c15ull, blk = 0;
	unsigned long long left = b->size;
	int fd, rc = -1;

	snprintf(path, sizeof(path), "%s/%s", b->dir, SEQ_NAME);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		warn("create %s", path);
		return -1;
	}
	while (left > 0) {
		size_t n = left < b->buf_len ? (size_t)left : b->buf_len;

		fill(b->buf, n, &state, blk);
		blk += n / BLOCK_LEN;
		if (write_all(fd, b->buf, n) == -1) {
			warn("write %s", path);
			goto out_close;
		}
		left -= n;
		b->ops++;
		b->bytes += n;
	}
	if (fsync(fd) == -1) {
		warn("fsync %s", path);
		goto out_close;
	}
	rc = 0;
out_close:
	if (close(fd) == -1 && rc == 0) {
		warn("close %s", path);
		rc = -1;
	}
	return rc;
}

static int phase_seqread(struct bench *b)
{
	char path[PATH_MAX];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", b->dir, SEQ_NAME);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		warn("open %s", path);
		return -1;
	}
	rc = read_to_end(fd, b->buf, b->buf_len, &b->bytes);
	if (rc == -1)
		warn("read %s", path);
	close(fd);
	if (rc == -1)
		return -1;
	if (b->size_given && b->bytes != b->size) {
		warnx("read %s: %llu bytes, want %llu", path, b->bytes, b->size);
		return -1;
	}
	b->ops = (unsigned long)((b->bytes + b->buf_len - 1) / b->buf_len);
	return 0;
}

static unsigned long long parse_num(const char *s, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0' || s[0] == '-')
		errx(EX_USAGE, "%s: not a number: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	struct bench b = { .files = 10000, .dirs = 10 };
	uint64_t state = 1;
	double t0, t1, secs;
	int c, rc = -1;

	if (argc < 3) {
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	b.phase = argv[1];
	b.dir = argv[2];
	optind = 3;
	while ((c = getopt(argc, argv, "n:d:s:")) != -1) {
		switch (c) {
		case 'n':
			b.files = (unsigned long)parse_num(optarg, "-n");
			break;
		case 'd':
			b.dirs = (unsigned long)parse_num(optarg, "-d");
			break;
		case 's':
			b.size = parse_num(optarg, "-s");
			b.size_given = true;
			break;
		default:
			fputs(usage_text, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || b.dirs == 0 || b.dirs > 100) {
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	if (strncmp(b.phase, "seq", 3) == 0)
		b.buf_len = SEQ_BUF_LEN;
	else
		b.buf_len = b.size > 65536 ? (size_t)b.size : 65536;
	b.buf = malloc(b.buf_len);
	if (!b.buf)
		err(1, "malloc %zu", b.buf_len);
	fill(b.buf, b.buf_len, &state, 0);

	t0 = now_s();
	if (strcmp(b.phase, "create") == 0) {
		b.size = 0;
		if (make_dirs(&b) == 0) {
			t0 = now_s();
			rc = phase_create(&b, false);
		}
	} else if (strcmp(b.phase, "write") == 0) {
		if (make_dirs(&b) == 0) {
			t0 = now_s();
			rc = phase_create(&b, true);
		}
	} else if (strcmp(b.phase, "stat") == 0) {
		rc = phase_stat(&b);
	} else if (strcmp(b.phase, "list") == 0) {
		rc = phase_list(&b);
	} else if (strcmp(b.phase, "read") == 0) {
		rc = phase_read(&b);
	} else if (strcmp(b.phase, "delete") == 0) {
		rc = phase_delete(&b);
	} else if (strcmp(b.phase, "seqwrite") == 0) {
		rc = phase_seqwrite(&b);
	} else if (strcmp(b.phase, "seqread") == 0) {
		rc = phase_seqread(&b);
	} else {
		warnx("unknown phase %s", b.phase);
		fputs(usage_text, stderr);
		free(b.buf);
		return EX_USAGE;
	}
	t1 = now_s();
	if (rc == 0) {
		secs = t1 > t0 ? t1 - t0 : 1e-9;
		printf("{\"phase\":\"%s\",\"ops\":%lu,\"bytes\":%llu,\"seconds\":%.6f,"
		       "\"ops_per_s\":%.1f,\"mib_per_s\":%.2f}\n",
		       b.phase, b.ops, b.bytes, secs, (double)b.ops / secs,
		       (double)b.bytes / secs / 1048576.0);
		if (fflush(stdout) != 0)
			rc = -1;
	}
	free(b.buf);
	return rc == 0 ? 0 : 1;
}
