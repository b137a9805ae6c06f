/* SPDX-License-Identifier: MIT */
/*
 * record.h - record files (FORMAT.md §2): a checksummed file header followed by length-prefixed,
 * checksummed records. The journal segments and the manifest are record files.
 *
 * Reading applies the torn-tail rule: when a record is bad (short, or checksum mismatch) and no
 * valid record follows it anywhere in the rest of the file, the file ends there (a torn tail);
 * when a valid record does follow, the bad one is corruption (FR_CORRUPTION naming the file and
 * the offset).
 */
#ifndef FRACTIO_IO_RECORD_H
#define FRACTIO_IO_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct fr_io;
struct rec_writer;

#define REC_FILE_HEADER_LEN 24
#define REC_HEADER_LEN 16
#define REC_MAX_LEN (1u << 30)

/* Creates `path` (must not exist) with a header of `magic` and `file_id`. One thread at a time. */
fr_status rec_writer_open(struct fr_io *io, const char *path, uint32_t magic, uint64_t file_id,
			  struct rec_writer **out, fr_error *err);
/* Frames rec into the writer's buffer; nothing reaches the OS until flush or sync. */
fr_status rec_writer_add(struct rec_writer *w, const void *rec, size_t len, fr_error *err);
/* rec_writer_add of the one record head[0..hlen) followed by body[0..blen), framed without
 * first joining the parts elsewhere. A body of 256 KiB or more is not copied: the buffered
 * records and this one reach the OS at once (the call is then a flush, failures included). */
fr_status rec_writer_add2(struct rec_writer *w, const void *head, size_t hlen, const void *body,
			  size_t blen, fr_error *err);
/* Hands buffered records to the OS in one write. */
fr_status rec_writer_flush(struct rec_writer *w, fr_error *err);
/* flush, then sync per mode (BUFFER: no sync) */
fr_status rec_writer_sync(struct rec_writer *w, fr_persist mode, fr_error *err);
/* Starts the write-back (io_writeback) of the bytes handed to the OS since the last call, once
 * there are at least `min` of them: a sync later waits only for the rest. */
void rec_writer_writeback(struct rec_writer *w, uint64_t min);
/* Bytes in the file including buffered ones. */
uint64_t rec_writer_size(const struct rec_writer *w);
/* Flushes (not syncs) and closes; frees w even on failure. NULL allowed. */
fr_status rec_writer_close(struct rec_writer *w, fr_error *err);

/* Called for each valid record in order: rec is valid during the call; off is the record's
 * offset in the file. A non-OK return stops the read with that status. */
typedef fr_status (*rec_fn)(void *ctx, const uint8_t *rec, size_t len, uint64_t off,
			    fr_error *err);

struct rec_read_result {
	uint64_t file_id;   /* from the file header */
	uint64_t valid_len; /* bytes up to the end of the last valid record */
	uint64_t file_len;
	uint64_t records;
	bool torn;          /* a torn tail followed valid_len */
};

/* Reads every record of `path`. A torn tail is reported in res (not truncated here). A file
 * shorter than its header counts as empty and torn. A header of the wrong magic or version, or
 * a bad record followed by a valid one, is FR_CORRUPTION. */
fr_status rec_read_file(struct fr_io *io, const char *path, uint32_t magic, rec_fn fn, void *ctx,
			struct rec_read_result *res, fr_error *err);

#endif
