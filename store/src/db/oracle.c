/* SPDX-License-Identifier: MIT */
/*
 * oracle.c - the conflict oracle of optimistic transactions (oracle.h): a queue of the recent
 * commits' written keys and ranges, ascending by seqno, and the list of open transactions
 * whose oldest read seqno bounds it.
 */
#include "db/oracle.h"

#include <string.h>

#include "base/alloc.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/sync.h"
#include "db/write.h"
#include "tx/batch.h"

struct rec_key {
	uint64_t hash;
	uint32_t tree;
	const uint8_t *k;
	size_t len;
};

struct rec_range {
	uint32_t tree;
	const uint8_t *lo, *hi;
	size_t lo_len, hi_len;
};

/* One commit's written keys; a single allocation holding its arrays and bytes. */
struct orc_rec {
	uint64_t seqno;
	size_t key_cnt, range_cnt;
	struct rec_key *keys;
	struct rec_range *ranges;
};

struct orc {
	struct fr_mutex mu;
	uint32_t active;        /* atomic: open optimistic transactions (see orc_is_active) */
	struct orc_tx txs;      /* under mu: list head of the open ones */
	uint64_t min_read;      /* under mu: oldest read seqno of txs (0: one has none yet) */
	struct orc_rec **ring;  /* under mu: records, ascending seqno */
	size_t head, cnt, cap;
	uint64_t lost_upto;     /* under mu: a commit up to this seqno went unrecorded */
	uint64_t recorded;      /* under mu: records made since open */
};

static uint64_t key_hash(uint32_t tree, const uint8_t *k, size_t len)
{
	uint64_t h = fr_xxh3_seed(k, len, tree);
	return h ? h : 1; /* 0 marks an empty slot */
}

/* ---- a transaction's set ---- */

static fr_status set_grow(struct orc_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 16;
	struct orc_key *tab = fr_calloc(cap, sizeof(*tab));
	if (!tab)
		return FR_NOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->tab[i].hash)
			continue;
		size_t h = s->tab[i].hash & (cap - 1);
		while (tab[h].hash)
			h = (h + 1) & (cap - 1);
		tab[h] = s->tab[i];
	}
	fr_free(s->tab);
	s->tab = tab;
	s->cap = cap;
	return FR_OK;
}

static bool set_has(const struct orc_set *s, uint64_t hash, uint32_t tree, const uint8_t *k,
		    size_t len)
{
	if (!s->cnt)
		return false;
	for (size_t h = hash & (s->cap - 1); s->tab[h].hash; h = (h + 1) & (s->cap - 1)) {
		const struct orc_key *e = &s->tab[h];
		if (e->hash == hash && e->tree == tree &&
		    !bytes_cmp(s->bytes.data + e->off, e->len, k, len))
			return true;
	}
	return false;
}

fr_status orc_set_add_key(struct orc_set *s, uint32_t tree, const uint8_t *k, size_t len)
{
	uint64_t hash = key_hash(tree, k, len);
	if (set_has(s, hash, tree, k, len))
		return FR_OK;
	if ((s->cnt + 1) * 2 > s->cap && set_grow(s))
		return FR_NOMEM;
	size_t off = s->bytes.len;
	if (buf_append(&s->bytes, k, len))
		return FR_NOMEM;
	size_t h = hash & (s->cap - 1);
	while (s->tab[h].hash)
		h = (h + 1) & (s->cap - 1);
	s->tab[h] = (struct orc_key){.hash = hash, .tree = tree, .off = off, .len = len};
	s->cnt++;
	return FR_OK;
}

fr_status orc_set_add_range(struct orc_set *s, uint32_t tree, const uint8_t *lo, size_t lo_len,
			    const uint8_t *hi, size_t hi_len)
{
	if (s->range_cnt == s->range_cap) {
		size_t cap = s->range_cap ? s->range_cap * 2 : 4;
		struct orc_range *r = fr_realloc(s->ranges, cap * sizeof(*r));
		if (!r)
			return FR_NOMEM;
		s->ranges = r;
		s->range_cap = cap;
	}
	struct orc_range r = {.tree = tree, .has_hi = hi != NULL, .lo_off = s->bytes.len,
			      .lo_len = lo_len};
	if (buf_append(&s->bytes, lo, lo_len))
		return FR_NOMEM;
	r.hi_off = s->bytes.len;
	r.hi_len = hi ? hi_len : 0;
	if (hi && buf_append(&s->bytes, hi, hi_len))
		return FR_NOMEM;
	s->ranges[s->range_cnt++] = r;
	return FR_OK;
}

