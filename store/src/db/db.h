/* SPDX-License-Identifier: MIT */
/*
 * db.h - the database's internal structures, shared by the files of db/.
 *
 * Lock order (take in this order, never the reverse):
 *   db->seg_mu    (releasing journal segments: db_release_segments only)
 *   db->write_mu  (commit queue; held by the commit leader only while queueing, not during I/O)
 *   db->cat_mu    (keyspace handle table)
 *   db->mu        (trees table, snapshots, background state, segments)
 *   tree->mu      (a tree's active and sealed memtables)
 *   vset mutex    (inside version/)
 *   table stripe locks (version/), then the block cache's shard locks and the file table's lock
 *                 (leaves: nothing is taken under them)
 *   the oracle's mutex (oracle.h) and db->tx_mu (the single-writer transactions' turn) are
 *                 leaves too: taken holding nothing else, and nothing is taken under them
 *
 * The commit leader (the thread at the head of the commit queue) is the only writer of
 * memtables and the journal; it owns db->jnl and the active memtable of every tree.
 */
#ifndef FRACTIO_DB_DB_H
#define FRACTIO_DB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/sync.h"
#include "compact/pick.h"
#include "fractio.h"
#include "sst/sst.h"
#include "version/version.h"

struct blk_cache;
struct blob_direct;
struct fr_io;
struct ftab;
struct jnl;
struct mem;
struct orc;
struct orc_tx;
struct vset;
struct tree_version;
struct writer;

#define KS_PREFIX_LEN 4
#define CATALOG_TREE 0
#define CATALOG_KS 0
#define SEALED_MAX 4        /* writes halt while a tree has this many sealed memtables */
#define L0_SLOWDOWN 20       /* writes to a tree with this many L0 tables are throttled */
#define L0_STOP 30           /* and halt from here on */
#define WORKERS_MAX 64
#define JOURNAL_SUBDIR "journal" /* <db>/journal/<id>.jnl */

_Static_assert(FR_LEVEL_CNT == LEVEL_CNT, "the public and internal level counts agree");

/* Defaults of the blob options, for fr_keyspace_options_init and tree_opts_default alike. */
#define BLOB_FILE_TARGET_DEFAULT (UINT64_C(64) << 20)
#define BLOB_GC_STALE_PCT_DEFAULT 50

/* KV separation of a tree (fr_keyspace_options.blob_*). */
struct tree_blob_opts {
	uint32_t threshold;    /* 0: off */
	uint64_t file_target;
	bool compress;
	uint32_t gc_stale_pct; /* 0: never relocate */
};

/* What a tree is created with, kept in its catalog record (FORMAT.md §6). */
struct tree_opts {
	struct sst_options level[LEVEL_CNT]; /* table options of the tables written to each level */
	struct compact_policy policy;
	struct tree_blob_opts blob;
};
void tree_opts_default(struct tree_opts *o);

/* Per-tree counters (atomics). */
struct tree_stats {
	uint64_t compactions_done;
	uint64_t compaction_read_bytes;
	uint64_t compaction_write_bytes;
	uint64_t flush_write_bytes;
	uint64_t blob_gc_done;    /* blob files that left the tree in a compaction */
};

/* One LSM tree: its memtables and (through the vset) its tables. Refcounted by db->trees and
 * keyspace handles; lives until the database closes. */
