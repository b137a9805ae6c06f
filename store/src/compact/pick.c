/* SPDX-License-Identifier: MIT */
/*
 * pick.c - the compaction picker (pick.h). Each strategy marks the tables it takes in one flag
 * per table of the version; a single emitter then lists the marked tables level by level in the
 * version's own order and works out `bottom`, so every plan is grouped, ordered and judged the
 * same way whichever strategy made it.
 */
#include "compact/pick.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/coding.h"
#include "version/version.h"

#define LAST_LEVEL (LEVEL_CNT - 1)
#define DEF_L0_TRIGGER 4
#define DEF_LEVEL_RATIO 10
#define DEF_TABLE_TARGET (UINT64_C(64) << 20)
#define DEF_FIFO_LIMIT (UINT64_C(1) << 30)
/* A leveled merge from L >= 1 takes at most this many table targets of the output level when
 * some candidate allows it, so one compaction never rewrites a whole large level. */
#define MERGE_CAP_TARGETS 25

/* An inclusive key span; empty until the first table is added. */
struct span {
	const uint8_t *lo;
	size_t lo_len;
	const uint8_t *hi;
	size_t hi_len;
	bool set;
};

/* The tables a plan takes: sel[base[l] + i] for table i of level l. */
struct marks {
	const struct tree_version *v;
	bool *sel;
	size_t base[LEVEL_CNT];
	size_t total;
};

void compact_policy_default(struct compact_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->strategy = CS_LEVELED;
	p->l0_trigger = DEF_L0_TRIGGER;
	p->level_ratio = DEF_LEVEL_RATIO;
	p->table_target_size = DEF_TABLE_TARGET;
	p->fifo_limit_bytes = DEF_FIFO_LIMIT;
	p->fifo_ttl_s = 0;
}

/* Zeros take the defaults; a ratio of 1 would give levels that never grow. */
static void policy_norm(const struct compact_policy *p, struct compact_policy *q)
{
	*q = *p;
	if (!q->l0_trigger)
		q->l0_trigger = DEF_L0_TRIGGER;
	if (!q->level_ratio)
		q->level_ratio = DEF_LEVEL_RATIO;
	else if (q->level_ratio < 2)
		q->level_ratio = 2;
	if (!q->table_target_size)
		q->table_target_size = DEF_TABLE_TARGET;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	if (a && b > UINT64_MAX / a)
		return UINT64_MAX;
	return a * b;
}

static uint64_t level_target(const struct compact_policy *q, uint32_t level)
{
	uint64_t t;

	if (level == 0)
		return 0;
	t = sat_mul(q->l0_trigger, q->table_target_size);
	for (uint32_t l = 1; l < level && t != UINT64_MAX; l++)
		t = sat_mul(t, q->level_ratio);
	return t;
}

uint64_t compact_level_target(const struct compact_policy *p, uint32_t level)
{
	struct compact_policy q;

	policy_norm(p, &q);
	return level_target(&q, level);
}

/* ---- keys and levels ---- */

static const struct sst_meta *meta_at(const struct tree_version *v, uint32_t l, size_t i)
{
	return &v->levels[l][i]->meta;
}

static void span_add(struct span *s, const struct sst_meta *m)
{
	if (!s->set || bytes_cmp(m->smallest, m->smallest_len, s->lo, s->lo_len) < 0) {
		s->lo = m->smallest;
		s->lo_len = m->smallest_len;
	}
	if (!s->set || bytes_cmp(m->largest, m->largest_len, s->hi, s->hi_len) > 0) {
		s->hi = m->largest;
		s->hi_len = m->largest_len;
	}
	s->set = true;
}

static bool span_overlaps(const struct span *s, const struct sst_meta *m)
{
	return s->set && bytes_cmp(m->largest, m->largest_len, s->lo, s->lo_len) >= 0 &&
	       bytes_cmp(m->smallest, m->smallest_len, s->hi, s->hi_len) <= 0;
}

static bool metas_overlap(const struct sst_meta *a, const struct sst_meta *b)
{
	return bytes_cmp(a->largest, a->largest_len, b->smallest, b->smallest_len) >= 0 &&
	       bytes_cmp(a->smallest, a->smallest_len, b->largest, b->largest_len) <= 0;
}

