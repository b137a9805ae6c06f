/* SPDX-License-Identifier: MIT */
/*
 * node.c - the helpers of fs.h: inode records in and out of the store, commits, struct stat,
 * directory keyspaces and reclaiming unlinked inodes.
 */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmap.h"

int fs_inode_get(struct fs *fs, uint64_t ino, struct fs_inode *out)
{
	uint8_t key[FSS_INO_KEY_LEN];
	fr_error e;
	void *val;
	size_t len;
	fr_status st;
	int rc;

	fss_ino_key(ino, key);
	st = fr_get(fs->inodes, key, sizeof(key), &val, &len, &e);
	if (st == FR_NOT_FOUND)
		return -ENOENT;
	if (st != FR_OK)
		return -fs_errno(st, &e, "read inode");
	rc = fss_inode_decode(ino, val, len, out);
	fr_free(val);
	if (rc == -EIO)
		fprintf(stderr, "fractiofs: inode %llu: corrupt record (%zu bytes)\n",
			(unsigned long long)ino, len);
	return rc;
}

int fs_inode_put(struct fs *fs, fr_batch *b, const struct fs_inode *in)
{
	uint8_t key[FSS_INO_KEY_LEN];
	size_t len = fss_inode_encoded_len(in);
	uint8_t small[256], *val = small;
	fr_status st;

	if (len > sizeof(small)) {
		val = malloc(len);
		if (!val)
			return -ENOMEM;
	}
	fss_inode_encode(in, val);
	fss_ino_key(in->ino, key);
	st = fr_batch_put(b, fs->inodes, key, sizeof(key), val, len);
	if (val != small)
		free(val);
	return st == FR_OK ? 0 : -fs_errno(st, NULL, "batch");
}

fr_batch *fs_batch(struct fs *fs)
{
	fr_batch *b;

	return fr_batch_new(fs->db, &b) == FR_OK ? b : NULL;
}

int fs_batch_rw(struct fs *fs, fr_batch **out)
{
	*out = NULL;
	if (fs->opts.read_only)
		return -EROFS;
	*out = fs_batch(fs);
	return *out ? 0 : -ENOMEM;
}

int fs_commit(struct fs *fs, fr_batch *b, const char *what)
{
	fr_error e;
	fr_status st = fr_batch_commit(b, fs->persist, NULL, &e);

	return st == FR_OK ? 0 : -fs_errno(st, &e, what);
}

/* Nanoseconds since the epoch as a timespec, tv_nsec in [0, 1e9) also before 1970. */
static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	if (ts->tv_nsec < 0) {
		ts->tv_sec--;
		ts->tv_nsec += 1000000000;
	}
}

void fs_stat(const struct fs *fs, const struct fs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)in->size;
	st->st_blksize = fs->data.chunk_size;
	st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
	ns_to_ts(in->atime_ns, &st->st_atim);
	ns_to_ts(in->mtime_ns, &st->st_mtim);
	ns_to_ts(in->ctime_ns, &st->st_ctim);
}

uint64_t fs_ino_alloc(struct fs *fs)
{
	return atomic_fetch_add(&fs->next_ino, 1);
}

void fs_touch(struct fs_inode *in, bool mtime, bool ctime, int64_t now)
{
	if (mtime)
		in->mtime_ns = now;
	if (ctime)
		in->ctime_ns = now;
}

int fs_dir_ks(struct fs *fs, struct fs_node *n, bool ns_held, fr_keyspace **out)
{
	char name[FSS_DIR_KS_NAME_MAX];
	fr_keyspace_options o;
	fr_keyspace *ks;
	fr_error e;
	fr_status st;
	bool exists;
	int rc = 0;

	pthread_mutex_lock(&fs->itab.mu);
	ks = n->dir_ks;
	pthread_mutex_unlock(&fs->itab.mu);
	if (ks) {
		*out = ks;
		return 0;
	}
	fss_dir_ks_name(n->ino, name);
	fr_keyspace_options_init(&o);
	o.tree = FSS_TREE_DIRS;
	if (!ns_held)
		pthread_mutex_lock(&fs->ns_mu);
	st = fr_keyspace_exists(fs->db, name, &exists, &e);
	if (st == FR_OK && !exists)
		rc = -ENOENT;
	else if (st == FR_OK)
		st = fr_keyspace_open(fs->db, name, &o, &ks, &e);
	if (!ns_held)
		pthread_mutex_unlock(&fs->ns_mu);
	if (rc)
		return rc;
	if (st != FR_OK)
		return -fs_errno(st, &e, "open directory");
	*out = itab_set_dir_ks(&fs->itab, n, ks);
	return 0;
}

int fs_dir_open(struct fs *fs, uint64_t ino, bool ns_held, struct fs_node **np,
		fr_keyspace **ks)
{
	struct fs_node *n = itab_get(&fs->itab, ino);
	int rc;

	*np = NULL;
	if (!n)
		return -ENOMEM;
	rc = fs_dir_ks(fs, n, ns_held, ks);
	if (rc == -ENOENT) {
		/* a directory inode always has its keyspace; anything else is not a directory */
		struct fs_inode in;
		fss_inode_init(&in);
		if (fs_inode_get(fs, ino, &in) == 0 && !S_ISDIR(in.mode))
			rc = -ENOTDIR;
		fss_inode_fini(&in);
	}
	if (rc) {
		fs_node_put(fs, n);
		return rc;
	}
	*np = n;
	return 0;
}

