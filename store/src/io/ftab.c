/* SPDX-License-Identifier: MIT */
/*
 * ftab.c - the bounded table of open files (ftab.h).
 *
 * Every known id has an entry in a chained hash table. An entry is CLOSED, OPENING (one caller
 * is in io_open for it), OPEN, or CLOSING (one caller is in io_close for it). `slots` counts the
 * entries that are OPENING, OPEN or CLOSING: it is raised before io_open and lowered only after
 * io_close returns, so the descriptors that exist are never more than slots, and slots never
 * passes max_open. Open entries that no call is using sit on the idle list, most recently used
 * first; a caller that needs a slot when none is free closes the idle tail, or waits on the
 * condition variable when no file is idle. Callers meeting an entry that is OPENING or CLOSING
 * wait for it too, so one id never has two descriptors from concurrent first reads.
 *
 * An entry leaves the hash table only through ftab_forget; if a call is using it (or opening
 * or closing it) at that moment, it is marked forgotten and whoever finishes with it last
 * closes and frees it.
 */
#include "io/ftab.h"

#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/sync.h"
#include "io/io.h"

enum ft_state {
	FT_CLOSED,
	FT_OPENING,
	FT_OPEN,
	FT_CLOSING,
};

struct ft_ent {
	uint64_t id;
	char *path;             /* immutable */
	struct io_file *f;      /* under t->mu; set exactly while FT_OPEN (its users read it) */
	enum ft_state state;    /* under t->mu */
	uint32_t users;         /* under t->mu: calls using f, or the one opening it */
	bool forgotten;         /* under t->mu: out of the table; freed by whoever ends last */
	struct ft_ent *chain;   /* under t->mu: next in the bucket */
	struct ft_ent *prev;    /* under t->mu: idle list links, set while open and unused */
	struct ft_ent *next;
};

struct ftab {
	struct fr_io *io;
	size_t max_open;
	struct fr_mutex mu;
	/* broadcast when a slot frees, a file turns idle, or an open or close ends */
	struct fr_cond cv;
	struct ft_ent **buckets; /* under mu; bucket_cnt is a power of two */
	size_t bucket_cnt;       /* under mu */
	size_t ent_cnt;          /* under mu */
	struct ft_ent idle;      /* under mu: sentinel; idle.next is the most recently used */
	size_t slots;            /* under mu: entries OPENING, OPEN or CLOSING */
};

#define FT_BUCKETS_MIN 16

static size_t ft_bucket(const struct ftab *t, uint64_t id)
{
	uint64_t h = id * UINT64_C(0x9e3779b97f4a7c15);

	return (size_t)(h ^ (h >> 29)) & (t->bucket_cnt - 1);
}

/* The slot pointing at id's entry, or at the NULL ending its bucket. Requires: t->mu held. */
static struct ft_ent **ft_slot(struct ftab *t, uint64_t id)
{
	struct ft_ent **p = &t->buckets[ft_bucket(t, id)];

	while (*p && (*p)->id != id)
		p = &(*p)->chain;
	return p;
}

/* Doubles the buckets when chains pass one entry on average; without memory, chains just grow.
 * Requires: t->mu held. */
static void ft_maybe_grow(struct ftab *t)
{
	if (t->ent_cnt <= t->bucket_cnt || t->bucket_cnt > SIZE_MAX / 2 / sizeof(void *))
		return;
	struct ft_ent **old = t->buckets;
	size_t old_cnt = t->bucket_cnt;
	struct ft_ent **b = fr_calloc(old_cnt * 2, sizeof(*b));

	if (!b)
		return;
	t->buckets = b;
	t->bucket_cnt = old_cnt * 2;
	for (size_t i = 0; i < old_cnt; i++) {
		struct ft_ent *e = old[i], *next;

		for (; e; e = next) {
			size_t k = ft_bucket(t, e->id);

			next = e->chain;
			e->chain = b[k];
			b[k] = e;
		}
	}
	fr_free(old);
}

