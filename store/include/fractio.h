/* SPDX-License-Identifier: MIT */
/*
 * fractio.h - the public interface of libfractio, an embedded LSM-tree key-value engine.
 *
 * A database is a directory owned by one process at a time. It holds keyspaces: named,
 * independent, ordered maps from byte-string keys to byte-string values. Writes go to a shared
 * write-ahead journal and to in-memory tables, which are flushed to sorted table files and
 * compacted in the background. Batches write atomically across keyspaces; snapshots read a
 * consistent cross-keyspace view at one sequence number.
 *
 * Conventions:
 *  - Every fallible call returns fr_status (FR_OK == 0) and, on failure, fills the optional
 *    caller-owned fr_error with a one-line message. The error is never allocated.
 *  - Pointer arguments are borrowed for the duration of the call; the engine copies what it keeps.
 *  - Out-parameters are written only on FR_OK (pointers are set to NULL on failure).
 *  - Returned buffers are owned by the caller and freed with fr_free().
 *  - fr_db, fr_keyspace and fr_snapshot handles are thread-safe. fr_batch and fr_iter are
 *    used by one thread at a time.
 */
#ifndef FRACTIO_H
#define FRACTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FR_VERSION_MAJOR 0
#define FR_VERSION_MINOR 1
#define FR_VERSION_PATCH 0

#define FR_API __attribute__((visibility("default")))

typedef struct fr_db fr_db;
typedef struct fr_keyspace fr_keyspace;
typedef struct fr_batch fr_batch;
typedef struct fr_snapshot fr_snapshot;
typedef struct fr_iter fr_iter;
typedef struct fr_tx fr_tx;
typedef struct fr_ingest fr_ingest;
/* The file-system interface the engine does all its I/O through. NULL means the real one;
 * tests pass a fault-injecting or in-memory one (internal). */
typedef struct fr_io fr_io;
typedef uint64_t fr_seqno;

typedef enum fr_status {
	FR_OK = 0,
	FR_NOT_FOUND = 1,  /* key, keyspace or entry absent */
	FR_INVALID = 2,    /* bad argument or misuse */
	FR_CORRUPTION = 3, /* bad bytes on disk; the message names the file and offset */
	FR_IO = 4,         /* an I/O call failed; sys_errno kept */
	FR_NO_SPACE = 5,   /* the disk is full (ENOSPC, EDQUOT) */
	FR_NOMEM = 6,      /* out of memory */
	FR_BUSY = 7,       /* the database directory is locked by another opener */
	FR_CONFLICT = 8,   /* an optimistic transaction conflicted */
	FR_POISONED = 9,   /* a background write failed; reopen the database */
	FR_CLOSED = 10,    /* the database is closing or closed */
} fr_status;

#define FR_ERROR_MSG_MAX 256

/* Details of a failure, owned by the caller. Written only when a call fails. */
typedef struct fr_error {
	fr_status code;
	int sys_errno;   /* errno of the failing system call, or 0 */
	uint64_t offset; /* for FR_CORRUPTION: byte offset in the named file */
	char msg[FR_ERROR_MSG_MAX];
} fr_error;

/* Static text for a status code. */
FR_API const char *fr_status_str(fr_status st);

/* How far a commit is persisted before it returns. */
typedef enum fr_persist {
	FR_PERSIST_BUFFER = 0,    /* handed to the OS: survives the death of the process */
	FR_PERSIST_SYNC_DATA = 1, /* fdatasync: survives the death of the machine */
	FR_PERSIST_SYNC_ALL = 2,  /* fsync */
} fr_persist;

/* Frees any buffer the library returned. Accepts NULL. */
FR_API void fr_free(void *p);

/* ---- logging: the library prints nothing unless a sink is installed ---- */
typedef enum fr_log_level {
	FR_LOG_ERR = 0,
	FR_LOG_WARN = 1,
	FR_LOG_INFO = 2,
	FR_LOG_DEBUG = 3,
} fr_log_level;
typedef void (*fr_log_fn)(void *ctx, fr_log_level level, const char *line);
/* Installs a process-wide sink for lines at `level` and more severe. fn NULL removes it. */
FR_API void fr_log_set(fr_log_fn fn, void *ctx, fr_log_level level);