void fs_node_put(struct fs *fs, struct fs_node *n)
{
	uint64_t ino;

	if (!n)
		return;
	ino = n->ino;
	if (itab_put(&fs->itab, n))
		fs_reclaim(fs, ino);
}

void fs_node_close(struct fs *fs, uint64_t ino)
{
	if (itab_close(&fs->itab, ino))
		fs_reclaim(fs, ino);
}

int fs_dirent_get(fr_keyspace *dks, const char *name, uint64_t *ino, uint8_t *dtype)
{
	fr_error e;
	void *val;
	size_t len;
	fr_status st;
	int rc;

	st = fr_get(dks, name, strlen(name), &val, &len, &e);
	if (st == FR_NOT_FOUND)
		return -ENOENT;
	if (st != FR_OK)
		return -fs_errno(st, &e, "read directory entry");
	rc = fss_dirent_decode(val, len, ino, dtype);
	fr_free(val);
	if (rc)
		fprintf(stderr, "fractiofs: %s: corrupt directory entry '%s'\n",
			fr_keyspace_name(dks), name);
	return rc;
}

/* Adds the removal of every xattr of ino to b: point removes, one per attribute (there are few,
 * and a range tombstone would cost every later point read of the tree). */
static int drop_xattrs(struct fs *fs, uint64_t ino, fr_batch *b)
{
	uint8_t prefix[FSS_INO_KEY_LEN];
	fr_iter_options o;
	fr_iter *it = NULL;
	fr_error e;
	fr_status st;
	int rc = 0;

	fss_ino_key(ino, prefix);
	memset(&o, 0, sizeof(o));
	o.prefix = prefix;
	o.prefix_len = sizeof(prefix);
	st = fr_iter_open(fs->xattr, &o, &it, &e);
	while (st == FR_OK && rc == 0 && fr_iter_valid(it)) {
		size_t klen;
		const void *k = fr_iter_key(it, &klen);
		if (fr_batch_remove(b, fs->xattr, k, klen))
			rc = -ENOMEM;
		else
			st = fr_iter_next(it, &e);
	}
	if (st != FR_OK)
		rc = -fs_errno(st, &e, "list xattrs");
	fr_iter_close(it);
	return rc;
}

int fs_inode_drop(struct fs *fs, fr_batch *b, const struct fs_inode *in)
{
	uint8_t key[FSS_INO_KEY_LEN];
	struct stat st;
	int rc = 0;

	fs_stat(fs, in, &st);
	itab_set_last(&fs->itab, in->ino, &st); /* for a kernel that still holds it (fs.h) */
	if (S_ISREG(in->mode) && !(in->flags & FSI_INLINE))
		rc = fsd_drop(&fs->data, in, b);
	if (rc == 0 && (in->flags & FSI_XATTR))
		rc = drop_xattrs(fs, in->ino, b);
	fss_ino_key(in->ino, key);
	if (rc == 0 && fr_batch_remove(b, fs->inodes, key, sizeof(key)))
		rc = -ENOMEM;
	return rc;
}

void fs_reclaim(struct fs *fs, uint64_t ino)
{
	uint8_t key[FSS_INO_KEY_LEN];
	struct fs_inode in;
	fr_batch *b;
	int rc;

	if (fs->opts.read_only)
		return;
	b = fs_batch(fs);
	if (!b) {
		fprintf(stderr, "fractiofs: reclaim inode %llu: out of memory\n",
			(unsigned long long)ino);
		return;
	}
	fss_inode_init(&in);
	itab_lock(&fs->itab, ino);
	rc = fs_inode_get(fs, ino, &in);
	if (rc == 0 && in.nlink != 0)
		goto out; /* linked again (never by us, but do not destroy a live file) */
	fss_ino_key(ino, key);
	if (rc == 0) {
		rc = fs_inode_drop(fs, b, &in);
	} else if (rc == -ENOENT) {
		rc = 0; /* only the orphan entry is left */
	}
	if (rc == 0 && fr_batch_remove(b, fs->orphans, key, sizeof(key)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = fs_commit(fs, b, "reclaim inode");
	if (rc == 0 && in.mode)
		atomic_fetch_sub(&fs->inode_cnt, 1);
out:
	itab_unlock(&fs->itab, ino);
	if (rc)
		fprintf(stderr, "fractiofs: reclaim inode %llu: %s (kept for the next mount)\n",
			(unsigned long long)ino, strerror(-rc));
	fss_inode_fini(&in);
	fr_batch_free(b);
}

int fs_reclaim_all(struct fs *fs)
{
	fr_iter *it;
	fr_error e;
	fr_status st;
	uint64_t *inos = NULL;
	size_t cnt = 0, cap = 0, i;
	int rc = 0;

	st = fr_iter_open(fs->orphans, NULL, &it, &e);
	if (st != FR_OK)
		return -fs_errno(st, &e, "list orphans");
	while (fr_iter_valid(it)) {
		size_t klen;
		const void *k = fr_iter_key(it, &klen);
		uint64_t ino;
		if (fss_ino_key_decode(k, klen, &ino) == 0) {
			if (cnt == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				uint64_t *p = realloc(inos, ncap * sizeof(*p));
				if (!p) {
					rc = -ENOMEM;
					break;
				}
				inos = p;
				cap = ncap;
			}
			inos[cnt++] = ino;
		}
		st = fr_iter_next(it, &e);
		if (st != FR_OK) {
			rc = -fs_errno(st, &e, "list orphans");
			break;
		}
	}
	fr_iter_close(it);
	for (i = 0; rc == 0 && i < cnt; i++)
		fs_reclaim(fs, inos[i]);
	free(inos);
	return rc;
}
