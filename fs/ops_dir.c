/* SPDX-License-Identifier: MIT */
/*
 * ops_dir.c - operations on names: lookup and forget, and the namespace changes (mknod,
 * mkdir, symlink, create, link, unlink, rmdir, rename). Each change is one batch committed
 * under fs->ns_mu with the stripe locks of every inode it rewrites (fs.h), so after a crash the
 * tree is either before or after it (fs/SCHEMA.md §8).
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmap.h"

void fsop_entry(struct fs *fs, const struct fs_inode *in, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = in->ino;
	e->generation = in->generation;
	fs_stat(fs, in, &e->attr);
	e->attr_timeout = fs->opts.attr_timeout;
	e->entry_timeout = fs->opts.entry_timeout;
}

void fsop_forget_one(struct fs *fs, uint64_t ino, uint64_t nlookup)
{
	if (itab_forget(&fs->itab, ino, nlookup))
		fs_reclaim(fs, ino);
}

void fsop_reply_entry(fuse_req_t req, struct fs *fs, const struct fs_inode *in)
{
	struct fuse_entry_param e;
	struct fs_node *n = itab_get(&fs->itab, in->ino);

	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fsop_entry(fs, in, &e);
	/* count first: a forget may race in right after the kernel has the reply */
	itab_lookup(&fs->itab, n);
	itab_put(&fs->itab, n);
	if (fuse_reply_entry(req, &e) != 0)
		fsop_forget_one(fs, in->ino, 1);
}

