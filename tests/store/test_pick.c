/* SPDX-License-Identifier: MIT */
/*
 * test_pick.c - the compaction picker (compact/pick.h) on synthetic versions: tables with only
 * their metadata, no files. Hand-built versions check each strategy's choices; a model checks
 * the invariants on thousands of random versions: every plan is applied to the model (a merge
 * replaces its inputs by tables spanning their range at out_level, a move relinks, a drop
 * deletes) and after each step the levels stay sorted and disjoint, no key's versions end up
 * above newer ones, bottom is exactly right, and repeated picking comes to rest. Model tables
 * keep, per key of a small key space, the seqno range and the bytes of the key's versions.
 * Random runs print their seed (FR_SEED repeats one).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/coding.h"
#include "compact/pick.h"
#include "version/version.h"
#include "testutil.h"

#define KEYS 120
#define MAXT 1024
#define LAST (LEVEL_CNT - 1)
#define MIB (UINT64_C(1) << 20)

/* ---- the model ---- */

struct mtab {
	struct table t;
	uint8_t lo[16], hi[16];
	int klo, khi; /* bounds in the model's key space; -1 for hand-built string keys */
	uint64_t smin[KEYS], smax[KEYS]; /* seqnos of key k's versions here; smax 0: none */
	uint64_t w[KEYS];                /* their bytes */
};

struct model {
	struct mtab *tab[LEVEL_CNT][MAXT];
	struct table *ptr[LEVEL_CNT][MAXT];
	size_t cnt[LEVEL_CNT];
	struct tree_version v;
	uint64_t next_id;
	uint64_t next_seq;
	uint64_t now;
	uint64_t written; /* bytes written by merges */
	uint64_t rng;
	uint64_t cut_rng; /* merge cuts only, so flushes do not depend on the strategy */
};

static struct model *m_new(uint64_t seed)
{
	struct model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->next_seq = 1000000;
	m->now = 100000;
	m->rng = seed ? seed : 1;
	m->cut_rng = m->rng ^ 0x9e3779b97f4a7c15ull;
	return m;
}

static void m_free(struct model *m)
{
	for (int l = 0; l < LEVEL_CNT; l++)
		for (size_t i = 0; i < m->cnt[l]; i++)
			free(m->tab[l][i]);
	free(m);
}

static uint64_t rnd(struct model *m, uint64_t n)
{
	return tu_rand_below(&m->rng, n);
}

static struct mtab *tab_new(struct model *m)
{
	struct mtab *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->t.refs = 1;
	t->t.meta.id = ++m->next_id;
	t->t.meta.smallest = t->lo;
	t->t.meta.largest = t->hi;
	t->klo = t->khi = -1;
	return t;
}

static void tab_keys(struct mtab *t, int lo, int hi)
{
	char buf[16];

	t->klo = lo;
	t->khi = hi;
	snprintf(buf, sizeof(buf), "%04d", lo);
	memcpy(t->lo, buf, 4);
	snprintf(buf, sizeof(buf), "%04d", hi);
	memcpy(t->hi, buf, 4);
	t->t.meta.smallest_len = 4;
	t->t.meta.largest_len = 4;
}

static void tab_strkeys(struct mtab *t, const char *lo, size_t lo_len, const char *hi,
			size_t hi_len)
{
	memcpy(t->lo, lo, lo_len);
	memcpy(t->hi, hi, hi_len);
	t->t.meta.smallest_len = lo_len;
	t->t.meta.largest_len = hi_len;
}

/* Metadata from the per-key contents. */
static void tab_finish(struct mtab *t)
{
	struct sst_meta *me = &t->t.meta;

	me->file_size = 0;
	me->entry_cnt = 0;
	me->max_seqno = 0;
	me->min_seqno = UINT64_MAX;
	for (int k = 0; k < KEYS; k++) {
		if (!t->smax[k])
			continue;
		me->file_size += t->w[k];
		me->entry_cnt++;
		if (t->smax[k] > me->max_seqno)
			me->max_seqno = t->smax[k];
		if (t->smin[k] < me->min_seqno)
			me->min_seqno = t->smin[k];
	}
	if (me->min_seqno == UINT64_MAX)
		me->min_seqno = 0;
}

static bool tab_has(const struct mtab *t, int k)
{
	return t->klo >= 0 && k >= t->klo && k <= t->khi && t->smax[k];
}

static int cmp_l0(const void *a, const void *b)
{
	const struct mtab *x = *(struct mtab *const *)a, *y = *(struct mtab *const *)b;

	if (x->t.meta.max_seqno != y->t.meta.max_seqno)
		return x->t.meta.max_seqno > y->t.meta.max_seqno ? -1 : 1;
	return x->t.meta.id > y->t.meta.id ? -1 : x->t.meta.id < y->t.meta.id;
}

static int cmp_level(const void *a, const void *b)
{
	const struct mtab *x = *(struct mtab *const *)a, *y = *(struct mtab *const *)b;
	int c = bytes_cmp(x->lo, x->t.meta.smallest_len, y->lo, y->t.meta.smallest_len);

	if (c)
		return c;
	return x->t.meta.id < y->t.meta.id ? -1 : x->t.meta.id > y->t.meta.id;
}

/* Orders the levels as the manifest does and points the version at them. */
static void m_sync(struct model *m)
{
	for (int l = 0; l < LEVEL_CNT; l++) {
		qsort(m->tab[l], m->cnt[l], sizeof(m->tab[l][0]), l ? cmp_level : cmp_l0);
		for (size_t i = 0; i < m->cnt[l]; i++)
			m->ptr[l][i] = &m->tab[l][i]->t;
		m->v.levels[l] = m->ptr[l];
		m->v.level_cnt[l] = m->cnt[l];
	}
}

static void m_add(struct model *m, int level, struct mtab *t)
{
	assert_true(m->cnt[level] < MAXT);
	m->tab[level][m->cnt[level]++] = t;
}

static struct mtab *m_take(struct model *m, int level, const struct table *t)
{
	for (size_t i = 0; i < m->cnt[level]; i++) {
		struct mtab *x = m->tab[level][i];

		if (&x->t == t) {
			memmove(&m->tab[level][i], &m->tab[level][i + 1],
				(m->cnt[level] - i - 1) * sizeof(x));
			m->cnt[level]--;
			return x;
		}
	}
	fail_msg("table %llu not in level %d", (unsigned long long)t->meta.id, level);
	return NULL;
}

