/* SPDX-License-Identifier: MIT */
/*
 * test_model.c - the randomized model test: random operations from a printed seed (FR_SEED
 * repeats one; FR_MODEL_OPS sets how many, default 200000) applied to the engine and to an
 * in-memory model (a sorted array per keyspace), comparing every read. Four keyspaces: two in
 * trees of their own, two sharing a tree. Operations: put (small and occasional 10 KiB values,
 * keys from a small space so that overwrites happen), remove, weak remove (only of keys written
 * exactly once since their last delete, the documented use), range delete, clear, batches over
 * several keyspaces with repeated keys, point reads, snapshots (up to three, each with a frozen
 * copy of the model, read later), iterators (bounds, prefix, reverse, seek), first/last/len.
 * Every ~20k operations: a flush, a major compaction or a close and reopen (which may switch
 * background work on or off). Memtables are 64 KiB so there are many tables and compactions.
 * Compaction strategies: own0 and the shared tree are leveled (small tables and a small level
 * ratio, so data spreads over several levels and moves down often), own1 is tiered; own0 and
 * the shared tree have hash indexes in their data blocks.
 *
 * On a mismatch the test prints the seed, the operation number, the key, what it expected and
 * what it got, the history of operations on that key and the versions the engine holds.
 * Background work makes the engine's timing differ from run to run, so a seed does not always
 * replay a failure exactly; FR_MODEL_INLINE=1 runs without the background thread, and then it
 * does.
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
#include <time.h>

#include "base/ikey.h"
#include "base/kv_iter.h"
#include "db/db.h"
#include "fractio.h"
#include "memtable/memtable.h"
#include "sst/sst.h"
#include "testutil.h"
#include "version/version.h"

#define KS_CNT 4
#define SNAP_MAX 3
#define KEY_SPACE 3000 /* key indexes per keyspace */
#define HOT_KEYS 300   /* half the picks come from these */
#define ROUND_OPS 20000

static const char *const ks_names[KS_CNT] = {"own0", "own1", "sh0", "sh1"};
static const char *const ks_trees[KS_CNT] = {NULL, NULL, "shared", "shared"};

/* ---- refcounted byte strings ---- */

struct blob {
	uint32_t refs;
	uint32_t len;
	uint8_t d[];
};

static struct blob *blob_new(const void *p, size_t n)
{
	struct blob *b = malloc(sizeof(*b) + n + 1);
	assert_non_null(b);
	b->refs = 1;
	b->len = (uint32_t)n;
	if (n && p)
		memcpy(b->d, p, n);
	return b;
}

static struct blob *blob_ref(struct blob *b)
{
	if (b)
		b->refs++;
	return b;
}

