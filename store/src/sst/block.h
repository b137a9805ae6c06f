/* SPDX-License-Identifier: MIT */
/*
 * block.h - the sorted block of a table (FORMAT.md §4.3), used for data blocks and the index
 * block, and the stored form every block takes on disk (§4.2: optional LZ4 plus a 9-byte
 * trailer with an xxh3 checksum).
 *
 * A block is a run of entries `varint shared, varint unshared, varint value_len, key delta,
 * value`, where the key shares `shared` leading bytes with the previous key; every
 * restart_interval entries the key is stored whole (shared = 0) and its offset is listed in
 * the restart array that ends the block: u32 offsets, then a u32 count.
 *
 * A block of internal keys may also carry a hash index (§4.3.1) between its restart array and
 * the count: one u8 bucket per slot, mapping the hash of a user key to the restart run that
 * holds the key's first entry in the block, so that a point read can skip the binary search.
 * The count's top bit says it is there; a block without one reads exactly as before.
 *
 * blk_builder: one thread at a time. struct blk is an immutable view of block bytes owned by
 * the caller; any number of blk_iter may read one blk concurrently. A blk_iter is used by one
 * thread at a time. Every decoding step checks lengths: bad bytes are FR_CORRUPTION naming
 * the file and the block's file offset, never a read outside the block.
 */
#ifndef FRACTIO_SST_BLOCK_H
#define FRACTIO_SST_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "fractio.h"

/* ---- building ---- */

struct blk_builder {
	struct fr_buf buf;	/* entries so far */
	struct fr_buf restarts; /* u32 LE restart offsets */
	struct fr_buf last_key; /* the previous key added */
	uint32_t interval;	/* entries per restart run (>= 1) */
	uint32_t run;		/* entries since the last restart */
	uint64_t entry_cnt;
	bool hash;		/* give finished blocks a hash index (§4.3.1) */
	struct fr_buf ukeys;	/* with hash, per distinct user key: u64 hash, u32 run */
};

void blk_builder_init(struct blk_builder *b, uint32_t restart_interval);
void blk_builder_fini(struct blk_builder *b);
/* Turns the hash index (§4.3.1) on or off for the blocks b builds from now on; keys are then
 * internal keys (user key and 8-byte trailer), hashed by their user key. b must be empty. */
void blk_builder_set_hash(struct blk_builder *b, bool on);
/* Appends an entry. Keys must ascend in the order the reader will use (the caller checks);
 * FR_INVALID when the block would pass 4 GiB or, with a hash index, for a key shorter than a
 * trailer; FR_NOMEM. */
fr_status blk_builder_add(struct blk_builder *b, const uint8_t *key, size_t klen, const void *val,
			  size_t vlen);
/* Size the block would have if finished now (hash index included). */
size_t blk_builder_size(const struct blk_builder *b);
static inline bool blk_builder_is_empty(const struct blk_builder *b)
{
	return b->entry_cnt == 0;
}
/* Appends the restart array (and the hash index, when on and the block has at most
 * SST_HASH_RESTART_MAX + 1 restart points); *data stays valid until the next call on b. */
fr_status blk_builder_finish(struct blk_builder *b, const uint8_t **data, size_t *len);
/* Empties b for the next block (keeps its memory). */
void blk_builder_reset(struct blk_builder *b);

/* Appends to out the stored form of block contents raw[0..len): LZ4 (when compress is set and it
 * saves at least 1/8 of len) or the raw bytes, then the trailer. FR_NOMEM. */
fr_status blk_stored_encode(const uint8_t *raw, size_t len, bool compress, struct fr_buf *out);

/* ---- reading ---- */

/* Checks the trailer of a stored block: stored[0..len) is the payload plus its trailer, read at
 * `off` in `path`. On FR_OK the contents are [*data, *data + *data_len): a view into stored, or
 * (LZ4) a fresh buffer returned in *owned for the caller to fr_free (NULL otherwise). */
fr_status blk_stored_decode(const uint8_t *stored, size_t len, const char *path, uint64_t off,
			    const uint8_t **data, size_t *data_len, uint8_t **owned, fr_error *err);

/* blk_stored_decode in two steps, for a caller that picks where the contents go: check checks
 * the trailer and the stated length, unpack writes the raw_len bytes of contents to dst. The
 * view points into stored, which must outlive it. */
struct blk_stored {
	const uint8_t *payload; /* the stored bytes before the trailer */
	size_t payload_len;
	bool lz4;               /* else the payload is the contents */
	size_t raw_len;         /* the contents' length */
};
fr_status blk_stored_check(const uint8_t *stored, size_t len, const char *path, uint64_t off,
			   struct blk_stored *out, fr_error *err);
fr_status blk_stored_unpack(const struct blk_stored *s, uint8_t *dst, const char *path,
			    uint64_t off, fr_error *err);

