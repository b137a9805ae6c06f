/* SPDX-License-Identifier: MIT */
/*
 * version.h - which table files form each tree, and the manifest that records it
 * (FORMAT.md §5). Files: <dir>/CURRENT names the live manifest <dir>/MANIFEST-<n> (a record
 * file, magic MFST_MAGIC, whose records are version edits); tables live in <dir>/tables/<id>.sst.
 *
 * A tree_version is immutable once published and refcounted; readers pin one for the length of
 * a read or an iterator. A table is refcounted too; when a table has left the current version
 * and its last reference goes, its file is deleted. The vset is thread-safe (vset->mu inside);
 * edits are applied one at a time.
 */
#ifndef FRACTIO_VERSION_VERSION_H
#define FRACTIO_VERSION_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/coding.h"
#include "blob/blob.h"
#include "fractio.h"
#include "sst/sst.h"

struct fr_io;
struct kv_iter;
struct vset;
struct fr_buf;

#define LEVEL_CNT 7
#define MFST_MAGIC 0x54534d46u /* "FMST" little-endian */
#define TABLES_SUBDIR "tables"   /* <dir>/tables/<id>.sst */
#define BLOBS_SUBDIR "blobs"     /* <dir>/blobs/<id>.blob */

/* A table file of a tree. Immutable but for its lazily opened reader. */
struct table {
	uint32_t refs;         /* atomic: taken by versions and iterators */
	uint32_t tree_id;
	struct sst_meta meta;  /* meta.id is the file id */
	char *path;
	struct fr_io *io;
	struct sst_reader *reader; /* under the vset's table lock; opened on first use */
	bool obsolete;         /* atomic: removed from the current version; delete at last unref */
	/* How the reader reads (cache, file table): copied from the vset when the table is made,
	 * or by vset_set_read_env; then immutable. Also used to forget the file before it is
	 * deleted. */
	struct sst_read_env env;
};
/* Whether user key k lies within the table's key span [smallest, largest]. */
static inline bool table_spans(const struct table *t, const uint8_t *k, size_t klen)
{
	return bytes_cmp(t->meta.smallest, t->meta.smallest_len, k, klen) <= 0 &&
	       bytes_cmp(k, klen, t->meta.largest, t->meta.largest_len) <= 0;
}
void table_ref(struct table *t);
void table_unref(struct table *t);
/* Opens the reader on first use (with the table's read environment); returns a new reference
 * to it. */
fr_status table_reader(struct table *t, struct sst_reader **out, fr_error *err);

/* A blob file of a tree (FORMAT.md §8). Immutable. Like a table it is refcounted by the versions
 * that list it; it leaves a version when no table of that version refers to it any more
 * (sst_meta.blob_refs), and its file is deleted at its last unref once it left the current
 * version. */
struct blob_file {
	uint32_t refs;         /* atomic: taken by versions */
	uint32_t tree_id;
	struct blob_meta meta; /* meta.id is the file id */
	char *path;
	struct fr_io *io;
	struct ftab *files;    /* the vset's read environment's file table (NULL: none) */
	bool obsolete;         /* atomic: removed from the current version */
};
void blob_file_ref(struct blob_file *b);
void blob_file_unref(struct blob_file *b);

/* The tables of one tree at one moment. L0 is ordered newest first (by max seqno) and may
 * overlap; each level >= 1 is sorted by smallest key and its tables do not overlap. */
struct tree_version {
	uint32_t refs; /* atomic */
	uint32_t tree_id;
	uint64_t flushed_seqno; /* every entry with seqno <= this is in the tables */
	struct table **levels[LEVEL_CNT];
	size_t level_cnt[LEVEL_CNT];
	/* The blob files the tables refer to, ascending by id, one reference each. Checkpoints
	 * list a version's blob files from here (blobs[i]->meta.id, blobs[i]->path). */
	struct blob_file **blobs;
	size_t blob_cnt;
};
void tv_ref(struct tree_version *v);
void tv_unref(struct tree_version *v);
uint64_t tv_table_bytes(const struct tree_version *v);
size_t tv_table_cnt(const struct tree_version *v);
/* The blob file `id` of v, or NULL. */
struct blob_file *tv_blob(const struct tree_version *v, uint64_t id);
/* Index of blob file `id` in v->blobs (sorted by id), or v->blob_cnt when absent. */
size_t tv_blob_index(const struct tree_version *v, uint64_t id);
/* Stored bytes of blob file `id` that the tables of v refer to. */
uint64_t tv_blob_live_bytes(const struct tree_version *v, uint64_t id);
/* Blob files of v, their size on disk, and the stored bytes no table of v refers to. */
void tv_blob_stats(const struct tree_version *v, uint64_t *cnt, uint64_t *bytes,
		   uint64_t *stale);
