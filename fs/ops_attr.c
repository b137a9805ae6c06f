/* SPDX-License-Identifier: MIT */
/*
 * ops_attr.c - attributes: getattr, setattr (chmod, chown, utimens, truncate), readlink,
 * access and statfs.
 */
#include "ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "errmap.h"

void fsop_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_inode in;
	struct stat st;
	int rc;

	(void)fi;
	fss_inode_init(&in);
	rc = fs_inode_get(fs, ino, &in);
	if (rc == -ENOENT && itab_get_last(&fs->itab, ino, &st)) {
		fuse_reply_attr(req, &st, fs->opts.attr_timeout); /* gone, still held (fs.h) */
	} else if (rc) {
		fuse_reply_err(req, -rc);
	} else {
		fs_stat(fs, &in, &st);
		fuse_reply_attr(req, &st, fs->opts.attr_timeout);
	}
	fss_inode_fini(&in);
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

void fsop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_inode in;
	struct stat st;
	fr_batch *b = NULL;
	int64_t now = fss_now_ns();
	int rc;

	(void)fi;
	fss_inode_init(&in);
	rc = fs_batch_rw(fs, &b);
	if (rc)
		goto out;
	itab_lock(&fs->itab, ino);
	rc = fs_inode_get(fs, ino, &in);
	if (rc == -ENOENT && itab_get_last(&fs->itab, ino, &st)) {
		/* gone, still held by the kernel, which flushes cached times: a change to an
		 * inode nobody can reach is moot, and an error would be kept against the whole
		 * filesystem (syncfs reports it), so it gets the last attributes (fs.h) */
		itab_unlock(&fs->itab, ino);
		fuse_reply_attr(req, &st, fs->opts.attr_timeout);
		goto out_free;
	}
	if (rc)
		goto out_unlock;
	if (to_set & FUSE_SET_ATTR_MODE)
		in.mode = (in.mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		if (to_set & FUSE_SET_ATTR_UID)
			in.uid = attr->st_uid;
		if (to_set & FUSE_SET_ATTR_GID)
			in.gid = attr->st_gid;
		/* chown clears set-user-ID, and set-group-ID when group-executable (the kernel
		 * sends the new mode along unless it left the job to us) */
		if (!S_ISDIR(in.mode) && !(to_set & FUSE_SET_ATTR_MODE)) {
			in.mode &= ~(uint32_t)S_ISUID;
			if (in.mode & S_IXGRP)
				in.mode &= ~(uint32_t)S_ISGID;
		}
	}
	if ((to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)) &&
	    !(to_set & FUSE_SET_ATTR_MODE)) {
		if (to_set & FUSE_SET_ATTR_KILL_SUID)
			in.mode &= ~(uint32_t)S_ISUID;
		if ((to_set & FUSE_SET_ATTR_KILL_SGID) && (in.mode & S_IXGRP))
			in.mode &= ~(uint32_t)S_ISGID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(in.mode)) {
			rc = -EISDIR;
			goto out_unlock;
		}
		if (!S_ISREG(in.mode)) {
			rc = -EINVAL;
			goto out_unlock;
		}
		if (attr->st_size < 0) {
			rc = -EINVAL;
			goto out_unlock;
		}
		rc = fsd_truncate(&fs->data, &in, b, (uint64_t)attr->st_size);
		if (rc)
			goto out_unlock;
		if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)))
			in.mtime_ns = now;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		in.atime_ns = now;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		in.atime_ns = ts_ns(&attr->st_atim);
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		in.mtime_ns = now;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		in.mtime_ns = ts_ns(&attr->st_mtim);
	if (to_set & FUSE_SET_ATTR_CTIME)
		in.ctime_ns = ts_ns(&attr->st_ctim);
	else
		in.ctime_ns = now;
	rc = fs_inode_put(fs, b, &in);
	if (rc == 0)
		rc = fs_commit(fs, b, "setattr");
out_unlock:
	itab_unlock(&fs->itab, ino);
out:
	if (rc) {
		fuse_reply_err(req, -rc);
	} else {
		fs_stat(fs, &in, &st);
		fuse_reply_attr(req, &st, fs->opts.attr_timeout);
	}
out_free:
	fr_batch_free(b);
	fss_inode_fini(&in);
}

void fsop_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct fs_inode in;
	char *target;
	int rc;

	fss_inode_init(&in);
	rc = fs_inode_get(fs, ino, &in);
	if (rc == 0 && !S_ISLNK(in.mode))
		rc = -EINVAL;
	if (rc) {
		fuse_reply_err(req, -rc);
		goto out;
	}
	target = malloc(in.payload_len + 1);
	if (!target) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	if (in.payload_len)
		memcpy(target, in.payload, in.payload_len);
	target[in.payload_len] = 0;
	fuse_reply_readlink(req, target);
	free(target);
out:
	fss_inode_fini(&in);
}

/* Whether the caller is in group gid (primary or supplementary). */
static bool in_group(fuse_req_t req, const struct fuse_ctx *ctx, uint32_t gid)
{
	gid_t groups[64];
	int n, i;

	if (ctx->gid == gid)
		return true;
	n = fuse_req_getgroups(req, 64, groups);
	for (i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

void fsop_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs_inode in;
	unsigned bits;
	int rc;

	fss_inode_init(&in);
	rc = fs_inode_get(fs, ino, &in);
	if (rc || mask == F_OK)
		goto out;
	if ((mask & W_OK) && fs->opts.read_only) {
		rc = -EROFS;
		goto out;
	}
	if (ctx->uid == 0) {
		/* root may read and write anything, and execute what anyone may */
		if ((mask & X_OK) && !S_ISDIR(in.mode) && !(in.mode & 0111))
			rc = -EACCES;
		goto out;
	}
	if (ctx->uid == in.uid)
		bits = (in.mode >> 6) & 7;
	else if (in_group(req, ctx, in.gid))
		bits = (in.mode >> 3) & 7;
	else
		bits = in.mode & 7;
	if (((mask & R_OK) && !(bits & 4)) || ((mask & W_OK) && !(bits & 2)) ||
	    ((mask & X_OK) && !(bits & 1)))
		rc = -EACCES;
out:
	fuse_reply_err(req, -rc);
	fss_inode_fini(&in);
}

void fsop_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv;
	fr_db_stats ds;
	fr_error e;
	fr_status st;
	uint64_t bsize = 4096, used, total, avail, files;

	(void)ino;
	st = fr_db_stats_get(fs->db, &ds, &e);
	if (st != FR_OK) {
		fuse_reply_err(req, fs_errno(st, &e, "statfs"));
		return;
	}
	used = ds.table_bytes + ds.journal_bytes + ds.memtable_bytes;
	avail = ds.disk_avail_bytes;
	total = ds.disk_total_bytes;
	if (total < used + avail)
		total = used + avail;
	files = atomic_load(&fs->inode_cnt);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = bsize;
	sv.f_frsize = bsize;
	sv.f_blocks = total / bsize;
	sv.f_bfree = avail / bsize;
	sv.f_bavail = avail / bsize;
	/* inodes cost a few hundred bytes each: the free count follows the free space */
	sv.f_ffree = avail / 512;
	sv.f_favail = sv.f_ffree;
	sv.f_files = files + sv.f_ffree;
	sv.f_namemax = FSS_NAME_MAX;
	sv.f_fsid = 0x66726163; /* "frac" */
	fuse_reply_statfs(req, &sv);
}
