/* SPDX-License-Identifier: MIT */
/*
 * journal.h - the shared write-ahead journal (FORMAT.md §3): a directory of segment files
 * named by a decimal id zero-padded to 10 digits plus ".jnl" (0000000007.jnl), each a record
 * file (record.h). One record is one committed batch, opaque here but for its framing: segments
 * written now (magic JNL_MAGIC2) frame each batch with a codec byte and store it LZ4-compressed
 * when that saves an eighth or more; segments of magic JNL_MAGIC (the first version) hold bare
 * batches and are still replayed.
 *
 * The writer is used by one thread at a time (the database's commit leader). Group commit is the
 * caller's: add several records, then one jnl_commit writes them in one write and one sync.
 * Rotating syncs the finished segment, so only the newest segment can ever have a torn tail.
 */
#ifndef FRACTIO_JOURNAL_JOURNAL_H
#define FRACTIO_JOURNAL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct fr_io;
struct jnl;

#define JNL_MAGIC 0x4c4e4a46u  /* "FJNL" little-endian: bare batches */
#define JNL_MAGIC2 0x324e4a46u /* "FJN2": framed batches (FORMAT.md §3.3) */
#define JNL_COMPRESS_MIN 64    /* batches shorter than this are never compressed */
/* JNL_CODEC_START frames no batch: it opens a segment and says which seqno comes next. */
enum { JNL_CODEC_NONE = 0, JNL_CODEC_LZ4 = 1, JNL_CODEC_START = 2 };

/* Called for each record of each segment, oldest first. */
typedef fr_status (*jnl_replay_fn)(void *ctx, uint64_t seg_id, const uint8_t *rec, size_t len,
				   fr_error *err);

/* Ids of the segments in `dir`, ascending (fr_free the array). Other files are ignored. */
fr_status jnl_list_segments(struct fr_io *io, const char *dir, uint64_t **ids, size_t *cnt,
			    fr_error *err);
/* Replays every segment in `dir` in id order. A torn tail in the newest segment is truncated
 * away (logged at WARN with the file and offset); a bad record anywhere else is FR_CORRUPTION.
 * *max_seg is the newest segment id seen, 0 if none. */
/* As jnl_replay, and *first_start is the start record of the oldest segment (0: it has none). */
fr_status jnl_replay_from(struct fr_io *io, const char *dir, jnl_replay_fn fn, void *ctx,
			  uint64_t *max_seg, uint64_t *first_start, fr_error *err);
fr_status jnl_replay(struct fr_io *io, const char *dir, jnl_replay_fn fn, void *ctx,
		     uint64_t *max_seg, fr_error *err);
/* Starts a new segment `seg_id` in `dir` (created if missing). */
fr_status jnl_open(struct fr_io *io, const char *dir, uint64_t seg_id, uint64_t segment_max,
		   struct jnl **out, fr_error *err);
/* Buffers one record. */
fr_status jnl_add(struct jnl *j, const void *rec, size_t len, fr_error *err);
/* Writes buffered records to the OS, then syncs per mode. */
fr_status jnl_commit(struct jnl *j, fr_persist mode, fr_error *err);
/* Called before every sync of a segment (a commit's, rotation's, the start record's) with
 * nothing else held: what the records refer to outside the journal (direct blob files) must
 * be durable before they are. A failure fails the sync. */
typedef fr_status (*jnl_presync_fn)(void *ctx, fr_error *err);
void jnl_set_presync(struct jnl *j, jnl_presync_fn fn, void *ctx);
/* True when the current segment has reached segment_max. */
bool jnl_should_rotate(const struct jnl *j);
/* Records the writer tried to compress (the backoff on incompressible data, for tests). */
uint64_t jnl_compress_tries(const struct jnl *j);
/* Writes and syncs the start record of the current segment: the seqno of the next batch.
 * Call after jnl_open and every jnl_rotate. */
fr_status jnl_mark_start(struct jnl *j, uint64_t next_seqno, fr_error *err);
/* Syncs and closes the current segment, starts segment id+1. */
fr_status jnl_rotate(struct jnl *j, fr_error *err);
uint64_t jnl_segment_id(const struct jnl *j);
/* Bytes written to segments by this writer (for statistics). */
uint64_t jnl_bytes_written(const struct jnl *j);
fr_status jnl_segment_delete(struct fr_io *io, const char *dir, uint64_t seg_id, fr_error *err);
/* Writes buffered records and closes. NULL allowed. */
fr_status jnl_close(struct jnl *j, fr_error *err);

#endif
