/* SPDX-License-Identifier: MIT */
/*
 * skiplist.c - the memtable index (skiplist.h): a LevelDB-style skiplist with one writer and
 * lock-free readers [LevelDB db/skiplist.h]. Heights are drawn with branching factor
 * SKL_BRANCHING up to SKL_MAX_HEIGHT. Nodes and their keys and values live in the arena; only
 * the head sentinel is a separate allocation, so an empty list costs no arena block.
 *
 * Memory ordering. The one publication point is a link: the writer fills a node completely
 * (fields, key, value, its own links) and then makes it reachable, lowest level first, with a
 * release store into its predecessor's link (link_set_rel). Every reader follows links with an
 * acquire load (link_get_acq), so whatever it reaches is fully written. The list height is a
 * hint read relaxed: a reader that sees a stale height just starts lower; one that sees a new
 * height finds either NULL or a published node in the head's upper links.
 *
 * Key summaries. Inserting is a search, and on a large memtable each node it looks at is a
 * cache miss; the node a level's search stops at is looked at only to learn that it is not
 * smaller than the new key. So each link also carries a summary of the key it points to: the
 * 8 bytes of the user key from offset s->skip on, big-endian, zero-padded. All user keys in the
 * list share their first skip bytes (the keyspace prefix, for one), so when two summaries
 * differ they order the keys, and the writer decides without touching the node; only equal
 * summaries need the node's key. Summaries are written and read by the writer alone (writers
 * are serialised), so they need no atomics. When a new key shares fewer leading bytes with the
 * list, skip shrinks and every summary is recomputed: at most SKL_SKIP_MAX / 4 times per list,
 * and in practice on the first few inserts.
 */
#include "memtable/skiplist.h"

#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/coding.h"
#include "base/fr_assert.h"
#include "base/ikey.h"
#include "base/sync.h"

struct skl_link {
	/* atomic: published by the writer with a release store (link_set_rel) and read with an
	 * acquire load (link_get_acq) */
	void *next;
	uint64_t sum; /* writer only: key_sum of next's key (undefined while next is NULL) */
};

struct skl_node {
	uint64_t val_len;
	uint32_t key_len; /* internal key, >= IKEY_TRAILER_LEN; 0 for the head */
	uint32_t height;  /* number of links, 1..SKL_MAX_HEIGHT */
	struct skl_link link[]; /* key bytes, then value bytes, follow */
};

/* A seek target split into parts, so mem_get can seek without building an internal key. */
struct skl_target {
	const uint8_t *ukey;
	size_t ulen;
	uint64_t trailer;
};

static inline struct skl_node *link_get_acq(const struct skl_node *n, uint32_t level)
{
	/* acquire: pairs with the release store in link_set_rel; the node we get is complete */
	return atomic_load_acq_ptr(&n->link[level].next);
}

static inline void link_set_rel(struct skl_node *n, uint32_t level, struct skl_node *to)
{
	/* release: pairs with the acquire load in link_get_acq; publishes everything written to
	 * `to` (and before it) to readers that follow this link */
	atomic_store_rel_ptr(&n->link[level].next, to);
}

static inline uint32_t list_height(const struct skiplist *s)
{
	/* atomic, relaxed: a hint only (see the file comment); pairs with the relaxed store in
	 * skl_node_insert */
	return (uint32_t)atomic_load_rlx_u64(&s->height);
}

static inline const uint8_t *node_key(const struct skl_node *n)
{
	return (const uint8_t *)(n->link + n->height);
}

/* The writer's view of a link: relaxed, as the writer is the only one storing links. */
static inline struct skl_node *link_get_w(const struct skl_node *n, uint32_t level)
{
	return atomic_load_rlx_ptr(&n->link[level].next);
}

/* The summary of user key k (see the file comment): bytes [skip, skip + 8), big-endian. */
static inline uint64_t key_sum(const uint8_t *k, size_t ulen, uint32_t skip)
{
	uint8_t b[8] = {0};

	if (ulen >= (size_t)skip + 8)
		return dec_be64(k + skip);
	if (ulen > skip)
		memcpy(b, k + skip, ulen - skip);
	return dec_be64(b);
}

static int node_cmp(const struct skl_node *n, const struct skl_target *t)
{
	const uint8_t *k = node_key(n);
	size_t ulen = ikey_user_len(n->key_len);
	int c = bytes_cmp(k, ulen, t->ukey, t->ulen);
	uint64_t tr;

	if (c)
		return c;
	tr = ikey_trailer(k, n->key_len);
	return tr > t->trailer ? -1 : tr < t->trailer; /* newer (larger trailer) first */
}

static void target_from_ikey(struct skl_target *t, const uint8_t *ikey, size_t len)
{
	if (len < IKEY_TRAILER_LEN) {
		/* not an internal key: treat it as a user key, before all of its versions */
		t->ukey = ikey;
		t->ulen = len;
		t->trailer = UINT64_MAX;
		return;
	}
	t->ukey = ikey;
	t->ulen = ikey_user_len(len);
	t->trailer = ikey_trailer(ikey, len);
}