void fsop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fs_node *pn;
	fr_keyspace *dks;
	struct fs_inode in;
	uint64_t ino;
	uint8_t dtype;
	int rc;

	fss_inode_init(&in);
	if (strlen(name) > FSS_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	rc = fs_dir_open(fs, parent, false, &pn, &dks);
	if (rc)
		goto out;
	rc = fs_dirent_get(dks, name, &ino, &dtype);
	fs_node_put(fs, pn);
	if (rc == -ENOENT) {
		/* a negative entry the kernel may cache for entry_timeout */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->opts.entry_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		goto out;
	rc = fs_inode_get(fs, ino, &in);
	if (rc == -ENOENT) {
		fprintf(stderr, "fractiofs: entry '%s' in directory %llu names missing inode %llu\n",
			name, (unsigned long long)parent, (unsigned long long)ino);
		rc = -EIO;
	}
	if (rc)
		goto out;
	fsop_reply_entry(req, fs, &in);
	fss_inode_fini(&in);
	return;
out:
	fss_inode_fini(&in);
	fuse_reply_err(req, -rc);
}

void fsop_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fsop_forget_one(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

void fsop_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fs_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		fsop_forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* Reads the parent's inode under its lock and checks it can take a new entry. */
static int parent_load(struct fs *fs, uint64_t parent, struct fs_inode *pin)
{
	int rc = fs_inode_get(fs, parent, pin);

	if (rc)
		return rc;
	if (!S_ISDIR(pin->mode))
		return -ENOTDIR;
	if (pin->nlink == 0)
		return -ENOENT; /* removed while a process still sits in it */
	return 0;
}

static int put_dirent(fr_batch *b, fr_keyspace *dks, const char *name, uint64_t ino,
		      uint32_t mode)
{
	uint8_t val[FSS_DIRENT_LEN];

	fss_dirent_encode(ino, fss_mode_dtype(mode), val);
	return fr_batch_put(b, dks, name, strlen(name), val, sizeof(val)) ? -ENOMEM : 0;
}

static int put_orphan(struct fs *fs, fr_batch *b, uint64_t ino)
{
	uint8_t key[FSS_INO_KEY_LEN];

	fss_ino_key(ino, key);
	return fr_batch_put(b, fs->orphans, key, sizeof(key), "", 0) ? -ENOMEM : 0;
}

/*
 * Makes a new inode named `name` in `parent`: mknod, mkdir, symlink and create all come here.
 * `target` is the symlink target or NULL. On success *out holds the new inode.
 */
static int make_node(fuse_req_t req, fuse_ino_t parent, const char *name, uint32_t mode,
		     dev_t rdev, const char *target, struct fs_inode *out)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs_node *pn = NULL;
	struct fs_inode pin;
	fr_keyspace *dks;
	fr_batch *b = NULL;
	uint64_t ino, dummy_ino;
	uint8_t dummy_type;
	int64_t now;
	int rc;

	fss_inode_init(&pin);
	rc = fss_name_check(name);
	if (rc)
		return rc == -EINVAL ? -EEXIST : rc; /* "." and ".." exist */
	if (target && strlen(target) > FSS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	rc = fs_batch_rw(fs, &b);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->ns_mu);
	rc = fs_dir_open(fs, parent, true, &pn, &dks);
	if (rc)
		goto out_unlock_ns;
	itab_lock(&fs->itab, parent);
	rc = parent_load(fs, parent, &pin);
	if (rc)
		goto out_unlock;
	rc = fs_dirent_get(dks, name, &dummy_ino, &dummy_type);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out_unlock;

	now = fss_now_ns();
	ino = fs_ino_alloc(fs);
	out->ino = ino;
	out->mode = mode;
	out->uid = ctx->uid;
	out->gid = ctx->gid;
	if (pin.mode & S_ISGID) {
		/* set-group-ID directory: its group is inherited, and so is the bit by subdirs */
		out->gid = pin.gid;
		if (S_ISDIR(mode))
			out->mode |= S_ISGID;
	}
	out->nlink = S_ISDIR(mode) ? 2 : 1;
	out->parent = S_ISDIR(mode) ? parent : 0;
	out->rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
	out->generation = fs->sb.mount_cnt;
	out->atime_ns = out->mtime_ns = out->ctime_ns = out->btime_ns = now;
	if (S_ISREG(mode))
		out->flags = FSI_INLINE;
	if (target) {
		rc = fss_inode_set_payload(out, target, strlen(target));
		if (rc)
			goto out_unlock;
		out->size = strlen(target);
	}
	rc = put_dirent(b, dks, name, ino, mode);
	if (rc == 0)
		rc = fs_inode_put(fs, b, out);
	if (rc == 0 && S_ISDIR(mode)) {
		char ks_name[FSS_DIR_KS_NAME_MAX];
		fr_keyspace_options o;
		fr_keyspace_options_init(&o);
		o.tree = FSS_TREE_DIRS;
		fss_dir_ks_name(ino, ks_name);
		if (fr_batch_create_keyspace(b, ks_name, &o))
			rc = -ENOMEM;
		pin.nlink++;
	}
	fs_touch(&pin, true, true, now);
	if (rc == 0)
		rc = fs_inode_put(fs, b, &pin);
	if (rc == 0)
		rc = fs_commit(fs, b, "create");
	if (rc == 0)
		atomic_fetch_add(&fs->inode_cnt, 1);
out_unlock:
	itab_unlock(&fs->itab, parent);
	fs_node_put(fs, pn);
out_unlock_ns:
	pthread_mutex_unlock(&fs->ns_mu);
	fr_batch_free(b);
	fss_inode_fini(&pin);
	return rc;
}

static void make_and_reply(fuse_req_t req, fuse_ino_t parent, const char *name, uint32_t mode,
			   dev_t rdev, const char *target)
{
	struct fs_inode in;
	int rc;

	fss_inode_init(&in);
	rc = make_node(req, parent, name, mode, rdev, target, &in);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fsop_reply_entry(req, fs_of(req), &in);
	fss_inode_fini(&in);
}

void fsop_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		make_and_reply(req, parent, name, mode & (S_IFMT | 07777), rdev, NULL);
		return;
	case 0:
		make_and_reply(req, parent, name, S_IFREG | (mode & 07777), 0, NULL);
		return;
	default:
		fuse_reply_err(req, EINVAL);
	}
}

void fsop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_and_reply(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

void fsop_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_and_reply(req, parent, name, S_IFLNK | 0777, 0, link);
}

void fsop_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct fs_inode in;
	struct fs_node *n;
	int rc;

	fss_inode_init(&in);
	rc = make_node(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, &in);
	if (rc) {
		fuse_reply_err(req, -rc);
		goto out;
	}
	n = itab_get(&fs->itab, in.ino);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	fsop_entry(fs, &in, &e);
	itab_lookup(&fs->itab, n);
	(void)itab_open(&fs->itab, n); /* a new inode is never gone */
	itab_put(&fs->itab, n);
	fi->fh = 0;
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &e, fi) != 0) {
		fsop_forget_one(fs, in.ino, 1);
		fs_node_close(fs, in.ino);
	}
out:
	fss_inode_fini(&in);
}

