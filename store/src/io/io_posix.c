/* SPDX-License-Identifier: MIT */
/* io_posix.c - the I/O interface on the real file system (POSIX calls, flock for the lock). */
#include "io/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/error.h"

struct posix_file {
	struct io_file base;
	int fd;
	char *path;
};

static fr_status px_open(struct fr_io *io, const char *path, int flags, struct io_file **out,
			 fr_error *err)
{
	int of = O_CLOEXEC;
	of |= (flags & IO_RDWR) ? O_RDWR : O_RDONLY;
	if (flags & IO_CREATE)
		of |= O_CREAT;
	if (flags & IO_EXCL)
		of |= O_EXCL;
	if (flags & IO_TRUNC)
		of |= O_TRUNC;
	struct posix_file *f = fr_calloc(1, sizeof(*f));
	if (!f)
		return FR_ERR(err, FR_NOMEM, "open %s", path);
	f->path = fr_strdup(path);
	if (!f->path) {
		fr_free(f);
		return FR_ERR(err, FR_NOMEM, "open %s", path);
	}
	int fd;
	do
		fd = open(path, of, 0644);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		int e = errno;
		fr_free(f->path);
		fr_free(f);
		if (e == ENOENT)
			return fr_err_set(err, FR_NOT_FOUND, e, 0, __FILE__, __LINE__, "open %s",
					  path);
		if (e == EEXIST)
			return fr_err_set(err, FR_INVALID, e, 0, __FILE__, __LINE__, "open %s",
					  path);
		return FR_ERR_SYS(err, e, "open %s", path);
	}
	f->base.io = io;
	f->fd = fd;
	*out = &f->base;
	return FR_OK;
}

static fr_status px_pread(struct io_file *file, void *buf, size_t len, uint64_t off, size_t *got,
			  fr_error *err)
{
	struct posix_file *f = (struct posix_file *)file;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(f->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return FR_ERR_SYS(err, errno, "pread %s", f->path);
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return FR_OK;
}

static fr_status px_pwrite(struct io_file *file, const void *buf, size_t len, uint64_t off,
			   fr_error *err)
{
	struct posix_file *f = (struct posix_file *)file;
	size_t done = 0;
	while (done < len) {
		ssize_t n =
			pwrite(f->fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return FR_ERR_SYS(err, errno, "pwrite %s", f->path);
		}
		done += (size_t)n;
	}
	return FR_OK;
}

static fr_status px_size(struct io_file *file, uint64_t *out, fr_error *err)
{
	struct posix_file *f = (struct posix_file *)file;
	struct stat st;
	if (fstat(f->fd, &st) < 0)
		return FR_ERR_SYS(err, errno, "fstat %s", f->path);
	*out = (uint64_t)st.st_size;
	return FR_OK;
}

static fr_status px_append(struct io_file *file, const void *buf, size_t len, fr_error *err)
{
	uint64_t size;
	fr_status rc = px_size(file, &size, err);
	if (rc)
		return rc;
	return px_pwrite(file, buf, len, size, err);
}

static fr_status px_sync(struct io_file *file, fr_persist mode, fr_error *err)
{
	struct posix_file *f = (struct posix_file *)file;
	int r = mode == FR_PERSIST_SYNC_DATA ? fdatasync(f->fd) : fsync(f->fd);
	if (r < 0)
		return FR_ERR_SYS(err, errno, "sync %s", f->path);
	return FR_OK;
}

/* SYNC_FILE_RANGE_WRITE only queues the dirty pages for writing: it neither waits nor makes
 * anything durable, and it leaves write-back errors for the next fdatasync to report. */
static void px_writeback(struct io_file *file, uint64_t off, uint64_t len)
{
	struct posix_file *f = (struct posix_file *)file;
	(void)sync_file_range(f->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

static fr_status px_truncate(struct io_file *file, uint64_t len, fr_error *err)
{
	struct posix_file *f = (struct posix_file *)file;
	if (ftruncate(f->fd, (off_t)len) < 0)
		return FR_ERR_SYS(err, errno, "truncate %s", f->path);
	return FR_OK;
}

static void px_close(struct io_file *file)
{
	struct posix_file *f = (struct posix_file *)file;
	if (!f)
		return;
	close(f->fd);
	fr_free(f->path);
	fr_free(f);
}

static fr_status px_rename(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	(void)io;
	if (rename(from, to) < 0)
		return FR_ERR_SYS(err, errno, "rename %s to %s", from, to);
	return FR_OK;
}

static fr_status px_unlink(struct fr_io *io, const char *path, fr_error *err)
{
	(void)io;
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return fr_err_set(err, FR_NOT_FOUND, errno, 0, __FILE__, __LINE__,
					  "unlink %s", path);
		return FR_ERR_SYS(err, errno, "unlink %s", path);
	}
	return FR_OK;
}

static fr_status px_mkdir(struct fr_io *io, const char *path, fr_error *err)
{
	(void)io;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return FR_ERR_SYS(err, errno, "mkdir %s", path);
	return FR_OK;
}

static fr_status px_rmdir(struct fr_io *io, const char *path, fr_error *err)
{
	(void)io;
	if (rmdir(path) < 0) {
		if (errno == ENOENT)
			return fr_err_set(err, FR_NOT_FOUND, errno, 0, __FILE__, __LINE__,
					  "rmdir %s", path);
		return FR_ERR_SYS(err, errno, "rmdir %s", path);
	}
	return FR_OK;
}

static fr_status px_sync_dir(struct fr_io *io, const char *path, fr_error *err)
{
	(void)io;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return FR_ERR_SYS(err, errno, "open directory %s", path);
	int r = fsync(fd);
	int e = errno;
	close(fd);
	if (r < 0)
		return FR_ERR_SYS(err, e, "fsync directory %s", path);
	return FR_OK;
}

static fr_status px_list(struct fr_io *io, const char *dir, io_list_fn fn, void *ctx,
			 fr_error *err)
{
	(void)io;
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return fr_err_set(err, FR_NOT_FOUND, errno, 0, __FILE__, __LINE__,
					  "opendir %s", dir);
		return FR_ERR_SYS(err, errno, "opendir %s", dir);
	}
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fn(ctx, de->d_name))
			break;
	}
	int e = de ? 0 : errno; /* stopped by fn: errno is whatever fn left, not readdir's */
	closedir(d);
	if (e)
		return FR_ERR_SYS(err, e, "readdir %s", dir);
	return FR_OK;
}