static void idle_unlink(struct ft_ent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void idle_push_head(struct ftab *t, struct ft_ent *e)
{
	e->next = t->idle.next;
	e->prev = &t->idle;
	t->idle.next->prev = e;
	t->idle.next = e;
}

static void ft_ent_free(struct ft_ent *e)
{
	fr_free(e->path);
	fr_free(e);
}

/*
 * Closes e, which is open, unused and off the idle list, and frees it if it was forgotten.
 * Requires: t->mu held; drops it for the close (a close may block on a slow disk) and takes it
 * again, so the caller must look up anything it needs afresh.
 */
static void ft_close(struct ftab *t, struct ft_ent *e)
{
	struct io_file *f = e->f;

	fr_mutex_assert_held(&t->mu);
	fr_assert(e->state == FT_OPEN && e->users == 0);
	e->f = NULL;
	e->state = FT_CLOSING;
	fr_mutex_unlock(&t->mu);
	io_close(f);
	fr_mutex_lock(&t->mu);
	t->slots--;
	e->state = FT_CLOSED;
	if (e->forgotten)
		ft_ent_free(e);
	fr_cond_broadcast(&t->cv);
}

/* Makes id's file open and counts the caller as its user. */
static fr_status ft_acquire(struct ftab *t, uint64_t id, const char *path, struct ft_ent **out,
			    fr_error *err)
{
	struct io_file *f;
	struct ft_ent *e;
	fr_status rc;

	fr_mutex_lock(&t->mu);
	for (;;) {
		struct ft_ent **p = ft_slot(t, id);

		e = *p;
		if (!e) {
			e = fr_calloc(1, sizeof(*e));
			if (e)
				e->path = fr_strdup(path);
			if (!e || !e->path) {
				fr_mutex_unlock(&t->mu);
				fr_free(e);
				return FR_ERR(err, FR_NOMEM, "open %s", path);
			}
			e->id = id;
			*p = e;
			t->ent_cnt++;
			ft_maybe_grow(t);
		}
		if (e->state == FT_OPEN) {
			if (e->users++ == 0)
				idle_unlink(e);
			fr_mutex_unlock(&t->mu);
			*out = e;
			return FR_OK;
		}
		if (e->state != FT_CLOSED) {
			/* another caller is opening or closing it: its outcome decides */
			fr_cond_wait(&t->cv, &t->mu);
			continue;
		}
		if (t->slots < t->max_open)
			break;
		if (t->idle.prev == &t->idle) {
			/* every slot is in use or changing hands: wait for one to come free */
			fr_cond_wait(&t->cv, &t->mu);
			continue;
		}
		struct ft_ent *victim = t->idle.prev;

		idle_unlink(victim);
		ft_close(t, victim); /* drops the mutex: look again from the start */
	}
	t->slots++;
	e->state = FT_OPENING;
	e->users = 1; /* keeps e alive through a concurrent ftab_forget */
	fr_mutex_unlock(&t->mu);
	rc = io_open(t->io, e->path, IO_RDONLY, &f, err);
	fr_mutex_lock(&t->mu);
	if (rc) {
		e->users = 0;
		e->state = FT_CLOSED;
		t->slots--;
		if (e->forgotten)
			ft_ent_free(e);
		fr_cond_broadcast(&t->cv);
		fr_mutex_unlock(&t->mu);
		return rc;
	}
	e->f = f;
	e->state = FT_OPEN;
	fr_cond_broadcast(&t->cv);
	fr_mutex_unlock(&t->mu);
	*out = e;
	return FR_OK;
}

static void ft_release(struct ftab *t, struct ft_ent *e)
{
	fr_mutex_lock(&t->mu);
	fr_assert(e->users > 0 && e->state == FT_OPEN);
	if (--e->users == 0) {
		if (e->forgotten) {
			ft_close(t, e);
		} else {
			idle_push_head(t, e);
			fr_cond_broadcast(&t->cv);
		}
	}
	fr_mutex_unlock(&t->mu);
}

fr_status ftab_new(struct fr_io *io, size_t max_open, struct ftab **out, fr_error *err)
{
	struct ftab *t;

	*out = NULL;
	if (max_open < 1)
		return FR_ERR(err, FR_INVALID, "file table of %zu files", max_open);
	t = fr_calloc(1, sizeof(*t));
	if (!t)
		return FR_ERR(err, FR_NOMEM, "file table");
	t->buckets = fr_calloc(FT_BUCKETS_MIN, sizeof(*t->buckets));
	if (!t->buckets) {
		fr_free(t);
		return FR_ERR(err, FR_NOMEM, "file table");
	}
	t->bucket_cnt = FT_BUCKETS_MIN;
	t->io = io;
	t->max_open = max_open;
	t->idle.next = t->idle.prev = &t->idle;
	fr_mutex_init(&t->mu);
	fr_cond_init(&t->cv);
	*out = t;
	return FR_OK;
}

void ftab_free(struct ftab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->bucket_cnt; i++) {
		struct ft_ent *e = t->buckets[i], *next;

		for (; e; e = next) {
			next = e->chain;
			fr_assert(e->users == 0);
			io_close(e->f);
			ft_ent_free(e);
		}
	}
	fr_free(t->buckets);
	fr_cond_fini(&t->cv);
	fr_mutex_fini(&t->mu);
	fr_free(t);
}

fr_status ftab_pread(struct ftab *t, uint64_t id, const char *path, void *buf, size_t len,
		     uint64_t off, size_t *got, fr_error *err)
{
	struct ft_ent *e;
	fr_status rc = ft_acquire(t, id, path, &e, err);

	if (rc)
		return rc;
	rc = io_pread(e->f, buf, len, off, got, err);
	ft_release(t, e);
	return rc;
}

fr_status ftab_size(struct ftab *t, uint64_t id, const char *path, uint64_t *out, fr_error *err)
{
	struct ft_ent *e;
	fr_status rc = ft_acquire(t, id, path, &e, err);

	if (rc)
		return rc;
	rc = io_size(e->f, out, err);
	ft_release(t, e);
	return rc;
}

void ftab_forget(struct ftab *t, uint64_t id)
{
	struct ft_ent **p, *e;

	fr_mutex_lock(&t->mu);
	p = ft_slot(t, id);
	e = *p;
	if (e) {
		*p = e->chain;
		t->ent_cnt--;
		e->forgotten = true;
		if (e->state == FT_OPEN && e->users == 0) {
			idle_unlink(e);
			ft_close(t, e);
		} else if (e->state == FT_CLOSED) {
			ft_ent_free(e);
		}
		/* else a user, the opener or the closer frees it when done */
	}
	fr_mutex_unlock(&t->mu);
}

size_t ftab_open_cnt(struct ftab *t)
{
	size_t n;

	fr_mutex_lock(&t->mu);
	n = t->slots;
	fr_mutex_unlock(&t->mu);
	return n;
}
