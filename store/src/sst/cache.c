/* SPDX-License-Identifier: MIT */
/*
 * cache.c - the sharded LRU block cache (cache.h).
 *
 * Each shard keeps its entries in a chained hash table and its unpinned entries on a circular
 * list, most recently released at the head, so eviction takes the tail in O(1) and never looks
 * at a pinned entry (as LevelDB's LRUCache keeps in-use entries off its LRU list). Recency is
 * therefore the time of the last release, which for a read path that pins a block only while
 * it uses it is the time of the last use.
 *
 * An entry leaves its shard's table only when it is unpinned (eviction) or when the cache is
 * freed, so a pinned entry is always either in its table or "loose": one that was never kept
 * (capacity 0, or a charge above the shard's share), whose single handle frees it.
 */
#include "sst/cache.h"

#include <string.h>

#include "base/alloc.h"
#include "base/fr_assert.h"
#include "base/sync.h"

struct blk_cache_entry {
	uint64_t file_id;
	uint64_t off;
	uint64_t hash;
	struct blk_cache_entry *chain; /* under the shard mutex: next in the bucket */
	struct blk_cache_entry *prev;  /* under the shard mutex: LRU links, set while unpinned */
	struct blk_cache_entry *next;
	uint32_t refs;                 /* under the shard mutex (kept entries): pins */
	bool kept;                     /* immutable: in a shard's table (else loose) */
	uint8_t *mem;                  /* immutable: the bytes */
	size_t len;
	size_t charge;
};
_Static_assert(sizeof(struct blk_cache_entry) + sizeof(void *) <= BLK_CACHE_ENTRY_OVERHEAD,
	       "BLK_CACHE_ENTRY_OVERHEAD covers an entry and its bucket slot");

struct blk_shard {
	struct fr_mutex mu;
	struct blk_cache_entry **buckets; /* under mu; bucket_cnt is a power of two */
	size_t bucket_cnt;                /* under mu */
	size_t entry_cnt;                 /* under mu */
	size_t usage;                     /* under mu: charges of the entries in the table */
	size_t capacity;                  /* immutable */
	struct blk_cache_entry lru;       /* under mu: sentinel; lru.next is the most recent */
	/* under mu: per shard, so concurrent readers do not all write one cache line */
	uint64_t hits;
	uint64_t misses;
};

struct blk_cache {
	struct blk_shard *shards;
	unsigned shard_bits;
	size_t capacity;
	/* atomic: statistics only, nothing is decided on them */
	uint64_t misses;              /* lookups while the capacity is 0 */
	uint64_t usage;
	uint64_t entry_cnt;
};

#define BUCKETS_MIN 16