struct tree {
	uint32_t id;
	struct tree_opts opts;    /* under tree->mu; set when the catalog is read */
	struct fr_mutex mu;
	struct mem *active;       /* under tree->mu; replaced only by the commit leader */
	struct mem **sealed;      /* under tree->mu; oldest first */
	size_t sealed_cnt;
	size_t sealed_cap;
	uint64_t *sealed_upto;    /* under tree->mu; seqno up to which each sealed one holds data */
	uint64_t active_min_seqno; /* under tree->mu; first seqno in active, 0 when empty */
	uint64_t *sealed_min_seqno; /* under tree->mu */
	bool flushing;            /* under db->mu; a flush of this tree runs */
	bool compacting;          /* under db->mu */
	bool force_compact;       /* under db->mu; a major compaction was asked for */
	bool ingesting;           /* under db->mu; an ingestion is publishing: no compaction
				   * of this tree may start (ingest.c) */
	bool cpt_dirty;           /* under db->mu; the version changed since the picker last
				   * found nothing to do */
	uint32_t l0_cnt;          /* atomic: L0 tables of the current version (write stalls) */
	uint64_t l0_seeks;        /* atomic: forward seeks that found their key in two or more
				   * L0 tables and point reads that looked in two or more, since
				   * the last seek-triggered compaction */
	bool seek_compact;        /* under db->mu; those seeks asked for an L0 compaction below
				   * the L0 trigger (bg_request_seek_compact) */
	uint64_t wb_seen;         /* commit leader only: active memtable bytes counted in
				   * db->wb_active */
	struct blob_direct *direct; /* commit leader only: the direct blob file the active
				   * memtable's large values go to (the memtable holds a reference
				   * too), NULL until its first value of at least the blob threshold
				   * (write.c) */
	uint64_t direct_max;      /* commit leader only: a new direct file is started once the
				   * current one reaches this size (the blob file target) */
	struct tree_stats st;
};

/* A keyspace handle. Refcounted (under db->cat_mu); the table holds one reference. */
struct fr_keyspace {
	fr_db *db;
	char *name;
	uint32_t ks_id;
	struct tree *tree;
	uint8_t prefix[KS_PREFIX_LEN]; /* big-endian ks_id */
	uint32_t refs;                 /* under db->cat_mu */
	bool dropped;                  /* atomic: the keyspace was deleted */
};

struct seg_info {
	uint64_t id;
	uint64_t max_seqno; /* newest seqno written to it */
	uint64_t bytes;     /* its size on disk (records of replayed segments: an estimate) */
};

struct fr_snapshot {
	fr_db *db;
	uint64_t seqno;
	struct fr_snapshot *prev, *next; /* under db->mu */
};

struct fr_db {
	char *path;
	char *jnl_dir;
	fr_db_options opts;
	struct fr_io *io;
	struct io_file *lock;
	struct vset *vs;
	struct blk_cache *bcache;     /* data, index and filter blocks of every table */
	struct ftab *ftab;            /* the open table files */
	struct jnl *jnl;              /* commit leader only */

	uint64_t seqno;               /* commit leader only: last seqno allocated (stored
				       * atomically for fr_db_stats_get) */
	uint64_t visible_seqno;       /* atomic: release-stored after memtables are written,
				       * acquire-loaded by readers */
	uint64_t next_mem_id;         /* commit leader only */

	struct fr_mutex write_mu;
	struct writer *wq_head, *wq_tail; /* under write_mu */

	struct fr_mutex cat_mu;
	struct fr_keyspace **ks_tab;  /* under cat_mu: open handles, open addressing by name */
	size_t ks_tab_cap;
	size_t ks_tab_cnt;
	uint64_t ks_drop_gen;         /* under cat_mu: drops made visible (ks_after_drop) */
	uint32_t next_ks_id;          /* under write_mu (allocated by the commit leader) */
	uint32_t next_tree_id;        /* under write_mu */

