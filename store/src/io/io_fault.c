/* SPDX-License-Identifier: MIT */
/*
 * io_fault.c - an io that wraps another and injects failures (io_fault.h). Each call is
 * forwarded to the inner io through the io.h dispatchers; files are wrappers holding the inner
 * io_file.
 *
 * Counted kinds: OPEN (open), READ (pread), WRITE (pwrite, append), SYNC (sync with a SYNC_*
 * mode, sync_dir), RENAME, UNLINK, LINK. Every call of a kind is counted, armed or not, including
 * the call that fails. size, truncate, close, mkdir, rmdir, list, exists and lock are forwarded
 * without counting and never fail by injection. A sync with FR_PERSIST_BUFFER never reaches the
 * io (io_sync returns at once), so it is not counted either.
 *
 * An injected failure does nothing to the inner io and reports
 * FR_ERR_SYS(err, errno, "<call> <path> (injected)"), so ENOSPC/EDQUOT become FR_NO_SPACE and
 * other errnos FR_IO, with sys_errno set. The space budget is charged for every byte passed to
 * pwrite/append (overwrites included); a write that does not fit fails whole and writes nothing;
 * a write that the inner io fails is refunded.
 *
 * io_fault_reset_counts also moves an armed fault: the Nth call is counted from the reset.
 *
 * Thread-safety: thread-safe. fault_io.mu guards the counters, the arming and the budget; it is
 * never held across a call into the inner io.
 */
#include "io/io_fault.h"

#include <errno.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/sync.h"
#include "io/io.h"

struct fault_kind {
	uint64_t cnt;	  /* calls seen since creation, reset_counts or arming this kind */
	uint64_t fail_at; /* 1-based call number that fails; 0 = disarmed */
	int err;	  /* errno to inject */
	bool sticky;	  /* calls after fail_at fail too */
};

struct fault_io {
	struct fr_io base;
	struct fr_io *inner; /* not owned */
	struct fr_mutex mu;
	struct fault_kind kinds[IO_FAULT_KIND_CNT]; /* under mu */
	uint64_t space;	   /* bytes left; UINT64_MAX = unlimited; under mu */
	uint64_t injected; /* faults injected so far; under mu */
};

struct fault_file {
	struct io_file base;
	struct io_file *inner;
	char *path; /* for messages */
};

static const struct io_ops fault_ops;

static struct fault_io *fault_of(struct fr_io *io)
{
	fr_assert(io->ops == &fault_ops);
	return (struct fault_io *)io;
}

/* Counts one call of kind; returns the errno to inject, or 0 to let it through. */
static int fault_hit(struct fault_io *fi, enum io_fault_kind kind)
{
	fr_mutex_lock(&fi->mu);
	struct fault_kind *k = &fi->kinds[kind];
	uint64_t c = ++k->cnt;
	int e = 0;
	if (k->fail_at && (c == k->fail_at || (k->sticky && c > k->fail_at))) {
		e = k->err;
		fi->injected++;
	}
	fr_mutex_unlock(&fi->mu);
	return e;
}

/* Counts a write of len bytes and charges the budget; returns the errno to inject, or 0. */
static int fault_write_begin(struct fault_io *fi, size_t len)
{
	int e = fault_hit(fi, IO_FAULT_WRITE);
	if (e)
		return e;
	fr_mutex_lock(&fi->mu);
	if (fi->space != UINT64_MAX) {
		if (len > fi->space) {
			e = ENOSPC;
			fi->injected++;
		} else {
			fi->space -= len;
		}
	}
	fr_mutex_unlock(&fi->mu);
	return e;
}

/* Gives back the budget of a write the inner io failed. */
static void fault_write_refund(struct fault_io *fi, size_t len)
{
	fr_mutex_lock(&fi->mu);
	if (fi->space != UINT64_MAX && fi->space + len >= fi->space)
		fi->space += len;
	fr_mutex_unlock(&fi->mu);
}

static struct fault_file *fault_file_new(struct fr_io *io, const char *path)
{
	struct fault_file *f = fr_calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->path = fr_strdup(path);
	if (!f->path) {
		fr_free(f);
		return NULL;
	}
	f->base.io = io;
	return f;
}

static void fault_file_free(struct fault_file *f)
{
	fr_free(f->path);
	fr_free(f);
}