/* The first node >= t, or NULL. When prev is not NULL, prev[i] gets the last node < t at each
 * level below the current height (the head where there is none). */
static struct skl_node *find_ge(const struct skiplist *s, const struct skl_target *t,
				struct skl_node **prev)
{
	struct skl_node *x = s->head;
	uint32_t level = list_height(s) - 1;

	for (;;) {
		struct skl_node *nx = link_get_acq(x, level);

		if (nx && node_cmp(nx, t) < 0) {
			x = nx;
			continue;
		}
		if (prev)
			prev[level] = x;
		if (level == 0)
			return nx;
		level--;
	}
}

/* find_ge for the writer: compares link summaries first (tsum: t's summary) and looks at a
 * node's key only when they are equal. prev as for find_ge; *eq tells whether the node
 * returned equals t. */
static struct skl_node *find_ge_w(const struct skiplist *s, const struct skl_target *t,
				  uint64_t tsum, struct skl_node **prev, bool *eq)
{
	struct skl_node *x = s->head;
	uint32_t level = list_height(s) - 1;

	for (;;) {
		struct skl_node *nx = link_get_w(x, level);
		int c = 1;

		if (nx) {
			uint64_t sum = x->link[level].sum;

			c = sum < tsum ? -1 : sum > tsum ? 1 : node_cmp(nx, t);
			if (c < 0) {
				x = nx;
				continue;
			}
		}
		prev[level] = x;
		if (level == 0) {
			*eq = c == 0;
			return nx;
		}
		level--;
	}
}

/* Recomputes every link's summary after s->skip changed. */
static void resum_all(struct skiplist *s)
{
	for (struct skl_node *x = s->head; x; x = link_get_w(x, 0)) {
		for (uint32_t i = 0; i < x->height; i++) {
			const struct skl_node *nx = link_get_w(x, i);

			if (nx)
				x->link[i].sum = key_sum(node_key(nx), ikey_user_len(nx->key_len),
							 s->skip);
		}
	}
}

/* Narrows the shared prefix to what user key k (ulen bytes) shares with it; recomputes the
 * summaries when skip moves. */
static void note_prefix(struct skiplist *s, const uint8_t *k, size_t ulen)
{
	uint32_t n = 0, skip;

	if (!link_get_w(s->head, 0)) {
		/* first key: the whole of it (up to the bound) is shared so far */
		n = ulen < SKL_SKIP_MAX ? (uint32_t)ulen : SKL_SKIP_MAX;
		memcpy(s->common, k, n);
		s->common_len = n;
		s->skip = n & ~3u;
		return;
	}
	while (n < s->common_len && n < ulen && k[n] == s->common[n])
		n++;
	if (n == s->common_len)
		return;
	s->common_len = n;
	skip = n & ~3u;
	if (skip != s->skip) {
		s->skip = skip;
		resum_all(s);
	}
}

/* The last node < t (or <= t when or_equal), or NULL when there is none. */
static struct skl_node *find_lt(const struct skiplist *s, const struct skl_target *t,
				bool or_equal)
{
	struct skl_node *x = s->head;
	uint32_t level = list_height(s) - 1;

	for (;;) {
		struct skl_node *nx = link_get_acq(x, level);
		int c = nx ? node_cmp(nx, t) : 1;

		if (c < 0 || (or_equal && c == 0)) {
			x = nx;
			continue;
		}
		if (level == 0)
			return x == s->head ? NULL : x;
		level--;
	}
}

static struct skl_node *find_last(const struct skiplist *s)
{
	struct skl_node *x = s->head;
	uint32_t level = list_height(s) - 1;

	for (;;) {
		struct skl_node *nx = link_get_acq(x, level);

		if (nx) {
			x = nx;
			continue;
		}
		if (level == 0)
			return x == s->head ? NULL : x;
		level--;
	}
}

static uint32_t random_height(struct skiplist *s)
{
	uint32_t h = 1;

	for (;;) {
		/* xorshift64*; writer only */
		uint64_t x = s->rnd;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		s->rnd = x;
		x *= UINT64_C(0x2545F4914F6CDD1D);
		if (h >= SKL_MAX_HEIGHT || (x >> 32) % SKL_BRANCHING)
			break;
		h++;
	}
	return h;
}

fr_status skl_init(struct skiplist *s, struct arena *a)
{
	size_t sz = sizeof(*s->head) + SKL_MAX_HEIGHT * sizeof(s->head->link[0]);

	s->arena = a;
	s->height = 1;
	s->common_len = 0;
	s->skip = 0;
	s->rnd = UINT64_C(0x9E3779B97F4A7C15);
	s->head = fr_calloc(1, sz); /* all links NULL */
	if (!s->head)
		return FR_NOMEM;
	s->head->height = SKL_MAX_HEIGHT;
	return FR_OK;
}

void skl_fini(struct skiplist *s)
{
	fr_free(s->head);
	s->head = NULL;
}

struct skl_node *skl_node_new(struct skiplist *s, size_t klen, size_t vlen)
{
	uint32_t h;
	size_t sz;
	struct skl_node *n;