static uint64_t key_hash(uint64_t file_id, uint64_t off)
{
	/* the murmur3 finaliser over both halves: block offsets share their low bits */
	uint64_t h = file_id * UINT64_C(0x9e3779b97f4a7c15) ^ off;
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

static struct blk_shard *shard_of(struct blk_cache *c, uint64_t hash)
{
	/* the top bits pick the shard, the low bits the bucket: the two stay independent */
	return &c->shards[c->shard_bits ? hash >> (64 - c->shard_bits) : 0];
}

static void lru_unlink(struct blk_cache_entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_head(struct blk_shard *s, struct blk_cache_entry *e)
{
	e->next = s->lru.next;
	e->prev = &s->lru;
	s->lru.next->prev = e;
	s->lru.next = e;
}

/* The slot that points at the entry for the key, or at the NULL ending its bucket. Requires:
 * s->mu held. */
static struct blk_cache_entry **table_slot(struct blk_shard *s, uint64_t hash, uint64_t file_id,
					   uint64_t off)
{
	struct blk_cache_entry **p = &s->buckets[hash & (s->bucket_cnt - 1)];

	while (*p && ((*p)->hash != hash || (*p)->file_id != file_id || (*p)->off != off))
		p = &(*p)->chain;
	return p;
}

/* Doubles the bucket array when chains grow past one entry on average; without memory the
 * table just keeps longer chains. Requires: s->mu held. */
static void table_maybe_grow(struct blk_shard *s)
{
	if (s->entry_cnt <= s->bucket_cnt || s->bucket_cnt > SIZE_MAX / 2 / sizeof(void *))
		return;
	size_t n = s->bucket_cnt * 2;
	struct blk_cache_entry **b = fr_calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < s->bucket_cnt; i++) {
		struct blk_cache_entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->chain;
			e->chain = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	fr_free(s->buckets);
	s->buckets = b;
	s->bucket_cnt = n;
}

static void entry_free(struct blk_cache_entry *e)
{
	fr_free(e->mem);
	fr_free(e);
}

/* Evicts unpinned entries, coldest first, until the shard is within its share or only pinned
 * entries are left. Returns the evicted entries chained through ->chain, to be freed after the
 * mutex is dropped. Requires: s->mu held. */
static struct blk_cache_entry *shard_evict(struct blk_cache *c, struct blk_shard *s)
{
	struct blk_cache_entry *dead = NULL;

	fr_mutex_assert_held(&s->mu);
	while (s->usage > s->capacity && s->lru.prev != &s->lru) {
		struct blk_cache_entry *e = s->lru.prev;
		struct blk_cache_entry **p = table_slot(s, e->hash, e->file_id, e->off);

		fr_assert(*p == e && e->refs == 0);
		*p = e->chain;
		lru_unlink(e);
		s->usage -= e->charge;
		s->entry_cnt--;
		atomic_sub_u64(&c->usage, e->charge);
		atomic_sub_u64(&c->entry_cnt, 1);
		e->chain = dead;
		dead = e;
	}
	return dead;
}

static void free_chain(struct blk_cache_entry *e)
{
	while (e) {
		struct blk_cache_entry *next = e->chain;

		entry_free(e);
		e = next;
	}
}

fr_status blk_cache_new(size_t capacity, unsigned shard_bits, struct blk_cache **out)
{
	struct blk_cache *c;
	size_t n;

	*out = NULL;
	if (shard_bits > BLK_CACHE_SHARD_BITS_MAX)
		return FR_INVALID;
	n = (size_t)1 << shard_bits;
	c = fr_calloc(1, sizeof(*c));
	if (!c)
		return FR_NOMEM;
	c->shards = fr_calloc(n, sizeof(*c->shards));
	if (!c->shards) {
		fr_free(c);
		return FR_NOMEM;
	}
	c->shard_bits = shard_bits;
	c->capacity = capacity;
	for (size_t i = 0; i < n; i++) {
		struct blk_shard *s = &c->shards[i];

		s->buckets = fr_calloc(BUCKETS_MIN, sizeof(*s->buckets));
		if (!s->buckets) {
			for (size_t j = 0; j < i; j++) {
				fr_free(c->shards[j].buckets);
				fr_mutex_fini(&c->shards[j].mu);
			}
			fr_free(c->shards);
			fr_free(c);
			return FR_NOMEM;
		}
		fr_mutex_init(&s->mu);
		s->bucket_cnt = BUCKETS_MIN;
		/* the shares add up to the capacity exactly */
		s->capacity = (capacity >> shard_bits) + (i < (capacity & (n - 1)));
		s->lru.next = s->lru.prev = &s->lru;
	}
	*out = c;
	return FR_OK;
}

void blk_cache_free(struct blk_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < (size_t)1 << c->shard_bits; i++) {
		struct blk_shard *s = &c->shards[i];

		for (size_t b = 0; b < s->bucket_cnt; b++) {
			struct blk_cache_entry *e = s->buckets[b], *next;

			for (; e; e = next) {
				next = e->chain;
				fr_assert(e->refs == 0);
				entry_free(e);
			}
		}
		fr_free(s->buckets);
		fr_mutex_fini(&s->mu);
	}
	fr_free(c->shards);
	fr_free(c);
}

struct blk_cache_entry *blk_cache_lookup(struct blk_cache *c, uint64_t file_id, uint64_t off)
{
	struct blk_cache_entry *e = NULL;

	if (c->capacity) {
		uint64_t h = key_hash(file_id, off);
		struct blk_shard *s = shard_of(c, h);

		fr_mutex_lock(&s->mu);
		e = *table_slot(s, h, file_id, off);
		if (e && e->refs++ == 0)
			lru_unlink(e); /* pinned: off the eviction list until released */
		if (e)
			s->hits++;
		else
			s->misses++;
		fr_mutex_unlock(&s->mu);
	} else {
		atomic_add_u64(&c->misses, 1);
	}
	return e;
}

fr_status blk_cache_insert(struct blk_cache *c, uint64_t file_id, uint64_t off, void *mem,
			   size_t len, size_t charge, struct blk_cache_entry **out)
{
	uint64_t h = key_hash(file_id, off);
	struct blk_shard *s = shard_of(c, h);
	struct blk_cache_entry *e = fr_calloc(1, sizeof(*e)), *dead;

	*out = NULL;
	if (!e)
		return FR_NOMEM;
	e->file_id = file_id;
	e->off = off;
	e->hash = h;
	e->mem = mem;
	e->len = len;
	e->charge = charge;
	e->refs = 1;
	if (!c->capacity || charge > s->capacity) {
		*out = e; /* loose: the handle is the only way to it */
		return FR_OK;
	}
	e->kept = true;
	fr_mutex_lock(&s->mu);
	struct blk_cache_entry **p = table_slot(s, h, file_id, off);
	if (*p) {
		/* a concurrent reader of the same block got here first: share its copy */
		struct blk_cache_entry *old = *p;

		if (old->refs++ == 0)
			lru_unlink(old);
		fr_mutex_unlock(&s->mu);
		fr_free(e);
		fr_free(mem);
		*out = old;
		return FR_OK;
	}
	*p = e;
	s->entry_cnt++;
	s->usage += charge;
	atomic_add_u64(&c->usage, charge);
	atomic_add_u64(&c->entry_cnt, 1);
	dead = shard_evict(c, s);
	table_maybe_grow(s);
	fr_mutex_unlock(&s->mu);
	free_chain(dead);
	*out = e;
	return FR_OK;
}

void blk_cache_release(struct blk_cache *c, struct blk_cache_entry *e)
{
	struct blk_cache_entry *dead;
	struct blk_shard *s;

	if (!e)
		return;
	if (!e->kept) {
		entry_free(e);
		return;
	}
	s = shard_of(c, e->hash);
	fr_mutex_lock(&s->mu);
	fr_assert(e->refs > 0);
	if (--e->refs == 0)
		lru_push_head(s, e);
	/* pins may have held the shard above its share: this release may let it shrink */
	dead = shard_evict(c, s);
	fr_mutex_unlock(&s->mu);
	free_chain(dead);
}

const uint8_t *blk_cache_data(const struct blk_cache_entry *e)
{
	return e->mem;
}

size_t blk_cache_len(const struct blk_cache_entry *e)
{
	return e->len;
}

void blk_cache_stats(const struct blk_cache *c, struct blk_cache_stats *out)
{
	out->hits = 0;
	out->misses = atomic_load_rlx_u64(&c->misses);
	for (size_t i = 0; c->capacity && i < (size_t)1 << c->shard_bits; i++) {
		struct blk_shard *s = &c->shards[i];
		fr_mutex_lock(&s->mu);
		out->hits += s->hits;
		out->misses += s->misses;
		fr_mutex_unlock(&s->mu);
	}
	out->usage = atomic_load_rlx_u64(&c->usage);
	out->entry_cnt = atomic_load_rlx_u64(&c->entry_cnt);
	out->capacity = c->capacity;
}