/* ---- database ---- */
typedef struct fr_db_options {
	size_t journal_segment_max;  /* rotate journal segments at this size (default 16 MiB) */
	size_t memtable_max;         /* seal a tree's memtable at this size (default 16 MiB) */
	size_t write_buffer_max;     /* all memtables together; past it the largest tree is
				      * flushed first (default 64 MiB) */
	size_t journal_max;          /* journal bytes on disk; past it the trees pinning the
				      * oldest segment are flushed (default 512 MiB) */
	size_t block_cache_bytes;    /* shared cache (CLOCK) of data, index and filter blocks
				      * (default 64 MiB; 0 disables) */
	uint32_t max_open_files;     /* table files kept open at once (default 512, minimum 16) */
	uint32_t worker_threads;     /* background flush and compaction threads (default 2) */
	fr_persist default_persist;  /* for fr_put/fr_remove/... (default BUFFER) */
	bool create_if_missing;      /* default true */
	bool background;             /* run flush and compaction on a thread (default true) */
	bool read_only;              /* open without writing (no journal, no background work) */
	fr_io *io;                   /* NULL: the real file system */
} fr_db_options;

FR_API void fr_db_options_init(fr_db_options *o);
/* Creates or recovers the database in directory `path`. FR_BUSY when another handle or
 * process holds it. */
FR_API fr_status fr_db_open(const char *path, const fr_db_options *o, fr_db **out, fr_error *err);
/* Flushes nothing (the journal holds it), stops background work and releases the directory.
 * Keyspace handles must have been closed. Accepts NULL. */
FR_API fr_status fr_db_close(fr_db *db, fr_error *err);
/* Makes every commit so far durable to the given degree. */
FR_API fr_status fr_db_persist(fr_db *db, fr_persist mode, fr_error *err);
/* Seals and flushes every memtable to tables and waits for it. */
FR_API fr_status fr_db_flush(fr_db *db, fr_error *err);
/* Waits until background flushes and compactions have nothing left to do. */
FR_API fr_status fr_db_wait_idle(fr_db *db, fr_error *err);
/* The sequence number of the newest commit visible to readers. */
FR_API fr_seqno fr_db_seqno(fr_db *db);

typedef struct fr_db_stats {
	fr_seqno seqno;             /* last sequence number allocated */
	fr_seqno visible_seqno;     /* last sequence number visible to readers */
	uint64_t keyspace_cnt;
	uint64_t tree_cnt;
	uint64_t table_cnt;
	uint64_t table_bytes;
	uint64_t journal_bytes;
	uint64_t journal_segment_cnt;
	uint64_t memtable_bytes;    /* active and sealed memtables */
	uint64_t sealed_memtable_cnt;
	uint64_t flushes_done;
	uint64_t compactions_done;
	uint64_t compaction_read_bytes;
	uint64_t compaction_write_bytes;
	uint64_t flush_write_bytes;
	uint64_t user_write_bytes;  /* key and value bytes committed */
	uint64_t journal_write_bytes;
	uint64_t disk_total_bytes;  /* size of the file system holding the database (0: unknown) */
	uint64_t disk_avail_bytes;  /* bytes available to it there */
	uint64_t flushes_pending;   /* sealed memtables not yet flushed */
	uint64_t compactions_active;
	uint64_t compaction_time_us; /* spent in finished compactions */
	uint64_t cache_capacity;    /* block cache */
	uint64_t cache_bytes;
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t open_files;        /* table files open now */
	uint64_t write_stall_us;    /* writers delayed or halted by stalls, in total */
	uint64_t write_stalls;      /* commits that were delayed or halted */
	uint64_t blob_file_cnt;     /* blob files of every tree */
	uint64_t blob_bytes;        /* their size on disk */
	uint64_t blob_stale_bytes;  /* of which no table refers to any more */
	bool poisoned;
} fr_db_stats;
FR_API fr_status fr_db_stats_get(fr_db *db, fr_db_stats *out, fr_error *err);

/* ---- keyspaces ---- */
#define FR_KEYSPACE_NAME_MAX 255

#define FR_LEVEL_CNT 7

typedef enum fr_compaction {
	FR_COMPACTION_LEVELED = 0, /* one sorted run per level, each level ratio times the last */
	FR_COMPACTION_TIERED = 1,  /* merge runs of similar size; less rewriting, more to read */
	FR_COMPACTION_FIFO = 2,    /* never merge; drop the oldest tables past a size or age */
} fr_compaction;