/* True when b's first key is a's last: the pair shares a boundary key. */
static bool shares_boundary(const struct sst_meta *a, const struct sst_meta *b)
{
	return bytes_cmp(a->largest, a->largest_len, b->smallest, b->smallest_len) == 0;
}

static uint64_t range_bytes(const struct tree_version *v, uint32_t l, size_t first, size_t end)
{
	uint64_t n = 0;

	for (size_t i = first; i < end; i++)
		n += meta_at(v, l, i)->file_size;
	return n;
}

static uint64_t level_bytes(const struct tree_version *v, uint32_t l)
{
	return range_bytes(v, l, 0, v->level_cnt[l]);
}

/* [*first, *end): the tables of level l >= 1 overlapping s, widened over neighbours that share
 * a boundary key, so the range can leave the level without splitting a key's versions. A sorted
 * level with disjoint (or boundary-sharing) tables has non-decreasing largest keys, so the
 * overlapping tables are contiguous and found by bisection. */
static void level_overlap(const struct tree_version *v, uint32_t l, const struct span *s,
			  size_t *first, size_t *end)
{
	size_t n = v->level_cnt[l], lo = 0, hi = n, e;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct sst_meta *m = meta_at(v, l, mid);

		if (bytes_cmp(m->largest, m->largest_len, s->lo, s->lo_len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	e = lo;
	while (e < n && span_overlaps(s, meta_at(v, l, e)))
		e++;
	if (e > lo) {
		while (lo > 0 && shares_boundary(meta_at(v, l, lo - 1), meta_at(v, l, lo)))
			lo--;
		while (e < n && shares_boundary(meta_at(v, l, e - 1), meta_at(v, l, e)))
			e++;
	}
	*first = lo;
	*end = e;
}

/* True when no two L0 tables overlap, so L0 could be a level's run as it is. */
static bool l0_disjoint(const struct tree_version *v)
{
	for (size_t i = 0; i < v->level_cnt[0]; i++)
		for (size_t j = i + 1; j < v->level_cnt[0]; j++)
			if (metas_overlap(meta_at(v, 0, i), meta_at(v, 0, j)))
				return false;
	return true;
}

static uint32_t first_nonempty(const struct tree_version *v, uint32_t from)
{
	uint32_t l = from;

	while (l < LEVEL_CNT && !v->level_cnt[l])
		l++;
	return l;
}

/* ---- marks and the emitter ---- */

static fr_status marks_init(struct marks *m, const struct tree_version *v)
{
	m->v = v;
	m->total = 0;
	for (uint32_t l = 0; l < LEVEL_CNT; l++) {
		m->base[l] = m->total;
		m->total += v->level_cnt[l];
	}
	m->sel = fr_calloc(m->total ? m->total : 1, sizeof(*m->sel));
	return m->sel ? FR_OK : FR_NOMEM;
}

static void mark_range(struct marks *m, uint32_t l, size_t first, size_t end)
{
	for (size_t i = first; i < end; i++)
		m->sel[m->base[l] + i] = true;
}

static void mark_level(struct marks *m, uint32_t l)
{
	mark_range(m, l, 0, m->v->level_cnt[l]);
}

static bool is_marked(const struct marks *m, uint32_t l, size_t i)
{
	return m->sel[m->base[l] + i];
}

/* Lists the marked tables into out and decides bottom (see pick.h). */
static fr_status emit(const struct marks *m, enum pick_kind kind, uint32_t out_level,
		      double score, struct compact_pick *out)
{
	const struct tree_version *v = m->v;
	struct span s = {0};
	size_t cnt = 0, k = 0;
	bool bottom = true;

	for (size_t i = 0; i < m->total; i++)
		cnt += m->sel[i];
	if (!cnt)
		return FR_OK;
	out->in = fr_calloc(cnt, sizeof(*out->in));
	if (!out->in)
		return FR_NOMEM;
	for (uint32_t l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v->level_cnt[l]; i++) {
			if (!is_marked(m, l, i))
				continue;
			out->in[k].level = l;
			out->in[k].t = v->levels[l][i];
			span_add(&s, meta_at(v, l, i));
			k++;
		}
	}
	for (uint32_t l = out_level; kind != PICK_DROP && l < LEVEL_CNT && bottom; l++)
		for (size_t i = 0; i < v->level_cnt[l] && bottom; i++)
			if (!is_marked(m, l, i) && span_overlaps(&s, meta_at(v, l, i)))
				bottom = false;
	out->kind = kind;
	out->in_cnt = cnt;
	out->out_level = kind == PICK_DROP ? 0 : out_level;
	out->bottom = kind != PICK_DROP && bottom;
	out->score = score;
	return FR_OK;
}

/* ---- major ---- */

static fr_status pick_major(struct marks *m, struct compact_pick *out)
{
	const struct tree_version *v = m->v;
	bool any = false;

	/* Even a tree all in the last level, without tombstones, may hold old versions that
	 * snapshots kept and no longer need: nothing in the metadata says, so it is rewritten. */
	for (uint32_t l = 0; l < LEVEL_CNT && !any; l++)
		any = v->level_cnt[l] != 0;
	if (!any)
		return FR_OK;
	for (uint32_t l = 0; l < LEVEL_CNT; l++)
		mark_level(m, l);
	return emit(m, PICK_MERGE, LAST_LEVEL, 1.0, out);
}

/* ---- leveled ---- */

/* Where data leaving level `from` goes: the next level, or past it while it is empty (see
 * pick.h, "pull-down"). */
static uint32_t leveled_out(const struct tree_version *v, const struct compact_policy *q,
			    uint32_t from)
{
	uint32_t n = from + 1, d;

	if (n >= LAST_LEVEL || v->level_cnt[n])
		return n;
	d = first_nonempty(v, n + 1);
	if (d >= LEVEL_CNT)
		return LAST_LEVEL;
	return level_bytes(v, d) < level_target(q, n) ? d : n;
}

static fr_status leveled_l0(struct marks *m, const struct compact_policy *q, double score,
			    struct compact_pick *out)
{
	const struct tree_version *v = m->v;
	uint32_t ol = leveled_out(v, q, 0);
	struct span s = {0};
	size_t first = 0, end = 0;

	for (size_t i = 0; i < v->level_cnt[0]; i++)
		span_add(&s, meta_at(v, 0, i));
	mark_level(m, 0);
	level_overlap(v, ol, &s, &first, &end);
	mark_range(m, ol, first, end);
	return emit(m, first == end && l0_disjoint(v) ? PICK_MOVE : PICK_MERGE, ol, score, out);
}

/* One way to push a clean-cut group of level L down. */
struct cand {
	size_t gf, ge;    /* the group in L */
	size_t of, oe;    /* what it overlaps in the output level */
	uint64_t ob;      /* bytes of [of, oe) */
	double ratio;     /* ob per byte of the group */
	uint64_t seqno;   /* newest seqno of the group */
	bool over;        /* ob past the cap */
};

static bool cand_better(const struct cand *a, const struct cand *b)
{
	if (a->over != b->over)
		return !a->over;
	if (a->over && a->ob != b->ob)
		return a->ob < b->ob;
	if (!a->over && a->ratio != b->ratio)
		return a->ratio < b->ratio;
	return a->seqno < b->seqno;
}

static fr_status leveled_level(struct marks *m, const struct compact_policy *q, uint32_t l,
			       double score, struct compact_pick *out)
{
	const struct tree_version *v = m->v;
	uint32_t ol = leveled_out(v, q, l);
	uint64_t cap = sat_mul(MERGE_CAP_TARGETS, q->table_target_size);
	struct cand best = {0}, c;
	bool have = false;
	size_t i = 0;

	while (i < v->level_cnt[l]) {
		struct span one = {0}, grp = {0};
		uint64_t gb;

		span_add(&one, meta_at(v, l, i));
		level_overlap(v, l, &one, &c.gf, &c.ge);
		c.seqno = 0;
		for (size_t k = c.gf; k < c.ge; k++) {
			const struct sst_meta *t = meta_at(v, l, k);

			span_add(&grp, t);
			if (t->max_seqno > c.seqno)
				c.seqno = t->max_seqno;
		}
		gb = range_bytes(v, l, c.gf, c.ge);
		level_overlap(v, ol, &grp, &c.of, &c.oe);
		c.ob = range_bytes(v, ol, c.of, c.oe);
		c.over = c.ob > cap;
		c.ratio = (double)c.ob / (double)(gb ? gb : 1);
		if (!have || cand_better(&c, &best))
			best = c;
		have = true;
		/* groups partition the level; the next one starts where this one ends */
		i = c.ge > i ? c.ge : i + 1;
	}
	if (!have)
		return FR_OK;
	mark_range(m, l, best.gf, best.ge);
	mark_range(m, ol, best.of, best.oe);
	return emit(m, best.of == best.oe ? PICK_MOVE : PICK_MERGE, ol, score, out);
}

static fr_status pick_leveled(struct marks *m, const struct compact_policy *q,
			      struct compact_pick *out)
{
	const struct tree_version *v = m->v;
	double best = 0;
	int level = -1;

	if (v->level_cnt[0] >= q->l0_trigger) {
		best = (double)v->level_cnt[0] / q->l0_trigger;
		level = 0;
	}
	for (uint32_t l = 1; l < LAST_LEVEL; l++) {
		uint64_t bytes = level_bytes(v, l), target = level_target(q, l);
		double sc = (double)bytes / (double)target;

		if (bytes > target && sc > best) {
			best = sc;
			level = (int)l;
		}
	}
	if (level < 0)
		return FR_OK;
	if (level == 0)
		return leveled_l0(m, q, best, out);
	return leveled_level(m, q, (uint32_t)level, best, out);
}

/* ---- tiered ---- */

static uint64_t at_least_1(uint64_t n)
{
	return n ? n : 1;
}

/* The newest window of level_ratio or more consecutive level runs whose largest is under
 * level_ratio times the smallest; first and last are levels. A ratio wider than the level slots
 * asks for all of them. */
static bool tiered_window(const struct tree_version *v, uint32_t ratio, uint32_t *first,
			  uint32_t *last, double *score)
{
	uint32_t runs[LEVEL_CNT], k = 0, need = ratio < LAST_LEVEL ? ratio : LAST_LEVEL;
	uint64_t size[LEVEL_CNT];

	for (uint32_t l = 1; l < LEVEL_CNT; l++) {
		if (v->level_cnt[l]) {
			runs[k] = l;
			size[k++] = at_least_1(level_bytes(v, l));
		}
	}
	for (uint32_t i = 0; i < k; i++) {
		uint64_t mn = size[i], mx = size[i];
		uint32_t j = i;

		while (j + 1 < k) {
			uint64_t s = size[j + 1];
			uint64_t nmn = s < mn ? s : mn, nmx = s > mx ? s : mx;

			if (nmx >= sat_mul(nmn, ratio))
				break;
			mn = nmn;
			mx = nmx;
			j++;
		}
		if (j - i + 1 >= need) {
			*first = runs[i];
			*last = runs[j];
			*score = (double)(j - i + 1) / need;
			return true;
		}
	}
	return false;
}

static fr_status pick_tiered(struct marks *m, const struct compact_policy *q,
			     struct compact_pick *out)
{
	const struct tree_version *v = m->v;
	uint32_t f = first_nonempty(v, 1), wf, wl, ol;
	bool l0_due = v->level_cnt[0] >= q->l0_trigger;
	double l0_score = (double)v->level_cnt[0] / q->l0_trigger, ws;
	uint64_t acc;

	if (l0_due && f > 1) {
		/* a free slot above every level run: L0 becomes a run of its own */
		mark_level(m, 0);
		return emit(m, l0_disjoint(v) ? PICK_MOVE : PICK_MERGE, f - 1, l0_score, out);
	}
	if (tiered_window(v, q->level_ratio, &wf, &wl, &ws)) {
		for (uint32_t l = wf; l <= wl; l++)
			mark_level(m, l);
		return emit(m, PICK_MERGE, wl, ws, out);
	}
	if (!l0_due)
		return FR_OK;
	/* no free slot: L0 joins the run of L1 and sweeps along every run no larger than what
	 * the merge already holds */
	mark_level(m, 0);
	mark_level(m, 1);
	acc = level_bytes(v, 0) + level_bytes(v, 1);
	ol = 1;
	for (uint32_t l = 2; l < LEVEL_CNT; l++) {
		uint64_t b;

		if (!v->level_cnt[l])
			continue;
		b = level_bytes(v, l);
		if (b > acc)
			break;
		mark_level(m, l);
		acc += b;
		ol = l;
	}
	return emit(m, PICK_MERGE, ol, l0_score, out);
}

/* ---- FIFO ---- */

struct fifo_ent {
	const struct sst_meta *meta;
	size_t idx; /* into marks.sel */
};

static int fifo_cmp(const void *a, const void *b)
{
	const struct sst_meta *x = ((const struct fifo_ent *)a)->meta;
	const struct sst_meta *y = ((const struct fifo_ent *)b)->meta;

	if (x->max_seqno != y->max_seqno)
		return x->max_seqno < y->max_seqno ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static bool fifo_expired(const struct sst_meta *t, uint64_t ttl, uint64_t now_s)
{
	return ttl && t->created_s && now_s > ttl && t->created_s < now_s - ttl;
}

static fr_status pick_fifo(struct marks *m, const struct compact_policy *q, uint64_t now_s,
			   struct compact_pick *out)
{
	const struct tree_version *v = m->v;
	struct fifo_ent *e;
	uint64_t total = 0, rest;
	size_t k = 0, n;
	bool limited = false;
	double score = 1.0;

	if (!m->total)
		return FR_OK;
	e = fr_calloc(m->total, sizeof(*e));
	if (!e)
		return FR_NOMEM;
	for (uint32_t l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v->level_cnt[l]; i++) {
			e[k].meta = meta_at(v, l, i);
			e[k].idx = m->base[l] + i;
			total += e[k].meta->file_size;
			k++;
		}
	}
	qsort(e, k, sizeof(*e), fifo_cmp);
	/* one prefix for both rules, so that what is left satisfies both */
	rest = total;
	for (n = 0; n < k; n++) {
		bool over = q->fifo_limit_bytes && rest > q->fifo_limit_bytes;

		if (!over && !fifo_expired(e[n].meta, q->fifo_ttl_s, now_s))
			break;
		limited |= over;
		rest -= e[n].meta->file_size;
	}
	for (size_t i = 0; i < n; i++)
		m->sel[e[i].idx] = true;
	if (limited)
		score = (double)total / (double)q->fifo_limit_bytes;
	fr_free(e);
	return n ? emit(m, PICK_DROP, 0, score, out) : FR_OK;
}

/* ---- entry points ---- */

fr_status compact_pick(const struct tree_version *v, const struct compact_policy *p,
		       uint64_t now_s, bool major, struct compact_pick *out)
{
	struct compact_policy q;
	struct marks m;
	fr_status rc;

	memset(out, 0, sizeof(*out));
	out->kind = PICK_NONE;
	policy_norm(p, &q);
	out->target_size = q.table_target_size;
	rc = marks_init(&m, v);
	if (rc)
		return rc;
	if (!m.total)
		rc = FR_OK;
	else if (q.strategy == CS_FIFO)
		rc = pick_fifo(&m, &q, now_s, out);
	else if (major)
		rc = pick_major(&m, out);
	else if (q.strategy == CS_TIERED)
		rc = pick_tiered(&m, &q, out);
	else
		rc = pick_leveled(&m, &q, out);
	fr_free(m.sel);
	if (rc) {
		compact_pick_fini(out);
		out->target_size = q.table_target_size;
	}
	return rc;
}

void compact_pick_fini(struct compact_pick *pk)
{
	if (!pk)
		return;
	fr_free(pk->in);
	memset(pk, 0, sizeof(*pk));
	pk->kind = PICK_NONE;
}
