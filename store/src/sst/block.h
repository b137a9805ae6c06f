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
};

void blk_builder_init(struct blk_builder *b, uint32_t restart_interval);
void blk_builder_fini(struct blk_builder *b);
/* Appends an entry. Keys must ascend in the order the reader will use (the caller checks);
 * FR_INVALID when the block would pass 4 GiB, FR_NOMEM. */
fr_status blk_builder_add(struct blk_builder *b, const uint8_t *key, size_t klen, const void *val,
			  size_t vlen);
/* Size the block would have if finished now. */
size_t blk_builder_size(const struct blk_builder *b);
static inline bool blk_builder_is_empty(const struct blk_builder *b)
{
	return b->entry_cnt == 0;
}
/* Appends the restart array; *data stays valid until the next call on b. */
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

typedef int (*blk_cmp_fn)(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* A view of block contents, checked by blk_init. */
struct blk {
	const uint8_t *data;
	size_t len;
	size_t restarts_off; /* entries are data[0..restarts_off) */
	uint32_t restart_cnt;
	blk_cmp_fn cmp;
	size_t min_key_len; /* shorter keys are corruption (8 for internal keys) */
	const char *path;   /* for messages: the file and ... */
	uint64_t file_off;  /* ... the block's offset in it */
};

/* Checks the restart array of data[0..len) (borrowed for the life of b; so are path and cmp). */
fr_status blk_init(struct blk *b, const uint8_t *data, size_t len, blk_cmp_fn cmp,
		   size_t min_key_len, const char *path, uint64_t file_off, fr_error *err);
/* Restart offset i (i < restart_cnt; checked by blk_init). */
uint32_t blk_restart(const struct blk *b, uint32_t i);

/* A cursor in one blk. key and val are views valid until the next call on the iterator. */
struct blk_iter {
	const struct blk *b;
	bool valid;
	size_t cur_off;	      /* offset of the current entry */
	size_t next_off;      /* offset just past it */
	uint32_t restart_idx; /* the restart run holding the current entry */
	struct fr_buf key;
	const uint8_t *val;
	size_t val_len;
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

static inline const uint8_t *blk_iter_key(const struct blk_iter *it)
{
	return it->key.data;
}
static inline size_t blk_iter_key_len(const struct blk_iter *it)
{
	return it->key.len;
}

#endif