void fsop_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fs *fs = fs_of(req);
	struct fs_node *pn = NULL;
	struct fs_inode in, pin;
	struct itab_lockset ls;
	uint64_t inos[2] = {ino, newparent};
	fr_keyspace *dks;
	fr_batch *b = NULL;
	uint64_t dummy_ino;
	uint8_t dummy_type;
	int64_t now;
	int rc;

	fss_inode_init(&in);
	fss_inode_init(&pin);
	rc = fss_name_check(newname);
	if (rc) {
		rc = rc == -EINVAL ? -EEXIST : rc;
		goto out;
	}
	rc = fs_batch_rw(fs, &b);
	if (rc)
		goto out;
	pthread_mutex_lock(&fs->ns_mu);
	rc = fs_dir_open(fs, newparent, true, &pn, &dks);
	if (rc)
		goto out_unlock_ns;
	itab_lock_set(&fs->itab, &ls, inos, 2);
	rc = parent_load(fs, newparent, &pin);
	if (rc)
		goto out_unlock;
	rc = fs_dirent_get(dks, newname, &dummy_ino, &dummy_type);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out_unlock;
	rc = fs_inode_get(fs, ino, &in);
	if (rc)
		goto out_unlock;
	if (S_ISDIR(in.mode)) {
		rc = -EPERM;
		goto out_unlock;
	}
	if (in.nlink == 0) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if (in.nlink >= 65000) {
		rc = -EMLINK;
		goto out_unlock;
	}
	now = fss_now_ns();
	in.nlink++;
	fs_touch(&in, false, true, now);
	fs_touch(&pin, true, true, now);
	rc = put_dirent(b, dks, newname, ino, in.mode);
	if (rc == 0)
		rc = fs_inode_put(fs, b, &in);
	if (rc == 0)
		rc = fs_inode_put(fs, b, &pin);
	if (rc == 0)
		rc = fs_commit(fs, b, "link");
out_unlock:
	itab_unlock_set(&fs->itab, &ls);
	fs_node_put(fs, pn);
out_unlock_ns:
	pthread_mutex_unlock(&fs->ns_mu);
out:
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fsop_reply_entry(req, fs, &in);
	fr_batch_free(b);
	fss_inode_fini(&in);
	fss_inode_fini(&pin);
}

/* 0 when directory ino has no entries, -ENOTEMPTY, or -errno. Requires: ns_mu held. */
static int dir_empty(struct fs *fs, uint64_t ino)
{
	struct fs_node *n;
	fr_keyspace *ks;
	fr_error e;
	fr_status st;
	int rc = fs_dir_open(fs, ino, true, &n, &ks);

	if (rc == -ENOENT)
		return 0; /* no keyspace: nothing in it */
	if (rc)
		return rc;
	st = fr_first(ks, NULL, NULL, NULL, NULL, &e);
	fs_node_put(fs, n);
	if (st == FR_NOT_FOUND)
		return 0;
	if (st == FR_OK)
		return -ENOTEMPTY;
	return -fs_errno(st, &e, "list directory");
}

/*
 * Adds to b what removing one name of `in` does to it: the link count drops (a directory's
 * goes to 0 and its keyspace is dropped) and ctime changes. When no link is left, `drop` (from
 * itab_drop_begin: no handle is open) removes the inode itself in this batch, its record,
 * chunks and xattrs; without it the inode gets an orphan entry (*orphaned) and stays until its
 * last handle closes (fs_reclaim), or until the next mount after a crash. fs.h says why the
 * kernel's lookups on the inode need not keep it.
 */
static int unlink_inode(struct fs *fs, fr_batch *b, struct fs_inode *in, int64_t now, bool drop,
			bool *orphaned)
{
	int rc = 0;

	*orphaned = false;
	if (S_ISDIR(in->mode)) {
		char ks_name[FSS_DIR_KS_NAME_MAX];
		in->nlink = 0;
		fss_dir_ks_name(in->ino, ks_name);
		if (fr_batch_drop_keyspace(b, ks_name))
			return -ENOMEM;
	} else if (in->nlink > 0) {
		in->nlink--;
	}
	fs_touch(in, false, true, now);
	if (in->nlink == 0 && drop)
		return fs_inode_drop(fs, b, in);
	*orphaned = in->nlink == 0;
	if (*orphaned)
		rc = put_orphan(fs, b, in->ino);
	if (rc == 0)
		rc = fs_inode_put(fs, b, in);
	return rc;
}

/* Whether removing one name of `in` leaves it without links and nothing open on it, so that
 * it goes in the same batch (itab_drop_begin; undo with itab_drop_abort if the batch fails). */
static bool drop_with_name(struct fs *fs, const struct fs_inode *in)
{
	if (!S_ISDIR(in->mode) && in->nlink > 1)
		return false;
	return itab_drop_begin(&fs->itab, in->ino);
}

/* After the batch that removed a name whose inode drop_with_name dropped along: the inode is
 * gone (one fewer), or, when the batch failed, its node takes handles again. */
static void drop_end(struct fs *fs, uint64_t ino, bool drop, int rc)
{
	if (!drop)
		return;
	if (rc)
		itab_drop_abort(&fs->itab, ino);
	else
		atomic_fetch_sub(&fs->inode_cnt, 1);
}

