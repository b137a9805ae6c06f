/* SPDX-License-Identifier: MIT */
/*
 * ops_readdir.c - listing directories. opendir takes a store snapshot; readdir and readdirplus
 * walk the directory's keyspace at that snapshot, resuming after the last name they returned,
 * so a listing made while the directory changes shows every entry that existed at opendir
 * exactly once, and no other.
 *
 * Offsets: "." is 1, ".." is 2, and the n-th entry of the keyspace is n + 2. A handle keeps its
 * iterator, standing on the next entry, and the offset and name it stopped at; a call with
 * another offset (seekdir) walks from the start again, and offset 0 after the first call
 * (rewinddir) takes a new snapshot.
 */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errmap.h"

struct dir_handle {
	fr_snapshot *snap;
	struct fs_node *node;   /* held while the handle is open */
	fr_keyspace *ks;
	uint64_t parent;        /* ".." */
	fr_iter *it;            /* at the entry after `last`, kept between calls; may be NULL */
	char last[FSS_NAME_MAX + 1]; /* the last name returned (valid when last_off > 2) */
	off_t last_off;
	bool started;           /* a readdir has been answered */
	pthread_mutex_t mu;     /* one readdir at a time per handle */
};

/* Closes a handle: the snapshot, the open count and the node hold. */
static void dir_handle_free(struct fs *fs, uint64_t ino, struct dir_handle *dh)
{
	fr_iter_close(dh->it);
	fr_snapshot_close(dh->snap);
	pthread_mutex_destroy(&dh->mu);
	fs_node_close(fs, ino); /* never the last hold: dh->node is one */
	fs_node_put(fs, dh->node);
	free(dh);
}

/* The parent of directory ino (itself when unknown or for the root). */
static uint64_t dir_parent(struct fs *fs, uint64_t ino)
{
	struct fs_inode in;
	uint64_t parent = ino;

	fss_inode_init(&in);
	if (fs_inode_get(fs, ino, &in) == 0 && in.parent)
		parent = in.parent;
	fss_inode_fini(&in);
	return parent;
}

void fsop_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct dir_handle *dh = calloc(1, sizeof(*dh));
	fr_error e;
	fr_status st;
	int rc;

	if (!dh) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = -fs_dir_open(fs, ino, false, &dh->node, &dh->ks);
	if (rc)
		goto fail;
	if (!itab_open(&fs->itab, dh->node)) {
		rc = ENOENT; /* removed: its cached keyspace handle is stale */
		goto fail;
	}
	dh->parent = dir_parent(fs, ino);
	st = fr_snapshot_open(fs->db, &dh->snap, &e);
	if (st != FR_OK) {
		rc = fs_errno(st, &e, "opendir");
		fs_node_close(fs, ino); /* never the last hold: dh->node is one */
		goto fail;
	}
	pthread_mutex_init(&dh->mu, NULL);
	fi->fh = (uintptr_t)dh;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0)
		dir_handle_free(fs, ino, dh); /* interrupted: the kernel never saw the handle */
	return;
fail:
	fs_node_put(fs, dh->node);
	free(dh);
	fuse_reply_err(req, rc);
}

/* Adds one entry; returns false when the buffer is full (the entry was not added). For
 * readdirplus the inode is read (live) and counted as a kernel lookup. */
static bool add_entry(fuse_req_t req, struct fs *fs, bool plus, char *buf, size_t size,
		      size_t *pos, const char *name, uint64_t ino, uint8_t dtype, off_t off)
{
	size_t need;

	if (!plus) {
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = ino;
		st.st_mode = (mode_t)dtype << 12;
		need = fuse_add_direntry(req, buf + *pos, size - *pos, name, &st, off);
	} else {
		struct fuse_entry_param e;
		struct fs_inode in;
		bool real = strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
		struct fs_node *n = NULL;

		memset(&e, 0, sizeof(e));
		e.attr.st_ino = ino;
		e.attr.st_mode = (mode_t)dtype << 12;
		fss_inode_init(&in);
		if (real && fs_inode_get(fs, ino, &in) == 0)
			n = itab_get(&fs->itab, ino);
		if (n)
			fsop_entry(fs, &in, &e);
		fss_inode_fini(&in);
		need = fuse_add_direntry_plus(req, buf + *pos, size - *pos, name, &e, off);
		if (n && need <= size - *pos)
			itab_lookup(&fs->itab, n);
		fs_node_put(fs, n);
	}
	if (need > size - *pos)
		return false;
	*pos += need;
	return true;
}