static fr_status px_exists(struct fr_io *io, const char *path, bool *out, fr_error *err)
{
	(void)io;
	struct stat st;
	if (stat(path, &st) == 0) {
		*out = true;
		return FR_OK;
	}
	if (errno == ENOENT) {
		*out = false;
		return FR_OK;
	}
	return FR_ERR_SYS(err, errno, "stat %s", path);
}

static fr_status px_link(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	(void)io;
	if (link(from, to) < 0)
		return FR_ERR_SYS(err, errno, "link %s to %s", from, to);
	return FR_OK;
}

static fr_status px_lock(struct fr_io *io, const char *path, struct io_file **out, fr_error *err)
{
	fr_status rc = px_open(io, path, IO_RDWR | IO_CREATE, out, err);
	if (rc)
		return rc;
	struct posix_file *f = (struct posix_file *)*out;
	if (flock(f->fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		px_close(*out);
		*out = NULL;
		if (e == EWOULDBLOCK)
			return fr_err_set(err, FR_BUSY, e, 0, __FILE__, __LINE__,
					  "%s is locked by another opener", path);
		return FR_ERR_SYS(err, e, "flock %s", path);
	}
	return FR_OK;
}

static fr_status px_space(struct fr_io *io, const char *path, uint64_t *total, uint64_t *avail,
			  fr_error *err)
{
	struct statvfs sv;

	(void)io;
	if (statvfs(path, &sv) != 0)
		return FR_ERR_SYS(err, errno, "statvfs %s", path);
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return FR_OK;
}

static const struct io_ops posix_ops = {
	.open = px_open,
	.pread = px_pread,
	.pwrite = px_pwrite,
	.append = px_append,
	.sync = px_sync,
	.writeback = px_writeback,
	.size = px_size,
	.truncate = px_truncate,
	.close = px_close,
	.rename = px_rename,
	.unlink = px_unlink,
	.mkdir = px_mkdir,
	.rmdir = px_rmdir,
	.sync_dir = px_sync_dir,
	.list = px_list,
	.exists = px_exists,
	.link = px_link,
	.lock = px_lock,
	.space = px_space,
	.destroy = NULL,
};

static struct fr_io posix_io = {.ops = &posix_ops};

struct fr_io *io_posix(void)
{
	return &posix_io;
}
