/* SPDX-License-Identifier: MIT */
/*
 * io.h - the one interface all engine file I/O goes through (DESIGN.md "Files and I/O").
 * Implementations: io_posix.c (the real file system), io_mem.c (in memory, with a durable
 * image for power-loss tests), io_fault.c (wraps another io and injects failures).
 *
 * Thread-safety: an fr_io is thread-safe. An io_file is used by one thread at a time, except
 * pread, which may be called concurrently on one file.
 *
 * Every call fills err on failure with the path in the message and the saved errno;
 * ENOSPC/EDQUOT become FR_NO_SPACE.
 */
#ifndef FRACTIO_IO_IO_H
#define FRACTIO_IO_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct io_file;

/* open flags */
enum {
	IO_RDONLY = 0,
	IO_RDWR = 1 << 0,
	IO_CREATE = 1 << 1, /* create if missing */
	IO_EXCL = 1 << 2,   /* with IO_CREATE: fail (FR_INVALID, errno EEXIST) if it exists */
	IO_TRUNC = 1 << 3,
};

/* called by list() for each directory entry except "." and ".."; non-zero stops the walk */
typedef int (*io_list_fn)(void *ctx, const char *name);

struct io_ops {
	fr_status (*open)(struct fr_io *io, const char *path, int flags, struct io_file **out,
			  fr_error *err);
	/* reads up to len bytes at off; *got < len only at end of file */
	fr_status (*pread)(struct io_file *f, void *buf, size_t len, uint64_t off, size_t *got,
			   fr_error *err);
	/* writes all len bytes at off */
	fr_status (*pwrite)(struct io_file *f, const void *buf, size_t len, uint64_t off,
			    fr_error *err);
	/* writes all len bytes at the current end of the file */
	fr_status (*append)(struct io_file *f, const void *buf, size_t len, fr_error *err);
	/* FR_PERSIST_SYNC_DATA: fdatasync, FR_PERSIST_SYNC_ALL: fsync, BUFFER: nothing */
	fr_status (*sync)(struct io_file *f, fr_persist mode, fr_error *err);
	/* optional (NULL: nothing): starts writing [off, off + len) back to the device without
	 * waiting for it; promises nothing, and a failure shows at the next sync */
	void (*writeback)(struct io_file *f, uint64_t off, uint64_t len);
	fr_status (*size)(struct io_file *f, uint64_t *out, fr_error *err);
	fr_status (*truncate)(struct io_file *f, uint64_t len, fr_error *err);
	/* closes and frees f (NULL allowed); never loses data already written to the OS */
	void (*close)(struct io_file *f);
	/* atomically replaces `to` with `from` */
	fr_status (*rename)(struct fr_io *io, const char *from, const char *to, fr_error *err);
	fr_status (*unlink)(struct fr_io *io, const char *path, fr_error *err);
	/* creates one directory; an existing directory is OK */
	fr_status (*mkdir)(struct fr_io *io, const char *path, fr_error *err);
	/* removes an empty directory (FR_NOT_FOUND when missing, FR_IO/ENOTEMPTY when not empty) */
	fr_status (*rmdir)(struct fr_io *io, const char *path, fr_error *err);
	/* makes creations, renames and unlinks inside directory `path` durable */
	fr_status (*sync_dir)(struct fr_io *io, const char *path, fr_error *err);
	fr_status (*list)(struct fr_io *io, const char *dir, io_list_fn fn, void *ctx,
			  fr_error *err);
	fr_status (*exists)(struct fr_io *io, const char *path, bool *out, fr_error *err);
	/* hard link; FR_IO with errno EXDEV across file systems */
	fr_status (*link)(struct fr_io *io, const char *from, const char *to, fr_error *err);
	/* takes an exclusive lock on file `path` (created if missing) for the life of *out;
	 * FR_BUSY when another holder (in this or another process) has it */
	fr_status (*lock)(struct fr_io *io, const char *path, struct io_file **out, fr_error *err);
	/* total and available bytes of the file system holding `path` (statvfs); NULL: unknown,
	 * reported as 0 */
	fr_status (*space)(struct fr_io *io, const char *path, uint64_t *total, uint64_t *avail,
			   fr_error *err);
	/* frees the io (wrappers do not free what they wrap) */
	void (*destroy)(struct fr_io *io);
};

struct fr_io {
	const struct io_ops *ops;
};

/* The process-wide real file system; never destroyed. */
struct fr_io *io_posix(void);

/* The calls, dispatched through io->ops (files remember their io). */
fr_status io_open(struct fr_io *io, const char *path, int flags, struct io_file **out,
		  fr_error *err);
fr_status io_pread(struct io_file *f, void *buf, size_t len, uint64_t off, size_t *got,
		   fr_error *err);
/* pread that fails with FR_CORRUPTION naming path when fewer than len bytes exist */
fr_status io_pread_exact(struct io_file *f, const char *path, void *buf, size_t len, uint64_t off,
			 fr_error *err);
fr_status io_pwrite(struct io_file *f, const void *buf, size_t len, uint64_t off, fr_error *err);
fr_status io_append(struct io_file *f, const void *buf, size_t len, fr_error *err);
fr_status io_sync(struct io_file *f, fr_persist mode, fr_error *err);
/* A hint: starts the write-back of [off, off + len) so that a later sync has less to wait
 * for. Never fails and makes nothing durable. */
void io_writeback(struct io_file *f, uint64_t off, uint64_t len);
/* io_writeback of [*from, end) once it holds at least min bytes; *from then moves to end. For
 * an appender that hints as it goes: *from is where its last hint ended. */
void io_writeback_since(struct io_file *f, uint64_t *from, uint64_t end, uint64_t min);
fr_status io_size(struct io_file *f, uint64_t *out, fr_error *err);
fr_status io_truncate(struct io_file *f, uint64_t len, fr_error *err);
void io_close(struct io_file *f);
fr_status io_rename(struct fr_io *io, const char *from, const char *to, fr_error *err);
fr_status io_unlink(struct fr_io *io, const char *path, fr_error *err);
fr_status io_mkdir(struct fr_io *io, const char *path, fr_error *err);
fr_status io_rmdir(struct fr_io *io, const char *path, fr_error *err);
fr_status io_sync_dir(struct fr_io *io, const char *path, fr_error *err);
fr_status io_list(struct fr_io *io, const char *dir, io_list_fn fn, void *ctx, fr_error *err);
fr_status io_exists(struct fr_io *io, const char *path, bool *out, fr_error *err);
fr_status io_link(struct fr_io *io, const char *from, const char *to, fr_error *err);
fr_status io_lock(struct fr_io *io, const char *path, struct io_file **out, fr_error *err);
fr_status io_space(struct fr_io *io, const char *path, uint64_t *total, uint64_t *avail,
		   fr_error *err);
void io_destroy(struct fr_io *io);

/* Writes a whole small file atomically: path.tmp, sync, rename over path, sync the directory. */
fr_status io_write_file_atomic(struct fr_io *io, const char *dir, const char *name,
			       const void *data, size_t len, fr_error *err);
/* Reads a whole small file into a fresh buffer (fr_free). */
fr_status io_read_file(struct fr_io *io, const char *path, void **data, size_t *len,
		       fr_error *err);

/*
 * Every io_file implementation starts with this header so the dispatchers find the ops.
 */
struct io_file {
	struct fr_io *io;
};

#endif