/* Whether blob file b of v has more than stale_pct percent of its value bytes unreferenced
 * (never for stale_pct 0). */
bool tv_blob_is_stale(const struct tree_version *v, const struct blob_file *b,
		      uint32_t stale_pct);
/* The live bytes of every blob file of v, in v->blobs order, in one pass over the tables
 * (fr_free). FR_NOMEM. */
fr_status tv_blob_live_all(const struct tree_version *v, uint64_t **out);
/* tv_blob_is_stale for a file whose live bytes are known. */
bool tv_blob_live_is_stale(const struct blob_file *b, uint64_t live, uint32_t stale_pct);
/* Resolves the VT_BLOB value `handle` (an encoded blob handle) of a table of v: *val is
 * fr_malloc'd. FR_CORRUPTION for a malformed handle, a blob file v does not hold, or bad
 * bytes in the file. */
fr_status tv_blob_read(const struct tree_version *v, const uint8_t *handle, size_t len,
		       void **val, size_t *vlen, fr_error *err);
/* tv_blob_read of a handle already decoded. */
fr_status tv_blob_read_handle(const struct tree_version *v, const struct blob_handle *h,
			      void **val, size_t *vlen, fr_error *err);

/* The one list of the files a version needs (today its tables; the place to add any other
 * file kind a version comes to reference), for copying a database: fn gets each file's path
 * (as the version opens it), its path relative to the database directory, and its size. A
 * non-zero return from fn stops the walk and is returned. The caller holds a reference on v. */
typedef fr_status (*tv_file_fn)(void *ctx, const char *path, const char *rel_path,
				uint64_t size, fr_error *err);
fr_status tv_files_each(const struct tree_version *v, tv_file_fn fn, void *ctx, fr_error *err);

/* One atomic change, possibly to several trees. */
struct vedit_add {
	uint32_t tree_id;
	uint32_t level;
	struct sst_meta meta; /* owned by the edit */
};
struct vedit_del {
	uint32_t tree_id;
	uint32_t level;
	uint64_t table_id;
};
struct vedit_flushed {
	uint32_t tree_id;
	uint64_t seqno;
};
struct vedit_blob {
	uint32_t tree_id;
	struct blob_meta meta;
};
struct vedit {
	struct vedit_add *adds;
	size_t add_cnt;
	struct vedit_del *dels;
	size_t del_cnt;
	struct vedit_flushed *flushed;
	size_t flushed_cnt;
	/* new blob files; a blob file leaves its tree when no table refers to it any more */
	struct vedit_blob *blob_adds;
	size_t blob_add_cnt;
	uint32_t *dropped_trees; /* the tree and all its tables go away */
	size_t dropped_cnt;
	bool has_next_file_id;
	uint64_t next_file_id;
	bool has_last_seqno;
	uint64_t last_seqno;
};
void vedit_init(struct vedit *e);
void vedit_fini(struct vedit *e);
/* Builders: copy what they are given. */
fr_status vedit_add_table(struct vedit *e, uint32_t tree_id, uint32_t level,
			  const struct sst_meta *m);
fr_status vedit_del_table(struct vedit *e, uint32_t tree_id, uint32_t level, uint64_t table_id);
fr_status vedit_set_flushed(struct vedit *e, uint32_t tree_id, uint64_t seqno);
fr_status vedit_drop_tree(struct vedit *e, uint32_t tree_id);
fr_status vedit_add_blob(struct vedit *e, uint32_t tree_id, const struct blob_meta *m);
/* Encoding (FORMAT.md §5.2), exposed for tests and the dump tool. */
fr_status vedit_encode(const struct vedit *e, struct fr_buf *out);
fr_status vedit_decode(const uint8_t *p, size_t len, struct vedit *e, const char *path,
		       uint64_t off, fr_error *err);