	struct fr_mutex seg_mu;
	struct fr_mutex mu;
	struct fr_cond bg_cv;         /* background thread wakes */
	struct fr_cond done_cv;       /* flush/compaction finished; writers and waiters wake */
	struct tree **trees;          /* under mu: index by id (sparse array) */
	size_t tree_cap;
	struct fr_snapshot snaps;     /* under mu: list head, ascending seqno */
	size_t snap_cnt;
	struct seg_info *segs;        /* under mu: live journal segments, ascending */
	size_t seg_cnt;
	size_t seg_cap;
	bool closing;                 /* under mu; atomic-read by running compactions */
	bool poisoned;                /* atomic: a background write failed */
	fr_error poison_err;          /* under mu */
	pthread_t *workers;           /* worker_cnt background threads */
	uint32_t worker_cnt;
	uint32_t workers_running;     /* under mu */
	uint32_t jobs_active;         /* under mu: flushes and compactions running */
	uint32_t compactions_active;  /* under mu */
	uint64_t flushes_pending;     /* atomic: sealed memtables of every tree */
	uint64_t wb_active;           /* atomic: bytes of active memtables (as the leader saw) */
	uint64_t wb_sealed;           /* atomic: bytes of sealed, unflushed memtables */
	uint64_t jnl_bytes_seen;      /* commit leader only: jnl_bytes_written when last counted */
	uint64_t pin_checked_seg;     /* commit leader only: oldest segment when journal_max was
				       * last enforced */
	/* commit leader only: its scratch, kept between groups so that a commit allocates
	 * nothing in the common case (write.c) */
	struct leader_ops *lo_scratch;
	size_t lo_scratch_cnt;
	struct fr_buf rec_scratch;
	/* commit leader only: direct blob files written since the journal's last sync, one
	 * reference each; synced before the journal is (db_blob_presync) */
	struct blob_direct **blob_dirty;
	size_t blob_dirty_cnt;
	size_t blob_dirty_cap;
	/* open only: the ids of the direct blob files the journal's replay attached (the
	 * memtables hold the files), kept from the orphan pass */
	uint64_t *blob_recovered;
	size_t blob_recovered_cnt;
	size_t blob_recovered_cap;
	uint64_t compaction_time_us;  /* atomic */
	uint64_t stall_us;            /* atomic */
	uint64_t stalls;              /* atomic */
#ifdef FR_TESTING
	bool test_hold_compactions;   /* atomic: workers run flushes only (stall tests) */
	bool test_group_ks_ops;       /* atomic: batches with keyspace operations join commit
				       * groups like any other (test_keyspace) */
	uint64_t test_groups;         /* atomic: commit groups of batches taken by a leader */
#endif

	struct fr_mutex tx_mu;        /* single-writer transactions (txn.c); a leaf lock */
	struct fr_cond tx_cv;         /* the single-writer transaction ended */
	bool tx_writer_open;          /* under tx_mu */
	struct orc *orc;              /* conflict oracle of optimistic transactions (oracle.h) */

	fr_db_stats st;               /* counters: atomics (atomic_add_u64) */
	struct tree *catalog;
};

/* ---- api.c: the argument checks every api*.c file makes ---- */
#define KEY_MAX (1u << 20) /* longest user key */
#define VAL_MAX (1u << 30) /* longest value */
/* FR_INVALID for a NULL key with a length, or one longer than KEY_MAX. */
fr_status api_check_key(const void *k, size_t n, fr_error *err);
/* FR_INVALID for a NULL value with a length, or one longer than VAL_MAX. */
fr_status api_check_val(const void *v, size_t n, fr_error *err);

/* ---- tree.c ---- */
fr_status tree_get(fr_db *db, uint32_t id, bool create, struct tree **out);
/* The memtables and version a reader needs, all referenced. */
struct read_view {
	struct mem **mems; /* newest first */
	size_t mem_cnt;
	struct tree_version *ver;
	struct mem *inline_mems[SEALED_MAX + 2];
};
fr_status tree_view(fr_db *db, struct tree *t, struct read_view *v);
void read_view_release(struct read_view *v);
/* Newest visible version of tree key k at snap: FR_OK with an fr_malloc'd value (may be NULL
 * when val is NULL), FR_NOT_FOUND. */
fr_status tree_get_value(fr_db *db, struct tree *t, const uint8_t *k, size_t klen, uint64_t snap,
			 void **val, size_t *vlen, fr_error *err);
/* Resolves the VT_BLOB value `handle` seen in view v: through the direct blob file of one of
 * v's memtables, else through v's version (tv_blob_read). *val is fr_malloc'd. */
fr_status view_blob_read(const struct read_view *v, const uint8_t *handle, size_t len,
			 void **val, size_t *vlen, fr_error *err);
/* Seals the active memtable if it is not empty (commit leader only). Its direct blob file goes
 * with it. Every caller has synced the journal first, which synced the direct files too. */
fr_status tree_seal(fr_db *db, struct tree *t);
void tree_free(struct tree *t);

/* ---- write.c ---- */
/* One internal operation of a public batch. */
struct bop {
	uint8_t op;               /* BOP_* or BOP_KS_CREATE / BOP_KS_DROP */
	struct fr_keyspace *ks;   /* referenced; NULL for keyspace ops */
	uint32_t tree_id;         /* for raw operations on a tree (ks == NULL) */
	size_t key_off, key_len;  /* in the batch's data buffer (prefix included) */
	size_t val_off, val_len;
	size_t opt_off;           /* BOP_KS_CREATE: index into ks_opts */
};
enum { BOP_KS_CREATE = 100, BOP_KS_DROP = 101 };