static void after_orphaned(struct fs *fs, uint64_t ino)
{
	if (itab_mark_orphan(&fs->itab, ino))
		fs_reclaim(fs, ino);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct fs *fs = fs_of(req);
	struct fs_node *pn = NULL;
	struct fs_inode in, pin;
	struct itab_lockset ls = {.cnt = 0};
	fr_keyspace *dks;
	fr_batch *b = NULL;
	uint64_t inos[2];
	uint8_t dtype;
	bool orphaned = false, drop = false;
	int64_t now;
	int rc;

	fss_inode_init(&in);
	fss_inode_init(&pin);
	if (strlen(name) > FSS_NAME_MAX) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = fs_batch_rw(fs, &b);
	if (rc)
		goto out;
	pthread_mutex_lock(&fs->ns_mu);
	rc = fs_dir_open(fs, parent, true, &pn, &dks);
	if (rc)
		goto out_unlock_ns;
	rc = fs_dirent_get(dks, name, &inos[1], &dtype);
	if (rc)
		goto out_unlock_ns;
	inos[0] = parent;
	itab_lock_set(&fs->itab, &ls, inos, 2);
	rc = fs_inode_get(fs, parent, &pin);
	if (rc == 0)
		rc = fs_inode_get(fs, inos[1], &in);
	if (rc == -ENOENT)
		rc = -EIO; /* an entry without its inode */
	if (rc)
		goto out_unlock;
	if (dir && !S_ISDIR(in.mode)) {
		rc = -ENOTDIR;
		goto out_unlock;
	}
	if (!dir && S_ISDIR(in.mode)) {
		rc = -EISDIR;
		goto out_unlock;
	}
	if (dir) {
		rc = dir_empty(fs, in.ino);
		if (rc)
			goto out_unlock;
	}
	now = fss_now_ns();
	if (fr_batch_remove(b, dks, name, strlen(name))) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	drop = drop_with_name(fs, &in);
	rc = unlink_inode(fs, b, &in, now, drop, &orphaned);
	if (dir && pin.nlink > 2)
		pin.nlink--;
	fs_touch(&pin, true, true, now);
	if (rc == 0)
		rc = fs_inode_put(fs, b, &pin);
	if (rc == 0)
		rc = fs_commit(fs, b, dir ? "rmdir" : "unlink");
	drop_end(fs, in.ino, drop, rc);
out_unlock:
	itab_unlock_set(&fs->itab, &ls);
out_unlock_ns:
	fs_node_put(fs, pn);
	pthread_mutex_unlock(&fs->ns_mu);
	if (rc == 0 && orphaned)
		after_orphaned(fs, in.ino);
out:
	fuse_reply_err(req, -rc);
	fr_batch_free(b);
	fss_inode_fini(&in);
	fss_inode_fini(&pin);
}

void fsop_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, false);
}

void fsop_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, true);
}

/* The inodes a rename touches, loaded once each even when they coincide. */
struct rename_set {
	struct fs_inode sp, dp;  /* source and destination parents (dp unused when same) */
	struct fs_inode src, dst;
	bool same_parent, has_dst;
};