void orc_set_fini(struct orc_set *s)
{
	fr_free(s->tab);
	fr_free(s->ranges);
	buf_fini(&s->bytes);
	memset(s, 0, sizeof(*s));
}

/* ---- the oracle ---- */

fr_status orc_new(struct orc **out)
{
	struct orc *o = fr_calloc(1, sizeof(*o));
	if (!o)
		return FR_NOMEM;
	fr_mutex_init(&o->mu);
	o->txs.next = o->txs.prev = &o->txs;
	*out = o;
	return FR_OK;
}

static void drop_front(struct orc *o)
{
	fr_free(o->ring[o->head]);
	o->head = (o->head + 1) % o->cap;
	o->cnt--;
}

void orc_free(struct orc *o)
{
	if (!o)
		return;
	while (o->cnt)
		drop_front(o);
	fr_free(o->ring);
	fr_mutex_fini(&o->mu);
	fr_free(o);
}

/* Requires: o->mu held. Drops the records no open transaction can conflict with. */
static void prune(struct orc *o)
{
	fr_mutex_assert_held(&o->mu);
	uint64_t min = UINT64_MAX;
	for (struct orc_tx *t = o->txs.next; t != &o->txs; t = t->next)
		if (t->read_seqno < min)
			min = t->read_seqno;
	o->min_read = min == UINT64_MAX ? 0 : min;
	bool none = o->txs.next == &o->txs;
	while (o->cnt && (none || o->ring[o->head]->seqno <= min))
		drop_front(o);
	if (none)
		o->lost_upto = 0;
}

void orc_tx_begin(struct orc *o, struct orc_tx *t)
{
	fr_mutex_lock(&o->mu);
	t->read_seqno = 0;
	t->prev = o->txs.prev;
	t->next = &o->txs;
	o->txs.prev->next = t;
	o->txs.prev = t;
	o->min_read = 0;
	/* sequentially consistent: either the leader's load after its visible store sees this,
	 * or our later sequentially consistent load of the visible seqno sees that store */
	atomic_add_sc_u32(&o->active, 1);
	fr_mutex_unlock(&o->mu);
}

void orc_tx_set_seqno(struct orc *o, struct orc_tx *t, uint64_t seqno)
{
	fr_mutex_lock(&o->mu);
	t->read_seqno = seqno;
	prune(o);
	fr_mutex_unlock(&o->mu);
}

void orc_tx_end(struct orc *o, struct orc_tx *t)
{
	fr_mutex_lock(&o->mu);
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = NULL;
	atomic_add_sc_u32(&o->active, (uint32_t)-1);
	prune(o);
	fr_mutex_unlock(&o->mu);
}

bool orc_is_active(struct orc *o)
{
	return atomic_load_sc_u32(&o->active) != 0;
}

void orc_lock(struct orc *o)
{
	fr_mutex_lock(&o->mu);
}

void orc_unlock(struct orc *o)
{
	fr_mutex_unlock(&o->mu);
}

static bool in_range(const struct orc_set *s, const struct orc_range *r, const uint8_t *k,
		     size_t len)
{
	const uint8_t *b = s->bytes.data;
	return bytes_cmp(b + r->lo_off, r->lo_len, k, len) <= 0 &&
	       (!r->has_hi || bytes_cmp(k, len, b + r->hi_off, r->hi_len) < 0);
}

static bool rec_conflicts(const struct orc_rec *rec, const struct orc_set *s)
{
	for (size_t i = 0; i < rec->key_cnt; i++) {
		const struct rec_key *k = &rec->keys[i];
		if (set_has(s, k->hash, k->tree, k->k, k->len))
			return true;
		for (size_t j = 0; j < s->range_cnt; j++) {
			const struct orc_range *r = &s->ranges[j];
			if (r->tree == k->tree && in_range(s, r, k->k, k->len))
				return true;
		}
	}
	const uint8_t *b = s->bytes.data;
	for (size_t i = 0; i < rec->range_cnt; i++) {
		const struct rec_range *d = &rec->ranges[i];
		for (size_t j = 0; j < s->cap; j++) {
			const struct orc_key *e = &s->tab[j];
			if (e->hash && e->tree == d->tree &&
			    bytes_cmp(d->lo, d->lo_len, b + e->off, e->len) <= 0 &&
			    bytes_cmp(b + e->off, e->len, d->hi, d->hi_len) < 0)
				return true;
		}
		/* [a, b) and [c, d) overlap when a < d and c < b */
		for (size_t j = 0; j < s->range_cnt; j++) {
			const struct orc_range *r = &s->ranges[j];
			if (r->tree != d->tree ||
			    bytes_cmp(b + r->lo_off, r->lo_len, d->hi, d->hi_len) >= 0)
				continue;
			if (!r->has_hi || bytes_cmp(d->lo, d->lo_len, b + r->hi_off, r->hi_len) < 0)
				return true;
		}
	}
	return false;
}