/* Table options of one level; the zero/-1 values inherit the keyspace's. */
typedef struct fr_level_options {
	uint32_t block_size;        /* 0: inherit */
	uint32_t restart_interval;  /* 0: inherit */
	int32_t bloom_bits_per_key; /* -1: inherit; 0: no filter (e.g. on the last level) */
	int8_t compress;            /* -1: inherit; 0: off; 1: LZ4 */
	int8_t hash_index;          /* -1: inherit; 0: off; 1: on */
} fr_level_options;

typedef struct fr_keyspace_options {
	/* NULL: a tree of its own. Otherwise the name of a shared tree the keyspace lives in,
	 * created on first use with this keyspace's tree options. */
	const char *tree;
	uint32_t block_size;         /* data block target (default 4096) */
	uint32_t restart_interval;   /* keys between restart points (default 16) */
	uint32_t bloom_bits_per_key; /* 0 disables the filter (default 10) */
	bool compress;               /* LZ4 per block when it saves >= 12.5% (default true) */
	bool hash_index;             /* data blocks carry a hash index that lets point reads skip
				      * the binary search (default false; about 2 bytes a key) */
	fr_level_options level[FR_LEVEL_CNT]; /* per-level overrides (default: inherit all) */
	fr_compaction compaction;    /* default FR_COMPACTION_LEVELED */
	uint32_t l0_trigger;         /* leveled, tiered: compact L0 at this many tables (4) */
	uint32_t level_ratio;        /* leveled: size ratio of adjacent levels (10);
				      * tiered: runs of similar size merged at once (4) */
	uint64_t table_target_size;  /* cut compaction output tables near this (64 MiB) */
	uint64_t fifo_limit_bytes;   /* FIFO: drop the oldest tables past this (1 GiB) */
	uint64_t fifo_ttl_seconds;   /* FIFO: drop tables older than this (0: never) */
	/* KV separation: values of at least blob_threshold bytes are written to blob files at
	 * flush; tables keep a small handle. 0 (the default) keeps every value in the tables. */
	uint32_t blob_threshold;
	uint64_t blob_file_target;   /* cut blob files near this size (default 64 MiB) */
	bool blob_compress;          /* LZ4 per value when it saves >= 12.5% (default true) */
	/* Blob GC: a blob file whose stale (unreferenced) bytes pass this percentage of its size
	 * has its live values rewritten by the next compaction that reaches it, and is then
	 * deleted (default 50; 0: never rewrite, a file goes only when wholly stale). */
	uint32_t blob_gc_stale_pct;
} fr_keyspace_options;

FR_API void fr_keyspace_options_init(fr_keyspace_options *o);
/* Opens keyspace `name`, creating it (one journaled commit) if missing. Options apply only at
 * creation; they are stored and restored on reopen. Release with fr_keyspace_close. */
FR_API fr_status fr_keyspace_open(fr_db *db, const char *name, const fr_keyspace_options *o,
				  fr_keyspace **out, fr_error *err);
/* Releases a handle. Accepts NULL. */
FR_API void fr_keyspace_close(fr_keyspace *ks);
FR_API fr_status fr_keyspace_exists(fr_db *db, const char *name, bool *out, fr_error *err);
/* Drops keyspace `name` and all its data (one journaled commit). Open handles to it
 * return FR_NOT_FOUND afterwards. */
FR_API fr_status fr_keyspace_delete(fr_db *db, const char *name, fr_error *err);
/* Calls fn for every keyspace, in name order. A non-zero return from fn stops the walk. */
typedef int (*fr_keyspace_list_fn)(void *ctx, const char *name);
FR_API fr_status fr_keyspace_list(fr_db *db, fr_keyspace_list_fn fn, void *ctx, fr_error *err);
FR_API const char *fr_keyspace_name(const fr_keyspace *ks);

/* ---- single operations (each one commit with the database's default persist mode) ---- */
FR_API fr_status fr_put(fr_keyspace *ks, const void *key, size_t key_len, const void *val,
			size_t val_len, fr_error *err);
/* Returns FR_NOT_FOUND when absent. *val (fr_free) and *val_len are set on FR_OK; val may be
 * NULL to test presence only. */