static uint64_t m_level_bytes(const struct model *m, int l)
{
	uint64_t n = 0;

	for (size_t i = 0; i < m->cnt[l]; i++)
		n += m->tab[l][i]->t.meta.file_size;
	return n;
}

static size_t m_table_cnt(const struct model *m)
{
	size_t n = 0;

	for (int l = 0; l < LEVEL_CNT; l++)
		n += m->cnt[l];
	return n;
}

/* A table of level L >= 1 holds versions in seqno band (7 - L) * 1000 + [0, 1000): deeper is
 * older. Normal keys get [200, 600]; a key shared with the previous table of the level gets
 * [0, 100] here and [700, 900] there (the earlier table holds the newer versions). */
static void gen_key(struct model *m, struct mtab *t, int k, uint64_t lo, uint64_t span)
{
	t->smin[k] = lo + rnd(m, span / 2);
	t->smax[k] = t->smin[k] + rnd(m, span / 2);
	t->w[k] = 1 + rnd(m, 20);
}

static void gen_created(struct model *m, struct mtab *t)
{
	t->t.meta.created_s = rnd(m, 10) ? m->now - rnd(m, 2000) : 0;
	t->t.meta.tombstone_cnt = rnd(m, 3) == 0;
}

static void gen_level(struct model *m, int l)
{
	uint64_t base = (uint64_t)(LEVEL_CNT - l) * 1000;
	int pos = (int)rnd(m, 20);
	bool shared_start = false;
	struct mtab *prev = NULL;

	while (pos < KEYS) {
		struct mtab *t = tab_new(m);
		int len = (int)rnd(m, 13), hi;
		bool any = false;

		if (shared_start && len == 0)
			len = 1;
		hi = pos + len < KEYS ? pos + len : KEYS - 1;
		tab_keys(t, pos, hi);
		for (int k = pos; k <= hi; k++) {
			if (rnd(m, 10) < 6) {
				gen_key(m, t, k, base + 200, 400);
				any = true;
			}
		}
		if (!any)
			gen_key(m, t, hi, base + 200, 400);
		if (shared_start && prev->smax[pos] && t->smax[pos]) {
			gen_key(m, prev, pos, base + 700, 200);
			gen_key(m, t, pos, base, 100);
		}
		gen_created(m, t);
		m_add(m, l, t);
		prev = t;
		shared_start = hi > pos && rnd(m, 6) == 0;
		pos = shared_start ? hi : hi + 1 + (int)rnd(m, 7);
	}
	for (size_t i = 0; i < m->cnt[l]; i++)
		tab_finish(m->tab[l][i]);
}

/* A flush: a new L0 table, newer than everything. */
static void m_flush(struct model *m, int span)
{
	struct mtab *t = tab_new(m);
	int lo = (int)rnd(m, KEYS), hi = lo + (int)rnd(m, (uint64_t)span);
	bool any = false;

	if (hi >= KEYS)
		hi = KEYS - 1;
	tab_keys(t, lo, hi);
	for (int k = lo; k <= hi; k++) {
		if (rnd(m, 10) < 7) {
			gen_key(m, t, k, m->next_seq, 800);
			any = true;
		}
	}
	if (!any)
		gen_key(m, t, lo, m->next_seq, 800);
	m->next_seq += 1000;
	t->t.meta.created_s = m->now;
	t->t.meta.tombstone_cnt = rnd(m, 3) == 0;
	tab_finish(t);
	m_add(m, 0, t);
	m_sync(m);
}

/* A random valid version: L0 tables from distinct flushes, levels of disjoint tables (some
 * sharing boundary keys), each level older than the one above it. */
static void gen_version(struct model *m)
{
	int n0 = (int)rnd(m, 9);

	for (int l = 1; l < LEVEL_CNT; l++)
		if (rnd(m, 10) < (uint64_t)(3 + l / 2))
			gen_level(m, l);
	for (int j = 0; j < n0; j++) {
		struct mtab *t = tab_new(m);
		int lo = (int)rnd(m, KEYS), hi = lo + (int)rnd(m, 40);
		bool any = false;

		if (hi >= KEYS)
			hi = KEYS - 1;
		tab_keys(t, lo, hi);
		for (int k = lo; k <= hi; k++) {
			if (rnd(m, 10) < 5) {
				gen_key(m, t, k, 100000 + (uint64_t)(n0 - j) * 1000, 800);
				any = true;
			}
		}
		if (!any)
			gen_key(m, t, hi, 100000 + (uint64_t)(n0 - j) * 1000, 800);
		gen_created(m, t);
		tab_finish(t);
		m_add(m, 0, t);
	}
	m_sync(m);
}

/* ---- invariants ---- */

static bool meta_overlap(const struct sst_meta *a, const struct sst_meta *b)
{
	return bytes_cmp(a->largest, a->largest_len, b->smallest, b->smallest_len) >= 0 &&
	       bytes_cmp(a->smallest, a->smallest_len, b->largest, b->largest_len) <= 0;
}

/* Levels >= 1 sorted and disjoint (a shared boundary key only with the newer versions in the
 * earlier table), L0 newest first, and per key every version above is newer than every
 * version below. */
static void check_version(const struct model *m)
{
	for (int l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 1; i < m->cnt[l]; i++) {
			const struct mtab *p = m->tab[l][i - 1], *q = m->tab[l][i];

			if (l == 0) {
				assert_true(cmp_l0(&p, &q) < 0);
				continue;
			}
			int c = bytes_cmp(p->hi, p->t.meta.largest_len, q->lo,
					  q->t.meta.smallest_len);
			if (c > 0)
				fail_msg("level %d: tables %llu and %llu overlap", l,
					 (unsigned long long)p->t.meta.id,
					 (unsigned long long)q->t.meta.id);
			if (c == 0 && p->klo >= 0 && tab_has(p, p->khi) && tab_has(q, q->klo))
				assert_true(p->smin[p->khi] > q->smax[q->klo]);
		}
	}
	for (int k = 0; k < KEYS; k++) {
		uint64_t floor = UINT64_MAX;

		for (int l = 0; l < LEVEL_CNT; l++) {
			for (size_t i = 0; i < m->cnt[l]; i++) {
				const struct mtab *t = m->tab[l][i];

				if (!tab_has(t, k))
					continue;
				if (t->smax[k] >= floor)
					fail_msg("key %d: version %llu in table %llu at L%d lies "
						 "below a version %llu",
						 k, (unsigned long long)t->smax[k],
						 (unsigned long long)t->t.meta.id, l,
						 (unsigned long long)floor);
				if (t->smin[k] < floor)
					floor = t->smin[k];
			}
		}
	}
}