struct fr_batch {
	fr_db *db;
	struct bop *ops;
	size_t cnt;
	size_t cap;
	struct fr_buf data;
	fr_keyspace_options *ks_opts;
	char **ks_tree_names;
	size_t ks_opt_cnt;
	size_t ks_drop_cnt;           /* BOP_KS_DROP ops: such a batch commits alone */
	uint64_t user_bytes;
	struct orc_tx *otx;           /* an optimistic transaction's commit: validated by the
				       * leader (FR_CONFLICT); NULL for plain batches */
};
fr_status batch_add(fr_batch *b, uint8_t op, fr_keyspace *ks, const void *k, size_t klen,
		    const void *v, size_t vlen);
void batch_reset(fr_batch *b);
fr_status db_commit(fr_db *db, fr_batch *b, fr_persist mode, uint64_t *seqno, fr_error *err);
/* Persists the journal to `mode`; poisons the database on failure. Requires: the only writer
 * (the commit leader or db_exclusive). */
fr_status db_journal_sync(fr_db *db, fr_persist mode, fr_error *err);
/* Syncs the journal and seals the active memtable of every tree; with flush, also flushes
 * every sealed memtable and waits for it. Requires: the only writer (db_exclusive). */
fr_status db_seal_all(fr_db *db, bool flush, fr_error *err);
/* Runs fn as the only writer (no commit runs meanwhile). */
fr_status db_exclusive(fr_db *db, fr_status (*fn)(fr_db *db, void *ctx, fr_error *err), void *ctx,
		       fr_error *err);
#ifdef FR_TESTING
/* Writers (commits and exclusive work, the running one included) in the commit queue. */
size_t db_test_queued(fr_db *db);
#endif
/* Frees the commit leader's scratch (db_free). */
void db_write_scratch_free(fr_db *db);
/* Appends a live journal segment. Requires: db->mu held. */
fr_status db_seg_push(fr_db *db, uint64_t id, uint64_t max_seqno);
/* The bytes of the live journal segments. Requires: db->mu held. */
uint64_t db_seg_bytes(const fr_db *db);
/* Makes the direct blob files written since the last journal sync durable (the journal's
 * presync hook). Requires: the only writer. */
fr_status db_blob_presync(void *ctx, fr_error *err);
/* Drops the lists of direct blob files (db_free). */
void db_blob_lists_free(fr_db *db);
/* Replays one journal record into the memtables (recovery). */
fr_status db_replay_record(fr_db *db, uint64_t seg_id, const uint8_t *rec, size_t len,
			   fr_error *err);

/* ---- keyspace.c ---- */
fr_status ks_open(fr_db *db, const char *name, const fr_keyspace_options *o, bool create,
		  fr_keyspace **out, fr_error *err);
void ks_unref(fr_keyspace *ks);
fr_status ks_exists(fr_db *db, const char *name, bool *out, fr_error *err);
fr_status ks_list(fr_db *db, fr_keyspace_list_fn fn, void *ctx, fr_error *err);
/* Resolves the keyspace operations of a batch into catalog writes (commit leader). lo holds
 * the batch's operations so far and prev the group's earlier batches': the catalog is read as
 * they leave it, since none of them is applied yet. */
struct batch_op;
struct leader_ops;
fr_status ks_resolve_create(fr_db *db, const char *name, const fr_keyspace_options *o,
			    const char *tree_name, struct leader_ops *lo,
			    const struct leader_ops *prev, size_t prev_cnt, fr_error *err);
fr_status ks_resolve_drop(fr_db *db, const char *name, struct leader_ops *lo,
			  const struct leader_ops *prev, size_t prev_cnt, fr_error *err);
/* Whether those pending operations delete ks's keyspace or give its name another id. */
bool ks_is_dropped_in_group(const fr_keyspace *ks, const struct leader_ops *lo,
			    const struct leader_ops *prev, size_t prev_cnt);