FR_API fr_status fr_get(fr_keyspace *ks, const void *key, size_t key_len, void **val,
			size_t *val_len, fr_error *err);
FR_API fr_status fr_contains(fr_keyspace *ks, const void *key, size_t key_len, bool *out,
			     fr_error *err);
FR_API fr_status fr_remove(fr_keyspace *ks, const void *key, size_t key_len, fr_error *err);
/* A weak (single) delete: removes the newest version only. Use for keys written once between
 * deletes; a key written several times may show an older version again. */
FR_API fr_status fr_remove_weak(fr_keyspace *ks, const void *key, size_t key_len, fr_error *err);
/* Removes every key k with start <= k < end. */
FR_API fr_status fr_delete_range(fr_keyspace *ks, const void *start, size_t start_len,
				 const void *end, size_t end_len, fr_error *err);
/* Removes every key of the keyspace. */
FR_API fr_status fr_keyspace_clear(fr_keyspace *ks, fr_error *err);
/* The smallest / largest entry; FR_NOT_FOUND when empty. Outputs may be NULL. */
FR_API fr_status fr_first(fr_keyspace *ks, void **key, size_t *key_len, void **val,
			  size_t *val_len, fr_error *err);
FR_API fr_status fr_last(fr_keyspace *ks, void **key, size_t *key_len, void **val,
			 size_t *val_len, fr_error *err);
/* Exact count (scans). */
FR_API fr_status fr_len(fr_keyspace *ks, uint64_t *out, fr_error *err);
/* Upper-bound estimate from table and memtable entry counts (no scan). */
FR_API uint64_t fr_approximate_len(fr_keyspace *ks);

typedef struct fr_keyspace_stats {
	uint64_t table_cnt;
	uint64_t table_bytes;
	uint64_t level_table_cnt[8];  /* [0] is the L0 count */
	uint64_t level_bytes[8];
	uint64_t memtable_bytes;      /* active and sealed */
	uint64_t sealed_memtable_cnt;
	uint64_t approximate_len;
	uint64_t compactions_done;    /* of this tree, since open */
	uint64_t compaction_read_bytes;
	uint64_t compaction_write_bytes;
	uint64_t flush_write_bytes;
	uint64_t blob_file_cnt;       /* blob files of the tree */
	uint64_t blob_bytes;          /* their size on disk */
	uint64_t blob_stale_bytes;    /* bytes of values no table refers to any more */
	uint64_t blob_gc_done;        /* blob files rewritten or dropped by GC, since open */
	bool compacting;              /* a compaction of this tree runs now */
} fr_keyspace_stats;
/* Statistics of the keyspace's tree (shared by every keyspace in a shared tree). */
FR_API fr_status fr_keyspace_stats_get(fr_keyspace *ks, fr_keyspace_stats *out, fr_error *err);
/* Merges every table of the keyspace's tree into the last level and waits for it. */
FR_API fr_status fr_major_compact(fr_keyspace *ks, fr_error *err);
/* Runs blob GC on the keyspace's tree now and waits for it. A value becomes stale only when
 * no table refers to it any more, which for an overwritten or removed value happens when a
 * compaction drops the old version: so the tree's memtables are flushed and a major
 * compaction runs first; then every blob file past the stale threshold has its live values
 * rewritten, and blob files no table refers to are deleted (once no snapshot or iterator
 * still reads them). */
FR_API fr_status fr_blob_gc(fr_keyspace *ks, fr_error *err);

/* ---- batches: atomic across keyspaces, one sequence number ---- */
/* A batch is used by one thread at a time. Operations on the same key: the last one wins. */
FR_API fr_status fr_batch_new(fr_db *db, fr_batch **out);
FR_API void fr_batch_free(fr_batch *b);
FR_API fr_status fr_batch_put(fr_batch *b, fr_keyspace *ks, const void *key, size_t key_len,
			      const void *val, size_t val_len);
FR_API fr_status fr_batch_remove(fr_batch *b, fr_keyspace *ks, const void *key, size_t key_len);
FR_API fr_status fr_batch_remove_weak(fr_batch *b, fr_keyspace *ks, const void *key,
				      size_t key_len);
