/* SPDX-License-Identifier: MIT */
/*
 * journal.c - the journal writer (FORMAT.md §3): one open segment, a record file with magic
 * JNL_MAGIC whose file id is the segment id. Records are buffered by jnl_add and handed to the
 * OS by jnl_commit in one write, then synced per mode (group commit is the caller's).
 *
 * Durability steps: a new segment's header is synced (SYNC_DATA) before its directory entry is,
 * so a segment that survives a crash by name has a valid header unless the crash hit between
 * create and that first sync; rotation syncs the finished segment before the next one is
 * created, so only the newest segment can have a torn tail. After a failed write or sync the
 * writer refuses all further work (record.c) until it is closed.
 *
 * One thread at a time.
 */
#include "journal/journal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <lz4.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/sync.h"
#include "io/io.h"
#include "io/compress.h"
#include "io/record.h"

#define JNL_SEG_ID_MAX 9999999999ull /* ten decimal digits */

struct jnl {
	struct fr_io *io;
	char *dir;
	uint64_t segment_max;
	uint64_t seg_id;        /* current segment */
	struct rec_writer *w;   /* current segment's writer */
	uint64_t closed_bytes;  /* bytes written to segments this writer finished */
	uint64_t cur_written;   /* bytes of the current segment handed to the OS */
	struct fr_buf frame;    /* the compressed record being added */
	/* Compression backs off on data that does not compress: after a failed try the next
	 * `skip` records of the same size class (below 4 KiB, or not) are stored as they are,
	 * `skip` doubling up to JNL_BACKOFF_MAX with each failure and resetting on a success. */
	uint32_t skip[2];
	uint32_t backoff[2];
	uint64_t tries; /* compressions attempted */
	jnl_presync_fn presync; /* NULL: none */
	void *presync_ctx;
};

#define JNL_BACKOFF_MAX 64
/* Once this many bytes were written without a sync, their write-back is started: every
 * segment is synced when the writer rotates away from it, and that sync (taken while commits
 * wait) then waits for the last few MiB only, not the whole segment. */
#define JNL_WRITEBACK_MIN (2u << 20)
#define JNL_LARGE 4096

static fr_status jnl_seg_path(char *path, size_t n, const char *dir, uint64_t seg_id,
			      fr_error *err)
{
	if (seg_id > JNL_SEG_ID_MAX)
		return FR_ERR(err, FR_INVALID, "journal segment id %llu has more than 10 digits",
			      (unsigned long long)seg_id);
	int k = snprintf(path, n, "%s/%010llu.jnl", dir, (unsigned long long)seg_id);
	if (k < 0 || (size_t)k >= n)
		return FR_ERR(err, FR_INVALID, "journal path too long: %s", dir);
	return FR_OK;
}

/* Creates dir when missing and makes its entry durable in the parent directory. */
static fr_status jnl_make_dir(struct fr_io *io, const char *dir, fr_error *err)
{
	bool exists;
	fr_status rc = io_exists(io, dir, &exists, err);
	if (rc || exists)
		return rc;
	rc = io_mkdir(io, dir, err);
	if (rc)
		return rc;
	char parent[PATH_MAX];
	const char *slash = strrchr(dir, '/');
	if (!slash) {
		strcpy(parent, ".");
	} else {
		size_t n = slash == dir ? 1 : (size_t)(slash - dir);
		if (n >= sizeof(parent))
			return FR_ERR(err, FR_INVALID, "journal path too long: %s", dir);
		memcpy(parent, dir, n);
		parent[n] = 0;
	}
	return io_sync_dir(io, parent, err);
}

/* Creates segment seg_id with a durable header and a durable name. */
static fr_status jnl_start_segment(struct fr_io *io, const char *dir, uint64_t seg_id,
				   struct rec_writer **out, fr_error *err)
{
	char path[PATH_MAX];
	struct rec_writer *w;
	*out = NULL;
	fr_status rc = jnl_seg_path(path, sizeof(path), dir, seg_id, err);
	if (rc)
		return rc;
	rc = rec_writer_open(io, path, JNL_MAGIC2, seg_id, &w, err);
	if (rc)
		return rc;
	rc = rec_writer_sync(w, FR_PERSIST_SYNC_DATA, err);
	if (!rc)
		rc = io_sync_dir(io, dir, err);
	if (rc) {
		rec_writer_close(w, NULL);
		io_unlink(io, path, NULL); /* best effort, so that a retry can create it again */
		return rc;
	}
	*out = w;
	return FR_OK;
}

fr_status jnl_open(struct fr_io *io, const char *dir, uint64_t seg_id, uint64_t segment_max,
		   struct jnl **out, fr_error *err)
{
	fr_status rc;
	*out = NULL;
	struct jnl *j = fr_calloc(1, sizeof(*j));
	if (!j)
		return FR_ERR(err, FR_NOMEM, "opening journal %s", dir);
	j->io = io;
	j->segment_max = segment_max;
	j->seg_id = seg_id;
	j->dir = fr_strdup(dir);
	if (!j->dir) {
		rc = FR_ERR(err, FR_NOMEM, "opening journal %s", dir);
		goto out_free;
	}
	rc = jnl_make_dir(io, dir, err);
	if (rc)
		goto out_free;
	rc = jnl_start_segment(io, dir, seg_id, &j->w, err);
	if (rc)
		goto out_free;
	atomic_store_rlx_u64(&j->cur_written, rec_writer_size(j->w));
	*out = j;
	return FR_OK;

out_free:
	fr_free(j->dir);
	fr_free(j);
	return rc;
}