static bool in_plan(const struct compact_pick *pk, const struct table *t)
{
	for (size_t i = 0; i < pk->in_cnt; i++)
		if (pk->in[i].t == t)
			return true;
	return false;
}

static long index_in_level(const struct model *m, int l, const struct table *t)
{
	for (size_t i = 0; i < m->cnt[l]; i++)
		if (&m->tab[l][i]->t == t)
			return (long)i;
	return -1;
}

/* The plan's shape and the pick.h rules, checked against the version it came from. */
static void check_plan(const struct model *m, const struct compact_pick *pk)
{
	uint32_t prev_level = 0;
	long prev_idx = -1;
	size_t l0_in = 0;

	if (pk->kind == PICK_NONE) {
		assert_null(pk->in);
		assert_int_equal(pk->in_cnt, 0);
		return;
	}
	assert_true(pk->kind == PICK_MERGE || pk->kind == PICK_MOVE || pk->kind == PICK_DROP);
	assert_true(pk->in_cnt > 0);
	assert_non_null(pk->in);
	assert_true(pk->target_size > 0);
	assert_true(pk->score >= 1.0);
	for (size_t i = 0; i < pk->in_cnt; i++) {
		uint32_t l = pk->in[i].level;
		long idx;

		assert_true(l < LEVEL_CNT);
		idx = index_in_level(m, (int)l, pk->in[i].t);
		assert_true(idx >= 0);
		/* grouped by level, in the version's order within a level: no duplicates */
		assert_true(l > prev_level || (l == prev_level && idx > prev_idx) || i == 0);
		prev_level = l;
		prev_idx = idx;
		l0_in += l == 0;
		if (pk->kind != PICK_DROP)
			assert_true(l <= pk->out_level);
	}
	/* L0 inputs are the oldest L0 tables */
	for (size_t i = 0; i < l0_in; i++)
		assert_ptr_equal(pk->in[i].t, &m->tab[0][m->cnt[0] - l0_in + i]->t);
	if (pk->kind == PICK_DROP) {
		assert_int_equal(pk->out_level, 0);
		assert_false(pk->bottom);
		return;
	}
	assert_true(pk->out_level >= 1 && pk->out_level < LEVEL_CNT);
	/* with a table of level L, every table of L+1..out_level overlapping it */
	for (size_t i = 0; i < pk->in_cnt; i++) {
		for (uint32_t l = pk->in[i].level + 1; l <= pk->out_level; l++) {
			for (size_t j = 0; j < m->cnt[l]; j++) {
				const struct table *t = &m->tab[l][j]->t;

				if (meta_overlap(&pk->in[i].t->meta, &t->meta))
					assert_true(in_plan(pk, t));
			}
		}
	}
	/* a move lands tables that are pairwise strictly disjoint, on nothing */
	if (pk->kind == PICK_MOVE) {
		for (size_t i = 0; i < pk->in_cnt; i++) {
			for (size_t j = i + 1; j < pk->in_cnt; j++) {
				if (pk->in[i].level == 0 || pk->in[i].level != pk->in[j].level)
					assert_false(meta_overlap(&pk->in[i].t->meta,
								  &pk->in[j].t->meta));
			}
		}
	}
	/* bottom iff nothing else at or below out_level overlaps the span of the inputs */
	const struct sst_meta *lo = &pk->in[0].t->meta, *hi = lo;
	bool other = false;

	for (size_t i = 1; i < pk->in_cnt; i++) {
		const struct sst_meta *t = &pk->in[i].t->meta;

		if (bytes_cmp(t->smallest, t->smallest_len, lo->smallest, lo->smallest_len) < 0)
			lo = t;
		if (bytes_cmp(t->largest, t->largest_len, hi->largest, hi->largest_len) > 0)
			hi = t;
	}
	for (uint32_t l = pk->out_level; l < LEVEL_CNT; l++) {
		for (size_t j = 0; j < m->cnt[l]; j++) {
			const struct sst_meta *t = &m->tab[l][j]->t.meta;

			if (in_plan(pk, &m->tab[l][j]->t))
				continue;
			if (bytes_cmp(t->largest, t->largest_len, lo->smallest,
				      lo->smallest_len) >= 0 &&
			    bytes_cmp(t->smallest, t->smallest_len, hi->largest,
				      hi->largest_len) <= 0)
				other = true;
		}
	}
	assert_int_equal(pk->bottom, !other);
}

/* Applies a plan to the model: merges write tables of about target bytes spanning the inputs'
 * range; a cut sometimes leaves the earlier output ending on the next one's first key without
 * holding it (as a clipped range tombstone does). */
static void m_apply(struct model *m, const struct compact_pick *pk)
{
	struct mtab *in[MAXT];
	size_t n = pk->in_cnt;

	assert_true(n <= MAXT);
	for (size_t i = 0; i < n; i++)
		in[i] = m_take(m, (int)pk->in[i].level, pk->in[i].t);
	if (pk->kind == PICK_DROP) {
		for (size_t i = 0; i < n; i++)
			free(in[i]);
	} else if (pk->kind == PICK_MOVE) {
		for (size_t i = 0; i < n; i++)
			m_add(m, (int)pk->out_level, in[i]);
	} else {
		static struct mtab all;
		int ulo = KEYS, uhi = -1;
		uint64_t tombs = 0;

		memset(&all, 0, sizeof(all));
		for (size_t i = 0; i < n; i++) {
			const struct mtab *t = in[i];

			assert_true(t->klo >= 0);
			ulo = t->klo < ulo ? t->klo : ulo;
			uhi = t->khi > uhi ? t->khi : uhi;
			tombs += t->t.meta.tombstone_cnt;
			for (int k = t->klo; k <= t->khi; k++) {
				if (!t->smax[k])
					continue;
				if (!all.smax[k] || t->smin[k] < all.smin[k])
					all.smin[k] = t->smin[k];
				if (t->smax[k] > all.smax[k])
					all.smax[k] = t->smax[k];
				all.w[k] += t->w[k];
			}
			free(in[i]);
		}
		struct mtab *cur = tab_new(m);
		int lo = ulo;
		uint64_t acc = 0;

		for (int k = ulo; k <= uhi; k++) {
			int s;

			if (!all.smax[k])
				continue;
			cur->smin[k] = all.smin[k];
			cur->smax[k] = all.smax[k];
			cur->w[k] = all.w[k];
			acc += all.w[k];
			m->written += all.w[k];
			if (acc < pk->target_size)
				continue;
			for (s = k + 1; s <= uhi && !all.smax[s]; s++)
				;
			if (s > uhi)
				break;
			bool shared = tu_rand_below(&m->cut_rng, 4) == 0;
			tab_keys(cur, lo, shared ? s : k);
			cur->t.meta.created_s = m->now;
			cur->t.meta.tombstone_cnt = pk->bottom ? 0 : tombs;
			tab_finish(cur);
			m_add(m, (int)pk->out_level, cur);
			cur = tab_new(m);
			lo = shared || tu_rand_below(&m->cut_rng, 2) ? s : k + 1;
			acc = 0;
		}
		tab_keys(cur, lo, uhi);
		cur->t.meta.created_s = m->now;
		cur->t.meta.tombstone_cnt = pk->bottom ? 0 : tombs;
		tab_finish(cur);
		m_add(m, (int)pk->out_level, cur);
	}
	m_sync(m);
}