/* After a drop of keyspace id ks_id, called name, became visible: forgets its handle. */
void ks_after_drop(fr_db *db, const char *name, uint32_t ks_id);
/* Reads tree options from the catalog for every tree in memory (after recovery). */
fr_status ks_load_tree_options(fr_db *db, fr_error *err);
void ks_table_free(fr_db *db);
void ks_prefix(uint32_t ks_id, uint8_t out[KS_PREFIX_LEN]);
/* tree key = keyspace prefix + key, in buf when small (api.c) */
struct tkey {
	uint8_t *p;
	size_t len;
	uint8_t buf[256];
};
fr_status tkey_make(struct tkey *t, const fr_keyspace *ks, const void *k, size_t n,
		    fr_error *err);
void tkey_fini(struct tkey *t);
/* FR_INVALID when options ask for something the engine cannot do. NULL is fine. */
fr_status ks_options_check(const fr_keyspace_options *o, fr_error *err);

/* ---- bg.c ---- */
fr_status bg_start(fr_db *db, fr_error *err);
void bg_stop(fr_db *db);
void bg_kick(fr_db *db);
/* Runs or waits for background work until nothing is left to do. */
fr_status bg_drain(fr_db *db, fr_error *err);
/* Runs one flush of the oldest sealed memtable of t (any thread). */
fr_status bg_flush_tree(fr_db *db, struct tree *t, fr_error *err);
/* Flushes every sealed memtable of t, waiting for a flush a worker runs. Requires: the only
 * writer (db_exclusive), so no memtable is sealed meanwhile. */
fr_status bg_flush_sealed(fr_db *db, struct tree *t, fr_error *err);
/* Marks t for a major compaction (bg_drain then runs it). */
void bg_request_major(fr_db *db, struct tree *t);
/* Counts a forward seek of an iterator over version v of t that found its key in two or more
 * L0 tables, or a point read that looked in two or more; once enough of them add up, asks for
 * a compaction of L0 even below the L0 trigger, as LevelDB compacts a file that costs too many
 * seeks. Leveled trees only (pick_seek); nothing for a read-only database. */
void bg_note_l0_seek(fr_db *db, struct tree *t, const struct tree_version *v);
void db_poison(fr_db *db, fr_status rc, const fr_error *err);
fr_status db_check_writable(fr_db *db, fr_error *err);
/* Deletes journal segments whose data every tree has flushed. */
void db_release_segments(fr_db *db);
/* Oldest live snapshot seqnos, ascending (fr_free). */
fr_status db_snapshot_list(fr_db *db, uint64_t **out, size_t *cnt);

/* ---- ingest.c ---- */
struct fr_ingest;
fr_status ingest_start(fr_keyspace *ks, struct fr_ingest **out, fr_error *err);
/* Adds an entry (VT_PUT or VT_DEL) of key k, above every key added before. Any failure
 * breaks the ingestion: later adds fail and ingest_finish publishes nothing. */
fr_status ingest_add(struct fr_ingest *in, uint8_t type, const void *k, size_t klen,
		     const void *v, size_t vlen, fr_error *err);
/* Publishes every entry at one new seqno (*seqno, may be NULL) and frees in, on failure too. */
fr_status ingest_finish(struct fr_ingest *in, uint64_t *seqno, fr_error *err);
/* Deletes the ingestion's files and frees it. NULL allowed. */
void ingest_abort(struct fr_ingest *in);

/* ---- db.c ---- */
fr_status db_open(const char *path, const fr_db_options *o, fr_db **out, fr_error *err);
fr_status db_close(fr_db *db, fr_error *err);
fr_status snap_open(fr_db *db, fr_snapshot **out);
void snap_close(fr_snapshot *s);
fr_status db_stats(fr_db *db, fr_db_stats *out);
/* Writes <dir>/FORMAT (atomically, directory synced). */
fr_status db_write_format(struct fr_io *io, const char *dir, fr_error *err);

/* ---- checkpoint.c ---- */
struct cpt_stats {
	uint64_t seqno;        /* the copy holds every commit up to this one and none after */
	uint64_t files;        /* table (and other data) files placed */
	uint64_t linked_files; /* of which hard links */
	uint64_t linked_bytes;
	uint64_t copied_files; /* of which copies (linking was impossible) */
	uint64_t copied_bytes;
};
/* fr_db_checkpoint; *st is filled on success. */
fr_status db_checkpoint(fr_db *db, const char *dir, struct cpt_stats *st, fr_error *err);

#endif