typedef int (*blk_cmp_fn)(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* The internal-key order (ikey.h; keys of at least 8 bytes): blocks that use it compare
 * inline. */
int blk_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* A view of block contents, checked by blk_init. */
struct blk {
	const uint8_t *data;
	size_t len;
	size_t restarts_off; /* entries are data[0..restarts_off) */
	uint32_t restart_cnt;
	uint32_t bucket_cnt;	/* hash index slots; 0: the block has none */
	const uint8_t *buckets; /* each < restart_cnt, or SST_HASH_COLLISION / SST_HASH_NONE */
	blk_cmp_fn cmp;
	size_t min_key_len; /* shorter keys are corruption (8 for internal keys) */
	const char *path;   /* for messages: the file and ... */
	uint64_t file_off;  /* ... the block's offset in it */
};

/* Checks the restart array and the hash index (if any) of data[0..len) (borrowed for the life
 * of b; so are path and cmp). */
fr_status blk_init(struct blk *b, const uint8_t *data, size_t len, blk_cmp_fn cmp,
		   size_t min_key_len, const char *path, uint64_t file_off, fr_error *err);
/* The same view of bytes that blk_init has accepted before, in O(1): for cached blocks. */
void blk_init_checked(struct blk *b, const uint8_t *data, size_t len, blk_cmp_fn cmp,
		      size_t min_key_len, const char *path, uint64_t file_off);
/* Restart offset i (i < restart_cnt; checked by blk_init). */
uint32_t blk_restart(const struct blk *b, uint32_t i);

/* Key bytes a blk_iter holds without an allocation: internal keys of most tables fit. */
#define BLK_KEY_INLINE 64

/* A cursor in one blk. key and val are views valid until the next call on the iterator.
 * key.data points at inl until a key outgrows it, so a blk_iter is never copied or moved
 * once initialised (it is embedded in place, or lives on one stack frame). */
struct blk_iter {
	const struct blk *b;
	bool valid;
	size_t cur_off;	      /* offset of the current entry */
	size_t next_off;      /* offset just past it */
	uint32_t restart_idx; /* the restart run holding the current entry */
	struct fr_buf key;    /* data == inl, or a heap buffer of cap bytes */
	const uint8_t *val;
	size_t val_len;
	uint8_t inl[BLK_KEY_INLINE];
};

void blk_iter_init(struct blk_iter *it, const struct blk *b);
/* Points an iterator at another block (unpositioned), keeping its key buffer. */
void blk_iter_set_block(struct blk_iter *it, const struct blk *b);
void blk_iter_fini(struct blk_iter *it);

/* Each positioning call leaves the iterator valid or not; a non-OK return (FR_CORRUPTION,
 * FR_NOMEM) always leaves it invalid. */
fr_status blk_iter_seek_first(struct blk_iter *it, fr_error *err);
fr_status blk_iter_seek_last(struct blk_iter *it, fr_error *err);
/* the first entry with key >= target */
fr_status blk_iter_seek(struct blk_iter *it, const uint8_t *target, size_t tlen, fr_error *err);
fr_status blk_iter_next(struct blk_iter *it, fr_error *err);
fr_status blk_iter_prev(struct blk_iter *it, fr_error *err);
/*
 * For a point read of the user key whose internal-key seek target is `target` and whose
 * XXH3-64 hash is `hash`, in a block of internal keys. Without a hash index, or when the key's
 * bucket is a collision, this is blk_iter_seek. Otherwise:
 * - bucket SST_HASH_NONE: the block holds no entry of the user key; *absent is set and the
 *   iterator is left invalid;
 * - a restart run: the iterator scans from that run to the first entry >= target. When the
 *   block holds the user key this is exactly where blk_iter_seek lands; when it does not (the
 *   bucket is another key's), it lands on an entry of another user key or past the end, which
 *   a point read treats like blk_iter_seek's answer (neither is the key it wants).
 */
fr_status blk_iter_seek_hash(struct blk_iter *it, const uint8_t *target, size_t tlen,
			     uint64_t hash, bool *absent, fr_error *err);

static inline const uint8_t *blk_iter_key(const struct blk_iter *it)
{
	return it->key.data;
}
static inline size_t blk_iter_key_len(const struct blk_iter *it)
{
	return it->key.len;
}

/* What blk_iter_seek_hash and blk_iter_seek did on the calling thread since it started (zeros
 * in builds without FR_TESTING): tests use them to prove the hash index spared the binary
 * search. */
struct blk_test_counts {
	uint64_t hash_jump;	 /* went straight to a restart run */
	uint64_t hash_absent;	 /* answered "absent" from the bucket alone */
	uint64_t hash_collision; /* fell back to the binary search */
	uint64_t binary_search;	 /* blk_iter_seek calls: fallbacks and index seeks too */
};
void blk_test_counts(struct blk_test_counts *out);

#endif