	if (klen < IKEY_TRAILER_LEN || klen > UINT32_MAX)
		return NULL;
	h = random_height(s);
	sz = sizeof(*n) + h * sizeof(n->link[0]) + klen;
	if (vlen > SIZE_MAX - sz)
		return NULL;
	n = arena_alloc(s->arena, sz + vlen);
	if (!n)
		return NULL;
	n->val_len = vlen;
	n->key_len = (uint32_t)klen;
	n->height = h;
	for (uint32_t i = 0; i < h; i++) {
		n->link[i].next = NULL; /* not reachable yet: plain stores */
		n->link[i].sum = 0;
	}
	return n;
}

uint8_t *skl_node_key_buf(struct skl_node *n)
{
	return (uint8_t *)(n->link + n->height);
}

uint8_t *skl_node_val_buf(struct skl_node *n)
{
	return skl_node_key_buf(n) + n->key_len;
}

fr_status skl_node_insert(struct skiplist *s, struct skl_node *n)
{
	struct skl_node *prev[SKL_MAX_HEIGHT];
	struct skl_target t;
	uint64_t tsum;
	bool eq;
	uint32_t h;

	target_from_ikey(&t, node_key(n), n->key_len);
	note_prefix(s, t.ukey, t.ulen);
	tsum = key_sum(t.ukey, t.ulen, s->skip);
	(void)find_ge_w(s, &t, tsum, prev, &eq);
	if (eq)
		return FR_INVALID;

	h = list_height(s);
	if (n->height > h) {
		for (uint32_t i = h; i < n->height; i++)
			prev[i] = s->head;
		/* atomic, relaxed: readers use the height as a hint only; pairs with list_height */
		atomic_store_rlx_u64(&s->height, n->height);
	}
	for (uint32_t i = 0; i < n->height; i++) {
		/* relaxed: n is not reachable yet, the release store below publishes it; reading
		 * prev's link relaxed is fine because this thread is the only one writing links */
		atomic_store_rlx_ptr(&n->link[i].next, link_get_w(prev[i], i));
		n->link[i].sum = prev[i]->link[i].sum;
		link_set_rel(prev[i], i, n);
		prev[i]->link[i].sum = tsum;
	}
	return FR_OK;
}

fr_status skl_insert(struct skiplist *s, const uint8_t *ikey, size_t klen, const void *val,
		     size_t vlen)
{
	struct skl_node *n;

	if (klen < IKEY_TRAILER_LEN || klen > UINT32_MAX)
		return FR_INVALID;
	n = skl_node_new(s, klen, vlen);
	if (!n)
		return FR_NOMEM;
	memcpy(skl_node_key_buf(n), ikey, klen);
	if (vlen)
		memcpy(skl_node_val_buf(n), val, vlen);
	return skl_node_insert(s, n);
}

bool skl_contains(const struct skiplist *s, const uint8_t *ikey, size_t klen)
{
	struct skl_target t;
	struct skl_node *x;

	if (klen < IKEY_TRAILER_LEN)
		return false;
	target_from_ikey(&t, ikey, klen);
	x = find_ge(s, &t, NULL);
	return x && node_cmp(x, &t) == 0;
}

void skl_iter_init(struct skl_iter *it, const struct skiplist *s)
{
	it->s = s;
	it->node = NULL;
}

bool skl_iter_valid(const struct skl_iter *it)
{
	return it->node != NULL;
}

void skl_iter_seek_first(struct skl_iter *it)
{
	it->node = link_get_acq(it->s->head, 0);
}

void skl_iter_seek_last(struct skl_iter *it)
{
	it->node = find_last(it->s);
}

void skl_iter_seek(struct skl_iter *it, const uint8_t *target, size_t len)
{
	struct skl_target t;

	target_from_ikey(&t, target, len);
	it->node = find_ge(it->s, &t, NULL);
}

void skl_iter_seek_parts(struct skl_iter *it, const uint8_t *ukey, size_t ulen, uint64_t trailer)
{
	struct skl_target t = { .ukey = ukey, .ulen = ulen, .trailer = trailer };

	it->node = find_ge(it->s, &t, NULL);
}

void skl_iter_seek_prev(struct skl_iter *it, const uint8_t *target, size_t len)
{
	struct skl_target t;

	target_from_ikey(&t, target, len);
	it->node = find_lt(it->s, &t, true);
}

void skl_iter_next(struct skl_iter *it)
{
	fr_assert(it->node);
	it->node = link_get_acq(it->node, 0);
}

void skl_iter_prev(struct skl_iter *it)
{
	struct skl_target t;

	fr_assert(it->node);
	target_from_ikey(&t, node_key(it->node), it->node->key_len);
	it->node = find_lt(it->s, &t, false);
}

const uint8_t *skl_iter_key(const struct skl_iter *it, size_t *len)
{
	*len = it->node->key_len;
	return node_key(it->node);
}

const uint8_t *skl_iter_val(const struct skl_iter *it, size_t *len)
{
	*len = (size_t)it->node->val_len;
	return node_key(it->node) + it->node->key_len;
}