FR_API fr_status fr_batch_delete_range(fr_batch *b, fr_keyspace *ks, const void *start,
				       size_t start_len, const void *end, size_t end_len);
/* Creates keyspace `name` as part of the batch (nothing if it exists at commit). */
FR_API fr_status fr_batch_create_keyspace(fr_batch *b, const char *name,
					  const fr_keyspace_options *o);
/* Drops keyspace `name` as part of the batch (nothing if it is absent at commit). */
FR_API fr_status fr_batch_drop_keyspace(fr_batch *b, const char *name);
FR_API size_t fr_batch_count(const fr_batch *b);
/* Commits the batch; on FR_OK every operation is visible at once, at one sequence number,
 * written to *seqno if not NULL. The batch is emptied either way and may be reused. */
FR_API fr_status fr_batch_commit(fr_batch *b, fr_persist mode, fr_seqno *seqno, fr_error *err);

/* ---- snapshots ---- */
FR_API fr_status fr_snapshot_open(fr_db *db, fr_snapshot **out, fr_error *err);
FR_API void fr_snapshot_close(fr_snapshot *s);
FR_API fr_seqno fr_snapshot_seqno(const fr_snapshot *s);
FR_API fr_status fr_snapshot_get(const fr_snapshot *s, fr_keyspace *ks, const void *key,
				 size_t key_len, void **val, size_t *val_len, fr_error *err);
FR_API fr_status fr_snapshot_contains(const fr_snapshot *s, fr_keyspace *ks, const void *key,
				      size_t key_len, bool *out, fr_error *err);

/* ---- iterators ---- */
typedef struct fr_iter_options {
	const void *lower;      /* inclusive lower bound, or NULL */
	size_t lower_len;
	const void *upper;      /* exclusive upper bound, or NULL */
	size_t upper_len;
	const void *prefix;     /* only keys starting with this, or NULL */
	size_t prefix_len;
	bool reverse;           /* largest key first */
	const fr_snapshot *snapshot; /* read at this snapshot; NULL: at open time */
} fr_iter_options;

/* Opens a lazy iterator positioned on the first entry in its direction. An iterator reads
 * one consistent state (its own implicit snapshot when none is given). */
FR_API fr_status fr_iter_open(fr_keyspace *ks, const fr_iter_options *o, fr_iter **out,
			      fr_error *err);
FR_API void fr_iter_close(fr_iter *it);
FR_API bool fr_iter_valid(const fr_iter *it);
/* Moves to the next entry in the iterator's direction. */
FR_API fr_status fr_iter_next(fr_iter *it, fr_error *err);
/* Forward: the first key >= key. Reverse: the last key <= key. Bounds still apply. */
FR_API fr_status fr_iter_seek(fr_iter *it, const void *key, size_t key_len, fr_error *err);
/* Views valid until the next call on the iterator. */
FR_API const void *fr_iter_key(const fr_iter *it, size_t *len);
FR_API const void *fr_iter_value(const fr_iter *it, size_t *len);

/* ---- transactions ---- */
typedef enum fr_tx_kind {
	/* One write transaction at a time: fr_tx_begin waits while another is open. Its reads
	 * see the snapshot taken at begin plus its own writes; it never conflicts. */
	FR_TX_SINGLE_WRITER = 0,
	/* Any number at once. Point reads and iterated ranges are recorded; the commit fails
	 * with FR_CONFLICT, changing nothing, when a key read or written by the transaction was
	 * written by any commit made after the transaction began (transactions and plain writes
	 * alike). */
	FR_TX_OPTIMISTIC = 1,
} fr_tx_kind;

/* Begins a transaction reading at a snapshot of now. A transaction is used by one thread at a
 * time and must end with fr_tx_commit or fr_tx_rollback, which free it. */
FR_API fr_status fr_tx_begin(fr_db *db, fr_tx_kind kind, fr_tx **out, fr_error *err);
/* Reads see the transaction's own writes (read-your-own-writes), in every keyspace. */
FR_API fr_status fr_tx_get(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			   void **val, size_t *val_len, fr_error *err);
FR_API fr_status fr_tx_contains(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
				bool *out, fr_error *err);
FR_API fr_status fr_tx_put(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			   const void *val, size_t val_len, fr_error *err);
FR_API fr_status fr_tx_remove(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			      fr_error *err);
FR_API fr_status fr_tx_remove_weak(fr_tx *tx, fr_keyspace *ks, const void *key,
				   size_t key_len, fr_error *err);
