/* SPDX-License-Identifier: MIT */
/*
 * ops_xattr.c - extended attributes in the xattr keyspace, key (ino, name) (fs/SCHEMA.md §6).
 * Changes take the inode's lock and update its ctime (and FSI_XATTR) in the same batch.
 */
#include "ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "errmap.h"

static int xattr_key(uint64_t ino, const char *name, uint8_t key[FSS_XATTR_KEY_MAX],
		     size_t *klen)
{
	size_t n = strlen(name);

	if (n == 0)
		return -EINVAL;
	if (n > FSS_NAME_MAX)
		return -ERANGE;
	*klen = fss_xattr_key(ino, name, n, key);
	return 0;
}

/* Whether the attribute exists. 0/1 or -errno. */
static int xattr_exists(struct fs *fs, const uint8_t *key, size_t klen)
{
	fr_error e;
	bool has;
	fr_status st = fr_contains(fs->xattr, key, klen, &has, &e);

	if (st != FR_OK)
		return -fs_errno(st, &e, "read xattr");
	return has;
}

static void xattr_change(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags, bool remove)
{
	struct fs *fs = fs_of(req);
	uint8_t key[FSS_XATTR_KEY_MAX];
	struct fs_inode in;
	fr_batch *b = NULL;
	size_t klen;
	int rc, has;

	fss_inode_init(&in);
	rc = xattr_key(ino, name, key, &klen);
	if (rc)
		goto out;
	if (!remove && strncmp(name, "system.posix_acl_", 17) == 0) {
		/* POSIX ACLs are not supported: storing one would not change the mode or the
		 * permission checks, so say so, and tools (cp -a) fall back to chmod */
		rc = -EOPNOTSUPP;
		goto out;
	}
	if (!remove && size > FSS_XATTR_VALUE_MAX) {
		rc = -E2BIG;
		goto out;
	}
	rc = fs_batch_rw(fs, &b);
	if (rc)
		goto out;
	itab_lock(&fs->itab, ino);
	rc = fs_inode_get(fs, ino, &in);
	if (rc)
		goto out_unlock;
	has = (in.flags & FSI_XATTR) ? xattr_exists(fs, key, klen) : 0;
	if (has < 0) {
		rc = has;
		goto out_unlock;
	}
	if ((remove || (flags & XATTR_REPLACE)) && !has) {
		rc = -ENODATA;
		goto out_unlock;
	}
	if (!remove && (flags & XATTR_CREATE) && has) {
		rc = -EEXIST;
		goto out_unlock;
	}
	if (remove ? fr_batch_remove(b, fs->xattr, key, klen)
		   : fr_batch_put(b, fs->xattr, key, klen, value, size)) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	in.flags |= FSI_XATTR;
	fs_touch(&in, false, true, fss_now_ns());
	rc = fs_inode_put(fs, b, &in);
	if (rc == 0)
		rc = fs_commit(fs, b, remove ? "removexattr" : "setxattr");
out_unlock:
	itab_unlock(&fs->itab, ino);
out:
	fuse_reply_err(req, -rc);
	fr_batch_free(b);
	fss_inode_fini(&in);
}

void fsop_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		   size_t size, int flags)
{
	xattr_change(req, ino, name, value, size, flags, false);
}

void fsop_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	xattr_change(req, ino, name, NULL, 0, 0, true);
}

void fsop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	uint8_t key[FSS_XATTR_KEY_MAX];
	size_t klen, vlen;
	void *val = NULL;
	fr_error e;
	fr_status st;
	int rc;

	rc = xattr_key(ino, name, key, &klen);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	st = fr_get(fs->xattr, key, klen, &val, &vlen, &e);
	if (st == FR_NOT_FOUND) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (st != FR_OK) {
		fuse_reply_err(req, fs_errno(st, &e, "getxattr"));
		return;
	}
	if (size == 0)
		fuse_reply_xattr(req, vlen);
	else if (vlen > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, vlen);
	fr_free(val);
}

void fsop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	uint8_t prefix[FSS_INO_KEY_LEN];
	fr_iter_options o;
	fr_iter *it = NULL;
	fr_error e;
	fr_status st;
	char *list = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	fss_ino_key(ino, prefix);
	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	o.prefix_len = sizeof(prefix);
	st = fr_iter_open(fs->xattr, &o, &it, &e);
	while (st == FR_OK && fr_iter_valid(it)) {
		size_t klen;
		const uint8_t *k = fr_iter_key(it, &klen);
		size_t n = klen - FSS_INO_KEY_LEN;
		if (len + n + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 256;
			char *p;
			while (ncap < len + n + 1)
				ncap *= 2;
			p = realloc(list, ncap);
			if (!p) {
				rc = ENOMEM;
				break;
			}
			list = p;
			cap = ncap;
		}
		memcpy(list + len, k + FSS_INO_KEY_LEN, n);
		list[len + n] = 0;
		len += n + 1;
		st = fr_iter_next(it, &e);
	}
	if (st != FR_OK)
		rc = fs_errno(st, &e, "listxattr");
	fr_iter_close(it);
	if (rc)
		fuse_reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, len);
	free(list);
}
