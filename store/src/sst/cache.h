/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the block cache of the read path: checked, decompressed table blocks shared by every
 * reader of a database, keyed by (file id, block offset) and bounded in bytes.
 *
 * The cache is split into shards (the key's hash picks one); each has its own mutex, hash table
 * and an equal share of the capacity. Recency is CLOCK (second chance): a hit marks its entry
 * referenced, and eviction sweeps a hand over the shard's table, passing over pinned entries,
 * clearing marks, and evicting the first unpinned entry it finds unmarked. A block used once
 * is therefore the first to go, and one used again survives a sweep. An entry's bytes never
 * change between insertion and freeing, so a pinned entry is read with no lock held.
 *
 * Pinning: lookup and insert hand out a handle that pins its entry until blk_cache_release. A
 * pinned entry is never evicted. When a shard's pinned entries alone fill its share, inserting
 * one more pushes usage past the capacity for as long as the pins last; the release that
 * unpins an entry of a shard above its share evicts until the shard is back within it (or
 * only pinned entries are left). An entry whose charge exceeds a shard's share is not kept at
 * all (its handle works, but nobody else can find it), so one huge block cannot flush a shard.
 *
 * Keys: a file id must name the same bytes for the life of the cache (table ids are never
 * reused). Entries of a deleted file are not dropped eagerly: nothing looks them up any more, so
 * they drift to the cold end and are evicted like any other.
 *
 * Thread-safety: thread-safe. The shard mutexes are leaf locks, held only for table updates,
 * never across I/O or a call out of this module. Releasing a pin takes no lock unless the
 * shard is above its share.
 */
#ifndef FRACTIO_SST_CACHE_H
#define FRACTIO_SST_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct blk_cache;
struct blk_cache_entry; /* a handle: one pin on an entry */

/* 16 shards: enough that a few reader threads rarely meet on one mutex. */
#define BLK_CACHE_SHARD_BITS 4
#define BLK_CACHE_SHARD_BITS_MAX 10
/* Bytes of bookkeeping per entry (its header and four hash slots: a table that has grown is at
 * least a quarter full); callers add it to an entry's charge so that the capacity bounds real
 * memory, not only block bytes. A new cache's tables are sized for 4 KiB blocks, 16 bytes per
 * 2 KiB of capacity and at most 1 MiB a shard, and are not charged. */
#define BLK_CACHE_ENTRY_OVERHEAD 112

struct blk_cache_stats {
	uint64_t hits;     /* lookups that found their entry */
	uint64_t misses;   /* lookups that did not (every lookup when the capacity is 0) */
	uint64_t usage;    /* charges of the entries the cache holds, pinned ones included */
	uint64_t capacity;
	uint64_t entry_cnt;
};

/* A cache of `capacity` bytes in 2^shard_bits shards (0..BLK_CACHE_SHARD_BITS_MAX, else
 * FR_INVALID), each holding capacity >> shard_bits bytes (the first shards take the remainder).
 * Capacity 0 turns caching off: lookups miss and inserted blocks live only as long as their
 * handle. FR_NOMEM. */
fr_status blk_cache_new(size_t capacity, unsigned shard_bits, struct blk_cache **out);
/* Frees every entry. No handle may be outstanding. NULL allowed. */
void blk_cache_free(struct blk_cache *c);

/* The entry for (file_id, off), pinned, or NULL. Counts a hit or a miss. */
struct blk_cache_entry *blk_cache_lookup(struct blk_cache *c, uint64_t file_id, uint64_t off);
/*
 * Puts mem[0..len) (fr_malloc'd) under (file_id, off), charged `charge` bytes, and returns a
 * pinned handle in *out. On FR_OK mem has been freed (the entry holds a copy): if the key was
 * present already, *out pins the existing entry, whose bytes are the same block. On FR_NOMEM
 * (no room for the entry) mem stays the caller's and *out is NULL. blk_cache_entry_new and
 * blk_cache_put do the same without the copy.
 */
fr_status blk_cache_insert(struct blk_cache *c, uint64_t file_id, uint64_t off, void *mem,
			   size_t len, size_t charge, struct blk_cache_entry **out);

/*
 * An entry with room for `cap` bytes of block and header and block in one allocation, so
 * that a block is decompressed (or read) straight into the memory the cache keeps. It belongs
 * to the caller, who fills blk_cache_entry_mem(e) and then either puts it into a cache with
 * blk_cache_put or frees it with blk_cache_entry_discard. NULL when out of memory.
 */
struct blk_cache_entry *blk_cache_entry_new(size_t cap);
uint8_t *blk_cache_entry_mem(struct blk_cache_entry *e);
void blk_cache_entry_discard(struct blk_cache_entry *e);
/* Puts entry e from blk_cache_entry_new, holding len (<= its cap) bytes of block, under
 * (file_id, off), charged `charge` bytes, and returns a pinned handle: e itself, or, when the
 * key was present already, the existing entry (whose bytes are the same block) and e is
 * freed. Never fails: without memory for the table, e is handed back loose. */
struct blk_cache_entry *blk_cache_put(struct blk_cache *c, uint64_t file_id, uint64_t off,
				      struct blk_cache_entry *e, size_t len, size_t charge);
/* Drops the pin of a handle from lookup or insert. NULL allowed. */
void blk_cache_release(struct blk_cache *c, struct blk_cache_entry *e);

/* The entry's bytes: immutable, valid until its handle is released. */
const uint8_t *blk_cache_data(const struct blk_cache_entry *e);
size_t blk_cache_len(const struct blk_cache_entry *e);

/* A snapshot of the counters; each is read atomically, not all at one instant. */
void blk_cache_stats(const struct blk_cache *c, struct blk_cache_stats *out);

#endif
