/* SPDX-License-Identifier: MIT */
/*
 * blob.h - blob files (FORMAT.md §8): the large values of a tree with KV separation, kept out
 * of its tables. A blob file is written once, by one flush or compaction, and never changed:
 * a header, then one record per value (the key it was written under, the value, LZ4 when that
 * saves >= 12.5%, a checksum of the record head and one of the stored value), then a footer
 * with the counts and a checksum. A table refers to a value by a handle (file id, offset and
 * length of the stored bytes, value length, the stored bytes' checksum) kept as the entry's
 * value under type VT_BLOB.
 *
 * Reading one value (blob_read) reads and checks only its stored bytes; blob_scan reads and
 * checks the whole file (every record and the footer), and tells what keys it holds. Bad bytes
 * are FR_CORRUPTION naming the file and the offset, never a crash.
 *
 * blob_writer: one thread at a time. blob_read and blob_scan are thread-safe.
 */
#ifndef FRACTIO_BLOB_BLOB_H
#define FRACTIO_BLOB_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct fr_io;
struct ftab;
struct io_file;
struct blob_writer;

#define BLOB_MAGIC 0x424c4246u /* "FBLB" little-endian */
#define BLOB_VERSION 1
#define BLOB_HDR_LEN 16
#define BLOB_FOOTER_LEN 40
/* An encoded handle is at most this long (five varints). */
#define BLOB_HANDLE_MAX 50

/* Where a value lives: FORMAT.md §8.3. */
struct blob_handle {
	uint64_t file_id;
	uint64_t off;        /* of the stored bytes */
	uint64_t stored_len; /* bytes on disk; < value_len when compressed */
	uint64_t value_len;
	uint64_t cksum;      /* XXH3 of the stored bytes */
};
/* Writes h into out (BLOB_HANDLE_MAX bytes of room); returns its length. */
size_t blob_handle_encode(const struct blob_handle *h, uint8_t *out);
/* False when p[0..len) is not exactly one well-formed handle. */
bool blob_handle_decode(const uint8_t *p, size_t len, struct blob_handle *h);

/* What a finished blob file holds (kept by the manifest). */
struct blob_meta {
	uint64_t id;
	uint64_t file_size;
	uint64_t value_cnt;
	uint64_t value_bytes; /* sum of the records' stored lengths: what handles can refer to */
};

/* Creates blob file `path` (must not exist) with file id `id`. compress: try LZ4 per value. */
fr_status blob_writer_open(struct fr_io *io, const char *path, uint64_t id, bool compress,
			   struct blob_writer **out, fr_error *err);
/* Appends a record of key (the internal key's user key) and value; *h says where it went. */
fr_status blob_writer_add(struct blob_writer *w, const void *key, size_t klen, const void *val,
			  size_t vlen, struct blob_handle *h, fr_error *err);
/* Bytes written so far (to cut files at a target size). */
uint64_t blob_writer_size(const struct blob_writer *w);
uint64_t blob_writer_id(const struct blob_writer *w);
/* Values the writer compressed whole so far: large ones whose probe did not compress are
 * stored as they are without a try. */
uint64_t blob_writer_compress_tries(const struct blob_writer *w);
/* Writes the footer, fsyncs and closes; fills *m; frees w on any return (the file is deleted
 * on failure). */
fr_status blob_writer_finish(struct blob_writer *w, struct blob_meta *m, fr_error *err);
/* Closes, deletes the partial file and frees w. NULL allowed. */
void blob_writer_abort(struct blob_writer *w);
/* Appends the records added so far to the file (no sync). */
fr_status blob_writer_flush(struct blob_writer *w, fr_error *err);
/* Flushes, then fdatasyncs what is written. */
fr_status blob_writer_sync(struct blob_writer *w, fr_error *err);
/* Starts the write-back of the bytes appended since the last call once there are at least
 * `min` of them (io_writeback: a hint, so a later sync waits for less). */
void blob_writer_writeback(struct blob_writer *w, uint64_t min);
/* A failed blob_writer_finish closes the file instead of deleting it (records in it are
 * referenced from elsewhere: the direct files below). */
void blob_writer_set_keep(struct blob_writer *w);
/* Closes and frees w, keeping the file as written (records still buffered are lost). NULL
 * allowed. */
void blob_writer_close(struct blob_writer *w);
/* Reopens the unfinished file `path` to go on after its valid prefix `pre` (blob_valid_prefix:
 * file_size is the prefix's end, 0 when not even the header is good): cuts the file there (a
 * new header when there was none), syncs, and continues with pre's counts. The writer keeps
 * the file on a failed finish (blob_writer_set_keep). */
