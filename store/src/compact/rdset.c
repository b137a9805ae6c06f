/* SPDX-License-Identifier: MIT */
/*
 * rdset.c - fragmenting range tombstones: the sorted distinct boundaries (every start and end)
 * cut the key space into elementary intervals; each interval keeps the seqnos of the tombstones
 * covering it, newest first.
 */
#include "compact/rdset.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/coding.h"
#include "base/ikey.h"

struct bound {
	const uint8_t *k;
	size_t len;
};

struct frag {
	uint64_t *seqnos; /* descending */
	size_t cnt;
};

struct rdset {
	struct range_del *rds; /* sorted by start; keys point into mem */
	size_t rd_cnt;
	struct bound *bounds;  /* sorted, distinct */
	size_t bound_cnt;
	struct frag *frags;    /* frags[i] covers [bounds[i], bounds[i+1]) */
	uint8_t *mem;
};

static int bound_cmp(const void *a, const void *b)
{
	const struct bound *x = a, *y = b;
	return bytes_cmp(x->k, x->len, y->k, y->len);
}

static int rd_cmp(const void *a, const void *b)
{
	const struct range_del *x = a, *y = b;
	int c = bytes_cmp(x->start, x->start_len, y->start, y->start_len);
	if (c)
		return c;
	return x->seqno > y->seqno ? -1 : x->seqno < y->seqno;
}

static int u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

/* index of the last bound <= k, or -1 */
static long bound_floor(const struct rdset *s, const uint8_t *k, size_t len)
{
	long lo = 0, hi = (long)s->bound_cnt - 1, ans = -1;
	while (lo <= hi) {
		long mid = lo + (hi - lo) / 2;
		if (bytes_cmp(s->bounds[mid].k, s->bounds[mid].len, k, len) <= 0) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

void rdset_free(struct rdset *s)
{
	if (!s)
		return;
	if (s->frags)
		for (size_t i = 0; i < s->bound_cnt; i++)
			fr_free(s->frags[i].seqnos);
	fr_free(s->frags);
	fr_free(s->bounds);
	fr_free(s->rds);
	fr_free(s->mem);
	fr_free(s);
}

fr_status rdset_new(const struct range_del *rds, size_t cnt, struct rdset **out)
{
	*out = NULL;
	size_t valid = 0, bytes = 0;
	for (size_t i = 0; i < cnt; i++) {
		if (bytes_cmp(rds[i].start, rds[i].start_len, rds[i].end, rds[i].end_len) >= 0)
			continue; /* empty range */
		valid++;
		bytes += rds[i].start_len + rds[i].end_len;
	}
	if (!valid)
		return FR_OK;
	struct rdset *s = fr_calloc(1, sizeof(*s));
	if (!s)
		return FR_NOMEM;
	s->rds = fr_calloc(valid, sizeof(*s->rds));
	s->mem = fr_malloc(bytes);
	s->bounds = fr_calloc(valid * 2, sizeof(*s->bounds));
	if (!s->rds || !s->mem || !s->bounds)
		goto out_nomem;
	uint8_t *p = s->mem;
	for (size_t i = 0; i < cnt; i++) {
		const struct range_del *r = &rds[i];
		if (bytes_cmp(r->start, r->start_len, r->end, r->end_len) >= 0)
			continue;
		struct range_del *d = &s->rds[s->rd_cnt++];
		memcpy(p, r->start, r->start_len);
		d->start = p;
		d->start_len = r->start_len;
		p += r->start_len;
		memcpy(p, r->end, r->end_len);
		d->end = p;
		d->end_len = r->end_len;
		p += r->end_len;
		d->seqno = r->seqno;
		s->bounds[s->bound_cnt++] = (struct bound){d->start, d->start_len};
		s->bounds[s->bound_cnt++] = (struct bound){d->end, d->end_len};
	}
	qsort(s->rds, s->rd_cnt, sizeof(*s->rds), rd_cmp);
	qsort(s->bounds, s->bound_cnt, sizeof(*s->bounds), bound_cmp);
	size_t n = 0;
	for (size_t i = 0; i < s->bound_cnt; i++)
		if (!n || bound_cmp(&s->bounds[n - 1], &s->bounds[i]))
			s->bounds[n++] = s->bounds[i];
	s->bound_cnt = n;
	s->frags = fr_calloc(n, sizeof(*s->frags));
	if (!s->frags)
		goto out_nomem;
	/* count, then fill, the seqnos of each fragment */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < s->rd_cnt; i++) {
			const struct range_del *d = &s->rds[i];
			long a = bound_floor(s, d->start, d->start_len);
			long b = bound_floor(s, d->end, d->end_len);
			for (long f = a; f < b; f++) {
				if (pass)
					s->frags[f].seqnos[s->frags[f].cnt++] = d->seqno;
				else
					s->frags[f].cnt++;
			}
		}
		if (pass)
			break;
		for (size_t f = 0; f < n; f++) {
			if (s->frags[f].cnt) {
				s->frags[f].seqnos = fr_calloc(s->frags[f].cnt, sizeof(uint64_t));
				if (!s->frags[f].seqnos)
					goto out_nomem;
			}
			s->frags[f].cnt = 0;
		}
	}
	for (size_t f = 0; f < n; f++)
		if (s->frags[f].cnt > 1) /* seqnos is NULL when cnt is 0: qsort wants non-NULL */
			qsort(s->frags[f].seqnos, s->frags[f].cnt, sizeof(uint64_t), u64_desc);
	*out = s;
	return FR_OK;
out_nomem:
	rdset_free(s);
	return FR_NOMEM;
}

uint64_t rdset_max_cover(const struct rdset *s, const uint8_t *k, size_t klen, uint64_t snap)
{
	if (!s)
		return 0;
	long f = bound_floor(s, k, klen);
	if (f < 0 || (size_t)f + 1 >= s->bound_cnt)
		return 0;
	const struct frag *fr = &s->frags[f];
	for (size_t i = 0; i < fr->cnt; i++)
		if (fr->seqnos[i] <= snap)
			return fr->seqnos[i];
	return 0;
}

size_t rdset_all(const struct rdset *s, const struct range_del **out)
{
	*out = s ? s->rds : NULL;
	return s ? s->rd_cnt : 0;
}
