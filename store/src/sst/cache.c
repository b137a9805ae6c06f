/* SPDX-License-Identifier: MIT */
/*
 * cache.c - the sharded CLOCK block cache (cache.h).
 *
 * Each shard keeps its entries in an open-addressing hash table (linear probing, at most three
 * quarters full, deletion by shifting the run back rather than by tombstones). A slot holds
 * a tag of the key's hash next to the entry's pointer, so a miss, or a probe past another key,
 * reads only the slot array and never an entry; it also holds the block's length, so that a
 * hit fetches the block's last line (where a reader starts) at the same time as the entry's
 * header instead of after it. Header and block bytes are one allocation.
 *
 * Recency is CLOCK: a hit sets its slot's mark, and eviction sweeps a hand over the slots,
 * clearing marks and evicting the first unmarked, unpinned entry. A hit therefore writes only
 * the slot it has just read and the entry it returns, where an LRU list writes both
 * neighbours on the pin and again on the release, each a likely cache miss in a table far
 * larger than the CPU caches; and the sweep reads an entry only when its slot is unmarked.
 * The sweep passes over pinned entries; after two turns without an eviction everything left
 * is pinned, and the shard stays above its share until a release.
 *
 * Pins: refs is atomic. It is raised only under the shard mutex (lookup, insert), and the
 * sweep reads it under the mutex, so an entry the sweep finds at 0 can gain no pin before it
 * leaves the table. It is dropped without the mutex: whoever drops the last pin touches the
 * entry no more, so the sweep may free it at once. Whether that release must evict is the
 * two-sided question "did the sweep see my pin, or do I see its usage": both sides use
 * sequentially consistent operations (the sweep stores usage, then loads refs; the release
 * drops refs, then loads usage), so at least one of them sees the other and the shard does
 * not stay above its share with nothing pinned.
 *
 * An entry leaves its shard's table only when it is unpinned (eviction) or when the cache is
 * freed, so a pinned entry is always either in its table or "loose": one that was never kept
 * (capacity 0, a charge above the shard's share, or no memory for a bigger table), whose
 * single handle frees it.
 */
#include "sst/cache.h"

#include <string.h>

#include "base/alloc.h"
#include "base/fr_assert.h"
#include "base/sync.h"

struct blk_cache_entry {
	uint64_t file_id; /* immutable once put */
	uint64_t off;
	uint64_t hash;
	size_t len;
	size_t charge;
	uint32_t refs;    /* atomic (see the top): pins */
	bool kept;        /* immutable once put: in a shard's table (else loose) */
	uint8_t mem[];    /* the bytes */
};
_Static_assert(sizeof(struct blk_cache_entry) + 4 * 2 * sizeof(uint64_t) <=
		       BLK_CACHE_ENTRY_OVERHEAD,
	       "BLK_CACHE_ENTRY_OVERHEAD covers an entry and four slots");

/* A table slot, under the shard mutex: e NULL when free. tag is the low half of the key's
 * hash, enough to pass over other keys and to find the slot's home (tables stay below 2^32
 * slots); tail is where the block's last bytes lie, so that a hit can start fetching them
 * before reading the entry. The clock mark is here rather than in the entry so that the sweep
 * passes over a marked entry without reading it. */
struct blk_slot {
	uint32_t tag;
	uint32_t tail : 31;  /* min(len, 2^31 - 1) */
	uint32_t marked : 1; /* used since the hand last passed */
	struct blk_cache_entry *e;
};

struct blk_shard {
	struct fr_mutex mu;
	struct blk_slot *slots; /* under mu; slot_cnt is a power of two */
	size_t slot_cnt;        /* under mu */
	size_t entry_cnt;       /* under mu */
	size_t hand;            /* under mu: the slot the sweep looks at next */
	uint64_t usage;         /* written under mu, sc atomics: charges of the kept entries */
	uint64_t capacity;      /* immutable */
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

#define SLOTS_MIN 16
/* A new table has room for its share in blocks of 4 KiB (the default block size) at half
 * load, up to 2^16 slots (1 MiB a shard): it is allocated once, when the cache is made, rather
 * than grown while readers wait on the shard mutex, and a late growth does not leave a table
 * at the top of the heap (seen keeping a freed memtable's memory from the system after a
 * bulk load). Smaller blocks still grow it. */
#define SLOTS_PRESIZE_BLOCK 4096
#define SLOTS_PRESIZE_MAX ((size_t)1 << 16)

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
	/* the top bits pick the shard, the low bits the slot: the two stay independent */
	return &c->shards[c->shard_bits ? hash >> (64 - c->shard_bits) : 0];
}