static fr_status fault_open(struct fr_io *io, const char *path, int flags, struct io_file **out,
			    fr_error *err)
{
	struct fault_io *fi = fault_of(io);
	int e = fault_hit(fi, IO_FAULT_OPEN);
	if (e)
		return FR_ERR_SYS(err, e, "open %s (injected)", path);
	struct fault_file *f = fault_file_new(io, path);
	if (!f)
		return FR_ERR(err, FR_NOMEM, "open %s", path);
	fr_status rc = io_open(fi->inner, path, flags, &f->inner, err);
	if (rc) {
		fault_file_free(f);
		return rc;
	}
	*out = &f->base;
	return FR_OK;
}

static fr_status fault_pread(struct io_file *file, void *buf, size_t len, uint64_t off,
			     size_t *got, fr_error *err)
{
	struct fault_file *f = (struct fault_file *)file;
	int e = fault_hit(fault_of(file->io), IO_FAULT_READ);
	if (e)
		return FR_ERR_SYS(err, e, "pread %s (injected)", f->path);
	return io_pread(f->inner, buf, len, off, got, err);
}

static fr_status fault_pwrite(struct io_file *file, const void *buf, size_t len, uint64_t off,
			      fr_error *err)
{
	struct fault_file *f = (struct fault_file *)file;
	struct fault_io *fi = fault_of(file->io);
	int e = fault_write_begin(fi, len);
	if (e)
		return FR_ERR_SYS(err, e, "pwrite %s (injected)", f->path);
	fr_status rc = io_pwrite(f->inner, buf, len, off, err);
	if (rc)
		fault_write_refund(fi, len);
	return rc;
}

static fr_status fault_append(struct io_file *file, const void *buf, size_t len, fr_error *err)
{
	struct fault_file *f = (struct fault_file *)file;
	struct fault_io *fi = fault_of(file->io);
	int e = fault_write_begin(fi, len);
	if (e)
		return FR_ERR_SYS(err, e, "pwrite %s (injected)", f->path);
	fr_status rc = io_append(f->inner, buf, len, err);
	if (rc)
		fault_write_refund(fi, len);
	return rc;
}

static fr_status fault_sync(struct io_file *file, fr_persist mode, fr_error *err)
{
	struct fault_file *f = (struct fault_file *)file;
	int e = fault_hit(fault_of(file->io), IO_FAULT_SYNC);
	if (e)
		return FR_ERR_SYS(err, e, "sync %s (injected)", f->path);
	return io_sync(f->inner, mode, err);
}

static void fault_writeback(struct io_file *file, uint64_t off, uint64_t len)
{
	io_writeback(((struct fault_file *)file)->inner, off, len);
}

static fr_status fault_size(struct io_file *file, uint64_t *out, fr_error *err)
{
	return io_size(((struct fault_file *)file)->inner, out, err);
}

static fr_status fault_truncate(struct io_file *file, uint64_t len, fr_error *err)
{
	return io_truncate(((struct fault_file *)file)->inner, len, err);
}

static void fault_close(struct io_file *file)
{
	struct fault_file *f = (struct fault_file *)file;
	if (!f)
		return;
	io_close(f->inner);
	fault_file_free(f);
}

static fr_status fault_rename(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	struct fault_io *fi = fault_of(io);
	int e = fault_hit(fi, IO_FAULT_RENAME);
	if (e)
		return FR_ERR_SYS(err, e, "rename %s to %s (injected)", from, to);
	return io_rename(fi->inner, from, to, err);
}

static fr_status fault_unlink(struct fr_io *io, const char *path, fr_error *err)
{
	struct fault_io *fi = fault_of(io);
	int e = fault_hit(fi, IO_FAULT_UNLINK);
	if (e)
		return FR_ERR_SYS(err, e, "unlink %s (injected)", path);
	return io_unlink(fi->inner, path, err);
}

static fr_status fault_mkdir(struct fr_io *io, const char *path, fr_error *err)
{
	return io_mkdir(fault_of(io)->inner, path, err);
}

static fr_status fault_sync_dir(struct fr_io *io, const char *path, fr_error *err)
{
	struct fault_io *fi = fault_of(io);
	int e = fault_hit(fi, IO_FAULT_SYNC);
	if (e)
		return FR_ERR_SYS(err, e, "fsync directory %s (injected)", path);
	return io_sync_dir(fi->inner, path, err);
}

static fr_status fault_list(struct fr_io *io, const char *dir, io_list_fn fn, void *ctx,
			    fr_error *err)
{
	return io_list(fault_of(io)->inner, dir, fn, ctx, err);
}

static fr_status fault_exists(struct fr_io *io, const char *path, bool *out, fr_error *err)
{
	return io_exists(fault_of(io)->inner, path, out, err);
}