/* Opens the version set of directory `dir`: reads CURRENT and replays the manifest (a missing
 * CURRENT with create means a new database), then writes a fresh manifest holding the whole
 * state and points CURRENT at it (not when read_only). */
fr_status vset_open(struct fr_io *io, const char *dir, bool create, bool read_only,
		    struct vset **out, fr_error *err);
/* Releases every version and table (deletes nothing). NULL allowed. */
void vset_close(struct vset *vs);
/* Makes every table of vs (present and future) open its reader with env (copied; its cache and
 * file table are borrowed and must outlive vs and every table, iterator and reader taken from
 * it). Call once, right after vset_open and before any read; without it readers have no
 * environment (sst.h). */
void vset_set_read_env(struct vset *vs, const struct sst_read_env *env);
/* Writes e to the manifest (synced), then publishes the new versions. On failure nothing is
 * published and the vset refuses further edits (the caller poisons the database). Starts a new
 * manifest when the current one passes a size limit. */
fr_status vset_apply(struct vset *vs, const struct vedit *e, fr_error *err);
/* The current version of tree_id, referenced (an empty version for an unknown tree). */
struct tree_version *vset_current(struct vset *vs, uint32_t tree_id);
/* Ids of trees present in the manifest, ascending (fr_free). */
fr_status vset_tree_ids(struct vset *vs, uint32_t **ids, size_t *cnt);
/* A new table file id (persisted by the next edit through has_next_file_id or by vset_apply). */
uint64_t vset_new_file_id(struct vset *vs);
/* Makes sure vset_new_file_id never returns id or less again (a file the journal refers to
 * that no edit recorded: a direct blob file found at recovery). */
void vset_note_file_id(struct vset *vs, uint64_t id);
uint64_t vset_last_seqno(struct vset *vs);
/* "<dir>/tables/<id>.sst" into buf (size at least PATH_MAX). */
void vset_table_path(const struct vset *vs, uint64_t id, char *buf, size_t len);
/* "<dir>/blobs/<id>.blob" into buf (size at least PATH_MAX). */
void vset_blob_path(const struct vset *vs, uint64_t id, char *buf, size_t len);
/* Deletes files in tables/ and blobs/ that no version references and old MANIFEST files. Call
 * at open, before anything writes new tables or blob files. */
fr_status vset_delete_orphans(struct vset *vs, fr_error *err);
/* The same, but keeping the blob files keep[0..keep_cnt) (unfinished direct blob files the
 * journal refers to). */
fr_status vset_delete_orphans_keep(struct vset *vs, const uint64_t *keep, size_t keep_cnt,
				   fr_error *err);
uint64_t vset_manifest_bytes(struct vset *vs);
/* Writes into directory `dir` (existing; through the vset's io) a database state holding
 * exactly the versions vers[0..cnt) (one per tree, referenced by the caller) and last_seqno:
 * MANIFEST-1 with that state as its one edit (and the vset's next file id), synced, then CURRENT
 * naming it, written atomically with the directory synced. CURRENT comes last, so a failure
 * leaves no directory that opens as a database; the caller removes what is left. The files
 * the versions name must already be in place (tv_files_each). */
fr_status vset_write_state(struct vset *vs, const char *dir, struct tree_version *const *vers,
			   size_t cnt, uint64_t last_seqno, fr_error *err);

/* A lazy iterator over the tables of one level >= 1 (sorted, disjoint): opens one table at a
 * time. Holds references on the tables until kv_free. */
fr_status level_iter_new(struct table **tables, size_t cnt, struct kv_iter **out, fr_error *err);
/* The same, passing flags (SST_ITER_NO_FILL) to each table's iterator. With LEVEL_ITER_BORROW
 * the iterator neither copies the array nor references the tables: the caller keeps both alive
 * until kv_free (a pinned version's own level array), which spares an allocation and two
 * atomic operations per table at each open and close. */
#define LEVEL_ITER_BORROW (1u << 16)
fr_status level_iter_new_flags(struct table **tables, size_t cnt, unsigned flags,
			       struct kv_iter **out, fr_error *err);

#endif
