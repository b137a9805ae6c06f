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
	unsigned read_ahead_kb; /* the kernel's read-ahead window, KiB (0: its own) */
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

/* ---- reclaiming ----
 *
 * When the last name of an inode goes (unlink, rmdir, rename over it) and no file handle is
 * open on it, the inode goes in the same batch as the name: record, chunks, xattrs (SCHEMA.md
 * §8). Only an inode with an open handle becomes an orphan (§7), reclaimed when its last
 * handle closes. Neither waits for the kernel to forget the inode, although it still holds a
 * lookup on it after the unlink. What the kernel can still send for such an inode without a
 * handle, and the answer it gets:
 *  - SETATTR of the times it cached (with the writeback cache, the kernel flushes the ctime of
 *    an unlinked regular file right away, and dirty times later), and GETATTR (fstat of an
 *    O_PATH descriptor, stat of a removed cwd): the inode's last attributes, nlink 0, kept in
 *    its node for as long as the kernel holds it (itab_set_last); a SETATTR changes nothing.
 *    Not an error: the kernel records a failed time flush against the whole filesystem, and
 *    the next syncfs() would report it.
 *  - GETXATTR, READLINK through a path the kernel resolved before the unlink: no attribute,
 *    ENOENT, as if the request had come after the inode went.
 *  - OPEN or OPENDIR racing the unlink (the kernel resolved the name before the unlink took
 *    the directory lock), or reopening an O_PATH descriptor through /proc/self/fd (a local
 *    filesystem would open the unlinked file; here it has gone, ENOENT, as after an unlink
 *    on a remote filesystem): itab_drop_begin marks the node gone under itab's mutex before the
 *    batch is built, and itab_open refuses a gone node, so the open fails with ENOENT instead
 *    of handing out a handle on an inode that is going. Either the open counts its handle
 *    first (then the unlink keeps an orphan), or the unlink marks first (then the open fails).
 *  - READ, WRITE, FSYNC, SETATTR with a handle, FALLOCATE: need an open handle, so never.
 *    With the writeback cache the kernel writes dirty pages back before RELEASE and writes
 *    none after it (writeback needs a writable handle), so nothing arrives after the last close
 *    either, which is why an orphan goes at its last RELEASE and not at FORGET.
 *  - LINK (linkat of an O_PATH descriptor): the kernel refuses an inode with nlink 0 itself,
 *    and a link to a missing inode gets ENOENT here.
 *  - LOOKUP of its old name cannot race: the kernel serialises lookups and the unlink of a name
 *    on the directory's lock. READDIRPLUS from a snapshot taken before the unlink reads the
 *    inode live, and without it sends the name without attributes (no kernel lookup).
 *  - FORGET: frees the node (gone, not an orphan: nothing to reclaim).
 * Every write path (setattr, write, xattrs, link) reads the inode under its stripe lock, which
 * the unlink holds through its commit, so none can write chunks or a record for an inode that
 * has gone. Inode numbers are not reused within a mount (§10), so a late request never reaches
 * another inode. */
/* Adds to b the removal of an inode with no links: its chunks, xattrs and record; keeps its
 * last attributes in its node (itab_set_last) for the requests the kernel may still send. */
int fs_inode_drop(struct fs *fs, fr_batch *b, const struct fs_inode *in);
/* Removes an orphan (link count 0): record, chunks, xattrs and orphan entry, in one batch.
 * Errors are logged (the orphan entry stays for the next mount). */
void fs_reclaim(struct fs *fs, uint64_t ino);
/* Reclaims every inode in the orphans keyspace (at mount). */
int fs_reclaim_all(struct fs *fs);

/* ---- time helpers ---- */
void fs_touch(struct fs_inode *in, bool mtime, bool ctime, int64_t now);

#endif
