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

/* Reads the value h names from file `path`: through the file table ft under h->file_id when
 * ft is not NULL, else with a descriptor of its own. Checks the stored bytes' checksum and the
 * decompressed length. *val is fr_malloc'd (NULL allowed for an empty value). A missing file
 * is FR_CORRUPTION too: a handle only exists while its file should. */
fr_status blob_read(struct fr_io *io, struct ftab *ft, const char *path,
		    const struct blob_handle *h, void **val, size_t *vlen, fr_error *err);

/* Called by blob_scan for each record, in file order; non-OK stops the scan with that
 * status. The views are valid for the call only. */
typedef fr_status (*blob_scan_fn)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
				  size_t vlen, const struct blob_handle *h);
/* Reads and checks all of blob file `path` (expected id `id`): header, every record (both
 * checksums, lengths, decompression), footer (checksum, counts, that it ends the file). fn may
 * be NULL. Fills *m (may be NULL) on success. */
fr_status blob_scan(struct fr_io *io, const char *path, uint64_t id, blob_scan_fn fn, void *ctx,
		    struct blob_meta *m, fr_error *err);

#endif