/* ---- what "at rest" means for each strategy ---- */

static bool tiered_has_window(const struct model *m, uint32_t ratio)
{
	uint64_t size[LEVEL_CNT];
	uint32_t k = 0, need = ratio < LAST ? ratio : LAST;

	for (int l = 1; l < LEVEL_CNT; l++)
		if (m->cnt[l])
			size[k++] = m_level_bytes(m, l) ? m_level_bytes(m, l) : 1;
	for (uint32_t i = 0; i + need <= k; i++) {
		uint64_t mn = UINT64_MAX, mx = 0;

		for (uint32_t j = i; j < i + need; j++) {
			mn = size[j] < mn ? size[j] : mn;
			mx = size[j] > mx ? size[j] : mx;
		}
		if (mx < mn * ratio)
			return true;
	}
	return false;
}

static int fifo_age_cmp(const void *a, const void *b)
{
	const struct table *x = *(struct table *const *)a, *y = *(struct table *const *)b;

	if (x->meta.max_seqno != y->meta.max_seqno)
		return x->meta.max_seqno < y->meta.max_seqno ? -1 : 1;
	return x->meta.id < y->meta.id ? -1 : x->meta.id > y->meta.id;
}

/* All tables, oldest first; returns the count. */
static size_t fifo_order(const struct model *m, struct table **out)
{
	size_t n = 0;

	for (int l = 0; l < LEVEL_CNT; l++)
		for (size_t i = 0; i < m->cnt[l]; i++)
			out[n++] = &m->tab[l][i]->t;
	qsort(out, n, sizeof(*out), fifo_age_cmp);
	return n;
}

static bool expired(const struct table *t, uint64_t ttl, uint64_t now)
{
	return ttl && t->meta.created_s && t->meta.created_s + ttl < now;
}

/* How many of the oldest tables FIFO must drop, worked out independently of the picker. */
static size_t fifo_expected(const struct model *m, const struct compact_policy *p, uint64_t now,
			    struct table **order)
{
	size_t n = fifo_order(m, order), i;
	uint64_t total = 0;

	for (i = 0; i < n; i++)
		total += order[i]->meta.file_size;
	for (i = 0; i < n; i++) {
		if (!(p->fifo_limit_bytes && total > p->fifo_limit_bytes) &&
		    !expired(order[i], p->fifo_ttl_s, now))
			break;
		total -= order[i]->meta.file_size;
	}
	return i;
}

static void check_at_rest(const struct model *m, const struct compact_policy *p)
{
	uint32_t trig = p->l0_trigger ? p->l0_trigger : 4;
	uint32_t ratio = p->level_ratio ? (p->level_ratio < 2 ? 2 : p->level_ratio) : 10;

	if (p->strategy == CS_FIFO) {
		struct table *order[LEVEL_CNT * MAXT];

		assert_int_equal(fifo_expected(m, p, m->now, order), 0);
		return;
	}
	assert_true(m->cnt[0] < trig);
	if (p->strategy == CS_TIERED) {
		assert_false(tiered_has_window(m, ratio));
		return;
	}
	for (uint32_t l = 1; l < LAST; l++)
		assert_true(m_level_bytes(m, (int)l) <= compact_level_target(p, l));
}

/* Picks and applies until PICK_NONE, checking every step; returns the number of plans. */
static size_t settle(struct model *m, const struct compact_policy *p)
{
	size_t steps = 0;

	for (;;) {
		struct compact_pick pk;

		assert_int_equal(compact_pick(&m->v, p, m->now, false, &pk), FR_OK);
		check_plan(m, &pk);
		if (pk.kind == PICK_NONE)
			break;
		m_apply(m, &pk);
		compact_pick_fini(&pk);
		check_version(m);
		if (++steps > 5000)
			fail_msg("picking does not come to rest");
	}
	check_at_rest(m, p);
	return steps;
}

static void random_policy(struct model *m, struct compact_policy *p, enum compact_strategy s)
{
	compact_policy_default(p);
	p->strategy = s;
	p->l0_trigger = (uint32_t)rnd(m, 6);         /* 0: the default */
	p->level_ratio = (uint32_t)rnd(m, 7);        /* 0, 1: default, clamped */
	p->table_target_size = 30 + rnd(m, 400);
	p->fifo_limit_bytes = rnd(m, 4) ? rnd(m, 3000) : 0;
	p->fifo_ttl_s = rnd(m, 2) ? rnd(m, 2500) : 0;
}

/* ---- hand-built versions ---- */

static struct mtab *put(struct model *m, int level, int lo, int hi, uint64_t bytes,
			uint64_t seqno)
{
	struct mtab *t = tab_new(m);

	tab_keys(t, lo, hi);
	for (int k = lo; k <= hi; k++) {
		t->smin[k] = t->smax[k] = seqno;
		t->w[k] = k == lo ? bytes : 0;
	}
	tab_finish(t);
	t->t.meta.file_size = bytes;
	t->t.meta.created_s = 1;
	m_add(m, level, t);
	return t;
}

static struct compact_policy small_leveled(void)
{
	struct compact_policy p;

