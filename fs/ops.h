/* SPDX-License-Identifier: MIT */
/*
 * ops.h - the FUSE low-level operations, one group per ops_*.c file, and the reply helpers they
 * share. Every operation sends exactly one reply (or fuse_reply_none for forget).
 */
#ifndef FRACTIO_FS_OPS_H
#define FRACTIO_FS_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "fs.h"

static inline struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Replies with an entry for inode in (and counts the kernel's new lookup). */
void fsop_reply_entry(fuse_req_t req, struct fs *fs, const struct fs_inode *in);
/* Fills e for inode in (no reply, no lookup counting). */
void fsop_entry(struct fs *fs, const struct fs_inode *in, struct fuse_entry_param *e);
/* Drops a kernel or handle hold, reclaiming the inode when it was the last hold on an orphan. */
void fsop_forget_one(struct fs *fs, uint64_t ino, uint64_t nlookup);

/* ops_dir.c: names */
void fsop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fsop_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fsop_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fsop_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fsop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fsop_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fsop_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fsop_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fsop_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fsop_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		 const char *newname, unsigned int flags);
void fsop_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi);

/* ops_readdir.c: listing */
void fsop_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void fsop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi);
void fsop_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsop_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ops_attr.c: attributes */
void fsop_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		  struct fuse_file_info *fi);
void fsop_readlink(fuse_req_t req, fuse_ino_t ino);
void fsop_access(fuse_req_t req, fuse_ino_t ino, int mask);
void fsop_statfs(fuse_req_t req, fuse_ino_t ino);

/* ops_file.c: contents */
void fsop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fsop_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi);
void fsop_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsop_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fsop_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		    struct fuse_file_info *fi);
void fsop_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
void fsop_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			  struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			  struct fuse_file_info *fi_out, size_t len, int flags);

/* ops_xattr.c: extended attributes */
void fsop_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		   size_t size, int flags);
void fsop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fsop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fsop_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
