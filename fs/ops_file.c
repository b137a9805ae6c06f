/* SPDX-License-Identifier: MIT */
/*
 * ops_file.c - file contents: open, read, write, flush, release, fsync, fallocate, lseek
 * (SEEK_DATA/SEEK_HOLE) and copy_file_range. Contents live inline or in chunks (data.h); a
 * write commits its chunks and the inode (size, times) in one batch under the inode's lock.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmap.h"

/* Runs a content change on inode ino under its lock: loads the inode, calls fn to add chunk
 * operations and update it, writes the inode into the same batch and commits. */
typedef int (*content_fn)(struct fs *fs, struct fs_inode *in, fr_batch *b, void *ctx);

static int change_content_in(struct fs *fs, uint64_t ino, fr_batch *b, content_fn fn, void *ctx,
			     const char *what)
{
	struct fs_inode in;
	int rc;

	fss_inode_init(&in);
	itab_lock(&fs->itab, ino);
	rc = fs_inode_get(fs, ino, &in);
	if (rc == 0 && S_ISDIR(in.mode))
		rc = -EISDIR;
	else if (rc == 0 && !S_ISREG(in.mode))
		rc = -EINVAL;
	if (rc == 0)
		rc = fn(fs, &in, b, ctx);
	if (rc == 0)
		rc = fs_inode_put(fs, b, &in);
	if (rc == 0)
		rc = fs_commit(fs, b, what);
	itab_unlock(&fs->itab, ino);
	fss_inode_fini(&in);
	return rc;
}

/* change_content_in with a batch of its own. */
static int change_content(struct fs *fs, uint64_t ino, content_fn fn, void *ctx, const char *what)
{
	fr_batch *b;
	int rc = fs_batch_rw(fs, &b);

	if (rc)
		return rc;
	rc = change_content_in(fs, ino, b, fn, ctx, what);
	fr_batch_free(b);
	return rc;
}

static int trunc_fn(struct fs *fs, struct fs_inode *in, fr_batch *b, void *ctx)
{
	int64_t now = fss_now_ns();
	int rc = fsd_truncate(&fs->data, in, b, *(uint64_t *)ctx);

	fs_touch(in, true, true, now);
	return rc;
}

void fsop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_node *n;
	int rc = 0;

	if ((fi->flags & O_ACCMODE) != O_RDONLY && fs->opts.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fi->flags & O_TRUNC) {
		uint64_t zero = 0;
		rc = change_content(fs, ino, trunc_fn, &zero, "open O_TRUNC");
		if (rc) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	n = itab_get(&fs->itab, ino);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!itab_open(&fs->itab, n)) {
		itab_put(&fs->itab, n);
		fuse_reply_err(req, ENOENT); /* raced the unlink of its last name (fs.h) */
		return;
	}
	itab_put(&fs->itab, n);
	fi->fh = 0;
	/* only this daemon changes the files, so cached pages stay right across opens */
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0)
		fs_node_close(fs, ino);
}

void fsop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_inode in;
	ssize_t got;
	char *buf;
	int rc;

	(void)fi;
	fss_inode_init(&in);
	rc = fs_inode_get(fs, ino, &in);
	if (rc == 0 && S_ISDIR(in.mode))
		rc = -EISDIR;
	if (rc) {
		fuse_reply_err(req, -rc);
		goto out;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	got = fsd_read(&fs->data, &in, (uint64_t)off, buf, size);
	if (got < 0)
		fuse_reply_err(req, (int)-got);
	else
		fuse_reply_buf(req, buf, (size_t)got);
	free(buf);
out:
	fss_inode_fini(&in);
}

struct write_args {
	uint64_t off;
	const void *buf;
	size_t len;
	struct fsd_whole whole; /* chunks already in the batch */
};

/*
 * Each thread keeps the batch of its last write for the next one: a write's batch grows past
 * 1 MiB, and a new batch for every request would grow from nothing, copying its contents at
 * every doubling. A commit empties a batch, so only a committed one is kept; the key frees a
 * thread's batch when the thread ends (the session loop joins its threads before the store
 * closes). At most one batch of about 2 MiB per request thread.
 */
static pthread_key_t wbatch_key;
static pthread_once_t wbatch_once = PTHREAD_ONCE_INIT;
static bool wbatch_ok;

static void wbatch_free(void *b)
{
	fr_batch_free(b);
}

static void wbatch_init(void)
{
	wbatch_ok = pthread_key_create(&wbatch_key, wbatch_free) == 0;
}

static int wbatch_get(struct fs *fs, fr_batch **out)
{
	fr_batch *b = NULL;

	pthread_once(&wbatch_once, wbatch_init);
	if (wbatch_ok && !fs->opts.read_only)
		b = pthread_getspecific(wbatch_key);
	if (!b)
		return fs_batch_rw(fs, out);
	(void)pthread_setspecific(wbatch_key, NULL);
	*out = b;
	return 0;
}

