/* SPDX-License-Identifier: MIT */
/*
 * sst.h - sorted string tables (FORMAT.md §4): immutable files of internal entries in data
 * blocks (prefix compression, restart points, optionally a hash index of user keys, LZ4 when it
 * saves >= 12.5%, xxh3 per block), an index block (cut into partitions under a top-level index
 * when it grows past SST_INDEX_PARTITION_SIZE), a bloom filter over user keys, a range-tombstone
 * block, a properties block and a footer with magic and version.
 *
 * sst_writer: one thread at a time. sst_reader: immutable once open, thread-safe, refcounted
 * (sst_reader_ref needs an existing reference). Every byte read from disk is checked: bad bytes
 * are FR_CORRUPTION naming the file and offset, never a crash.
 *
 * A reader may share a read environment with the other readers of a database: a block cache
 * (cache.h) through which data, index and filter blocks are read, and a file table (io/ftab.h)
 * that bounds the descriptors the readers hold. Without one, a reader keeps its own descriptor
 * and its own copies of index and filter, and reads each data block from disk on every access.
 *
 * A partitioned index (FORMAT.md §4.4.1): the reader keeps the top level (about 40 bytes per
 * 6 MiB of table) with or without a cache. With a cache, open reads and checks only the top
 * level, and each partition is read through the cache when a read first needs it, and checked
 * (checksum, then every entry, as open checks a single index) each time it comes from disk,
 * before the cache may keep it. Without a cache, open reads and checks every partition and
 * the reader keeps them, as it keeps a single index.
 */
#ifndef FRACTIO_SST_SST_H
#define FRACTIO_SST_SST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct blk_cache;
struct fr_io;
struct ftab;
struct kv_iter;
struct range_del;
struct sst_writer;
struct sst_reader;

/* Index partitions: the writer closes a partition once it reaches this size, and a table whose
 * index fits in one keeps the single index block of format version 1. 64 KiB of index is about
 * 1500 entries (a table of ~6 MiB in 4 KiB blocks); below that one block costs little to load
 * at open, above it a cache holds the partitions that reads use instead of the whole index. */
#define SST_INDEX_PARTITION_SIZE (64u * 1024)

struct sst_options {
	uint32_t block_size;         /* target uncompressed data block size */
	uint32_t restart_interval;   /* entries between restart points */
	uint32_t bloom_bits_per_key; /* 0: no filter */
	bool compress;               /* LZ4 */
	/* data blocks carry a hash index of their user keys (FORMAT.md §4.3.1): point reads skip
	 * the binary search of the restart array; costs ~1.3 bytes per distinct key per block */
	bool hash_index;
	uint32_t index_partition_size; /* 0: SST_INDEX_PARTITION_SIZE; tests set it small */
};
/* 4096, 16, 10, true, false, 0 */
void sst_options_default(struct sst_options *o);

/* How many stored bytes of one blob file a table's VT_BLOB entries refer to (FORMAT.md §5.2,
 * kept by the manifest, not in the table file). */
struct sst_blob_ref {
	uint64_t file_id;
	uint64_t bytes;
};

/* What a finished table holds; smallest/largest are user keys (fr_malloc'd) bounding every
 * point key and every range tombstone (start and end) in the table. blob_refs (fr_malloc'd,
 * ascending by file id) is filled by whoever writes VT_BLOB entries (compaction), not by the
 * writer. */
struct sst_meta {
	uint64_t id;
	uint64_t file_size;
	uint64_t entry_cnt;      /* point entries (all versions, tombstones included) */
	uint64_t tombstone_cnt;  /* VT_DEL and VT_WEAK_DEL entries */
	uint64_t range_del_cnt;
	uint64_t min_seqno;
	uint64_t max_seqno;
	uint64_t created_s;      /* wall-clock seconds since the epoch when written (0: unknown) */
	/* 0, or the seqno every entry of the table reads as: an ingested table is written with
	 * seqno 0 and given its seqno when published (recorded in the manifest, FORMAT.md §5.2);
	 * min_seqno and max_seqno are then this value too */
	uint64_t global_seqno;
	uint8_t *smallest;
	size_t smallest_len;
	uint8_t *largest;
	size_t largest_len;
	struct sst_blob_ref *blob_refs;
	size_t blob_ref_cnt;
};
void sst_meta_fini(struct sst_meta *m);
fr_status sst_meta_copy(struct sst_meta *dst, const struct sst_meta *src);

/* Creates table file `path` (must not exist). */
fr_status sst_writer_open(struct fr_io *io, const char *path, uint64_t id,
			  const struct sst_options *o, struct sst_writer **out, fr_error *err);
