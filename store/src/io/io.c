/* SPDX-License-Identifier: MIT */
/* io.c - dispatch of the I/O interface and the small helpers built on it. */
#include "io/io.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

fr_status io_open(struct fr_io *io, const char *path, int flags, struct io_file **out,
		  fr_error *err)
{
	*out = NULL;
	return io->ops->open(io, path, flags, out, err);
}

fr_status io_pread(struct io_file *f, void *buf, size_t len, uint64_t off, size_t *got,
		   fr_error *err)
{
	return f->io->ops->pread(f, buf, len, off, got, err);
}

fr_status io_pread_exact(struct io_file *f, const char *path, void *buf, size_t len, uint64_t off,
			 fr_error *err)
{
	size_t got = 0;
	fr_status rc = io_pread(f, buf, len, off, &got, err);
	if (rc)
		return rc;
	if (got != len)
		return FR_CORRUPT(err, path, off + got, "file ends early");
	return FR_OK;
}

fr_status io_pwrite(struct io_file *f, const void *buf, size_t len, uint64_t off, fr_error *err)
{
	return f->io->ops->pwrite(f, buf, len, off, err);
}

fr_status io_append(struct io_file *f, const void *buf, size_t len, fr_error *err)
{
	return f->io->ops->append(f, buf, len, err);
}

fr_status io_sync(struct io_file *f, fr_persist mode, fr_error *err)
{
	if (mode == FR_PERSIST_BUFFER)
		return FR_OK;
	return f->io->ops->sync(f, mode, err);
}

void io_writeback(struct io_file *f, uint64_t off, uint64_t len)
{
	if (f->io->ops->writeback && len)
		f->io->ops->writeback(f, off, len);
}

void io_writeback_since(struct io_file *f, uint64_t *from, uint64_t end, uint64_t min)
{
	if (end - *from < min)
		return;
	io_writeback(f, *from, end - *from);
	*from = end;
}

fr_status io_size(struct io_file *f, uint64_t *out, fr_error *err)
{
	return f->io->ops->size(f, out, err);
}

fr_status io_truncate(struct io_file *f, uint64_t len, fr_error *err)
{
	return f->io->ops->truncate(f, len, err);
}

void io_close(struct io_file *f)
{
	if (f)
		f->io->ops->close(f);
}

fr_status io_rename(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	return io->ops->rename(io, from, to, err);
}

fr_status io_unlink(struct fr_io *io, const char *path, fr_error *err)
{
	return io->ops->unlink(io, path, err);
}

fr_status io_mkdir(struct fr_io *io, const char *path, fr_error *err)
{
	return io->ops->mkdir(io, path, err);
}

fr_status io_sync_dir(struct fr_io *io, const char *path, fr_error *err)
{
	return io->ops->sync_dir(io, path, err);
}

fr_status io_list(struct fr_io *io, const char *dir, io_list_fn fn, void *ctx, fr_error *err)
{
	return io->ops->list(io, dir, fn, ctx, err);
}

fr_status io_exists(struct fr_io *io, const char *path, bool *out, fr_error *err)
{
	return io->ops->exists(io, path, out, err);
}

fr_status io_space(struct fr_io *io, const char *path, uint64_t *total, uint64_t *avail,
		   fr_error *err)
{
	if (!io->ops->space) {
		*total = *avail = 0;
		return FR_OK;
	}
	return io->ops->space(io, path, total, avail, err);
}

fr_status io_rmdir(struct fr_io *io, const char *path, fr_error *err)
{
	/* a test io written before rmdir existed: report it like a file system refusing */
	if (!io->ops->rmdir)
		return FR_ERR_SYS(err, ENOSYS, "rmdir %s", path);
	return io->ops->rmdir(io, path, err);
}

fr_status io_link(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	return io->ops->link(io, from, to, err);
}

fr_status io_lock(struct fr_io *io, const char *path, struct io_file **out, fr_error *err)
{
	*out = NULL;
	return io->ops->lock(io, path, out, err);
}

void io_destroy(struct fr_io *io)
{
	if (io && io->ops->destroy)
		io->ops->destroy(io);
}

fr_status io_write_file_atomic(struct fr_io *io, const char *dir, const char *name,
			       const void *data, size_t len, fr_error *err)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	if (snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp))
		return FR_ERR(err, FR_INVALID, "path too long: %s/%s", dir, name);
	struct io_file *f;
	fr_status rc = io_open(io, tmp, IO_RDWR | IO_CREATE | IO_TRUNC, &f, err);
	if (rc)
		return rc;
	rc = io_pwrite(f, data, len, 0, err);
	if (!rc)
		rc = io_sync(f, FR_PERSIST_SYNC_ALL, err);
	io_close(f);
	if (!rc)
		rc = io_rename(io, tmp, dst, err);
	if (!rc)
		rc = io_sync_dir(io, dir, err);
	if (rc)
		io_unlink(io, tmp, NULL);
	return rc;
}

fr_status io_read_file(struct fr_io *io, const char *path, void **data, size_t *len,
		       fr_error *err)
{
	*data = NULL;
	struct io_file *f;
	fr_status rc = io_open(io, path, IO_RDONLY, &f, err);
	if (rc)
		return rc;
	uint64_t size;
	rc = io_size(f, &size, err);
	if (rc)
		goto out_close;
	if (size > (1u << 30)) {
		rc = FR_CORRUPT(err, path, 0, "file unexpectedly large");
		goto out_close;
	}
	uint8_t *buf = fr_malloc((size_t)size + 1);
	if (!buf) {
		rc = FR_ERR(err, FR_NOMEM, "reading %s", path);
		goto out_close;
	}
	rc = io_pread_exact(f, path, buf, (size_t)size, 0, err);
	if (rc) {
		fr_free(buf);
		goto out_close;
	}
	buf[size] = 0;
	*data = buf;
	*len = (size_t)size;
out_close:
	io_close(f);
	return rc;
}
