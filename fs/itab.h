/* SPDX-License-Identifier: MIT */
/*
 * itab.h - the daemon's in-memory inode table: what the kernel and open files hold on each
 * inode (FUSE's lookup-count contract), plus the per-inode locks that serialise changes to an
 * inode record.
 *
 * A node exists while the kernel holds lookups on the inode, a file handle is open on it, or
 * an operation holds a reference (itab_get/itab_put). An inode whose last link goes while no
 * handle is open on it is removed from the store by the unlink itself (itab_drop_begin): its
 * node, if the kernel still holds lookups, is marked gone and takes no new handle. When a
 * handle is open the inode becomes an orphan (itab_mark_orphan), and the caller that closes the
 * last handle, or drops the last hold of any kind, is told to reclaim it (fs.h says why the
 * kernel's remaining lookups need not keep it).
 *
 * Locks: ITAB_STRIPES mutexes chosen by hashing the ino; itab_lock_set() takes several in one
 * fixed (ascending stripe) order, so two operations never deadlock. Lock order of the daemon:
 * fs->ns_mu, then inode stripes, then itab's internal mutex (never held across engine calls).
 *
 * Thread-safety: thread-safe.
 */
#ifndef FRACTIO_FS_ITAB_H
#define FRACTIO_FS_ITAB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <fractio.h>

#define ITAB_STRIPES 256

struct fs_node {
	uint64_t ino;
	uint64_t nlookup;    /* under itab->mu: kernel lookups not yet forgotten */
	uint32_t nopen;      /* under itab->mu: open file and directory handles */
	uint32_t refs;       /* under itab->mu: operations using the node right now */
	bool orphan;         /* under itab->mu: link count reached 0, reclaim pending */
	bool gone;           /* under itab->mu: removed (or being removed) from the store */
	struct stat *last;   /* under itab->mu: a gone inode's last attributes, or NULL */
	fr_keyspace *dir_ks; /* under itab->mu to set; the directory's keyspace once opened */
	struct fs_node *next; /* under itab->mu: hash chain */
};

struct itab {
	pthread_mutex_t mu;  /* guards the hash table and every node's counters */
	struct fs_node **slots;
	size_t slot_cnt;     /* power of two */
	size_t node_cnt;
	pthread_mutex_t stripes[ITAB_STRIPES];
};

int itab_init(struct itab *t);
/* Closes every node's keyspace handle and frees the nodes. */
void itab_fini(struct itab *t);
/* Closes every node's keyspace handle (before the database closes). */
void itab_drop_handles(struct itab *t);

/* The node of ino with one more operation reference, created when missing. NULL on ENOMEM. */
struct fs_node *itab_get(struct itab *t, uint64_t ino);
/* Drops an operation reference. Returns true when the caller must reclaim the inode (the
 * node was an orphan and nothing holds it any more; the node is gone). */
bool itab_put(struct itab *t, struct fs_node *n);

/* Kernel lookup counting: +1 per successful entry reply, -n per forget. itab_forget returns
 * true when the caller must reclaim (as itab_put). Forgetting an unknown ino is ignored. */
void itab_lookup(struct itab *t, struct fs_node *n);
bool itab_forget(struct itab *t, uint64_t ino, uint64_t nlookup);
/* Open handle counting. itab_open returns false, counting nothing, when the inode is gone (an
 * open that raced the unlink of its last name: the caller answers ENOENT). itab_close returns
 * true when the caller must reclaim: the last handle of an orphan closed (the node is then
 * gone, and stays while the kernel holds lookups), or the last hold of any kind. */
bool itab_open(struct itab *t, struct fs_node *n);
bool itab_close(struct itab *t, uint64_t ino);

/* The last link of ino is about to go. Returns true when no handle is open on it: the node, if
 * any, is marked gone so that no open can start, and the caller removes the inode in the same
 * batch as the name (itab_drop_abort undoes the mark when that batch fails). Returns false when
 * a handle is open: the caller keeps an orphan (itab_mark_orphan after the commit). */
bool itab_drop_begin(struct itab *t, uint64_t ino);
void itab_drop_abort(struct itab *t, uint64_t ino);
/* Keeps st as the last attributes of ino, whose record is about to go, when the kernel holds
 * its node (fs.h: the kernel may still ask for them, and must not see an error). */
void itab_set_last(struct itab *t, uint64_t ino, const struct stat *st);
/* The attributes kept for ino by itab_set_last: true and *st filled, or false. */
bool itab_get_last(struct itab *t, uint64_t ino, struct stat *st);

/* Records that the inode's link count reached 0 (with its orphan entry committed). Returns
 * true when no handle is open on it any more (the caller reclaims at once; the node, if any,
 * is marked gone). A missing node counts as held by nobody. */
bool itab_mark_orphan(struct itab *t, uint64_t ino);
/* Sets n->dir_ks if unset; returns the handle to use (ks is closed when one was already set). */
fr_keyspace *itab_set_dir_ks(struct itab *t, struct fs_node *n, fr_keyspace *ks);
/* Calls fn for every orphan node, with the table unlocked; used at unmount. */
void itab_each_orphan(struct itab *t, void (*fn)(void *ctx, uint64_t ino), void *ctx);

/* Per-inode locks. A set holds up to 4 inodes; duplicates and stripe collisions are fine. */
struct itab_lockset {
	int idx[4];
	int cnt;
};
void itab_lock(struct itab *t, uint64_t ino);
void itab_unlock(struct itab *t, uint64_t ino);
void itab_lock_set(struct itab *t, struct itab_lockset *s, const uint64_t *inos, int n);
void itab_unlock_set(struct itab *t, struct itab_lockset *s);

#endif