/* Adds an entry; internal keys must be strictly ascending (else FR_INVALID). */
fr_status sst_writer_add(struct sst_writer *w, const uint8_t *ikey, size_t iklen,
			 const void *val, size_t vlen, fr_error *err);
/* Adds a range tombstone; any order. */
fr_status sst_writer_add_range_del(struct sst_writer *w, const struct range_del *rd,
				   fr_error *err);
/* Bytes written so far plus the pending block (to cut output tables at a target size). */
uint64_t sst_writer_size(const struct sst_writer *w);
uint64_t sst_writer_entry_cnt(const struct sst_writer *w);
/* Writes the remaining blocks and footer, fsyncs and closes; fills *meta; frees w on any
 * return. A table must have at least one entry or range tombstone (else FR_INVALID). */
fr_status sst_writer_finish(struct sst_writer *w, struct sst_meta *meta, fr_error *err);
/* Closes, deletes the partial file and frees w. NULL allowed. */
void sst_writer_abort(struct sst_writer *w);

/* What the readers of one database share; both borrowed, they must outlive every reader opened
 * with them. A NULL member means the reader does without it (see the file comment). */
struct sst_read_env {
	/* Data blocks, and the index (or index partitions) and filter blocks, are read through
	 * it; the reader keeps no copy of index or filter, only the top level of a partitioned
	 * index. Only blocks that passed their checksum and structure checks are inserted. The
	 * cache is keyed by the table id, which must name this file alone for the cache's life. */
	struct blk_cache *cache;
	/* Every read goes through it, under the table id; the reader holds no descriptor. */
	struct ftab *files;
};

/* Opens and checks a table: footer, index, filter, range tombstones and properties are read
 * and verified (the whole index is walked once; of a partitioned index with a cache, only the
 * top level); data blocks are read on demand. Reads tables of format versions 1 and 2. Range
 * tombstones, properties and a top-level index stay in the reader's memory; index and filter
 * too unless env has a cache, in which case they are inserted into it. env NULL is an empty
 * environment. */
fr_status sst_reader_open_env(struct fr_io *io, const char *path, uint64_t id,
			      const struct sst_read_env *env, struct sst_reader **out,
			      fr_error *err);
/* sst_reader_open_env with no environment. */
fr_status sst_reader_open(struct fr_io *io, const char *path, uint64_t id,
			  struct sst_reader **out, fr_error *err);
/* Makes every entry and range tombstone of r read as written at seqno (> 0): an ingested table,
 * stored with seqno 0 (FORMAT.md §5.2). Point reads at a snapshot below it find nothing;
 * iterators hand out internal keys carrying it. Call once, right after open, before r is
 * shared. FR_CORRUPTION when the table holds an entry of another seqno. */
fr_status sst_reader_set_global_seqno(struct sst_reader *r, uint64_t seqno, fr_error *err);
void sst_reader_ref(struct sst_reader *r);
void sst_reader_unref(struct sst_reader *r);
const struct sst_meta *sst_reader_meta(const struct sst_reader *r);
/* False only when the bloom filter proves ukey absent (true when the filter cannot be read:
 * the data blocks then give the answer, or the error). */
bool sst_reader_may_contain(const struct sst_reader *r, const void *ukey, size_t ulen);
/* The newest version of ukey with seqno <= snap (any type); *val is fr_malloc'd (NULL for an
 * empty value is allowed). FR_NOT_FOUND if none. Range tombstones are not applied here. */
fr_status sst_reader_get(struct sst_reader *r, const void *ukey, size_t ulen, uint64_t snap,
			 uint8_t *type, uint64_t *seqno, void **val, size_t *vlen, fr_error *err);
/* The table's range tombstones, sorted by start; owned by the reader. */
size_t sst_reader_range_dels(const struct sst_reader *r, const struct range_del **out);
/* An iterator over every entry; holds a reference on r until kv_free. Blocks it reads from
 * disk are put in the reader's cache (if any). */
fr_status sst_iter_new(struct sst_reader *r, struct kv_iter **out, fr_error *err);

/* sst_iter_new flags */
enum {
	/* Blocks found in the cache are used, but blocks read from disk are not inserted: for
	 * scans that read each block once (compaction), which would only push out the blocks
	 * that point reads need. */
	SST_ITER_NO_FILL = 1 << 0,
};
fr_status sst_iter_new_flags(struct sst_reader *r, unsigned flags, struct kv_iter **out,
			     fr_error *err);

#endif