	compact_policy_default(&p);
	p.l0_trigger = 4;
	p.level_ratio = 10;
	p.table_target_size = 100; /* target(1) = 400, target(2) = 4000 */
	return p;
}

static void expect(const struct compact_pick *pk, enum pick_kind kind, uint32_t out_level,
		   bool bottom, const struct mtab *const *tabs, size_t n)
{
	assert_int_equal(pk->kind, kind);
	assert_int_equal(pk->out_level, out_level);
	assert_int_equal(pk->bottom, bottom);
	assert_int_equal(pk->in_cnt, n);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(pk->in[i].t, &tabs[i]->t);
}

static void pick_ok(struct model *m, const struct compact_policy *p, bool major,
		    struct compact_pick *pk)
{
	m_sync(m);
	assert_int_equal(compact_pick(&m->v, p, m->now, major, pk), FR_OK);
	check_plan(m, pk);
}

static void test_pick_level_targets(void **state)
{
	struct compact_policy p;

	(void)state;
	compact_policy_default(&p);
	assert_int_equal(p.strategy, CS_LEVELED);
	assert_int_equal(p.l0_trigger, 4);
	assert_int_equal(p.level_ratio, 10);
	assert_int_equal(p.table_target_size, 64 * MIB);
	assert_int_equal(p.fifo_limit_bytes, 1024 * MIB);
	assert_int_equal(p.fifo_ttl_s, 0);
	assert_int_equal(compact_level_target(&p, 0), 0);
	assert_int_equal(compact_level_target(&p, 1), 256 * MIB);
	assert_int_equal(compact_level_target(&p, 2), 2560 * MIB);
	assert_int_equal(compact_level_target(&p, 6), 256 * MIB * 100000);
	assert_int_equal(compact_level_target(&p, 60), UINT64_MAX);
	p.l0_trigger = 0;
	p.level_ratio = 1;
	p.table_target_size = 0;
	assert_int_equal(compact_level_target(&p, 2), 512 * MIB);
}