bool orc_conflicts(struct orc *o, const struct orc_tx *t)
{
	fr_mutex_assert_held(&o->mu);
	if (o->lost_upto > t->read_seqno)
		return true;
	for (size_t i = o->cnt; i-- > 0;) {
		const struct orc_rec *rec = o->ring[(o->head + i) % o->cap];
		if (rec->seqno <= t->read_seqno)
			break;
		if (rec_conflicts(rec, &t->set))
			return true;
	}
	return false;
}

static bool ring_push(struct orc *o, struct orc_rec *rec)
{
	if (o->cnt == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct orc_rec **r = fr_malloc(cap * sizeof(*r));
		if (!r)
			return false;
		for (size_t i = 0; i < o->cnt; i++)
			r[i] = o->ring[(o->head + i) % o->cap];
		fr_free(o->ring);
		o->ring = r;
		o->cap = cap;
		o->head = 0;
	}
	o->ring[(o->head + o->cnt) % o->cap] = rec;
	o->cnt++;
	return true;
}

void orc_record(struct orc *o, uint64_t seqno, const struct leader_ops *lo)
{
	fr_mutex_assert_held(&o->mu);
	/* records at or below the oldest read seqno are never consulted */
	while (o->cnt && o->min_read && o->ring[o->head]->seqno <= o->min_read)
		drop_front(o);
	if (o->txs.next == &o->txs)
		return; /* the last transaction ended since the leader looked */
	size_t keys = 0, ranges = 0, bytes = 0;
	for (size_t i = 0; i < lo->cnt; i++) {
		const struct batch_op *op = &lo->ops[i];
		if (op->op == BOP_RANGE_DEL) {
			ranges++;
			bytes += op->key_len + op->val_len;
		} else {
			keys++;
			bytes += op->key_len;
		}
	}
	size_t size = sizeof(struct orc_rec) + keys * sizeof(struct rec_key) +
		      ranges * sizeof(struct rec_range) + bytes;
	struct orc_rec *rec = fr_malloc(size);
	if (!rec || !ring_push(o, rec)) {
		fr_free(rec);
		o->lost_upto = seqno;
		return;
	}
	o->recorded++;
	rec->seqno = seqno;
	rec->key_cnt = keys;
	rec->range_cnt = ranges;
	rec->keys = (struct rec_key *)(rec + 1);
	rec->ranges = (struct rec_range *)(rec->keys + keys);
	uint8_t *p = (uint8_t *)(rec->ranges + ranges);
	size_t ki = 0, ri = 0;
	for (size_t i = 0; i < lo->cnt; i++) {
		const struct batch_op *op = &lo->ops[i];
		if (op->key_len)
			memcpy(p, op->key, op->key_len);
		if (op->op == BOP_RANGE_DEL) {
			if (op->val_len)
				memcpy(p + op->key_len, op->val, op->val_len);
			rec->ranges[ri++] = (struct rec_range){
				.tree = op->tree_id, .lo = p, .lo_len = op->key_len,
				.hi = p + op->key_len, .hi_len = op->val_len};
			p += op->key_len + op->val_len;
		} else {
			rec->keys[ki++] = (struct rec_key){
				.hash = key_hash(op->tree_id, p, op->key_len), .tree = op->tree_id,
				.k = p, .len = op->key_len};
			p += op->key_len;
		}
	}
}

#ifdef FR_TESTING
void orc_test_counts(struct orc *o, size_t *held, uint64_t *recorded)
{
	fr_mutex_lock(&o->mu);
	*held = o->cnt;
	*recorded = o->recorded;
	fr_mutex_unlock(&o->mu);
}
#endif