/* Keeps b for the thread's next write if it is empty (committed), else frees it. */
static void wbatch_put(fr_batch *b)
{
	if (b && wbatch_ok && fr_batch_count(b) == 0 && pthread_setspecific(wbatch_key, b) == 0)
		return;
	fr_batch_free(b);
}

static int write_fn(struct fs *fs, struct fs_inode *in, fr_batch *b, void *ctx)
{
	struct write_args *w = ctx;
	int rc = fsd_write_rest(&fs->data, in, b, w->off, w->buf, w->len, &w->whole);

	fs_touch(in, true, true, fss_now_ns());
	return rc;
}

void fsop_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct write_args w = {(uint64_t)off, buf, size, {0, 0}};
	fr_batch *b;
	int rc;

	(void)fi;
	/* the whole chunks are copied into the batch before the inode lock is taken, so that
	 * the copy of one request overlaps the commit of another to the same file */
	rc = wbatch_get(fs, &b);
	if (rc == 0)
		rc = fsd_write_whole(&fs->data, ino, b, w.off, buf, size, &w.whole);
	if (rc == 0)
		rc = change_content_in(fs, ino, b, write_fn, &w, "write");
	if (rc == 0)
		wbatch_put(b);
	else
		fr_batch_free(b);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/*
 * flush (each close of a descriptor): there is nothing to do here, because every write
 * reached the store when the daemon acknowledged it. The kernel writes back its cached pages
 * before it sends FLUSH, and reports their errors to close() itself; ENOSYS tells it that the
 * request itself may be skipped from now on, which spares a round trip per close().
 */
void fsop_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

void fsop_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);

	(void)fi;
	fs_node_close(fs, ino);
	fuse_reply_err(req, 0);
}

void fsop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	fr_error e;
	fr_status st;

	(void)ino;
	(void)fi;
	st = fr_db_persist(fs->db, datasync ? FR_PERSIST_SYNC_DATA : FR_PERSIST_SYNC_ALL, &e);
	fuse_reply_err(req, fs_errno(st, &e, "fsync"));
}

struct falloc_args {
	int mode;
	uint64_t off, len;
};

static int falloc_fn(struct fs *fs, struct fs_inode *in, fr_batch *b, void *ctx)
{
	struct falloc_args *a = ctx;
	int64_t now = fss_now_ns();
	int rc = 0;

	if (a->mode & FALLOC_FL_PUNCH_HOLE) {
		rc = fsd_punch(&fs->data, in, b, a->off, a->len);
		fs_touch(in, true, true, now);
	} else if (!(a->mode & FALLOC_FL_KEEP_SIZE) && a->off + a->len > in->size) {
		/* space is not reserved ahead: holes cost nothing, the size is what changes */
		rc = fsd_truncate(&fs->data, in, b, a->off + a->len);
		fs_touch(in, false, true, now);
	}
	return rc;
}

void fsop_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		    struct fuse_file_info *fi)
{
	struct falloc_args a = {mode, (uint64_t)offset, (uint64_t)length};
	int rc;

	(void)fi;
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if ((uint64_t)offset + (uint64_t)length < (uint64_t)offset) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	rc = change_content(fs_of(req), ino, falloc_fn, &a, "fallocate");
	fuse_reply_err(req, -rc);
}

void fsop_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_inode in;
	uint64_t pos;
	int rc;

	(void)fi;
	if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fss_inode_init(&in);
	rc = fs_inode_get(fs, ino, &in);
	if (rc == 0)
		rc = fsd_seek(&fs->data, &in, (uint64_t)off, whence, &pos);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_lseek(req, (off_t)pos);
	fss_inode_fini(&in);
}

#define COPY_STEP (1u << 20)

void fsop_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			  struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			  struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct fs *fs = fs_of(req);
	struct fs_inode src;
	size_t done = 0;
	char *buf = NULL;
	int rc = 0;

	(void)fi_in;
	(void)fi_out;
	if (flags || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fss_inode_init(&src);
	buf = malloc(COPY_STEP);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	while (done < len) {
		size_t step = len - done < COPY_STEP ? len - done : COPY_STEP;
		struct write_args w;
		ssize_t got;

		/* reread the source each step: copying a file onto itself sees its own writes */
		fss_inode_fini(&src);
		rc = fs_inode_get(fs, ino_in, &src);
		if (rc == 0 && !S_ISREG(src.mode))
			rc = S_ISDIR(src.mode) ? -EISDIR : -EINVAL;
		if (rc)
			break;
		got = fsd_read(&fs->data, &src, (uint64_t)off_in + done, buf, step);
		if (got <= 0) {
			rc = (int)got;
			break;
		}
		/* no chunk of this step is in the batch ahead of time */
		w = (struct write_args){(uint64_t)off_out + done, buf, (size_t)got, {0, 0}};
		rc = change_content(fs, ino_out, write_fn, &w, "copy_file_range");
		if (rc)
			break;
		done += (size_t)got;
	}
out:
	if (rc && done == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, done);
	free(buf);
	fss_inode_fini(&src);
}