/* frame := u8 codec, then codec 0: the batch; codec 1: varint batch length, its LZ4 block */
fr_status jnl_add(struct jnl *j, const void *rec, size_t len, fr_error *err)
{
	struct fr_buf *f = &j->frame;
	buf_clear(f);
	int cls = len >= JNL_LARGE;
	bool try = len >= JNL_COMPRESS_MIN && len <= (size_t)LZ4_MAX_INPUT_SIZE && !j->skip[cls];
	if (j->skip[cls])
		j->skip[cls]--;
	if (try) {
		j->tries++;
		size_t bound = 1 + VARINT_MAX + (size_t)LZ4_compressBound((int)len);
		if (buf_reserve(f, bound))
			return FR_ERR(err, FR_NOMEM, "journal record");
		f->data[0] = JNL_CODEC_LZ4;
		size_t h = 1 + enc_varint(f->data + 1, len);
		int n = fr_lz4_compress(rec, (int)len, f->data + h, (int)(bound - h));
		if (n > 0 && h + (size_t)n <= len - len / 8) {
			j->backoff[cls] = 0;
			f->len = h + (size_t)n;
			return rec_writer_add(j->w, f->data, f->len, err);
		}
		uint32_t b = j->backoff[cls];
		j->backoff[cls] = b ? (b * 2 > JNL_BACKOFF_MAX ? JNL_BACKOFF_MAX : b * 2) : 1;
		j->skip[cls] = j->backoff[cls];
	}
	/* the batch goes straight into the writer's buffer behind its codec byte */
	uint8_t codec = JNL_CODEC_NONE;
	return rec_writer_add2(j->w, &codec, 1, rec, len, err);
}

/* Syncs the current segment per mode, after what its records refer to (the presync hook). */
static fr_status seg_sync(struct jnl *j, fr_persist mode, fr_error *err)
{
	fr_status rc = j->presync ? j->presync(j->presync_ctx, err) : FR_OK;
	return rc ? rc : rec_writer_sync(j->w, mode, err);
}

fr_status jnl_commit(struct jnl *j, fr_persist mode, fr_error *err)
{
	fr_status rc = rec_writer_flush(j->w, err);
	if (rc)
		return rc;
	atomic_store_rlx_u64(&j->cur_written, rec_writer_size(j->w));
	if (mode == FR_PERSIST_BUFFER) {
		rec_writer_writeback(j->w, JNL_WRITEBACK_MIN);
		return FR_OK;
	}
	return seg_sync(j, mode, err);
}

void jnl_set_presync(struct jnl *j, jnl_presync_fn fn, void *ctx)
{
	j->presync = fn;
	j->presync_ctx = ctx;
}

uint64_t jnl_compress_tries(const struct jnl *j)
{
	return j->tries;
}

bool jnl_should_rotate(const struct jnl *j)
{
	return rec_writer_size(j->w) >= j->segment_max;
}

fr_status jnl_mark_start(struct jnl *j, uint64_t next_seqno, fr_error *err)
{
	uint8_t rec[1 + VARINT_MAX];
	rec[0] = JNL_CODEC_START;
	size_t n = 1 + enc_varint(rec + 1, next_seqno);
	fr_status rc = rec_writer_add(j->w, rec, n, err);
	if (!rc)
		rc = jnl_commit(j, FR_PERSIST_SYNC_DATA, err);
	return rc;
}

/*
 * The finished segment is synced before the next is created; the next is complete (durable
 * header and name) before the finished one is closed, so on failure the writer stays on the
 * current segment.
 */
fr_status jnl_rotate(struct jnl *j, fr_error *err)
{
	struct rec_writer *next;
	fr_status rc = seg_sync(j, FR_PERSIST_SYNC_DATA, err);
	if (rc)
		return rc;
	atomic_store_rlx_u64(&j->cur_written, rec_writer_size(j->w));
	rc = jnl_start_segment(j->io, j->dir, j->seg_id + 1, &next, err);
	if (rc)
		return rc;
	rc = rec_writer_close(j->w, err); /* nothing buffered: cannot fail */
	atomic_store_rlx_u64(&j->closed_bytes, j->closed_bytes + j->cur_written);
	j->w = next;
	j->seg_id++;
	atomic_store_rlx_u64(&j->cur_written, rec_writer_size(next));
	return rc;
}

uint64_t jnl_segment_id(const struct jnl *j)
{
	return j->seg_id;
}

uint64_t jnl_bytes_written(const struct jnl *j)
{
	/* any thread (statistics): the writer stores both atomically */
	return atomic_load_rlx_u64(&j->closed_bytes) + atomic_load_rlx_u64(&j->cur_written);
}

fr_status jnl_segment_delete(struct fr_io *io, const char *dir, uint64_t seg_id, fr_error *err)
{
	char path[PATH_MAX];
	fr_status rc = jnl_seg_path(path, sizeof(path), dir, seg_id, err);
	if (rc)
		return rc;
	rc = io_unlink(io, path, err);
	if (rc)
		return rc;
	return io_sync_dir(io, dir, err);
}

fr_status jnl_close(struct jnl *j, fr_error *err)
{
	if (!j)
		return FR_OK;
	fr_status rc = rec_writer_close(j->w, err);
	buf_fini(&j->frame);
	fr_free(j->dir);
	fr_free(j);
	return rc;
}
