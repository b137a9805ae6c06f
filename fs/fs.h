/* SPDX-License-Identifier: MIT */
/*
 * fs.h - the daemon's shared state and the helpers every ops file uses (node.c): reading
 * and writing inode records, committing batches, turning inodes into struct stat, and finding a
 * directory's keyspace. Only fractio.h and libfuse are used below this line.
 *
 * Concurrency (lock order: ns_mu -> inode stripes (itab.h) -> itab's own mutex):
 *  - ns_mu serialises namespace operations (create, mknod, mkdir, symlink, link, unlink, rmdir,
 *    rename): each reads entries and inodes, decides, and commits one batch, and no other
 *    namespace change may slip in between. It is held across the commit on purpose: that is the
 *    atomicity the batch promises the kernel.
 *  - An inode's stripe lock is held by whoever reads-modifies-writes its record or its chunks
 *    (setattr, write, fallocate, xattr changes, and namespace operations for the inodes they
 *    touch).
 *  - Readers (lookup, getattr, read, readdir) take no lock: they read one committed state.
 */
#ifndef FRACTIO_FS_FS_H
#define FRACTIO_FS_FS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <fractio.h>

#include "data.h"
#include "itab.h"
#include "schema.h"

struct fs_opts {
	char *store;          /* STORE_DIR */
	char *mountpoint;
	unsigned chunk_size;  /* at creation */
	unsigned inline_max;
	double entry_timeout;
	double attr_timeout;
	int sync;             /* every change durable before the reply */
	int no_writeback;
	int read_only;
	int debug;
};

struct fs {
	struct fs_opts opts;
	fr_db *db;
	fr_keyspace *super;
	fr_keyspace *inodes;
	fr_keyspace *xattr;
	fr_keyspace *orphans;
	struct fsd data;       /* data.data is the data keyspace */
	struct fs_super sb;
	fr_persist persist;    /* BUFFER, or SYNC_DATA with -o sync */
	pthread_mutex_t ns_mu; /* see the top of this file */
	struct itab itab;
	atomic_uint_fast64_t next_ino;  /* atomic: allocation is a fetch-add */
	atomic_uint_fast64_t inode_cnt; /* atomic: statfs only */
};

/* ---- inode records ---- */
/* Reads inode ino into *out (initialised by the caller). 0, -ENOENT, -EIO (corrupt record). */
int fs_inode_get(struct fs *fs, uint64_t ino, struct fs_inode *out);
/* Adds the record to the batch. 0 or -errno. */
int fs_inode_put(struct fs *fs, fr_batch *b, const struct fs_inode *in);
/* Commits b with the filesystem's persist mode. 0 or -errno (the batch is emptied). */
int fs_commit(struct fs *fs, fr_batch *b, const char *what);
/* A new batch, or NULL (ENOMEM). */
fr_batch *fs_batch(struct fs *fs);
/* A new batch for a change: 0, -EROFS on a read-only mount, or -ENOMEM. */
int fs_batch_rw(struct fs *fs, fr_batch **out);
/* Fills st from an inode. */
void fs_stat(const struct fs *fs, const struct fs_inode *in, struct stat *st);
/* Allocates an inode number. */
uint64_t fs_ino_alloc(struct fs *fs);

/* ---- directories ---- */
/* The keyspace of directory n->ino, opened once per node and cached in it (n must be held by
 * the caller with itab_get). Opening checks under ns_mu that the keyspace exists, so a lookup
 * racing rmdir never re-creates it; ns_held says the caller holds ns_mu already.
 * 0, -ENOENT (no such directory), -errno. */
int fs_dir_ks(struct fs *fs, struct fs_node *n, bool ns_held, fr_keyspace **out);
/* The node of directory ino, held, and its keyspace: fs_dir_ks plus -ENOTDIR when ino is
 * something else. Release *np with fs_node_put. */
int fs_dir_open(struct fs *fs, uint64_t ino, bool ns_held, struct fs_node **np,
		fr_keyspace **ks);
/* Looks name up in directory dks. 0 with *ino and *dtype set, -ENOENT, -EIO. */
int fs_dirent_get(fr_keyspace *dks, const char *name, uint64_t *ino, uint8_t *dtype);

/* ---- holds on nodes: dropping the last hold on an orphan reclaims it ---- */
/* itab_put, then fs_reclaim when it was the last hold on an orphan. Accepts NULL. */
void fs_node_put(struct fs *fs, struct fs_node *n);
/* itab_close, then fs_reclaim when it was the last hold on an orphan. */
void fs_node_close(struct fs *fs, uint64_t ino);

/* ---- reclaiming ---- */
/* Adds to b the removal of an inode with no links: its chunks, xattrs and record. */
int fs_inode_drop(struct fs *fs, fr_batch *b, const struct fs_inode *in);
/* Removes an inode whose link count is 0: record, chunks, xattrs and orphan entry, in one
 * batch. Errors are logged (the orphan entry stays for the next mount). */
void fs_reclaim(struct fs *fs, uint64_t ino);
/* Reclaims every inode in the orphans keyspace (at mount). */
int fs_reclaim_all(struct fs *fs);

/* ---- time helpers ---- */
void fs_touch(struct fs_inode *in, bool mtime, bool ctime, int64_t now);

#endif
