/* SPDX-License-Identifier: MIT */
/*
 * itab.c - the in-memory inode table (itab.h): a chained hash table of nodes under one mutex,
 * and a fixed array of striped inode locks.
 */
#include "itab.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(const struct itab *t, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 32) & (t->slot_cnt - 1);
}

static int stripe_of(uint64_t ino)
{
	uint64_t h = ino * 0xff51afd7ed558ccdULL;
	return (int)((h >> 40) % ITAB_STRIPES);
}

int itab_init(struct itab *t)
{
	int i;

	t->slot_cnt = 1024;
	t->node_cnt = 0;
	t->slots = calloc(t->slot_cnt, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	for (i = 0; i < ITAB_STRIPES; i++)
		pthread_mutex_init(&t->stripes[i], NULL);
	return 0;
}

void itab_fini(struct itab *t)
{
	size_t i;
	int s;

	if (!t->slots)
		return;
	for (i = 0; i < t->slot_cnt; i++) {
		struct fs_node *n = t->slots[i];
		while (n) {
			struct fs_node *next = n->next;
			fr_keyspace_close(n->dir_ks);
			free(n->last);
			free(n);
			n = next;
		}
	}
	free(t->slots);
	t->slots = NULL;
	pthread_mutex_destroy(&t->mu);
	for (s = 0; s < ITAB_STRIPES; s++)
		pthread_mutex_destroy(&t->stripes[s]);
}

void itab_drop_handles(struct itab *t)
{
	size_t i;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->slot_cnt; i++) {
		struct fs_node *n;
		for (n = t->slots[i]; n; n = n->next) {
			fr_keyspace_close(n->dir_ks);
			n->dir_ks = NULL;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

/* Requires: t->mu held. */
static struct fs_node **find_slot(struct itab *t, uint64_t ino)
{
	struct fs_node **pp = &t->slots[slot_of(t, ino)];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* Doubles the table when it is more than twice as full as it is wide. Requires: t->mu held. */
static void grow(struct itab *t)
{
	struct fs_node **old = t->slots, **slots;
	size_t old_cnt = t->slot_cnt, i;

	if (t->node_cnt < 2 * t->slot_cnt)
		return;
	slots = calloc(old_cnt * 2, sizeof(*slots));
	if (!slots)
		return; /* longer chains, still correct */
	t->slots = slots;
	t->slot_cnt = old_cnt * 2;
	for (i = 0; i < old_cnt; i++) {
		struct fs_node *n = old[i];
		while (n) {
			struct fs_node *next = n->next;
			size_t s = slot_of(t, n->ino);
			n->next = slots[s];
			slots[s] = n;
			n = next;
		}
	}
	free(old);
}

/* Frees the node when nothing holds it; returns true when it was an orphan (the caller
 * reclaims). The keyspace handle is closed after the table is unlocked, by the caller, through
 * *ks_out. Requires: t->mu held. */
static bool maybe_free(struct itab *t, struct fs_node *n, fr_keyspace **ks_out)
{
	struct fs_node **pp;
	bool orphan;

	if (n->nlookup || n->nopen || n->refs)
		return false;
	pp = find_slot(t, n->ino);
	*pp = n->next;
	t->node_cnt--;
	orphan = n->orphan;
	*ks_out = n->dir_ks;
	free(n->last);
	free(n);
	return orphan;
}

struct fs_node *itab_get(struct itab *t, uint64_t ino)
{
	struct fs_node **pp, *n;

	pthread_mutex_lock(&t->mu);
	pp = find_slot(t, ino);
	n = *pp;
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n)
			goto out;
		n->ino = ino;
		*pp = n;
		t->node_cnt++;
		grow(t);
	}
	n->refs++;
out:
	pthread_mutex_unlock(&t->mu);
	return n;
}

bool itab_put(struct itab *t, struct fs_node *n)
{
	fr_keyspace *ks = NULL;
	bool reclaim;

	if (!n)
		return false;
	pthread_mutex_lock(&t->mu);
	n->refs--;
	reclaim = maybe_free(t, n, &ks);
	pthread_mutex_unlock(&t->mu);
	fr_keyspace_close(ks);
	return reclaim;
}

void itab_lookup(struct itab *t, struct fs_node *n)
{
	pthread_mutex_lock(&t->mu);
	n->nlookup++;
	pthread_mutex_unlock(&t->mu);
}

bool itab_forget(struct itab *t, uint64_t ino, uint64_t nlookup)
{
	fr_keyspace *ks = NULL;
	struct fs_node *n;
	bool reclaim = false;

	pthread_mutex_lock(&t->mu);
	n = *find_slot(t, ino);
	if (n) {
		n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
		reclaim = maybe_free(t, n, &ks);
	}
	pthread_mutex_unlock(&t->mu);
	fr_keyspace_close(ks);
	return reclaim;
}

bool itab_open(struct itab *t, struct fs_node *n)
{
	bool ok;

	pthread_mutex_lock(&t->mu);
	ok = !n->gone;
	if (ok)
		n->nopen++;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

bool itab_close(struct itab *t, uint64_t ino)
{
	fr_keyspace *ks = NULL;
	struct fs_node *n;
	bool reclaim = false;

	pthread_mutex_lock(&t->mu);
	n = *find_slot(t, ino);
	if (n && n->nopen) {
		n->nopen--;
		if (n->nopen == 0 && n->orphan) {
			/* reclaim now, not at the kernel's forget: what it may still send without
			 * a handle is answered as after an unlink that drops the inode (fs.h) */
			n->orphan = false;
			n->gone = true;
			reclaim = true;
		}
		reclaim |= maybe_free(t, n, &ks);
	}
	pthread_mutex_unlock(&t->mu);
	fr_keyspace_close(ks);
	return reclaim;
}

bool itab_drop_begin(struct itab *t, uint64_t ino)
{
	struct fs_node *n;
	bool drop = true;

	pthread_mutex_lock(&t->mu);
	n = *find_slot(t, ino);
	if (n && n->nopen)
		drop = false;
	else if (n)
		n->gone = true;
	pthread_mutex_unlock(&t->mu);
	return drop;
}

void itab_drop_abort(struct itab *t, uint64_t ino)
{
	struct fs_node *n;

	pthread_mutex_lock(&t->mu);
	n = *find_slot(t, ino);
	if (n) {
		n->gone = false;
		free(n->last);
		n->last = NULL;
	}
	pthread_mutex_unlock(&t->mu);
}

void itab_set_last(struct itab *t, uint64_t ino, const struct stat *st)
{
	struct stat *copy = malloc(sizeof(*copy));
	struct fs_node *n;

	if (!copy)
		return; /* the kernel then gets ENOENT for this inode */
	*copy = *st;
	pthread_mutex_lock(&t->mu);
	n = *find_slot(t, ino);
	if (n) {
		free(n->last);
		n->last = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&t->mu);
	free(copy);
}

bool itab_get_last(struct itab *t, uint64_t ino, struct stat *st)
{
	struct fs_node *n;
	bool found = false;

	pthread_mutex_lock(&t->mu);
	n = *find_slot(t, ino);
	if (n && n->last) {
		*st = *n->last;
		found = true;
	}
	pthread_mutex_unlock(&t->mu);
	return found;
}

bool itab_mark_orphan(struct itab *t, uint64_t ino)
{
	struct fs_node *n;
	bool free_now = true;

	pthread_mutex_lock(&t->mu);
	n = *find_slot(t, ino);
	if (n && n->nopen == 0) {
		n->gone = true; /* the last handle closed meanwhile: reclaim now */
	} else if (n) {
		n->orphan = true;
		free_now = false; /* the last close (or last hold) reclaims */
	}
	pthread_mutex_unlock(&t->mu);
	return free_now;
}

fr_keyspace *itab_set_dir_ks(struct itab *t, struct fs_node *n, fr_keyspace *ks)
{
	fr_keyspace *use, *extra = NULL;

	pthread_mutex_lock(&t->mu);
	if (n->dir_ks) {
		extra = ks;
	} else {
		n->dir_ks = ks;
	}
	use = n->dir_ks;
	pthread_mutex_unlock(&t->mu);
	fr_keyspace_close(extra);
	return use;
}

void itab_each_orphan(struct itab *t, void (*fn)(void *ctx, uint64_t ino), void *ctx)
{
	uint64_t *inos = NULL;
	size_t cnt = 0, cap = 0, i;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->slot_cnt; i++) {
		struct fs_node *n;
		for (n = t->slots[i]; n; n = n->next) {
			if (!n->orphan)
				continue;
			if (cnt == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				uint64_t *p = realloc(inos, ncap * sizeof(*p));
				if (!p)
					goto out;
				inos = p;
				cap = ncap;
			}
			inos[cnt++] = n->ino;
		}
	}
out:
	pthread_mutex_unlock(&t->mu);
	for (i = 0; i < cnt; i++)
		fn(ctx, inos[i]);
	free(inos);
}

void itab_lock(struct itab *t, uint64_t ino)
{
	pthread_mutex_lock(&t->stripes[stripe_of(ino)]);
}

void itab_unlock(struct itab *t, uint64_t ino)
{
	pthread_mutex_unlock(&t->stripes[stripe_of(ino)]);
}

void itab_lock_set(struct itab *t, struct itab_lockset *s, const uint64_t *inos, int n)
{
	int i, j;

	s->cnt = 0;
	for (i = 0; i < n && i < 4; i++) {
		int idx = stripe_of(inos[i]);
		bool dup = false;
		for (j = 0; j < s->cnt; j++)
			dup |= s->idx[j] == idx;
		if (!dup)
			s->idx[s->cnt++] = idx;
	}
	/* insertion sort: ascending stripe order is the one lock order */
	for (i = 1; i < s->cnt; i++) {
		int v = s->idx[i];
		for (j = i - 1; j >= 0 && s->idx[j] > v; j--)
			s->idx[j + 1] = s->idx[j];
		s->idx[j + 1] = v;
	}
	for (i = 0; i < s->cnt; i++)
		pthread_mutex_lock(&t->stripes[s->idx[i]]);
}

void itab_unlock_set(struct itab *t, struct itab_lockset *s)
{
	int i;

	for (i = s->cnt - 1; i >= 0; i--)
		pthread_mutex_unlock(&t->stripes[s->idx[i]]);
	s->cnt = 0;
}