fr_status blob_writer_resume(struct fr_io *io, const char *path, uint64_t id, bool compress,
			     const struct blob_meta *pre, struct blob_writer **out, fr_error *err);

/* Reads the value h names from file `path`: through the file table ft under h->file_id when
 * ft is not NULL, else with a descriptor of its own. Checks the stored bytes' checksum and the
 * decompressed length. *val is fr_malloc'd (NULL allowed for an empty value). A missing file
 * is FR_CORRUPTION too: a handle only exists while its file should. */
fr_status blob_read(struct fr_io *io, struct ftab *ft, const char *path,
		    const struct blob_handle *h, void **val, size_t *vlen, fr_error *err);

/* blob_read through an open file f (path names it in errors). */
fr_status blob_read_file(struct io_file *f, const char *path, const struct blob_handle *h,
			 void **val, size_t *vlen, fr_error *err);

/* The valid prefix of an unfinished blob file (one without a footer, FORMAT.md §8.4): the
 * header, then the records up to the first that is not whole and self-consistent (head and
 * value checksums, lengths within the file). *pre gets its end (file_size; 0 when the header
 * is missing or not this file's) and counts. Only I/O errors fail. */
fr_status blob_valid_prefix(struct io_file *f, const char *path, uint64_t id,
			    struct blob_meta *pre, fr_error *err);

/* Called by blob_scan for each record, in file order; non-OK stops the scan with that
 * status. The views are valid for the call only. */
typedef fr_status (*blob_scan_fn)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
				  size_t vlen, const struct blob_handle *h);
/* Reads and checks all of blob file `path` (expected id `id`): header, every record (both
 * checksums, lengths, decompression), footer (checksum, counts, that it ends the file). fn may
 * be NULL. Fills *m (may be NULL) on success. */
fr_status blob_scan(struct fr_io *io, const char *path, uint64_t id, blob_scan_fn fn, void *ctx,
		    struct blob_meta *m, fr_error *err);

/*
 * A direct blob file (FORMAT.md §8): the values of at least a tree's blob_threshold that the
 * commit leader writes at commit time, so that the journal and the memtable hold only their
 * handles. It belongs to one memtable (which holds a reference) and is finished (footer,
 * sync) and installed by that memtable's flush. Reads go through a descriptor of its own that
 * stays open for the object's life, so a memtable reader can read a value even after the
 * version dropped and deleted the file.
 *
 * Thread-safety: add, write, sync and finish by one thread at a time (the commit leader while
 * the memtable is active, then the flush); read from any thread, for handles the writer
 * returned before the entry was published. Refcounted: blob_direct_ref needs a reference.
 */
struct blob_direct;
/* Creates file `path` (must not exist) with id `id`, empty. */
fr_status blob_direct_create(struct fr_io *io, const char *path, uint64_t id, bool compress,
			     struct blob_direct **out, fr_error *err);
/* Opens the unfinished file `path` after a crash: finds its valid prefix (blob_valid_prefix) and,
 * when writable, cuts the torn tail and syncs, ready to be finished; a missing file is made
 * again empty (its handles then read as FR_CORRUPTION). Nothing more can be added. */
fr_status blob_direct_recover(struct fr_io *io, const char *path, uint64_t id, bool writable,
			      struct blob_direct **out, fr_error *err);
void blob_direct_ref(struct blob_direct *d);
/* The last unref closes the file and keeps it (unless it was finished, it is still needed to
 * replay the journal). NULL allowed. */
void blob_direct_unref(struct blob_direct *d);
uint64_t blob_direct_id(const struct blob_direct *d);
/* Bytes in the file so far, buffered records included. */
uint64_t blob_direct_size(const struct blob_direct *d);
/* Buffers a record (blob_writer_add); FR_INVALID when the file takes no more records. */
fr_status blob_direct_add(struct blob_direct *d, const void *key, size_t klen, const void *val,
			  size_t vlen, struct blob_handle *h, fr_error *err);
/* Writes the buffered records to the OS and starts write-back every `wb_min` bytes. */
fr_status blob_direct_write(struct blob_direct *d, uint64_t wb_min, fr_error *err);
/* Makes everything written durable (fdatasync); nothing to do when it is already. */
fr_status blob_direct_sync(struct blob_direct *d, fr_error *err);
/* Writes the footer and syncs; *m describes the finished file. Called once, by the flush. */
fr_status blob_direct_finish(struct blob_direct *d, struct blob_meta *m, fr_error *err);
/* Reads the value of handle h (h->file_id is this file's id). */
fr_status blob_direct_read(struct blob_direct *d, const struct blob_handle *h, void **val,
			   size_t *vlen, fr_error *err);

#endif