/* The slot holding the key, or the free slot ending its probe run. Requires: s->mu held. */
static size_t table_find(const struct blk_shard *s, uint64_t hash, uint64_t file_id, uint64_t off)
{
	size_t mask = s->slot_cnt - 1, i = hash & mask;

	for (;; i = (i + 1) & mask) {
		const struct blk_slot *sl = &s->slots[i];

		if (!sl->e)
			return i;
		if (sl->tag != (uint32_t)hash)
			continue;
		/* The block is read from its end first (a sorted block's restart array): fetch
		 * that line together with the entry's, rather than after it. */
		if (sl->tail)
			__builtin_prefetch(sl->e->mem + sl->tail - 1);
		if (sl->e->file_id == file_id && sl->e->off == off)
			return i;
	}
}

/* Empties slot i, then moves back every later entry of the run that may sit there (its home
 * slot is not cyclically inside (i, j]), so that no probe run has a hole. Requires: s->mu
 * held. */
static void table_remove(struct blk_shard *s, size_t i)
{
	size_t mask = s->slot_cnt - 1;

	for (size_t j = (i + 1) & mask; s->slots[j].e; j = (j + 1) & mask) {
		size_t home = s->slots[j].tag & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	memset(&s->slots[i], 0, sizeof(s->slots[i]));
}

/* Doubles the slot array when it is half full; false when it could not and has no room for
 * one more entry. Requires: s->mu held. */
static bool table_room(struct blk_shard *s)
{
	if ((s->entry_cnt + 1) * 2 <= s->slot_cnt)
		return true;
	size_t n = s->slot_cnt * 2;
	struct blk_slot *b = n <= UINT32_MAX ? fr_calloc(n, sizeof(*b)) : NULL;

	if (!b)
		return (s->entry_cnt + 1) * 4 <= s->slot_cnt * 3;
	for (size_t i = 0; i < s->slot_cnt; i++) {
		size_t j = s->slots[i].tag & (n - 1);

		if (!s->slots[i].e)
			continue;
		while (b[j].e)
			j = (j + 1) & (n - 1);
		b[j] = s->slots[i];
	}
	fr_free(s->slots);
	s->slots = b;
	s->slot_cnt = n;
	s->hand &= n - 1;
	return true;
}

/* Sweeps the hand until the shard is within its share or only pinned entries are left.
 * Returns the evicted entries chained through their mem (a free entry's bytes are ours), to be
 * freed after the mutex is dropped. Requires: s->mu held. */
static struct blk_cache_entry *shard_evict(struct blk_cache *c, struct blk_shard *s)
{
	struct blk_cache_entry *dead = NULL;
	size_t idle = 0, mask = s->slot_cnt - 1;

	fr_mutex_assert_held(&s->mu);
	/* two turns without an eviction: every mark is clear, so all that is left is pinned */
	while (atomic_load_sc_u64(&s->usage) > s->capacity && idle <= 2 * s->slot_cnt) {
		struct blk_slot *sl = &s->slots[s->hand];
		struct blk_cache_entry *e = sl->e;

		if (e && sl->marked) {
			sl->marked = 0;
			e = NULL;
		}
		if (!e || atomic_load_sc_u32(&e->refs)) {
			s->hand = (s->hand + 1) & mask;
			idle++;
			continue;
		}
		/* the slot gets the next entry of its run, if any: the hand stays to look at it */
		table_remove(s, s->hand);
		s->entry_cnt--;
		atomic_store_sc_u64(&s->usage, s->usage - e->charge);
		atomic_sub_u64(&c->usage, e->charge);
		atomic_sub_u64(&c->entry_cnt, 1);
		idle = 0;
		memcpy(e->mem, &dead, sizeof(dead));
		dead = e;
	}
	/* The sweep reads an unmarked entry's pin count, a cache miss per candidate. The next
	 * miss comes after a read and a decompression: fetch the next candidate's header now. */
	for (size_t i = 0, j = s->hand; i < 8 && s->entry_cnt; i++, j = (j + 1) & mask) {
		if (s->slots[j].e && !s->slots[j].marked) {
			__builtin_prefetch(s->slots[j].e);
			break;
		}
	}
	return dead;
}

static void free_chain(struct blk_cache_entry *e)
{
	while (e) {
		struct blk_cache_entry *next;

		memcpy(&next, e->mem, sizeof(next));
		fr_free(e);
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

		size_t slot_cnt = SLOTS_MIN;

		/* the shares add up to the capacity exactly */
		s->capacity = (capacity >> shard_bits) + (i < (capacity & (n - 1)));
		while (slot_cnt < SLOTS_PRESIZE_MAX &&
		       slot_cnt / 2 < s->capacity / SLOTS_PRESIZE_BLOCK)
			slot_cnt *= 2;
		s->slots = fr_calloc(slot_cnt, sizeof(*s->slots));
		if (!s->slots) {
			for (size_t j = 0; j < i; j++) {
				fr_free(c->shards[j].slots);
				fr_mutex_fini(&c->shards[j].mu);
			}
			fr_free(c->shards);
			fr_free(c);
			return FR_NOMEM;
		}
		fr_mutex_init(&s->mu);
		s->slot_cnt = slot_cnt;
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

		for (size_t j = 0; j < s->slot_cnt; j++) {
			struct blk_cache_entry *e = s->slots[j].e;

			if (e) {
				fr_assert(e->refs == 0);
				fr_free(e);
			}
		}
		fr_free(s->slots);
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
		struct blk_slot *sl = &s->slots[table_find(s, h, file_id, off)];

		e = sl->e;
		if (e) {
			atomic_add_u32(&e->refs, 1);
			sl->marked = 1;
			s->hits++;
		} else {
			s->misses++;
		}
		fr_mutex_unlock(&s->mu);
	} else {
		atomic_add_u64(&c->misses, 1);
	}
	return e;
}

struct blk_cache_entry *blk_cache_entry_new(size_t cap)
{
	/* room for the link free_chain threads through an evicted entry's bytes */
	size_t n = cap < sizeof(void *) ? sizeof(void *) : cap;
	struct blk_cache_entry *e;

	if (n > SIZE_MAX - sizeof(*e))
		return NULL;
	e = fr_malloc(sizeof(*e) + n);
	if (e)
		memset(e, 0, sizeof(*e));
	return e;
}

uint8_t *blk_cache_entry_mem(struct blk_cache_entry *e)
{
	return e->mem;
}

void blk_cache_entry_discard(struct blk_cache_entry *e)
{
	fr_free(e);
}

struct blk_cache_entry *blk_cache_put(struct blk_cache *c, uint64_t file_id, uint64_t off,
				      struct blk_cache_entry *e, size_t len, size_t charge)
{
	uint64_t h = key_hash(file_id, off);
	struct blk_shard *s = shard_of(c, h);
	struct blk_cache_entry *dead;

	e->file_id = file_id;
	e->off = off;
	e->hash = h;
	e->len = len;
	e->charge = charge;
	e->refs = 1;
	e->kept = false;
	if (!c->capacity || charge > s->capacity)
		return e; /* loose: the handle is the only way to it */
	fr_mutex_lock(&s->mu);
	size_t i = table_find(s, h, file_id, off);
	if (s->slots[i].e) {
		/* a concurrent reader of the same block got here first: share its copy */
		struct blk_cache_entry *old = s->slots[i].e;

		atomic_add_u32(&old->refs, 1);
		s->slots[i].marked = 1;
		fr_mutex_unlock(&s->mu);
		fr_free(e);
		return old;
	}
	size_t slot_cnt = s->slot_cnt;
	if (!table_room(s)) {
		fr_mutex_unlock(&s->mu);
		return e; /* loose: no memory for a bigger table */
	}
	if (s->slot_cnt != slot_cnt)
		i = table_find(s, h, file_id, off);
	e->kept = true;
	/* unmarked: used once so far, the first candidate of the next sweep */
	s->slots[i] = (struct blk_slot){.tag = (uint32_t)h,
					.tail = len < INT32_MAX ? (uint32_t)len : INT32_MAX,
					.e = e};
	s->entry_cnt++;
	atomic_store_sc_u64(&s->usage, s->usage + charge);
	atomic_add_u64(&c->usage, charge);
	atomic_add_u64(&c->entry_cnt, 1);
	dead = shard_evict(c, s);
	fr_mutex_unlock(&s->mu);
	free_chain(dead);
	return e;
}

fr_status blk_cache_insert(struct blk_cache *c, uint64_t file_id, uint64_t off, void *mem,
			   size_t len, size_t charge, struct blk_cache_entry **out)
{
	struct blk_cache_entry *e = blk_cache_entry_new(len);

	*out = NULL;
	if (!e)
		return FR_NOMEM;
	memcpy(e->mem, mem, len);
	fr_free(mem);
	*out = blk_cache_put(c, file_id, off, e, len, charge);
	return FR_OK;
}

void blk_cache_release(struct blk_cache *c, struct blk_cache_entry *e)
{
	struct blk_cache_entry *dead;
	struct blk_shard *s;

	if (!e)
		return;
	if (!e->kept) {
		fr_free(e);
		return;
	}
	s = shard_of(c, e->hash);
	/* the entry may be gone once the pin is: nothing of it is read after this */
	if (atomic_add_sc_u32(&e->refs, UINT32_MAX) != 0)
		return;
	/* the pins may have held the shard above its share: this release lets it shrink */
	if (atomic_load_sc_u64(&s->usage) <= s->capacity)
		return;
	fr_mutex_lock(&s->mu);
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