static void test_pick_leveled_empty_and_below(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	pick_ok(m, &p, true, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	put(m, 0, 0, 10, 50, 9000);
	put(m, 0, 5, 20, 50, 9100);
	put(m, 0, 8, 30, 50, 9200);
	put(m, 1, 0, 50, 400, 5000); /* at target: not past it */
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	m_free(m);
}

static void test_pick_leveled_l0_into_l1(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	struct mtab *a = put(m, 0, 10, 20, 50, 9000);
	struct mtab *b = put(m, 0, 15, 30, 50, 9100);
	struct mtab *c = put(m, 0, 25, 40, 50, 9200);
	struct mtab *d = put(m, 0, 12, 14, 50, 9300);
	put(m, 1, 0, 5, 50, 5000);
	struct mtab *x = put(m, 1, 6, 12, 50, 5000);
	struct mtab *y = put(m, 1, 40, 60, 50, 5000);
	put(m, 1, 61, 70, 50, 5000);
	put(m, 2, 0, 5, 50, 4000); /* under L1's [0, 5], outside the inputs' span [6, 60] */
	pick_ok(m, &p, false, &pk);
	const struct mtab *want[] = {d, c, b, a, x, y};
	expect(&pk, PICK_MERGE, 1, true, want, 6);
	assert_true(pk.score >= 1.0);
	assert_int_equal(pk.target_size, 100);
	compact_pick_fini(&pk);
	assert_int_equal(pk.kind, PICK_NONE);
	assert_null(pk.in);

	/* a deeper table overlapping the span: not the bottom */
	put(m, 3, 30, 35, 50, 3000);
	pick_ok(m, &p, false, &pk);
	expect(&pk, PICK_MERGE, 1, false, want, 6);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_leveled_l0_pull_down(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	/* a young tree: L0 goes straight to the last level */
	struct mtab *a = put(m, 0, 10, 20, 50, 9000);
	struct mtab *b = put(m, 0, 15, 30, 50, 9100);
	struct mtab *c = put(m, 0, 25, 40, 50, 9200);
	struct mtab *d = put(m, 0, 12, 14, 50, 9300);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w1[] = {d, c, b, a};
	expect(&pk, PICK_MERGE, LAST, true, w1, 4);
	compact_pick_fini(&pk);

	/* a small L6 stands in for L1 */
	struct mtab *z = put(m, 6, 30, 50, 300, 1000);
	put(m, 6, 60, 70, 50, 1000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w2[] = {d, c, b, a, z};
	expect(&pk, PICK_MERGE, LAST, true, w2, 5);
	compact_pick_fini(&pk);

	/* once L6 holds target(1), L1 gets its own tables */
	put(m, 6, 80, 90, 50, 1000);
	pick_ok(m, &p, false, &pk);
	expect(&pk, PICK_MERGE, 1, false, w1, 4);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_leveled_l0_move(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	/* disjoint L0 tables, nothing below them in L1: an edit only */
	struct mtab *a = put(m, 0, 0, 9, 50, 9000);
	struct mtab *b = put(m, 0, 10, 19, 50, 9100);
	struct mtab *c = put(m, 0, 30, 39, 50, 9200);
	struct mtab *d = put(m, 0, 20, 29, 50, 9300);
	put(m, 1, 50, 60, 100, 5000);
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_MOVE);
	const struct mtab *w[] = {d, c, b, a};
	expect(&pk, PICK_MOVE, 1, true, w, 4);
	compact_pick_fini(&pk);

	/* a shared boundary key between two L0 tables is an overlap: merge */
	a->t.meta.largest = b->lo;
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_MERGE);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_leveled_level_choice(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	/* L1 past its 400-byte target; each table's overlap with L2 differs */
	struct mtab *a = put(m, 1, 0, 9, 100, 5000);   /* overlaps 400 in L2: ratio 4 */
	struct mtab *b = put(m, 1, 20, 29, 200, 5100); /* overlaps 100: ratio 0.5 */
	put(m, 1, 40, 49, 150, 5200);                  /* overlaps 300 and 200: ratio 3.3 */
	struct mtab *l2a = put(m, 2, 0, 9, 400, 4000);
	struct mtab *l2b = put(m, 2, 22, 27, 100, 4000);
	put(m, 2, 35, 41, 300, 4000);
	put(m, 2, 45, 60, 200, 4000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w1[] = {b, l2b};
	expect(&pk, PICK_MERGE, 2, true, w1, 2);
	assert_true(pk.score > 1.0);
	compact_pick_fini(&pk);

	/* a table with nothing under it moves */
	struct mtab *e = put(m, 1, 70, 79, 1, 5300);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w2[] = {e};
	expect(&pk, PICK_MOVE, 2, true, w2, 1);
	compact_pick_fini(&pk);

	/* ties on the ratio go to the oldest */
	m_free(m);
	m = m_new(1);
	put(m, 1, 0, 9, 300, 5200);
	a = put(m, 1, 20, 29, 300, 5100);
	put(m, 2, 0, 9, 300, 4000);
	l2a = put(m, 2, 20, 29, 300, 4000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w3[] = {a, l2a};
	expect(&pk, PICK_MERGE, 2, true, w3, 2);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_leveled_merge_cap(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	/* The cheaper-per-byte candidate would rewrite 30 table targets of L2; the cap (25)
	 * sends the pick to the other one. */
	put(m, 1, 0, 9, 4000, 5000);                   /* 3000 below: ratio 0.75 */
	struct mtab *b = put(m, 1, 20, 29, 10, 5000); /* 100 below: ratio 10 */
	put(m, 2, 0, 9, 3000, 4000);
	struct mtab *y = put(m, 2, 20, 29, 100, 4000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w[] = {b, y};
	expect(&pk, PICK_MERGE, 2, true, w, 2);
	compact_pick_fini(&pk);

	/* every candidate past the cap: the least overlapping one still goes */
	y->t.meta.file_size = 2600;
	pick_ok(m, &p, false, &pk);
	expect(&pk, PICK_MERGE, 2, true, w, 2);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_leveled_level_pull_down(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	/* L1 past target, L2..L5 empty, L6 under target(2) = 4000: into L6 */
	struct mtab *a = put(m, 1, 0, 9, 300, 5000);
	struct mtab *b = put(m, 1, 20, 29, 300, 5100);
	struct mtab *z = put(m, 6, 5, 25, 1000, 1000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w1[] = {a, z};
	expect(&pk, PICK_MERGE, LAST, true, w1, 2);
	compact_pick_fini(&pk);

	/* L6 past target(2): L1 moves to the empty L2 instead */
	z->t.meta.file_size = 5000;
	pick_ok(m, &p, false, &pk);
	const struct mtab *w2[] = {a};
	expect(&pk, PICK_MOVE, 2, false, w2, 1);
	compact_pick_fini(&pk);

	/* nothing at all below: straight to the last level */
	struct mtab *zz = m_take(m, 6, &z->t);
	free(zz);
	pick_ok(m, &p, false, &pk);
	expect(&pk, PICK_MOVE, LAST, true, w2, 1);
	compact_pick_fini(&pk);
	(void)b;
	m_free(m);
}

static void test_pick_leveled_clean_cut(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	/* b and c share key 20, c and d key 25: they leave L1 together */
	put(m, 1, 0, 9, 400, 5000); /* 2000 below: ratio 5 */
	struct mtab *b = put(m, 1, 10, 20, 10, 5100);
	struct mtab *c = put(m, 1, 20, 25, 10, 5000);
	struct mtab *d = put(m, 1, 25, 29, 10, 5000);
	put(m, 2, 0, 9, 2000, 4000);
	struct mtab *y = put(m, 2, 29, 35, 50, 4000); /* the group's 30 bytes over 100: 3.3 */
	struct mtab *y2 = put(m, 2, 35, 40, 50, 4000); /* shares 35 with y */
	pick_ok(m, &p, false, &pk);
	const struct mtab *w[] = {b, c, d, y, y2};
	expect(&pk, PICK_MERGE, 2, true, w, 5);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_leveled_key_order(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	/* keys compare bytewise, a prefix first: "k" < "k\0" < "ka" */
	struct mtab *x = tab_new(m);
	tab_strkeys(x, "a", 1, "k", 1);
	x->t.meta.file_size = 1000;
	m_add(m, 1, x);
	struct mtab *y = tab_new(m);
	tab_strkeys(y, "k\0", 2, "z", 1);
	y->t.meta.file_size = 10;
	m_add(m, 2, y);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w1[] = {x};
	expect(&pk, PICK_MOVE, 2, true, w1, 1);
	compact_pick_fini(&pk);
	tab_strkeys(y, "k", 1, "z", 1);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w2[] = {x, y};
	expect(&pk, PICK_MERGE, 2, true, w2, 2);
	compact_pick_fini(&pk);
	tab_strkeys(y, "ka", 2, "z", 1);
	tab_strkeys(x, "a", 1, "kZ", 2); /* 'Z' < 'a' */
	pick_ok(m, &p, false, &pk);
	expect(&pk, PICK_MOVE, 2, true, w1, 1);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_leveled_highest_score(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	for (int i = 0; i < 4; i++)
		put(m, 0, i * 10, i * 10 + 15, 10, 9000 + (uint64_t)i * 100); /* score 1 */
	struct mtab *b = put(m, 2, 0, 9, 12000, 4000);                    /* score 3 */
	put(m, 3, 50, 60, 10, 3000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w[] = {b};
	expect(&pk, PICK_MOVE, 3, true, w, 1);
	assert_true(pk.score > 2.9 && pk.score < 3.1);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_major(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;

	(void)state;
	struct mtab *a = put(m, 0, 0, 10, 10, 9000);
	struct mtab *b = put(m, 2, 0, 5, 10, 4000);
	struct mtab *c = put(m, 6, 3, 30, 10, 1000);
	struct mtab *d = put(m, 6, 40, 50, 10, 1000);
	for (int s = CS_LEVELED; s <= CS_TIERED; s++) {
		p.strategy = (enum compact_strategy)s;
		pick_ok(m, &p, true, &pk);
		const struct mtab *w[] = {a, b, c, d};
		expect(&pk, PICK_MERGE, LAST, true, w, 4);
		compact_pick_fini(&pk);
	}
	/* all in the last level: still rewritten (old versions may be there); empty: nothing */
	m_free(m);
	m = m_new(1);
	pick_ok(m, &p, true, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	c = put(m, 6, 3, 30, 10, 1000);
	d = put(m, 6, 40, 50, 10, 1000);
	pick_ok(m, &p, true, &pk);
	const struct mtab *w2[] = {c, d};
	expect(&pk, PICK_MERGE, LAST, true, w2, 2);
	compact_pick_fini(&pk);
	m_free(m);
}

static struct compact_policy small_tiered(void)
{
	struct compact_policy p = small_leveled();

	p.strategy = CS_TIERED;
	p.level_ratio = 4;
	return p;
}

static void test_pick_tiered(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_tiered();
	struct compact_pick pk;

	(void)state;
	struct mtab *a = put(m, 0, 0, 10, 50, 9000);
	struct mtab *b = put(m, 0, 5, 20, 50, 9100);
	struct mtab *c = put(m, 0, 8, 30, 50, 9200);
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	struct mtab *d = put(m, 0, 40, 50, 50, 9300);
	/* an empty tree: the new run goes to the last level */
	pick_ok(m, &p, false, &pk);
	const struct mtab *w1[] = {d, c, b, a};
	expect(&pk, PICK_MERGE, LAST, true, w1, 4);
	compact_pick_fini(&pk);
	/* the run of L4 is the newest: the next one goes right above it, over the whole range */
	struct mtab *r4 = put(m, 4, 0, 60, 1000, 4000);
	pick_ok(m, &p, false, &pk);
	expect(&pk, PICK_MERGE, 3, false, w1, 4);
	compact_pick_fini(&pk);
	/* L1 taken: L0 joins it and every following run no larger than the merge */
	struct mtab *r1 = put(m, 1, 0, 3, 100, 6000);
	struct mtab *r2 = put(m, 2, 70, 80, 300, 5000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w2[] = {d, c, b, a, r1, r2};
	expect(&pk, PICK_MERGE, 2, false, w2, 6); /* r4 below overlaps */
	compact_pick_fini(&pk);
	r2->t.meta.file_size = 301; /* now larger than 200 + 100 */
	pick_ok(m, &p, false, &pk);
	const struct mtab *w3[] = {d, c, b, a, r1};
	expect(&pk, PICK_MERGE, 1, false, w3, 5);
	compact_pick_fini(&pk);
	(void)r4;
	m_free(m);
}

static void test_pick_tiered_window(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_tiered();
	struct compact_pick pk;

	(void)state;
	/* four runs within a factor 4 of each other merge into the deepest one's level */
	put(m, 1, 0, 9, 5000, 6000);
	struct mtab *r2 = put(m, 2, 0, 9, 100, 5000);
	struct mtab *r3 = put(m, 3, 5, 20, 150, 4000);
	struct mtab *r4 = put(m, 4, 0, 30, 250, 3000);
	struct mtab *r5a = put(m, 5, 0, 4, 150, 2000);
	struct mtab *r5b = put(m, 5, 6, 40, 200, 2000);
	struct mtab *r6 = put(m, 6, 35, 90, 5000, 1000);
	pick_ok(m, &p, false, &pk);
	const struct mtab *w[] = {r2, r3, r4, r5a, r5b};
	expect(&pk, PICK_MERGE, 5, false, w, 5);
	assert_true(pk.score >= 1.0);
	compact_pick_fini(&pk);
	/* 400 against 100: not similar any more, no window of four */
	r5b->t.meta.file_size = 250;
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	(void)r6;
	m_free(m);
}

static void test_pick_fifo(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p;
	struct compact_pick pk;

	(void)state;
	compact_policy_default(&p);
	p.strategy = CS_FIFO;
	p.fifo_limit_bytes = 250;
	m->now = 10000;
	struct mtab *a = put(m, 0, 0, 10, 100, 9400);
	struct mtab *b = put(m, 0, 0, 10, 100, 9300);
	struct mtab *c = put(m, 0, 0, 10, 100, 9200);
	struct mtab *d = put(m, 6, 0, 10, 100, 1000);
	for (int i = 0; i < 2; i++) {
		/* 400 bytes against 250: the two oldest go, whatever their level; major too */
		pick_ok(m, &p, i, &pk);
		const struct mtab *w[] = {c, d};
		expect(&pk, PICK_DROP, 0, false, w, 2);
		assert_true(pk.score > 1.5);
		compact_pick_fini(&pk);
	}
	p.fifo_limit_bytes = 400;
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	p.fifo_limit_bytes = 0; /* no limit */
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_NONE);

	/* TTL: d and c expired; b expired too, but a is not: the prefix stops at a */
	p.fifo_ttl_s = 1000;
	d->t.meta.created_s = 100;
	c->t.meta.created_s = 8000;
	b->t.meta.created_s = 8999;
	a->t.meta.created_s = 9500;
	pick_ok(m, &p, false, &pk);
	const struct mtab *w2[] = {b, c, d};
	expect(&pk, PICK_DROP, 0, false, w2, 3);
	compact_pick_fini(&pk);
	/* created_s + ttl == now is not past it */
	b->t.meta.created_s = 9000;
	pick_ok(m, &p, false, &pk);
	const struct mtab *w3[] = {c, d};
	expect(&pk, PICK_DROP, 0, false, w3, 2);
	compact_pick_fini(&pk);
	/* an unknown creation time never expires, and shields the newer tables behind it */
	d->t.meta.created_s = 0;
	pick_ok(m, &p, false, &pk);
	assert_int_equal(pk.kind, PICK_NONE);
	/* but the size limit still drops it, and then the expired c behind it goes too */
	p.fifo_limit_bytes = 350;
	pick_ok(m, &p, false, &pk);
	expect(&pk, PICK_DROP, 0, false, w3, 2);
	compact_pick_fini(&pk);
	/* without the TTL, the limit alone takes just d */
	p.fifo_ttl_s = 0;
	pick_ok(m, &p, false, &pk);
	const struct mtab *w4[] = {d};
	expect(&pk, PICK_DROP, 0, false, w4, 1);
	compact_pick_fini(&pk);
	m_free(m);
}

static void test_pick_nomem(void **state)
{
	struct model *m = m_new(1);
	struct compact_policy p = small_leveled();
	struct compact_pick pk;
	unsigned long n;

	(void)state;
	for (int i = 0; i < 4; i++)
		put(m, 0, i, i + 20, 10, 9000 + (uint64_t)i);
	m_sync(m);
	for (int s = CS_LEVELED; s <= CS_FIFO; s++) {
		p.strategy = (enum compact_strategy)s;
		p.fifo_limit_bytes = 15;
		for (n = 1;; n++) {
			fr_status rc;

			fr_alloc_fail_at(n);
			rc = compact_pick(&m->v, &p, m->now, false, &pk);
			fr_alloc_fail_at(0);
			if (rc == FR_OK)
				break;
			assert_int_equal(rc, FR_NOMEM);
			assert_int_equal(pk.kind, PICK_NONE);
			assert_null(pk.in);
			assert_int_equal(pk.in_cnt, 0);
		}
		assert_true(n > 1);
		assert_int_not_equal(pk.kind, PICK_NONE);
		compact_pick_fini(&pk);
	}
	compact_pick_fini(NULL);
	m_free(m);
}

/* ---- random versions ---- */

static void random_runs(enum compact_strategy s, int versions)
{
	uint64_t seed = tu_seed() ^ ((uint64_t)s * 0x9e3779b97f4a7c15ull);

	for (int r = 0; r < versions; r++) {
		struct model *m = m_new(seed + (uint64_t)r);
		struct compact_policy p;

		random_policy(m, &p, s);
		gen_version(m);
		check_version(m);
		settle(m, &p);
		for (int f = (int)rnd(m, 12); f > 0; f--) {
			m->now += rnd(m, 300);
			m_flush(m, 1 + (int)rnd(m, 40));
			check_version(m);
			settle(m, &p);
		}
		m_free(m);
	}
}

static void test_pick_random_leveled(void **state)
{
	(void)state;
	random_runs(CS_LEVELED, 1500);
}

static void test_pick_random_tiered(void **state)
{
	(void)state;
	random_runs(CS_TIERED, 1500);
}

static void test_pick_random_fifo(void **state)
{
	uint64_t seed = tu_seed() ^ 0x5bd1e995u;
	struct table *order[LEVEL_CNT * MAXT];

	(void)state;
	for (int r = 0; r < 1500; r++) {
		struct model *m = m_new(seed + (uint64_t)r);
		struct compact_policy p;
		struct compact_pick pk;

		random_policy(m, &p, CS_FIFO);
		gen_version(m);
		for (int f = (int)rnd(m, 6); f > 0; f--)
			m_flush(m, 30);
		m->now += rnd(m, 2000);
		/* exactly the oldest prefix that the limit or the TTL asks for */
		size_t want = fifo_expected(m, &p, m->now, order);
		pick_ok(m, &p, rnd(m, 2), &pk);
		if (!want) {
			assert_int_equal(pk.kind, PICK_NONE);
		} else {
			assert_int_equal(pk.kind, PICK_DROP);
			assert_int_equal(pk.in_cnt, want);
			for (size_t i = 0; i < want; i++)
				assert_true(in_plan(&pk, order[i]));
			/* no dropped table had an unknown creation time unless the limit needed it */
			m_apply(m, &pk);
			compact_pick_fini(&pk);
			check_version(m);
		}
		check_at_rest(m, &p);
		m_free(m);
	}
}

static void test_pick_random_major(void **state)
{
	uint64_t seed = tu_seed() ^ 0x27d4eb2fu;

	(void)state;
	for (int r = 0; r < 1000; r++) {
		struct model *m = m_new(seed + (uint64_t)r);
		struct compact_policy p;
		struct compact_pick pk;
		random_policy(m, &p, rnd(m, 2) ? CS_LEVELED : CS_TIERED);
		gen_version(m);
		pick_ok(m, &p, true, &pk);
		if (!m_table_cnt(m)) {
			assert_int_equal(pk.kind, PICK_NONE);
			m_free(m);
			continue;
		}
		assert_int_equal(pk.kind, PICK_MERGE);
		assert_int_equal(pk.in_cnt, m_table_cnt(m));
		assert_int_equal(pk.out_level, LAST);
		assert_true(pk.bottom);
		m_apply(m, &pk);
		compact_pick_fini(&pk);
		check_version(m);
		assert_int_equal(m_table_cnt(m), m->cnt[LAST]);
		/* once more: the whole last level again */
		pick_ok(m, &p, true, &pk);
		assert_int_equal(pk.kind, m_table_cnt(m) ? PICK_MERGE : PICK_NONE);
		assert_int_equal(pk.in_cnt, m_table_cnt(m));
		compact_pick_fini(&pk);
		m_free(m);
	}
}

/* The same stream of flushes under leveled (ratio 10) and tiered (ratio 4): tiered rewrites
 * less, and both keep the tree within their bounds. */
static void test_pick_tiered_writes_less(void **state)
{
	uint64_t seed = tu_seed();
	uint64_t written[2] = {0, 0};

	(void)state;
	for (int s = 0; s < 2; s++) {
		struct model *m = m_new(seed);
		struct compact_policy p;
		uint64_t flushed = 0;

		compact_policy_default(&p);
		p.strategy = s ? CS_TIERED : CS_LEVELED;
		p.level_ratio = s ? 4 : 10;
		p.table_target_size = 200;
		for (int f = 0; f < 600; f++) {
			m_flush(m, KEYS);
			flushed += m->tab[0][0]->t.meta.file_size;
			settle(m, &p);
			if (s)
				assert_true(m->cnt[0] < 4);
		}
		written[s] = m->written;
		print_message("# %s: %llu bytes flushed, %llu written by compactions\n",
			      s ? "tiered" : "leveled", (unsigned long long)flushed,
			      (unsigned long long)written[s]);
		m_free(m);
	}
	assert_true(written[1] < written[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick_level_targets),
		cmocka_unit_test(test_pick_leveled_empty_and_below),
		cmocka_unit_test(test_pick_leveled_l0_into_l1),
		cmocka_unit_test(test_pick_leveled_l0_pull_down),
		cmocka_unit_test(test_pick_leveled_l0_move),
		cmocka_unit_test(test_pick_leveled_level_choice),
		cmocka_unit_test(test_pick_leveled_merge_cap),
		cmocka_unit_test(test_pick_leveled_level_pull_down),
		cmocka_unit_test(test_pick_leveled_clean_cut),
		cmocka_unit_test(test_pick_leveled_key_order),
		cmocka_unit_test(test_pick_leveled_highest_score),
		cmocka_unit_test(test_pick_major),
		cmocka_unit_test(test_pick_tiered),
		cmocka_unit_test(test_pick_tiered_window),
		cmocka_unit_test(test_pick_fifo),
		cmocka_unit_test(test_pick_nomem),
		cmocka_unit_test(test_pick_random_leveled),
		cmocka_unit_test(test_pick_random_tiered),
		cmocka_unit_test(test_pick_random_fifo),
		cmocka_unit_test(test_pick_random_major),
		cmocka_unit_test(test_pick_tiered_writes_less),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
