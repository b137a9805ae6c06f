/* SPDX-License-Identifier: MIT */
/*
 * itab.h - the daemon's in-memory inode table: what the kernel and open files hold on each
 * inode (FUSE's lookup-count contract), plus the per-inode locks that serialise changes to an
 * inode record.
 *
 * A node exists while the kernel holds lookups on the inode, a file handle is open on it, or
 * an operation holds a reference (itab_get/itab_put). When the last of those goes away and the
 * inode's link count has reached 0 (itab_mark_orphan), the caller that dropped it is told to
 * reclaim the inode from the store.
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

#include <fractio.h>

#define ITAB_STRIPES 256

struct fs_node {
	uint64_t ino;
	uint64_t nlookup;    /* under itab->mu: kernel lookups not yet forgotten */
	uint32_t nopen;      /* under itab->mu: open file and directory handles */
	uint32_t refs;       /* under itab->mu: operations using the node right now */
	bool orphan;         /* under itab->mu: link count reached 0 */
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
/* Open handle counting; itab_close returns true when the caller must reclaim. */
void itab_open(struct itab *t, struct fs_node *n);
bool itab_close(struct itab *t, uint64_t ino);

/* Records that the inode's link count reached 0. Returns true when nothing holds it (the
 * caller reclaims at once instead of keeping an orphan entry). A missing node counts as held
 * by nobody. */
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