/* Positions dh->it on the entry with offset off + 1 (the first one the caller wants): the kept
 * iterator when it stands there already, else a new one, seeking by name after the last one
 * returned, or counting from the start (seekdir to an older offset). *at is set to the offset
 * of the entry before the iterator's position. */
static fr_status dir_position(struct dir_handle *dh, off_t off, off_t *at, fr_error *e)
{
	fr_iter_options io;
	fr_status st;

	if (dh->it && off > 2 && off == dh->last_off) {
		*at = off;
		return FR_OK;
	}
	fr_iter_close(dh->it);
	dh->it = NULL;
	memset(&io, 0, sizeof(io));
	io.snapshot = dh->snap;
	*at = 2;
	if (off > 2 && off == dh->last_off) {
		io.lower = dh->last;
		io.lower_len = strlen(dh->last);
	}
	st = fr_iter_open(dh->ks, &io, &dh->it, e);
	if (st != FR_OK)
		return st;
	if (io.lower) {
		size_t klen;
		*at = off;
		if (fr_iter_valid(dh->it)) {
			const void *k = fr_iter_key(dh->it, &klen);
			if (klen == io.lower_len && memcmp(k, dh->last, klen) == 0)
				st = fr_iter_next(dh->it, e);
		}
		return st;
	}
	while (st == FR_OK && *at < off && fr_iter_valid(dh->it)) {
		(*at)++;
		st = fr_iter_next(dh->it, e);
	}
	return st;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fs_of(req);
	struct dir_handle *dh = (struct dir_handle *)(uintptr_t)fi->fh;
	fr_error e;
	fr_status st = FR_OK;
	char *buf;
	size_t pos = 0;
	off_t at;
	int rc = 0;

	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&dh->mu);
	if (off == 0 && dh->started) {
		/* rewinddir: POSIX wants the directory as it is now */
		fr_snapshot *snap;
		st = fr_snapshot_open(fs->db, &snap, &e);
		if (st != FR_OK) {
			rc = fs_errno(st, &e, "readdir");
			goto reply;
		}
		fr_iter_close(dh->it);
		dh->it = NULL;
		fr_snapshot_close(dh->snap);
		dh->snap = snap;
		dh->parent = dir_parent(fs, ino);
		dh->last_off = 0;
	}
	if (off < 1 && !add_entry(req, fs, plus, buf, size, &pos, ".", ino, DT_DIR, 1))
		goto reply;
	if (off < 2 && !add_entry(req, fs, plus, buf, size, &pos, "..", dh->parent, DT_DIR, 2))
		goto reply;
	st = dir_position(dh, off, &at, &e);
	while (st == FR_OK && fr_iter_valid(dh->it)) {
		char name[FSS_NAME_MAX + 1];
		size_t klen, vlen;
		const void *k = fr_iter_key(dh->it, &klen);
		const void *v = fr_iter_value(dh->it, &vlen);
		uint64_t cino;
		uint8_t dtype;

		if (klen > FSS_NAME_MAX || fss_dirent_decode(v, vlen, &cino, &dtype)) {
			rc = EIO;
			break;
		}
		memcpy(name, k, klen);
		name[klen] = 0;
		/* an entry that does not fit stays under the iterator for the next call */
		if (!add_entry(req, fs, plus, buf, size, &pos, name, cino, dtype, at + 1))
			break;
		memcpy(dh->last, name, klen + 1);
		dh->last_off = ++at;
		st = fr_iter_next(dh->it, &e);
	}
	if (st != FR_OK) {
		rc = fs_errno(st, &e, "readdir");
		fr_iter_close(dh->it);
		dh->it = NULL;
	}
reply:
	dh->started = true;
	pthread_mutex_unlock(&dh->mu);
	if (rc && pos == 0)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, pos);
	free(buf);
}

void fsop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void fsop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

void fsop_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);

	dir_handle_free(fs, ino, (struct dir_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void fsop_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	fr_error e;
	fr_status st;

	(void)ino;
	(void)datasync;
	(void)fi;
	st = fr_db_persist(fs->db, FR_PERSIST_SYNC_DATA, &e);
	fuse_reply_err(req, fs_errno(st, &e, "fsyncdir"));
}