void fsop_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		 const char *newname, unsigned int flags)
{
	struct fs *fs = fs_of(req);
	struct fs_node *spn = NULL, *dpn = NULL;
	struct rename_set r;
	struct fs_inode *dp;
	struct itab_lockset ls = {.cnt = 0};
	fr_keyspace *sdks, *ddks;
	fr_batch *b = NULL;
	uint64_t inos[4], sino, dino = 0;
	uint8_t stype, dtype;
	bool orphaned = false, drop = false, exchange = flags & RENAME_EXCHANGE;
	int64_t now;
	int rc;

	memset(&r, 0, sizeof(r));
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    ((flags & RENAME_NOREPLACE) && exchange)) {
		rc = -EINVAL;
		goto out;
	}
	rc = fss_name_check(newname);
	if (rc == 0 && strlen(name) > FSS_NAME_MAX)
		rc = -ENAMETOOLONG;
	if (rc) {
		rc = rc == -EINVAL ? -EBUSY : rc;
		goto out;
	}
	rc = fs_batch_rw(fs, &b);
	if (rc)
		goto out;
	r.same_parent = parent == newparent;
	dp = r.same_parent ? &r.sp : &r.dp;
	pthread_mutex_lock(&fs->ns_mu);
	rc = fs_dir_open(fs, parent, true, &spn, &sdks);
	if (rc == 0)
		rc = fs_dir_open(fs, newparent, true, &dpn, &ddks);
	if (rc)
		goto out_unlock_ns;
	rc = fs_dirent_get(sdks, name, &sino, &stype);
	if (rc)
		goto out_unlock_ns;
	rc = fs_dirent_get(ddks, newname, &dino, &dtype);
	r.has_dst = rc == 0;
	if (rc && rc != -ENOENT)
		goto out_unlock_ns;
	rc = 0;
	if (r.has_dst && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out_unlock_ns;
	}
	if (!r.has_dst && exchange) {
		rc = -ENOENT;
		goto out_unlock_ns;
	}
	if (r.has_dst && dino == sino)
		goto out_unlock_ns; /* two names of one inode: POSIX says do nothing */
	inos[0] = parent;
	inos[1] = newparent;
	inos[2] = sino;
	inos[3] = r.has_dst ? dino : sino;
	itab_lock_set(&fs->itab, &ls, inos, 4);
	rc = fs_inode_get(fs, parent, &r.sp);
	if (rc == 0 && !r.same_parent)
		rc = parent_load(fs, newparent, &r.dp);
	if (rc == 0)
		rc = fs_inode_get(fs, sino, &r.src);
	if (rc == 0 && r.has_dst)
		rc = fs_inode_get(fs, dino, &r.dst);
	if (rc == -ENOENT)
		rc = -EIO;
	if (rc)
		goto out_unlock;
	if (r.has_dst && !exchange) {
		if (S_ISDIR(r.src.mode) && !S_ISDIR(r.dst.mode))
			rc = -ENOTDIR;
		else if (!S_ISDIR(r.src.mode) && S_ISDIR(r.dst.mode))
			rc = -EISDIR;
		else if (S_ISDIR(r.dst.mode))
			rc = dir_empty(fs, dino);
		if (rc)
			goto out_unlock;
	}
	/* (moving a directory into its own subtree is refused by the kernel before we are
	 * called: it holds every ancestor of both names in its dentry cache) */
	now = fss_now_ns();
	if (exchange) {
		rc = put_dirent(b, sdks, name, dino, r.dst.mode);
		if (rc == 0)
			rc = put_dirent(b, ddks, newname, sino, r.src.mode);
		if (!r.same_parent && S_ISDIR(r.src.mode) != S_ISDIR(r.dst.mode)) {
			struct fs_inode *gains = S_ISDIR(r.src.mode) ? dp : &r.sp;
			struct fs_inode *loses = S_ISDIR(r.src.mode) ? &r.sp : dp;
			gains->nlink++;
			loses->nlink--;
		}
		if (S_ISDIR(r.dst.mode))
			r.dst.parent = parent;
		fs_touch(&r.dst, false, true, now);
		if (rc == 0)
			rc = fs_inode_put(fs, b, &r.dst);
	} else {
		if (fr_batch_remove(b, sdks, name, strlen(name)))
			rc = -ENOMEM;
		if (rc == 0)
			rc = put_dirent(b, ddks, newname, sino, r.src.mode);
		if (rc == 0 && r.has_dst) {
			drop = drop_with_name(fs, &r.dst);
			rc = unlink_inode(fs, b, &r.dst, now, drop, &orphaned);
			if (S_ISDIR(r.dst.mode))
				dp->nlink--;
		}
		if (!r.same_parent && S_ISDIR(r.src.mode)) {
			r.sp.nlink--;
			dp->nlink++;
		}
	}
	if (S_ISDIR(r.src.mode))
		r.src.parent = newparent;
	fs_touch(&r.src, false, true, now);
	fs_touch(&r.sp, true, true, now);
	fs_touch(dp, true, true, now);
	if (rc == 0)
		rc = fs_inode_put(fs, b, &r.src);
	if (rc == 0)
		rc = fs_inode_put(fs, b, &r.sp);
	if (rc == 0 && !r.same_parent)
		rc = fs_inode_put(fs, b, &r.dp);
	if (rc == 0)
		rc = fs_commit(fs, b, "rename");
	drop_end(fs, dino, drop, rc);
out_unlock:
	itab_unlock_set(&fs->itab, &ls);
out_unlock_ns:
	fs_node_put(fs, spn);
	fs_node_put(fs, dpn);
	pthread_mutex_unlock(&fs->ns_mu);
	if (rc == 0 && orphaned)
		after_orphaned(fs, dino);
out:
	fuse_reply_err(req, -rc);
	fr_batch_free(b);
	fss_inode_fini(&r.sp);
	fss_inode_fini(&r.dp);
	fss_inode_fini(&r.src);
	fss_inode_fini(&r.dst);
}