static void blob_unref(struct blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

static int bcmp_(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static bool has_prefix(const struct blob *k, const uint8_t *p, size_t pl)
{
	return k->len >= pl && (!pl || !memcmp(k->d, p, pl));
}

/* ---- the model: a sorted array per keyspace ---- */

struct ment {
	struct blob *k, *v;
	uint32_t writes; /* writes since the key's last delete */
};

struct model {
	struct ment *e;
	size_t n, cap;
};

/* first index whose key >= k */
static size_t m_lower(const struct model *m, const void *k, size_t kl)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (bcmp_(m->e[mid].k->d, m->e[mid].k->len, k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* first index whose key > k */
static size_t m_upper(const struct model *m, const void *k, size_t kl)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (bcmp_(m->e[mid].k->d, m->e[mid].k->len, k, kl) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct ment *m_find(const struct model *m, const void *k, size_t kl)
{
	size_t i = m_lower(m, k, kl);
	if (i < m->n && !bcmp_(m->e[i].k->d, m->e[i].k->len, k, kl))
		return &m->e[i];
	return NULL;
}

static void m_put(struct model *m, struct blob *k, struct blob *v)
{
	size_t i = m_lower(m, k->d, k->len);
	if (i < m->n && !bcmp_(m->e[i].k->d, m->e[i].k->len, k->d, k->len)) {
		blob_unref(m->e[i].v);
		m->e[i].v = blob_ref(v);
		m->e[i].writes++;
		return;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		assert_non_null(m->e);
	}
	memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof(*m->e));
	m->e[i] = (struct ment){blob_ref(k), blob_ref(v), 1};
	m->n++;
}

static void m_remove_at(struct model *m, size_t i, size_t j)
{
	for (size_t x = i; x < j; x++) {
		blob_unref(m->e[x].k);
		blob_unref(m->e[x].v);
	}
	if (m->n > j)
		memmove(m->e + i, m->e + j, (m->n - j) * sizeof(*m->e));
	m->n -= j - i;
}

static void m_del(struct model *m, const void *k, size_t kl)
{
	size_t i = m_lower(m, k, kl);
	if (i < m->n && !bcmp_(m->e[i].k->d, m->e[i].k->len, k, kl))
		m_remove_at(m, i, i + 1);
}

static void m_del_range(struct model *m, const void *lo, size_t lol, const void *hi, size_t hil)
{
	if (bcmp_(lo, lol, hi, hil) >= 0)
		return;
	m_remove_at(m, m_lower(m, lo, lol), m_lower(m, hi, hil));
}

static void m_copy(struct model *dst, const struct model *src)
{
	dst->n = dst->cap = src->n;
	dst->e = malloc((src->n + 1) * sizeof(*dst->e));
	assert_non_null(dst->e);
	for (size_t i = 0; i < src->n; i++) {
		dst->e[i] = src->e[i];
		blob_ref(dst->e[i].k);
		blob_ref(dst->e[i].v);
	}
}

static void m_free(struct model *m)
{
	m_remove_at(m, 0, m->n);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- the operation log, printed for the key of a mismatch ---- */

enum {
	L_PUT,
	L_DEL,
	L_WEAK,
	L_RANGE,
	L_CLEAR,
	L_FLUSH,
	L_COMPACT,
	L_REOPEN,
	L_SNAP_OPEN,
	L_SNAP_CLOSE,
};
static const char *const log_names[] = {"put",   "remove",  "remove_weak", "delete_range",
					"clear", "flush",   "major_compact", "reopen",
					"snapshot_open", "snapshot_close"};

struct logrec {
	uint64_t op;
	uint64_t batch;   /* batch number, 0 for a single operation */
	uint64_t seqno;   /* snapshot seqno for L_SNAP_* */
	struct blob *k;   /* key, range start */
	struct blob *k2;  /* range end */
	uint32_t vlen;
	uint8_t kind;
	uint8_t ks;
	uint8_t vbyte;    /* first value byte */
};

struct snapm {
	fr_snapshot *s;
	struct model m[KS_CNT];
	uint64_t op;
};

struct ctx {
	uint64_t seed;
	uint64_t rng;
	uint64_t op;
	uint64_t ops;
	uint64_t batch_no;
	char *dir;
	fr_db_options o;
	fr_db *db;
	fr_keyspace *ks[KS_CNT];
	struct model m[KS_CNT];
	struct snapm snaps[SNAP_MAX];
	size_t snap_cnt;
	struct logrec *log;
	size_t log_cnt, log_cap;
	fr_error err;
	uint64_t cnt[16]; /* per kind of check, for the summary */
	bool inline_only; /* FR_MODEL_INLINE: no background thread, so a seed replays exactly */
};

enum { C_GET, C_ITER, C_ITER_ENTRIES, C_SNAP_READ, C_EDGE, C_WEAK, C_BATCH, C_ROUND };

static uint64_t rnd(struct ctx *c, uint64_t n)
{
	return tu_rand_below(&c->rng, n);
}

static void log_add(struct ctx *c, uint8_t kind, int ks, struct blob *k, struct blob *k2,
		    const struct blob *v, uint64_t batch)
{
	if (c->log_cnt == c->log_cap) {
		c->log_cap = c->log_cap ? c->log_cap * 2 : 4096;
		c->log = realloc(c->log, c->log_cap * sizeof(*c->log));
		assert_non_null(c->log);
	}
	c->log[c->log_cnt++] = (struct logrec){
		.op = c->op,
		.batch = batch,
		.k = blob_ref(k),
		.k2 = blob_ref(k2),
		.vlen = v ? v->len : 0,
		.vbyte = v && v->len ? v->d[0] : 0,
		.kind = kind,
		.ks = (uint8_t)ks,
		.seqno = c->db ? fr_db_seqno(c->db) : 0,
	};
}

static void log_free(struct ctx *c)
{
	for (size_t i = 0; i < c->log_cnt; i++) {
		blob_unref(c->log[i].k);
		blob_unref(c->log[i].k2);
	}
	free(c->log);
	c->log = NULL;
	c->log_cnt = c->log_cap = 0;
}

static void hex(char *out, size_t cap, const void *p, size_t n)
{
	const uint8_t *d = p;
	size_t o = 0, show = n > 40 ? 40 : n;
	if (!p) {
		snprintf(out, cap, "(absent)");
		return;
	}
	for (size_t i = 0; i < show && o + 8 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%02x", d[i]);
	snprintf(out + o, cap - o, "%s (%zu bytes)", n > show ? "..." : "", n);
}

/* ---- on failure: every stored version of a key, from the engine's internals ---- */

static void dump_versions(const char *src, struct kv_iter *it, const uint8_t *tk, size_t tkl)
{
	uint8_t ik[KS_PREFIX_LEN + 64 + IKEY_TRAILER_LEN];
	if (!it || tkl > KS_PREFIX_LEN + 64)
		return;
	ikey_encode(ik, tk, tkl, SEQNO_MAX, VT_SEEK);
	for (kv_seek(it, ik, tkl + IKEY_TRAILER_LEN); it->valid; kv_next(it)) {
		if (ikey_user_len(it->key_len) != tkl || memcmp(it->key, tk, tkl))
			break;
		uint8_t type = ikey_type(it->key, it->key_len);
		fprintf(stderr, "    %s: seqno %llu %s", src,
			(unsigned long long)ikey_seqno(it->key, it->key_len),
			type == VT_PUT ? "put" : type == VT_DEL ? "del" : "weak_del");
		if (type == VT_PUT)
			fprintf(stderr, " value %zu bytes starting %02x", it->val_len,
				it->val_len ? it->val[0] : 0);
		fprintf(stderr, "\n");
	}
}

struct rd_dump {
	const uint8_t *tk;
	size_t tkl;
	const char *src;
};

static void rd_dump_fn(void *ctx, const struct range_del *rd)
{
	const struct rd_dump *d = ctx;
	if (bcmp_(rd->start, rd->start_len, d->tk, d->tkl) <= 0 &&
	    bcmp_(d->tk, d->tkl, rd->end, rd->end_len) < 0)
		fprintf(stderr, "    %s: range tombstone seqno %llu covers it\n", d->src,
			(unsigned long long)rd->seqno);
}

static void dump_key(struct ctx *c, int ks, const void *key, size_t kl)
{
	fr_keyspace *k = c->ks[ks];
	uint8_t tk[KS_PREFIX_LEN + 64];
	if (!k || kl > 64)
		return;
	memcpy(tk, k->prefix, KS_PREFIX_LEN);
	memcpy(tk + KS_PREFIX_LEN, key, kl);
	size_t tkl = KS_PREFIX_LEN + kl;
	struct read_view v;
	if (tree_view(c->db, k->tree, &v))
		return;
	fprintf(stderr, "  engine state (visible seqno %llu, open snapshots:",
		(unsigned long long)fr_db_seqno(c->db));
	for (size_t i = 0; i < c->snap_cnt; i++)
		fprintf(stderr, " %llu", (unsigned long long)fr_snapshot_seqno(c->snaps[i].s));
	fprintf(stderr, "):\n");
	char src[64];
	for (size_t i = 0; i < v.mem_cnt; i++) {
		snprintf(src, sizeof(src), "memtable %zu", i);
		struct kv_iter *it = mem_iter_new(v.mems[i]);
		dump_versions(src, it, tk, tkl);
		kv_free(it);
		struct rd_dump d = {tk, tkl, src};
		mem_range_dels_each(v.mems[i], rd_dump_fn, &d);
	}
	for (int l = 0; l < LEVEL_CNT; l++) {
		for (size_t i = 0; i < v.ver->level_cnt[l]; i++) {
			struct table *tb = v.ver->levels[l][i];
			struct sst_reader *r;
			struct kv_iter *it = NULL;
			fr_error e;
			if (table_reader(tb, &r, &e))
				continue;
			snprintf(src, sizeof(src), "L%d table %llu", l,
				 (unsigned long long)tb->meta.id);
			if (!sst_iter_new(r, &it, &e)) {
				dump_versions(src, it, tk, tkl);
				kv_free(it);
			}
			const struct range_del *rds;
			size_t n = sst_reader_range_dels(r, &rds);
			struct rd_dump d = {tk, tkl, src};
			for (size_t j = 0; j < n; j++)
				rd_dump_fn(&d, &rds[j]);
			sst_reader_unref(r);
		}
	}
	read_view_release(&v);
}

/* what the running iterator check asked for, printed on a mismatch */
static char iter_desc[512];

/* Prints what happened to (ks, key) and fails. */
static void mismatch(struct ctx *c, int ks, const void *key, size_t kl, const char *what,
		     const void *want, size_t want_len, const void *got, size_t got_len)
{
	char kh[128], wh[128], gh[128];
	hex(kh, sizeof(kh), key, kl);
	hex(wh, sizeof(wh), want, want_len);
	hex(gh, sizeof(gh), got, got_len);
	bool snaps = strstr(what, "snapshot") != NULL;
	fprintf(stderr, "history of %s key %s (and rounds%s), newest first:\n", ks_names[ks], kh,
		snaps ? ", snapshots" : "");
	size_t shown = 0;
	for (size_t i = c->log_cnt; i-- > 0 && shown < 200;) {
		const struct logrec *r = &c->log[i];
		bool rel;
		if (r->kind >= L_SNAP_OPEN)
			rel = snaps;
		else if (r->kind >= L_FLUSH)
			rel = true;
		else if (r->ks != ks)
			rel = false;
		else if (r->kind == L_RANGE)
			rel = bcmp_(r->k->d, r->k->len, key, kl) <= 0 &&
			      bcmp_(key, kl, r->k2->d, r->k2->len) < 0;
		else
			rel = r->kind == L_CLEAR || !bcmp_(r->k->d, r->k->len, key, kl);
		if (!rel)
			continue;
		shown++;
		char a[128] = "", b[128] = "";
		if (r->kind == L_RANGE) {
			hex(a, sizeof(a), r->k->d, r->k->len);
			hex(b, sizeof(b), r->k2->d, r->k2->len);
		}
		fprintf(stderr, "  op %llu%s%.0llu %s %s%s%s%s", (unsigned long long)r->op,
			r->batch ? " batch " : "", (unsigned long long)r->batch,
			log_names[r->kind], r->kind < L_FLUSH ? ks_names[r->ks] : "", a,
			r->kind == L_RANGE ? " .. " : "", b);
		if (r->kind == L_PUT)
			fprintf(stderr, " value %u bytes starting %02x", r->vlen, r->vbyte);
		fprintf(stderr, " (seqno %llu%s)", (unsigned long long)r->seqno,
			r->kind < L_FLUSH ? " after" : "");
		fprintf(stderr, "\n");
	}
	dump_key(c, ks, key, kl);
	if (iter_desc[0])
		fprintf(stderr, "  iterator: %s\n", iter_desc);
	fail_msg("seed %llu op %llu keyspace %s: %s: key %s: expected %s, got %s (FR_SEED=%llu "
		 "repeats the run)",
		 (unsigned long long)c->seed, (unsigned long long)c->op, ks_names[ks], what, kh,
		 wh, gh, (unsigned long long)c->seed);
}

#define CHECK_OK(c, call)                                                                  \
	do {                                                                               \
		fr_status rc_ = (call);                                                    \
		if (rc_ != FR_OK)                                                          \
			fail_msg("seed %llu op %llu: %s -> %s: %s",                        \
				 (unsigned long long)(c)->seed, (unsigned long long)(c)->op, \
				 #call, fr_status_str(rc_), (c)->err.msg);                  \
	} while (0)

/* ---- keys and values ---- */

#define KEY_BUF 32

/* Binary keys sharing prefixes, with 0x00 and 0xff bytes in them. */
static size_t make_key(uint32_t idx, uint8_t *out)
{
	static const uint8_t first[5] = {0x00, 'a', 'b', 0x7f, 0xff};
	size_t n = 0;
	out[n++] = first[idx % 5];
	n += (size_t)snprintf((char *)out + n, KEY_BUF - n, "%u", idx / 5);
	if (idx % 3 == 0)
		out[n++] = 0xff;
	if (idx % 7 == 0)
		out[n++] = 0x00;
	return n;
}

static struct blob *rand_key(struct ctx *c)
{
	uint8_t k[KEY_BUF];
	uint32_t idx = (uint32_t)(rnd(c, 2) ? rnd(c, HOT_KEYS) : rnd(c, KEY_SPACE));
	return blob_new(k, make_key(idx, k));
}

/* a bound: a key, a prefix of one, or a key with an extra byte */
static struct blob *rand_bound(struct ctx *c)
{
	uint8_t k[KEY_BUF + 1];
	size_t n = make_key((uint32_t)rnd(c, KEY_SPACE), k);
	switch (rnd(c, 6)) {
	case 0:
		n = rnd(c, n + 1);
		break;
	case 1:
		k[n++] = (uint8_t)rnd(c, 256);
		break;
	case 2:
		n = 1 + rnd(c, 2);
		break;
	default:
		break;
	}
	return blob_new(k, n);
}

static struct blob *rand_val(struct ctx *c)
{
	size_t n = rnd(c, 1000) < 8 ? 10240 + rnd(c, 200) : rnd(c, 301);
	struct blob *v = blob_new(NULL, n);
	uint64_t st = tu_rand(&c->rng) | 1;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t x = tu_rand(&st);
		size_t m = n - i < 8 ? n - i : 8;
		memcpy(v->d + i, &x, m);
	}
	return v;
}

/* ---- checks ---- */

static void check_get(struct ctx *c, int ks, const struct snapm *sm, const struct blob *k)
{
	const struct model *m = sm ? &sm->m[ks] : &c->m[ks];
	const struct ment *e = m_find(m, k->d, k->len);
	void *v = NULL;
	size_t vl = 0;
	fr_status rc;
	bool has = false;
	bool use_contains = rnd(c, 4) == 0;
	if (use_contains) {
		rc = sm ? fr_snapshot_contains(sm->s, c->ks[ks], k->d, k->len, &has, &c->err)
			: fr_contains(c->ks[ks], k->d, k->len, &has, &c->err);
		CHECK_OK(c, rc);
		if (has != (e != NULL))
			mismatch(c, ks, k->d, k->len,
				 sm ? "fr_snapshot_contains" : "fr_contains", e ? e->v->d : NULL,
				 e ? e->v->len : 0, has ? "" : NULL, 0);
		return;
	}
	rc = sm ? fr_snapshot_get(sm->s, c->ks[ks], k->d, k->len, &v, &vl, &c->err)
		: fr_get(c->ks[ks], k->d, k->len, &v, &vl, &c->err);
	if (rc != FR_OK && rc != FR_NOT_FOUND)
		CHECK_OK(c, rc);
	const char *what = sm ? "fr_snapshot_get" : "fr_get";
	if (!e && rc == FR_OK)
		mismatch(c, ks, k->d, k->len, what, NULL, 0, v, vl);
	if (e && rc != FR_OK)
		mismatch(c, ks, k->d, k->len, what, e->v->d, e->v->len, NULL, 0);
	if (e && (vl != e->v->len || (vl && memcmp(v, e->v->d, vl))))
		mismatch(c, ks, k->d, k->len, what, e->v->d, e->v->len, v, vl);
	fr_free(v);
	c->cnt[sm ? C_SNAP_READ : C_GET]++;
}

/* Compares the iterator from its current position with model entries [pos, end) walked in
 * the iterator's direction (reverse: from end-1 down to pos... given as a range). At most
 * limit entries (SIZE_MAX: all, and the iterator must end there). */
static void cmp_iter(struct ctx *c, int ks, fr_iter *it, const struct model *m, size_t lo,
		     size_t hi, bool reverse, size_t limit, const char *what)
{
	size_t cnt = hi > lo ? hi - lo : 0;
	size_t n = 0;
	for (; n < cnt && n < limit; n++) {
		const struct ment *e = &m->e[reverse ? hi - 1 - n : lo + n];
		if (!fr_iter_valid(it))
			mismatch(c, ks, e->k->d, e->k->len, what, e->v->d, e->v->len, NULL, 0);
		size_t kl, vl;
		const void *k = fr_iter_key(it, &kl);
		const void *v = fr_iter_value(it, &vl);
		if (bcmp_(k, kl, e->k->d, e->k->len)) {
			char gk[128];
			hex(gk, sizeof(gk), k, kl);
			fprintf(stderr, "iterator at %zu of %zu is at key %s\n", n, cnt, gk);
			/* report the key the engine skipped or invented */
			if (bcmp_(k, kl, e->k->d, e->k->len) * (reverse ? -1 : 1) > 0)
				mismatch(c, ks, e->k->d, e->k->len, what, e->v->d, e->v->len, NULL,
					 0);
			mismatch(c, ks, k, kl, what, NULL, 0, v, vl);
		}
		if (vl != e->v->len || (vl && memcmp(v, e->v->d, vl)))
			mismatch(c, ks, k, kl, what, e->v->d, e->v->len, v, vl);
		CHECK_OK(c, fr_iter_next(it, &c->err));
		c->cnt[C_ITER_ENTRIES]++;
	}
	if (limit == SIZE_MAX && fr_iter_valid(it)) {
		size_t kl, vl;
		const void *k = fr_iter_key(it, &kl);
		const void *v = fr_iter_value(it, &vl);
		mismatch(c, ks, k, kl, what, NULL, 0, v, vl);
	}
}

static void check_iter(struct ctx *c, int ks, const struct snapm *sm)
{
	const struct model *m = sm ? &sm->m[ks] : &c->m[ks];
	struct blob *lower = NULL, *upper = NULL, *prefix = NULL, *seek = NULL;
	fr_iter_options o = {.reverse = rnd(c, 2), .snapshot = sm ? sm->s : NULL};
	switch (rnd(c, 8)) {
	case 0:
	case 1:
		break; /* everything */
	case 2:
		lower = rand_bound(c);
		break;
	case 3:
		upper = rand_bound(c);
		break;
	case 4:
	case 5:
		lower = rand_bound(c);
		upper = rand_bound(c);
		if (rnd(c, 8) && bcmp_(lower->d, lower->len, upper->d, upper->len) > 0) {
			struct blob *t = lower;
			lower = upper;
			upper = t;
		}
		break;
	case 6:
		prefix = rand_bound(c);
		if (prefix->len > 3)
			prefix->len = 1 + (uint32_t)rnd(c, 3);
		break;
	default:
		prefix = rand_bound(c);
		if (prefix->len > 2)
			prefix->len = 2;
		lower = rand_bound(c);
		break;
	}
	if (lower) {
		o.lower = lower->d;
		o.lower_len = lower->len;
	}
	if (upper) {
		o.upper = upper->d;
		o.upper_len = upper->len;
	}
	if (prefix) {
		o.prefix = prefix->d;
		o.prefix_len = prefix->len;
	}
	/* the model's answer: the contiguous index range [lo, hi) */
	size_t lo = lower ? m_lower(m, lower->d, lower->len) : 0;
	size_t hi = upper ? m_lower(m, upper->d, upper->len) : m->n;
	if (prefix) {
		size_t p = m_lower(m, prefix->d, prefix->len);
		size_t q = p;
		while (q < m->n && has_prefix(m->e[q].k, prefix->d, prefix->len))
			q++;
		if (p > lo)
			lo = p;
		if (q < hi)
			hi = q;
	}
	char lh[128] = "-", uh[128] = "-", ph[128] = "-", sh[128] = "";
	if (lower)
		hex(lh, sizeof(lh), lower->d, lower->len);
	if (upper)
		hex(uh, sizeof(uh), upper->d, upper->len);
	if (prefix)
		hex(ph, sizeof(ph), prefix->d, prefix->len);
	snprintf(iter_desc, sizeof(iter_desc), "%s lower %s upper %s prefix %s snapshot %llu",
		 o.reverse ? "reverse" : "forward", lh, uh, ph,
		 sm ? (unsigned long long)fr_snapshot_seqno(sm->s) : 0ull);
	fr_iter *it;
	CHECK_OK(c, fr_iter_open(c->ks[ks], &o, &it, &c->err));
	const char *what = sm ? "iterator at a snapshot" : "iterator";
	size_t limit = rnd(c, 3) ? SIZE_MAX : rnd(c, 30);
	cmp_iter(c, ks, it, m, lo, hi, o.reverse, limit, what);
	if (limit != SIZE_MAX) {
		/* seek somewhere and compare from there */
		seek = rand_bound(c);
		hex(sh, sizeof(sh), seek->d, seek->len);
		size_t dl = strlen(iter_desc);
		snprintf(iter_desc + dl, sizeof(iter_desc) - dl, ", after %zu entries seek %s",
			 limit, sh);
		CHECK_OK(c, fr_iter_seek(it, seek->d, seek->len, &c->err));
		size_t a = lo, b = hi;
		if (!o.reverse) {
			size_t s = m_lower(m, seek->d, seek->len);
			if (s > a)
				a = s;
		} else {
			size_t s = m_upper(m, seek->d, seek->len);
			if (s < b)
				b = s;
		}
		cmp_iter(c, ks, it, m, a, b, o.reverse, rnd(c, 2) ? SIZE_MAX : 50,
			 sm ? "iterator at a snapshot after seek" : "iterator after seek");
	}
	fr_iter_close(it);
	iter_desc[0] = 0;
	blob_unref(lower);
	blob_unref(upper);
	blob_unref(prefix);
	blob_unref(seek);
	c->cnt[C_ITER]++;
}

static void check_edges(struct ctx *c, int ks)
{
	const struct model *m = &c->m[ks];
	for (int last = 0; last < 2; last++) {
		void *k = NULL, *v = NULL;
		size_t kl = 0, vl = 0;
		fr_status rc = last ? fr_last(c->ks[ks], &k, &kl, &v, &vl, &c->err)
				    : fr_first(c->ks[ks], &k, &kl, &v, &vl, &c->err);
		const char *what = last ? "fr_last" : "fr_first";
		if (rc != FR_OK && rc != FR_NOT_FOUND)
			CHECK_OK(c, rc);
		if (!m->n) {
			if (rc == FR_OK)
				mismatch(c, ks, k, kl, what, NULL, 0, v, vl);
			continue;
		}
		const struct ment *e = &m->e[last ? m->n - 1 : 0];
		if (rc != FR_OK || bcmp_(k, kl, e->k->d, e->k->len) || vl != e->v->len ||
		    (vl && memcmp(v, e->v->d, vl)))
			mismatch(c, ks, e->k->d, e->k->len, what, e->v->d, e->v->len,
				 rc ? NULL : v, vl);
		fr_free(k);
		fr_free(v);
	}
	uint64_t n = 0;
	CHECK_OK(c, fr_len(c->ks[ks], &n, &c->err));
	if (n != m->n)
		fail_msg("seed %llu op %llu keyspace %s: fr_len %llu, model %zu",
			 (unsigned long long)c->seed, (unsigned long long)c->op, ks_names[ks],
			 (unsigned long long)n, m->n);
	uint64_t approx = fr_approximate_len(c->ks[ks]);
	if (approx < n)
		fail_msg("seed %llu op %llu keyspace %s: fr_approximate_len %llu < fr_len %llu",
			 (unsigned long long)c->seed, (unsigned long long)c->op, ks_names[ks],
			 (unsigned long long)approx, (unsigned long long)n);
	c->cnt[C_EDGE]++;
}

/* Every entry of every keyspace, both directions. */
static void check_all(struct ctx *c)
{
	for (int ks = 0; ks < KS_CNT; ks++) {
		for (int rev = 0; rev < 2; rev++) {
			fr_iter_options o = {.reverse = rev};
			fr_iter *it;
			CHECK_OK(c, fr_iter_open(c->ks[ks], &o, &it, &c->err));
			cmp_iter(c, ks, it, &c->m[ks], 0, c->m[ks].n, rev, SIZE_MAX,
				 "full iteration");
			fr_iter_close(it);
		}
		check_edges(c, ks);
	}
}

/* ---- snapshots ---- */

static void m_snap_open(struct ctx *c)
{
	struct snapm *sm = &c->snaps[c->snap_cnt];
	CHECK_OK(c, fr_snapshot_open(c->db, &sm->s, &c->err));
	for (int ks = 0; ks < KS_CNT; ks++)
		m_copy(&sm->m[ks], &c->m[ks]);
	sm->op = c->op;
	c->snap_cnt++;
	log_add(c, L_SNAP_OPEN, 0, NULL, NULL, NULL, 0);
	c->log[c->log_cnt - 1].seqno = fr_snapshot_seqno(sm->s);
}

static void m_snap_verify(struct ctx *c, struct snapm *sm, int reads)
{
	for (int i = 0; i < reads; i++) {
		int ks = (int)rnd(c, KS_CNT);
		const struct model *m = &sm->m[ks];
		struct blob *k;
		if (m->n && rnd(c, 2))
			k = blob_ref(m->e[rnd(c, m->n)].k);
		else
			k = rand_key(c);
		check_get(c, ks, sm, k);
		blob_unref(k);
	}
	check_iter(c, (int)rnd(c, KS_CNT), sm);
}

static void m_snap_close(struct ctx *c, size_t i)
{
	struct snapm *sm = &c->snaps[i];
	log_add(c, L_SNAP_CLOSE, 0, NULL, NULL, NULL, 0);
	c->log[c->log_cnt - 1].seqno = fr_snapshot_seqno(sm->s);
	fr_snapshot_close(sm->s);
	for (int ks = 0; ks < KS_CNT; ks++)
		m_free(&sm->m[ks]);
	c->snaps[i] = c->snaps[--c->snap_cnt];
}

/* ---- writes ---- */

static void do_put(struct ctx *c, int ks)
{
	struct blob *k = rand_key(c), *v = rand_val(c);
	CHECK_OK(c, fr_put(c->ks[ks], k->d, k->len, v->d, v->len, &c->err));
	m_put(&c->m[ks], k, v);
	log_add(c, L_PUT, ks, k, NULL, v, 0);
	blob_unref(k);
	blob_unref(v);
}

static void do_remove(struct ctx *c, int ks)
{
	struct model *m = &c->m[ks];
	struct blob *k = m->n && rnd(c, 4) ? blob_ref(m->e[rnd(c, m->n)].k) : rand_key(c);
	CHECK_OK(c, fr_remove(c->ks[ks], k->d, k->len, &c->err));
	log_add(c, L_DEL, ks, k, NULL, NULL, 0);
	m_del(m, k->d, k->len);
	blob_unref(k);
}

/* A key written exactly once since its last delete, or NULL. */
static struct blob *weak_candidate(struct ctx *c, const struct model *m)
{
	for (int t = 0; t < 16 && m->n; t++) {
		const struct ment *e = &m->e[rnd(c, m->n)];
		if (e->writes == 1)
			return blob_ref(e->k);
	}
	return NULL;
}

static void do_remove_weak(struct ctx *c, int ks)
{
	struct model *m = &c->m[ks];
	struct blob *k = weak_candidate(c, m);
	if (!k) {
		do_put(c, ks);
		return;
	}
	CHECK_OK(c, fr_remove_weak(c->ks[ks], k->d, k->len, &c->err));
	log_add(c, L_WEAK, ks, k, NULL, NULL, 0);
	m_del(m, k->d, k->len);
	blob_unref(k);
	c->cnt[C_WEAK]++;
}

/* [start, end): end a few model entries past start, so ranges stay small */
static void rand_range(struct ctx *c, const struct model *m, struct blob **start,
		       struct blob **end)
{
	struct blob *s = rnd(c, 5) ? rand_key(c) : rand_bound(c);
	size_t i = m_lower(m, s->d, s->len) + rnd(c, 6);
	struct blob *e;
	uint64_t r = rnd(c, 1000);
	if (r < 600 && i < m->n) {
		e = blob_ref(m->e[i].k);
	} else if (r < 980) {
		/* [s, s 00) holds s alone; [s, s xx) s and the keys it prefixes up to xx */
		uint8_t k[KEY_BUF + 2];
		memcpy(k, s->d, s->len);
		k[s->len] = rnd(c, 2) ? 0 : (uint8_t)rnd(c, 256);
		e = blob_new(k, s->len + 1);
	} else if (r < 995) {
		e = rand_bound(c);
	} else {
		e = blob_new("\xff\xff\xff\xff\xff\xff", 6);
	}
	if (bcmp_(s->d, s->len, e->d, e->len) > 0 && rnd(c, 10)) {
		struct blob *t = s;
		s = e;
		e = t;
	}
	*start = s;
	*end = e;
}

static void do_delete_range(struct ctx *c, int ks)
{
	struct model *m = &c->m[ks];
	struct blob *s, *e;
	rand_range(c, m, &s, &e);
	fr_status rc = fr_delete_range(c->ks[ks], s->d, s->len, e->d, e->len, &c->err);
	/* start > end is an empty range: removing nothing or refusing it are both right */
	if (!(rc == FR_INVALID && bcmp_(s->d, s->len, e->d, e->len) > 0))
		CHECK_OK(c, rc);
	log_add(c, L_RANGE, ks, s, e, NULL, 0);
	m_del_range(m, s->d, s->len, e->d, e->len);
	blob_unref(s);
	blob_unref(e);
}

struct mop {
	int ks;
	uint8_t kind;
	struct blob *k, *k2, *v;
	bool dropped;
};

/* A batch of 1..20 operations over random keyspaces, with repeated keys. The model applies it
 * as documented: of several operations on one key the last wins, and a range delete removes
 * the writes before it that it covers. */
static void do_batch(struct ctx *c)
{
	struct mop ops[20];
	size_t n = 1 + rnd(c, 20);
	bool ranged[KS_CNT] = {false};
	fr_batch *b;
	CHECK_OK(c, fr_batch_new(c->db, &b));
	c->batch_no++;
	for (size_t i = 0; i < n; i++) {
		struct mop *o = &ops[i];
		memset(o, 0, sizeof(*o));
		o->ks = (int)rnd(c, KS_CNT);
		uint64_t r = rnd(c, 100);
		if (i && rnd(c, 4)) {
			/* a key (and keyspace) of this batch again */
			const struct mop *p = &ops[rnd(c, i)];
			if (p->kind != L_RANGE) {
				o->ks = p->ks;
				o->k = blob_ref(p->k);
			}
		}
		if (!o->k)
			o->k = rand_key(c);
		if (r < 3) {
			blob_unref(o->k);
			rand_range(c, &c->m[o->ks], &o->k, &o->k2);
			if (bcmp_(o->k->d, o->k->len, o->k2->d, o->k2->len) > 0) {
				struct blob *t = o->k;
				o->k = o->k2;
				o->k2 = t;
			}
			o->kind = L_RANGE;
			ranged[o->ks] = true;
			CHECK_OK(c, fr_batch_delete_range(b, c->ks[o->ks], o->k->d, o->k->len,
							  o->k2->d, o->k2->len));
		} else if (r < 20 && !ranged[o->ks]) {
			/* weak delete of a key written once before the batch, not touched in it */
			struct blob *k = weak_candidate(c, &c->m[o->ks]);
			bool touched = false;
			for (size_t j = 0; k && j < i && !touched; j++)
				touched = ops[j].ks == o->ks &&
					  !bcmp_(ops[j].k->d, ops[j].k->len, k->d, k->len);
			if (k && !touched) {
				blob_unref(o->k);
				o->k = k;
				o->kind = L_WEAK;
				CHECK_OK(c, fr_batch_remove_weak(b, c->ks[o->ks], k->d, k->len));
			} else {
				blob_unref(k);
				o->kind = L_DEL;
				CHECK_OK(c, fr_batch_remove(b, c->ks[o->ks], o->k->d, o->k->len));
			}
		} else if (r < 40) {
			o->kind = L_DEL;
			CHECK_OK(c, fr_batch_remove(b, c->ks[o->ks], o->k->d, o->k->len));
		} else {
			o->kind = L_PUT;
			o->v = rand_val(c);
			CHECK_OK(c, fr_batch_put(b, c->ks[o->ks], o->k->d, o->k->len, o->v->d,
						 o->v->len));
		}
	}
	assert_int_equal(fr_batch_count(b), n);
	fr_seqno before = fr_db_seqno(c->db), seq = 0;
	CHECK_OK(c, fr_batch_commit(b, FR_PERSIST_BUFFER, &seq, &c->err));
	if (seq <= before)
		fail_msg("seed %llu op %llu: batch seqno %llu not above %llu",
			 (unsigned long long)c->seed, (unsigned long long)c->op,
			 (unsigned long long)seq, (unsigned long long)before);
	fr_batch_free(b);
	/* last wins; a later range delete covers earlier writes */
	for (size_t i = 0; i < n; i++) {
		struct mop *o = &ops[i];
		if (o->kind == L_RANGE)
			continue;
		for (size_t j = i + 1; j < n && !o->dropped; j++) {
			const struct mop *p = &ops[j];
			if (p->ks != o->ks)
				continue;
			if (p->kind == L_RANGE)
				o->dropped = bcmp_(p->k->d, p->k->len, o->k->d, o->k->len) <= 0 &&
					     bcmp_(o->k->d, o->k->len, p->k2->d, p->k2->len) < 0;
			else
				o->dropped = !bcmp_(p->k->d, p->k->len, o->k->d, o->k->len);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct mop *o = &ops[i];
		struct model *m = &c->m[o->ks];
		log_add(c, o->kind, o->ks, o->k, o->k2, o->v, c->batch_no);
		if (!o->dropped) {
			if (o->kind == L_PUT)
				m_put(m, o->k, o->v);
			else if (o->kind == L_RANGE)
				m_del_range(m, o->k->d, o->k->len, o->k2->d, o->k2->len);
			else
				m_del(m, o->k->d, o->k->len);
		}
		blob_unref(o->k);
		blob_unref(o->k2);
		blob_unref(o->v);
	}
	c->cnt[C_BATCH]++;
}

/* ---- rounds ---- */

static void ks_open_all(struct ctx *c)
{
	for (int i = 0; i < KS_CNT; i++) {
		fr_keyspace_options o;
		fr_keyspace_options_init(&o);
		o.tree = ks_trees[i];
		o.table_target_size = 32u << 10;
		o.level_ratio = 3;
		o.l0_trigger = 2 + (uint32_t)i % 3;
		o.hash_index = i == 0 || i == 2; /* point reads through block hash indexes */
		if (i == 0) {
			/* KV separation: about two values in three go to blob files, small ones
			 * so that flushes and compactions cut several and GC relocates often */
			o.blob_threshold = 100;
			o.blob_file_target = 16u << 10;
			o.blob_gc_stale_pct = 30;
		}
		if (i == 1) {
			o.compress = false;
			o.block_size = 512;
			o.restart_interval = 2;
			o.bloom_bits_per_key = 0;
			o.compaction = FR_COMPACTION_TIERED;
		}
		/* per-level table options: the deepest levels without filters, L2 uncompressed */
		o.level[LEVEL_CNT - 1].bloom_bits_per_key = 0;
		o.level[2].compress = 0;
		o.level[3].block_size = 1024;
		CHECK_OK(c, fr_keyspace_open(c->db, ks_names[i], &o, &c->ks[i], &c->err));
	}
}

static void m_db_reopen(struct ctx *c)
{
	while (c->snap_cnt) {
		m_snap_verify(c, &c->snaps[c->snap_cnt - 1], 20);
		m_snap_close(c, c->snap_cnt - 1);
	}
	for (int i = 0; i < KS_CNT; i++)
		fr_keyspace_close(c->ks[i]);
	fr_seqno seq = fr_db_seqno(c->db);
	CHECK_OK(c, fr_db_close(c->db, &c->err));
	c->db = NULL;
	c->o.background = !c->inline_only && rnd(c, 3) != 0;
	CHECK_OK(c, fr_db_open(c->dir, &c->o, &c->db, &c->err));
	if (fr_db_seqno(c->db) != seq)
		fail_msg("seed %llu op %llu: seqno %llu after reopen, was %llu",
			 (unsigned long long)c->seed, (unsigned long long)c->op,
			 (unsigned long long)fr_db_seqno(c->db), (unsigned long long)seq);
	ks_open_all(c);
	log_add(c, L_REOPEN, 0, NULL, NULL, NULL, 0);
}

static void round_work(struct ctx *c)
{
	switch (rnd(c, 3)) {
	case 0:
		log_add(c, L_FLUSH, 0, NULL, NULL, NULL, 0);
		CHECK_OK(c, fr_db_flush(c->db, &c->err));
		break;
	case 1: {
		int ks = (int)rnd(c, KS_CNT);
		log_add(c, L_COMPACT, ks, NULL, NULL, NULL, 0);
		CHECK_OK(c, fr_major_compact(c->ks[ks], &c->err));
		break;
	}
	default:
		m_db_reopen(c);
		break;
	}
	check_all(c);
	c->cnt[C_ROUND]++;
}

static void one_op(struct ctx *c)
{
	int ks = (int)rnd(c, KS_CNT);
	uint64_t r = rnd(c, 1000);
	if (r < 300) {
		do_put(c, ks);
	} else if (r < 380) {
		do_remove(c, ks);
	} else if (r < 420) {
		do_remove_weak(c, ks);
	} else if (r < 430) {
		do_delete_range(c, ks);
	} else if (r < 440) {
		do_put(c, ks);
	} else if (r < 441) {
		if (rnd(c, 40) == 0) { /* rare, or the keyspaces stay small */
			log_add(c, L_CLEAR, ks, NULL, NULL, NULL, 0);
			CHECK_OK(c, fr_keyspace_clear(c->ks[ks], &c->err));
			m_remove_at(&c->m[ks], 0, c->m[ks].n);
		}
	} else if (r < 500) {
		do_batch(c);
	} else if (r < 700) {
		struct model *m = &c->m[ks];
		struct blob *k =
			m->n && rnd(c, 2) ? blob_ref(m->e[rnd(c, m->n)].k) : rand_key(c);
		check_get(c, ks, NULL, k);
		blob_unref(k);
	} else if (r < 710) {
		if (c->snap_cnt < SNAP_MAX)
			m_snap_open(c);
	} else if (r < 740) {
		if (c->snap_cnt)
			m_snap_verify(c, &c->snaps[rnd(c, c->snap_cnt)], 4);
	} else if (r < 746) {
		if (c->snap_cnt) {
			size_t i = rnd(c, c->snap_cnt);
			m_snap_verify(c, &c->snaps[i], 8);
			m_snap_close(c, i);
		}
	} else if (r < 775) {
		check_iter(c, ks, NULL);
	} else if (r < 780) {
		check_edges(c, ks);
	} else {
		do_put(c, ks);
	}
}

static void test_model_random(void **state)
{
	(void)state;
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->seed = tu_seed();
	c->rng = c->seed;
	c->ops = 200000;
	const char *env = getenv("FR_MODEL_OPS");
	if (env && *env)
		c->ops = strtoull(env, NULL, 0);
	c->inline_only = getenv("FR_MODEL_INLINE") && atoi(getenv("FR_MODEL_INLINE"));
	c->dir = tu_tmpdir("model");
	fr_db_options_init(&c->o);
	c->o.background = !c->inline_only;
	c->o.memtable_max = 64u << 10;
	c->o.journal_segment_max = 1u << 20;
	fprintf(stderr, "# model test: %llu operations, seed %llu, in %s\n",
		(unsigned long long)c->ops, (unsigned long long)c->seed, c->dir);
	time_t t0 = time(NULL);
	CHECK_OK(c, fr_db_open(c->dir, &c->o, &c->db, &c->err));
	ks_open_all(c);
	uint64_t next_round = ROUND_OPS / 2 + rnd(c, ROUND_OPS);
	for (c->op = 1; c->op <= c->ops; c->op++) {
		one_op(c);
		if (c->op == next_round) {
			round_work(c);
			next_round += ROUND_OPS / 2 + rnd(c, ROUND_OPS);
		}
	}
	/* the end: everything, then again after a reopen */
	check_all(c);
	m_db_reopen(c);
	check_all(c);
	fr_db_stats st;
	CHECK_OK(c, fr_db_stats_get(c->db, &st, &c->err));
	fprintf(stderr, "# keys at the end:");
	for (int i = 0; i < KS_CNT; i++)
		fprintf(stderr, " %s %zu", ks_names[i], c->m[i].n);
	fprintf(stderr, "\n");
	fprintf(stderr,
		"# %llu gets, %llu snapshot reads, %llu iterations (%llu entries), %llu edge "
		"checks, %llu weak removes, %llu batches, %llu rounds, %llu tables, %llu blob "
		"files, %lld s\n",
		(unsigned long long)c->cnt[C_GET], (unsigned long long)c->cnt[C_SNAP_READ],
		(unsigned long long)c->cnt[C_ITER], (unsigned long long)c->cnt[C_ITER_ENTRIES],
		(unsigned long long)c->cnt[C_EDGE], (unsigned long long)c->cnt[C_WEAK],
		(unsigned long long)c->cnt[C_BATCH], (unsigned long long)c->cnt[C_ROUND],
		(unsigned long long)st.table_cnt, (unsigned long long)st.blob_file_cnt,
		(long long)(time(NULL) - t0));
	for (int i = 0; i < KS_CNT; i++)
		fr_keyspace_close(c->ks[i]);
	CHECK_OK(c, fr_db_close(c->db, &c->err));
	for (int i = 0; i < KS_CNT; i++)
		m_free(&c->m[i]);
	log_free(c);
	tu_rmtree_free(c->dir);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