/* Removes the key and returns the value it had (FR_NOT_FOUND, nothing written, if none). */
FR_API fr_status fr_tx_take(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			    void **val, size_t *val_len, fr_error *err);
/* Computes a key's new value from its current one (old NULL and found false when absent).
 * Set *new_val and *new_len to the new value (borrowed until the call returns; it is copied) or
 * *remove to true to remove the key. A status other than FR_OK aborts the update, nothing is
 * written, and the status is returned to the caller. */
typedef fr_status (*fr_tx_update_fn)(void *ctx, const void *old, size_t old_len, bool found,
				     const void **new_val, size_t *new_len, bool *remove);
/* Updates a key through fn and returns the value before the update (*found false when there
 * was none; *val NULL). val, val_len and found may be NULL. */
FR_API fr_status fr_tx_fetch_update(fr_tx *tx, fr_keyspace *ks, const void *key,
				    size_t key_len, fr_tx_update_fn fn, void *ctx, void **val,
				    size_t *val_len, bool *found, fr_error *err);
/* The same, returning the value after the update (*found false when fn removed it). */
FR_API fr_status fr_tx_update_fetch(fr_tx *tx, fr_keyspace *ks, const void *key,
				    size_t key_len, fr_tx_update_fn fn, void *ctx, void **val,
				    size_t *val_len, bool *found, fr_error *err);
/* An iterator over the keyspace as the transaction sees it (its snapshot plus its own writes
 * made before the iterator was opened). o->snapshot must be NULL. An optimistic transaction
 * records the iterator's whole bounded range as read. Close it before the transaction ends. */
FR_API fr_status fr_tx_iter_open(fr_tx *tx, fr_keyspace *ks, const fr_iter_options *o,
				 fr_iter **out, fr_error *err);
/* The sequence number the transaction reads at. */
FR_API fr_seqno fr_tx_seqno(const fr_tx *tx);
/* Commits every write as one atomic batch persisted to `mode`, and frees the transaction, on
 * success and on failure alike. FR_CONFLICT: an optimistic transaction lost; nothing was
 * written. *seqno (may be NULL) is the commit's sequence number. */
FR_API fr_status fr_tx_commit(fr_tx *tx, fr_persist mode, fr_seqno *seqno, fr_error *err);
/* Discards every write and frees the transaction. Accepts NULL. */
FR_API void fr_tx_rollback(fr_tx *tx);

/* ---- bulk ingestion: sorted keys straight into tables (no journal, no memtable) ---- */
/* Starts an ingestion into ks. Keys must then be given in strictly ascending order. Nothing is
 * visible until fr_ingest_finish publishes every entry at once, at one new sequence number,
 * newer than every commit before it. */
FR_API fr_status fr_ingest_start(fr_keyspace *ks, fr_ingest **out, fr_error *err);
/* FR_INVALID when the key is not greater than the previous one: the ingestion is then
 * broken, and fr_ingest_finish publishes nothing. */
FR_API fr_status fr_ingest_put(fr_ingest *in, const void *key, size_t key_len,
			       const void *val, size_t val_len, fr_error *err);
/* Ingests a tombstone: the key reads as absent after finish. */
FR_API fr_status fr_ingest_remove(fr_ingest *in, const void *key, size_t key_len,
				  fr_error *err);
/* Publishes everything atomically and frees the ingestion, on success and failure alike.
 * *seqno (may be NULL) is the sequence number of the ingested entries. */
FR_API fr_status fr_ingest_finish(fr_ingest *in, fr_seqno *seqno, fr_error *err);
/* Discards an unfinished ingestion (its files are deleted). Accepts NULL. */
FR_API void fr_ingest_abort(fr_ingest *in);

/* ---- checkpoints ---- */
/* Writes to `dir` (created; must not exist, or be empty) a consistent, complete copy of the
 * database as of one commit, openable on its own (read-only or read-write): memtables are
 * flushed, table and blob files are hard-linked (copied when dir is on another file system)
 * and a manifest describing exactly them is written. */
FR_API fr_status fr_db_checkpoint(fr_db *db, const char *dir, fr_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FRACTIO_H */