static fr_status fault_space(struct fr_io *io, const char *path, uint64_t *total,
			     uint64_t *avail, fr_error *err)
{
	return io_space(fault_of(io)->inner, path, total, avail, err);
}

static fr_status fault_link(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	struct fault_io *fi = fault_of(io);
	int e = fault_hit(fi, IO_FAULT_LINK);
	if (e)
		return FR_ERR_SYS(err, e, "link %s to %s (injected)", from, to);
	return io_link(fi->inner, from, to, err);
}

static fr_status fault_rmdir(struct fr_io *io, const char *path, fr_error *err)
{
	return io_rmdir(fault_of(io)->inner, path, err);
}

static fr_status fault_lock(struct fr_io *io, const char *path, struct io_file **out,
			    fr_error *err)
{
	struct fault_io *fi = fault_of(io);
	struct fault_file *f = fault_file_new(io, path);
	if (!f)
		return FR_ERR(err, FR_NOMEM, "lock %s", path);
	fr_status rc = io_lock(fi->inner, path, &f->inner, err);
	if (rc) {
		fault_file_free(f);
		return rc;
	}
	*out = &f->base;
	return FR_OK;
}

static void fault_destroy(struct fr_io *io)
{
	struct fault_io *fi = fault_of(io);
	fr_mutex_fini(&fi->mu);
	fr_free(fi);
}

static const struct io_ops fault_ops = {
	.open = fault_open,
	.pread = fault_pread,
	.pwrite = fault_pwrite,
	.append = fault_append,
	.sync = fault_sync,
	.writeback = fault_writeback,
	.size = fault_size,
	.truncate = fault_truncate,
	.close = fault_close,
	.rename = fault_rename,
	.unlink = fault_unlink,
	.mkdir = fault_mkdir,
	.rmdir = fault_rmdir,
	.sync_dir = fault_sync_dir,
	.list = fault_list,
	.exists = fault_exists,
	.link = fault_link,
	.space = fault_space,
	.lock = fault_lock,
	.destroy = fault_destroy,
};

struct fr_io *io_fault_new(struct fr_io *inner)
{
	struct fault_io *fi = fr_calloc(1, sizeof(*fi));
	if (!fi)
		return NULL;
	fi->base.ops = &fault_ops;
	fi->inner = inner;
	fi->space = UINT64_MAX;
	fr_mutex_init(&fi->mu);
	return &fi->base;
}

void io_fault_arm(struct fr_io *io, enum io_fault_kind kind, uint64_t n, int e, bool sticky)
{
	struct fault_io *fi = fault_of(io);
	if ((unsigned)kind >= IO_FAULT_KIND_CNT)
		return;
	fr_mutex_lock(&fi->mu);
	struct fault_kind *k = &fi->kinds[kind];
	k->cnt = 0;
	k->fail_at = n;
	k->err = e;
	k->sticky = sticky;
	fr_mutex_unlock(&fi->mu);
}

void io_fault_set_space(struct fr_io *io, uint64_t bytes)
{
	struct fault_io *fi = fault_of(io);
	fr_mutex_lock(&fi->mu);
	fi->space = bytes;
	fr_mutex_unlock(&fi->mu);
}

void io_fault_clear(struct fr_io *io)
{
	struct fault_io *fi = fault_of(io);
	fr_mutex_lock(&fi->mu);
	for (int i = 0; i < IO_FAULT_KIND_CNT; i++) {
		fi->kinds[i].fail_at = 0;
		fi->kinds[i].sticky = false;
	}
	fi->space = UINT64_MAX;
	fr_mutex_unlock(&fi->mu);
}

uint64_t io_fault_count(struct fr_io *io, enum io_fault_kind kind)
{
	struct fault_io *fi = fault_of(io);
	if ((unsigned)kind >= IO_FAULT_KIND_CNT)
		return 0;
	fr_mutex_lock(&fi->mu);
	uint64_t c = fi->kinds[kind].cnt;
	fr_mutex_unlock(&fi->mu);
	return c;
}

void io_fault_reset_counts(struct fr_io *io)
{
	struct fault_io *fi = fault_of(io);
	fr_mutex_lock(&fi->mu);
	for (int i = 0; i < IO_FAULT_KIND_CNT; i++)
		fi->kinds[i].cnt = 0;
	fr_mutex_unlock(&fi->mu);
}

uint64_t io_fault_injected(struct fr_io *io)
{
	struct fault_io *fi = fault_of(io);
	fr_mutex_lock(&fi->mu);
	uint64_t n = fi->injected;
	fr_mutex_unlock(&fi->mu);
	return n;
}
